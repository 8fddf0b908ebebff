"""Bad appraisal inputs get clear errors; discounting beyond 75 years matches the closed form."""

from __future__ import annotations

import pandas as pd
import pytest

from kinship_eval.cba._inputs import check_sources
from kinship_eval.cba.appraisal import appraise, validate_flows
from kinship_eval.cba.discounting import DiscountSchedule
from kinship_eval.cba.prices import to_real
from kinship_eval.errors import InputError


def test_negative_cost_is_rejected():
    flows = pd.DataFrame({"year_index": [0, 1], "kind": ["benefit", "cost"], "amount": [5, -3]})
    with pytest.raises(InputError, match="cost must not be negative") as err:
        validate_flows(flows, file="flows.csv")
    assert (err.value.row, err.value.column) == (3, "amount")


def test_unknown_perspective_is_rejected():
    flows = pd.DataFrame(
        {"year_index": [0], "kind": ["cost"], "amount": [1.0], "perspective": ["galactic"]}
    )
    with pytest.raises(InputError, match="unknown perspective 'galactic'") as err:
        validate_flows(flows, file="flows.csv")
    assert (err.value.row, err.value.column) == (2, "perspective")
    plain = flows.drop(columns="perspective")
    with pytest.raises(InputError, match="unknown perspective 'societal'"):
        appraise(plain, "standard", perspective="societal")


def test_base_year_without_a_deflator_is_rejected():
    with pytest.raises(InputError, match="no GDP deflator for 1990-91"):
        to_real(100.0, "1990-91", "2025-26")
    with pytest.raises(InputError, match="no GDP deflator for 2099-00"):
        to_real(100.0, "2024-25", "2099-00")


def test_input_value_without_a_source_is_rejected():
    table = pd.DataFrame({"item": ["a", "b"], "value": [1, 2], "source": ["DfE 2024", " "]})
    with pytest.raises(InputError, match="value without a source") as err:
        check_sources(table, "unit_costs.csv")
    assert (err.value.file, err.value.row, err.value.column) == ("unit_costs.csv", 3, "source")
    with pytest.raises(InputError, match="'source' column"):
        check_sources(table.drop(columns="source"), "unit_costs.csv")


def test_every_bundled_input_names_its_sources():
    from kinship_eval.cba._inputs import input_table

    for name in ("unit_costs.csv", "gdp_deflators.csv", "green_book_discount_rates.csv",
                 "allowance_rates.csv", "optimism_bias.csv", "additionality.csv"):  # fmt: skip
        table = input_table(name)
        assert table["source"].astype(str).str.strip().ne("").all(), name


@pytest.mark.parametrize("year", [76, 100, 126, 150])
def test_discount_factor_beyond_75_years_matches_closed_form(year):
    """Green Book STPR compounds year by year: 3.5% to year 30, 3% to 75, 2.5% to 125, then 2%."""
    bands = [(30, 0.035), (75, 0.03), (125, 0.025), (200, 0.02)]
    factor, previous = 1.0, 0
    for end, rate in bands:
        years = max(0, min(year, end) - previous)
        factor /= (1 + rate) ** years
        previous = end
    assert DiscountSchedule.load("standard").factors(year + 1)[year] == pytest.approx(factor)


def test_present_value_of_a_long_annuity_matches_closed_form():
    n = 101  # years 0..100
    flows = pd.DataFrame({"year_index": range(n), "kind": "benefit", "amount": 1.0})
    flows = pd.concat([flows, pd.DataFrame({"year_index": [0], "kind": ["cost"], "amount": [1]})])
    res = appraise(flows, "standard")
    first = sum(1.035**-t for t in range(31))
    second = 1.035**-30 * sum(1.03**-t for t in range(1, 46))
    third = 1.035**-30 * 1.03**-45 * sum(1.025**-t for t in range(1, 26))
    assert res.pv_benefits == pytest.approx(first + second + third)
