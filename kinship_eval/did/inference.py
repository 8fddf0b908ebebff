"""Inference for difference-in-differences with few treated clusters.

The kinship allowance pilot treats 7 of about 150 local authorities. With so few treated
clusters, conventional cluster-robust (CRV1) standard errors are far too small: the variance of
the treatment coefficient is driven by the residuals of the handful of treated clusters, which the
sandwich estimator badly underestimates (MacKinnon and Webb 2017; Conley and Taber 2011). This
module provides the alternatives:

* :func:`wild_cluster_bootstrap` -- the wild cluster restricted (WCR, null imposed) and
  unrestricted (WCU) bootstrap-t of Cameron, Gelbach and Miller (2008), computed as in Roodman,
  MacKinnon, Nielsen and Webb (2019, "fast and wild"): fixed effects are partialled out once and
  every bootstrap statistic is built from cluster-level sums, with full enumeration of the sign
  draws when there are few clusters and a confidence interval by test inversion;
* :func:`wild_bootstrap_did` and :func:`wild_bootstrap_event_study` -- the same on the TWFE
  difference-in-differences and event-study designs;
* :func:`randomization_inference` -- Fisher randomization inference that reassigns the adoption
  dates across units (within strata), for every estimator reachable through
  :func:`kinship_eval.did.estimate.fit`, with a fast linear-algebra path for TWFE and a
  confidence interval by inverting the test under a constant additive effect;
* :func:`placebo_in_space` and :func:`placebo_in_time` -- placebo checks for synthetic control and
  synthetic DiD;
* :func:`check_inference_choice` and :data:`RECOMMENDED_INFERENCE` -- which method to trust for a
  design with a given number of treated clusters.

Conventions
-----------
Bootstrap p-values are symmetric: the share of bootstrap statistics with ``|t*| >= |t|``. Ties
count as exceedances, so with full enumeration the (WCR) p-value is never below ``2 / 2**G``. The
CRV1 small-sample factor is ``G / (G - 1) * (N - 1) / (N - K)``; it cancels from bootstrap
p-values and intervals and only scales the reported standard error and t-statistic.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from kinship_eval.did._demean import demean, factorize
from kinship_eval.did._linalg import group_sums
from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.event_study import check_window, event_dummies
from kinship_eval.did.results import EVENT_STUDY_COLUMNS, DiDResults
from kinship_eval.errors import EstimationError, InferenceWarning, InputError

__all__ = [
    "RECOMMENDED_INFERENCE",
    "InferenceRecommendation",
    "PlaceboResult",
    "WildBootstrapResult",
    "check_inference_choice",
    "demean",
    "placebo_in_space",
    "placebo_in_time",
    "randomization_inference",
    "wild_bootstrap_did",
    "wild_bootstrap_event_study",
    "wild_cluster_bootstrap",
]

WeightType = Literal["rademacher", "webb", "mammen"]

#: Largest number of sign draws that ``full_enumeration=True`` will build.
MAX_ENUMERATION = 2**20
#: Largest number of assignments that exact randomization inference will enumerate.
MAX_EXACT_ASSIGNMENTS = 1_000_000
#: Elements per block when bootstrap or permutation matrices are processed in chunks.
_CHUNK_ELEMENTS = 4_000_000

_SQRT5 = math.sqrt(5.0)
_WEBB_POINTS = np.array(
    [-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)]
)
_RADEMACHER_POINTS = np.array([-1.0, 1.0])
_MAMMEN_LOW = (1.0 - _SQRT5) / 2.0
_MAMMEN_HIGH = (1.0 + _SQRT5) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)


# ============================================================================ fixed effects
def _nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether every level of ``inner`` lies within a single level of ``outer``."""
    frame = pd.DataFrame({"i": inner, "o": outer})
    return bool((frame.groupby("i")["o"].nunique() <= 1).all())


# ============================================================================ bootstrap weights
def _weight_points(kind: str) -> np.ndarray | None:
    if kind == "rademacher":
        return _RADEMACHER_POINTS
    if kind == "webb":
        return _WEBB_POINTS
    return None


def _draw_weights(rng: np.random.Generator, kind: str, n_clusters: int, reps: int) -> np.ndarray:
    """``n_clusters x reps`` matrix of wild-bootstrap weights."""
    if kind == "rademacher":
        return rng.integers(0, 2, size=(n_clusters, reps)).astype(float) * 2.0 - 1.0
    if kind == "webb":
        return _WEBB_POINTS[rng.integers(0, 6, size=(n_clusters, reps))]
    if kind == "mammen":
        low = rng.random((n_clusters, reps)) < _MAMMEN_P_LOW
        return np.where(low, _MAMMEN_LOW, _MAMMEN_HIGH)
    raise InputError(f"weights must be 'rademacher', 'webb' or 'mammen', not {kind!r}")


def _enumerate_weights(kind: str, n_clusters: int) -> np.ndarray:
    """Every equally likely draw of a discrete weight distribution: ``G x m**G``."""
    points = _weight_points(kind)
    if points is None:
        raise InputError(f"full enumeration needs equally likely weights, not {kind!r}")
    m = len(points)
    idx = np.indices((m,) * n_clusters).reshape(n_clusters, -1)
    return points[idx]


def _use_enumeration(kind: str, n_clusters: int, reps: int, option: bool | str) -> bool:
    points = _weight_points(kind)
    if option == "auto":
        if points is None:
            return False
        count = len(points) ** n_clusters
        if kind == "rademacher":
            return n_clusters <= 12 or count <= reps
        return count <= reps
    if option is True:
        if points is None:
            raise InputError("full enumeration is only available for rademacher or webb weights")
        if len(points) ** n_clusters > MAX_ENUMERATION:
            raise InputError(
                f"full enumeration of {len(points)}**{n_clusters} draws is too large "
                f"(limit {MAX_ENUMERATION})"
            )
        return True
    if option is False:
        return False
    raise InputError(f"full_enumeration must be 'auto', True or False, not {option!r}")


# ============================================================================ wild bootstrap
@dataclass
class WildBootstrapResult:
    """Wild cluster bootstrap inference for one coefficient (or linear combination).

    Attributes
    ----------
    estimate
        OLS estimate of the coefficient (with the fixed effects).
    se
        Cluster-robust (CRV1) standard error, with the small-sample factor ``ssc``.
    t_stat
        ``(estimate - null) / se``.
    p_value
        Symmetric bootstrap p-value of ``H0: coefficient = null``.
    ci_low, ci_high
        Confidence interval at ``level`` by inverting the bootstrap test (may be infinite when the
        test cannot reject any value on one side, which happens with very few treated clusters).
    reps
        Number of bootstrap draws used (``m**G`` under full enumeration).
    weights
        Bootstrap weight distribution.
    enumerated
        Whether every possible draw was used.
    impose_null
        ``True`` for WCR (restricted), ``False`` for WCU.
    n_obs, n_clusters, ssc
        Sample size, number of clusters and CRV1 small-sample factor.
    """

    estimate: float
    se: float
    t_stat: float
    p_value: float
    ci_low: float
    ci_high: float
    reps: int
    weights: str
    enumerated: bool
    impose_null: bool
    level: float
    null: float
    n_obs: int
    n_clusters: int
    ssc: float
    _p_function: Callable[[float], float] = field(
        repr=False, compare=False, default=lambda b: math.nan
    )

    @property
    def method(self) -> str:
        """``"WCR"`` (null imposed) or ``"WCU"``."""
        return "WCR" if self.impose_null else "WCU"

    def p_value_at(self, value: float) -> float:
        """Bootstrap p-value of ``H0: coefficient = value`` with the same draws."""
        return float(self._p_function(float(value)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly values."""
        out = {
            "estimate": self.estimate,
            "se": self.se,
            "t_stat": self.t_stat,
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "reps": self.reps,
            "weights": self.weights,
            "enumerated": self.enumerated,
            "method": self.method,
            "level": self.level,
            "n_clusters": self.n_clusters,
        }
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }


@dataclass
class _Design:
    """A regression with the fixed effects partialled out, ready for bootstrapping."""

    y: np.ndarray
    X: np.ndarray
    clusters: np.ndarray
    n_clusters: int
    fixed_effects: tuple[np.ndarray, ...]
    xtx_inv: np.ndarray
    beta: np.ndarray
    resid: np.ndarray
    ssc: float
    n_obs: int

    @property
    def k(self) -> int:
        return int(self.X.shape[1])


def _build_design(
    y: Any,
    X: Any,
    clusters: Any,
    fixed_effects: Any,
    small_sample_k: int | None,
    keep: int | None = None,
) -> _Design:
    yv = np.asarray(y, dtype=float).ravel()
    Xm = np.asarray(X, dtype=float)
    if Xm.ndim == 1:
        Xm = Xm[:, None]
    n = len(yv)
    if Xm.shape[0] != n:
        raise InputError("y and X must have the same number of rows")
    if not (np.all(np.isfinite(yv)) and np.all(np.isfinite(Xm))):
        raise InputError("y and X must be finite (drop missing rows first)")
    g, G = factorize(clusters)
    if len(g) != n:
        raise InputError("clusters must have one entry per observation")
    if G < 2:
        raise EstimationError("the wild cluster bootstrap needs at least two clusters")
    if fixed_effects is None:
        fes: tuple[np.ndarray, ...] = ()
    elif isinstance(fixed_effects, (tuple, list)):
        fes = tuple(np.asarray(f) for f in fixed_effects)
    else:
        fes = (np.asarray(fixed_effects),)
    if fes:
        yt = demean(yv, *fes)
        Xt = demean(Xm, *fes)
    else:
        yt, Xt = yv, Xm
    norms = np.sqrt((Xt**2).sum(axis=0))
    scale = np.maximum(np.sqrt((Xm**2).sum(axis=0)), 1.0)
    absorbed = norms <= 1e-10 * scale
    if keep is not None and absorbed[keep]:
        raise EstimationError("the tested regressor is absorbed by the fixed effects")
    xtx = Xt.T @ Xt
    rank = np.linalg.matrix_rank(xtx)
    if rank < Xt.shape[1] and not absorbed.any():
        raise EstimationError("the regressors are collinear (after partialling out fixed effects)")
    if absorbed.any():
        # absorbed columns (e.g. a constant next to fixed effects) carry no information
        Xt = Xt.copy()
        Xt[:, absorbed] = 0.0
        xtx = Xt.T @ Xt
    xtx_inv = np.linalg.pinv(xtx) if absorbed.any() else np.linalg.inv(xtx)
    beta = xtx_inv @ (Xt.T @ yt)
    resid = yt - Xt @ beta
    if small_sample_k is None:
        k_eff = int((~absorbed).sum())
        if fes:
            k_eff += 1
            for fe in fes:
                codes, levels = factorize(fe)
                if not _nested(codes, g):
                    k_eff += levels - 1
        small_sample_k = k_eff
    if n - small_sample_k <= 0:
        raise EstimationError("too few observations for the number of parameters")
    ssc = G / (G - 1) * (n - 1) / (n - small_sample_k)
    return _Design(
        y=yt,
        X=Xt,
        clusters=g,
        n_clusters=G,
        fixed_effects=fes,
        xtx_inv=xtx_inv,
        beta=beta,
        resid=resid,
        ssc=ssc,
        n_obs=n,
    )


def _chunks(total: int, per_item: int) -> Iterator[slice]:
    step = max(1, min(total, _CHUNK_ELEMENTS // max(per_item, 1)))
    for start in range(0, total, step):
        yield slice(start, min(total, start + step))


@dataclass
class _BootstrapStats:
    """Per-draw sums from which every bootstrap t-statistic (at any null value) follows."""

    estimate: float
    se: float
    ssc: float
    impose_null: bool
    n0: np.ndarray
    n1: np.ndarray
    q00: np.ndarray
    q01: np.ndarray
    q11: np.ndarray

    def p_value(self, null: float) -> float:
        if not np.isfinite(self.se) or self.se <= 0:
            return math.nan
        t = (self.estimate - null) / self.se
        if self.impose_null:
            num = self.n0 - null * self.n1
            den2 = self.q00 - 2.0 * null * self.q01 + null * null * self.q11
        else:
            num = self.n0
            den2 = self.q00
        with np.errstate(divide="ignore", invalid="ignore"):
            t_boot = num / np.sqrt(self.ssc * np.maximum(den2, 0.0))
        t_boot = np.where(np.isfinite(t_boot), np.abs(t_boot), np.where(num != 0, np.inf, 0.0))
        tol = 1e-10 * max(1.0, abs(t))
        return float(np.mean(t_boot >= abs(t) - tol))


def _bootstrap_stats(
    design: _Design, contrast: np.ndarray, draws: np.ndarray, impose_null: bool
) -> _BootstrapStats:
    """Cluster-level algebra of the wild cluster bootstrap-t (Roodman et al. 2019).

    With ``w = X (X'X)^{-1} r`` the influence of each observation on ``r'beta`` and a bootstrap
    draw ``v`` (one weight per cluster), the bootstrap numerator is ``sum_g v_g c_g`` and the
    bootstrap score of cluster ``g`` is ``sum_h T_gh v_h``, where ``T`` (G x G) accounts for
    re-estimating the regression, fixed effects included, on every bootstrap sample. Under WCR
    the residuals are affine in the null value, so every quantity is stored as two parts.
    """
    X, g, G = design.X, design.clusters, design.n_clusters
    L = X @ design.xtx_inv
    w = L @ contrast
    rho = float(w @ w)
    if rho <= 0:
        raise EstimationError("the tested combination of coefficients is not identified")
    estimate = float(contrast @ design.beta)
    score = group_sums(w * design.resid, g, G)
    se = math.sqrt(design.ssc * float(score @ score))
    # WCR residuals are affine in the null value b0: u(b0) = parts[0] - b0 * parts[1]
    parts = [design.resid + estimate * w / rho, w / rho] if impose_null else [design.resid]
    a_mat = group_sums(w[:, None] * L, g, G)
    c_list, t_list = [], []
    for u in parts:
        c = group_sums(w * u, g, G)
        s_mat = group_sums(X * u[:, None], g, G)
        if design.fixed_effects:
            # F[g, h] = sum_{i in g} w_i (M_FE (u * 1[cluster h]))_i, built a block of clusters
            # at a time so that memory stays O(N x block)
            f_mat = np.empty((G, G))
            for block in _chunks(G, len(u)):
                rows = np.flatnonzero((g >= block.start) & (g < block.stop))
                cols = np.zeros((len(u), block.stop - block.start))
                cols[rows, g[rows] - block.start] = u[rows]
                f_mat[:, block] = group_sums(w[:, None] * demean(cols, *design.fixed_effects), g, G)
        else:
            f_mat = np.diag(c)
        c_list.append(c)
        t_list.append(f_mat - a_mat @ s_mat.T)
    reps = draws.shape[1]
    n0 = np.empty(reps)
    n1 = np.zeros(reps)
    q00 = np.empty(reps)
    q01 = np.zeros(reps)
    q11 = np.zeros(reps)
    for sl in _chunks(reps, G):
        v = draws[:, sl]
        z0 = t_list[0] @ v
        n0[sl] = c_list[0] @ v
        q00[sl] = np.einsum("ij,ij->j", z0, z0)
        if impose_null:
            z1 = t_list[1] @ v
            n1[sl] = c_list[1] @ v
            q01[sl] = np.einsum("ij,ij->j", z0, z1)
            q11[sl] = np.einsum("ij,ij->j", z1, z1)
    return _BootstrapStats(
        estimate=estimate,
        se=se,
        ssc=design.ssc,
        impose_null=impose_null,
        n0=n0,
        n1=n1,
        q00=q00,
        q01=q01,
        q11=q11,
    )


def _invert(
    p_function: Callable[[float], float], estimate: float, scale: float, alpha: float
) -> tuple[float, float]:
    """Confidence interval ``{b: p(b) > alpha}`` by bracketing and bisection on each side."""
    if not (np.isfinite(estimate) and np.isfinite(scale) and scale > 0):
        return (math.nan, math.nan)
    if not p_function(estimate) > alpha:
        return (math.nan, math.nan)
    bounds = []
    for direction in (-1.0, 1.0):
        inner = estimate
        step = scale
        outer = math.nan
        for _ in range(60):
            candidate = estimate + direction * step
            if p_function(candidate) > alpha:
                inner = candidate
                step *= 2.0
            else:
                outer = candidate
                break
        if math.isnan(outer):
            bounds.append(direction * math.inf)
            continue
        tol = 1e-9 * max(scale, abs(estimate) * 1e-3)
        for _ in range(200):
            if abs(outer - inner) <= tol:
                break
            mid = 0.5 * (inner + outer)
            if p_function(mid) > alpha:
                inner = mid
            else:
                outer = mid
        bounds.append(inner)
    return (float(bounds[0]), float(bounds[1]))


def wild_cluster_bootstrap(
    y: Any,
    X: Any,
    clusters: Any,
    *,
    param_index: int = 0,
    fixed_effects: Any = None,
    weights: WeightType = "rademacher",
    reps: int = 9999,
    impose_null: bool = True,
    seed: int | None = None,
    level: float = 0.95,
    full_enumeration: bool | Literal["auto"] = "auto",
    null: float = 0.0,
    contrast: Sequence[float] | np.ndarray | None = None,
    small_sample_k: int | None = None,
) -> WildBootstrapResult:
    """Wild cluster bootstrap-t test and confidence interval for one regression coefficient.

    Parameters
    ----------
    y
        Outcome, length ``N``.
    X
        ``N x k`` regressors (include a constant column when there are no fixed effects).
    clusters
        Cluster codes, length ``N``.
    param_index
        Column of ``X`` whose coefficient is tested.
    fixed_effects
        ``None``, one array of codes, or a pair ``(unit_codes, time_codes)``; the effects are
        partialled out of ``y`` and ``X`` once (Frisch-Waugh-Lovell). Bootstrap samples are
        re-estimated with the same effects, so results equal those of the regression with
        explicit dummy variables.
    weights
        ``"rademacher"`` (+-1), ``"webb"`` (six-point; recommended with few clusters) or
        ``"mammen"``.
    reps
        Number of bootstrap draws when not enumerating.
    impose_null
        ``True`` for the restricted bootstrap (WCR), ``False`` for the unrestricted one (WCU).
    seed
        Seed of :func:`numpy.random.default_rng`.
    level
        Confidence level of the interval.
    full_enumeration
        ``"auto"`` enumerates all ``2**G`` Rademacher draws when ``G <= 12`` or ``2**G <= reps``
        (all ``6**G`` Webb draws when ``6**G <= reps``); ``True`` forces it, ``False`` never.
    null
        Value of the coefficient under the null hypothesis tested by ``p_value``.
    contrast
        Optional vector ``r`` (length ``k``): test ``r'beta = null`` instead of one coefficient.
    small_sample_k
        ``K`` in the CRV1 factor ``G/(G-1) (N-1)/(N-K)``. By default the number of regressors,
        plus one and the levels (minus one) of every fixed effect not nested within the clusters.

    Returns
    -------
    WildBootstrapResult

    Notes
    -----
    The cost is ``O(N G)`` to build cluster-level quantities (one fixed-effect projection of an
    ``N x G`` matrix) and ``O(G^2 B)`` for ``B`` draws; p-values at any other null value reuse the
    same per-draw sums in ``O(B)``, which makes test inversion cheap.
    """
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, not {level}")
    if reps < 1:
        raise InputError(f"reps must be positive, not {reps}")
    design = _build_design(
        y,
        X,
        clusters,
        fixed_effects,
        small_sample_k,
        keep=None if contrast is not None else param_index,
    )
    if contrast is None:
        if not 0 <= param_index < design.k:
            raise InputError(f"param_index {param_index} is outside 0..{design.k - 1}")
        r = np.zeros(design.k)
        r[param_index] = 1.0
    else:
        r = np.asarray(contrast, dtype=float).ravel()
        if len(r) != design.k:
            raise InputError(f"contrast must have {design.k} entries")
    enumerated = _use_enumeration(weights, design.n_clusters, reps, full_enumeration)
    if enumerated:
        draws = _enumerate_weights(weights, design.n_clusters)
    else:
        draws = _draw_weights(np.random.default_rng(seed), weights, design.n_clusters, reps)
    return _wild_from_draws(design, r, draws, impose_null, level, null, weights, enumerated)


def _wild_from_draws(
    design: _Design,
    contrast: np.ndarray,
    draws: np.ndarray,
    impose_null: bool,
    level: float,
    null: float,
    weights: str,
    enumerated: bool,
) -> WildBootstrapResult:
    stats_ = _bootstrap_stats(design, contrast, draws, impose_null)
    p_function = stats_.p_value
    ci = _invert(p_function, stats_.estimate, stats_.se, 1.0 - level)
    t_stat = (stats_.estimate - null) / stats_.se if stats_.se > 0 else math.nan
    return WildBootstrapResult(
        estimate=stats_.estimate,
        se=stats_.se,
        t_stat=float(t_stat),
        p_value=p_function(null),
        ci_low=ci[0],
        ci_high=ci[1],
        reps=int(draws.shape[1]),
        weights=weights,
        enumerated=enumerated,
        impose_null=impose_null,
        level=level,
        null=null,
        n_obs=design.n_obs,
        n_clusters=design.n_clusters,
        ssc=design.ssc,
        _p_function=p_function,
    )


def _crv1_vcov(design: _Design) -> np.ndarray:
    scores = group_sums(design.X * design.resid[:, None], design.clusters, design.n_clusters)
    return design.ssc * design.xtx_inv @ (scores.T @ scores) @ design.xtx_inv


# ============================================================================ DiD wrappers
def wild_bootstrap_did(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    covariates: Sequence[str] = (),
    reps: int = 9999,
    weights: WeightType = "webb",
    seed: int | None = None,
    level: float = 0.95,
    anticipation: int = 0,
    impose_null: bool = True,
    full_enumeration: bool | Literal["auto"] = "auto",
) -> DiDResults:
    """TWFE difference-in-differences with wild cluster bootstrap inference (clusters = units).

    The coefficient is the TWFE ``beta`` of :func:`kinship_eval.did.twfe.twfe` (unit and period
    effects, optional covariates); the p-value and interval come from the wild cluster bootstrap
    (WCR with Webb weights by default), the standard error is CRV1.

    Returns
    -------
    DiDResults
        ``estimator="twfe"``, ``inference="wild_bootstrap"``; ``extra`` holds the t-statistic,
        the number of draws, whether they were enumerated, the weights and ``WCR``/``WCU``.
    """
    panel = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=covariates,
    )
    frame = panel.frame
    treated = panel.treated_indicator(anticipation).to_numpy()
    X = np.column_stack([treated, *(frame[c].to_numpy(dtype=float) for c in panel.covariates)])
    res = wild_cluster_bootstrap(
        frame["y"].to_numpy(dtype=float),
        X,
        frame["unit"].to_numpy(),
        param_index=0,
        fixed_effects=(frame["unit"].to_numpy(), frame["time"].to_numpy()),
        weights=weights,
        reps=reps,
        impose_null=impose_null,
        seed=seed,
        level=level,
        full_enumeration=full_enumeration,
    )
    notes = check_inference_choice(
        "wild_bootstrap",
        panel.n_treated_units,
        panel.n_units,
        weights=weights,
        impose_null=impose_null,
        warn=False,
    )
    if not (math.isfinite(res.ci_low) and math.isfinite(res.ci_high)):
        notes.append(
            "the bootstrap test cannot reject values far from the estimate on at least one side: "
            "the confidence interval is unbounded"
        )
    return DiDResults(
        estimator="twfe",
        outcome=panel.outcome,
        att=res.estimate,
        se=res.se,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        p_value=res.p_value,
        **panel.sizes,
        inference="wild_bootstrap",
        level=level,
        settings={
            "anticipation": anticipation,
            "covariates": list(panel.covariates),
            "reps": reps,
            "weights": weights,
            "impose_null": impose_null,
            "seed": seed,
            "full_enumeration": full_enumeration,
        },
        notes=notes,
        extra={
            "t_stat": res.t_stat,
            "bootstrap": res.method,
            "bootstrap_reps": res.reps,
            "enumerated": res.enumerated,
            "bootstrap_weights": res.weights,
            "n_clusters": res.n_clusters,
        },
    )


def wild_bootstrap_event_study(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    leads: int = 4,
    lags: int = 4,
    ref_period: int = -1,
    bin_endpoints: bool = True,
    covariates: Sequence[str] = (),
    reps: int = 9999,
    weights: WeightType = "webb",
    seed: int | None = None,
    level: float = 0.95,
    impose_null: bool = True,
    full_enumeration: bool | Literal["auto"] = "auto",
) -> DiDResults:
    """TWFE event study with wild cluster bootstrap inference for every event-time coefficient.

    The design is that of :func:`kinship_eval.did.event_study.event_study`: event-time dummies
    ``-leads..lags`` (endpoints binned by default) relative to ``ref_period``, unit and period
    effects, clusters = units. Every coefficient, and the average of the post-period
    coefficients (``att``), gets its own bootstrap test and interval; all use the same draws.

    Returns
    -------
    DiDResults
        ``estimator="event_study"``, ``inference="wild_bootstrap"``. ``event_study`` has the usual
        columns plus ``p_value``; ``extra["vcov"]`` holds the CRV1 covariance of the estimated
        event-time coefficients (``{"rel_time": [...], "matrix": [[...]]}``, the input of
        :func:`kinship_eval.did.pretrends.honest_did`) and ``extra["pretrend_wald"]`` the CRV1
        joint Wald test of the leads.
    """
    from kinship_eval.did.pretrends import joint_pretrend_test

    check_window(leads, lags, ref_period)
    panel = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=covariates,
    )
    frame = panel.frame
    estimated, dummies = event_dummies(frame, leads, lags, ref_period, bin_endpoints)
    if not estimated:
        raise EstimationError("no event-time dummy can be estimated")
    X = np.column_stack([dummies, *(frame[c].to_numpy(dtype=float) for c in panel.covariates)])
    fes = (frame["unit"].to_numpy(), frame["time"].to_numpy())
    design = _build_design(frame["y"].to_numpy(dtype=float), X, frame["unit"].to_numpy(), fes, None)
    enumerated = _use_enumeration(weights, design.n_clusters, reps, full_enumeration)
    if enumerated:
        draws = _enumerate_weights(weights, design.n_clusters)
    else:
        draws = _draw_weights(np.random.default_rng(seed), weights, design.n_clusters, reps)
    vcov = _crv1_vcov(design)
    window = [e for e in range(-leads, lags + 1)]
    rows = []
    for e in window:
        if e == ref_period:
            rows.append(
                {
                    "rel_time": e,
                    "att": 0.0,
                    "se": math.nan,
                    "ci_low": math.nan,
                    "ci_high": math.nan,
                    "p_value": math.nan,
                }
            )
            continue
        if e not in estimated:
            rows.append(
                {
                    "rel_time": e,
                    "att": math.nan,
                    "se": math.nan,
                    "ci_low": math.nan,
                    "ci_high": math.nan,
                    "p_value": math.nan,
                }
            )
            continue
        r = np.zeros(design.k)
        r[estimated.index(e)] = 1.0
        res = _wild_from_draws(design, r, draws, impose_null, level, 0.0, weights, enumerated)
        rows.append(
            {
                "rel_time": e,
                "att": res.estimate,
                "se": res.se,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "p_value": res.p_value,
            }
        )
    es = pd.DataFrame(rows)[[*EVENT_STUDY_COLUMNS, "p_value"]]
    post = [e for e in range(0, lags + 1) if e in estimated]
    if not post:
        raise EstimationError("no post-treatment event time is observed")
    r = np.zeros(design.k)
    for e in post:
        r[estimated.index(e)] = 1.0 / len(post)
    overall = _wild_from_draws(design, r, draws, impose_null, level, 0.0, weights, enumerated)
    k_es = len(estimated)
    lead_pos = [i for i, e in enumerate(estimated) if e < 0 and e >= -leads]
    if lead_pos:
        wald = joint_pretrend_test(design.beta[lead_pos], vcov[np.ix_(lead_pos, lead_pos)])
    else:
        wald = {"stat": math.nan, "df": 0, "p_value": math.nan}
    notes = [
        f"TWFE event study, reference period e={ref_period}; wild cluster bootstrap "
        f"({overall.method}, {weights} weights, {overall.reps} draws"
        + (", enumerated" if enumerated else "")
        + ") for each coefficient",
        f"att is the simple average of the post-treatment coefficients e=0..{lags}",
    ]
    notes += check_inference_choice(
        "wild_bootstrap",
        panel.n_treated_units,
        panel.n_units,
        weights=weights,
        impose_null=impose_null,
        warn=False,
    )
    return DiDResults(
        estimator="event_study",
        outcome=panel.outcome,
        att=overall.estimate,
        se=overall.se,
        ci_low=overall.ci_low,
        ci_high=overall.ci_high,
        p_value=overall.p_value,
        **panel.sizes,
        inference="wild_bootstrap",
        level=level,
        event_study=es,
        settings={
            "leads": leads,
            "lags": lags,
            "ref_period": ref_period,
            "bin_endpoints": bin_endpoints,
            "covariates": list(panel.covariates),
            "reps": reps,
            "weights": weights,
            "impose_null": impose_null,
            "seed": seed,
        },
        notes=notes,
        extra={
            "pretrend_wald": wald,
            "vcov": {
                "rel_time": estimated,
                "matrix": vcov[:k_es, :k_es].tolist(),
            },
            "bootstrap": overall.method,
            "bootstrap_reps": overall.reps,
            "enumerated": enumerated,
            "bootstrap_weights": weights,
        },
    )


# ============================================================================ randomization
def _multinomial(values: np.ndarray) -> int:
    """Number of distinct orderings of a multiset."""
    _, counts = np.unique(values, return_counts=True)
    total, left = 1, len(values)
    for c in counts:
        total *= math.comb(left, int(c))
        left -= int(c)
    return total


def _arrangements(values: np.ndarray) -> np.ndarray:
    """Every distinct ordering of a multiset, one per row."""
    distinct, counts = np.unique(values, return_counts=True)
    order = np.argsort(counts)  # place the rarest values first
    distinct, counts = distinct[order], counts[order]
    n = len(values)
    rows: list[np.ndarray] = []

    def place(free: tuple[int, ...], k: int, current: np.ndarray) -> None:
        if k == len(distinct) - 1:
            out = current.copy()
            out[list(free)] = distinct[k]
            rows.append(out)
            return
        for chosen in itertools.combinations(free, int(counts[k])):
            nxt = current.copy()
            nxt[list(chosen)] = distinct[k]
            chosen_set = set(chosen)
            place(tuple(p for p in free if p not in chosen_set), k + 1, nxt)

    place(tuple(range(n)), 0, np.empty(n, dtype=values.dtype))
    return np.array(rows)


def _assignments(
    unit_g: np.ndarray,
    strata_codes: np.ndarray,
    reps: int,
    exact: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """Placebo first-treated periods (``n x U``): the adoption dates permuted within strata."""
    groups = [np.flatnonzero(strata_codes == s) for s in np.unique(strata_codes)]
    if exact:
        per_stratum = [_arrangements(unit_g[idx]) for idx in groups]
        total = math.prod(len(a) for a in per_stratum)
        out = np.empty((total, len(unit_g)), dtype=unit_g.dtype)
        for row, combo in enumerate(itertools.product(*[range(len(a)) for a in per_stratum])):
            for idx, arr, j in zip(groups, per_stratum, combo, strict=True):
                out[row, idx] = arr[j]
        return out
    out = np.empty((reps, len(unit_g)), dtype=unit_g.dtype)
    for idx in groups:
        block = np.tile(unit_g[idx], (reps, 1))
        out[:, idx] = rng.permuted(block, axis=1)
    return out


class _TwfeFast:
    """TWFE coefficients for many treatment assignments at once (Frisch-Waugh-Lovell).

    For an assignment with treatment indicator ``d``, ``beta = d'M y / d'M d`` where ``M``
    projects off the unit and period effects and the covariates; ``M y`` is computed once and
    ``M d`` by one fixed-effect projection of a block of indicator columns.
    """

    def __init__(self, panel: DiDData, anticipation: int) -> None:
        frame = panel.frame
        self.unit_codes, self.n_units = factorize(frame["unit"].to_numpy())
        self.fes = (frame["unit"].to_numpy(), frame["time"].to_numpy())
        self.times = frame["time"].to_numpy()
        self.anticipation = anticipation
        y = demean(frame["y"].to_numpy(dtype=float), *self.fes)
        if panel.covariates:
            xc = demean(frame[list(panel.covariates)].to_numpy(dtype=float), *self.fes)
            self.xc = xc
            self.xc_inv = np.linalg.pinv(xc.T @ xc)
            y = y - xc @ (self.xc_inv @ (xc.T @ y))
        else:
            self.xc = None
            self.xc_inv = None
        self.my = y

    def indicators(self, assignment: np.ndarray) -> np.ndarray:
        """``N x n`` treatment indicators for unit-level first-treated periods ``n x U``."""
        g = assignment[:, self.unit_codes].T
        return ((g > 0) & (self.times[:, None] >= g - self.anticipation)).astype(float)

    def project(self, d: np.ndarray) -> np.ndarray:
        md = demean(d, *self.fes)
        if self.xc is not None:
            md = md - self.xc @ (self.xc_inv @ (self.xc.T @ md))
        return md

    def estimates(
        self, assignment: np.ndarray, other: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients on ``y`` and (optionally) on the outcome ``other`` for each assignment."""
        n = len(assignment)
        est = np.empty(n)
        slope = np.full(n, math.nan)
        m_other = None if other is None else self.project(other)
        for sl in _chunks(n, len(self.times)):
            d = self.indicators(assignment[sl])
            md = self.project(d)
            den = np.einsum("ij,ij->j", d, md)
            with np.errstate(divide="ignore", invalid="ignore"):
                est[sl] = (d.T @ self.my) / den
                if m_other is not None:
                    slope[sl] = (d.T @ m_other) / den
        return est, slope


def _unit_table(panel: DiDData, data: pd.DataFrame, unit: str, strata: str | None) -> pd.DataFrame:
    units = panel.frame.groupby("unit", sort=True)["g"].first()
    table = pd.DataFrame({"unit": units.index, "g": units.to_numpy()})
    if strata is None:
        table["stratum"] = 0
        return table
    if strata not in data.columns:
        raise InputError(f"strata column {strata!r} not found", column=strata)
    per_unit = data.groupby(unit, sort=True)[strata]
    if (per_unit.nunique(dropna=False) > 1).any():
        raise InputError("strata must be constant within each unit", column=strata)
    mapping = per_unit.first()
    table["stratum"] = pd.factorize(table["unit"].map(mapping), sort=True)[0]
    return table


def _placebo_fits(
    estimator: str,
    data: pd.DataFrame,
    names: dict[str, str],
    units: np.ndarray,
    assignments: np.ndarray,
    options: dict[str, Any],
    outcome_override: np.ndarray | None = None,
) -> np.ndarray:
    """ATT of ``estimator`` for each placebo assignment (NaN where the fit fails).

    One copy of ``data`` is made; each assignment overwrites its first-treated column (the
    estimators validate into frames of their own and never modify their input).
    """
    from kinship_eval.did.estimate import fit

    frame = data.copy()
    if outcome_override is not None:
        frame[names["outcome"]] = outcome_override
    row_unit = pd.Index(units).get_indexer(data[names["unit"]])
    out = np.full(len(assignments), math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, g in enumerate(assignments):
            frame[names["first_treated"]] = g[row_unit]
            try:
                out[i] = fit(estimator, frame, **names, **options).att
            except (EstimationError, InputError, np.linalg.LinAlgError, ValueError):
                continue
    return out


def randomization_inference(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    estimator: str = "twfe",
    reps: int = 5000,
    strata: str | None = None,
    seed: int | None = None,
    level: float = 0.95,
    exact: bool | Literal["auto"] = "auto",
    ci: bool = True,
    **estimator_options: Any,
) -> DiDResults:
    """Fisher randomization inference: reassign adoption dates across units and re-estimate.

    Under the sharp null of no effect for any unit, the outcomes do not depend on which units were
    treated, so re-estimating with the first-treated periods permuted across units (keeping the
    number of treated units and the set of adoption dates, within strata when given) traces the
    null distribution of the estimate. The p-value is the share of placebo estimates at least as
    large in absolute value as the observed one.

    Parameters
    ----------
    data
        Long panel.
    unit, time, outcome, first_treated
        Column names.
    estimator
        Any name accepted by :func:`kinship_eval.did.estimate.fit`. ``"twfe"`` without regression
        weights uses an exact linear-algebra shortcut (thousands of permutations per second).
    reps
        Number of random permutations (Monte Carlo).
    strata
        Optional unit-level column (e.g. region): dates are only permuted within strata.
    seed
        Seed of :func:`numpy.random.default_rng`.
    level
        Confidence level of the interval.
    exact
        ``"auto"`` enumerates every distinct assignment when there are at most ``reps`` of them;
        ``True`` forces enumeration, ``False`` always samples.
    ci
        Compute the interval by test inversion under a constant additive effect ``tau``
        (subtract ``tau * D`` from the treated outcomes and re-test). It needs the estimator to be
        linear in the outcome (TWFE, event-study, CS, Sun-Abraham, imputation; checked
        numerically); otherwise it is skipped with a note.
    **estimator_options
        Passed to :func:`~kinship_eval.did.estimate.fit` (e.g. ``covariates``,
        ``control_group``). For estimators with costly built-in inference choose its cheapest
        variance option: only the point estimate of each placebo fit is used.

    Returns
    -------
    DiDResults
        ``att`` is the observed estimate, ``p_value`` the randomization p-value (exact, or
        ``(1 + #{|placebo| >= |observed|}) / (1 + reps)``), ``se`` the standard deviation of the
        placebo estimates, ``inference="randomization"``; ``extra`` records the number of
        assignments and whether they were enumerated.
    """
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, not {level}")
    if reps < 1:
        raise InputError(f"reps must be positive, not {reps}")
    from kinship_eval.did.estimate import fit

    covariates = tuple(estimator_options.get("covariates", ()))
    panel = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=covariates,
    )
    names = {"unit": unit, "time": time, "outcome": outcome, "first_treated": first_treated}
    options = dict(estimator_options)
    options.setdefault("level", level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        observed = fit(estimator, data, **names, **options)
    att = float(observed.att)
    table = _unit_table(panel, data, unit, strata)
    units = table["unit"].to_numpy()
    unit_g = table["g"].to_numpy()
    strata_codes = table["stratum"].to_numpy()
    n_assign = math.prod(_multinomial(unit_g[strata_codes == s]) for s in np.unique(strata_codes))
    if exact == "auto":
        use_exact = n_assign <= reps
    elif exact is True:
        if n_assign > MAX_EXACT_ASSIGNMENTS:
            raise InputError(
                f"{n_assign} assignments are too many to enumerate (limit {MAX_EXACT_ASSIGNMENTS})"
            )
        use_exact = True
    elif exact is False:
        use_exact = False
    else:
        raise InputError(f"exact must be 'auto', True or False, not {exact!r}")
    rng = np.random.default_rng(seed)
    assignments = _assignments(unit_g, strata_codes, reps, use_exact, rng)

    anticipation = int(estimator_options.get("anticipation", 0))
    d_obs = panel.treated_indicator(anticipation).to_numpy()
    notes: list[str] = []
    fast = estimator == "twfe" and estimator_options.get("weights") is None
    slopes: np.ndarray | None = None
    slope_obs = 1.0
    if fast:
        engine = _TwfeFast(panel, anticipation)
        check, _ = engine.estimates(unit_g[None, :])
        if not math.isclose(check[0], att, rel_tol=1e-7, abs_tol=1e-9 * (1 + abs(att))):
            fast = False
            notes.append("the TWFE shortcut did not reproduce the estimate; placebos were refitted")
    if fast:
        placebo, slopes = engine.estimates(assignments, d_obs if ci else None)
        if not ci:
            slopes = None
    else:
        # outcomes in the caller's row order for the linearity check and the interval
        order = panel.frame.set_index(["unit", "time"])
        key = pd.MultiIndex.from_arrays(
            [data[unit].to_numpy(), pd.to_numeric(data[time]).to_numpy().astype(np.int64)]
        )
        d_rows = pd.Series(d_obs, index=order.index).reindex(key).fillna(0.0).to_numpy()
        placebo = _placebo_fits(estimator, data, names, units, assignments, options)
        if ci:
            slopes, slope_obs, linear_note = _linear_slopes(
                estimator, data, names, units, assignments, options, d_rows, att
            )
            if linear_note:
                notes.append(linear_note)
    valid = np.isfinite(placebo)
    n_failed = int((~valid).sum())
    if n_failed:
        notes.append(f"{n_failed} placebo assignment(s) could not be estimated and were dropped")
    if valid.sum() < 2:
        raise EstimationError("fewer than two placebo assignments could be estimated")
    placebo_v = placebo[valid]
    slopes_v = None if slopes is None else slopes[valid]

    def p_function(tau: float) -> float:
        stat = abs(att - tau * slope_obs)
        draws = placebo_v if slopes_v is None else placebo_v - tau * slopes_v
        tol = 1e-10 * max(1.0, stat)
        hits = int(np.sum(np.abs(draws) >= stat - tol))
        if use_exact:
            return hits / len(draws)
        return (1 + hits) / (1 + len(draws))

    p_value = p_function(0.0)
    sd = float(np.std(placebo_v, ddof=1))
    ci_low = ci_high = math.nan
    if slopes_v is not None and np.all(np.isfinite(slopes_v)):
        ci_low, ci_high = _invert(p_function, att, sd if sd > 0 else 1.0, 1.0 - level)
        if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
            notes.append(
                "the randomization test cannot reject far-away effects: the interval is unbounded"
            )
    min_p = 1.0 / len(placebo_v) if use_exact else 1.0 / (1 + len(placebo_v))
    if min_p > 1.0 - level:
        notes.append(
            f"the smallest attainable p-value is {min_p:.3g}, above {1 - level:.3g}: the test "
            "cannot reject at this level"
        )
    notes += check_inference_choice(
        "randomization", panel.n_treated_units, panel.n_units, warn=False
    )
    return DiDResults(
        estimator=observed.estimator,
        outcome=panel.outcome,
        att=att,
        se=sd,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        **panel.sizes,
        inference="randomization",
        level=level,
        settings={
            "estimator": estimator,
            "reps": reps,
            "strata": strata,
            "seed": seed,
            "exact": exact,
            **{
                k: v for k, v in estimator_options.items() if isinstance(v, (str, int, float, bool))
            },
        },
        notes=notes,
        extra={
            "ri_exact": bool(use_exact),
            "ri_draws": len(placebo_v),
            "ri_assignments": int(n_assign),
            "ri_failed": n_failed,
            "ri_statistic": "estimate",
            "ri_fast_path": bool(fast),
            "estimator_se": float(observed.se) if np.isfinite(observed.se) else None,
        },
    )


def _linear_slopes(
    estimator: str,
    data: pd.DataFrame,
    names: dict[str, str],
    units: np.ndarray,
    assignments: np.ndarray,
    options: dict[str, Any],
    d_rows: np.ndarray,
    att: float,
) -> tuple[np.ndarray | None, float, str | None]:
    """Placebo estimates on the observed treatment indicator, if the estimator is linear.

    For an estimator linear in the outcome, the estimate on ``y - tau * D`` is
    ``est(y) - tau * est(D)``, so two fits per assignment give the whole p-value function.
    """
    from kinship_eval.did.estimate import fit

    y = pd.to_numeric(data[names["outcome"]]).to_numpy(dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = data.copy()
            base[names["outcome"]] = d_rows
            slope_obs = float(fit(estimator, base, **names, **options).att)
            tau0 = 1.0 + abs(att)
            shifted = data.copy()
            shifted[names["outcome"]] = y - tau0 * d_rows
            shifted_att = float(fit(estimator, shifted, **names, **options).att)
    except (EstimationError, InputError, np.linalg.LinAlgError, ValueError):
        return (
            None,
            1.0,
            "interval not computed: the estimator cannot be refitted on the treatment indicator",
        )
    if not math.isclose(
        shifted_att, att - tau0 * slope_obs, rel_tol=1e-6, abs_tol=1e-8 * (1 + abs(att))
    ):
        return None, 1.0, "interval not computed: the estimator is not linear in the outcome"
    slopes = _placebo_fits(
        estimator, data, names, units, assignments, options, outcome_override=d_rows
    )
    return slopes, slope_obs, None


# ============================================================================ placebo checks
@dataclass
class PlaceboResult:
    """Placebo-in-space or placebo-in-time check.

    Attributes
    ----------
    kind
        ``"space"`` or ``"time"``.
    estimator
        Estimator name.
    observed
        The real estimate.
    placebos
        One row per placebo: for ``space`` the placebo units and ``att``; for ``time`` the shift,
        the placebo start and the placebo estimate with its own inference.
    p_value
        ``space``: ``(1 + #{|placebo| >= |observed|}) / (1 + n)`` (the real estimate ranked
        among the placebos); ``time``: not defined (NaN).
    rank
        ``space``: rank of ``|observed|`` among all ``|estimates|`` (1 = most extreme).
    notes
        Caveats.
    """

    kind: str
    estimator: str
    observed: float
    placebos: pd.DataFrame
    p_value: float = math.nan
    rank: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""

        def clean(v: Any) -> Any:
            if isinstance(v, (float, np.floating)):
                return float(v) if np.isfinite(v) else None
            if isinstance(v, np.integer):
                return int(v)
            return v

        return {
            "kind": self.kind,
            "estimator": self.estimator,
            "observed": clean(self.observed),
            "p_value": clean(self.p_value),
            "rank": self.rank,
            "n_placebos": len(self.placebos),
            "placebos": [
                {k: clean(v) for k, v in row.items()} for row in self.placebos.to_dict("records")
            ],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Plain-text summary."""
        lines = [
            f"Placebo in {self.kind} ({self.estimator}); observed estimate {self.observed:.4f}"
        ]
        if self.kind == "space":
            est = self.placebos["att"].dropna()
            lines.append(
                f"{len(est)} placebos: mean {est.mean():.4f}, sd {est.std(ddof=1):.4f}; "
                f"rank of |observed| {self.rank} of {len(est) + 1}; p-value {self.p_value:.4f}"
            )
        else:
            for r in self.placebos.to_dict("records"):
                lines.append(
                    f"shift {int(r['shift'])} (placebo start {int(r['placebo_start'])}): "
                    f"{r['att']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
                )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def placebo_in_space(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    estimator: str = "sdid",
    n_placebos: int | None = None,
    mode: Literal["auto", "single", "sets"] = "auto",
    seed: int | None = None,
    **estimator_options: Any,
) -> PlaceboResult:
    """Re-estimate with never-treated units playing the treated ones (Abadie et al. 2010).

    The treated units are dropped; then either each control unit in turn (``mode="single"``,
    treated at the earliest real adoption date) or random sets of as many controls as there are
    treated units (``mode="sets"``, given the real adoption dates) are labelled treated and the
    estimator is refitted. The real estimate is then ranked among the placebo estimates.

    Parameters
    ----------
    data
        Long panel.
    unit, time, outcome, first_treated
        Column names.
    estimator
        Name accepted by :func:`kinship_eval.did.estimate.fit` (typically ``"sdid"`` or ``"sc"``).
    n_placebos
        ``single``: at most this many control units (random subset; default all); ``sets``: the
        number of random sets (default 200).
    mode
        ``"auto"`` is ``"single"`` with one treated unit and ``"sets"`` otherwise.
    seed
        Seed of :func:`numpy.random.default_rng`.
    **estimator_options
        Passed to ``fit``; choose a cheap variance option (only point estimates are used).

    Returns
    -------
    PlaceboResult
    """
    from kinship_eval.did.estimate import fit

    panel = prepare(data, unit=unit, time=time, outcome=outcome, first_treated=first_treated)
    names = {"unit": unit, "time": time, "outcome": outcome, "first_treated": first_treated}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        observed = fit(estimator, data, **names, **estimator_options)
    table = _unit_table(panel, data, unit, None)
    treated_g = table.loc[table["g"] > 0, "g"].to_numpy()
    controls = table.loc[table["g"] == 0, "unit"].to_numpy()
    n_treated = len(treated_g)
    if mode == "auto":
        mode = "single" if n_treated == 1 else "sets"
    if mode not in ("single", "sets"):
        raise InputError(f"mode must be 'auto', 'single' or 'sets', not {mode!r}")
    if len(controls) < max(2, n_treated + 1):
        raise EstimationError("too few control units for placebo-in-space")
    rng = np.random.default_rng(seed)
    control_data = data[data[unit].isin(controls)]
    notes: list[str] = []
    if mode == "single":
        chosen = controls
        if n_placebos is not None and n_placebos < len(controls):
            chosen = rng.choice(controls, size=n_placebos, replace=False)
        sets = [np.array([c]) for c in chosen]
        dates = [np.array([int(treated_g.min())]) for _ in sets]
        if len(np.unique(treated_g)) > 1:
            notes.append(
                f"several adoption dates: each placebo unit is treated from {int(treated_g.min())}"
            )
    else:
        n_sets = 200 if n_placebos is None else int(n_placebos)
        sets = [rng.choice(controls, size=n_treated, replace=False) for _ in range(n_sets)]
        dates = [rng.permutation(treated_g) for _ in range(n_sets)]
    rows = []
    for members, g in zip(sets, dates, strict=True):
        mapping = dict(zip(members, g, strict=True))
        frame = control_data.copy()
        frame[first_treated] = frame[unit].map(mapping).fillna(0).to_numpy()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = float(fit(estimator, frame, **names, **estimator_options).att)
        except (EstimationError, InputError, np.linalg.LinAlgError, ValueError):
            est = math.nan
        rows.append({"units": ",".join(map(str, members)), "att": est})
    placebos = pd.DataFrame(rows)
    est = placebos["att"].to_numpy()
    est = est[np.isfinite(est)]
    if len(est) < len(placebos):
        notes.append(f"{len(placebos) - len(est)} placebo fit(s) failed and were dropped")
    obs = float(observed.att)
    tol = 1e-10 * max(1.0, abs(obs))
    hits = int(np.sum(np.abs(est) >= abs(obs) - tol))
    return PlaceboResult(
        kind="space",
        estimator=observed.estimator,
        observed=obs,
        placebos=placebos,
        p_value=(1 + hits) / (1 + len(est)),
        rank=1 + int(np.sum(np.abs(est) > abs(obs) + tol)),
        notes=notes,
    )


def placebo_in_time(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    estimator: str = "sdid",
    shifts: Sequence[int] = (1, 2),
    min_pre_periods: int = 2,
    **estimator_options: Any,
) -> PlaceboResult:
    """Pretend treatment started ``k`` periods earlier, using only pre-treatment data.

    Periods from the earliest real adoption date on are dropped; every treated unit's first
    treated period moves ``k`` periods earlier and the estimator is refitted. With no
    anticipation and parallel trends the placebo effects should be close to zero.

    Parameters
    ----------
    data
        Long panel.
    unit, time, outcome, first_treated
        Column names.
    estimator
        Name accepted by :func:`kinship_eval.did.estimate.fit`.
    shifts
        Placebo shifts ``k`` (periods).
    min_pre_periods
        Shifts leaving fewer placebo pre-periods than this are skipped (with a note).
    **estimator_options
        Passed to ``fit``.

    Returns
    -------
    PlaceboResult
        ``placebos`` has columns ``shift, placebo_start, att, se, ci_low, ci_high, p_value``.
    """
    from kinship_eval.did.estimate import fit

    panel = prepare(data, unit=unit, time=time, outcome=outcome, first_treated=first_treated)
    names = {"unit": unit, "time": time, "outcome": outcome, "first_treated": first_treated}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        observed = fit(estimator, data, **names, **estimator_options)
    first = int(panel.cohorts.min())
    periods = panel.periods
    times = pd.to_numeric(data[time]).to_numpy()
    pre = data[times < first].copy()
    g_raw = pd.to_numeric(pre[first_treated], errors="coerce").fillna(0).to_numpy()
    rows, notes = [], []
    for k in shifts:
        k = int(k)
        if k < 1:
            raise InputError(f"shifts must be positive, not {k}")
        start = first - k
        n_pre = int(np.sum(periods < start))
        if n_pre < min_pre_periods:
            notes.append(f"shift {k} skipped: only {n_pre} placebo pre-period(s)")
            continue
        frame = pre.copy()
        frame[first_treated] = np.where(g_raw > 0, g_raw - k, 0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit(estimator, frame, **names, **estimator_options)
            rows.append(
                {
                    "shift": k,
                    "placebo_start": start,
                    "att": float(res.att),
                    "se": float(res.se),
                    "ci_low": float(res.ci_low),
                    "ci_high": float(res.ci_high),
                    "p_value": float(res.p_value),
                }
            )
        except (EstimationError, InputError, np.linalg.LinAlgError, ValueError) as exc:
            notes.append(f"shift {k} failed: {exc}")
    placebos = pd.DataFrame(
        rows, columns=["shift", "placebo_start", "att", "se", "ci_low", "ci_high", "p_value"]
    )
    return PlaceboResult(
        kind="time",
        estimator=observed.estimator,
        observed=float(observed.att),
        placebos=placebos,
        notes=notes,
    )


# ============================================================================ guidance
_CLUSTER_METHODS = {"cluster", "clustered", "crv1", "cluster_robust"}
_WILD_METHODS = {"wild_bootstrap", "wild", "wcr", "wcu", "wild_cluster_bootstrap"}
_RI_METHODS = {"randomization", "randomization_inference", "ri", "permutation"}
_SYNTH_METHODS = {"placebo", "jackknife", "bootstrap"}


def check_inference_choice(
    method: str,
    n_treated: int,
    n_units: int,
    *,
    weights: str | None = None,
    impose_null: bool | None = None,
    warn: bool = True,
) -> list[str]:
    """Warn when an inference method is known to be unreliable for the design.

    Parameters
    ----------
    method
        ``"cluster"`` (CRV1), ``"wild_bootstrap"`` (also ``"wcr"``/``"wcu"``),
        ``"randomization"``, or a synthetic-control variance (``"placebo"``, ``"jackknife"``,
        ``"bootstrap"``).
    n_treated
        Number of treated clusters (units).
    n_units
        Number of clusters in total.
    weights
        Wild bootstrap weights (``"rademacher"``, ``"webb"``, ``"mammen"``), when relevant.
    impose_null
        Whether the wild bootstrap imposes the null (WCR); ``method="wcu"`` implies ``False``.
    warn
        Also emit each message as an :class:`~kinship_eval.errors.InferenceWarning`.

    Returns
    -------
    list of str
        The warnings (empty when nothing is known to be wrong).

    Notes
    -----
    The thresholds summarise simulation evidence: MacKinnon and Webb (2017, 2018) show that CRV1
    t-tests over-reject badly when fewer than about 30-40 clusters are treated (rejection rates of
    10-80% at a nominal 5% with one to a few treated clusters), whatever the total number of
    clusters, and Conley and Taber (2011) that inference must rest on the controls when treated
    groups are few. The restricted wild bootstrap (WCR) fixes most of this but becomes very
    conservative with one or two treated clusters, while the unrestricted one (WCU) over-rejects;
    with Rademacher weights and few treated clusters the bootstrap distribution is lumpy, which
    Webb's six-point weights smooth (Webb 2023). Randomization inference needs enough distinct
    assignments to reach small p-values, and the synthetic-control variances have their own
    requirements (Arkhangelsky et al. 2021).
    """
    m = method.lower()
    if m == "wcu":
        impose_null = False
    msgs: list[str] = []
    if n_treated < 1 or n_units <= n_treated:
        raise InputError("need at least one treated and one untreated unit")
    if m in _CLUSTER_METHODS:
        if n_treated < 30:
            msgs.append(
                f"cluster-robust (CRV1) inference with {n_treated} treated clusters over-rejects: "
                "with fewer than about 30-40 treated clusters a nominal 5% test can reject a true "
                "null far more often (MacKinnon and Webb 2017; Conley and Taber 2011); use the "
                "wild cluster restricted bootstrap or randomization inference"
            )
        if n_units < 42:
            msgs.append(
                f"only {n_units} clusters in total: cluster-robust standard errors are unreliable "
                "with fewer than about 40-50 clusters (Cameron, Gelbach and Miller 2008)"
            )
    elif m in _WILD_METHODS:
        w = (weights or "rademacher").lower()
        if impose_null is False and n_treated < 20:
            msgs.append(
                f"the unrestricted wild bootstrap (WCU) over-rejects with {n_treated} treated "
                "clusters; impose the null (WCR) (MacKinnon and Webb 2017)"
            )
        if n_treated <= 2:
            msgs.append(
                f"with {n_treated} treated cluster(s) the restricted wild bootstrap is extremely "
                "conservative and its intervals can be unbounded, and the unrestricted one "
                "over-rejects (MacKinnon and Webb 2017, 2018); use randomization inference and "
                "interpret any test with caution"
            )
        if w == "rademacher" and n_treated < 6:
            msgs.append(
                f"Rademacher weights with {n_treated} treated clusters give a lumpy bootstrap "
                "distribution and unreliable p-values; use Webb six-point weights (Webb 2023)"
            )
        if w == "rademacher" and n_units <= 12:
            msgs.append(
                f"with {n_units} clusters there are only {2**n_units} distinct Rademacher draws; "
                "p-values below 1/2**(G-1) are impossible - use Webb weights"
            )
    elif m in _RI_METHODS:
        count = math.comb(n_units, n_treated)
        if count < 20:
            msgs.append(
                f"only {count} distinct assignments of {n_treated} treated among {n_units} units: "
                f"the smallest attainable p-value is 1/{count}"
            )
        if n_treated == 1:
            msgs.append(
                "randomization inference with one treated unit tests whether that unit is "
                "extreme among all units; it over-rejects when the treated unit is more variable "
                "than the controls (e.g. a small local authority) (MacKinnon and Webb 2020)"
            )
    elif m in _SYNTH_METHODS:
        if m in {"jackknife", "bootstrap"} and n_treated < 2:
            msgs.append(
                f"the {m} variance needs at least two treated units; use the placebo variance "
                "(Arkhangelsky et al. 2021)"
            )
        if m == "placebo" and n_units - n_treated <= n_treated:
            msgs.append("the placebo variance needs more control units than treated units")
        if m == "jackknife" and n_treated < 10:
            msgs.append(
                f"the jackknife variance with {n_treated} treated units can be conservative or "
                "unstable; compare with the placebo variance (Arkhangelsky et al. 2021)"
            )
    else:
        raise InputError(
            f"unknown inference method {method!r}; expected one of "
            f"{sorted(_CLUSTER_METHODS | _WILD_METHODS | _RI_METHODS | _SYNTH_METHODS)}"
        )
    if warn:
        for msg in msgs:
            warnings.warn(msg, InferenceWarning, stacklevel=2)
    return msgs


@dataclass(frozen=True)
class InferenceRecommendation:
    """The inference to report for a design, with the reasons."""

    method: str
    weights: str
    impose_null: bool
    reps: int
    robustness: tuple[str, ...]
    avoid: tuple[str, ...]
    rationale: str


RECOMMENDED_INFERENCE = InferenceRecommendation(
    method="wild_bootstrap",
    weights="webb",
    impose_null=True,
    reps=9999,
    robustness=("randomization",),
    avoid=("cluster",),
    rationale=(
        "The pilot treats 7 of about 150 local authorities. Inference is driven by the few "
        "treated clusters, not the total: CRV1 standard errors then over-reject badly "
        "(MacKinnon and Webb 2017). The wild cluster restricted bootstrap (WCR: null imposed) "
        "with Webb six-point weights has close to correct size with 5-10 treated clusters, "
        "because imposing the null keeps the bootstrap residuals of the treated clusters from "
        "absorbing the effect and Webb weights avoid the lumpy distribution of Rademacher "
        "draws; its interval is obtained by inverting the same test. Randomization inference "
        "(permuting which authorities are treated, within regions if assignment was stratified) "
        "is the design-based check: exact under the sharp null if pilot sites were as good as "
        "randomly chosen, but it can misbehave when the pilot authorities are much smaller or "
        "more volatile than the rest (MacKinnon and Webb 2020), which is why it is reported "
        "alongside rather than instead of WCR. Conventional clustered errors are shown only "
        "for comparison."
    ),
)
"""Recommended inference for the pilot design (7 treated of about 150 local authorities).

WCR wild cluster bootstrap with Webb weights (9,999 draws) as the headline, randomization
inference as a robustness check, conventional CRV1 errors never on their own. See
``RECOMMENDED_INFERENCE.rationale`` for the argument.
"""
