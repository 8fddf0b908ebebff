"""Figures for the report: each a pure function from results to a matplotlib Figure.

Charts are readable without colour (line styles and markers differ, not only hues), and every
figure comes with alt text written from the data it shows.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kinship_eval.did.results import DiDResults

PILOT_STYLE = {"color": "#12436D", "linestyle": "-", "marker": "o"}
COMPARISON_STYLE = {"color": "#F46A25", "linestyle": "--", "marker": "s"}


def plot_trends(
    trends: pd.DataFrame,
    *,
    ylabel: str,
    first_treated: int | None = None,
    illustrative_from: int | None = None,
) -> Figure:
    """Pilot vs comparison mean outcome by period.

    Parameters
    ----------
    trends
        Columns ``period``, ``group`` (``Pilot LAs`` / ``Comparison LAs``), ``mean``.
    first_treated
        First treated period, marked with a vertical line.
    illustrative_from
        First simulated period, shaded and labelled "illustrative".
    """
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for group, style in (("Pilot LAs", PILOT_STYLE), ("Comparison LAs", COMPARISON_STYLE)):
        part = trends.loc[trends["group"] == group]
        ax.plot(part["period"], part["mean"], label=group, **style)
    if illustrative_from is not None:
        ax.axvspan(
            illustrative_from - 0.5, trends["period"].max() + 0.5, color="#BFBFBF", alpha=0.4
        )
        ax.text(
            illustrative_from - 0.4,
            ax.get_ylim()[1],
            "illustrative (simulated)",
            va="top",
            fontsize=9,
        )
    if first_treated is not None:
        ax.axvline(first_treated - 0.5, color="black", linewidth=1, linestyle=":")
        ax.text(first_treated - 0.45, ax.get_ylim()[0], " allowance paid", va="bottom", fontsize=9)
    ax.set_xlabel("Year ending 31 March")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def trends_alt_text(trends: pd.DataFrame, label: str) -> str:
    """Alt text summarising a trends chart in words and numbers."""
    wide = trends.pivot(index="period", columns="group", values="mean")
    first, last = wide.index.min(), wide.index.max()
    parts = [f"Line chart of {label.lower()} by year, {first} to {last}, pilot and comparison LAs."]
    for group in wide.columns:
        parts.append(
            f"{group}: {wide.loc[first, group]:.1f} in {first}, "
            f"{wide.loc[last, group]:.1f} in {last}."
        )
    return " ".join(parts)


def plot_event_study(results: DiDResults, ax: Any = None) -> Figure:
    """Event-study coefficients with pointwise intervals (and uniform bands where present)."""
    es = results.event_study
    if es is None or es.empty:
        raise ValueError(f"{results.estimator} results have no event study to plot")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    else:
        fig = ax.figure
    if {"band_low", "band_high"} <= set(es.columns):
        ax.fill_between(
            es["rel_time"],
            es["band_low"],
            es["band_high"],
            color="#BFBFBF",
            alpha=0.5,
            label="uniform band",
        )
    ax.errorbar(
        es["rel_time"],
        es["att"],
        yerr=[es["att"] - es["ci_low"], es["ci_high"] - es["att"]],
        fmt="o",
        color="#12436D",
        capsize=3,
        label=f"{int(results.level * 100)}% confidence interval",
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("Years relative to first year of payments")
    ax.set_ylabel(f"Effect on {results.outcome}")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def render_figure(fig: Figure) -> dict[str, bytes]:
    """Render a figure to PNG and SVG bytes (without dates, so reruns are identical); close it."""
    out = {}
    for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=metadata)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out
