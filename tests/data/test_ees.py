"""Tests for the EES and SFR readers: real DfE files, every symbol and every kind of bad input."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from kinship_eval.data.ees import read_csv_strings, read_ees, read_wide_sfr
from kinship_eval.errors import InputError

HEADER = (
    "time_period,time_identifier,geographic_level,country_code,country_name,region_code,"
    "region_name,old_la_code,la_name,new_la_code,cla_group,characteristic,number,percentage"
)
ALPHABETICAL_2010 = [
    "A3", "A4", "A5", "A6", "H5", "K1", "K2", "M1", "M2", "M3", "P1",
    "P2", "P3", "Q1", "Q2", "R1", "R2", "R3", "R5", "S1", "Z1",
]  # fmt: skip


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


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _la_row(la: str, code: str = "E09000004", number: str = "12") -> str:
    return (
        f"2024,Reporting year,Local authority,E92000001,England,E13000002,Outer London,303,"
        f"{la},{code},Reason episode ceased,Total,{number},100"
    )


def _write(tmp_path: Path, lines: list[str], name: str = "data.csv", **kw: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=kw.get("encoding", "utf-8"))
    return path


# ------------------------------------------------------------------------------------------------
# Real files
# ------------------------------------------------------------------------------------------------

CEASED_2024 = "bengoodair_dfe_cla/ees_2020to2024/la_children_who_ceased_during_the_year.csv"


def test_real_ceased_file_values_match_the_raw_csv(dfe: Path) -> None:
    path = dfe / CEASED_2024
    frame = read_ees(
        path,
        indicators=["number"],
        filters={
            "cla_group": "Reason episode ceased",
            "characteristic": "Special guardianship orders",
        },
        geographic_level="Local authority",
    )
    raw = [
        r
        for r in _raw_rows(path)
        if r["geographic_level"] == "Local authority"
        and r["cla_group"] == "Reason episode ceased"
        and r["characteristic"] == "Special guardianship orders"
    ]
    assert len(frame) == len(raw) == 775  # 155 LA rows x 5 years
    assert frame["time_period"].dtype == "int64"
    assert set(frame["time_period"]) == {2020, 2021, 2022, 2023, 2024}
    bexley = frame.loc[(frame["new_la_code"] == "E09000004") & (frame["time_period"] == 2024)]
    raw_bexley = next(
        r for r in raw if r["new_la_code"] == "E09000004" and r["time_period"] == "2024"
    )
    assert bexley["number"].iloc[0] == float(raw_bexley["number"])
    # every numeric cell equals the raw text; every symbol has a reason and no number
    for got, r in zip(frame.itertuples(index=False), raw, strict=True):
        if r["number"].isdigit():
            assert got.number == float(r["number"])
            assert pd.isna(got.number_reason)
        else:
            assert math.isnan(got.number)
            assert got.number_reason == {"c": "suppressed", "z": "not_applicable"}[r["number"]]


def test_real_file_symbols_c_k_z(dfe: Path) -> None:
    frame = read_ees(dfe / CEASED_2024, indicators=["number", "percentage"])
    raw_rows = _raw_rows(dfe / CEASED_2024)
    for col in ("number", "percentage"):
        reasons = frame[f"{col}_reason"].value_counts(dropna=True).to_dict()
        raw = pd.Series([r[col] for r in raw_rows])
        assert reasons.get("suppressed", 0) == int((raw == "c").sum())
        assert reasons.get("low", 0) == int((raw == "k").sum())
        assert reasons.get("not_applicable", 0) == int((raw == "z").sum())
        assert frame.loc[frame[f"{col}_reason"].notna(), col].isna().all()
    assert (frame["number_reason"] == "suppressed").sum() > 0
    assert (frame["percentage_reason"] == "low").sum() > 0  # 'k' is used for percentages
    assert (frame["number_reason"] == "not_applicable").sum() > 0


def test_real_file_default_filters_and_indicators(dfe: Path) -> None:
    release = dfe / "bengoodair_dfe_cla/ees_2019to2023"
    frame = read_ees(release / "la_children_who_ceased_during_the_year_sgo_adoption.csv")
    assert frame.attrs["indicators"] == ["number", "percentage"]
    assert frame.attrs["filters"] == ["cla_group", "characteristic"]
    assert {"number_reason", "percentage_reason", "time_period_raw", "source_row"} <= set(
        frame.columns
    )
    assert set(frame["geographic_level"]) == {"National", "Regional", "Local authority"}


def test_real_file_with_byte_order_mark(dfe: Path) -> None:
    path = dfe / "bengoodair_dfe_cla/ees_2020to2024/cla_number_and_rate_per_10k_children.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    frame = read_ees(
        path,
        indicators=["number", "population_estimate"],
        filters={"population_count": "Children looked after at 31 March each year"},
        geographic_level="National",
    )
    national_2024 = frame.loc[frame["time_period"] == 2024]
    assert national_2024["number"].iloc[0] == 83630.0
    assert national_2024["population_estimate"].iloc[0] == 11998646.0


def test_real_file_source_rows_are_file_lines(dfe: Path) -> None:
    path = dfe / CEASED_2024
    frame = read_ees(path, indicators=["number"], geographic_level="Local authority")
    lines = path.read_text(encoding="utf-8").splitlines()
    for i in (0, 100, len(frame) - 1):
        row = frame.iloc[i]
        line = lines[int(row["source_row"]) - 1]
        assert row["new_la_code"] in line
        assert row["la_name"].split(",")[0] in line


def test_real_sfr_2010_relabelled_national_row(dfe: Path) -> None:
    path = dfe / "bengoodair_dfe_cla/sfr2010_la/SFR27_2010_March.csv"
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    placement = [h for h in header if h.startswith("MarPlace_")]
    assert len(placement) == 21
    rename = {
        old: f"MarPlace_{c}_2010" for old, c in zip(placement, ALPHABETICAL_2010, strict=True)
    }
    frame = read_wide_sfr(path, rename=rename, geographic_level="National")
    assert frame["MarPlace_Q1_2010"].iloc[0] == 7300.0
    assert frame["MarPlace_Q2_2010"].iloc[0] == 39900.0
    assert frame["MarPlace_Q1_2010"].iloc[0] + frame["MarPlace_Q2_2010"].iloc[0] == 47200.0
    # as published (not re-labelled) the header order gives the impossible Q1 = x, Q2 = 170
    as_published = read_wide_sfr(path, geographic_level="National")
    assert as_published["MarPlace_Q1_2010_reason"].iloc[0] == "suppressed_or_not_available"
    assert as_published["MarPlace_Q2_2010"].iloc[0] == 170.0


def test_real_sfr_files_codes_and_x_symbol(dfe: Path) -> None:
    path = dfe / "bengoodair_dfe_cla/sfr2014_la/SFR36_CEA2014.csv"
    frame = read_wide_sfr(
        path, columns=["CLA_cease", "CLA_ceaSpecG"], geographic_level="Local authority"
    )
    assert len(frame) == 151
    assert frame["new_la_code"].str.fullmatch(r"E\d{8}").all()
    assert frame["old_la_code"].str.fullmatch(r"\d{3}").all()
    raw = [r for r in _raw_rows(path) if r["geog_l"].strip() == "LA"]
    x_cells = sum(r["CLA_ceaSpecG"].strip() == "x" for r in raw)
    assert x_cells > 0
    assert (frame["CLA_ceaSpecG_reason"] == "suppressed_or_not_available").sum() == x_cells


def test_real_sfr_file_with_a_spreadsheet_error_cell(dfe: Path) -> None:
    path = dfe / "bengoodair_dfe_cla/sfr2013_la/SFR36_CLA2013.csv"
    with pytest.raises(InputError) as caught:
        read_wide_sfr(path)
    assert caught.value.column == "CLA_NetGain"
    assert caught.value.row == 2
    assert "#VALUE!" in caught.value.message
    ok = read_wide_sfr(path, columns=["CLA_Mar2013"], geographic_level="Local authority")
    assert ok["CLA_Mar2013_reason"].isna().all()


# ------------------------------------------------------------------------------------------------
# Synthetic files: every symbol, periods, codes
# ------------------------------------------------------------------------------------------------


def test_every_symbol_in_an_ees_file(tmp_path: Path) -> None:
    cells = ["c", "x", "z", "low", "k", "~", "u", ":", "..", "-", ".", "", '"1,234"', "0"]
    lines = [HEADER] + [_la_row("Bexley", number=cell) for cell in cells]
    frame = read_ees(_write(tmp_path, lines), indicators=["number"])
    assert frame["number_reason"].tolist()[:12] == [
        "suppressed",
        "not_available",
        "not_applicable",
        "low",
        "low",
        "low",
        "low_reliability",
        "not_available",
        "not_available",
        "nil_or_not_available",
        "not_available",
        "missing",
    ]
    assert frame["number"].iloc[:12].isna().all()
    assert frame["number"].iloc[12] == 1234.0
    assert frame["number"].iloc[13] == 0.0
    assert frame["number_reason"].iloc[12:].isna().all()


def test_financial_year_becomes_year_ending_31_march(tmp_path: Path) -> None:
    lines = [
        "time_period,time_identifier,geographic_level,country_code,country_name,expenditure",
        "202324,Financial year,National,E92000001,England,100",
        "2024,Reporting year,National,E92000001,England,200",
        "199900,Financial year,National,E92000001,England,300",
    ]
    frame = read_ees(_write(tmp_path, lines))
    assert frame["time_period"].tolist() == [2024, 2024, 2000]
    assert frame["time_period_raw"].tolist() == ["202324", "2024", "199900"]
    assert frame["time_identifier"].tolist()[0] == "Financial year"
    assert frame.attrs["indicators"] == ["expenditure"]


def test_bad_time_period(tmp_path: Path) -> None:
    lines = [HEADER, _la_row("Bexley"), _la_row("Bexley").replace("2024,", "2024/25,", 1)]
    with pytest.raises(InputError) as caught:
        read_ees(_write(tmp_path, lines))
    assert (caught.value.row, caught.value.column) == (3, "time_period")


def test_meta_companion_decides_column_types(tmp_path: Path) -> None:
    lines = [
        "time_period,time_identifier,geographic_level,country_code,country_name,band,count",
        "2024,Reporting year,National,E92000001,England,10,5",
    ]
    path = _write(tmp_path, lines, name="bands.csv")
    assert read_ees(path).attrs["indicators"] == ["band", "count"]  # both look numeric
    _write(
        tmp_path,
        ["col_name,col_type,label", "band,Filter,Band", "count,Indicator,Count"],
        name="bands.meta.csv",
    )
    frame = read_ees(path)
    assert frame.attrs["filters"] == ["band"]
    assert frame.attrs["indicators"] == ["count"]
    assert frame["band"].tolist() == ["10"]


def test_combined_codes_only_when_allowed(tmp_path: Path) -> None:
    row = _la_row("North Northamptonshire / West Northamptonshire", "E06000061 / E06000062")
    row = row.replace(",303,", ",940 / 941,")
    path = _write(tmp_path, [HEADER, _la_row("Bexley"), row])
    with pytest.raises(InputError, match="allow_combined_codes") as caught:
        read_ees(path)
    assert (caught.value.row, caught.value.column) == (3, "new_la_code")
    frame = read_ees(path, allow_combined_codes=True)
    assert frame["new_la_code"].tolist()[1] == "E06000061 / E06000062"


# ------------------------------------------------------------------------------------------------
# Bad inputs: each names the file and the row and/or column
# ------------------------------------------------------------------------------------------------


def test_missing_requested_column(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley")])
    with pytest.raises(InputError) as caught:
        read_ees(path, indicators=["rate_per_10000"])
    err = caught.value
    assert err.file == str(path)
    assert err.column == "rate_per_10000"
    assert "time_period" in err.message  # lists what is there
    assert "number" in err.message


def test_missing_standard_column(tmp_path: Path) -> None:
    header = HEADER.replace("time_identifier,", "")
    row = _la_row("Bexley").replace("Reporting year,", "")
    with pytest.raises(InputError) as caught:
        read_ees(_write(tmp_path, [header, row]))
    assert caught.value.column == "time_identifier"


def test_missing_la_columns_for_la_rows(tmp_path: Path) -> None:
    lines = [
        "time_period,time_identifier,geographic_level,country_code,country_name,number",
        "2024,Reporting year,Local authority,E92000001,England,5",
    ]
    with pytest.raises(InputError) as caught:
        read_ees(_write(tmp_path, lines))
    assert caught.value.column == "new_la_code"


def test_word_in_an_indicator(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley"), _la_row("Bexley", number="several")])
    with pytest.raises(InputError) as caught:
        read_ees(path, indicators=["number"])
    err = caught.value
    assert (err.file, err.row, err.column) == (str(path), 3, "number")
    assert "'several'" in err.message
    # without naming the indicators the column is still read as one (it holds numbers)
    with pytest.raises(InputError) as again:
        read_ees(path)
    assert (again.value.row, again.value.column) == (3, "number")


@pytest.mark.parametrize("code", ["E0900004", "E090000041", "W06000001", "", "e09000004"])
def test_bad_la_code(tmp_path: Path, code: str) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley"), _la_row("Bexley", code=code)])
    with pytest.raises(InputError) as caught:
        read_ees(path)
    assert (caught.value.file, caught.value.row, caught.value.column) == (
        str(path),
        3,
        "new_la_code",
    )


def test_bad_old_la_code(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley").replace(",303,", ",3030,")])
    with pytest.raises(InputError) as caught:
        read_ees(path)
    assert (caught.value.row, caught.value.column) == (2, "old_la_code")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match="empty") as caught:
        read_ees(path)
    assert caught.value.file == str(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER])
    with pytest.raises(InputError, match="no data rows") as caught:
        read_ees(path)
    assert (caught.value.file, caught.value.row) == (str(path), 1)


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolons"), ("\t", "tabs")])
def test_wrong_delimiter(tmp_path: Path, sep: str, word: str) -> None:
    lines = [HEADER.replace(",", sep), _la_row("Bexley").replace(",", sep)]
    path = _write(tmp_path, lines)
    with pytest.raises(InputError, match="comma") as caught:
        read_ees(path)
    assert word in caught.value.message
    assert (caught.value.file, caught.value.row) == (str(path), 1)


def test_non_utf8_file(tmp_path: Path) -> None:
    lines = [HEADER, _la_row("Bexley"), _la_row("Bexley"), _la_row("Bexl\u00e9y")]
    path = _write(tmp_path, lines, encoding="cp1252")
    with pytest.raises(InputError, match="cp1252") as caught:
        read_ees(path)
    assert (caught.value.file, caught.value.row) == (str(path), 4)
    frame = read_ees(path, encoding="cp1252")
    assert frame["la_name"].tolist()[2] == "Bexl\u00e9y"


def test_ragged_record(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley"), _la_row("Bexley") + ",extra"])
    with pytest.raises(InputError, match="fields") as caught:
        read_ees(path)
    assert caught.value.row == 3


def test_filter_value_not_in_file(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley")])
    with pytest.raises(InputError, match="Special guardianship orders") as caught:
        read_ees(path, filters={"characteristic": "Special guardianship orders"})
    assert caught.value.column == "characteristic"
    assert "Total" in caught.value.message  # lists the values present


def test_geographic_level_not_in_file(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, _la_row("Bexley")])
    with pytest.raises(InputError) as caught:
        read_ees(path, geographic_level="Regional")
    assert caught.value.column == "geographic_level"
    assert "Local authority" in caught.value.message


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER + ",number", _la_row("Bexley") + ",3"])
    with pytest.raises(InputError) as caught:
        read_csv_strings(path)
    assert (caught.value.row, caught.value.column) == (1, "number")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_ees(tmp_path / "nope.csv")


def test_sfr_unknown_level_and_bad_code(tmp_path: Path) -> None:
    good = ["New_geog_code,geog_l,geog_c,geog_n,CLA_cease", "E92000001,NATIONAL,999,ENGLAND,100"]
    path = _write(tmp_path, [*good, "E09000004,BOROUGH,303,Bexley,5"])
    with pytest.raises(InputError) as caught:
        read_wide_sfr(path)
    assert (caught.value.row, caught.value.column) == (3, "geog_l")
    path = _write(tmp_path, [*good, "E0900004,LA,303,Bexley,5"])
    with pytest.raises(InputError) as caught:
        read_wide_sfr(path)
    assert (caught.value.row, caught.value.column) == (3, "New_geog_code")
    path = _write(tmp_path, [*good, "E09000004,LA,303,Bexley,5"])
    with pytest.raises(InputError) as caught:
        read_wide_sfr(path, columns=["CEA_SGO1"])
    assert caught.value.column == "CEA_SGO1"
    assert "CLA_cease" in caught.value.message


def test_sfr_rename_is_simultaneous(tmp_path: Path) -> None:
    lines = ["geog_l,geog_c,geog_n,A,B", "LA,303,Bexley,1,2"]
    frame = read_wide_sfr(_write(tmp_path, lines), rename={"A": "B", "B": "A"})
    assert (frame["A"].iloc[0], frame["B"].iloc[0]) == (2.0, 1.0)
