"""Analytic power: the minimum detectable effect of a block difference-in-differences design.

A cross-check on the simulations of :mod:`kinship_eval.design.power`, and a quick answer for
designs the data cannot simulate (more years than observed).

The design
----------
``N1`` treated and ``N0`` comparison units are observed for ``m`` pre-periods followed by ``r``
post-periods, and the effect is estimated by two-way fixed effects (equal, on a balanced panel, to
the difference of the treated-minus-comparison change in means). With errors independent across
units and a common within-unit covariance ``Sigma`` (``T x T``) over time,

.. math::

    \\operatorname{Var}(\\hat\\beta) = \\Big(\\frac{1}{N_1} + \\frac{1}{N_0}\\Big)\\, a'\\Sigma a,
    \\qquad a = \\big(\\underbrace{-1/m, \\dots, -1/m}_{m},
    \\underbrace{1/r, \\dots, 1/r}_{r}\\big)',

which is the serial-correlation-robust variance of Burlig, Preonas and Woerman (2020, eq. 2):
``a' Sigma a = (m + r) / (m r) sigma^2 + (m - 1) / m psi_B + (r - 1) / r psi_A - 2 psi_X`` with
``psi_B``, ``psi_A`` and ``psi_X`` the average covariances of two pre-period errors, two post-period
errors and a pre- with a post-period error, and ``(1/N1 + 1/N0) = 1 / (P (1 - P) J)`` in their
notation. With serially uncorrelated errors it reduces to McKenzie (2012):
``sigma^2 (1/N1 + 1/N0) (1/m + 1/r)``. The minimum detectable effect at power ``1 - kappa`` with a
two-sided test at level ``alpha`` is

.. math::

    \\mathrm{MDE} = (z_{1-\\alpha/2} + z_{1-\\kappa}) \\sqrt{\\operatorname{Var}(\\hat\\beta)}

(``t`` quantiles instead of ``z`` when degrees of freedom are given).

Estimating Sigma
----------------
:func:`estimate_error_structure` takes the units observed in every period, removes unit and period
effects (two-way demeaning) and forms the ``T x T`` residual covariance ``S`` (times ``U / (U - 1)``
for the period effects). Within-unit demeaning biases every entry of ``S`` (residuals of a unit sum
to zero): ``E[S] = Q Sigma Q`` with ``Q = I - 11'/T``. Two versions of ``Sigma`` follow:

* ``ar1`` (default): errors are a stationary AR(1) process, ``Sigma = sigma^2 rho^|s-t|``;
  ``sigma^2`` and ``rho`` are fitted by least squares of ``S`` on ``sigma^2 Q R(rho) Q``, which
  corrects the demeaning bias (the bias that makes naive residual autocorrelations negative).
  The AR(1) form extends to any number of pre- and post-periods.
* ``empirical``: because the DiD contrast ``a`` sums to zero, ``a' Sigma a = a' Q Sigma Q a`` is
  estimated without bias by ``a' S a`` -- no model of the serial correlation at all, but only for
  windows within the observed periods.

References
----------
Burlig, F., Preonas, L. and Woerman, M. (2020). Panel data and experimental design. *Journal of
Development Economics* 144, 102458.
McKenzie, D. (2012). Beyond baseline and follow-up: the case for more T in experiments. *Journal
of Development Economics* 99(2), 210-221.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from kinship_eval.errors import EstimationError, InputError

__all__ = [
    "ErrorStructure",
    "analytic_mde",
    "analytic_mde_table",
    "analytic_se",
    "ar1_covariance",
    "did_contrast",
    "did_variance",
    "estimate_error_structure",
]

Covariance = Literal["ar1", "empirical"]


# ------------------------------------------------------------------------------ pure formulas
def ar1_covariance(n_periods: int, sigma2: float, rho: float) -> np.ndarray:
    """``sigma2 * rho ** |s - t|``: covariance of a stationary AR(1) error over ``n_periods``."""
    idx = np.arange(n_periods)
    return sigma2 * rho ** np.abs(idx[:, None] - idx[None, :])


def did_contrast(n_pre: int, n_post: int) -> np.ndarray:
    """The DiD contrast ``a``: ``-1/m`` on the ``m`` pre-periods, ``1/r`` on the ``r`` post."""
    if n_pre < 1 or n_post < 1:
        raise InputError("a DiD design needs at least one pre- and one post-period")
    return np.r_[np.full(n_pre, -1.0 / n_pre), np.full(n_post, 1.0 / n_post)]


def did_variance(
    covariance: np.ndarray, n_treated: int, n_control: int, n_pre: int, n_post: int
) -> float:
    """Variance of the block DiD estimate: ``(1/N1 + 1/N0) a' Sigma a``.

    ``covariance`` is the within-unit covariance of the errors over the ``n_pre + n_post``
    periods of the design (pre-periods first); a larger matrix is cut to its last
    ``n_pre + n_post`` periods.
    """
    if n_treated < 1 or n_control < 1:
        raise InputError("a DiD design needs at least one treated and one comparison unit")
    a = did_contrast(n_pre, n_post)
    cov = np.asarray(covariance, dtype=float)
    if cov.shape[0] < len(a):
        raise InputError(f"the covariance covers {cov.shape[0]} periods; the design needs {len(a)}")
    cov = cov[-len(a) :, -len(a) :]
    return float((1.0 / n_treated + 1.0 / n_control) * (a @ cov @ a))


def analytic_mde(
    se: float, *, alpha: float = 0.05, power: float = 0.8, df: float | None = None
) -> float:
    """Minimum detectable effect ``(q_{1-alpha/2} + q_{power}) * se`` (normal or ``t(df)``)."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InputError("alpha and power must be between 0 and 1")
    dist = stats.norm if df is None else stats.t(df)
    return float((dist.ppf(1 - alpha / 2) + dist.ppf(power)) * se)


# ------------------------------------------------------------------------ estimated structure
@dataclass(frozen=True)
class ErrorStructure:
    """The error variance and serial correlation of an outcome after unit and period effects.

    Attributes
    ----------
    sigma2, rho
        AR(1) variance and autocorrelation of the errors (demeaning bias corrected).
    residual_covariance
        ``S``: the ``T x T`` covariance of the two-way demeaned residuals of the balanced units
        (an unbiased estimate of ``Q Sigma Q``).
    periods
        The periods of ``S``.
    n_units
        Units observed in every period (used for the estimate).
    n_units_all
        Units in the data.
    outcome
        The outcome column.
    """

    sigma2: float
    rho: float
    residual_covariance: np.ndarray
    periods: tuple[int, ...]
    n_units: int
    n_units_all: int
    outcome: str = ""

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    def covariance(self, n_periods: int, kind: Covariance = "ar1") -> np.ndarray:
        """``Sigma`` over ``n_periods``: the AR(1) fit, or ``S`` itself (``empirical``)."""
        if kind == "ar1":
            return ar1_covariance(n_periods, self.sigma2, self.rho)
        if kind == "empirical":
            if n_periods > self.n_periods:
                raise InputError(
                    f"the empirical covariance covers {self.n_periods} periods, not {n_periods}"
                )
            return self.residual_covariance[-n_periods:, -n_periods:]
        raise InputError(f"covariance must be 'ar1' or 'empirical', not {kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "sigma2": self.sigma2,
            "sigma": math.sqrt(self.sigma2),
            "rho": self.rho,
            "periods": list(self.periods),
            "n_units": self.n_units,
            "n_units_all": self.n_units_all,
        }


def estimate_error_structure(
    data: pd.DataFrame, *, unit: str, time: str, outcome: str
) -> ErrorStructure:
    """Estimate the error covariance of ``outcome`` after unit and period effects.

    Uses the units observed in every period (see the module notes for the AR(1) fit and the
    demeaning-bias correction).
    """
    for col in (unit, time, outcome):
        if col not in data.columns:
            raise InputError("column not found", file="panel", column=col)
    frame = data[[unit, time, outcome]].dropna()
    periods = np.sort(pd.to_numeric(frame[time]).unique())
    n_t = len(periods)
    if n_t < 3:
        raise EstimationError("estimating serial correlation needs at least three periods")
    counts = frame.groupby(unit)[time].nunique()
    full = counts.index[counts == n_t]
    n_u = len(full)
    if n_u < 3:
        raise EstimationError("fewer than three units are observed in every period")
    wide = (
        frame.loc[frame[unit].isin(full)]
        .pivot(index=unit, columns=time, values=outcome)
        .reindex(columns=periods)
        .to_numpy(dtype=float)
    )
    resid = wide - wide.mean(axis=1, keepdims=True) - wide.mean(axis=0) + wide.mean()
    s = resid.T @ resid / n_u * (n_u / (n_u - 1))
    q = np.eye(n_t) - 1.0 / n_t
    s_vec = s.ravel()

    def fitted(rho: float) -> tuple[float, np.ndarray]:
        g = (q @ ar1_covariance(n_t, 1.0, rho) @ q).ravel()
        sigma2 = max(float(s_vec @ g) / float(g @ g), 0.0)
        return sigma2, g

    def loss(rho: float) -> float:
        sigma2, g = fitted(rho)
        return float(((s_vec - sigma2 * g) ** 2).sum())

    opt = optimize.minimize_scalar(loss, bounds=(-0.95, 0.99), method="bounded")
    rho = float(opt.x)
    sigma2, _ = fitted(rho)
    return ErrorStructure(
        sigma2=sigma2,
        rho=rho,
        residual_covariance=s,
        periods=tuple(int(p) for p in periods),
        n_units=n_u,
        n_units_all=int(frame[unit].nunique()),
        outcome=outcome,
    )


def analytic_se(
    structure: ErrorStructure,
    *,
    n_treated: int,
    n_control: int,
    n_pre: int,
    n_post: int,
    covariance: Covariance = "ar1",
) -> float:
    """Standard error of the block DiD estimate implied by an :class:`ErrorStructure`."""
    cov = structure.covariance(n_pre + n_post, covariance)
    return math.sqrt(did_variance(cov, n_treated, n_control, n_pre, n_post))


def analytic_mde_table(
    structure: ErrorStructure,
    *,
    n_pilot: Sequence[int],
    post_periods: Sequence[int],
    n_units: int,
    n_periods: int | None = None,
    baseline: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    covariance: Covariance = "ar1",
) -> pd.DataFrame:
    """Analytic MDE for every number of pilots and post-period length.

    Parameters
    ----------
    structure
        From :func:`estimate_error_structure`.
    n_pilot, post_periods
        Designs: treated units and post-periods (the pre-periods are the rest of ``n_periods``).
    n_units
        Units in the panel (comparison units = ``n_units - n_pilot``).
    n_periods
        Periods in the design; default those of ``structure``.
    baseline
        Mean outcome of the pilots before the pilot, to express the MDE in % (optional).
    alpha, power
        Two-sided test level and target power.
    covariance
        ``ar1`` or ``empirical`` (see the module notes).

    Returns
    -------
    pandas.DataFrame
        ``n_pilot, post_periods, n_pre, n_control, se, mde`` and, with a baseline, ``mde_pct``.
    """
    total = n_periods or structure.n_periods
    rows = []
    for n in n_pilot:
        for r in post_periods:
            m = total - r
            se = analytic_se(
                structure,
                n_treated=n,
                n_control=n_units - n,
                n_pre=m,
                n_post=r,
                covariance=covariance,
            )
            row = {
                "n_pilot": n,
                "post_periods": r,
                "n_pre": m,
                "n_control": n_units - n,
                "se": se,
                "mde": analytic_mde(se, alpha=alpha, power=power),
            }
            if baseline:
                row["mde_pct"] = 100.0 * row["mde"] / baseline
            rows.append(row)
    return pd.DataFrame(rows)
