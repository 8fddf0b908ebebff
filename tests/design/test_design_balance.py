"""Balance statistics, the balance table and the love plot."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from kinship_eval.design.balance import (
    BALANCE_COLUMNS,
    SMD_CONVENTION,
    balance_table,
    love_plot,
    standardised_mean_difference,
    variance_ratio,
    weighted_mean_var,
)


def test_weighted_mean_and_variance() -> None:
    x = np.array([1.0, 2.0, 4.0])
    mean, var = weighted_mean_var(x)
    assert (mean, var) == pytest.approx((7 / 3, np.var(x, ddof=1)))
    # equal weights reproduce the ddof=1 variance (reliability weights)
    assert weighted_mean_var(x, np.ones(3)) == pytest.approx((mean, var))
    mean_w, var_w = weighted_mean_var(x, [0.5, 0.25, 0.25])
    assert mean_w == pytest.approx(2.0)
    assert var_w == pytest.approx((0.5 * 1 + 0.25 * 0 + 0.25 * 4) / (1 - 0.375))
    assert math.isnan(weighted_mean_var([3.0], [1.0])[1])


def test_smd_uses_the_pooled_sd_and_a_fixed_denominator() -> None:
    pilot = np.array([2.0, 4.0, 6.0])  # mean 4, variance 4
    pool = np.array([0.0, 2.0, 4.0, 6.0])  # mean 3, variance 20/3
    pooled = math.sqrt((4 + 20 / 3) / 2)
    assert standardised_mean_difference(pilot, pool) == pytest.approx(1 / pooled)
    # after weighting, the same before-selection denominator is kept when passed
    after = standardised_mean_difference(pilot, pool, weights=[0, 0, 1, 1], sd=pooled)
    assert after == pytest.approx((4 - 5) / pooled)
    assert variance_ratio(pilot, pool) == pytest.approx(4 / (20 / 3))
    assert standardised_mean_difference([1.0, 1.0], [1.0, 1.0]) == 0.0


def test_balance_table_before_and_after() -> None:
    features = pd.DataFrame(
        {"x": [5.0, 6.0, 1.0, 2.0, 5.5, 6.5], "z": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]},
        index=pd.Index(list("ABCDEF"), name="la_code"),
    )
    bal = balance_table(features, ["A", "B"], weights=pd.Series({"E": 1.0, "F": 1.0, "C": 0.0}))
    table = bal.to_frame()
    assert list(table.columns) == BALANCE_COLUMNS
    x = table.set_index("variable").loc["x"]
    assert x["mean_pilot"] == pytest.approx(5.5)
    assert x["mean_comparison_before"] == pytest.approx(3.75)
    assert x["mean_comparison_after"] == pytest.approx(6.0)
    sd = math.sqrt((np.var([5, 6], ddof=1) + np.var([1, 2, 5.5, 6.5], ddof=1)) / 2)
    assert x["smd_before"] == pytest.approx(1.75 / sd)
    assert x["smd_after"] == pytest.approx(-0.5 / sd)
    assert bal.n_before == 4
    assert bal.n_after == 2
    assert bal.effective_n_after == pytest.approx(2.0)
    assert bal.max_abs_smd_after < bal.max_abs_smd_before
    assert "pooled SD" in bal.summary()
    assert bal.convention == SMD_CONVENTION


def test_missing_values_are_left_out_with_a_note() -> None:
    features = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 3.0]}, index=list("abcde"))
    bal = balance_table(features, ["a", "b"])
    row = bal.to_frame().iloc[0]
    assert row["n_comparison_before"] == 2
    assert any("missing" in n for n in bal.notes)


def test_love_plot_is_readable_without_colour() -> None:
    features = pd.DataFrame(
        np.random.default_rng(0).normal(size=(40, 3)), columns=["a__level", "a__trend", "b__level"]
    )
    pilots = list(range(5))
    weights = pd.Series(1.0, index=range(5, 15))
    bal = balance_table(features, pilots, weights=weights, method="test matching")
    fig = love_plot(bal)
    ax = fig.axes[0]
    before, after = ax.collections[:2]
    assert before.get_label().startswith("before")
    assert after.get_label().startswith("after")
    # hollow circles before, filled diamonds after: distinguishable by shape and fill alone
    assert np.allclose(before.get_facecolors()[0][:3], 1.0)
    assert np.allclose(after.get_facecolors()[0][:3], 0.0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(label.startswith(("a, ", "b, ")) for label in labels)
    assert any(abs(line.get_xdata()[0] - 0.1) < 1e-12 for line in ax.get_lines())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getbuffer().nbytes > 1000
    assert bal.plot(absolute=False) is not None
