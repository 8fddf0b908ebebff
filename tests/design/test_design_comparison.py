"""Comparison groups: exclusion, nearest-neighbour matching, synthetic weights and reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinship_eval.design.comparison import (
    CONTAMINATION_FLAG,
    ComparisonResult,
    ComparisonSpec,
    comparison_spec,
    greedy_match,
    select_comparison,
)
from kinship_eval.design.features import feature_name, pre_period_features
from kinship_eval.errors import EstimationError, InputError, SpecError

MATCH = {"outcomes": ("outcome",), "covariates": (), "method": "nearest_neighbour"}


def selected_panel(n_las: int = 300, n_pilot: int = 8, seed: int = 3) -> pd.DataFrame:
    """LAs of nine latent service models (level x trend of the outcome); selection into the pilot
    strongly favours the high-level, rising models, so pilots differ sharply from other LAs."""
    rng = np.random.default_rng(seed)
    years = np.arange(2016, 2024)
    a = rng.integers(0, 3, n_las)
    b = rng.integers(0, 3, n_las)
    level = 3.0 + 1.5 * a + rng.normal(0, 0.1, n_las)
    trend = -0.15 + 0.15 * b + rng.normal(0, 0.01, n_las)
    p = np.exp(1.2 * (a + b))
    pilots = rng.choice(n_las, n_pilot, replace=False, p=p / p.sum())
    t = years - years.mean()
    y = level[:, None] + trend[:, None] * t + rng.normal(0, 0.05, (n_las, len(years)))
    codes = np.array([f"L{i:04d}" for i in range(n_las)])
    is_pilot = np.isin(np.arange(n_las), pilots)
    frame = pd.DataFrame(
        {
            "la_code": np.repeat(codes, len(years)),
            "la_name": np.repeat([f"Authority {i}" for i in range(n_las)], len(years)),
            "region": np.repeat([f"R{i % 6}" for i in range(n_las)], len(years)),
            "period": np.tile(years, n_las),
            "pilot": np.repeat(is_pilot, len(years)),
            "outcome": y.ravel(),
            "size": np.repeat(rng.normal(50, 10, n_las), len(years)),
            CONTAMINATION_FLAG: np.repeat((np.arange(n_las) % 10 == 0) & ~is_pilot, len(years)),
        }
    )
    frame["first_treated"] = np.where(frame["pilot"], 2024, 0)
    return frame


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return selected_panel()


# --------------------------------------------------------------------------------- features
def test_pre_period_features_level_and_trend() -> None:
    frame = pd.DataFrame(
        {"u": ["a"] * 4 + ["b"] * 2, "t": [1, 2, 3, 4, 1, 3], "y": [1.0, 3, 5, 7, 2, np.nan]}
    )
    feats = pre_period_features(frame, variables=["y"], unit="u", time="t")
    assert feats.loc["a", feature_name("y", "level")] == pytest.approx(4.0)
    assert feats.loc["a", feature_name("y", "trend")] == pytest.approx(2.0)
    assert feats.loc["b", feature_name("y", "level")] == pytest.approx(2.0)
    assert np.isnan(feats.loc["b", feature_name("y", "trend")])  # one observed year
    window = pre_period_features(frame, variables=["y"], unit="u", time="t", periods=(1, 2))
    assert window.loc["a", feature_name("y", "level")] == pytest.approx(2.0)


# --------------------------------------------------------------------------------- matching
@pytest.mark.parametrize("seed", [0, 3, 7])
def test_mahalanobis_matching_recovers_balance(seed: int) -> None:
    result = select_comparison(selected_panel(seed=seed), **MATCH)
    bal = result.balance()
    assert bal.max_abs_smd_before > 0.5  # the known selection: large imbalance before
    assert bal.max_abs_smd_after < 0.1
    assert bal.is_balanced()
    assert result.n_comparison == 8  # 1:1 without replacement
    assert result.weights.sum() == pytest.approx(1.0)
    assert result.matches is not None
    assert result.matches["comparison"].is_unique


def test_matching_with_replacement_k_and_propensity(panel: pd.DataFrame) -> None:
    before = select_comparison(panel, **MATCH).balance().max_abs_smd_before
    k3 = select_comparison(panel, k=3, **MATCH)
    assert len(k3.matches) == 24
    assert k3.balance().max_abs_smd_after < 0.1
    repl = select_comparison(panel, k=2, replace=True, **MATCH)
    assert repl.weights.sum() == pytest.approx(1.0)
    assert (repl.units.loc[repl.pilots, "role"] == "pilot").all()
    ps = select_comparison(panel, distance="propensity", **MATCH)
    assert ps.balance().max_abs_smd_after < 0.5 * before
    assert any("logit" in n for n in ps.notes)


def test_exact_matching_and_caliper(panel: pd.DataFrame) -> None:
    exact = select_comparison(panel, exact=("region",), k=2, **MATCH)
    region = panel.groupby("la_code")["region"].first()
    pairs = exact.matches
    assert (region[pairs["pilot"]].to_numpy() == region[pairs["comparison"]].to_numpy()).all()
    tight = select_comparison(panel, caliper=0.05, k=2, **MATCH)
    assert any("fewer than k matches" in n for n in tight.notes)
    assert 0 < len(tight.matches) < 16
    assert (tight.matches["distance"] <= 0.05 * 1.0001 * _distance_sd(panel)).all()
    with pytest.raises(EstimationError, match="no pilot LA could be matched"):
        select_comparison(panel, caliper=1e-5, **MATCH)
    with pytest.raises(SpecError, match="exact-matching column"):
        select_comparison(panel, exact=("county",), **MATCH)


def _distance_sd(panel: pd.DataFrame) -> float:
    from kinship_eval.design.comparison import mahalanobis_distances

    feats = pre_period_features(panel, variables=["outcome"], unit="la_code", time="period")
    pilots = panel.groupby("la_code")["pilot"].first()
    dist = mahalanobis_distances(feats[pilots].to_numpy(), feats[~pilots].to_numpy())
    return float(np.std(dist, ddof=1))


def test_greedy_matching_is_order_independent_and_unique() -> None:
    d = np.array([[1.0, 2.0, 9.0], [1.5, 8.0, 9.0]])
    assert greedy_match(d, k=1) == [[0], [1]] or greedy_match(d, k=1) == [[1], [0]]
    assert greedy_match(d, k=1) == [[0], [1]]  # closest pair (0, 0) first, then (1, 1)
    assert greedy_match(d[::-1], k=1) == [[1], [0]]  # same pairs with the pilots reversed
    assert greedy_match(d, k=1, replace=True) == [[0], [0]]
    assert greedy_match(np.array([[np.inf, 1.0]]), k=2) == [[1]]


# ------------------------------------------------------------------------- exclusion, synthetic
def test_exclusion_of_flagged_las(panel: pd.DataFrame) -> None:
    result = select_comparison(panel, method="exclude_contaminated")
    flagged = set(panel.loc[panel[CONTAMINATION_FLAG], "la_code"])
    assert flagged
    assert not flagged & set(result.comparison_units)
    assert (result.units.loc[sorted(flagged), "role"] == "excluded").all()
    allnp = select_comparison(panel)
    assert allnp.n_comparison == panel["la_code"].nunique() - 8
    assert allnp.weights.nunique() == 1
    matched = select_comparison(panel, exclude=(CONTAMINATION_FLAG,), **MATCH)
    assert not flagged & set(matched.comparison_units)
    with pytest.raises(SpecError, match="flag column"):
        select_comparison(panel.drop(columns=CONTAMINATION_FLAG), method="exclude_contaminated")


@pytest.mark.parametrize("method", ["sdid", "sc"])
def test_synthetic_weights_track_the_pilots(panel: pd.DataFrame, method: str) -> None:
    result = select_comparison(
        panel, method="synthetic", synthetic_method=method, outcomes=("outcome",), covariates=()
    )
    assert result.weights.min() > 0
    assert result.weights.sum() == pytest.approx(1.0)
    bal = result.balance().to_frame().set_index("variable")
    trend = feature_name("outcome", "trend")
    assert abs(bal.loc[trend, "smd_after"]) < 0.25 * abs(bal.loc[trend, "smd_before"])
    if method == "sc":  # synthetic control matches levels too
        level = feature_name("outcome", "level")
        assert abs(bal.loc[level, "smd_after"]) < 0.1


# ----------------------------------------------------------------------------- reporting
def test_result_views_and_apply(panel: pd.DataFrame) -> None:
    result = select_comparison(panel, k=2, **MATCH)
    assert isinstance(result, ComparisonResult)
    tidy = result.to_frame()
    assert {"la_code", "role", "weight", "matched_to", "method"} <= set(tidy.columns)
    assert len(tidy) == panel["la_code"].nunique()
    assert set(tidy["role"]) <= {"pilot", "comparison", "not selected", "excluded", "no data"}
    text = result.summary()
    assert "nearest-neighbour mahalanobis" in text
    assert "max |SMD|" in text
    sub = result.apply(panel)
    assert set(sub["la_code"]) == set(result.pilots) | set(result.comparison_units)
    assert (sub.loc[sub["pilot"], "comparison_weight"] == 1.0).all()
    comp = sub.loc[~sub["pilot"]].groupby("la_code")["comparison_weight"].first()
    assert comp.mean() == pytest.approx(1.0)
    assert result.to_dict()["method"] == "nearest_neighbour"


def test_spec_validation_and_missing_inputs(panel: pd.DataFrame) -> None:
    with pytest.raises(SpecError, match="unknown field"):
        comparison_spec({"method": "nearest_neighbour", "neighbours": 2})
    with pytest.raises(SpecError, match="method"):
        comparison_spec(method="lottery")
    with pytest.raises(SpecError, match="k"):
        comparison_spec(k=0)
    assert ComparisonSpec(method="exclude_contaminated").exclude_flags == (CONTAMINATION_FLAG,)
    with pytest.raises(SpecError, match="not in the panel"):
        select_comparison(panel, method="nearest_neighbour", outcomes=("nothing",))
    lenient = select_comparison(panel, outcomes=("outcome", "nothing"))  # balance report only
    assert any("nothing" in n for n in lenient.notes)
    gappy = panel.copy()
    gappy.loc[gappy["pilot"], "outcome"] = np.nan
    with pytest.raises(InputError, match="pilot LA"):
        select_comparison(gappy, **MATCH)


def test_real_bundled_data() -> None:
    from kinship_eval.pipeline import build_panel, estimation_sample
    from kinship_eval.spec import Spec

    spec = Spec()
    panel, _ = build_panel(spec)
    sample, _ = estimation_sample(spec, panel)
    result = select_comparison(sample, method="nearest_neighbour", exact=("region",))
    assert result.pre_periods == (2018, 2025)  # real years before the first pilot year only
    assert len(result.pilots) == 7
    assert result.n_comparison == 7
    table = result.balance().to_frame()
    assert len(table) == 2 * 5  # level and trend of the outcome and four covariates
    assert np.isfinite(table["smd_before"]).all()
