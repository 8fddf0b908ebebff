"""Child outcomes against hand-computed values, censoring included."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from kinship_eval.episodes import child_outcomes, read_ssda903

COLS = (
    "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN"
)
LA = "E06000035"
# Returns for the years ending 31 March 2023 and 2024: follow-up ends on 31 March 2024.
EPISODES = f"""LA,YEAR,{COLS}
{LA},2023,K1,01/05/2022,S,C1,N1,U6,PR1,01/08/2022,X1,CARPL,,,
{LA},2023,K1,01/08/2022,P,C1,N1,U3,PR1,15/11/2022,E45,,,,
{LA},2023,K2,01/03/2023,S,V2,N4,U4,PR1,,,,,,
{LA},2024,K2,01/03/2023,S,V2,N4,U4,PR1,,,,,,
{LA},2024,K3,01/12/2023,S,C1,N1,U3,PR1,,,,,,
{LA},2023,K4,10/06/2022,S,V2,N5,U6,PR1,10/09/2022,E4A,,,,
{LA},2023,K4,01/02/2023,S,C1,N1,U6,PR1,01/03/2023,E41,,,,
{LA},2023,K5,01/01/2020,S,C2,N1,U4,PR1,,,,,,
{LA},2024,K5,01/01/2020,S,C2,N1,U4,PR1,,,,,,
{LA},2023,K6,01/09/2022,S,C1,N1,U6,PR1,,,,,,
"""
HEADER = "LA,YEAR,CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n" + "".join(
    f"{LA},{year},{child},{sex},01/05/2012,{eth},,,\n"
    for year, child, sex, eth in [
        (2023, "K1", 1, "WBRI"),
        (2023, "K2", 2, "BAFR"),
        (2024, "K2", 2, "BAFR"),
        (2024, "K3", 1, "MWBC"),
        (2023, "K4", 2, "AIND"),
        (2023, "K5", 1, "WBRI"),
        (2024, "K5", 1, "WBRI"),
        (2023, "K6", 1, "REFU"),
    ]
)
END = dt.date(2024, 3, 31)


def days(a: dt.date, b: dt.date) -> int:
    return (b - a).days


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("outcomes")
    (folder / "episodes.csv").write_text(EPISODES)
    (folder / "header.csv").write_text(HEADER)
    data = read_ssda903(folder)
    assert data.quality.counts["open_lost"] == 1  # K6: open in 2023, absent in 2024
    out = child_outcomes(data)
    return out.set_index(["child", "entry_number"])


def test_entries_kept(outcomes: pd.DataFrame) -> None:
    # K5 entered before the returns began: left-truncated, not an observed entry
    assert sorted(outcomes.index) == [
        ("K1", 1),
        ("K2", 1),
        ("K3", 1),
        ("K4", 1),
        ("K4", 2),
        ("K6", 1),
    ]


def test_exit_to_kin_within_12_months(outcomes: pd.DataFrame) -> None:
    k1 = outcomes.loc[("K1", 1)]
    stay = days(dt.date(2022, 5, 1), dt.date(2022, 11, 15))
    assert k1["days_in_care"] == stay
    assert k1["rec"] == "E45"
    assert k1["exit_group"] == "sgo_kin"
    assert k1["left_to_kin_12m"] == 1
    assert k1["left_to_kin_24m"] == 1  # known although the 24-month window is not complete
    assert not k1["censored_24m"]
    assert not k1["window_complete_24m"]
    assert k1["window_complete_12m"]
    assert k1["placement_moves"] == 1
    assert k1["placement_moves_12m"] == 1
    assert k1["days_in_care_12m"] == stay
    assert not k1["censored"]
    assert k1["age_at_entry"] == pytest.approx(
        days(dt.date(2012, 5, 1), dt.date(2022, 5, 1)) / 365.25
    )
    assert k1["ls"] == "C1"
    assert k1["ls_group"] == "care_order"
    assert k1["place"] == "U6"
    assert k1["entry_year"] == 2023
    assert k1["entry_quarter"] == pd.Period("2022Q2", freq="Q-DEC")


def test_still_in_care_censoring(outcomes: pd.DataFrame) -> None:
    k2 = outcomes.loc[("K2", 1)]
    stay = days(dt.date(2023, 3, 1), END)
    assert k2["censored"]
    assert k2["days_in_care"] == stay
    assert pd.isna(k2["exit_date"])
    assert k2["left_to_kin_12m"] == 0  # still looked after a year after entry
    assert not k2["censored_12m"]
    assert k2["days_in_care_12m"] == 365
    assert np.isnan(k2["left_to_kin_24m"])
    assert k2["censored_24m"]
    assert np.isnan(k2["days_in_care_24m"])
    assert k2["sex"] == "2"
    assert k2["ethnic_group"] == "black"
    k3 = outcomes.loc[("K3", 1)]
    assert k3["days_in_care"] == days(dt.date(2023, 12, 1), END)
    assert np.isnan(k3["left_to_kin_12m"])
    assert k3["censored_12m"]
    assert not k3["window_complete_12m"]
    assert np.isnan(k3["days_in_care_12m"])


def test_other_exit_and_re_entry(outcomes: pd.DataFrame) -> None:
    first = outcomes.loc[("K4", 1)]
    assert first["exit_group"] == "returned_home"
    assert first["left_to_kin_12m"] == 0
    assert first["days_in_care_12m"] == days(dt.date(2022, 6, 10), dt.date(2022, 9, 10))
    assert not first["prior_care"]
    second = outcomes.loc[("K4", 2)]
    assert second["prior_care"]
    assert second["exit_group"] == "cao"
    assert second["left_to_kin_12m"] == 1
    assert second["days_in_care"] == days(dt.date(2023, 2, 1), dt.date(2023, 3, 1))


def test_lost_to_follow_up(outcomes: pd.DataFrame) -> None:
    k6 = outcomes.loc[("K6", 1)]
    assert k6["lost_to_follow_up"]
    assert k6["censored"]
    assert k6["days_in_care"] == days(dt.date(2022, 9, 1), dt.date(2023, 3, 31))
    assert np.isnan(k6["left_to_kin_12m"])
    assert k6["censored_12m"]
    assert k6["window_complete_12m"]  # the LA's data run on; only this child is lost
    assert k6["ethnic_group"] == "unknown"


def test_as_of_and_all_periods(tmp_path) -> None:
    (tmp_path / "episodes.csv").write_text(EPISODES)
    (tmp_path / "header.csv").write_text(HEADER)
    data = read_ssda903(tmp_path)
    everything = child_outcomes(data, entries_only=False)
    assert "K5" in set(everything["child"])
    assert not everything.loc[everything["child"] == "K5", "observed_entry"].any()
    early = child_outcomes(data, as_of="2022-10-01").set_index(["child", "entry_number"])
    k1 = early.loc[("K1", 1)]
    assert k1["censored"]  # the E45 exit on 15 Nov 2022 is after the as-of date
    assert k1["days_in_care"] == days(dt.date(2022, 5, 1), dt.date(2022, 10, 1))
    assert np.isnan(k1["left_to_kin_12m"])
