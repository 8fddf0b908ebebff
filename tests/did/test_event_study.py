"""Two-way fixed-effects event study."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did.event_study import event_study
from kinship_eval.errors import InputError

COLS = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}


def dynamic_panel(
    n_units: int = 200,
    n_periods: int = 15,
    seed: int = 0,
    pretrend: float = 0.0,
    noise: float = 0.5,
) -> pd.DataFrame:
    """Staggered adoption with effects that depend on event time only (1 + 0.5 min(e, 4))."""
    rng = np.random.default_rng(seed)
    years = np.arange(2010, 2010 + n_periods)
    g = rng.choice([0, 2014, 2017, 2020], size=n_units)
    year = np.tile(years, n_units)
    g_long = np.repeat(g, n_periods)
    e = np.where(g_long > 0, year - g_long, -99)
    effect = np.where(e >= 0, 1.0 + 0.5 * np.minimum(e, 4), 0.0)
    trend = np.where((g_long > 0) & (e < 0), pretrend * e, 0.0)
    y = (
        np.repeat(rng.normal(0, 1, n_units), n_periods)
        + 0.3 * (year - 2010)
        + effect
        + trend
        + rng.normal(0, noise, n_units * n_periods)
    )
    return pd.DataFrame(
        {"la": np.repeat(np.arange(n_units), n_periods), "year": year, "y": y, "g": g_long}
    )


TRUE = {0: 1.0, 1: 1.5, 2: 2.0, 3: 2.5, 4: 3.0}


def test_recovers_dynamic_effects_and_flat_leads() -> None:
    res = event_study(dynamic_panel(seed=1), **COLS, leads=4, lags=4)
    es = res.event_study.set_index("rel_time")
    assert list(es.index) == list(range(-4, 5))
    for e in (-4, -3, -2):
        assert abs(es.loc[e, "att"]) < 0.15
        assert es.loc[e, "se"] > 0
    for e, truth in TRUE.items():
        assert es.loc[e, "att"] == pytest.approx(truth, abs=0.15)
    assert res.att == pytest.approx(es.loc[0:4, "att"].mean(), abs=1e-12)
    assert res.att == pytest.approx(2.0, abs=0.1)
    wald = res.extra["pretrend_wald"]
    assert wald["df"] == 3
    assert wald["p_value"] > 0.01


def test_reference_row_included_with_zero() -> None:
    res = event_study(dynamic_panel(seed=2), **COLS, ref_period=-2)
    es = res.event_study.set_index("rel_time")
    assert es.loc[-2, "att"] == 0.0
    assert math.isnan(es.loc[-2, "se"])
    assert math.isnan(es.loc[-2, "ci_low"])
    assert not math.isnan(es.loc[-1, "se"])
    assert list(res.event_study.columns) == ["rel_time", "att", "se", "ci_low", "ci_high"]


def test_two_by_two_equals_difference_in_means() -> None:
    df = dynamic_panel(seed=3)
    two = df[df["year"].isin([2016, 2017]) & df["g"].isin([0, 2017])]
    res = event_study(two, **COLS, leads=1, lags=0, bin_endpoints=False)
    m = two.groupby([two["g"] > 0, "year"])["y"].mean()
    by_hand = (m[(True, 2017)] - m[(True, 2016)]) - (m[(False, 2017)] - m[(False, 2016)])
    assert res.att == pytest.approx(by_hand, abs=1e-10)
    assert list(res.event_study["rel_time"]) == [-1, 0]

    # cluster-robust variance by hand: first differences regressed on treatment, clustered by unit
    # (one difference per unit), times G/(G-1) * (n-1)/n with n the panel observations
    wide = two.pivot(index="la", columns="year", values="y")
    dy = (wide[2017] - wide[2016]).to_numpy()
    d = (two.groupby("la")["g"].first() > 0).to_numpy(dtype=float)
    xc = d - d.mean()
    resid = (dy - dy.mean()) - xc * by_hand
    g = len(dy)
    n = 2 * g
    # the two-way within transformation halves the differenced regressor and residual
    var = np.sum((xc / 2) ** 2 * (resid / 2) ** 2 * 4) / (np.sum(xc**2) / 2) ** 2
    var *= g / (g - 1) * (n - 1) / n
    assert res.se == pytest.approx(math.sqrt(var), rel=1e-8)


def test_binned_endpoints_pool_distant_event_times() -> None:
    df = dynamic_panel(seed=4)
    binned = event_study(df, **COLS, leads=2, lags=2, bin_endpoints=True)
    es = binned.event_study.set_index("rel_time")
    # e >= 2 pooled: the pooled effect averages 2.0, 2.5 and 3.0 over the observations in the bin
    assert 2.0 < es.loc[2, "att"] < 3.0
    assert abs(es.loc[-2, "att"]) < 0.15
    assert binned.extra["pretrend_wald"]["df"] == 1
    assert any("binned" in n for n in binned.notes)

    dynamic = event_study(df, **COLS, leads=2, lags=2, bin_endpoints=False)
    dyn = dynamic.event_study.set_index("rel_time")
    assert dyn.loc[2, "att"] == pytest.approx(2.0, abs=0.15)
    assert list(dyn.index) == [-2, -1, 0, 1, 2]
    # the fully dynamic fit estimates event times outside the window too
    assert "e_p8" in dynamic.extra["coefficients"]
    assert "e_p8" not in binned.extra["coefficients"]


def test_pretrend_is_detected() -> None:
    res = event_study(dynamic_panel(seed=5, pretrend=0.3), **COLS, bin_endpoints=False)
    wald = res.extra["pretrend_wald"]
    assert wald["p_value"] < 1e-6
    assert wald["stat"] > 30
    es = res.event_study.set_index("rel_time")
    # a linear pre-trend of 0.3 per period, measured from e = -1 (fully dynamic, so unbiased)
    assert es.loc[-2, "att"] == pytest.approx(-0.3, abs=0.15)
    assert es.loc[-3, "att"] == pytest.approx(-0.6, abs=0.15)


def test_equal_weights_do_not_change_estimates() -> None:
    df = dynamic_panel(n_units=80, seed=6).assign(w=2.0)
    plain = event_study(df, **COLS)
    weighted = event_study(df, **COLS, weights="w")
    np.testing.assert_allclose(
        weighted.event_study["att"], plain.event_study["att"], rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        weighted.event_study["se"], plain.event_study["se"], rtol=1e-8, equal_nan=True
    )


def test_covariates_enter_the_regression() -> None:
    df = dynamic_panel(n_units=100, seed=7)
    rng = np.random.default_rng(0)
    df["x"] = rng.normal(size=len(df))
    df["y"] += 2.0 * df["x"]
    res = event_study(df, **COLS, covariates=["x"])
    assert res.extra["coefficients"]["x"]["estimate"] == pytest.approx(2.0, abs=0.05)
    assert res.att == pytest.approx(2.0, abs=0.15)


def test_validation_and_json() -> None:
    df = dynamic_panel(n_units=40, seed=8)
    with pytest.raises(InputError, match="ref_period"):
        event_study(df, **COLS, leads=2, ref_period=-3)
    with pytest.raises(InputError, match="leads"):
        event_study(df, **COLS, leads=0)
    out = event_study(df, **COLS).to_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["estimator"] == "event_study"
    assert len(out["event_study"]) == 9
    assert set(out["pretrend_wald"]) == {"stat", "df", "p_value"}
