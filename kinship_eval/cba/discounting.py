"""Green Book discounting: the declining social time preference rate and present values.

The schedule is data (``inputs/green_book_discount_rates.csv``), not code. Year 0 is the first
year of the appraisal and is undiscounted; the discount factor of year ``t`` compounds the rate of
each year ``1..t`` in turn, so that with the standard schedule

* ``D(t) = 1.035 ** -t`` for ``t <= 30``,
* ``D(t) = 1.035 ** -30 * 1.03 ** -(t - 30)`` for ``31 <= t <= 75``, and so on down the bands.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from kinship_eval.cba._inputs import input_table
from kinship_eval.errors import InputError

DISCOUNT_FILE = "green_book_discount_rates.csv"


@dataclass(frozen=True)
class RateBand:
    """One band of a discount schedule: ``rate`` applies to years ``year_from..year_to``."""

    year_from: int
    year_to: int | None
    rate: float

    def covers(self, year: int) -> bool:
        return year >= self.year_from and (self.year_to is None or year <= self.year_to)


@dataclass(frozen=True)
class DiscountSchedule:
    """A (possibly declining) schedule of annual discount rates.

    Parameters
    ----------
    name
        Name of the schedule (``standard``, ``health``, ``long_horizon_test`` or a custom label).
    bands
        Contiguous bands starting at year 0; the last band may be open-ended (``year_to=None``).
    source
        Citation of the schedule.
    """

    name: str
    bands: tuple[RateBand, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("a discount schedule needs at least one band")
        expected = 0
        for i, band in enumerate(self.bands):
            if band.year_from != expected:
                raise ValueError(
                    f"schedule {self.name!r}: band {i + 1} starts at year {band.year_from}, "
                    f"expected {expected} (bands must be contiguous from year 0)"
                )
            if not band.rate > -1:
                raise ValueError(f"schedule {self.name!r}: rate {band.rate} must exceed -1")
            if band.year_to is None:
                if i != len(self.bands) - 1:
                    raise ValueError(f"schedule {self.name!r}: only the last band may be open")
                break
            if band.year_to < band.year_from:
                raise ValueError(f"schedule {self.name!r}: band {i + 1} ends before it starts")
            expected = band.year_to + 1

    # ------------------------------------------------------------------ constructors
    @classmethod
    def load(cls, name: str = "standard", path: str | Path | None = None) -> DiscountSchedule:
        """Read a named schedule from the bundled Green Book file (or from ``path``).

        Parameters
        ----------
        name
            ``standard`` (STPR 3.5% declining), ``health`` (1.5% declining) or
            ``long_horizon_test`` (the 2026 edition's sensitivity test).
        path
            Optional CSV with columns ``schedule, year_from, year_to, rate[, source]``.
        """
        if path is None:
            table = input_table(DISCOUNT_FILE)
            label: str | Path = DISCOUNT_FILE
        else:
            label = Path(path)
            try:
                table = pd.read_csv(io.StringIO(Path(path).read_text(encoding="utf-8")))
            except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read discount schedule: {exc}", file=label) from None
        for col in ("schedule", "year_from", "year_to", "rate"):
            if col not in table.columns:
                raise InputError("required column missing", file=label, column=col)
        rows = table.loc[table["schedule"] == name].sort_values("year_from")
        if rows.empty:
            known = ", ".join(dict.fromkeys(table["schedule"].astype(str)))
            raise InputError(f"no discount schedule named {name!r}; known: {known}", file=label)
        bands = tuple(
            RateBand(
                int(r.year_from),
                None if pd.isna(r.year_to) else int(r.year_to),
                float(r.rate),
            )
            for r in rows.itertuples()
        )
        source = str(rows["source"].iloc[0]) if "source" in rows.columns else ""
        return cls(name, bands, source)

    @classmethod
    def constant(cls, rate: float, name: str | None = None) -> DiscountSchedule:
        """A single constant rate for every year (for checks and sensitivity tests)."""
        return cls(name or f"constant {rate:.2%}", (RateBand(0, None, float(rate)),))

    # ------------------------------------------------------------------ queries
    def rate(self, year: int) -> float:
        """The discount rate that applies to ``year`` (the step from ``year - 1`` to ``year``)."""
        if year < 0:
            raise ValueError("years are counted from 0")
        for band in self.bands:
            if band.covers(year):
                return band.rate
        return self.bands[-1].rate  # past the last closed band: keep its rate

    def rates(self, n_years: int) -> npt.NDArray[np.float64]:
        """Rates for years ``0..n_years - 1``."""
        return np.array([self.rate(t) for t in range(n_years)], dtype=float)

    def factors(self, n_years: int) -> npt.NDArray[np.float64]:
        """Discount factors for years ``0..n_years - 1``; year 0 is 1 (undiscounted).

        The factor compounds the rate of each year in turn:
        ``D(t) = D(t - 1) / (1 + r(t))``.
        """
        if n_years < 0:
            raise ValueError("n_years must be >= 0")
        if n_years == 0:
            return np.zeros(0)
        growth = 1.0 + self.rates(n_years)
        growth[0] = 1.0
        return 1.0 / np.cumprod(growth)

    def factor(self, year: int) -> float:
        """The discount factor of one year."""
        return float(self.factors(year + 1)[-1])

    def table(self, years: Sequence[int] | None = None) -> pd.DataFrame:
        """A ``year, rate, discount_factor`` table (default years 0..30)."""
        ys = list(range(31)) if years is None else [int(y) for y in years]
        f = self.factors(max(ys) + 1)
        return pd.DataFrame(
            {"year": ys, "rate": [self.rate(y) for y in ys], "discount_factor": f[ys]}
        )

    def describe(self) -> str:
        """One line per band, e.g. ``years 0-30: 3.5%``."""
        parts = []
        for b in self.bands:
            end = "+" if b.year_to is None else f"-{b.year_to}"
            parts.append(f"years {b.year_from}{end}: {b.rate:.3%}".replace("00%", "%"))
        return "; ".join(parts)


def present_value(
    flows: npt.ArrayLike,
    schedule: DiscountSchedule | str | None = None,
) -> float | npt.NDArray[np.float64]:
    """Present value of flows indexed by year (year 0 first).

    Parameters
    ----------
    flows
        A 1-D sequence (one flow per year) or an array whose last axis is years (e.g. Monte Carlo
        draws x years), in real prices of the base year.
    schedule
        A :class:`DiscountSchedule`, the name of a bundled one, or ``None`` for ``standard``.

    Returns
    -------
    float or ndarray
        A float for 1-D flows, else an array over the leading axes.
    """
    sched = resolve_schedule(schedule)
    arr = np.asarray(flows, dtype=float)
    if arr.ndim == 0:
        raise ValueError("flows must be indexed by year")
    pv = arr @ sched.factors(arr.shape[-1])
    return float(pv) if arr.ndim == 1 else pv


def resolve_schedule(schedule: DiscountSchedule | str | None) -> DiscountSchedule:
    """A :class:`DiscountSchedule` from a schedule, a bundled schedule's name, or ``None``."""
    if schedule is None:
        return DiscountSchedule.load("standard")
    if isinstance(schedule, DiscountSchedule):
        return schedule
    return DiscountSchedule.load(str(schedule))


def annuity_factor(rate: float, n_years: int) -> float:
    """PV of 1 a year for years ``0..n_years - 1`` at a constant ``rate`` (year 0 undiscounted).

    The closed form ``(1 - (1 + r) ** -n) / r * (1 + r)``; ``n`` when ``r == 0``.
    """
    if rate == 0:
        return float(n_years)
    return (1 - (1 + rate) ** -n_years) / rate * (1 + rate)


__all__ = [
    "DiscountSchedule",
    "RateBand",
    "annuity_factor",
    "present_value",
    "resolve_schedule",
]
