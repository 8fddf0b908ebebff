"""Synthetic difference-in-differences, synthetic control and the synthdid DiD."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinship_eval.did import synthetic as sdid_mod
from kinship_eval.did.synthetic import SyntheticResults, synthetic_control, synthetic_did
from kinship_eval.errors import EstimationError, InputError

PROP99 = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "california_prop99.csv"
)
COLS = {"unit": "State", "time": "Year", "outcome": "PacksPerCapita", "first_treated": "g"}


@pytest.fixture(scope="module")
def prop99() -> pd.DataFrame:
    if not PROP99.exists():
        pytest.skip(f"reference data not found: {PROP99}")
    df = pd.read_csv(PROP99, sep=";")
    df["g"] = np.where(df["State"] == "California", 1989, 0)
    return df


@pytest.fixture(scope="module")
def prop99_sdid(prop99: pd.DataFrame) -> SyntheticResults:
    return synthetic_did(prop99, **COLS, method="sdid", variance="placebo", reps=200, seed=2021)


def factor_panel(
    n_units: int = 60,
    n_periods: int = 20,
    first_treated: tuple[int, ...] = (15,),
    n_treated: tuple[int, ...] = (6,),
    effect: float = 3.0,
    seed: int = 0,
    shift: float = 1.5,
) -> pd.DataFrame:
    """Interactive fixed effects; treated units load more on a trending factor."""
    rng = np.random.default_rng(seed)
    g = np.zeros(n_units, dtype=int)
    start = 0
    for cohort, count in zip(first_treated, n_treated, strict=True):
        g[start : start + count] = cohort
        start += count
    loading = rng.normal(0, 1, n_units) + shift * (g > 0)
    factor = np.linspace(0, 3, n_periods)
    alpha = rng.normal(0, 2, n_units)
    gamma = rng.normal(0, 1, n_periods)
    periods = np.arange(1, n_periods + 1)
    y = (
        alpha[:, None]
        + gamma[None, :]
        + loading[:, None] * factor[None, :]
        + rng.normal(0, 0.3, (n_units, n_periods))
    )
    treated = (g[:, None] > 0) & (periods[None, :] >= g[:, None])
    y = y + effect * treated
    return pd.DataFrame(
        {
            "la": np.repeat(np.arange(n_units), n_periods),
            "year": np.tile(periods, n_units),
            "y": y.ravel(),
            "g": np.repeat(g, n_periods),
        }
    )


SIM = {"unit": "la", "time": "year", "outcome": "y", "first_treated": "g"}


# ------------------------------------------------------------------------ published reference
@pytest.mark.reference
def test_prop99_sdid_point_estimate(prop99_sdid: SyntheticResults) -> None:
    # Arkhangelsky et al. (2021), Table 1 / synthdid: SDID -15.604
    assert prop99_sdid.estimator == "sdid"
    assert prop99_sdid.att == pytest.approx(-15.604, abs=1e-3)
    assert prop99_sdid.n_units == 39
    assert prop99_sdid.n_treated_units == 1
    assert prop99_sdid.n_periods == 31


@pytest.mark.reference
@pytest.mark.parametrize(("method", "expected"), [("sc", -19.620), ("did", -27.349)])
def test_prop99_sc_and_did_point_estimates(
    prop99: pd.DataFrame, method: str, expected: float
) -> None:
    res = synthetic_did(prop99, **COLS, method=method, reps=2, seed=1)
    assert res.estimator == method
    assert res.att == pytest.approx(expected, abs=1e-3)


@pytest.mark.reference
def test_prop99_unit_weights(prop99_sdid: SyntheticResults) -> None:
    omega = prop99_sdid.unit_weights
    assert omega.index.name == "State"
    assert len(omega) == 38
    assert "California" not in omega.index
    assert omega.sum() == pytest.approx(1.0, abs=1e-12)
    assert (omega >= 0).all()
    top = omega.sort_values(ascending=False).head(5)
    # synthdid's control weights for California
    assert list(top.index) == ["Nevada", "New Hampshire", "Connecticut", "Delaware", "Colorado"]
    np.testing.assert_allclose(top.to_numpy(), [0.124, 0.105, 0.078, 0.070, 0.058], atol=1e-3)


@pytest.mark.reference
def test_prop99_time_weights_on_last_pre_periods(prop99_sdid: SyntheticResults) -> None:
    lam = prop99_sdid.time_weights
    assert list(lam.index) == list(range(1970, 1989))
    assert lam.sum() == pytest.approx(1.0, abs=1e-12)
    assert set(lam[lam > 0].index) == {1986, 1987, 1988}
    np.testing.assert_allclose(lam.loc[[1986, 1987, 1988]], [0.366, 0.206, 0.427], atol=1e-3)


@pytest.mark.reference
def test_prop99_placebo_se_in_published_range(prop99_sdid: SyntheticResults) -> None:
    # synthdid's placebo standard error for California is about 10 (random, 200 replications)
    assert 8.0 < prop99_sdid.se < 12.0
    assert prop99_sdid.inference == "placebo"
    assert prop99_sdid.ci_low < prop99_sdid.att < prop99_sdid.ci_high
    assert prop99_sdid.ci_high - prop99_sdid.ci_low == pytest.approx(2 * 1.959964 * prop99_sdid.se)


@pytest.mark.reference
def test_prop99_placebo_seeded_reproducibility(prop99: pd.DataFrame) -> None:
    a = synthetic_did(prop99, **COLS, reps=20, seed=11)
    b = synthetic_did(prop99, **COLS, reps=20, seed=11)
    c = synthetic_did(prop99, **COLS, reps=20, seed=12)
    assert a.se == b.se
    assert a.se != c.se
    assert a.att == c.att


def test_prop99_sc_weights(prop99: pd.DataFrame) -> None:
    res = synthetic_control(prop99, **COLS, reps=2, seed=0)
    assert res.estimator == "sc"
    assert (res.time_weights == 0).all()
    assert res.unit_weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert (res.unit_weights > 1e-6).sum() <= 10
    assert res.unit_weights.idxmax() == "Utah"
    # synthetic control: the counterfactual is the weighted control mean itself
    traj = res.trajectories
    np.testing.assert_allclose(traj["counterfactual"], traj["synthetic"])


# ------------------------------------------------------------------------------- algebra
def test_effect_equals_average_gap_to_counterfactual(prop99_sdid: SyntheticResults) -> None:
    traj = prop99_sdid.trajectories
    post = traj[traj["post"]]
    assert len(post) == 12
    assert (post["treated"] - post["counterfactual"]).mean() == pytest.approx(
        prop99_sdid.att, abs=1e-10
    )
    gt = prop99_sdid.group_time
    assert list(gt.columns) == ["group", "time", "att", "se"]
    assert gt["att"].mean() == pytest.approx(prop99_sdid.att, abs=1e-10)


def test_invariant_to_unit_effects_and_common_trend() -> None:
    # unit levels and a common linear trend leave the first differences' spread (the noise level,
    # hence the regularisation) unchanged and are removed by the intercepts and the weights
    df = factor_panel(seed=1)
    base = synthetic_did(df, **SIM, reps=2, seed=0)
    rng = np.random.default_rng(5)
    shifted = df.copy()
    shifted["y"] += rng.normal(0, 10, 60)[shifted["la"]] + 0.7 * shifted["year"]
    moved = synthetic_did(shifted, **SIM, reps=2, seed=0)
    assert moved.att == pytest.approx(base.att, abs=1e-6)
    np.testing.assert_allclose(moved.unit_weights, base.unit_weights, atol=1e-8)
    np.testing.assert_allclose(moved.time_weights, base.time_weights, atol=1e-8)


def test_shift_of_treated_post_cells_moves_estimate_one_for_one() -> None:
    df = factor_panel(seed=2)
    base = synthetic_did(df, **SIM, reps=2, seed=0)
    bumped = df.copy()
    bumped.loc[(bumped["g"] > 0) & (bumped["year"] >= bumped["g"]), "y"] += 1.7
    moved = synthetic_did(bumped, **SIM, reps=2, seed=0)
    assert moved.att - base.att == pytest.approx(1.7, abs=1e-9)
    pd.testing.assert_series_equal(moved.unit_weights, base.unit_weights)


def test_did_method_is_plain_difference_in_differences() -> None:
    df = factor_panel(seed=3)
    res = synthetic_did(df, **SIM, method="did", variance="jackknife")
    treated = df["g"] > 0
    post = df["year"] >= 15
    m = df.groupby([treated, post])["y"].mean()
    by_hand = (m[(True, True)] - m[(True, False)]) - (m[(False, True)] - m[(False, False)])
    assert res.att == pytest.approx(by_hand, abs=1e-10)
    np.testing.assert_allclose(res.unit_weights, 1 / 54)
    np.testing.assert_allclose(res.time_weights, 1 / 14)


def test_sdid_recovers_effect_under_factor_confounding() -> None:
    df = factor_panel(n_units=80, first_treated=(15,), n_treated=(8,), effect=3.0, seed=4)
    sdid = synthetic_did(df, **SIM, variance="jackknife")
    did = synthetic_did(df, **SIM, method="did", variance="jackknife")
    assert abs(sdid.att - 3.0) < 0.3
    assert abs(sdid.att - 3.0) < abs(did.att - 3.0)
    assert abs(did.att - 3.0) > 0.5
    assert 0 < sdid.se < 1


# ------------------------------------------------------------------------------- solver
def test_batched_solver_matches_single_problem_solver() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 12, 9))
    b = rng.normal(size=(5, 12))
    x0 = np.full((5, 9), 1 / 9)
    batched = sdid_mod._fw(a, b, x0, 0.3, 1e-8, 500)
    single = np.vstack(
        [sdid_mod._fw(a[r : r + 1], b[r : r + 1], x0[r : r + 1], 0.3, 1e-8, 500) for r in range(5)]
    )
    np.testing.assert_allclose(batched, single, atol=1e-12)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0)
    assert (batched >= 0).all()


def test_solver_reaches_the_constrained_optimum() -> None:
    # min ||A x - b||^2 / m + zeta^2 ||x||^2 on the simplex, against a general-purpose solver
    from scipy.optimize import minimize

    rng = np.random.default_rng(1)
    m, k, zeta = 30, 6, 0.2
    a = rng.normal(size=(m, k))
    b = a @ np.array([0.5, 0.3, 0.2, 0.0, 0.0, 0.0]) + rng.normal(0, 0.1, m)

    def objective(x: np.ndarray) -> float:
        return float(np.sum((a @ x - b) ** 2) / m + zeta**2 * np.sum(x**2))

    x = sdid_mod._fw(a[None], b[None], np.full((1, k), 1 / k), zeta, 1e-10, 10_000)[0]
    ref = minimize(
        objective,
        np.full(k, 1 / k),
        method="SLSQP",
        bounds=[(0, 1)] * k,
        constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert x.sum() == pytest.approx(1.0, abs=1e-12)
    assert (x >= 0).all()
    assert ref.fun <= objective(x) <= ref.fun * (1 + 1e-4)
    np.testing.assert_allclose(x, ref.x, atol=1e-2)


def test_masked_batch_equals_unmasked_fit() -> None:
    df = factor_panel(n_units=30, n_treated=(4,), seed=6)
    res = synthetic_did(df, **SIM, variance="jackknife")
    dd = sdid_mod.prepare(df, **SIM)
    block = sdid_mod._blocks(dd, "sdid", [])[0]
    sdid_mod._fit_block(block)
    draw = np.sort(np.random.default_rng(3).integers(0, 30, 30))
    n_co = int((draw < block.n0).sum())
    omega0 = sdid_mod._sum_normalize(block.omega[draw[:n_co]][None])
    lam0 = block.lam[None]
    plain = sdid_mod._fit_batch(block.y[draw][None], n_co, block.t0, block.opts, omega0, lam0)[0]
    control = (draw < block.n0)[None]
    full = np.zeros((1, 30))
    full[0, :n_co] = omega0[0]
    masked = sdid_mod._fit_batch_masked(
        block.y[draw][None], control, block.t0, block.opts, full, lam0
    )
    assert masked[0] == pytest.approx(plain[0], abs=1e-9)
    assert block.estimate == pytest.approx(res.att, abs=1e-12)


# ----------------------------------------------------------------------------- variance
def test_jackknife_matches_leave_one_out_by_hand() -> None:
    df = factor_panel(n_units=25, n_treated=(4,), seed=7)
    res = synthetic_did(df, **SIM, variance="jackknife")
    wide = df.pivot(index="la", columns="year", values="y")
    treated = df.groupby("la")["g"].first().to_numpy() > 0
    y = np.vstack([wide.to_numpy()[~treated], wide.to_numpy()[treated]])
    n0, t0 = int((~treated).sum()), 14
    omega, lam = res.unit_weights.to_numpy(), res.time_weights.to_numpy()
    estimates = []
    for drop in range(len(y)):
        keep = np.arange(len(y)) != drop
        yk = y[keep]
        k0 = n0 - (drop < n0)
        om = omega[keep[:n0]] / omega[keep[:n0]].sum()
        t1 = yk.shape[1] - t0
        est = (
            np.r_[-om, np.full(len(yk) - k0, 1 / (len(yk) - k0))]
            @ yk
            @ np.r_[-lam, np.full(t1, 1 / t1)]
        )
        estimates.append(est)
    u = np.array(estimates)
    n = len(u)
    expected = math.sqrt((n - 1) / n * (n - 1) * np.var(u, ddof=1))
    assert res.se == pytest.approx(expected, rel=1e-10)
    assert res.inference == "jackknife"


def test_jackknife_and_bootstrap_need_several_treated_units(prop99: pd.DataFrame) -> None:
    with pytest.raises(EstimationError, match="more than one treated unit"):
        synthetic_did(prop99, **COLS, variance="jackknife")
    with pytest.raises(EstimationError, match="more than one treated unit"):
        synthetic_did(prop99, **COLS, variance="bootstrap", reps=10)


def test_placebo_needs_more_controls_than_treated() -> None:
    df = factor_panel(n_units=10, n_treated=(5,), seed=8)
    with pytest.raises(EstimationError, match="more control units"):
        synthetic_did(df, **SIM, reps=10, seed=0)


def test_bootstrap_seeded_and_plausible() -> None:
    df = factor_panel(n_units=40, n_treated=(8,), seed=9)
    a = synthetic_did(df, **SIM, variance="bootstrap", reps=30, seed=3)
    b = synthetic_did(df, **SIM, variance="bootstrap", reps=30, seed=3)
    jk = synthetic_did(df, **SIM, variance="jackknife")
    assert a.se == b.se
    assert a.inference == "bootstrap"
    assert 0.2 * jk.se < a.se < 5 * jk.se


# ------------------------------------------------------------------------------ staggered
def test_staggered_adoption_aggregates_cohorts() -> None:
    df = factor_panel(
        n_units=70,
        n_periods=20,
        first_treated=(12, 16),
        n_treated=(5, 7),
        effect=2.0,
        seed=10,
        shift=0.5,
    )
    res = synthetic_did(df, **SIM, reps=20, seed=4)
    cohorts = res.cohorts.set_index("cohort")
    assert list(cohorts.index) == [12, 16]
    np.testing.assert_array_equal(cohorts["n_treated"], [5, 7])
    np.testing.assert_array_equal(cohorts["n_post"], [9, 5])
    np.testing.assert_array_equal(cohorts["n_control"], [58, 58])
    # cohorts weighted by their size (R did's aggte(type = "group"))
    weights = np.array([5, 7]) / (5 + 7)
    np.testing.assert_allclose(cohorts["weight"], weights)
    assert res.att == pytest.approx(float(weights @ cohorts["att"]), abs=1e-12)
    assert res.se == pytest.approx(math.sqrt(float(weights**2 @ cohorts["se"] ** 2)), rel=1e-12)
    assert res.settings["cohort_weighting"] == "units"
    # each cohort is the block design of that cohort against the never-treated units
    alone = synthetic_did(df[df["g"].isin([0, 16])], **SIM, reps=2, seed=0)
    assert cohorts.loc[16, "att"] == pytest.approx(alone.att, abs=1e-10)
    assert abs(res.att - 2.0) < 0.4
    # weights are labelled by (cohort, unit) and sum to one within each cohort
    assert res.unit_weights.index.names == ["g", "la"]
    np.testing.assert_allclose(res.unit_weights.groupby(level=0).sum(), 1.0)
    np.testing.assert_allclose(res.time_weights.groupby(level=0).sum(), 1.0)
    assert set(res.trajectories["cohort"]) == {12, 16}


def test_cohort_weighting_by_units_and_by_unit_periods() -> None:
    # two cohorts with different post-period lengths (10 and 3) and sizes (4 and 8)
    df = factor_panel(
        n_units=60,
        n_periods=20,
        first_treated=(11, 18),
        n_treated=(4, 8),
        effect=2.0,
        seed=21,
        shift=0.5,
    )
    # a cohort-specific effect makes the two weightings differ
    df.loc[(df["g"] == 18) & (df["year"] >= 18), "y"] += 3.0
    by_units = synthetic_did(df, **SIM, reps=10, seed=3)
    by_cells = synthetic_did(df, **SIM, reps=10, seed=3, cohort_weighting="units_x_periods")
    table = by_units.cohorts.set_index("cohort")
    np.testing.assert_array_equal(table["n_treated"], [4, 8])
    np.testing.assert_array_equal(table["n_post"], [10, 3])
    att_g, se_g = table["att"].to_numpy(), table["se"].to_numpy()
    # the same per-cohort fits (and seeded standard errors) under both weightings
    other = by_cells.cohorts.set_index("cohort")
    np.testing.assert_allclose(other["att"], att_g, rtol=0, atol=1e-12)
    np.testing.assert_allclose(other["se"], se_g, rtol=1e-12)
    # each cohort's estimate is its mean post-treatment effect (2 and 5)
    assert att_g[1] > att_g[0] + 1.5

    w_units = np.array([4.0, 8.0]) / 12.0
    assert by_units.att == pytest.approx(4 / 12 * att_g[0] + 8 / 12 * att_g[1], abs=1e-12)
    assert by_units.se == pytest.approx(math.sqrt(float(w_units**2 @ se_g**2)), rel=1e-12)
    np.testing.assert_allclose(table["weight"], w_units)

    w_cells = np.array([4.0 * 10, 8.0 * 3]) / (4 * 10 + 8 * 3)
    assert by_cells.att == pytest.approx(float(w_cells @ att_g), abs=1e-12)
    assert by_cells.se == pytest.approx(math.sqrt(float(w_cells**2 @ se_g**2)), rel=1e-12)
    np.testing.assert_allclose(other["weight"], w_cells)
    assert by_cells.settings["cohort_weighting"] == "units_x_periods"
    # the larger, later cohort (effect 5) counts more when cohorts are weighted by size
    assert by_units.att > by_cells.att + 0.3
    assert any("their number of treated units" in n for n in by_units.notes)
    assert any("treated units x post-periods" in n for n in by_cells.notes)
    with pytest.raises(InputError, match="cohort_weighting"):
        synthetic_did(df, **SIM, cohort_weighting="cells")  # type: ignore[arg-type]


def test_cohort_weighting_irrelevant_with_a_single_cohort(prop99: pd.DataFrame) -> None:
    a = synthetic_did(prop99, **COLS, method="did", reps=5, seed=1)
    b = synthetic_did(
        prop99, **COLS, method="did", reps=5, seed=1, cohort_weighting="units_x_periods"
    )
    assert a.att == b.att
    assert a.se == b.se
    assert a.att == pytest.approx(-27.349, abs=1e-3)


def test_late_cohort_units_are_controls_and_short_cohorts_dropped() -> None:
    df = factor_panel(n_units=40, first_treated=(2, 15), n_treated=(3, 4), seed=12)
    df.loc[df["la"] == 39, "g"] = 99  # first treated after the panel ends
    res = synthetic_did(df, **SIM, reps=5, seed=0)
    assert list(res.cohorts["cohort"]) == [15]
    assert res.cohorts["n_control"].iloc[0] == 33  # 32 never treated + unit 39
    assert any("dropped" in n for n in res.notes)
    assert any("after the last period" in n for n in res.notes)


# ------------------------------------------------------------------------------ interface
def test_input_validation(prop99: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="method"):
        synthetic_did(prop99, **COLS, method="mc")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="variance"):
        synthetic_did(prop99, **COLS, variance="wild")  # type: ignore[arg-type]
    unbalanced = prop99.drop(index=[5])
    with pytest.raises(InputError, match="balanced"):
        synthetic_did(unbalanced, **COLS, reps=2)


def test_to_dict_is_strict_json(prop99_sdid: SyntheticResults) -> None:
    out = prop99_sdid.to_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["estimator"] == "sdid"
    assert out["cohorts"][0]["cohort"] == 1989
    assert {r["unit"] for r in out["unit_weights"]} >= {"Nevada", "New Hampshire"}
    assert {r["time"] for r in out["time_weights"]} == {1986, 1987, 1988}
    assert len(out["group_time"]) == 12


def test_plot_draws_trajectories_and_weights(prop99_sdid: SyntheticResults) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = prop99_sdid.plot(top=5)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert len(axes[0].get_lines()) >= 3
    labels = [t.get_text() for t in axes[1].get_yticklabels()]
    assert "Nevada" in labels
    assert len(labels) == 5
    plt.close(fig)
