"""Callaway & Sant'Anna on unbalanced panels (R ``did``'s ``allow_unbalanced_panel = TRUE``).

Reference values come from moderndid 0.2.0 (``scripts/cs_unbalanced_reference.py``) on R's
``mpdta`` with a fixed 10% of its rows dropped; the dropped rows are stored with the values.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did.staggered import (
    CSResults,
    _dr_did_rc,
    _ipw_did_rc,
    _pscore,
    _reg_did_rc,
    callaway_santanna,
)
from kinship_eval.errors import DataWarning, InferenceWarning, InputError

REFERENCE_VALUES = Path(__file__).resolve().parent / "reference" / "cs_unbalanced_moderndid.csv"
MPDTA = dict(unit="countyreal", time="year", outcome="lemp", first_treated="first.treat")
CONFIGS = {
    "reg_never": dict(est_method="reg", control_group="never_treated"),
    "reg_notyet": dict(est_method="reg", control_group="not_yet_treated"),
    "dr_never": dict(est_method="dr", control_group="never_treated"),
    "reg_lpop_never": dict(est_method="reg", covariates=["lpop"], control_group="never_treated"),
    "dr_lpop_never": dict(est_method="dr", covariates=["lpop"], control_group="never_treated"),
    "ipw_lpop_never": dict(est_method="ipw", covariates=["lpop"], control_group="never_treated"),
    "dr_lpop_notyet": dict(est_method="dr", covariates=["lpop"], control_group="not_yet_treated"),
    "ipw_lpop_notyet": dict(est_method="ipw", covariates=["lpop"], control_group="not_yet_treated"),
    "dr_lpop_universal": dict(
        est_method="dr", covariates=["lpop"], control_group="never_treated", base_period="universal"
    ),
    "reg_notyet_universal": dict(
        est_method="reg", control_group="not_yet_treated", base_period="universal"
    ),
}
KEYS = {"group": "group", "dynamic": "rel_time"}
# moderndid fits the logit with statsmodels (IRLS to its own tolerance): IPW and DR agree to
# ~1e-12; everything else to rounding.
ATT_TOL = 1e-9
SE_TOL = 1e-9
SIM = dict(unit="id", time="t", outcome="y", first_treated="g")


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_VALUES)


@pytest.fixture(scope="module")
def mpdta(reference: Path) -> pd.DataFrame:
    return pd.read_csv(reference / "mpdta.csv")


@pytest.fixture(scope="module")
def unbalanced(mpdta: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    dropped = expected.loc[expected.kind == "dropped_row", "row"].astype(int).to_numpy()
    return mpdta.drop(index=dropped).reset_index(drop=True)


@pytest.fixture(scope="module")
def fits(unbalanced: pd.DataFrame) -> dict[str, CSResults]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        return {
            name: callaway_santanna(unbalanced, **MPDTA, **kw, allow_unbalanced_panel=True)
            for name, kw in CONFIGS.items()
        }


# --------------------------------------------------------------------------- moderndid
def test_sample_is_the_stored_one(mpdta: pd.DataFrame, unbalanced: pd.DataFrame) -> None:
    assert len(mpdta) - len(unbalanced) == round(0.1 * len(mpdta))
    counts = unbalanced.groupby("countyreal").size()
    assert counts.nunique() > 1
    assert unbalanced.countyreal.nunique() == mpdta.countyreal.nunique()


@pytest.mark.reference
@pytest.mark.parametrize("config", list(CONFIGS))
def test_group_time_effects_match_moderndid(
    config: str, fits: dict[str, CSResults], expected: pd.DataFrame
) -> None:
    ref = expected[(expected.config == config) & (expected.kind == "att_gt")]
    ours = fits[config].group_time.set_index(["group", "time"])
    ours = ours.loc[list(zip(ref.group.astype(int), ref.time.astype(int), strict=True))]
    assert len(ours) == len(fits[config].group_time)
    np.testing.assert_allclose(ours.att.to_numpy(), ref.att.to_numpy(), rtol=0, atol=ATT_TOL)
    np.testing.assert_allclose(ours.se.to_numpy(), ref.se.to_numpy(), rtol=0, atol=SE_TOL)


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["simple", "group", "dynamic"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_aggregations_match_moderndid(
    config: str, kind: str, fits: dict[str, CSResults], expected: pd.DataFrame
) -> None:
    ref = expected[expected.config == config]
    agg = fits[config].aggregate(kind)
    overall = ref[ref.kind == f"{kind}_overall"].iloc[0]
    assert agg.att == pytest.approx(overall.att, abs=ATT_TOL)
    assert agg.se == pytest.approx(overall.se, abs=SE_TOL)
    if kind in KEYS:
        table = ref[ref.kind == kind]
        key = KEYS[kind]
        ours = agg.table.set_index(key).loc[table[key].astype(int)]
        np.testing.assert_allclose(ours.att.to_numpy(), table.att.to_numpy(), atol=ATT_TOL)
        np.testing.assert_allclose(ours.se.to_numpy(), table.se.to_numpy(), atol=SE_TOL)


@pytest.mark.reference
@pytest.mark.parametrize("config", list(CONFIGS))
def test_pretest_matches_moderndid(
    config: str, fits: dict[str, CSResults], expected: pd.DataFrame
) -> None:
    ref = expected[(expected.config == config) & (expected.kind == "pretest")]
    pretest = fits[config].pretest
    assert pretest is not None
    assert pretest["W"] == pytest.approx(ref.att.iloc[0], rel=1e-8)
    assert pretest["df"] == 5


def test_results_record_the_unbalanced_path(
    fits: dict[str, CSResults], unbalanced: pd.DataFrame
) -> None:
    res = fits["dr_lpop_never"]
    assert res.settings["panel"] == "unbalanced"
    assert res.settings["allow_unbalanced_panel"] is True
    assert res.settings["n_obs"] == len(unbalanced)
    assert res.n_units == unbalanced.countyreal.nunique()
    assert res.influence_function is not None
    assert res.influence_function.shape[0] == res.n_units
    assert any("unbalanced panel" in note for note in res.notes)


# --------------------------------------------------------------------------- balanced input
@pytest.mark.parametrize(
    "kw",
    [
        dict(est_method="dr"),
        dict(est_method="reg", covariates=["lpop"], control_group="not_yet_treated"),
        dict(est_method="ipw", covariates=["lpop"], base_period="universal"),
    ],
)
def test_balanced_panel_with_the_flag_is_unchanged(mpdta: pd.DataFrame, kw: dict) -> None:
    plain = callaway_santanna(mpdta, **MPDTA, **kw)
    flagged = callaway_santanna(mpdta, **MPDTA, **kw, allow_unbalanced_panel=True)
    pd.testing.assert_frame_equal(plain.group_time, flagged.group_time, check_exact=True)
    assert plain.influence_function is not None
    assert flagged.influence_function is not None
    np.testing.assert_array_equal(plain.influence_function, flagged.influence_function)
    assert (plain.att, plain.se) == (flagged.att, flagged.se)
    assert plain.extra == flagged.extra
    assert plain.settings["panel"] == flagged.settings["panel"] == "balanced"
    assert any("balanced" in note for note in flagged.notes)


def test_default_still_balances_by_dropping_units(unbalanced: pd.DataFrame) -> None:
    with pytest.warns(DataWarning, match="balanced panel needed"):
        res = callaway_santanna(unbalanced, **MPDTA)
    complete = unbalanced.groupby("countyreal").size()
    assert res.n_units == int((complete == unbalanced.year.nunique()).sum())
    assert res.settings["panel"] == "balanced"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        kept = callaway_santanna(unbalanced, **MPDTA, allow_unbalanced_panel=True)
    assert kept.n_units == unbalanced.countyreal.nunique()


# --------------------------------------------------------------------------- known truth
def _simulate_unbalanced(seed: int, *, n: int = 1500, drop: float = 0.2) -> pd.DataFrame:
    """Staggered panel with covariate-driven selection and trends, rows missing at random.

    Effects: ``1 + e`` at event time ``e >= 0``; zero before treatment.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    u = rng.random(n)
    share = 1 / (1 + np.exp(-x))
    g = np.where(u < 0.35 * share, 2005, np.where(u < 0.7 * share, 2007, 0))
    rows = []
    for t in range(2003, 2009):
        e = t - g
        effect = np.where((g > 0) & (e >= 0), 1.0 + e, 0.0)
        y = 2 * x + (t - 2003) * (0.2 + 0.5 * x) + effect + rng.normal(scale=0.5, size=n)
        rows.append(pd.DataFrame({"id": np.arange(n), "t": t, "y": y, "g": g, "x": x}))
    df = pd.concat(rows, ignore_index=True)
    keep = rng.random(len(df)) >= drop
    return df[keep].reset_index(drop=True)


@pytest.mark.parametrize("method", ["dr", "reg", "ipw"])
def test_unbalanced_simulation_recovers_the_effects(method: str) -> None:
    df = _simulate_unbalanced(21)
    res = callaway_santanna(
        df, **SIM, covariates=["x"], est_method=method, allow_unbalanced_panel=True
    )
    assert res.settings["panel"] == "unbalanced"
    assert res.n_units == df.id.nunique()
    gt = res.group_time
    truth = np.where(gt.time >= gt.group, 1.0 + gt.time - gt.group, 0.0)
    z = (gt.att - truth) / gt.se
    assert (z.abs() < 4).all(), z
    dynamic = res.aggregate("dynamic").table.set_index("rel_time")
    for e in range(0, 4):
        assert dynamic.att.loc[e] == pytest.approx(1.0 + e, abs=4 * dynamic.se.loc[e])


def test_unbalanced_without_covariates_all_methods_coincide() -> None:
    df = _simulate_unbalanced(4, n=600)
    atts = [
        callaway_santanna(df, **SIM, est_method=m, allow_unbalanced_panel=True).group_time.att
        for m in ("dr", "reg", "ipw")
    ]
    np.testing.assert_allclose(atts[0], atts[1], atol=1e-10)
    np.testing.assert_allclose(atts[0], atts[2], atol=1e-10)


def test_unbalanced_bootstrap_clusters_and_universal_base() -> None:
    df = _simulate_unbalanced(8, n=800)
    df["region"] = df.id % 40
    res = callaway_santanna(
        df, **SIM, allow_unbalanced_panel=True, bootstrap=True, reps=1999, seed=3
    )
    analytic = callaway_santanna(df, **SIM, allow_unbalanced_panel=True)
    ratio = res.group_time.se / analytic.group_time.se
    assert ((ratio > 0.8) & (ratio < 1.2)).all()
    assert {"band_low", "band_high"} <= set(res.group_time.columns)
    clustered = callaway_santanna(df, **SIM, allow_unbalanced_panel=True, cluster="region")
    assert np.isfinite(clustered.group_time.se).all()
    universal = callaway_santanna(df, **SIM, allow_unbalanced_panel=True, base_period="universal")
    ref = universal.group_time[universal.group_time.time == universal.group_time.group - 1]
    assert (ref.att == 0).all()
    assert math.isfinite(universal.aggregate("calendar").att)


def test_cell_without_observations_is_left_out_with_a_warning() -> None:
    df = _simulate_unbalanced(5, n=400, drop=0.1)
    df = df[~((df.g == 2007) & (df.t == 2006))]  # the 2007 cohort is never seen in its base
    with pytest.warns(InferenceWarning) as record:
        res = callaway_santanna(df, **SIM, allow_unbalanced_panel=True)
    messages = [str(w.message) for w in record]
    assert any(
        "(2007, 2007) not estimated: no observations of the cohort in the base" in m
        for m in messages
    )
    gt = res.group_time.set_index(["group", "time"])
    assert math.isnan(gt.att.loc[(2007, 2007)])
    assert math.isfinite(res.aggregate("group").att)


def test_flag_must_be_boolean() -> None:
    df = _simulate_unbalanced(6, n=200)
    with pytest.raises(InputError, match="allow_unbalanced_panel"):
        callaway_santanna(df, **SIM, allow_unbalanced_panel="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- 2x2 estimators
def _repeated_cross_section(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = 600
    x = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(0.5 * x - 0.3)))).astype(float)
    post = (rng.random(n) < 0.5).astype(float)
    y = 1.0 + 0.8 * x + 0.4 * post * x + 0.5 * d * post + 0.3 * d + rng.normal(size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    return y, post, d, np.column_stack([np.ones(n), x]), w


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_rc_influence_function_is_the_derivative_in_observation_weights(method: str) -> None:
    """Reweighting observation i moves the estimate by (eps / n) * IF_i / w_i (weights mean 1)."""
    y, post, d, x, w = _repeated_cross_section(13)
    n = len(d)

    def estimate(weights: np.ndarray) -> tuple[float, np.ndarray]:
        if method == "reg":
            return _reg_did_rc(y, post, d, x, weights)
        ps, _, _ = _pscore(d, x, weights)
        fn = _dr_did_rc if method == "dr" else _ipw_did_rc
        return fn(y, post, d, x, weights, ps)

    att, inf = estimate(w)
    assert abs(inf.mean()) < 1e-10
    eps = 1e-6
    for i in (0, 7, 42, 311, 599):
        bumped = w.copy()
        bumped[i] += eps * w.mean()
        numeric = (estimate(bumped)[0] - att) / eps * n
        assert numeric == pytest.approx(inf[i] / (w[i] / w.mean()), rel=1e-4, abs=1e-6)
