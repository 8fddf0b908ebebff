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
never treated; unbalanced panels are balanced by dropping incomplete units; covariates are taken
from the earlier of the two periods of each comparison. The headline ``att`` of the results is the
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from kinship_eval.did._linalg import (
    EPS,
    SE_FLOOR,
    bootstrap_summary,
    group_sums,
    logit_fit,
    multiplier_bootstrap,
    normal_crit,
    rcond,
)
from kinship_eval.did._panel import plain, recode_cohorts
from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.results import DiDResults, normal_interval
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
def _reg_did(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD (Heckman, Ichimura & Todd 1997); DRDID ``reg_did_panel``."""
    n = len(d)
    w = w / np.mean(w)
    ctrl = d == 0
    xc = x[ctrl]
    wc = w[ctrl]
    xtx = (xc * wc[:, None]).T @ xc
    beta = np.linalg.solve(xtx, (xc * wc[:, None]).T @ dy[ctrl])
    out_delta = x @ beta
    w_treat = w * d
    w_cont = w * d
    eta_treat = np.mean(w_treat * dy) / np.mean(w_treat)
    eta_cont = np.mean(w_cont * out_delta) / np.mean(w_cont)
    att = eta_treat - eta_cont
    w_ols = w * (1.0 - d)
    xpx_inv = np.linalg.inv((x * w_ols[:, None]).T @ x / n)
    alr_ols = (x * (w_ols * (dy - out_delta))[:, None]) @ xpx_inv
    inf_treat = (w_treat * dy - w_treat * eta_treat) / np.mean(w_treat)
    inf_cont_1 = w_cont * out_delta - w_cont * eta_cont
    m1 = np.mean(x * w_cont[:, None], axis=0)
    inf_control = (inf_cont_1 + alr_ols @ m1) / np.mean(w_cont)
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
    w = w / np.mean(w)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    w_treat = trim * w * d
    w_cont = trim * w * ps * (1.0 - d) / (1.0 - ps)
    eta_treat = np.mean(w_treat * dy) / np.mean(w_treat)
    eta_cont = np.mean(w_cont * dy) / np.mean(w_cont)
    att = eta_treat - eta_cont
    alr_ps = _ps_linear_rep(d, x, w, ps)
    inf_treat = (w_treat * dy - w_treat * eta_treat) / np.mean(w_treat)
    inf_cont_1 = w_cont * dy - w_cont * eta_cont
    m2 = np.mean(x * (w_cont * (dy - eta_cont))[:, None], axis=0)
    inf_control = (inf_cont_1 + alr_ps @ m2) / np.mean(w_cont)
    return float(att), inf_treat - inf_control


def _dr_did(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> tuple[float, np.ndarray]:
    """Locally efficient doubly robust DiD (Sant'Anna & Zhao 2020); DRDID ``drdid_panel``."""
    n = len(d)
    w = w / np.mean(w)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    ctrl = d == 0
    xc = x[ctrl]
    wc = w[ctrl]
    beta = np.linalg.solve((xc * wc[:, None]).T @ xc, (xc * wc[:, None]).T @ dy[ctrl])
    out_delta = x @ beta
    resid = dy - out_delta
    w_treat = trim * w * d
    w_cont = trim * w * ps * (1.0 - d) / (1.0 - ps)
    eta_treat = np.mean(w_treat * resid) / np.mean(w_treat)
    eta_cont = np.mean(w_cont * resid) / np.mean(w_cont)
    att = eta_treat - eta_cont
    w_ols = w * (1.0 - d)
    xpx = (x * w_ols[:, None]).T @ x / n
    if rcond(xpx) < EPS:
        raise EstimationError("the outcome regression design matrix is singular")
    alr_ols = (x * (w_ols * resid)[:, None]) @ np.linalg.inv(xpx)
    alr_ps = _ps_linear_rep(d, x, w, ps)
    inf_treat_1 = w_treat * resid - w_treat * eta_treat
    m1 = np.mean(x * w_treat[:, None], axis=0)
    inf_treat = (inf_treat_1 - alr_ols @ m1) / np.mean(w_treat)
    inf_cont_1 = w_cont * resid - w_cont * eta_cont
    m2 = np.mean(x * (w_cont * (resid - eta_cont))[:, None], axis=0)
    m3 = np.mean(x * w_cont[:, None], axis=0)
    inf_control = (inf_cont_1 + alr_ps @ m2 - alr_ols @ m3) / np.mean(w_cont)
    return float(att), inf_treat - inf_control


# --------------------------------------------------------------------------- results objects
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
        self.ci_low, self.ci_high, self.p_value = normal_interval(self.att, self.se, self.level)

    def to_frame(self) -> pd.DataFrame:
        """The table with a leading ``overall`` row."""
        key = {"group": "group", "dynamic": "rel_time", "calendar": "time"}.get(self.kind)
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
        return _aggregate(
            self,
            kind,
            min_e=min_e,
            max_e=max_e,
            balance_e=balance_e,
            bootstrap=self.state.bootstrap if bootstrap is None else bootstrap,
            level=self.level if level is None else level,
        )


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
    wide = _WidePanel.build(panel, anticipation=anticipation, notes=notes, source=source)
    cluster_codes, n_clusters = _cluster_codes(data, unit, cluster, wide.units, source)

    cells = _group_time(
        wide,
        control=control,
        est_method=est_method,
        anticipation=anticipation,
        base_period=base_period,
        notes=notes,
    )
    n = wide.n
    inf = cells.inf
    scores = inf if cluster_codes is None else group_sums(inf, cluster_codes, n_clusters)
    vcov = scores.T @ scores / n
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(vcov) / n)
    se = np.where(se <= SE_FLOOR, np.nan, se)
    analytic_se = se.copy()

    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    crit = normal_crit(level)
    band = None
    if bootstrap:
        finite = np.all(np.isfinite(scores), axis=0)
        draws = multiplier_bootstrap(
            np.where(finite, scores, 0.0), reps=reps, seed=seed, weight_type=weight_type
        )
        draws[:, ~finite] = np.nan
        boot_se, boot_crit = bootstrap_summary(draws, level=level, n=n, n_clusters=n_clusters)
        se = np.where(np.isnan(analytic_se), np.nan, boot_se)
        se = np.where(se <= SE_FLOOR, np.nan, se)
        if np.isfinite(boot_crit):
            band = max(boot_crit, crit)

    group_time = pd.DataFrame(
        {
            "group": cells.group,
            "time": cells.time,
            "att": cells.att,
            "se": se,
            "ci_low": cells.att - crit * se,
            "ci_high": cells.att + crit * se,
            "post": (cells.group <= cells.time).astype(int),
        }
    )
    if band is not None:
        group_time["band_low"] = cells.att - band * se
        group_time["band_high"] = cells.att + band * se

    pretest = _pretest(cells, vcov, analytic_se, n)

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
    settings = {
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
    }
    results = CSResults(
        estimator="cs",
        outcome=panel.outcome,
        att=math.nan,
        se=math.nan,
        n_units=n,
        n_treated_units=int(np.sum(np.isin(wide.g, cells.groups))),
        n_periods=len(wide.periods),
        inference="multiplier_bootstrap" if bootstrap else "influence_function",
        level=level,
        group_time=group_time,
        settings=settings,
        notes=notes,
        influence_function=inf,
        units=wide.units,
        pretest=pretest,
        state=state,
    )
    if np.any(np.isnan(cells.att)):
        notes.append(
            "some ATT(g,t) could not be estimated (see warnings); aggregations leave them out"
        )
    group_agg = results.aggregate("group")
    dynamic = results.aggregate("dynamic")
    simple = results.aggregate("simple")
    calendar = results.aggregate("calendar")
    results.att = group_agg.att
    results.se = group_agg.se
    results.ci_low, results.ci_high, results.p_value = normal_interval(
        group_agg.att, group_agg.se, level
    )
    results.event_study = dynamic.table
    extra: dict[str, Any] = {
        "aggregations": {
            agg.kind: {"att": agg.att, "se": agg.se, "ci_low": agg.ci_low, "ci_high": agg.ci_high}
            for agg in (simple, group_agg, dynamic, calendar)
        },
        "group_effects": group_agg.table.to_dict("records"),
        "calendar_effects": calendar.table.to_dict("records"),
    }
    if pretest is not None:
        extra["pretest"] = dict(pretest)
    results.extra = plain(extra)
    return results


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

    @classmethod
    def build(
        cls, panel: DiDData, *, anticipation: int, notes: list[str], source: str
    ) -> _WidePanel:
        frame = panel.frame
        periods = panel.periods
        y = panel.wide("y")
        complete = y.notna().all(axis=1).to_numpy()
        if not complete.all():
            dropped = int((~complete).sum())
            msg = f"dropped {dropped} units not observed in every period (balanced panel needed)"
            warnings.warn(msg, DataWarning, stacklevel=3)
            notes.append(msg)
        units = y.index.to_numpy()[complete]
        ymat = y.to_numpy(dtype=float)[complete]
        g = frame.groupby("unit", sort=True)["g"].first().to_numpy()[complete].astype(float)
        if "weight" in frame.columns:
            wtab = frame.groupby("unit", sort=True)["weight"]
            if (wtab.max() - wtab.min()).max() > math.sqrt(EPS):
                raise InputError("weights must not vary over time within a unit", file=source)
            w = wtab.first().to_numpy(dtype=float)[complete]
            if np.any(w < 0) or not np.mean(w) > 0:
                raise InputError("weights must be non-negative with a positive mean", file=source)
            w = w / np.mean(w)
        else:
            w = np.ones(len(units))
        x = None
        if panel.covariates:
            x = np.stack(
                [panel.wide(c).to_numpy(dtype=float)[complete] for c in panel.covariates],
                axis=2,
            )
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


def _group_time(
    wide: _WidePanel,
    *,
    control: str,
    est_method: str,
    anticipation: int,
    base_period: str,
    notes: list[str],
) -> _Cells:
    periods = wide.periods
    n_t = len(periods)
    n = wide.n
    gu = wide.g
    never = gu == 0
    if control == "never_treated" and not never.any():
        raise EstimationError("no never-treated units: use control_group='not_yet_treated'")
    varying = base_period == "varying"
    out_group: list[int] = []
    out_time: list[int] = []
    out_att: list[float] = []
    columns: list[np.ndarray] = []
    for g in wide.cohorts:
        before = np.flatnonzero(periods + anticipation < g)
        if before.size == 0:
            continue
        pret = int(before[-1])
        treat = gu == g
        for c in range(1 if varying else 0, n_t):
            post = g <= periods[c]
            b = pret if (post or not varying) else c - 1
            if not varying and b == c:
                out_group.append(int(g))
                out_time.append(int(periods[c]))
                out_att.append(0.0)
                columns.append(np.zeros(n))
                continue
            if control == "never_treated":
                ctrl = never
            else:
                cutoff = max(periods[c], periods[b]) + anticipation
                ctrl = never | ((gu > cutoff) & (gu != g))
            if not ctrl.any():
                continue
            att, inf = _cell(
                wide, treat, ctrl, b, c, est_method, label=f"({int(g)}, {int(periods[c])})"
            )
            out_group.append(int(g))
            out_time.append(int(periods[c]))
            out_att.append(att)
            columns.append(inf)
    if not columns:
        raise EstimationError("no group-time cell could be formed; check timing and controls")
    return _Cells(
        group=np.asarray(out_group),
        time=np.asarray(out_time),
        att=np.asarray(out_att, dtype=float),
        inf=np.column_stack(columns),
        groups=np.unique(out_group),
    )


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
    if wide.x is None:
        x = np.ones((n1, 1))
    else:
        x = np.column_stack([np.ones(n1), wide.x[idx, min(b, c), :]])
    nan_col = np.full(n, np.nan)
    try:
        ps = None
        if est_method in ("dr", "ipw"):
            ps, raw_ps, converged = _pscore(d, x, w)
            if not converged:
                warnings.warn(
                    f"propensity score did not converge for group-time {label}",
                    InferenceWarning,
                    stacklevel=4,
                )
            if np.max(raw_ps) >= _OVERLAP_LIMIT:
                warnings.warn(
                    f"overlap condition violated for group-time {label}",
                    InferenceWarning,
                    stacklevel=4,
                )
                return math.nan, nan_col
        if est_method in ("dr", "reg"):
            xc = x[d == 0]
            if rcond(xc.T @ xc) < EPS:
                warnings.warn(
                    f"not enough comparison units for group-time {label} to run the regression",
                    InferenceWarning,
                    stacklevel=4,
                )
                return math.nan, nan_col
        if est_method == "reg":
            att, inf = _reg_did(dy, d, x, w)
        elif est_method == "ipw":
            assert ps is not None
            att, inf = _ipw_did(dy, d, x, w, ps)
        else:
            assert ps is not None
            att, inf = _dr_did(dy, d, x, w, ps)
    except (np.linalg.LinAlgError, EstimationError) as exc:
        warnings.warn(f"group-time {label} not estimated: {exc}", InferenceWarning, stacklevel=4)
        return math.nan, nan_col
    if not math.isfinite(att):
        return math.nan, nan_col
    full = np.zeros(n)
    full[idx] = (n / n1) * inf
    return att, full


def _pretest(cells: _Cells, vcov: np.ndarray, se: np.ndarray, n: int) -> dict[str, float] | None:
    """Wald test that all pre-treatment ATT(g,t) are zero (R ``did``: ``W``, ``Wpval``)."""
    pre = np.flatnonzero((cells.group > cells.time) & np.isfinite(se))
    if pre.size == 0:
        return None
    pre_v = vcov[np.ix_(pre, pre)]
    pre_att = cells.att[pre]
    if not (np.all(np.isfinite(pre_v)) and np.all(np.isfinite(pre_att))):
        return None
    if rcond(pre_v) <= EPS:
        return None
    stat = float(n * pre_att @ np.linalg.solve(pre_v, pre_att))
    df = int(pre.size)
    return {"W": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df))}


# --------------------------------------------------------------------------- aggregation
def _wif(
    keep_groups: np.ndarray, keep_pg: np.ndarray, w: np.ndarray, unit_group: np.ndarray
) -> np.ndarray:
    """Influence function of the estimated aggregation weights (R ``did:::wif``), ``n x m``."""
    ind = w[:, None] * (unit_group[:, None] == keep_groups[None, :]) - keep_pg[None, :]
    total = keep_pg.sum()
    return ind / total - ind.sum(axis=1)[:, None] * (keep_pg / total**2)[None, :]


def _aggregate(
    res: CSResults,
    kind: str,
    *,
    min_e: float,
    max_e: float,
    balance_e: int | None,
    bootstrap: bool,
    level: float,
) -> CSAggregation:
    state = res.state
    assert state is not None
    assert res.group_time is not None
    assert res.influence_function is not None
    gt = res.group_time
    ok = np.isfinite(gt["att"].to_numpy())
    group = gt["group"].to_numpy()[ok]
    tt = gt["time"].to_numpy()[ok]
    att = gt["att"].to_numpy()[ok]
    inf = res.influence_function[:, ok]
    n = inf.shape[0]
    w = state.unit_weight
    unit_group = state.unit_group
    glist = np.unique(group)
    pg_by_group = np.array([np.mean(w * (unit_group == g)) for g in glist])
    pg = pg_by_group[np.searchsorted(glist, group)]
    z = normal_crit(level)

    def inference(
        table_cols: np.ndarray | None, overall: np.ndarray
    ) -> tuple[np.ndarray, float, float | None]:
        """Standard errors of the table columns and the overall estimate, and the band.

        With the bootstrap all columns share one set of multiplier draws.
        """
        m = 0 if table_cols is None else table_cols.shape[1]
        cols = overall[:, None] if table_cols is None else np.column_stack([table_cols, overall])
        scores = (
            cols
            if state.cluster_codes is None
            else group_sums(cols, state.cluster_codes, state.n_clusters)
        )
        band = None
        if bootstrap:
            finite = np.all(np.isfinite(scores), axis=0)
            draws = multiplier_bootstrap(
                np.where(finite, scores, 0.0),
                reps=state.reps,
                seed=state.seed,
                weight_type=state.weight_type,
            )
            draws[:, ~finite] = np.nan
            out, _ = bootstrap_summary(draws, level=level, n=n, n_clusters=state.n_clusters)
            if m:
                _, crit = bootstrap_summary(
                    draws[:, :m], level=level, n=n, n_clusters=state.n_clusters
                )
                band = crit if math.isfinite(crit) and crit >= z else z
        else:
            out = np.sqrt(np.sum(scores**2, axis=0)) / n
        out = np.where(out <= SE_FLOOR, np.nan, out)
        return out[:m], float(out[m]), band

    def combine(which: np.ndarray, weights: np.ndarray, with_wif: bool) -> np.ndarray:
        out = inf[:, which] @ weights
        if with_wif:
            out = out + _wif(group[which], pg[which], w, unit_group) @ att[which]
        return out

    settings = {"min_e": min_e, "max_e": max_e, "balance_e": balance_e, "bootstrap": bootstrap}
    empty = pd.DataFrame(columns=["att", "se", "ci_low", "ci_high"])
    post = (group <= tt) & (tt - group <= max_e)

    if kind == "simple":
        keep = np.flatnonzero(post)
        if keep.size == 0:
            raise EstimationError("no post-treatment group-time effects to aggregate")
        weights_ = pg[keep] / pg[keep].sum()
        est = float(att[keep] @ weights_)
        infl = combine(keep, weights_, with_wif=True)
        _, se, _ = inference(None, infl)
        return CSAggregation(kind, est, se, level, empty, z, infl, None, settings)

    if kind == "group":
        att_g = []
        inf_g = []
        used = []
        for g in glist:
            which = np.flatnonzero((group == g) & post)
            if which.size == 0:
                continue
            used.append(g)
            att_g.append(att[which].mean())
            inf_g.append(combine(which, np.full(which.size, 1.0 / which.size), with_wif=False))
        if not used:
            raise EstimationError("no post-treatment group-time effects to aggregate")
        used_arr = np.asarray(used)
        att_arr = np.asarray(att_g)
        inf_mat = np.column_stack(inf_g)
        pgg = pg_by_group[np.searchsorted(glist, used_arr)]
        est = float(att_arr @ pgg / pgg.sum())
        infl = inf_mat @ (pgg / pgg.sum()) + _wif(used_arr, pgg, w, unit_group) @ att_arr
        table_se, se, band = inference(inf_mat, infl)
        table = _table("group", used_arr, att_arr, table_se, z, band)
        return CSAggregation(kind, est, se, level, table, band or z, infl, inf_mat, settings)

    if kind == "dynamic":
        event = tt - group
        eseq = np.unique(event)
        include = np.ones(len(group), dtype=bool)
        if balance_e is not None:
            t_max, t_min = tt.max(), tt.min()
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t_max + t_min)]
            include = t_max - group >= balance_e
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        att_e, inf_e, used = [], [], []
        for e in eseq:
            which = np.flatnonzero((event == e) & include)
            if which.size == 0:
                continue
            weights_ = pg[which] / pg[which].sum()
            used.append(e)
            att_e.append(float(att[which] @ weights_))
            inf_e.append(combine(which, weights_, with_wif=True))
        if not used:
            raise EstimationError("no event times to aggregate")
        used_arr = np.asarray(used)
        att_arr = np.asarray(att_e)
        inf_mat = np.column_stack(inf_e)
        epos = used_arr >= 0
        if epos.any():
            est = float(att_arr[epos].mean())
            infl = inf_mat[:, epos].mean(axis=1)
        else:
            est, infl = math.nan, np.full(n, np.nan)
        table_se, se, band = inference(inf_mat, infl)
        table = _table("rel_time", used_arr, att_arr, table_se, z, band)
        return CSAggregation(kind, est, se, level, table, band or z, infl, inf_mat, settings)

    if kind == "calendar":
        tlist = np.unique(tt)
        tlist = tlist[tlist >= group.min()]
        att_t, inf_t, used = [], [], []
        for t1 in tlist:
            which = np.flatnonzero((tt == t1) & (group <= tt))
            if which.size == 0:
                continue
            weights_ = pg[which] / pg[which].sum()
            used.append(t1)
            att_t.append(float(att[which] @ weights_))
            inf_t.append(combine(which, weights_, with_wif=True))
        if not used:
            raise EstimationError("no treated periods to aggregate")
        used_arr = np.asarray(used)
        att_arr = np.asarray(att_t)
        inf_mat = np.column_stack(inf_t)
        est = float(att_arr.mean())
        infl = inf_mat.mean(axis=1)
        table_se, se, band = inference(inf_mat, infl)
        table = _table("time", used_arr, att_arr, table_se, z, band)
        return CSAggregation(kind, est, se, level, table, band or z, infl, inf_mat, settings)

    raise InputError(f"kind must be simple, group, dynamic or calendar: {kind}")


def _table(
    key: str, keys: np.ndarray, att: np.ndarray, se: np.ndarray, z: float, crit: float | None
) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            key: keys.astype(int),
            "att": att,
            "se": se,
            "ci_low": att - z * se,
            "ci_high": att + z * se,
        }
    )
    if crit is not None:
        table["band_low"] = att - crit * se
        table["band_high"] = att + crit * se
    return table
