"""Harmonisation rules on a toy geography with a merge, a split and a recode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinship_eval.data.geography import harmonise, load_geography
from kinship_eval.errors import InputError


def _measures(rows: list[tuple[int, str, float | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(p, code, "sgo_exits", v, s) for p, code, v, s in rows],
        columns=["period", "la_code", "measure", "value", "status"],
    )


def test_stable_units_classify_merge_split_recode(geography):
    units = geography.stable_units().set_index("la_code")
    assert units.loc["E06000028", "unit_code"] == "E06000058"
    assert units.loc["E06000029", "kind"] == "combined"
    assert units.loc["E10000021", "unit_code"] == "E06000061 / E06000062"
    assert units.loc["E06000062", "unit_code"] == "E06000061 / E06000062"
    assert units.loc["E10000023", "unit_code"] == "E06000065"
    assert units.loc["E10000023", "kind"] == "recode"
    assert units.loc["E06000001", "kind"] == "stable"


def test_aggregate_sums_predecessors_and_successors(geography):
    m = _measures(
        [
            (2019, "E06000028", 10, "published"),
            (2019, "E06000029", 5, "published"),
            (2020, "E06000058", 17, "published"),
            (2021, "E10000021", 30, "published"),
            (2022, "E06000061", 12, "published"),
            (2022, "E06000062", 20, "published"),
            (2023, "E10000023", 8, "published"),
            (2024, "E06000065", 9, "published"),
        ]
    )
    out, log = harmonise(m, geography, "aggregate")
    got = out.set_index(["la_code", "period"])["value"]
    assert got[("E06000058", 2019)] == 15
    assert got[("E06000058", 2020)] == 17
    assert got[("E06000061 / E06000062", 2021)] == 30
    assert got[("E06000061 / E06000062", 2022)] == 32
    assert got[("E06000065", 2023)] == 8
    assert got[("E06000065", 2024)] == 9
    assert log.recoded == {"E10000023": "E06000065"}
    assert log.combined["E06000058"] == ["E06000028", "E06000029", "E06000058"]


def test_aggregate_with_a_suppressed_part_is_missing_with_reason(geography):
    m = _measures([(2019, "E06000028", 10, "published"), (2019, "E06000029", None, "suppressed")])
    out, _ = harmonise(m, geography, "aggregate")
    row = out.iloc[0]
    assert np.isnan(row["value"])
    assert row["status"] == "suppressed_component"


def test_aggregate_with_a_missing_member_row_is_incomplete(geography):
    # Merge B has no row at all in 2019: the sum would undercount, so it must be missing.
    m = _measures([(2019, "E06000028", 10, "published")])
    out, _ = harmonise(m, geography, "aggregate")
    assert np.isnan(out["value"].iloc[0])
    assert out["status"].iloc[0] == "incomplete_component"


def test_drop_rule_removes_split_and_merged_las_but_keeps_recodes(geography):
    m = _measures(
        [
            (2019, "E06000028", 10, "published"),
            (2022, "E06000061", 12, "published"),
            (2023, "E10000023", 8, "published"),
            (2023, "E06000001", 4, "published"),
        ]
    )
    out, log = harmonise(m, geography, "drop")
    assert set(out["la_code"]) == {"E06000065", "E06000001"}
    assert set(log.dropped) == {"E06000028", "E06000061"}
    assert any("Dropped E06000028" in line for line in log.describe())


def test_unknown_code_is_an_input_error(geography):
    with pytest.raises(InputError, match="unknown or retired LA code"):
        harmonise(_measures([(2019, "E06999999", 1, "published")]), geography, "aggregate")


def test_unknown_rule_is_an_input_error(geography):
    with pytest.raises(InputError, match="unknown harmonisation rule"):
        harmonise(_measures([(2019, "E06000001", 1, "published")]), geography, "split")  # type: ignore[arg-type]


def test_operating_dates(geography):
    assert geography.operating("E06000028", 2019)
    assert not geography.operating("E06000028", 2020)
    assert geography.operating("E06000058", 2020)
    assert not geography.operating("E06000058", 2019)


def test_load_geography_rejects_bad_codes(tmp_path):
    las = tmp_path / "las.csv"
    las.write_text(
        "la_code,old_la_code,la_name,region_code,region_name,date_of_operation,date_of_termination\n"
        "E06000001,801,One,E12000001,North East,,\n"
        "X123,802,Bad,E12000001,North East,,\n"
    )
    reorg = tmp_path / "reorg.csv"
    reorg.write_text("predecessor_code,successor_code,effective_period\n")
    with pytest.raises(InputError) as err:
        load_geography(las, reorg)
    assert err.value.row == 3
    assert err.value.column == "la_code"
