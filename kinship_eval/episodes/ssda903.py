"""Read and validate SSDA903 (children looked after) returns across many LAs and years.

Layouts
-------
Two layouts are read, in CSV (DfE layout, UTF-8, comma-separated) or Parquet:

*One file per LA-year*: a folder ``ROOT/LA_CODE/YEAR/`` holding ``episodes.csv`` (or
``episodes.parquet``) and ``header.csv`` (or ``header.parquet``). ``LA_CODE`` is the 9-character
ONS code (``E09000004``) or the 3-digit DfE code (``303``); ``YEAR`` is the collection year, the
year ending 31 March (``2024`` is April 2023 to March 2024).

*Stacked*: one episodes file and one header file for many LAs and years, with extra columns ``LA``
(or ``LA_CODE``; ONS or 3-digit code) and ``YEAR``. Pass the folder holding ``episodes.*`` and
``header.*``, or the episodes file (its header file is found beside it by replacing "episodes"
in its name with "header", or given with ``header=``). A single return without those columns is
read with ``la_code=`` and ``year=``.

Columns (names are matched without regard to case or surrounding spaces):

* header: ``CHILD, SEX, DOB, ETHNIC, UPN, MOTHER, MC_DOB`` (``CHILD, SEX, DOB, ETHNIC`` required);
* episodes: ``CHILD, DECOM, RNE, LS, CIN, PLACE, PLACE_PROVIDER, DEC, REC,
  REASON_PLACE_CHANGE, HOME_POST, PL_POST, URN`` (``CHILD, DECOM, RNE, LS, CIN, PLACE, DEC, REC``
  required; ``CIN`` may be left out with ``columns=``);
* an optional ``SYNTHETIC`` column marks synthetic data: every output made from it says so.

Dates are ``DD/MM/YYYY`` (the DfE layout) or ISO ``YYYY-MM-DD``; typed Parquet dates are read
as they are.

Validation (each an :class:`~kinship_eval.errors.InputError` naming file, row and column; the
row is the line in the file, header = line 1; for Parquet, the record number + 1)
-----------------------------------------------------------------------------------------------
Missing columns; blank ``CHILD`` or ``DECOM``; a date that is not a real date in either format;
a code not in the SSDA903 code lists (:mod:`kinship_eval.episodes.codes`); ``REC`` without
``DEC`` or ``DEC`` without ``REC``; ``DEC`` before ``DECOM``; a date after the end of the
return's year; a child with episodes but no header row in the same return; a child listed twice
in one header; an episode that starts before the child's date of birth.

Data-quality fixes (common in real returns; each counted in :class:`DataQualityReport`)
-----------------------------------------------------------------------------------------
``carried_over``
    An episode open at 31 March appears again in the next year's return: the record from the
    latest return is kept (it has the end date if the episode has ended).
``duplicate_episode``
    Two episodes of one child start on the same day in one return: the one that ends latest
    (an open one counts as latest) is kept.
``overlap``
    An episode ends after the child's next episode starts: its end is set to the next start.
``open_not_last``
    An episode has no end date but the child has a later episode: it is closed at the next
    episode's start, with ``REC`` = ``X1`` (or an unknown reason when the next episode starts a
    new period of care, ``RNE`` = ``S``).
``open_lost``
    An episode is open at the end of a return year, but the child is in no later return of that
    LA: it is closed at the end of that year with an unknown reason and flagged ``lost`` in the
    ``fix`` column; it counts as lost to follow-up, never as leaving care.

With ``on_quality="raise"`` the first of these (except ``carried_over``, which is how returns
work) raises an :class:`~kinship_eval.errors.InputError` instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kinship_eval.data.bundled import bundled_path
from kinship_eval.episodes import _arrays as A
from kinship_eval.episodes.codes import CONTINUES_REC, CodeLists, read_code_lists
from kinship_eval.errors import InputError

EPISODE_COLUMNS: tuple[str, ...] = (
    "CHILD",
    "DECOM",
    "RNE",
    "LS",
    "CIN",
    "PLACE",
    "PLACE_PROVIDER",
    "DEC",
    "REC",
    "REASON_PLACE_CHANGE",
    "HOME_POST",
    "PL_POST",
    "URN",
)
HEADER_COLUMNS: tuple[str, ...] = ("CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB")
REQUIRED_EPISODE: tuple[str, ...] = ("CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "DEC", "REC")
REQUIRED_HEADER: tuple[str, ...] = ("CHILD", "SEX", "DOB", "ETHNIC")
#: The episode columns the LA x quarter panel needs (a faster read).
PANEL_COLUMNS: tuple[str, ...] = ("CHILD", "DECOM", "RNE", "LS", "PLACE", "DEC", "REC")
LA_COLUMNS: tuple[str, ...] = ("LA", "LA_CODE", "NEW_LA_CODE")
YEAR_COLUMNS: tuple[str, ...] = ("YEAR", "RETURN_YEAR", "COLLECTION_YEAR")
SYNTHETIC_COLUMN = "SYNTHETIC"
_CODE_COLUMNS = {
    "RNE": "RNE",
    "LS": "LS",
    "CIN": "CIN",
    "PLACE": "PLACE",
    "PLACE_PROVIDER": "PLACE_PROVIDER",
    "REC": "REC",
    "REASON_PLACE_CHANGE": "REASON_PLACE_CHANGE",
    "SEX": "SEX",
    "ETHNIC": "ETHNIC",
}
_TEXT_COLUMNS = ("HOME_POST", "PL_POST", "URN", "UPN", "MOTHER")
_DATE_COLUMNS = ("DECOM", "DEC", "DOB", "MC_DOB")
_ONS_CODE = re.compile(r"^E(06|08|09|10)\d{6}$")
_OLD_CODE = re.compile(r"^\d{3}$")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")

QualityMode = Literal["fix", "raise"]

#: Data-quality issues: name -> (what was found, what was done).
QUALITY_ISSUES: dict[str, tuple[str, str]] = {
    "carried_over": (
        "episode repeated in a later year's return (open at 31 March)",
        "kept the record from the latest return",
    ),
    "duplicate_episode": (
        "two episodes of one child start on the same day in one return",
        "kept the one ending latest (an open episode counts as latest)",
    ),
    "overlap": (
        "episode ends after the child's next episode starts",
        "end date set to the next episode's start",
    ),
    "open_not_last": (
        "episode has no end date but the child has a later episode",
        "closed at the next episode's start with REC X1 (unknown reason if the next "
        "episode starts a new period of care)",
    ),
    "open_lost": (
        "episode open at the end of a return year, child in no later return of the LA",
        "closed at the end of that year, reason unknown; lost to follow-up, not an exit",
    ),
}
FIX_FLAGS: tuple[str, ...] = ("", "overlap", "open_not_last", "open_lost")


# ============================================================================ results
@dataclass
class DataQualityReport:
    """Counts of each data-quality issue found and fixed while reading.

    Attributes
    ----------
    counts
        Issue name -> number of episode records affected (see :data:`QUALITY_ISSUES`).
    by_la
        One row per LA with a column per issue.
    rows_read
        Episode records read, before any fix.
    episodes_kept
        Episodes after the fixes.
    notes
        Other plain-language notes (e.g. how coverage was inferred).
    """

    counts: dict[str, int]
    by_la: pd.DataFrame
    rows_read: int
    episodes_kept: int
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """Tidy view: ``issue, count, found, action``."""
        rows = [
            (name, int(self.counts.get(name, 0)), found, action)
            for name, (found, action) in QUALITY_ISSUES.items()
        ]
        return pd.DataFrame(rows, columns=["issue", "count", "found", "action"])

    def summary(self) -> str:
        """Plain-text report."""
        lines = [
            f"SSDA903 data quality: {self.rows_read:,} episode records read, "
            f"{self.episodes_kept:,} episodes kept",
        ]
        for row in self.to_frame().itertuples(index=False):
            lines.append(f"  {row.issue:<18} {row.count:>9,}  {row.found}; {row.action}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass
class EpisodeData:
    """Validated, cleaned SSDA903 episodes and header records.

    Attributes
    ----------
    episodes
        One row per episode, sorted by ``la_code, child, decom``: ``la_code, child, decom, dec,
        rne, ls, cin, place, place_provider, rec, reason_place_change, home_post, pl_post, urn``
        (the columns read), ``year`` (the return the record came from; missing when unknown),
        ``fix`` (``""`` or the data-quality fix applied to its end date) and ``child_key`` (an
        integer unique to each LA x child). Codes are categoricals over the full code lists;
        ``la_code``, ``child`` and the free-text columns are categoricals too (compact at
        millions of rows); dates are ``datetime64[s]`` (``dec`` NaT while open).
    header
        One row per LA x child (latest return): ``la_code, child, sex, dob, ethnic, upn,
        mother, mc_dob, year, child_key``; ``None`` when the header was not read.
    quality
        The data-quality report.
    coverage
        One row per LA: ``la_code, first_year, last_year, n_years`` (return years, years ending
        31 March), ``years_inferred`` (no YEAR information: the LA's latest date's year) and
        ``years`` (the tuple of return years read).
    source
        What was read.
    synthetic
        True when the data carry the ``SYNTHETIC`` marker.
    """

    episodes: pd.DataFrame
    header: pd.DataFrame | None
    quality: DataQualityReport
    coverage: pd.DataFrame
    source: str
    synthetic: bool = False

    @property
    def la_codes(self) -> list[str]:
        return sorted(self.coverage["la_code"])

    def summary(self) -> str:
        """Plain-text description of what was read."""
        mark = "SYNTHETIC DATA - not real children. " if self.synthetic else ""
        first = int(self.coverage["first_year"].min()) if len(self.coverage) else 0
        last = int(self.coverage["last_year"].max()) if len(self.coverage) else 0
        return (
            f"{mark}SSDA903 episodes from {self.source}: {len(self.episodes):,} episodes, "
            f"{self.episodes['child_key'].nunique():,} children, {len(self.coverage)} LAs, "
            f"return years {first}-{last}\n{self.quality.summary()}"
        )


# ============================================================================ locating rows
@dataclass
class _Source:
    label: str
    kind: Literal["csv", "parquet", "frame"]
    path: Path | None = None
    la: str | None = None
    year: int | None = None


class _Locator:
    """Turns a global record index into (file, line) for messages."""

    def __init__(self, sources: list[_Source], lengths: list[int]) -> None:
        self.sources = sources
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def where(self, index: int) -> tuple[str, int]:
        i = int(np.searchsorted(self.offsets, index, side="right") - 1)
        src = self.sources[i]
        record = int(index - self.offsets[i])
        if src.kind == "csv" and src.path is not None:
            return src.label, _csv_line(src.path, record)
        return src.label, record + 2

    def error(self, message: str, index: int, column: str | None) -> InputError:
        file, row = self.where(index)
        return InputError(message, file=file, row=row, column=column)


def _csv_line(path: Path, record: int) -> int:
    """1-based line of data record ``record`` (0-based) in a CSV file, header = line 1."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        seen = -1
        for row in reader:
            if not row or all(not c for c in row):
                continue
            seen += 1
            if seen == record:
                return reader.line_num
    return record + 2


# ============================================================================ discovery
def _find(folder: Path, stem: str) -> Path | None:
    for ext in ("csv", "parquet"):
        for candidate in folder.iterdir():
            if candidate.is_file() and candidate.name.lower() == f"{stem}.{ext}":
                return candidate
    return None


def _kind(path: Path) -> Literal["csv", "parquet"]:
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"


def _discover(
    path: Path, header: str | Path | bool | None, la_code: str | None, year: int | None
) -> tuple[list[_Source], list[_Source]]:
    if not path.exists():
        raise InputError("file or folder not found", file=path)
    if path.is_file():
        episodes = [_Source(str(path), _kind(path), path, la_code, year)]
        if header is False:
            return episodes, []
        if header is None or header is True:
            guess = path.with_name(path.name.lower().replace("episodes", "header"))
            matches = [p for p in path.parent.iterdir() if p.name.lower() == guess.name]
            if guess.name == path.name.lower() or not matches:
                raise InputError(
                    "no header file beside the episodes file (expected a name with 'header' "
                    "in place of 'episodes'); pass header=PATH, or header=False to skip it",
                    file=path,
                )
            hpath = matches[0]
        else:
            hpath = Path(header)
            if not hpath.exists():
                raise InputError("header file not found", file=hpath)
        return episodes, [_Source(str(hpath), _kind(hpath), hpath, la_code, year)]
    stacked = _find(path, "episodes")
    if stacked is not None:
        return _discover(stacked, header if header is not None else None, la_code, year)
    episodes, headers = [], []
    for la_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for year_dir in sorted(p for p in la_dir.iterdir() if p.is_dir()):
            epi = _find(year_dir, "episodes")
            if epi is None:
                continue
            if not re.fullmatch(r"\d{4}", year_dir.name):
                raise InputError(
                    f"folder name {year_dir.name!r} is not a year (expected LA_CODE/YEAR/)",
                    file=year_dir,
                )
            la = la_dir.name.strip()
            if not (_ONS_CODE.match(la) or _OLD_CODE.match(la)):
                raise InputError(
                    f"folder name {la!r} is not an LA code (expected LA_CODE/YEAR/ with a "
                    "9-character ONS code or a 3-digit DfE code)",
                    file=la_dir,
                )
            yr = int(year_dir.name)
            episodes.append(_Source(str(epi), _kind(epi), epi, la, yr))
            if header is not False:
                hdr = _find(year_dir, "header")
                if hdr is None:
                    raise InputError("header file missing for this return", file=year_dir)
                headers.append(_Source(str(hdr), _kind(hdr), hdr, la, yr))
    if not episodes:
        raise InputError(
            "no SSDA903 files found: expected episodes.csv (or .parquet) in this folder, or "
            "LA_CODE/YEAR/episodes.csv below it",
            file=path,
        )
    return episodes, headers


# ============================================================================ reading files
@dataclass
class _Pieces:
    """Columns of several files: canonical name -> one arrow array (or None) per file."""

    sources: list[_Source]
    lengths: list[int]
    columns: dict[str, list[pa.Array | None]]
    locator: _Locator

    @property
    def n(self) -> int:
        return int(sum(self.lengths))

    def has(self, name: str) -> bool:
        return any(p is not None for p in self.columns.get(name, []))


def _header_names(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text; save the file as UTF-8", file=path, row=1) from None
    if not first.strip():
        raise InputError("the file is empty (no header line)", file=path, row=1)
    if "," not in first:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in first:
                raise InputError(
                    f"columns are separated by {name}, expected commas", file=path, row=1
                )
    return next(csv.reader([first]))


def _read_one(src: _Source, wanted: set[str]) -> tuple[dict[str, pa.Array], int]:
    """Read the wanted canonical columns of one file (strings as dictionary arrays)."""
    assert src.path is not None
    if src.kind == "csv":
        names = _header_names(src.path)
        pick = {n: n.strip().upper() for n in names if n.strip().upper() in wanted}
        dict_type = pa.dictionary(pa.int32(), pa.string())
        try:
            table = pacsv.read_csv(
                src.path,
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(pick),
                    column_types={n: dict_type for n in pick},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"malformed CSV: {_short(exc)}", file=src.label) from None
    else:
        try:
            schema = pq.read_schema(src.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(
                f"not a readable Parquet file: {_short(exc)}", file=src.label
            ) from None
        pick = {n: n.strip().upper() for n in schema.names if n.strip().upper() in wanted}
        strings = [n for n in pick if pa.types.is_string(schema.field(n).type)]
        table = pq.read_table(src.path, columns=list(pick), read_dictionary=strings)
    out = {pick[name]: table.column(name).combine_chunks() for name in table.column_names}
    return out, table.num_rows


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300]


def _load(
    sources: list[_Source], wanted: Sequence[str], required: Sequence[str], what: str
) -> _Pieces:
    wanted_set = set(wanted) | set(LA_COLUMNS) | set(YEAR_COLUMNS) | {SYNTHETIC_COLUMN}
    columns: dict[str, list[pa.Array | None]] = {}
    lengths: list[int] = []
    for i, src in enumerate(sources):
        cols, n = _read_one(src, wanted_set)
        missing = [c for c in required if c not in cols]
        if missing:
            raise InputError(
                f"required {what} column missing; found: {', '.join(sorted(cols)) or 'none'}",
                file=src.label,
                row=1,
                column=missing[0],
            )
        for name in set(columns) | set(cols):
            columns.setdefault(name, [None] * i).append(cols.get(name))
        lengths.append(n)
    return _Pieces(sources, lengths, columns, _Locator(sources, lengths))


def _pieces_from_arrow(table: pa.Table, label: str, wanted: Sequence[str]) -> _Pieces:
    wanted_set = set(wanted) | set(LA_COLUMNS) | set(YEAR_COLUMNS) | {SYNTHETIC_COLUMN}
    cols: dict[str, pa.Array] = {}
    for name in table.column_names:
        canon = str(name).strip().upper()
        if canon in wanted_set:
            arr = table.column(name).combine_chunks()
            if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                arr = pc.dictionary_encode(arr.cast(pa.string()))
            cols[canon] = arr
    src = _Source(label, "frame")
    n = table.num_rows
    return _Pieces([src], [n], {k: [v] for k, v in cols.items()}, _Locator([src], [n]))


def _frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    arrays = []
    for name in frame.columns:
        s = frame[name]
        if isinstance(s.dtype, pd.CategoricalDtype):
            arr = pa.DictionaryArray.from_arrays(
                pa.array(s.cat.codes.to_numpy(), mask=s.isna().to_numpy()),
                pa.array([str(c) for c in s.cat.categories], pa.string()),
            )
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            arr = pa.array(s.to_numpy().astype("datetime64[s]"), type=pa.timestamp("s"))
        else:
            arr = pa.array(s.astype(object).where(s.notna(), None).to_numpy(), from_pandas=True)
        arrays.append(arr)
    return pa.table(arrays, names=[str(c) for c in frame.columns])


# ============================================================================ column decoding
def _dict_arrow(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Dictionary values (an arrow string array) and int64 indices with -1 for null."""
    if not pa.types.is_dictionary(arr.type):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = pc.cast(arr, pa.string())
        arr = pc.dictionary_encode(arr)
    values = arr.dictionary
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    idx = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
    return values, idx.astype(np.int32, copy=False)


def _dict_parts(arr: pa.Array) -> tuple[list[str | None], np.ndarray]:
    """Dictionary values (as Python text) and int64 indices with -1 for null."""
    values, idx = _dict_arrow(arr)
    return values.to_pylist(), idx


def _text_codes(name: str, *sets: _Pieces) -> tuple[list[np.ndarray], np.ndarray]:
    """Codes of a text column over one shared vocabulary (surrounding spaces stripped).

    Returns one int32 array per set of pieces (-1 = blank) and the vocabulary (object array)
    of the values in use, in order of first appearance in the dictionaries.
    """
    outs = [np.full(p.n, -1, dtype=np.int32) for p in sets]
    values: list[pa.Array] = []
    pending: list[tuple[int, int, int, int, np.ndarray]] = []
    offset = 0
    for k, pieces in enumerate(sets):
        start = 0
        column = pieces.columns.get(name, [None] * len(pieces.lengths))
        for arr, n in zip(column, pieces.lengths, strict=True):
            if arr is not None and n:
                vals, idx = _dict_arrow(arr)
                values.append(vals)
                pending.append((k, start, n, offset, idx))
                offset += len(vals)
            start += n
    if not values:
        return outs, np.array([], dtype=object)
    stripped = pc.utf8_trim_whitespace(pa.concat_arrays(values))
    encoded = pc.dictionary_encode(stripped)
    gidx = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    words = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    empty = np.flatnonzero(words == "")
    if len(empty):
        gidx[gidx == empty[0]] = -1
    used = np.zeros(len(words) + 1, dtype=bool)
    gidx = gidx.astype(np.int32)
    for k, start, n, off, idx in pending:
        lookup = np.append(gidx[off : off + int(idx.max(initial=-1)) + 1], np.int32(-1))
        codes = lookup[idx]
        outs[k][start : start + n] = codes
        used[codes] = True
    used = used[:-1]
    if used.all():
        return outs, words
    new = np.cumsum(used) - 1
    remap = np.append(np.where(used, new, -1), -1).astype(np.int32)
    outs = [remap[o] for o in outs]
    return outs, words[used]


def _text(pieces: _Pieces, name: str, vocab: dict[str, int]) -> np.ndarray:
    """Codes of a text column into ``vocab`` (extended in place); -1 = blank."""
    (codes,), words = _text_codes(name, pieces)
    lookup = np.array([vocab.setdefault(str(w), len(vocab)) for w in words] + [-1], np.int32)
    return lookup[codes]


def _parse_date(text: str) -> int | None:
    m = _DMY.match(text)
    if m:
        d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = _ISO.match(text)
        if not m:
            return None
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    try:
        return (dt.date(y, mo, d) - A.EPOCH).days
    except ValueError:
        return None


def _dates(pieces: _Pieces, name: str, cache: dict[str, int | None]) -> np.ndarray:
    """Integer days (``NO_DATE`` = blank) of a date column; raises on a value not a date."""
    out = np.full(pieces.n, A.NO_DATE, dtype=np.int32)
    start = 0
    for arr, n in zip(
        pieces.columns.get(name, [None] * len(pieces.lengths)), pieces.lengths, strict=True
    ):
        if arr is None or not n:
            start += n
            continue
        typ = arr.type
        if pa.types.is_date(typ) or pa.types.is_timestamp(typ):
            vals = pc.fill_null(pc.cast(pc.cast(arr, pa.date32()), pa.int32()), A.NO_DATE)
            out[start : start + n] = vals.to_numpy(zero_copy_only=False)
        else:
            values, idx = _dict_parts(arr)
            lookup = np.empty(len(values) + 1, dtype=np.int64)
            lookup[-1] = A.NO_DATE
            bad: list[int] = []
            for j, v in enumerate(values):
                text = (v or "").strip()
                if not text:
                    lookup[j] = A.NO_DATE
                    continue
                if text not in cache:
                    cache[text] = _parse_date(text)
                day = cache[text]
                if day is None:
                    bad.append(j)
                    lookup[j] = A.NO_DATE
                else:
                    lookup[j] = day
            if bad:
                rows = np.flatnonzero(np.isin(idx, bad))
                first = int(rows[0])
                more = f" ({len(rows) - 1} more rows)" if len(rows) > 1 else ""
                raise pieces.locator.error(
                    f"not a date: {values[idx[first]]!r} (expected DD/MM/YYYY or YYYY-MM-DD)"
                    + more,
                    start + first,
                    name,
                )
            out[start : start + n] = lookup[idx]
        start += n
    return out


def _codes(
    pieces: _Pieces, name: str, field_name: str, codes: CodeLists, *, required: bool
) -> tuple[np.ndarray, tuple[str, ...]]:
    """int16 positions in the code list (-1 = blank); raises on an invalid or missing code."""
    valid = codes.codes(field_name)
    position = {c: i for i, c in enumerate(valid)}
    (raw,), word_array = _text_codes(name, pieces)
    words = [str(w) for w in word_array]
    lookup = np.array([position.get(w, -2) for w in words] + [-1], dtype=np.int16)
    out = lookup[raw]
    bad = np.flatnonzero(out == -2)
    if len(bad):
        first = int(bad[0])
        value = words[raw[first]]
        hint = " (codes are upper case)" if value.upper() in position else ""
        more = f" ({len(bad) - 1} more rows)" if len(bad) > 1 else ""
        raise pieces.locator.error(
            f"invalid {field_name} code {value!r}{hint}; valid: {', '.join(valid)}" + more,
            first,
            name,
        )
    if required:
        blank = np.flatnonzero(out == -1)
        if len(blank):
            more = f" ({len(blank) - 1} more rows)" if len(blank) > 1 else ""
            raise pieces.locator.error(f"missing {field_name} code" + more, int(blank[0]), name)
    return out, valid


def _constant_or_column(
    pieces: _Pieces, aliases: Sequence[str], attr: str
) -> tuple[np.ndarray, list[str], str | None]:
    """Per-row text codes of the LA or YEAR: from the file's folder/argument or a column."""
    name = next((a for a in aliases if pieces.has(a)), None)
    vocab: dict[str, int] = {}
    out = np.full(pieces.n, -1, dtype=np.int32)
    column_codes = _text(pieces, name, vocab) if name else None
    start = 0
    for src, n in zip(pieces.sources, pieces.lengths, strict=True):
        const = getattr(src, attr)
        if const is not None:
            out[start : start + n] = vocab.setdefault(str(const), len(vocab))
        elif column_codes is not None:
            out[start : start + n] = column_codes[start : start + n]
        start += n
    return out, list(vocab), name


def _la_codes(pieces: _Pieces, years: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per-row index into a list of 9-character LA codes (3-digit codes mapped by year)."""
    raw, words, column = _constant_or_column(pieces, LA_COLUMNS, "la")
    if not words and (raw == -1).all():
        raise InputError(
            "no LA code: the file has no LA column and is not in an LA_CODE/YEAR/ folder; "
            "pass la_code=",
            file=pieces.sources[0].label,
        )
    blank = np.flatnonzero(raw == -1)
    if len(blank):
        raise pieces.locator.error("missing LA code", int(blank[0]), column or "LA")
    index: dict[str, int] = {}
    direct = np.full(len(words) + 1, -1, dtype=np.int32)
    old_words = []
    for k, word in enumerate(words):
        if _ONS_CODE.match(word):
            direct[k] = index.setdefault(word, len(index))
        elif _OLD_CODE.match(word):
            old_words.append(k)
        else:
            first = int(np.flatnonzero(raw == k)[0])
            raise pieces.locator.error(
                f"not an LA code: {word!r} (expected a 9-character ONS code such as "
                "E09000004 or a 3-digit DfE code)",
                first,
                column or "LA",
            )
    out = direct[raw]
    if old_words:
        geo = pd.read_csv(bundled_path("la_geography.csv"), dtype=str, keep_default_na=False)
        for k in old_words:
            word = words[k]
            rows = np.flatnonzero(raw == k)
            cands = geo.loc[geo["old_la_code"] == word]
            if cands.empty:
                raise pieces.locator.error(
                    f"unknown 3-digit LA code {word!r}", int(rows[0]), column or "LA"
                )
            for yr in np.unique(years[rows]):
                sel = rows[years[rows] == yr]
                out[sel] = index.setdefault(_code_in_force(cands, int(yr)), len(index))
    return out, list(index)


def _code_in_force(cands: pd.DataFrame, year: int) -> str:
    if year <= 0 or len(cands) == 1:
        live = cands.loc[cands["date_of_termination"] == ""]
        return str((live if len(live) else cands)["la_code"].iloc[-1])
    end = pd.Timestamp(year=year, month=3, day=31)
    for row in cands.itertuples(index=False):
        start = pd.Timestamp(row.date_of_operation) if row.date_of_operation else None
        stop = pd.Timestamp(row.date_of_termination) if row.date_of_termination else None
        if (start is None or start <= end) and (stop is None or stop >= end):
            return str(row.la_code)
    return str(cands["la_code"].iloc[-1])


def _years(pieces: _Pieces) -> tuple[np.ndarray, bool]:
    raw, words, column = _constant_or_column(pieces, YEAR_COLUMNS, "year")
    if not words:
        return np.full(pieces.n, -1, dtype=np.int32), False
    values = np.empty(len(words) + 1, dtype=np.int32)
    values[-1] = -1
    for k, word in enumerate(words):
        text = word.strip()
        if not re.fullmatch(r"\d{4}", text) or not 1990 <= int(text) <= 2100:
            rows = np.flatnonzero(raw == k)
            raise pieces.locator.error(
                f"not a return year: {word!r} (expected the year ending 31 March, e.g. 2024)",
                int(rows[0]),
                column or "YEAR",
            )
        values[k] = int(text)
    out = values[raw]
    if (out == -1).any():
        first = int(np.flatnonzero(out == -1)[0])
        raise pieces.locator.error("missing return year", first, column or "YEAR")
    return out, True


def _synthetic(pieces: _Pieces) -> bool:
    if not pieces.has(SYNTHETIC_COLUMN):
        return False
    vocab: dict[str, int] = {}
    raw = _text(pieces, SYNTHETIC_COLUMN, vocab)
    words = [w.lower() for w in vocab]
    return bool((raw >= 0).any()) and not all(w in ("0", "n", "no", "false") for w in words)


# ============================================================================ entry points
def read_ssda903(
    path: str | Path,
    *,
    header: str | Path | bool | None = None,
    la_code: str | None = None,
    year: int | None = None,
    columns: Sequence[str] | None = None,
    on_quality: QualityMode = "fix",
    codes: CodeLists | None = None,
) -> EpisodeData:
    """Read, validate and clean SSDA903 returns (see the module docstring for the layouts).

    Parameters
    ----------
    path
        A folder (``LA_CODE/YEAR/`` files below it, or stacked ``episodes.*`` and ``header.*``
        in it) or a stacked/single-return episodes file.
    header
        The header file of a stacked/single-return episodes file; ``None`` finds it beside the
        episodes file; ``False`` skips the header (no child characteristics, no check that every
        child has a header row).
    la_code, year
        The LA and return year of a file without ``LA``/``YEAR`` columns.
    columns
        Episode columns to read (default: all of :data:`EPISODE_COLUMNS` present);
        :data:`PANEL_COLUMNS` is enough for :func:`~kinship_eval.episodes.episodes_to_panel`.
    on_quality
        ``"fix"`` applies the documented data-quality fixes and counts them; ``"raise"`` raises
        at the first one.
    codes
        Code lists (the bundled SSDA903 lists by default).

    Returns
    -------
    EpisodeData

    Raises
    ------
    InputError
        A file is missing or malformed, or a value is invalid (file, row and column named).
    """
    root = Path(path)
    epi_sources, hdr_sources = _discover(root, header, la_code, year)
    wanted = _wanted(columns)
    required = [c for c in REQUIRED_EPISODE if c in wanted]
    episodes = _load(epi_sources, wanted, required, "episodes")
    head = _load(hdr_sources, HEADER_COLUMNS, REQUIRED_HEADER, "header") if hdr_sources else None
    return _build(episodes, head, str(root), on_quality, codes or read_code_lists())


def episode_data_from_frames(
    episodes: pd.DataFrame,
    header: pd.DataFrame | None = None,
    *,
    la_code: str | None = None,
    year: int | None = None,
    on_quality: QualityMode = "fix",
    codes: CodeLists | None = None,
    label: str = "episodes table",
) -> EpisodeData:
    """Validate and clean SSDA903 tables already in memory (same columns as the files).

    The rows are numbered as if the tables were CSV files (first row = line 2). Dates may be
    text in either format or ``datetime64`` values.
    """
    return episode_data_from_arrow(
        _frame_to_arrow(episodes),
        None if header is None else _frame_to_arrow(header),
        la_code=la_code,
        year=year,
        on_quality=on_quality,
        codes=codes,
        label=label,
    )


def episode_data_from_arrow(
    episodes: pa.Table,
    header: pa.Table | None = None,
    *,
    la_code: str | None = None,
    year: int | None = None,
    on_quality: QualityMode = "fix",
    codes: CodeLists | None = None,
    label: str = "episodes table",
) -> EpisodeData:
    """Validate and clean SSDA903 tables held as Arrow tables (same columns as the files)."""
    epi = _pieces_from_arrow(episodes, label, EPISODE_COLUMNS)
    missing = [c for c in REQUIRED_EPISODE if c not in epi.columns]
    if missing:
        raise InputError("required episodes column missing", file=label, column=missing[0])
    for src in epi.sources:
        src.la, src.year = la_code, year
    head = None
    if header is not None:
        head = _pieces_from_arrow(header, "header table", HEADER_COLUMNS)
        missing = [c for c in REQUIRED_HEADER if c not in head.columns]
        if missing:
            raise InputError(
                "required header column missing", file="header table", column=missing[0]
            )
        for src in head.sources:
            src.la, src.year = la_code, year
    return _build(epi, head, label, on_quality, codes or read_code_lists())


def _wanted(columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(EPISODE_COLUMNS)
    wanted = [c.strip().upper() for c in columns]
    unknown = [c for c in wanted if c not in EPISODE_COLUMNS]
    if unknown:
        raise InputError(
            f"unknown episode column {unknown[0]!r}; known: {', '.join(EPISODE_COLUMNS)}"
        )
    return list(dict.fromkeys(["CHILD", "DECOM", "DEC", *wanted]))


# ============================================================================ building
def _build(
    epi: _Pieces,
    head: _Pieces | None,
    source: str,
    on_quality: QualityMode,
    codes: CodeLists,
) -> EpisodeData:
    notes: list[str] = []
    n = epi.n
    years, has_year = _years(epi)
    la_idx, la_list = _la_codes(epi, years)
    child_sets = (epi, head) if head is not None else (epi,)
    child_codes, child_words = _text_codes("CHILD", *child_sets)
    child = child_codes[0]
    blank = np.flatnonzero(child == -1)
    if len(blank):
        raise epi.locator.error("missing CHILD identifier", int(blank[0]), "CHILD")
    date_cache: dict[str, int | None] = {}
    decom = _dates(epi, "DECOM", date_cache)
    blank = np.flatnonzero(decom == A.NO_DATE)
    if len(blank):
        raise epi.locator.error("missing DECOM (date episode commenced)", int(blank[0]), "DECOM")
    dec = _dates(epi, "DEC", date_cache)
    cols: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    for name in ("RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "REC", "REASON_PLACE_CHANGE"):
        if name in epi.columns:
            required = name in ("RNE", "LS", "CIN", "PLACE")
            cols[name] = _codes(epi, name, _CODE_COLUMNS[name], codes, required=required)
    _check_dates(epi, decom, dec, years, has_year, cols.get("REC", (None, ()))[0])
    text: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in _TEXT_COLUMNS:
        if name in epi.columns:
            (raw,), words = _text_codes(name, epi)
            text[name] = (raw, words)

    synthetic = _synthetic(epi)
    epi.columns.clear()  # the arrow data are decoded: free them before cleaning
    child_dtype = pd.CategoricalDtype(pd.Index(child_words, dtype=object))
    raw_header = None
    if head is not None:
        raw_header = _header_raw(head, la_list, child_codes[1], codes, date_cache)
        head.columns.clear()
    n_child = max(len(child_words), 1)
    key = la_idx.astype(np.int64) * n_child + child
    header_frame = None
    if raw_header is not None:
        header_frame = _header_frame(raw_header, la_list, child_words, child_dtype, n_child)
        _check_in_header(epi, key, years, has_year, raw_header, n_child)

    order, fixed_dec, fixed_rec, fix_flag, counts, by_la = _clean(
        key=key,
        la=la_idx,
        decom=decom,
        dec=dec,
        year=years,
        rne=cols["RNE"][0] if "RNE" in cols else None,
        rec=cols["REC"][0] if "REC" in cols else None,
        rne_codes=codes.codes("RNE"),
        rec_codes=codes.codes("REC"),
        n_la=len(la_list),
        on_quality=on_quality,
        locator=epi.locator,
    )
    if header_frame is not None:
        dob = (
            pd.Series(
                A.from_datetime64(header_frame["dob"].to_numpy()),
                index=header_frame["child_key"].to_numpy(),
            )
            .reindex(key[order])
            .to_numpy()
        )
        bad = np.flatnonzero((dob != A.NO_DATE) & (decom[order] < dob))
        if len(bad):
            i = int(order[bad[0]])
            raise epi.locator.error(
                f"episode starts ({_show(decom[i])}) before the child's date of birth "
                f"({_show(int(dob[bad[0]]))})",
                i,
                "DECOM",
            )

    frame: dict[str, object] = {
        "la_code": pd.Categorical.from_codes(la_idx[order], categories=la_list),
        "child": pd.Categorical.from_codes(child[order], dtype=child_dtype),
        "decom": A.to_datetime64(decom[order]),
        "dec": A.to_datetime64(fixed_dec),
    }
    for name in ("RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "REC", "REASON_PLACE_CHANGE"):
        if name in cols:
            values, valid = cols[name]
            values = fixed_rec if name == "REC" else values[order]
            frame[name.lower()] = pd.Categorical.from_codes(values, categories=valid)
    for name, (raw, words) in text.items():
        frame[name.lower()] = pd.Categorical.from_codes(
            raw[order], categories=pd.Index(words, dtype=object)
        )
    if has_year:
        frame["year"] = pd.array(years[order], dtype="Int16")
    else:
        frame["year"] = pd.array(np.zeros(len(order), dtype=np.int16), dtype="Int16")
        frame["year"][:] = pd.NA
    frame["fix"] = pd.Categorical.from_codes(fix_flag, categories=list(FIX_FLAGS))
    frame["child_key"] = key[order]
    episodes = pd.DataFrame(frame)

    coverage = _coverage(la_idx, la_list, years, has_year, decom, dec)
    if not has_year:
        notes.append(
            "no YEAR information: each LA's data are taken as one return for the year of its "
            "latest date"
        )
    quality = DataQualityReport(
        counts=counts,
        by_la=pd.DataFrame(by_la, index=pd.Index(la_list, name="la_code")).reset_index(),
        rows_read=n,
        episodes_kept=len(episodes),
        notes=notes,
    )
    return EpisodeData(episodes, header_frame, quality, coverage, source, synthetic)


def _check_dates(
    epi: _Pieces,
    decom: np.ndarray,
    dec: np.ndarray,
    years: np.ndarray,
    has_year: bool,
    rec: np.ndarray | None,
) -> None:
    if rec is not None:
        bad = np.flatnonzero((rec >= 0) & (dec == A.NO_DATE))
        if len(bad):
            raise epi.locator.error(
                "REC given but DEC is blank (episode still open)" + _more(bad), int(bad[0]), "REC"
            )
        bad = np.flatnonzero((rec == -1) & (dec != A.NO_DATE))
        if len(bad):
            raise epi.locator.error("DEC given but REC is blank" + _more(bad), int(bad[0]), "REC")
    bad = np.flatnonzero((dec != A.NO_DATE) & (dec < decom))
    if len(bad):
        i = int(bad[0])
        raise epi.locator.error(
            f"DEC {_show(dec[i])} is before DECOM {_show(decom[i])}" + _more(bad), i, "DEC"
        )
    if has_year:
        end = A.year_end_day(years)
        for name, values in (("DECOM", decom), ("DEC", dec)):
            bad = np.flatnonzero((values != A.NO_DATE) & (values > end))
            if len(bad):
                i = int(bad[0])
                raise epi.locator.error(
                    f"{name} {_show(values[i])} is after the end of the return year "
                    f"{years[i]} (31 March {years[i]})" + _more(bad),
                    i,
                    name,
                )


def _more(rows: np.ndarray) -> str:
    return f" ({len(rows) - 1} more rows)" if len(rows) > 1 else ""


def _show(day: int) -> str:
    return (A.EPOCH + dt.timedelta(days=int(day))).strftime("%d/%m/%Y")


def _coverage(
    la_idx: np.ndarray,
    la_list: list[str],
    years: np.ndarray,
    has_year: bool,
    decom: np.ndarray,
    dec: np.ndarray,
) -> pd.DataFrame:
    rows = []
    if has_year:
        seen = np.zeros((len(la_list), 2101 - 1990), dtype=bool)
        seen[la_idx, years - 1990] = True
        for k, code in enumerate(la_list):
            ys = np.flatnonzero(seen[k]) + 1990
            rows.append((code, int(ys.min()), int(ys.max()), len(ys), False, tuple(map(int, ys))))
    else:
        latest = np.maximum(decom, np.where(dec == A.NO_DATE, decom, dec))
        fy = A.financial_year(latest)
        for k, code in enumerate(la_list):
            y = int(fy[la_idx == k].max())
            rows.append((code, y, y, 1, True, (y,)))
    return pd.DataFrame(
        rows,
        columns=["la_code", "first_year", "last_year", "n_years", "years_inferred", "years"],
    )


@dataclass
class _HeaderRaw:
    pieces: _Pieces
    la: np.ndarray
    child: np.ndarray
    year: np.ndarray
    has_year: bool
    sex: tuple[np.ndarray, tuple[str, ...]]
    ethnic: tuple[np.ndarray, tuple[str, ...]]
    dob: np.ndarray
    mc_dob: np.ndarray
    text: dict[str, tuple[np.ndarray, np.ndarray]]


def _header_raw(
    head: _Pieces,
    la_list: list[str],
    child: np.ndarray,
    codes: CodeLists,
    date_cache: dict[str, int | None],
) -> _HeaderRaw:
    years, has_year = _years(head)
    la_idx_h, la_list_h = _la_codes(head, years)
    position = {c: i for i, c in enumerate(la_list)}
    remap = np.array([position.get(c, -1) for c in la_list_h] + [-1], dtype=np.int64)
    la_idx = remap[la_idx_h]
    blank = np.flatnonzero(child == -1)
    if len(blank):
        raise head.locator.error("missing CHILD identifier", int(blank[0]), "CHILD")
    sex = _codes(head, "SEX", "SEX", codes, required=True)
    ethnic = _codes(head, "ETHNIC", "ETHNIC", codes, required=True)
    dob = _dates(head, "DOB", date_cache)
    blank = np.flatnonzero(dob == A.NO_DATE)
    if len(blank):
        raise head.locator.error("missing DOB (date of birth)", int(blank[0]), "DOB")
    mc_dob = _dates(head, "MC_DOB", date_cache)
    text = {}
    for name in ("UPN", "MOTHER"):
        if name in head.columns:
            (raw,), words = _text_codes(name, head)
            text[name] = (raw, words)
    return _HeaderRaw(head, la_idx, child, years, has_year, sex, ethnic, dob, mc_dob, text)


def _header_keys(raw: _HeaderRaw, n_child: int) -> tuple[np.ndarray, np.ndarray]:
    key = np.where(raw.la >= 0, raw.la * n_child + raw.child, -1)
    yr = np.where(raw.year > 0, raw.year, 0).astype(np.int64)
    return key, yr


def _header_frame(
    raw: _HeaderRaw,
    la_list: list[str],
    child_words: np.ndarray,
    child_dtype: pd.CategoricalDtype,
    n_child: int,
) -> pd.DataFrame:
    key, yr = _header_keys(raw, n_child)
    full = key * 4096 + (yr % 4096)
    order = np.argsort(full, kind="stable")
    dup = np.flatnonzero(full[order][1:] == full[order][:-1])
    if len(dup):
        i = int(order[dup[0] + 1])
        raise raw.pieces.locator.error(
            f"child {child_words[raw.child[i]]!r} is listed twice in the header of one return",
            i,
            "CHILD",
        )
    order = np.lexsort((-yr, key))
    keep = order[A.group_starts(key[order])]
    keep = keep[key[keep] >= 0]
    frame = pd.DataFrame(
        {
            "la_code": pd.Categorical.from_codes(raw.la[keep], categories=la_list),
            "child": pd.Categorical.from_codes(raw.child[keep], dtype=child_dtype),
            "sex": pd.Categorical.from_codes(raw.sex[0][keep], categories=raw.sex[1]),
            "dob": A.to_datetime64(raw.dob[keep]),
            "ethnic": pd.Categorical.from_codes(raw.ethnic[0][keep], categories=raw.ethnic[1]),
        }
    )
    for name, (codes_, words) in raw.text.items():
        frame[name.lower()] = pd.Categorical.from_codes(
            codes_[keep], categories=pd.Index(words, dtype=object)
        )
    frame["mc_dob"] = A.to_datetime64(raw.mc_dob[keep])
    frame["year"] = pd.array(yr[keep], dtype="Int16")
    if not raw.has_year:
        frame["year"] = pd.array([pd.NA] * len(keep), dtype="Int16")
    frame["child_key"] = key[keep]
    return frame.sort_values("child_key", kind="stable").reset_index(drop=True)


def _check_in_header(
    epi: _Pieces,
    key: np.ndarray,
    years: np.ndarray,
    has_year: bool,
    raw: _HeaderRaw,
    n_child: int,
) -> None:
    hkey, hyear = _header_keys(raw, n_child)
    if has_year and raw.has_year:
        ek = key * 4096 + (years.astype(np.int64) % 4096)
        hk = hkey * 4096 + (hyear % 4096)
        where = "in the header of the same return"
    else:
        ek, hk = key, hkey
        where = "in the header"
    hk = np.sort(hk)
    pos = np.clip(np.searchsorted(hk, ek), 0, max(len(hk) - 1, 0))
    found = hk[pos] == ek if len(hk) else np.zeros(len(ek), dtype=bool)
    missing = np.flatnonzero(~found)
    if len(missing):
        i = int(missing[0])
        children = len(np.unique(ek[missing]))
        more = f" ({children - 1} more children)" if children > 1 else ""
        raise epi.locator.error(f"child has episodes but no row {where}" + more, i, "CHILD")


# ============================================================================ cleaning
def _clean(
    *,
    key: np.ndarray,
    la: np.ndarray,
    decom: np.ndarray,
    dec: np.ndarray,
    year: np.ndarray,
    rne: np.ndarray | None,
    rec: np.ndarray | None,
    rne_codes: tuple[str, ...],
    rec_codes: tuple[str, ...],
    n_la: int,
    on_quality: QualityMode,
    locator: _Locator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int], dict[str, np.ndarray]]:
    """Sort, de-duplicate and fix episodes (pure; see the module docstring for the rules).

    Returns the kept rows' original positions (sorted by child and start), their end dates,
    REC codes and fix flags, the issue counts and the counts by LA.
    """
    n = len(key)
    if n == 0:
        empty = np.array([], dtype=np.int64)
        zero = {k: 0 for k in QUALITY_ISSUES}
        return (
            empty,
            dec[:0],
            np.array([], np.int16),
            np.array([], np.int8),
            zero,
            {k: np.zeros(n_la, np.int64) for k in QUALITY_ISSUES},
        )
    yr = np.where(year > 0, year, 0).astype(np.int64)
    day0 = int(decom.min())
    composite = (key * (1 << 17) + (decom.astype(np.int64) - day0)) * 256 + (255 - (yr % 256))
    if (decom.astype(np.int64) - day0).max() >= (1 << 17):
        order = np.lexsort((-yr, decom, key))
    else:
        order = np.argsort(composite)
    k_s, d_s, y_s = key[order], decom[order], yr[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = (k_s[1:] == k_s[:-1]) & (d_s[1:] == d_s[:-1])
    same_year = same.copy()
    same_year[1:] &= y_s[1:] == y_s[:-1]
    carried = same & ~same_year
    dups = same_year
    if dups.any():
        # within one return keep the episode ending latest (open = latest): reorder each run
        dec_s = dec[order].astype(np.int64)
        end_rank = np.where(dec_s == A.NO_DATE, np.iinfo(np.int64).max, dec_s)
        run_start = np.flatnonzero(~same_year)
        run_id = np.cumsum(~same_year) - 1
        best = np.full(len(run_start), -1, dtype=np.int64)
        best_val = np.full(len(run_start), np.iinfo(np.int64).min, dtype=np.int64)
        idx = np.arange(n)
        # process the runs that contain duplicates only
        dup_runs = np.unique(run_id[dups])
        in_dup = np.isin(run_id, dup_runs)
        for i in idx[in_dup]:
            r = run_id[i]
            if end_rank[i] > best_val[r]:
                best_val[r], best[r] = end_rank[i], i
        for r in dup_runs:
            j = run_start[r]
            if best[r] != j:
                order[[j, best[r]]] = order[[best[r], j]]
        if on_quality == "raise":
            i = int(order[np.flatnonzero(dups)[0]])
            raise locator.error(
                "two episodes of this child start on the same day in one return",
                i,
                "DECOM",
            )
    keep = ~same
    counts = {"carried_over": int(carried.sum()), "duplicate_episode": int(dups.sum())}
    by_la = {
        "carried_over": np.bincount(la[order[carried]], minlength=n_la),
        "duplicate_episode": np.bincount(la[order[dups]], minlength=n_la),
    }
    order = order[keep]
    m = len(order)
    k_s = key[order]
    d_s = decom[order].astype(np.int64)
    e_s = dec[order].astype(np.int64)
    y_s = yr[order]
    r_s = rec[order].copy() if rec is not None else np.full(m, -1, dtype=np.int16)
    fix = np.zeros(m, dtype=np.int8)
    has_next = np.zeros(m, dtype=bool)
    has_next[:-1] = k_s[1:] == k_s[:-1]
    next_start = np.empty(m, dtype=np.int64)
    next_start[:-1] = d_s[1:]
    next_start[-1] = 0
    open_ = e_s == A.NO_DATE
    open_not_last = open_ & has_next
    overlap = has_next & ~open_ & (e_s > next_start)
    lost = np.zeros(m, dtype=bool)
    if (y_s > 0).any():
        la_s = la[order]
        last_year = np.zeros(n_la, dtype=np.int64)
        np.maximum.at(last_year, la_s, y_s)
        lost = open_ & ~has_next & (y_s > 0) & (y_s < last_year[la_s])
    if on_quality == "raise":
        for name, mask, col in (
            ("overlap", overlap, "DEC"),
            ("open_not_last", open_not_last, "DEC"),
            ("open_lost", lost, "DEC"),
        ):
            if mask.any():
                raise locator.error(
                    QUALITY_ISSUES[name][0], int(order[np.flatnonzero(mask)[0]]), col
                )
    s_code = rne_codes.index("S")
    x1 = rec_codes.index(CONTINUES_REC)
    if open_not_last.any():
        pos = np.flatnonzero(open_not_last)
        e_s[pos] = next_start[pos]
        if rne is not None:
            next_rne = rne[order][pos + 1]
            r_s[pos] = np.where(next_rne == s_code, -1, x1)
        else:
            r_s[pos] = x1
        fix[pos] = FIX_FLAGS.index("open_not_last")
    if overlap.any():
        pos = np.flatnonzero(overlap)
        e_s[pos] = next_start[pos]
        fix[pos] = FIX_FLAGS.index("overlap")
    if lost.any():
        pos = np.flatnonzero(lost)
        e_s[pos] = A.year_end_day(y_s[pos])
        fix[pos] = FIX_FLAGS.index("open_lost")
    la_s = la[order]
    for name, mask in (("overlap", overlap), ("open_not_last", open_not_last), ("open_lost", lost)):
        counts[name] = int(mask.sum())
        by_la[name] = np.bincount(la_s[mask], minlength=n_la)
    return order, e_s.astype(np.int32), r_s.astype(np.int16), fix, counts, by_la
