"""Shared fixtures: the reference folder beside the clone, and small synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from kinship_eval.data.geography import Geography

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """``../shared/reference`` beside the clone (or $KINSHIP_EVAL_REFERENCE)."""
    env = os.environ.get("KINSHIP_EVAL_REFERENCE")
    return Path(env) if env else REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference() -> Path:
    path = reference_dir()
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path}")
    return path


def toy_geography() -> Geography:
    """Four stable LAs plus a merge (A+B -> C), a split (D -> E + F) and a recode (G -> H)."""
    las = pd.DataFrame(
        [
            ("E06000001", "801", "Stable One", "E12000001", "North East", "2009-01-01", ""),
            ("E06000002", "802", "Stable Two", "E12000001", "North East", "2009-01-01", ""),
            ("E06000003", "803", "Stable Three", "E12000002", "North West", "2009-01-01", ""),
            ("E06000004", "804", "Stable Four", "E12000002", "North West", "2009-01-01", ""),
            ("E06000028", "837", "Merge A", "E12000009", "South West", "2009-01-01", "2019-03-31"),
            ("E06000029", "836", "Merge B", "E12000009", "South West", "2009-01-01", "2019-03-31"),
            ("E06000058", "839", "Merged C", "E12000009", "South West", "2019-04-01", ""),
            (
                "E10000021",
                "928",
                "Split D",
                "E12000004",
                "East Midlands",
                "2009-01-01",
                "2021-03-31",
            ),
            ("E06000061", "940", "Split E", "E12000004", "East Midlands", "2021-04-01", ""),
            ("E06000062", "941", "Split F", "E12000004", "East Midlands", "2021-04-01", ""),
            ("E10000023", "815", "Recode G", "E12000003", "Yorkshire", "2009-01-01", "2023-03-31"),
            ("E06000065", "815", "Recode H", "E12000003", "Yorkshire", "2023-04-01", ""),
        ],
        columns=[
            "la_code",
            "old_la_code",
            "la_name",
            "region_code",
            "region_name",
            "date_of_operation",
            "date_of_termination",
        ],
    )
    reorg = pd.DataFrame(
        [
            ("E06000028", "E06000058", 2020, "merge"),
            ("E06000029", "E06000058", 2020, "merge"),
            ("E10000021", "E06000061", 2022, "split"),
            ("E10000021", "E06000062", 2022, "split"),
            ("E10000023", "E06000065", 2024, "recode"),
        ],
        columns=["predecessor_code", "successor_code", "effective_period", "note"],
    )
    return Geography(las=las, reorganisations=reorg, source="toy")


@pytest.fixture
def geography() -> Geography:
    return toy_geography()


def synthetic_inputs(
    n_las: int = 120, years: range = range(2012, 2026), seed: int = 1
) -> tuple[Geography, pd.DataFrame, pd.DataFrame]:
    """A geography, long measures and a pilot register for ``n_las`` stable synthetic LAs.

    Kinship exits are Poisson around LA-specific rates of 2-8 per 10,000; the first seven LAs are
    the pilot, first treated in 2027 (so illustrative years are needed to estimate anything).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    codes = [f"E06{900000 + i:06d}" for i in range(n_las)]
    las = pd.DataFrame(
        {
            "la_code": codes,
            "old_la_code": [str(100 + i) for i in range(n_las)],
            "la_name": [f"LA {i}" for i in range(n_las)],
            "region_code": ["E12000001"] * n_las,
            "region_name": ["North East"] * n_las,
            "date_of_operation": ["2009-01-01"] * n_las,
            "date_of_termination": [""] * n_las,
        }
    )
    geo = Geography(
        las=las,
        reorganisations=pd.DataFrame(
            columns=["predecessor_code", "successor_code", "effective_period", "note"]
        ),
    )
    rows = []
    for code in codes:
        pop = rng.uniform(20_000, 150_000)
        rates = {"sgo_exits": rng.uniform(1.5, 6), "cao_exits": rng.uniform(0.3, 2)}
        for y in years:
            rows.append((y, code, "population_0_17", pop, "published"))
            for m, r in rates.items():
                rows.append((y, code, m, float(rng.poisson(r * pop / 10_000)), "published"))
    measures = pd.DataFrame(rows, columns=["period", "la_code", "measure", "value", "status"])
    pilot = pd.DataFrame(
        {
            "la_code": codes[:7],
            "start_date": pd.to_datetime(["2026-04-01"] * 7),
            "first_treated_period": pd.array([2027] * 7, dtype="Int64"),
        }
    )
    return geo, measures, pilot


@pytest.fixture
def synthetic_spec(tmp_path):
    """A spec reading small synthetic input files (60 LAs), with the slow extras switched off."""
    geo, measures, pilot = synthetic_inputs(n_las=60, seed=2)
    geo.las.to_csv(tmp_path / "las.csv", index=False)
    geo.reorganisations.to_csv(tmp_path / "reorg.csv", index=False)
    measures.assign(old_la_code="", la_name="", source="synthetic").to_csv(
        tmp_path / "measures.csv", index=False
    )
    pilot.assign(start_date=pilot["start_date"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / "pilot.csv", index=False
    )
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "name: synthetic\n"
        "data:\n  measures: measures.csv\n  geography: las.csv\n"
        "  reorganisations: reorg.csv\n  pilot_register: pilot.csv\n"
        "illustrative:\n  effect: 0.5\n  seed: 7\n"
        "robustness:\n  estimators: [twfe, cs]\n  outcomes: [kinship_exits_per_10k]\n"
        "inference: cluster\n"
    )
    return spec_file
