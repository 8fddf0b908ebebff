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
    """
    if time not in data.columns or first_treated not in data.columns:
        return data, None, []
    g = pd.to_numeric(data[first_treated], errors="coerce")
    t = pd.to_numeric(data[time], errors="coerce")
    if (g.isna() & data[first_treated].notna()).any() or t.isna().any() or len(t) == 0:
        return data, None, []
    g = g.fillna(0.0)
    late = g > t.max() + anticipation
    g = g.where(~late, 0.0)
    notes: list[str] = []
    if late.any():
        notes.append("units first treated after the last period are treated as never treated")
    treated = g > 0
    if not treated.any() or (not last_as_control and (g <= 0).any()):
        if late.any():
            return data.assign(**{first_treated: g.to_numpy()}), None, notes
        return data, None, notes
    last = int(g[treated].max())
    if (g[treated] == last).all():
        reason = "asked for the last-treated cohort as" if last_as_control else "no never-treated"
        raise EstimationError(
            f"no comparison units: {reason} comparison, but every treated unit is in that one "
            f"cohort ({last}), so no cohort is left to compare with it"
        )
    keep = (t < last - anticipation).to_numpy()
    out = data.loc[keep].copy()
    out[first_treated] = g[keep].where(g[keep] != last, 0.0).to_numpy()
    reason = "as requested" if last_as_control else "there are no never-treated units"
    notes.append(
        f"the last-treated cohort ({last}) is the comparison group ({reason}); "
        f"periods from {last - anticipation} on are dropped"
    )
    return out, last, notes
