"""Panel conventions shared by the staggered-adoption estimators.

:func:`recode_cohorts` is applied to the caller's table before
:func:`kinship_eval.did.data.prepare` validates it:

* cohorts first treated after the last period (plus anticipation) are never treated within the
  panel and are recoded as never treated (first treated = 0), as R ``did`` does;
* when the last-treated cohort has to serve as the comparison group (no never-treated units, or
  asked for), the periods from its first treated period (less anticipation) on are dropped and the
  cohort is recoded as never treated: within the remaining periods it is untreated, so every
  estimator's comparisons are unchanged by the recoding (R ``did`` does the same for
  ``nevertreated``; for ``notyettreated`` it keeps the cohort's label but never estimates it).

The array helpers below (sums of rows within groups, renumbering of codes, codes of integer pairs)
let the estimators work on NumPy arrays between the validated panel and their result frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from kinship_eval.errors import EstimationError


def plain(value: Any) -> Any:
    """Nested lists/dicts with numpy scalars turned into Python values and NaN into ``None``.

    Keeps ``DiDResults.extra`` valid strict JSON for the command line's ``--json`` output.
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def recode_cohorts(
    data: pd.DataFrame,
    *,
    time: str,
    first_treated: str,
    anticipation: int = 0,
    last_as_control: bool = False,
) -> tuple[pd.DataFrame, int | None, list[str]]:
    """Apply the cohort conventions; return the table, the last cohort used as control, notes.

    The table is returned unchanged when its columns are missing or not numeric, so that
    :func:`~kinship_eval.did.data.prepare` reports the problem with the original row numbers.
    A recoded first-treated column keeps the type the column has as numbers.
    """
    if time not in data.columns or first_treated not in data.columns:
        return data, None, []
    cohorts = _numbers(data[first_treated])
    times = _numbers(data[time])
    if cohorts is None or times is None:
        return data, None, []
    g, dtype = cohorts
    t = times[0]
    if len(t) == 0 or np.isnan(t).any():
        return data, None, []
    missing = np.isnan(g)
    if missing.any():
        g = np.where(missing, 0.0, g)
    late = g > t.max() + anticipation
    notes: list[str] = []
    if late.any():
        g = np.where(late, 0.0, g)
        notes.append("units first treated after the last period are treated as never treated")
    treated = g > 0
    if not treated.any() or (not last_as_control and not treated.all()):
        if late.any():
            return data.assign(**{first_treated: g.astype(dtype)}), None, notes
        return data, None, notes
    last = int(g[treated].max())
    if (g[treated] == last).all():
        reason = "asked for the last-treated cohort as" if last_as_control else "no never-treated"
        raise EstimationError(
            f"no comparison units: {reason} comparison, but every treated unit is in that one "
            f"cohort ({last}), so no cohort is left to compare with it"
        )
    keep = t < last - anticipation
    kept = g[keep]
    out = data.loc[keep].assign(**{first_treated: np.where(kept != last, kept, 0.0).astype(dtype)})
    reason = "as requested" if last_as_control else "there are no never-treated units"
    notes.append(
        f"the last-treated cohort ({last}) is the comparison group ({reason}); "
        f"periods from {last - anticipation} on are dropped"
    )
    return out, last, notes


def _numbers(column: pd.Series) -> tuple[np.ndarray, np.dtype] | None:
    """A column as floats (NaN where missing) and the NumPy type of its numbers.

    ``None`` when a present value is not a number.
    """
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return column.to_numpy(dtype=float), dtype
    numbers = pd.to_numeric(column, errors="coerce")
    if (numbers.isna() & column.notna()).any():
        return None
    return (
        numbers.to_numpy(dtype=float, na_value=np.nan),
        numbers.fillna(0).to_numpy().dtype,
    )


def group_rows(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the rows of an ``N x k`` matrix within groups coded ``0..n_groups-1``.

    One :func:`numpy.bincount` over the flattened matrix; each group's rows are added in row
    order.

    Returns
    -------
    numpy.ndarray
        ``n_groups x k`` sums.
    """
    n, k = values.shape
    if k == 0 or n == 0:
        return np.zeros((n_groups, k))
    keys = (np.asarray(codes, dtype=np.intp)[:, None] * k + np.arange(k)).ravel()
    sums = np.bincount(
        keys, weights=np.asarray(values, dtype=float).ravel(), minlength=n_groups * k
    )
    return sums.reshape(n_groups, k)


def column_totals(values: np.ndarray) -> np.ndarray:
    """Sum each column of an ``N x k`` matrix, adding the rows one after another in order."""
    return group_rows(values, np.zeros(values.shape[0], dtype=np.intp), 1)[0]


def compact_codes(codes: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes ``0..n_levels-1`` of which only some occur as ``0..m-1``, keeping their order.

    Returns
    -------
    (new codes, the old code of each new one)
    """
    present = np.bincount(codes, minlength=n_levels) > 0
    position = np.cumsum(present) - 1
    return position[codes], np.flatnonzero(present)


def pair_codes(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (first, second) integer pairs, sorted by first then second, and each row's pair.

    Returns
    -------
    (first of each pair, second of each pair, code of each row's pair)
    """
    if len(first) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.intp)
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    low = second.min()
    span = int(second.max() - low) + 1
    keys, inverse = np.unique((first - first.min()) * span + (second - low), return_inverse=True)
    return keys // span + first.min(), keys % span + low, inverse.ravel()
