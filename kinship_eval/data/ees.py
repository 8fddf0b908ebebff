"""Readers for DfE statistics files: Explore Education Statistics (EES) CSVs and SFR-era wide files.

EES files (:func:`read_ees`)
    Tidy CSVs with the standard columns ``time_period, time_identifier, geographic_level``, the
    geography columns (``country_code ... old_la_code, new_la_code, la_name``), filter columns
    (``cla_group``, ``characteristic`` ...) and indicator columns (``number``, ``percentage`` ...).
    Every indicator becomes a float column plus a ``<indicator>_reason`` column that keeps why a
    cell holds no number (see :mod:`kinship_eval.data.symbols`): a symbol is never read as 0 and a
    missing number is never silent.
SFR-era wide files (:func:`read_wide_sfr`)
    The 2010-2019 "underlying data" files: one row per area (``geog_l`` level, ``geog_c``
    3-digit code, ``geog_n`` name, and from 2011 ``New_geog_code``), one column per statistic. In
    these files ``x`` marked suppressed small numbers, so they are read with
    :data:`~kinship_eval.data.symbols.SFR_SYMBOLS`.

Both readers check the file before reading it: it must be UTF-8 (a byte-order mark is allowed)
unless another ``encoding`` is passed, comma-delimited, not empty and with at least one data row,
and every record must have as many fields as the header. Every problem is raised as an
:class:`~kinship_eval.errors.InputError` naming the file, the line (header = line 1) and the column.

Periods
    ``time_period`` is read as the year ending 31 March that the figure belongs to: a four-digit
    value (``2024``, a reporting year ending 31 March 2024) is kept; a six-digit value covering two
    years (``202324``, financial year April 2023 - March 2024) becomes its second year (``2024``).
    The value as published stays in ``time_period_raw`` next to ``time_identifier``.
LA codes
    ``new_la_code`` on local-authority rows must be a 9-character ONS code (``E`` + 8 digits) and
    ``old_la_code`` a 3-digit DfE code. EES uses combined pseudo-codes such as
    ``"E06000061 / E06000062"`` for LAs that report jointly; they are rejected unless
    ``allow_combined_codes=True``, in which case they are kept exactly as published.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kinship_eval.data.symbols import SFR_SYMBOLS, SYMBOLS, is_number, parse_series
from kinship_eval.errors import InputError

__all__ = [
    "GEOGRAPHY_COLUMNS",
    "KNOWN_FILTERS",
    "LA_COLUMNS",
    "REQUIRED_COLUMNS",
    "parse_time_period",
    "read_csv_strings",
    "read_ees",
    "read_wide_sfr",
]

#: Columns every EES data file has.
REQUIRED_COLUMNS: tuple[str, ...] = ("time_period", "time_identifier", "geographic_level")
#: Columns local-authority rows need.
LA_COLUMNS: tuple[str, ...] = ("new_la_code", "old_la_code", "la_name")
#: Standard EES geography columns (never indicators or filters).
GEOGRAPHY_COLUMNS: frozenset[str] = frozenset(
    {
        "country_code",
        "country_name",
        "region_code",
        "region_name",
        "old_la_code",
        "new_la_code",
        "la_name",
        "lad_code",
        "lad_name",
        "pcon_code",
        "pcon_name",
        "ward_code",
        "ward_name",
        "english_devolved_area_code",
        "english_devolved_area_name",
        "lep_code",
        "lep_name",
        "local_enterprise_partnership_code",
        "local_enterprise_partnership_name",
        "opportunity_area_code",
        "opportunity_area_name",
        "rsc_region_lead_name",
        "sponsor_id",
        "sponsor_name",
        "trust_id",
        "trust_name",
        "school_urn",
        "school_laestab",
        "school_name",
        "school_postcode",
        "provider_ukprn",
        "provider_name",
        "institution_id",
        "institution_name",
        "planning_area_code",
        "planning_area_name",
        "mat_id",
        "mat_name",
    }
)
#: Columns read as filters when no ``.meta.csv`` says otherwise.
KNOWN_FILTERS: frozenset[str] = frozenset(
    {
        "cla_group",
        "characteristic",
        "age_group",
        "category",
        "population_type",
        "breakdown_topic",
        "breakdown",
        "sex",
        "gender",
        "ethnicity",
        "ethnicity_major",
        "ethnicity_minor",
        "age",
        "placement",
        "legal_status",
        "reason",
        "la_type",
        "school_type",
        "phase_type_grouping",
    }
)

_LA_LEVEL = "Local authority"
_LA_CODE = re.compile(r"^E\d{8}$")
_OLD_LA_CODE = re.compile(r"^\d{3}$")
_COMBINED_LA_CODE = re.compile(r"^E\d{8}(?: / E\d{8})+$")
_COMBINED_OLD_CODE = re.compile(r"^\d{3}(?: / \d{3})+$")
_OTHER_DELIMITERS = ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars"))
_SFR_LEVELS = {
    "national": "National",
    "gor": "Regional",
    "region": "Regional",
    "regional": "Regional",
    "la": "Local authority",
    "local authority": "Local authority",
}


# --------------------------------------------------------------------------------------------
# Plain CSV reading with line numbers
# --------------------------------------------------------------------------------------------


def read_csv_strings(
    path: str | Path, *, encoding: str = "utf-8", ragged: bool = False
) -> pd.DataFrame:
    """Read a comma-delimited file as strings, with the line number of every record.

    Parameters
    ----------
    path
        The CSV file.
    encoding
        Text encoding; ``"utf-8"`` (the default) also accepts a UTF-8 byte-order mark. Pass e.g.
        ``"cp1252"`` for files saved by older spreadsheet software.
    ragged
        Accept the untidy layout of some spreadsheet exports (the SFR underlying data): header
        fields left blank at the *end* of the header are dropped together with whatever the
        records hold in those positions, and records shorter than the header are padded with
        blanks. Without it (the default) every record must have exactly as many fields as the
        header and no header field may be blank.

    Returns
    -------
    DataFrame
        One string column per header field (surrounding white space removed from headers) and a
        ``source_row`` column: the file line the record starts on (header = line 1). Blank lines
        are skipped.

    Raises
    ------
    InputError
        Missing file, wrong encoding, empty file, header only, a delimiter other than the comma,
        duplicate column names, or a record with a different number of fields from the header.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", file=file)
    raw = file.read_bytes()
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid {encoding} text (byte 0x{raw[exc.start]:02x} at line {line}); the file may "
            "be in latin-1/cp1252: re-save it as UTF-8 or pass encoding='cp1252'",
            file=file,
            row=line,
        ) from None
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r}", file=file) from None
    if not text.strip():
        raise InputError("the file is empty", file=file)

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    records: list[list[str]] = []
    lines: list[int] = []
    previous = 0
    try:
        for record in reader:
            start = previous + 1
            previous = reader.line_num
            if not record or (all(not field.strip() for field in record) and len(record) <= 1):
                continue
            if header is None:
                header = [field.strip() for field in record]
                header_line = start
                if ragged:
                    while header and not header[-1]:
                        header.pop()
                _check_header(header, file, header_line)
                continue
            if ragged:
                record = record[: len(header)] + [""] * (len(header) - len(record))
            if len(record) != len(header):
                raise InputError(
                    f"this record has {len(record)} fields but the header has {len(header)}",
                    file=file,
                    row=start,
                )
            records.append(record)
            lines.append(start)
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=file, row=previous + 1) from None
    assert header is not None
    if not records:
        raise InputError("the file has a header but no data rows", file=file, row=header_line)
    columns = list(zip(*records, strict=True))
    frame = pd.DataFrame(
        {name: pd.array(values, dtype="str") for name, values in zip(header, columns, strict=True)}
    )
    frame["source_row"] = np.asarray(lines, dtype="int64")
    frame.attrs["source_file"] = str(file)
    return frame


def _check_header(header: list[str], file: Path, line: int) -> None:
    joined = ",".join(header)
    if len(header) == 1:
        for sep, name in _OTHER_DELIMITERS:
            if sep in joined:
                raise InputError(
                    f"the file is not comma-delimited: its header is separated by {name}; "
                    "EES files use commas",
                    file=file,
                    row=line,
                )
    else:
        for sep, name in _OTHER_DELIMITERS:
            if sum(h.count(sep) for h in header) >= len(header):
                raise InputError(
                    f"the file does not look comma-delimited: its header is separated by {name}",
                    file=file,
                    row=line,
                )
    blank = [i + 1 for i, h in enumerate(header) if not h]
    if blank:
        raise InputError(f"header field {blank[0]} is empty", file=file, row=line)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(
                "duplicate column name in the header", file=file, row=line, column=name
            )
        seen.add(name)
    if "source_row" in seen:
        raise InputError(
            "column name 'source_row' is reserved for line numbers", file=file, row=line
        )


def _require(frame: pd.DataFrame, columns: Iterable[str], file: str | Path) -> None:
    present = [c for c in frame.columns if c != "source_row"]
    for col in columns:
        if col not in frame.columns:
            raise InputError(
                f"required column is missing; the file has: {', '.join(present)}",
                file=file,
                column=col,
            )


def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


# --------------------------------------------------------------------------------------------
# Explore Education Statistics files
# --------------------------------------------------------------------------------------------


def parse_time_period(
    raw: pd.Series, *, file: str | Path | None = None, rows: Sequence[int] | None = None
) -> pd.Series:
    """Turn EES ``time_period`` values into the year ending 31 March (int64).

    ``2024`` stays 2024; ``202324`` (two consecutive years) becomes 2024.

    Raises
    ------
    InputError
        For any other value, naming its line and the column ``time_period``.
    """
    text = raw.astype("str").str.strip()
    four = text.str.fullmatch(r"\d{4}")
    six = text.str.fullmatch(r"\d{6}")
    out = pd.Series(0, index=raw.index, dtype="int64")
    out[four] = text[four].astype("int64")
    first = text[six].str[:4].astype("int64")
    second = text[six].str[4:].astype("int64")
    consecutive = (first + 1) % 100 == second
    out[six] = first + 1
    bad = ~(four | six)
    bad[six] = ~consecutive
    if bad.any():
        i = _first_bad(bad)
        raise InputError(
            f"time_period {raw.iloc[i]!r} is neither a year (2024) nor two consecutive years "
            "(202324)",
            file=file,
            row=None if rows is None else int(np.asarray(rows)[i]),
            column="time_period",
        )
    return out


def _meta_types(path: Path, encoding: str) -> dict[str, str] | None:
    meta = path.with_name(path.name[: -len(path.suffix)] + ".meta.csv") if path.suffix else None
    if meta is None or not meta.is_file():
        return None
    frame = read_csv_strings(meta, encoding=encoding)
    _require(frame, ["col_name", "col_type"], meta)
    return {
        str(name).strip(): str(kind).strip().lower()
        for name, kind in zip(frame["col_name"], frame["col_type"], strict=True)
    }


def _looks_like_indicator(values: pd.Series) -> bool:
    text = values.astype("str").str.strip()
    if text.map(is_number).any():
        return True
    non_blank = text[text != ""]
    return bool(len(non_blank)) and bool(non_blank.str.lower().isin(list(SYMBOLS)).all())


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def read_ees(
    path: str | Path,
    *,
    indicators: Sequence[str] | None = None,
    filters: Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
    geographic_level: str | Sequence[str] | None = None,
    encoding: str = "utf-8",
    allow_combined_codes: bool = False,
) -> pd.DataFrame:
    """Read an Explore Education Statistics CSV into a validated table.

    Parameters
    ----------
    path
        The EES data file. A companion ``<name>.meta.csv`` next to it, if present, says which
        columns are filters and which are indicators (``col_type``).
    indicators
        Indicator columns to read. By default: every column that is not a standard/geography
        column and not a filter. Without a ``.meta.csv``, a column is a filter if it is named in
        :data:`KNOWN_FILTERS` or holds text; it is an indicator if it holds numbers or only
        statistical symbols.
    filters
        Filter columns: a list of names, or a mapping ``{column: value or values}`` that also keeps
        only the rows with those values (each value asked for must occur in the file).
    geographic_level
        Keep only rows at this level (or these levels), e.g. ``"Local authority"``.
    encoding
        Text encoding (UTF-8 by default, with or without a byte-order mark).
    allow_combined_codes
        Keep combined LA pseudo-codes (``"E06000061 / E06000062"``) as published instead of
        rejecting them.

    Returns
    -------
    DataFrame
        The standard and geography columns present (strings), ``time_period`` (int, year ending
        31 March), ``time_period_raw`` (as published), the filter columns (strings), for each
        indicator a float column and a ``<indicator>_reason`` string column (``<NA>`` where a
        number was published), and ``source_row`` (file line number of the record).

    Raises
    ------
    InputError
        Unreadable or malformed file (encoding, delimiter, empty, header only, ragged records),
        a missing standard or requested column (the message lists the columns present), a filter
        value or geographic level not in the file, an unparseable ``time_period``, an LA code of the
        wrong format, or an indicator cell that is neither a number nor a known symbol.
    """
    file = Path(path)
    frame = read_csv_strings(file, encoding=encoding)
    _require(frame, REQUIRED_COLUMNS, file)

    levels_in_file = sorted(set(frame["geographic_level"].str.strip()))
    if geographic_level is not None:
        wanted_levels = _as_list(geographic_level)
        missing_levels = [lv for lv in wanted_levels if lv not in levels_in_file]
        if missing_levels:
            raise InputError(
                f"no rows at geographic level {missing_levels[0]!r}; the file has: "
                f"{', '.join(levels_in_file)}",
                file=file,
                column="geographic_level",
            )
        frame = frame.loc[frame["geographic_level"].str.strip().isin(wanted_levels)]
        needs_la = _LA_LEVEL in wanted_levels
    else:
        needs_la = _LA_LEVEL in levels_in_file
    if needs_la:
        _require(frame, LA_COLUMNS, file)

    meta = _meta_types(file, encoding)
    candidates = [
        c
        for c in frame.columns
        if c not in REQUIRED_COLUMNS and c not in GEOGRAPHY_COLUMNS and c != "source_row"
    ]

    row_filters: dict[str, list[str]] = {}
    if filters is None:
        filter_cols: list[str] | None = None
    elif isinstance(filters, Mapping):
        filter_cols = list(filters)
        row_filters = {k: _as_list(v) for k, v in filters.items()}
    else:
        filter_cols = _as_list(filters)
    if filter_cols is not None:
        _require(frame, filter_cols, file)
    if indicators is not None:
        _require(frame, indicators, file)

    if filter_cols is None:
        if meta is not None:
            filter_cols = [c for c in candidates if meta.get(c) == "filter"]
        elif indicators is not None:
            filter_cols = [
                c
                for c in candidates
                if c not in indicators
                and (c in KNOWN_FILTERS or not _looks_like_indicator(frame[c]))
            ]
        else:
            filter_cols = [
                c for c in candidates if c in KNOWN_FILTERS or not _looks_like_indicator(frame[c])
            ]
    if indicators is None:
        if meta is not None:
            indicator_cols = [c for c in candidates if meta.get(c) == "indicator"]
        else:
            indicator_cols = [c for c in candidates if c not in filter_cols]
    else:
        indicator_cols = list(indicators)
    overlap = set(indicator_cols) & set(filter_cols)
    if overlap:
        name = sorted(overlap)[0]
        raise InputError("a column cannot be both a filter and an indicator", column=name)

    for col, wanted in row_filters.items():
        present = frame[col].str.strip()
        absent = [v for v in wanted if not present.eq(v).any()]
        if absent:
            values = sorted(set(present))
            shown = "; ".join(values[:30]) + (" ..." if len(values) > 30 else "")
            raise InputError(
                f"filter value {absent[0]!r} does not occur; values present: {shown}",
                file=file,
                column=col,
            )
        frame = frame.loc[present.isin(wanted)]
    if frame.empty:
        raise InputError("no rows left after selecting levels and filter values", file=file)

    frame = frame.reset_index(drop=True)
    rows = frame["source_row"].to_numpy()
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        if col in REQUIRED_COLUMNS or col in GEOGRAPHY_COLUMNS:
            out[col] = frame[col].str.strip()
    out["time_period_raw"] = out["time_period"]
    out["time_period"] = parse_time_period(out["time_period_raw"], file=file, rows=rows)

    if "new_la_code" in out.columns:
        is_la = out["geographic_level"].eq(_LA_LEVEL)
        _check_codes(out, is_la, rows, file, allow_combined_codes)

    parts: dict[str, pd.Series] = {}
    for col in filter_cols:
        parts[col] = frame[col].str.strip()
    for col in indicator_cols:
        values, reasons = parse_series(frame[col], file=file, column=col, rows=rows)
        parts[col] = values
        parts[f"{col}_reason"] = reasons
    parts["source_row"] = pd.Series(rows, index=frame.index)
    out = pd.concat([out, pd.DataFrame(parts, index=frame.index)], axis=1)
    out.attrs["source_file"] = str(file)
    out.attrs["indicators"] = list(indicator_cols)
    out.attrs["filters"] = list(filter_cols)
    return out


def _check_codes(
    out: pd.DataFrame,
    is_la: pd.Series,
    rows: np.ndarray,
    file: Path,
    allow_combined: bool,
) -> None:
    checks = (
        ("new_la_code", _LA_CODE, _COMBINED_LA_CODE, "a 9-character ONS code (E + 8 digits)"),
    )
    if "old_la_code" in out.columns:
        checks += (("old_la_code", _OLD_LA_CODE, _COMBINED_OLD_CODE, "a 3-digit DfE LA code"),)
    for col, single, combined, what in checks:
        codes = out[col]
        ok = codes.str.fullmatch(single.pattern)
        is_combined = codes.str.fullmatch(combined.pattern)
        if allow_combined:
            ok = ok | is_combined
        bad = is_la & ~ok
        if bad.any():
            i = _first_bad(bad)
            hint = (
                " (a combined pseudo-code: pass allow_combined_codes=True to keep it)"
                if is_combined.iloc[i]
                else ""
            )
            raise InputError(
                f"local-authority row has {col} {codes.iloc[i]!r}, expected {what}{hint}",
                file=file,
                row=int(rows[i]),
                column=col,
            )


# --------------------------------------------------------------------------------------------
# SFR-era wide files
# --------------------------------------------------------------------------------------------

_SFR_GEOGRAPHY = ("LA_order", "New_geog_code", "geog_l", "geog_c", "geog_n")


def read_wide_sfr(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    geographic_level: str | Sequence[str] | None = None,
    encoding: str = "utf-8",
    symbols: Mapping[str, str] = SFR_SYMBOLS,
) -> pd.DataFrame:
    """Read an SFR-era wide "underlying data" file (2010-2019).

    Parameters
    ----------
    path
        The file: one row per area with ``geog_l`` (``National``/``NATIONAL``, ``GOR``/``REGION``,
        ``LA``), ``geog_c`` (3-digit LA code), ``geog_n`` (name) and, from 2011,
        ``New_geog_code`` (9-character ONS code).
    columns
        The statistic columns to read (after ``rename``); all non-geography columns by default.
    rename
        Header names to replace before anything else, ``{published name: name to use}``. The
        replacement is simultaneous, so a permutation of names (a re-labelling of misaligned
        columns) is applied correctly.
    geographic_level
        Keep only rows at this level (or levels), in EES terms: ``"National"``, ``"Regional"``,
        ``"Local authority"``.
    encoding
        Text encoding (UTF-8 by default).
    symbols
        Symbol table; :data:`~kinship_eval.data.symbols.SFR_SYMBOLS` by default (``x`` =
        suppressed or not available).

    Returns
    -------
    DataFrame
        ``geographic_level`` (EES terms), ``old_la_code`` (``geog_c``), ``new_la_code``
        (``New_geog_code``, empty if the file has none), ``la_name`` (``geog_n``, trimmed), each
        statistic as float plus ``<column>_reason``, and ``source_row``.

    Raises
    ------
    InputError
        As :func:`read_csv_strings`; also a missing column, an unknown ``geog_l`` level, an LA row
        with a malformed code, or a cell that is neither a number nor a known symbol.
    """
    file = Path(path)
    frame = read_csv_strings(file, encoding=encoding, ragged=True)
    if rename:
        frame.columns = [rename.get(c, c) for c in frame.columns]
        if len(set(frame.columns)) != len(frame.columns):
            raise InputError("renaming the columns would create duplicate names", file=file)
    _require(frame, ["geog_l", "geog_c", "geog_n"], file)
    level_raw = frame["geog_l"].str.strip()
    levels = level_raw.str.lower().map(_SFR_LEVELS)
    if "New_geog_code" in frame.columns:
        # A blank level with a 3-digit code and an LA-type ONS code is an LA row (the 2017 CLA
        # file leaves the level of the Isles of Scilly blank).
        implied_la = (
            level_raw.eq("")
            & frame["geog_c"].str.strip().str.fullmatch(_OLD_LA_CODE.pattern)
            & frame["New_geog_code"].str.strip().str.fullmatch(r"E(06|08|09|10)\d{6}")
        )
        levels = levels.where(~implied_la, _LA_LEVEL)
    if levels.isna().any():
        i = _first_bad(levels.isna())
        raise InputError(
            f"unknown geographic level {level_raw.iloc[i]!r} (expected National, GOR/REGION or LA)",
            file=file,
            row=int(frame["source_row"].iloc[i]),
            column="geog_l",
        )
    stat_cols = [c for c in frame.columns if c not in _SFR_GEOGRAPHY and c != "source_row"]
    if columns is not None:
        _require(frame, columns, file)
        stat_cols = list(columns)
    out = pd.DataFrame(index=frame.index)
    out["geographic_level"] = levels.astype("str")
    out["old_la_code"] = frame["geog_c"].str.strip()
    out["new_la_code"] = (
        frame["New_geog_code"].str.strip() if "New_geog_code" in frame.columns else ""
    )
    out["new_la_code"] = out["new_la_code"].astype("str")
    out["la_name"] = frame["geog_n"].str.strip()
    out["source_row"] = frame["source_row"]
    if geographic_level is not None:
        keep = out["geographic_level"].isin(_as_list(geographic_level))
        out = out.loc[keep]
        frame = frame.loc[keep]
    is_la = out["geographic_level"].eq(_LA_LEVEL)
    rows = out["source_row"].to_numpy()
    bad_old = is_la & ~out["old_la_code"].str.fullmatch(_OLD_LA_CODE.pattern)
    if bad_old.any():
        i = _first_bad(bad_old)
        raise InputError(
            f"local-authority row has geog_c {out['old_la_code'].iloc[i]!r}, expected a 3-digit "
            "DfE LA code",
            file=file,
            row=int(rows[i]),
            column="geog_c",
        )
    if "New_geog_code" in frame.columns:
        bad_new = is_la & ~out["new_la_code"].str.fullmatch(_LA_CODE.pattern)
        if bad_new.any():
            i = _first_bad(bad_new)
            raise InputError(
                f"local-authority row has New_geog_code {out['new_la_code'].iloc[i]!r}, expected "
                "a 9-character ONS code (E + 8 digits)",
                file=file,
                row=int(rows[i]),
                column="New_geog_code",
            )
    parts: dict[str, pd.Series] = {}
    for col in stat_cols:
        values, reasons = parse_series(
            frame[col], file=file, column=col, rows=rows, symbols=symbols
        )
        parts[col] = values
        parts[f"{col}_reason"] = reasons
    out = pd.concat([out, pd.DataFrame(parts, index=out.index)], axis=1).reset_index(drop=True)
    out.attrs["source_file"] = str(file)
    return out
