"""Figures for the report: each a pure function from results to a matplotlib Figure.

Charts are readable without colour (line styles, markers and hatching differ, not only hues), the
colours are the Analysis Function accessible palette's dark blue and orange (both at least 3:1
against white), and every figure comes with alt text written from the data it shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kinship_eval.did.results import DiDResults

DARK_BLUE = "#12436D"
ORANGE = "#F46A25"
GREY = "#505A5F"
PILOT_STYLE = {"color": DARK_BLUE, "linestyle": "-", "marker": "o"}
COMPARISON_STYLE = {"color": ORANGE, "linestyle": "--", "marker": "s"}
ILLUSTRATIVE_SHADE = {"facecolor": "#E8E8E8", "edgecolor": "#9A9A9A", "hatch": "//", "linewidth": 0}

__all__ = [
    "RenderedFigure",
    "bcr_alt_text",
    "event_study_alt_text",
    "honest_alt_text",
    "plot_bcr_distribution",
    "plot_event_study",
    "plot_honest",
    "plot_tornado",
    "plot_trends",
    "render_figure",
    "tornado_alt_text",
    "trends_alt_text",
]


@dataclass
class RenderedFigure:
    """A figure as published: its number, caption, alt text and images."""

    key: str
    caption: str
    alt: str
    png: bytes
    svg: bytes
    number: int = 0

    @property
    def label(self) -> str:
        return f"Figure {self.number}"


def _num(v: float, dp: int = 2) -> str:
    text = f"{abs(v):,.{dp}f}"
    return ("minus " + text) if v < 0 and float(text.replace(",", "")) != 0 else text


def _shade_illustrative(ax: Any, start: float, end: float) -> None:
    ax.axvspan(start, end, zorder=0, **ILLUSTRATIVE_SHADE)
    ax.text(
        start + 0.05,
        0.98,
        "illustrative\n(simulated)",
        transform=ax.get_xaxis_transform(),
        va="top",
        ha="left",
        fontsize=9,
        color="#0B0C0C",
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
    )


# ----------------------------------------------------------------------------- trends
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
    ylabel
        Label of the y axis.
    first_treated
        First treated period, marked with a vertical line.
    illustrative_from
        First simulated period, shaded (hatched) and labelled "illustrative".
    """
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for group, style in (("Pilot LAs", PILOT_STYLE), ("Comparison LAs", COMPARISON_STYLE)):
        part = trends.loc[trends["group"] == group]
        ax.plot(part["period"], part["mean"], label=group, linewidth=2, **style)
    if illustrative_from is not None:
        _shade_illustrative(ax, illustrative_from - 0.5, trends["period"].max() + 0.5)
    if first_treated is not None:
        ax.axvline(first_treated - 0.5, color="black", linewidth=1, linestyle=":")
        ax.text(
            first_treated - 0.45,
            0.02,
            " allowance paid",
            transform=ax.get_xaxis_transform(),
            va="bottom",
            fontsize=9,
        )
    ax.set_xlabel("Year ending 31 March")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="lower left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def trends_alt_text(
    trends: pd.DataFrame,
    label: str,
    *,
    first_treated: int | None = None,
    illustrative_years: tuple[int, ...] = (),
) -> str:
    """Alt text summarising a trends chart in words and numbers."""
    wide = trends.pivot(index="period", columns="group", values="mean")
    first, last = int(wide.index.min()), int(wide.index.max())
    parts = [f"Line chart of {label.lower()} by year, {first} to {last}, pilot and comparison LAs."]
    for group in wide.columns:
        parts.append(
            f"{group}: {wide.loc[first, group]:.1f} in {first}, "
            f"{wide.loc[last, group]:.1f} in {last}."
        )
    if first_treated is not None:
        pre = wide.loc[wide.index < first_treated]
        if len(pre) and {"Pilot LAs", "Comparison LAs"} <= set(wide.columns):
            gap = (pre["Pilot LAs"] - pre["Comparison LAs"]).mean()
            parts.append(
                f"Before payments began in {first_treated}, pilot LAs averaged "
                f"{_num(gap, 1)} per 10,000 {'above' if gap >= 0 else 'below'} comparison LAs."
            )
    if illustrative_years:
        parts.append(
            f"Years {min(illustrative_years)} to {max(illustrative_years)} are illustrative "
            "(simulated), shown hatched."
        )
    return " ".join(parts)


# ----------------------------------------------------------------------------- event study
def plot_event_study(
    results: DiDResults,
    ax: Any = None,
    *,
    ylabel: str | None = None,
    illustrative_from: int | None = None,
) -> Figure:
    """Event-study coefficients with pointwise intervals (and uniform bands where present).

    Parameters
    ----------
    results
        Results with an ``event_study`` frame (``rel_time, att, ci_low, ci_high``; optionally
        ``band_low, band_high``).
    ax
        Axes to draw on (a new figure when ``None``).
    ylabel
        Label of the y axis (default: the outcome column).
    illustrative_from
        First event time resting on illustrative years, shaded and labelled.
    """
    es = results.event_study
    if es is None or es.empty:
        raise ValueError(f"{results.estimator} results have no event study to plot")
    es = es.loc[es["att"].notna()].sort_values("rel_time")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    else:
        fig = ax.figure
    if illustrative_from is not None:
        _shade_illustrative(ax, illustrative_from - 0.5, es["rel_time"].max() + 0.5)
    if {"band_low", "band_high"} <= set(es.columns) and es["band_low"].notna().any():
        ax.fill_between(
            es["rel_time"], es["band_low"], es["band_high"], color="#C6D4E1", alpha=0.6, lw=0
        )
        for col in ("band_low", "band_high"):
            ax.plot(
                es["rel_time"],
                es[col],
                color=DARK_BLUE,
                linestyle="--",
                linewidth=1,
                label="uniform band" if col == "band_low" else None,
            )
    ref = es["se"].isna() & es["att"].eq(0) if "se" in es else es["att"].eq(0)
    est = es.loc[~ref]
    level = round(results.level * 100)
    ax.errorbar(
        est["rel_time"],
        est["att"],
        yerr=[est["att"] - est["ci_low"], est["ci_high"] - est["att"]],
        fmt="o",
        color=DARK_BLUE,
        capsize=4,
        markersize=6,
        label=f"estimate with {level}% confidence interval",
    )
    if ref.any():
        ax.plot(
            es.loc[ref, "rel_time"],
            es.loc[ref, "att"],
            marker="D",
            markerfacecolor="white",
            markeredgecolor="black",
            linestyle="none",
            label="reference year (fixed at 0)",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("Years relative to the first year of payments")
    ax.set_ylabel(ylabel or f"Effect on {results.outcome}")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="upper left", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def event_study_alt_text(results: DiDResults, unit: str = "per 10,000 children") -> str:
    """Alt text listing each event-study estimate and interval."""
    es = results.event_study
    es = es.loc[es["att"].notna()].sort_values("rel_time")
    ref = es["se"].isna() & es["att"].eq(0) if "se" in es else es["att"].eq(0)
    parts = [
        "Chart of the difference between pilot and comparison LAs in each year relative to the "
        f"first year of payments, {unit}, with {round(results.level * 100)}% confidence "
        "intervals."
    ]
    items = []
    for r, is_ref in zip(es.to_dict("records"), ref, strict=True):
        e = int(r["rel_time"])
        if is_ref:
            items.append(f"year {_num(e, 0)}: reference, fixed at 0")
        else:
            items.append(
                f"year {_num(e, 0)}: {_num(r['att'])} ({_num(r['ci_low'])} to {_num(r['ci_high'])})"
            )
    parts.append("; ".join(items) + ".")
    if "band_low" in es and es["band_low"].notna().any():
        parts.append("A dashed uniform confidence band surrounds the estimates.")
    return " ".join(parts)


# ----------------------------------------------------------------------------- HonestDiD
def plot_honest(honest: Any, *, ylabel: str = "First-year effect") -> Figure:
    """Robust confidence intervals against the allowed departure from parallel trends."""
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    ms = np.asarray(honest.m, dtype=float)
    gap = float(np.min(np.diff(np.sort(ms)))) if len(ms) > 1 else 1.0
    x0 = float(ms.min()) - gap
    lo0, hi0 = honest.original
    ax.errorbar(
        [x0],
        [(lo0 + hi0) / 2],
        yerr=[[(hi0 - lo0) / 2]],
        fmt="s",
        markersize=0.1,
        capsize=6,
        color=ORANGE,
        linewidth=2,
        linestyle="none",
        label="conventional interval (parallel trends)",
    )
    lo, hi = np.asarray(honest.ci_low, float), np.asarray(honest.ci_high, float)
    ax.errorbar(
        ms,
        (lo + hi) / 2,
        yerr=[(hi - lo) / 2, (hi - lo) / 2],
        fmt="none",
        capsize=6,
        color=DARK_BLUE,
        linewidth=2,
        label=f"robust interval ({honest.ci_method})",
    )
    ax.plot(
        [x0, *ms],
        [honest.estimate] * (len(ms) + 1),
        linestyle="none",
        marker="o",
        color="black",
        markersize=4,
        label="estimate",
    )
    if honest.breakdown is not None:
        ax.axvline(honest.breakdown, color=GREY, linestyle=":", linewidth=1.2)
        ax.text(
            honest.breakdown,
            0.98,
            f" breakdown {honest.breakdown:.2f}",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=9,
        )
    ax.axhline(0.0, color="black", linewidth=0.8)
    label = "M" if honest.method == "smoothness" else "Mbar"
    ax.set_xticks([x0, *ms], ["original", *[f"{m:g}" for m in ms]])
    ax.set_xlabel(f"{label}: allowed departure from parallel trends")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=9, loc="lower left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def honest_alt_text(honest: Any, unit: str = "per 10,000 children") -> str:
    """Alt text listing each robust interval and the breakdown value."""
    label = "M" if honest.method == "smoothness" else "Mbar"
    lo0, hi0 = honest.original
    items = [
        f"{label} {m:g}: {_num(lo)} to {_num(hi)}"
        for m, lo, hi in zip(honest.m, honest.ci_low, honest.ci_high, strict=True)
    ]
    bd = (
        "No value on the grid makes the interval include zero."
        if honest.breakdown is None
        else f"The interval first includes zero at {label} {honest.breakdown:.2f}."
    )
    return (
        f"Chart of confidence intervals for the first-year effect, {unit}, as larger departures "
        f"from parallel trends are allowed. Conventional interval {_num(lo0)} to {_num(hi0)}; "
        + "; ".join(items)
        + f". {bd}"
    )


# ----------------------------------------------------------------------------- CBA
def plot_tornado(table: pd.DataFrame, *, max_bars: int = 10, scale: float = 1e6) -> Figure:
    """Tornado chart of the NPSV: low values solid, high values hatched (readable in grey)."""
    rows = table.head(max_bars).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * max(len(rows), 1) + 1.6), dpi=110)
    base = float(table["npsv_base"].iloc[0]) / scale if len(table) else 0.0
    y = np.arange(len(rows))
    low = rows["npsv_low"].to_numpy(float) / scale
    high = rows["npsv_high"].to_numpy(float) / scale
    ax.barh(y, low - base, left=base, color=DARK_BLUE, edgecolor="black", label="input at low")
    ax.barh(
        y,
        high - base,
        left=base,
        color="white",
        edgecolor=ORANGE,
        hatch="///",
        linewidth=1.2,
        label="input at high",
    )
    ax.axvline(base, color="black", linewidth=1)
    ax.axvline(0, color=GREY, linewidth=1, linestyle="--")
    top = ax.get_xaxis_transform()
    ax.text(base, 1.0, f" central {base:,.1f}", transform=top, va="bottom", fontsize=8.5)
    ax.text(0, 1.0, "0 ", transform=top, va="bottom", ha="right", fontsize=8.5, color=GREY)
    ax.set_yticks(y, [_wrap(s, 45) for s in rows["label"].astype(str)], fontsize=8.5)
    ax.set_xlabel("Net present social value (£ million, present value)")
    ax.legend(loc="lower right", fontsize=9, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def tornado_alt_text(table: pd.DataFrame, perspective: str, *, max_bars: int = 10) -> str:
    """Alt text naming the inputs with the widest NPSV ranges."""
    base = float(table["npsv_base"].iloc[0]) / 1e6
    items = [
        f"{r['label']}: {_num(r['npsv_low'] / 1e6, 1)} to {_num(r['npsv_high'] / 1e6, 1)}"
        for r in table.head(max_bars).to_dict("records")
    ]
    return (
        f"Tornado chart of the {perspective} net present social value (£ million), central value "
        f"{_num(base, 1)}, when each input is set to its low and high value, widest first: "
        + "; ".join(items)
        + "."
    )


def plot_bcr_distribution(mc: Any, perspective: str = "economic", bins: int = 50) -> Figure:
    """Histogram of the Monte Carlo benefit-cost ratios with the break-even line at 1."""
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    b = mc.bcr(perspective)
    b = b[np.isfinite(b)]
    lo, hi = np.percentile(b, [0.5, 99.5]) if b.size else (0, 1)
    ax.hist(np.clip(b, lo, hi), bins=bins, color=DARK_BLUE, edgecolor="white")
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.5, label="BCR = 1 (break-even)")
    ax.set_xlabel(f"Benefit-cost ratio ({perspective} perspective)")
    ax.set_ylabel("Number of draws")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def bcr_alt_text(mc: Any, perspective: str = "economic") -> str:
    """Alt text with the percentiles of the BCR and P(BCR > 1)."""
    b = mc.bcr(perspective)
    b = b[np.isfinite(b)]
    if not b.size:
        return f"Histogram of Monte Carlo benefit-cost ratios ({perspective}): no finite draws."
    p5, p50, p95 = np.percentile(b, [5, 50, 95])
    return (
        f"Histogram of {mc.n_draws:,} Monte Carlo draws of the {perspective} benefit-cost ratio: "
        f"median {p50:.2f}, 90% of draws between {p5:.2f} and {p95:.2f}; "
        f"{mc.prob_bcr_above(1.0, perspective):.0%} of draws are above 1."
    )


def spec_curve_alt_text(grid: pd.DataFrame) -> str:
    """Alt text for a specification curve."""
    ok = grid.loc[grid["status"].eq("ok")] if "status" in grid else grid
    att = pd.to_numeric(ok["att"], errors="coerce").dropna()
    if att.empty:
        return "Specification curve: no specification could be estimated."
    lo = pd.to_numeric(ok["ci_low"], errors="coerce")
    hi = pd.to_numeric(ok["ci_high"], errors="coerce")
    clear = int(((lo > 0) | (hi < 0)).sum())
    return (
        f"Specification curve of {len(att)} estimates sorted from {_num(att.min())} to "
        f"{_num(att.max())} (median {_num(float(att.median()))}); {clear} have a confidence "
        "interval excluding zero (filled markers), the rest hollow markers. Below, dots mark the "
        "choices each specification makes."
    )


# ----------------------------------------------------------------------------- output
def render_figure(fig: Figure, *, dpi: float | None = None) -> dict[str, bytes]:
    """Render a figure to PNG and SVG bytes (without dates, so reruns are identical); close it."""
    out = {}
    for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None})):
        buf = io.BytesIO()
        kwargs: dict[str, Any] = {"format": fmt, "metadata": metadata}
        if dpi is not None and fmt == "png":
            kwargs["dpi"] = dpi
        with matplotlib.rc_context({"svg.hashsalt": "kinship-eval"}):
            fig.savefig(buf, **kwargs)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out
