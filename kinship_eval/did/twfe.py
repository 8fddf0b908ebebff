"""Two-way fixed-effects difference-in-differences on :class:`linearmodels.PanelOLS`.

.. math::

    y_{it} = \\alpha_i + \\lambda_t + \\beta D_{it} + X_{it}'\\gamma + \\varepsilon_{it}

with :math:`D_{it} = 1` once unit *i* is treated (``time >= first_treated - anticipation``).
:math:`\\beta` is the ATT only under parallel trends *and* homogeneous effects; with staggered
adoption and effects that change with exposure it is a weighted average with possibly negative
weights (Goodman-Bacon 2021) — use the staggered estimators for that design.

Standard errors are clustered by unit (LA) by default. With few treated clusters, conventional
cluster-robust errors over-reject; see :mod:`kinship_eval.did.inference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd
from linearmodels.panel import PanelOLS

from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.results import DiDResults

CovType = Literal["clustered", "robust", "unadjusted"]


def twfe(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    covariates: Sequence[str] = (),
    weights: str | None = None,
    anticipation: int = 0,
    cov_type: CovType = "clustered",
    level: float = 0.95,
    source: str = "panel",
) -> DiDResults:
    """Estimate the TWFE difference-in-differences coefficient.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    unit, time, outcome, first_treated
        Column names; ``first_treated`` is 0 or missing for never-treated units.
    covariates
        Time-varying covariates.
    weights
        Optional column of regression weights (e.g. child population).
    anticipation
        Periods before ``first_treated`` counted as treated.
    cov_type
        ``clustered`` (by unit), ``robust`` or ``unadjusted``.
    level
        Confidence level of the interval.

    Returns
    -------
    DiDResults
        ``att`` is the coefficient on the treatment indicator.
    """
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
    return fit_twfe(panel, anticipation=anticipation, cov_type=cov_type, level=level)


def fit_twfe(
    panel: DiDData,
    *,
    anticipation: int = 0,
    cov_type: CovType = "clustered",
    level: float = 0.95,
) -> DiDResults:
    """TWFE on an already validated :class:`DiDData`."""
    frame = panel.frame.assign(treated=panel.treated_indicator(anticipation))
    indexed = frame.set_index(["unit", "time"])
    exog = indexed[["treated", *panel.covariates]]
    model = PanelOLS(
        indexed["y"],
        exog,
        entity_effects=True,
        time_effects=True,
        weights=indexed.get("weight"),
        drop_absorbed=False,
    )
    if cov_type == "clustered":
        fit = model.fit(cov_type="clustered", cluster_entity=True)
    else:
        fit = model.fit(cov_type=cov_type)
    att = float(fit.params["treated"])
    se = float(fit.std_errors["treated"])
    ci = fit.conf_int(level=level).loc["treated"]
    notes = []
    if cov_type == "clustered" and panel.n_treated_units < 20:
        notes.append(
            f"Only {panel.n_treated_units} treated clusters: cluster-robust standard errors are "
            "known to over-reject; prefer wild cluster bootstrap or randomization inference."
        )
    return DiDResults(
        estimator="twfe",
        outcome=panel.outcome,
        att=att,
        se=se,
        ci_low=float(ci.iloc[0]),
        ci_high=float(ci.iloc[1]),
        p_value=float(fit.pvalues["treated"]),
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_periods=panel.n_periods,
        inference="cluster" if cov_type == "clustered" else cov_type,
        level=level,
        settings={
            "anticipation": anticipation,
            "cov_type": cov_type,
            "covariates": list(panel.covariates),
            "weights": "weight" in frame,
        },
        notes=notes,
        extra={"nobs": int(fit.nobs), "df_resid": int(fit.df_resid)},
    )
