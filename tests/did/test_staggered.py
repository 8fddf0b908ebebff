"""Callaway & Sant'Anna ATT(g,t): R ``did`` reference values, bootstrap, aggregation options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did.staggered import CSResults, _dr_did, _ipw_did, _pscore, callaway_santanna
from kinship_eval.errors import DataWarning, InputError

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
R_REF = REFERENCE / "did_r_reference"
MPDTA = dict(unit="countyreal", time="year", outcome="lemp", first_treated="first.treat")
SCENARIOS = {
    "mpdta_nev_dr": dict(control_group="nevertreated", est_method="dr"),
    "mpdta_nyt_dr": dict(control_group="notyettreated", est_method="dr"),
    "mpdta_nev_reg_cov": dict(control_group="never_treated", est_method="reg", covariates=["lpop"]),
    "mpdta_nev_ipw": dict(control_group="never_treated", est_method="ipw"),
}
KEYS = {"group": "group", "dynamic": "rel_time", "calendar": "time"}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference file not available: {path}")
    return path


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(_need(REFERENCE / "mpdta.csv"))


@pytest.fixture(scope="module")
def fits(mpdta: pd.DataFrame) -> dict[str, CSResults]:
    return {name: callaway_santanna(mpdta, **MPDTA, **kw) for name, kw in SCENARIOS.items()}


def _simulate(
    *,
    n_units: int = 240,
    periods: tuple[int, ...] = tuple(range(2001, 2009)),
    cohorts: tuple[int, ...] = (2004, 2006, 0),
    lead: int = 0,
    noise: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Staggered panel; effect (1 + cohort index) * (e + 1) from event time ``-lead`` on."""
    rng = np.random.default_rng(seed)
    t = np.asarray(periods)
    g = np.asarray(cohorts)[np.arange(n_units) % len(cohorts)]
    unit = np.repeat(np.arange(n_units), len(t))
    tt = np.tile(t, n_units)
    gg = np.repeat(g, len(t))
    e = tt - gg
    idx = np.searchsorted(np.sort(g[g > 0]), gg) + 1
    effect = np.where((gg > 0) & (e >= -lead), idx * (e + lead + 1), 0.0)
    y = (
        rng.normal(size=n_units)[unit]
        + 0.3 * (tt - t[0])
        + rng.normal(size=len(t))[tt - t[0]]
        + effect
        + noise * rng.normal(size=len(tt))
    )
    return pd.DataFrame({"id": unit, "t": tt, "y": y, "g": gg, "effect": effect})


SIM = dict(unit="id", time="t", outcome="y", first_treated="g")


# --------------------------------------------------------------------------- R did 2.5.0
@pytest.mark.reference
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_group_time_effects_match_r_did(scenario: str, fits: dict[str, CSResults]) -> None:
    ref = pd.read_csv(_need(R_REF / "ref_attgt.csv"))
    ref = ref[ref.scenario == scenario]
    got = fits[scenario].group_time
    merged = got.merge(ref, left_on=["group", "time"], right_on=["group", "t"], suffixes=("", "_r"))
    assert len(merged) == len(ref) == len(got) == 12
    np.testing.assert_allclose(merged["att"], merged["att_r"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(merged["se"], merged["se_r"], rtol=0, atol=1e-8)


@pytest.mark.reference
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["simple", "group", "dynamic", "calendar"])
def test_aggregations_match_r_aggte(scenario: str, kind: str, fits: dict[str, CSResults]) -> None:
    ref = pd.read_csv(_need(R_REF / "ref_aggte.csv"))
    ref = ref[(ref.scenario == scenario) & (ref.type == kind)]
    agg = fits[scenario].aggregate(kind)
    assert agg.att == pytest.approx(ref.overall_att.iloc[0], abs=1e-8)
    assert agg.se == pytest.approx(ref.overall_se.iloc[0], abs=1e-8)
    if kind == "simple":
        assert agg.table.empty
        return
    merged = agg.table.merge(ref, left_on=KEYS[kind], right_on="egt")
    assert len(merged) == len(ref) == len(agg.table)
    np.testing.assert_allclose(merged["att"], merged["att_egt"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(merged["se"], merged["se_egt"], rtol=0, atol=1e-8)


@pytest.mark.reference
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_parallel_trends_pretest_matches_r(scenario: str, fits: dict[str, CSResults]) -> None:
    ref = pd.read_csv(_need(R_REF / "ref_pretest.csv")).set_index("scenario").loc[scenario]
    pretest = fits[scenario].pretest
    assert pretest is not None
    assert pretest["df"] == 5
    assert pretest["W"] == pytest.approx(ref["W"], rel=1e-9)
    assert pretest["p_value"] == pytest.approx(ref["Wpval"], abs=5e-6)  # R rounds to 5 places


@pytest.mark.reference
def test_headline_fields_are_the_group_and_dynamic_aggregations(
    fits: dict[str, CSResults],
) -> None:
    ref = pd.read_csv(_need(R_REF / "ref_aggte.csv"))
    ref = ref[ref.scenario == "mpdta_nev_dr"]
    res = fits["mpdta_nev_dr"]
    group = ref[ref.type == "group"].iloc[0]
    assert res.att == pytest.approx(group.overall_att, abs=1e-10)
    assert res.se == pytest.approx(group.overall_se, abs=1e-10)
    assert res.ci_low == pytest.approx(res.att - 1.959963984540054 * res.se, abs=1e-12)
    dyn = ref[ref.type == "dynamic"]
    np.testing.assert_allclose(res.event_study["rel_time"], dyn["egt"])
    np.testing.assert_allclose(res.event_study["att"], dyn["att_egt"], atol=1e-10)
    assert res.n_units == 500
    assert res.n_treated_units == 191
    assert res.n_periods == 5
    out = res.to_dict()
    assert out["estimator"] == "cs"
    assert len(out["group_time"]) == 12
    assert len(out["event_study"]) == 7
    assert out["pretest"]["df"] == 5
    assert out["aggregations"]["dynamic"]["att"] == pytest.approx(-0.0772398214573151)


@pytest.mark.reference
def test_published_readme_numbers(mpdta: pd.DataFrame) -> None:
    """R ``did`` README: est_method='reg', never-treated, no covariates (4 d.p.)."""
    res = callaway_santanna(mpdta, **MPDTA, est_method="reg")
    published = {
        (2004, 2004): (-0.0105, 0.0241),
        (2004, 2005): (-0.0704, 0.0313),
        (2004, 2006): (-0.1373, 0.0380),
        (2004, 2007): (-0.1008, 0.0337),
        (2006, 2004): (0.0065, 0.0223),
        (2006, 2005): (-0.0028, 0.0196),
        (2006, 2006): (-0.0046, 0.0188),
        (2006, 2007): (-0.0412, 0.0202),
        (2007, 2004): (0.0305, 0.0154),
        (2007, 2005): (-0.0027, 0.0168),
        (2007, 2006): (-0.0311, 0.0190),
        (2007, 2007): (-0.0261, 0.0182),
    }
    gt = res.group_time.set_index(["group", "time"])
    for key, (att, boot_se) in published.items():
        assert gt.loc[key, "att"] == pytest.approx(att, abs=5e-5)
        # published errors are from a multiplier bootstrap
        assert gt.loc[key, "se"] == pytest.approx(boot_se, abs=2e-3)
    assert res.pretest is not None
    assert res.pretest["p_value"] == pytest.approx(0.16812, abs=5e-6)
    dyn = res.aggregate("dynamic")
    assert dyn.att == pytest.approx(-0.0772, abs=5e-5)
    assert dyn.se == pytest.approx(0.0196, abs=2e-3)
    np.testing.assert_allclose(
        dyn.table["att"], [0.0305, -0.0006, -0.0245, -0.0199, -0.0510, -0.1373, -0.1008], atol=5e-5
    )
    grp = res.aggregate("group")
    assert grp.att == pytest.approx(-0.031, abs=5e-4)
    assert grp.se == pytest.approx(0.0123, abs=2e-3)
    np.testing.assert_allclose(grp.table["att"], [-0.0797, -0.0229, -0.0261], atol=5e-5)


# --------------------------------------------------------------------------- bootstrap
@pytest.mark.reference
def test_multiplier_bootstrap(mpdta: pd.DataFrame, fits: dict[str, CSResults]) -> None:
    analytic = fits["mpdta_nev_dr"]
    boot = callaway_santanna(mpdta, **MPDTA, bootstrap=True, reps=1999, seed=20240601)
    again = callaway_santanna(mpdta, **MPDTA, bootstrap=True, reps=1999, seed=20240601)
    other = callaway_santanna(mpdta, **MPDTA, bootstrap=True, reps=1999, seed=7)
    assert boot.inference == "multiplier_bootstrap"
    # point estimates do not depend on the bootstrap
    np.testing.assert_array_equal(boot.group_time["att"], analytic.group_time["att"])
    ratio = boot.group_time["se"] / analytic.group_time["se"]
    assert ratio.between(0.9, 1.1).all(), ratio
    es_ratio = boot.event_study["se"] / analytic.event_study["se"]
    assert es_ratio.between(0.9, 1.1).all(), es_ratio
    assert boot.se / analytic.se == pytest.approx(1.0, abs=0.1)
    # same seed, same draws; another seed, other draws
    pd.testing.assert_frame_equal(boot.group_time, again.group_time)
    pd.testing.assert_frame_equal(boot.event_study, again.event_study)
    assert boot.se == again.se
    assert not np.allclose(boot.group_time["se"], other.group_time["se"])
    # uniform (sup-t) bands are wider than pointwise intervals, but not absurdly so
    for frame in (boot.group_time, boot.event_study):
        band = frame["band_high"] - frame["band_low"]
        pointwise = frame["ci_high"] - frame["ci_low"]
        assert (band > pointwise).all()
        crit = (band / (2 * frame["se"])).iloc[0]
        assert 1.96 < crit < 3.5
        np.testing.assert_allclose(band / (2 * frame["se"]), crit)
    assert "band_low" not in analytic.event_study.columns


def test_bootstrap_with_rademacher_weights_and_clusters() -> None:
    df = _simulate(noise=1.0, seed=3)
    df["region"] = df["id"] % 40
    base = callaway_santanna(df, **SIM)
    same = callaway_santanna(df, **SIM, cluster="id")
    np.testing.assert_allclose(same.group_time["se"], base.group_time["se"], rtol=1e-12)
    clustered = callaway_santanna(df, **SIM, cluster="region")
    inf = base.influence_function
    assert inf is not None
    sums = pd.DataFrame(inf).groupby(df.groupby("id")["region"].first().to_numpy()).sum()
    expected = np.sqrt((sums.to_numpy() ** 2).sum(axis=0)) / inf.shape[0]
    np.testing.assert_allclose(clustered.group_time["se"], expected, rtol=1e-10)
    boot = callaway_santanna(
        df, **SIM, cluster="region", bootstrap=True, reps=1999, seed=1, weight_type="rademacher"
    )
    ratio = boot.group_time["se"] / clustered.group_time["se"]
    assert ratio.between(0.85, 1.15).all(), ratio


# --------------------------------------------------------------------------- estimators
def test_no_covariates_all_methods_coincide_and_recover_truth() -> None:
    df = _simulate(noise=0.0)
    truth = df[(df.g > 0) & (df.t >= df.g)].groupby(["g", "t"])["effect"].mean()
    for method in ("dr", "reg", "ipw"):
        res = callaway_santanna(df, **SIM, est_method=method)
        post = res.group_time[res.group_time.post == 1].set_index(["group", "time"])["att"]
        np.testing.assert_allclose(post.to_numpy(), truth.loc[post.index].to_numpy(), atol=1e-9)
        pre = res.group_time[res.group_time.post == 0]["att"]
        np.testing.assert_allclose(pre, 0.0, atol=1e-9)


def _two_by_two_with_covariate(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = 400
    x = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(0.5 * x - 0.3)))).astype(float)
    dy = 1.0 + 0.8 * x + 0.5 * d + rng.normal(size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    return dy, d, np.column_stack([np.ones(n), x]), w


@pytest.mark.parametrize("method", ["dr", "ipw"])
def test_influence_function_is_the_derivative_in_unit_weights(method: str) -> None:
    """Reweighting unit i moves the 2x2 estimate by (eps / n) * IF_i / w_i (weights mean 1).

    With sampling weights the returned influence function is ``w_i`` times the influence of
    observation ``i``; the derivative checks every estimation-effect term (logit, regression).
    """
    dy, d, x, w = _two_by_two_with_covariate(11)
    n = len(d)

    def estimate(weights: np.ndarray) -> tuple[float, np.ndarray]:
        ps, _, _ = _pscore(d, x, weights)
        fn = _dr_did if method == "dr" else _ipw_did
        return fn(dy, d, x, weights, ps)

    att, inf = estimate(w)
    assert abs(inf.mean()) < 1e-10
    eps = 1e-6
    for i in (0, 5, 17, 123, 399):
        bumped = w.copy()
        bumped[i] += eps * w.mean()
        numeric = (estimate(bumped)[0] - att) / eps * n
        assert numeric == pytest.approx(inf[i] / (w[i] / w.mean()), rel=1e-4, abs=1e-6)


def test_doubly_robust_with_covariates_recovers_truth() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=n)
    g = np.where(rng.random(n) < 1 / (1 + np.exp(-x)), 2005, 0)
    rows = []
    for t in (2003, 2004, 2005, 2006):
        trend = (t - 2003) * (0.5 + 0.7 * x)  # covariate-specific trends
        effect = np.where((g > 0) & (t >= g), 1.0 + (t - 2005), 0.0)
        y = x + trend + effect + rng.normal(scale=0.5, size=n)
        rows.append(pd.DataFrame({"id": np.arange(n), "t": t, "y": y, "g": g, "x": x}))
    df = pd.concat(rows, ignore_index=True)
    naive = callaway_santanna(df, **SIM, est_method="reg")
    for method in ("dr", "reg", "ipw"):
        res = callaway_santanna(df, **SIM, covariates=["x"], est_method=method)
        gt = res.group_time.set_index("time")
        truth = pd.Series({2004: 0.0, 2005: 1.0, 2006: 2.0})
        z = (gt["att"] - truth) / gt["se"]
        assert (z.abs() < 4).all(), (method, z)
        assert (gt["se"] < 0.1).all()
    # without the covariate the selection on trends biases the effects
    assert abs(naive.group_time.set_index(["group", "time"])["att"].loc[(2005, 2005)] - 1) > 0.3


def test_universal_base_period() -> None:
    df = _simulate(noise=1.0, seed=9)
    varying = callaway_santanna(df, **SIM)
    universal = callaway_santanna(df, **SIM, base_period="universal")
    v = varying.group_time.set_index(["group", "time"])["att"]
    u = universal.group_time.set_index(["group", "time"])["att"]
    for (g, t), value in u.items():
        if t >= g:
            assert value == pytest.approx(v.loc[(g, t)], abs=1e-12)
        elif t == g - 1:
            assert value == 0.0
        else:
            # long difference t -> g-1 is minus the sum of consecutive placebo differences
            expected = -sum(v.loc[(g, s)] for s in range(t + 1, g))
            assert value == pytest.approx(expected, abs=1e-10)
    assert len(u) == 2 * 8
    se = universal.group_time.set_index(["group", "time"])["se"]
    assert math.isnan(se.loc[(2004, 2003)])


def test_not_yet_treated_and_anticipation() -> None:
    df = _simulate(noise=0.0, lead=1)
    plain = callaway_santanna(df, **SIM, control_group="not_yet_treated")
    antic = callaway_santanna(df, **SIM, control_group="not_yet_treated", anticipation=1)
    truth = df[(df.g > 0) & (df.t >= df.g)].groupby(["g", "t"])["effect"].mean()
    got = antic.group_time[antic.group_time.post == 1].set_index(["group", "time"])["att"]
    np.testing.assert_allclose(got.to_numpy(), truth.loc[got.index].to_numpy(), atol=1e-9)
    missed = plain.group_time[plain.group_time.post == 1].set_index(["group", "time"])["att"]
    assert np.max(np.abs(missed.to_numpy() - truth.loc[missed.index].to_numpy())) > 0.5
    assert antic.settings["anticipation"] == 1


def test_dynamic_aggregation_options(fits: dict[str, CSResults]) -> None:
    res = fits["mpdta_nev_dr"]
    window = res.aggregate("dynamic", min_e=-1, max_e=2)
    assert window.table["rel_time"].tolist() == [-1, 0, 1, 2]
    full = res.aggregate("dynamic").table.set_index("rel_time")
    np.testing.assert_allclose(window.table["att"], full.loc[[-1, 0, 1, 2], "att"])
    assert window.att == pytest.approx(full.loc[[0, 1, 2], "att"].mean())
    balanced = res.aggregate("dynamic", balance_e=1)
    assert balanced.table["rel_time"].tolist() == [-2, -1, 0, 1]
    gt = res.group_time.set_index(["group", "time"])["att"]
    sizes = {2004: 20, 2006: 40}
    expected = (sizes[2004] * gt.loc[(2004, 2004)] + sizes[2006] * gt.loc[(2006, 2006)]) / 60
    assert balanced.table.set_index("rel_time").loc[0, "att"] == pytest.approx(expected)
    frame = res.aggregate("calendar").to_frame()
    assert frame.iloc[0]["kind"] == "calendar"
    assert len(frame) == 5
    with pytest.raises(InputError):
        res.aggregate("weekly")  # type: ignore[arg-type]


def test_cohort_sizes_used_in_balance_check(mpdta: pd.DataFrame) -> None:
    cohort = mpdta[mpdta.year == 2003].groupby("first.treat").size()
    assert cohort.loc[2004] == 20
    assert cohort.loc[2006] == 40


def test_panel_conventions_and_validation() -> None:
    df = _simulate(noise=1.0, seed=2)
    early = df.copy()
    early.loc[early.id == 0, "g"] = 2001  # treated in the first period: dropped
    early.loc[early.id == 1, "g"] = 2030  # treated after the panel: never treated
    holes = early.drop(index=early.index[(early.id == 4) & (early.t == 2005)])
    with pytest.warns(DataWarning):
        res = callaway_santanna(holes, **SIM)
    assert res.n_units == df.id.nunique() - 2
    assert len(res.notes) == 3  # late cohort recoded, incomplete unit, early-treated unit
    for bad in (
        dict(control_group="everyone"),
        dict(est_method="ols"),
        dict(base_period="fixed"),
        dict(anticipation=-1),
        dict(level=1.5),
    ):
        with pytest.raises(InputError):
            callaway_santanna(df, **SIM, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["dr", "reg", "ipw"])
def test_sampling_weights_equal_duplicated_units(method: str) -> None:
    df = _simulate(n_units=90, noise=1.0, seed=4)
    df["x"] = np.sin(df["id"])  # time-invariant covariate
    df["w"] = np.where(df["id"] % 3 == 0, 2.0, 1.0)
    copies = df[df["w"] == 2.0].assign(id=lambda d: d["id"] + 10_000)
    duplicated = pd.concat([df, copies], ignore_index=True)
    weighted = callaway_santanna(df, **SIM, covariates=["x"], est_method=method, weights="w")
    expanded = callaway_santanna(duplicated, **SIM, covariates=["x"], est_method=method)
    np.testing.assert_allclose(weighted.group_time["att"], expanded.group_time["att"], atol=1e-8)
    for kind in ("simple", "group", "dynamic", "calendar"):
        assert weighted.aggregate(kind).att == pytest.approx(expanded.aggregate(kind).att)


def test_without_never_treated_units_the_last_cohort_is_the_comparison() -> None:
    df = _simulate(cohorts=(2004, 2006, 2008), noise=0.0)
    for control in ("not_yet_treated", "never_treated"):
        res = callaway_santanna(df, **SIM, control_group=control)
        assert "last-treated cohort (2008)" in res.notes[0]
        assert res.n_periods == 7  # 2008 itself is dropped
        assert set(res.group_time.group) == {2004, 2006}
        truth = df[(df.g < 2008) & (df.t >= df.g) & (df.t < 2008)].groupby(["g", "t"])
        post = res.group_time[res.group_time.post == 1].set_index(["group", "time"])["att"]
        np.testing.assert_allclose(post, truth["effect"].mean().loc[post.index], atol=1e-9)


def test_results_serialise_to_strict_json() -> None:
    df = _simulate(noise=1.0, seed=12)
    res = callaway_santanna(df, **SIM, base_period="universal", bootstrap=True, reps=199, seed=3)
    text = json.dumps(res.to_dict(), allow_nan=False)
    out = json.loads(text)
    assert out["inference"] == "multiplier_bootstrap"
    ref_cell = next(r for r in out["group_time"] if (r["group"], r["time"]) == (2004, 2003))
    assert ref_cell["att"] == 0.0
    assert ref_cell["se"] is None  # the normalised cell has no sampling variance
    assert out["aggregations"]["group"]["att"] == pytest.approx(res.att)
    assert "CSResults" in repr(res)
    assert "influence_function" not in repr(res)
