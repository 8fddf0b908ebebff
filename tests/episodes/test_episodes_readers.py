"""SSDA903 readers: good files in both layouts, every kind of bad input, the data-quality fixes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kinship_eval.episodes import episode_data_from_frames, read_code_lists, read_ssda903
from kinship_eval.errors import InputError

EPI_COLS = (
    "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN"
)
HDR_COLS = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB"

STACKED_EPISODES = f"""LA,YEAR,{EPI_COLS}
E09000004,2024,A1,15/05/2023,S,C1,N1,U3,PR1,01/09/2023,X1,CARPL,,,
E09000004,2024,A1,01/09/2023,P,C1,N1,U6,PR4,,,,,,
E09000004,2025,A1,01/09/2023,P,C1,N1,U6,PR4,10/02/2025,E45,,,,
E09000004,2024,B2,2023-06-01,S,V2,N4,U4,PR1,2023-07-01,E4A,,,,
303,2025,C3,01/05/2024,S,V2,N5,K2,PR4,,,,,,
"""
STACKED_HEADER = f"""LA,YEAR,{HDR_COLS}
E09000004,2024,A1,1,03/04/2015,WBRI,,,
E09000004,2025,A1,1,03/04/2015,WBRI,,,
E09000004,2024,B2,2,2010-01-01,BAFR,,,
E09000004,2025,C3,2,2012-02-02,MWBC,,,
"""


def write(folder: Path, episodes: str, header: str | None = STACKED_HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "episodes.csv").write_text(episodes)
    if header is not None:
        (folder / "header.csv").write_text(header)
    return folder


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ good files
def test_stacked_csv(tmp_path: Path) -> None:
    data = read_ssda903(write(tmp_path, STACKED_EPISODES))
    ep = data.episodes
    assert list(ep["child"].astype(str)) == ["A1", "A1", "B2", "C3"]
    # the 3-digit code 303 is Bexley's ONS code
    assert set(ep["la_code"].astype(str)) == {"E09000004"}
    # carried-over episode: the 2025 record (closed) wins
    a1 = ep.loc[ep["child"] == "A1"].iloc[1]
    assert a1["dec"] == pd.Timestamp("2025-02-10")
    assert a1["rec"] == "E45"
    assert int(a1["year"]) == 2025
    # ISO and DD/MM/YYYY dates both parse
    assert ep.loc[ep["child"] == "B2", "decom"].iloc[0] == pd.Timestamp("2023-06-01")
    assert data.quality.counts["carried_over"] == 1
    assert data.coverage.set_index("la_code").loc["E09000004", "years"] == (2024, 2025)
    assert len(data.header) == 3
    assert data.header.set_index("child").loc["A1", "year"] == 2025
    assert not data.synthetic
    assert "3 children" in data.summary()


def test_episodes_file_with_header_beside_it_and_parquet(tmp_path: Path) -> None:
    folder = write(tmp_path / "csv", STACKED_EPISODES)
    from_csv = read_ssda903(folder / "episodes.csv")
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    epi = pd.read_csv(folder / "episodes.csv", dtype=str, keep_default_na=False)
    hdr = pd.read_csv(folder / "header.csv", dtype=str, keep_default_na=False)
    dmy = pd.to_datetime(epi["DECOM"], format="%d/%m/%Y", errors="coerce")
    epi["DECOM"] = dmy.fillna(pd.to_datetime(epi["DECOM"], format="%Y-%m-%d", errors="coerce"))
    pq.write_table(pa.Table.from_pandas(epi, preserve_index=False), pq_dir / "episodes.parquet")
    pq.write_table(pa.Table.from_pandas(hdr, preserve_index=False), pq_dir / "header.parquet")
    from_pq = read_ssda903(pq_dir)
    pd.testing.assert_frame_equal(
        from_csv.episodes[["la_code", "decom", "dec", "place", "rec"]].astype(str),
        from_pq.episodes[["la_code", "decom", "dec", "place", "rec"]].astype(str),
    )


def test_folder_layout_and_column_case(tmp_path: Path) -> None:
    root = tmp_path / "returns"
    for year, rows in (
        (2024, "a1,15/05/2023,S,C1,N1,U3,PR1,,,,,,\n"),
        (2025, "a1,15/05/2023,S,C1,N1,U3,PR1,02/06/2024,E41,,,,\n"),
    ):
        folder = root / "E06000012" / str(year)
        folder.mkdir(parents=True)
        (folder / "episodes.csv").write_text(EPI_COLS.lower() + "\n" + rows)
        (folder / "header.csv").write_text(HDR_COLS + "\na1,2,01/01/2018,WBRI,,,\n")
    data = read_ssda903(root)
    assert len(data.episodes) == 1
    assert data.episodes["rec"].iloc[0] == "E41"
    assert data.coverage["last_year"].iloc[0] == 2025


def test_single_return_with_la_and_year_arguments(tmp_path: Path) -> None:
    (tmp_path / "episodes.csv").write_text(EPI_COLS + "\nX,01/05/2023,S,C2,N1,U1,PR1,,,,,,\n")
    (tmp_path / "header.csv").write_text(HDR_COLS + "\nX,1,01/01/2015,WBRI,,,\n")
    data = read_ssda903(tmp_path / "episodes.csv", la_code="E08000001", year=2024)
    assert data.episodes["la_code"].iloc[0] == "E08000001"
    assert int(data.episodes["year"].iloc[0]) == 2024


def test_columns_subset_without_header(tmp_path: Path) -> None:
    folder = write(tmp_path, STACKED_EPISODES, header=None)
    data = read_ssda903(folder, header=False, columns=["RNE", "LS", "PLACE", "REC"])
    assert data.header is None
    assert "cin" not in data.episodes
    assert "place" in data.episodes


def test_synthetic_marker_is_carried(tmp_path: Path) -> None:
    text = STACKED_EPISODES.replace("URN\n", "URN,SYNTHETIC\n", 1)
    lines = text.splitlines()
    text = "\n".join([lines[0]] + [ln + ",Y" for ln in lines[1:]]) + "\n"
    data = read_ssda903(write(tmp_path, text))
    assert data.synthetic
    assert data.summary().startswith("SYNTHETIC DATA")


def test_code_lists_are_data() -> None:
    codes = read_code_lists()
    assert {"U1", "U2", "U3", "Q1"} <= set(codes.codes("PLACE"))
    assert codes.groups("REC")["E45"] == "sgo_kin"
    assert codes.groups("REC")["E43"] == "sgo_unknown"
    assert codes.groups("PLACE")["Q1"] == "kinship_foster"
    assert len(codes.codes("ETHNIC")) == 20


# ------------------------------------------------------------------------------ bad input
BAD_CASES = [
    # (what, episodes line number, new line, expected column, expected words)
    ("bad date", 3, "E09000004,2024,A1,31/02/2023,P,C1,N1,U6,PR4,,,,,,", "DECOM", "not a date"),
    (
        "two-digit year",
        3,
        "E09000004,2024,A1,01/09/23,P,C1,N1,U6,PR4,,,,,,",
        "DECOM",
        "not a date",
    ),
    (
        "bad place",
        2,
        "E09000004,2024,A1,15/05/2023,S,C1,N1,U9,PR1,01/09/2023,X1,,,,",
        "PLACE",
        "U9",
    ),
    (
        "lower case",
        2,
        "E09000004,2024,A1,15/05/2023,S,c1,N1,U3,PR1,01/09/2023,X1,,,,",
        "LS",
        "upper",
    ),
    ("bad rec", 2, "E09000004,2024,A1,15/05/2023,S,C1,N1,U3,PR1,01/09/2023,E99,,,,", "REC", "E99"),
    ("bad rne", 2, "E09000004,2024,A1,15/05/2023,Z,C1,N1,U3,PR1,01/09/2023,X1,,,,", "RNE", "Z"),
    ("bad cin", 2, "E09000004,2024,A1,15/05/2023,S,C1,N9,U3,PR1,01/09/2023,X1,,,,", "CIN", "N9"),
    (
        "missing ls",
        2,
        "E09000004,2024,A1,15/05/2023,S,,N1,U3,PR1,01/09/2023,X1,,,,",
        "LS",
        "missing",
    ),
    (
        "dec before decom",
        5,
        "E09000004,2024,B2,2023-06-01,S,V2,N4,U4,PR1,2023-05-01,E4A,,,,",
        "DEC",
        "before DECOM",
    ),
    ("rec open", 3, "E09000004,2024,A1,01/09/2023,P,C1,N1,U6,PR4,,E41,,,,", "REC", "DEC is blank"),
    (
        "dec no rec",
        5,
        "E09000004,2024,B2,2023-06-01,S,V2,N4,U4,PR1,2023-07-01,,,,,",
        "REC",
        "REC is blank",
    ),
    (
        "after year end",
        5,
        "E09000004,2024,B2,2024-06-01,S,V2,N4,U4,PR1,,,,,,",
        "DECOM",
        "after the end of the return year",
    ),
    ("blank child", 5, "E09000004,2024,,2023-06-01,S,V2,N4,U4,PR1,,,,,,", "CHILD", "CHILD"),
    (
        "not in header",
        5,
        "E09000004,2024,Z9,2023-06-01,S,V2,N4,U4,PR1,,,,,,",
        "CHILD",
        "no row in the header",
    ),
    ("bad la", 5, "E0900000X,2024,B2,2023-06-01,S,V2,N4,U4,PR1,,,,,,", "LA", "not an LA code"),
    ("bad year", 5, "E09000004,24,B2,2023-06-01,S,V2,N4,U4,PR1,,,,,,", "YEAR", "return year"),
    (
        "before birth",
        5,
        "E09000004,2024,B2,2009-06-01,S,V2,N4,U4,PR1,,,,,,",
        "DECOM",
        "date of birth",
    ),
]


@pytest.mark.parametrize(("what", "line", "new", "column", "words"), BAD_CASES)
def test_bad_episodes(
    tmp_path: Path, what: str, line: int, new: str, column: str, words: str
) -> None:
    del what
    folder = write(tmp_path, replace_line(STACKED_EPISODES, line, new))
    with pytest.raises(InputError) as err:
        read_ssda903(folder)
    assert err.value.column == column
    assert err.value.row == line
    assert err.value.file is not None
    assert err.value.file.endswith("episodes.csv")
    assert words in err.value.message


HEADER_CASES = [
    ("bad sex", 2, "E09000004,2024,A1,3,03/04/2015,WBRI,,,", "SEX", "SEX"),
    ("bad ethnic", 4, "E09000004,2024,B2,2,2010-01-01,XXXX,,,", "ETHNIC", "XXXX"),
    ("bad dob", 4, "E09000004,2024,B2,2,2010-13-01,BAFR,,,", "DOB", "not a date"),
    ("twice", 4, "E09000004,2024,A1,1,03/04/2015,WBRI,,,", "CHILD", "twice"),
]


@pytest.mark.parametrize(("what", "line", "new", "column", "words"), HEADER_CASES)
def test_bad_header(
    tmp_path: Path, what: str, line: int, new: str, column: str, words: str
) -> None:
    del what
    folder = write(tmp_path, STACKED_EPISODES, replace_line(STACKED_HEADER, line, new))
    with pytest.raises(InputError) as err:
        read_ssda903(folder)
    assert err.value.column == column
    assert err.value.row == line
    assert err.value.file is not None
    assert err.value.file.endswith("header.csv")
    assert words in err.value.message


def test_missing_column_and_wrong_delimiter(tmp_path: Path) -> None:
    text = STACKED_EPISODES.replace(",PLACE,", ",PLACEMENT,", 1)
    with pytest.raises(InputError) as err:
        read_ssda903(write(tmp_path / "a", text))
    assert err.value.column == "PLACE"
    assert err.value.row == 1
    with pytest.raises(InputError, match="semicolons"):
        read_ssda903(write(tmp_path / "b", STACKED_EPISODES.replace(",", ";")))


def test_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    text = replace_line(STACKED_EPISODES, 5, "E09000004,2024,B2,2023-06-01,S,V2,N4,U7,PR1,,,,,,")
    lines = text.splitlines()
    text = "\n".join([*lines[:2], "", *lines[2:]]) + "\n"
    with pytest.raises(InputError) as err:
        read_ssda903(write(tmp_path, text))
    assert err.value.row == 6


def test_missing_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_ssda903(tmp_path / "nowhere")
    folder = write(tmp_path / "nohdr", STACKED_EPISODES, header=None)
    with pytest.raises(InputError, match="no header file"):
        read_ssda903(folder)
    bad = tmp_path / "tree" / "Bexley" / "2024"
    bad.mkdir(parents=True)
    (bad / "episodes.csv").write_text(EPI_COLS + "\n")
    with pytest.raises(InputError, match="not an LA code"):
        read_ssda903(tmp_path / "tree")
    no_header = tmp_path / "tree2" / "E09000004" / "2024"
    no_header.mkdir(parents=True)
    (no_header / "episodes.csv").write_text(EPI_COLS + "\n")
    with pytest.raises(InputError, match="header file missing"):
        read_ssda903(tmp_path / "tree2")


# ------------------------------------------------------------------------------ quality fixes
QUALITY = f"""LA,YEAR,{EPI_COLS}
E06000012,2024,Q1,01/05/2023,S,C1,N1,U6,PR1,20/07/2023,X1,,,,
E06000012,2024,Q1,10/07/2023,P,C1,N1,U3,PR1,,,,,,
E06000012,2024,Q2,01/05/2023,S,C1,N1,U6,PR1,,,,,,
E06000012,2024,Q2,01/08/2023,P,C1,N1,U4,PR1,,,,,,
E06000012,2024,Q3,01/06/2023,S,V2,N1,U6,PR1,,,,,,
E06000012,2024,Q4,01/06/2023,S,V2,N1,U6,PR1,01/07/2023,X1,,,,
E06000012,2024,Q4,01/06/2023,S,V2,N1,U6,PR1,01/09/2023,E4A,,,,
E06000012,2025,Q1,10/07/2023,P,C1,N1,U3,PR1,,,,,,
E06000012,2025,Q2,01/08/2023,P,C1,N1,U4,PR1,,,,,,
"""
QUALITY_HEADER = f"""LA,YEAR,{HDR_COLS}
E06000012,2024,Q1,1,01/01/2015,WBRI,,,
E06000012,2024,Q2,1,01/01/2015,WBRI,,,
E06000012,2024,Q3,1,01/01/2015,WBRI,,,
E06000012,2024,Q4,1,01/01/2015,WBRI,,,
E06000012,2025,Q1,1,01/01/2015,WBRI,,,
E06000012,2025,Q2,1,01/01/2015,WBRI,,,
"""


def test_quality_fixes_are_counted_and_applied(tmp_path: Path) -> None:
    data = read_ssda903(write(tmp_path, QUALITY, QUALITY_HEADER))
    counts = data.quality.counts
    assert counts == {
        "carried_over": 2,
        "duplicate_episode": 1,
        "overlap": 1,
        "open_not_last": 1,
        "open_lost": 1,
    }
    ep = data.episodes.set_index(["child", "decom"])
    # overlap: Q1's first episode now ends when the next starts
    assert ep.loc[("Q1", pd.Timestamp("2023-05-01")), "dec"] == pd.Timestamp("2023-07-10")
    assert ep.loc[("Q1", pd.Timestamp("2023-05-01")), "fix"] == "overlap"
    # open episode followed by another: closed at the next start with X1
    row = ep.loc[("Q2", pd.Timestamp("2023-05-01"))]
    assert row["dec"] == pd.Timestamp("2023-08-01")
    assert row["rec"] == "X1"
    # open in 2024, not in the 2025 return: closed at 31 March 2024, reason unknown
    row = ep.loc[("Q3", pd.Timestamp("2023-06-01"))]
    assert row["dec"] == pd.Timestamp("2024-03-31")
    assert pd.isna(row["rec"])
    assert row["fix"] == "open_lost"
    # duplicate start in one return: the one ending latest is kept
    assert ep.loc[("Q4", pd.Timestamp("2023-06-01")), "dec"] == pd.Timestamp("2023-09-01")
    frame = data.quality.to_frame()
    assert list(frame.columns) == ["issue", "count", "found", "action"]
    assert data.quality.by_la["overlap"].sum() == 1
    assert "open_lost" in data.quality.summary()


def test_quality_issues_raise_when_asked(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        read_ssda903(write(tmp_path, QUALITY, QUALITY_HEADER), on_quality="raise")
    assert err.value.column in ("DECOM", "DEC")
    assert err.value.row is not None


def test_frames_in_memory_match_files(tmp_path: Path) -> None:
    folder = write(tmp_path, STACKED_EPISODES)
    epi = pd.read_csv(folder / "episodes.csv", dtype=str, keep_default_na=False)
    hdr = pd.read_csv(folder / "header.csv", dtype=str, keep_default_na=False)
    a = read_ssda903(folder)
    b = episode_data_from_frames(epi, hdr)
    assert np.array_equal(a.episodes["decom"].to_numpy(), b.episodes["decom"].to_numpy())
    epi.loc[1, "PLACE"] = "ZZ"
    with pytest.raises(InputError) as err:
        episode_data_from_frames(epi, hdr)
    assert err.value.row == 3
    assert err.value.column == "PLACE"
