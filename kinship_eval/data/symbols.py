"""Symbols that stand in for numbers in DfE, ONS and LAIT statistics, and the reasons they give.

Published statistics never leave a cell blank by accident: a cell that is not a number holds a
symbol saying *why* there is no number. This module keeps that reason. A symbol is read as a missing
value (``NaN``) **with** a reason, never as 0 and never as a silent ``NaN``; a published number has
no reason (``<NA>``). Anything that is neither a number nor a known symbol is an input error.

The table of symbols
--------------------
=========  ==============================  =======================================================
symbol     reason                          source
=========  ==============================  =======================================================
``c``      ``suppressed``                  EES/GSS standard: confidential, suppressed to protect
                                           individuals (secondary suppression may apply).
``x``      ``not_available``               EES/GSS standard: unavailable for another reason. In
                                           SFR-era (2010-2017) underlying data and the 2018/2019
                                           underlying data ``x`` marked suppressed small numbers
                                           (1-5) instead; readers of those files pass
                                           ``symbols=SFR_SYMBOLS`` so that ``x`` reads as
                                           ``suppressed_or_not_available``.
``z``      ``not_applicable``              EES/GSS standard: not applicable (e.g. an LA that did
                                           not exist in that year).
``low``    ``low``                         EES/GSS standard: rounds to zero but is not zero.
``k``      ``low``                         Obsolete EES symbol for ``low`` (older EES files).
``~``      ``low``                         Obsolete EES symbol for ``low``.
``u``      ``low_reliability``             EES/GSS standard: low reliability (children in need).
``:``      ``not_available``               Obsolete EES symbol for not available.
``..``     ``not_available``               Ofsted data and some SFR files (e.g. 2014).
``-``      ``nil_or_not_available``        DfE Local Authority Interactive Tool (LAIT): nil or not
                                           available; also seen in the 2019 underlying data.
``.``      ``not_available``               Seen in the 2019 underlying data files (CEA2019,
                                           CLA2019), for cells with no figure.
(blank)    ``missing``                     An empty cell: the file gives no value and no reason.
=========  ==============================  =======================================================

Sources: the Explore Education Statistics (EES) data standards ("Symbols" guidance, aligned with
the Government Statistical Service symbols guidance); the DfE SFR metadata documents held with the
reference files; the LAIT data dictionary. See ``/work/shared/docs/DOMAIN.md`` section 3.

Symbols are matched after trimming surrounding white space and ignoring letter case (``C`` reads
as ``c``). Numbers may carry thousands separators (``1,234``), a sign, a decimal part and an
exponent (LAIT stores some fractions as ``1.5E-05``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kinship_eval.errors import InputError

__all__ = [
    "PUBLISHED",
    "REASONS",
    "SFR_SYMBOLS",
    "SYMBOLS",
    "SymbolInfo",
    "is_number",
    "parse_series",
    "parse_value",
]

#: The status of a cell that holds a published number (used in long tables with a status column).
PUBLISHED = "published"


@dataclass(frozen=True)
class SymbolInfo:
    """One symbol: the reason it stands for, what it means and where that is documented."""

    symbol: str
    reason: str
    meaning: str
    source: str


_SYMBOL_TABLE: tuple[SymbolInfo, ...] = (
    SymbolInfo("c", "suppressed", "confidential: suppressed to protect individuals", "EES/GSS"),
    SymbolInfo("x", "not_available", "unavailable for another reason", "EES/GSS"),
    SymbolInfo("z", "not_applicable", "not applicable", "EES/GSS"),
    SymbolInfo("low", "low", "rounds to zero, but is not zero", "EES/GSS"),
    SymbolInfo("k", "low", "rounds to zero, but is not zero (obsolete symbol)", "older EES files"),
    SymbolInfo("~", "low", "rounds to zero, but is not zero (obsolete symbol)", "older EES files"),
    SymbolInfo("u", "low_reliability", "low reliability", "EES/GSS (children in need)"),
    SymbolInfo(":", "not_available", "not available (obsolete symbol)", "older EES files"),
    SymbolInfo("..", "not_available", "not available", "Ofsted; some SFR files"),
    SymbolInfo("-", "nil_or_not_available", "nil or not available", "DfE LAIT"),
    SymbolInfo(".", "not_available", "no figure given", "2019 underlying data (CEA/CLA2019)"),
    SymbolInfo("", "missing", "empty cell: no value and no reason given", "(any file)"),
)

#: Symbol -> reason, the EES/GSS reading (lower-case keys; blank is the empty string).
SYMBOLS: Mapping[str, str] = {info.symbol: info.reason for info in _SYMBOL_TABLE}

#: Symbol -> reason for SFR-era files (2010-2019 underlying data), where ``x`` marked suppression.
SFR_SYMBOLS: Mapping[str, str] = {**SYMBOLS, "x": "suppressed_or_not_available"}

#: Every reason a symbol can stand for.
REASONS: frozenset[str] = frozenset(SYMBOLS.values()) | frozenset(SFR_SYMBOLS.values())

#: Full descriptions of the symbols, for documentation.
SYMBOL_TABLE: tuple[SymbolInfo, ...] = _SYMBOL_TABLE

_NUMBER = re.compile(
    r"""^[+-]?
    (?:\d{1,3}(?:,\d{3})+|\d+)?   # integer part, optionally with thousands separators
    (?:\.\d+)?                    # decimal part
    (?:[eE][+-]?\d+)?$            # exponent
    """,
    re.VERBOSE,
)


def is_number(text: str) -> bool:
    """Whether ``text`` (already trimmed) is a published number such as ``12``, ``1,234``, ``-0.5``.

    Parameters
    ----------
    text
        The cell text, without surrounding white space.

    Returns
    -------
    bool
        True for a number, False otherwise (symbols included).
    """
    return bool(text) and any(ch.isdigit() for ch in text) and _NUMBER.match(text) is not None


def parse_value(
    raw: object, *, symbols: Mapping[str, str] | None = None
) -> tuple[float, str | None]:
    """Read one published cell as ``(value, reason)``.

    Parameters
    ----------
    raw
        The cell: a string as published, a number, ``None`` or ``NaN`` (both read as blank).
    symbols
        Symbol -> reason table; :data:`SYMBOLS` by default (pass :data:`SFR_SYMBOLS` for SFR-era
        files).

    Returns
    -------
    (float, str or None)
        ``(number, None)`` for a published number, ``(nan, reason)`` for a symbol.

    Raises
    ------
    InputError
        If the cell is neither a number nor a known symbol.
    """
    table = SYMBOLS if symbols is None else symbols
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or raw is pd.NA:
        return math.nan, table[""]
    if isinstance(raw, bool):
        raise InputError(f"expected a number or a statistical symbol, found {raw!r}")
    if isinstance(raw, (int, float, np.integer, np.floating)):
        return float(raw), None
    text = str(raw).strip()
    if is_number(text):
        return float(text.replace(",", "")), None
    reason = table.get(text.lower())
    if reason is None:
        raise InputError(
            f"expected a number or a statistical symbol ({_known(table)}), found {raw!r}"
        )
    return math.nan, reason


def parse_series(
    series: pd.Series,
    *,
    file: str | Path | None = None,
    column: str | None = None,
    rows: Sequence[int] | np.ndarray | pd.Series | None = None,
    first_row: int = 2,
    symbols: Mapping[str, str] | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Read a column of published cells into numbers and reasons (vectorised).

    Parameters
    ----------
    series
        The cells, as read from the file (strings; ``None``/``NaN`` read as blank).
    file
        The file the column came from, for error messages.
    column
        The column name, for error messages (defaults to ``series.name``).
    rows
        The file line number of each cell (header = line 1), aligned with ``series``. When not
        given, cell *i* (0-based position) is taken to be on line ``first_row + i``, which holds
        for a file with one header line and no line breaks inside fields.
    first_row
        Line number of the first cell when ``rows`` is not given (2: right after the header).
    symbols
        Symbol -> reason table; :data:`SYMBOLS` by default.

    Returns
    -------
    (Series, Series)
        ``values``: float64, ``NaN`` where a symbol stood; ``reasons``: pandas string dtype,
        ``<NA>`` for published numbers and the symbol's reason otherwise. Both keep the index of
        ``series``.

    Raises
    ------
    InputError
        Naming the file, the line and the column of the first cell that is neither a number nor a
        known symbol (and how many such cells there are).
    """
    table = SYMBOLS if symbols is None else symbols
    col = column if column is not None else (None if series.name is None else str(series.name))
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        reasons = pd.Series(pd.NA, index=series.index, dtype="string")
        reasons[values.isna()] = table[""]
        return values, reasons

    text = series.astype("object").where(series.notna(), "")
    text = pd.Series([str(v).strip() for v in text.to_numpy()], index=series.index, dtype="object")
    numeric = text.map(is_number).astype(bool)
    lowered = text.str.lower()
    reasons_obj = lowered.map(dict(table))
    bad = ~numeric & reasons_obj.isna()
    if bad.any():
        positions = np.flatnonzero(bad.to_numpy())
        first = int(positions[0])
        row = int(np.asarray(rows)[first]) if rows is not None else first_row + first
        more = f" ({len(positions) - 1} more such cells)" if len(positions) > 1 else ""
        raise InputError(
            f"expected a number or a statistical symbol ({_known(table)}), "
            f"found {series.iloc[first]!r}{more}",
            file=file,
            row=row,
            column=col,
        )
    values = pd.Series(np.nan, index=series.index, dtype="float64")
    if numeric.any():
        values[numeric] = pd.to_numeric(text[numeric].str.replace(",", "", regex=False)).astype(
            "float64"
        )
    reasons = reasons_obj.where(~numeric, None).astype("string")
    return values, reasons


def _known(table: Mapping[str, str]) -> str:
    shown = [repr(s) for s in table if s]
    return "known symbols " + ", ".join(shown) + " or blank"
