"""Green Book discounting and real prices, checked against closed forms and published values."""

from __future__ import annotations

import numpy as np
import pytest

from kinship_eval.cba.discounting import (
    DiscountSchedule,
    RateBand,
    annuity_factor,
    present_value,
)
from kinship_eval.cba.prices import Deflators, financial_year, shift_year, to_real
from kinship_eval.errors import InputError


@pytest.fixture(scope="module")
def standard() -> DiscountSchedule:
    return DiscountSchedule.load("standard")


# ---------------------------------------------------------------------- the schedule itself
def test_standard_bands_match_the_green_book(standard: DiscountSchedule) -> None:
    expected = {0: 0.035, 30: 0.035, 31: 0.03, 75: 0.03, 76: 0.025, 125: 0.025, 126: 0.02}
    expected |= {200: 0.02, 201: 0.015, 300: 0.015, 301: 0.01, 1000: 0.01}
    for year, rate in expected.items():
        assert standard.rate(year) == pytest.approx(rate, abs=1e-12), year


def test_health_bands_are_the_standard_bands_scaled_to_one_and_a_half_percent() -> None:
    health = DiscountSchedule.load("health")
    published_2dp = {0: 1.50, 31: 1.29, 76: 1.07, 126: 0.86, 201: 0.64, 301: 0.43}
    standard = DiscountSchedule.load("standard")
    for year, pct in published_2dp.items():
        assert round(health.rate(year) * 100, 2) == pytest.approx(pct, abs=1e-9)
        assert health.rate(year) == pytest.approx(standard.rate(year) * 1.5 / 3.5, abs=1e-7)


@pytest.mark.reference
@pytest.mark.parametrize(("year", "published"), [(1, 0.9662), (10, 0.7089), (30, 0.3563)])
def test_published_discount_factors(
    standard: DiscountSchedule, year: int, published: float
) -> None:
    """Green Book discount factors at 3.5% (four decimals as published)."""
    assert round(standard.factor(year), 4) == published


def test_year_zero_is_undiscounted_and_first_thirty_years_are_3_5_percent(
    standard: DiscountSchedule,
) -> None:
    f = standard.factors(31)
    assert f[0] == 1.0
    np.testing.assert_allclose(f, 1.035 ** -np.arange(31), rtol=1e-13)


def test_factors_compound_year_by_year_across_bands(standard: DiscountSchedule) -> None:
    f = standard.factors(400)
    d30 = 1.035**-30
    assert f[31] == pytest.approx(d30 / 1.03, rel=1e-13)
    assert f[75] == pytest.approx(d30 * 1.03**-45, rel=1e-13)
    d75 = d30 * 1.03**-45
    assert f[76] == pytest.approx(d75 / 1.025, rel=1e-13)
    d125 = d75 * 1.025**-50
    d200 = d125 * 1.02**-75
    d300 = d200 * 1.015**-100
    assert f[125] == pytest.approx(d125, rel=1e-12)
    assert f[200] == pytest.approx(d200, rel=1e-12)
    assert f[300] == pytest.approx(d300, rel=1e-12)
    assert f[399] == pytest.approx(d300 * 1.01**-99, rel=1e-12)
    # Not the same as discounting the whole period at the later rate.
    assert f[31] != pytest.approx(1.03**-31, rel=1e-6)


# ---------------------------------------------------------------------- present values
@pytest.mark.parametrize("n", [1, 5, 10, 31])
def test_annuity_within_first_band_matches_closed_form(standard: DiscountSchedule, n: int) -> None:
    closed = (1 - 1.035**-n) / 0.035 * 1.035  # year 0 undiscounted
    assert present_value(np.ones(n), standard) == pytest.approx(closed, rel=1e-12)
    assert annuity_factor(0.035, n) == pytest.approx(closed, rel=1e-15)


def test_annuity_across_the_year_30_kink(standard: DiscountSchedule) -> None:
    n = 45  # years 0..44: 31 years at 3.5% then years 31..44 on the 3.0% band
    first = (1 - 1.035**-31) / 0.035 * 1.035
    later = 1.035**-30 * (1 - 1.03**-14) / 0.03
    assert present_value(np.ones(n), standard) == pytest.approx(first + later, rel=1e-12)


def test_present_value_constant_rate_and_vectorised() -> None:
    sched = DiscountSchedule.constant(0.05)
    flows = np.array([[100.0, 0.0, 110.25], [-10.0, 21.0, 0.0]])
    pv = present_value(flows, sched)
    np.testing.assert_allclose(pv, [200.0, 10.0], rtol=1e-13)
    assert present_value(flows[0], sched) == pytest.approx(200.0)
    assert annuity_factor(0.0, 7) == 7.0


def test_schedule_by_name_and_default(standard: DiscountSchedule) -> None:
    flows = [0, 0, 100]
    assert present_value(flows) == present_value(flows, "standard") == 100 / 1.035**2


def test_bad_schedules_are_rejected() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        DiscountSchedule("gap", (RateBand(0, 10, 0.03), RateBand(12, None, 0.02)))
    with pytest.raises(ValueError, match="last band"):
        DiscountSchedule("open", (RateBand(0, None, 0.03), RateBand(1, None, 0.02)))
    with pytest.raises(InputError, match="no discount schedule named 'nope'"):
        DiscountSchedule.load("nope")


def test_schedule_from_a_user_file(tmp_path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("schedule,year_from,year_to,rate\nflat,0,,0.1\n", encoding="utf-8")
    sched = DiscountSchedule.load("flat", path)
    assert sched.factor(2) == pytest.approx(1 / 1.21)
    path.write_text("schedule,year_from,rate\nflat,0,0.1\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        DiscountSchedule.load("flat", path)
    assert err.value.column == "year_to"


# ---------------------------------------------------------------------- real prices
def test_financial_year_parsing() -> None:
    assert financial_year("2024-25") == "2024-25"
    assert financial_year("2024/25") == "2024-25"
    assert financial_year("1999-2000") == "1999-00"
    assert financial_year(2025) == "2024-25"  # int = year ending 31 March
    assert shift_year("2025-26", 3) == "2028-29"
    for bad in ("2024-26", "2024", "FY24"):
        with pytest.raises(ValueError, match="financial year"):
            financial_year(bad)


def test_to_real_uses_the_deflator_ratio() -> None:
    d = Deflators.load()
    ratio = d.value("2025-26") / d.value("2016-17")
    assert to_real(646, "2016-17", "2025-26") == pytest.approx(646 * ratio, rel=1e-13)
    assert to_real(100, "2024-25", 2025) == 100.0
    # round trip
    there = to_real(1000.0, "2018-19", "2027-28")
    assert to_real(there, "2027-28", "2018-19") == pytest.approx(1000.0, rel=1e-13)
    np.testing.assert_allclose(to_real([1.0, 2.0], "2024-25", "2024-25"), [1.0, 2.0])


def test_deflator_series_is_complete_and_flags_forecasts() -> None:
    d = Deflators.load()
    years = [shift_year("2016-17", k) for k in range(13)]
    assert list(d.index.index) == years
    assert d.value("2024-25") == 100.0
    assert d.is_forecast("2026-27")
    assert not d.is_forecast("2023-24")
    assert (np.diff(d.index.to_numpy()) > 0).all()
    assert d.rebased("2025-26")["2025-26"] == pytest.approx(100.0)
    with pytest.raises(InputError, match="no GDP deflator for 2040-41"):
        d.value("2040-41")


def test_deflator_file_with_a_bad_value(tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("financial_year,index\n2020-21,90\n2021-22,abc\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        Deflators.load(path)
    assert err.value.row == 3
