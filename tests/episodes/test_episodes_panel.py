"""The LA x quarter panel against a hand count on a tiny hand-written return."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinship_eval.episodes import episodes_to_panel, read_ssda903
from kinship_eval.errors import InputError

COLS = (
    "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN"
)
# One return (year ending 31 March 2024) for Bexley (a pilot LA) and Hartlepool.
EPISODES = f"""LA,YEAR,{COLS}
E09000004,2024,C1,15/05/2023,S,C1,N1,U3,PR1,01/09/2023,X1,CARPL,,,
E09000004,2024,C1,01/09/2023,P,C1,N1,U6,PR1,,,,,,
E09000004,2024,C2,01/02/2023,S,C2,N1,U1,PR1,30/06/2023,E45,,,,
E09000004,2024,C3,10/10/2023,S,V2,N5,K2,PR4,20/11/2023,E41,,,,
E09000004,2024,C4,01/07/2023,S,V3,N2,U4,PR1,,,,,,
E09000004,2024,C5,01/01/2024,S,C1,N1,U1,PR1,31/03/2024,E46,,,,
E09000004,2024,C6,15/03/2024,S,C1,N1,P1,PR0,,,,,,
E09000004,2024,C7,01/06/2023,S,V2,N4,U4,PR1,02/08/2023,E43,,,,
E06000001,2024,D1,01/04/2023,S,C1,N1,U3,PR1,,,,,,
"""
HEADER = "LA,YEAR,CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n" + "".join(
    f"{la},2024,{c},1,01/01/2015,WBRI,,,\n"
    for la, c in [("E09000004", f"C{i}") for i in range(1, 8)] + [("E06000001", "D1")]
)

# Hand count for Bexley: quarter -> {column: value}
EXPECTED = {
    "2023Q2": {
        "cla_stock": 2,  # C1 in U3, C7 in U4 (C2 left on 30 June: not looked after at end)
        "kinship_foster": 1,
        "other_foster": 1,
        "cla_foster": 2,
        "cla_starts": 2,  # C1, C7 (C2 started before the return)
        "cla_exits": 1,  # C2
        "sgo_exits": 1,
        "sgo_exits_kin": 1,
        "exits_to_kin": 1,
        "kinship_exits": 1,
        "cao_exits": 0,
    },
    "2023Q3": {
        "cla_stock": 1,  # C1 in U6; C4 is on short breaks (left out)
        "kinship_foster": 0,
        "other_foster": 1,
        "cla_starts": 0,
        "cla_exits": 1,  # C7, E43
        "sgo_exits": 1,
        "sgo_exits_unknown": 1,
        "sgo_exits_kin": 0,
        "exits_to_kin": 0,
        "kinship_exits": 1,
    },
    "2023Q4": {
        "cla_stock": 1,
        "cla_starts": 1,  # C3
        "cla_exits": 1,
        "cao_exits": 1,  # C3, E41
        "exits_to_kin": 1,
        "kinship_exits": 1,
        "sgo_exits": 0,
        "homes_and_semi_independent": 0,
    },
    "2024Q1": {
        "cla_stock": 2,  # C1 in U6, C6 in P1 (C5 left on 31 March)
        "other_foster": 1,
        "placed_with_parents": 1,
        "kinship_foster": 0,
        "cla_starts": 2,  # C5, C6
        "cla_exits": 1,
        "sgo_exits": 1,
        "sgo_exits_other": 1,
        "exits_to_kin": 0,
        "kinship_exits": 1,
    },
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("panel")
    (folder / "episodes.csv").write_text(EPISODES)
    (folder / "header.csv").write_text(HEADER)
    return read_ssda903(folder)


def test_hand_count(data) -> None:
    panel = episodes_to_panel(data)
    frame = panel.frame.set_index(["la_code", "period"])
    assert len(panel.frame) == 8  # 2 LAs x 4 quarters of the one return year
    for quarter, expected in EXPECTED.items():
        row = frame.loc[("E09000004", pd.Period(quarter, freq="Q-DEC"))]
        for column, value in expected.items():
            assert row[column] == value, (quarter, column)
    hart = frame.loc["E06000001"]
    assert list(hart["kinship_foster"]) == [1, 1, 1, 1]
    assert list(hart["cla_starts"]) == [1, 0, 0, 0]


def test_rates_population_and_treatment(data) -> None:
    panel = episodes_to_panel(data)
    f = panel.frame
    assert (f["population_0_17"] > 0).all()
    np.testing.assert_allclose(
        f["kinship_foster_per_10k"], f["kinship_foster"] / f["population_0_17"] * 10_000
    )
    assert (f["population_year"] == 2024).all()  # the year ending 31 March containing the quarter
    bexley = f.loc[f["la_code"] == "E09000004"]
    assert bexley["pilot"].all()
    assert (bexley["first_treated"] == pd.Period("2026Q2", freq="Q-DEC")).all()
    assert (bexley["first_treated_index"] == 2026 * 4 + 1).all()
    hart = f.loc[f["la_code"] == "E06000001"]
    assert not hart["pilot"].any()
    assert hart["first_treated"].isna().all()
    assert (f["kinship_foster_status"] == "published").all()
    assert set(f["la_name"]) == {"Bexley", "Hartlepool"}
    assert not f["illustrative"].any()
    assert panel.label("exits_to_kin_per_10k").endswith("per 10,000 children")


def test_int_periods_and_quarters_outside_the_returns(data) -> None:
    panel = episodes_to_panel(data, period_format="int", end="2024Q2")
    f = panel.frame.set_index(["la_code", "period"])
    assert f.loc[("E09000004", 20242), "cla_stock_status"] == "not_collected"
    assert np.isnan(f.loc[("E09000004", 20242), "cla_stock"])
    assert f.loc[("E09000004", 20241), "cla_stock"] == 2
    assert (panel.frame.loc[panel.frame["pilot"], "first_treated"] == 20262).all()


def test_short_breaks_can_be_kept(data) -> None:
    panel = episodes_to_panel(data, exclude_short_breaks=False)
    f = panel.frame.set_index(["la_code", "period"])
    assert f.loc[("E09000004", pd.Period("2023Q3", freq="Q-DEC")), "cla_stock"] == 2


def test_no_pilot_register_and_bad_arguments(data) -> None:
    panel = episodes_to_panel(data, pilot_register=False)
    assert not panel.frame["pilot"].any()
    with pytest.raises(InputError):
        episodes_to_panel(data, period_format="month")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        episodes_to_panel(data, start="2024Q1", end="2023Q1")


def test_panel_from_a_path(tmp_path: Path) -> None:
    (tmp_path / "episodes.csv").write_text(EPISODES)
    panel = episodes_to_panel(tmp_path / "episodes.csv")
    row = panel.frame.set_index(["la_code", "period"]).loc[
        ("E09000004", pd.Period("2023Q2", freq="Q-DEC"))
    ]
    assert row["cla_stock"] == 2
