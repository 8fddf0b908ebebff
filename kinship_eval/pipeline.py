"""The one place that wires the stages together: spec -> data -> panel -> estimate -> report.

:func:`run` returns an :class:`EvaluationResults`; :func:`write_outputs` writes the report and its
tables atomically (into a temporary folder first, so a failed run leaves nothing half-written in
the output folder).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kinship_eval import __version__
from kinship_eval.data.bundled import bundled_path
from kinship_eval.data.demo import IllustrativeConfig, IllustrativeResult, extend_illustrative
from kinship_eval.data.geography import load_geography
from kinship_eval.data.measures import read_measures
from kinship_eval.data.panel import Panel, assemble, attach_treatment, panel_columns, validate_panel
from kinship_eval.data.pilot import read_comparison_register, read_pilot_register
from kinship_eval.data.population import read_population, replace_population
from kinship_eval.did.results import DiDResults
from kinship_eval.did.twfe import twfe
from kinship_eval.errors import EstimationError, InputError, SpecError
from kinship_eval.report.provenance import git_revision, input_manifest, package_versions
from kinship_eval.spec import Spec

log = logging.getLogger(__name__)

CONTAMINATION_FLAG = "pays_kinship_allowance_at_fostering_rates"


@dataclass
class EvaluationResults:
    """Everything one run produced."""

    spec: Spec
    panel: Panel
    estimation_sample: pd.DataFrame
    estimate: DiDResults
    trends: pd.DataFrame
    illustrative: IllustrativeResult | None
    provenance: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def first_treated(self) -> int:
        return int(self.panel.frame.loc[self.panel.frame["pilot"], "first_treated"].min())

    @property
    def outcome_label(self) -> str:
        return self.panel.label(self.spec.outcome)


def input_files(spec: Spec) -> dict[str, Path]:
    """The input files a spec reads (bundled defaults where the spec gives none)."""
    d = spec.data
    files = {
        "measures": d.measures or bundled_path("la_measures.csv"),
        "geography": d.geography or bundled_path("la_geography.csv"),
        "reorganisations": d.reorganisations or bundled_path("la_reorganisations.csv"),
        "pilot_register": d.pilot_register or bundled_path("pilot_register.csv"),
    }
    if d.comparison_register:
        files["comparison_register"] = d.comparison_register
    if d.population:
        files["population"] = d.population
    return {k: Path(v) for k, v in files.items()}


def build_panel(spec: Spec) -> tuple[Panel, IllustrativeResult | None]:
    """Read and validate the inputs and build the Panel the spec describes."""
    files = input_files(spec)
    geography = load_geography(files["geography"], files["reorganisations"])
    measures = read_measures(files["measures"], geography)
    if "population" in files:
        measures = replace_population(measures, read_population(files["population"]))
    pilot = read_pilot_register(files["pilot_register"], geography)
    comparison = (
        read_comparison_register(files["comparison_register"], geography)
        if "comparison_register" in files
        else None
    )
    frame, hlog = assemble(
        measures, geography, rule=spec.harmonisation, periods=(spec.period_start, spec.period_end)
    )
    notes = hlog.describe()
    illustrative = None
    first = dict(zip(pilot["la_code"], pilot["first_treated_period"].astype(int), strict=True))
    if spec.illustrative.enabled:
        cfg = IllustrativeConfig(
            years=tuple(y for y in spec.illustrative.years if y <= spec.period_end),
            effect=spec.illustrative.effect,
            dynamics=spec.illustrative.dynamics,
            stagger=spec.illustrative.stagger,
            seed=spec.illustrative.seed,
        )
        illustrative = extend_illustrative(frame, first, cfg)
        frame = illustrative.frame
        pilot = pilot.assign(
            first_treated_period=pilot["la_code"].map(illustrative.first_treated).astype("Int64")
        )
        notes.append(
            f"Years {', '.join(map(str, cfg.years))} are ILLUSTRATIVE: simulated continuations of "
            f"the real series with a known effect of +{cfg.effect:.0%} on expected kinship exits "
            f"in the pilot LAs (seed {cfg.seed}). They are not data."
        )
    frame = attach_treatment(
        frame, pilot, comparison_register=comparison, source=str(files["pilot_register"])
    )
    frame = validate_panel(frame, source="assembled panel")
    counts, rates = panel_columns(frame)
    return Panel(frame, hlog, counts, rates, notes), illustrative


def estimation_sample(spec: Spec, panel: Panel) -> tuple[pd.DataFrame, list[str]]:
    """Rows used for estimation: comparison-group rule applied, outcome observed."""
    frame = panel.frame
    notes: list[str] = []
    if spec.outcome not in frame:
        outcomes = sorted(c for c in frame.columns if c.endswith("_per_10k"))
        raise SpecError(f"field 'outcome': unknown outcome {spec.outcome!r}; valid: {outcomes}")
    if spec.comparison_group == "exclude_contaminated":
        if CONTAMINATION_FLAG not in frame:
            raise SpecError(
                "field 'comparison_group': 'exclude_contaminated' needs a comparison register "
                f"with a '{CONTAMINATION_FLAG}' column (data.comparison_register)"
            )
        dropped = frame.loc[~frame["pilot"] & frame[CONTAMINATION_FLAG], "la_code"].unique()
        frame = frame.loc[frame["pilot"] | ~frame[CONTAMINATION_FLAG]]
        notes.append(f"Excluded {len(dropped)} comparison LAs flagged as contaminated.")
    observed = frame[spec.outcome].notna()
    n_missing = int((~observed).sum())
    if n_missing:
        reasons = frame.loc[~observed, spec.outcome.removesuffix("_per_10k") + "_status"]
        summary = ", ".join(f"{k} {v}" for k, v in reasons.value_counts().items())
        notes.append(f"{n_missing} LA-years without the outcome were left out ({summary}).")
    sample = frame.loc[observed].copy()
    sample["first_treated_0"] = sample["first_treated"].fillna(0).astype(int)
    if sample["pilot"].sum() == 0:
        raise EstimationError("no pilot LA has the outcome observed")
    return sample, notes


def estimate(spec: Spec, sample: pd.DataFrame) -> DiDResults:
    """Run the spec's estimator on the estimation sample."""
    if spec.estimator == "twfe":
        return twfe(
            sample,
            unit="la_code",
            time="period",
            outcome=spec.outcome,
            first_treated="first_treated_0",
            covariates=spec.covariates,
            anticipation=spec.anticipation,
            level=spec.level,
            source="estimation sample",
        )
    raise SpecError(f"field 'estimator': {spec.estimator!r} is not available")  # pragma: no cover


def group_trends(sample: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Mean outcome by period for pilot and comparison LAs (unweighted, as the estimator)."""
    grouped = (
        sample.assign(group=sample["pilot"].map({True: "Pilot LAs", False: "Comparison LAs"}))
        .groupby(["period", "group"])
        .agg(mean=(outcome, "mean"), n_las=("la_code", "nunique"))
        .reset_index()
    )
    return grouped


def run(spec: Spec) -> EvaluationResults:
    """Run the whole evaluation a spec describes."""
    panel, illustrative = build_panel(spec)
    sample, notes = estimation_sample(spec, panel)
    result = estimate(spec, sample)
    if illustrative is not None:
        result.notes.append(
            f"Post-pilot years are illustrative: the true effect put into the simulation is "
            f"{illustrative.true_att(spec.outcome):.3f} per 10,000 children."
        )
    provenance = {
        "package_version": __version__,
        "git_revision": git_revision(),
        "spec": spec.model_dump(mode="json"),
        "spec_digest": spec.digest(),
        "inputs": input_manifest(input_files(spec)),
        "packages": package_versions(),
    }
    return EvaluationResults(
        spec=spec,
        panel=panel,
        estimation_sample=sample,
        estimate=result,
        trends=group_trends(sample, spec.outcome),
        illustrative=illustrative,
        provenance=provenance,
        notes=panel.notes + notes,
    )


def write_outputs(results: EvaluationResults, out_dir: str | Path) -> list[Path]:
    """Write the report, tables, figures and manifest into ``out_dir`` atomically."""
    from kinship_eval.report.render import render_outputs

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kinship-eval-", dir=out.parent))
    try:
        files = render_outputs(results, staging)
        manifest = {**results.provenance, "outputs": sorted(files)}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in [*files, "manifest.json"]:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / name).replace(target)
            written.append(target)
        return written
    except Exception:
        log.debug("writing outputs failed; nothing was moved into %s", out)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = [
    "EvaluationResults",
    "InputError",
    "build_panel",
    "estimate",
    "estimation_sample",
    "run",
    "write_outputs",
]
