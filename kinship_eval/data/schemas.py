"""pandera schemas for the package's tables, and their translation into clear input errors.

Each schema states the contract of one table. :func:`validate` runs a schema lazily and, when it
fails, raises one :class:`~kinship_eval.errors.InputError` naming the file, the (1-based, header =
1) row and the column of the first failure, with a count of any others.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from kinship_eval.data.geography import LA_CODE_PATTERN
from kinship_eval.errors import InputError

#: Stable-unit codes: a 9-character ONS code, or the combined pseudo-code of harmonised units.
UNIT_CODE_PATTERN = r"^E\d{8}( / E\d{8})*$"

PILOT_REGISTER = pa.DataFrameSchema(
    {
        "la_code": pa.Column(str, pa.Check.str_matches(LA_CODE_PATTERN), unique=True),
        "start_date": pa.Column("datetime64[ns]", nullable=False),
        "first_treated_period": pa.Column("Int64", pa.Check.in_range(1990, 2100), nullable=True),
        "arm": pa.Column(str, nullable=True, required=False),
        "weekly_allowance": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
    },
    strict=False,
    coerce=False,
    name="pilot register",
)

COMPARISON_REGISTER = pa.DataFrameSchema(
    {"la_code": pa.Column(str, pa.Check.str_matches(LA_CODE_PATTERN), unique=True)},
    strict=False,
    name="comparison register",
)

POPULATION = pa.DataFrameSchema(
    {
        "la_code": pa.Column(str, pa.Check.str_matches(LA_CODE_PATTERN)),
        "period": pa.Column(int, pa.Check.in_range(1990, 2100)),
        "population_0_17": pa.Column(float, pa.Check.gt(0), nullable=True),
    },
    unique=["la_code", "period"],
    strict=False,
    name="child population",
)

MEASURES = pa.DataFrameSchema(
    {
        "period": pa.Column(int, pa.Check.in_range(1990, 2100)),
        "la_code": pa.Column(str, pa.Check.str_matches(LA_CODE_PATTERN)),
        "measure": pa.Column(str),
        "value": pa.Column(float, pa.Check.ge(0), nullable=True),
        "status": pa.Column(str),
    },
    checks=[
        pa.Check(
            lambda d: ~(d["value"].notna() & d["status"].ne("published")),
            element_wise=False,
            error="a value is given where status says it is not published",
        ),
        pa.Check(
            lambda d: ~(d["value"].isna() & d["status"].eq("published")),
            element_wise=False,
            error="status 'published' but the value is missing",
        ),
    ],
    unique=["period", "la_code", "measure"],
    strict=False,
    name="LA measures",
)


def panel_schema(count_columns: list[str], rate_columns: dict[str, str]) -> pa.DataFrameSchema:
    """The Panel contract (DESIGN.md) for a panel with the given count and rate columns.

    Parameters
    ----------
    count_columns
        Count columns: non-negative, missing only with a ``<col>_status`` reason.
    rate_columns
        Rate column -> the count column it is derived from (per 10,000 children 0-17).
    """
    columns: dict[str, pa.Column] = {
        "la_code": pa.Column(str, pa.Check.str_matches(UNIT_CODE_PATTERN)),
        "la_name": pa.Column(str),
        "region": pa.Column(str),
        "period": pa.Column(int, pa.Check.in_range(1990, 2100)),
        "population_0_17": pa.Column(float, pa.Check.gt(0), nullable=True),
        "pilot": pa.Column(bool),
        "first_treated": pa.Column("Int64", nullable=True),
        "illustrative": pa.Column(bool),
    }
    for col in count_columns:
        columns[col] = pa.Column(float, pa.Check.ge(0), nullable=True)
        columns[f"{col}_status"] = pa.Column(str)
    for rate in rate_columns:
        columns[rate] = pa.Column(float, pa.Check.ge(0), nullable=True)

    def rates_consistent(frame: pd.DataFrame) -> pd.Series:
        ok = pd.Series(True, index=frame.index)
        for rate, count in rate_columns.items():
            expected = frame[count] / frame["population_0_17"] * 10_000
            both = frame[rate].notna() & expected.notna()
            close = (frame[rate] - expected).abs() <= 1e-6 * (1 + expected.abs())
            ok &= ~both | close
            ok &= frame[rate].isna() | expected.notna()
        return ok

    def missing_has_reason(frame: pd.DataFrame) -> pd.Series:
        ok = pd.Series(True, index=frame.index)
        for col in count_columns:
            ok &= frame[col].notna() | frame[f"{col}_status"].ne("published")
        return ok

    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(rates_consistent, error="rate per 10,000 inconsistent with count/population"),
            pa.Check(missing_has_reason, error="missing count without a status reason"),
            pa.Check(
                lambda d: ~d["pilot"] | d["first_treated"].notna(),
                error="pilot LA without a first treated period",
            ),
        ],
        unique=["la_code", "period"],
        strict=False,
        name="Panel",
    )


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, *, file: str | Path) -> pd.DataFrame:
    """Validate ``frame`` against ``schema``; raise an :class:`InputError` on the first failure.

    The frame's index is assumed to be the 0-based data-row position (as ``pd.read_csv`` gives),
    so row numbers in messages are file line numbers with the header as line 1.
    """
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        first = cases.iloc[0]
        raise InputError(
            _describe(first) + (f" (and {len(cases) - 1} more problems)" if len(cases) > 1 else ""),
            file=file,
            row=_row(first.get("index")),
            column=_column(
                first.get("failure_case")
                if str(first.get("check")) == "column_in_dataframe"
                else first.get("column")
            ),
        ) from None
    except SchemaError as exc:  # pragma: no cover - non-lazy path
        raise InputError(str(exc), file=file) from None


def _describe(case: pd.Series) -> str:
    check = str(case.get("check"))
    failure = case.get("failure_case")
    if check == "column_in_dataframe":
        return "required column is missing"
    if check.startswith("dtype"):
        return f"wrong type: expected {check.removeprefix('dtype(').rstrip(')')}, found {failure}"
    if check == "field_uniqueness" or "unique" in check:
        return f"duplicate value {failure!r}"
    if check == "not_nullable":
        return "missing value"
    return f"failed check {check}: {failure!r}"


def _row(index: object) -> int | None:
    try:
        return int(index) + 2  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _column(column: object) -> str | None:
    if column is None or (isinstance(column, float) and pd.isna(column)):
        return None
    text = str(column)
    return None if text in ("", "None", "nan") else text
