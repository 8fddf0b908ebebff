"""LA x year measures in long form: the input the Panel is built from.

Columns: ``period`` (year ending 31 March), ``la_code`` (9-character ONS code as published that
year), ``old_la_code``, ``la_name``, ``measure``, ``value`` (empty when not published), ``status``
(``published`` or the reason it is missing: ``suppressed``, ``not_available`` ...), ``source``.
The bundled file is built from real DfE/ONS releases by ``scripts/build_default_data.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kinship_eval.data.bundled import bundled_path
from kinship_eval.data.geography import Geography
from kinship_eval.data.schemas import MEASURES, validate
from kinship_eval.data.tables import read_table
from kinship_eval.errors import InputError

#: Counts of children, by measure name, with their plain-language label.
COUNT_MEASURES: dict[str, str] = {
    "sgo_exits": "Children leaving care through a special guardianship order",
    "sgo_exits_kin": "Children leaving care through an SGO to relatives or friends",
    "cao_exits": "Children leaving care through a child arrangements (or residence) order",
    "cla_exits": "Children who ceased to be looked after",
    "cla_starts": "Children who started to be looked after",
    "cla_31mar": "Children looked after at 31 March",
    "cla_foster": "Looked-after children in foster placements at 31 March",
    "kinship_foster": "Looked-after children fostered by relatives or friends at 31 March",
}
#: Measures that are not counts of children (kept as covariates, never turned into rates).
OTHER_MEASURES: dict[str, str] = {
    "population_0_17": "Children aged 0-17 (ONS mid-year estimate)",
    "foster_unit_cost_weekly": "LA fostering unit cost, £ per child per week (S251)",
    "cla_spend_total": "Total LA spend on children looked after, £ (S251)",
}


def read_measures(
    path: str | Path | None = None, geography: Geography | None = None
) -> pd.DataFrame:
    """Read and validate a long LA-measures file (the bundled real data by default)."""
    file = Path(path) if path else bundled_path("la_measures.csv")
    frame = read_table(file, required=["period", "la_code", "measure", "value", "status"])
    frame["period"] = _int_column(frame, "period", file)
    raw = frame["value"].replace("", None)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"expected a number, found {raw.iloc[i]!r}", file=file, row=i + 2, column="value"
        )
    frame["value"] = values.astype(float)
    negative = frame["value"] < 0
    if negative.any():
        i = int(np.flatnonzero(negative.to_numpy())[0])
        raise InputError(
            f"negative count {frame['value'].iloc[i]:g}", file=file, row=i + 2, column="value"
        )
    known = set(COUNT_MEASURES) | set(OTHER_MEASURES)
    unknown = ~frame["measure"].isin(known)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(
            f"unknown measure {frame['measure'].iloc[i]!r}; known: {', '.join(sorted(known))}",
            file=file,
            row=i + 2,
            column="measure",
        )
    frame = validate(frame, MEASURES, file=file)
    if geography is not None:
        codes = geography.known_codes
        unknown_code = ~frame["la_code"].isin(codes)
        if unknown_code.any():
            i = int(np.flatnonzero(unknown_code.to_numpy())[0])
            raise InputError(
                f"unknown or retired LA code {frame['la_code'].iloc[i]!r}",
                file=file,
                row=i + 2,
                column="la_code",
            )
    return frame


def _int_column(frame: pd.DataFrame, col: str, file: Path) -> pd.Series:
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna() | (values % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"expected a whole number, found {frame[col].iloc[i]!r}",
            file=file,
            row=i + 2,
            column=col,
        )
    return values.astype(int)
