"""Panel assembly, the Panel schema, and the illustrative simulation recovering its effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinship_eval.data.demo import IllustrativeConfig, extend_illustrative, staggered_starts
from kinship_eval.data.panel import assemble, attach_treatment, validate_panel
from kinship_eval.did.twfe import twfe
from kinship_eval.errors import InputError
from tests.conftest import synthetic_inputs


def _panel(effect: float, seed: int, **kwargs):
    geo, measures, pilot = synthetic_inputs(seed=seed)
    frame, _ = assemble(measures, geo)
    first = dict(zip(pilot["la_code"], pilot["first_treated_period"].astype(int), strict=True))
    sim = extend_illustrative(frame, first, IllustrativeConfig(effect=effect, seed=seed, **kwargs))
    register = pilot.assign(
        first_treated_period=pilot["la_code"].map(sim.first_treated).astype("Int64")
    )
    panel = validate_panel(attach_treatment(sim.frame, register))
    return panel, sim


def test_assemble_derives_kinship_exits_and_rates(geography):
    measures = pd.DataFrame(
        [
            (2020, "E06000001", "sgo_exits", 6.0, "published"),
            (2020, "E06000001", "cao_exits", 2.0, "published"),
            (2020, "E06000001", "population_0_17", 40_000.0, "published"),
            (2020, "E06000002", "sgo_exits", np.nan, "suppressed"),
            (2020, "E06000002", "cao_exits", 1.0, "published"),
            (2020, "E06000002", "population_0_17", 30_000.0, "published"),
        ],
        columns=["period", "la_code", "measure", "value", "status"],
    )
    frame, _ = assemble(measures, geography)
    one = frame.set_index("la_code").loc["E06000001"]
    assert one["kinship_exits"] == 8
    assert one["kinship_exits_per_10k"] == pytest.approx(2.0)
    assert one["sgo_exits_per_10k"] == pytest.approx(1.5)
    two = frame.set_index("la_code").loc["E06000002"]
    assert np.isnan(two["kinship_exits"])  # never zero: a suppressed part makes the sum missing
    assert two["kinship_exits_status"] == "suppressed"
    assert two["sgo_exits_status"] == "suppressed"
    assert two["region"] == "North East"


def test_panel_schema_rejects_inconsistent_rate(geography):
    geo, measures, pilot = synthetic_inputs(n_las=10)
    frame, _ = assemble(measures, geo)
    pilot = pilot.assign(first_treated_period=pd.array([2020] * 7, dtype="Int64"))
    panel = attach_treatment(frame, pilot)
    panel.loc[5, "kinship_exits_per_10k"] += 1.0
    with pytest.raises(InputError, match="rate per 10,000"):
        validate_panel(panel)


def test_panel_schema_rejects_duplicate_la_period():
    geo, measures, pilot = synthetic_inputs(n_las=10)
    frame, _ = assemble(measures, geo)
    pilot = pilot.assign(first_treated_period=pd.array([2020] * 7, dtype="Int64"))
    panel = attach_treatment(frame, pilot)
    with pytest.raises(InputError, match="duplicate"):
        validate_panel(pd.concat([panel, panel.iloc[[0]]]))


def test_illustrative_rows_are_flagged_and_deterministic():
    a, sim_a = _panel(0.25, seed=3)
    b, _ = _panel(0.25, seed=3)
    pd.testing.assert_frame_equal(a, b)
    sim_rows = a.loc[a["period"] >= 2026]
    assert sim_rows["illustrative"].all()
    assert not a.loc[a["period"] < 2026, "illustrative"].any()
    assert (sim_rows["kinship_exits_status"] == "illustrative").all()
    assert sim_a.truth["period"].min() == 2027
    c, _ = _panel(0.25, seed=4)
    assert not a["kinship_exits"].equals(c["kinship_exits"])


def test_simulation_recovers_injected_effect():
    panel, sim = _panel(effect=0.6, seed=11)
    panel = panel.assign(g=panel["first_treated"].fillna(0).astype(int))
    res = twfe(
        panel, unit="la_code", time="period", outcome="kinship_exits_per_10k", first_treated="g"
    )
    truth = sim.true_att("kinship_exits_per_10k")
    assert truth > 0.5
    assert truth == pytest.approx(
        sim.true_att("sgo_exits_per_10k") + sim.true_att("cao_exits_per_10k")
    )
    assert sim.true_att("cla_31mar_per_10k") == 0
    assert res.ci_low <= truth <= res.ci_high
    assert res.ci_low > 0  # a 60% increase is detected
    assert abs(res.att - truth) < 0.5 * truth


def test_simulation_without_effect_is_unbiased_on_average():
    estimates = []
    for seed in range(8):
        panel, sim = _panel(effect=0.0, seed=100 + seed)
        assert sim.true_att("kinship_exits_per_10k") == 0
        panel = panel.assign(g=panel["first_treated"].fillna(0).astype(int))
        res = twfe(
            panel, unit="la_code", time="period", outcome="kinship_exits_per_10k", first_treated="g"
        )
        estimates.append(res.att / res.se)
    # t-statistics under no effect: mean near 0
    assert abs(np.mean(estimates)) < 1.0


def test_growing_dynamics_and_stagger():
    starts = staggered_starts({"E1": 2027, "E2": 2027, "E3": 2027}, stagger=True)
    assert starts == {"E1": 2027, "E2": 2028, "E3": 2027}
    _, sim = _panel(effect=0.5, seed=5, dynamics="growing")
    sgo = sim.truth.loc[sim.truth["outcome"] == "sgo_exits_per_10k"]
    by_e = sgo.groupby("event_time")["effect"].mean()
    assert by_e.loc[1] == pytest.approx(2 * by_e.loc[0], rel=0.35)
