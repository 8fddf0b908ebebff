"""Reading the versioned appraisal input files shipped in ``kinship_eval/cba/inputs/``.

Every value the appraisal uses by default lives in one of these CSV files with its source, price
year and evidence strength (see ``inputs/README.md``). They are package data, read through
:mod:`importlib.resources` so that they work from an installed wheel as well as a source tree.
"""

from __future__ import annotations

import io
from functools import cache
from importlib import resources

import pandas as pd

from kinship_eval.errors import InputError

INPUT_FILES = (
    "green_book_discount_rates.csv",
    "gdp_deflators.csv",
    "unit_costs.csv",
    "allowance_rates.csv",
    "optimism_bias.csv",
    "additionality.csv",
    "cost_of_public_funds.csv",
    "pilot_las.csv",
    "pilot_parameters.csv",
    "age_mix.csv",
    "outcome_values.csv",
)


def input_text(name: str) -> str:
    """The text of one bundled input file."""
    if name not in INPUT_FILES and name != "README.md":
        raise InputError(
            f"unknown appraisal input file; known: {', '.join(INPUT_FILES)}", file=name
        )
    ref = resources.files("kinship_eval.cba").joinpath("inputs", name)
    try:
        return ref.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("bundled appraisal input file is missing", file=name) from None


@cache
def _read(name: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(input_text(name)), dtype={"financial_year": str})
    check_sources(frame, name)
    return frame


def check_sources(frame: pd.DataFrame, name: str) -> None:
    """Every value of an appraisal input must name its source: a row without one is an error."""
    if "source" not in frame.columns:
        raise InputError("every input table needs a 'source' column", file=name, column="source")
    missing = frame["source"].isna() | frame["source"].astype(str).str.strip().eq("")
    if missing.any():
        i = int(missing.to_numpy().nonzero()[0][0])
        raise InputError("value without a source", file=name, row=i + 2, column="source")


def input_table(name: str) -> pd.DataFrame:
    """A bundled input table (a fresh copy: callers may modify it)."""
    return _read(name).copy()


def unit_cost(item: str) -> pd.Series:
    """One row of ``unit_costs.csv`` by its ``item`` key."""
    table = _read("unit_costs.csv")
    row = table.loc[table["item"] == item]
    if row.empty:
        raise InputError(f"no unit cost named {item!r}", file="unit_costs.csv", column="item")
    return row.iloc[0]


def pilot_parameter(name: str) -> pd.Series:
    """One row of ``pilot_parameters.csv`` by its ``parameter`` key."""
    table = _read("pilot_parameters.csv")
    row = table.loc[table["parameter"] == name]
    if row.empty:
        raise InputError(f"no pilot parameter named {name!r}", file="pilot_parameters.csv")
    return row.iloc[0]


def outcome_value(item: str) -> pd.Series:
    """One row of ``outcome_values.csv`` by its ``item`` key."""
    table = _read("outcome_values.csv")
    row = table.loc[table["item"] == item]
    if row.empty:
        raise InputError(f"no outcome value named {item!r}", file="outcome_values.csv")
    return row.iloc[0]
