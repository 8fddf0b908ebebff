"""The whole evaluation, as ``make report`` runs it (no peer).

The timed call does what ``kinship-eval run --spec analysis/specs/primary.yaml --out <tmp>`` does
(load the spec, build and validate the panel from the bundled data, estimate, write the report and
its tables), in-process, into a fresh temporary folder each time. What the command adds on top --
interpreter start-up and imports -- is measured once in a subprocess and recorded as
``ours_info.import_s``.
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


def _import_seconds() -> float | None:
    """Wall time of a fresh interpreter importing what ``kinship-eval run`` imports."""
    code = "import kinship_eval.cli, kinship_eval.pipeline, kinship_eval.spec"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    return elapsed if proc.returncode == 0 else None


def _ours() -> Impl:
    from kinship_eval.pipeline import run as run_pipeline
    from kinship_eval.pipeline import write_outputs
    from kinship_eval.spec import load_spec

    state: dict[str, float | None] = {}

    def setup() -> Path:
        return Path(tempfile.mkdtemp(prefix="kinship-bench-"))

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

    return Impl("ours", run, setup, package="kinship_eval")


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
            ours=_ours(),
            peers=[],
            tolerance=0.0,
        )
    ]
