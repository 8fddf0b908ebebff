"""Two-way fixed-effects event study.

The regression is

``y_it = alpha_i + gamma_t + sum_{e != ref} beta_e 1[t - g_i = e] + x_it' delta + u_it``

estimated with :class:`linearmodels.PanelOLS` (unit and period effects absorbed), with standard
errors clustered by unit. Never-treated units (``g_i = 0``) have every event-time dummy equal to
zero and identify the period effects.

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
from linearmodels import PanelOLS
from scipy import stats

from kinship_eval.did.data import prepare
from kinship_eval.did.results import EVENT_STUDY_COLUMNS, DiDResults, normal_interval
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
    counted as regressors. Intervals are normal.

    Raises
    ------
    InputError
        On an invalid window or reference period.
    EstimationError
        When no post-treatment coefficient can be estimated.
    """
    if leads < 1 or lags < 0:
        raise InputError(f"need leads >= 1 and lags >= 0, got leads={leads}, lags={lags}")
    if not -leads <= ref_period <= -1:
        raise InputError(f"ref_period must lie between -{leads} and -1, got {ref_period}")
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
    treated = frame["g"].to_numpy() > 0
    rel = event_times(frame, leads, lags, bin_endpoints)
    observed = np.unique(rel[treated])
    estimated = [int(e) for e in observed if e != ref_period]
    window = list(range(-leads, lags + 1))

    names = [_dummy_name(e) for e in estimated]
    exog = pd.DataFrame(
        {n: (treated & (rel == e)).astype(float) for n, e in zip(names, estimated, strict=True)}
    )
    for c in covariates:
        exog[c] = frame[c].to_numpy(dtype=float)
    index = pd.MultiIndex.from_arrays([frame["unit"], frame["time"]], names=["unit", "time"])
    exog.index = index
    dep = pd.Series(frame["y"].to_numpy(dtype=float), index=index, name="y")
    w = None
    if weights:
        w = pd.Series(frame["weight"].to_numpy(dtype=float), index=index)
        if (w <= 0).any():
            raise InputError("weights must be positive", column=weights)
    if exog.shape[1] == 0:
        raise EstimationError("no event-time dummy can be estimated")

    model = PanelOLS(
        dep, exog, entity_effects=True, time_effects=True, weights=w, drop_absorbed=True
    )
    res = model.fit(
        cov_type="clustered",
        cluster_entity=True,
        group_debias=True,
        debiased=False,
        auto_df=False,
        count_effects=False,
    )
    params = res.params
    cov = res.cov

    rows = []
    for e in window:
        name = _dummy_name(e)
        if e == ref_period:
            rows.append({"rel_time": e, "att": 0.0, "se": math.nan})
        elif name in params.index:
            rows.append(
                {"rel_time": e, "att": float(params[name]), "se": math.sqrt(cov.loc[name, name])}
            )
        else:
            rows.append({"rel_time": e, "att": math.nan, "se": math.nan})
    es = pd.DataFrame(rows)
    ci = [normal_interval(a, s, level) for a, s in zip(es["att"], es["se"], strict=True)]
    es["ci_low"] = [c[0] for c in ci]
    es["ci_high"] = [c[1] for c in ci]
    es = es[EVENT_STUDY_COLUMNS]

    post = [_dummy_name(e) for e in range(0, lags + 1) if _dummy_name(e) in params.index]
    if not post:
        raise EstimationError("no post-treatment event time is observed")
    a = np.full(len(post), 1.0 / len(post))
    vpost = cov.loc[post, post].to_numpy()
    att = float(a @ params[post].to_numpy())
    se = float(math.sqrt(a @ vpost @ a))

    lead_names = [
        _dummy_name(e)
        for e in range(-leads, 0)
        if e != ref_period and _dummy_name(e) in params.index
    ]
    if lead_names:
        b = params[lead_names].to_numpy()
        v = cov.loc[lead_names, lead_names].to_numpy()
        stat = float(b @ np.linalg.solve(v, b))
        wald = {
            "stat": stat,
            "df": len(lead_names),
            "p_value": float(stats.chi2.sf(stat, len(lead_names))),
        }
    else:
        wald = {"stat": None, "df": 0, "p_value": None}

    missing = [e for e in window if e != ref_period and _dummy_name(e) not in params.index]
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
    n_clusters = dd.n_treated_units
    if n_clusters < 10:
        notes.append(
            f"only {n_clusters} treated unit(s): cluster-robust standard errors may be too small"
        )
    in_window = [e for e in window if e != ref_period and _dummy_name(e) in params.index]
    names = [_dummy_name(e) for e in in_window]
    extra = {
        "pretrend_wald": wald,
        # covariance of the event-time coefficients (for HonestDiD sensitivity analysis)
        "vcov": {
            "rel_time": [int(e) for e in in_window],
            "matrix": cov.loc[names, names].to_numpy().tolist(),
        },
        "coefficients": {
            str(n): {"estimate": float(params[n]), "se": float(math.sqrt(cov.loc[n, n]))}
            for n in params.index
        },
    }
    return DiDResults(
        estimator="event_study",
        outcome=dd.outcome,
        att=att,
        se=se,
        n_units=dd.n_units,
        n_treated_units=dd.n_treated_units,
        n_periods=dd.n_periods,
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
        },
        notes=notes,
        extra=extra,
    )
