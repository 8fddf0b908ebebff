"""Validated long-panel input shared by every estimator.

Every estimator takes a long DataFrame (one row per unit and period) and the names of its unit,
time, outcome and first-treated columns. :func:`prepare` checks it once, in one place, and returns a
:class:`DiDData` with the conventions the estimators rely on:

* ``first_treated`` is the first treated period; ``0`` or missing means never treated (stored as 0),
  following R ``did``;
* periods are integers (e.g. the year ending 31 March);
* the outcome is numeric and, unless ``allow_missing_outcome``, complete;
* (unit, time) pairs are unique.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from kinship_eval.errors import DataWarning, EstimationError, InputError


@dataclass(frozen=True)
class PanelCodes:
    """Integer codes of the units and periods of a prepared panel.

    Attributes
    ----------
    unit, time
        Codes ``0..U-1`` and ``0..T-1`` of every row, in the sorted order of the labels.
    units, periods
        The sorted unit labels and periods (``units[unit]`` is each row's unit).
    """

    unit: np.ndarray
    time: np.ndarray
    units: np.ndarray
    periods: np.ndarray

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_periods(self) -> int:
        return len(self.periods)


@dataclass(frozen=True)
class DiDData:
    """A validated long panel, sorted by unit then time.

    Attributes
    ----------
    frame
        Columns ``unit``, ``time``, ``y``, ``g`` (first treated period, 0 = never), the covariates
        under their own names, and ``weight`` when weights were given.
    outcome, unit_col, time_col, group_col
        The caller's column names, for labelling results.
    covariates
        Covariate column names.
    """

    frame: pd.DataFrame
    outcome: str
    unit_col: str
    time_col: str
    group_col: str
    covariates: tuple[str, ...] = ()

    @cached_property
    def codes(self) -> PanelCodes:
        """Integer codes of the units and periods of ``frame`` (computed once)."""
        unit, units = pd.factorize(self.frame["unit"].to_numpy(), sort=True)
        time, periods = pd.factorize(self.frame["time"].to_numpy(), sort=True)
        return PanelCodes(
            unit=unit.astype(np.intp),
            time=time.astype(np.intp),
            units=np.asarray(units),
            periods=np.asarray(periods),
        )

    @property
    def units(self) -> np.ndarray:
        return self.codes.units.copy()

    @property
    def periods(self) -> np.ndarray:
        return self.codes.periods.copy()

    @property
    def cohorts(self) -> np.ndarray:
        """Treatment cohorts (first treated periods), excluding never-treated."""
        g = self.frame["g"].to_numpy()
        return np.unique(g[g > 0])

    @property
    def n_units(self) -> int:
        return self.codes.n_units

    @property
    def n_treated_units(self) -> int:
        codes = self.codes
        treated = codes.unit[self.frame["g"].to_numpy() > 0]
        return int(np.count_nonzero(np.bincount(treated, minlength=codes.n_units)))

    @property
    def n_periods(self) -> int:
        return self.codes.n_periods

    @property
    def sizes(self) -> dict[str, int]:
        """``n_units``, ``n_treated_units`` and ``n_periods``, the size fields of
        :class:`~kinship_eval.did.results.DiDResults`."""
        return {
            "n_units": self.n_units,
            "n_treated_units": self.n_treated_units,
            "n_periods": self.n_periods,
        }

    @property
    def is_balanced(self) -> bool:
        return len(self.frame) == self.n_units * self.n_periods

    def treated_indicator(self, anticipation: int = 0) -> pd.Series:
        """1 where a unit is treated in a period (``time >= g - anticipation`` and ``g > 0``)."""
        g = self.frame["g"]
        return ((g > 0) & (self.frame["time"] >= g - anticipation)).astype(float)

    def wide(self, column: str = "y") -> pd.DataFrame:
        """Units x periods matrix of ``column``."""
        return self.frame.pivot(index="unit", columns="time", values=column)


def prepare(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    covariates: Sequence[str] = (),
    weights: str | None = None,
    allow_missing_outcome: bool = False,
    source: str = "panel",
) -> DiDData:
    """Validate a long panel and return it in the estimators' conventions.

    Raises
    ------
    InputError
        When a column is missing, not numeric, a unit is missing, or (unit, time) pairs repeat.
    EstimationError
        When there are no treated or no never/not-yet treated units.
    """
    needed = [unit, time, outcome, first_treated, *covariates]
    if weights:
        needed.append(weights)
    for col in needed:
        if col not in data.columns:
            raise InputError(
                f"column not found; available columns: {', '.join(map(str, data.columns))}",
                file=source,
                column=col,
            )
    times = _as_numeric(data, time, source)
    y = _as_numeric(data, outcome, source, allow_missing=allow_missing_outcome)
    g = _as_numeric(data, first_treated, source, allow_missing=True)
    g = np.where(np.isnan(g), 0.0, g)
    if np.any(times % 1 != 0):
        raise InputError("time periods must be whole numbers", file=source, column=time)
    if np.any(g % 1 != 0):
        raise InputError(
            "first treated periods must be whole numbers", file=source, column=first_treated
        )
    columns: dict[str, np.ndarray] = {
        "unit": data[unit].to_numpy(),
        "time": times.astype(int),
        "y": y,
        "g": g.astype(int),
    }
    for col in covariates:
        columns[col] = _as_numeric(data, col, source)
    if weights:
        columns["weight"] = _as_numeric(data, weights, source)
    order, codes = _panel_order(
        columns["unit"], columns["time"], columns["g"], source, unit, first_treated
    )
    if order is not None:
        columns = {name: values[order] for name, values in columns.items()}
    out = DiDData(
        frame=pd.DataFrame(columns),
        outcome=outcome,
        unit_col=unit,
        time_col=time,
        group_col=first_treated,
        covariates=tuple(covariates),
    )
    out.__dict__["codes"] = codes  # the cached property, already computed while validating
    _check_design(out)
    return out


def _panel_order(
    units: np.ndarray,
    times: np.ndarray,
    g: np.ndarray,
    source: str,
    unit: str,
    first_treated: str,
) -> tuple[np.ndarray | None, PanelCodes]:
    """Row order that sorts the panel by unit then time (``None`` when already sorted), and the
    unit and period codes of the sorted rows.

    Raises
    ------
    InputError
        On a missing unit, a repeated (unit, time) pair, or a first treated period that varies
        within a unit.
    """
    unit_codes, labels = pd.factorize(units, sort=True)
    if (unit_codes < 0).any():
        first = int(np.flatnonzero(unit_codes < 0)[0])
        raise InputError("missing value", file=source, row=first + 2, column=unit)
    time_codes, periods = pd.factorize(times, sort=True)
    key = unit_codes.astype(np.int64) * max(len(periods), 1) + time_codes
    order = None
    if np.any(key[1:] <= key[:-1]):
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        same = sorted_key[1:] == sorted_key[:-1]
        if same.any():
            involved = np.zeros(len(key), dtype=bool)
            involved[order[1:][same]] = True
            involved[order[:-1][same]] = True
            first = int(np.flatnonzero(involved)[0])
            raise InputError(
                f"duplicate unit and period ({units[first]}, {times[first]})",
                file=source,
                row=first + 2,
                column=unit,
            )
    sorted_units = unit_codes if order is None else unit_codes[order]
    sorted_g = g if order is None else g[order]
    varies = (sorted_units[1:] == sorted_units[:-1]) & (sorted_g[1:] != sorted_g[:-1])
    if varies.any():
        bad = labels[sorted_units[1:][varies].min()]
        raise InputError(
            f"first treated period varies within unit {bad}", file=source, column=first_treated
        )
    sorted_times = time_codes if order is None else time_codes[order]
    codes = PanelCodes(
        unit=sorted_units.astype(np.intp),
        time=sorted_times.astype(np.intp),
        units=np.asarray(labels),
        periods=np.asarray(periods),
    )
    return order, codes


def _check_design(panel: DiDData) -> None:
    """Treated and comparison units, a post-treatment period; warn on always-treated units."""
    n_treated = panel.n_treated_units
    if n_treated == 0:
        raise EstimationError(
            "no treated units: every first-treated value is 0, missing, or after the last period"
        )
    if n_treated == panel.n_units:
        raise EstimationError(
            "no comparison units: every unit is treated at some point (use a not-yet-treated "
            "comparison with an estimator that supports it, or add never-treated units)"
        )
    codes = panel.codes
    g = panel.frame["g"].to_numpy()
    last = int(codes.periods[-1])
    cohorts = panel.cohorts
    if (cohorts > last).all():
        raise EstimationError(
            "no post-treatment period: the first treated periods "
            f"({', '.join(map(str, cohorts))}) are all after the last period in the data "
            f"({last})"
        )
    first_period = int(codes.periods[0])
    always = codes.units[np.unique(codes.unit[(g > 0) & (g <= first_period)])]
    if len(always):
        warnings.warn(
            f"{len(always)} unit(s) are treated from the first period "
            f"({', '.join(map(str, always[:5]))}{' ...' if len(always) > 5 else ''}): they have no "
            "pre-treatment period and add nothing to identification",
            DataWarning,
            stacklevel=3,
        )


def _as_numeric(
    data: pd.DataFrame, col: str, source: str, *, allow_missing: bool = False
) -> np.ndarray:
    column = data[col]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
        values = column.to_numpy(dtype=float)
        if column.dtype.kind == "f":
            _check_finite(column, values, col, source, allow_missing=allow_missing)
        return values
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"expected a number, found {column.iloc[first]!r}",
            file=source,
            row=first + 2,
            column=col,
        )
    values = numbers.to_numpy(dtype=float)
    _check_finite(column, values, col, source, allow_missing=allow_missing)
    return values


def _check_finite(
    column: pd.Series, values: np.ndarray, col: str, source: str, *, allow_missing: bool
) -> None:
    """Reject infinite values, and missing ones unless ``allow_missing``."""
    finite = np.isfinite(values)
    if finite.all():
        return
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise InputError(
            f"not a finite number: {column.iloc[first]!r}",
            file=source,
            row=first + 2,
            column=col,
        )
    if not allow_missing:
        first = int(np.flatnonzero(~finite)[0])
        raise InputError("missing value", file=source, row=first + 2, column=col)
