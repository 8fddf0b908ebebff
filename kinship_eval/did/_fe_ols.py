"""Least squares with unit and period effects absorbed, in ``linearmodels.PanelOLS``'s conventions.

:func:`fit_two_way` gives what ``PanelOLS(y, x, entity_effects=True, time_effects=True,
weights=w).fit(...)`` gives for a model without a constant, with NumPy only:

* the outcome and regressors are partialled off the unit and period effects by
  :class:`~kinship_eval.did._demean.TwoWayDemeaner` (weighted with weights normalised to mean
  one, then multiplied by ``sqrt(w)``: the transformed regression of weighted least squares);
* regressors that are collinear before the effects are removed are an error (PanelOLS's rank
  check); a regressor is absorbed when less than :data:`ABSORBED_TOL` of its norm before the
  effects were removed is left once it is also made orthogonal to the regressors before it
  (PanelOLS's rule): an error, or the regressor is dropped with ``drop_absorbed``;
* the effects count ``U + T - 1`` parameters: ``df_resid = N - k - (U + T - 1)``;
* covariances are ``scale * B M B`` with ``B = (X'X)^-1`` and ``scale = N / (N - d - k)`` when
  ``debiased`` (``N / (N - d)`` otherwise), ``d = U + T - 1`` when ``count_effects`` and 0
  otherwise; ``M`` is ``s2 X'X`` (unadjusted), ``sum_i x_i x_i' e_i^2`` (robust) or the sum over
  units of the outer products of the unit score sums (clustered), the last times
  ``G / (G - 1) * (N - 1) / N`` with ``group_debias``;
* intervals and p-values use ``t(df_resid)`` when ``debiased`` and the normal otherwise.

``engine="linearmodels"`` fits the same model with ``PanelOLS`` itself and returns its numbers in
the same :class:`FixedEffectsFit`: a cross-check any user can run (``twfe(...,
engine="linearmodels")``, ``event_study(..., engine="linearmodels")``), one to two orders of
magnitude slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from kinship_eval.did._demean import TwoWayDemeaner
from kinship_eval.did._linalg import cluster_vcov
from kinship_eval.errors import EstimationError, InputError

__all__ = [
    "ABSORBED_TOL",
    "CovType",
    "Engine",
    "FixedEffectsFit",
    "absorbed_columns",
    "fit_two_way",
]

CovType = Literal["clustered", "robust", "unadjusted"]
Engine = Literal["numpy", "linearmodels"]
#: Share of a regressor's norm that must survive the effects and the earlier regressors.
ABSORBED_TOL = 1e-5


@dataclass(frozen=True)
class FixedEffectsFit:
    """Coefficients and covariance of the regressors that were estimated.

    Attributes
    ----------
    names
        Regressors estimated, in the order given.
    params, cov
        Coefficients and their covariance.
    nobs, df_resid
        Observations and residual degrees of freedom (effects counted).
    t_dist
        Whether intervals and p-values use ``t(df_resid)`` (else the normal).
    absorbed
        Regressors dropped because the effects (or earlier regressors) absorb them.
    """

    names: tuple[str, ...]
    params: np.ndarray
    cov: np.ndarray
    nobs: int
    df_resid: int
    t_dist: bool
    absorbed: tuple[str, ...] = ()

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def position(self, name: str) -> int:
        """Index of a regressor in ``params``."""
        return self.names.index(name)

    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of ``H0: coefficient = 0``."""
        z = np.abs(self.params / self.std_errors)
        if self.t_dist:
            return 2.0 * special.stdtr(self.df_resid, -z)
        return 2.0 * special.ndtr(-z)

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """``k x 2`` confidence intervals at ``level``."""
        quantiles = np.array([(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0])
        q = special.stdtrit(self.df_resid, quantiles) if self.t_dist else special.ndtri(quantiles)
        return self.params[:, None] + self.std_errors[:, None] * q[None, :]


def _normalised_weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    """Weights scaled to mean one (as PanelOLS does); ``None`` when they are all equal."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=float)
    if len(w) != n:
        raise InputError("weights must have one entry per observation")
    if not np.all(np.isfinite(w) & (w > 0)):
        raise InputError("weights must be positive")
    scaled = w / w.max()
    scaled = scaled / scaled.mean()
    return None if np.all(scaled == 1.0) else scaled


def absorbed_columns(gram: np.ndarray, norms: np.ndarray, tol: float = ABSORBED_TOL) -> list[int]:
    """Columns absorbed by the effects or collinear with the columns before them.

    Parameters
    ----------
    gram
        Cross-product ``X~'X~`` of the regressors after the effects were removed.
    norms
        Norm of each regressor before the effects were removed (its scale).
    tol
        A column is absorbed when the norm of its part orthogonal to the retained columns before
        it, relative to ``norms``, is below ``tol``.

    Returns
    -------
    list of int
        The absorbed columns, in order.
    """
    scale = np.where(norms > 0, norms, 1.0)
    scaled = gram / np.outer(scale, scale)
    retained: list[int] = []
    absorbed: list[int] = []
    for j in range(len(scaled)):
        size2 = scaled[j, j]
        if retained:
            sub = scaled[np.ix_(retained, retained)]
            cross = scaled[retained, j]
            size2 = size2 - cross @ np.linalg.solve(sub, cross)
        if np.sqrt(max(size2, 0.0)) >= tol:
            retained.append(j)
        else:
            absorbed.append(j)
    return absorbed


def _solve(x: np.ndarray, y: np.ndarray, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and ``(X'X)^-1``: equilibrated normal equations, one step of
    iterative refinement."""
    scale = np.sqrt(np.diag(gram))
    inv_scaled = np.linalg.inv(gram / np.outer(scale, scale))
    bread = inv_scaled / np.outer(scale, scale)
    params = bread @ (x.T @ y)
    params = params + bread @ (x.T @ (y - x @ params))
    return params, (bread + bread.T) / 2.0


def _covariance(
    x: np.ndarray,
    resid: np.ndarray,
    bread: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    *,
    cov_type: CovType,
    scale: float,
    group_debias: bool,
) -> np.ndarray:
    n = len(resid)
    if cov_type == "unadjusted":
        cov = scale * float(resid @ resid) / n * bread
    elif cov_type == "robust":
        xe = x * resid[:, None]
        cov = scale * (bread @ (xe.T @ xe) @ bread)
    elif cov_type == "clustered":
        if n_clusters < 2:
            raise EstimationError("a clustered covariance needs at least two clusters")
        cov = scale * cluster_vcov(x, resid, clusters, n_clusters, bread)
        if group_debias:
            cov = cov * (n_clusters / (n_clusters - 1) * ((n - 1) / n))
    else:
        raise InputError(
            f"cov_type must be 'clustered', 'robust' or 'unadjusted', not {cov_type!r}"
        )
    return (cov + cov.T) / 2.0


def fit_two_way(
    y: np.ndarray,
    x: np.ndarray,
    names: Sequence[str],
    units: np.ndarray,
    times: np.ndarray,
    n_units: int,
    n_periods: int,
    *,
    weights: np.ndarray | None = None,
    cov_type: CovType = "clustered",
    debiased: bool = True,
    count_effects: bool = True,
    group_debias: bool = False,
    drop_absorbed: bool = False,
    engine: Engine = "numpy",
) -> FixedEffectsFit:
    """Regression of ``y`` on ``x`` with unit and period effects; clusters are the units.

    Parameters
    ----------
    y, x
        Outcome (``N``) and regressors (``N x k``, no constant).
    names
        Regressor names.
    units, times
        Codes ``0..U-1`` and ``0..T-1`` of every observation (every level observed).
    n_units, n_periods
        ``U`` and ``T``.
    weights
        Optional positive regression weights.
    cov_type
        ``clustered`` (by unit), ``robust`` or ``unadjusted``.
    debiased, count_effects, group_debias
        Small-sample conventions of PanelOLS's ``fit`` (see the module docstring).
    drop_absorbed
        Drop absorbed regressors (else raise).
    engine
        ``numpy`` (this module) or ``linearmodels`` (``PanelOLS``, for cross-checking).

    Returns
    -------
    FixedEffectsFit

    Raises
    ------
    EstimationError
        When the regressors are collinear, when a regressor is absorbed by the effects (without
        ``drop_absorbed``) or every regressor is, or when no residual degrees of freedom are
        left.
    """
    x = np.asarray(x, dtype=float).reshape(len(y), -1)
    names = tuple(names)
    n = len(y)
    w = _normalised_weights(weights, n)
    if engine == "linearmodels":
        return _fit_panel_ols(
            y,
            x,
            names,
            units,
            times,
            weights=w,
            cov_type=cov_type,
            debiased=debiased,
            count_effects=count_effects,
            group_debias=group_debias,
            drop_absorbed=drop_absorbed,
        )
    if engine != "numpy":
        raise InputError(f"engine must be 'numpy' or 'linearmodels', not {engine!r}")
    demeaner = TwoWayDemeaner(units, times, n_units, n_periods, w)
    stacked = demeaner(np.column_stack([y, x]))
    raw = x
    if w is not None:
        root_w = np.sqrt(w)
        stacked = stacked * root_w[:, None]
        raw = x * root_w[:, None]
    yt, xt = stacked[:, 0], stacked[:, 1:]
    gram = xt.T @ xt
    absorbed = absorbed_columns(gram, np.sqrt(np.einsum("ij,ij->j", raw, raw)))
    if absorbed:
        labels = ", ".join(names[j] for j in absorbed)
        if np.linalg.matrix_rank(raw) < raw.shape[1]:
            raise EstimationError(f"the regressors are collinear: {labels}")
        if not drop_absorbed:
            raise EstimationError(
                f"absorbed by the unit and period effects or collinear with the other "
                f"regressors: {labels}"
            )
        if len(absorbed) == len(names):
            raise EstimationError("every regressor is absorbed by the unit and period effects")
        keep = [j for j in range(len(names)) if j not in absorbed]
        xt, gram = xt[:, keep], gram[np.ix_(keep, keep)]
    kept = tuple(name for j, name in enumerate(names) if j not in absorbed)
    params, bread = _solve(xt, yt, gram)
    resid = yt - xt @ params
    k = xt.shape[1]
    n_effects = n_units + n_periods - 1
    dof = n - (n_effects if count_effects else 0) - (k if debiased else 0)
    if dof <= 0:
        raise EstimationError(
            f"too few observations ({n}) for {k} regressors and the unit and period effects"
        )
    cov = _covariance(
        xt,
        resid,
        bread,
        np.asarray(units, dtype=np.intp),
        n_units,
        cov_type=cov_type,
        scale=n / dof,
        group_debias=group_debias,
    )
    return FixedEffectsFit(
        names=kept,
        params=params,
        cov=cov,
        nobs=n,
        df_resid=n - k - n_effects,
        t_dist=debiased,
        absorbed=tuple(names[j] for j in absorbed),
    )


def _fit_panel_ols(
    y: np.ndarray,
    x: np.ndarray,
    names: tuple[str, ...],
    units: np.ndarray,
    times: np.ndarray,
    *,
    weights: np.ndarray | None,
    cov_type: CovType,
    debiased: bool,
    count_effects: bool,
    group_debias: bool,
    drop_absorbed: bool,
) -> FixedEffectsFit:
    """The same regression by ``linearmodels.PanelOLS``."""
    import warnings

    import pandas as pd
    from linearmodels.panel import PanelOLS
    from linearmodels.panel.utility import AbsorbingEffectError, AbsorbingEffectWarning

    index = pd.MultiIndex.from_arrays([units, times], names=["unit", "time"])
    exog = pd.DataFrame(x, index=index, columns=list(names))
    model_weights = None if weights is None else pd.Series(weights, index=index)
    options: dict[str, object] = {"debiased": debiased, "count_effects": count_effects}
    if cov_type == "clustered":
        options |= {"cluster_entity": True, "group_debias": group_debias}
    with warnings.catch_warnings():
        # absorbed regressors are reported through ``FixedEffectsFit.absorbed``
        warnings.simplefilter("ignore", AbsorbingEffectWarning)
        try:
            model = PanelOLS(
                pd.Series(y, index=index, name="y"),
                exog,
                entity_effects=True,
                time_effects=True,
                weights=model_weights,
                drop_absorbed=drop_absorbed,
            )
            fit = model.fit(cov_type=cov_type, auto_df=False, **options)
        except (AbsorbingEffectError, ValueError) as exc:
            raise EstimationError(f"PanelOLS could not fit the model: {exc}") from None
    kept = tuple(str(c) for c in fit.params.index)
    return FixedEffectsFit(
        names=kept,
        params=fit.params.to_numpy(dtype=float),
        cov=fit.cov.loc[list(kept), list(kept)].to_numpy(dtype=float),
        nobs=int(fit.nobs),
        df_resid=int(fit.df_resid),
        t_dist=debiased,
        absorbed=tuple(name for name in names if name not in kept),
    )
