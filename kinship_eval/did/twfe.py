"""Two-way fixed-effects difference-in-differences.

.. math::

    y_{it} = \\alpha_i + \\lambda_t + \\beta D_{it} + X_{it}'\\gamma + \\varepsilon_{it}

with :math:`D_{it} = 1` once unit *i* is treated (``time >= first_treated - anticipation``).
:math:`\\beta` is the ATT only under parallel trends *and* homogeneous effects; with staggered
adoption and effects that change with exposure it is a weighted average with possibly negative
weights (Goodman-Bacon 2021) — use the staggered estimators for that design.

The unit and period effects are partialled out (closed-form two-way demeaning on a balanced panel,
an exact solve otherwise) and the regression is solved with NumPy by
:func:`kinship_eval.did._fe_ols.fit_two_way`, which reproduces ``linearmodels.PanelOLS`` with
``entity_effects=True, time_effects=True`` and its default ``fit`` options: weights normalised to
mean one, the effects counted as ``U + T - 1`` parameters, the covariance scaled by
``N / (N - k - U - T + 1)`` and intervals and p-values from ``t`` with ``N - k - U - T + 1`` degrees
of freedom. A treatment indicator or covariate absorbed by the effects (or collinear with the other
regressors) is an :class:`~kinship_eval.errors.EstimationError`.

Standard errors are clustered by unit (LA) by default. With few treated clusters, conventional
cluster-robust errors over-reject; see :mod:`kinship_eval.did.inference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from kinship_eval.did._fe_ols import Engine, fit_two_way
from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.results import DiDResults
from kinship_eval.errors import InputError

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
    engine: Engine = "numpy",
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
    engine
        ``numpy`` (default) or ``linearmodels``: the same regression by ``PanelOLS``, to
        cross-check the numbers.

    Returns
    -------
    DiDResults
        ``att`` is the coefficient on the treatment indicator; ``extra`` has ``nobs`` and
        ``df_resid``.

    Raises
    ------
    InputError
        On invalid input (see :func:`~kinship_eval.did.data.prepare`) or non-positive weights.
    EstimationError
        When the treatment indicator or a covariate is absorbed by the unit and period effects.
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
    if weights and not (panel.frame["weight"].to_numpy() > 0).all():
        raise InputError("weights must be positive", file=source, column=weights)
    return fit_twfe(panel, anticipation=anticipation, cov_type=cov_type, level=level, engine=engine)


def fit_twfe(
    panel: DiDData,
    *,
    anticipation: int = 0,
    cov_type: CovType = "clustered",
    level: float = 0.95,
    engine: Engine = "numpy",
) -> DiDResults:
    """TWFE on an already validated :class:`DiDData` (``engine`` as in :func:`twfe`).

    Raises
    ------
    InputError
        On non-positive weights or an unknown ``cov_type``.
    EstimationError
        When the treatment indicator or a covariate is absorbed by the unit and period effects or
        collinear with the other regressors, or no residual degrees of freedom are left.
    """
    frame = panel.frame
    g = frame["g"].to_numpy()
    treated = ((g > 0) & (frame["time"].to_numpy() >= g - anticipation)).astype(float)
    x = np.column_stack([treated, *(frame[c].to_numpy(dtype=float) for c in panel.covariates)])
    codes = panel.codes
    fit = fit_two_way(
        frame["y"].to_numpy(dtype=float),
        x,
        ["treated", *panel.covariates],
        codes.unit,
        codes.time,
        codes.n_units,
        codes.n_periods,
        weights=frame["weight"].to_numpy(dtype=float) if "weight" in frame else None,
        cov_type=cov_type,
        engine=engine,
    )
    att = float(fit.params[0])
    se = float(fit.std_errors[0])
    ci = fit.conf_int(level)[0]
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
        ci_low=float(ci[0]),
        ci_high=float(ci[1]),
        p_value=float(fit.pvalues()[0]),
        **panel.sizes,
        inference="cluster" if cov_type == "clustered" else cov_type,
        level=level,
        settings={
            "anticipation": anticipation,
            "cov_type": cov_type,
            "covariates": list(panel.covariates),
            "weights": "weight" in frame,
            "engine": engine,
        },
        notes=notes,
        extra={"nobs": fit.nobs, "df_resid": fit.df_resid},
    )
