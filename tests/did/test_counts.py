"""Poisson pseudo-maximum-likelihood difference-in-differences."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from kinship_eval.did.counts import poisson_did
from kinship_eval.errors import InputError

COLS = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}


def count_panel(
    n_units: int = 150,
    n_periods: int = 15,
    ratio: float = 1.25,
    seed: int = 0,
    covariate: float = 0.0,
) -> pd.DataFrame:
    """Counts with unit and year effects, a population exposure and a multiplicative effect."""
    rng = np.random.default_rng(seed)
    years = np.arange(2010, 2010 + n_periods)
    g = rng.choice([0, 0, years[n_periods // 3], years[2 * n_periods // 3]], size=n_units)
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(years, n_units)
    g_long = np.repeat(g, n_periods)
    pop = np.repeat(rng.uniform(5_000, 100_000, n_units), n_periods) * (
        1 + 0.01 * (year - years[0])
    )
    x = rng.normal(size=n_units * n_periods)
    treated = (g_long > 0) & (year >= g_long)
    log_mu = (
        np.log(pop / 10_000)
        + np.repeat(rng.normal(0, 0.5, n_units), n_periods)
        + 0.04 * (year - years[0])
        + np.log(ratio) * treated
        + covariate * x
    )
    return pd.DataFrame(
        {
            "la": unit,
            "year": year,
            "y": rng.poisson(np.exp(log_mu)),
            "g": g_long,
            "pop": pop,
            "x": x,
        }
    )


def glm_with_dummies(df: pd.DataFrame, covariates: list[str], exposure: str | None):
    treated = ((df["g"] > 0) & (df["year"] >= df["g"])).astype(float)
    dummies = pd.get_dummies(df[["la", "year"]].astype(str), drop_first=True).astype(float)
    design = pd.concat([treated.rename("treated"), df[covariates], dummies], axis=1)
    design = sm.add_constant(design)
    offset = np.log(df[exposure].to_numpy()) if exposure else None
    return sm.GLM(df["y"], design, family=sm.families.Poisson(), offset=offset).fit(
        cov_type="cluster",
        cov_kwds={"groups": df["la"].to_numpy(), "use_correction": False},
        tol=1e-14,
    )


def test_recovers_known_multiplicative_effect() -> None:
    df = count_panel(ratio=1.25, seed=1)
    res = poisson_did(df, **COLS, exposure="pop")
    prop = res.extra["proportional_effect"]
    lo, hi = res.extra["proportional_ci"]
    assert res.estimator == "poisson"
    assert prop == pytest.approx(0.25, abs=0.04)
    assert lo < 0.25 < hi
    assert res.att == pytest.approx(math.log(1.25), abs=0.035)
    assert res.n_units == 150
    assert res.n_periods == 15


def test_equals_glm_with_explicit_dummies() -> None:
    df = count_panel(n_units=20, n_periods=6, seed=2, covariate=0.3)
    res = poisson_did(df, **COLS, exposure="pop", covariates=["x"])
    glm = glm_with_dummies(df, ["x"], "pop")
    g = df["la"].nunique()
    adj = math.sqrt(g / (g - 1))  # the G/(G-1) cluster adjustment
    assert res.att == pytest.approx(glm.params["treated"], abs=1e-6)
    assert res.se == pytest.approx(glm.bse["treated"] * adj, rel=1e-6)
    coef = res.extra["coefficients"]["x"]
    assert coef["estimate"] == pytest.approx(glm.params["x"], abs=1e-6)
    assert coef["se"] == pytest.approx(glm.bse["x"] * adj, rel=1e-6)


def test_equals_glm_without_exposure_or_covariates() -> None:
    df = count_panel(n_units=15, n_periods=5, seed=3)
    res = poisson_did(df, **COLS)
    glm = glm_with_dummies(df, [], None)
    adj = math.sqrt(15 / 14)
    assert res.att == pytest.approx(glm.params["treated"], abs=1e-6)
    assert res.se == pytest.approx(glm.bse["treated"] * adj, rel=1e-6)


def test_proportional_effect_and_interval_transform_beta() -> None:
    df = count_panel(n_units=60, seed=4, ratio=0.8)
    res = poisson_did(df, **COLS, exposure="pop", level=0.9)
    assert res.extra["proportional_effect"] == pytest.approx(math.expm1(res.att), rel=1e-14)
    lo, hi = res.extra["proportional_ci"]
    assert lo == pytest.approx(math.expm1(res.ci_low), rel=1e-12)
    assert hi == pytest.approx(math.expm1(res.ci_high), rel=1e-12)
    assert res.ci_high - res.ci_low == pytest.approx(2 * 1.644854 * res.se, rel=1e-6)
    assert res.extra["proportional_se"] == pytest.approx(math.exp(res.att) * res.se)
    assert any("log points" in n for n in res.notes)
    json.dumps(res.to_dict(), allow_nan=False)


def test_exposure_scale_is_absorbed_by_unit_effects() -> None:
    df = count_panel(n_units=40, seed=5)
    base = poisson_did(df, **COLS, exposure="pop")
    scaled = df.assign(pop=df["pop"] * 1000 * (1 + df["la"]))
    res = poisson_did(scaled, **COLS, exposure="pop")
    assert res.att == pytest.approx(base.att, abs=1e-9)
    assert res.se == pytest.approx(base.se, rel=1e-7)


def test_all_zero_units_are_dropped() -> None:
    df = count_panel(n_units=40, seed=6)
    base = poisson_did(df, **COLS, exposure="pop")
    zero = df[df["la"] == 0].assign(la=999, y=0)
    res = poisson_did(pd.concat([df, zero], ignore_index=True), **COLS, exposure="pop")
    assert res.extra["dropped_units"] == [999]
    assert res.n_units == 40
    assert res.att == pytest.approx(base.att, abs=1e-10)
    assert res.se == pytest.approx(base.se, rel=1e-10)


def test_rejects_negative_counts_and_bad_exposure() -> None:
    df = count_panel(n_units=10, seed=7)
    with pytest.raises(InputError, match="non-negative"):
        poisson_did(df.assign(y=df["y"] - 1000), **COLS)
    with pytest.raises(InputError, match="exposure"):
        poisson_did(df.assign(pop=0.0), **COLS, exposure="pop")


def test_fast_on_a_local_authority_panel() -> None:
    df = count_panel(n_units=150, n_periods=15, seed=8, covariate=0.2)
    start = time.perf_counter()
    poisson_did(df, **COLS, exposure="pop", covariates=["x"])
    assert time.perf_counter() - start < 2.0
