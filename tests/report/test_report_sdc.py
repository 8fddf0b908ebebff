"""Statistical disclosure control: threshold, rounding, secondary suppression, the audit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kinship_eval.report import sdc

SUPPRESSED = ("primary", "secondary")


# ----------------------------------------------------------------------------- helpers
def determined_by_linear_algebra(prot: sdc.ProtectedTable) -> list[tuple]:
    """Suppressed cells fixed by the published cells and totals (independent of the LP audit).

    Unknowns are the suppressed (and unavailable) cells; every line with a published total is an
    equation. A cell is determined if its unit vector lies in the row space of the system.
    """
    status = prot.status
    cells = [(r, c) for r in status.index for c in status.columns]
    unknown = [x for x in cells if status.loc[x] != "published"]
    index = {x: i for i, x in enumerate(unknown)}
    rows = []
    for members, total in prot.lines:
        if status.loc[total] == "unavailable":
            continue
        row = np.zeros(len(unknown))
        for x in members:
            if x in index:
                row[index[x]] += 1
        if total in index:
            row[index[total]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return []
    a = np.array(rows)
    rank = np.linalg.matrix_rank(a)
    out = []
    for x in unknown:
        if status.loc[x] not in SUPPRESSED:
            continue
        e = np.zeros(len(unknown))
        e[index[x]] = 1
        if np.linalg.matrix_rank(np.vstack([a, e])) == rank:
            out.append(x)
    return out


def lines_with_one_suppressed(prot: sdc.ProtectedTable) -> list:
    bad = []
    for members, total in prot.lines:
        if prot.status.loc[total] == "unavailable":
            continue
        n = sum(prot.status.loc[x] in SUPPRESSED for x in [*members, total])
        if n == 1:
            bad.append((members, total))
    return bad


def published_frame(prot: sdc.ProtectedTable, label: str = "Area") -> pd.DataFrame:
    pub = prot.published("ods")
    frame = pub.reset_index().rename(columns={"index": label})
    frame.columns = [str(c) for c in frame.columns]
    frame.attrs["sdc"] = sdc.SDCMeta(
        count_columns=tuple(c for c in frame.columns if c != label),
        rule=prot.rule,
        row_label_column=label,
        row_totals=True,
        column_totals=True,
    )
    return frame


# ----------------------------------------------------------------------------- primary
def test_primary_suppression_threshold():
    counts = pd.DataFrame({"n": [0, 1, 5, 9, 10, 11, 24, 25]})
    prot = sdc.protect_counts(counts, ["n"])
    assert prot.status["n"].tolist() == [
        "published",
        "primary",
        "primary",
        "primary",
        "published",
        "published",
        "published",
        "published",
    ]
    assert prot.published("ods")["n"].tolist() == [0.0, "[c]", "[c]", "[c]", 10.0, 10.0, 25.0, 25.0]
    assert prot.published("csv")["n"].tolist()[1] == "c"


def test_threshold_and_zeros_are_configurable():
    counts = pd.DataFrame({"n": [0, 4, 5, 7]})
    rule = sdc.SDCRule(threshold=5, rounding_base=1, zeros_disclosive=True)
    prot = sdc.protect_counts(counts, ["n"], rule)
    assert prot.status["n"].tolist() == ["primary", "primary", "published", "published"]
    assert prot.values["n"].tolist()[2:] == [5.0, 7.0]
    assert "below 5" in rule.describe()
    assert "Zeros are also suppressed" in rule.describe()


def test_missing_counts_are_unavailable_not_suppressed():
    prot = sdc.protect_counts(pd.DataFrame({"n": [np.nan, 3.0]}), ["n"])
    assert prot.status["n"].tolist() == ["unavailable", "primary"]
    assert prot.published("ods")["n"].tolist() == ["[x]", "[c]"]


# ----------------------------------------------------------------------------- rounding
@pytest.mark.parametrize(
    ("value", "rounded"),
    [(10, 10), (11, 10), (12, 10), (13, 15), (14, 15), (22, 20), (23, 25), (12.5, 15), (97.4, 95)],
)
def test_rounding_to_nearest_five(value, rounded):
    assert sdc.round_to_base(value, 5) == rounded


def test_rounding_base_one_keeps_whole_numbers_and_nan_stays_nan():
    assert sdc.round_to_base(13, 1) == 13
    assert math.isnan(sdc.round_to_base(float("nan"), 5))


def test_published_counts_are_rounded_and_at_least_the_threshold():
    rng = np.random.default_rng(4)
    counts = pd.DataFrame({"n": rng.integers(0, 200, 300).astype(float)})
    prot = sdc.protect_counts(counts, ["n"])
    shown = prot.values["n"].dropna()
    assert (shown % 5 == 0).all()
    assert ((shown == 0) | (shown >= 10)).all()
    assert (prot.exact["n"][prot.status["n"] == "primary"].between(1, 9)).all()


# ----------------------------------------------------------------------------- secondary
def test_one_small_cell_in_a_two_by_two_table_suppresses_the_whole_block():
    cells = pd.DataFrame({"x": [4, 20], "y": [30, 40]}, index=["a", "b"])
    prot = sdc.protect_table(cells)
    inner = prot.status.loc[["a", "b"], ["x", "y"]]
    assert inner.isin(SUPPRESSED).all().all()
    assert prot.status.loc["a", "x"] == "primary"
    assert prot.status.loc["Total", "Total"] == "published"
    assert determined_by_linear_algebra(prot) == []


def test_a_suppressed_cell_cannot_be_recovered_from_its_row_and_column_totals():
    cells = pd.DataFrame(
        {"2018": [12, 30, 25], "2019": [7, 40, 22], "2020": [15, 35, 28]},
        index=["LA 1", "LA 2", "LA 3"],
    )
    prot = sdc.protect_table(cells)
    assert prot.status.loc["LA 1", "2019"] == "primary"
    # the same row and the same column each hold another suppressed cell
    assert (prot.status.loc["LA 1"].isin(SUPPRESSED)).sum() >= 2
    assert (prot.status["2019"].isin(SUPPRESSED)).sum() >= 2
    assert lines_with_one_suppressed(prot) == []
    assert determined_by_linear_algebra(prot) == []
    ranges = sdc.feasible_ranges(prot.exact, prot.status, prot.lines)
    assert ((ranges["high"] - ranges["low"]) >= 1).all()
    # without secondary suppression the primary cell is recovered exactly
    naive = prot.status.copy()
    naive[naive == "secondary"] = "published"
    assert ("LA 1", "2019") in sdc.recoverable_cells(prot.exact, naive, prot.lines)


def test_suppressed_total_is_protected_too():
    # a row whose total is below the threshold: the total and the parts are suppressed
    cells = pd.DataFrame({"a": [3, 20, 30], "b": [4, 25, 35]}, index=["r1", "r2", "r3"])
    prot = sdc.protect_table(cells)
    assert prot.status.loc["r1", "Total"] == "primary"
    assert lines_with_one_suppressed(prot) == []
    assert determined_by_linear_algebra(prot) == []


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_leave_no_suppressed_cell_recoverable(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = rng.integers(2, 7), rng.integers(2, 8)
    values = rng.poisson(rng.uniform(4, 25), size=(n_rows, n_cols)).astype(float)
    if seed % 5 == 0:
        values[rng.integers(n_rows), rng.integers(n_cols)] = np.nan  # suppressed at source
    cells = pd.DataFrame(
        values, index=[f"r{i}" for i in range(n_rows)], columns=[f"c{j}" for j in range(n_cols)]
    )
    prot = sdc.protect_table(cells)
    exact = prot.exact
    primary = exact.apply(lambda col: col.map(sdc.SDCRule().is_primary)).astype(bool)
    assert (prot.status.to_numpy()[primary.to_numpy()] == "primary").all()
    assert lines_with_one_suppressed(prot) == []
    assert determined_by_linear_algebra(prot) == []
    ranges = sdc.feasible_ranges(exact, prot.status, prot.lines)
    assert ((ranges["high"] - ranges["low"]) >= 1).all()
    shown = prot.values.stack().dropna()
    assert ((shown % 5 == 0) & ((shown == 0) | (shown >= 10))).all()
    assert sdc.check(published_frame(prot)).passed


def test_row_totals_only():
    cells = pd.DataFrame({"exits": [96.9, 6.1, 40.0], "years": [96.9, 193.9, 12.0]})
    prot = sdc.protect_table(cells, row_totals=False, column_totals=True)
    assert prot.status.loc[1, "exits"] == "primary"
    assert (prot.status["exits"].isin(SUPPRESSED)).sum() >= 2
    assert determined_by_linear_algebra(prot) == []


# ----------------------------------------------------------------------------- audit
def test_check_passes_a_protected_table():
    cells = pd.DataFrame({"x": [3, 20, 14], "y": [30, 8, 40], "z": [11, 12, 13]})
    audit = sdc.check(published_frame(sdc.protect_table(cells)))
    assert audit.passed, audit.problems
    assert bool(audit)


def test_check_fails_on_small_or_unrounded_counts():
    cells = pd.DataFrame({"x": [30, 20], "y": [30, 40]}, index=["a", "b"])
    frame = published_frame(sdc.protect_table(cells))
    bad = frame.copy()
    bad.attrs = frame.attrs
    bad.loc[0, "x"] = 7.0
    audit = sdc.check(bad)
    assert not audit.passed
    assert "below the threshold" in audit.problems[0]
    bad.loc[0, "x"] = 32.0
    assert "not rounded" in sdc.check(bad).problems[0]
    bad.loc[0, "x"] = np.nan
    assert "blank cell" in sdc.check(bad).problems[0]


def test_check_fails_when_a_suppressed_cell_can_be_worked_out_from_totals():
    cells = pd.DataFrame({"x": [40, 20], "y": [30, 40], "z": [25, 35]}, index=["a", "b"])
    frame = published_frame(sdc.protect_table(cells))
    frame.loc[0, "x"] = "[c]"  # only one suppressed cell in its row and column
    audit = sdc.check(frame)
    assert not audit.passed
    assert "worked out from the total" in audit.problems[0]


def test_check_finds_undeclared_count_columns_by_their_header():
    frame = pd.DataFrame({"Area": ["a", "b"], "Number of children": [3, 40]})
    audit = sdc.check(frame)
    assert not audit.passed
    assert audit.count_columns == ["Number of children"]
    assert any("not declared" in p for p in audit.problems)
    rates = pd.DataFrame({"Area": ["a"], "Rate (per 10,000 children)": [3.2]})
    assert sdc.check(rates).passed


def test_rates_from_suppressed_counts_are_suppressed():
    rates, suppressed = sdc.suppress_rates(pd.Series([1.2, 3.4, 0.0]), pd.Series([4.0, 25.0, 0.0]))
    assert suppressed.tolist() == [True, False, False]
    assert math.isnan(rates[0])
    assert rates[1] == 3.4
    assert rates[2] == 0.0
