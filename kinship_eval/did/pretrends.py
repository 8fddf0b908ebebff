"""Pre-trend diagnostics: joint tests, the power of pre-tests, and robust (HonestDiD) intervals.

Passing a pre-trend test is weak evidence for parallel trends when the pre-test has little power,
and conditioning on passing it biases the post-period estimates (Roth 2022). This module provides

* :func:`joint_pretrend_test` -- the Wald test that every lead (pre-period event-time
  coefficient) is zero;
* :func:`pretest_power` and :func:`slope_for_power` -- Roth's (2022) power analysis against a
  linear violation of parallel trends ``delta_t = slope * (t - ref)``: the power of the joint Wald
  test and of the "any lead individually significant" test, the slopes the pre-test detects with
  50% and 80% probability, and the bias of the post-period estimates among samples that pass the
  pre-test (simulated);
* :func:`honest_did` -- Rambachan and Roth (2023) confidence intervals for
  ``theta = l' tau_post`` that remain valid when parallel trends fails in a bounded way:

  - smoothness, ``Delta^SD(M)``: the slope of the differential trend changes by at most ``M``
    between consecutive periods. Intervals are fixed-length confidence intervals built on the
    optimal affine estimator (``"FLCI"``, HonestDiD's ``findOptimalFLCI``), or the Andrews, Roth
    and Pakes (ARP) conditional / hybrid tests inverted over ``theta``;
  - relative magnitudes, ``Delta^RM(Mbar)``: no post-period change in the differential trend is
    larger than ``Mbar`` times the largest pre-period change. Intervals are the ARP
    conditional-least-favourable hybrid (``"C-LF"``) confidence sets, united over the location and
    sign of the largest pre-period change, as in HonestDiD's ``computeConditionalCS_DeltaRM``.

Conventions follow HonestDiD: ``betahat`` stacks ``num_pre`` pre-period coefficients (earliest
first) and then ``num_post`` post-period coefficients; the reference period, normalised to zero,
lies between them and is not included. ``l_vec`` defaults to the first post-period (``e = 0``).

The ARP tests are computed exactly from the vertices of the dual linear program (enumerated once
per restriction set), which makes the test at any ``theta`` a few matrix products; when there are
too many candidate vertices the tests fall back to :func:`scipy.optimize.linprog`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from kinship_eval.errors import EstimationError, InputError

__all__ = [
    "HonestResults",
    "PretestPower",
    "flci",
    "honest_did",
    "identified_set",
    "joint_pretrend_test",
    "original_ci",
    "pretest_power",
    "slope_for_power",
]

#: Largest number of candidate dual vertices enumerated before switching to linear programming.
MAX_VERTEX_CANDIDATES = 200_000


# ============================================================================ joint test
def joint_pretrend_test(
    coefficients: Any,
    vcov: Any = None,
    *,
    rel_times: Sequence[int] | None = None,
    ref_period: int = -1,
) -> dict[str, Any]:
    """Joint Wald (chi-squared) test that every lead is zero.

    Parameters
    ----------
    coefficients
        Either an event-study frame (columns ``rel_time``, ``att``, ``se``), a
        :class:`~kinship_eval.did.results.DiDResults` with an event study, or a vector of lead
        coefficients (all of it is tested unless ``rel_times`` is given).
    vcov
        Covariance of the tested coefficients: a matrix in the same order, a DataFrame indexed by
        event time, or ``None``. With an event-study frame and no covariance the leads are taken
        as independent (``diag(se**2)``) and the result says so. A ``DiDResults`` whose
        ``extra["vcov"]`` holds ``{"rel_time", "matrix"}`` supplies its own.
    rel_times
        Event times of a coefficient vector; then only leads (``rel_time < 0`` and not the
        reference) are tested.
    ref_period
        Reference event time (excluded).

    Returns
    -------
    dict
        ``stat``, ``df``, ``p_value`` and ``vcov`` (``"full"`` or ``"diagonal"``).
    """
    from kinship_eval.did.results import DiDResults

    kind = "full"
    if isinstance(coefficients, DiDResults):
        if coefficients.event_study is None:
            raise InputError("the results have no event study")
        if vcov is None and isinstance(coefficients.extra.get("vcov"), dict):
            spec = coefficients.extra["vcov"]
            vcov = pd.DataFrame(spec["matrix"], index=spec["rel_time"], columns=spec["rel_time"])
        coefficients = coefficients.event_study
    if isinstance(coefficients, pd.DataFrame):
        es = coefficients
        mask = (es["rel_time"] < 0) & (es["rel_time"] != ref_period) & np.isfinite(es["att"])
        leads = es.loc[mask]
        beta = leads["att"].to_numpy(dtype=float)
        times = leads["rel_time"].astype(int).tolist()
        if vcov is None:
            v = np.diag(leads["se"].to_numpy(dtype=float) ** 2)
            kind = "diagonal"
        elif isinstance(vcov, pd.DataFrame):
            v = vcov.loc[times, times].to_numpy(dtype=float)
        else:
            v = np.asarray(vcov, dtype=float)
    else:
        beta = np.asarray(coefficients, dtype=float).ravel()
        if vcov is None:
            raise InputError("a covariance matrix is needed with a coefficient vector")
        v = np.asarray(vcov.to_numpy() if isinstance(vcov, pd.DataFrame) else vcov, dtype=float)
        if rel_times is not None:
            rt = np.asarray(rel_times)
            if len(rt) != len(beta):
                raise InputError("rel_times must have one entry per coefficient")
            keep = np.flatnonzero((rt < 0) & (rt != ref_period))
            beta = beta[keep]
            v = v[np.ix_(keep, keep)]
    if v.shape != (len(beta), len(beta)):
        raise InputError("the covariance matrix does not match the coefficients")
    if len(beta) == 0:
        return {"stat": math.nan, "df": 0, "p_value": math.nan, "vcov": kind}
    rank = int(np.linalg.matrix_rank(v))
    stat = (
        float(beta @ np.linalg.pinv(v) @ beta)
        if rank < len(beta)
        else float(beta @ np.linalg.solve(v, beta))
    )
    return {
        "stat": stat,
        "df": rank,
        "p_value": float(stats.chi2.sf(stat, rank)) if rank else math.nan,
        "vcov": kind,
    }


# ============================================================================ pre-test power
def _split_pre(
    sigma: np.ndarray, rel_times: Sequence[int], ref_period: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sigma = np.atleast_2d(np.asarray(sigma, dtype=float))
    rt = np.asarray(rel_times, dtype=float)
    if sigma.shape != (len(rt), len(rt)):
        raise InputError("sigma must be square with one row per entry of rel_times")
    if np.any(rt == ref_period):
        raise InputError("rel_times must not include the reference period")
    pre = np.flatnonzero((rt < 0) & (rt != ref_period))
    post = np.flatnonzero(rt >= 0)
    if len(pre) == 0:
        raise InputError("no pre-period coefficient to test")
    return sigma, rt, pre, post


def _power_any(mean_pre: np.ndarray, sigma_pre: np.ndarray, crit: float, seed: int) -> float:
    se = np.sqrt(np.diag(sigma_pre))
    if len(se) == 1:
        z = mean_pre[0] / se[0]
        return float(1.0 - (stats.norm.cdf(crit - z) - stats.norm.cdf(-crit - z)))
    accept = stats.multivariate_normal.cdf(
        crit * se,
        mean=mean_pre,
        cov=sigma_pre,
        lower_limit=-crit * se,
        maxpts=100_000 * len(se),
        abseps=1e-7,
        releps=1e-7,
        rng=np.random.default_rng(seed),
    )
    return float(min(max(1.0 - accept, 0.0), 1.0))


def _power_wald(mean_pre: np.ndarray, sigma_pre: np.ndarray, alpha: float) -> float:
    df = len(mean_pre)
    ncp = float(mean_pre @ np.linalg.solve(sigma_pre, mean_pre))
    crit = stats.chi2.ppf(1 - alpha, df)
    return float(stats.ncx2.sf(crit, df, ncp)) if ncp > 0 else alpha


def slope_for_power(
    sigma: Any,
    rel_times: Sequence[int],
    target_power: float,
    *,
    test: Literal["any", "wald"] = "any",
    alpha: float = 0.05,
    ref_period: int = -1,
    seed: int = 0,
) -> float:
    """Slope of a linear violation ``delta_t = slope * (t - ref)`` detected with ``target_power``.

    Parameters
    ----------
    sigma
        Covariance of the event-study coefficients (ordered as ``rel_times``).
    rel_times
        Event times of the coefficients (reference excluded); leads are ``rel_time < 0``.
    target_power
        Probability that the pre-test rejects.
    test
        ``"any"``: some lead is individually significant at ``alpha`` (Roth 2022, R package
        ``pretrends``); ``"wald"``: the joint Wald test rejects at ``alpha``.
    alpha, ref_period, seed
        Test size, reference period and seed of the multivariate normal integration.

    Returns
    -------
    float
        The positive slope (the power is symmetric in the sign of the slope).
    """
    if not alpha < target_power < 1:
        raise InputError(f"target_power must lie between alpha and 1, not {target_power}")
    sigma, rt, pre, _ = _split_pre(sigma, rel_times, ref_period)
    sigma_pre = sigma[np.ix_(pre, pre)]
    tvec = rt[pre] - ref_period
    if test == "wald":
        df = len(pre)
        crit = stats.chi2.ppf(1 - alpha, df)
        ncp = optimize.brentq(lambda c: stats.ncx2.sf(crit, df, c) - target_power, 1e-12, 1e4)
        return float(math.sqrt(ncp / float(tvec @ np.linalg.solve(sigma_pre, tvec))))
    if test != "any":
        raise InputError(f"test must be 'any' or 'wald', not {test!r}")
    crit = stats.norm.ppf(1 - alpha / 2)
    upper = 8.0 * float(np.sqrt(np.diag(sigma_pre)).max())
    while _power_any(upper * tvec, sigma_pre, crit, seed) < target_power:
        upper *= 2.0
    return float(
        optimize.brentq(
            lambda s: _power_any(s * tvec, sigma_pre, crit, seed) - target_power,
            0.0,
            upper,
            xtol=1e-10 * upper,
        )
    )


@dataclass
class PretestPower:
    """Power of pre-trend tests against a hypothesised violation of parallel trends (Roth 2022).

    Attributes
    ----------
    slope
        Slope of the hypothesised linear violation ``delta_t = slope * (t - ref)``.
    power_any, power_wald
        Probability that some lead is individually significant / that the joint Wald test
        rejects, when the truth is ``delta`` (and there is no treatment effect).
    slopes
        ``{"any": {0.5: s50, 0.8: s80}, "wald": {...}}``: slopes detected with that power.
    bayes_factor
        ``P(pass | delta) / P(pass | parallel trends)`` for the "any" test.
    likelihood_ratio
        Density of the observed leads under ``delta`` relative to under parallel trends.
    frame
        One row per coefficient: ``rel_time, betahat, se, delta, mean_after_any,
        mean_after_wald`` (expected estimates given that the pre-test is passed).
    bias
        Post-period rows: ``rel_time, unconditional`` (= ``delta``), ``after_any``,
        ``after_wald``: the bias of the post-period estimates without pre-testing and among
        samples passing each pre-test.
    """

    slope: float
    alpha: float
    power_any: float
    power_wald: float
    slopes: dict[str, dict[float, float]]
    bayes_factor: float
    likelihood_ratio: float
    frame: pd.DataFrame
    bias: pd.DataFrame
    n_sims: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly values."""
        return {
            "slope": self.slope,
            "alpha": self.alpha,
            "power_any": self.power_any,
            "power_wald": self.power_wald,
            "slopes": {t: {str(p): s for p, s in d.items()} for t, d in self.slopes.items()},
            "bayes_factor": self.bayes_factor,
            "likelihood_ratio": self.likelihood_ratio,
            "bias": self.bias.to_dict("records"),
        }


def pretest_power(
    betahat: Any,
    sigma: Any,
    rel_times: Sequence[int],
    *,
    slope: float,
    alpha: float = 0.05,
    ref_period: int = -1,
    target_powers: Sequence[float] = (0.5, 0.8),
    n_sims: int = 200_000,
    seed: int | None = 0,
) -> PretestPower:
    """Roth (2022) power analysis of pre-trend tests against a linear violation of parallel trends.

    Parameters
    ----------
    betahat
        Estimated event-study coefficients (reference period excluded), ordered as ``rel_times``.
    sigma
        Their covariance matrix.
    rel_times
        Event times; leads are ``rel_time < 0``, post periods ``rel_time >= 0``.
    slope
        Hypothesised violation ``delta_t = slope * (t - ref_period)``.
    alpha
        Size of the pre-tests (individual two-sided t-tests and the joint Wald test).
    ref_period
        Reference (omitted) event time.
    target_powers
        Powers for which the detectable slope is solved.
    n_sims, seed
        Simulation size and seed for the conditional means (bias after pre-testing).

    Returns
    -------
    PretestPower
    """
    b = np.asarray(betahat, dtype=float).ravel()
    sigma, rt, pre, post = _split_pre(sigma, rel_times, ref_period)
    if len(b) != len(rt):
        raise InputError("betahat must have one entry per rel_time")
    delta = slope * (rt - ref_period)
    sigma_pre = sigma[np.ix_(pre, pre)]
    se = np.sqrt(np.diag(sigma))
    crit_t = stats.norm.ppf(1 - alpha / 2)
    crit_w = stats.chi2.ppf(1 - alpha, len(pre))
    power_any = _power_any(delta[pre], sigma_pre, crit_t, 0 if seed is None else seed)
    power_wald = _power_wald(delta[pre], sigma_pre, alpha)
    pass_zero = 1.0 - _power_any(np.zeros(len(pre)), sigma_pre, crit_t, 0 if seed is None else seed)
    slopes = {
        test: {
            float(p): slope_for_power(
                sigma, rel_times, p, test=test, alpha=alpha, ref_period=ref_period
            )
            for p in target_powers
        }
        for test in ("any", "wald")
    }
    lr = math.exp(
        stats.multivariate_normal.logpdf(b[pre], mean=delta[pre], cov=sigma_pre)
        - stats.multivariate_normal.logpdf(b[pre], mean=np.zeros(len(pre)), cov=sigma_pre)
    )
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(delta, sigma, size=n_sims, method="cholesky")
    t_pre = draws[:, pre] / se[pre]
    pass_any = np.all(np.abs(t_pre) <= crit_t, axis=1)
    inv_pre = np.linalg.inv(sigma_pre)
    wald = np.einsum("ij,jk,ik->i", draws[:, pre], inv_pre, draws[:, pre])
    pass_wald = wald <= crit_w
    mean_any = draws[pass_any].mean(axis=0) if pass_any.any() else np.full(len(rt), math.nan)
    mean_wald = draws[pass_wald].mean(axis=0) if pass_wald.any() else np.full(len(rt), math.nan)
    frame = pd.DataFrame(
        {
            "rel_time": rt.astype(int),
            "betahat": b,
            "se": se,
            "delta": delta,
            "mean_after_any": mean_any,
            "mean_after_wald": mean_wald,
        }
    )
    bias = pd.DataFrame(
        {
            "rel_time": rt[post].astype(int),
            "unconditional": delta[post],
            "after_any": mean_any[post],
            "after_wald": mean_wald[post],
        }
    )
    return PretestPower(
        slope=float(slope),
        alpha=alpha,
        power_any=power_any,
        power_wald=power_wald,
        slopes=slopes,
        bayes_factor=float((1.0 - power_any) / pass_zero),
        likelihood_ratio=float(lr),
        frame=frame,
        bias=bias,
        n_sims=n_sims,
    )


# ============================================================================ restriction sets
def _check_inputs(
    betahat: Any, sigma: Any, num_pre: int, num_post: int, l_vec: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = np.asarray(betahat, dtype=float).ravel()
    s = np.atleast_2d(np.asarray(sigma, dtype=float))
    if num_pre < 1 or num_post < 1:
        raise InputError("need at least one pre-period and one post-period coefficient")
    if len(b) != num_pre + num_post:
        raise InputError(f"betahat has {len(b)} entries, expected num_pre + num_post")
    if s.shape != (len(b), len(b)):
        raise InputError("sigma must be a square matrix matching betahat")
    if not np.allclose(s, s.T, rtol=1e-8, atol=1e-12 * max(1.0, float(np.abs(s).max()))):
        raise InputError("sigma must be symmetric")
    s = (s + s.T) / 2
    if l_vec is None:
        lv = np.zeros(num_post)
        lv[0] = 1.0
    else:
        lv = np.asarray(l_vec, dtype=float).ravel()
        if len(lv) != num_post:
            raise InputError(f"l_vec must have num_post = {num_post} entries")
    return b, s, lv


def _sd_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """Rows ``+-`` second differences of ``(delta_pre, 0, delta_post)`` (reference dropped)."""
    n = num_pre + num_post
    rows = n - 1
    atilde = np.zeros((rows, n + 1))
    for r in range(rows):
        atilde[r, r : r + 3] = [1.0, -2.0, 1.0]
    atilde = np.delete(atilde, num_pre, axis=1)
    return np.vstack([atilde, -atilde])


def _rm_matrix(num_pre: int, num_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """``Delta^RM`` with the largest pre-period change at ``s`` (HonestDiD ``.create_A_RM``)."""
    n = num_pre + num_post
    atilde = np.zeros((n, n + 1))
    for r in range(n):
        atilde[r, r : r + 2] = [-1.0, 1.0]
    vmax = np.zeros(n + 1)
    vmax[num_pre + s - 1 : num_pre + s + 1] = [-1.0, 1.0]
    if not positive:
        vmax = -vmax
    a_ub = np.vstack([np.tile(vmax, (num_pre, 1)), np.tile(mbar * vmax, (num_post, 1))])
    a = np.vstack([atilde - a_ub, -atilde - a_ub])
    a = a[np.einsum("ij,ij->i", a, a) > 1e-10]
    return np.delete(a, num_pre, axis=1)


def _post_rows(a: np.ndarray, num_pre: int) -> np.ndarray:
    return np.flatnonzero(np.any(a[:, num_pre:] != 0, axis=1))


def _sd_upper_bound(b: np.ndarray, s: np.ndarray, num_pre: int, alpha: float) -> float:
    """Largest upper confidence bound of the pre-period second differences (default ``M`` range).

    As HonestDiD's ``DeltaSD_upperBound_Mpre``: the second differences of
    ``(beta_pre, 0)`` in both signs, plus ``z_{1-alpha}`` standard errors.
    """
    if num_pre < 2:
        return float(math.sqrt(s[0, 0]))
    a = _sd_matrix(num_pre, 0)
    diffs = a @ b[:num_pre]
    ses = np.sqrt(np.einsum("ij,jk,ik->i", a, s[:num_pre, :num_pre], a))
    return float(np.max(diffs + stats.norm.ppf(1 - alpha) * ses))


def _lp_bounds(
    objective: np.ndarray, a: np.ndarray, d: np.ndarray, num_pre: int, beta_pre: np.ndarray
) -> tuple[float, float] | None:
    """``min`` and ``max`` of ``objective' delta`` over ``{A delta <= d, delta_pre = beta_pre}``."""
    n = a.shape[1]
    a_eq = np.zeros((num_pre, n))
    a_eq[:, :num_pre] = np.eye(num_pre)
    out = []
    for sign in (1.0, -1.0):
        res = optimize.linprog(
            sign * objective,
            A_ub=a,
            b_ub=d,
            A_eq=a_eq,
            b_eq=beta_pre,
            bounds=[(None, None)] * n,
            method="highs",
        )
        if res.status != 0:
            return None
        out.append(sign * res.fun)
    return (out[0], out[1])


def identified_set(
    betahat: Any,
    num_pre: int,
    num_post: int,
    *,
    method: Literal["smoothness", "relative_magnitude"] = "smoothness",
    m: float = 0.0,
    l_vec: Any = None,
) -> tuple[float, float]:
    """Identified set of ``theta = l' tau_post`` when ``betahat`` is the population event study.

    Returns
    -------
    (lower, upper)
        ``l' beta_post - max l' delta_post`` and ``l' beta_post - min l' delta_post`` over the
        restriction set with ``delta_pre = beta_pre``.
    """
    b = np.asarray(betahat, dtype=float).ravel()
    _, _, lv = _check_inputs(b, np.eye(len(b)), num_pre, num_post, l_vec)
    obj = np.concatenate([np.zeros(num_pre), lv])
    theta = float(lv @ b[num_pre:])
    if method == "smoothness":
        a = _sd_matrix(num_pre, num_post)
        res = _lp_bounds(obj, a, np.full(len(a), m), num_pre, b[:num_pre])
        if res is None:
            raise EstimationError("the smoothness restriction is infeasible for these pre-trends")
        return (theta - res[1], theta - res[0])
    if method == "relative_magnitude":
        lows, highs = [], []
        for s, positive in itertools.product(range(-(num_pre - 1), 1), (True, False)):
            a = _rm_matrix(num_pre, num_post, m, s, positive)
            res = _lp_bounds(obj, a, np.zeros(len(a)), num_pre, b[:num_pre])
            if res is not None:
                lows.append(theta - res[1])
                highs.append(theta - res[0])
        if not lows:
            return (theta, theta)
        return (min(lows), max(highs))
    raise InputError(f"method must be 'smoothness' or 'relative_magnitude', not {method!r}")


# ============================================================================ ARP tests
def _construct_gamma(l_vec: np.ndarray) -> np.ndarray:
    """Invertible matrix with first row ``l'`` completed by unit vectors (greedy)."""
    n = len(l_vec)
    rows = [l_vec]
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        if np.linalg.matrix_rank(np.vstack([*rows, e])) > len(rows):
            rows.append(e)
        if len(rows) == n:
            break
    return np.vstack(rows)


def _dual_vertices(sd: np.ndarray, x: np.ndarray, limit: int) -> np.ndarray | None:
    """Vertices of ``{gamma >= 0 : gamma' sd = 1, gamma' X = 0}`` (rows), or ``None`` if too many.

    An empty array means the set is empty (the moment inequalities can always be satisfied).
    """
    m = len(sd)
    if x.shape[1]:
        u, sv, _ = np.linalg.svd(x, full_matrices=False)
        r = int(np.sum(sv > 1e-10 * max(sv[0], 1e-300))) if sv.size else 0
        q = u[:, :r]
    else:
        q = np.empty((m, 0))
    norm = float(np.linalg.norm(sd))
    w = np.column_stack([sd / norm, q])
    p = w.shape[1]
    if np.linalg.matrix_rank(w) < p:
        return np.empty((0, m))
    if math.comb(m, p) > limit:
        return None
    combos = np.array(list(itertools.combinations(range(m), p)), dtype=np.intp)
    wb = w[combos]
    det = np.linalg.det(wb)
    bound = np.prod(np.linalg.norm(wb, axis=2), axis=1)
    ok = np.abs(det) > 1e-10 * bound
    combos, wb = combos[ok], wb[ok]
    rhs = np.zeros((len(wb), p, 1))
    rhs[:, 0, 0] = 1.0
    sol = np.linalg.solve(np.transpose(wb, (0, 2, 1)), rhs)[..., 0]
    feasible = np.all(sol >= -1e-9, axis=1)
    combos, sol = combos[feasible], np.clip(sol[feasible], 0.0, None)
    verts = np.zeros((len(sol), m))
    verts[np.arange(len(sol))[:, None], combos] = sol
    verts /= norm
    if len(verts) > 1:
        scale = float(np.abs(verts).max())
        _, keep = np.unique(np.round(verts / scale, 10), axis=0, return_index=True)
        verts = verts[np.sort(keep)]
    return verts


class _ARPTest:
    """ARP (Andrews, Roth and Pakes 2023) test of ``theta`` for ``Delta = {A delta <= d}``.

    The moments are ``y(theta) = A betahat - d - A_post Gamma^{-1} (theta, nu)' <= 0`` (in
    expectation, for some nuisance ``nu``). The statistic ``eta = min_nu max_j y_j / sd_j`` is the
    value of the dual program ``max gamma'y`` over the vertices of
    ``{gamma >= 0 : gamma'sd = 1, gamma'X = 0}``; conditioning on the optimal vertex gives a
    truncated normal null distribution (the "dual approach" of ARP), with truncation points
    available in closed form from the other vertices.
    """

    def __init__(
        self,
        betahat: np.ndarray,
        sigma: np.ndarray,
        num_pre: int,
        l_vec: np.ndarray,
        a: np.ndarray,
        d: np.ndarray,
        rows: np.ndarray,
        alpha: float,
        hybrid: str,
        kappa: float,
        lf_sims: int,
        seed: int,
        vertex_limit: int = MAX_VERTEX_CANDIDATES,
    ) -> None:
        num_post = len(l_vec)
        gamma_inv = np.linalg.inv(_construct_gamma(l_vec))
        ag = a[:, num_pre:] @ gamma_inv
        y_all = a @ betahat - d
        s_all = a @ sigma @ a.T
        self.y0 = y_all[rows]
        self.a1 = ag[rows, 0]
        self.x = ag[np.ix_(rows, np.arange(1, num_post))]
        self.sigma = s_all[np.ix_(rows, rows)]
        self.sd = np.sqrt(np.clip(np.diag(self.sigma), 0.0, None))
        if np.any(self.sd <= 0):
            raise EstimationError("a moment of the restriction set has zero variance")
        self.alpha = alpha
        self.hybrid = hybrid
        self.kappa = kappa
        self.no_nuisance = num_post == 1
        self.vertices = _dual_vertices(self.sd, self.x, vertex_limit)
        self.lf_cv = math.inf
        if hybrid == "LF":
            rng = np.random.default_rng(seed)
            xi = rng.multivariate_normal(np.zeros(len(self.sd)), self.sigma, size=lf_sims)
            eta = self._eta(xi.T)[0]
            eta = eta[np.isfinite(eta)]
            self.lf_cv = float(np.quantile(eta, 1.0 - kappa)) if eta.size else math.inf

    # ---------------------------------------------------------------- dual program
    def _eta(self, ymat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Statistic and optimal vertex for each column of ``ymat``."""
        n = ymat.shape[1]
        if self.vertices is not None:
            if len(self.vertices) == 0:
                return np.full(n, -np.inf), np.zeros((n, len(self.sd)))
            vals = self.vertices @ ymat
            idx = np.argmax(vals, axis=0)
            return vals[idx, np.arange(n)], self.vertices[idx]
        etas = np.empty(n)
        gams = np.zeros((n, len(self.sd)))
        for j in range(n):
            etas[j], gams[j] = self._lp_max(ymat[:, j])
        return etas, gams

    def _lp_max(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.column_stack([self.sd, self.x])
        rhs = np.zeros(w.shape[1])
        rhs[0] = 1.0
        res = optimize.linprog(
            -q, A_eq=w.T, b_eq=rhs, bounds=[(0, None)] * len(q), method="highs-ds"
        )
        if res.status == 2:
            return -math.inf, np.zeros(len(q))
        if res.status != 0:
            raise EstimationError(f"linear program failed: {res.message}")
        return float(-res.fun), np.asarray(res.x)

    def _truncation(
        self, b: np.ndarray, s: np.ndarray, eta: np.ndarray, sig: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``[vlo, vup]``: the values ``c`` of ``gamma'y`` for which ``gamma`` stays optimal."""
        if self.vertices is not None:
            kmat = b @ self.vertices.T - 1.0
            nmat = -(s @ self.vertices.T)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = nmat / kmat
            vup = np.min(np.where(kmat > 1e-10, ratio, np.inf), axis=1)
            vlo = np.max(np.where(kmat < -1e-10, ratio, -np.inf), axis=1)
            return vlo, vup
        vlo = np.empty(len(eta))
        vup = np.empty(len(eta))
        for j in range(len(eta)):
            vlo[j], vup[j] = self._lp_truncation(b[j], s[j], eta[j], sig[j])
        return vlo, vup

    def _lp_truncation(
        self, b: np.ndarray, s: np.ndarray, eta: float, sig: float
    ) -> tuple[float, float]:
        """Truncation points from the convex piecewise-linear ``g(c) = max_gamma gamma'(s + b c)``.

        ``{c : g(c) = c}`` is ``[vlo, vup]``; from a far point, intersecting the supporting line of
        the optimal vertex with the diagonal converges to the end point in finitely many steps.
        """
        out = []
        for direction in (1.0, -1.0):
            c = eta + direction * max(100.0, 50.0 * sig)
            value, gam = self._lp_max(s + b * c)
            if abs(value - c) <= 1e-9 * max(1.0, abs(c)):
                out.append(direction * math.inf)
                continue
            for _ in range(100):
                slope = float(gam @ b)
                if abs(1.0 - slope) < 1e-14:
                    break
                c_new = float(gam @ s) / (1.0 - slope)
                value, gam = self._lp_max(s + b * c_new)
                c = c_new
                if abs(value - c) <= 1e-9 * max(1.0, abs(c)):
                    break
            out.append(c)
        return (out[1], out[0])

    # ---------------------------------------------------------------- test
    def accept(self, thetas: np.ndarray) -> np.ndarray:
        """Whether each ``theta`` is in the confidence set."""
        thetas = np.atleast_1d(np.asarray(thetas, dtype=float))
        ymat = self.y0[:, None] - self.a1[:, None] * thetas[None, :]
        eta, gam = self._eta(ymat)
        reject = np.zeros(len(thetas), dtype=bool)
        if self.vertices is not None and len(self.vertices) == 0:
            return ~reject
        sig2 = np.einsum("nm,mk,nk->n", gam, self.sigma, gam)
        degenerate = sig2 < np.finfo(float).eps
        reject[degenerate] = eta[degenerate] > 0
        live = ~degenerate
        if self.hybrid == "LF":
            first = live & (eta > self.lf_cv)
            reject |= first
            live &= ~first
            size = (self.alpha - self.kappa) / (1.0 - self.kappa)
        else:
            size = self.alpha
        if not live.any():
            return ~reject
        g, e = gam[live], eta[live]
        sig = np.sqrt(sig2[live])
        b = (g @ self.sigma) / sig2[live][:, None]
        s = ymat[:, live].T - b * e[:, None]
        vlo, vup = self._truncation(b, s, e, sig)
        if self.hybrid == "LF":
            vup = np.minimum(vup, self.lf_cv)
        stat, zlo, zup = e / sig, vlo / sig, vup / sig
        inside = (zlo <= stat) & (stat <= zup)
        cval = np.full(len(stat), np.inf)
        if inside.any():
            lo, up = zlo[inside], zup[inside]
            width = up - lo
            q = np.where(width > 1e-12, truncnorm_ppf(1.0 - size, lo, up), lo)
            if not self.no_nuisance:
                q = np.maximum(q, 0.0)
            cval[inside] = q
        idx = np.flatnonzero(live)
        reject[idx] = inside & (stat > cval)
        return ~reject


def truncnorm_ppf(p: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``p``-quantile of the standard normal truncated to ``[a, b]``, element-wise.

    Inverts ``Phi(x) = (1 - p) Phi(a) + p Phi(b)`` in log space (``log_ndtr`` / ``ndtri_exp``) on
    the side of zero where the interval lies (reflecting intervals with ``a > 0``), so it stays
    accurate far in the tails, like :func:`scipy.stats.truncnorm.ppf` but without its per-call
    overhead.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    q = np.where(flip, 1.0 - p, p)
    with np.errstate(divide="ignore"):
        log_cdf = np.logaddexp(
            np.log1p(-q) + special.log_ndtr(lo), np.log(q) + special.log_ndtr(hi)
        )
    x = np.clip(special.ndtri_exp(log_cdf), lo, hi)
    return np.where(flip, -x, x)


def _ci_from_tests(
    tests: Sequence[_ARPTest],
    bounds: tuple[float, float],
    points: int,
    extend: bool,
) -> tuple[float, float, bool]:
    """Hull of the thetas accepted by any test, with the end points refined by bisection."""

    def accept(th: np.ndarray) -> np.ndarray:
        out = np.zeros(len(th), dtype=bool)
        for t in tests:
            out |= t.accept(th)
        return out

    lb, ub = bounds
    for _ in range(8):
        grid = np.linspace(lb, ub, points)
        acc = accept(grid)
        if not extend or not (acc[0] or acc[-1]) or not acc.any():
            break
        width = ub - lb
        if acc[0]:
            lb -= width
        if acc[-1]:
            ub += width
    if not acc.any():
        return (math.nan, math.nan, False)
    is_open = bool(acc[0] or acc[-1])
    i_lo, i_hi = int(np.argmax(acc)), int(len(acc) - 1 - np.argmax(acc[::-1]))

    def refine(inside: float, outside: float) -> float:
        for _ in range(60):
            if abs(outside - inside) <= 1e-10 * max(1.0, abs(inside)):
                break
            mid = 0.5 * (inside + outside)
            if accept(np.array([mid]))[0]:
                inside = mid
            else:
                outside = mid
        return inside

    low = refine(grid[i_lo], grid[i_lo - 1]) if i_lo > 0 else grid[0]
    high = refine(grid[i_hi], grid[i_hi + 1]) if i_hi < len(grid) - 1 else grid[-1]
    return (float(low), float(high), is_open)


# ============================================================================ FLCI
def _folded_normal_quantile(p: float, mu: float) -> float:
    """``p``-quantile of ``|N(mu, 1)|``."""
    mu = abs(mu)
    return float(
        optimize.brentq(
            lambda q: stats.norm.cdf(q - mu) - stats.norm.cdf(-q - mu) - p,
            0.0,
            mu + 10.0,
            xtol=1e-14,
        )
    )


def flci(
    betahat: Any,
    sigma: Any,
    num_pre: int,
    num_post: int,
    *,
    m: float,
    l_vec: Any = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Optimal fixed-length confidence interval for ``theta = l' tau_post`` under ``Delta^SD(M)``.

    The estimator is affine, ``a' beta_pre + l' beta_post``, with pre-period weights ``a`` chosen
    to minimise the half-length ``cv_alpha(maxbias / sd) * sd`` of the interval, where ``maxbias``
    is the worst-case bias over ``Delta^SD(M)`` and ``cv_alpha(b)`` the ``1 - alpha`` quantile of
    ``|N(b, 1)|`` (Armstrong and Kolesar 2018; HonestDiD ``findOptimalFLCI``). Weights are
    parametrised by their cumulative sums ``z``; the worst-case bias is
    ``M * (c_l + sum_k |z_k|)`` and, for each bound ``h`` on the standard deviation, the smallest
    bias is a convex program solved with SLSQP; the half-length is then minimised over ``h``.

    Returns
    -------
    dict
        ``ci_low``, ``ci_high``, ``estimate``, ``half_length``, ``sd``, ``max_bias``, ``weights``
        (the full vector ``(a, l)``) and ``m``.
    """
    b, s, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec)
    if m < 0:
        raise InputError(f"M must be non-negative, not {m}")
    steps = np.arange(1, num_post + 1, dtype=float)
    c_sum = float(steps @ lv)
    const = (
        sum(abs(float(np.arange(1, k + 1) @ lv[num_post - k :])) for k in range(1, num_post + 1))
        - c_sum
    )
    # a = D z with a_k = z_k - 2 z_{k-1} + z_{k-2} (z_0 = z_{-1} = 0) and z_last = c_sum
    dmat = np.zeros((num_pre, num_pre))
    for k in range(num_pre):
        dmat[k, k] = 1.0
        if k >= 1:
            dmat[k, k - 1] = -2.0
        if k >= 2:
            dmat[k, k - 2] = 1.0
    p_mat = dmat[:, : num_pre - 1]
    a0 = dmat[:, num_pre - 1] * c_sum
    spp, spq, sqq = s[:num_pre, :num_pre], s[:num_pre, num_pre:], s[num_pre:, num_pre:]
    qm = p_mat.T @ spp @ p_mat
    qv = p_mat.T @ (spp @ a0 + spq @ lv)
    r0 = float(a0 @ spp @ a0 + 2.0 * a0 @ spq @ lv + lv @ sqq @ lv)
    base_bias = const + abs(c_sum)

    def var(z: np.ndarray) -> float:
        return float(z @ qm @ z + 2.0 * qv @ z + r0)

    def halflength(bias: float, sd: float) -> float:
        return _folded_normal_quantile(1.0 - alpha, m * bias / sd) * sd if sd > 0 else math.inf

    nz = num_pre - 1
    if nz == 0:
        z_best = np.zeros(0)
    else:
        z_min = -np.linalg.lstsq(qm, qv, rcond=None)[0]
        h_min, h_0 = math.sqrt(max(var(z_min), 0.0)), math.sqrt(r0)

        def min_bias(h: float) -> np.ndarray:
            if h >= h_0:
                return np.zeros(nz)
            if h <= h_min:
                return z_min
            # feasible start on the segment from 0 to z_min where var = h^2
            qa = var(z_min) - r0 - 2.0 * qv @ z_min
            qb = 2.0 * qv @ z_min
            qc = r0 - h * h
            roots = np.roots([qa, qb, qc]) if abs(qa) > 1e-300 else np.array([-qc / qb])
            roots = roots[np.isreal(roots)].real
            roots = roots[(roots >= 0) & (roots <= 1)]
            t0 = min(1.0, float(roots.min()) * 1.0000001) if roots.size else 1.0
            z0 = t0 * z_min
            x0 = np.concatenate([np.maximum(z0, 0), np.maximum(-z0, 0)])

            def con(x: np.ndarray) -> float:
                return (h * h - var(x[:nz] - x[nz:])) / (h * h)

            def con_jac(x: np.ndarray) -> np.ndarray:
                gz = -2.0 * (qm @ (x[:nz] - x[nz:]) + qv) / (h * h)
                return np.concatenate([gz, -gz])

            res = optimize.minimize(
                lambda x: float(x.sum()),
                x0,
                jac=lambda x: np.ones_like(x),
                bounds=[(0, None)] * (2 * nz),
                constraints=[{"type": "ineq", "fun": con, "jac": con_jac}],
                method="SLSQP",
                options={"ftol": 1e-15, "maxiter": 1000},
            )
            x = res.x if res.success or con(res.x) >= -1e-8 else x0
            return x[:nz] - x[nz:]

        def objective(h: float) -> float:
            z = min_bias(h)
            return halflength(base_bias + float(np.abs(z).sum()), math.sqrt(max(var(z), 0.0)))

        if m == 0 or h_0 - h_min <= 1e-14 * h_0:
            z_best = z_min
        else:
            res = optimize.minimize_scalar(
                objective, bounds=(h_min, h_0), method="bounded", options={"xatol": 1e-12 * h_0}
            )
            candidates = [(objective(h_min), h_min), (objective(h_0), h_0), (res.fun, res.x)]
            z_best = min_bias(min(candidates)[1])
    z_full = np.append(z_best, c_sum)
    a = dmat @ z_full
    weights = np.concatenate([a, lv])
    sd = math.sqrt(max(float(weights @ s @ weights), 0.0))
    bias = base_bias + float(np.abs(z_best).sum())
    hl = halflength(bias, sd)
    est = float(weights @ b)
    return {
        "ci_low": est - hl,
        "ci_high": est + hl,
        "estimate": est,
        "half_length": hl,
        "sd": sd,
        "max_bias": m * bias,
        "weights": weights,
        "m": m,
    }


# ============================================================================ results
def original_ci(
    betahat: Any, sigma: Any, num_pre: int, num_post: int, *, l_vec: Any = None, alpha: float = 0.05
) -> tuple[float, float]:
    """Conventional interval for ``l' beta_post`` (valid under exact parallel trends)."""
    b, s, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec)
    est = float(lv @ b[num_pre:])
    se = math.sqrt(float(lv @ s[num_pre:, num_pre:] @ lv))
    z = stats.norm.ppf(1 - alpha / 2)
    return (est - z * se, est + z * se)


@dataclass
class HonestResults:
    """Sensitivity of a DiD conclusion to violations of parallel trends (Rambachan and Roth 2023).

    Attributes
    ----------
    method
        ``"smoothness"`` (``Delta^SD(M)``) or ``"relative_magnitude"`` (``Delta^RM(Mbar)``).
    ci_method
        ``"FLCI"``, ``"C-LF"`` or ``"Conditional"``.
    m, ci_low, ci_high
        The values of ``M`` (or ``Mbar``) and the robust intervals.
    original
        The conventional interval ``(ci_low, ci_high)``.
    estimate
        ``l' beta_post``.
    breakdown
        Smallest ``M`` whose interval contains 0 (refined between grid values); ``None`` when no
        interval on the grid contains 0, ``0.0`` when the original one already does.
    """

    method: str
    ci_method: str
    m: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    original: tuple[float, float]
    estimate: float
    l_vec: np.ndarray
    alpha: float
    num_pre: int
    num_post: int
    breakdown: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows ``m, ci_low, ci_high, method``; the original interval first (``m`` missing)."""
        rows = [
            {
                "m": math.nan,
                "ci_low": self.original[0],
                "ci_high": self.original[1],
                "method": "Original",
            }
        ]
        rows += [
            {"m": float(m), "ci_low": float(lo), "ci_high": float(hi), "method": self.ci_method}
            for m, lo, hi in zip(self.m, self.ci_low, self.ci_high, strict=True)
        ]
        return pd.DataFrame(rows, columns=["m", "ci_low", "ci_high", "method"])

    def records(self) -> list[dict[str, float | None]]:
        """The robust intervals as ``[{"m", "ci_low", "ci_high"}]`` (JSON contract)."""

        def clean(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return [
            {"m": float(m), "ci_low": clean(lo), "ci_high": clean(hi)}
            for m, lo, hi in zip(self.m, self.ci_low, self.ci_high, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "method": self.method,
            "ci_method": self.ci_method,
            "alpha": self.alpha,
            "l_vec": [float(x) for x in self.l_vec],
            "estimate": self.estimate,
            "original": {"ci_low": self.original[0], "ci_high": self.original[1]},
            "robust": self.records(),
            "breakdown": self.breakdown,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Plain-text table."""
        label = "M" if self.method == "smoothness" else "Mbar"
        lines = [
            f"Sensitivity analysis ({self.method}, {self.ci_method}), theta = l'tau_post, "
            f"estimate {self.estimate:.4f}",
            f"{'original':<12}[{self.original[0]:.4f}, {self.original[1]:.4f}]",
        ]
        for m, lo, hi in zip(self.m, self.ci_low, self.ci_high, strict=True):
            lines.append(f"{label + '=' + format(m, '.4g'):<12}[{lo:.4f}, {hi:.4f}]")
        bd = "none on the grid" if self.breakdown is None else f"{self.breakdown:.4g}"
        lines.append(f"Breakdown value ({label} at which the interval first includes 0): {bd}")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, ax: Any = None) -> Any:
        """Sensitivity plot: robust intervals against ``M`` with the original interval at left."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ms = np.asarray(self.m, dtype=float)
        gap = float(np.min(np.diff(np.sort(ms)))) if len(ms) > 1 else 1.0
        x0 = float(ms.min()) - gap
        ax.errorbar(
            [x0],
            [(self.original[0] + self.original[1]) / 2],
            yerr=[[(self.original[1] - self.original[0]) / 2]],
            fmt="none",
            capsize=4,
            color="#c0392b",
            label="Original",
        )
        lo, hi = np.asarray(self.ci_low), np.asarray(self.ci_high)
        ax.errorbar(
            ms,
            (lo + hi) / 2,
            yerr=[(hi - lo) / 2, (hi - lo) / 2],
            fmt="none",
            capsize=4,
            color="#01a2d9",
            label=self.ci_method,
        )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("M" if self.method == "smoothness" else r"$\bar{M}$")
        ax.set_ylabel("confidence interval")
        ax.legend(loc="best", frameon=False)
        return ax


# ============================================================================ honest_did
def _arp_tests(
    b: np.ndarray,
    s: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    method: str,
    m: float,
    alpha: float,
    hybrid: str,
    lf_sims: int,
    seed: int,
    vertex_limit: int,
) -> list[_ARPTest]:
    kappa = alpha / 10.0
    tests = []
    if method == "smoothness":
        a = _sd_matrix(num_pre, num_post)
        rows = _post_rows(a, num_pre) if num_post > 1 else np.arange(len(a))
        tests.append(
            _ARPTest(
                b,
                s,
                num_pre,
                lv,
                a,
                np.full(len(a), m),
                rows,
                alpha,
                hybrid,
                kappa,
                lf_sims,
                seed,
                vertex_limit,
            )
        )
        return tests
    for sh, positive in itertools.product(range(-(num_pre - 1), 1), (True, False)):
        a = _rm_matrix(num_pre, num_post, m, sh, positive)
        rows = _post_rows(a, num_pre)
        tests.append(
            _ARPTest(
                b,
                s,
                num_pre,
                lv,
                a,
                np.zeros(len(a)),
                rows,
                alpha,
                hybrid,
                kappa,
                lf_sims,
                seed,
                vertex_limit,
            )
        )
    return tests


def honest_did(
    betahat: Any,
    sigma: Any,
    num_pre: int,
    num_post: int,
    *,
    method: Literal["smoothness", "relative_magnitude"] = "smoothness",
    m_values: Sequence[float] | None = None,
    l_vec: Any = None,
    alpha: float = 0.05,
    ci_method: str | None = None,
    grid_points: int = 1000,
    grid_bounds: tuple[float, float] | None = None,
    lf_sims: int = 1000,
    seed: int = 0,
    refine_breakdown: bool = True,
    vertex_limit: int = MAX_VERTEX_CANDIDATES,
) -> HonestResults:
    """Robust confidence intervals for ``theta = l' tau_post`` (Rambachan and Roth 2023).

    Parameters
    ----------
    betahat
        Event-study coefficients: ``num_pre`` pre-period ones (earliest first), then ``num_post``
        post-period ones; the reference period is excluded.
    sigma
        Their covariance matrix.
    num_pre, num_post
        Numbers of pre- and post-period coefficients.
    method
        ``"smoothness"`` (``Delta^SD(M)``) or ``"relative_magnitude"`` (``Delta^RM(Mbar)``).
    m_values
        Values of ``M`` / ``Mbar``. Defaults as in HonestDiD: for smoothness ten values from 0 to
        the upper confidence bound of the largest pre-period second difference; for relative
        magnitudes ten values from 0 to 2.
    l_vec
        Weights on the post-period effects (default: the first post period, ``e = 0``).
    alpha
        1 - confidence level.
    ci_method
        Smoothness: ``"FLCI"`` (default), ``"Conditional"`` or ``"C-LF"``; relative magnitudes:
        ``"C-LF"`` (default) or ``"Conditional"``.
    grid_points, grid_bounds
        Grid of ``theta`` values for the ARP intervals (end points are then refined by
        bisection). By default the grid spans the identified set widened by 20 standard errors
        of ``l' beta_post`` and is extended while its ends are accepted; given bounds are used
        as they are (as in HonestDiD, whose default for relative magnitudes is
        ``+-20`` standard errors around zero).
    lf_sims, seed
        Simulations and seed for the least-favourable critical value of the ``C-LF`` hybrid.
    refine_breakdown
        Locate the breakdown value between grid values by bisection.
    vertex_limit
        Largest number of candidate dual vertices enumerated before using linear programming.

    Returns
    -------
    HonestResults
        With ``to_frame()``, ``records()`` (``[{"m", "ci_low", "ci_high"}]``), ``breakdown`` and
        ``plot()``.

    Notes
    -----
    Checked against HonestDiD on its ``BCdata_EventStudy`` example (FLCI, conditional and
    ``C-LF`` intervals agree to about 1e-3, the resolution of HonestDiD's grid and of its
    simulated folded-normal quantile). Two deliberate differences: the ``theta`` grid is centred
    on the identified set (or the FLCI) rather than on zero, and with a single post-period the
    ``C-LF`` second stage uses the size ``(alpha - kappa) / (1 - kappa)`` and truncates at the
    least-favourable critical value, as HonestDiD does with several post-periods (its
    single-post-period code uses ``alpha`` without truncation). The least-favourable critical
    value is simulated, so ``C-LF`` end points can move by a small amount with ``seed``.
    """
    b, s, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, not {alpha}")
    if method not in ("smoothness", "relative_magnitude"):
        raise InputError(f"method must be 'smoothness' or 'relative_magnitude', not {method!r}")
    default_ci = "FLCI" if method == "smoothness" else "C-LF"
    cm = (ci_method or default_ci).upper()
    allowed = {"FLCI", "CONDITIONAL", "C-LF"} if method == "smoothness" else {"CONDITIONAL", "C-LF"}
    if cm not in allowed:
        raise InputError(
            f"ci_method for {method} must be one of {sorted(allowed)}, not {ci_method!r}"
        )
    cm = {"CONDITIONAL": "Conditional"}.get(cm, cm)
    if m_values is None:
        if method == "smoothness":
            m_values = np.linspace(0.0, _sd_upper_bound(b, s, num_pre, 0.05), 10)
        else:
            m_values = np.linspace(0.0, 2.0, 10)
    ms = np.asarray(m_values, dtype=float)
    if np.any(ms < 0):
        raise InputError("M values must be non-negative")
    sd_theta = math.sqrt(float(lv @ s[num_pre:, num_pre:] @ lv))
    notes: list[str] = []

    def interval(m: float, points: int = grid_points, record: bool = True) -> tuple[float, float]:
        if cm == "FLCI":
            res = flci(b, s, num_pre, num_post, m=m, l_vec=lv, alpha=alpha)
            return (res["ci_low"], res["ci_high"])
        hybrid = "LF" if cm == "C-LF" else "ARP"
        tests = _arp_tests(
            b, s, num_pre, num_post, lv, method, m, alpha, hybrid, lf_sims, seed, vertex_limit
        )
        if grid_bounds is not None:
            bounds, extend = (float(grid_bounds[0]), float(grid_bounds[1])), False
        else:
            est = float(lv @ b[num_pre:])
            if method == "smoothness":
                # the identified set at betahat is empty when the pre-trends break the restriction;
                # anchor on the FLCI, which always exists
                anchor = flci(b, s, num_pre, num_post, m=m, l_vec=lv, alpha=alpha)
                lo, hi = anchor["ci_low"], anchor["ci_high"]
            else:
                lo, hi = identified_set(b, num_pre, num_post, method=method, m=m, l_vec=lv)
            bounds = (min(lo, est) - 20 * sd_theta, max(hi, est) + 20 * sd_theta)
            extend = True
        low, high, is_open = _ci_from_tests(tests, bounds, points, extend)
        if record and is_open:
            notes.append(f"interval for M={m:.4g} is open at the end of the theta grid")
        if record and not np.isfinite(low):
            notes.append(f"no value of theta on the grid is accepted for M={m:.4g}")
        return (low, high)

    lows, highs = np.empty(len(ms)), np.empty(len(ms))
    for i, m in enumerate(ms):
        lows[i], highs[i] = interval(float(m))
    original = original_ci(b, s, num_pre, num_post, l_vec=lv, alpha=alpha)

    def covers_zero(lo: float, hi: float) -> bool:
        return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= 0.0 <= hi)

    breakdown: float | None = None
    order = np.argsort(ms)
    for j, i in enumerate(order):
        if covers_zero(lows[i], highs[i]):
            breakdown = float(ms[i])
            if refine_breakdown and j > 0:
                inside, outside = float(ms[i]), float(ms[order[j - 1]])
                for _ in range(30):
                    if inside - outside <= 1e-6 * max(inside, 1e-12):
                        break
                    mid = 0.5 * (inside + outside)
                    if covers_zero(*interval(mid, min(grid_points, 200), record=False)):
                        inside = mid
                    else:
                        outside = mid
                breakdown = inside
            break
    if covers_zero(*original):
        breakdown = 0.0
    return HonestResults(
        method=method,
        ci_method=cm,
        m=ms,
        ci_low=lows,
        ci_high=highs,
        original=original,
        estimate=float(lv @ b[num_pre:]),
        l_vec=lv,
        alpha=alpha,
        num_pre=num_pre,
        num_post=num_post,
        breakdown=breakdown,
        notes=sorted(set(notes)),
    )


def honest_inputs(results: Any, *, ref_period: int = -1) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(betahat, sigma, num_pre, num_post)`` from an event-study ``DiDResults``.

    Needs ``extra["vcov"] = {"rel_time": [...], "matrix": [[...]]}`` (as stored by
    :func:`kinship_eval.did.inference.wild_bootstrap_event_study`). Event times are sorted, the
    reference excluded; pre-periods are ``rel_time < 0``.
    """
    spec = getattr(results, "extra", {}).get("vcov")
    if not isinstance(spec, dict) or getattr(results, "event_study", None) is None:
        raise InputError("the results carry no event study with covariance (extra['vcov'])")
    times = np.asarray(spec["rel_time"], dtype=int)
    mat = np.asarray(spec["matrix"], dtype=float)
    es = results.event_study.set_index("rel_time")
    if np.any((times > ref_period) & (times < 0)):
        raise InputError("HonestDiD needs the reference period immediately before treatment (-1)")
    keep = [i for i in np.argsort(times) if times[i] != ref_period and times[i] in es.index]
    t_sorted = times[keep]
    beta = es.loc[t_sorted, "att"].to_numpy(dtype=float)
    sigma = mat[np.ix_(keep, keep)]
    num_pre = int(np.sum(t_sorted < 0))
    return beta, sigma, num_pre, len(t_sorted) - num_pre


def event_study_inputs(results: Any) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(betahat, sigma, num_pre, num_post)`` from any event-study results that carry a covariance.

    Uses ``extra["vcov"]`` where the estimator stores it (TWFE event study, wild bootstrap event
    study); for Callaway–Sant'Anna results it builds the covariance of the dynamic aggregation from
    its influence functions (``V = IF'IF / n^2``, as R ``did``). CS should be fitted with
    ``base_period="universal"`` so that event time -1 is the reference (HonestDiD's convention);
    that row (estimate 0) is dropped.
    """
    if isinstance(getattr(results, "extra", None), dict) and "vcov" in results.extra:
        return honest_inputs(results)
    aggregate = getattr(results, "aggregate", None)
    if aggregate is None:
        raise InputError(
            f"{getattr(results, 'estimator', 'these')} results carry no event-study covariance; "
            "HonestDiD is available for the event_study and cs estimators"
        )
    dyn = aggregate("dynamic")
    table = dyn.table.reset_index(drop=True)
    infl = np.asarray(dyn.table_influence, dtype=float)
    keep = ~((table["rel_time"] == -1) & (table["att"].abs() < 1e-12))
    if keep.all() and (table["rel_time"] == -1).any():
        raise InputError(
            "HonestDiD needs event time -1 as the reference period: fit cs with "
            "base_period='universal'"
        )
    order = table.loc[keep].sort_values("rel_time").index.to_numpy()
    beta = table.loc[order, "att"].to_numpy(dtype=float)
    n = infl.shape[0]
    sigma = infl[:, order].T @ infl[:, order] / n**2
    num_pre = int((table.loc[order, "rel_time"] < 0).sum())
    return beta, sigma, num_pre, len(order) - num_pre
