"""Two-way fixed-effects event study.

The regression is

``y_it = alpha_i + gamma_t + sum_{e != ref} beta_e 1[t - g_i = e] + x_it' delta + u_it``

estimated with the unit and period effects partialled out (closed-form two-way demeaning on a
balanced panel, an exact solve otherwise) by :func:`kinship_eval.did._fe_ols.fit_two_way`, which
reproduces ``linearmodels.PanelOLS`` with ``drop_absorbed=True`` and clustered standard errors with
``group_debias=True, debiased=False, count_effects=False`` (see the notes of :func:`event_study`).
Event-time dummies or covariates absorbed by the effects are dropped (regressors that are collinear
before the effects are removed are an error). Never-treated units
(``g_i = 0``) have every event-time dummy equal to zero and identify the period effects.

Event time ``e = t - g_i`` is reported for ``-leads, ..., lags``:

* with ``bin_endpoints=True`` (the default) every ``e <= -leads`` is pooled into the ``-leads``
  dummy and every ``e >= lags`` into the ``lags`` dummy, so each observation of a treated unit
  belongs to exactly one event-time bin;
* with ``bin_endpoints=False`` the specification is fully dynamic: every observed event time other
  than the reference gets its own dummy, and only the window ``-leads .. lags`` is reported.

The reference period ``ref_period`` (default ``-1``) is normalised to zero. The ``event_study``
frame **includes** its row, with ``att = 0`` and missing standard error and interval, so that plots
show the normalisation. Event times in the window that no observation reaches have missing
estimates.

``att`` is the simple (equally weighted) average of the post-treatment coefficients
``e = 0, ..., lags`` in the window, with its standard error from the coefficient covariance. The
joint Wald test that every lead in the window (``e < 0``, excluding the reference) is zero is in
``extra["pretrend_wald"]`` (chi-squared with as many degrees of freedom as leads tested; ``stat``
and ``p_value`` are ``None`` when no lead can be estimated).

TWFE event-study coefficients are weighted averages of cohort-specific effects and can be
contaminated by effects at other event times when effects differ across adoption cohorts (Sun and
Abraham 2021); use the heterogeneity-robust estimators for staggered designs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from kinship_eval.did._fe_ols import Engine, FixedEffectsFit, fit_two_way
from kinship_eval.did.data import prepare
from kinship_eval.did.results import EVENT_STUDY_COLUMNS, DiDResults
from kinship_eval.errors import EstimationError, InputError

__all__ = ["event_study"]


def event_times(frame: pd.DataFrame, leads: int, lags: int, bin_endpoints: bool) -> np.ndarray:
    """Event time ``time - g`` of every row of a prepared frame (0 for never-treated units),
    with the endpoints binned to ``-leads`` and ``lags`` when ``bin_endpoints``."""
    treated = frame["g"].to_numpy() > 0
    rel = np.where(treated, frame["time"].to_numpy() - frame["g"].to_numpy(), 0)
    if bin_endpoints:
        rel = np.clip(rel, -leads, lags)
    return rel


def check_window(leads: int, lags: int, ref_period: int) -> None:
    """Raise :class:`InputError` unless ``leads >= 1``, ``lags >= 0`` and the reference period
    lies in ``-leads, ..., -1``."""
    if leads < 1 or lags < 0:
        raise InputError(f"need leads >= 1 and lags >= 0, got leads={leads}, lags={lags}")
    if not -leads <= ref_period <= -1:
        raise InputError(f"ref_period must lie between -{leads} and -1, got {ref_period}")


def event_dummies(
    frame: pd.DataFrame, leads: int, lags: int, ref_period: int, bin_endpoints: bool
) -> tuple[list[int], np.ndarray]:
    """Event times estimated (those observed for a treated unit, except the reference) and their
    ``rows x len(estimated)`` 0/1 dummies, for a prepared frame."""
    treated = frame["g"].to_numpy() > 0
    rel = event_times(frame, leads, lags, bin_endpoints)
    estimated = [int(e) for e in np.unique(rel[treated]) if e != ref_period]
    dummies = treated[:, None] & (rel[:, None] == np.array(estimated, dtype=rel.dtype))
    return estimated, dummies.astype(float)


def _dummy_name(e: int) -> str:
    return f"e_m{-e}" if e < 0 else f"e_p{e}"


def event_study(
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
    weights: str | None = None,
    level: float = 0.95,
    engine: Engine = "numpy",
) -> DiDResults:
    """TWFE event study with unit and period effects and unit-clustered standard errors.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    unit, time, outcome, first_treated
        Column names; ``first_treated`` is the first treated period, 0 or missing for never treated.
    leads, lags
        Window of event times reported: ``-leads, ..., lags`` (``leads >= 1``, ``lags >= 0``).
    ref_period
        Event time normalised to zero; must lie in ``-leads, ..., -1``.
    bin_endpoints
        Pool ``e <= -leads`` and ``e >= lags`` into the endpoint dummies (``True``) or estimate a
        fully dynamic specification with one dummy per observed event time (``False``).
    covariates
        Time-varying covariates.
    weights
        Optional column of regression weights.
    level
        Confidence level.
    engine
        ``numpy`` (default) or ``linearmodels``: the same regression by ``PanelOLS``, to
        cross-check the numbers.

    Returns
    -------
    DiDResults
        ``estimator="event_study"``; ``event_study`` has one row per event time in the window
        (reference row included with ``att = 0``); ``att`` is the average of the post-period
        coefficients; ``extra["pretrend_wald"]`` is ``{"stat", "df", "p_value"}``.

    Notes
    -----
    Standard errors are cluster-robust by unit with the small-sample factor
    ``G / (G - 1) * (n - 1) / n`` (``linearmodels``' ``group_debias``); fixed effects are not
    counted as regressors. Intervals are normal. Event-time dummies and covariates absorbed by the
    unit and period effects are dropped and listed in ``notes``.

    Raises
    ------
    InputError
        On an invalid window or reference period.
    EstimationError
        When no post-treatment coefficient can be estimated.
    """
    check_window(leads, lags, ref_period)
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, not {level}")
    covariates = list(covariates)
    dd = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=covariates,
        weights=weights,
    )
    frame = dd.frame
    estimated, dummies = event_dummies(frame, leads, lags, ref_period, bin_endpoints)
    w = None
    if weights:
        w = frame["weight"].to_numpy(dtype=float)
        if (w <= 0).any():
            raise InputError("weights must be positive", column=weights)
    if not estimated and not covariates:
        raise EstimationError("no event-time dummy can be estimated")
    x = np.column_stack([dummies, *(frame[c].to_numpy(dtype=float) for c in covariates)])
    codes = dd.codes
    fit = fit_two_way(
        frame["y"].to_numpy(dtype=float),
        x,
        [*(_dummy_name(e) for e in estimated), *covariates],
        codes.unit,
        codes.time,
        codes.n_units,
        codes.n_periods,
        weights=w,
        cov_type="clustered",
        debiased=False,
        count_effects=False,
        group_debias=True,
        drop_absorbed=True,
        engine=engine,
    )
    position = {name: i for i, name in enumerate(fit.names)}
    params = fit.params
    se_all = fit.std_errors
    window = list(range(-leads, lags + 1))

    es = _event_study_frame(window, ref_period, position, params, se_all, level)

    post = [position[n] for n in (_dummy_name(e) for e in range(0, lags + 1)) if n in position]
    if not post:
        raise EstimationError("no post-treatment event time is observed")
    a = np.full(len(post), 1.0 / len(post))
    att = float(a @ params[post])
    se = float(math.sqrt(a @ fit.cov[np.ix_(post, post)] @ a))

    wald = _pretrend_wald(fit, position, leads, ref_period)

    missing = [e for e in window if e != ref_period and _dummy_name(e) not in position]
    notes = [
        f"TWFE event study with unit and period effects; reference period e={ref_period}",
        f"att is the simple average of the post-treatment coefficients e=0..{lags}"
        + (f" (e={lags} pools e>={lags})" if bin_endpoints else ""),
        "standard errors clustered by unit; pre-trend test: joint Wald test of the leads "
        f"(chi2, {wald['df']} df)",
    ]
    if bin_endpoints:
        notes.append(f"endpoints binned: e<=-{leads} and e>={lags}")
    else:
        notes.append("fully dynamic specification: event times outside the window are estimated")
    if missing:
        notes.append(f"event times not observed in the data: {missing}")
    if fit.absorbed:
        notes.append("dropped, absorbed by the unit and period effects: " + ", ".join(fit.absorbed))
    n_clusters = dd.n_treated_units
    if n_clusters < 10:
        notes.append(
            f"only {n_clusters} treated unit(s): cluster-robust standard errors may be too small"
        )
    in_window = [e for e in window if e != ref_period and _dummy_name(e) in position]
    idx = [position[_dummy_name(e)] for e in in_window]
    extra = {
        "pretrend_wald": wald,
        # covariance of the event-time coefficients (for HonestDiD sensitivity analysis)
        "vcov": {
            "rel_time": in_window,
            "matrix": fit.cov[np.ix_(idx, idx)].tolist(),
        },
        "coefficients": {
            name: {"estimate": float(params[i]), "se": float(se_all[i])}
            for i, name in enumerate(fit.names)
        },
    }
    return DiDResults(
        estimator="event_study",
        outcome=dd.outcome,
        att=att,
        se=se,
        **dd.sizes,
        inference="cluster",
        level=level,
        event_study=es,
        settings={
            "unit": unit,
            "time": time,
            "first_treated": first_treated,
            "leads": leads,
            "lags": lags,
            "ref_period": ref_period,
            "bin_endpoints": bin_endpoints,
            "covariates": covariates,
            "weights": weights,
            "level": level,
            "engine": engine,
        },
        notes=notes,
        extra=extra,
    )


def _event_study_frame(
    window: list[int],
    ref_period: int,
    position: dict[str, int],
    params: np.ndarray,
    se: np.ndarray,
    level: float,
) -> pd.DataFrame:
    """One row per event time in the window: the reference at zero, unobserved ones missing."""
    att = np.full(len(window), math.nan)
    std = np.full(len(window), math.nan)
    for row, e in enumerate(window):
        if e == ref_period:
            att[row] = 0.0
        elif _dummy_name(e) in position:
            i = position[_dummy_name(e)]
            att[row], std[row] = params[i], se[i]
    z = float(special.ndtri(0.5 + level / 2))
    ok = np.isfinite(std) & (std > 0)
    low = np.where(ok, att - z * std, math.nan)
    high = np.where(ok, att + z * std, math.nan)
    columns = [np.array(window), att, std, low, high]
    return pd.DataFrame(dict(zip(EVENT_STUDY_COLUMNS, columns, strict=True)))


def _pretrend_wald(
    fit: FixedEffectsFit, position: dict[str, int], leads: int, ref_period: int
) -> dict[str, float | int | None]:
    """Joint Wald test that every estimated lead in the window (reference excluded) is zero."""
    lead_names = [
        _dummy_name(e) for e in range(-leads, 0) if e != ref_period and _dummy_name(e) in position
    ]
    if not lead_names:
        return {"stat": None, "df": 0, "p_value": None}
    idx = [position[n] for n in lead_names]
    b = fit.params[idx]
    stat = float(b @ np.linalg.solve(fit.cov[np.ix_(idx, idx)], b))
    return {
        "stat": stat,
        "df": len(idx),
        "p_value": float(special.chdtrc(len(idx), stat)),
    }
