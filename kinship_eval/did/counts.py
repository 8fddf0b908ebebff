"""Poisson pseudo-maximum-likelihood difference-in-differences for count outcomes.

Counts such as the number of children leaving care on a special guardianship order are modelled
multiplicatively,

``E[y_it] = exposure_it * exp(alpha_i + gamma_t + beta * D_it + x_it' delta)``,

with unit effects ``alpha_i``, period effects ``gamma_t``, the treatment indicator
``D_it = 1[g_i > 0 and t >= g_i]`` and optional covariates. The exposure (for example the child
population) enters as an offset ``log(exposure)``, so the model is one for rates. Only the
conditional mean has to be right (Poisson *pseudo*-maximum likelihood): the outcome need not be
Poisson distributed, and the standard errors are cluster-robust by unit.

``beta`` is a difference in log points. The proportional effect on the treated,
``exp(beta) - 1``, is reported alongside it with the interval obtained by transforming the
interval for ``beta`` (which therefore stays inside ``(-1, inf)``).

Estimation is by iteratively reweighted least squares in which the unit effects are removed by
weighted within-unit demeaning and the period effects are kept as explicit dummies, so that each
step is one small least-squares problem however many units there are. The estimates equal those of
a Poisson GLM with explicit unit and period dummies.

With staggered adoption a single ``beta`` pools comparisons that use already-treated units as
controls; when effects vary by cohort or over time, read it together with the cohort-specific
estimators.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from kinship_eval.did._demean import within
from kinship_eval.did.data import prepare
from kinship_eval.did.results import DiDResults
from kinship_eval.errors import EstimationError, InputError

__all__ = ["poisson_did"]

_TOL = 1e-12
_MAX_ITER = 200


def poisson_did(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    exposure: str | None = None,
    covariates: Sequence[str] = (),
    level: float = 0.95,
) -> DiDResults:
    """Two-way fixed-effects Poisson (PPML) difference-in-differences.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    unit, time, outcome, first_treated
        Column names. The outcome is a non-negative count (or any non-negative quantity);
        ``first_treated`` is the first treated period, 0 or missing for never treated.
    exposure
        Optional column with the exposure (e.g. the child population); it enters as the offset
        ``log(exposure)`` and must be positive.
    covariates
        Time-varying covariates added to the linear index.
    level
        Confidence level.

    Returns
    -------
    DiDResults
        ``estimator="poisson"``. ``att`` is ``beta``, the effect in **log points** (the log of the
        ratio of treated to untreated expected counts), with a cluster-robust (by unit) standard
        error and a normal interval. ``extra`` holds ``proportional_effect`` (``exp(beta) - 1``),
        ``proportional_se`` (delta method), ``proportional_ci`` (``exp`` of the interval for
        ``beta``, minus one), ``coefficients`` (every estimated slope with its standard error),
        ``iterations`` and ``dropped_units``.

    Notes
    -----
    The covariance is the cluster-robust sandwich for ``(beta, delta)`` with the fixed effects
    partialled out, multiplied by ``G / (G - 1)`` for ``G`` clusters (the convention of Stata's
    maximum-likelihood commands). Units whose outcome is zero in every period (and periods with a
    zero outcome for every unit) carry no information under unit (period) effects and are dropped.

    Raises
    ------
    InputError
        On negative outcomes or non-positive exposures.
    EstimationError
        When the treatment indicator is collinear with the fixed effects or the iterations fail.
    """
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, not {level}")
    covariates = list(covariates)
    extra_cols = [*covariates] + ([exposure] if exposure and exposure not in covariates else [])
    dd = prepare(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        covariates=extra_cols,
    )
    frame = dd.frame
    if (frame["y"] < 0).any():
        raise InputError("the outcome must be non-negative for Poisson regression", column=outcome)
    if exposure:
        if (frame[exposure] <= 0).any():
            raise InputError("the exposure must be positive", column=exposure)
        offset_all = np.log(frame[exposure].to_numpy(dtype=float))
    else:
        offset_all = np.zeros(len(frame))

    notes = [
        "att is the Poisson coefficient beta on the treatment indicator, in log points; "
        "the proportional effect exp(beta) - 1 and its interval are in extra",
        "cluster-robust standard errors by unit with the G/(G-1) adjustment",
    ]
    keep = np.ones(len(frame), dtype=bool)
    dropped_units: list = []
    dropped_periods: list = []
    while True:
        y_k = frame["y"].to_numpy()[keep]
        unit_tot = pd.Series(y_k).groupby(frame["unit"].to_numpy()[keep]).transform("sum")
        time_tot = pd.Series(y_k).groupby(frame["time"].to_numpy()[keep]).transform("sum")
        bad = (unit_tot.to_numpy() == 0) | (time_tot.to_numpy() == 0)
        if not bad.any():
            break
        dropped_units += sorted(set(frame["unit"].to_numpy()[keep][unit_tot.to_numpy() == 0]))
        dropped_periods += sorted(set(frame["time"].to_numpy()[keep][time_tot.to_numpy() == 0]))
        pos = np.flatnonzero(keep)
        keep[pos[bad]] = False
    if dropped_units:
        notes.append(
            f"{len(dropped_units)} unit(s) with a zero outcome in every period dropped "
            "(no information under unit effects)"
        )
    if dropped_periods:
        notes.append(
            f"period(s) {sorted(set(dropped_periods))} with a zero outcome for every unit dropped"
        )
    fr = frame.loc[keep].reset_index(drop=True)
    offset = offset_all[keep]
    if fr.empty:
        raise EstimationError("every outcome is zero")

    treat = ((fr["g"] > 0) & (fr["time"] >= fr["g"])).to_numpy(dtype=float)
    names = ["treated", *covariates]
    x = np.column_stack([treat, *[fr[c].to_numpy(dtype=float) for c in covariates]])
    units, unit_idx = np.unique(fr["unit"].to_numpy(), return_inverse=True)
    periods, time_idx = np.unique(fr["time"].to_numpy(), return_inverse=True)
    if np.ptp(treat) == 0:
        raise EstimationError("the treatment indicator does not vary in the estimation sample")
    y = fr["y"].to_numpy(dtype=float)

    fit = _ppml_fe(y, x, offset, unit_idx, time_idx, len(units), len(periods))
    beta, vcov = fit["beta"], fit["vcov"]
    se = np.sqrt(np.diag(vcov))
    b, s = float(beta[0]), float(se[0])
    z = stats.norm.ppf(0.5 + level / 2)
    lo, hi = b - z * s, b + z * s
    treated_units = int(fr.loc[fr["g"] > 0, "unit"].nunique())
    if treated_units < 10:
        notes.append(
            f"only {treated_units} treated unit(s): cluster-robust standard errors may be too small"
        )
    extra = {
        "proportional_effect": math.expm1(b),
        "proportional_se": math.exp(b) * s,
        "proportional_ci": [math.expm1(lo), math.expm1(hi)],
        "coefficients": {
            n: {"estimate": float(beta[j]), "se": float(se[j])} for j, n in enumerate(names)
        },
        "iterations": int(fit["iterations"]),
        "dropped_units": [u.item() if isinstance(u, np.generic) else u for u in dropped_units],
    }
    return DiDResults(
        estimator="poisson",
        outcome=dd.outcome,
        att=b,
        se=s,
        n_units=len(units),
        n_treated_units=treated_units,
        n_periods=len(periods),
        inference="cluster",
        level=level,
        settings={
            "unit": unit,
            "time": time,
            "first_treated": first_treated,
            "exposure": exposure,
            "covariates": covariates,
            "level": level,
        },
        notes=notes,
        extra=extra,
    )


def _ppml_fe(
    y: np.ndarray,
    x: np.ndarray,
    offset: np.ndarray,
    unit_idx: np.ndarray,
    time_idx: np.ndarray,
    n_units: int,
    n_periods: int,
) -> dict:
    """Poisson regression with unit and period effects by IRLS.

    Each step solves the weighted least-squares problem of the working response on ``x`` and the
    period dummies after weighted within-unit demeaning (exact, by the Frisch-Waugh-Lovell theorem).

    Returns
    -------
    dict with ``beta`` (slopes on ``x``), ``vcov`` (cluster-robust by unit, G/(G-1)), ``mu``,
    ``iterations``.
    """
    n, p = x.shape
    dummies = np.zeros((n, n_periods - 1))
    rows = np.flatnonzero(time_idx > 0)
    dummies[rows, time_idx[rows] - 1] = 1.0
    design = np.column_stack([x, dummies])

    mu = (y + y.mean()) / 2.0
    eta = np.log(mu)
    dev_old = math.inf
    converged = False
    iterations = 0
    theta = np.zeros(design.shape[1])
    while iterations < _MAX_ITER:
        iterations += 1
        w = mu
        z = eta - offset + (y - mu) / mu
        stacked = within(np.column_stack([design, z]), unit_idx, n_units, w)
        sw = np.sqrt(w)[:, None]
        theta, *_ = np.linalg.lstsq(stacked[:, :-1] * sw, stacked[:, -1] * sw[:, 0], rcond=None)
        resid = stacked[:, -1] - stacked[:, :-1] @ theta
        eta = z - resid + offset
        mu = np.exp(eta)
        dev = _deviance(y, mu)
        if abs(dev - dev_old) / (0.1 + abs(dev)) < _TOL:
            converged = True
            break
        dev_old = dev
    if not converged or not np.all(np.isfinite(theta)):
        raise EstimationError("the Poisson fixed-effects iterations did not converge")

    w = mu
    xd = within(design, unit_idx, n_units, w)
    sw = np.sqrt(w)[:, None]
    # partial the period dummies out of x (weighted), leaving x net of all fixed effects
    xr = xd[:, :p]
    dm = xd[:, p:]
    if dm.shape[1]:
        coef, *_ = np.linalg.lstsq(dm * sw, xr * sw, rcond=None)
        xr = xr - dm @ coef
    bread_inv = (xr * w[:, None]).T @ xr
    if np.linalg.matrix_rank(bread_inv) < p:
        raise EstimationError(
            "the treatment indicator or a covariate is collinear with the fixed effects"
        )
    bread = np.linalg.inv(bread_inv)
    scores = xr * (y - mu)[:, None]
    cluster_scores = np.zeros((n_units, p))
    np.add.at(cluster_scores, unit_idx, scores)
    meat = cluster_scores.T @ cluster_scores
    g = n_units
    vcov = bread @ meat @ bread * (g / (g - 1))
    return {"beta": theta[:p], "vcov": (vcov + vcov.T) / 2, "mu": mu, "iterations": iterations}


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(term - (y - mu)))
