"""The pipeline end to end: files -> panel -> TWFE -> report (synthetic files, bundled data)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kinship_eval.cli import main
from kinship_eval.pipeline import run, write_outputs
from kinship_eval.spec import build_spec, load_spec
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_pipeline_on_files_writes_report(synthetic_spec, tmp_path):
    spec = load_spec(synthetic_spec)
    results = run(spec)
    out = tmp_path / "build"
    written = write_outputs(results, out)
    names = {p.relative_to(out).as_posix() for p in written}
    assert {
        "report.html",
        "manifest.json",
        "tables/impact.csv",
        "figures/trends.png",
        "figures/trends.svg",
        "tables/panel.csv",
    } <= names
    html = (out / "report.html").read_text()
    assert "Illustrative results" in html
    assert 'alt="Line chart of' in html
    assert '<th scope="col">' in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert {i["role"] for i in manifest["inputs"]} >= {"measures", "pilot_register"}
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["packages"]["linearmodels"]
    assert (
        results.estimate.ci_low
        <= results.illustrative.true_att(spec.outcome)
        <= results.estimate.ci_high
    )
    assert not any(p.name.startswith(".kinship-eval-") for p in tmp_path.iterdir())


def test_tables_are_identical_on_rerun(synthetic_spec, tmp_path):
    spec = load_spec(synthetic_spec)
    a = write_outputs(run(spec), tmp_path / "a")
    write_outputs(run(spec), tmp_path / "b")
    for path in a:
        if path.suffix == ".csv":
            other = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == other.read_bytes(), path.name


def test_failed_run_leaves_output_folder_untouched(synthetic_spec, tmp_path, capsys):
    out = tmp_path / "build"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    code = main(
        ["run", "--spec", str(synthetic_spec), "--out", str(out), "--set", "outcome=not_an_outcome"]
    )
    assert code == 2
    assert "unknown outcome" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not any(p.name.startswith(".kinship-eval-") for p in tmp_path.iterdir())


def test_bad_pilot_file_is_reported_with_file_row_column(synthetic_spec, tmp_path, capsys):
    pilot = tmp_path / "pilot.csv"
    frame = pd.read_csv(pilot, dtype=str)
    frame.loc[2, "la_code"] = "E06999999"
    frame.to_csv(pilot, index=False)
    code = main(["run", "--spec", str(synthetic_spec), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "pilot.csv, row 4, column 'la_code': unknown LA code" in err


def test_report_on_bundled_default_data(tmp_path):
    """What `make report` runs: the primary spec on the bundled data."""
    spec = load_spec(REPO / "analysis" / "specs" / "primary.yaml")
    results = run(spec)
    panel = results.panel.frame
    assert set(results.panel.pilot_codes) == {
        "E09000004", "E08000001", "E08000021", "E06000012", "E06000035", "E06000034", "E06000054"
    }  # fmt: skip
    assert panel.loc[panel["pilot"], "first_treated"].eq(2027).all()
    assert panel.loc[panel["period"] <= 2025, "illustrative"].eq(False).all()
    assert panel.loc[panel["period"] >= 2026, "illustrative"].all()
    assert panel["la_code"].nunique() >= 145
    est = results.estimate
    assert est.n_treated_units == 7
    assert est.ci_low <= results.illustrative.true_att(spec.outcome) <= est.ci_high
    written = write_outputs(results, tmp_path / "build")
    assert (tmp_path / "build" / "report.html").exists()
    assert len(written) >= 8


def test_switching_illustrative_years_off_needs_post_period_data():
    spec = build_spec({"illustrative": {"enabled": False}})
    with pytest.raises(Exception, match="pilot start outside the panel"):
        run(spec)
