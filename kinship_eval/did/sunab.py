"""Sun & Abraham (2021) interaction-weighted event study.

The regression is fully saturated in treatment cohort and event time:

.. math::

    y_{it} = \\alpha_i + \\lambda_t + \\sum_{g \\notin C} \\sum_{e \\notin R}
        \\delta_{g,e}\\, 1\\{G_i = g\\}\\, 1\\{t - g = e\\} + X_{it}'\\beta + \\varepsilon_{it},

with unit and period fixed effects, a control cohort ``C`` (never-treated units, or the
last-treated cohort with the sample cut before it is treated) and reference event times ``R``
(default ``-1``). Each :math:`\\delta_{g,e}` is a cohort-specific average effect (CATT) that, unlike
the coefficients of a pooled two-way fixed-effects event study, is not contaminated by effects from
other cohorts or event times. Event-time effects are the interaction-weighted averages

.. math::

    \\hat\\beta_e = \\sum_g \\hat w_{g,e}\\, \\hat\\delta_{g,e},

with :math:`\\hat w_{g,e}` the share of cohort ``g`` among the observations at event time ``e``.
Standard errors are cluster-robust by unit and use the delta method with the shares held fixed, as
``fixest::sunab`` does. The headline ``att`` averages each cohort's post-treatment
:math:`\\hat\\delta_{g,e}` and weights the cohorts by their number of units.

The unit effects are removed by the within transformation and the period effects enter as
dummies, so unbalanced panels are handled exactly without iteration.

References
----------
Sun, L. and Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import linalg, sparse

from kinship_eval.did._linalg import EPS, group_sums, normal_crit
from kinship_eval.did._panel import plain, recode_cohorts
from kinship_eval.did.data import prepare
from kinship_eval.did.results import DiDResults
from kinship_eval.errors import DataWarning, EstimationError, InputError

ControlCohort = Literal["never_treated", "last_treated"]


def sun_abraham(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    control_cohort: ControlCohort = "never_treated",
    covariates: Sequence[str] = (),
    ref_period: int | Sequence[int] = -1,
    leads: int | None = None,
    lags: int | None = None,
    weights: str | None = None,
    level: float = 0.95,
    source: str = "panel",
) -> DiDResults:
    """Estimate the Sun & Abraham interaction-weighted event study.

    Parameters
    ----------
    data
        Long panel, one row per unit and period (may be unbalanced).
    unit, time, outcome, first_treated
        Column names; ``first_treated`` is 0 or missing for never-treated units.
    control_cohort
        ``never_treated`` (default) or ``last_treated``: the latest-treated cohort (together with
        any never-treated units) is the comparison group and periods from its first treated period
        on are dropped.
    covariates
        Time-varying covariates entering linearly.
    ref_period
        Event time(s) normalised to zero (``-1`` by default; a sequence excludes several).
    leads, lags
        Report event times ``-leads .. lags`` only (the regression stays fully saturated, so the
        window does not change the estimates); ``lags`` also caps the post-treatment periods that
        enter ``att``.
    weights
        Optional column of regression weights (weighted least squares; shares are then weighted).
    level
        Confidence level.
    source
        Label for error messages.

    Returns
    -------
    DiDResults
        ``event_study`` holds the interaction-weighted event-time effects (reference periods shown
        as 0), ``group_time`` every cohort x event-time coefficient (``group``, ``time = g + e``,
        ``rel_time``, ``att``, ``se``, ``n_obs``), ``att`` the cohort-size weighted average of
        post-treatment effects.
    """
    if control_cohort not in ("never_treated", "last_treated"):
        raise InputError(f"control_cohort must be never_treated or last_treated: {control_cohort}")
    if not 0 < level < 1:
        raise InputError(f"level must lie strictly between 0 and 1: {level}")
    refs = {int(ref_period)} if np.isscalar(ref_period) else {int(r) for r in ref_period}  # type: ignore[arg-type]
    if not refs:
        raise InputError("ref_period must name at least one event time")
    for name, value in (("leads", leads), ("lags", lags)):
        if value is not None and value < 0:
            raise InputError(f"{name} must be non-negative: {value}")

    data, _, notes = recode_cohorts(
        data,
        time=time,
        first_treated=first_treated,
        last_as_control=control_cohort == "last_treated",
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
    frame = panel.frame
    periods = np.sort(frame["time"].unique())
    g = frame["g"].to_numpy().copy()
    g[g > periods.max()] = 0
    keep = np.ones(len(frame), dtype=bool)
    control = g == 0
    tt = frame["time"].to_numpy()
    rel = np.where(control, 0, tt - g)
    # cohorts without an observation at a reference event time are collinear with unit effects
    treated_rows = keep & ~control
    has_ref = pd.Series(np.isin(rel, list(refs)) & treated_rows).groupby(g).any()
    bad = [int(c) for c in np.unique(g[treated_rows]) if not has_ref.get(c, False)]
    if bad:
        msg = (
            "dropped cohorts with no observation at the reference event time "
            f"{sorted(refs)}: {', '.join(map(str, bad))}"
        )
        warnings.warn(msg, DataWarning, stacklevel=2)
        notes.append(msg)
        keep &= ~np.isin(g, bad) | control
    sub = frame.loc[keep].reset_index(drop=True)
    g = g[keep]
    control = control[keep]
    rel = rel[keep]
    tt = tt[keep]
    if not np.any(~control):
        raise EstimationError("no treated cohort left to estimate")
    if not np.any(control):
        raise EstimationError("no comparison units left")

    y = sub["y"].to_numpy(dtype=float)
    w = sub["weight"].to_numpy(dtype=float) if "weight" in sub.columns else np.ones(len(sub))
    if np.any(w < 0) or not np.sum(w) > 0:
        raise InputError("weights must be non-negative with a positive sum", file=source)
    unit_codes, unit_labels = pd.factorize(sub["unit"], sort=True)
    n_units = len(unit_labels)

    # cohort x event-time cells
    treated = ~control & ~np.isin(rel, list(refs))
    cell_frame = pd.DataFrame({"g": g[treated].astype(int), "e": rel[treated].astype(int)})
    cells = cell_frame.drop_duplicates().sort_values(["g", "e"]).reset_index(drop=True)
    cell_index = pd.MultiIndex.from_frame(cells)
    cell_codes = np.full(len(sub), -1)
    cell_codes[treated] = cell_index.get_indexer(pd.MultiIndex.from_frame(cell_frame))
    n_cells = len(cells)
    sub_periods = np.sort(np.unique(tt))
    time_codes = np.searchsorted(sub_periods, tt)

    n_time = len(sub_periods) - 1
    rows = np.flatnonzero(treated)
    later = np.flatnonzero(time_codes > 0)
    dummies = sparse.csr_matrix(
        (
            np.ones(len(rows) + len(later)),
            (np.r_[rows, later], np.r_[cell_codes[rows], n_cells + time_codes[later] - 1]),
        ),
        shape=(len(sub), n_cells + n_time),
    )
    blocks = [dummies]
    if panel.covariates:
        blocks.append(sparse.csr_matrix(sub[list(panel.covariates)].to_numpy(dtype=float)))
    design = sparse.hstack(blocks, format="csr")

    beta, vcov, resid_df, ssc, kept = _within_ols(y, design, w, unit_codes, n_units)
    dropped_cells = [i for i in range(n_cells) if not kept[i]]
    if dropped_cells:
        labels = ", ".join(f"({cells.g[i]}, {cells.e[i]})" for i in dropped_cells)
        notes.append(f"collinear cohort x event-time effects dropped: {labels}")
    delta = beta[:n_cells]
    v_delta = vcov[:n_cells, :n_cells]
    cells["n_obs"] = np.bincount(cell_codes[rows], minlength=n_cells)
    cells["weight"] = group_sums(w[rows], cell_codes[rows], n_cells)
    cells["att"] = delta
    cells["se"] = np.sqrt(np.diag(v_delta))

    lo = -math.inf if leads is None else -leads
    hi = math.inf if lags is None else lags
    z = normal_crit(level)

    # interaction-weighted event-time effects
    es_rows = []
    all_e = np.union1d(cells.e.to_numpy(), [r for r in refs if _observed(r, rel, control)])
    for e in all_e:
        if not lo <= e <= hi:
            continue
        if e in refs:
            es_rows.append({"rel_time": int(e), "att": 0.0, "se": math.nan, "n_obs": 0})
            continue
        sel = np.flatnonzero((cells.e.to_numpy() == e) & np.isfinite(delta))
        if sel.size == 0:
            continue
        share = np.zeros(n_cells)
        share[sel] = cells.weight.to_numpy()[sel] / cells.weight.to_numpy()[sel].sum()
        est = float(share[sel] @ delta[sel])
        se = _quad_se(share, v_delta)
        es_rows.append(
            {"rel_time": int(e), "att": est, "se": se, "n_obs": int(cells.n_obs[sel].sum())}
        )
    event_study = pd.DataFrame(es_rows, columns=["rel_time", "att", "se", "n_obs"])
    event_study.insert(3, "ci_low", event_study.att - z * event_study.se)
    event_study.insert(4, "ci_high", event_study.att + z * event_study.se)

    # cohort aggregation of post-treatment effects, cohorts weighted by their size
    unit_g = pd.Series(g, index=unit_codes).groupby(level=0).first()
    unit_w = pd.Series(w, index=unit_codes).groupby(level=0).mean()
    agg = np.zeros(n_cells)
    total = 0.0
    cohort_rows = []
    for cohort in np.unique(cells.g):
        sel = np.flatnonzero(
            (cells.g.to_numpy() == cohort)
            & (cells.e.to_numpy() >= 0)
            & (cells.e.to_numpy() <= hi)
            & np.isfinite(delta)
        )
        if sel.size == 0:
            continue
        size = float(unit_w[unit_g == cohort].sum())
        vec = np.zeros(n_cells)
        vec[sel] = 1.0 / sel.size
        cohort_rows.append(
            {
                "group": int(cohort),
                "att": float(vec[sel] @ delta[sel]),
                "se": _quad_se(vec, v_delta),
                "size": size,
            }
        )
        agg += size * vec
        total += size
    if total == 0:
        raise EstimationError("no post-treatment cohort x event-time effect was estimated")
    agg /= total
    ok = agg != 0
    att = float(agg[ok] @ delta[ok])
    att_se = _quad_se(agg, v_delta)

    group_time = pd.DataFrame(
        {
            "group": cells.g.astype(int),
            "time": (cells.g + cells.e).astype(int),
            "rel_time": cells.e.astype(int),
            "att": cells.att,
            "se": cells.se,
            "n_obs": cells.n_obs,
        }
    )
    settings = {
        "control_cohort": control_cohort,
        "covariates": list(covariates),
        "ref_period": sorted(refs),
        "leads": leads,
        "lags": lags,
        "weights": weights,
        "level": level,
    }
    n_treated = int(unit_g[np.isin(unit_g, cells.g.unique())].size)
    return DiDResults(
        estimator="sunab",
        outcome=panel.outcome,
        att=att,
        se=att_se,
        n_units=n_units,
        n_treated_units=n_treated,
        n_periods=len(sub_periods),
        inference="cluster",
        level=level,
        event_study=event_study,
        group_time=group_time,
        settings=settings,
        notes=notes,
        extra=plain(
            {
                "cohort_effects": cohort_rows,
                "small_sample_factor": ssc,
                "residual_df": resid_df,
            }
        ),
    )


def _observed(ref: int, rel: np.ndarray, control: np.ndarray) -> bool:
    return bool(np.any((rel == ref) & ~control))


def _quad_se(vec: np.ndarray, vcov: np.ndarray) -> float:
    ok = vec != 0
    if not ok.any():
        return math.nan
    sub = vcov[np.ix_(ok, ok)]
    value = float(vec[ok] @ sub @ vec[ok])
    return math.sqrt(value) if value > 0 else math.nan


def _within_ols(
    y: np.ndarray,
    x: sparse.csr_matrix,
    w: np.ndarray,
    unit_codes: np.ndarray,
    n_units: int,
) -> tuple[np.ndarray, np.ndarray, int, float, np.ndarray]:
    """(Weighted) least squares with unit effects absorbed; cluster-robust (CR1) by unit.

    Works on cross-products: with ``M`` the per-unit (weighted) column sums and ``c`` the unit
    weight totals, the within cross-product is ``X'WX - M' diag(1/c) M``; the design stays sparse.

    Returns
    -------
    (coefficients, covariance, residual degrees of freedom, small-sample factor, kept columns)
    Coefficients of columns dropped for collinearity are NaN.
    """
    n_obs, p = x.shape
    units = sparse.csr_matrix(
        (np.ones(n_obs), (unit_codes, np.arange(n_obs))), shape=(n_units, n_obs)
    )
    wdiag = sparse.diags(w)
    xw = (wdiag @ x).tocsr()
    csum = np.asarray(units @ w).ravel()
    csum = np.where(csum > 0, csum, 1.0)
    m = np.asarray((units @ xw).todense())
    cross = np.asarray((x.T @ xw).todense())
    a = cross - m.T @ (m / csum[:, None])
    ybar = np.asarray(units @ (w * y)).ravel() / csum
    b = np.asarray(xw.T @ y).ravel() - m.T @ ybar
    kept = _independent_columns(a, np.diag(cross))
    if not kept.any():
        raise EstimationError("no estimable coefficient after absorbing unit effects")
    a_k = a[np.ix_(kept, kept)]
    bread = np.linalg.inv(a_k)
    coef_k = bread @ b[kept]
    xb = x[:, np.flatnonzero(kept)] @ coef_k
    xbar = np.asarray(units @ (w * xb)).ravel() / csum
    resid = (y - ybar[unit_codes]) - (xb - xbar[unit_codes])
    # within-unit weighted residuals sum to zero, so raw columns give the demeaned scores
    scores = np.asarray((units @ (sparse.diags(w * resid) @ x[:, np.flatnonzero(kept)])).todense())
    vc_k = bread @ (scores.T @ scores) @ bread
    rank = int(kept.sum())
    k = rank + 1
    if n_obs <= k or n_units < 2:
        raise EstimationError("too few observations or units for the cluster-robust variance")
    ssc = (n_units / (n_units - 1)) * ((n_obs - 1) / (n_obs - k))
    coef = np.full(p, np.nan)
    coef[kept] = coef_k
    vcov = np.full((p, p), np.nan)
    vcov[np.ix_(kept, kept)] = vc_k * ssc
    return coef, vcov, n_obs - n_units - rank, float(ssc), kept


def _independent_columns(a: np.ndarray, raw_diag: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Columns of a cross-product matrix that are linearly independent (pivoted QR)."""
    p = a.shape[0]
    diag = np.diag(a)
    kept = diag > tol * np.maximum(raw_diag, EPS)
    if not kept.any():
        return kept
    idx = np.flatnonzero(kept)
    scale = np.sqrt(diag[idx])
    norm = a[np.ix_(idx, idx)] / np.outer(scale, scale)
    _, r, piv = linalg.qr(norm, pivoting=True)
    rdiag = np.abs(np.diag(r))
    rank = int(np.sum(rdiag > tol * rdiag.max()))
    out = np.zeros(p, dtype=bool)
    out[idx[piv[:rank]]] = True
    return out
