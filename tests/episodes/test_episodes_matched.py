"""Matched child-level DiD: recovers a known effect, finds none when none is injected, balances."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kinship_eval.episodes import (
    child_outcomes,
    did_regression,
    episodes_to_panel,
    la_covariates_from_panel,
    matched_did,
    nearest_neighbour_match,
    propensity_logit,
    simulate_ssda903,
    standardised_differences,
)
from kinship_eval.errors import InferenceWarning

SET = {"n_comparison": 22, "first_year": 2024, "last_year": 2029, "burn_in_years": 10}
OUTCOMES = ("left_to_kin_12m", "days_in_care_12m")


def analyse(effect: float, seed: int):
    sim = simulate_ssda903(seed=seed, effect=effect, **SET)
    data = sim.to_episode_data()
    outcomes = child_outcomes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        result = matched_did(outcomes, outcome_columns=OUTCOMES)
    return sim, data, outcomes, result


@pytest.fixture(scope="module")
def with_effect():
    return analyse(0.3, seed=21)


@pytest.fixture(scope="module")
def without_effect():
    return analyse(0.0, seed=22)


def test_recovers_the_injected_effect(with_effect) -> None:
    sim, _, _, result = with_effect
    truth = sim.true_effects(windows=(12,)).set_index("outcome")
    est = result.to_frame().set_index("outcome")
    true_kin = truth.loc["left_to_kin_12m", "att"] * 100
    assert true_kin > 10  # a large effect was injected
    kin = est.loc["left_to_kin_12m"]
    assert kin["difference"] == pytest.approx(true_kin, abs=max(3.0, 3 * kin["se"]))
    assert kin["significant"]
    assert kin["ci_low"] > 0
    days = est.loc["days_in_care_12m"]
    true_days = truth.loc["days_in_care_12m", "att"]
    assert true_days < 0
    assert days["difference"] == pytest.approx(true_days, abs=max(15.0, 3 * days["se"]))
    # Supporting Families presentation: comparison = programme - difference
    assert kin["comparison"] == pytest.approx(kin["programme"] - kin["difference"])
    assert kin["relative_difference"] == pytest.approx(kin["difference"] / kin["comparison"])
    assert kin["unit"] == "%"
    assert days["unit"] == "days"


def test_finds_no_effect_when_none_is_injected(without_effect) -> None:
    sim, _, _, result = without_effect
    assert (sim.true_effects()["att"] == 0).all()
    kin = result.to_frame().set_index("outcome").loc["left_to_kin_12m"]
    assert abs(kin["difference"]) < 3.0
    assert kin["ci_low"] < 0 < kin["ci_high"] or abs(kin["difference"]) < 2 * kin["se"]


def test_matching_balances_child_covariates(with_effect, without_effect) -> None:
    for _, _, _, result in (with_effect, without_effect):
        bal = result.balance
        assert bal["smd_after"].abs().max() < 0.1
        assert result.max_smd_after < 0.1
        assert bal["smd_after"].abs().mean() < bal["smd_before"].abs().mean()
        age = bal.loc[bal["covariate"] == "age_at_entry"]
        assert (age["smd_before"].abs() > 0.1).all()  # pilot entrants are younger
        m = result.matching
        assert (m["n_programme_dropped"] <= 0.02 * m["n_programme"]).all()


def test_results_object(with_effect) -> None:
    _, _, _, result = with_effect
    frame = result.to_frame()
    for col in (
        "comparison",
        "programme",
        "difference",
        "relative_difference",
        "ci_low",
        "ci_high",
        "p_value",
        "significant",
        "n_treated_clusters",
    ):
        assert col in frame
    assert (frame["n_treated_clusters"] == 7).all()
    assert (frame["n_clusters"] == 7 + SET["n_comparison"]).all()
    text = result.summary()
    assert "SYNTHETIC" in text
    assert "Comparison" in text
    assert "Programme" in text
    assert "optimistic" in text
    assert {"outcome", "cohort", "covariate", "smd_before", "smd_after"} <= set(result.balance)
    assert set(result.samples) == set(OUTCOMES)
    assert (result.propensity["fit"] == "mle").all()


def test_few_cluster_warning_and_wild_bootstrap(with_effect) -> None:
    _, _, outcomes, _ = with_effect
    with pytest.warns(InferenceWarning, match="7 pilot LAs"):
        result = matched_did(
            outcomes, outcome_columns=("left_to_kin_12m",), inference="wild", reps=199
        )
    row = result.to_frame().iloc[0]
    assert row["wild_ci_low"] < row["difference"] < row["wild_ci_high"]
    assert 0 <= row["wild_p_value"] <= 1


def test_la_covariates_enter_the_score(with_effect) -> None:
    _, data, outcomes, _ = with_effect
    la_cov = la_covariates_from_panel(episodes_to_panel(data), columns=("cla_stock_per_10k",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        result = matched_did(outcomes, outcome_columns=("left_to_kin_12m",), la_covariates=la_cov)
    assert result.propensity["term"].str.startswith("la:").any()
    bal = result.balance.set_index(["cohort", "covariate"])
    for cohort in ("pre", "post"):
        row = bal.loc[(cohort, "la:cla_stock_per_10k")]
        assert abs(row["smd_after"]) < abs(row["smd_before"])


# ------------------------------------------------------------------------------ pure parts
def test_nearest_neighbour_with_caliper_and_replacement() -> None:
    score = np.array([0.0, 0.1, 5.0, 0.05, 0.12, 3.0])
    treated = np.array([True, True, True, False, False, False])
    match = nearest_neighbour_match(score, treated, caliper=0.5)
    pairs = match.pairs.sort_values("treated")
    # treated 0 -> control 3 (0.05), treated 1 -> control 4 (0.12); treated 2 (5.0) too far
    assert list(pairs["treated"]) == [0, 1]
    assert list(pairs["control"]) == [3, 4]
    assert list(match.weight) == [1, 1, 0, 1, 1, 0]
    both = nearest_neighbour_match(
        np.array([0.0, 0.01, 0.02]), np.array([1, 1, 0], bool), caliper=None
    )
    assert list(both.weight) == [1, 1, 2]  # one control used twice
    strata = nearest_neighbour_match(
        np.array([0.0, 0.0, 0.01, 0.5]), np.array([1, 1, 0, 0], bool), np.array([1, 2, 1, 2]),
        caliper=None,
    )  # fmt: skip
    assert sorted(strata.pairs["control"]) == [2, 3]  # each matched inside its own stratum


def test_standardised_differences_by_hand() -> None:
    X = pd.DataFrame({"x": [1.0, 3.0, 0.0, 2.0, 10.0]})
    treated = np.array([True, True, False, False, False])
    weight = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    out = standardised_differences(X, treated, weight).iloc[0]
    sd = np.sqrt((np.var([1, 3], ddof=1) + np.var([0, 2, 10], ddof=1)) / 2)
    assert out["smd_before"] == pytest.approx((2 - 4) / sd)
    assert out["smd_after"] == pytest.approx((2 - 1) / sd)


def test_did_regression_is_the_difference_of_differences() -> None:
    rng = np.random.default_rng(0)
    n = 400
    pilot = np.repeat([1, 0], n // 2).astype(bool)
    post = np.tile([0, 1], n // 2).astype(bool)
    clusters = np.arange(n) % 20 + np.where(pilot, 0, 20)
    y = rng.normal(size=n) + 2.0 * (pilot & post)
    w = rng.uniform(0.5, 2, n)
    fit = did_regression(y, pilot, post, w, clusters)

    def mean(sel: np.ndarray) -> float:
        return float(np.sum(w[sel] * y[sel]) / np.sum(w[sel]))

    expected = (mean(pilot & post) - mean(pilot & ~post)) - (
        mean(~pilot & post) - mean(~pilot & ~post)
    )
    assert fit.estimate == pytest.approx(expected)
    assert fit.ci_low < fit.estimate < fit.ci_high
    assert fit.n_clusters == 40
    assert fit.n_treated_clusters == 20


def test_separated_score_falls_back_to_ridge() -> None:
    X = pd.DataFrame({"x": np.r_[np.zeros(50), np.ones(50)], "z": np.arange(100.0)})
    treated = np.r_[np.zeros(50), np.ones(50)].astype(bool)
    score, coef = propensity_logit(X, treated, {})
    assert np.isfinite(score).all()
    assert (coef["fit"] == "ridge").all()
    assert score[treated].mean() > score[~treated].mean()
