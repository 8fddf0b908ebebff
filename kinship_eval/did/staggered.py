"""Callaway & Sant'Anna (2021) group-time average treatment effects, ATT(g,t).

For every treatment cohort ``g`` (units first treated in period ``g``) and period ``t`` the
estimator compares the cohort's change in outcome between a base period and ``t`` with that of a
comparison group (never-treated units, or units not yet treated by ``t``), a two-group two-period
difference in differences. With covariates each 2x2 comparison uses the estimators of Sant'Anna &
Zhao (2020), exactly as R ``did`` (2.x) calls them from ``DRDID``:

* ``est_method="reg"`` -- outcome regression (``reg_did_panel``);
* ``est_method="ipw"`` -- normalised inverse probability weighting (``std_ipw_did_panel``);
* ``est_method="dr"`` (default, as in R) -- the locally efficient doubly robust estimator with a
  logit propensity score fitted by maximum likelihood and a linear outcome model for the
  comparison group (``drdid_panel``), with the same propensity-score trimming (comparison units with
  a score of 0.995 or more are dropped).

Each ATT(g,t) comes with its influence function (one value per unit), from which the analytic
standard errors, the aggregations of :meth:`CSResults.aggregate` (``simple``, ``group``,
``dynamic``, ``calendar``, including the influence-function term for the estimated aggregation
weights as in R ``aggte``), the multiplier bootstrap with sup-t uniform bands, and the Wald pre-test
of parallel trends are all computed.

Conventions follow R ``did``: units first treated at or before the first period (allowing for
anticipation) are dropped; cohorts first treated after the last period (plus anticipation) count as
never treated; unbalanced panels are balanced by dropping incomplete units unless
``allow_unbalanced_panel`` (then, as R ``did``, each ATT(g,t) uses every observation of its two
periods through the repeated cross-section estimators ``reg_did_rc``, ``std_ipw_did_rc`` and
``drdid_rc``, each observation with its own covariates, and the influence functions are summed by
unit); on a balanced panel covariates are taken from the earlier of the two periods of each
comparison. The headline ``att`` of the results is the
``group`` aggregation (each cohort's average post-treatment effect, weighted by cohort size).

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
*Journal of Econometrics* 225(2), 200-230.

Sant'Anna, P. H. C. and Zhao, J. (2020). Doubly robust difference-in-differences estimators.
*Journal of Econometrics* 219(1), 101-122.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from kinship_eval.did._linalg import (
    EPS,
    SE_FLOOR,
    bootstrap_scale,
    group_sums,
    logit_fit,
    multiplier_bootstrap,
    normal_crit,
    rcond,
    sup_t_crit,
)
from kinship_eval.did._panel import plain, recode_cohorts
from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.results import DiDResults
from kinship_eval.errors import DataWarning, EstimationError, InferenceWarning, InputError

ControlGroup = Literal["never_treated", "not_yet_treated"]
EstMethod = Literal["dr", "reg", "ipw"]
BasePeriod = Literal["varying", "universal"]
AggregationKind = Literal["simple", "group", "dynamic", "calendar"]

_CONTROL_ALIASES = {
    "never_treated": "never_treated",
    "nevertreated": "never_treated",
    "never": "never_treated",
    "not_yet_treated": "not_yet_treated",
    "notyettreated": "not_yet_treated",
    "not_yet": "not_yet_treated",
}
_TRIM_LEVEL = 0.995
_OVERLAP_LIMIT = 0.999


# --------------------------------------------------------------------------- 2x2 estimators
def _avg(a: np.ndarray) -> Any:
    """Mean over the first axis (as ``np.mean(a, axis=0)``, without its overhead)."""
    return a.sum(axis=0) / a.shape[0]


def _reg_did(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD (Heckman, Ichimura & Todd 1997); DRDID ``reg_did_panel``."""
    n = len(d)
    w = w / _avg(w)
    ctrl = d == 0
    xc = x[ctrl]
    wc = w[ctrl]
    xtx = (xc * wc[:, None]).T @ xc
    beta = np.linalg.solve(xtx, (xc * wc[:, None]).T @ dy[ctrl])
    out_delta = x @ beta
    w_treat = w * d
    w_cont = w * d
    eta_treat = _avg(w_treat * dy) / _avg(w_treat)
    eta_cont = _avg(w_cont * out_delta) / _avg(w_cont)
    att = eta_treat - eta_cont
    w_ols = w * (1.0 - d)
    xpx_inv = np.linalg.inv((x * w_ols[:, None]).T @ x / n)
    alr_ols = (x * (w_ols * (dy - out_delta))[:, None]) @ xpx_inv
    inf_treat = (w_treat * dy - w_treat * eta_treat) / _avg(w_treat)
    inf_cont_1 = w_cont * out_delta - w_cont * eta_cont
    m1 = _avg(x * w_cont[:, None])
    inf_control = (inf_cont_1 + alr_ols @ m1) / _avg(w_cont)
    return float(att), inf_treat - inf_control


def _pscore(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Logit propensity score with DRDID's guard against dividing by zero."""
    _, ps, converged = logit_fit(x, d, w)
    return np.minimum(ps, 1.0 - 1e-6), ps, converged


def _ps_linear_rep(d: np.ndarray, x: np.ndarray, w: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """Asymptotically linear representation of the logit coefficients (``n x k``)."""
    n = len(d)
    wlog = ps * (1.0 - ps) * w
    xtwx = (x * wlog[:, None]).T @ x
    if rcond(xtwx) < EPS:
        raise EstimationError("the propensity score design matrix is singular")
    hessian = np.linalg.inv(xtwx) * n
    return (x * (w * (d - ps))[:, None]) @ hessian


def _ipw_did(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> tuple[float, np.ndarray]:
    """Normalised (Hajek) IPW DiD of Abadie (2005); DRDID ``std_ipw_did_panel``."""
    w = w / _avg(w)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    w_treat = trim * w * d
    w_cont = trim * w * ps * (1.0 - d) / (1.0 - ps)
    eta_treat = _avg(w_treat * dy) / _avg(w_treat)
    eta_cont = _avg(w_cont * dy) / _avg(w_cont)
    att = eta_treat - eta_cont
    alr_ps = _ps_linear_rep(d, x, w, ps)
    inf_treat = (w_treat * dy - w_treat * eta_treat) / _avg(w_treat)
    inf_cont_1 = w_cont * dy - w_cont * eta_cont
    m2 = _avg(x * (w_cont * (dy - eta_cont))[:, None])
    inf_control = (inf_cont_1 + alr_ps @ m2) / _avg(w_cont)
    return float(att), inf_treat - inf_control


def _dr_did(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> tuple[float, np.ndarray]:
    """Locally efficient doubly robust DiD (Sant'Anna & Zhao 2020); DRDID ``drdid_panel``."""
    n = len(d)
    w = w / _avg(w)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    ctrl = d == 0
    xc = x[ctrl]
    wc = w[ctrl]
    beta = np.linalg.solve((xc * wc[:, None]).T @ xc, (xc * wc[:, None]).T @ dy[ctrl])
    out_delta = x @ beta
    resid = dy - out_delta
    w_treat = trim * w * d
    w_cont = trim * w * ps * (1.0 - d) / (1.0 - ps)
    eta_treat = _avg(w_treat * resid) / _avg(w_treat)
    eta_cont = _avg(w_cont * resid) / _avg(w_cont)
    att = eta_treat - eta_cont
    w_ols = w * (1.0 - d)
    xpx = (x * w_ols[:, None]).T @ x / n
    if rcond(xpx) < EPS:
        raise EstimationError("the outcome regression design matrix is singular")
    alr_ols = (x * (w_ols * resid)[:, None]) @ np.linalg.inv(xpx)
    alr_ps = _ps_linear_rep(d, x, w, ps)
    inf_treat_1 = w_treat * resid - w_treat * eta_treat
    m1 = _avg(x * w_treat[:, None])
    inf_treat = (inf_treat_1 - alr_ols @ m1) / _avg(w_treat)
    inf_cont_1 = w_cont * resid - w_cont * eta_cont
    m2 = _avg(x * (w_cont * (resid - eta_cont))[:, None])
    m3 = _avg(x * w_cont[:, None])
    inf_control = (inf_cont_1 + alr_ps @ m2 - alr_ols @ m3) / _avg(w_cont)
    return float(att), inf_treat - inf_control


# --------------------------------------------------------------------------- 2x2, cross-sections
def _wls(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares coefficients (rows with zero weight drop out)."""
    xw = x * w[:, None]
    xtx = xw.T @ x
    if rcond(xtx) < EPS:
        raise EstimationError("the outcome regression design matrix is singular")
    return np.linalg.solve(xtx, xw.T @ y)


def _ols_rep(x: np.ndarray, w: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """Asymptotically linear representation (``n x k``) of a weighted least squares fit."""
    n = x.shape[0]
    xpx = (x * w[:, None]).T @ x / n
    if rcond(xpx) < EPS:
        raise EstimationError("the outcome regression design matrix is singular")
    return (x * (w * resid)[:, None]) @ np.linalg.inv(xpx)


def _weighted_mean_part(wt: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
    """Hajek mean of ``v`` under weights ``wt`` and its influence function."""
    mean_w = _avg(wt)
    est = _avg(wt * v) / mean_w
    return est, wt * (v - est) / mean_w


def _reg_did_rc(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD for repeated cross-sections; DRDID ``reg_did_rc``."""
    w = w / _avg(w)
    w_ols_pre = w * (1.0 - d) * (1.0 - post)
    w_ols_post = w * (1.0 - d) * post
    out_pre = x @ _wls(y, x, w_ols_pre)
    out_post = x @ _wls(y, x, w_ols_post)
    eta_pre, inf_pre = _weighted_mean_part(w * d * (1.0 - post), y)
    eta_post, inf_post = _weighted_mean_part(w * d * post, y)
    w_cont = w * d
    eta_cont = _avg(w_cont * (out_post - out_pre)) / _avg(w_cont)
    att = (eta_post - eta_pre) - eta_cont
    rep_pre = _ols_rep(x, w_ols_pre, y - out_pre)
    rep_post = _ols_rep(x, w_ols_post, y - out_post)
    m1 = _avg(x * w_cont[:, None])
    inf_cont_1 = w_cont * (out_post - out_pre) - w_cont * eta_cont
    inf_control = (inf_cont_1 + rep_post @ m1 - rep_pre @ m1) / _avg(w_cont)
    return float(att), (inf_post - inf_pre) - inf_control


def _trimmed_weights(
    post: np.ndarray, d: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trimming indicator and the treated/comparison weights of both periods (IPW and DR)."""
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    odds = trim * w * ps * (1.0 - d) / (1.0 - ps)
    return (
        trim,
        trim * w * d * (1.0 - post),
        trim * w * d * post,
        odds * (1.0 - post),
        odds * post,
    )


def _ipw_did_rc(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> tuple[float, np.ndarray]:
    """Normalised IPW DiD for repeated cross-sections; DRDID ``std_ipw_did_rc``."""
    w = w / _avg(w)
    _, w_tpre, w_tpost, w_cpre, w_cpost = _trimmed_weights(post, d, w, ps)
    a_tpre, i_tpre = _weighted_mean_part(w_tpre, y)
    a_tpost, i_tpost = _weighted_mean_part(w_tpost, y)
    a_cpre, i_cpre = _weighted_mean_part(w_cpre, y)
    a_cpost, i_cpost = _weighted_mean_part(w_cpost, y)
    att = (a_tpost - a_tpre) - (a_cpost - a_cpre)
    rep_ps = _ps_linear_rep(d, x, w, ps)
    m2_pre = _avg(x * (w_cpre * (y - a_cpre))[:, None]) / _avg(w_cpre)
    m2_post = _avg(x * (w_cpost * (y - a_cpost))[:, None]) / _avg(w_cpost)
    inf_cont = (i_cpost - i_cpre) + rep_ps @ (m2_post - m2_pre)
    return float(att), (i_tpost - i_tpre) - inf_cont


def _dr_did_rc(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> tuple[float, np.ndarray]:
    """Locally efficient doubly robust DiD for repeated cross-sections; DRDID ``drdid_rc``."""
    w = w / _avg(w)
    ols_w = {
        (treated, period): w * (d if treated else 1.0 - d) * (post if period else 1.0 - post)
        for treated in (0, 1)
        for period in (0, 1)
    }
    out = {key: x @ _wls(y, x, wk) for key, wk in ols_w.items()}
    rep = {key: _ols_rep(x, ols_w[key], y - out[key]) for key in ols_w}
    out_c = post * out[0, 1] + (1.0 - post) * out[0, 0]
    resid = y - out_c
    trim, w_tpre, w_tpost, w_cpre, w_cpost = _trimmed_weights(post, d, w, ps)
    a_tpre, i_tpre = _weighted_mean_part(w_tpre, resid)
    a_tpost, i_tpost = _weighted_mean_part(w_tpost, resid)
    a_cpre, i_cpre = _weighted_mean_part(w_cpre, resid)
    a_cpost, i_cpost = _weighted_mean_part(w_cpost, resid)
    w_d = trim * w * d
    gap_post = out[1, 1] - out[0, 1]
    gap_pre = out[1, 0] - out[0, 0]
    a_d_post, i_d_post = _weighted_mean_part(w_d, gap_post)
    a_dt1, i_dt1 = _weighted_mean_part(w_tpost, gap_post)
    a_d_pre, i_d_pre = _weighted_mean_part(w_d, gap_pre)
    a_dt0, i_dt0 = _weighted_mean_part(w_tpre, gap_pre)
    att = (a_tpost - a_tpre) - (a_cpost - a_cpre) + (a_d_post - a_dt1) - (a_d_pre - a_dt0)
    # estimation effect of the comparison-group regressions on the treated component
    tm_post = -_avg(x * (w_tpost * post)[:, None]) / _avg(w_tpost)
    tm_pre = -_avg(x * (w_tpre * (1.0 - post))[:, None]) / _avg(w_tpre)
    inf_treat = i_tpost - i_tpre + rep[0, 1] @ tm_post + rep[0, 0] @ tm_pre
    rep_ps = _ps_linear_rep(d, x, w, ps)
    cm_pre = _avg(x * (w_cpre * (resid - a_cpre))[:, None]) / _avg(w_cpre)
    cm_post = _avg(x * (w_cpost * (resid - a_cpost))[:, None]) / _avg(w_cpost)
    crm_post = -_avg(x * (w_cpost * post)[:, None]) / _avg(w_cpost)
    crm_pre = -_avg(x * (w_cpre * (1.0 - post))[:, None]) / _avg(w_cpre)
    inf_cont = (
        i_cpost - i_cpre + rep_ps @ (cm_post - cm_pre) + rep[0, 1] @ crm_post + rep[0, 0] @ crm_pre
    )
    inf_eff = (i_d_post - i_dt1) - (i_d_pre - i_dt0)
    mom_post = _avg(x * (w_d / _avg(w_d) - w_tpost / _avg(w_tpost))[:, None])
    mom_pre = _avg(x * (w_d / _avg(w_d) - w_tpre / _avg(w_tpre))[:, None])
    inf_or = (rep[1, 1] - rep[0, 1]) @ mom_post - (rep[1, 0] - rep[0, 0]) @ mom_pre
    return float(att), inf_treat - inf_cont + inf_eff + inf_or


# --------------------------------------------------------------------------- results objects
def _normal_interval(estimate: float, se: float, level: float) -> tuple[float, float, float]:
    """Normal interval and p-value, as :func:`kinship_eval.did.results.normal_interval`."""
    if not np.isfinite(se) or se <= 0:
        return (math.nan, math.nan, math.nan)
    z = special.ndtri(0.5 + level / 2)
    p = 2 * special.ndtr(-abs(estimate / se))
    return (estimate - z * se, estimate + z * se, float(p))


@dataclass
class CSAggregation:
    """One aggregation of the group-time effects (R ``aggte``).

    Attributes
    ----------
    kind
        ``simple``, ``group``, ``dynamic`` or ``calendar``.
    att, se
        The overall summary of this aggregation and its standard error.
    table
        One row per cohort (``group``), event time (``rel_time``) or period (``time``) with
        ``att, se, ci_low, ci_high`` and, when bootstrapped, the uniform band ``band_low,
        band_high``; empty for ``simple``.
    crit_value
        Critical value behind ``band_low/band_high`` (the normal one when there is no band).
    influence_function
        Per-unit influence function of ``att``.
    table_influence
        ``n x rows`` influence functions of the table's estimates.
    """

    kind: str
    att: float
    se: float
    level: float
    table: pd.DataFrame
    crit_value: float
    influence_function: np.ndarray
    table_influence: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan

    def __post_init__(self) -> None:
        self.ci_low, self.ci_high, self.p_value = _normal_interval(self.att, self.se, self.level)

    def to_frame(self) -> pd.DataFrame:
        """The table with a leading ``overall`` row."""
        key = _TABLE_KEYS.get(self.kind)
        overall = {
            "kind": self.kind,
            "att": self.att,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }
        rows = pd.DataFrame([overall])
        if key is None or self.table.empty:
            return rows
        body = self.table.copy()
        body.insert(0, "kind", self.kind)
        return pd.concat([rows, body], ignore_index=True)


@dataclass
class _CSState:
    """What :meth:`CSResults.aggregate` needs from the fit."""

    unit_group: np.ndarray
    unit_weight: np.ndarray
    cluster_codes: np.ndarray | None
    n_clusters: int
    bootstrap: bool
    reps: int
    seed: int
    weight_type: str


@dataclass
class CSResults(DiDResults):
    """Callaway & Sant'Anna results.

    The base fields hold: ``att``/``se`` the ``group`` aggregation (cohort-size weighted average of
    each cohort's mean post-treatment effect), ``event_study`` the ``dynamic`` aggregation,
    ``group_time`` every ATT(g,t) (columns ``group, time, att, se, ci_low, ci_high, post`` and
    ``band_low, band_high`` with the bootstrap).

    Attributes
    ----------
    influence_function
        ``n_units x n_cells`` influence functions of the ATT(g,t), columns in ``group_time`` order.
    units
        Unit identifiers, in the row order of ``influence_function``.
    pretest
        Wald pre-test of parallel trends: ``{"W", "df", "p_value"}`` (``None`` when not available).
    """

    influence_function: np.ndarray | None = field(default=None, repr=False)
    units: np.ndarray | None = field(default=None, repr=False)
    pretest: dict[str, float] | None = None
    state: _CSState | None = field(default=None, repr=False)

    def aggregate(
        self,
        kind: AggregationKind = "group",
        *,
        min_e: float = -math.inf,
        max_e: float = math.inf,
        balance_e: int | None = None,
        bootstrap: bool | None = None,
        level: float | None = None,
    ) -> CSAggregation:
        """Aggregate the ATT(g,t) as R ``aggte(type=kind)``.

        Parameters
        ----------
        kind
            ``simple`` (post-treatment cells weighted by cohort size), ``group`` (by cohort),
            ``dynamic`` (by event time ``e = t - g``) or ``calendar`` (by period).
        min_e, max_e
            Event-time window (``dynamic``; ``max_e`` also caps the post periods of ``simple`` and
            ``group``).
        balance_e
            ``dynamic`` only: keep only cohorts observed for at least ``balance_e`` periods after
            treatment, and event times up to ``balance_e``.
        bootstrap
            Multiplier-bootstrap standard errors and uniform bands (defaults to the fit's choice).
        level
            Confidence level (defaults to the fit's).
        """
        if self.state is None or self.influence_function is None or self.group_time is None:
            raise EstimationError("results carry no influence functions to aggregate")
        gt = self.group_time
        cells = _AggCells.build(
            gt["group"].to_numpy(),
            gt["time"].to_numpy(),
            gt["att"].to_numpy(),
            self.influence_function,
            self.state,
        )
        parts = _aggregation_parts(cells, kind, min_e=min_e, max_e=max_e, balance_e=balance_e)
        boot = self.state.bootstrap if bootstrap is None else bootstrap
        inference = _ColumnInference.compute(parts.columns(), self.state, bootstrap=boot)
        agg, _ = _finish(
            parts, inference, 0, bootstrap=boot, level=self.level if level is None else level
        )
        return agg


# --------------------------------------------------------------------------- estimator
def callaway_santanna(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    covariates: Sequence[str] = (),
    control_group: ControlGroup = "never_treated",
    est_method: EstMethod = "dr",
    anticipation: int = 0,
    base_period: BasePeriod = "varying",
    weights: str | None = None,
    bootstrap: bool = False,
    reps: int = 999,
    seed: int | None = None,
    weight_type: Literal["mammen", "rademacher"] = "mammen",
    level: float = 0.95,
    cluster: str | None = None,
    allow_unbalanced_panel: bool = False,
    source: str = "panel",
) -> CSResults:
    """Estimate Callaway & Sant'Anna group-time ATTs and their aggregations.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    unit, time, outcome, first_treated
        Column names; ``first_treated`` is the first treated period, 0 or missing if never treated.
    covariates
        Pre-treatment covariates for the 2x2 estimators (values from the earlier period of each
        comparison are used).
    control_group
        ``never_treated`` or ``not_yet_treated`` (R spellings ``nevertreated`` and
        ``notyettreated`` are accepted).
    est_method
        ``dr`` (doubly robust, default), ``reg`` (outcome regression) or ``ipw``.
    anticipation
        Number of periods before ``first_treated`` in which units may already react.
    base_period
        ``varying`` (pre-treatment cells compare consecutive periods) or ``universal`` (every cell
        compares with period ``g - anticipation - 1``, whose cell is 0).
    weights
        Optional column of time-invariant sampling weights (normalised to mean 1).
    bootstrap
        Use the multiplier bootstrap for standard errors and add sup-t uniform bands.
    reps
        Number of bootstrap draws.
    seed
        Seed for the bootstrap multipliers; when ``None`` one is drawn, kept with the results (so
        later bootstrapped aggregations reuse the same draws) and recorded in ``settings``.
    weight_type
        Bootstrap multipliers: ``mammen`` (as R) or ``rademacher``.
    level
        Confidence level for intervals and bands.
    cluster
        Optional time-invariant column to cluster on (beyond units); influence functions are
        summed within clusters for analytic and bootstrap inference.
    allow_unbalanced_panel
        As R ``did``: when ``False`` (default) units not observed in every period are dropped
        (with a warning); when ``True`` and the panel is unbalanced every observation is kept and
        each ATT(g,t) is estimated on the observations of its two periods as repeated
        cross-sections (DRDID's ``reg_did_rc``, ``std_ipw_did_rc``, ``drdid_rc``), with the
        influence functions summed by unit. A balanced panel is estimated as usual either way.
    source
        Label for error messages.

    Returns
    -------
    CSResults
    """
    control = _CONTROL_ALIASES.get(str(control_group).lower())
    if control is None:
        raise InputError(f"control_group must be never_treated or not_yet_treated: {control_group}")
    if est_method not in ("dr", "reg", "ipw"):
        raise InputError(f"est_method must be dr, reg or ipw: {est_method}")
    if base_period not in ("varying", "universal"):
        raise InputError(f"base_period must be varying or universal: {base_period}")
    if weight_type not in ("mammen", "rademacher"):
        raise InputError(f"weight_type must be mammen or rademacher: {weight_type}")
    if anticipation < 0 or int(anticipation) != anticipation:
        raise InputError(f"anticipation must be a non-negative whole number: {anticipation}")
    if not 0 < level < 1:
        raise InputError(f"level must lie strictly between 0 and 1: {level}")
    if bootstrap and reps < 2:
        raise InputError(f"reps must be at least 2: {reps}")
    if not isinstance(allow_unbalanced_panel, (bool, np.bool_)):
        raise InputError(f"allow_unbalanced_panel must be True or False: {allow_unbalanced_panel}")
    allow_unbalanced_panel = bool(allow_unbalanced_panel)
    anticipation = int(anticipation)

    data, _, notes = recode_cohorts(
        data, time=time, first_treated=first_treated, anticipation=anticipation
    )
    panel = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=covariates,
        weights=weights,
        source=source,
    )
    wide = _WidePanel.build(
        panel,
        anticipation=anticipation,
        notes=notes,
        source=source,
        balance=not allow_unbalanced_panel,
    )
    panel_kind = _panel_kind(wide, notes, allow_unbalanced_panel)
    cluster_codes, n_clusters = _cluster_codes(data, unit, cluster, wide.units, source)
    cells = _group_time(
        wide,
        control=control,
        est_method=est_method,
        anticipation=anticipation,
        base_period=base_period,
    )
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    state = _CSState(
        unit_group=wide.g,
        unit_weight=wide.w,
        cluster_codes=cluster_codes,
        n_clusters=n_clusters,
        bootstrap=bootstrap,
        reps=reps,
        seed=seed,
        weight_type=weight_type,
    )
    agg_cells = _AggCells.build(cells.group, cells.time, cells.att, cells.inf, state)
    parts = [
        _aggregation_parts(agg_cells, kind, min_e=-math.inf, max_e=math.inf, balance_e=None)
        for kind in ("group", "dynamic", "simple", "calendar")
    ]
    # one set of multiplier draws for the cells and every aggregation
    inference = _ColumnInference.compute(
        np.hstack([cells.inf, *(p.columns() for p in parts)]), state, bootstrap=bootstrap
    )
    group_time, analytic_se = _group_time_frame(cells, inference, bootstrap=bootstrap, level=level)
    pretest = _pretest(cells, inference.scores, analytic_se, wide.n)
    aggregations, tables = _finish_all(
        parts, inference, cells.att.size, bootstrap=bootstrap, level=level
    )
    if np.any(np.isnan(cells.att)):
        notes.append(
            "some ATT(g,t) could not be estimated (see warnings); aggregations leave them out"
        )
    group_agg = aggregations["group"]
    return CSResults(
        estimator="cs",
        outcome=panel.outcome,
        att=group_agg.att,
        se=group_agg.se,
        n_units=wide.n,
        n_treated_units=int(np.sum(np.isin(wide.g, cells.groups))),
        n_periods=len(wide.periods),
        inference="multiplier_bootstrap" if bootstrap else "influence_function",
        level=level,
        ci_low=group_agg.ci_low,
        ci_high=group_agg.ci_high,
        p_value=group_agg.p_value,
        event_study=aggregations["dynamic"].table,
        group_time=group_time,
        settings={
            "control_group": control,
            "est_method": est_method,
            "anticipation": anticipation,
            "base_period": base_period,
            "covariates": list(covariates),
            "weights": weights,
            "bootstrap": bootstrap,
            "reps": reps if bootstrap else None,
            "seed": seed if bootstrap else None,
            "weight_type": weight_type if bootstrap else None,
            "cluster": cluster,
            "level": level,
            "allow_unbalanced_panel": allow_unbalanced_panel,
            "panel": panel_kind,
            "n_obs": int(wide.observed.sum()),
        },
        notes=notes,
        extra=_extra(aggregations, tables, pretest),
        influence_function=cells.inf,
        units=wide.units,
        pretest=pretest,
        state=state,
    )


def _panel_kind(wide: _WidePanel, notes: list[str], allow_unbalanced_panel: bool) -> str:
    """``balanced`` or ``unbalanced`` (the repeated cross-section path), with a note."""
    if wide.balanced:
        if allow_unbalanced_panel:
            notes.append("panel is balanced: estimated with the panel estimators")
        return "balanced"
    n_obs = int(wide.observed.sum())
    notes.append(
        f"unbalanced panel: {wide.n} units, {n_obs} of {wide.y.size} unit-periods observed; "
        "each ATT(g,t) estimated on its two periods' observations as repeated cross-sections"
    )
    return "unbalanced"


def _finish_all(
    parts: list[_AggParts],
    inference: _ColumnInference,
    offset: int,
    *,
    bootstrap: bool,
    level: float,
) -> tuple[dict[str, CSAggregation], dict[str, dict[str, np.ndarray]]]:
    """Every aggregation of the fit, their columns following one another from ``offset``."""
    aggregations: dict[str, CSAggregation] = {}
    tables: dict[str, dict[str, np.ndarray]] = {}
    for p in parts:
        aggregations[p.kind], tables[p.kind] = _finish(
            p, inference, offset, bootstrap=bootstrap, level=level
        )
        offset += p.n_columns
    return aggregations, tables


def _extra(
    aggregations: dict[str, CSAggregation],
    tables: dict[str, dict[str, np.ndarray]],
    pretest: dict[str, float] | None,
) -> dict[str, Any]:
    """``DiDResults.extra``: the aggregations' summaries, two of their tables, the pre-test."""
    extra: dict[str, Any] = {
        "aggregations": {
            kind: {
                "att": aggregations[kind].att,
                "se": aggregations[kind].se,
                "ci_low": aggregations[kind].ci_low,
                "ci_high": aggregations[kind].ci_high,
            }
            for kind in ("simple", "group", "dynamic", "calendar")
        },
        "group_effects": _records(tables["group"]),
        "calendar_effects": _records(tables["calendar"]),
    }
    if pretest is not None:
        extra["pretest"] = dict(pretest)
    return plain(extra)


def _group_time_frame(
    cells: _Cells, inference: _ColumnInference, *, bootstrap: bool, level: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``group_time`` table and the analytic standard errors of the cells."""
    k = cells.att.size
    analytic_se = _floor(inference.analytic[:k])
    se = analytic_se
    crit = normal_crit(level)
    band = None
    if bootstrap:
        se = _floor(np.where(np.isnan(analytic_se), np.nan, inference.boot_se[:k]))
        boot_crit = inference.crit(0, k, level)
        if math.isfinite(boot_crit):
            band = max(boot_crit, crit)
    columns = {
        "group": cells.group,
        "time": cells.time,
        "att": cells.att,
        "se": se,
        "ci_low": cells.att - crit * se,
        "ci_high": cells.att + crit * se,
        "post": (cells.group <= cells.time).astype(int),
    }
    if band is not None:
        columns["band_low"] = cells.att - band * se
        columns["band_high"] = cells.att + band * se
    return pd.DataFrame(columns), analytic_se


def _records(columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per row of a table given by its columns (``DataFrame.to_dict("records")``)."""
    names = list(columns)
    values = [columns[c].tolist() for c in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


# --------------------------------------------------------------------------- data shaping
@dataclass
class _WidePanel:
    units: np.ndarray
    periods: np.ndarray
    y: np.ndarray  # n x T
    x: np.ndarray | None  # n x T x k (without intercept)
    g: np.ndarray  # n, 0 = never treated
    w: np.ndarray  # n, mean 1
    cohorts: np.ndarray

    @property
    def n(self) -> int:
        return len(self.units)

    @property
    def group_codes(self) -> np.ndarray:
        """Per unit: 0 for never treated, ``1 + j`` for ``cohorts[j]``."""
        codes = np.searchsorted(self.cohorts, self.g) + 1
        return np.where(self.g > 0, codes, 0)

    @property
    def observed(self) -> np.ndarray:
        """``n x T``: whether each unit is observed in each period."""
        return ~np.isnan(self.y)

    @property
    def balanced(self) -> bool:
        """Whether every unit is observed in every period."""
        return bool(self.observed.all())

    @classmethod
    def build(
        cls,
        panel: DiDData,
        *,
        anticipation: int,
        notes: list[str],
        source: str,
        balance: bool = True,
    ) -> _WidePanel:
        """Reshape the long panel to ``units x periods``.

        With ``balance`` units missing in some period are dropped (with a warning); otherwise
        they are kept, with NaN outcomes in the periods where they are not observed.
        """
        frame = panel.frame
        unit_codes, all_units = pd.factorize(
            frame["unit"].to_numpy(), sort=True, use_na_sentinel=False
        )
        periods, time_codes = np.unique(frame["time"].to_numpy(), return_inverse=True)
        shape = (len(all_units), len(periods))

        def wide(column: str) -> np.ndarray:
            out = np.full(shape, np.nan)
            out[unit_codes, time_codes] = frame[column].to_numpy(dtype=float)
            return out

        y_all = wide("y")
        complete = ~np.isnan(y_all).any(axis=1)
        if not balance:
            complete = ~np.isnan(y_all).all(axis=1)
        if not complete.all():
            dropped = int((~complete).sum())
            msg = f"dropped {dropped} units not observed in every period (balanced panel needed)"
            warnings.warn(msg, DataWarning, stacklevel=3)
            notes.append(msg)
        units = np.asarray(all_units)[complete]
        ymat = y_all[complete]
        g_all = np.zeros(shape[0])
        g_all[unit_codes] = frame["g"].to_numpy(dtype=float)
        g = g_all[complete]
        if "weight" in frame.columns:
            wmat = wide("weight")
            spread = np.fmax.reduce(wmat, axis=1) - np.fmin.reduce(wmat, axis=1)
            if spread.max() > math.sqrt(EPS):
                raise InputError("weights must not vary over time within a unit", file=source)
            w = wmat[complete, 0]
            w = np.where(np.isnan(w), np.fmax.reduce(wmat[complete], axis=1), w)
            if np.any(w < 0) or not np.mean(w) > 0:
                raise InputError("weights must be non-negative with a positive mean", file=source)
            w = w / np.mean(w)
        else:
            w = np.ones(len(units))
        x = None
        if panel.covariates:
            x = np.stack([wide(c)[complete] for c in panel.covariates], axis=2)
        # cohorts first treated after the panel (plus anticipation) behave as never treated
        late = g > periods.max() + anticipation
        g[late] = 0
        # units treated in the first period (allowing for anticipation) have no pre-period
        early = (g > 0) & (g <= periods.min() + anticipation)
        if early.any():
            msg = (
                f"dropped {int(early.sum())} units already treated in the first period "
                f"{int(periods.min())}"
                + (f" (anticipation {anticipation})" if anticipation else "")
            )
            warnings.warn(msg, DataWarning, stacklevel=3)
            notes.append(msg)
            keep = ~early
            units, ymat, g, w = units[keep], ymat[keep], g[keep], w[keep]
            w = w / np.mean(w)
            if x is not None:
                x = x[keep]
        cohorts = np.unique(g[g > 0])
        if cohorts.size == 0:
            raise EstimationError("no treated cohorts remain after dropping early-treated units")
        return cls(units=units, periods=periods, y=ymat, x=x, g=g, w=w, cohorts=cohorts)


def _cluster_codes(
    data: pd.DataFrame, unit: str, cluster: str | None, units: np.ndarray, source: str
) -> tuple[np.ndarray | None, int]:
    if cluster is None or cluster == unit:
        return None, len(units)
    if cluster not in data.columns:
        raise InputError("column not found", file=source, column=cluster)
    pairs = data[[unit, cluster]].drop_duplicates()
    if pairs[unit].duplicated().any():
        raise InputError(
            "cluster must not vary over time within a unit", file=source, column=cluster
        )
    mapping = pd.Series(pairs[cluster].to_numpy(), index=pairs[unit].to_numpy())
    labels = mapping.reindex(units)
    if labels.isna().any():
        raise InputError("missing cluster value", file=source, column=cluster)
    codes, uniques = pd.factorize(labels, sort=True)
    if len(uniques) < 2:
        raise EstimationError("clustering needs at least two clusters")
    return codes.astype(np.intp), len(uniques)


# --------------------------------------------------------------------------- group-time cells
@dataclass
class _Cells:
    group: np.ndarray
    time: np.ndarray
    att: np.ndarray
    inf: np.ndarray  # n x K
    groups: np.ndarray


@dataclass
class _Layout:
    """The group-time cells to estimate, in output order.

    Cohorts are coded as in :attr:`_WidePanel.group_codes` (0 = never treated).
    """

    group: np.ndarray  # K, first treated period of the cell's cohort
    time: np.ndarray  # K, the cell's period
    treat: np.ndarray  # K, code of the cell's cohort
    post_col: np.ndarray  # K, column of the period
    base_col: np.ndarray  # K, column of the base period
    ctrl: np.ndarray  # K x codes, the comparison cohorts
    zero: np.ndarray  # K, universal-base reference cells (fixed at 0)

    @property
    def size(self) -> int:
        return len(self.group)

    def label(self, k: int) -> str:
        return f"({int(self.group[k])}, {int(self.time[k])})"


def _layout(wide: _WidePanel, *, control: str, anticipation: int, varying: bool) -> _Layout:
    """Enumerate the cells: cohort by cohort, period by period, with their comparison cohorts.

    A cohort needs a pre-treatment period (before ``g - anticipation``); its last one is the base
    of every post-treatment cell (and of every cell with the universal base). A cell needs
    comparison units, except the universal base's reference cell, which is fixed at 0.
    """
    periods = wide.periods
    code_cohort = np.concatenate([[0.0], wide.cohorts])
    code_count = np.bincount(wide.group_codes, minlength=code_cohort.size)
    pret = np.searchsorted(periods + anticipation, wide.cohorts, side="left") - 1
    cohort_pos = np.flatnonzero(pret >= 0)
    cols = np.arange(1 if varying else 0, len(periods))
    j = np.repeat(cohort_pos, cols.size)
    c = np.tile(cols, cohort_pos.size)
    g = wide.cohorts[j]
    post = g <= periods[c]
    b = np.where(post, pret[j], c - 1) if varying else pret[j]
    zero = (b == c) if not varying else np.zeros(c.size, dtype=bool)
    never = code_cohort == 0
    if control == "never_treated":
        ctrl = np.repeat(never[None, :], c.size, axis=0)
    else:
        cutoff = np.maximum(periods[c], periods[b]) + anticipation
        ctrl = never[None, :] | (
            (code_cohort[None, :] > cutoff[:, None]) & (code_cohort[None, :] != g[:, None])
        )
    ctrl[zero] = False
    keep = zero | (ctrl.astype(np.int64) @ code_count > 0)
    if not keep.any():
        raise EstimationError("no group-time cell could be formed; check timing and controls")
    return _Layout(
        group=g[keep].astype(np.int64),
        time=periods[c[keep]],
        treat=j[keep] + 1,
        post_col=c[keep],
        base_col=b[keep],
        ctrl=ctrl[keep],
        zero=zero[keep],
    )


def _group_time(
    wide: _WidePanel,
    *,
    control: str,
    est_method: str,
    anticipation: int,
    base_period: str,
) -> _Cells:
    if control == "never_treated" and not np.any(wide.g == 0):
        raise EstimationError("no never-treated units: use control_group='not_yet_treated'")
    layout = _layout(
        wide, control=control, anticipation=anticipation, varying=base_period == "varying"
    )
    if not wide.balanced:
        att, inf = _cells_one_at_a_time(wide, layout, est_method, _rc_cell)
    elif wide.x is None:
        att, inf = _mean_cells(wide, layout, est_method)
    else:
        att, inf = _cells_one_at_a_time(wide, layout, est_method, _cell)
    return _Cells(
        group=layout.group,
        time=layout.time,
        att=att,
        inf=inf,
        groups=np.unique(layout.group),
    )


def _mean_cells(
    wide: _WidePanel, layout: _Layout, est_method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Every cell without covariates, at once.

    Without covariates the outcome regression, IPW and doubly robust 2x2 estimators all reduce to
    the difference between the weighted mean outcome changes of the cohort and of its comparison
    group, with influence function ``n w_i (dy_i - mean_T) / W_T`` for cohort units and
    ``-n w_i (dy_i - mean_C) / W_C`` for comparison units (``W`` the groups' total weights).
    """
    n, k = wide.n, layout.size
    codes = wide.group_codes
    cols = np.arange(k)
    dy = wide.y[:, layout.post_col] - wide.y[:, layout.base_col]
    member = (codes[:, None] == np.arange(layout.ctrl.shape[1])[None, :]).astype(float)
    code_weight = member.T @ wide.w
    code_dy = member.T @ (wide.w[:, None] * dy)  # codes x K
    ctrl = layout.ctrl.astype(float)
    weight_t = code_weight[layout.treat]
    weight_c = ctrl @ code_weight
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_t = code_dy[layout.treat, cols] / weight_t
        mean_c = np.einsum("kc,ck->k", ctrl, code_dy) / weight_c
        scale = -ctrl.T / weight_c
        scale[layout.treat, cols] = 1.0 / weight_t
        centre = ctrl.T * mean_c
        centre[layout.treat, cols] = mean_t
        inf = dy
        inf -= centre[codes]
        inf *= scale[codes]
        inf *= (n * wide.w)[:, None]
        att = mean_t - mean_c
    valid = _valid_mean_cells(layout, weight_t, weight_c, est_method)
    att[layout.zero] = 0.0
    inf[:, layout.zero] = 0.0
    att[~valid] = np.nan
    inf[:, ~valid] = np.nan
    return att, inf


def _valid_mean_cells(
    layout: _Layout, weight_t: np.ndarray, weight_c: np.ndarray, est_method: str
) -> np.ndarray:
    """Cells that can be estimated without covariates; warns about the others.

    The intercept-only propensity score of ``dr`` and ``ipw`` is the cohort's share of the total
    weight, checked against the same overlap and trimming limits as with covariates (with no
    comparison weight the logit cannot converge and the score is 1).
    """
    valid = layout.zero | ((weight_t > 0) & (weight_c > 0))
    if est_method == "reg":
        for k in np.flatnonzero(~valid & (weight_c <= 0)):
            warnings.warn(
                f"group-time {layout.label(k)} not estimated: the comparison units have no weight",
                InferenceWarning,
                stacklevel=5,
            )
        return valid
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = weight_t / (weight_t + weight_c)
    for k in np.flatnonzero(~layout.zero & (weight_t > 0) & (ps >= _TRIM_LEVEL)):
        label = layout.label(k)
        if weight_c[k] <= 0:
            warnings.warn(
                f"propensity score did not converge for group-time {label}",
                InferenceWarning,
                stacklevel=5,
            )
        if ps[k] >= _OVERLAP_LIMIT:
            msg = f"overlap condition violated for group-time {label}"
        else:
            msg = (
                f"group-time {label} not estimated: every comparison unit is trimmed "
                f"(propensity score at least {_TRIM_LEVEL})"
            )
        warnings.warn(msg, InferenceWarning, stacklevel=5)
        valid[k] = False
    return valid


def _cells_one_at_a_time(
    wide: _WidePanel,
    layout: _Layout,
    est_method: str,
    cell: Callable[..., tuple[float, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Every cell by its own 2x2 estimator ``cell``: :func:`_cell` with covariates,
    :func:`_rc_cell` on an unbalanced panel (R ``did``'s ``allow_unbalanced_panel``, influence
    functions summed by unit)."""
    codes = wide.group_codes
    att = np.zeros(layout.size)
    inf = np.zeros((wide.n, layout.size))
    for k in np.flatnonzero(~layout.zero):
        att[k], inf[:, k] = cell(
            wide,
            codes == layout.treat[k],
            layout.ctrl[k][codes],
            int(layout.base_col[k]),
            int(layout.post_col[k]),
            est_method,
            label=layout.label(k),
        )
    return att, inf


def _guarded_2x2(
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    est_method: str,
    label: str,
    fit: Callable[[np.ndarray | None], tuple[float, np.ndarray]],
) -> tuple[float, np.ndarray] | None:
    """R ``did``'s checks of one 2x2 comparison, then ``fit(propensity score)``.

    The propensity score (``dr``, ``ipw``) must converge (else a warning) and stay below the
    overlap limit; the comparison units must support the outcome regression (``dr``, ``reg``).
    Returns ``None``, with an :class:`InferenceWarning`, when the cell cannot be estimated.
    """
    try:
        ps = None
        if est_method in ("dr", "ipw"):
            ps, raw_ps, converged = _pscore(d, x, w)
            if not converged:
                warnings.warn(
                    f"propensity score did not converge for group-time {label}",
                    InferenceWarning,
                    stacklevel=6,
                )
            if np.max(raw_ps) >= _OVERLAP_LIMIT:
                warnings.warn(
                    f"overlap condition violated for group-time {label}",
                    InferenceWarning,
                    stacklevel=6,
                )
                return None
        if est_method in ("dr", "reg"):
            xc = x[d == 0]
            if rcond(xc.T @ xc) < EPS:
                warnings.warn(
                    f"not enough comparison units for group-time {label} to run the regression",
                    InferenceWarning,
                    stacklevel=6,
                )
                return None
        att, inf = fit(ps)
    except (np.linalg.LinAlgError, EstimationError) as exc:
        warnings.warn(f"group-time {label} not estimated: {exc}", InferenceWarning, stacklevel=6)
        return None
    if not math.isfinite(att):
        return None
    return att, inf


def _cell(
    wide: _WidePanel,
    treat: np.ndarray,
    ctrl: np.ndarray,
    b: int,
    c: int,
    est_method: str,
    *,
    label: str,
) -> tuple[float, np.ndarray]:
    """One 2x2 comparison: ATT and the full-sample influence function."""
    n = wide.n
    idx = treat | ctrl
    n1 = int(idx.sum())
    dy = wide.y[idx, c] - wide.y[idx, b]
    d = treat[idx].astype(float)
    w = wide.w[idx]
    assert wide.x is not None
    x = np.column_stack([np.ones(n1), wide.x[idx, min(b, c), :]])
    nan_col = np.full(n, np.nan)

    def fit(ps: np.ndarray | None) -> tuple[float, np.ndarray]:
        if est_method == "reg":
            return _reg_did(dy, d, x, w)
        assert ps is not None
        return (_ipw_did if est_method == "ipw" else _dr_did)(dy, d, x, w, ps)

    result = _guarded_2x2(d, x, w, est_method, label, fit)
    if result is None:
        return math.nan, nan_col
    att, inf = result
    full = np.zeros(n)
    full[idx] = (n / n1) * inf
    return att, full


@dataclass
class _RCSample:
    """The observations of one 2x2 comparison on an unbalanced panel."""

    unit: np.ndarray  # unit row of each observation
    y: np.ndarray
    post: np.ndarray
    d: np.ndarray
    x: np.ndarray  # with intercept
    w: np.ndarray

    @classmethod
    def build(
        cls, wide: _WidePanel, treat: np.ndarray, ctrl: np.ndarray, b: int, c: int
    ) -> _RCSample:
        """Observations of cohort and comparison units in the base period ``b`` and period ``c``.

        Covariates are each observation's own values.
        """
        member = treat | ctrl
        obs = wide.observed
        pre_units = np.flatnonzero(member & obs[:, b])
        post_units = np.flatnonzero(member & obs[:, c])
        unit = np.concatenate([pre_units, post_units])
        y = np.concatenate([wide.y[pre_units, b], wide.y[post_units, c]])
        post = np.concatenate([np.zeros(pre_units.size), np.ones(post_units.size)])
        x = np.ones((unit.size, 1))
        if wide.x is not None:
            x = np.column_stack(
                [x, np.concatenate([wide.x[pre_units, b, :], wide.x[post_units, c, :]])]
            )
        return cls(unit, y, post, treat[unit].astype(float), x, wide.w[unit])

    def empty_cells(self) -> list[str]:
        """Which of the four group-period cells have no observations."""
        labels = []
        for d_val, group in ((1.0, "cohort"), (0.0, "comparison")):
            for p_val, period in ((0.0, "base period"), (1.0, "period")):
                if not np.any((self.d == d_val) & (self.post == p_val)):
                    labels.append(f"{group} in the {period}")
        return labels


def _rc_cell(
    wide: _WidePanel,
    treat: np.ndarray,
    ctrl: np.ndarray,
    b: int,
    c: int,
    est_method: str,
    *,
    label: str,
) -> tuple[float, np.ndarray]:
    """One 2x2 comparison on an unbalanced panel: ATT and the per-unit influence function."""
    n = wide.n
    nan_col = np.full(n, np.nan)
    sample = _RCSample.build(wide, treat, ctrl, b, c)
    empty = sample.empty_cells()
    if empty:
        warnings.warn(
            f"group-time {label} not estimated: no observations of the " + ", ".join(empty),
            InferenceWarning,
            stacklevel=5,
        )
        return math.nan, nan_col
    y, post, d, x, w = sample.y, sample.post, sample.d, sample.x, sample.w

    def fit(ps: np.ndarray | None) -> tuple[float, np.ndarray]:
        if est_method == "reg":
            return _reg_did_rc(y, post, d, x, w)
        assert ps is not None
        return (_ipw_did_rc if est_method == "ipw" else _dr_did_rc)(y, post, d, x, w, ps)

    result = _guarded_2x2(d, x, w, est_method, label, fit)
    if result is None:
        return math.nan, nan_col
    att, inf = result
    return att, np.bincount(sample.unit, weights=(n / y.size) * inf, minlength=n)


def _pretest(cells: _Cells, scores: np.ndarray, se: np.ndarray, n: int) -> dict[str, float] | None:
    """Wald test that all pre-treatment ATT(g,t) are zero (R ``did``: ``W``, ``Wpval``).

    ``scores`` are the (cluster-summed) influence functions whose first columns are the cells'.
    """
    pre = np.flatnonzero((cells.group > cells.time) & np.isfinite(se))
    if pre.size == 0:
        return None
    pre_scores = scores[:, pre]
    pre_v = pre_scores.T @ pre_scores / n
    pre_att = cells.att[pre]
    if not (np.all(np.isfinite(pre_v)) and np.all(np.isfinite(pre_att))):
        return None
    if rcond(pre_v) <= EPS:
        return None
    stat = float(n * pre_att @ np.linalg.solve(pre_v, pre_att))
    df = int(pre.size)
    return {"W": stat, "df": df, "p_value": float(special.chdtrc(df, stat))}


# --------------------------------------------------------------------------- inference
def _floor(se: np.ndarray) -> np.ndarray:
    """Standard errors at or below :data:`SE_FLOOR` become NaN."""
    return np.where(se <= SE_FLOOR, np.nan, se)


@dataclass
class _ColumnInference:
    """Analytic and (optionally) multiplier-bootstrap inference for columns of influence functions.

    With the bootstrap every column shares one set of multiplier draws (those of the fit's seed).
    """

    scores: np.ndarray  # n (or clusters) x columns
    analytic: np.ndarray
    n: int
    n_clusters: int
    draws: np.ndarray | None = None
    sigma: np.ndarray | None = None

    @classmethod
    def compute(cls, columns: np.ndarray, state: _CSState, *, bootstrap: bool) -> _ColumnInference:
        n = columns.shape[0]
        scores = (
            columns
            if state.cluster_codes is None
            else group_sums(columns, state.cluster_codes, state.n_clusters)
        )
        with np.errstate(invalid="ignore"):
            analytic = np.sqrt(np.einsum("ij,ij->j", scores, scores)) / n
        out = cls(scores=scores, analytic=analytic, n=n, n_clusters=state.n_clusters)
        if bootstrap:
            finite = np.all(np.isfinite(scores), axis=0)
            draws = multiplier_bootstrap(
                np.where(finite, scores, 0.0),
                reps=state.reps,
                seed=state.seed,
                weight_type=state.weight_type,
            )
            draws[:, ~finite] = np.nan
            out.draws = draws
            out.sigma = bootstrap_scale(draws)
        return out

    @property
    def boot_se(self) -> np.ndarray:
        """Bootstrap standard errors of every column (NaN where degenerate)."""
        assert self.sigma is not None
        return self.sigma * math.sqrt(self.n_clusters) / self.n

    def crit(self, start: int, stop: int, level: float) -> float:
        """Sup-t critical value over columns ``start:stop`` (NaN when none has a scale)."""
        assert self.draws is not None
        assert self.sigma is not None
        return sup_t_crit(self.draws[:, start:stop], self.sigma[start:stop], level)


# --------------------------------------------------------------------------- aggregation
_TABLE_KEYS = {"group": "group", "dynamic": "rel_time", "calendar": "time"}
_EMPTY_TABLE = pd.DataFrame(columns=["att", "se", "ci_low", "ci_high"])


@dataclass
class _AggCells:
    """The estimated cells (finite ATT) and the cohort weights, as R ``aggte`` uses them."""

    group: np.ndarray
    time: np.ndarray
    att: np.ndarray
    inf: np.ndarray  # n x cells
    pg: np.ndarray  # cohort share of each cell
    code: np.ndarray  # index of each cell's cohort in ``glist``
    glist: np.ndarray
    pg_by_group: np.ndarray
    w: np.ndarray
    unit_code: np.ndarray  # index of each unit's cohort in ``glist``, ``len(glist)`` if none

    @classmethod
    def build(
        cls,
        group: np.ndarray,
        time: np.ndarray,
        att: np.ndarray,
        inf: np.ndarray,
        state: _CSState,
    ) -> _AggCells:
        ok = np.isfinite(att)
        group, time, att, inf = group[ok], time[ok], att[ok], inf[:, ok]
        w = state.unit_weight
        unit_group = state.unit_group
        glist = np.unique(group)
        code = np.searchsorted(glist, group)
        pos = np.minimum(np.searchsorted(glist, unit_group), max(glist.size - 1, 0))
        found = glist[pos] == unit_group if glist.size else np.zeros(len(w), dtype=bool)
        unit_code = np.where(found, pos, glist.size)
        pg_by_group = np.bincount(unit_code, weights=w, minlength=glist.size + 1)[:-1] / len(w)
        return cls(
            group=group,
            time=time,
            att=att,
            inf=inf,
            pg=pg_by_group[code],
            code=code,
            glist=glist,
            pg_by_group=pg_by_group,
            w=w,
            unit_code=unit_code,
        )

    def weight_influence(
        self, code: np.ndarray, pg: np.ndarray, att: np.ndarray, member: np.ndarray
    ) -> np.ndarray:
        """Influence of the estimated aggregation weights (R ``did:::wif`` times the effects).

        For each column ``e`` of ``member`` (items x columns), the items ``j`` it holds are
        weighted by ``pg_j / sum pg``; with ``code`` the items' cohorts, returns the ``n x
        columns`` matrix ``wif_e @ att`` in closed form.
        """
        m = member.astype(float)
        total = pg @ m
        pg_att = (pg * att) @ m
        cohort = np.zeros((self.glist.size + 1, code.size))
        cohort[code, np.arange(code.size)] = 1.0
        att_sum = cohort @ (m * att[:, None])
        count = cohort @ m
        coef = att_sum / total - count * (pg_att / total**2)
        return self.w[:, None] * coef[self.unit_code]

    def pg_weighted(self, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cohort-share weighted averages of the cells in each column of ``member``.

        Returns the averages and their influence functions (including the weights' influence).
        """
        pgm = member * self.pg[:, None]
        weights = pgm / pgm.sum(axis=0)
        inf = self.inf @ weights + self.weight_influence(self.code, self.pg, self.att, member)
        return self.att @ weights, inf


@dataclass
class _AggParts:
    """Point estimates and influence functions of one aggregation, before inference."""

    kind: str
    att: float
    infl: np.ndarray
    settings: dict[str, Any]
    keys: np.ndarray | None = None
    table_att: np.ndarray | None = None
    table_inf: np.ndarray | None = None

    @property
    def m(self) -> int:
        return 0 if self.keys is None else len(self.keys)

    @property
    def n_columns(self) -> int:
        return self.m + 1

    def columns(self) -> np.ndarray:
        """Table influence functions followed by that of the overall estimate."""
        if self.table_inf is None:
            return self.infl[:, None]
        return np.column_stack([self.table_inf, self.infl])


def _aggregation_parts(
    cells: _AggCells,
    kind: str,
    *,
    min_e: float,
    max_e: float,
    balance_e: int | None,
) -> _AggParts:
    settings = {"min_e": min_e, "max_e": max_e, "balance_e": balance_e}
    post = (cells.group <= cells.time) & (cells.time - cells.group <= max_e)
    if kind == "simple":
        return _simple(cells, post, settings)
    if kind == "group":
        return _by_group(cells, post, settings)
    if kind == "dynamic":
        return _dynamic(cells, settings, min_e=min_e, max_e=max_e, balance_e=balance_e)
    if kind == "calendar":
        return _calendar(cells, settings)
    raise InputError(f"kind must be simple, group, dynamic or calendar: {kind}")


def _simple(cells: _AggCells, post: np.ndarray, settings: dict[str, Any]) -> _AggParts:
    if not post.any():
        raise EstimationError("no post-treatment group-time effects to aggregate")
    att, inf = cells.pg_weighted(post[:, None])
    return _AggParts("simple", float(att[0]), inf[:, 0], settings)


def _by_group(cells: _AggCells, post: np.ndarray, settings: dict[str, Any]) -> _AggParts:
    member = (cells.code[:, None] == np.arange(cells.glist.size)[None, :]) & post[:, None]
    count = member.sum(axis=0)
    used = np.flatnonzero(count > 0)
    if used.size == 0:
        raise EstimationError("no post-treatment group-time effects to aggregate")
    weights = member[:, used] / count[used]
    att_g = cells.att @ weights
    inf_g = cells.inf @ weights
    pgg = cells.pg_by_group[used]
    share = pgg / pgg.sum()
    est = float(att_g @ pgg / pgg.sum())
    infl = (
        inf_g @ share
        + cells.weight_influence(used, pgg, att_g, np.ones((used.size, 1), dtype=bool))[:, 0]
    )
    return _AggParts("group", est, infl, settings, cells.glist[used], att_g, inf_g)


def _dynamic(
    cells: _AggCells,
    settings: dict[str, Any],
    *,
    min_e: float,
    max_e: float,
    balance_e: int | None,
) -> _AggParts:
    event = cells.time - cells.group
    eseq = np.unique(event)
    include = np.ones(event.size, dtype=bool)
    if balance_e is not None:
        t_max, t_min = cells.time.max(), cells.time.min()
        eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t_max + t_min)]
        include = t_max - cells.group >= balance_e
    eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
    member = (event[:, None] == eseq[None, :]) & include[:, None]
    used = member.any(axis=0)
    if not used.any():
        raise EstimationError("no event times to aggregate")
    att_e, inf_e = cells.pg_weighted(member[:, used])
    keys = eseq[used]
    epos = keys >= 0
    if epos.any():
        est = float(att_e[epos].mean())
        infl = inf_e[:, epos].mean(axis=1)
    else:
        est, infl = math.nan, np.full(cells.w.size, np.nan)
    return _AggParts("dynamic", est, infl, settings, keys, att_e, inf_e)


def _calendar(cells: _AggCells, settings: dict[str, Any]) -> _AggParts:
    tlist = np.unique(cells.time)
    tlist = tlist[tlist >= cells.group.min()]
    member = (cells.time[:, None] == tlist[None, :]) & (cells.group <= cells.time)[:, None]
    used = member.any(axis=0)
    if not used.any():
        raise EstimationError("no treated periods to aggregate")
    att_t, inf_t = cells.pg_weighted(member[:, used])
    return _AggParts(
        "calendar", float(att_t.mean()), inf_t.mean(axis=1), settings, tlist[used], att_t, inf_t
    )


def _finish(
    parts: _AggParts, inference: _ColumnInference, offset: int, *, bootstrap: bool, level: float
) -> tuple[CSAggregation, dict[str, np.ndarray]]:
    """Attach standard errors (columns ``offset:`` of ``inference``) and build the aggregation.

    Also returns the table's columns as arrays.
    """
    stop = offset + parts.n_columns
    se = _floor(inference.boot_se[offset:stop] if bootstrap else inference.analytic[offset:stop])
    z = normal_crit(level)
    settings = {**parts.settings, "bootstrap": bootstrap}
    if parts.keys is None:
        agg = CSAggregation(
            parts.kind,
            parts.att,
            float(se[0]),
            level,
            _EMPTY_TABLE.copy(),
            z,
            parts.infl,
            None,
            settings,
        )
        return agg, {}
    assert parts.table_att is not None
    band = None
    if bootstrap:
        crit = inference.crit(offset, offset + parts.m, level)
        band = crit if math.isfinite(crit) and crit >= z else z
    columns = _table_columns(
        _TABLE_KEYS[parts.kind], parts.keys, parts.table_att, se[: parts.m], z, band
    )
    agg = CSAggregation(
        parts.kind,
        parts.att,
        float(se[parts.m]),
        level,
        pd.DataFrame(columns),
        band or z,
        parts.infl,
        parts.table_inf,
        settings,
    )
    return agg, columns


def _table_columns(
    key: str, keys: np.ndarray, att: np.ndarray, se: np.ndarray, z: float, crit: float | None
) -> dict[str, np.ndarray]:
    columns = {
        key: keys.astype(int),
        "att": att,
        "se": se,
        "ci_low": att - z * se,
        "ci_high": att + z * se,
    }
    if crit is not None:
        columns["band_low"] = att - crit * se
        columns["band_high"] = att + crit * se
    return columns
