"""The pilot's appraisal model: defaults from data, streams, perspectives, specs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from kinship_eval.cba.model import (
    PERSPECTIVES,
    CBAAssumptions,
    EffectInput,
    appraise_pilot,
    default_inputs,
    evaluate,
)
from kinship_eval.cba.prices import Deflators
from kinship_eval.cba.spec import load_cba_spec, run_cba
from kinship_eval.did.results import DiDResults
from kinship_eval.errors import InputError, SpecError

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "analysis" / "specs" / "cba.yaml"


def _pv(values: list[float], first: int = 0) -> float:
    """PV at 3.5% of values for years first, first + 1, ... (all inside the 0-30 band)."""
    return sum(v / 1.035 ** (first + k) for k, v in enumerate(values))


@pytest.fixture(scope="module")
def simple() -> CBAAssumptions:
    """10,000 children, so an effect of 1 per 10,000 is one extra child a year."""
    return CBAAssumptions(
        child_population=10_000,
        effect=EffectInput(estimate=1.0, se=0.0),
        duration_exit_years=2.5,
        recipients=100,
        allowance_per_week=200.0,
        upkeep_per_week=150.0,
        foster_cost_per_week=800.0,
        residential_cost_per_week=8000.0,
        residential_share=0.25,
        kinship_support_per_week=40.0,
        admin_share=0.1,
        horizon_years=12,
    )


# ---------------------------------------------------------------------- defaults from data
def test_default_allowance_is_the_nma_weighted_by_area_and_age() -> None:
    nma = {  # 2025-26 NMA, £/week, ages 0-2, 3-4, 5-10, 11-15, 16-17
        "london": [198, 201, 225, 257, 299],
        "south_east": [189, 196, 216, 247, 288],
        "rest": [170, 176, 194, 220, 258],
    }
    mix = [0.10, 0.15, 0.40, 0.25, 0.10]
    children = {  # ONS MYE 2024, 0-17, by NMA area of the pilot LAs
        "london": 58_724,  # Bexley
        "south_east": 68_774 + 46_271,  # Medway, Thurrock
        "rest": 75_599 + 61_206 + 33_522 + 104_201,  # Bolton, Newcastle, NE Lincs, Wiltshire
    }
    total = sum(children.values())
    expected = sum(children[a] / total * float(np.dot(nma[a], mix)) for a in nma)
    got = default_inputs("2025-26")
    assert got["allowance_per_week"].value == pytest.approx(expected, rel=1e-12)
    assert got["child_population"].value == total
    low = sum(children[a] / total * nma[a][1] for a in nma)
    assert got["allowance_per_week"].low == pytest.approx(low, rel=1e-12)


def test_default_care_costs_weight_pilot_las_by_looked_after_children() -> None:
    # (children looked after 2025, S251 fostering 2024-25, residential 2024-25) per pilot LA
    las = [
        (289, 970, 7360),
        (590, 610, 7655),
        (654, 640, 9600),
        (438, 645, 6635),
        (495, 1195, 9300),
        (276, 990, 12350),
        (478, 795, 8505),
    ]
    n = sum(r[0] for r in las)
    foster = sum(r[0] * r[1] for r in las) / n
    res = sum(r[0] * r[2] for r in las) / n
    a = CBAAssumptions(price_base_year="2024-25")
    assert a.foster_cost_per_week == pytest.approx(foster, rel=1e-12)
    assert a.residential_cost_per_week == pytest.approx(res, rel=1e-12)
    d = Deflators.load()
    b = CBAAssumptions(price_base_year="2025-26")
    assert b.foster_cost_per_week == pytest.approx(foster * d.value("2025-26") / 100, rel=1e-12)
    assert a.ranges == {}
    assert a.range_for("foster_cost_per_week").high == 1195


def test_implied_cost_is_consistent_with_the_announced_budget() -> None:
    res = appraise_pilot()
    s = res.streams.set_index(["component", "year_index"])["amount"]
    two_years = sum(s[("allowance", t)] + s[("administration", t)] for t in (1, 2))
    assert 0.85 * 126e6 < two_years < 1.15 * 126e6


def test_assumptions_table_lists_every_value_with_a_source() -> None:
    table = CBAAssumptions().table()
    assert table["source"].str.len().gt(0).all()
    assert table["evidence"].str.len().gt(0).all()
    changed = CBAAssumptions(admin_share=0.3).table().set_index("parameter")
    assert changed.loc["admin_share", "source"] == "set in the appraisal spec"


# ---------------------------------------------------------------------- streams
def test_child_years_spread_each_cohort_over_its_duration(simple: CBAAssumptions) -> None:
    res = appraise_pilot(simple)
    cy = res.children["child_years"].to_numpy()
    # one extra child in each of years 1-3, each 2.5 years in kinship instead of care
    np.testing.assert_allclose(cy[:7], [0, 1, 2, 2.5, 1.5, 0.5, 0], atol=1e-12)
    assert res.children["additional_exits"].sum() == pytest.approx(3.0)
    care_pw = 0.75 * 800 + 0.25 * 8000
    avoided = res.streams.query("component == 'avoided_care'")["amount"].to_numpy()
    np.testing.assert_allclose(avoided[:7], cy[:7] * care_pw * 52, rtol=1e-13)


def test_fiscal_perspective_by_hand(simple: CBAAssumptions) -> None:
    res = appraise_pilot(simple).perspectives["fiscal"]
    ob = simple.optimism_bias
    allowance = 100 * 200 * 52
    per_year = allowance * (1 + ob.allowance_payments) + 0.1 * allowance * (1 + ob.administration)
    cy = [0, 1, 2, 2.5, 1.5, 0.5]
    costs = _pv([per_year] * 3, first=1) + _pv([c * 40 * 52 for c in cy])
    benefits = _pv([c * (0.75 * 800 + 0.25 * 8000) * 52 for c in cy])
    assert res.pv_costs == pytest.approx(costs, rel=1e-12)
    assert res.pv_benefits == pytest.approx(benefits, rel=1e-12)
    assert res.bcr == pytest.approx(benefits / costs, rel=1e-12)


def test_transfers_net_out_of_the_economic_perspective(simple: CBAAssumptions) -> None:
    base = simple.with_values(admin_share=0.0, cost_of_funds=0.0)
    richer = base.with_values(
        allowance_per_week=400.0,
        recipients=900,
        **{"optimism_bias.allowance_payments": 0.3},
    )
    r0, r1 = appraise_pilot(base), appraise_pilot(richer)
    for p in ("economic", "social"):
        assert r1.perspectives[p].npsv == r0.perspectives[p].npsv
        assert r1.perspectives[p].pv_costs == r0.perspectives[p].pv_costs
    extra = (400 * 900 * 1.3 - 200 * 100 * (1 + base.optimism_bias.allowance_payments)) * 52
    assert r0.perspectives["fiscal"].npsv - r1.perspectives["fiscal"].npsv == pytest.approx(
        _pv([extra] * 3, first=1), rel=1e-12
    )


def test_economic_minus_fiscal_is_allowance_less_upkeep_and_cost_of_funds(
    simple: CBAAssumptions,
) -> None:
    a = simple.with_values(cost_of_funds=0.2)
    res = appraise_pilot(a)
    pv = {
        c: sum(
            row.amount / 1.035**row.year_index
            for row in res.streams.query("component == @c").itertuples()
        )
        for c in ("allowance", "upkeep", "cost_of_funds", "administration")
    }
    diff = res.perspectives["economic"].npsv - res.perspectives["fiscal"].npsv
    assert diff == pytest.approx(pv["allowance"] - pv["upkeep"] - pv["cost_of_funds"], rel=1e-12)
    assert pv["cost_of_funds"] == pytest.approx(0.2 * (pv["allowance"] + pv["administration"]))


def test_additionality_scales_the_effect(simple: CBAAssumptions) -> None:
    r0 = appraise_pilot(simple)
    r1 = appraise_pilot(simple.with_values(**{"additionality.displacement": 0.2}))
    for p in PERSPECTIVES:
        assert r1.perspectives[p].pv_benefits == pytest.approx(
            0.8 * r0.perspectives[p].pv_benefits, rel=1e-13
        )
    assert CBAAssumptions().additionality.deadweight == 0.0


def test_social_outcomes_start_at_adulthood(simple: CBAAssumptions) -> None:
    a = simple.with_values(
        effect_years=(1,),
        **{
            "social.enabled": True,
            "social.years_to_adulthood": 10,
            "social.working_years": 2,
            "social.annual_earnings": 30_000.0,
            "social.causal_share": 0.5,
        },
    )
    res = appraise_pilot(a)
    emp = res.streams.query("component == 'employment'")["amount"].to_numpy()
    gap = 0.69 - (0.75 * 0.59 + 0.25 * 0.48)
    expected = np.zeros(12)
    expected[[11]] = gap * 0.5 * 30_000  # cohort of year 1: years 11 and 12 (12 is past horizon)
    np.testing.assert_allclose(emp, expected, atol=1e-9)
    extra = res.perspectives["social"].pv_benefits - res.perspectives["economic"].pv_benefits
    assert extra == pytest.approx(gap * 0.5 * 30_000 / 1.035**11, rel=1e-12)
    off = appraise_pilot(simple)
    assert off.perspectives["social"].npsv == off.perspectives["economic"].npsv


def test_vectorised_engine_matches_the_flow_appraisal() -> None:
    a = CBAAssumptions(cost_of_funds=0.2, diverted_entries_per_10k=0.3, court_cost_per_entry=5e3)
    res = appraise_pilot(a)
    values = evaluate(a)
    for p in PERSPECTIVES:
        assert values[p]["npsv"][0] == pytest.approx(res.perspectives[p].npsv, rel=1e-12)
        assert values[p]["bcr"][0] == pytest.approx(res.perspectives[p].bcr, rel=1e-12)
    # two draws at once give the two scalar answers
    both = evaluate(a, {"recipients": np.array([4000.0, 6000.0])})["fiscal"]["npsv"]
    single = evaluate(a.with_values(recipients=6000))["fiscal"]["npsv"][0]
    assert both[1] == pytest.approx(single, rel=1e-13)


def test_results_views() -> None:
    res = appraise_pilot()
    frame = res.to_frame()
    assert frame["perspective"].tolist() == list(PERSPECTIVES)
    out = json.loads(json.dumps(res.to_dict()))
    for p in PERSPECTIVES:
        assert {"pv_costs", "pv_benefits", "npsv", "bcr", "benefit_per_pound_spent"} <= set(
            out["perspectives"][p]
        )
    assert out["effect"]["illustrative"] is True
    assert res.fiscal_return == res.perspectives["fiscal"].bcr
    assert res.benefit_per_pound_spent("fiscal") == pytest.approx(res.fiscal_return)
    assert "ILLUSTRATIVE" in res.summary()
    assert "ILLUSTRATIVE" in res.headline()


def test_fiscal_payback(simple: CBAAssumptions) -> None:
    res = appraise_pilot(simple.with_values(**{"effect.estimate": 5.0}))
    cum = res.perspectives["fiscal"].by_year["cumulative_pv_net"].to_numpy()
    t = res.payback_year
    assert t is not None
    assert 1 < t < 12
    assert (cum[t:] >= 0).all()
    assert cum[t - 1] < 0
    assert res.to_dict()["payback_financial_year"] == f"{2025 + t}-{(26 + t) % 100:02d}"
    # savings above costs from the first payment year: payback in that year, not in year 0
    big = appraise_pilot(simple.with_values(**{"effect.estimate": 500.0}))
    assert big.payback_year == 1
    assert appraise_pilot(simple).payback_year is None


# ---------------------------------------------------------------------- the DiD link
def test_effect_from_did_results() -> None:
    did = DiDResults(
        estimator="twfe",
        outcome="kinship_exits_per_10k",
        att=0.8,
        se=0.3,
        n_units=150,
        n_treated_units=7,
        n_periods=12,
    )
    a = CBAAssumptions.from_did(did, horizon_years=20)
    assert a.effect.estimate == 0.8
    assert a.effect.se == 0.3
    assert a.effect.interval() == pytest.approx((0.8 - 1.959964 * 0.3, 0.8 + 1.959964 * 0.3))
    assert not a.effect.illustrative
    assert "twfe" in a.effect.source
    from_json = EffectInput.from_did({"att": 1.2, "se": None, "ci_low": None, "ci_high": None})
    assert from_json.se == 0.0
    assert from_json.estimate == 1.2
    with pytest.raises(ValueError, match="no finite 'att'"):
        EffectInput.from_did({"att": math.nan, "se": 1.0})


# ---------------------------------------------------------------------- validation
def test_invalid_assumptions_are_rejected() -> None:
    with pytest.raises(ValidationError, match="outside the horizon"):
        CBAAssumptions(payment_years=(1, 40))
    with pytest.raises(ValidationError, match="unknown parameters"):
        CBAAssumptions(ranges={"nonsense": {"low": 0, "high": 1}})
    with pytest.raises(ValidationError, match="below low"):
        CBAAssumptions(ranges={"admin_share": {"low": 0.5, "high": 0.1}})
    with pytest.raises(ValidationError):
        CBAAssumptions(residential_share=1.5)
    with pytest.raises(ValidationError):
        CBAAssumptions(unknown_field=1)
    with pytest.raises(InputError, match="no discount schedule named"):
        CBAAssumptions(discount_schedule="nope")
    with pytest.raises(InputError, match="no GDP deflator"):
        CBAAssumptions(price_base_year="2040-41")


# ---------------------------------------------------------------------- specs
def test_default_spec_runs(tmp_path: Path) -> None:
    run = run_cba(SPEC, ["monte_carlo.draws=2000"])
    assert run.assumptions.effect.illustrative
    assert set(run.switching["perspective"]) == {"fiscal", "economic"}
    assert run.monte_carlo is not None
    assert run.monte_carlo.n_draws == 2000
    out = json.loads(json.dumps(run.to_dict()))
    assert out["perspectives"]["economic"]["bcr"] == pytest.approx(
        run.results.perspectives["economic"].bcr
    )
    written = run.write(tmp_path)
    names = {p.name for p in written}
    assert {"cba_results.json", "cba_tornado.png", "cba_perspectives.csv"} <= names
    assert all(p.stat().st_size > 0 for p in written)
    assert "Switching values" in run.summary()


def test_spec_overrides_and_effect_from_did_json(tmp_path: Path) -> None:
    est = tmp_path / "estimate.json"
    est.write_text(json.dumps({"att": 2.0, "se": 0.4, "ci_low": 1.2, "ci_high": 2.8}))
    spec = tmp_path / "cba.yaml"
    spec.write_text(
        "assumptions:\n  admin_share: 0.05\neffect:\n  source: did_json\n  path: estimate.json\n"
        "monte_carlo:\n  enabled: false\n",
        encoding="utf-8",
    )
    run = run_cba(spec, ["assumptions.recipients=4500"])
    a = run.assumptions
    assert (a.effect.estimate, a.effect.se, a.effect.ci_high) == (2.0, 0.4, 2.8)
    assert not a.effect.illustrative
    assert a.admin_share == 0.05
    assert a.recipients == 4500
    assert run.monte_carlo is None


def test_spec_errors(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("assumptions:\n  admin_shar: 0.1\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"assumptions\.admin_shar': unknown field"):
        load_cba_spec(spec)
    spec.write_text("monte_carlo:\n  draws: 0\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"monte_carlo\.draws"):
        load_cba_spec(spec)
    spec.write_text("assumptions:\n  effect: {estimate: 1}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="top-level 'effect'"):
        load_cba_spec(spec)
    spec.write_text("effect:\n  source: did_json\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"needs effect\.path"):
        run_cba(spec)
    with pytest.raises(SpecError, match="not found"):
        load_cba_spec(tmp_path / "absent.yaml")
