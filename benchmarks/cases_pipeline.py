"""The whole evaluation (no peer): the primary run, a 200-specification grid and ``make report``.

* ``pipeline_primary`` does what ``kinship-eval run --spec analysis/specs/primary.yaml --out <tmp>``
  does (load the spec, build and validate the panel from the bundled data, estimate, write the
  report and its tables), in-process, into a fresh temporary folder each time. What the command
  adds on top -- interpreter start-up and imports -- is measured once in a subprocess and recorded
  as ``ours_info.import_s``.
* ``grid200`` runs the 200 specifications of ``benchmarks/specs/grid200.yaml`` with
  :func:`kinship_eval.grid.run_grid` (all cores, an empty cache each time), then reruns them from
  the cache (``ours_info.cached_s``).
* ``make_report`` runs the two commands of ``make report`` (the 64-specification sensitivity grid,
  then the primary run with its report, HTML, PDF and spreadsheets) as subprocesses into an empty
  folder: everything ``make report`` does on a machine whose virtual environment is already built.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Case, Impl, Outcome

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "analysis" / "specs" / "primary.yaml"
SENSITIVITY = ROOT / "analysis" / "specs" / "sensitivity.yaml"
GRID200 = Path(__file__).with_name("specs") / "grid200.yaml"
KINSHIP_EVAL = Path(sys.executable).with_name("kinship-eval")


def _import_seconds() -> float | None:
    """Wall time of a fresh interpreter importing what ``kinship-eval run`` imports."""
    code = "import kinship_eval.cli, kinship_eval.pipeline, kinship_eval.spec"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    return elapsed if proc.returncode == 0 else None


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="kinship-bench-"))


def _primary() -> Impl:
    from kinship_eval.pipeline import run as run_pipeline
    from kinship_eval.pipeline import write_outputs
    from kinship_eval.spec import load_spec

    state: dict[str, float | None] = {}

    def run(out: Path) -> Outcome:
        try:
            spec = load_spec(SPEC, ())
            results = run_pipeline(spec)
            written = write_outputs(results, out / "report")
            att = float(results.estimate.att)
            if "import_s" not in state:
                state["import_s"] = _import_seconds()
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return Outcome(
            {"att": att},
            att,
            info={"files_written": len(written), "import_s": state["import_s"]},
        )

    return Impl("ours", run, _scratch, package="kinship_eval")


def _grid200() -> Impl:
    from kinship_eval.grid import load_grid, run_grid

    def run(out: Path) -> Outcome:
        try:
            members = load_grid(GRID200)
            results = run_grid(members, cache_dir=out / "cache", progress=False)
            start = time.perf_counter()
            cached = run_grid(members, cache_dir=out / "cache", progress=False)
            cached_s = time.perf_counter() - start
        finally:
            shutil.rmtree(out, ignore_errors=True)
        ok = results["status"] == "ok"
        same = results.drop(columns="cached").equals(cached.drop(columns="cached"))
        return Outcome(
            {"n_specs": float(len(results))},
            float(results.loc[ok, "att"].median()),
            info={
                "n_specs": len(results),
                "n_failed": int((~ok).sum()),
                "failures": sorted(set(results.loc[~ok, "status"]))[:5],
                "cached_s": round(cached_s, 3),
                "cached_equal": bool(same),
            },
        )

    return Impl("ours", run, _scratch, package="kinship_eval")


def _make_report() -> Impl:
    def run(out: Path) -> Outcome:
        steps = {
            "grid_s": [
                str(KINSHIP_EVAL),
                "grid",
                "--spec",
                str(SENSITIVITY),
                "--out",
                str(out / "grid"),
            ],
            "report_s": [
                str(KINSHIP_EVAL),
                "run",
                "--spec",
                str(SPEC),
                "--out",
                str(out),
                "--set",
                f"report.spec_curve={out / 'grid' / 'grid_results.csv'}",
            ],
        }
        info: dict[str, float | int] = {}
        try:
            for name, command in steps.items():
                start = time.perf_counter()
                proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
                info[name] = round(time.perf_counter() - start, 2)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(command[:2])} failed: {proc.stderr[-500:]}")
            info["files_written"] = sum(1 for p in out.rglob("*") if p.is_file())
            pdf = out / "report.pdf"
            info["pdf_bytes"] = pdf.stat().st_size if pdf.exists() else 0
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return Outcome({"steps": float(len(steps))}, float("nan"), info=info)

    return Impl("ours", run, _scratch, package="kinship_eval")


def cases() -> list[Case]:
    return [
        Case(
            name="pipeline_primary",
            family="pipeline",
            description=(
                "kinship-eval run --spec analysis/specs/primary.yaml: bundled DfE/ONS data with "
                "illustrative pilot years and everything the spec asks for (estimate and its "
                "inference, event study, sensitivity, robustness, appraisal, HTML report and "
                "tables), in-process, timed alone"
            ),
            ours=_primary(),
            peers=[],
            tolerance=0.0,
        ),
        Case(
            name="grid200",
            family="pipeline",
            description=(
                "run_grid on benchmarks/specs/grid200.yaml: 200 specifications (5 estimators x 5 "
                "outcomes x 2 harmonisation rules x 2 anticipation periods x 2 first years), all "
                "cores, empty cache; ours_info.cached_s is the rerun from the cache"
            ),
            ours=_grid200(),
            peers=[],
            tolerance=0.0,
            warmup=False,
        ),
        Case(
            name="make_report",
            family="pipeline",
            description=(
                "the two commands of make report in subprocesses into an empty folder: the "
                "64-specification sensitivity grid, then the primary run with HTML, PDF and "
                "spreadsheet outputs (ours_info: seconds of each step)"
            ),
            ours=_make_report(),
            peers=[],
            tolerance=0.0,
            warmup=False,
        ),
    ]
