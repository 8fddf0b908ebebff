"""Power simulation: the fast TWFE engine, placebo selection, size, power curves, MDEs, specs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinship_eval.design import analytic
from kinship_eval.design._fast_twfe import FastTwfe, TwoWayProjector, draw_weights
from kinship_eval.design.power import (
    MDE_COLUMNS,
    PowerResult,
    allocate,
    draw_placebo_pilots,
    load_power_spec,
    minimum_detectable_effect,
    run_power,
    simulate_power,
)
from kinship_eval.did.inference import demean, wild_bootstrap_did
from kinship_eval.did.twfe import twfe
from kinship_eval.errors import SpecError

REPO = Path(__file__).resolve().parents[2]


def iid_panel(
    n_units: int = 60, n_periods: int = 6, seed: int = 0, drop: float = 0.0
) -> pd.DataFrame:
    """Unit and period effects plus iid N(0, 1) errors; six regions; optionally unbalanced."""
    rng = np.random.default_rng(seed)
    unit_fe = rng.normal(5.0, 1.0, n_units)
    time_fe = rng.normal(0.0, 0.5, n_periods)
    frame = pd.DataFrame(
        {
            "la_code": np.repeat([f"E{i:03d}" for i in range(n_units)], n_periods),
            "period": np.tile(np.arange(2018, 2018 + n_periods), n_units),
            "region": np.repeat([f"R{i % 6}" for i in range(n_units)], n_periods),
        }
    )
    frame["y"] = (
        np.repeat(unit_fe, n_periods)
        + np.tile(time_fe, n_units)
        + rng.normal(size=n_units * n_periods)
    )
    if drop:
        frame = frame.sample(frac=1 - drop, random_state=seed).sort_index()
    return frame.reset_index(drop=True)


# ------------------------------------------------------------------------------ fast engine
def test_projector_equals_demean_on_unbalanced_panel() -> None:
    frame = iid_panel(n_units=25, n_periods=7, drop=0.15)
    units = pd.factorize(frame["la_code"], sort=True)[0]
    times = pd.factorize(frame["period"], sort=True)[0]
    proj = TwoWayProjector(units, times, units.max() + 1, times.max() + 1)
    x = np.random.default_rng(1).normal(size=(len(frame), 3))
    np.testing.assert_allclose(proj(x), demean(x, units, times), atol=1e-10)


@pytest.mark.parametrize("proportional", [False, True])
def test_fast_twfe_equals_twfe_and_wild_bootstrap(proportional: bool) -> None:
    frame = iid_panel(n_units=30, n_periods=6, seed=3, drop=0.1)
    frame["g"] = np.where(frame["la_code"] < "E005", 2022, 0)
    d = ((frame["g"] > 0) & (frame["period"] >= frame["g"])).to_numpy(dtype=float)
    base = frame.loc[frame["period"] < 2022].groupby("la_code")["y"].mean()
    effect = frame["la_code"].map(base).to_numpy() * d if proportional else d
    units = pd.factorize(frame["la_code"], sort=True)[0]
    times = pd.factorize(frame["period"], sort=True)[0]
    engine = FastTwfe(units, times, frame["y"].to_numpy())
    deltas = np.array([0.0, 0.4, 1.1])
    draws = draw_weights(np.random.default_rng(7), "webb", engine.n_units, 199)
    fit = engine.fit(d, deltas, effect=effect if proportional else None, draws=draws)
    assert fit is not None
    for i, delta in enumerate(deltas):
        shifted = frame.assign(y=frame["y"] + delta * effect)
        ref = twfe(shifted, unit="la_code", time="period", outcome="y", first_treated="g")
        assert fit.estimate[i] == pytest.approx(ref.att, abs=1e-10)
        assert fit.se_cluster[i] == pytest.approx(ref.se, rel=1e-9)
        assert fit.p_cluster[i] == pytest.approx(ref.p_value, rel=1e-7, abs=1e-12)
        wild = wild_bootstrap_did(
            shifted, unit="la_code", time="period", outcome="y", first_treated="g", reps=199, seed=7
        )
        assert fit.p_wild is not None
        assert fit.p_wild[i] == pytest.approx(wild.p_value, abs=1e-12)


# ---------------------------------------------------------------------------- selection rules
def test_allocation_is_proportional_and_respects_capacity() -> None:
    rng = np.random.default_rng(0)
    counts = allocate(rng, np.array([2.0, 1.0, 1.0]), np.array([10, 10, 10]), 8)
    assert counts.tolist() == [4, 2, 2]
    draws = np.array([allocate(rng, np.ones(3), np.array([5, 5, 5]), 4) for _ in range(600)])
    assert (draws.sum(axis=1) == 4).all()
    np.testing.assert_allclose(draws.mean(axis=0), 4 / 3, atol=0.1)
    capped = allocate(rng, np.array([1.0, 0.0]), np.array([2, 5]), 4)
    assert capped.tolist() == [2, 2]


def test_placebo_pilots_follow_the_selection_rule() -> None:
    rng = np.random.default_rng(1)
    strata = np.array([f"R{i % 9}" for i in range(150)])
    eligible = np.ones(150, dtype=bool)
    eligible[:3] = False
    picked = draw_placebo_pilots(rng, eligible, 10, rule="random")
    assert len(set(picked)) == 10
    assert eligible[picked].all()
    actual = ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
    mimic = draw_placebo_pilots(rng, eligible, 7, rule="actual_regions", strata=strata,
                                actual_strata=actual)  # fmt: skip
    assert sorted(strata[mimic]) == actual  # one LA in each of the real pilots' regions
    strat = draw_placebo_pilots(rng, eligible, 18, rule="stratified", strata=strata)
    assert pd.Series(strata[strat]).value_counts().tolist() == [2] * 9
    with pytest.raises(SpecError):
        draw_placebo_pilots(rng, eligible, 5, rule="stratified")


def test_minimum_detectable_effect_interpolates() -> None:
    assert minimum_detectable_effect([0, 1, 2, 3], [0.05, 0.4, 0.7, 0.9]) == pytest.approx(2.5)
    assert minimum_detectable_effect([0, 1, 2], [0.05, 0.8, 0.9]) == pytest.approx(1.0)
    assert math.isnan(minimum_detectable_effect([0, 1], [0.05, 0.5]))


# ----------------------------------------------------------------------- the simulation
@pytest.fixture(scope="module")
def size_run() -> PowerResult:
    return simulate_power(
        iid_panel(n_units=60, n_periods=6, seed=11),
        outcome="y",
        n_pilot=(8,),
        post_periods=(2,),
        effects=(0.0, 0.5, 1.0, 1.5, 2.5),
        reps=400,
        bootstrap_reps=199,
        seed=5,
        progress=False,
    )


def test_rejection_at_zero_effect_is_nominal(size_run: PowerResult) -> None:
    mde = size_run.mde_table().set_index("inference")
    mc_se = math.sqrt(0.05 * 0.95 / 400)
    for inference in ("cluster", "wild_bootstrap"):
        assert abs(mde.loc[inference, "size"] - 0.05) < 3 * mc_se, inference
        assert mde.loc[inference, "reps"] == 400
    assert list(size_run.mde_table().columns) == MDE_COLUMNS


def test_power_rises_monotonically_with_the_effect(size_run: PowerResult) -> None:
    curves = size_run.to_frame()
    for _, curve in curves.groupby("inference"):
        power = curve.sort_values("effect")["power"].to_numpy()
        assert np.all(np.diff(power) >= 0)
        assert power[-1] > 0.9
    table = size_run.mde_table()
    assert table["mde"].between(0.5, 2.5).all()
    row = table.iloc[0]
    assert row["mde_pct"] == pytest.approx(100 * row["mde"] / row["baseline"])


def test_simulation_agrees_with_the_analytic_mde_on_an_iid_design() -> None:
    n_units, n_periods, n_pilot, post = 120, 8, 20, 3
    result = simulate_power(
        iid_panel(n_units=n_units, n_periods=n_periods, seed=21),
        outcome="y",
        n_pilot=(n_pilot,),
        post_periods=(post,),
        effects=(0.0, 0.25, 0.5, 0.75),
        inference=("cluster", "wild_bootstrap"),
        reps=400,
        bootstrap_reps=199,
        seed=2,
        progress=False,
    )
    # textbook value for iid N(0, 1) errors: (z_.975 + z_.8) * sqrt((1/N1 + 1/N0)(1/m + 1/r))
    se = math.sqrt((1 / n_pilot + 1 / (n_units - n_pilot)) * (1 / (n_periods - post) + 1 / post))
    textbook = analytic.analytic_mde(se)
    for row in result.mde_table().itertuples():
        assert row.mde == pytest.approx(textbook, rel=0.15), row.inference
        assert row.mde_analytic == pytest.approx(textbook, rel=0.1)


def test_results_do_not_depend_on_n_jobs() -> None:
    kwargs = dict(
        outcome="y",
        n_pilot=(5, 8),
        post_periods=(1, 2),
        effects=(0.0, 1.0),
        reps=30,
        bootstrap_reps=99,
        seed=9,
        progress=False,
    )
    data = iid_panel(n_units=40, n_periods=5, seed=4, drop=0.05)
    one = simulate_power(data, n_jobs=1, **kwargs)
    two = simulate_power(data, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one.to_frame("dense"), two.to_frame("dense"))
    pd.testing.assert_frame_equal(one.replications, two.replications)


def test_general_path_matches_fast_path() -> None:
    data = iid_panel(n_units=30, n_periods=5, seed=6)
    kwargs = dict(
        outcome="y",
        n_pilot=(4,),
        post_periods=(2,),
        effects=(0.0, 0.8, 1.6),
        reps=8,
        bootstrap_reps=99,
        seed=3,
        progress=False,
    )
    fast = simulate_power(data, **kwargs)
    slow = simulate_power(data, fast=False, **kwargs)
    pd.testing.assert_frame_equal(fast.to_frame(), slow.to_frame())
    cols = ["estimate", "se", "p_value"]
    np.testing.assert_allclose(fast.replications[cols], slow.replications[cols], rtol=1e-8)


def test_other_estimators_and_proportional_effects() -> None:
    result = simulate_power(
        iid_panel(n_units=30, n_periods=5, seed=8),
        outcome="y",
        n_pilot=(5,),
        post_periods=(2,),
        effects=(0.0, 0.2),
        effect_type="proportional",
        estimators=("twfe", "imputation"),
        inference=("cluster", "wild_bootstrap"),
        reps=6,
        bootstrap_reps=99,
        progress=False,
    )
    combos = set(zip(result.mde["estimator"], result.mde["inference"], strict=True))
    assert combos == {("twfe", "cluster"), ("twfe", "wild_bootstrap"), ("imputation", "cluster")}
    curve = result.to_frame()
    row = curve[(curve["effect"] == 0.2) & (curve["estimator"] == "imputation")].iloc[0]
    assert row["effect_pct"] == pytest.approx(20.0)
    assert row["n_valid"] == 6


# ------------------------------------------------------------------------------ specs and I/O
def test_power_spec_run_and_write(tmp_path: Path) -> None:
    data = iid_panel(n_units=30, n_periods=6, seed=2)
    data["pilot"] = data["la_code"].isin(["E001", "E002", "E003"])
    data.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "power.yaml").write_text(
        "name: test\ndata_csv: panel.csv\noutcome: y\nn_pilot: [3, 6]\npost_periods: [1, 2]\n"
        "effects: [0, 1, 2]\nselection: actual_regions\nreps: 10\nbootstrap_reps: 99\n",
        encoding="utf-8",
    )
    result = run_power(tmp_path / "power.yaml", ["reps=12"], progress=False)
    assert result.settings["reps"] == 12
    assert result.settings["actual_pilots"] == ["E001", "E002", "E003"]
    assert len(result.mde_table()) == 2 * 2 * 2
    text = result.summary()
    assert "MDE" in text
    assert "size" in text
    written = result.write(tmp_path / "out")
    names = {p.name for p in written}
    assert {"power_mde.csv", "power_curves.csv", "power_curves.png", "power_curves.svg"} <= names
    assert all(p.stat().st_size > 0 for p in written)
    back = pd.read_csv(tmp_path / "out" / "power_mde.csv")
    assert list(back.columns) == MDE_COLUMNS
    with pytest.raises(SpecError, match="unknown field"):
        load_power_spec(tmp_path / "power.yaml", ["colour=red"])
    with pytest.raises(SpecError, match="selection"):
        load_power_spec(tmp_path / "power.yaml", ["selection=lottery"])


def test_default_power_spec_runs_on_the_bundled_data() -> None:
    result = run_power(
        REPO / "analysis" / "specs" / "power.yaml",
        ["reps=20", "n_pilot=[7]", "post_periods=[2]"],
        progress=False,
    )
    assert result.settings["periods"] == list(range(2018, 2026))
    assert len(result.settings["actual_pilots"]) == 7
    table = result.mde_table()
    assert set(table["inference"]) == {"cluster", "wild_bootstrap"}
    assert table["baseline"].between(2.0, 8.0).all()
    assert table["mde_analytic"].gt(0).all()
    assert result.error_structure is not None
    assert 0.0 < result.error_structure.rho < 1.0
