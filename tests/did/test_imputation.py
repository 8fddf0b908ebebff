"""Borusyak-Jaravel-Spiess imputation estimator: truths, closed forms, variance and coverage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did.imputation import imputation
from kinship_eval.did.staggered import callaway_santanna
from kinship_eval.errors import DataWarning, InputError

COLS = dict(unit="id", time="t", outcome="y", first_treated="g")


def _simulate(
    *,
    n_units: int = 240,
    periods: tuple[int, ...] = tuple(range(1, 9)),
    cohorts: tuple[int, ...] = (3, 5, 7, 0),
    noise: float = 1.0,
    unit_heterogeneity: float = 0.0,
    lead: int = 0,
    pretrend: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Effect ``r_g * (e + 1)`` from event time ``-lead`` on, plus unit noise.

    ``r_g`` is one plus the number of treated units in earlier cohorts (1, 61, 121 by default).
    """
    rng = np.random.default_rng(seed)
    t = np.asarray(periods)
    g = np.asarray(cohorts)[np.arange(n_units) % len(cohorts)]
    unit = np.repeat(np.arange(n_units), len(t))
    tt = np.tile(t, n_units)
    gg = np.repeat(g, len(t))
    e = tt - gg
    rank = np.searchsorted(np.sort(g[g > 0]), gg) + 1
    effect = np.where((gg > 0) & (e >= -lead), rank * (e + lead + 1), 0.0)
    effect = effect + np.where(
        (gg > 0) & (e >= 0), unit_heterogeneity * rng.normal(size=n_units)[unit], 0.0
    )
    trend = np.where(gg > 0, pretrend * tt, 0.0)
    y = (
        rng.normal(size=n_units)[unit]
        + rng.normal(size=len(t))[tt - t[0]]
        + trend
        + effect
        + noise * rng.normal(size=len(tt))
    )
    return pd.DataFrame({"id": unit, "t": tt, "y": y, "g": gg, "effect": effect})


def _cohort_average(treated: pd.DataFrame, column: str = "effect") -> float:
    """Each cohort's mean over its periods of the period means, cohorts weighted by their units."""
    cohort_means = treated.groupby(["g", "t"])[column].mean().groupby(level="g").mean()
    sizes = treated.groupby("g")["id"].nunique()
    return float(np.average(cohort_means, weights=sizes.loc[cohort_means.index]))


def _cohort_weights(treated: pd.DataFrame) -> np.ndarray:
    """Observation weights ``N_g / N_1 / T_g / n_gt`` of the cohort aggregation."""
    n_gt = treated.groupby(["g", "t"])["id"].transform("size").to_numpy()
    t_g = treated.groupby("g")["t"].transform("nunique").to_numpy()
    n_g = treated.groupby("g")["id"].transform("nunique").to_numpy()
    n_1 = treated.id.nunique()
    return n_g / n_1 / t_g / n_gt


def _dense_reference(df: pd.DataFrame, covariates: tuple[str, ...] = ()) -> dict[str, object]:
    """Textbook implementation with explicit unit and period dummies (small panels only)."""
    treated = (df.g > 0) & (df.t >= df.g)
    d0, d1 = df[~treated], df[treated]
    units = np.sort(df.id.unique())
    periods = np.sort(d0.t.unique())

    def design(d: pd.DataFrame) -> np.ndarray:
        u = (d.id.to_numpy()[:, None] == units[None, :]).astype(float)
        p = (d.t.to_numpy()[:, None] == periods[None, 1:]).astype(float)
        return np.hstack([u, p, d[list(covariates)].to_numpy(dtype=float)])

    z0, z1 = design(d0), design(d1)
    coef = np.linalg.lstsq(z0, d0.y.to_numpy(), rcond=None)[0]
    tau = d1.y.to_numpy() - z1 @ coef
    resid0 = d0.y.to_numpy() - z0 @ coef
    h = (d1.t - d1.g).to_numpy()
    targets = {"overall": np.full(len(d1), 1.0 / len(d1)), "cohort": _cohort_weights(d1)}
    for e in np.unique(h):
        targets[int(e)] = np.where(h == e, 1.0 / np.sum(h == e), 0.0)
    out: dict[str, object] = {}
    cells = pd.factorize(pd.MultiIndex.from_arrays([d1.g.to_numpy(), h]))[0]
    for key, w1 in targets.items():
        v0 = -z0 @ np.linalg.pinv(z0.T @ z0) @ z1.T @ w1
        num = np.bincount(cells, weights=w1**2 * tau)
        den = np.bincount(cells, weights=w1**2)
        tau_bar = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)[cells]
        per_unit = (
            pd.Series(v0 * resid0)
            .groupby(d0.id.to_numpy())
            .sum()
            .add(pd.Series(w1 * (tau - tau_bar)).groupby(d1.id.to_numpy()).sum(), fill_value=0.0)
        )
        out[key] = (float(w1 @ tau), float(np.sqrt(np.sum(per_unit.to_numpy() ** 2))))
    return out


def test_exact_recovery_of_heterogeneous_effects_without_noise() -> None:
    df = _simulate(noise=0.0)
    res = imputation(df, **COLS)
    treated = df[(df.g > 0) & (df.t >= df.g)]
    # cohorts 3, 5, 7 have 6, 4, 2 post periods: the two overall averages differ
    truth = _cohort_average(treated)
    assert abs(truth - treated.effect.mean()) > 0.5
    assert res.att == pytest.approx(truth, abs=1e-10)
    assert res.extra["att_cohort_weighted"]["att"] == pytest.approx(truth, abs=1e-10)
    assert res.extra["att_observation_weighted"]["att"] == pytest.approx(
        treated.effect.mean(), abs=1e-10
    )
    obs = imputation(df, **COLS, att_weighting="observation")
    assert obs.att == pytest.approx(treated.effect.mean(), abs=1e-10)
    assert obs.settings["att_weighting"] == "observation"
    by_h = treated.groupby(treated.t - treated.g)["effect"].mean()
    es = res.event_study.set_index("rel_time")["att"]
    np.testing.assert_allclose(es.loc[by_h.index], by_h, atol=1e-10)
    gt = res.group_time.set_index(["group", "time"])["att"]
    cells = treated.groupby(["g", "t"])["effect"].mean()
    np.testing.assert_allclose(gt.loc[cells.index], cells, atol=1e-10)
    assert res.n_treated_units == 180
    assert res.extra["n_treated_obs"] == len(treated)


def test_cohort_weighted_att_equals_known_truth_without_noise() -> None:
    # effect r_g * (e + 1): cohort 3 (r = 1, e = 0..5) averages 3.5, cohort 5 (r = 61, e = 0..3)
    # 152.5 and cohort 7 (r = 121, e = 0..1) 181.5; the three cohorts have 60 units each
    res = imputation(_simulate(noise=0.0), **COLS)
    assert res.att == pytest.approx((3.5 + 152.5 + 181.5) / 3, abs=1e-9)
    effects = {r["group"]: r["att"] for r in res.extra["cohort_effects"]}
    np.testing.assert_allclose([effects[3], effects[5], effects[7]], [3.5, 152.5, 181.5], atol=1e-9)
    # every treated unit-period counted once: 60 * (6 * 3.5 + 4 * 152.5 + 2 * 181.5) / 720
    obs = res.extra["att_observation_weighted"]["att"]
    assert obs == pytest.approx((6 * 3.5 + 4 * 152.5 + 2 * 181.5) / 12, abs=1e-9)


@pytest.mark.parametrize("drop", [0.0, 0.15])
def test_cohort_att_is_size_weighted_mean_of_cohort_period_effects(drop: float) -> None:
    # staggered timing: cohorts of 30, 45 and 15 units with 6, 3 and 1 post periods
    rng = np.random.default_rng(5)
    cohorts = np.r_[np.full(30, 3), np.full(45, 6), np.full(15, 8), np.zeros(50, dtype=int)]
    df = _simulate(n_units=len(cohorts), cohorts=(0,), seed=6)
    df["g"] = cohorts[df.id]
    e = df.t - df.g
    df["y"] += np.where((df.g > 0) & (e >= 0), 0.5 * df.g + 0.7 * e, 0.0)
    if drop:
        df = df.drop(index=rng.choice(df.index, int(drop * len(df)), replace=False))
        # keep units with an untreated observation (the others cannot be imputed)
        df = df[df.id.isin(df.id[(df.g == 0) | (df.t < df.g)])]
    res = imputation(df, **COLS)
    gt = res.group_time
    treated = df[(df.g > 0) & (df.t >= df.g)]
    sizes = treated.groupby("g")["id"].nunique()
    # each cohort's mean effect from the cohort x period output, cohorts weighted by size
    cohort_means = gt.groupby("group")["att"].mean()
    hand = float(np.average(cohort_means, weights=sizes.loc[cohort_means.index]))
    assert res.att == pytest.approx(hand, abs=1e-12)
    rows = pd.DataFrame(res.extra["cohort_effects"]).set_index("group")
    np.testing.assert_allclose(rows["att"], cohort_means, atol=1e-12)
    np.testing.assert_array_equal(rows["size"], sizes.loc[rows.index])
    np.testing.assert_array_equal(rows["n_periods"], gt.groupby("group").size())
    np.testing.assert_allclose(rows["weight"], sizes / sizes.sum())
    assert res.n_treated_units == sizes.sum()
    if not drop:
        np.testing.assert_array_equal(rows["n_periods"], [6, 3, 1])
        # on the balanced panel the cohort mean is also the mean of its horizons' effects
        per_horizon = gt.assign(h=gt.time - gt.group).groupby("group")["att"].mean()
        np.testing.assert_allclose(per_horizon, cohort_means, atol=1e-12)
    # the observation-weighted average counts cohorts by treated unit-periods instead
    obs = imputation(df, **COLS, att_weighting="observation")
    assert obs.att == pytest.approx(float(np.average(gt.att, weights=gt.n_obs)), abs=1e-12)
    assert abs(obs.att - res.att) > 0.1
    assert obs.se != pytest.approx(res.se)
    assert res.se == pytest.approx(res.extra["att_cohort_weighted"]["se"])
    assert obs.se == pytest.approx(res.extra["att_observation_weighted"]["se"])
    assert any("cohorts weighted by their number of treated units" in n for n in res.notes)


def test_weightings_coincide_when_cohorts_share_post_period_count() -> None:
    # every treated unit observed from the start to three periods after its treatment: each
    # cohort has 3 post periods and is balanced over them, so both averages weight alike
    df = _simulate(n_units=160, periods=tuple(range(1, 11)), cohorts=(4, 6, 8, 0), seed=9)
    df = df[(df.g == 0) | (df.t <= df.g + 2)]
    cohort = imputation(df, **COLS)
    obs = imputation(df, **COLS, att_weighting="observation")
    assert cohort.att == pytest.approx(obs.att, abs=1e-12)
    assert cohort.se == pytest.approx(obs.se, rel=1e-10)
    # and trivially with a single cohort on a balanced panel
    one = _simulate(n_units=80, cohorts=(5, 0), seed=10)
    a = imputation(one, **COLS, leave_out=True)
    b = imputation(one, **COLS, leave_out=True, att_weighting="observation")
    assert a.att == pytest.approx(b.att, abs=1e-12)
    assert a.se == pytest.approx(b.se, rel=1e-10)
    with pytest.raises(InputError, match="att_weighting"):
        imputation(one, **COLS, att_weighting="unit")  # type: ignore[arg-type]


def test_two_by_two_equals_difference_in_means_and_cs() -> None:
    rng = np.random.default_rng(1)
    n = 150
    g = np.where(np.arange(n) < 60, 2, 0)
    y0 = rng.normal(size=n)
    y1 = y0 + 0.3 + np.where(g > 0, 1.0, 0.0) + rng.normal(size=n)
    df = pd.DataFrame(
        {"id": np.r_[np.arange(n), np.arange(n)], "t": np.repeat([1, 2], n)}
        | {"y": np.r_[y0, y1], "g": np.r_[g, g]}
    )
    res = imputation(df, **COLS)
    dy = y1 - y0
    treat = g > 0
    closed = dy[treat].mean() - dy[~treat].mean()
    assert res.att == pytest.approx(closed, abs=1e-12)
    # the conservative variance is the two-sample variance of the outcome changes
    var = ((dy[treat] - dy[treat].mean()) ** 2).sum() / treat.sum() ** 2 + (
        (dy[~treat] - dy[~treat].mean()) ** 2
    ).sum() / (~treat).sum() ** 2
    assert res.se == pytest.approx(np.sqrt(var), rel=1e-10)
    cs = callaway_santanna(df, **COLS)
    assert cs.att == pytest.approx(res.att, abs=1e-12)
    assert cs.se == pytest.approx(res.se, rel=1e-10)


@pytest.mark.parametrize("covariates", [(), ("x",)])
def test_matches_dense_textbook_computation_on_unbalanced_panel(
    covariates: tuple[str, ...],
) -> None:
    df = _simulate(n_units=48, periods=tuple(range(1, 7)), cohorts=(3, 4, 6, 0), seed=4)
    df["x"] = np.random.default_rng(2).normal(size=len(df))
    df = df.sample(frac=0.85, random_state=3).sort_values(["id", "t"])
    ref = _dense_reference(df, covariates)
    res = imputation(df, **COLS, covariates=covariates)
    assert res.att == pytest.approx(ref["cohort"][0], abs=1e-10)
    assert res.se == pytest.approx(ref["cohort"][1], rel=1e-9)
    obs = res.extra["att_observation_weighted"]
    assert obs["att"] == pytest.approx(ref["overall"][0], abs=1e-10)
    assert obs["se"] == pytest.approx(ref["overall"][1], rel=1e-9)
    by_obs = imputation(df, **COLS, covariates=covariates, att_weighting="observation")
    assert by_obs.att == pytest.approx(ref["overall"][0], abs=1e-10)
    assert by_obs.se == pytest.approx(ref["overall"][1], rel=1e-9)
    assert by_obs.extra["att_cohort_weighted"] == res.extra["att_cohort_weighted"]
    for row in res.event_study.itertuples():
        att, se = ref[int(row.rel_time)]
        assert row.att == pytest.approx(att, abs=1e-10)
        assert row.se == pytest.approx(se, rel=1e-9)


def test_standard_errors_match_monte_carlo_spread() -> None:
    estimates, ses, ses_leave_out, covered = [], [], [], []
    for rep in range(200):
        df = _simulate(n_units=60, periods=tuple(range(1, 7)), cohorts=(3, 5, 0), seed=rep)
        truth = _cohort_average(df[(df.g > 0) & (df.t >= df.g)])
        res = imputation(df, **COLS)
        estimates.append(res.att)
        ses.append(res.se)
        ses_leave_out.append(imputation(df, **COLS, leave_out=True).se)
        covered.append(res.ci_low <= truth <= res.ci_high)
    spread = np.std(estimates, ddof=1)
    ratio = np.mean(ses) / spread
    assert 0.85 < ratio < 1.2, ratio
    assert 0.9 <= np.mean(covered) <= 0.99
    # leaving the unit out of the cell averages removes part of the small-sample downward bias
    assert ratio < np.mean(ses_leave_out) / spread < 1.2


def test_variance_is_conservative_under_unit_level_heterogeneity() -> None:
    sd, se = [], []
    for rep in range(60):
        df = _simulate(
            n_units=60,
            periods=tuple(range(1, 7)),
            cohorts=(3, 5, 0),
            unit_heterogeneity=2.0,
            seed=1000 + rep,
        )
        res = imputation(df, **COLS)
        sd.append(res.att - _cohort_average(df[(df.g > 0) & (df.t >= df.g)]))
        se.append(res.se)
    assert np.mean(se) >= 0.9 * np.std(sd, ddof=1)


@pytest.mark.parametrize("weighting", ["cohort", "observation"])
def test_leave_out_variance_matches_brute_force(weighting: str) -> None:
    df = _simulate(n_units=40, periods=tuple(range(1, 6)), cohorts=(3, 4, 0), seed=8)
    res = imputation(df, **COLS, leave_out=True, att_weighting=weighting)
    base = imputation(df, **COLS, att_weighting=weighting)
    treated = df[(df.g > 0) & (df.t >= df.g)]
    _, fitted1 = _dense_fit(df)
    tau = treated.y.to_numpy() - fitted1
    if weighting == "cohort":
        w1 = _cohort_weights(treated)
    else:
        w1 = np.full(len(treated), 1.0 / len(treated))
    cells = pd.factorize(pd.MultiIndex.from_arrays([treated.g, treated.t - treated.g]))[0]
    ids = treated.id.to_numpy()
    tau_bar = np.empty(len(treated))
    for i in range(len(treated)):
        others = (cells == cells[i]) & (ids != ids[i])
        tau_bar[i] = np.average(tau[others], weights=w1[others] ** 2)
    v0, resid0, ids0 = _untreated_parts(df, w1)
    per_unit = (
        pd.Series(v0 * resid0)
        .groupby(ids0)
        .sum()
        .add(pd.Series(w1 * (tau - tau_bar)).groupby(ids).sum(), fill_value=0.0)
    )
    assert res.se == pytest.approx(np.sqrt(np.sum(per_unit.to_numpy() ** 2)), rel=1e-9)
    assert res.att == base.att
    assert res.se > base.se


def _dense_fit(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    treated = (df.g > 0) & (df.t >= df.g)
    d0, d1 = df[~treated], df[treated]
    units = np.sort(df.id.unique())
    periods = np.sort(d0.t.unique())

    def design(d: pd.DataFrame) -> np.ndarray:
        u = (d.id.to_numpy()[:, None] == units[None, :]).astype(float)
        p = (d.t.to_numpy()[:, None] == periods[None, 1:]).astype(float)
        return np.hstack([u, p])

    z0, z1 = design(d0), design(d1)
    coef = np.linalg.lstsq(z0, d0.y.to_numpy(), rcond=None)[0]
    return z0 @ coef, z1 @ coef


def _untreated_parts(df: pd.DataFrame, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    treated = (df.g > 0) & (df.t >= df.g)
    d0, d1 = df[~treated], df[treated]
    units = np.sort(df.id.unique())
    periods = np.sort(d0.t.unique())

    def design(d: pd.DataFrame) -> np.ndarray:
        u = (d.id.to_numpy()[:, None] == units[None, :]).astype(float)
        p = (d.t.to_numpy()[:, None] == periods[None, 1:]).astype(float)
        return np.hstack([u, p])

    z0, z1 = design(d0), design(d1)
    v0 = -z0 @ np.linalg.pinv(z0.T @ z0) @ z1.T @ w1
    fitted0, _ = _dense_fit(df)
    return v0, d0.y.to_numpy() - fitted0, d0.id.to_numpy()


def test_pretrend_test_detects_differential_trends() -> None:
    clean = imputation(_simulate(seed=3), **COLS, pretrend_leads=2)
    test = clean.extra["pretrend_test"]
    assert test["leads"] == [-1, -2]
    assert test["df"] == 2
    assert test["p_value"] > 0.05
    leads = clean.event_study[clean.event_study.rel_time < 0]
    assert leads.rel_time.tolist() == [-2, -1]
    assert leads.se.notna().all()
    trending = imputation(_simulate(seed=3, pretrend=0.5), **COLS, pretrend_leads=2)
    assert trending.extra["pretrend_test"]["p_value"] < 1e-6
    assert trending.extra["pretrend_test"]["F"] == pytest.approx(
        trending.extra["pretrend_test"]["W"] / 2
    )


def test_anticipation_and_horizons() -> None:
    df = _simulate(noise=0.0, lead=1)
    res = imputation(df, **COLS, anticipation=1, horizons=2)
    treated = df[(df.g > 0) & (df.t >= df.g)]
    # the overall average covers every post-treatment period, whatever the reported horizons
    assert res.att == pytest.approx(_cohort_average(treated), abs=1e-10)
    assert res.event_study.rel_time.tolist() == [0, 1, 2]
    by_h = treated.groupby(treated.t - treated.g)["effect"].mean()
    np.testing.assert_allclose(res.event_study["att"], by_h.loc[[0, 1, 2]], atol=1e-10)
    naive = imputation(df, **COLS)
    assert abs(naive.att - _cohort_average(treated)) > 0.5
    picked = imputation(df, **COLS, anticipation=1, horizons=[0, 3])
    assert picked.event_study.rel_time.tolist() == [0, 3]


def test_no_never_treated_and_unidentified_observations() -> None:
    df = _simulate(cohorts=(3, 5, 7), noise=0.0)
    res = imputation(df, **COLS)
    # the last cohort is the comparison group and periods from 7 on are dropped
    assert "last-treated cohort (7)" in res.notes[0]
    treated = df[df.g.isin([3, 5]) & (df.t >= df.g) & (df.t < 7)]
    # post periods inside the estimation window: 4 for cohort 3, 2 for cohort 5
    assert res.att == pytest.approx(_cohort_average(treated), abs=1e-10)
    cohort_rows = {r["group"]: r for r in res.extra["cohort_effects"]}
    assert cohort_rows[3]["n_periods"] == 4
    assert cohort_rows[5]["n_periods"] == 2
    assert res.n_periods == 6
    with pytest.raises(InputError):
        imputation(df, **COLS, anticipation=-1)
    # a treated unit with no untreated observation cannot be imputed
    always = _simulate(noise=0.0)
    always.loc[always.id == 0, "g"] = 1
    with pytest.warns(DataWarning):
        partial = imputation(always, **COLS)
    kept = always[(always.g > 0) & (always.t >= always.g) & (always.id != 0)]
    assert partial.att == pytest.approx(_cohort_average(kept), abs=1e-10)
    assert partial.n_treated_units == kept.id.nunique()
    assert partial.extra["n_treated_obs"] == len(kept)


def test_results_serialise_to_strict_json() -> None:
    res = imputation(_simulate(seed=2), **COLS, pretrend_leads=2)
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out["estimator"] == "imputation"
    assert out["pretrend_test"]["df"] == 2
    assert [r["rel_time"] for r in out["event_study"]][:3] == [-2, -1, 0]
