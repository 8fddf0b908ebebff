"""The pilot register (which LAs pay the allowance, and from when) and the comparison register.

Pilot register (CSV)
    ``la_code`` (9-character ONS code), ``start_date`` (ISO date allowance payments begin), and
    optionally ``first_treated_period``, ``arm``, ``weekly_allowance``, ``la_name``, ``announced``,
    ``source``.

    The first treated period of an LA x year panel is the first year ending 31 March that starts on
    or after ``start_date`` (the first *full* year of payments); a part-year of payments before it
    counts as anticipation, not treatment. An explicit ``first_treated_period`` overrides the rule.
Comparison register (CSV)
    ``la_code`` and boolean flag columns (``true``/``false``, ``yes``/``no``, ``1``/``0``), e.g.
    ``pays_kinship_allowance_at_fostering_rates`` — LAs that already pay kinship carers at fostering
    rates and so contaminate the comparison group.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kinship_eval.data.bundled import bundled_path
from kinship_eval.data.geography import Geography
from kinship_eval.data.schemas import COMPARISON_REGISTER, PILOT_REGISTER, validate
from kinship_eval.data.tables import read_table
from kinship_eval.errors import InputError

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


def first_full_year(start: pd.Timestamp) -> int:
    """First year ending 31 March that begins on or after ``start``."""
    year_end = start.year + 1 if start.month >= 4 else start.year
    begins = pd.Timestamp(year=year_end - 1, month=4, day=1)
    return year_end if start <= begins else year_end + 1


def read_pilot_register(
    path: str | Path | None = None, geography: Geography | None = None
) -> pd.DataFrame:
    """Read and validate a pilot register (the bundled Kinship Zones register by default).

    Returns
    -------
    DataFrame
        One row per pilot LA with ``la_code, start_date, first_treated_period`` and the optional
        columns given.
    """
    file = Path(path) if path else bundled_path("pilot_register.csv")
    frame = read_table(file, required=["la_code", "start_date"])
    start = pd.to_datetime(frame["start_date"], errors="coerce", format="ISO8601")
    bad = start.isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"not a date (expected YYYY-MM-DD): {frame['start_date'].iloc[i]!r}",
            file=file,
            row=i + 2,
            column="start_date",
        )
    frame["start_date"] = start.astype("datetime64[ns]")
    explicit = frame.get("first_treated_period")
    derived = start.map(first_full_year)
    if explicit is not None:
        explicit_num = pd.to_numeric(explicit.replace("", None), errors="coerce")
        bad = explicit_num.isna() & explicit.ne("") & explicit.notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"expected a year, found {explicit.iloc[i]!r}",
                file=file,
                row=i + 2,
                column="first_treated_period",
            )
        derived = explicit_num.fillna(derived)
    frame["first_treated_period"] = derived.astype("Int64")
    if "weekly_allowance" in frame.columns:
        frame["weekly_allowance"] = _numeric(frame, "weekly_allowance", file)
    frame = validate(frame, PILOT_REGISTER, file=file)
    if geography is not None:
        _check_codes(frame, geography, file)
    return frame


def read_comparison_register(path: str | Path, geography: Geography | None = None) -> pd.DataFrame:
    """Read and validate a comparison register; flag columns become booleans."""
    file = Path(path)
    frame = read_table(file, required=["la_code"])
    for col in frame.columns:
        if col in ("la_code", "la_name", "notes", "source"):
            continue
        lowered = frame[col].str.strip().str.lower()
        unknown = ~lowered.isin(_TRUE | _FALSE)
        if unknown.any():
            i = int(unknown.to_numpy().nonzero()[0][0])
            raise InputError(
                f"expected true/false, found {frame[col].iloc[i]!r}",
                file=file,
                row=i + 2,
                column=col,
            )
        frame[col] = lowered.isin(_TRUE)
    frame = validate(frame, COMPARISON_REGISTER, file=file)
    if geography is not None:
        _check_codes(frame, geography, file)
    return frame


def _numeric(frame: pd.DataFrame, col: str, file: Path) -> pd.Series:
    raw = frame[col].replace("", None)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"expected a number, found {raw.iloc[i]!r}", file=file, row=i + 2, column=col
        )
    return values.astype(float)


def _check_codes(frame: pd.DataFrame, geography: Geography, file: Path) -> None:
    live = geography.las
    for i, code in enumerate(frame["la_code"]):
        row = live.loc[live["la_code"] == code]
        if not len(row):
            raise InputError(f"unknown LA code {code!r}", file=file, row=i + 2, column="la_code")
        if str(row["date_of_termination"].iloc[0]).strip():
            raise InputError(
                f"retired LA code {code!r} ({row['la_name'].iloc[0]}, ended "
                f"{row['date_of_termination'].iloc[0]}); use the successor's code",
                file=file,
                row=i + 2,
                column="la_code",
            )
