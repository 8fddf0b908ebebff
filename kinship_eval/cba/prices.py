"""Real prices: converting cash amounts to the price base year with the GDP deflator.

The Green Book appraises in real prices of a stated base year, converting nominal values with the
HM Treasury GDP deflator series (ONS outturn + OBR forecast). The series is bundled as
``inputs/gdp_deflators.csv`` (financial years, with each value's status and source).

Years are financial years. They can be given as ``"2024-25"``, ``"2024/25"`` or as an integer,
which - following the package's panel convention - is the year *ending* 31 March (``2025`` means
2024-25).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from kinship_eval.cba._inputs import input_table
from kinship_eval.errors import InputError

DEFLATOR_FILE = "gdp_deflators.csv"
_FY = re.compile(r"^\s*(\d{4})\s*[-/]\s*(\d{2}|\d{4})\s*$")

YearLike = str | int


def financial_year(year: YearLike) -> str:
    """Normalise a financial year to ``"YYYY-YY"``.

    Parameters
    ----------
    year
        ``"2024-25"``, ``"2024/25"``, ``"2024-2025"`` or an int year ending 31 March (``2025``).

    Examples
    --------
    >>> financial_year(2025), financial_year("2024/25")
    ('2024-25', '2024-25')
    """
    if isinstance(year, (int, np.integer)) and not isinstance(year, bool):
        end = int(year)
        return f"{end - 1}-{end % 100:02d}"
    match = _FY.match(str(year))
    if not match:
        raise ValueError(f"not a financial year: {year!r} (expected e.g. '2024-25' or 2025)")
    start, end = int(match.group(1)), match.group(2)
    end_full = int(end) if len(end) == 4 else (start // 100) * 100 + int(end)
    if end_full < start:
        end_full += 100
    if end_full != start + 1:
        raise ValueError(f"not a financial year: {year!r} (the years must be consecutive)")
    return f"{start}-{end_full % 100:02d}"


def year_start(year: YearLike) -> int:
    """Calendar year in which a financial year starts (``"2024-25"`` -> 2024)."""
    return int(financial_year(year)[:4])


def shift_year(year: YearLike, n: int) -> str:
    """The financial year ``n`` years after ``year``."""
    start = year_start(year) + n
    return f"{start}-{(start + 1) % 100:02d}"


@dataclass(frozen=True)
class Deflators:
    """A GDP deflator index by financial year.

    Attributes
    ----------
    index
        Deflator values indexed by ``"YYYY-YY"``.
    status
        ``outturn`` or ``forecast`` for each year.
    source
        Citation of the series (the release it comes from).
    """

    index: pd.Series
    status: pd.Series
    source: str = ""

    @classmethod
    def load(cls, path: str | Path | None = None) -> Deflators:
        """Read the bundled deflator series (or a CSV with ``financial_year, index``)."""
        if path is None:
            table = input_table(DEFLATOR_FILE)
            label: str | Path = DEFLATOR_FILE
        else:
            label = Path(path)
            try:
                table = pd.read_csv(path, dtype={"financial_year": str})
            except (OSError, pd.errors.ParserError) as exc:
                raise InputError(f"cannot read deflators: {exc}", file=label) from None
        for col in ("financial_year", "index"):
            if col not in table.columns:
                raise InputError("required column missing", file=label, column=col)
        years = [financial_year(y) for y in table["financial_year"]]
        values = pd.to_numeric(table["index"], errors="coerce")
        if values.isna().any() or (values <= 0).any():
            row = int(np.flatnonzero(values.isna() | (values <= 0))[0]) + 2
            raise InputError("deflator must be a positive number", file=label, row=row)
        if "status" in table.columns:
            status = table["status"].astype(str).to_numpy(dtype=object)
        else:
            status = np.full(len(years), "outturn", dtype=object)
        source = str(table["source"].iloc[-1]) if "source" in table.columns else ""
        return cls(
            pd.Series(values.to_numpy(float), index=years, name="gdp_deflator"),
            pd.Series(status, index=years, name="status"),
            source,
        )

    def value(self, year: YearLike) -> float:
        """The deflator of one financial year."""
        fy = financial_year(year)
        if fy not in self.index.index:
            raise InputError(
                f"no GDP deflator for {fy}; the series covers "
                f"{self.index.index[0]} to {self.index.index[-1]}",
                file=DEFLATOR_FILE,
            )
        return float(self.index[fy])

    def factor(self, price_year: YearLike, base_year: YearLike) -> float:
        """Multiplier converting ``price_year`` cash to ``base_year`` real prices."""
        return self.value(base_year) / self.value(price_year)

    def is_forecast(self, year: YearLike) -> bool:
        """Whether the deflator of ``year`` is an OBR forecast rather than outturn."""
        return str(self.status.get(financial_year(year), "")).lower() == "forecast"

    def rebased(self, base_year: YearLike) -> pd.Series:
        """The index rebased so that ``base_year`` = 100."""
        return self.index / self.value(base_year) * 100


_DEFAULT: Deflators | None = None


def default_deflators() -> Deflators:
    """The bundled HM Treasury GDP deflator series (read once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Deflators.load()
    return _DEFAULT


def to_real(
    amount: float | npt.ArrayLike,
    price_year: YearLike,
    base_year: YearLike,
    deflators: Deflators | None = None,
) -> float | npt.NDArray[np.float64]:
    """Convert cash amounts of ``price_year`` to real prices of ``base_year``.

    ``real = amount x deflator(base_year) / deflator(price_year)``.

    Parameters
    ----------
    amount
        A cash amount (or array of amounts) in ``price_year`` prices.
    price_year, base_year
        Financial years (see :func:`financial_year`).
    deflators
        The deflator series; the bundled HM Treasury series by default.
    """
    d = deflators or default_deflators()
    f = d.factor(price_year, base_year)
    if np.ndim(amount) == 0:
        return float(amount) * f  # type: ignore[arg-type]
    return np.asarray(amount, dtype=float) * f


def real_prices(
    table: pd.DataFrame,
    base_year: YearLike,
    *,
    value_columns: tuple[str, ...] = ("value", "low", "high"),
    price_year_column: str = "price_year",
    deflators: Deflators | None = None,
) -> pd.DataFrame:
    """Add ``<col>_real`` columns converting each row's values to ``base_year`` prices.

    Rows without a price year (e.g. shares or hours) are copied unchanged.
    """
    d = deflators or default_deflators()
    out = table.copy()
    factors = []
    for py in out[price_year_column]:
        factors.append(1.0 if pd.isna(py) or str(py).strip() == "" else d.factor(py, base_year))
    f = np.asarray(factors, dtype=float)
    for col in value_columns:
        if col in out.columns:
            out[f"{col}_real"] = pd.to_numeric(out[col], errors="coerce").to_numpy(float) * f
    out["price_base_year"] = financial_year(base_year)
    return out
