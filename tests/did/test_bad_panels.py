"""Bad panels get a clear error (or warning) from every estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did.estimate import ESTIMATORS, fit, valid_options
from kinship_eval.errors import DataWarning, EstimationError, InputError, SpecError

FAST_OPTIONS = {"sdid": {"reps": 20, "seed": 1}, "sc": {"reps": 20, "seed": 1}}


def _panel(n_units: int = 24, periods: range = range(2010, 2020), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_units):
        g = 2015 if i < 6 else 0
        for t in periods:
            y = rng.poisson(20) + (5 if g and t >= g else 0)
            rows.append((f"LA{i:02d}", t, float(y), g))
    return pd.DataFrame(rows, columns=["la", "year", "y", "g"])


def _fit(estimator: str, frame: pd.DataFrame, **kw):
    return fit(
        estimator,
        frame,
        unit="la",
        time="year",
        outcome="y",
        first_treated="g",
        **{**FAST_OPTIONS.get(estimator, {}), **kw},
    )


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_duplicate_unit_period(estimator):
    frame = _panel()
    frame = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    with pytest.raises(InputError, match="duplicate unit and period"):
        _fit(estimator, frame)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_first_treated_varies_within_unit(estimator):
    frame = _panel()
    frame.loc[0, "g"] = 2016
    with pytest.raises(InputError, match="varies within unit") as err:
        _fit(estimator, frame)
    assert err.value.column == "g"


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_missing_outcome(estimator):
    frame = _panel()
    frame.loc[7, "y"] = np.nan
    with pytest.raises(InputError, match="missing value") as err:
        _fit(estimator, frame)
    assert (err.value.row, err.value.column) == (9, "y")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_non_finite_outcome(estimator):
    frame = _panel()
    frame.loc[4, "y"] = np.inf
    with pytest.raises(InputError, match="not a finite number") as err:
        _fit(estimator, frame)
    assert (err.value.row, err.value.column) == (6, "y")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_not_a_panel_column_missing(estimator):
    frame = _panel().drop(columns="year")
    with pytest.raises(InputError, match="column not found") as err:
        _fit(estimator, frame)
    assert err.value.column == "year"


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_text_in_time_column(estimator):
    frame = _panel().astype({"year": object})
    frame.loc[2, "year"] = "2012/13"
    with pytest.raises(InputError, match="expected a number") as err:
        _fit(estimator, frame)
    assert (err.value.row, err.value.column) == (4, "year")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_no_comparison_units(estimator):
    frame = _panel().assign(g=2015)
    with pytest.raises(EstimationError, match="no comparison units"):
        _fit(estimator, frame)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_no_post_treatment_period(estimator):
    frame = _panel()
    frame["g"] = np.where(frame["g"] > 0, 2025, 0)
    with pytest.raises(EstimationError, match=r"no post-treatment period|no treated units"):
        _fit(estimator, frame)


@pytest.mark.parametrize("estimator", ["twfe", "event_study", "poisson", "imputation"])
def test_always_treated_units_are_flagged(estimator):
    frame = _panel()
    frame.loc[frame["la"] == "LA00", "g"] = 2010
    with pytest.warns(DataWarning, match="treated from the first period"):
        _fit(estimator, frame)


def test_unknown_estimator_lists_valid_ones():
    with pytest.raises(SpecError, match=r"choose one of .*cs.*twfe"):
        _fit("did2s", _panel())


@pytest.mark.parametrize("estimator", ["twfe", "cs", "sdid"])
def test_unknown_option_lists_valid_options(estimator):
    with pytest.raises(SpecError, match="valid options") as err:
        _fit(estimator, _panel(), bogus_option=1)
    assert "bogus_option" in str(err.value)
    for option in valid_options(estimator)[:2]:
        assert option in str(err.value)


def test_unknown_control_group_value_is_reported():
    with pytest.raises((SpecError, ValueError, InputError), match=r"not_yet|never"):
        _fit("cs", _panel(), control_group="everyone")
