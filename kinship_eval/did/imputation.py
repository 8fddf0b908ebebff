"""Borusyak, Jaravel & Spiess (2024) imputation estimator.

1. Fit :math:`Y_{it}(0) = \\alpha_i + \\lambda_t + X_{it}'\\beta + \\varepsilon_{it}` by least
   squares on the untreated observations only (never-treated units, and eventually-treated
   units before ``first_treated - anticipation``).
2. Impute :math:`\\hat Y_{it}(0)` for every treated observation (``t >= first_treated``) and take
   the individual effects :math:`\\hat\\tau_{it} = Y_{it} - \\hat Y_{it}(0)`.
3. Average them: overall, by horizon ``h = t - first_treated``, by cohort and by cohort and period.

The overall ``att`` is by default (``att_weighting="cohort"``) the cohort aggregation of R ``did``'s
``aggte(type = "group")``, as for the package's other cohort-based estimators: each cohort's mean
post-treatment effect (the average over its observed post-treatment periods of the cohort-by-period
averages), the cohorts weighted by their number of treated units. On treated observation ``it`` of
cohort ``g`` in period ``t`` the weight is

.. math::

    w_{it} = \\frac{N_g}{N_1} \\cdot \\frac{1}{T_g} \\cdot \\frac{1}{n_{gt}},

with :math:`N_g` the cohort's treated units, :math:`N_1 = \\sum_g N_g`, :math:`T_g` the cohort's
post-treatment periods in the estimation window and :math:`n_{gt}` its observations in period ``t``;
on a balanced panel :math:`w_{it} = 1 / (N_1 T_g)`. ``att_weighting="observation"`` weights every
treated observation equally instead (:math:`w_{it} = 1 / n_1`, the paper's default estimand), which
counts cohorts by treated units x post-periods. The two coincide when every cohort has the same
number of post-treatment periods on a balanced panel. Both are always reported in ``extra``.

The estimator of any average :math:`\\sum w_{it}\\tau_{it}` is linear in the outcomes,
:math:`\\hat\\tau_w = \\sum_{it} v_{it} Y_{it}` with :math:`v_{it} = w_{it}` on treated observations
and :math:`v = -Z_0 (Z_0'Z_0)^{-1} Z_1' w_1` on untreated ones. Its standard error is the
conservative, unit-clustered estimator of the paper's Theorem 3,

.. math::

    \\hat\\sigma^2_w = \\sum_i \\Big(\\sum_t v_{it} \\tilde\\varepsilon_{it}\\Big)^2,

with :math:`\\tilde\\varepsilon` the first-step residuals on untreated observations and
:math:`\\hat\\tau_{it} - \\bar\\tau_{g,h}` on treated ones, where :math:`\\bar\\tau_{g,h}` is the
:math:`v^2`-weighted average effect of the cohort-by-horizon cell (``leave_out=True`` leaves the
unit's own observations out of that average, the paper's small-sample refinement). The weights
of every target (overall, each horizon, each cohort and period) are handled at once: the unit
effects are concentrated out (Schur complement), the untreated part of each unit's sum reduces to
``-(sum_t e_it W_it) gamma`` because first-step residuals sum to zero within units, and the
treated part is a sparse sum, so neither the untreated weights nor unit dummies are formed.

The pre-trend test (``pretrend_leads=K``) regresses untreated outcomes on the fixed effects,
covariates and indicators for the ``K`` periods before treatment, and tests the leads jointly with a
unit-clustered Wald test (the paper's Test 1).

References
----------
Borusyak, K., Jaravel, X. and Spiess, J. (2024). Revisiting event-study designs: robust and
efficient estimation. *Review of Economic Studies* 91(6), 3253-3285.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from kinship_eval.did._linalg import EPS, normal_crit, rcond
from kinship_eval.did._panel import compact_codes, group_rows, pair_codes, plain, recode_cohorts
from kinship_eval.did.data import prepare
from kinship_eval.did.results import DiDResults, event_study_table
from kinship_eval.errors import DataWarning, EstimationError, InputError

AttWeighting = Literal["cohort", "observation"]


def imputation(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    covariates: Sequence[str] = (),
    anticipation: int = 0,
    horizons: int | Sequence[int] | None = None,
    pretrend_leads: int = 0,
    leave_out: bool = False,
    level: float = 0.95,
    source: str = "panel",
    att_weighting: AttWeighting = "cohort",
) -> DiDResults:
    """Estimate the Borusyak-Jaravel-Spiess imputation estimator.

    Parameters
    ----------
    data
        Long panel, one row per unit and period (may be unbalanced).
    unit, time, outcome, first_treated
        Column names; ``first_treated`` is 0 or missing for never-treated units.
    covariates
        Time-varying covariates in the untreated-outcome model.
    anticipation
        Periods before ``first_treated`` excluded from the untreated-outcome fit.
    horizons
        Event-study horizons to report: ``None`` for all, an integer ``H`` for ``0..H`` or a
        sequence of horizons.
    pretrend_leads
        Number of pre-treatment leads to estimate and test jointly (0 to skip).
    leave_out
        Leave each unit out of the cohort-by-horizon averages used in the variance.
    level
        Confidence level.
    source
        Label for error messages.
    att_weighting
        Weights of the overall ``att``: ``"cohort"`` (default) averages each cohort's mean
        post-treatment effect with weights proportional to the cohort's treated units (R ``did``'s
        ``aggte(type = "group")``); ``"observation"`` averages every treated observation's effect
        with equal weight (BJS's default estimand). The standard error is the conservative BJS
        variance for the chosen weights.

    Returns
    -------
    DiDResults
        ``att`` the overall average chosen by ``att_weighting``; ``event_study`` has the horizon
        averages (and the pre-trend leads, with negative ``rel_time``, when requested);
        ``group_time`` the cohort-by-period averages; ``extra["att_cohort_weighted"]`` and
        ``extra["att_observation_weighted"]`` both overall averages (``att``, ``se``);
        ``extra["cohort_effects"]`` one record per cohort (``group``, its mean post-treatment
        effect ``att`` and ``se``, ``size`` in treated units, ``n_periods``, ``n_obs`` and its
        ``weight`` in the cohort-weighted ``att``); ``extra["pretrend_test"]`` the joint test.
    """
    if att_weighting not in ("cohort", "observation"):
        raise InputError(f"att_weighting must be 'cohort' or 'observation': {att_weighting!r}")
    if anticipation < 0 or int(anticipation) != anticipation:
        raise InputError(f"anticipation must be a non-negative whole number: {anticipation}")
    if pretrend_leads < 0:
        raise InputError(f"pretrend_leads must be non-negative: {pretrend_leads}")
    if not 0 < level < 1:
        raise InputError(f"level must lie strictly between 0 and 1: {level}")
    data, _, notes = recode_cohorts(
        data, time=time, first_treated=first_treated, anticipation=int(anticipation)
    )
    panel = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=covariates,
        source=source,
    )
    frame = panel.frame
    codes = panel.codes
    y_all = frame["y"].to_numpy(dtype=float)
    t_all = frame["time"].to_numpy()
    g_all = frame["g"].to_numpy()
    ever = g_all > 0
    untreated = ~ever | (t_all < g_all - anticipation)
    treated = ever & (t_all >= g_all)
    unit_codes_all = codes.unit
    n_units_all = codes.n_units
    x_all = (
        np.column_stack([frame[c].to_numpy(dtype=float) for c in panel.covariates])
        if panel.covariates
        else np.empty((len(frame), 0))
    )

    # identification: a treated observation needs its unit and its period among untreated ones
    has_u0 = np.bincount(unit_codes_all[untreated], minlength=n_units_all) > 0
    has_t0 = np.bincount(codes.time[untreated], minlength=codes.n_periods) > 0
    imputable = treated & has_u0[unit_codes_all] & has_t0[codes.time]
    lost = treated & ~imputable
    if lost.any():
        msg = (
            f"{int(lost.sum())} treated observations cannot be imputed (their unit or period has "
            "no untreated observation) and are left out"
        )
        warnings.warn(msg, DataWarning, stacklevel=2)
        notes.append(msg)
    if not imputable.any():
        raise EstimationError("no treated observation can be imputed")

    # first step on untreated observations
    i0 = np.flatnonzero(untreated)
    i1 = np.flatnonzero(imputable)
    # units coded over those with untreated observations, periods over the untreated periods
    u0, fit_units = compact_codes(unit_codes_all[i0], n_units_all)
    n_fit_units = len(fit_units)
    u1 = (np.cumsum(has_u0) - 1)[unit_codes_all[i1]]
    period0 = np.cumsum(has_t0) - 1
    n_periods0 = int(has_t0.sum())
    w0 = _period_design(period0[codes.time[i0]], n_periods0, x_all[i0])
    w1 = _period_design(period0[codes.time[i1]], n_periods0, x_all[i1])
    fit = _FirstStage.fit(y_all[i0], w0, u0, n_fit_units)
    tau = y_all[i1] - fit.predict(w1, u1)

    # target weights: the two overall averages, each cohort, each horizon, each cohort x period
    g1 = g_all[i1]
    t1 = t_all[i1]
    h1 = t1 - g1
    available = np.unique(h1)
    if horizons is None:
        wanted = available
    elif np.isscalar(horizons):
        wanted = available[(available >= 0) & (available <= int(horizons))]  # type: ignore[arg-type]
    else:
        wanted = np.intersect1d(available, np.asarray(list(horizons), dtype=int))  # type: ignore[arg-type]
    n1 = len(i1)
    n_h = len(wanted)
    units1 = unit_codes_all[i1]
    h_pos = np.minimum(np.searchsorted(wanted, h1), max(n_h - 1, 0))
    h_in = (n_h > 0) & (wanted[h_pos] == h1) if n_h else np.zeros(n1, dtype=bool)
    h_counts = np.bincount(h_pos[h_in], minlength=n_h)
    cp_group, cp_time, cp_codes = pair_codes(g1, t1)
    cp_counts = np.bincount(cp_codes)
    # cohorts: size in treated units, post-treatment periods, and each cohort's mean effect as
    # the average over its periods of the cohort-by-period averages
    cohorts, c_codes = np.unique(g1, return_inverse=True)
    c_codes = c_codes.ravel()
    n_c = len(cohorts)
    c_sizes = np.bincount(pair_codes(c_codes, units1)[0], minlength=n_c)
    c_periods = np.bincount(np.searchsorted(cohorts, cp_group), minlength=n_c)
    within = 1.0 / (c_periods[c_codes] * cp_counts[cp_codes])
    c_weights = c_sizes / c_sizes.sum()
    # sparse target weights: column 0 observation-weighted overall, 1 cohort-weighted overall,
    # then each cohort, each horizon and each cohort x period
    c0 = 2
    h0 = c0 + n_c
    p0 = h0 + n_h
    rows = np.arange(n1)
    targets = _Targets(
        row=np.concatenate([rows, rows, rows, np.flatnonzero(h_in), rows]),
        col=np.concatenate(
            [
                np.zeros(n1, dtype=int),
                np.ones(n1, dtype=int),
                c0 + c_codes,
                h0 + h_pos[h_in],
                p0 + cp_codes,
            ]
        ),
        value=np.concatenate(
            [
                np.full(n1, 1.0 / n1),
                c_weights[c_codes] * within,
                within,
                1.0 / h_counts[h_pos[h_in]],
                1.0 / cp_counts[cp_codes],
            ]
        ),
        n_cols=p0 + len(cp_group),
    )
    est = targets.sums(tau)
    se = _bjs_se(
        fit=fit,
        w1=w1,
        u1=u1,
        fit_units=fit_units,
        targets=targets,
        tau=tau,
        units1=units1,
        n_units=n_units_all,
        cells1=cp_codes,
        leave_out=leave_out,
        notes=notes,
    )

    es_columns = [wanted.astype(int), est[h0:p0], se[h0:p0], h_counts]
    pretrend = None
    if pretrend_leads:
        pretrend, lead_rows = _pretrend_test(
            y_all[i0],
            w0,
            u0,
            n_fit_units,
            rel=np.where(ever[i0], t_all[i0] - g_all[i0], 0),
            ever=ever[i0],
            leads=[-(anticipation + k) for k in range(1, pretrend_leads + 1)],
        )
        if lead_rows is not None:
            es_columns = [
                np.concatenate([lead, column])
                for lead, column in zip(lead_rows, es_columns, strict=True)
            ]
    es = event_study_table(*es_columns, z=normal_crit(level))
    group_time = pd.DataFrame(
        {
            "group": cp_group.astype(int),
            "time": cp_time.astype(int),
            "att": est[p0:],
            "se": se[p0:],
            "n_obs": cp_counts,
        }
    )

    settings = {
        "covariates": list(covariates),
        "anticipation": int(anticipation),
        "horizons": None if horizons is None else [int(h) for h in wanted],
        "pretrend_leads": pretrend_leads,
        "leave_out": leave_out,
        "level": level,
        "att_weighting": att_weighting,
    }
    head = 1 if att_weighting == "cohort" else 0
    if att_weighting == "cohort":
        notes.append(
            "att: each cohort's mean post-treatment effect, cohorts weighted by their number of "
            "treated units (as R did's aggte type 'group'); the average over all treated "
            "observations is in extra['att_observation_weighted']"
        )
    else:
        notes.append(
            "att: every treated observation weighted equally (cohorts weighted by treated units x "
            "post-periods); the cohort-size weighted average is in extra['att_cohort_weighted']"
        )
    c_obs = np.bincount(c_codes, minlength=n_c)
    extra: dict[str, object] = {
        "n_treated_obs": int(n1),
        "n_untreated_obs": len(i0),
        "att_cohort_weighted": {"att": est[1], "se": se[1]},
        "att_observation_weighted": {"att": est[0], "se": se[0]},
        "cohort_effects": [
            {
                "group": int(cohorts[k]),
                "att": est[c0 + k],
                "se": se[c0 + k],
                "size": int(c_sizes[k]),
                "n_periods": int(c_periods[k]),
                "n_obs": int(c_obs[k]),
                "weight": c_weights[k],
            }
            for k in range(n_c)
        ],
    }
    if pretrend is not None:
        extra["pretrend_test"] = pretrend
    return DiDResults(
        estimator="imputation",
        outcome=panel.outcome,
        att=float(est[head]),
        se=float(se[head]),
        n_units=n_units_all,
        n_treated_units=int(c_sizes.sum()),
        n_periods=panel.n_periods,
        inference="cluster",
        level=level,
        event_study=es,
        group_time=group_time,
        settings=settings,
        notes=notes,
        extra=plain(extra),
    )


# --------------------------------------------------------------------------- first step
def _period_design(codes: np.ndarray, n_periods: int, x: np.ndarray) -> np.ndarray:
    """Period dummies (first period as reference) followed by the covariates.

    ``codes`` are the periods' positions ``0..n_periods-1`` among the untreated periods.
    """
    n, k = x.shape
    design = np.zeros((n, n_periods - 1 + k))
    later = np.flatnonzero(codes > 0)
    design[later, codes[later] - 1] = 1.0
    design[:, n_periods - 1 :] = x
    return design


@dataclass(frozen=True)
class _Targets:
    """Sparse ``n1 x n_cols`` weights on the treated observations, one column per target.

    Entries are listed column block by column block, rows increasing within each column.
    """

    row: np.ndarray
    col: np.ndarray
    value: np.ndarray
    n_cols: int

    def sums(self, values: np.ndarray) -> np.ndarray:
        """``targets' values`` for a vector over the treated observations."""
        return np.bincount(self.col, weights=self.value * values[self.row], minlength=self.n_cols)

    def group_totals(self, codes: np.ndarray, n_groups: int) -> np.ndarray:
        """``n_groups x n_cols`` sums of the weights over the rows of each group."""
        keys = codes[self.row] * self.n_cols + self.col
        totals = np.bincount(keys, weights=self.value, minlength=n_groups * self.n_cols)
        return totals.reshape(n_groups, self.n_cols)

    def weighted_rows(self, rows: np.ndarray) -> np.ndarray:
        """``targets' rows`` for an ``n1 x p`` matrix, as ``p x n_cols``."""
        return group_rows(self.value[:, None] * rows[self.row], self.col, self.n_cols).T


class _FirstStage:
    """Least squares of ``y`` on unit effects and ``W`` (period dummies, covariates).

    The unit effects are concentrated out: ``S = W~'W~`` with ``W~`` demeaned within unit.
    """

    def __init__(
        self,
        w0: np.ndarray,
        u0: np.ndarray,
        n_units: int,
        counts: np.ndarray,
        unit_w: np.ndarray,
        s_inv: np.ndarray,
        gamma: np.ndarray,
        alpha: np.ndarray,
        resid: np.ndarray,
    ) -> None:
        self.w0 = w0
        self.u0 = u0
        self.n_units = n_units
        self.counts = counts
        self.unit_w = unit_w  # n_units x p: per-unit sums of W rows
        self.s_inv = s_inv
        self.gamma = gamma
        self.alpha = alpha
        self.resid = resid

    @classmethod
    def fit(cls, y0: np.ndarray, w0: np.ndarray, u0: np.ndarray, n_units: int) -> _FirstStage:
        counts = np.bincount(u0, minlength=n_units).astype(float)
        unit_w = group_rows(w0, u0, n_units)
        w_t = w0 - (unit_w / counts[:, None])[u0]
        s = w_t.T @ w_t
        if s.size and rcond(s) < EPS:
            raise EstimationError(
                "the untreated-outcome model is not identified (collinear period effects or "
                "covariates among untreated observations)"
            )
        s_inv = np.linalg.inv(s) if s.size else s
        y_t = y0 - (np.bincount(u0, weights=y0, minlength=n_units) / counts)[u0]
        gamma = s_inv @ (w_t.T @ y_t) if s.size else np.zeros(0)
        fitted = w0 @ gamma
        alpha = np.bincount(u0, weights=y0 - fitted, minlength=n_units) / counts
        resid = y0 - alpha[u0] - fitted
        return cls(w0, u0, n_units, counts, unit_w, s_inv, gamma, alpha, resid)

    def predict(self, w1: np.ndarray, u1: np.ndarray) -> np.ndarray:
        return self.alpha[u1] + w1 @ self.gamma

    def target_gamma(self, w1: np.ndarray, u1: np.ndarray, targets: _Targets) -> np.ndarray:
        """Period/covariate part ``gamma`` of ``(Z0'Z0)^{-1} Z1' targets`` (``p x m``).

        The imputation weights of untreated observations are ``v0 = -(alpha_i + W_it gamma)``.
        """
        if not self.s_inv.size:
            return np.zeros((0, targets.n_cols))
        r_u = targets.group_totals(u1, self.n_units)  # n_units x m
        r_w = targets.weighted_rows(w1)  # p x m
        return self.s_inv @ (r_w - self.unit_w.T @ (r_u / self.counts[:, None]))


def _bjs_se(
    *,
    fit: _FirstStage,
    w1: np.ndarray,
    u1: np.ndarray,
    fit_units: np.ndarray,
    targets: _Targets,
    tau: np.ndarray,
    units1: np.ndarray,
    n_units: int,
    cells1: np.ndarray,
    leave_out: bool,
    notes: list[str],
) -> np.ndarray:
    """Conservative unit-clustered standard errors (BJS Theorem 3) for every target column.

    A unit's untreated contribution is ``sum_t v0_it e_it = -(sum_t e_it W_it) gamma``: the first
    step's residuals sum to zero within each unit, so the unit-effect part of ``v0`` drops out and
    ``v0`` itself is never formed.
    """
    m = targets.n_cols
    gamma = fit.target_gamma(w1, u1, targets)
    contrib = np.zeros((n_units, m))
    if gamma.size:
        resid_w = group_rows(fit.w0 * fit.resid[:, None], fit.u0, fit.n_units)  # units x p
        contrib[fit_units] = -(resid_w @ gamma)
    r, j, v = targets.row, targets.col, targets.value
    n_cells = int(cells1.max()) + 1
    v2 = v**2
    key = cells1[r] * m + j
    cell_num = np.bincount(key, weights=v2 * tau[r], minlength=n_cells * m)
    cell_den = np.bincount(key, weights=v2, minlength=n_cells * m)
    num = cell_num[key]
    den = cell_den[key]
    if leave_out:
        own_key = (cells1[r].astype(np.int64) * n_units + units1[r]) * m + j
        uniq, inverse = np.unique(own_key, return_inverse=True)
        own_num = np.bincount(inverse, weights=v2 * tau[r], minlength=len(uniq))[inverse]
        own_den = np.bincount(inverse, weights=v2, minlength=len(uniq))[inverse]
        alone = den - own_den <= 0
        if alone.any():
            notes.append(
                "leave-out averages undefined where a unit is alone in its cohort and horizon; "
                "the full average is used there"
            )
        num = np.where(alone, num, num - own_num)
        den = np.where(alone, den, den - own_den)
    tau_bar = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    contrib += np.bincount(
        units1[r] * m + j, weights=v * (tau[r] - tau_bar), minlength=n_units * m
    ).reshape(n_units, m)
    return np.sqrt(np.sum(contrib**2, axis=0))


# --------------------------------------------------------------------------- pre-trends
def _pretrend_test(
    y0: np.ndarray,
    w0: np.ndarray,
    u0: np.ndarray,
    n_units: int,
    *,
    rel: np.ndarray,
    ever: np.ndarray,
    leads: list[int],
) -> tuple[dict[str, object] | None, tuple[np.ndarray, ...] | None]:
    """Regress untreated outcomes on lead indicators plus the first-step model; joint Wald test.

    Returns
    -------
    (the test, the event-study columns ``rel_time, att, se, n_obs`` of the leads in time order),
    or ``(None, None)`` when no lead is observed or the leads are not identified.
    """
    cols = []
    used = []
    for k in leads:
        ind = (ever & (rel == k)).astype(float)
        if ind.any():
            cols.append(ind)
            used.append(k)
    if not cols:
        return None, None
    leads_x = np.column_stack(cols)
    x = np.hstack([leads_x, w0])
    counts = np.bincount(u0, minlength=n_units).astype(float)
    x_t = x - (group_rows(x, u0, n_units) / counts[:, None])[u0]
    y_t = y0 - (np.bincount(u0, weights=y0, minlength=n_units) / counts)[u0]
    xtx = x_t.T @ x_t
    if rcond(xtx) < EPS:
        return None, None
    bread = np.linalg.inv(xtx)
    coef = bread @ (x_t.T @ y_t)
    resid = y_t - x_t @ coef
    n_obs, k = x_t.shape
    scores = group_rows(x_t * resid[:, None], u0, n_units)
    vcov = bread @ (scores.T @ scores) @ bread
    ssc = (n_units / (n_units - 1)) * ((n_obs - 1) / max(n_obs - k - 1, 1))
    vcov *= ssc
    m = len(used)
    b = coef[:m]
    v = vcov[:m, :m]
    if rcond(v) < EPS:
        return None, None
    wald = float(b @ np.linalg.solve(v, b))
    f_stat = wald / m
    out = {
        "leads": [int(k) for k in used],
        "W": wald,
        "df": m,
        "p_value": float(stats.chi2.sf(wald, m)),
        "F": f_stat,
        "F_p_value": float(stats.f.sf(f_stat, m, n_units - 1)),
    }
    order = np.argsort(used)
    columns = (np.asarray(used), b, np.sqrt(np.diag(v)), leads_x.sum(0).astype(int))
    return out, tuple(column[order] for column in columns)
