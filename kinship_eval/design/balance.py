"""Covariate balance between the pilot LAs and a comparison group, before and after selection.

The balance table follows the matching annex of the Supporting Families evaluation: for each
variable, the pilot mean, the comparison mean before and after matching (or weighting), the
standardised mean difference (SMD) before and after, and the variance ratio before and after; the
love plot draws the absolute SMDs before and after against the conventional 0.1 threshold.

Conventions
-----------
SMD
    ``(mean_pilot - mean_comparison) / s``, with the pooled standard deviation
    ``s = sqrt((s2_pilot + s2_pool) / 2)`` where ``s2_pilot`` and ``s2_pool`` are the unweighted
    sample variances (``ddof=1``) of the pilot LAs and of the comparison pool *before* selection
    (all non-pilot LAs with the variable observed). The same denominator is used before and after,
    so a change in the SMD is a change in the comparison mean alone (Stuart 2010, Austin 2009).
    After selection the comparison mean is weighted by the matching or synthetic-control weights.
    ``|SMD| < 0.1`` is the usual benchmark of good balance.
Variance ratio
    ``s2_pilot / s2_comparison``; after selection ``s2_comparison`` is the weighted variance with
    the reliability-weights correction ``sum w (x - m)^2 / (1 - sum w^2)`` (weights normalised to
    sum to one), which equals the ``ddof=1`` variance under equal weights. Ratios between 0.5 and
    2 are usually taken as acceptable (Rubin 2001). With a handful of pilot LAs the ratio is itself
    very noisy.

References
----------
Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline covariates
between treatment groups in propensity-score matched samples. *Statistics in Medicine* 28.
Rubin, D. B. (2001). Using propensity scores to help design observational studies. *Health
Services and Outcomes Research Methodology* 2.
Stuart, E. A. (2010). Matching methods for causal inference: a review and a look forward.
*Statistical Science* 25(1).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kinship_eval.design.features import feature_label
from kinship_eval.errors import InputError

__all__ = [
    "BALANCE_COLUMNS",
    "SMD_CONVENTION",
    "BalanceResult",
    "balance_table",
    "love_plot",
    "standardised_mean_difference",
    "variance_ratio",
    "weighted_mean_var",
]

#: The SMD convention, stated once for tables, notes and the technical annex.
SMD_CONVENTION = (
    "Standardised mean difference (SMD) = (pilot mean - comparison mean) / pooled SD, with "
    "pooled SD = sqrt((variance of the pilot LAs + variance of all non-pilot LAs) / 2), both "
    "unweighted and taken before selection; the same SD is used before and after, and after "
    "selection the comparison mean is weighted by the matching or synthetic-control weights. "
    "Variance ratio = pilot variance / (weighted) comparison variance."
)

BALANCE_COLUMNS = [
    "variable",
    "label",
    "mean_pilot",
    "mean_comparison_before",
    "mean_comparison_after",
    "sd_pooled",
    "smd_before",
    "smd_after",
    "var_ratio_before",
    "var_ratio_after",
    "n_pilot",
    "n_comparison_before",
    "n_comparison_after",
]


# ------------------------------------------------------------------------- statistics (pure)
def weighted_mean_var(x: Any, weights: Any = None) -> tuple[float, float]:
    """Mean and variance of ``x`` with optional non-negative weights.

    Without weights: the sample mean and the ``ddof=1`` variance. With weights (normalised to sum
    to one): the weighted mean and the reliability-weights variance
    ``sum w (x - m)^2 / (1 - sum w^2)`` (``nan`` when one unit carries all the weight).
    """
    xv = np.asarray(x, dtype=float)
    if xv.size == 0:
        return (math.nan, math.nan)
    if weights is None:
        var = float(np.var(xv, ddof=1)) if xv.size > 1 else math.nan
        return (float(np.mean(xv)), var)
    w = np.asarray(weights, dtype=float)
    if w.shape != xv.shape:
        raise InputError("weights must have one entry per value")
    if (w < 0).any() or not np.isfinite(w).all():
        raise InputError("weights must be finite and non-negative")
    total = w.sum()
    if total <= 0:
        return (math.nan, math.nan)
    w = w / total
    mean = float(w @ xv)
    denom = 1.0 - float(w @ w)
    var = float(w @ (xv - mean) ** 2) / denom if denom > 1e-12 else math.nan
    return (mean, var)


def standardised_mean_difference(
    x_pilot: Any,
    x_comparison: Any,
    *,
    weights: Any = None,
    sd: float | None = None,
) -> float:
    """Standardised mean difference of ``x_pilot`` against ``x_comparison``.

    Parameters
    ----------
    x_pilot, x_comparison
        Values of the pilot and comparison units.
    weights
        Optional weights of the comparison units (matching or synthetic-control weights).
    sd
        The standardising SD. ``None`` uses the pooled SD of the two samples as given
        (unweighted): ``sqrt((s2_pilot + s2_comparison) / 2)``. Pass the before-selection pooled SD
        to compare SMDs before and after on one scale (see the module conventions).
    """
    m1, v1 = weighted_mean_var(x_pilot)
    m0, _ = weighted_mean_var(x_comparison, weights)
    if sd is None:
        _, v0 = weighted_mean_var(x_comparison)
        sd = math.sqrt((np.nan_to_num(v1) + v0) / 2.0)
    if not (np.isfinite(sd) and sd > 0):
        return 0.0 if math.isclose(m1, m0, rel_tol=1e-12, abs_tol=1e-12) else math.nan
    return (m1 - m0) / sd


def variance_ratio(x_pilot: Any, x_comparison: Any, *, weights: Any = None) -> float:
    """Variance of the pilot values over the (weighted) variance of the comparison values."""
    _, v1 = weighted_mean_var(x_pilot)
    _, v0 = weighted_mean_var(x_comparison, weights)
    if not (np.isfinite(v0) and v0 > 0 and np.isfinite(v1)):
        return math.nan
    return v1 / v0


# ------------------------------------------------------------------------------- the results
@dataclass
class BalanceResult:
    """Balance of the pilot LAs against a comparison group, before and after selection.

    Attributes
    ----------
    table
        One row per variable: the columns of :data:`BALANCE_COLUMNS`.
    method
        How the comparison group was chosen (for titles).
    n_pilot, n_before, n_after
        Pilot LAs, comparison LAs before selection, comparison LAs with a positive weight after.
    effective_n_after
        Kish effective sample size of the comparison weights, ``1 / sum w^2``.
    threshold
        The |SMD| benchmark drawn on the love plot and used by :meth:`is_balanced`.
    notes
        Caveats (variables left out, units missing a variable).
    """

    table: pd.DataFrame
    method: str
    n_pilot: int
    n_before: int
    n_after: int
    effective_n_after: float
    threshold: float = 0.1
    notes: list[str] = field(default_factory=list)
    convention: str = SMD_CONVENTION

    def to_frame(self) -> pd.DataFrame:
        """The balance table (tidy: one row per variable)."""
        return self.table[BALANCE_COLUMNS].copy()

    @property
    def max_abs_smd_before(self) -> float:
        return float(self.table["smd_before"].abs().max())

    @property
    def max_abs_smd_after(self) -> float:
        return float(self.table["smd_after"].abs().max())

    def is_balanced(self, threshold: float | None = None) -> bool:
        """Whether every |SMD| after selection is below ``threshold`` (default: the attribute)."""
        limit = self.threshold if threshold is None else threshold
        return bool((self.table["smd_after"].abs() < limit).all())

    def summary(self) -> str:
        """A text balance table with the convention and notes."""
        lines = [
            f"Balance: {self.method}",
            f"{self.n_pilot} pilot LAs; comparison LAs: {self.n_before} before, "
            f"{self.n_after} after (effective {self.effective_n_after:.1f})",
            "",
            f"{'variable':<52} {'pilot':>9} {'comp.0':>9} {'comp.1':>9} {'SMD0':>7} {'SMD1':>7} "
            f"{'VR0':>6} {'VR1':>6}",
        ]
        for row in self.table.itertuples(index=False):
            lines.append(
                f"{row.label[:52]:<52} {row.mean_pilot:>9.3g} {row.mean_comparison_before:>9.3g} "
                f"{row.mean_comparison_after:>9.3g} {row.smd_before:>7.2f} {row.smd_after:>7.2f} "
                f"{row.var_ratio_before:>6.2f} {row.var_ratio_after:>6.2f}"
            )
        lines += [
            "",
            f"max |SMD|: {self.max_abs_smd_before:.3f} before, {self.max_abs_smd_after:.3f} after "
            f"(benchmark {self.threshold:g})",
            "0 = before selection (all non-pilot LAs), 1 = after. " + self.convention,
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, ax: Any = None, *, absolute: bool = True) -> Any:
        """Love plot (see :func:`love_plot`)."""
        return love_plot(self, ax=ax, absolute=absolute)


def balance_table(
    features: pd.DataFrame,
    pilots: Sequence[Any],
    *,
    weights: pd.Series | None = None,
    before: Sequence[Any] | None = None,
    variables: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    method: str = "comparison group",
    threshold: float = 0.1,
) -> BalanceResult:
    """Balance of the pilots against the comparison group before and after selection.

    Parameters
    ----------
    features
        One row per unit (index = unit), one column per variable (e.g. from
        :func:`kinship_eval.design.features.pre_period_features`).
    pilots
        Units of the pilot group.
    weights
        Weights of the selected comparison units after selection (index = unit; zero or absent =
        not selected). ``None``: the comparison group after equals the group before, unweighted.
    before
        Units of the comparison pool before selection; default every unit that is not a pilot.
    variables
        Columns to report; default every numeric column.
    labels
        Display labels by column; default :func:`~kinship_eval.design.features.feature_label`.
    method
        Description of the selection, for titles.
    threshold
        |SMD| benchmark.

    Returns
    -------
    BalanceResult
    """
    pilot_set = list(dict.fromkeys(pilots))
    missing = [p for p in pilot_set if p not in features.index]
    if missing:
        raise InputError(f"pilot unit(s) not in the feature table: {', '.join(map(str, missing))}")
    if before is None:
        pool = [u for u in features.index if u not in set(pilot_set)]
    else:
        pool = [u for u in dict.fromkeys(before) if u not in set(pilot_set)]
        absent = [u for u in pool if u not in features.index]
        if absent:
            raise InputError(f"comparison unit(s) not in the feature table: {absent[:5]}")
    if not pool:
        raise InputError("no comparison units to compare the pilots with")
    if weights is None:
        w_after = pd.Series(1.0, index=pd.Index(pool))
    else:
        w_after = pd.Series(weights, dtype=float)
        w_after = w_after[w_after > 0]
        absent = [u for u in w_after.index if u not in features.index]
        if absent:
            raise InputError(f"weighted unit(s) not in the feature table: {absent[:5]}")
        if w_after.empty:
            raise InputError("no comparison unit has a positive weight")
    cols = (
        list(variables)
        if variables is not None
        else [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    )
    labels = labels or {}
    notes: list[str] = []
    gaps: list[str] = []
    rows = []
    for col in cols:
        x = pd.to_numeric(features[col], errors="coerce")
        xp = x.reindex(pilot_set).dropna()
        xb = x.reindex(pool).dropna()
        xa = x.reindex(w_after.index)
        ok = xa.notna()
        xa, wa = xa[ok], w_after[ok]
        dropped = len(pilot_set) - len(xp), len(pool) - len(xb), int((~ok).sum())
        if any(dropped):
            gaps.append(f"{col} ({dropped[0]}/{dropped[1]}/{dropped[2]})")
        m1, v1 = weighted_mean_var(xp)
        m0, v0 = weighted_mean_var(xb)
        ma, _ = weighted_mean_var(xa, wa)
        sd = math.sqrt((np.nan_to_num(v1) + v0) / 2.0) if np.isfinite(v0) else math.nan
        rows.append(
            {
                "variable": col,
                "label": labels.get(col, feature_label(col)),
                "mean_pilot": m1,
                "mean_comparison_before": m0,
                "mean_comparison_after": ma,
                "sd_pooled": sd,
                "smd_before": standardised_mean_difference(xp, xb, sd=sd),
                "smd_after": standardised_mean_difference(xp, xa, weights=wa, sd=sd),
                "var_ratio_before": variance_ratio(xp, xb),
                "var_ratio_after": variance_ratio(xp, xa, weights=wa),
                "n_pilot": len(xp),
                "n_comparison_before": len(xb),
                "n_comparison_after": len(xa),
            }
        )
    if gaps:
        notes.append(
            "LAs missing a variable, left out of its row (pilot/comparison before/after): "
            + "; ".join(gaps)
        )
    if len(pilot_set) < 2:
        notes.append("a single pilot LA: its variance (and the variance ratio) is undefined")
    w_norm = w_after / w_after.sum()
    return BalanceResult(
        table=pd.DataFrame(rows, columns=BALANCE_COLUMNS),
        method=method,
        n_pilot=len(pilot_set),
        n_before=len(pool),
        n_after=len(w_after),
        effective_n_after=float(1.0 / (w_norm**2).sum()),
        threshold=threshold,
        notes=notes,
    )


# ------------------------------------------------------------------------------- love plot
def love_plot(balance: BalanceResult, ax: Any = None, *, absolute: bool = True) -> Any:
    """Love plot: (absolute) SMD of each variable before and after selection.

    Readable without colour: hollow circles before, filled black diamonds after, a thin grey line
    joining each pair, a dashed line at the threshold; variables are ordered by their imbalance
    before selection, the largest at the top.

    Parameters
    ----------
    balance
        A :class:`BalanceResult`.
    ax
        Optional matplotlib axes; a new figure otherwise.
    absolute
        Plot ``|SMD|`` (default) or the signed SMD.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    table = balance.table.copy()
    before = table["smd_before"].abs() if absolute else table["smd_before"]
    after = table["smd_after"].abs() if absolute else table["smd_after"]
    order = np.argsort(table["smd_before"].abs().to_numpy())  # smallest at the bottom
    labels = table["label"].to_numpy()[order]
    y = np.arange(len(table))
    if ax is None:
        fig = Figure(figsize=(9, 0.38 * len(table) + 1.8))
        ax = fig.subplots()
    else:
        fig = ax.figure
    b = before.to_numpy()[order]
    a = after.to_numpy()[order]
    for yi, bi, ai in zip(y, b, a, strict=True):
        ax.plot([bi, ai], [yi, yi], color="0.6", linewidth=0.8, zorder=1)
    ax.scatter(
        b,
        y,
        marker="o",
        s=42,
        facecolors="white",
        edgecolors="black",
        linewidths=1.1,
        label="before (all non-pilot LAs)",
        zorder=2,
    )
    ax.scatter(a, y, marker="D", s=30, color="black", label="after selection", zorder=3)
    ax.axvline(balance.threshold, color="black", linestyle="--", linewidth=0.9)
    if not absolute:
        ax.axvline(-balance.threshold, color="black", linestyle="--", linewidth=0.9)
        ax.axvline(0.0, color="0.5", linewidth=0.6)
    else:
        ax.set_xlim(left=0)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize="small")
    ax.set_xlabel(("absolute " if absolute else "") + "standardised mean difference (pooled SD)")
    ax.set_title(textwrap.fill(f"Balance: {balance.method}", 70), fontsize="medium")
    ax.grid(axis="x", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="best", fontsize="small", frameon=True)
    fig.tight_layout()
    return fig
