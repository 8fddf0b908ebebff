"""Matched child-level difference-in-differences, in the style of the Supporting Families impact
evaluation.

Design
------
For each outcome (a separate matching model for each, as Supporting Families did):

1. **Cohorts.** Children entering care in the *pre* period (entries from ``pre_years`` years
   before ``start - W`` up to ``start - W``, so that their ``W``-month follow-up ends before the
   allowance starts) and in the *post* period (entries on or after ``start`` whose ``W``-month
   window is complete by the end of the data), in pilot LAs (programme group) and in the other
   LAs (comparison pool; ``exclude`` drops contaminated LAs).
2. **Propensity score.** Within each cohort, a logit (statsmodels) of being in a pilot LA on age
   at entry (years and band), sex, ethnic group, category of need, legal status at entry (group),
   prior care and any LA covariates given (e.g. pre-period rates from
   :func:`la_covariates_from_panel`).
3. **Matching.** Nearest neighbour on the logit of the score, with replacement, ``ratio``
   neighbours, within a caliper of ``caliper`` standard deviations of the logit score (0.2, as
   Austin recommends), exactly on entry year. Programme children with no comparison child in the
   caliper are dropped (counted in ``matching``).
4. **Balance.** Standardised mean differences of every covariate (dummies per level) before and
   after matching, with the pooled standard deviation of the unmatched samples as the
   denominator throughout; below 0.1 is conventionally balanced.
5. **Difference-in-differences.** Weighted least squares of the outcome on ``pilot``, ``post``
   and ``pilot x post`` on the matched pre and post cohorts (comparison weights from the
   matching), standard errors clustered by LA (CR1, t with G - 1 degrees of freedom).

Reporting (as Supporting Families): the *programme* figure is the pilot post-period mean; the
*comparison* figure is what the programme group would have had without the allowance, the
programme mean less the DiD estimate; then the difference (percentage points for binary
outcomes, days for durations), the relative difference, the confidence interval, the p-value and
a significance flag.

With seven pilot LAs the LA-clustered standard errors rest on few treated clusters and are
optimistic (they over-reject). ``inference="wild"`` adds a wild cluster bootstrap (restricted,
Webb weights) from :func:`kinship_eval.did.inference.wild_cluster_bootstrap` on the
weight-transformed regression, which is better behaved but can be conservative with few treated
clusters; neither accounts for the estimation of the propensity score.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from kinship_eval.episodes import _arrays as A
from kinship_eval.episodes.outcomes import window_days
from kinship_eval.errors import EstimationError, InferenceWarning, InputError

DEFAULT_OUTCOMES: tuple[str, ...] = ("left_to_kin_12m", "left_to_kin_24m", "days_in_care_12m")
#: Child covariates: name -> kind.
DEFAULT_COVARIATES: dict[str, str] = {
    "age_at_entry": "continuous",
    "age_band": "categorical",
    "sex": "categorical",
    "ethnic_group": "categorical",
    "cin": "categorical",
    "ls_group": "categorical",
    "prior_care": "binary",
}
AGE_BANDS = (0.0, 1.0, 5.0, 10.0, 16.0, np.inf)
AGE_BAND_LABELS = ("under 1", "1-4", "5-9", "10-15", "16 and over")
LABELS: dict[str, str] = {
    "left_to_kin_12m": "Left care to kin within 12 months",
    "left_to_kin_24m": "Left care to kin within 24 months",
    "days_in_care_12m": "Days looked after, first 12 months",
    "days_in_care_24m": "Days looked after, first 24 months",
}
KIN_NOTE = (
    "left care to kin: a child arrangements order (E41) or a special guardianship order to "
    "relatives or friends (E45, E47)"
)
FEW_CLUSTERS = 10
Inference = Literal["cluster", "wild"]


# ============================================================================ results
@dataclass
class MatchedDiDResults:
    """Results of :func:`matched_did`.

    Attributes
    ----------
    estimates
        One row per outcome: ``outcome, label, unit, comparison, programme, difference,
        relative_difference, ci_low, ci_high, p_value, significant, se, n_programme,
        n_comparison, n_clusters, n_treated_clusters`` and the four group means
        (``pilot_pre, pilot_post, comparison_pre, comparison_post``); ``wild_*`` columns with
        ``inference="wild"``. Binary outcomes are in percent (differences in percentage
        points), durations in days.
    balance
        One row per outcome x cohort x covariate: ``mean_programme, mean_comparison_before,
        smd_before, mean_programme_matched, mean_comparison_after, smd_after``.
    matching
        One row per outcome x cohort: sample sizes, programme children matched and dropped,
        distinct comparison children used, the caliper.
    propensity
        Logit coefficients by outcome x cohort (``outcome, cohort, term, coef, se``).
    samples
        The matched samples by outcome: ``la_code, child_key, cohort, pilot, post, weight, y``.
    notes
        Plain-language notes (inference caveats; synthetic data).
    spec
        The settings used.
    synthetic
        True for synthetic data.
    """

    estimates: pd.DataFrame
    balance: pd.DataFrame
    matching: pd.DataFrame
    propensity: pd.DataFrame
    samples: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)
    spec: dict[str, object] = field(default_factory=dict)
    synthetic: bool = False

    def to_frame(self) -> pd.DataFrame:
        """The impact table, one tidy row per outcome."""
        return self.estimates.copy()

    @property
    def max_smd_after(self) -> float:
        """Largest absolute standardised difference after matching."""
        return float(self.balance["smd_after"].abs().max())

    def summary(self) -> str:
        """Plain-text impact table in the Supporting Families style."""
        lines = []
        if self.synthetic:
            lines.append("SYNTHETIC DATA - results describe no real children or LAs.")
        lines.append(
            "Matched difference-in-differences: children entering care in pilot LAs after the "
            f"start ({self.spec.get('start')}) vs matched children in comparison LAs"
        )
        head = (
            f"{'Outcome':<36} {'Comparison':>10} {'Programme':>10} {'Diff.':>8} "
            f"{'Rel.':>7} {'95% CI':>17} {'p':>6}"
        )
        lines.append(head)
        lines.append("-" * len(head))
        for r in self.estimates.itertuples(index=False):
            unit = "%" if r.unit == "%" else "d"
            star = "*" if r.significant else " "
            rel = (
                f"{r.relative_difference * 100:+.0f}%"
                if np.isfinite(r.relative_difference)
                else "-"
            )
            lines.append(
                f"{r.label[:36]:<36} {r.comparison:>9.1f}{unit} {r.programme:>9.1f}{unit} "
                f"{r.difference:>+8.1f} {rel:>7} [{r.ci_low:>+6.1f}, {r.ci_high:>+6.1f}] "
                f"{r.p_value:>6.3f}{star}"
            )
        lines.append(
            f"* significant at the {round(100 * (1 - float(self.spec['alpha'])))}% "
            "level. Differences in percentage points (%) or days (d)."
        )
        lines.append(
            "Comparison = the programme group's mean had the allowance not started "
            "(programme mean less the difference-in-differences)."
        )
        if any(o.startswith("left_to_kin") for o in self.estimates["outcome"]):
            lines.append(KIN_NOTE[0].upper() + KIN_NOTE[1:] + ".")
        lines.append(f"Largest |SMD| after matching: {self.max_smd_after:.3f}")
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ============================================================================ pure statistics
def covariate_frame(
    outcomes: pd.DataFrame,
    covariates: dict[str, str] | None = None,
    la_covariates: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric covariate columns (dummies for every level of categorical ones).

    Returns the frame (same index as ``outcomes``) and, for each categorical covariate, its
    dummy columns (the logit drops the most frequent as reference). Missing categorical values
    become a level ``missing``; rows with a missing continuous covariate are NaN.
    """
    covariates = DEFAULT_COVARIATES if covariates is None else covariates
    cols: dict[str, pd.Series] = {}
    groups: dict[str, list[str]] = {}
    for name, kind in covariates.items():
        if name == "age_band":
            values = pd.cut(
                outcomes["age_at_entry"], AGE_BANDS, right=False, labels=AGE_BAND_LABELS
            )
        elif name not in outcomes:
            raise InputError(f"covariate {name!r} is not a column of the child outcomes")
        else:
            values = outcomes[name]
        if kind == "continuous":
            cols[name] = pd.to_numeric(values, errors="coerce").astype(float)
        elif kind == "binary":
            cols[name] = values.astype(float)
        elif kind == "categorical":
            text = values.astype(object).where(values.notna(), "missing").astype(str)
            text = text.replace("", "missing")
            levels = sorted(text.unique())
            names = []
            for level in levels:
                col = f"{name}={level}"
                cols[col] = (text == level).astype(float)
                names.append(col)
            groups[name] = names
        else:
            raise InputError(f"covariate kind must be continuous, binary or categorical: {kind}")
    frame = pd.DataFrame(cols, index=outcomes.index)
    if la_covariates is not None:
        if "la_code" not in la_covariates:
            raise InputError("la_covariates needs an la_code column", file="la_covariates")
        la = la_covariates.set_index("la_code")
        for col in la.columns:
            values = pd.to_numeric(la[col], errors="coerce")
            frame[f"la:{col}"] = outcomes["la_code"].astype(str).map(values).to_numpy()
    return frame, groups


def propensity_logit(
    X: pd.DataFrame, treated: np.ndarray, groups: dict[str, list[str]]
) -> tuple[np.ndarray, pd.DataFrame]:
    """Fit the propensity logit; return the linear predictor (logit score) and coefficients.

    Dummy columns of each categorical covariate drop their most frequent level; constant
    columns are dropped. Falls back to a lightly penalised fit under (quasi-)separation.
    """
    from statsmodels.discrete.discrete_model import Logit

    design = X.copy()
    for names in groups.values():
        present = [c for c in names if c in design]
        if present:
            ref = design[present].sum().idxmax()
            design = design.drop(columns=ref)
    design = design.loc[:, design.std(ddof=0) > 0]
    design = _drop_collinear(design)
    mean, scale = design.mean(), design.std(ddof=0)
    z = ((design - mean) / scale).to_numpy(dtype=float)
    exog = np.column_stack([np.ones(len(z)), z])
    names = ["const", *design.columns]
    y = treated.astype(float)
    coef_note = "mle"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = se = None
        try:
            fit = Logit(y, exog, check_rank=False).fit(disp=0, maxiter=100, method="newton")
            converged = bool(fit.mle_retvals.get("converged", True))
            if converged and np.all(np.isfinite(fit.params)) and np.abs(fit.params).max() < 15:
                params, se = np.asarray(fit.params), np.asarray(fit.bse)
        except (np.linalg.LinAlgError, ValueError, OverflowError):
            pass
        if params is None:
            # (quasi-)separation, typically from LA covariates: a ridge-penalised fit
            params = ridge_logit(y, exog, penalty=RIDGE_PENALTY)
            se = np.full(len(params), np.nan)
            coef_note = "ridge"
    score = exog @ params
    # report coefficients on the original scale
    slope = params[1:] / scale.to_numpy()
    intercept = params[0] - float(np.sum(slope * mean.to_numpy()))
    coef = pd.DataFrame(
        {
            "term": names,
            "coef": np.r_[intercept, slope],
            "se": np.r_[np.nan, se[1:] / scale.to_numpy()],
            "fit": coef_note,
        }
    )
    return score, coef


#: Ridge penalty (per standardised coefficient, on the log-likelihood scale) of the fallback fit.
RIDGE_PENALTY = 1.0


def ridge_logit(
    y: np.ndarray, X: np.ndarray, *, penalty: float = RIDGE_PENALTY, max_iter: int = 100
) -> np.ndarray:
    """Logistic regression with a ridge penalty on every column but the first (the constant),
    by penalised iteratively reweighted least squares; finite even under separation."""
    k = X.shape[1]
    pen = np.full(k, float(penalty))
    pen[0] = 0.0
    beta = np.zeros(k)
    for _ in range(max_iter):
        eta = np.clip(X @ beta, -30, 30)
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = np.maximum(mu * (1 - mu), 1e-10)
        grad = X.T @ (y - mu) - pen * beta
        hess = (X * w[:, None]).T @ X + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


def _drop_collinear(design: pd.DataFrame) -> pd.DataFrame:
    if design.shape[1] == 0:
        return design
    values = design.to_numpy(dtype=float)
    values = np.column_stack([np.ones(len(values)), values])
    r = np.linalg.qr(values, mode="r")
    diag = np.abs(np.diag(r))
    keep = diag[1:] > 1e-8 * max(diag.max(), 1.0)
    return design.loc[:, keep]


@dataclass
class Match:
    """A nearest-neighbour matching.

    Attributes
    ----------
    pairs
        ``treated, control, distance`` (row positions in the matched sample).
    weight
        Weight of every row: 1 for matched treated rows, the sum of ``1 / m`` over the treated
        rows a control is matched to (``m`` = that treated row's number of matches), else 0.
    caliper
        The caliper on the score scale.
    """

    pairs: pd.DataFrame
    weight: np.ndarray
    caliper: float


def nearest_neighbour_match(
    score: np.ndarray,
    treated: np.ndarray,
    strata: np.ndarray | None = None,
    *,
    caliper: float | None = 0.2,
    ratio: int = 1,
) -> Match:
    """Nearest-neighbour matching on ``score`` with replacement, within exact ``strata``.

    Parameters
    ----------
    score
        Matching score (the logit of the propensity score).
    treated
        Boolean treatment indicator.
    strata
        Exact-matching cells (e.g. entry year); ``None`` for one cell.
    caliper
        Maximum distance in standard deviations of ``score``; ``None`` for none.
    ratio
        Neighbours per treated row.
    """
    score = np.asarray(score, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    n = len(score)
    if ratio < 1:
        raise InputError(f"ratio must be at least 1, not {ratio}")
    strata = np.zeros(n, dtype=np.int64) if strata is None else pd.factorize(strata)[0]
    width = np.inf if caliper is None else float(caliper) * float(np.std(score, ddof=1))
    idx = np.arange(n)
    t_all, c_all, d_all = [], [], []
    for s in np.unique(strata):
        t = idx[(strata == s) & treated]
        c = idx[(strata == s) & ~treated]
        if not len(t) or not len(c):
            continue
        c = c[np.argsort(score[c], kind="stable")]
        cs = score[c]
        pos = np.searchsorted(cs, score[t])
        cand = pos[:, None] + np.arange(-ratio, ratio)[None, :]
        valid = (cand >= 0) & (cand < len(cs))
        safe = np.clip(cand, 0, len(cs) - 1)
        dist = np.where(valid, np.abs(cs[safe] - score[t][:, None]), np.inf)
        best = np.argsort(dist, axis=1, kind="stable")[:, :ratio]
        chosen = np.take_along_axis(safe, best, axis=1)
        chosen_d = np.take_along_axis(dist, best, axis=1)
        ok = chosen_d <= width
        rows, k = np.nonzero(ok)
        t_all.append(t[rows])
        c_all.append(c[chosen[rows, k]])
        d_all.append(chosen_d[rows, k])
    if t_all:
        pt, pc_, pdist = np.concatenate(t_all), np.concatenate(c_all), np.concatenate(d_all)
    else:
        pt = pc_ = np.array([], dtype=np.int64)
        pdist = np.array([], dtype=float)
    weight = np.zeros(n)
    if len(pt):
        m = np.bincount(pt, minlength=n)
        weight[np.unique(pt)] = 1.0
        np.add.at(weight, pc_, 1.0 / m[pt])
    pairs = pd.DataFrame({"treated": pt, "control": pc_, "distance": pdist})
    return Match(pairs, weight, width)


def standardised_differences(
    X: pd.DataFrame, treated: np.ndarray, weight: np.ndarray
) -> pd.DataFrame:
    """Standardised mean differences before and after matching.

    The denominator is ``sqrt((var_t + var_c) / 2)`` of the unmatched samples, before and after.
    """
    treated = np.asarray(treated, dtype=bool)
    values = X.to_numpy(dtype=float)
    t, c = values[treated], values[~treated]
    mean_t, mean_c = np.nanmean(t, axis=0), np.nanmean(c, axis=0)
    sd = np.sqrt((np.nanvar(t, axis=0, ddof=1) + np.nanvar(c, axis=0, ddof=1)) / 2)
    sd = np.where(sd > 0, sd, np.nan)
    wt, wc = weight[treated], weight[~treated]
    mean_t_after = _wmean(t, wt)
    mean_c_after = _wmean(c, wc)
    with np.errstate(invalid="ignore", divide="ignore"):
        before = (mean_t - mean_c) / sd
        after = (mean_t_after - mean_c_after) / sd
    same = np.isnan(sd)
    before[same & np.isclose(mean_t, mean_c)] = 0.0
    after[same & np.isclose(mean_t_after, mean_c_after)] = 0.0
    return pd.DataFrame(
        {
            "covariate": X.columns,
            "mean_programme": mean_t,
            "mean_comparison_before": mean_c,
            "smd_before": before,
            "mean_programme_matched": mean_t_after,
            "mean_comparison_after": mean_c_after,
            "smd_after": after,
        }
    )


def _wmean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    if w.sum() <= 0:
        return np.full(values.shape[1], np.nan)
    return (values * w[:, None]).sum(axis=0) / w.sum()


@dataclass
class DiDFit:
    """A weighted 2 x 2 difference-in-differences regression."""

    estimate: float
    se: float
    p_value: float
    ci_low: float
    ci_high: float
    means: dict[str, float]
    n_clusters: int
    n_treated_clusters: int
    wild: dict[str, float] | None = None


def did_regression(
    y: np.ndarray,
    pilot: np.ndarray,
    post: np.ndarray,
    weight: np.ndarray,
    clusters: np.ndarray,
    *,
    alpha: float = 0.05,
    wild: bool = False,
    reps: int = 999,
    seed: int | None = None,
) -> DiDFit:
    """WLS of ``y`` on ``1, pilot, post, pilot x post`` with LA-clustered (CR1) errors.

    ``wild=True`` adds a wild cluster bootstrap (restricted, Webb weights) of the interaction.
    """
    from scipy import stats
    from statsmodels.regression.linear_model import WLS

    pilot = np.asarray(pilot, dtype=float)
    post = np.asarray(post, dtype=float)
    X = np.column_stack([np.ones(len(y)), pilot, post, pilot * post])
    codes, _ = pd.factorize(np.asarray(clusters))
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if n_clusters < 2 or not (pilot == 1).any() or not (pilot == 0).any():
        raise EstimationError("the matched sample needs pilot and comparison children in 2+ LAs")
    fit = WLS(np.asarray(y, dtype=float), X, weights=np.asarray(weight, dtype=float)).fit(
        cov_type="cluster", cov_kwds={"groups": codes, "use_correction": True}, use_t=True
    )
    est = float(fit.params[3])
    se = float(fit.bse[3])
    df = n_clusters - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(est / se), df)) if se > 0 else np.nan
    means = {}
    for name, sel in (
        ("pilot_pre", (pilot == 1) & (post == 0)),
        ("pilot_post", (pilot == 1) & (post == 1)),
        ("comparison_pre", (pilot == 0) & (post == 0)),
        ("comparison_post", (pilot == 0) & (post == 1)),
    ):
        w = weight[sel]
        means[name] = float(np.sum(w * y[sel]) / np.sum(w)) if w.sum() > 0 else np.nan
    treated_clusters = len(np.unique(codes[pilot == 1]))
    out = DiDFit(
        est, se, p, est - t_crit * se, est + t_crit * se, means, n_clusters, treated_clusters
    )
    if wild:
        from kinship_eval.did.inference import wild_cluster_bootstrap

        root = np.sqrt(np.asarray(weight, dtype=float))
        res = wild_cluster_bootstrap(
            root * np.asarray(y, dtype=float),
            X * root[:, None],
            codes,
            param_index=3,
            weights="webb",
            reps=reps,
            seed=seed,
            level=1 - alpha,
        )
        out.wild = {"p_value": res.p_value, "ci_low": res.ci_low, "ci_high": res.ci_high}
    return out


# ============================================================================ orchestration
def la_covariates_from_panel(
    panel: pd.DataFrame | object,
    *,
    before: str = "2026-04-01",
    columns: Sequence[str] = ("cla_stock_per_10k", "kinship_foster_share", "exits_to_kin_per_10k"),
) -> pd.DataFrame:
    """Pre-period LA covariates from an LA x quarter panel: the mean of ``columns`` over the
    quarters ending before ``before``, and ``log_population`` (log children aged 0-17)."""
    frame = getattr(panel, "frame", panel)
    assert isinstance(frame, pd.DataFrame)
    cut = pd.Timestamp(before)
    pre = frame.loc[pd.to_datetime(frame["quarter_end"]) < cut]
    if pre.empty:
        raise InputError(f"the panel has no quarters before {before}")
    out = pre.groupby("la_code")[list(columns)].mean()
    out["log_population"] = np.log(pre.groupby("la_code")["population_0_17"].mean())
    return out.reset_index()


def matched_did(
    outcomes: pd.DataFrame,
    *,
    pilot: Sequence[str] | pd.DataFrame | None = None,
    start: str = "2026-04-01",
    outcome_columns: Sequence[str] = DEFAULT_OUTCOMES,
    covariates: dict[str, str] | None = None,
    la_covariates: pd.DataFrame | None = None,
    exclude: Sequence[str] = (),
    pre_years: int = 2,
    post_years: int | None = None,
    caliper: float | None = 0.2,
    ratio: int = 1,
    exact: Sequence[str] = ("entry_year",),
    alpha: float = 0.05,
    inference: Inference = "cluster",
    reps: int = 999,
    seed: int | None = 0,
) -> MatchedDiDResults:
    """Matched difference-in-differences on child-level outcomes (see the module docstring).

    Parameters
    ----------
    outcomes
        Child outcomes from :func:`~kinship_eval.episodes.child_outcomes`.
    pilot
        Pilot LA codes, or a register with ``la_code`` (the bundled Kinship Zones by default).
    start
        Date the allowance starts (ISO).
    outcome_columns
        Outcomes to estimate; the window is read from the ``_<W>m`` suffix.
    covariates
        Child covariates (name -> ``continuous``/``binary``/``categorical``); default
        :data:`DEFAULT_COVARIATES`.
    la_covariates
        ``la_code`` and numeric LA covariates added to the propensity model. Use one or two:
        with few pilot LAs, LA-level covariates can all but identify the pilot LAs; the score is
        then fitted with a ridge penalty (``propensity.fit == "ridge"``), child covariates may
        balance less well and programme children can fall outside the caliper (see
        ``matching``).
    exclude
        Comparison LAs to leave out (e.g. those already paying kinship allowances).
    pre_years, post_years
        Entry years in the pre cohort; entry years in the post cohort (all complete by default).
    caliper, ratio, exact
        Matching settings (see :func:`nearest_neighbour_match`).
    alpha
        Significance level (intervals at ``1 - alpha``).
    inference
        ``"cluster"`` (LA-clustered) or ``"wild"`` (adds a wild cluster bootstrap).
    reps, seed
        Bootstrap draws and seed.

    Returns
    -------
    MatchedDiDResults
    """
    if inference not in ("cluster", "wild"):
        raise InputError(f"inference must be 'cluster' or 'wild', not {inference!r}")
    pilot_codes = _pilot_codes(pilot)
    start_day = A.day_number(start)
    frame = outcomes.loc[~outcomes["la_code"].astype(str).isin(list(exclude))].copy()
    frame["la_code"] = frame["la_code"].astype(str)
    is_pilot = frame["la_code"].isin(pilot_codes).to_numpy()
    if not is_pilot.any():
        raise EstimationError("no children entering care in pilot LAs")
    entry = A.from_datetime64(frame["entry_date"].to_numpy()).astype(np.int64)
    X_all, groups = covariate_frame(frame, covariates, la_covariates)
    rows_est, rows_bal, rows_match, rows_prop = [], [], [], []
    samples: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    ps_cache: dict[tuple[str, int], tuple[np.ndarray, pd.DataFrame]] = {}
    for outcome in outcome_columns:
        if outcome not in frame:
            raise InputError(f"outcome {outcome!r} is not a column of the child outcomes")
        months = _window_months(outcome)
        d = window_days(months)
        complete = frame.get(f"window_complete_{months}m")
        complete = np.ones(len(frame), bool) if complete is None else complete.to_numpy(bool)
        y_all = frame[outcome].to_numpy(dtype=float)
        usable = complete & np.isfinite(y_all) & X_all.notna().all(axis=1).to_numpy()
        pre_end = start_day - d
        pre_start = A.day_number(
            pd.Timestamp(A.EPOCH) + pd.Timedelta(days=pre_end) - pd.DateOffset(years=pre_years)
        )
        post_end = (
            A.day_number(pd.Timestamp(start) + pd.DateOffset(years=post_years))
            if post_years
            else np.iinfo(np.int64).max
        )
        cohorts = {
            "pre": usable & (entry >= pre_start) & (entry < pre_end),
            "post": usable & (entry >= start_day) & (entry < post_end),
        }
        parts = []
        for cohort, sel in cohorts.items():
            idx = np.flatnonzero(sel)
            treated = is_pilot[idx]
            info = {
                "outcome": outcome,
                "cohort": cohort,
                "n_programme": int(treated.sum()),
                "n_comparison_pool": int((~treated).sum()),
            }
            if treated.sum() == 0 or (~treated).sum() == 0:
                rows_match.append({**info, "n_programme_matched": 0})
                continue
            X = X_all.iloc[idx]
            cache_key = (cohort, hash(idx.tobytes()))
            if cache_key not in ps_cache:
                ps_cache[cache_key] = propensity_logit(X, treated, groups)
            score, coef = ps_cache[cache_key]
            coef = coef.copy()
            strata = _strata(frame, idx, exact)
            match = nearest_neighbour_match(score, treated, strata, caliper=caliper, ratio=ratio)
            matched_t = int((match.weight[treated] > 0).sum())
            rows_match.append(
                {
                    **info,
                    "n_programme_matched": matched_t,
                    "n_programme_dropped": int(treated.sum()) - matched_t,
                    "n_comparison_used": int((match.weight[~treated] > 0).sum()),
                    "caliper": match.caliper,
                }
            )
            bal = standardised_differences(X, treated, match.weight)
            bal.insert(0, "cohort", cohort)
            bal.insert(0, "outcome", outcome)
            rows_bal.append(bal)
            coef.insert(0, "cohort", cohort)
            coef.insert(0, "outcome", outcome)
            rows_prop.append(coef)
            keep = match.weight > 0
            parts.append(
                pd.DataFrame(
                    {
                        "la_code": frame["la_code"].to_numpy()[idx][keep],
                        "child_key": frame["child_key"].to_numpy()[idx][keep],
                        "cohort": cohort,
                        "pilot": treated[keep],
                        "post": cohort == "post",
                        "weight": match.weight[keep],
                        "y": y_all[idx][keep],
                    }
                )
            )
        if len(parts) < 2:
            notes.append(f"{outcome}: no complete pre and post cohorts; not estimated")
            continue
        sample = pd.concat(parts, ignore_index=True)
        samples[outcome] = sample
        fit = did_regression(
            sample["y"].to_numpy(),
            sample["pilot"].to_numpy(),
            sample["post"].to_numpy(),
            sample["weight"].to_numpy(),
            sample["la_code"].to_numpy(),
            alpha=alpha,
            wild=inference == "wild",
            reps=reps,
            seed=seed,
        )
        rows_est.append(_estimate_row(outcome, fit, sample, alpha))
    if not rows_est:
        raise EstimationError("no outcome could be estimated (check the start date and cohorts)")
    estimates = pd.DataFrame(rows_est)
    n_treated = int(estimates["n_treated_clusters"].max())
    if n_treated < FEW_CLUSTERS:
        msg = (
            f"only {n_treated} pilot LAs: LA-clustered standard errors rest on few treated "
            "clusters and are optimistic (intervals too narrow, p-values too small)"
            + ("" if inference == "wild" else "; see the wild cluster bootstrap (inference='wild')")
        )
        notes.insert(0, msg)
        warnings.warn(msg, InferenceWarning, stacklevel=2)
    if rows_prop and (pd.concat(rows_prop)["fit"] == "ridge").any():
        notes.append(
            "the propensity logit separated (LA covariates, or a category seen in one group only) "
            "and was fitted with a ridge penalty"
        )
    notes.append(
        "standard errors treat the matched sample as given (propensity scores and matches are "
        "estimated; comparison children matched more than once are weighted)"
    )
    synthetic = bool(outcomes["synthetic"].any()) if "synthetic" in outcomes else False
    if synthetic:
        notes.insert(0, "SYNTHETIC DATA: these results describe no real children or LAs")
    spec = {
        "start": start,
        "pilot": sorted(pilot_codes),
        "exclude": list(exclude),
        "pre_years": pre_years,
        "post_years": post_years,
        "caliper": caliper,
        "ratio": ratio,
        "exact": list(exact),
        "alpha": alpha,
        "inference": inference,
        "covariates": dict(covariates or DEFAULT_COVARIATES),
        "la_covariates": [] if la_covariates is None else
        [c for c in la_covariates.columns if c != "la_code"],
    }  # fmt: skip
    return MatchedDiDResults(
        estimates=estimates,
        balance=pd.concat(rows_bal, ignore_index=True),
        matching=pd.DataFrame(rows_match),
        propensity=pd.concat(rows_prop, ignore_index=True),
        samples=samples,
        notes=notes,
        spec=spec,
        synthetic=synthetic,
    )


def _estimate_row(outcome: str, fit: DiDFit, sample: pd.DataFrame, alpha: float) -> dict:
    binary = set(np.unique(sample["y"])) <= {0.0, 1.0}
    k = 100.0 if binary else 1.0
    programme = fit.means["pilot_post"] * k
    diff = fit.estimate * k
    comparison = programme - diff
    post = sample["post"].to_numpy()
    pilot = sample["pilot"].to_numpy()
    row = {
        "outcome": outcome,
        "label": LABELS.get(outcome, outcome),
        "unit": "%" if binary else "days",
        "comparison": comparison,
        "programme": programme,
        "difference": diff,
        "relative_difference": diff / comparison if abs(comparison) > 1e-9 else np.nan,
        "ci_low": fit.ci_low * k,
        "ci_high": fit.ci_high * k,
        "p_value": fit.p_value,
        "significant": bool(fit.p_value < alpha),
        "se": fit.se * k,
        "n_programme": int((pilot & post).sum()),
        "n_comparison": int((~pilot & post).sum()),
        "n_clusters": fit.n_clusters,
        "n_treated_clusters": fit.n_treated_clusters,
        **{name: value * k for name, value in fit.means.items()},
    }
    if fit.wild is not None:
        row["wild_p_value"] = fit.wild["p_value"]
        row["wild_ci_low"] = fit.wild["ci_low"] * k
        row["wild_ci_high"] = fit.wild["ci_high"] * k
        row["wild_significant"] = bool(fit.wild["p_value"] < alpha)
    return row


def _strata(frame: pd.DataFrame, idx: np.ndarray, exact: Sequence[str]) -> np.ndarray | None:
    if not exact:
        return None
    code = np.zeros(len(idx), dtype=np.int64)
    for col in exact:
        if col not in frame:
            raise InputError(f"exact-matching column {col!r} is not in the child outcomes")
        values, uniques = pd.factorize(frame[col].to_numpy()[idx])
        code = code * (len(uniques) + 1) + values
    return code


def _window_months(outcome: str) -> int:
    tail = outcome.rsplit("_", 1)[-1]
    if not (tail.endswith("m") and tail[:-1].isdigit()):
        raise InputError(f"outcome {outcome!r} has no _<W>m window suffix")
    return int(tail[:-1])


def _pilot_codes(pilot: Sequence[str] | pd.DataFrame | None) -> set[str]:
    if pilot is None:
        from kinship_eval.data.bundled import bundled_path

        pilot = pd.read_csv(bundled_path("pilot_register.csv"), dtype=str)
    if isinstance(pilot, pd.DataFrame):
        return set(pilot["la_code"].astype(str))
    return {str(c) for c in pilot}
