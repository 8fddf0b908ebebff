"""The synthetic SSDA903 generator: national marginals, determinism, files, the SYNTHETIC mark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from kinship_eval.episodes import (
    child_outcomes,
    episodes_to_panel,
    read_ssda903,
    simulate_ssda903,
)
from kinship_eval.episodes.synthetic import NATIONAL_TARGETS

SMALL = {"n_comparison": 4, "first_year": 2024, "last_year": 2028, "burn_in_years": 6}


def text(column: pd.Series) -> np.ndarray:
    return column.astype(object).fillna("<NA>").astype(str).to_numpy()


def same_frames(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return list(a.columns) == list(b.columns) and all(
        np.array_equal(text(a[c]), text(b[c])) for c in a
    )


@pytest.fixture(scope="module")
def national_fifth():
    """All LAs at a fifth of national size, ten return years."""
    sim = simulate_ssda903(seed=11, scale=0.2, first_year=2020, last_year=2029)
    return sim, episodes_to_panel(sim.to_episode_data())


def test_marginals_match_national_figures(national_fifth) -> None:
    _sim, panel = national_fifth
    f = panel.frame
    assert f["la_code"].nunique() >= 150  # every English LA with a population estimate
    starts = f.groupby("financial_year")["cla_starts"].sum()
    assert starts.mean() == pytest.approx(NATIONAL_TARGETS["starts_per_year"] * 0.2, rel=0.10)
    march = f.loc[f["period"].dt.quarter == 1].groupby("financial_year")
    stock = march["cla_stock"].sum()
    assert stock.mean() == pytest.approx(NATIONAL_TARGETS["looked_after"] * 0.2, rel=0.10)
    share = march["kinship_foster"].sum() / stock
    assert share.between(0.12, 0.18).all()
    # the stock is steady across the ten years (the burn-in worked)
    assert stock.max() / stock.min() < 1.06
    # kinship exits are a plausible share of all exits
    exits = f.groupby("financial_year")[["cla_exits", "exits_to_kin", "adopted_exits"]].sum()
    assert (exits["exits_to_kin"] / exits["cla_exits"]).between(0.08, 0.2).all()
    assert (exits["adopted_exits"] / exits["cla_exits"]).between(0.05, 0.12).all()
    # LA sizes follow the real data: Kent and Birmingham are among the largest
    big = f.groupby("la_code")["cla_starts"].sum().nlargest(10).index
    assert {"E10000016", "E08000025"} & set(big)
    assert f["illustrative"].all()
    assert f["synthetic"].all()
    assert panel.summary().startswith("SYNTHETIC")


def test_determinism_by_seed() -> None:
    a = simulate_ssda903(seed=5, **SMALL)
    b = simulate_ssda903(seed=5, **SMALL)
    c = simulate_ssda903(seed=6, **SMALL)
    assert same_frames(a.episodes, b.episodes)
    assert same_frames(a.header, b.header)
    assert same_frames(a.periods, b.periods)
    assert not same_frames(a.episodes, c.episodes)


def test_no_effect_means_identical_potential_outcomes() -> None:
    sim = simulate_ssda903(seed=2, **SMALL)
    truth = sim.true_effects()
    assert (truth["att"] == 0).all()
    p = sim.periods
    assert (p["exit_date_0"] == p["exit_date_1"]).all()
    treated = simulate_ssda903(seed=2, effect=0.5, **SMALL)
    assert (treated.true_effects().set_index("outcome").loc["left_to_kin_12m", "att"]) > 0.1
    # the allowance changes only pilot LAs' children in care after the start
    changed = treated.periods["exit_date_0"] != treated.periods["exit_date_1"]
    assert treated.periods.loc[changed, "pilot"].all()
    assert (treated.periods.loc[changed, "exit_date_1"] > pd.Timestamp("2026-04-01")).all()


def test_written_files_read_back_and_say_synthetic(tmp_path: Path) -> None:
    sim = simulate_ssda903(seed=3, quality_issues=0.05, **SMALL)
    direct = sim.to_episode_data()
    assert direct.synthetic
    assert direct.quality.counts["overlap"] > 0
    assert direct.quality.counts["open_not_last"] > 0
    folders = sim.write(tmp_path / "folders", layout="folders", file_format="csv")
    stacked = sim.write(tmp_path / "stacked", layout="stacked", file_format="parquet")
    assert "SYNTHETIC" in (folders / "README_SYNTHETIC.txt").read_text()
    one = next(folders.glob("*/*/episodes.csv"))
    table = pacsv.read_csv(one)
    assert "SYNTHETIC" in table.column_names
    assert "LA" not in table.column_names
    assert "/" in table.column("DECOM")[0].as_py()  # DD/MM/YYYY
    from_folders = read_ssda903(folders)
    from_stacked = read_ssda903(stacked)
    cols = ["la_code", "child", "decom", "dec", "place", "rec", "ls", "rne", "fix"]

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[cols].apply(text)
        return out.sort_values(cols[:3]).reset_index(drop=True)

    expected = ordered(direct.episodes)
    for data in (from_folders, from_stacked):
        assert data.synthetic
        assert data.quality.counts == direct.quality.counts
        assert same_frames(ordered(data.episodes), expected)
    outcomes = child_outcomes(from_folders)
    assert outcomes["synthetic"].all()


def test_quality_fixes_restore_the_clean_data() -> None:
    clean = episodes_to_panel(simulate_ssda903(seed=4, **SMALL).to_episode_data())
    messy = episodes_to_panel(
        simulate_ssda903(seed=4, quality_issues=0.1, **SMALL).to_episode_data()
    )
    cols = clean.count_columns
    pd.testing.assert_frame_equal(clean.frame[cols], messy.frame[cols])


def test_codes_follow_the_rules() -> None:
    ep = simulate_ssda903(seed=7, **SMALL).episodes
    assert (ep["DECOM"] <= pd.Timestamp("2028-03-31")).all()
    last = ep["REC"].notna() & (ep["REC"] != "X1")
    e45 = ep.loc[ep["REC"] == "E45", "PLACE"].astype(str)
    assert e45.isin(["U1", "U2", "U3"]).all()
    adopted = ep.loc[ep["REC"].isin(["E11", "E12"])]
    assert adopted["PLACE"].astype(str).str.startswith("A").all()
    assert (adopted["LS"] == "E1").all()
    assert ep.loc[ep["RNE"] == "S"].shape[0] >= last.sum() * 0.5
    assert ep["CHILD"].astype(str).str.startswith("SYN").all()
    assert (ep["SYNTHETIC"] == "Y").all()
