"""TWFE and the TWFE event study against linearmodels.PanelOLS, and the shared demeaning.

The estimators solve the regression with NumPy; PanelOLS (called directly here) is the reference
for every convention: weights, absorbed regressors, degrees of freedom, small-sample factors and
t versus normal intervals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from linearmodels.panel import PanelOLS

from kinship_eval.did import _demean
from kinship_eval.did._demean import TwoWayDemeaner, demean, factorize
from kinship_eval.did.data import prepare
from kinship_eval.did.event_study import _dummy_name, event_study, event_times
from kinship_eval.did.twfe import twfe
from kinship_eval.errors import EstimationError, InputError

COLS = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
RTOL = 1e-9


def _panel(seed: int = 0, *, unbalanced: bool = False, n_units: int = 60) -> pd.DataFrame:
    """Staggered adoption with two covariates (one on a large scale), weights, unit effects."""
    rng = np.random.default_rng(seed)
    years = np.arange(2010, 2022)
    g = rng.choice([0, 0, 2014, 2016, 2018], size=n_units)
    la = np.repeat([f"LA{i:03d}" for i in range(n_units)], len(years))
    year = np.tile(years, n_units)
    g_long = np.repeat(g, len(years))
    df = pd.DataFrame({"la": la, "year": year, "g": g_long})
    df["x1"] = rng.normal(size=len(df)) * 1000.0
    df["x2"] = rng.normal(size=len(df)) + 0.1 * (year - 2010)
    df["w"] = rng.uniform(0.5, 3.0, size=len(df))
    treated = (g_long > 0) & (year >= g_long)
    df["y"] = (
        np.repeat(rng.normal(size=n_units), len(years))
        + 0.2 * (year - 2010)
        + 1.5 * treated
        + 0.002 * df["x1"]
        + df["x2"]
        + rng.normal(size=len(df))
    )
    if unbalanced:
        df = df.sample(frac=0.85, random_state=seed).reset_index(drop=True)
    return df


def _panelols_twfe(df: pd.DataFrame, covariates: tuple[str, ...], weights: str | None, cov_type):
    frame = df.assign(treated=((df["g"] > 0) & (df["year"] >= df["g"])).astype(float))
    indexed = frame.set_index(["la", "year"])
    model = PanelOLS(
        indexed["y"],
        indexed[["treated", *covariates]],
        entity_effects=True,
        time_effects=True,
        weights=indexed[weights] if weights else None,
    )
    if cov_type == "clustered":
        return model.fit(cov_type="clustered", cluster_entity=True)
    return model.fit(cov_type=cov_type)


@pytest.mark.parametrize("unbalanced", [False, True])
@pytest.mark.parametrize("covariates", [(), ("x1", "x2")])
@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("cov_type", ["clustered", "robust", "unadjusted"])
def test_twfe_equals_panelols(unbalanced, covariates, weights, cov_type) -> None:
    df = _panel(1, unbalanced=unbalanced)
    ours = twfe(df, **COLS, covariates=covariates, weights=weights, cov_type=cov_type, level=0.9)
    ref = _panelols_twfe(df, covariates, weights, cov_type)
    ci = ref.conf_int(level=0.9).loc["treated"]
    assert ours.att == pytest.approx(ref.params["treated"], rel=RTOL)
    assert ours.se == pytest.approx(ref.std_errors["treated"], rel=RTOL)
    assert ours.p_value == pytest.approx(ref.pvalues["treated"], rel=1e-7)
    assert ours.ci_low == pytest.approx(ci.iloc[0], rel=RTOL)
    assert ours.ci_high == pytest.approx(ci.iloc[1], rel=RTOL)
    assert ours.extra == {"nobs": int(ref.nobs), "df_resid": int(ref.df_resid)}


def _panelols_event_study(df, covariates, weights, leads, lags, bin_endpoints):
    frame = df.rename(columns={"la": "unit", "year": "time"})
    rel = event_times(frame, leads, lags, bin_endpoints)
    treated = df["g"].to_numpy() > 0
    estimated = [int(e) for e in np.unique(rel[treated]) if e != -1]
    index = pd.MultiIndex.from_arrays([df["la"], df["year"]])
    exog = pd.DataFrame(
        {_dummy_name(e): (treated & (rel == e)).astype(float) for e in estimated}, index=index
    )
    for c in covariates:
        exog[c] = df[c].to_numpy()
    w = pd.Series(df[weights].to_numpy(), index=index) if weights else None
    model = PanelOLS(
        pd.Series(df["y"].to_numpy(), index=index),
        exog,
        entity_effects=True,
        time_effects=True,
        weights=w,
        drop_absorbed=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(
            cov_type="clustered",
            cluster_entity=True,
            group_debias=True,
            debiased=False,
            auto_df=False,
            count_effects=False,
        )


@pytest.mark.parametrize("unbalanced", [False, True])
@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("bin_endpoints", [True, False])
def test_event_study_equals_panelols(unbalanced, weights, bin_endpoints) -> None:
    df = _panel(2, unbalanced=unbalanced).sort_values(["la", "year"]).reset_index(drop=True)
    covariates = ("x1", "x2")
    ours = event_study(
        df, **COLS, covariates=covariates, weights=weights, bin_endpoints=bin_endpoints, lags=3
    )
    ref = _panelols_event_study(df, covariates, weights, 4, 3, bin_endpoints)
    coefficients = ours.extra["coefficients"]
    assert list(coefficients) == list(ref.params.index)
    for name, values in coefficients.items():
        assert values["estimate"] == pytest.approx(ref.params[name], rel=RTOL)
        assert values["se"] == pytest.approx(ref.std_errors[name], rel=RTOL)
    names = [_dummy_name(e) for e in ours.extra["vcov"]["rel_time"]]
    np.testing.assert_allclose(
        ours.extra["vcov"]["matrix"], ref.cov.loc[names, names].to_numpy(), rtol=RTOL, atol=1e-14
    )


def test_covariate_absorbed_by_the_effects() -> None:
    df = _panel(3)
    df["size"] = df.groupby("la")["x1"].transform("first")
    with pytest.raises(EstimationError, match=r"absorbed by the unit and period effects.*size"):
        twfe(df, **COLS, covariates=["size"])
    # the event study drops it, as PanelOLS(drop_absorbed=True) does
    ours = event_study(df, **COLS, covariates=["x2", "size"])
    ref = _panelols_event_study(df, ("x2", "size"), None, 4, 4, True)
    assert "size" not in ours.extra["coefficients"]
    assert list(ours.extra["coefficients"]) == list(ref.params.index)
    for name, values in ours.extra["coefficients"].items():
        assert values["estimate"] == pytest.approx(ref.params[name], rel=RTOL)
    assert any("absorbed" in note and "size" in note for note in ours.notes)


def test_collinear_covariates_are_an_error() -> None:
    df = _panel(4).assign(x3=lambda d: 2.0 * d["x1"] - d["x2"])
    with pytest.raises(EstimationError, match="collinear: x3"):
        twfe(df, **COLS, covariates=["x1", "x2", "x3"])
    with pytest.raises(EstimationError, match="collinear: x3"):
        event_study(df, **COLS, covariates=["x1", "x2", "x3"])


def test_non_positive_weights_are_rejected() -> None:
    df = _panel(5)
    df.loc[3, "w"] = 0.0
    with pytest.raises(InputError, match="weights must be positive") as err:
        twfe(df, **COLS, weights="w")
    assert err.value.column == "w"


def test_equal_weights_equal_unweighted() -> None:
    df = _panel(6, unbalanced=True).assign(w=4.0)
    plain = twfe(df, **COLS, covariates=["x1"])
    weighted = twfe(df, **COLS, covariates=["x1"], weights="w")
    assert weighted.att == pytest.approx(plain.att, rel=1e-12)
    assert weighted.se == pytest.approx(plain.se, rel=1e-12)


# ----------------------------------------------------------------------------- demeaning
def _dummy_residuals(values: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray | None):
    dummies = pd.get_dummies(pd.DataFrame({"a": a, "b": b}).astype(str), dtype=float).to_numpy()
    root = np.ones(len(a)) if w is None else np.sqrt(w)
    coef, *_ = np.linalg.lstsq(dummies * root[:, None], values * root[:, None], rcond=None)
    return values - dummies @ coef


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("method", ["exact", "iterate"])
def test_two_way_demeaning_equals_dummy_regression(monkeypatch, weighted, method) -> None:
    df = _panel(7, unbalanced=True, n_units=30)
    a, b = df["la"].to_numpy(), df["year"].to_numpy()
    values = df[["y", "x1", "x2"]].to_numpy()
    w = df["w"].to_numpy() if weighted else None
    if method == "iterate":
        monkeypatch.setattr(_demean, "MAX_DUMMY_LEVELS", 0)
    ua, na = factorize(a)
    ub, nb = factorize(b)
    demeaner = TwoWayDemeaner(ua, ub, na, nb, w)
    assert demeaner.method == method
    expected = _dummy_residuals(values, a, b, w)
    np.testing.assert_allclose(demeaner(values), expected, atol=1e-9 * np.abs(values).max())
    np.testing.assert_allclose(demean(values, a, b, weights=w), demeaner(values), atol=1e-9)


def test_balanced_demeaning_in_any_row_order() -> None:
    df = _panel(8, n_units=20)
    shuffled = df.sample(frac=1.0, random_state=1)
    values = shuffled[["y", "x1"]].to_numpy()
    a, b = shuffled["la"].to_numpy(), shuffled["year"].to_numpy()
    ua, na = factorize(a)
    ub, nb = factorize(b)
    demeaner = TwoWayDemeaner(ua, ub, na, nb)
    assert demeaner.method == "balanced"
    expected = _dummy_residuals(values, a, b, None)
    np.testing.assert_allclose(demeaner(values), expected, atol=1e-9 * np.abs(values).max())
    sorted_a, _ = factorize(df["la"])
    sorted_b, _ = factorize(df["year"])
    assert TwoWayDemeaner(sorted_a, sorted_b, na, nb).method == "grid"


# ----------------------------------------------------------------------------- prepare
def test_prepare_sorts_and_keeps_columns() -> None:
    df = _panel(9, unbalanced=True, n_units=15)
    panel = prepare(df, **COLS, covariates=["x1"], weights="w")
    expected = (
        df.rename(columns={"la": "unit", "year": "time"})
        .sort_values(["unit", "time"], kind="stable")
        .reset_index(drop=True)
    )
    frame = panel.frame
    assert list(frame.columns) == ["unit", "time", "y", "g", "x1", "weight"]
    np.testing.assert_array_equal(frame["unit"].to_numpy(), expected["unit"].to_numpy())
    np.testing.assert_array_equal(frame["time"].to_numpy(), expected["time"].to_numpy())
    np.testing.assert_array_equal(frame["y"].to_numpy(), expected["y"].to_numpy())
    np.testing.assert_array_equal(frame["weight"].to_numpy(), expected["w"].to_numpy())
    assert frame["time"].dtype == np.int64
    assert frame["g"].dtype == np.int64
    assert panel.n_units == 15
    assert panel.n_treated_units == int((df.groupby("la")["g"].first() > 0).sum())
    assert panel.n_periods == df["year"].nunique()
    np.testing.assert_array_equal(panel.units, np.sort(df["la"].unique()))


def test_prepare_reports_the_first_duplicated_row() -> None:
    df = _panel(10, n_units=6)
    df = pd.concat([df.iloc[:8], df.iloc[[20]], df.iloc[8:]], ignore_index=True)
    with pytest.raises(InputError, match=r"duplicate unit and period \(LA001, 2018\)") as err:
        prepare(df, **COLS)
    # the copy placed at position 8 comes before the original (now at position 21)
    assert err.value.row == 10


def test_prepare_rejects_a_missing_unit() -> None:
    df = _panel(11, n_units=6).astype({"la": object})
    df.loc[5, "la"] = None
    with pytest.raises(InputError, match="missing value") as err:
        prepare(df, **COLS)
    assert (err.value.row, err.value.column) == (7, "la")


def test_prepare_numeric_checks_on_other_dtypes() -> None:
    df = _panel(12, n_units=6)
    text = df.astype({"x1": object})
    text.loc[4, "x1"] = "n/a"
    with pytest.raises(InputError, match="expected a number, found 'n/a'") as err:
        prepare(text, **COLS, covariates=["x1"])
    assert err.value.row == 6
    nullable = df.astype({"g": "Int64"})
    nullable.loc[nullable["g"] == 0, "g"] = pd.NA
    panel = prepare(nullable, **COLS)
    np.testing.assert_array_equal(panel.frame["g"], prepare(df, **COLS).frame["g"])
    infinite = df.copy()
    infinite.loc[9, "x2"] = -np.inf
    with pytest.raises(InputError, match="not a finite number") as err:
        prepare(infinite, **COLS, covariates=["x2"])
    assert err.value.row == 11


@pytest.mark.parametrize("unbalanced", [False, True])
@pytest.mark.parametrize("weights", [None, "w"])
def test_linearmodels_engine_gives_the_same_results(unbalanced, weights) -> None:
    df = _panel(6, unbalanced=unbalanced)
    kwargs = {**COLS, "covariates": ("x1", "x2"), "weights": weights}
    fast, panel_ols = twfe(df, **kwargs), twfe(df, **kwargs, engine="linearmodels")
    for field in ("att", "se", "ci_low", "ci_high", "p_value"):
        assert getattr(fast, field) == pytest.approx(getattr(panel_ols, field), rel=RTOL)
    assert fast.extra == panel_ols.extra
    assert panel_ols.settings["engine"] == "linearmodels"
    fast_es = event_study(df, **kwargs, lags=3)
    panel_ols_es = event_study(df, **kwargs, lags=3, engine="linearmodels")
    pd.testing.assert_frame_equal(fast_es.event_study, panel_ols_es.event_study, rtol=RTOL)
    assert fast_es.extra["pretrend_wald"]["stat"] == pytest.approx(
        panel_ols_es.extra["pretrend_wald"]["stat"], rel=1e-7
    )


def test_linearmodels_engine_reports_absorbed_regressors_as_ours_does() -> None:
    df = _panel(3)
    df["size"] = df.groupby("la")["x1"].transform("first")
    with pytest.raises(EstimationError, match="PanelOLS could not fit"):
        twfe(df, **COLS, covariates=["size"], engine="linearmodels")
    ours = event_study(df, **COLS, covariates=["x2", "size"], engine="linearmodels")
    assert "size" not in ours.extra["coefficients"]


def test_unknown_engine_is_an_input_error() -> None:
    with pytest.raises(InputError, match="engine must be"):
        twfe(_panel(1), **COLS, engine="stata")
