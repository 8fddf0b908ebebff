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
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import linalg

from kinship_eval.did._linalg import EPS, normal_crit
from kinship_eval.did._panel import (
    column_totals,
    compact_codes,
    group_rows,
    pair_codes,
    plain,
    recode_cohorts,
)
from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.results import DiDResults, event_study_table
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
    sample = _Sample.from_panel(panel)
    # cohorts without an observation at a reference event time are collinear with unit effects
    bad = sample.cohorts_missing(refs)
    if bad:
        msg = (
            "dropped cohorts with no observation at the reference event time "
            f"{sorted(refs)}: {', '.join(map(str, bad))}"
        )
        warnings.warn(msg, DataWarning, stacklevel=2)
        notes.append(msg)
        sample = sample.without(bad)
    if not np.any(~sample.control):
        raise EstimationError("no treated cohort left to estimate")
    if not np.any(sample.control):
        raise EstimationError("no comparison units left")
    w = sample.w
    if np.any(w < 0) or not np.sum(w) > 0:
        raise InputError("weights must be non-negative with a positive sum", file=source)

    cells = _Cells.build(sample, refs)
    design = _Design(
        (cells.column, np.where(sample.period > 0, cells.n + sample.period - 1, -1)),
        cells.n + sample.n_periods - 1,
        sample.x,
    )
    beta, vcov, resid_df, ssc, kept = _within_ols(sample.y, design, w, sample.unit, sample.n_units)
    dropped_cells = np.flatnonzero(~kept[: cells.n])
    if dropped_cells.size:
        labels = ", ".join(f"({cells.g[i]}, {cells.e[i]})" for i in dropped_cells)
        notes.append(f"collinear cohort x event-time effects dropped: {labels}")
    delta = beta[: cells.n]
    v_delta = vcov[: cells.n, : cells.n]

    hi = math.inf if lags is None else lags
    observed_refs = [r for r in refs if _observed(r, sample.rel, sample.control)]
    event_study = _event_study(
        cells,
        delta,
        v_delta,
        refs=refs,
        observed_refs=observed_refs,
        window=(-math.inf if leads is None else -leads, hi),
        z=normal_crit(level),
    )
    unit_g, unit_w = sample.unit_cohorts()
    cohort_rows, att, att_se = _cohort_average(cells, delta, v_delta, unit_g, unit_w, hi)
    group_time = pd.DataFrame(
        {
            "group": cells.g,
            "time": cells.g + cells.e,
            "rel_time": cells.e,
            "att": delta,
            "se": np.sqrt(np.diag(v_delta)),
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
    return DiDResults(
        estimator="sunab",
        outcome=panel.outcome,
        att=att,
        se=att_se,
        n_units=sample.n_units,
        n_treated_units=int(np.count_nonzero(_is_in(unit_g, np.unique(cells.g)))),
        n_periods=sample.n_periods,
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


@dataclass(frozen=True)
class _Sample:
    """The estimation rows as arrays, sorted by unit then period.

    Attributes
    ----------
    y, w
        Outcome and regression weight of every row.
    x
        ``N x k`` covariates.
    g, rel
        Cohort and event time of every row (both 0 for comparison units).
    unit, period
        Codes ``0..n_units-1`` and ``0..n_periods-1`` of the units and periods present.
    """

    y: np.ndarray
    w: np.ndarray
    x: np.ndarray
    g: np.ndarray
    rel: np.ndarray
    unit: np.ndarray
    n_units: int
    period: np.ndarray
    n_periods: int

    @classmethod
    def from_panel(cls, panel: DiDData) -> _Sample:
        """Arrays of a prepared panel; cohorts after its last period count as comparison units."""
        frame = panel.frame
        codes = panel.codes
        n = len(frame)
        g = frame["g"].to_numpy().copy()
        g[g > codes.periods[-1]] = 0
        if panel.covariates:
            x = np.column_stack([frame[c].to_numpy(dtype=float) for c in panel.covariates])
        else:
            x = np.zeros((n, 0))
        return cls(
            y=frame["y"].to_numpy(dtype=float),
            w=frame["weight"].to_numpy(dtype=float) if "weight" in frame.columns else np.ones(n),
            x=x,
            g=g,
            rel=np.where(g == 0, 0, frame["time"].to_numpy() - g),
            unit=codes.unit,
            n_units=codes.n_units,
            period=codes.time,
            n_periods=codes.n_periods,
        )

    @property
    def control(self) -> np.ndarray:
        return self.g == 0

    def cohorts_missing(self, refs: set[int]) -> list[int]:
        """Cohorts with no observation at any of the reference event times ``refs``."""
        treated = ~self.control
        at_ref = treated & _is_in(self.rel, refs)
        with_ref = set(np.unique(self.g[at_ref]).tolist())
        return [int(c) for c in np.unique(self.g[treated]) if int(c) not in with_ref]

    def without(self, cohorts: list[int]) -> _Sample:
        """The rows of every unit outside ``cohorts``, units and periods renumbered."""
        keep = ~_is_in(self.g, cohorts) | self.control
        unit, units = compact_codes(self.unit[keep], self.n_units)
        period, periods = compact_codes(self.period[keep], self.n_periods)
        return _Sample(
            y=self.y[keep],
            w=self.w[keep],
            x=self.x[keep],
            g=self.g[keep],
            rel=self.rel[keep],
            unit=unit,
            n_units=len(units),
            period=period,
            n_periods=len(periods),
        )

    def unit_cohorts(self) -> tuple[np.ndarray, np.ndarray]:
        """Each unit's cohort and mean regression weight."""
        unit_g = np.zeros(self.n_units, dtype=self.g.dtype)
        unit_g[self.unit] = self.g
        counts = np.bincount(self.unit, minlength=self.n_units)
        return unit_g, np.bincount(self.unit, weights=self.w, minlength=self.n_units) / counts


@dataclass(frozen=True)
class _Cells:
    """Cohort x event-time cells of the treated rows outside the reference event times.

    Attributes
    ----------
    g, e
        Cohort and event time of each cell, sorted by cohort then event time.
    column
        The cell of every row (``-1`` for comparison rows and reference event times).
    n_obs, weight
        Rows and their total regression weight in each cell.
    """

    g: np.ndarray
    e: np.ndarray
    column: np.ndarray
    n_obs: np.ndarray
    weight: np.ndarray

    @property
    def n(self) -> int:
        return len(self.g)

    @classmethod
    def build(cls, sample: _Sample, refs: set[int]) -> _Cells:
        treated = ~sample.control & ~_is_in(sample.rel, refs)
        rows = np.flatnonzero(treated)
        g, e, codes = pair_codes(sample.g[rows], sample.rel[rows])
        column = np.full(len(sample.y), -1)
        column[rows] = codes
        return cls(
            g=g,
            e=e,
            column=column,
            n_obs=np.bincount(codes, minlength=len(g)),
            weight=np.bincount(codes, weights=sample.w[rows], minlength=len(g)),
        )


class _Design:
    """Regressors made of blocks of dummies and dense covariates, without forming the matrix.

    Every sum over observations adds them in row order.

    Parameters
    ----------
    blocks
        One array per block of dummies giving the design column that is one on each row (``-1``
        for none); the blocks use disjoint columns among ``0..n_dummies-1``.
    n_dummies
        Number of dummy columns.
    x
        ``N x k`` covariates, the last ``k`` columns.
    """

    def __init__(self, blocks: tuple[np.ndarray, ...], n_dummies: int, x: np.ndarray) -> None:
        self.blocks = blocks
        self.n_dummies = n_dummies
        self.x = x
        present = [np.flatnonzero(cols >= 0) for cols in blocks]
        self.rows = np.concatenate(present)
        self.cols = np.concatenate([cols[r] for cols, r in zip(blocks, present, strict=True)])

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape[0], self.n_dummies + self.x.shape[1]

    def group_sums(self, values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
        """``n_groups x p`` sums within groups of the rows of ``diag(values) X``."""
        nd, p = self.n_dummies, self.shape[1]
        keys = [codes[self.rows] * p + self.cols]
        weights = [values[self.rows]]
        if p > nd:
            keys.append((codes[:, None] * p + np.arange(nd, p)).ravel())
            weights.append((self.x * values[:, None]).ravel())
        sums = np.bincount(
            np.concatenate(keys), weights=np.concatenate(weights), minlength=n_groups * p
        )
        return sums.reshape(n_groups, p)

    def gram(self, w: np.ndarray) -> np.ndarray:
        """``X' diag(w) X``."""
        nd = self.n_dummies
        p = self.shape[1]
        out = np.zeros((p, p))
        dummies = np.bincount(self.cols, weights=w[self.rows], minlength=nd)
        out[:nd, :nd] = np.diag(dummies)
        for i, first in enumerate(self.blocks):
            for second in self.blocks[i + 1 :]:
                both = (first >= 0) & (second >= 0)
                pairs = np.bincount(
                    first[both] * nd + second[both], weights=w[both], minlength=nd * nd
                ).reshape(nd, nd)
                out[:nd, :nd] += pairs + pairs.T
        if p > nd:
            xw = self.x * w[:, None]
            out[:nd, nd:] = group_rows(xw[self.rows], self.cols, nd)
            out[nd:, :nd] = out[:nd, nd:].T
            for j in range(p - nd):
                out[nd + j, nd:] = column_totals(self.x[:, j : j + 1] * xw)
        return out

    def weighted_rmatvec(self, w: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``X' diag(w) y``."""
        dummies = np.bincount(self.cols, weights=(w * y)[self.rows], minlength=self.n_dummies)
        return np.concatenate([dummies, column_totals(self.x * w[:, None] * y[:, None])])

    def matvec(self, coef: np.ndarray) -> np.ndarray:
        """``X coef``."""
        nd = self.n_dummies
        out = np.bincount(self.rows, weights=coef[self.cols], minlength=self.shape[0])
        for j in range(self.x.shape[1]):
            out += self.x[:, j] * coef[nd + j]
        return out


def _event_study(
    cells: _Cells,
    delta: np.ndarray,
    v_delta: np.ndarray,
    *,
    refs: set[int],
    observed_refs: list[int],
    window: tuple[float, float],
    z: float,
) -> pd.DataFrame:
    """Interaction-weighted event-time effects within ``window``; reference periods shown as 0."""
    lo, hi = window
    records: list[tuple[int, float, float, int]] = []
    finite = np.isfinite(delta)
    for e in np.union1d(cells.e, observed_refs):
        if not lo <= e <= hi:
            continue
        if e in refs:
            records.append((int(e), 0.0, math.nan, 0))
            continue
        sel = np.flatnonzero((cells.e == e) & finite)
        if sel.size == 0:
            continue
        share = cells.weight[sel] / cells.weight[sel].sum()
        est = float(share @ delta[sel])
        records.append((int(e), est, _quad_se(sel, share, v_delta), int(cells.n_obs[sel].sum())))
    if not records:
        frame = pd.DataFrame([], columns=["rel_time", "att", "se", "n_obs"])
        frame.insert(3, "ci_low", frame.att - z * frame.se)
        frame.insert(4, "ci_high", frame.att + z * frame.se)
        return frame
    rel_time, att, se, n_obs = (np.array(column) for column in zip(*records, strict=True))
    return event_study_table(rel_time, att, se, n_obs, z=z)


def _cohort_average(
    cells: _Cells,
    delta: np.ndarray,
    v_delta: np.ndarray,
    unit_g: np.ndarray,
    unit_w: np.ndarray,
    hi: float,
) -> tuple[list[dict[str, float | int]], float, float]:
    """Each cohort's mean post-treatment effect and their average weighted by cohort size.

    Returns
    -------
    (one record per cohort, the weighted average, its standard error)
    """
    agg = np.zeros(cells.n)
    total = 0.0
    cohort_rows: list[dict[str, float | int]] = []
    post = (cells.e >= 0) & (cells.e <= hi) & np.isfinite(delta)
    for cohort in np.unique(cells.g):
        sel = np.flatnonzero((cells.g == cohort) & post)
        if sel.size == 0:
            continue
        size = float(unit_w[unit_g == cohort].sum())
        vec = np.full(sel.size, 1.0 / sel.size)
        cohort_rows.append(
            {
                "group": int(cohort),
                "att": float(vec @ delta[sel]),
                "se": _quad_se(sel, vec, v_delta),
                "size": size,
            }
        )
        agg[sel] += size * vec
        total += size
    if total == 0:
        raise EstimationError("no post-treatment cohort x event-time effect was estimated")
    agg /= total
    ok = np.flatnonzero(agg)
    return cohort_rows, float(agg[ok] @ delta[ok]), _quad_se(ok, agg[ok], v_delta)


def _observed(ref: int, rel: np.ndarray, control: np.ndarray) -> bool:
    return bool(np.any((rel == ref) & ~control))


def _quad_se(idx: np.ndarray, weights: np.ndarray, vcov: np.ndarray) -> float:
    """Standard error of ``sum_k weights_k coef_idx_k``: ``sqrt(a' V a)`` (NaN unless positive).

    Only the non-zero weights enter, so the variances of other coefficients may be NaN.
    """
    nonzero = weights != 0
    idx = idx[nonzero]
    if not idx.size:
        return math.nan
    weights = weights[nonzero]
    value = float(weights @ vcov[idx[:, None], idx] @ weights)
    return math.sqrt(value) if value > 0 else math.nan


def _is_in(values: np.ndarray, targets: Sequence[int] | set[int]) -> np.ndarray:
    """Whether each value equals one of a few ``targets``."""
    out = np.zeros(values.shape, dtype=bool)
    for target in targets:
        out |= values == target
    return out


def _within_ols(
    y: np.ndarray,
    x: _Design,
    w: np.ndarray,
    unit_codes: np.ndarray,
    n_units: int,
) -> tuple[np.ndarray, np.ndarray, int, float, np.ndarray]:
    """(Weighted) least squares with unit effects absorbed; cluster-robust (CR1) by unit.

    Works on cross-products: with ``M`` the per-unit (weighted) column sums and ``c`` the unit
    weight totals, the within cross-product is ``X'WX - M' diag(1/c) M``; the dummies of the
    design are never formed.

    Returns
    -------
    (coefficients, covariance, residual degrees of freedom, small-sample factor, kept columns)
    Coefficients of columns dropped for collinearity are NaN.
    """
    n_obs, p = x.shape
    csum = np.bincount(unit_codes, weights=w, minlength=n_units)
    csum = np.where(csum > 0, csum, 1.0)
    m = x.group_sums(w, unit_codes, n_units)
    cross = x.gram(w)
    a = cross - m.T @ (m / csum[:, None])
    ybar = np.bincount(unit_codes, weights=w * y, minlength=n_units) / csum
    b = x.weighted_rmatvec(w, y) - m.T @ ybar
    kept = _independent_columns(a, np.diag(cross))
    if not kept.any():
        raise EstimationError("no estimable coefficient after absorbing unit effects")
    a_k = a[np.ix_(kept, kept)]
    bread = np.linalg.inv(a_k)
    coef_k = bread @ b[kept]
    coef = np.zeros(p)
    coef[kept] = coef_k
    xb = x.matvec(coef)
    xbar = np.bincount(unit_codes, weights=w * xb, minlength=n_units) / csum
    resid = (y - ybar[unit_codes]) - (xb - xbar[unit_codes])
    # within-unit weighted residuals sum to zero, so raw columns give the demeaned scores
    scores = x.group_sums(w * resid, unit_codes, n_units)[:, kept]
    vc_k = bread @ (scores.T @ scores) @ bread
    rank = int(kept.sum())
    k = rank + 1
    if n_obs <= k or n_units < 2:
        raise EstimationError("too few observations or units for the cluster-robust variance")
    ssc = (n_units / (n_units - 1)) * ((n_obs - 1) / (n_obs - k))
    coef[~kept] = np.nan
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
