"""Wild cluster bootstrap, randomization inference, placebo checks and inference guidance."""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from kinship_eval.did import inference as inf
from kinship_eval.did.event_study import event_study
from kinship_eval.did.twfe import twfe
from kinship_eval.errors import InferenceWarning, InputError


# ----------------------------------------------------------------------------- data
def _tiny_panel() -> pd.DataFrame:
    """Eight units, six periods, two rows dropped; deterministic (no random numbers)."""
    rows = []
    for i in range(8):
        for t in range(6):
            if (i, t) in {(5, 0), (6, 4)}:
                continue
            d = 1.0 if (i < 3 and t >= 3) else 0.0
            x = np.sin(1.7 * i + 0.9 * t)
            e = np.sin(3.1 * i * i + 2.3 * t) + 0.5 * np.cos(1.3 * i * t + 0.4)
            y = 0.4 * d + 0.8 * x + 0.3 * i + 0.2 * t + e
            rows.append((i, t, d, x, y))
    return pd.DataFrame(rows, columns=["unit", "time", "d", "x", "y"])


def _panel20() -> pd.DataFrame:
    """Twenty units, five periods, four treated; deterministic."""
    rows = []
    for i in range(20):
        for t in range(5):
            d = 1.0 if (i < 4 and t >= 3) else 0.0
            x = np.cos(0.7 * i + 1.1 * t)
            e = (
                np.sin(2.9 * i * i + 1.7 * t)
                + 0.7 * np.cos(0.9 * i * t + 0.2)
                + 0.6 * np.sin(5.3 * i)
            )
            y = 1.1 * d + 0.5 * x + 0.1 * i - 0.1 * t + e
            rows.append((i, t, d, x, y))
    return pd.DataFrame(rows, columns=["unit", "time", "d", "x", "y"])


def _did_panel(
    n_units: int = 150,
    n_periods: int = 15,
    n_treated: int = 7,
    effect: float = 0.0,
    seed: int = 0,
    start: int = 2020,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    units = np.repeat(np.arange(n_units), n_periods)
    years = np.tile(np.arange(2010, 2010 + n_periods), n_units)
    g = np.zeros(n_units)
    g[rng.choice(n_units, n_treated, replace=False)] = start
    gi = g[units]
    d = (gi > 0) & (years >= gi)
    alpha = rng.normal(size=n_units)[units]
    lam = rng.normal(size=n_periods)[years - 2010]
    y = alpha + lam + effect * d + rng.normal(size=len(units))
    return pd.DataFrame(
        {"la": units, "year": years, "g": gi, "y": y, "x": rng.normal(size=len(units))}
    )


# ----------------------------------------------------------------------------- brute force
def _brute_force_p(
    df: pd.DataFrame, draws: np.ndarray, null: float, impose_null: bool
) -> tuple[float, float]:
    """Wild cluster bootstrap by explicit re-fitting of the dummy-variable regression."""
    units = df["unit"].to_numpy()
    levels = np.unique(units)
    dummies = [(units == u).astype(float) for u in levels]
    times = np.unique(df["time"])
    tdum = [(df["time"].to_numpy() == t).astype(float) for t in times[1:]]
    design = np.column_stack([df["d"], df["x"], *dummies, *tdum])
    y = df["y"].to_numpy()

    def fit(yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b, *_ = np.linalg.lstsq(design, yy, rcond=None)
        return b, yy - design @ b

    bread = np.linalg.pinv(design.T @ design)

    def se(resid: np.ndarray) -> float:
        scores = np.array([design[units == u].T @ resid[units == u] for u in levels])
        return float(np.sqrt((bread @ scores.T @ scores @ bread)[0, 0]))

    beta, resid = fit(y)
    t = (beta[0] - null) / se(resid)
    if impose_null:
        rest, *_ = np.linalg.lstsq(design[:, 1:], y - null * design[:, 0], rcond=None)
        fitted = design[:, 1:] @ rest + null * design[:, 0]
        centre = null
    else:
        fitted = design @ beta
        centre = beta[0]
    u = y - fitted
    t_boot = []
    index = np.searchsorted(levels, units)
    for v in draws.T:
        b_star, r_star = fit(fitted + u * v[index])
        t_boot.append((b_star[0] - centre) / se(r_star))
    t_boot = np.abs(np.array(t_boot))
    return float(np.mean(t_boot >= abs(t) - 1e-10 * max(1.0, abs(t)))), float(t)


# ----------------------------------------------------------------------------- demeaning
@pytest.mark.parametrize("drop", [False, True])
def test_demean_equals_dummy_regression_residuals(drop: bool) -> None:
    df = (
        _tiny_panel()
        if drop
        else _did_panel(12, 5, 3, seed=1).rename(columns={"la": "unit", "year": "time"})
    )
    unit, period = df["unit"].to_numpy(), df["time"].to_numpy()
    values = np.column_stack([df["y"], np.arange(len(df)) ** 0.5])
    dummies = pd.get_dummies(pd.DataFrame({"u": unit, "t": period}).astype(str), dtype=float)
    coef, *_ = np.linalg.lstsq(dummies.to_numpy(), values, rcond=None)
    expected = values - dummies.to_numpy() @ coef
    np.testing.assert_allclose(inf.demean(values, unit, period), expected, atol=1e-10)
    one_way = inf.demean(values[:, 0], unit)
    means = pd.Series(values[:, 0]).groupby(unit).transform("mean").to_numpy()
    np.testing.assert_allclose(one_way, values[:, 0] - means, atol=1e-12)


# ----------------------------------------------------------------------------- wild bootstrap
@pytest.mark.parametrize("impose_null", [True, False])
@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_wild_bootstrap_equals_brute_force_refitting(impose_null: bool, weights: str) -> None:
    df = _tiny_panel()
    if weights == "rademacher":
        draws = inf._enumerate_weights("rademacher", 8)
    else:
        draws = inf._draw_weights(np.random.default_rng(5), "webb", 8, 150)
    design = inf._build_design(df["y"], df[["d", "x"]], df["unit"], (df["unit"], df["time"]), None)
    fast = inf._bootstrap_stats(design, np.array([1.0, 0.0]), draws, impose_null)
    for null in (0.0, 0.35, 1.2):
        expected, _ = _brute_force_p(df, draws, null, impose_null)
        assert fast.p_value(null) == pytest.approx(expected, abs=1e-12)


def test_full_enumeration_public_api_equals_brute_force() -> None:
    df = _tiny_panel()
    res = inf.wild_cluster_bootstrap(
        df["y"], df[["d", "x"]], df["unit"], fixed_effects=(df["unit"], df["time"])
    )
    assert res.enumerated
    assert res.reps == 2**8
    expected, _ = _brute_force_p(df, inf._enumerate_weights("rademacher", 8), 0.0, True)
    assert res.p_value == expected
    # ties (the all-ones draws reproduce t exactly) count as exceedances
    assert res.p_value >= 2 / 2**8


# Reference values from the Python package wildboottest 0.3.2 (PyPI), run once in a separate
# virtual environment on the same deterministic panels with unit and period dummies as explicit
# regressors: wildboottest(sm.OLS(y, [d, x, unit dummies, period dummies]), param="d",
# cluster=unit, B=9999, weights_type="rademacher", impose_null=..., seed=1) (full enumeration,
# 2**8 < B) and, for the 20-unit panel, B=99999, weights_type="webb", seed=7.
WBT_TINY_T = 5.273740113484736
WBT_TINY_P = {True: 0.0078125, False: 0.0}
WBT_P20_T = 2.8459696347746917
WBT_P20_P = {True: 0.02708027080270803, False: 0.0061800618006180065}


@pytest.mark.reference
@pytest.mark.parametrize("impose_null", [True, False])
def test_matches_wildboottest_reference(impose_null: bool) -> None:
    df = _tiny_panel()
    k = 2 + df["unit"].nunique() + df["time"].nunique() - 1
    res = inf.wild_cluster_bootstrap(
        df["y"],
        df[["d", "x"]],
        df["unit"],
        fixed_effects=(df["unit"], df["time"]),
        impose_null=impose_null,
        small_sample_k=k,
    )
    assert res.t_stat == pytest.approx(WBT_TINY_T, rel=1e-10)
    assert res.p_value == pytest.approx(WBT_TINY_P[impose_null], abs=1e-12)
    df = _panel20()
    k = 2 + df["unit"].nunique() + df["time"].nunique() - 1
    res = inf.wild_cluster_bootstrap(
        df["y"],
        df[["d", "x"]],
        df["unit"],
        fixed_effects=(df["unit"], df["time"]),
        weights="webb",
        reps=99_999,
        seed=3,
        impose_null=impose_null,
        small_sample_k=k,
    )
    assert res.t_stat == pytest.approx(WBT_P20_T, rel=1e-10)
    # independent Monte Carlo draws: agree within simulation error
    assert res.p_value == pytest.approx(WBT_P20_P[impose_null], abs=0.003)


def test_crv1_standard_error_matches_statsmodels_without_fixed_effects() -> None:
    df = _panel20()
    X = sm.add_constant(df[["d", "x"]])
    ols = sm.OLS(df["y"], X).fit(cov_type="cluster", cov_kwds={"groups": df["unit"]})
    res = inf.wild_cluster_bootstrap(df["y"], X, df["unit"], param_index=1, reps=99, seed=0)
    assert res.estimate == pytest.approx(ols.params["d"], rel=1e-10)
    assert res.se == pytest.approx(ols.bse["d"], rel=1e-10)


@pytest.mark.parametrize("impose_null", [True, False])
def test_test_inversion_interval(impose_null: bool) -> None:
    df = _panel20()
    res = inf.wild_cluster_bootstrap(
        df["y"],
        df[["d", "x"]],
        df["unit"],
        fixed_effects=(df["unit"], df["time"]),
        weights="webb",
        reps=1999,
        seed=11,
        impose_null=impose_null,
    )
    alpha = 1 - res.level
    assert res.ci_low < res.estimate < res.ci_high
    eps = 1e-6 * res.se
    for bound, outward in ((res.ci_low, -1), (res.ci_high, 1)):
        assert res.p_value_at(bound - outward * eps) > alpha
        assert res.p_value_at(bound + outward * eps) <= alpha
    assert res.p_value_at(res.estimate) == pytest.approx(1.0)
    if not impose_null:
        # WCU: the interval is the bootstrap-t interval estimate -+ q* se (symmetric)
        assert res.estimate - res.ci_low == pytest.approx(res.ci_high - res.estimate, rel=1e-6)


def test_wild_bootstrap_did_is_twfe_coefficient_and_fast() -> None:
    df = _did_panel(effect=0.5, seed=2)
    start = time.perf_counter()
    res = inf.wild_bootstrap_did(
        df, unit="la", time="year", outcome="y", first_treated="g", reps=9999, seed=1
    )
    elapsed = time.perf_counter() - start
    ref = twfe(df, unit="la", time="year", outcome="y", first_treated="g")
    assert res.att == pytest.approx(ref.att, rel=1e-9)
    assert res.inference == "wild_bootstrap"
    assert res.estimator == "twfe"
    assert res.ci_low < res.att < res.ci_high
    assert 0 < res.p_value <= 1
    assert res.extra["bootstrap"] == "WCR"
    assert res.extra["bootstrap_reps"] == 9999
    out = res.to_dict()
    assert out["inference"] == "wild_bootstrap"
    assert out["p_value"] == res.p_value
    assert elapsed < 3.0  # typically ~0.15 s


def test_wild_bootstrap_event_study_matches_twfe_event_study() -> None:
    df = _did_panel(n_units=40, n_periods=10, n_treated=6, effect=0.4, seed=3, start=2015)
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    res = inf.wild_bootstrap_event_study(df, leads=3, lags=3, reps=499, seed=2, **kw)
    ref = event_study(df, leads=3, lags=3, **kw)
    merged = res.event_study.merge(ref.event_study, on="rel_time", suffixes=("", "_ref"))
    np.testing.assert_allclose(merged["att"], merged["att_ref"], atol=1e-9)
    assert res.att == pytest.approx(ref.att, rel=1e-9)
    est = res.event_study.dropna(subset=["se"])
    assert ((est["ci_low"] < est["att"]) & (est["att"] < est["ci_high"])).all()
    assert res.extra["vcov"]["rel_time"] == [-3, -2, 0, 1, 2, 3]
    assert np.asarray(res.extra["vcov"]["matrix"]).shape == (6, 6)


def test_wcr_size_with_few_treated_clusters_where_crv1_over_rejects() -> None:
    """Monte Carlo: 3 of 24 clusters treated, heteroskedastic treated clusters, no effect."""
    rng = np.random.default_rng(123)
    n_units, n_periods, n_sims = 24, 6, 150
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    reject_wcr = reject_crv1 = 0
    crit = stats.t.ppf(0.975, n_units - 1)
    for _ in range(n_sims):
        treated = rng.choice(n_units, 3, replace=False)
        d = (np.isin(unit, treated) & (period >= 3)).astype(float)
        scale = np.where(np.isin(unit, treated), 2.0, 1.0)
        y = rng.normal(size=n_units)[unit] + rng.normal(size=n_units)[unit] * period / 5
        y = y + scale * rng.normal(size=len(unit))
        res = inf.wild_cluster_bootstrap(
            y, d, unit, fixed_effects=(unit, period), weights="webb", reps=199, seed=1
        )
        reject_wcr += res.p_value <= 0.05
        reject_crv1 += abs(res.t_stat) > crit
    rate_wcr, rate_crv1 = reject_wcr / n_sims, reject_crv1 / n_sims
    # seed 123 gives about 0.09 (WCR) and 0.24 (CRV1); the bounds allow for simulation error
    assert rate_wcr <= 0.12
    assert rate_crv1 >= 0.15
    assert rate_crv1 > rate_wcr + 0.08


# ----------------------------------------------------------------------------- randomization
def _ri_panel(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_units, n_periods = 6, 5
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(np.arange(2000, 2000 + n_periods), n_units)
    g = np.where(np.isin(unit, [0, 1]), 2003, 0)
    y = rng.normal(size=n_units)[unit] + 0.1 * year + rng.normal(size=len(unit))
    return pd.DataFrame({"la": unit, "year": year, "g": g, "y": y, "region": unit % 2})


def test_exact_randomization_inference_equals_hand_count() -> None:
    df = _ri_panel(1)
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    res = inf.randomization_inference(df, reps=100, **kw)
    observed = twfe(df, **kw).att
    estimates = []
    for pair in itertools.combinations(range(6), 2):
        placebo = df.assign(g=np.where(df["la"].isin(pair), 2003, 0))
        estimates.append(twfe(placebo, **kw).att)
    estimates = np.array(estimates)
    expected = np.mean(np.abs(estimates) >= abs(observed) - 1e-12)
    assert res.extra["ri_exact"]
    assert res.extra["ri_assignments"] == 15
    assert res.extra["ri_draws"] == 15
    assert res.p_value == pytest.approx(expected, abs=1e-12)
    assert res.att == pytest.approx(observed, rel=1e-12)
    assert res.se == pytest.approx(np.std(estimates, ddof=1), rel=1e-9)


def test_fast_twfe_path_equals_refitting_every_placebo() -> None:
    df = _did_panel(n_units=12, n_periods=6, n_treated=3, effect=0.8, seed=4, start=2013)
    df["w"] = 1.0
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    fast = inf.randomization_inference(df, reps=25, seed=9, covariates=["x"], **kw)
    # regression weights of one switch the shortcut off: every placebo is refitted
    slow = inf.randomization_inference(df, reps=25, seed=9, covariates=["x"], weights="w", **kw)
    assert fast.extra["ri_fast_path"]
    assert not slow.extra["ri_fast_path"]
    assert fast.p_value == pytest.approx(slow.p_value, abs=1e-12)
    assert fast.se == pytest.approx(slow.se, rel=1e-8)
    assert fast.ci_low == pytest.approx(slow.ci_low, rel=1e-6)
    assert fast.ci_high == pytest.approx(slow.ci_high, rel=1e-6)


def test_randomization_interval_by_test_inversion() -> None:
    df = _did_panel(n_units=40, n_periods=8, n_treated=5, effect=1.0, seed=6, start=2014)
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    res = inf.randomization_inference(df, reps=999, seed=3, **kw)
    assert res.ci_low < res.att < res.ci_high
    d = ((df["g"] > 0) & (df["year"] >= df["g"])).to_numpy()
    for bound, outward in ((res.ci_low, -1), (res.ci_high, 1)):
        eps = 1e-4 * res.se
        inside = inf.randomization_inference(
            df.assign(y=df["y"] - (bound - outward * eps) * d), reps=999, seed=3, **kw
        )
        outside = inf.randomization_inference(
            df.assign(y=df["y"] - (bound + outward * eps) * d), reps=999, seed=3, **kw
        )
        assert inside.p_value > 0.05 >= outside.p_value


def test_randomization_p_values_are_uniform_under_the_null() -> None:
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    p_values = []
    for seed in range(100):
        df = _did_panel(n_units=30, n_periods=5, n_treated=3, seed=seed, start=2013)
        res = inf.randomization_inference(df, reps=199, seed=seed, ci=False, **kw)
        p_values.append(res.p_value)
    p = np.array(p_values)
    assert 0.02 <= np.mean(p <= 0.1) <= 0.2
    assert stats.kstest(p, "uniform").pvalue > 0.01


def test_randomization_within_strata() -> None:
    df = _ri_panel(2)
    df["g"] = np.where(df["la"].isin([0, 1]), 2003, 0)  # one treated unit per region
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    res = inf.randomization_inference(df, reps=100, strata="region", **kw)
    assert res.extra["ri_exact"]
    assert res.extra["ri_assignments"] == 9
    table = pd.DataFrame({"g": [2003, 2003, 0, 0, 0, 0], "s": [0, 1, 0, 1, 0, 1]})
    draws = inf._assignments(
        table["g"].to_numpy(), table["s"].to_numpy(), 50, False, np.random.default_rng(0)
    )
    for s in (0, 1):
        assert ((draws[:, table["s"].to_numpy() == s] > 0).sum(axis=1) == 1).all()


def test_randomization_inference_is_fast_on_pilot_sized_panel() -> None:
    df = _did_panel(effect=0.3, seed=8)
    start = time.perf_counter()
    res = inf.randomization_inference(
        df, unit="la", time="year", outcome="y", first_treated="g", reps=5000, seed=1
    )
    elapsed = time.perf_counter() - start
    assert res.extra["ri_fast_path"]
    assert not res.extra["ri_exact"]
    assert res.inference == "randomization"
    assert np.isfinite(res.ci_low)
    assert np.isfinite(res.ci_high)
    assert elapsed < 6.0  # typically ~0.6 s


def test_multiset_arrangements() -> None:
    values = np.array([0, 0, 0, 2003, 2003, 2004])
    arr = inf._arrangements(values)
    assert len(arr) == inf._multinomial(values) == 60
    assert len({tuple(r) for r in arr}) == 60
    assert all(sorted(r) == sorted(values) for r in arr)


# ----------------------------------------------------------------------------- placebos
def test_placebo_in_space_and_time() -> None:
    df = _did_panel(n_units=25, n_periods=10, n_treated=3, effect=3.0, seed=10, start=2016)
    kw = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}
    space = inf.placebo_in_space(df, estimator="twfe", n_placebos=20, seed=1, **kw)
    assert space.kind == "space"
    assert len(space.placebos) == 20
    assert space.rank == 1
    assert space.p_value == pytest.approx(1 / 21)
    single = inf.placebo_in_space(df, estimator="twfe", mode="single", n_placebos=8, seed=2, **kw)
    assert len(single.placebos) == 8
    timed = inf.placebo_in_time(df, estimator="twfe", shifts=(1, 2, 5), **kw)
    assert list(timed.placebos["shift"]) == [1, 2]
    assert any("shift 5 skipped" in n for n in timed.notes)
    assert (timed.placebos["att"].abs() < 1.5).all()
    assert timed.to_dict()["kind"] == "time"
    assert "shift 1" in timed.summary()


# ----------------------------------------------------------------------------- guidance
def test_check_inference_choice() -> None:
    with pytest.warns(InferenceWarning, match="over-rejects"):
        msgs = inf.check_inference_choice("cluster", 7, 150)
    assert len(msgs) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inf.check_inference_choice("wild_bootstrap", 7, 150, weights="webb") == []
    assert inf.check_inference_choice("wcr", 3, 150, weights="rademacher", warn=False)
    assert inf.check_inference_choice("wcu", 7, 150, weights="webb", warn=False)
    assert inf.check_inference_choice("randomization", 1, 5, warn=False)
    assert inf.check_inference_choice("jackknife", 1, 150, warn=False)
    with pytest.raises(InputError):
        inf.check_inference_choice("bogus", 7, 150)
    rec = inf.RECOMMENDED_INFERENCE
    assert rec.method == "wild_bootstrap"
    assert rec.weights == "webb"
    assert rec.impose_null
    assert "randomization" in rec.robustness
    assert "7 of about 150" in rec.rationale


def test_enumeration_rules() -> None:
    assert inf._use_enumeration("rademacher", 12, 999, "auto")
    assert not inf._use_enumeration("rademacher", 14, 9999, "auto")
    assert inf._use_enumeration("webb", 5, 9999, "auto")
    assert not inf._use_enumeration("mammen", 5, 9999, "auto")
    with pytest.raises(InputError):
        inf._use_enumeration("rademacher", 40, 9999, True)
    assert math.isclose(np.var(inf._WEBB_POINTS), 1.0)
