"""The calibration study: seeded, job-count independent, and sane on a small run."""

from __future__ import annotations

import pandas as pd
import pytest

from kinship_eval.did.calibration import calibration_study, simulated_panel


@pytest.fixture(scope="module")
def small_study():
    panels = {"simulated": simulated_panel(n_units=40, n_periods=6, seed=1)}
    return calibration_study(
        panels, n_draws=30, n_treated=8, wild_reps=199, ri_reps=99, seed=5, n_jobs=1
    )


def test_size_and_coverage_are_plausible(small_study):
    table = small_study.table.set_index("method")
    assert set(table.index) == {"cluster", "wild_bootstrap", "randomization"}
    for method in ("wild_bootstrap", "randomization"):
        # 30 draws: a 5% test rejects at most ~5 times with high probability
        assert table.loc[method, "size"] <= 0.17
        assert table.loc[method, "coverage"] >= 0.83
    assert (table["draws"] == 30).all()


def test_results_do_not_depend_on_the_number_of_jobs():
    panels = {"simulated": simulated_panel(n_units=40, n_periods=6, seed=1)}
    kwargs = {"n_draws": 8, "n_treated": 8, "wild_reps": 99, "ri_reps": 49, "seed": 5}
    one = calibration_study(panels, n_jobs=1, **kwargs)
    two = calibration_study(panels, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert "| simulated | wild_bootstrap | 8 |" in two.to_markdown()
