"""Reading small CSV tables (registers, specs' inputs) with clear errors for malformed files."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from kinship_eval.errors import InputError


def read_table(path: str | Path, *, required: Iterable[str] = ()) -> pd.DataFrame:
    """Read a comma-separated UTF-8 table as strings, checking encoding, delimiter and columns.

    Raises
    ------
    InputError
        File missing or empty, not UTF-8, not comma-delimited, or a required column absent.
    """
    file = Path(path)
    if not file.exists():
        raise InputError("file not found", file=file)
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            file=file,
            row=line,
        ) from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("the file is empty", file=file)
    header = lines[0]
    if "," not in header:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in header:
                raise InputError(
                    f"columns are separated by {name}, expected commas", file=file, row=1
                )
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InputError(f"malformed CSV: {exc}", file=file) from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"required column missing; found: {', '.join(frame.columns)}",
            file=file,
            column=missing[0],
        )
    if frame.empty:
        raise InputError("the file has a header but no rows", file=file)
    for col in frame.columns:
        frame[col] = frame[col].str.strip()
    return frame


def read_csv_frame(path: str | Path) -> pd.DataFrame:
    """Read a data CSV (numbers parsed), with the same encoding and delimiter checks."""
    file = Path(path)
    read_table(file)  # encoding, delimiter, empty-file checks with clear errors
    return pd.read_csv(file, encoding="utf-8-sig")
