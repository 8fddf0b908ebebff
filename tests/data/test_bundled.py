"""Tests of the bundled default data: schema, and spot checks against the raw DfE/ONS files.

The raw files are read here independently (``csv`` module, plain pandas), not through the
package's readers, so that a reader bug cannot hide a wrong bundled value.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from kinship_eval.data.bundled import bundled_path

BUNDLED = Path(bundled_path("la_measures.csv")).parent
MEASURE_COLUMNS = [
    "period",
    "la_code",
    "old_la_code",
    "la_name",
    "measure",
    "value",
    "status",
    "source",
]
MEASURES = [
    "sgo_exits",
    "sgo_exits_kin",
    "cao_exits",
    "cla_exits",
    "cla_starts",
    "cla_31mar",
    "cla_foster",
    "kinship_foster",
    "population_0_17",
    "foster_unit_cost_weekly",
    "cla_spend_total",
]
STATUSES = {
    "published",
    "suppressed",
    "suppressed_or_not_available",
    "not_available",
    "not_applicable",
    "nil_or_not_available",
    "low",
    "low_reliability",
    "missing",
}
LA_CODE = r"^E(06|08|09|10)\d{6}$"
KINSHIP_ZONES = {
    "E09000004": "Bexley",
    "E08000001": "Bolton",
    "E08000021": "Newcastle upon Tyne",
    "E06000012": "North East Lincolnshire",
    "E06000035": "Medway",
    "E06000034": "Thurrock",
    "E06000054": "Wiltshire",
}


def _reference() -> Path | None:
    env = os.environ.get("KINSHIP_EVAL_REFERENCE")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "reference"
    for candidate in (base / "dfe", base):
        if (candidate / "bengoodair_dfe_cla").is_dir():
            return candidate
    return None


@pytest.fixture(scope="module")
def dfe() -> Path:
    ref = _reference()
    if ref is None:
        pytest.skip("the real reference files (shared/reference/dfe) are not available")
    return ref


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(BUNDLED / name, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def measures() -> pd.DataFrame:
    frame = _read("la_measures.csv")
    frame["period"] = frame["period"].astype(int)
    frame["value_num"] = pd.to_numeric(frame["value"].replace("", None)).astype(float)
    return frame


def _one(measures: pd.DataFrame, period: int, code: str, measure: str) -> pd.Series:
    rows = measures.loc[
        (measures["period"] == period)
        & (measures["la_code"] == code)
        & (measures["measure"] == measure)
    ]
    assert len(rows) == 1, f"{period} {code} {measure}: {len(rows)} rows"
    return rows.iloc[0]


def _by_old(measures: pd.DataFrame, period: int, old: str, measure: str) -> pd.Series:
    rows = measures.loc[
        (measures["period"] == period)
        & (measures["old_la_code"] == old)
        & (measures["measure"] == measure)
    ]
    assert len(rows) == 1, f"{period} {old} {measure}: {len(rows)} rows"
    return rows.iloc[0]


def _raw(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------------
# Schema
# ------------------------------------------------------------------------------------------------


def test_measures_schema(measures: pd.DataFrame) -> None:
    assert list(measures.columns[:8]) == MEASURE_COLUMNS
    assert set(measures["measure"]) == set(MEASURES)
    assert measures["la_code"].str.fullmatch(LA_CODE).all()
    assert measures["old_la_code"].str.fullmatch(r"\d{3}").all()
    assert (measures["la_name"] != "").all()
    assert (measures["source"] != "").all()
    assert set(measures["status"]) <= STATUSES
    assert measures["period"].between(2010, 2025).all()
    assert not measures.duplicated(["period", "la_code", "measure"]).any()
    published = measures["status"] == "published"
    assert measures.loc[published, "value_num"].notna().all()
    # a symbol is never read as a number: no value (0 included) unless published
    assert measures.loc[~published, "value"].eq("").all()
    assert (measures.loc[published, "value_num"] >= 0).all()


def test_measures_sorted(measures: pd.DataFrame) -> None:
    order = {m: i for i, m in enumerate(MEASURES)}
    key = list(
        zip(measures["period"], measures["la_code"], measures["measure"].map(order), strict=True)
    )
    assert key == sorted(key)


def test_bundle_is_small() -> None:
    total = sum(p.stat().st_size for p in BUNDLED.iterdir() if p.is_file())
    assert total < 5_000_000


def test_geography_schema(measures: pd.DataFrame) -> None:
    geo = _read("la_geography.csv")
    assert list(geo.columns) == [
        "la_code",
        "old_la_code",
        "la_name",
        "region_code",
        "region_name",
        "date_of_operation",
        "date_of_termination",
    ]
    assert geo["la_code"].is_unique
    assert geo["la_code"].str.fullmatch(LA_CODE).all()  # no combined pseudo-codes
    assert geo["region_code"].str.fullmatch(r"E12\d{6}").all()
    for col in ("date_of_operation", "date_of_termination"):
        assert geo[col].str.fullmatch(r"(\d{4}-\d{2}-\d{2})?").all()
    assert set(measures["la_code"]) <= set(geo["la_code"])
    indexed = geo.set_index("la_code")
    assert indexed.loc["E06000028", "date_of_termination"] == "2019-03-31"  # Bournemouth
    assert indexed.loc["E06000058", "date_of_operation"] == "2019-04-01"  # BCP
    assert indexed.loc["E10000006", "region_name"] == "North West"  # Cumbria (terminated)
    assert indexed.loc["E06000012", "region_name"] == "Yorkshire and The Humber"
    # names and 3-digit codes in the measures agree with the lookup
    merged = measures[["la_code", "old_la_code", "la_name"]].drop_duplicates()
    merged = merged.merge(geo, on="la_code", suffixes=("", "_geo"))
    assert (merged["old_la_code"] == merged["old_la_code_geo"]).all()
    assert (merged["la_name"] == merged["la_name_geo"]).all()


def test_reorganisations() -> None:
    reorg = _read("la_reorganisations.csv")
    assert list(reorg.columns) == [
        "predecessor_code",
        "predecessor_name",
        "successor_code",
        "successor_name",
        "effective_period",
        "note",
    ]
    pairs = {
        (r.predecessor_code, r.successor_code): (int(r.effective_period), r.note)
        for r in reorg.itertuples()
    }
    expected = {
        ("E06000028", "E06000058"): (2020, "merge"),
        ("E06000029", "E06000058"): (2020, "merge"),
        ("E10000009", "E06000058"): (2020, "split"),
        ("E10000009", "E06000059"): (2020, "split"),
        ("E10000021", "E06000061"): (2022, "split"),
        ("E10000021", "E06000062"): (2022, "split"),
        ("E10000006", "E06000063"): (2024, "split"),
        ("E10000006", "E06000064"): (2024, "split"),
        ("E10000023", "E06000065"): (2024, "recode"),
        ("E10000027", "E06000066"): (2024, "recode"),
    }
    for pair, value in expected.items():
        assert pairs[pair] == value
    assert set(reorg["note"]) == {"merge", "split", "recode"}
    geo = set(_read("la_geography.csv")["la_code"])
    assert set(reorg["predecessor_code"]) | set(reorg["successor_code"]) <= geo


def test_pilot_register() -> None:
    reg = _read("pilot_register.csv")
    assert list(reg.columns) == [
        "la_code",
        "la_name",
        "start_date",
        "first_treated_period",
        "arm",
        "weekly_allowance",
        "announced",
        "source",
    ]
    assert dict(zip(reg["la_code"], reg["la_name"], strict=True)) == KINSHIP_ZONES
    assert set(reg["start_date"]) == {"2026-04-01"}
    assert set(reg["first_treated_period"]) == {"2027"}
    assert set(reg["arm"]) == {"kinship_zone"}
    assert set(reg["weekly_allowance"]) == {""}
    assert set(reg["announced"]) == {"2026-02-27"}
    assert reg["source"].str.contains("https://").all()


def test_notes_document_every_source(measures: pd.DataFrame) -> None:
    notes = (BUNDLED / "DATA_NOTES.md").read_text(encoding="utf-8")
    for source in set(measures["source"]):
        assert f"`{source}`" in notes
    assert "Open Government Licence v3.0" in notes
    assert "make bundled-data" in notes
    for measure in MEASURES:
        assert f"`{measure}`" in notes


# ------------------------------------------------------------------------------------------------
# Geography rules
# ------------------------------------------------------------------------------------------------


def test_codes_in_force(measures: pd.DataFrame) -> None:
    periods = measures.groupby("la_code")["period"].agg(["min", "max"])
    assert periods.loc["E10000023", "max"] == 2023  # North Yorkshire county code
    assert periods.loc["E06000065", "min"] == 2024  # North Yorkshire unitary code
    assert periods.loc["E10000027", "max"] == 2023
    assert periods.loc["E06000066", "min"] == 2024
    assert periods.loc["E06000028", "max"] == 2019  # Bournemouth
    assert periods.loc["E10000009", "max"] == 2019  # Dorset county
    assert periods.loc["E06000058", "min"] == 2020  # BCP
    assert periods.loc["E10000021", "max"] == 2021  # Northamptonshire
    assert periods.loc["E06000061", "min"] == 2022
    assert periods.loc["E10000006", "max"] == 2023  # Cumbria
    assert periods.loc["E06000064", "min"] == 2024
    assert periods.loc["E08000020", "max"] == 2013  # Gateshead old code
    assert periods.loc["E08000037", "min"] == 2014


def test_every_period_has_about_150_las(measures: pd.DataFrame) -> None:
    las = measures.groupby("period")["la_code"].nunique()
    assert las.between(150, 153).all()
    cla = measures.loc[measures["measure"] == "cla_31mar"].groupby("period")["la_code"].nunique()
    assert list(cla.index) == list(range(2010, 2026))


# ------------------------------------------------------------------------------------------------
# Spot checks against the raw files
# ------------------------------------------------------------------------------------------------


def _ees_value(path: Path, period: int, code: str, group: str, characteristic: str) -> str:
    rows = [
        r
        for r in _raw(path)
        if r["time_period"] == str(period)
        and r["new_la_code"] == code
        and r["geographic_level"] == "Local authority"
        and r["cla_group"] == group
        and r["characteristic"] == characteristic
    ]
    assert len(rows) == 1
    return rows[0]["number"]


@pytest.mark.parametrize(("code", "expected"), [("E09000004", 13), ("E08000001", None)])
def test_sgo_exits_2019_from_the_2023_release(
    dfe: Path, measures: pd.DataFrame, code: str, expected: int | None
) -> None:
    path = dfe / "bengoodair_dfe_cla/ees_2019to2023/la_children_who_ceased_during_the_year.csv"
    raw = _ees_value(path, 2019, code, "Reason episode ceased", "Special guardianship orders")
    row = _one(measures, 2019, code, "sgo_exits")
    assert row["source"] == "ees2023_ceased"
    assert row["status"] == "published"
    assert row["value_num"] == float(raw)
    if expected is not None:
        assert row["value_num"] == expected


@pytest.mark.parametrize(("code", "expected"), [("E09000004", 24), ("E06000054", None)])
def test_sgo_exits_2024_from_the_2025_release(
    dfe: Path, measures: pd.DataFrame, code: str, expected: int | None
) -> None:
    path = dfe / "dfe_csc_dashboard/derived_csv/cla_ceased_during_year_2021_2025_from_rds.csv"
    rows = [
        r
        for r in _raw(path)
        if r["time_period"] == "2024"
        and r["new_la_code"] == code
        and r["cla_group"] == "Reason episode ceased"
        and r["characteristic"] == "Special guardianship order"
    ]
    assert len(rows) == 1
    row = _one(measures, 2024, code, "sgo_exits")
    assert row["source"] == "ees2025_ceased_rds"
    assert row["value_num"] == float(rows[0]["number"])
    if expected is not None:
        assert row["value_num"] == expected


def test_sgo_exits_kin_is_the_sum_of_the_two_relative_or_friend_cells(
    dfe: Path, measures: pd.DataFrame
) -> None:
    release = dfe / "bengoodair_dfe_cla/ees_2020to2024"
    path = release / "la_children_who_ceased_during_the_year_sgo_adoption.csv"
    kin = [
        "Special guardianship order made to former foster carer, who was/are a relative or friend",
        "Special guardianship order made to carer, other than former foster carer, who was/are a "
        "relative or friend",
    ]
    cells: dict[tuple[str, str], list[str]] = {}
    for r in _raw(path):
        if r["geographic_level"] == "Local authority" and r["characteristic"] in kin:
            cells.setdefault((r["time_period"], r["old_la_code"]), []).append(r["number"])
    checked = suppressed = 0
    for (period, old), parts in sorted(cells.items()):
        if period != "2024" or "z" in parts:
            continue  # 2024 is only in this release; "z": LA not in existence
        row = _by_old(measures, 2024, old, "sgo_exits_kin")
        assert row["source"] == "ees2024_sgo"
        if all(p.isdigit() for p in parts):
            assert row["status"] == "published"
            assert row["value_num"] == sum(int(p) for p in parts)
            checked += 1
        else:
            assert "c" in parts
            assert row["status"] == "suppressed"
            assert row["value"] == ""
            suppressed += 1
    assert checked >= 10
    assert suppressed >= 50


def test_2010_relabelling(dfe: Path, measures: pd.DataFrame) -> None:
    path = dfe / "bengoodair_dfe_cla/sfr2010_la/SFR27_2010_March.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    placement = [i for i, h in enumerate(header) if h.startswith("MarPlace_")]
    q1, q2 = placement[13], placement[14]  # alphabetical order: ... P3, Q1, Q2, R1 ...
    national = next(r for r in rows if r[0] == "National")
    assert (national[q1], national[q2]) == ("7300", "39900")
    assert header[q1] != "MarPlace_Q1_2010"  # the published header is in the wrong order
    geo = _read("la_geography.csv")
    geo = geo.loc[geo["date_of_termination"].eq("") | (geo["date_of_termination"] >= "2010-03-31")]
    geo = geo.loc[geo["date_of_operation"] <= "2010-03-31"]
    code_of = dict(zip(geo["old_la_code"], geo["la_code"], strict=True))
    checked = 0
    for r in rows[1:]:
        if r[0] != "LA":
            continue
        row = _one(measures, 2010, code_of[r[1]], "kinship_foster")
        foster = _one(measures, 2010, code_of[r[1]], "cla_foster")
        assert row["source"] == "sfr2010_march"
        if r[q1] == "x":
            assert row["status"] == "suppressed_or_not_available"
            assert foster["status"] == "suppressed_or_not_available"
        else:
            assert row["value_num"] == float(r[q1])
            if r[q2] != "x":
                assert foster["value_num"] == float(r[q1]) + float(r[q2])
            checked += 1
    assert checked >= 140
    bexley = _one(measures, 2010, "E09000004", "kinship_foster")
    assert bexley["value_num"] == 23


def test_latest_release_wins_on_revised_values(dfe: Path, measures: pd.DataFrame) -> None:
    old = dfe / "bengoodair_dfe_cla/ees_2020to2024/la_children_who_ceased_during_the_year.csv"
    new = dfe / "dfe_csc_dashboard/derived_csv/cla_ceased_during_year_2021_2025_from_rds.csv"

    def sgo(path: Path, characteristic: str) -> dict[tuple[str, str], str]:
        return {
            (r["time_period"], r["old_la_code"]): r["number"]
            for r in _raw(path)
            if r["time_period"] in ("2021", "2022", "2023", "2024")
            and r["geographic_level"] == "Local authority"
            and r["cla_group"] == "Reason episode ceased"
            and r["characteristic"] == characteristic
        }

    before = sgo(old, "Special guardianship orders")  # 2024 release
    after = sgo(new, "Special guardianship order")  # 2025 release
    revised = [
        key
        for key in sorted(before)
        if before[key].isdigit() and after.get(key, "").isdigit() and before[key] != after[key]
    ]
    assert len(revised) >= 5, "expected revised values between the 2024 and 2025 releases"
    for period, old_code in revised:
        row = _by_old(measures, int(period), old_code, "sgo_exits")
        assert row["value_num"] == float(after[(period, old_code)])
        assert row["value_num"] != float(before[(period, old_code)])
        assert row["source"] == "ees2025_ceased_rds"
    # a year only the older release has (2020) still comes from it
    assert _one(measures, 2020, "E09000004", "sgo_exits")["source"] == "ees2024_ceased"


def test_latest_release_wins_over_the_2018_underlying_data(
    dfe: Path, measures: pd.DataFrame
) -> None:
    # Cheshire West and Chester, CAO exits in 2018: 11 in the 2018 files, revised to 14 later.
    ud = _raw(dfe / "staying_put_sim/CEA2018.csv")
    cwac = next(r for r in ud if r["New_geog_code"] == "E06000050")
    assert cwac["CEA_CAO"] == "11"
    path = dfe / "bengoodair_dfe_cla/ees_2018to2022/la_children_who_ceased_during_year.csv"
    raw = _ees_value(
        path,
        2018,
        "E06000050",
        "Reason episode ceased",
        "Residence order or child arrangement order granted",
    )
    row = _one(measures, 2018, "E06000050", "cao_exits")
    assert row["value_num"] == float(raw) == 14
    assert row["source"] == "ees2022_ceased"


def test_population_is_the_mid_year_before(dfe: Path, measures: pd.DataFrame) -> None:
    path = dfe / "dfe_csc_dashboard/data-raw/ons_mid-year_population_estimates_2012_to_2024.csv"
    ons = {
        (r["time_period"], r["new_la_code"]): r["population_estimate"]
        for r in _raw(path)
        if r["geographic_level"] == "Local authority"
    }
    for code in KINSHIP_ZONES:
        for mid_year in (2012, 2018, 2024):
            row = _one(measures, mid_year + 1, code, "population_0_17")
            assert row["value_num"] == float(ons[(str(mid_year), code)])
            assert row["source"] == "ons_mye_0_17"
    assert _one(measures, 2025, "E09000004", "population_0_17")["value_num"] == 58724
    assert _one(measures, 2010, "E09000004", "population_0_17")["source"] == "sfr2010_march"


def test_finance_from_lait(dfe: Path, measures: pd.DataFrame) -> None:
    lait = pd.read_parquet(dfe / "dfe_lait/bds_long_0.parquet")
    sub = lait.loc[(lait["Short Desc"] == "FosteringFinance") & (lait["LA Number"] == 303)]
    by_year = dict(zip(sub["Years"], sub["Values"], strict=True))
    assert _one(measures, 2017, "E09000004", "foster_unit_cost_weekly")["value_num"] == float(
        by_year["2016-17 (OT)"]
    )
    assert _one(measures, 2025, "E09000004", "foster_unit_cost_weekly")["value_num"] == float(
        by_year["2024-25 (OT)"]
    )
    dashes = lait.loc[(lait["Short Desc"] == "FosteringFinance") & (lait["Values"] == "-")]
    statuses = measures.loc[measures["measure"] == "foster_unit_cost_weekly", "status"]
    assert (statuses == "nil_or_not_available").sum() > 0
    assert (statuses == "nil_or_not_available").sum() <= len(dashes)


def test_sources_file_hashes(dfe: Path) -> None:
    sources = _read("sources.csv")
    assert list(sources.columns) == ["file", "sha256", "rows_read"]
    assert len(sources) >= 30
    for r in sources.itertuples():
        digest = hashlib.sha256((dfe / r.file).read_bytes()).hexdigest()
        assert digest == r.sha256, r.file
        assert int(r.rows_read) > 0


@pytest.mark.slow
def test_rebuild_is_byte_identical(dfe: Path, tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_default_data.py"
    spec = importlib.util.spec_from_file_location("build_default_data", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    module.build(dfe, tmp_path, echo=lambda _line: None)
    for name in (
        "la_measures.csv",
        "la_geography.csv",
        "la_reorganisations.csv",
        "pilot_register.csv",
        "sources.csv",
        "DATA_NOTES.md",
    ):
        assert (tmp_path / name).read_bytes() == (BUNDLED / name).read_bytes(), name
