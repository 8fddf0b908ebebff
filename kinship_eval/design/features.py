"""Pre-period summaries of each LA: the variables that comparison groups are chosen and judged on.

For every variable (an outcome or a covariate of the LA x year panel) and every LA,
:func:`pre_period_features` computes over the pre-period years

* ``level`` -- the mean of the years observed, and
* ``trend`` -- the ordinary least-squares slope on the year (change per year), from at least two
  observed years.

Matching on both makes the comparison LAs resemble the pilots where difference-in-differences needs
it: parallel trends are more plausible between LAs that moved alike before the pilot, and similar
levels guard against regression to the mean and floor effects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kinship_eval.design.specs import Feature
from kinship_eval.errors import InputError

FEATURES: tuple[Feature, ...] = ("level", "trend")
_SEP = "__"


def feature_name(variable: str, feature: str) -> str:
    """Column name of one feature of one variable (``"<variable>__<feature>"``)."""
    return f"{variable}{_SEP}{feature}"


def split_feature_name(name: str) -> tuple[str, str]:
    """``(variable, feature)`` of a column made by :func:`feature_name`."""
    variable, _, feature = name.rpartition(_SEP)
    if not variable:
        return name, ""
    return variable, feature


def feature_label(name: str) -> str:
    """Plain-language label of a feature column, for tables and charts."""
    variable, feature = split_feature_name(name)
    if feature == "level":
        return f"{variable}, pre-period mean"
    if feature == "trend":
        return f"{variable}, pre-period trend (per year)"
    return name


def pre_period_features(
    data: pd.DataFrame,
    *,
    variables: Sequence[str],
    unit: str = "la_code",
    time: str = "period",
    periods: tuple[int, int] | None = None,
    features: Sequence[Feature] = FEATURES,
) -> pd.DataFrame:
    """Pre-period level and trend of each variable for each unit.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    variables
        Numeric columns to summarise.
    unit, time
        Column names.
    periods
        ``(first, last)`` period of the pre-period window (inclusive); ``None`` uses every period
        in ``data``.
    features
        ``"level"`` (mean) and/or ``"trend"`` (OLS slope per period).

    Returns
    -------
    pandas.DataFrame
        Indexed by unit (sorted), one column per variable and feature named by
        :func:`feature_name`. Missing where a unit has no observed year (level) or fewer than two
        (trend).
    """
    for col in (unit, time, *variables):
        if col not in data.columns:
            raise InputError("column not found", file="panel", column=col)
    bad = [f for f in features if f not in FEATURES]
    if bad:
        raise InputError(f"unknown feature {bad[0]!r}; choose from {', '.join(FEATURES)}")
    frame = data[[unit, time, *variables]].copy()
    frame[time] = pd.to_numeric(frame[time])
    if periods is not None:
        lo, hi = periods
        frame = frame.loc[(frame[time] >= lo) & (frame[time] <= hi)]
    if frame.empty:
        raise InputError(f"no rows in the pre-period window {periods}", file="panel", column=time)
    units = np.sort(frame[unit].unique())
    out = pd.DataFrame(index=pd.Index(units, name=unit))
    t = frame[time].to_numpy(dtype=float)
    codes = pd.Index(units).get_indexer(frame[unit])
    for var in variables:
        y = pd.to_numeric(frame[var], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(y)
        n = np.bincount(codes[ok], minlength=len(units)).astype(float)
        sum_y = np.bincount(codes[ok], weights=y[ok], minlength=len(units))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_y = sum_y / n
        if "level" in features:
            out[feature_name(var, "level")] = np.where(n > 0, mean_y, np.nan)
        if "trend" in features:
            sum_t = np.bincount(codes[ok], weights=t[ok], minlength=len(units))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_t = sum_t / n
                dt = t[ok] - mean_t[codes[ok]]
                dy = y[ok] - mean_y[codes[ok]]
                sxy = np.bincount(codes[ok], weights=dt * dy, minlength=len(units))
                sxx = np.bincount(codes[ok], weights=dt * dt, minlength=len(units))
                slope = sxy / sxx
            out[feature_name(var, "trend")] = np.where((n >= 2) & (sxx > 0), slope, np.nan)
    return out
