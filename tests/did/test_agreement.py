"""Estimators against known truth on seeded simulations.

* Staggered cohorts with effects growing with exposure: TWFE is biased (forbidden comparisons),
  Callaway–Sant'Anna, Sun–Abraham and imputation recover the cohort-aggregated truth.
* A single cohort with a homogeneous effect: every estimator agrees with the truth and each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did.estimate import fit

pytestmark = pytest.mark.reference

PERIODS = range(2000, 2016)


def _staggered(seed: int = 7, noise: float = 0.1) -> tuple[pd.DataFrame, float, dict[int, float]]:
    """Cohorts 2004/2008/2012 + never treated; effect 1 + 0.5 e in event time e >= 0."""
    rng = np.random.default_rng(seed)
    cohorts = (0, 2004, 2008, 2012)
    rows = []
    for i in range(200):
        g = cohorts[i % 4]
        alpha = rng.normal(0, 1)
        for t in PERIODS:
            effect = 1.0 + 0.5 * (t - g) if g and t >= g else 0.0
            rows.append((i, t, alpha + 0.3 * np.sin(t) + effect + rng.normal(0, noise), g))
    frame = pd.DataFrame(rows, columns=["unit", "year", "y", "g"])
    last = PERIODS[-1]
    cohort_means = {
        g: float(np.mean([1 + 0.5 * e for e in range(last - g + 1)])) for g in cohorts[1:]
    }
    truth = float(np.mean(list(cohort_means.values())))  # equal cohort sizes
    return frame, truth, cohort_means


def _fit(estimator: str, frame: pd.DataFrame, **kw):
    return fit(estimator, frame, unit="unit", time="year", outcome="y", first_treated="g", **kw)


@pytest.fixture(scope="module")
def staggered():
    return _staggered()


@pytest.mark.parametrize("estimator", ["cs", "sunab", "imputation"])
def test_heterogeneity_robust_estimators_recover_truth(staggered, estimator):
    frame, truth, _ = staggered
    options = {"pretrend_leads": 3} if estimator == "imputation" else {}
    res = _fit(estimator, frame, **options)
    assert res.att == pytest.approx(truth, abs=0.03)
    es = res.event_study.set_index("rel_time")["att"]
    for e in (0, 1, 2, 3):
        assert es.loc[e] == pytest.approx(1 + 0.5 * e, abs=0.05)
    for e in (-3, -2):
        assert es.loc[e] == pytest.approx(0.0, abs=0.05)


def test_twfe_is_biased_under_growing_staggered_effects(staggered):
    frame, truth, _ = staggered
    res = _fit("twfe", frame)
    # already-treated cohorts serve as controls: the growing effects bias TWFE well below truth
    assert res.att < truth - 1.0
    assert res.ci_high < truth


def test_cs_group_effects_equal_cohort_truth(staggered):
    frame, _, cohort_means = staggered
    res = _fit("cs", frame)
    groups = res.aggregate("group").table.set_index("group")["att"]
    for g, mean in cohort_means.items():
        assert groups.loc[g] == pytest.approx(mean, abs=0.05)


def _single_cohort(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(80):
        g = 2010 if i < 20 else 0
        alpha = rng.normal(10, 2)
        for t in PERIODS:
            effect = 2.0 if g and t >= g else 0.0
            rows.append((i, t, alpha + 0.2 * (t - 2000) + effect + rng.normal(0, 0.3), g))
    return pd.DataFrame(rows, columns=["unit", "year", "y", "g"])


@pytest.mark.parametrize(
    ("estimator", "options"),
    [
        ("twfe", {}),
        ("event_study", {"leads": 3, "lags": 5}),
        ("cs", {}),
        ("sunab", {}),
        ("imputation", {}),
        ("sdid", {"reps": 50, "seed": 1}),
        ("sc", {"reps": 50, "seed": 1}),
    ],
)
def test_all_estimators_agree_on_a_homogeneous_single_cohort(estimator, options):
    res = _fit(estimator, _single_cohort(), **options)
    assert res.att == pytest.approx(2.0, abs=0.1)
    assert res.ci_low < 2.0 < res.ci_high


def test_twfe_and_imputation_coincide_on_single_cohort():
    frame = _single_cohort()
    a = _fit("twfe", frame)
    b = _fit("imputation", frame)
    assert a.att == pytest.approx(b.att, abs=1e-8)


def test_poisson_recovers_a_proportional_effect():
    rng = np.random.default_rng(5)
    rows = []
    for i in range(120):
        g = 2010 if i < 30 else 0
        mu = rng.uniform(20, 80)
        for t in PERIODS:
            lam = mu * np.exp(0.02 * (t - 2000)) * (1.3 if g and t >= g else 1.0)
            rows.append((i, t, float(rng.poisson(lam)), g))
    frame = pd.DataFrame(rows, columns=["unit", "year", "y", "g"])
    res = _fit("poisson", frame)
    assert res.extra["proportional_effect"] == pytest.approx(0.3, abs=0.04)
