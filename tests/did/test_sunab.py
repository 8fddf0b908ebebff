"""Sun & Abraham interaction-weighted event study: known truths and the single-cohort case."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from linearmodels.panel import PanelOLS

from kinship_eval.did.staggered import callaway_santanna
from kinship_eval.did.sunab import sun_abraham
from kinship_eval.errors import DataWarning, InputError

COLS = dict(unit="id", time="t", outcome="y", first_treated="g")
PERIODS = tuple(range(1, 11))


def _effect(g: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Cohort-specific dynamic effects: slope 0.5 (g=4), 1.5 (g=6), 3 (g=8) per event period."""
    slope = np.select([g == 4, g == 6, g == 8], [0.5, 1.5, 3.0], 0.0)
    return np.where((g > 0) & (e >= 0), slope * (e + 1), 0.0)


def _simulate(
    *,
    n_units: int = 240,
    cohorts: tuple[int, ...] = (4, 6, 8, 0),
    noise: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.asarray(PERIODS)
    g = np.asarray(cohorts)[np.arange(n_units) % len(cohorts)]
    unit = np.repeat(np.arange(n_units), len(t))
    tt = np.tile(t, n_units)
    gg = np.repeat(g, len(t))
    effect = _effect(gg, tt - gg)
    y = (
        rng.normal(size=n_units)[unit]
        + rng.normal(size=len(t))[tt - 1]
        + effect
        + noise * rng.normal(size=len(tt))
    )
    return pd.DataFrame({"id": unit, "t": tt, "y": y, "g": gg, "effect": effect})


def _truth_by_event_time(df: pd.DataFrame) -> pd.Series:
    treated = df[(df.g > 0) & (df.t >= df.g)]
    return treated.groupby(treated.t - treated.g)["effect"].mean()


def _pooled_twfe_event_study(df: pd.DataFrame, ref: int = -1) -> pd.Series:
    """Conventional event-study regression: pooled relative-time dummies, unit and time FE."""
    d = df.copy()
    d["e"] = np.where(d.g > 0, d.t - d.g, -999)
    names = {}
    for e in sorted(d.e.unique()):
        if e in (-999, ref):
            continue
        name = f"e_{e}".replace("-", "m")
        names[name] = e
        d[name] = (d.e == e).astype(float)
    d = d.set_index(["id", "t"])
    fit = PanelOLS(d["y"], d[list(names)], entity_effects=True, time_effects=True).fit()
    return pd.Series(fit.params.to_numpy(), index=list(names.values()))


def test_recovers_heterogeneous_dynamic_effects_where_twfe_is_biased() -> None:
    df = _simulate(noise=0.05)
    res = sun_abraham(df, **COLS)
    truth = _truth_by_event_time(df)
    es = res.event_study.set_index("rel_time")
    post = es.loc[es.index >= 0]
    np.testing.assert_allclose(post["att"], truth.loc[post.index], atol=0.03)
    pre = es.loc[(es.index < 0) & (es.index != -1)]
    np.testing.assert_allclose(pre["att"], 0.0, atol=0.03)
    assert es.loc[-1, "att"] == 0.0
    assert math.isnan(es.loc[-1, "se"])
    # the pooled two-way fixed-effects event study is contaminated by other cohorts' effects
    twfe = _pooled_twfe_event_study(df)
    bias = (twfe.loc[post.index] - truth.loc[post.index]).abs()
    assert bias.max() > 0.3
    assert twfe.loc[[-3, -2]].abs().max() > 0.5  # spurious pre-trends
    # the headline is the cohort-size weighted mean of each cohort's post-period average
    cohort_truth = (
        df[(df.g > 0) & (df.t >= df.g)].groupby(["g", "t"])["effect"].mean().groupby("g").mean()
    )
    assert res.att == pytest.approx(cohort_truth.mean(), abs=0.03)
    assert res.se < 0.05
    assert abs(res.att - cohort_truth.mean()) < 4 * res.se


def test_exact_without_noise_and_equal_to_cs_never_treated() -> None:
    df = _simulate(noise=0.0)
    res = sun_abraham(df, **COLS)
    truth = _truth_by_event_time(df)
    post = res.event_study[res.event_study.rel_time >= 0].set_index("rel_time")["att"]
    np.testing.assert_allclose(post, truth.loc[post.index], atol=1e-9)
    gt = res.group_time.set_index(["group", "time"])["att"]
    cells = df[(df.g > 0) & (df.t >= df.g)].groupby(["g", "t"])["effect"].mean()
    np.testing.assert_allclose(gt.loc[cells.index], cells, atol=1e-9)
    # with never-treated controls and e = -1 as reference, post cells equal CS ATT(g,t)
    noisy = _simulate(noise=1.0, seed=5)
    sa = sun_abraham(noisy, **COLS)
    cs = callaway_santanna(noisy, **COLS, est_method="reg")
    cs_post = cs.group_time[cs.group_time.post == 1].set_index(["group", "time"])["att"]
    sa_gt = sa.group_time.set_index(["group", "time"])["att"]
    np.testing.assert_allclose(sa_gt.loc[cs_post.index], cs_post, atol=1e-10)
    assert sa.att == pytest.approx(cs.att, abs=1e-10)


def test_single_cohort_equals_twfe_event_study() -> None:
    df = _simulate(n_units=200, cohorts=(5, 0), noise=1.0, seed=3)
    df = df.sample(frac=0.9, random_state=1).sort_values(["id", "t"])  # unbalanced
    assert len(df) == 1800
    res = sun_abraham(df, **COLS)
    d = df.copy()
    d["e"] = np.where(d.g > 0, d.t - d.g, -999)
    names = []
    for e in sorted(set(d.e) - {-999, -1}):
        names.append(f"e_{e}".replace("-", "m"))
        d[names[-1]] = (d.e == e).astype(float)
    d = d.set_index(["id", "t"])
    fit = PanelOLS(d["y"], d[names], entity_effects=True, time_effects=True).fit(
        cov_type="clustered", cluster_entity=True, count_effects=False, auto_df=False
    )
    es = res.event_study.set_index("rel_time").drop(index=-1)
    np.testing.assert_allclose(es["att"], fit.params.to_numpy(), rtol=0, atol=1e-10)
    # linearmodels' clustered covariance has the G/(G-1) factor only; ours adds (N-1)/(N-K)
    n_obs, n_units, k = 1800, 200, len(names) + 9 + 1
    factor = res.extra["small_sample_factor"]
    assert factor == pytest.approx(200 / 199 * (n_obs - 1) / (n_obs - k))
    np.testing.assert_allclose(
        es["se"] / math.sqrt(factor) * math.sqrt(n_units / (n_units - 1)),
        fit.std_errors.to_numpy(),
        rtol=1e-9,
    )
    assert res.n_units == 200
    assert res.n_treated_units == 100


def test_interaction_weights_are_cohort_shares() -> None:
    df = _simulate(noise=1.0, seed=8)
    df = df[df.id % 8 != 2]  # drop half of cohort 8 to make the cohorts unequal
    res = sun_abraham(df, **COLS)
    gt = res.group_time
    es = res.event_study.set_index("rel_time")
    for e in (-3, 0, 2):
        cells = gt[gt.rel_time == e]
        expected = np.average(cells["att"], weights=cells["n_obs"])
        assert es.loc[e, "att"] == pytest.approx(expected, abs=1e-12)
        assert es.loc[e, "n_obs"] == cells["n_obs"].sum()
    cohorts = pd.DataFrame(res.extra["cohort_effects"]).set_index("group")
    assert cohorts["size"].to_dict() == {4: 60.0, 6: 60.0, 8: 30.0}
    expected_att = np.average(cohorts["att"], weights=cohorts["size"])
    assert res.att == pytest.approx(expected_att, abs=1e-12)


def test_last_treated_cohort_as_control() -> None:
    df = _simulate(cohorts=(4, 6, 8), noise=0.0)
    res = sun_abraham(df, **COLS, control_cohort="last_treated")
    # without never-treated units the last-treated cohort is used anyway, with a note
    auto = sun_abraham(df, **COLS)
    pd.testing.assert_frame_equal(auto.group_time, res.group_time)
    assert "no never-treated units" in auto.notes[0]
    assert res.n_periods == 7  # periods before cohort 8 is treated
    assert set(res.group_time.group) == {4, 6}
    cells = df[(df.g.isin([4, 6])) & (df.t >= df.g) & (df.t < 8)]
    truth = cells.groupby(["g", "t"])["effect"].mean()
    gt = res.group_time.set_index(["group", "time"])["att"]
    np.testing.assert_allclose(gt.loc[truth.index], truth, atol=1e-9)
    assert "last-treated cohort (8)" in res.notes[0]
    # with never-treated units present, last_treated adds cohort 8 to the comparison group
    mixed = _simulate(noise=0.0)
    both = sun_abraham(mixed, **COLS, control_cohort="last_treated")
    assert set(both.group_time.group) == {4, 6}
    assert both.n_units == mixed.id.nunique()


def test_window_and_reference_options() -> None:
    df = _simulate(noise=1.0, seed=2)
    full = sun_abraham(df, **COLS)
    window = sun_abraham(df, **COLS, leads=3, lags=2)
    assert window.event_study.rel_time.tolist() == [-3, -2, -1, 0, 1, 2]
    f = full.event_study.set_index("rel_time")
    np.testing.assert_allclose(window.event_study["att"], f.loc[[-3, -2, -1, 0, 1, 2], "att"])
    assert window.att != pytest.approx(full.att)  # only e <= 2 enter the headline
    two_refs = sun_abraham(df, **COLS, ref_period=[-1, -5])
    es = two_refs.event_study.set_index("rel_time")
    assert es.loc[-5, "att"] == 0.0
    assert es.loc[-1, "att"] == 0.0
    assert two_refs.settings["ref_period"] == [-5, -1]


def test_covariates_and_weights() -> None:
    df = _simulate(noise=0.0, seed=4)
    rng = np.random.default_rng(0)
    df["x"] = rng.normal(size=len(df))
    df["y"] = df["y"] + 2.0 * df["x"]
    res = sun_abraham(df, **COLS, covariates=["x"])
    truth = _truth_by_event_time(df)
    post = res.event_study[res.event_study.rel_time >= 0].set_index("rel_time")["att"]
    np.testing.assert_allclose(post, truth.loc[post.index], atol=1e-9)
    df["w"] = np.where(df["id"] % 3 == 0, 3.0, 1.0)
    weighted = sun_abraham(df, **COLS, covariates=["x"], weights="w")
    # cell effects are exact either way; the shares behind event-time averages are weighted
    np.testing.assert_allclose(weighted.group_time["att"], res.group_time["att"], atol=1e-9)
    cells = weighted.group_time[weighted.group_time.rel_time == 2].set_index("group")
    w_sum = df[df.t - df.g == 2].groupby("g")["w"].sum()
    expected = np.average(cells["att"], weights=w_sum.loc[cells.index])
    es = weighted.event_study.set_index("rel_time")
    assert es.loc[2, "att"] == pytest.approx(expected, abs=1e-12)


def test_always_treated_cohort_dropped_and_validation() -> None:
    df = _simulate(noise=1.0, seed=6)
    df.loc[df.id < 4, "g"] = 1  # treated from the first period: no reference period
    with pytest.warns(DataWarning):
        res = sun_abraham(df, **COLS)
    assert 1 not in set(res.group_time.group)
    assert res.n_units == df.id.nunique() - 4
    with pytest.raises(InputError):
        sun_abraham(df, **COLS, control_cohort="everyone")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        sun_abraham(df, **COLS, leads=-1)


def test_results_serialise_to_strict_json() -> None:
    out = json.loads(json.dumps(sun_abraham(_simulate(), **COLS).to_dict(), allow_nan=False))
    assert out["estimator"] == "sunab"
    ref_row = next(r for r in out["event_study"] if r["rel_time"] == -1)
    assert ref_row["att"] == 0.0
    assert ref_row["se"] is None
    assert len(out["cohort_effects"]) == 3
