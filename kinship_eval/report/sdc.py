"""Statistical disclosure control (SDC) for published counts of children.

The rule (ONS "10-5 rule", as used for Census 2021 outputs; ACRO's minimum cell count of 10):

1. **Primary suppression.** A count of children below the threshold (default 10) and above zero is
   suppressed. Zeros are published (a true zero of events in an area and year says nothing about
   any one child) unless ``zeros_disclosive=True``, which suppresses them too, as ACRO does for
   tables of characteristics where a zero reveals something about everyone in a group.
2. **Secondary suppression.** In a table with row or column totals, no line (a row or column
   together with its total) may have exactly one suppressed cell, or the cell could be recovered by
   subtraction. Where a line has exactly one, the smallest other non-zero cell of that line is
   suppressed too, and so on until no line has exactly one. The pattern is then audited by linear
   programming (:func:`feasible_ranges`): every suppressed cell must have more than one value
   consistent with the published cells, the totals and non-negativity. Any cell that is still
   determined gets a further complementary suppression.
3. **Rounding.** Every published count is rounded to the nearest multiple of the rounding base
   (default 5), totals included; totals are rounded independently of their parts, so published
   parts need not add up to published totals.

Suppressed cells are shown as ``[c]`` in spreadsheets (GSS shorthand), ``c`` in CSV files (the
Explore Education Statistics symbol) and ``c`` in the HTML report, each with a note. Rates are
suppressed where the count they are derived from is suppressed (a rate and the published
population would otherwise reveal the count).

:func:`check` audits a published table: every count is a suppression marker, a published zero or
a rounded value at or above the threshold, and, where the table has totals, no suppressed cell is
determined by the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from kinship_eval.errors import KinshipEvalError

__all__ = [
    "MARKERS",
    "DisclosureError",
    "SDCAudit",
    "SDCMeta",
    "SDCRule",
    "check",
    "feasible_ranges",
    "protect_counts",
    "protect_table",
    "recoverable_cells",
    "round_to_base",
    "suppress_rates",
]


class DisclosureError(KinshipEvalError):
    """A table about to be published fails disclosure control."""


CellStatus = Literal["published", "primary", "secondary", "unavailable"]

#: The symbols a published table may hold instead of a number, by output format. ``c``:
#: confidential (suppressed by the rule above); ``x``: not available; ``z``: not applicable.
MARKERS: dict[str, dict[str, str]] = {
    "ods": {"c": "[c]", "x": "[x]", "z": "[z]"},
    "csv": {"c": "c", "x": "x", "z": "z"},
    "html": {"c": "c", "x": "x", "z": "z"},
}
_ANY_MARKER = {m for fmt in MARKERS.values() for m in fmt.values()}

#: Column headers that announce a count of children; :func:`check` treats such a column as a count
#: column even when the table does not declare it.
COUNT_HEADER = re.compile(r"number of children|children \(number\)|\(count\)", re.IGNORECASE)


@dataclass(frozen=True)
class SDCRule:
    """A disclosure-control rule for counts of children.

    Attributes
    ----------
    threshold
        Counts below this (and above zero) are suppressed.
    rounding_base
        Published counts are rounded to the nearest multiple of this (1: no rounding).
    zeros_disclosive
        Suppress zeros as well.
    """

    threshold: int = 10
    rounding_base: int = 5
    zeros_disclosive: bool = False

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if self.rounding_base < 1:
            raise ValueError("rounding_base must be at least 1")

    def describe(self) -> str:
        """The rule in one plain-language paragraph (for the report and the spreadsheet)."""
        zeros = (
            "Zeros are also suppressed."
            if self.zeros_disclosive
            else "Zeros are published: they are true zeros."
        )
        rounding = (
            f" Other counts are rounded to the nearest {self.rounding_base}, totals "
            "independently of their parts, so parts may not add up to totals."
            if self.rounding_base > 1
            else ""
        )
        return (
            f"Counts of children below {self.threshold} are suppressed (shown as c).{rounding} "
            f"{zeros} Where a table has totals, further cells are suppressed so that no "
            "suppressed cell can be worked out from the totals (secondary suppression). Rates "
            "derived from a suppressed count are suppressed too."
        )

    def is_primary(self, value: float) -> bool:
        """Whether ``value`` (a count) is suppressed by the threshold rule."""
        if value is None or not math.isfinite(value):
            return False
        if value == 0:
            return self.zeros_disclosive
        return value < self.threshold

    @property
    def smallest_published(self) -> float:
        """The smallest non-zero value a published (rounded) count can take."""
        return round_to_base(self.threshold, self.rounding_base)


def round_to_base(value: float, base: int) -> float:
    """Round to the nearest multiple of ``base`` (halves round up); NaN stays NaN."""
    if value is None or not math.isfinite(value):
        return math.nan
    if base <= 1:
        return float(round(value))
    return float(math.floor(value / base + 0.5) * base)


# ----------------------------------------------------------------------------- protected tables
@dataclass
class ProtectedTable:
    """A table of counts after disclosure control.

    Attributes
    ----------
    exact
        The unrounded counts, totals included (never published; kept for audits).
    values
        The published values: rounded counts, ``NaN`` where not published.
    status
        One of ``published``, ``primary``, ``secondary``, ``unavailable`` per cell.
    lines
        The additive constraints a reader knows: ``(members, total)`` pairs of ``(row, column)``
        labels (empty for tables without totals).
    rule
        The rule applied.
    """

    exact: pd.DataFrame
    values: pd.DataFrame
    status: pd.DataFrame
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]]
    rule: SDCRule

    def published(self, fmt: str = "ods") -> pd.DataFrame:
        """The values with suppressed cells as ``[c]`` (``fmt="ods"``), ``c`` (csv, html) and
        unavailable cells as ``[x]`` / ``x``."""
        marks = MARKERS[fmt]
        out = self.values.astype(object).copy()
        out[self.status.isin(["primary", "secondary"])] = marks["c"]
        out[self.status.eq("unavailable")] = marks["x"]
        return out

    @property
    def n_suppressed(self) -> int:
        return int(self.status.isin(["primary", "secondary"]).to_numpy().sum())


def protect_counts(
    frame: pd.DataFrame, columns: Sequence[str], rule: SDCRule | None = None
) -> ProtectedTable:
    """Primary suppression and rounding, cell by cell, of count columns without totals.

    Parameters
    ----------
    frame
        Table holding the counts; missing values are taken as unavailable.
    columns
        The columns holding counts of children.
    rule
        The SDC rule (default: :class:`SDCRule`).
    """
    rule = rule or SDCRule()
    exact = frame[list(columns)].astype(float)
    status = _initial_status(exact, rule)
    return _finish(exact, status, [], rule)


def protect_table(
    cells: pd.DataFrame,
    rule: SDCRule | None = None,
    *,
    row_totals: bool = True,
    column_totals: bool = True,
    total_label: str = "Total",
) -> ProtectedTable:
    """Disclosure control for a two-way table of counts, adding its totals.

    Parameters
    ----------
    cells
        Counts (rows x columns, no totals). Missing values are unavailable (e.g. suppressed at
        source); a total over an unavailable cell is unavailable too.
    rule
        The SDC rule.
    row_totals, column_totals
        Add a total column (each row's sum) and a total row (each column's sum).
    total_label
        Label of the added total row and column.

    Returns
    -------
    ProtectedTable
        With primary and secondary suppression applied and the published values rounded.
    """
    rule = rule or SDCRule()
    exact = cells.astype(float).copy()
    rows, cols = list(exact.index), list(exact.columns)
    if total_label in rows or total_label in cols:
        raise ValueError(f"cells already contain a {total_label!r} row or column")
    if row_totals:
        exact[total_label] = exact[cols].sum(axis=1, min_count=len(cols))
        exact.loc[exact[cols].isna().any(axis=1), total_label] = np.nan
    if column_totals:
        all_cols = list(exact.columns)
        total_row = exact.loc[rows, all_cols].sum(axis=0, min_count=len(rows))
        total_row[exact.loc[rows, all_cols].isna().any(axis=0)] = np.nan
        exact.loc[total_label] = total_row
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]] = []
    if row_totals:
        for r in exact.index:
            lines.append(([(r, c) for c in cols], (r, total_label)))
    if column_totals:
        for c in exact.columns:
            lines.append(([(r, c) for r in rows], (total_label, c)))
    status = _initial_status(exact, rule)
    status = _secondary(exact, status, lines, rule)
    return _finish(exact, status, lines, rule)


def _initial_status(exact: pd.DataFrame, rule: SDCRule) -> pd.DataFrame:
    status = pd.DataFrame("published", index=exact.index, columns=exact.columns, dtype=object)
    status[exact.isna()] = "unavailable"
    primary = exact.apply(lambda col: col.map(rule.is_primary)).astype(bool)
    status[primary] = "primary"
    return status


def _finish(
    exact: pd.DataFrame,
    status: pd.DataFrame,
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]],
    rule: SDCRule,
) -> ProtectedTable:
    values = exact.apply(lambda col: col.map(lambda v: round_to_base(v, rule.rounding_base)))
    values = values.where(status.eq("published"))
    return ProtectedTable(exact=exact, values=values, status=status, lines=lines, rule=rule)


def _suppressed(status: pd.DataFrame, cell: tuple[Any, Any]) -> bool:
    return status.loc[cell] in ("primary", "secondary")


def _secondary(
    exact: pd.DataFrame,
    status: pd.DataFrame,
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]],
    rule: SDCRule,
    max_rounds: int = 1000,
) -> pd.DataFrame:
    """Add complementary suppressions until no suppressed cell can be recovered."""
    status = status.copy()
    for _ in range(max_rounds):
        changed = _line_rule(exact, status, lines)
        if changed:
            continue
        determined = recoverable_cells(exact, status, lines)
        if not determined:
            return status
        if not _complement_for(exact, status, lines, determined[0]):
            return status  # nothing left to suppress: every cell of its lines is suppressed
    raise RuntimeError("secondary suppression did not converge")


def _line_rule(
    exact: pd.DataFrame,
    status: pd.DataFrame,
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]],
) -> bool:
    """One pass of "no line with exactly one suppressed cell"; True if anything changed."""
    changed = False
    for members, total in lines:
        if status.loc[total] == "unavailable":
            continue  # no constraint is published for this line
        entries = [*members, total]
        if sum(_suppressed(status, c) for c in entries) != 1:
            continue
        choice = _smallest_published(exact, status, entries)
        if choice is not None:
            status.loc[choice] = "secondary"
            changed = True
    return changed


def _smallest_published(
    exact: pd.DataFrame, status: pd.DataFrame, cells: Iterable[tuple[Any, Any]]
) -> tuple[Any, Any] | None:
    """The smallest published cell, preferring non-zero cells (a zero protects little)."""
    candidates = [c for c in cells if status.loc[c] == "published"]
    if not candidates:
        return None
    return min(candidates, key=lambda c: (exact.loc[c] == 0, exact.loc[c]))


def _complement_for(
    exact: pd.DataFrame,
    status: pd.DataFrame,
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]],
    cell: tuple[Any, Any],
) -> bool:
    """Suppress one more cell in a line through ``cell``; False if none is left."""
    for members, total in lines:
        entries = [*members, total]
        if cell in entries and status.loc[total] != "unavailable":
            choice = _smallest_published(exact, status, members) or _smallest_published(
                exact, status, [total]
            )
            if choice is not None:
                status.loc[choice] = "secondary"
                return True
    return False


# ----------------------------------------------------------------------------- recovery audit
def feasible_ranges(
    values: pd.DataFrame,
    status: pd.DataFrame,
    lines: Sequence[tuple[Sequence[tuple[Any, Any]], tuple[Any, Any]]],
    *,
    half_width: float = 0.0,
) -> pd.DataFrame:
    """The range of values each suppressed cell can take given what is published.

    Solves, for every suppressed cell, ``min`` and ``max`` of the cell subject to the published
    additive constraints (each line's members sum to its total), non-negativity, and the published
    cells (each within ``half_width`` of its published value; 0 when the exact values are
    published, ``rounding_base // 2`` for rounded ones).

    Parameters
    ----------
    values
        Cell values a reader knows (exact or published); suppressed cells' values are ignored.
    status
        Cell status (``published``, ``primary``, ``secondary``, ``unavailable``).
    lines
        ``(members, total)`` constraints.
    half_width
        Uncertainty of each published cell.

    Returns
    -------
    pandas.DataFrame
        One row per suppressed cell: ``row``, ``column``, ``low``, ``high`` (``inf`` if
        unbounded).
    """
    cells = [(r, c) for r in status.index for c in status.columns]
    unknown = [
        cell
        for cell in cells
        if status.loc[cell] in ("primary", "secondary", "unavailable")
        or (half_width > 0 and status.loc[cell] == "published")
    ]
    index = {cell: i for i, cell in enumerate(unknown)}
    bounds = []
    for cell in unknown:
        if status.loc[cell] == "published":
            v = float(values.loc[cell])
            bounds.append((max(0.0, v - half_width), v + half_width))
        else:
            bounds.append((0.0, None))
    a_eq, b_eq = [], []
    for members, total in lines:
        if status.loc[total] == "unavailable":
            continue
        row = np.zeros(len(unknown))
        rhs = 0.0
        for cell in members:
            if cell in index:
                row[index[cell]] += 1.0
            else:
                rhs -= float(values.loc[cell])
        if total in index:
            row[index[total]] -= 1.0
        else:
            rhs += float(values.loc[total])
        if np.any(row):
            a_eq.append(row)
            b_eq.append(rhs)
    records = []
    targets = [c for c in unknown if status.loc[c] in ("primary", "secondary")]
    for cell in targets:
        if not a_eq:
            records.append({"row": cell[0], "column": cell[1], "low": 0.0, "high": math.inf})
            continue
        objective = np.zeros(len(unknown))
        objective[index[cell]] = 1.0
        ends = []
        for sign in (1.0, -1.0):
            res = optimize.linprog(
                sign * objective,
                A_eq=np.array(a_eq),
                b_eq=np.array(b_eq),
                bounds=bounds,
                method="highs",
            )
            if res.status == 3:  # unbounded
                ends.append(-sign * math.inf)
            elif res.status == 0:
                ends.append(sign * res.fun)
            else:
                raise ValueError(f"published values are inconsistent ({res.message})")
        records.append({"row": cell[0], "column": cell[1], "low": ends[0], "high": ends[1]})
    return pd.DataFrame(records, columns=["row", "column", "low", "high"])


def recoverable_cells(
    values: pd.DataFrame,
    status: pd.DataFrame,
    lines: Sequence[tuple[Sequence[tuple[Any, Any]], tuple[Any, Any]]],
    *,
    half_width: float = 0.0,
    min_width: float = 1.0,
) -> list[tuple[Any, Any]]:
    """Suppressed cells whose feasible range is narrower than ``min_width`` (i.e. determined)."""
    if not lines:
        return []
    ranges = feasible_ranges(values, status, lines, half_width=half_width)
    narrow = ranges.loc[(ranges["high"] - ranges["low"]) < min_width - 1e-9]
    return list(zip(narrow["row"], narrow["column"], strict=True))


def suppress_rates(
    rates: pd.Series, counts: pd.Series, rule: SDCRule | None = None
) -> tuple[pd.Series, pd.Series]:
    """Suppress rates whose underlying count is suppressed by ``rule``.

    Returns
    -------
    (rates, suppressed)
        The rates with suppressed entries set to NaN, and the boolean mask of suppressed entries.
    """
    rule = rule or SDCRule()
    suppressed = counts.map(rule.is_primary).astype(bool)
    return rates.where(~suppressed), suppressed


# ----------------------------------------------------------------------------- audit
@dataclass(frozen=True)
class SDCMeta:
    """Disclosure-control facts a published table carries for :func:`check`.

    Attributes
    ----------
    count_columns
        Columns holding counts of children.
    rule
        The rule the counts were protected with.
    row_label_column
        The column naming each row (for tables with totals).
    total_label
        The label of total rows (in ``row_label_column``) and total columns.
    row_totals, column_totals
        Whether the table has a total column / a total row over the count columns.
    """

    count_columns: tuple[str, ...] = ()
    rule: SDCRule = field(default_factory=SDCRule)
    row_label_column: str | None = None
    total_label: str = "Total"
    row_totals: bool = False
    column_totals: bool = False


@dataclass
class SDCAudit:
    """Result of :func:`check`."""

    table: str
    passed: bool
    problems: list[str]
    count_columns: list[str]

    def __bool__(self) -> bool:
        return self.passed


def _table_parts(table: Any) -> tuple[str, pd.DataFrame, SDCMeta | None]:
    if isinstance(table, pd.DataFrame):
        return "table", table, table.attrs.get("sdc")
    return str(getattr(table, "key", "table")), table.frame, getattr(table, "sdc", None)


def check(table: Any, rule: SDCRule | None = None) -> SDCAudit:
    """Audit a published table for disclosure risk.

    Parameters
    ----------
    table
        A :class:`~kinship_eval.report.tables.PublishedTable` (or any object with ``frame`` and
        ``sdc``), or a DataFrame whose ``attrs["sdc"]`` holds an :class:`SDCMeta`.
    rule
        The rule to check against (default: the table's own, else :class:`SDCRule`).

    Returns
    -------
    SDCAudit
        ``passed`` is False if any count column (declared, or with a header announcing a count
        of children) holds a value that is neither a suppression marker, a zero (when zeros are
        not disclosive) nor a multiple of the rounding base at or above the threshold; or if, in
        a table with totals, a suppressed cell is determined by the published cells and totals
        (allowing for rounding).
    """
    name, frame, meta = _table_parts(table)
    rule = rule or (meta.rule if meta else SDCRule())
    declared = list(meta.count_columns) if meta else []
    detected = [c for c in frame.columns if COUNT_HEADER.search(str(c)) and c not in declared]
    problems = [f"column {c!r} holds counts of children but is not declared" for c in detected]
    count_columns = [c for c in [*declared, *detected] if c in frame.columns]
    problems += [f"declared count column {c!r} is missing" for c in declared if c not in frame]
    for col in count_columns:
        for i, value in enumerate(frame[col].tolist()):
            issue = _cell_issue(value, rule)
            if issue:
                problems.append(f"column {col!r}, row {i + 1}: {issue}")
    if meta and (meta.row_totals or meta.column_totals) and not problems:
        problems += _totals_issues(frame, meta, rule)
    return SDCAudit(table=name, passed=not problems, problems=problems, count_columns=count_columns)


def _cell_issue(value: Any, rule: SDCRule) -> str | None:
    if isinstance(value, str):
        return None if value.strip() in _ANY_MARKER else f"unexpected text {value!r}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "blank cell (use a marker: c, x or z)"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return f"not a number: {value!r}"
    if v == 0:
        return "zero published although zeros are disclosive" if rule.zeros_disclosive else None
    if v < 0:
        return f"negative count {v:g}"
    if v < rule.smallest_published:
        return f"count {v:g} is below the threshold {rule.threshold}"
    if (
        rule.rounding_base > 1
        and abs(v / rule.rounding_base - round(v / rule.rounding_base)) > 1e-9
    ):
        return f"count {v:g} is not rounded to a multiple of {rule.rounding_base}"
    return None


def _totals_issues(frame: pd.DataFrame, meta: SDCMeta, rule: SDCRule) -> list[str]:
    """Rebuild the table's additive structure and check no suppressed cell is determined."""
    label_col = meta.row_label_column or frame.columns[0]
    grid = frame.set_index(label_col)[list(meta.count_columns)]
    marks_c = {m["c"] for m in MARKERS.values()}
    marks_x = {m["x"] for m in MARKERS.values()} | {m["z"] for m in MARKERS.values()}

    def cell_status(v: Any) -> str:
        if isinstance(v, str):
            v = v.strip()
            if v in marks_c:
                return "primary"
            if v in marks_x:
                return "unavailable"
        return "published"

    status = grid.map(cell_status)
    values = grid.map(lambda v: float(v) if not isinstance(v, str) else math.nan)
    rows = [r for r in grid.index if r != meta.total_label]
    cols = [c for c in grid.columns if c != meta.total_label]
    lines: list[tuple[list[tuple[Any, Any]], tuple[Any, Any]]] = []
    if meta.row_totals and meta.total_label in grid.columns:
        lines += [([(r, c) for c in cols], (r, meta.total_label)) for r in grid.index]
    if meta.column_totals and meta.total_label in grid.index:
        lines += [([(r, c) for r in rows], (meta.total_label, c)) for c in grid.columns]
    problems = []
    for members, total in lines:
        if status.loc[total] == "unavailable":
            continue
        hidden = [x for x in [*members, total] if status.loc[x] == "primary"]
        if len(hidden) == 1:
            problems.append(
                f"suppressed cell {hidden[0]!r} is the only one in its line: it can be worked "
                "out from the total"
            )
    if problems:
        return problems
    try:
        determined = recoverable_cells(values, status, lines, half_width=rule.rounding_base / 2)
    except ValueError as exc:
        return [f"published counts are inconsistent with their totals: {exc}"]
    return [
        f"suppressed cell ({r!r}, {c!r}) can be worked out from the totals" for r, c in determined
    ]
