"""Tests for the table of statistical symbols and the cell parsers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kinship_eval.data.symbols import (
    PUBLISHED,
    REASONS,
    SFR_SYMBOLS,
    SYMBOLS,
    is_number,
    parse_series,
    parse_value,
)
from kinship_eval.errors import InputError

# Every symbol with the reason it must give (written out here, independently of the module).
EXPECTED = {
    "c": "suppressed",
    "x": "not_available",
    "z": "not_applicable",
    "low": "low",
    "k": "low",
    "~": "low",
    "u": "low_reliability",
    ":": "not_available",
    "..": "not_available",
    "-": "nil_or_not_available",
    ".": "not_available",
    "": "missing",
}


@pytest.mark.parametrize(("symbol", "reason"), sorted(EXPECTED.items()))
def test_every_symbol_gives_its_reason_and_no_number(symbol: str, reason: str) -> None:
    value, got = parse_value(symbol)
    assert got == reason
    assert math.isnan(value)


def test_symbol_table_is_exactly_the_documented_one() -> None:
    assert dict(SYMBOLS) == EXPECTED
    assert dict(SFR_SYMBOLS) == {**EXPECTED, "x": "suppressed_or_not_available"}
    assert set(EXPECTED.values()) | {"suppressed_or_not_available"} == set(REASONS)
    assert PUBLISHED not in REASONS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12.0),
        ("0", 0.0),
        ("1,234", 1234.0),
        ("12,345,678", 12345678.0),
        ("-3.5", -3.5),
        ("+4", 4.0),
        (".5", 0.5),
        ("1.5E-05", 1.5e-05),
        ("  7 ", 7.0),
        (42, 42.0),
        (2.25, 2.25),
    ],
)
def test_published_numbers_have_no_reason(raw: object, expected: float) -> None:
    value, reason = parse_value(raw)
    assert reason is None
    assert value == pytest.approx(expected)


def test_zero_is_a_true_zero_and_low_is_not() -> None:
    assert parse_value("0") == (0.0, None)
    value, reason = parse_value("low")
    assert reason == "low"
    assert math.isnan(value)


@pytest.mark.parametrize("raw", [None, float("nan"), pd.NA, "   "])
def test_blank_and_missing_cells_are_missing(raw: object) -> None:
    value, reason = parse_value(raw)
    assert reason == "missing"
    assert math.isnan(value)


def test_symbols_ignore_case_and_white_space() -> None:
    assert parse_value(" C ")[1] == "suppressed"
    assert parse_value("LOW")[1] == "low"


def test_sfr_table_reads_x_as_suppression() -> None:
    assert parse_value("x", symbols=SFR_SYMBOLS)[1] == "suppressed_or_not_available"
    assert parse_value("x")[1] == "not_available"


@pytest.mark.parametrize("raw", ["many", "1,23", "12abc", "#VALUE!", "£5", "1 234", "6:2", "n/a"])
def test_anything_else_is_an_input_error(raw: str) -> None:
    with pytest.raises(InputError, match="expected a number or a statistical symbol"):
        parse_value(raw)


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(InputError):
        parse_value(True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("1,000", True), ("1,00", False), ("-", False), (".", False), ("", False)],
)
def test_is_number(text: str, expected: bool) -> None:
    assert is_number(text) is expected


def test_parse_series_values_and_reasons() -> None:
    cells = pd.Series(
        ["5", "c", "2,345", "", "low", "z", "0", "k", "u", "..", "-", ".", ":", "~", "x"],
        index=range(10, 25),
        name="number",
    )
    values, reasons = parse_series(cells)
    assert values.dtype == np.float64
    assert isinstance(reasons.dtype, pd.StringDtype)
    assert list(values.index) == list(cells.index)
    assert values[10] == 5.0
    assert values[12] == 2345.0
    assert values[16] == 0.0
    for i in (10, 12, 16):
        assert pd.isna(reasons[i])
    expected = {
        11: "suppressed",
        13: "missing",
        14: "low",
        15: "not_applicable",
        17: "low",
        18: "low_reliability",
        19: "not_available",
        20: "nil_or_not_available",
        21: "not_available",
        22: "not_available",
        23: "low",
        24: "not_available",
    }
    for i, reason in expected.items():
        assert reasons[i] == reason
        assert np.isnan(values[i])  # a symbol is never read as a number, 0 included


def test_parse_series_error_names_file_line_and_column() -> None:
    cells = pd.Series(["1", "2", "three", "c", "four"], name="number")
    with pytest.raises(InputError) as caught:
        parse_series(cells, file="data.csv")
    err = caught.value
    assert err.file == "data.csv"
    assert err.row == 4  # header on line 1, first cell on line 2
    assert err.column == "number"
    assert "'three'" in err.message
    assert "1 more" in err.message


def test_parse_series_uses_given_line_numbers() -> None:
    cells = pd.Series(["1", "bad"])
    with pytest.raises(InputError) as caught:
        parse_series(cells, file="f.csv", column="rate", rows=[7, 19])
    assert (caught.value.row, caught.value.column) == (19, "rate")


def test_parse_series_with_sfr_symbols() -> None:
    _, reasons = parse_series(pd.Series(["x", "3"]), symbols=SFR_SYMBOLS)
    assert reasons.tolist()[0] == "suppressed_or_not_available"
    assert pd.isna(reasons.tolist()[1])


def test_parse_series_numeric_input_marks_nan_as_missing() -> None:
    values, reasons = parse_series(pd.Series([1.0, np.nan, 3.0]))
    assert values.tolist()[0] == 1.0
    assert reasons.tolist()[1] == "missing"
    assert pd.isna(reasons.tolist()[0])
