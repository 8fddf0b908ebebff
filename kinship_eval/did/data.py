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

import numpy as np
import pandas as pd

from kinship_eval.errors import DataWarning, EstimationError, InputError


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

    @property
    def units(self) -> np.ndarray:
        return np.sort(self.frame["unit"].unique())

    @property
    def periods(self) -> np.ndarray:
        return np.sort(self.frame["time"].unique())

    @property
    def cohorts(self) -> np.ndarray:
        """Treatment cohorts (first treated periods), excluding never-treated."""
        g = self.frame["g"].unique()
        return np.sort(g[g > 0])

    @property
    def n_units(self) -> int:
        return int(self.frame["unit"].nunique())

    @property
    def n_treated_units(self) -> int:
        return int(self.frame.loc[self.frame["g"] > 0, "unit"].nunique())

    @property
    def n_periods(self) -> int:
        return int(self.frame["time"].nunique())

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
        When a column is missing, not numeric, or (unit, time) pairs repeat.
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
    frame = pd.DataFrame(
        {
            "unit": data[unit].to_numpy(),
            "time": _as_numeric(data, time, source),
            "y": _as_numeric(data, outcome, source, allow_missing=allow_missing_outcome),
            "g": _as_numeric(data, first_treated, source, allow_missing=True),
        }
    )
    frame["g"] = frame["g"].fillna(0)
    if (frame["time"] % 1 != 0).any():
        raise InputError("time periods must be whole numbers", file=source, column=time)
    frame["time"] = frame["time"].astype(int)
    if (frame["g"] % 1 != 0).any():
        raise InputError(
            "first treated periods must be whole numbers", file=source, column=first_treated
        )
    frame["g"] = frame["g"].astype(int)
    for col in covariates:
        frame[col] = _as_numeric(data, col, source)
    if weights:
        frame["weight"] = _as_numeric(data, weights, source)
    dup = frame.duplicated(["unit", "time"], keep=False)
    if dup.any():
        first = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            f"duplicate unit and period ({frame['unit'].iloc[first]}, {frame['time'].iloc[first]})",
            file=source,
            row=first + 2,
            column=unit,
        )
    varying = frame.groupby("unit")["g"].nunique()
    if (varying > 1).any():
        bad = varying[varying > 1].index[0]
        raise InputError(
            f"first treated period varies within unit {bad}", file=source, column=first_treated
        )
    frame = frame.sort_values(["unit", "time"], kind="stable").reset_index(drop=True)
    out = DiDData(
        frame=frame,
        outcome=outcome,
        unit_col=unit,
        time_col=time,
        group_col=first_treated,
        covariates=tuple(covariates),
    )
    if out.n_treated_units == 0:
        raise EstimationError(
            "no treated units: every first-treated value is 0, missing, or after the last period"
        )
    if out.n_treated_units == out.n_units:
        raise EstimationError(
            "no comparison units: every unit is treated at some point (use a not-yet-treated "
            "comparison with an estimator that supports it, or add never-treated units)"
        )
    last = int(frame["time"].max())
    if (out.cohorts > last).all():
        raise EstimationError(
            "no post-treatment period: the first treated periods "
            f"({', '.join(map(str, out.cohorts))}) are all after the last period in the data "
            f"({last})"
        )
    first_period = int(frame["time"].min())
    always = frame.loc[(frame["g"] > 0) & (frame["g"] <= first_period), "unit"].unique()
    if len(always):
        warnings.warn(
            f"{len(always)} unit(s) are treated from the first period "
            f"({', '.join(map(str, always[:5]))}{' ...' if len(always) > 5 else ''}): they have no "
            "pre-treatment period and add nothing to identification",
            DataWarning,
            stacklevel=2,
        )
    return out


def _as_numeric(
    data: pd.DataFrame, col: str, source: str, *, allow_missing: bool = False
) -> np.ndarray:
    values = pd.to_numeric(data[col], errors="coerce")
    bad = values.isna() & data[col].notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"expected a number, found {data[col].iloc[first]!r}",
            file=source,
            row=first + 2,
            column=col,
        )
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise InputError(
            f"not a finite number: {data[col].iloc[first]!r}",
            file=source,
            row=first + 2,
            column=col,
        )
    if not allow_missing and values.isna().any():
        first = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise InputError("missing value", file=source, row=first + 2, column=col)
    return values.to_numpy(dtype=float)
