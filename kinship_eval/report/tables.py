"""The report's published tables: one :class:`PublishedTable` each, rendered three ways.

Every table is built once, from the results, into the values that are published (rounded, with
disclosure control applied); the HTML report, the spreadsheet (``report_tables.ods``) and the CSV
files (``tables/<key>.csv``) are all rendered from that one object, so they cannot disagree.

Cells hold numbers or one of the symbols ``c`` (suppressed for disclosure control), ``x`` (not
available) and ``z`` (not applicable), written ``[c]``, ``[x]``, ``[z]`` in the spreadsheet (GSS
shorthand) and ``c``, ``x``, ``z`` in CSV files and the HTML report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kinship_eval.data.panel import DERIVED_COUNTS
from kinship_eval.report import sdc
from kinship_eval.report.narrative import MINUS, fmt_years

if TYPE_CHECKING:
    from kinship_eval.pipeline import EvaluationResults

__all__ = [
    "ESTIMATOR_NAMES",
    "INFERENCE_NAMES",
    "Marker",
    "Note",
    "PublishedTable",
    "build_tables",
]

ESTIMATOR_NAMES = {
    "twfe": "Two-way fixed effects",
    "event_study": "Event study (two-way fixed effects)",
    "cs": "Callaway and Sant'Anna (2021)",
    "sunab": "Sun and Abraham (2021)",
    "imputation": "Imputation (Borusyak, Jaravel and Spiess 2024)",
    "sdid": "Synthetic difference-in-differences",
    "sc": "Synthetic control",
    "poisson": "Poisson pseudo-maximum likelihood",
}
INFERENCE_NAMES = {
    "cluster": "Clustered by LA",
    "wild_bootstrap": "Wild cluster bootstrap",
    "influence_function": "Influence function, clustered by LA",
    "placebo": "Placebo (synthetic DiD)",
    "randomization": "Randomisation inference",
    "jackknife": "Jackknife",
    "bootstrap": "Bootstrap",
    "default": "Estimator default",
}
PERSPECTIVE_NAMES = {"fiscal": "Fiscal", "economic": "Economic", "social": "Social"}


class Marker(str):
    """A symbol standing in for a value: ``c`` (suppressed), ``x`` (not available), ``z`` (not
    applicable)."""

    def render(self, fmt: str) -> str:
        return sdc.MARKERS[fmt][str(self)]


C, X, Z = Marker("c"), Marker("x"), Marker("z")


@dataclass(frozen=True)
class Note:
    """A note referred to from table titles (``[note 1]``) and listed on the Notes sheet."""

    key: str
    text: str


@dataclass
class PublishedTable:
    """One published table.

    Attributes
    ----------
    key
        Short identifier; the CSV file is ``tables/<key>.csv``.
    title
        Title (without number), e.g. ``"Estimated impact of the allowance on each outcome"``.
    description
        One sentence for the contents sheet.
    frame
        The published values: numbers, :class:`Marker` symbols or text; never blank.
    formats
        Display format per column: ``d0``-``d4`` (decimals), ``g4`` (4 significant figures),
        ``p`` (p-value), ``t`` (text). Columns not listed are text, or ``d2`` if numeric.
    source
        Where the data come from.
    notes
        Keys of the notes that apply (see :func:`build_tables`); ``illustrative`` is added
        first whenever ``illustrative`` is true.
    illustrative
        Whether any value rests on illustrative (simulated) years.
    sdc
        Disclosure-control facts for the audit (count columns, totals).
    row_header
        Whether the first column names each row (rendered as ``<th scope="row">``).
    in_report
        Shown in the HTML/PDF report (else only in the spreadsheet and CSV).
    footnotes
        Short notes printed under the table in the report.
    report_columns
        The columns shown in the report (default all); the spreadsheet and CSV have all.
    landscape
        Print the table on landscape pages in the PDF.
    """

    key: str
    title: str
    description: str
    frame: pd.DataFrame
    formats: dict[str, str] = field(default_factory=dict)
    source: str = "Kinship allowance pilot evaluation"
    notes: tuple[str, ...] = ()
    illustrative: bool = False
    sdc: sdc.SDCMeta | None = None
    row_header: bool = True
    in_report: bool = True
    footnotes: tuple[str, ...] = ()
    report_columns: tuple[str, ...] | None = None
    landscape: bool = False
    number: int = 0

    def __post_init__(self) -> None:
        if self.illustrative and "illustrative" not in self.notes:
            # every table resting on simulated years carries the illustrative note, first
            self.notes = ("illustrative", *self.notes)
        self.frame = self.frame.reset_index(drop=True)
        self.frame.columns = [str(c) for c in self.frame.columns]
        if self.frame.isna().to_numpy().any():
            # no blank cells in a published table: a missing value is "not available"
            frame = self.frame.astype(object)
            for col in frame.columns:
                frame[col] = [X if _is_blank(v) else v for v in frame[col]]
            self.frame = frame

    # ------------------------------------------------------------------ views
    @property
    def label(self) -> str:
        """``Table 3`` (after numbering)."""
        return f"Table {self.number}" if self.number else "Table"

    @property
    def sheet_name(self) -> str:
        return f"Table_{self.number}"

    def column_format(self, column: str) -> str:
        if column in self.formats:
            return self.formats[column]
        values = [v for v in self.frame[column] if not isinstance(v, str)]
        if values and all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
            return "d2"
        return "t"

    def markers_used(self) -> set[str]:
        return {str(v) for v in self.frame.to_numpy().ravel() if isinstance(v, Marker)}

    def cell_text(self, value: Any, fmt: str, *, output: str = "html") -> str:
        """Display text of one cell."""
        if isinstance(value, Marker):
            return value.render(output)
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, np.bool_)):
            return "Yes" if value else "No"
        return format_number(value, fmt, minus=MINUS if output == "html" else "-")

    def published(self, output: str = "csv") -> pd.DataFrame:
        """Values for a CSV file: numbers as they are (whole numbers in ``d0`` columns as
        integers, ``149`` rather than ``149.0``), symbols as ``c``/``x``/``z``."""
        out = self.frame.astype(object).copy()
        for col in out.columns:
            whole = self.column_format(col) == "d0"
            out[col] = [_published_value(v, output, whole) for v in out[col]]
        return out

    @property
    def html_columns(self) -> list[str]:
        """The columns the report shows."""
        if self.report_columns is None:
            return list(self.frame.columns)
        return [c for c in self.frame.columns if c in self.report_columns]

    def html_rows(self) -> list[list[dict[str, Any]]]:
        """Cells for the HTML template: ``text``, ``numeric``, ``header``, ``marker``, ``token``
        (a long unbroken string such as a hash, which may wrap anywhere)."""
        columns = self.html_columns
        fmts = {c: self.column_format(c) for c in columns}
        rows = []
        for record in self.frame[columns].itertuples(index=False):
            row = []
            for i, (col, value) in enumerate(zip(columns, record, strict=True)):
                numeric = fmts[col] != "t" and not isinstance(value, str)
                shown = self.cell_text(value, fmts[col])
                row.append(
                    {
                        "text": shown,
                        "numeric": numeric or isinstance(value, Marker),
                        "header": self.row_header and i == 0,
                        "marker": str(value) if isinstance(value, Marker) else None,
                        "token": len(shown) > 28 and " " not in shown,
                    }
                )
            rows.append(row)
        return rows


def format_number(value: Any, fmt: str, *, minus: str = MINUS) -> str:
    """Format a number for display (see :attr:`PublishedTable.formats`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "x"
    v = float(value)
    if fmt == "p":
        return "<0.001" if v < 0.001 else f"{v:.3f}"
    if fmt == "g4":
        text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.4g}"
    elif fmt.startswith("d"):
        text = f"{v:,.{int(fmt[1:])}f}"
    else:
        text = str(value)
    if text.startswith("-"):
        stripped = text[1:]
        text = stripped if float(stripped.replace(",", "") or 0) == 0 else minus + stripped
    return text


def _round(frame: pd.DataFrame, formats: dict[str, str]) -> pd.DataFrame:
    """Round numeric columns to their published precision (p-values to 4 decimals)."""
    out = frame.copy()
    for col, fmt in formats.items():
        if col not in out or fmt == "t":
            continue
        dp = 4 if fmt in ("p", "g4") else int(fmt[1:]) if fmt.startswith("d") else None
        if dp is None:
            continue
        out[col] = [
            round(float(v), dp) if _is_number(v) and fmt != "g4" else _sig(v, 4) for v in out[col]
        ]
    return out


def _published_value(v: Any, output: str, whole: bool) -> Any:
    if isinstance(v, Marker):
        return v.render(output)
    if whole and _is_number(v) and float(v).is_integer():
        return int(v)
    return v


def _is_blank(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _is_number(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, bool)
        and not (isinstance(v, float) and math.isnan(v))
    )


def _sig(v: Any, digits: int) -> Any:
    """``digits`` significant figures below 1,000; whole numbers from 1,000."""
    if not _is_number(v) or v == 0:
        return v
    if abs(v) >= 1000:
        return float(round(float(v)))
    return float(f"{float(v):.{digits}g}")


# ============================================================================ builders
@dataclass
class TableContext:
    """What the builders share: the results and the derived facts they all use."""

    results: EvaluationResults
    rule: sdc.SDCRule
    illustrative_years: tuple[int, ...]
    first_treated: int
    dfe_source: str = (
        "Department for Education, Children looked after in England including adoptions "
        "(Explore Education Statistics); ONS mid-year population estimates"
    )

    @property
    def illustrative(self) -> bool:
        return bool(self.illustrative_years)

    def data_label(self, period: int) -> str:
        return "Illustrative" if int(period) in self.illustrative_years else "Real"

    def label(self, column: str) -> str:
        return self.results.panel.label(column)


def _post_means(sample: pd.DataFrame, outcome: str, first_treated: int) -> tuple[float, float]:
    s = sample.loc[sample[outcome].notna()]
    post = s["period"] >= first_treated
    return (
        float(s.loc[post & s["pilot"], outcome].mean()),
        float(s.loc[post & ~s["pilot"], outcome].mean()),
    )


def impact_records(ctx: TableContext) -> list[dict[str, Any]]:
    """Primary and secondary outcomes: means after the start, effect, % change, CI, p-value."""
    res = ctx.results
    spec = res.spec
    rows: list[dict[str, Any]] = []
    jobs: list[tuple[str, str, float, float, float, float, str]] = [
        (
            spec.outcome,
            "Primary",
            res.estimate.att,
            res.estimate.ci_low,
            res.estimate.ci_high,
            res.estimate.p_value,
            res.estimate.inference,
        )
    ]
    rob = res.robustness
    if rob is not None and len(rob):
        sec = rob.loc[
            rob["status"].eq("ok")
            & rob["estimator"].eq(spec.estimator)
            & rob["outcome"].ne(spec.outcome)
        ].drop_duplicates("outcome")
        for r in sec.to_dict("records"):
            jobs.append(
                (
                    r["outcome"],
                    "Secondary",
                    r["att"],
                    r["ci_low"],
                    r["ci_high"],
                    r["p_value"],
                    r["inference"],
                )
            )
    alpha = 1 - res.estimate.level
    for outcome, role, att, lo, hi, p, inference in jobs:
        if outcome not in res.estimation_sample:
            continue
        pilot, comp = _post_means(res.estimation_sample, outcome, ctx.first_treated)
        counterfactual = pilot - att
        ok = bool(counterfactual) and math.isfinite(counterfactual)
        pct = 100 * att / counterfactual if ok else None
        rows.append(
            {
                "outcome": outcome,
                "label": ctx.label(outcome).split(", per 10,000")[0],
                "role": role,
                "pilot_mean": pilot,
                "comparison_mean": comp,
                "att": att,
                "pct_change": pct,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
                "significant": bool(p is not None and p < alpha),
                "inference": inference,
            }
        )
    return rows


IMPACT_COLUMNS = {
    "label": "Outcome",
    "role": "Role",
    "pilot_mean": "Pilot LAs, mean after start (per 10,000)",
    "comparison_mean": "Comparison LAs, mean after start (per 10,000)",
    "att": "Estimated effect (per 10,000)",
    "pct_change": "Change relative to no allowance (%)",
    "ci_low": "95% CI lower (per 10,000)",
    "ci_high": "95% CI upper (per 10,000)",
    "p_value": "p-value",
    "significant": "Significant at 5%",
    "inference": "Inference",
}


def table_impact(ctx: TableContext) -> PublishedTable:
    rows = impact_records(ctx)
    frame = pd.DataFrame(rows)
    frame["pct_change"] = [X if v is None else v for v in frame["pct_change"]]
    frame["significant"] = ["Yes" if v else "No" for v in frame["significant"]]
    frame["inference"] = [INFERENCE_NAMES.get(v, v) for v in frame["inference"]]
    frame = frame[list(IMPACT_COLUMNS)].rename(columns=IMPACT_COLUMNS)
    formats = {c: "d2" for c in frame.columns if "per 10,000" in c}
    formats.update(
        {
            "Change relative to no allowance (%)": "d1",
            "p-value": "p",
            "Outcome": "t",
            "Role": "t",
            "Significant at 5%": "t",
            "Inference": "t",
        }
    )
    return PublishedTable(
        key="impact",
        title="Estimated impact of the allowance on each outcome"
        + (" (illustrative)" if ctx.illustrative else ""),
        description="Pilot and comparison means after the start, the estimated effect, % change, "
        "95% confidence interval, p-value and significance, for the primary and secondary "
        "outcomes.",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("years", "rates", "means", "pct_change", "inference"),
        illustrative=ctx.illustrative,
        report_columns=tuple(c for c in frame.columns if c != "Inference"),
    )


def table_pilot_las(ctx: TableContext) -> PublishedTable:
    f = ctx.results.panel.frame
    las = (
        f.loc[f["pilot"]]
        .drop_duplicates("la_code")
        .sort_values("la_name")[["la_name", "la_code", "region", "first_treated"]]
    )
    frame = pd.DataFrame(
        {
            "Local authority": las["la_name"].astype(str),
            "ONS code": las["la_code"].astype(str),
            "Region": las["region"].astype(str),
            "First year of payments (year ending 31 March)": [
                str(int(v)) if pd.notna(v) else X for v in las["first_treated"]
            ],
        }
    )
    return PublishedTable(
        key="pilot_las",
        title="The pilot local authorities (Kinship Zones)",
        description="The local authorities paying the allowance and the first year of payments.",
        frame=frame,
        formats={c: "t" for c in frame.columns},
        source="Pilot register (announcements of 27 February 2026)",
        notes=("years",),
    )


def table_trends(ctx: TableContext) -> PublishedTable:
    t = ctx.results.trends
    wide = t.pivot(index="period", columns="group", values="mean")
    n = t.pivot(index="period", columns="group", values="n_las")
    frame = pd.DataFrame(
        {
            "Year ending 31 March": [str(int(p)) for p in wide.index],
            "Pilot LAs (mean per 10,000 children)": wide.get("Pilot LAs"),
            "Comparison LAs (mean per 10,000 children)": wide.get("Comparison LAs"),
            "Pilot LAs (number of LAs)": n.get("Pilot LAs"),
            "Comparison LAs (number of LAs)": n.get("Comparison LAs"),
            "Data": [ctx.data_label(p) for p in wide.index],
        }
    )
    formats = {
        "Year ending 31 March": "t",
        "Pilot LAs (mean per 10,000 children)": "d2",
        "Comparison LAs (mean per 10,000 children)": "d2",
        "Pilot LAs (number of LAs)": "d0",
        "Comparison LAs (number of LAs)": "d0",
        "Data": "t",
    }
    label = ctx.label(ctx.results.spec.outcome).split(", per 10,000")[0]
    return PublishedTable(
        key="trends",
        title=f"{label}: mean per 10,000 children by year, pilot and comparison LAs"
        + (" (includes illustrative years)" if ctx.illustrative else ""),
        description="The data behind Figure 1: mean outcome by year in the pilot and comparison "
        "local authorities in the estimation sample.",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("years", "rates"),
        illustrative=ctx.illustrative,
    )


def table_event_study(ctx: TableContext) -> PublishedTable | None:
    es_res = ctx.results.event_study
    if es_res is None or es_res.event_study is None or es_res.event_study.empty:
        return None
    es = es_res.event_study.loc[es_res.event_study["att"].notna()].sort_values("rel_time")
    single_cohort = (
        ctx.results.panel.frame.loc[ctx.results.panel.frame["pilot"], "first_treated"].nunique()
        == 1
    )
    ref = (es["se"].isna() & es["att"].eq(0)) if "se" in es else pd.Series(False, index=es.index)
    data: dict[str, Any] = {"Years relative to first year of payments": es["rel_time"].astype(int)}
    if single_cohort:
        data["Year ending 31 March"] = [str(ctx.first_treated + int(e)) for e in es["rel_time"]]
    data["Estimate (per 10,000 children)"] = es["att"]
    for col, name in (
        ("se", "Standard error"),
        ("ci_low", "95% CI lower"),
        ("ci_high", "95% CI upper"),
        ("band_low", "Uniform band lower"),
        ("band_high", "Uniform band upper"),
    ):
        if col in es:
            data[name] = [Z if is_ref else v for v, is_ref in zip(es[col], ref, strict=True)]
    data["Period"] = [
        "Reference (fixed at 0)" if r else ("Before" if e < 0 else "After")
        for e, r in zip(es["rel_time"], ref, strict=True)
    ]
    if single_cohort:
        data["Data"] = [ctx.data_label(ctx.first_treated + int(e)) for e in es["rel_time"]]
    frame = pd.DataFrame(data)
    formats = {c: "d2" for c in frame.columns}
    formats.update(
        {
            "Years relative to first year of payments": "d0",
            "Year ending 31 March": "t",
            "Period": "t",
            "Data": "t",
        }
    )
    return PublishedTable(
        key="event_study",
        title="Event-study estimates by year relative to the first year of payments"
        + (" (illustrative)" if ctx.illustrative else ""),
        description="Differences between pilot and comparison LAs in each year relative to the "
        "year before payments began, with 95% confidence intervals (the data behind Figure 2).",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("years", "rates", "reference"),
        illustrative=ctx.illustrative,
    )


def table_pretrends(ctx: TableContext) -> PublishedTable | None:
    res = ctx.results
    rows: list[dict[str, Any]] = []
    pt = res.pretrends
    if pt:
        p = pt.get("p_value")
        rows.append(
            {
                "Test": "Joint Wald test that every pre-pilot event-study coefficient is zero",
                "Statistic": pt.get("stat", math.nan),
                "Degrees of freedom": pt.get("df", math.nan),
                "p-value": p if p is not None else math.nan,
                "Result": "Pass (p >= 0.05)"
                if p is not None and p >= 0.05
                else "Fail (p < 0.05): pre-pilot trends differ",
            }
        )
        for key, name in (("power_wald", "Power of the joint test against a linear trend"),):
            if key in pt and _is_number(pt[key]):
                rows.append(
                    {
                        "Test": name,
                        "Statistic": pt[key],
                        "Degrees of freedom": Z,
                        "p-value": Z,
                        "Result": "Power, not a test",
                    }
                )
    honest = res.honest
    if honest is not None:
        label = "Mbar" if honest.method == "relative_magnitude" else "M"
        bd = honest.breakdown
        rows.append(
            {
                "Test": f"HonestDiD breakdown value ({label}, {honest.method.replace('_', ' ')})",
                "Statistic": bd if bd is not None else X,
                "Degrees of freedom": Z,
                "p-value": Z,
                "Result": (
                    f"Robust at every {label} on the grid"
                    if bd is None
                    else "Not robust: interval includes zero at 0"
                    if bd < 0.05
                    else f"Robust for {label} below {bd:.2f}"
                ),
            }
        )
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    formats = {
        "Test": "t",
        "Statistic": "d2",
        "Degrees of freedom": "d0",
        "p-value": "p",
        "Result": "t",
    }
    return PublishedTable(
        key="pretrend_tests",
        title="Tests of parallel trends before the pilot"
        + (" (illustrative reference year)" if _reference_illustrative(ctx) else ""),
        description="The joint test of the pre-pilot event-study coefficients and the HonestDiD "
        "breakdown value.",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("honest",),
        illustrative=_reference_illustrative(ctx),
    )


def _reference_illustrative(ctx: TableContext) -> bool:
    ref = ctx.first_treated - 1 - int(ctx.results.spec.anticipation)
    return ref in ctx.illustrative_years


def table_honest(ctx: TableContext) -> PublishedTable | None:
    h = ctx.results.honest
    if h is None:
        return None
    t = h.to_frame()
    label = "Mbar" if h.method == "relative_magnitude" else "M"
    frame = pd.DataFrame(
        {
            f"{label} (allowed departure from parallel trends)": [
                "Original (parallel trends)" if pd.isna(m) else f"{m:g}" for m in t["m"]
            ],
            "95% CI lower (per 10,000 children)": t["ci_low"],
            "95% CI upper (per 10,000 children)": t["ci_high"],
            "Interval excludes zero": [
                "Yes" if (lo > 0 or hi < 0) else "No"
                for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)
            ],
            "Method": ["Conventional" if m == "Original" else m for m in t["method"].astype(str)],
        }
    )
    formats = {c: "t" for c in frame.columns}
    formats.update(
        {"95% CI lower (per 10,000 children)": "d2", "95% CI upper (per 10,000 children)": "d2"}
    )
    return PublishedTable(
        key="honest",
        title="Sensitivity of the first-year effect to departures from parallel trends "
        "(HonestDiD)" + (" (illustrative)" if ctx.illustrative else ""),
        description="Rambachan and Roth (2023) confidence intervals for the first-year effect as "
        "larger departures from parallel trends are allowed.",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("honest",),
        illustrative=ctx.illustrative,
    )


def table_robustness(ctx: TableContext) -> PublishedTable | None:
    rob = ctx.results.robustness
    if rob is None or rob.empty:
        return None
    spec = ctx.results.spec
    part = rob.loc[rob["outcome"].eq(spec.outcome)]
    rows = []
    for r in part.to_dict("records"):
        ok = r["status"] in ("ok", "primary")
        rows.append(
            {
                "Estimator": ESTIMATOR_NAMES.get(r["estimator"], r["estimator"])
                + (" (primary)" if r["status"] == "primary" else ""),
                "Specification": "Primary" if r["status"] == "primary" else "Alternative",
                "Estimate (per 10,000 children)": r["att"] if ok else X,
                "Standard error": r["se"] if ok else X,
                "95% CI lower": r["ci_low"] if ok else X,
                "95% CI upper": r["ci_high"] if ok else X,
                "p-value": r["p_value"] if ok else X,
                "Inference": INFERENCE_NAMES.get(r["inference"], r["inference"]) if ok else X,
                "LAs (number)": r["n_units"] if ok else X,
                "Status": "Estimated" if ok else f"Not estimated: {r['status']}",
            }
        )
    frame = pd.DataFrame(rows)
    formats = {
        "Estimator": "t",
        "Specification": "t",
        "Estimate (per 10,000 children)": "d2",
        "Standard error": "d2",
        "95% CI lower": "d2",
        "95% CI upper": "d2",
        "p-value": "p",
        "Inference": "t",
        "LAs (number)": "d0",
        "Status": "t",
    }
    return PublishedTable(
        key="robustness",
        title="The primary outcome estimated with alternative estimators"
        + (" (illustrative)" if ctx.illustrative else ""),
        description="The effect on the primary outcome from each alternative difference-in-"
        "differences estimator, with its default inference.",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("rates", "inference"),
        illustrative=ctx.illustrative,
        report_columns=tuple(
            c
            for c in frame.columns
            if c != "Specification" and (c != "Status" or (frame["Status"] != "Estimated").any())
        ),
    )


def _cba_illustrative(ctx: TableContext) -> bool:
    cba = ctx.results.cba
    try:
        return bool(cba.assumptions.effect.illustrative)
    except AttributeError:
        return ctx.illustrative


def _financial_year(cba: Any, perspective: str, index: Any) -> str:
    if index is None or pd.isna(index):
        return "Not within the horizon"
    by_year = cba.results.perspectives[perspective].by_year
    match = by_year.loc[by_year["year_index"] == int(index), "financial_year"]
    return str(match.iloc[0]) if len(match) else str(index)


def table_cba(ctx: TableContext) -> PublishedTable | None:
    cba = ctx.results.cba
    if cba is None:
        return None
    t = cba.results.to_frame()
    frame = pd.DataFrame(
        {
            "Perspective": [PERSPECTIVE_NAMES.get(p, p) for p in t["perspective"]],
            "Present value of costs (£ million)": t["pv_costs"] / 1e6,
            "Present value of benefits (£ million)": t["pv_benefits"] / 1e6,
            "Net present social value (£ million)": t["npsv"] / 1e6,
            "Benefit-cost ratio": t["bcr"],
            "Benefits per £1 of public spending (£)": t["benefit_per_pound_spent"],
            "Payback year": [
                _financial_year(cba, p, y)
                for p, y in zip(t["perspective"], t["payback_year"], strict=True)
            ],
        }
    )
    formats = {c: "d1" for c in frame.columns if "£ million" in c}
    formats.update(
        {
            "Perspective": "t",
            "Benefit-cost ratio": "d2",
            "Benefits per £1 of public spending (£)": "d2",
            "Payback year": "t",
        }
    )
    illus = _cba_illustrative(ctx)
    return PublishedTable(
        key="cba_perspectives",
        title="Cost-benefit analysis by perspective" + (" (illustrative)" if illus else ""),
        description="Present values of costs and benefits, net present social value and "
        "benefit-cost ratio from the fiscal, economic and social perspectives.",
        frame=_round(frame, formats),
        formats=formats,
        source="Kinship allowance pilot evaluation; HM Treasury Green Book (2022)",
        notes=("cba_prices", "cba_perspectives"),
        illustrative=illus,
    )


def table_monte_carlo(ctx: TableContext) -> PublishedTable | None:
    cba = ctx.results.cba
    if cba is None or cba.monte_carlo is None:
        return None
    t = cba.monte_carlo.summary_table()
    t = t.loc[t["statistic"] == "bcr"]
    frame = pd.DataFrame(
        {
            "Perspective": [PERSPECTIVE_NAMES.get(p, p) for p in t["perspective"]],
            "Central BCR": t["central"],
            "Mean BCR": t["mean"],
            "5th percentile BCR": t["p5"],
            "Median BCR": t["p50"],
            "95th percentile BCR": t["p95"],
            "Probability BCR above 1 (%)": 100 * t["prob_bcr_gt_1"],
            "Probability NPSV above 0 (%)": 100 * t["prob_npsv_gt_0"],
        }
    )
    formats = {c: "d2" for c in frame.columns}
    formats.update(
        {
            "Perspective": "t",
            "Probability BCR above 1 (%)": "d1",
            "Probability NPSV above 0 (%)": "d1",
        }
    )
    illus = _cba_illustrative(ctx)
    mc = cba.monte_carlo
    return PublishedTable(
        key="cba_monte_carlo",
        title=f"Monte Carlo simulation of the benefit-cost ratio ({mc.n_draws:,} draws)"
        + (" (illustrative)" if illus else ""),
        description="Distribution of the benefit-cost ratio when the effect and the uncertain "
        "unit costs are drawn from their distributions, and the probability it exceeds 1.",
        frame=_round(frame, formats),
        formats=formats,
        source="Kinship allowance pilot evaluation",
        notes=("cba_prices", "monte_carlo"),
        illustrative=illus,
    )


def table_tornado(ctx: TableContext) -> PublishedTable | None:
    cba = ctx.results.cba
    if cba is None or cba.tornado is None or cba.tornado.empty:
        return None
    t = cba.tornado
    perspective = t.attrs.get("perspective", cba.spec.sensitivity.perspective)
    frame = pd.DataFrame(
        {
            "Input": t["label"].astype(str),
            "Central value": t["base_value"],
            "Low value": t["low"],
            "High value": t["high"],
            "NPSV at low value (£ million)": t["npsv_low"] / 1e6,
            "NPSV at high value (£ million)": t["npsv_high"] / 1e6,
            "Swing (£ million)": t["swing"] / 1e6,
        }
    )
    formats = {
        "Input": "t",
        "Central value": "g4",
        "Low value": "g4",
        "High value": "g4",
        "NPSV at low value (£ million)": "d1",
        "NPSV at high value (£ million)": "d1",
        "Swing (£ million)": "d1",
    }
    illus = _cba_illustrative(ctx)
    return PublishedTable(
        key="cba_tornado",
        title=f"One-way sensitivity of the {perspective} net present social value"
        + (" (illustrative)" if illus else ""),
        description="The NPSV when each input is set to its low and high value, others held at "
        "their central values (the data behind the tornado chart).",
        frame=_round(frame, formats),
        formats=formats,
        source="Kinship allowance pilot evaluation",
        notes=("cba_prices",),
        illustrative=illus,
    )


def table_switching(ctx: TableContext) -> PublishedTable | None:
    cba = ctx.results.cba
    if cba is None or cba.switching is None or cba.switching.empty:
        return None
    s = cba.switching.loc[cba.switching["found"].astype(bool)]
    if s.empty:
        return None
    frame = pd.DataFrame(
        {
            "Input": s["label"].astype(str),
            "Perspective": [PERSPECTIVE_NAMES.get(p, p) for p in s["perspective"]],
            "Central value": s["base_value"],
            "Switching value": s["switching_value"],
            "Change needed (%)": [
                v if _is_number(v) and math.isfinite(v) else Z for v in s["change_pct"]
            ],
        }
    )
    formats = {
        "Input": "t",
        "Perspective": "t",
        "Central value": "g4",
        "Switching value": "g4",
        "Change needed (%)": "d0",
    }
    illus = _cba_illustrative(ctx)
    return PublishedTable(
        key="cba_switching",
        title="Switching values: the input value at which the NPSV changes sign"
        + (" (illustrative)" if illus else ""),
        description="For each input that can change the sign of the NPSV, the value at which it "
        "does, others held at their central values.",
        frame=_round(frame, formats),
        formats=formats,
        source="Kinship allowance pilot evaluation",
        notes=("illustrative",) if illus else (),
        illustrative=illus,
        footnotes=(
            "Inputs not listed do not change the sign of the NPSV anywhere in their plausible "
            "range. z: not applicable (the central value is zero).",
        ),
    )


def table_cba_children(ctx: TableContext) -> PublishedTable | None:
    cba = ctx.results.cba
    if cba is None:
        return None
    ch = cba.results.children
    ch = ch.loc[(ch["additional_exits"] > 0) | (ch["child_years"] > 0)]
    if ch.empty:
        return None
    exits = "Additional exits to kinship carers (number of children)"
    years = "Child-years in kinship care instead of care (number)"
    cells = pd.DataFrame(
        {exits: ch["additional_exits"].to_numpy(), years: ch["child_years"].to_numpy()},
        index=ch["financial_year"].astype(str),
    )
    prot = sdc.protect_table(cells, ctx.rule, row_totals=False, column_totals=True)
    pub = prot.published("csv")
    frame = pd.DataFrame({"Financial year": list(pub.index)})
    for col in pub.columns:
        frame[col] = [Marker(v) if isinstance(v, str) else v for v in pub[col]]
    illus = _cba_illustrative(ctx)
    return PublishedTable(
        key="cba_children",
        title="Children modelled to leave care to kinship carers because of the allowance"
        + (" (illustrative)" if illus else ""),
        description="Additional exits from care to kinship carers implied by the estimated "
        "effect, and the child-years spent in kinship care instead of care, by financial year.",
        frame=frame,
        formats={"Financial year": "t", exits: "d0", years: "d0"},
        source="Kinship allowance pilot evaluation (effect x child population of the pilot LAs)",
        notes=("sdc",),
        illustrative=illus,
        sdc=sdc.SDCMeta(
            count_columns=(exits, years),
            rule=ctx.rule,
            row_label_column="Financial year",
            column_totals=True,
        ),
    )


def table_cba_assumptions(ctx: TableContext) -> PublishedTable | None:
    cba = ctx.results.cba
    if cba is None:
        return None
    a = cba.assumptions.table()
    frame = pd.DataFrame(
        {
            "Input": a["label"].astype(str),
            "Value": a["value"],
            "Low": a["low"],
            "High": a["high"],
            "Distribution": [
                str(v) if isinstance(v, str) and v else Z for v in a.get("distribution", [])
            ],
            "Unit": a["unit"].astype(str),
            "Source": a["source"].astype(str),
            "Strength of evidence": a["evidence"].astype(str),
        }
    )
    formats = {c: "t" for c in frame.columns}
    formats.update({"Value": "g4", "Low": "g4", "High": "g4"})
    illus = _cba_illustrative(ctx)
    return PublishedTable(
        key="cba_assumptions",
        title="Appraisal inputs, their ranges and sources"
        + (" (the effect is illustrative)" if illus else ""),
        landscape=True,
        description="Every input to the cost-benefit analysis with its central value, range, "
        "distribution in the Monte Carlo simulation, unit, source and strength of evidence.",
        frame=_round(frame, formats),
        formats=formats,
        source="See the Source column",
        notes=("cba_prices",),
        illustrative=illus,
    )


def default_balance(ctx: TableContext) -> pd.DataFrame | None:
    """Pre-pilot means of each outcome rate: pilot vs comparison LAs (real years only)."""
    s = ctx.results.estimation_sample
    pre = s.loc[(s["period"] < ctx.first_treated) & ~s["period"].isin(ctx.illustrative_years)]
    if pre.empty:
        return None
    rows = []
    for rate in ctx.results.panel.rate_columns:
        if rate not in pre or pre[rate].notna().sum() == 0:
            continue
        la = pre.groupby(["la_code", "pilot"])[rate].mean().reset_index()
        p, c = la.loc[la["pilot"], rate].dropna(), la.loc[~la["pilot"], rate].dropna()
        if len(p) == 0 or len(c) == 0:
            continue
        sd = math.sqrt((p.var(ddof=1) + c.var(ddof=1)) / 2) if len(p) > 1 and len(c) > 1 else 0
        rows.append(
            {
                "Measure": ctx.label(rate).split(", per 10,000")[0],
                "Pilot LAs (mean per 10,000 children)": p.mean(),
                "Comparison LAs (mean per 10,000 children)": c.mean(),
                "Difference (per 10,000 children)": p.mean() - c.mean(),
                "Standardised difference": (p.mean() - c.mean()) / sd if sd else math.nan,
                "Pilot LAs (number of LAs)": len(p),
                "Comparison LAs (number of LAs)": len(c),
            }
        )
    return pd.DataFrame(rows) if rows else None


def table_balance(ctx: TableContext, balance: pd.DataFrame | None) -> PublishedTable | None:
    given = balance is not None
    frame = balance.copy() if given else default_balance(ctx)
    if frame is None or frame.empty:
        return None
    formats = {
        c: ("d0" if "number" in c.lower() else "d2")
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c])
    }
    formats.update({c: "t" for c in frame.columns if c not in formats})
    real_years = sorted(
        y
        for y in ctx.results.panel.periods
        if y < ctx.first_treated and y not in ctx.illustrative_years
    )
    return PublishedTable(
        key="balance",
        title="Balance: pilot and comparison local authorities before the pilot",
        description="Pre-pilot means of each measure in the pilot and comparison LAs, their "
        "difference and standardised difference."
        if not given
        else "Balance of the pilot and comparison groups supplied with the report build.",
        frame=_round(frame, formats),
        formats=formats,
        source=ctx.dfe_source,
        notes=("years", "rates", "balance"),
        footnotes=(
            f"Means over LAs of each LA's mean in the real pre-pilot years "
            f"{fmt_years(real_years)}; standardised difference = difference / pooled standard "
            "deviation across LAs.",
        )
        if not given
        else (),
    )


def _protected_outcome_counts(ctx: TableContext) -> tuple[str, sdc.ProtectedTable] | None:
    """The counts behind the primary outcome in the pilot LAs (LA name x year, with totals)
    after disclosure control, and the count column they come from."""
    res = ctx.results
    count_col = res.panel.rate_columns.get(res.spec.outcome)
    f = res.panel.frame
    if count_col is None or count_col not in f:
        return None
    pilot = f.loc[f["pilot"]]
    cells = pilot.pivot_table(
        index="la_name", columns="period", values=count_col, aggfunc="first", dropna=False
    )
    cells = cells.reindex(columns=sorted(pilot["period"].unique()))
    return count_col, sdc.protect_table(cells, ctx.rule)


def table_outcome_counts(ctx: TableContext) -> PublishedTable | None:
    """Counts of children behind the primary outcome in the pilot LAs, by year, with SDC."""
    protected = _protected_outcome_counts(ctx)
    if protected is None:
        return None
    count_col, prot = protected
    pub = prot.published("csv")
    row_label = "Local authority"
    frame = pd.DataFrame({row_label: [str(i) for i in pub.index]})
    names = {}
    for col in pub.columns:
        name = (
            f"{col} (illustrative)"
            if col != "Total" and int(col) in ctx.illustrative_years
            else str(col)
        )
        names[col] = name
        frame[name] = [Marker(v) if isinstance(v, str) else v for v in pub[col]]
    label = ctx.label(count_col)
    return PublishedTable(
        key="outcome_counts",
        title=f"{label} in the pilot local authorities, by year (number of children)"
        + (" (includes illustrative years)" if ctx.illustrative else ""),
        description="The counts behind the primary outcome in each pilot LA and year, after "
        "disclosure control (suppression and rounding).",
        frame=frame,
        formats={row_label: "t", **{n: "d0" for n in names.values()}},
        source=ctx.dfe_source,
        notes=("years", "sdc"),
        illustrative=ctx.illustrative,
        sdc=sdc.SDCMeta(
            count_columns=tuple(names.values()),
            rule=ctx.rule,
            row_label_column=row_label,
            total_label="Total",
            row_totals=True,
            column_totals=True,
        ),
        landscape=len(frame.columns) > 9,
        footnotes=(
            f"{prot.n_suppressed} cells suppressed (c), including secondary suppressions so "
            "that no suppressed cell can be worked out from the totals; other counts rounded to "
            f"the nearest {ctx.rule.rounding_base}.",
        ),
    )


def table_inputs(ctx: TableContext) -> PublishedTable:
    inputs = ctx.results.provenance.get("inputs", [])
    frame = pd.DataFrame(
        {
            "Role": [i["role"].replace("_", " ") for i in inputs],
            "File": [Path(i["path"]).name for i in inputs],
            "Size (bytes)": [i["bytes"] for i in inputs],
            "SHA-256": [i["sha256"] for i in inputs],
        }
    )
    return PublishedTable(
        key="inputs",
        title="Input files and their SHA-256 hashes",
        description="Every input file the run read, with its size and SHA-256 hash.",
        frame=frame,
        formats={"Role": "t", "File": "t", "Size (bytes)": "d0", "SHA-256": "t"},
        source="Run manifest",
    )


def table_harmonisation(ctx: TableContext) -> PublishedTable | None:
    log = ctx.results.panel.harmonisation
    rows = [
        {"Change": "Combined", "Original codes": ", ".join(m), "Unit in the panel": u}
        for u, m in sorted(log.combined.items())
    ]
    rows += [
        {"Change": "Recoded (same area)", "Original codes": o, "Unit in the panel": n}
        for o, n in sorted(log.recoded.items())
    ]
    rows += [
        {"Change": "Dropped", "Original codes": c, "Unit in the panel": f"None ({why})"}
        for c, why in sorted(log.dropped.items())
    ]
    if not rows:
        return None
    return PublishedTable(
        key="harmonisation",
        title=f"Local authority boundary changes and how they were handled (rule: {log.rule})",
        description="LAs merged, split or recoded between 2019 and 2023 and the stable units "
        "used in the panel.",
        frame=pd.DataFrame(rows),
        formats={"Change": "t", "Original codes": "t", "Unit in the panel": "t"},
        source="ONS Register of Geographic Codes; DfE local authority code lists",
    )


def table_software(ctx: TableContext) -> PublishedTable:
    prov = ctx.results.provenance
    rows = [{"Item": k, "Version": str(v)} for k, v in prov.get("packages", {}).items()]
    rows += [
        {"Item": "git revision", "Version": str(prov.get("git_revision", "unknown"))},
        {"Item": "specification digest", "Version": str(prov.get("spec_digest", "unknown"))},
    ]
    return PublishedTable(
        key="software",
        title="Software versions and code revision",
        description="Python and package versions, the git revision of the code and the digest "
        "of the specification.",
        frame=pd.DataFrame(rows),
        formats={"Item": "t", "Version": "t"},
        source="Run manifest",
    )


def table_spec_curve(ctx: TableContext, grid: pd.DataFrame) -> list[PublishedTable]:
    ok = grid.loc[grid["status"].eq("ok")] if "status" in grid else grid
    att = pd.to_numeric(ok["att"], errors="coerce")
    lo = pd.to_numeric(ok["ci_low"], errors="coerce")
    hi = pd.to_numeric(ok["ci_high"], errors="coerce")
    summary = pd.DataFrame(
        [
            {"Statistic": "Specifications in the grid (number)", "Value": float(len(grid))},
            {"Statistic": "Specifications estimated (number)", "Value": float(len(ok))},
            {"Statistic": "Median estimate (per 10,000 children)", "Value": att.median()},
            {"Statistic": "Smallest estimate (per 10,000 children)", "Value": att.min()},
            {"Statistic": "Largest estimate (per 10,000 children)", "Value": att.max()},
            {
                "Statistic": "Estimates above zero (%)",
                "Value": 100 * float((att > 0).mean()) if len(ok) else math.nan,
            },
            {
                "Statistic": "Intervals excluding zero (%)",
                "Value": 100 * float(((lo > 0) | (hi < 0)).mean()) if len(ok) else math.nan,
            },
        ]
    )
    summary = _round(summary.assign(Value=summary["Value"].astype(float)), {"Value": "d2"})
    illus = ctx.illustrative
    notes = ("rates",)
    tables = [
        PublishedTable(
            key="spec_curve_summary",
            title="Specification curve: summary of every specification in the grid"
            + (" (illustrative)" if illus else ""),
            description="How many specifications were estimated and how their estimates spread.",
            frame=summary,
            formats={"Statistic": "t", "Value": "d2"},
            source="Specification grid results",
            notes=notes,
            illustrative=illus,
        )
    ]
    full = grid.drop(columns=[c for c in ("cached",) if c in grid]).copy()
    formats = {c: "t" for c in full.columns}
    for col in ("att", "se", "ci_low", "ci_high"):
        if col in full:
            formats[col] = "d3"
    if "p_value" in full:
        formats["p_value"] = "p"
    for col in ("n_units", "n_treated_units"):
        if col in full:
            formats[col] = "d0"
    full = full.astype(object).where(full.notna(), X)
    for col, fmt in formats.items():
        if fmt == "t":
            full[col] = [v if isinstance(v, Marker) else str(v) for v in full[col]]
    tables.append(
        PublishedTable(
            key="spec_curve",
            title="Specification curve: every specification in the grid"
            + (" (illustrative)" if illus else ""),
            description="Each specification's choices and its estimate, standard error, "
            "confidence interval and p-value.",
            frame=_round(full, {k: v for k, v in formats.items() if v != "t"}),
            formats=formats,
            source="Specification grid results",
            notes=notes,
            illustrative=illus,
            in_report=False,
        )
    )
    return tables


def table_panel_extract(ctx: TableContext) -> PublishedTable:
    """Outcome rates by LA and year; rates from counts suppressed by the SDC rule are ``c``."""
    f = ctx.results.panel.frame.sort_values(["la_code", "period"])
    frame = pd.DataFrame(
        {
            "LA code": f["la_code"].astype(str).to_numpy(),
            "LA name": f["la_name"].astype(str).to_numpy(),
            "Region": f["region"].astype(str).to_numpy(),
            "Year ending 31 March": [str(int(p)) for p in f["period"]],
            "Pilot LA": ["Yes" if p else "No" for p in f["pilot"]],
            "Data": [ctx.data_label(p) for p in f["period"]],
        }
    )
    formats: dict[str, str] = {c: "t" for c in frame.columns}
    hidden = {
        rate: sdc.suppress_rates(f[rate], f[count], ctx.rule)[1]
        for rate, count in ctx.results.panel.rate_columns.items()
        if rate in f
    }
    _complementary_rate_suppression(ctx, f, hidden)
    for rate, suppressed in hidden.items():
        name = ctx.label(rate).replace(", per 10,000 children", " (per 10,000 children)")
        frame[name] = [
            C if s else (round(float(v), 2) if pd.notna(v) else X)
            for v, s in zip(f[rate].to_numpy(), suppressed.to_numpy(), strict=True)
        ]
        formats[name] = "d2"
    return PublishedTable(
        key="panel",
        title="Panel extract: outcome rates by local authority and year"
        + (" (includes illustrative years)" if ctx.illustrative else ""),
        description="Every outcome rate per 10,000 children for every LA and year in the panel; "
        "rates based on fewer than "
        f"{ctx.rule.threshold} children are suppressed, and so are rates that would reveal them "
        "(by difference, from group means, or with the counts table of the primary outcome).",
        frame=frame,
        formats=formats,
        source=ctx.dfe_source,
        notes=("years", "rates", "sdc", "missing"),
        illustrative=ctx.illustrative,
        in_report=False,
    )


def _complementary_rate_suppression(
    ctx: TableContext, f: pd.DataFrame, hidden: dict[str, pd.Series]
) -> None:
    """Suppress further rates of the panel extract so that no suppressed one can be recovered.

    ``hidden`` maps each rate column to its mask of suppressed rows (rows of ``f``) and is
    updated in place. A rate and the public population give its count, so:

    * a cell suppressed in the counts table of the primary outcome (including its secondary
      suppressions) has its rate suppressed too;
    * a derived count is the sum of its parts (kinship exits = SGO + CAO exits): where exactly one
      rate of such a line is suppressed it is the difference of the others, so the total is
      suppressed too (or, if the total is the one, its smallest non-zero part);
    * the report publishes means of the rates over the pilot and over the comparison LAs of the
      estimation sample, by year (and over years), with the number of LAs: where exactly one rate
      of such a group and year is suppressed it is the mean times the number of LAs minus the
      others, so the group's smallest other non-zero rate that year is suppressed too.

    The last two rules are applied until neither adds a suppression.
    """
    res = ctx.results
    protected = _protected_outcome_counts(ctx)
    outcome = res.spec.outcome
    if protected is not None and outcome in hidden:
        cells = protected[1].status.isin(["primary", "secondary"]).stack()
        keys = pd.MultiIndex.from_arrays([f["la_name"], f["period"]])
        extra = cells.reindex(keys, fill_value=False).to_numpy(dtype=bool)
        hidden[outcome] = hidden[outcome] | pd.Series(extra, index=f.index)
    rate_of = {count: rate for rate, count in res.panel.rate_columns.items()}
    sample = res.estimation_sample
    in_sample = pd.MultiIndex.from_arrays([f["la_code"], f["period"]]).isin(
        pd.MultiIndex.from_arrays([sample["la_code"], sample["period"]])
    )
    year_lines = pd.Series(
        [
            f"{'pilot' if pilot else 'comparison'} {period}" if kept else None
            for pilot, period, kept in zip(f["pilot"], f["period"], in_sample, strict=True)
        ],
        index=f.index,
        dtype=object,
    )
    changed = True
    while changed:
        changed = _suppress_derived(f, hidden, rate_of)
        for rate, count in res.panel.rate_columns.items():
            if rate in hidden:
                changed |= _suppress_in_lines(f, hidden, rate, count, year_lines)


def _suppress_derived(f: pd.DataFrame, hidden: dict[str, pd.Series], rate_of: dict) -> bool:
    """The derived-count rule of :func:`_complementary_rate_suppression`; True if it suppressed
    anything."""
    changed = False
    for name, (parts, _label) in DERIVED_COUNTS.items():
        line = [rate_of.get(c) for c in (*parts, name)]
        if any(r not in hidden for r in line):
            continue
        total = line[-1]
        lone = sum(hidden[r].astype(int) for r in line).eq(1) & f[total].notna()
        if not lone.any():
            continue
        changed = True
        total_alone = lone & hidden[total]
        hidden[total] = hidden[total] | lone
        if total_alone.any():  # the parts of a published total are all available
            parts_alone = f.loc[total_alone, list(parts)].astype(float)
            smallest = parts_alone.replace(0.0, np.inf).idxmin(axis=1)
            for part in parts:
                pick = smallest.eq(part).reindex(f.index, fill_value=False)
                hidden[rate_of[part]] = hidden[rate_of[part]] | pick
    return changed


def _suppress_in_lines(
    f: pd.DataFrame, hidden: dict[str, pd.Series], rate: str, count: str, lines: pd.Series
) -> bool:
    """In each line (rows sharing a label of ``lines``) of the ``rate`` column holding exactly
    one suppressed rate, suppress the rate of the smallest other non-zero count (a zero if there
    is none); True if it suppressed anything."""
    valid = lines.notna() & f[rate].notna()
    mask = hidden[rate].copy()
    per_line = mask[valid].groupby(lines[valid]).sum()
    changed = False
    for label in per_line.index[per_line.eq(1)]:
        others = valid & lines.eq(label) & ~mask
        if others.any():
            mask.loc[f.loc[others, count].astype(float).replace(0.0, np.inf).idxmin()] = True
            changed = True
    hidden[rate] = mask
    return changed


def table_truth(ctx: TableContext) -> PublishedTable | None:
    ill = ctx.results.illustrative
    if ill is None:
        return None
    t = ill.truth
    names = ctx.results.panel.frame.drop_duplicates("la_code").set_index("la_code")["la_name"]
    frame = pd.DataFrame(
        {
            "LA code": t["la_code"].astype(str),
            "LA name": t["la_code"].map(names).astype(str),
            "Year ending 31 March": [str(int(p)) for p in t["period"]],
            "Years since first payment": t["event_time"].astype(int),
            "Outcome": [ctx.label(o) for o in t["outcome"]],
            "True effect (per 10,000 children)": t["effect"],
        }
    )
    formats = {c: "t" for c in frame.columns}
    formats.update({"Years since first payment": "d0", "True effect (per 10,000 children)": "d3"})
    return PublishedTable(
        key="illustrative_truth",
        title="The true effects put into the illustrative simulation (illustrative)",
        description="For each pilot LA and illustrative year, the effect of the allowance the "
        "simulation added: the truth the estimates are checked against.",
        frame=_round(frame, formats),
        formats=formats,
        source="Kinship allowance pilot evaluation (simulation)",
        notes=("years", "rates"),
        illustrative=True,
        in_report=False,
    )


# ============================================================================ notes and assembly
def notes_for(ctx: TableContext) -> dict[str, Note]:
    """Every note a table may refer to."""
    res = ctx.results
    cfg = res.illustrative.config if res.illustrative is not None else None
    notes = {
        "illustrative": (
            f"Years {fmt_years(ctx.illustrative_years)} are ILLUSTRATIVE: simulated continuations "
            "of each LA's real series with a known effect of the allowance added"
            + (
                f" (+{cfg.effect:.0%} on expected kinship exits in the pilot LAs, seed {cfg.seed})"
                if cfg
                else ""
            )
            + ". They are not data; no value that rests on them is evidence about the pilot."
        )
        if ctx.illustrative
        else "",
        "years": "Years are years ending 31 March (for example 2024 is April 2023 to March 2024).",
        "rates": "Rates are per 10,000 children aged 0 to 17 (ONS mid-year population estimates).",
        "means": "Means are unweighted averages over local authorities and years, from the first "
        "year of payments to the end of the panel.",
        "pct_change": "The % change is the estimated effect divided by the pilot LAs' estimated "
        "level without the allowance (their mean after the start minus the effect).",
        "inference": f"The primary estimate's confidence interval and p-value use "
        f"{INFERENCE_NAMES.get(res.estimate.inference, res.estimate.inference).lower()} "
        "inference; secondary outcomes and alternative estimators use each estimator's default "
        "(usually errors clustered by LA, which can overstate precision with few pilot LAs).",
        "reference": "The year before the first year of payments is the reference year; its "
        "coefficient is fixed at zero (z: not applicable).",
        "honest": "Rambachan and Roth (2023): Mbar bounds post-pilot departures from parallel "
        "trends by Mbar times the largest pre-pilot departure (relative magnitudes); M bounds the "
        "change in slope of the differential trend between consecutive years (smoothness). The "
        "breakdown value is the smallest Mbar (or M) at which the interval includes zero.",
        "sdc": "Statistical disclosure control: " + ctx.rule.describe(),
        "missing": "x: not available (suppressed or not collected at source, or not applicable "
        "to the LA and year).",
        "balance": "A standardised difference above 0.25 in absolute value is usually taken as a "
        "material imbalance.",
    }
    cba = res.cba
    if cba is not None:
        a = cba.assumptions
        notes["cba_prices"] = (
            f"Present values in {a.price_base_year} prices (HM Treasury GDP deflator), "
            f"discounted to {a.first_year} at the Green Book social time preference rate "
            f"({a.discount_schedule} schedule) over {a.horizon_years} years."
        )
        notes["cba_perspectives"] = (
            "Fiscal: costs and benefits to the public sector. Economic: to society as a whole; "
            "the allowance is a transfer to households and nets out, apart from administration. "
            "Social: economic plus monetised outcomes for children where included. "
            "Benefits per £1 of public spending = present value of benefits / present value of "
            "public spending (fiscal costs)."
        )
        if cba.monte_carlo is not None:
            notes["monte_carlo"] = (
                f"{cba.monte_carlo.n_draws:,} draws (seed {cba.monte_carlo.seed}); inputs drawn "
                "independently; " + " ".join(cba.monte_carlo.notes)
            )
    return {k: Note(k, v) for k, v in notes.items() if v}


Builder = Callable[[TableContext], "PublishedTable | None"]


def build_tables(
    results: EvaluationResults,
    *,
    rule: sdc.SDCRule | None = None,
    spec_curve: pd.DataFrame | None = None,
    balance: pd.DataFrame | None = None,
) -> tuple[dict[str, PublishedTable], dict[str, Note]]:
    """Build every published table, numbered in the order the report shows them.

    Returns
    -------
    (tables, notes)
        Tables by key (report tables first, then spreadsheet-only ones), and the notes they
        refer to, by key.
    """
    illustrative_years: tuple[int, ...] = ()
    if results.illustrative is not None:
        illustrative_years = tuple(int(y) for y in results.illustrative.config.years)
    ctx = TableContext(
        results=results,
        rule=rule or sdc.SDCRule(),
        illustrative_years=illustrative_years,
        first_treated=results.first_treated,
    )
    built: list[PublishedTable | None] = [
        table_pilot_las(ctx),
        table_impact(ctx),
        table_cba(ctx),
        table_monte_carlo(ctx),
        table_robustness(ctx),
        table_pretrends(ctx),
        table_honest(ctx),
    ]
    if spec_curve is not None and len(spec_curve):
        built += table_spec_curve(ctx, spec_curve)
    built += [
        table_inputs(ctx),
        table_harmonisation(ctx),
        table_outcome_counts(ctx),
        table_balance(ctx, balance),
        table_event_study(ctx),
        table_trends(ctx),
        table_cba_children(ctx),
        table_tornado(ctx),
        table_switching(ctx),
        table_cba_assumptions(ctx),
        table_software(ctx),
        table_panel_extract(ctx),
        table_truth(ctx),
    ]
    tables = [t for t in built if t is not None]
    ordered = [t for t in tables if t.in_report] + [t for t in tables if not t.in_report]
    for i, t in enumerate(ordered, start=1):
        t.number = i
    notes = notes_for(ctx)
    return {t.key: t for t in ordered}, notes


def note_numbers(tables: Sequence[PublishedTable], notes: dict[str, Note]) -> dict[str, int]:
    """Number the notes in order of first reference (the illustrative note, if used, first)."""
    order: list[str] = []
    if any("illustrative" in t.notes for t in tables) and "illustrative" in notes:
        order.append("illustrative")
    for t in tables:
        for key in t.notes:
            if key in notes and key not in order:
                order.append(key)
    return {k: i for i, k in enumerate(order, start=1)}
