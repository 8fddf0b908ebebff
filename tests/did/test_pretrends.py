"""Pre-trend tests, pre-test power (Roth 2022) and HonestDiD intervals (Rambachan and Roth 2023)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from kinship_eval.did import pretrends as pt
from kinship_eval.did.inference import wild_bootstrap_event_study
from kinship_eval.errors import InputError

# ----------------------------------------------------------------------------- reference inputs
# Benzarti and Carloni (2019) event study shipped with the HonestDiD R package as
# BCdata_EventStudy (4 pre-periods, 4 post-periods), as printed to 10 significant digits in the
# test fixtures of the Julia port eohne/HonestDiD.jl (test/reference.jl, generated from R).
BC_BETAHAT = np.array(
    [
        0.006696351804,
        0.02934503369,
        -0.006472972222,
        0.0730149895,
        0.1959611177,
        0.3120639026,
        0.2395415455,
        0.1260425001,
    ]
)
BC_SIGMA = np.array(
    [
        [8.428358124e-4, 4.768686777e-4, 2.618051076e-4, 2.354220342e-4,
         1.676371467e-4, 1.128707663e-4, 1.992816215e-05, -1.368265366e-4],
        [4.768686777e-4, 6.425420288e-4, 3.987425007e-4, 2.435515198e-4,
         2.201960306e-4, 1.804591157e-4, 3.84376508e-05, -2.960421989e-05],
        [2.618051076e-4, 3.987425007e-4, 5.229949602e-4, 2.11768609e-4,
         1.840722252e-4, 1.45852784e-4, 7.005197403e-05, 5.952994979e-05],
        [2.354220342e-4, 2.435515198e-4, 2.11768609e-4, 3.089595411e-4,
         1.197866077e-4, 1.334081317e-4, 1.016335009e-4, 1.079051726e-4],
        [1.676371467e-4, 2.201960306e-4, 1.840722252e-4, 1.197866077e-4,
         3.59970436e-4, 2.478818642e-4, 1.749579242e-4, 1.654256921e-4],
        [1.128707663e-4, 1.804591157e-4, 1.45852784e-4, 1.334081317e-4,
         2.478818642e-4, 4.263949813e-4, 2.171437809e-4, 2.892747871e-4],
        [1.992816215e-05, 3.84376508e-05, 7.005197403e-05, 1.016335009e-4,
         1.749579242e-4, 2.171437809e-4, 4.886697861e-4, 3.805322049e-4],
        [-1.368265366e-4, -2.960421989e-05, 5.952994979e-05, 1.079051726e-4,
         1.654256921e-4, 2.892747871e-4, 3.805322049e-4, 7.61739444e-4],
    ]
)  # fmt: skip

# Results of the R package HonestDiD on BCdata_EventStudy with l_vec = first post period and
# alpha = 0.05, from the same Julia fixtures (constructOriginalCS, DeltaSD_upperBound_Mpre,
# createSensitivityResults method "FLCI" and "Conditional", Mvec = 0, 0.1, 0.2) and from the R
# outputs stored by the Python port anzonyquispe/honestdid (tests/r_test_results.json: FLCI for
# M = 0, 0.01, 0.02, 0.03 and createSensitivityResults_relativeMagnitudes, C-LF, Mbar = 0.5..2).
R_ORIGINAL = (0.15877494280765, 0.233147292681241)
R_M_UPPER = 0.202169869297069
R_FLCI = {
    0.0: (0.131411316, 0.2161696482),
    0.01: (0.1549652670807741, 0.2703845303265206),
    0.02: (0.17730108790014376, 0.31595646819476952),
    0.03: (0.18940446443439926, 0.34854775003919292),
    0.1: (0.1194440001, 0.4185082143),
    0.2: (0.01944400015, 0.5185082143),
}
R_CONDITIONAL_SD = {
    0.0: (0.2100501789, 0.3277998271),
    0.1: (0.1195044811, 0.4180257149),
    0.2: (0.02030132213, 0.5179737331),
}
R_RM_CLF = {
    0.5: (0.11812948578177346, 0.27158386602562062),
    1.0: (0.06723125075039843, 0.31868372530838568),
    1.5: (0.013294315120135292, 0.36958196033976071),
    2.0: (-0.042161970809571847, 0.3794577372861469),
}


# ----------------------------------------------------------------------------- joint test
def test_joint_pretrend_test_full_and_diagonal() -> None:
    es = pd.DataFrame(
        {
            "rel_time": [-4, -3, -2, -1, 0, 1],
            "att": [0.1, -0.2, 0.05, 0.0, 0.5, 0.6],
            "se": [0.1, 0.1, 0.05, np.nan, 0.1, 0.1],
        }
    )
    diag = pt.joint_pretrend_test(es)
    expected = (0.1 / 0.1) ** 2 + (0.2 / 0.1) ** 2 + (0.05 / 0.05) ** 2
    assert diag["stat"] == pytest.approx(expected)
    assert diag["df"] == 3
    assert diag["vcov"] == "diagonal"
    assert diag["p_value"] == pytest.approx(stats.chi2.sf(expected, 3))
    cov = np.array([[0.01, 0.004, 0.0], [0.004, 0.01, 0.001], [0.0, 0.001, 0.0025]])
    full = pt.joint_pretrend_test(es, pd.DataFrame(cov, index=[-4, -3, -2], columns=[-4, -3, -2]))
    b = np.array([0.1, -0.2, 0.05])
    assert full["stat"] == pytest.approx(b @ np.linalg.solve(cov, b))
    vec = pt.joint_pretrend_test(
        np.array([0.1, -0.2, 0.05, 0.5]),
        np.pad(cov, ((0, 1), (0, 1))) + np.diag([0, 0, 0, 1.0]),
        rel_times=[-4, -3, -2, 0],
    )
    assert vec["stat"] == pytest.approx(full["stat"])
    with pytest.raises(InputError):
        pt.joint_pretrend_test(np.array([0.1, 0.2]))


# ----------------------------------------------------------------------------- pre-test power
def _independent_setup() -> tuple[np.ndarray, np.ndarray, list[int]]:
    rel = [-4, -3, -2, 0, 1, 2]
    se = np.array([0.12, 0.10, 0.08, 0.07, 0.10, 0.11])
    sigma = np.diag(se**2)
    beta = np.array([-0.09, -0.09, -0.07, 0.09, 0.19, 0.18])
    return beta, sigma, rel


def test_pretest_power_closed_forms_with_independent_leads() -> None:
    beta, sigma, rel = _independent_setup()
    slope = 0.05
    res = pt.pretest_power(beta, sigma, rel, slope=slope, n_sims=100_000, seed=3)
    t_pre = np.array([-4, -3, -2]) + 1
    se_pre = np.sqrt(np.diag(sigma))[:3]
    z = stats.norm.ppf(0.975)
    mu = slope * t_pre / se_pre
    accept = np.prod(stats.norm.cdf(z - mu) - stats.norm.cdf(-z - mu))
    assert res.power_any == pytest.approx(1 - accept, abs=1e-6)
    ncp = float(np.sum(mu**2))
    assert res.power_wald == pytest.approx(stats.ncx2.sf(stats.chi2.ppf(0.95, 3), 3, ncp))

    def any_power(s: float) -> float:
        m = s * t_pre / se_pre
        return 1 - np.prod(stats.norm.cdf(z - m) - stats.norm.cdf(-z - m))

    for target in (0.5, 0.8):
        expected = optimize.brentq(lambda s, t=target: any_power(s) - t, 0, 1)
        assert res.slopes["any"][target] == pytest.approx(expected, rel=1e-5)
    assert res.bayes_factor == pytest.approx(accept / 0.95**3, rel=1e-5)
    # post-period estimates are independent of the leads here: no pre-test bias beyond delta
    np.testing.assert_allclose(res.bias["after_any"], res.bias["unconditional"], atol=0.004)


def test_pretest_bias_after_passing_matches_truncated_normal() -> None:
    """One lead, one post coefficient: E[beta_post | |t_pre| <= z] in closed form."""
    sigma = np.array([[0.04, 0.018], [0.018, 0.03]])
    slope = 0.15
    res = pt.pretest_power([0.0, 0.1], sigma, [-2, 0], slope=slope, n_sims=400_000, seed=5)
    delta_pre, delta_post = -slope, slope
    se = 0.2
    z = stats.norm.ppf(0.975)
    a, b = (-z * se - delta_pre) / se, (z * se - delta_pre) / se
    mean_pre = stats.truncnorm.mean(a, b, loc=delta_pre, scale=se)
    expected = delta_post + 0.018 / 0.04 * (mean_pre - delta_pre)
    assert res.bias["after_any"].iloc[0] == pytest.approx(expected, abs=0.002)
    assert res.bias["unconditional"].iloc[0] == pytest.approx(delta_post)
    assert res.frame["mean_after_any"].iloc[0] == pytest.approx(mean_pre, abs=0.002)
    assert res.to_dict()["power_any"] == res.power_any


def test_slope_for_power_wald_and_correlated_any() -> None:
    sigma = BC_SIGMA
    rel = [-5, -4, -3, -2, 0, 1, 2, 3]
    for test in ("any", "wald"):
        s80 = pt.slope_for_power(sigma, rel, 0.8, test=test)
        delta = s80 * (np.array([-5, -4, -3, -2]) + 1)
        sp = sigma[:4, :4]
        if test == "wald":
            ncp = delta @ np.linalg.solve(sp, delta)
            assert stats.ncx2.sf(stats.chi2.ppf(0.95, 4), 4, ncp) == pytest.approx(0.8, abs=1e-8)
        else:
            rng = np.random.default_rng(0)
            draws = rng.multivariate_normal(delta, sp, size=400_000)
            reject = np.any(np.abs(draws / np.sqrt(np.diag(sp))) > stats.norm.ppf(0.975), axis=1)
            assert reject.mean() == pytest.approx(0.8, abs=0.004)


# ----------------------------------------------------------------------------- HonestDiD references
@pytest.mark.reference
def test_original_ci_and_default_m_bound_match_honestdid() -> None:
    lo, hi = pt.original_ci(BC_BETAHAT, BC_SIGMA, 4, 4)
    assert lo == pytest.approx(R_ORIGINAL[0], abs=1e-9)
    assert hi == pytest.approx(R_ORIGINAL[1], abs=1e-9)
    assert pt._sd_upper_bound(BC_BETAHAT, BC_SIGMA, 4, 0.05) == pytest.approx(R_M_UPPER, abs=1e-9)


@pytest.mark.reference
def test_flci_matches_honestdid() -> None:
    """R simulates the folded-normal quantile (1e6 draws): agreement to ~1e-3."""
    res = pt.honest_did(BC_BETAHAT, BC_SIGMA, 4, 4, m_values=list(R_FLCI))
    for m, lo, hi in zip(res.m, res.ci_low, res.ci_high, strict=True):
        assert lo == pytest.approx(R_FLCI[m][0], abs=2e-3)
        assert hi == pytest.approx(R_FLCI[m][1], abs=2e-3)
    assert res.ci_method == "FLCI"
    assert res.breakdown is None


@pytest.mark.reference
def test_relative_magnitudes_match_honestdid() -> None:
    """C-LF on HonestDiD's own grid (1000 points on +-20 sd around 0): agreement to a grid step."""
    sd = math.sqrt(BC_SIGMA[4, 4])
    res = pt.honest_did(
        BC_BETAHAT,
        BC_SIGMA,
        4,
        4,
        method="relative_magnitude",
        m_values=list(R_RM_CLF),
        grid_bounds=(-20 * sd, 20 * sd),
        refine_breakdown=False,
    )
    for m, lo, hi in zip(res.m, res.ci_low, res.ci_high, strict=True):
        assert lo == pytest.approx(R_RM_CLF[m][0], abs=1.5e-3)
        assert hi == pytest.approx(R_RM_CLF[m][1], abs=1.5e-3)
    # the upper end at Mbar = 2 is the end of R's grid; with the default grid it lies beyond
    wide = pt.honest_did(BC_BETAHAT, BC_SIGMA, 4, 4, method="relative_magnitude", m_values=[2.0])
    assert wide.ci_high[0] > R_RM_CLF[2.0][1] + 0.01
    assert wide.ci_low[0] == pytest.approx(R_RM_CLF[2.0][0], abs=1.5e-3)


@pytest.mark.reference
def test_conditional_smoothness_matches_honestdid() -> None:
    res = pt.honest_did(
        BC_BETAHAT,
        BC_SIGMA,
        4,
        4,
        ci_method="Conditional",
        m_values=list(R_CONDITIONAL_SD),
    )
    for m, lo, hi in zip(res.m, res.ci_low, res.ci_high, strict=True):
        assert lo == pytest.approx(R_CONDITIONAL_SD[m][0], abs=1.5e-3)
        assert hi == pytest.approx(R_CONDITIONAL_SD[m][1], abs=1.5e-3)


def test_linear_programming_fallback_equals_vertex_enumeration() -> None:
    kw = {"m_values": [0.05], "grid_points": 40, "ci_method": "Conditional"}
    vertex = pt.honest_did(BC_BETAHAT, BC_SIGMA, 4, 4, **kw)
    lp = pt.honest_did(BC_BETAHAT, BC_SIGMA, 4, 4, vertex_limit=0, **kw)
    assert lp.ci_low[0] == pytest.approx(vertex.ci_low[0], abs=1e-8)
    assert lp.ci_high[0] == pytest.approx(vertex.ci_high[0], abs=1e-8)


# ----------------------------------------------------------------------------- closed forms
def _max_bias_lp(v: np.ndarray, num_pre: int, num_post: int, m: float) -> float:
    """Worst-case |v' delta| over Delta^SD(M) by linear programming (independent of the FLCI)."""
    a = pt._sd_matrix(num_pre, num_post)
    res = optimize.linprog(
        -v, A_ub=a, b_ub=np.full(len(a), m), bounds=[(None, None)] * len(v), method="highs"
    )
    assert res.status == 0
    res2 = optimize.linprog(
        v, A_ub=a, b_ub=np.full(len(a), m), bounds=[(None, None)] * len(v), method="highs"
    )
    return max(-res.fun, -res2.fun)


@pytest.mark.parametrize("l_vec", [None, [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
def test_flci_bias_formula_equals_linear_program(l_vec: list[float] | None) -> None:
    for m in (0.01, 0.05):
        res = pt.flci(BC_BETAHAT, BC_SIGMA, 4, 4, m=m, l_vec=l_vec)
        assert res["max_bias"] == pytest.approx(_max_bias_lp(res["weights"], 4, 4, m), rel=1e-6)


def test_flci_closed_form_with_one_pre_period() -> None:
    sigma = np.array([[0.02, 0.005], [0.005, 0.03]])
    beta = np.array([0.1, 0.4])
    sd = math.sqrt(0.02 + 0.03 + 2 * 0.005)
    zero = pt.flci(beta, sigma, 1, 1, m=0.0)
    # M = 0: the linear extrapolation of the pre-trend, beta_post + beta_pre, +- 1.96 sd
    assert zero["estimate"] == pytest.approx(0.5)
    assert zero["half_length"] == pytest.approx(stats.norm.ppf(0.975) * sd, rel=1e-10)
    m = 0.1
    one = pt.flci(beta, sigma, 1, 1, m=m)
    q = optimize.brentq(
        lambda x: stats.norm.cdf(x - m / sd) - stats.norm.cdf(-x - m / sd) - 0.95, 0, 10
    )
    assert one["half_length"] == pytest.approx(q * sd, rel=1e-10)
    widths = [pt.flci(BC_BETAHAT, BC_SIGMA, 4, 4, m=x)["half_length"] for x in (0, 0.05, 0.5, 5)]
    assert np.all(np.diff(widths) > 0)


def test_identified_sets() -> None:
    lo, hi = pt.identified_set(BC_BETAHAT, 4, 4, method="relative_magnitude", m=0.0)
    assert lo == pytest.approx(BC_BETAHAT[4])
    assert hi == pytest.approx(BC_BETAHAT[4])
    # exactly linear pre-trends and M = 0: the linear extrapolation is point identified
    beta = np.array([-0.3, -0.2, -0.1, 0.5, 0.7])
    lo, hi = pt.identified_set(beta, 3, 2, method="smoothness", m=0.0)
    assert lo == pytest.approx(0.5 - 0.1)
    assert hi == pytest.approx(0.5 - 0.1)
    lo1, hi1 = pt.identified_set(beta, 3, 2, method="smoothness", m=0.2)
    assert lo1 == pytest.approx(0.4 - 0.2)
    assert hi1 == pytest.approx(0.4 + 0.2)
    rm_lo, rm_hi = pt.identified_set(beta, 3, 2, method="relative_magnitude", m=1.0)
    assert rm_lo == pytest.approx(0.5 - 0.1)
    assert rm_hi == pytest.approx(0.5 + 0.1)


# ----------------------------------------------------------------------------- coverage
def test_flci_covers_under_a_linear_violation_where_the_naive_ci_does_not() -> None:
    rng = np.random.default_rng(42)
    num_pre, num_post = 3, 2
    rel = np.array([-4, -3, -2, 0, 1], dtype=float)
    a = rng.normal(size=(5, 5))
    sigma = 0.01 * (a @ a.T / 5 + np.eye(5))
    tau = np.array([0, 0, 0, 0.2, 0.3])
    delta = 0.4 * (rel + 1)
    draws = rng.multivariate_normal(tau + delta, sigma, size=400)
    cover_flci = cover_naive = 0
    for b in draws:
        res = pt.flci(b, sigma, num_pre, num_post, m=0.0)
        cover_flci += res["ci_low"] <= 0.2 <= res["ci_high"]
        lo, hi = pt.original_ci(b, sigma, num_pre, num_post)
        cover_naive += lo <= 0.2 <= hi
    assert 0.92 <= cover_flci / len(draws) <= 0.98
    assert cover_naive / len(draws) < 0.5


def test_relative_magnitude_ci_covers_with_known_truth() -> None:
    rng = np.random.default_rng(7)
    num_pre, num_post = 2, 2
    a = rng.normal(size=(4, 4))
    sigma = 0.01 * (a @ a.T / 4 + np.eye(4))
    # pre-period changes of 0.1; post-period changes at most 0.1 (Mbar = 1 holds)
    delta = np.array([-0.2, -0.1, 0.1, 0.2])
    tau = np.array([0.0, 0.0, 0.5, 0.5])
    draws = rng.multivariate_normal(tau + delta, sigma, size=60)
    covered = 0
    for b in draws:
        res = pt.honest_did(
            b,
            sigma,
            num_pre,
            num_post,
            method="relative_magnitude",
            m_values=[1.0],
            grid_points=100,
            lf_sims=500,
            refine_breakdown=False,
        )
        covered += res.ci_low[0] <= 0.5 <= res.ci_high[0]
    assert covered / len(draws) >= 0.9


# ----------------------------------------------------------------------------- results object
def test_honest_results_views_and_breakdown() -> None:
    res = pt.honest_did(BC_BETAHAT, BC_SIGMA, 4, 4, m_values=[0.0, 0.1, 0.2, 0.3])
    frame = res.to_frame()
    assert list(frame.columns) == ["m", "ci_low", "ci_high", "method"]
    assert frame["method"].iloc[0] == "Original"
    assert len(frame) == 5
    records = res.records()
    assert set(records[0]) == {"m", "ci_low", "ci_high"}
    assert res.to_dict()["robust"] == records
    assert res.breakdown is not None
    assert 0.2 < res.breakdown <= 0.3
    below = pt.flci(BC_BETAHAT, BC_SIGMA, 4, 4, m=res.breakdown * 0.999)
    above = pt.flci(BC_BETAHAT, BC_SIGMA, 4, 4, m=res.breakdown * 1.001)
    assert below["ci_low"] > 0 >= above["ci_low"]
    assert "Breakdown" in res.summary()
    import matplotlib

    matplotlib.use("Agg")
    ax = res.plot()
    assert ax.get_xlabel() == "M"


def test_honest_did_from_wild_bootstrap_event_study() -> None:
    rng = np.random.default_rng(1)
    n_units, years = 30, np.arange(2010, 2020)
    unit = np.repeat(np.arange(n_units), len(years))
    year = np.tile(years, n_units)
    g = np.where(unit < 6, 2016, 0)
    y = rng.normal(size=n_units)[unit] + 0.4 * ((g > 0) & (year >= g)) + rng.normal(size=len(unit))
    df = pd.DataFrame({"la": unit, "year": year, "g": g, "y": y})
    es = wild_bootstrap_event_study(
        df, unit="la", time="year", outcome="y", first_treated="g", leads=3, lags=2, reps=199
    )
    beta, sigma, num_pre, num_post = pt.honest_inputs(es)
    assert (num_pre, num_post) == (2, 3)
    assert pt.joint_pretrend_test(es)["vcov"] == "full"
    res = pt.honest_did(
        beta, sigma, num_pre, num_post, method="relative_magnitude", m_values=[0.5, 1.0]
    )
    assert np.all(res.ci_low <= res.estimate)
    assert np.all(res.estimate <= res.ci_high)


def test_input_validation() -> None:
    with pytest.raises(InputError):
        pt.honest_did(BC_BETAHAT, BC_SIGMA, 3, 4)
    with pytest.raises(InputError):
        pt.honest_did(BC_BETAHAT, BC_SIGMA, 4, 4, method="relative_magnitude", ci_method="FLCI")
    with pytest.raises(InputError):
        pt.flci(BC_BETAHAT, BC_SIGMA, 4, 4, m=-1.0)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.95, 0.975])
@pytest.mark.parametrize("scale", [0.5, 3.0, 10.0, 30.0])
def test_truncated_normal_quantile_matches_scipy_into_the_tails(p: float, scale: float) -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(0.0, scale, 2_000)
    b = a + rng.exponential(scale / 3.0, 2_000) + 1e-6
    b[::5] = np.inf
    ours = pt.truncnorm_ppf(p, a, b)
    reference = stats.truncnorm.ppf(p, a, b)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    assert np.all((ours >= a) & (ours <= b))
