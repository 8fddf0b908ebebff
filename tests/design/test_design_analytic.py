"""The analytic MDE and the estimated error structure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kinship_eval.design.analytic import (
    analytic_mde,
    analytic_mde_table,
    analytic_se,
    ar1_covariance,
    did_variance,
    estimate_error_structure,
)
from kinship_eval.errors import EstimationError, InputError


def ar1_panel(rho: float, n_units: int = 3000, n_periods: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = np.empty((n_units, n_periods))
    e[:, 0] = rng.normal(size=n_units)
    for t in range(1, n_periods):
        e[:, t] = rho * e[:, t - 1] + math.sqrt(1 - rho**2) * rng.normal(size=n_units)
    y = e + rng.normal(0, 3, n_units)[:, None] + 0.3 * np.arange(n_periods)
    return pd.DataFrame(
        {
            "u": np.repeat(np.arange(n_units), n_periods),
            "t": np.tile(np.arange(n_periods), n_units),
            "y": y.ravel(),
        }
    )


def test_variance_formula_reduces_to_the_iid_case() -> None:
    sigma2, n1, n0, m, r = 2.0, 7, 140, 6, 2
    iid = did_variance(ar1_covariance(m + r, sigma2, 0.0), n1, n0, m, r)
    assert iid == pytest.approx(sigma2 * (1 / n1 + 1 / n0) * (1 / m + 1 / r))
    # Burlig, Preonas and Woerman (2020) eq. 2 with AR(1) covariances
    rho = 0.5
    cov = ar1_covariance(m + r, sigma2, rho)
    pre, post = cov[:m, :m], cov[m:, m:]
    psi_b = (pre.sum() - np.trace(pre)) / (m * (m - 1))
    psi_a = (post.sum() - np.trace(post)) / (r * (r - 1))
    psi_x = cov[:m, m:].mean()
    bpw = (1 / n1 + 1 / n0) * (
        (m + r) / (m * r) * sigma2 + (m - 1) / m * psi_b + (r - 1) / r * psi_a - 2 * psi_x
    )
    assert did_variance(cov, n1, n0, m, r) == pytest.approx(bpw)


def test_mde_multiplier() -> None:
    assert analytic_mde(1.0) == pytest.approx(stats.norm.ppf(0.975) + stats.norm.ppf(0.8))
    assert analytic_mde(1.0, df=6) > analytic_mde(1.0)
    with pytest.raises(InputError):
        analytic_mde(1.0, power=1.5)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_error_structure_recovers_ar1_parameters(rho: float) -> None:
    es = estimate_error_structure(ar1_panel(rho), unit="u", time="t", outcome="y")
    assert es.rho == pytest.approx(rho, abs=0.05)
    assert es.sigma2 == pytest.approx(1.0, rel=0.08)
    truth = math.sqrt(did_variance(ar1_covariance(8, 1.0, rho), 7, 140, 6, 2))
    for kind in ("ar1", "empirical"):
        se = analytic_se(es, n_treated=7, n_control=140, n_pre=6, n_post=2, covariance=kind)
        assert se == pytest.approx(truth, rel=0.06)


def test_mde_table_and_errors() -> None:
    es = estimate_error_structure(ar1_panel(0.3, n_units=500), unit="u", time="t", outcome="y")
    table = analytic_mde_table(es, n_pilot=[5, 7, 10], post_periods=[1, 2], n_units=150, baseline=4)
    assert list(table.columns) == [
        "n_pilot", "post_periods", "n_pre", "n_control", "se", "mde", "mde_pct"
    ]  # fmt: skip
    for _, group in table.groupby("post_periods"):
        assert group.sort_values("n_pilot")["mde"].is_monotonic_decreasing
    assert table["mde_pct"].to_numpy() == pytest.approx(25 * table["mde"].to_numpy())
    with pytest.raises(InputError):
        es.covariance(12, "empirical")
    with pytest.raises(EstimationError):
        estimate_error_structure(ar1_panel(0.0, n_units=10, n_periods=2), unit="u", time="t",
                                 outcome="y")  # fmt: skip
