"""The benchmark harness: repetitions, agreement and targets (no peer package needed)."""

from __future__ import annotations

import math

import pytest

from benchmarks.harness import Case, Impl, Outcome, Unavailable, _repeats, run_case
from benchmarks.run import markdown_table


def _impl(name: str, values: dict[str, float], calls: list[str], p: float | None = None) -> Impl:
    def run(_: object) -> Outcome:
        calls.append(name)
        return Outcome(values, next(iter(values.values())), p_value=p)

    return Impl(name, run)


def test_every_implementation_warms_up_once_then_runs_interleaved():
    calls: list[str] = []
    case = Case(
        "toy",
        "toy case",
        _impl("ours", {"a": 1.0}, calls),
        [_impl("diff-diff", {"a": 1.0}, calls)],
        tolerance=1e-8,
    )
    rows = run_case(case, repeat=3, log=lambda _: None)
    assert calls == ["ours", "diff-diff"] + ["ours", "diff-diff"] * 3
    (row,) = rows
    assert row["n_repeat"] == 3
    assert row["peer_n_repeat"] == 3
    assert row["target"] == 1.0
    assert row["agree"] is True
    assert math.isclose(row["ratio"], row["ours_s"] / row["peer_s"], rel_tol=1e-3)


def test_a_long_case_counts_its_first_run():
    calls: list[str] = []
    case = Case("long", "", _impl("ours", {"a": 1.0}, calls), [], tolerance=0.0, warmup=False)
    (row,) = run_case(case, repeat=2, log=lambda _: None)
    assert calls == ["ours", "ours"]
    assert row["n_repeat"] == 2
    assert row["peer"] is None
    assert row["ratio"] is None


@pytest.mark.parametrize(
    ("peer_values", "peer_p", "agree"),
    [
        ({"a": 1.0 + 5e-7}, 0.05, True),
        ({"a": 1.0 + 5e-6}, 0.05, False),  # estimate outside the tolerance
        ({"b": 1.0}, 0.05, False),  # different keys
        ({"a": 1.0}, 0.09, False),  # p-value outside p_tolerance
    ],
)
def test_agreement_needs_same_keys_estimates_and_p_values(peer_values, peer_p, agree):
    calls: list[str] = []
    case = Case(
        "inference",
        "",
        _impl("ours", {"a": 1.0}, calls, p=0.05),
        [_impl("pyfixest", peer_values, calls, p=peer_p)],
        tolerance=1e-6,
        p_tolerance=0.02,
    )
    (row,) = run_case(case, repeat=1, log=lambda _: None)
    assert row["agree"] is agree
    assert row["target"] == 0.5


def test_failing_and_missing_peers_are_recorded_not_fatal():
    def broken(_: object) -> Outcome:
        raise RuntimeError("boom")

    calls: list[str] = []
    case = Case(
        "toy",
        "",
        _impl("ours", {"a": 1.0}, calls),
        [Impl("csdid", broken), Unavailable("synthdid", "not installable")],
        tolerance=1e-8,
    )
    rows = run_case(case, repeat=1, log=lambda _: None)
    assert [r["peer_s"] for r in rows] == [None, None]
    assert "boom" in rows[0]["reason"]
    assert rows[1]["reason"] == "not installable"
    assert "skipped" in markdown_table(rows)


def test_budget_caps_runs_but_never_below_two():
    assert _repeats(0.01, 5, 150.0) == 5
    assert _repeats(60.0, 5, 150.0) == 2
    assert _repeats(1000.0, 5, 150.0) == 2
    assert _repeats(1000.0, 1, 150.0) == 1
