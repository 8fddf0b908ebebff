"""Small vectorised functions on dates held as integer days since 1970-01-01."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

#: Missing date in an integer-days array.
NO_DATE = np.iinfo(np.int32).min
EPOCH = dt.date(1970, 1, 1)


def day_number(value: str | dt.date | pd.Timestamp) -> int:
    """Days since 1970-01-01 of a date (ISO string, date or Timestamp)."""
    ts = pd.Timestamp(value)
    return int((ts.normalize() - pd.Timestamp(EPOCH)).days)


def to_datetime64(days: np.ndarray) -> np.ndarray:
    """Integer days (``NO_DATE`` = missing) to ``datetime64[s]`` with NaT."""
    out = days.astype(np.int64) * 86_400
    out[days == NO_DATE] = np.iinfo(np.int64).min
    return out.view("datetime64[s]")


def from_datetime64(values: np.ndarray | pd.Series) -> np.ndarray:
    """``datetime64`` values (NaT allowed) to integer days with ``NO_DATE`` for missing."""
    arr = np.asarray(values).astype("datetime64[D]")
    out = arr.astype(np.int64)
    missing = np.isnat(arr)
    out[missing] = NO_DATE
    return out.astype(np.int32)


def year_month(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar year and month (1-12) of integer days (no missing values)."""
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months // 12 + 1970, months % 12 + 1


def _financial_year(days: np.ndarray) -> np.ndarray:
    year, month = year_month(days)
    return year + (month >= 4)


def financial_year(days: np.ndarray) -> np.ndarray:
    """Year ending 31 March that contains each day (e.g. 2026-04-01 -> 2027)."""
    return _by_table(days, _financial_year)


def _by_table(days: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a calendar function through a lookup table over the range of ``days`` (fast for
    millions of days spanning a few decades)."""
    days = np.asarray(days)
    if days.size < 100_000:
        return fn(days)
    lo, hi = int(days.min()), int(days.max())
    if hi - lo > 200_000:
        return fn(days)
    table = fn(np.arange(lo, hi + 1, dtype=np.int64))
    return table[days - lo]


def _quarter_number(days: np.ndarray) -> np.ndarray:
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return (months // 12 + 1970) * 4 + (months % 12) // 3


def quarter_number(days: np.ndarray) -> np.ndarray:
    """Consecutive calendar-quarter number ``year * 4 + quarter - 1`` of each day."""
    return _by_table(days, _quarter_number)


def quarter_end_day(quarter: np.ndarray | int) -> np.ndarray:
    """Last day (integer days) of consecutive quarter numbers."""
    q = np.asarray(quarter, dtype=np.int64)
    first_month_next = (q // 4 - 1970) * 12 + (q % 4) * 3 + 3
    return first_month_next.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1


def quarter_start_day(quarter: np.ndarray | int) -> np.ndarray:
    """First day (integer days) of consecutive quarter numbers."""
    q = np.asarray(quarter, dtype=np.int64)
    first_month = (q // 4 - 1970) * 12 + (q % 4) * 3
    return first_month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def year_end_day(year: np.ndarray | int) -> np.ndarray:
    """31 March of each year (integer days)."""
    y = np.asarray(year, dtype=np.int64)
    return quarter_end_day(y * 4)


def year_start_day(year: np.ndarray | int) -> np.ndarray:
    """1 April of the year before (the first day of the year ending 31 March ``year``)."""
    y = np.asarray(year, dtype=np.int64)
    return quarter_start_day((y - 1) * 4 + 1)


def first_quarter_from(day: int) -> int:
    """The first calendar quarter that starts on or after ``day``."""
    q = int(quarter_number(np.array([day]))[0])
    return q if int(quarter_start_day(q)) == day else q + 1


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first row of each run of equal ``keys`` (sorted input)."""
    out = np.ones(len(keys), dtype=bool)
    if len(keys) > 1:
        out[1:] = keys[1:] != keys[:-1]
    return out
