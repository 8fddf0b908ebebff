"""Specification grids: expansion, errors, parallel runs, the cache, Dask, and compare."""

from __future__ import annotations

import pandas as pd
import pytest

from kinship_eval.cli import main
from kinship_eval.errors import SpecError
from kinship_eval.grid import compare_specs, load_grid, run_grid, write_grid_outputs
from kinship_eval.spec import load_spec

FAST = (
    "set:\n  event_study.enabled: false\n  honest.enabled: false\n"
    "  robustness.enabled: false\n  cba.enabled: false\n"
)


@pytest.fixture
def grid_file(synthetic_spec):
    path = synthetic_spec.parent / "grid.yaml"
    path.write_text(
        "base: spec.yaml\n" + FAST + "grid:\n  estimator: [twfe, cs, imputation]\n"
        "  outcome: [sgo_exits_per_10k, kinship_exits_per_10k]\n"
    )
    return path


def test_grid_expands_the_cartesian_product(grid_file):
    members = load_grid(grid_file)
    assert len(members) == 6
    assert {m.varied["estimator"] for m in members} == {"twfe", "cs", "imputation"}
    assert len({m.spec_id for m in members}) == 6
    assert all(not m.spec.robustness.enabled for m in members)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grid: {estimator: twfe}\n", "must be a non-empty list"),
        ("grid: {}\n", "'grid' must map"),
        ("grid: {estimatr: [twfe]}\n", "field 'estimatr': unknown field"),
        ("grid: {estimator: [magic]}\n", "field 'estimator'"),
        ("grids: {estimator: [twfe]}\n", "unknown section"),
        ("base: nope.yaml\ngrid: {estimator: [twfe]}\n", "not found"),
    ],
)
def test_bad_grids_get_clear_errors(tmp_path, text, message):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_grid(path)


def test_run_grid_uses_the_cache(grid_file, tmp_path):
    members = load_grid(grid_file)
    first = run_grid(members, cache_dir=tmp_path / "cache", n_jobs=2, progress=False)
    assert (first["status"] == "ok").all()
    assert not first["cached"].any()
    assert len(list((tmp_path / "cache").glob("*.json"))) == 6
    second = run_grid(members, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert second["cached"].all()
    pd.testing.assert_frame_equal(first.drop(columns="cached"), second.drop(columns="cached"))
    # the twfe member equals a direct run of the same spec
    twfe = first.loc[
        (first["estimator"] == "twfe") & (first["outcome"] == "sgo_exits_per_10k"), "att"
    ].iloc[0]
    from kinship_eval.pipeline import build_panel, estimate, estimation_sample

    spec = next(
        m.spec for m in members if m.varied == {"estimator": "twfe", "outcome": "sgo_exits_per_10k"}
    )
    panel, _ = build_panel(spec)
    sample, _ = estimation_sample(spec, panel)
    assert twfe == pytest.approx(estimate(spec, sample).att)
    written = write_grid_outputs(first, tmp_path / "out")
    assert {p.name for p in written} == {"grid_results.csv", "spec_curve.png", "spec_curve.svg"}


def test_changed_input_file_invalidates_the_cache(grid_file, tmp_path):
    members = load_grid(grid_file)[:1]
    run_grid(members, cache_dir=tmp_path / "c", n_jobs=1, progress=False)
    measures = grid_file.parent / "measures.csv"
    measures.write_text(measures.read_text().replace("published", "published", 1) + "\n")
    again = run_grid(members, cache_dir=tmp_path / "c", n_jobs=1, progress=False)
    assert not again["cached"].any()


def test_changed_package_code_invalidates_the_cache(grid_file, tmp_path, monkeypatch):
    from kinship_eval import grid

    members = load_grid(grid_file)[:1]
    run_grid(members, cache_dir=tmp_path / "c", n_jobs=1, progress=False)
    assert run_grid(members, cache_dir=tmp_path / "c", n_jobs=1, progress=False)["cached"].all()
    monkeypatch.setattr(grid, "_code_digest", lambda: "an edited estimator")
    again = run_grid(members, cache_dir=tmp_path / "c", n_jobs=1, progress=False)
    assert not again["cached"].any()


def test_unestimable_member_is_recorded_not_fatal(synthetic_spec, tmp_path):
    path = synthetic_spec.parent / "g.yaml"
    path.write_text(
        "base: spec.yaml\n" + FAST + "grid:\n  estimator: [twfe, cs]\n"
        "  inference: [wild_bootstrap]\n  reps: [99]\n"
    )
    results = run_grid(load_grid(path), n_jobs=1, progress=False)
    status = dict(zip(results["estimator"], results["status"], strict=True))
    assert status["twfe"] == "ok"
    assert "wild_bootstrap inference is available for twfe, not cs" in status["cs"]


def test_grid_runs_on_a_local_dask_cluster(grid_file):
    distributed = pytest.importorskip("distributed")
    members = load_grid(grid_file)[:2]
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2):
        results = run_grid(members, n_jobs=2, backend="dask", progress=False)
    local = run_grid(members, n_jobs=1, progress=False)
    assert (results["status"] == "ok").all()
    assert results["att"].tolist() == pytest.approx(local["att"].tolist())


def test_compare_shows_differences_and_results(synthetic_spec, tmp_path):
    b = tmp_path / "b.yaml"
    b.write_text(synthetic_spec.read_text() + "estimator: imputation\n")
    table = compare_specs(load_spec(synthetic_spec), load_spec(b)).set_index("item")
    assert table.loc["estimator", "A"] == "twfe"
    assert table.loc["estimator", "B"] == "imputation"
    assert isinstance(table.loc["result.att", "A"], float)
    assert table.loc["result.status", "B"] == "ok"


def test_grid_command(grid_file, tmp_path, capsys):
    out = tmp_path / "gridout"
    assert main(["grid", "--spec", str(grid_file), "--out", str(out), "--jobs", "1"]) == 0
    assert "6 specifications (6 estimated, 0 from cache" in capsys.readouterr().out
    assert main(["grid", "--spec", str(grid_file), "--out", str(out), "--jobs", "1"]) == 0
    assert "6 from cache" in capsys.readouterr().out
