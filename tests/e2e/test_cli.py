"""The command line: JSON contract of `estimate`, clear errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kinship_eval.cli import main

pytestmark = pytest.mark.e2e


@pytest.fixture
def panel_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        g = 2006 if i < 8 else 0
        alpha = rng.normal()
        for t in range(2000, 2011):
            effect = 2.0 if g and t >= g else 0.0
            rows.append((f"LA{i:02d}", t, alpha + 0.1 * t + effect + rng.normal(0, 0.5), g))
    path = tmp_path / "panel.csv"
    pd.DataFrame(rows, columns=["la", "year", "y", "g"]).to_csv(path, index=False)
    return path


def _estimate_args(path, *extra):
    return [
        "estimate",
        "--data", str(path),
        "--unit", "la",
        "--time", "year",
        "--outcome", "y",
        "--first-treated", "g",
        *extra,
    ]  # fmt: skip


def test_estimate_json_contract(panel_csv, capsys):
    assert main(_estimate_args(panel_csv, "--estimator", "twfe", "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "estimator",
        "att",
        "se",
        "ci_low",
        "ci_high",
        "p_value",
        "n_units",
        "n_treated_units",
        "n_periods",
    ):
        assert key in out
    assert out["estimator"] == "twfe"
    assert out["n_units"] == 30
    assert out["n_treated_units"] == 8
    assert out["n_periods"] == 11
    assert out["att"] == pytest.approx(2.0, abs=0.4)
    assert out["ci_low"] < out["att"] < out["ci_high"]


def test_missing_column_is_one_clear_line(panel_csv, capsys):
    code = main(
        [
            "estimate", "--data", str(panel_csv), "--unit", "la", "--time", "year",
            "--outcome", "nope", "--first-treated", "g",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "column 'nope'" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3


def test_unknown_estimator_is_a_usage_error(panel_csv, capsys):
    code = main(_estimate_args(panel_csv, "--estimator", "magic"))
    assert code != 0
    assert "magic" in capsys.readouterr().err


def test_console_script_never_prints_a_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("la;year;y;g\nA;2000;1;0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kinship_eval.cli", *_estimate_args(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "semicolons" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def staggered_csv(tmp_path):
    """Three cohorts and never-treated units; effect 1 + 0.5 x event time, known truth."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(60):
        g = (0, 0, 0, 2005, 2007, 2009)[i % 6]
        alpha = rng.normal()
        for t in range(2000, 2012):
            e = t - g
            effect = 1.0 + 0.5 * e if g and e >= 0 else 0.0
            rows.append((f"U{i:02d}", t, alpha + 0.05 * t + effect + rng.normal(0, 0.3), g))
    path = tmp_path / "staggered.csv"
    pd.DataFrame(rows, columns=["la", "year", "y", "g"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("estimator", "extra"),
    [
        ("twfe", []),
        ("event_study", []),
        ("cs", []),
        ("cs", ["--inference", "multiplier", "--reps", "199", "--seed", "1"]),
        ("sunab", []),
        ("imputation", []),
        ("sdid", ["--reps", "50", "--seed", "1"]),
        ("sc", ["--reps", "50", "--seed", "1"]),
        ("poisson", []),
    ],
)
def test_every_estimator_prints_the_json_contract(staggered_csv, estimator, extra, capsys):
    args = _estimate_args(staggered_csv, "--estimator", estimator, "--json", *extra)
    if estimator == "poisson":
        frame = pd.read_csv(staggered_csv)
        frame["y"] = np.round(np.exp(frame["y"] / 4) * 5)
        frame.to_csv(staggered_csv, index=False)
    assert main(args) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["estimator"] == estimator
    assert out["n_units"] == 60
    assert out["n_treated_units"] == 30
    assert out["n_periods"] == 12
    for key in ("att", "se", "ci_low", "ci_high", "p_value"):
        assert isinstance(out[key], float), key
    assert out["ci_low"] < out["att"] < out["ci_high"]
    if estimator in ("cs", "sunab", "imputation"):
        # cohort aggregation of the true effects over each cohort's post periods (2011 last year)
        truth = np.mean(
            [np.mean([1 + 0.5 * e for e in range(2012 - g)]) for g in (2005, 2007, 2009)]
        )
        assert out["att"] == pytest.approx(truth, abs=0.15)
        rel = {row["rel_time"]: row["att"] for row in out["event_study"]}
        assert rel[0] == pytest.approx(1.0, abs=0.2)
        assert rel[2] == pytest.approx(2.0, abs=0.2)
    if estimator == "cs":
        assert {"group", "time", "att", "se"} <= set(out["group_time"][0])


def test_appraise_json_contract(tmp_path, capsys):
    flows = tmp_path / "flows.csv"
    flows.write_text("year_index,kind,amount\n0,cost,100\n1,benefit,60\n2,benefit,60\n")
    assert main(["appraise", "--flows", str(flows), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # Green Book 3.5%: year 1 factor 1/1.035, year 2 factor 1/1.035^2 (closed form)
    pv_benefits = 60 / 1.035 + 60 / 1.035**2
    assert out["pv_costs"] == pytest.approx(100.0)
    assert out["pv_benefits"] == pytest.approx(pv_benefits)
    assert out["npsv"] == pytest.approx(pv_benefits - 100)
    assert out["bcr"] == pytest.approx(pv_benefits / 100)


def test_appraise_bad_flows_is_one_clear_line(tmp_path, capsys):
    flows = tmp_path / "flows.csv"
    flows.write_text("year_index,kind,amount\n0,cost,100\n1,gift,60\n")
    assert main(["appraise", "--flows", str(flows), "--json"]) == 2
    err = capsys.readouterr().err
    assert "row 3" in err
    assert "kind" in err
    assert "Traceback" not in err


def test_cba_command_runs_the_default_spec(capsys):
    from tests.conftest import REPO

    assert main(["cba", "--spec", str(REPO / "analysis" / "specs" / "cba.yaml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["perspectives"]) == {"fiscal", "economic", "social"}
    assert out["monte_carlo"]["n_draws"] >= 10_000
    assert out["effect"]["illustrative"] is True
    economic = next(
        sv
        for sv in out["switching_values"]
        if sv["perspective"] == "economic" and sv["parameter"] == "effect.estimate"
    )
    assert economic["found"]


MPDTA = ["--unit", "countyreal", "--time", "year", "--outcome", "lemp", "--first-treated",
         "first.treat"]  # fmt: skip


def test_estimate_honest_json_on_mpdta(reference, capsys):
    args = ["estimate", "--data", str(reference / "mpdta.csv"), *MPDTA, "--estimator", "cs",
            "--honest", "relative_magnitude", "--honest-m", "0,1,2", "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    honest = out["honest"]
    assert [h["m"] for h in honest] == [0.0, 1.0, 2.0]
    # the robust set widens with M-bar and, at M-bar = 0, contains the e=0 estimate
    e0 = next(r["att"] for r in out["event_study"] if r["rel_time"] == 0)
    assert honest[0]["ci_low"] <= e0 <= honest[0]["ci_high"]
    widths = [h["ci_high"] - h["ci_low"] for h in honest]
    assert widths == sorted(widths)


def test_estimate_wild_bootstrap_and_randomization(reference, capsys):
    base = ["estimate", "--data", str(reference / "mpdta.csv"), *MPDTA, "--json", "--seed", "3"]
    assert main([*base, "--inference", "wild_bootstrap", "--reps", "999"]) == 0
    wild = json.loads(capsys.readouterr().out)
    assert wild["inference"] == "wild_bootstrap"
    assert wild["ci_low"] < wild["att"] < wild["ci_high"]
    assert main([*base, "--inference", "randomization", "--reps", "199"]) == 0
    ri = json.loads(capsys.readouterr().out)
    assert ri["inference"] == "randomization"
    assert ri["att"] == pytest.approx(wild["att"])
    assert 0 < ri["p_value"] <= 1


def test_unknown_inference_lists_valid_methods(reference, capsys):
    args = ["estimate", "--data", str(reference / "mpdta.csv"), *MPDTA, "--inference", "magic"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "wild_bootstrap" in err
    assert "randomization" in err


def test_power_command_writes_the_mde_table(tmp_path, capsys):
    from tests.conftest import REPO

    out = tmp_path / "power"
    args = ["power", "--spec", str(REPO / "analysis" / "specs" / "power.yaml"), "--out", str(out),
            "--set", "reps=20", "--set", "n_pilot=[7]", "--set", "post_periods=[2]",
            "--set", "inference=[cluster]", "--set", "effects=[0, 2, 4]", "--jobs", "1",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    mde = pd.read_csv(out / "power_mde.csv")
    assert len(mde) == 1
    assert (out / "power_curves.png").exists()
    assert "MDE" in capsys.readouterr().out
