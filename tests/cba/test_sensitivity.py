"""Switching values, tornado tables and Monte Carlo for the pilot appraisal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinship_eval.cba.model import PERSPECTIVES, CBAAssumptions, EffectInput, evaluate
from kinship_eval.cba.sensitivity import (
    DEFAULT_DRAWS,
    monte_carlo,
    plot_tornado,
    switching_value,
    switching_values,
    tornado,
)


@pytest.fixture(scope="module")
def base() -> CBAAssumptions:
    return CBAAssumptions()


def _bcr(a: CBAAssumptions, perspective: str, **values: float) -> float:
    return float(evaluate(a.with_values(**values))[perspective]["bcr"][0])


# ---------------------------------------------------------------------- switching values
@pytest.mark.parametrize("perspective", ["fiscal", "economic"])
def test_effect_switching_value_gives_bcr_of_one(base: CBAAssumptions, perspective: str) -> None:
    sv = switching_value(base, "effect.estimate", perspective=perspective)
    assert sv["found"]
    # re-validate the assumptions at the switching value, outside the search code path
    assert _bcr(base, perspective, **{"effect.estimate": sv["switching_value"]}) == pytest.approx(
        1.0, abs=1e-9
    )
    # NPSV is linear in the effect: the root of the line through two evaluations
    n0 = float(evaluate(base)[perspective]["npsv"][0])
    n1 = float(evaluate(base.with_values(**{"effect.estimate": 2.0}))[perspective]["npsv"][0])
    line_root = 1.0 - n0 / (n1 - n0)
    assert sv["switching_value"] == pytest.approx(line_root, rel=1e-8)


@pytest.mark.parametrize(
    "parameter",
    ["duration_exit_years", "foster_cost_per_week", "admin_share", "residential_share"],
)
def test_other_switching_values_give_bcr_of_one(base: CBAAssumptions, parameter: str) -> None:
    sv = switching_value(base, parameter, perspective="economic")
    assert sv["found"], sv["note"]
    assert _bcr(base, "economic", **{parameter: sv["switching_value"]}) == pytest.approx(
        1.0, abs=1e-8
    )
    assert sv["change"] == pytest.approx(sv["switching_value"] - sv["base_value"])


def test_switching_value_absent_is_explained(base: CBAAssumptions) -> None:
    no_dependence = switching_value(base, "upkeep_per_week", perspective="fiscal")
    assert not no_dependence["found"]
    assert np.isnan(no_dependence["switching_value"])
    assert "does not depend" in no_dependence["note"]
    one_sided = switching_value(base, "residential_share", perspective="fiscal")
    assert not one_sided["found"]
    assert "keeps its sign" in one_sided["note"]


def test_switching_values_table(base: CBAAssumptions) -> None:
    table = switching_values(base, ["effect.estimate", "admin_share"], perspective="fiscal")
    assert table["parameter"].tolist() == ["effect.estimate", "admin_share"]
    assert {"base_value", "switching_value", "change_pct", "found", "note"} <= set(table.columns)
    with pytest.raises(KeyError, match="unknown parameters"):
        switching_values(base, ["nope"])
    with pytest.raises(ValueError, match="perspective"):
        switching_value(base, "admin_share", perspective="societal")


# ---------------------------------------------------------------------- tornado
def test_tornado_values_and_order(base: CBAAssumptions) -> None:
    table = tornado(base, perspective="economic")
    assert (np.diff(table["swing"].to_numpy()) <= 0).all()
    eff = table.set_index("parameter").loc["effect.estimate"]
    lo, hi = base.effect.interval()
    assert (eff["low"], eff["high"]) == pytest.approx((lo, hi))
    for name in ("effect.estimate", "admin_share", "foster_cost_per_week"):
        row = table.set_index("parameter").loc[name]
        low_a = base.with_values(**{name: row["low"]})
        assert row["npsv_low"] == pytest.approx(
            float(evaluate(low_a)["economic"]["npsv"][0]), rel=1e-12
        )
    assert table["swing"].iloc[0] == pytest.approx(
        abs(table["npsv_high"].iloc[0] - table["npsv_low"].iloc[0])
    )


def test_plot_tornado_draws_two_bars_per_input(base: CBAAssumptions) -> None:
    from matplotlib.figure import Figure

    table = tornado(base, ["effect.estimate", "admin_share", "recipients"])
    ax = plot_tornado(table, ax=Figure().subplots())
    assert len(ax.patches) == 2 * len(table)
    assert ax.get_yticklabels()[-1].get_text() == table["label"].iloc[0]


# ---------------------------------------------------------------------- Monte Carlo
def test_monte_carlo_defaults_and_seeded_determinism(base: CBAAssumptions) -> None:
    a = monte_carlo(base, seed=7)
    b = monte_carlo(base, seed=7)
    c = monte_carlo(base, seed=8)
    assert a.n_draws == DEFAULT_DRAWS >= 10_000
    pd.testing.assert_frame_equal(a.draws, b.draws)
    assert not a.draws["bcr_economic"].equals(c.draws["bcr_economic"])
    assert "effect.estimate" in a.drawn
    assert "admin_share" in a.drawn
    assert "cost_of_funds" not in a.drawn  # fixed ranges are not drawn
    p = a.prob_bcr_above(1.0, "economic")
    assert p == pytest.approx(float(np.mean(a.bcr("economic") > 1.0)))
    assert 0.0 < p < 1.0


def test_monte_carlo_with_no_variance_equals_the_deterministic_value(
    base: CBAAssumptions,
) -> None:
    fixed = {
        name: {"low": v, "high": v, "distribution": "triangular"}
        for name, v in base.parameters().items()
        if base.range_for(name) is not None
    }
    a = base.with_values(effect=EffectInput(estimate=1.5, se=0.0), ranges=fixed)
    mc = monte_carlo(a, n_draws=10_000, seed=1)
    det = evaluate(a)
    for p in PERSPECTIVES:
        assert mc.npsv(p).mean() == pytest.approx(float(det[p]["npsv"][0]), rel=1e-12)
        assert np.ptp(mc.bcr(p)) == 0.0
    assert len(mc.draws) == 10_000
    assert "effect.estimate" in mc.drawn
    assert "recipients" in mc.drawn
    assert all(d.startswith("constant") for d in mc.drawn.values())


def test_monte_carlo_mean_matches_deterministic_when_npsv_is_linear(
    base: CBAAssumptions,
) -> None:
    """Only the effect uncertain: NPSV is linear in it, so E[NPSV] = NPSV(E[effect])."""
    a = base
    mc = monte_carlo(a, n_draws=20_000, seed=3, parameters=["effect.estimate"])
    assert list(mc.drawn) == ["effect.estimate"]
    x = mc.npsv("fiscal")
    det = float(evaluate(a)["fiscal"]["npsv"][0])
    assert abs(x.mean() - det) < 4 * x.std(ddof=1) / np.sqrt(x.size)
    drawn = mc.draws["effect.estimate"].to_numpy()
    assert drawn.mean() == pytest.approx(a.effect.estimate, abs=4 * a.effect.se / np.sqrt(20_000))


def test_monte_carlo_resamples_bootstrap_draws(base: CBAAssumptions) -> None:
    pool = np.array([0.5, 1.0, 4.0])
    mc = monte_carlo(base, n_draws=10_000, seed=11, effect_draws=pool, parameters=[])
    values = mc.draws["effect.estimate"].to_numpy()
    assert set(np.unique(values)) == set(pool)
    assert "bootstrap" in mc.drawn["effect.estimate"]
    with pytest.raises(ValueError, match="no finite"):
        monte_carlo(base, n_draws=10, effect_draws=[np.nan])


def test_monte_carlo_summary_views(base: CBAAssumptions) -> None:
    mc = monte_carlo(base, n_draws=10_000, seed=5)
    table = mc.summary_table()
    assert set(table["perspective"]) == set(PERSPECTIVES)
    row = table.query("perspective == 'economic' and statistic == 'bcr'").iloc[0]
    assert row["p5"] <= row["p50"] <= row["p95"]
    assert row["prob_bcr_gt_1"] == mc.prob_bcr_above(1.0, "economic")
    assert "P(BCR>1)" in mc.summary()
    assert mc.to_dict()["n_draws"] == 10_000
