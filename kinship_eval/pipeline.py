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
from kinship_eval.errors import EstimationError, InputError, SpecError
from kinship_eval.report.provenance import git_revision, input_manifest, package_versions
from kinship_eval.spec import Spec

log = logging.getLogger(__name__)

CONTAMINATION_FLAG = "pays_kinship_allowance_at_fostering_rates"


@dataclass
class EvaluationResults:
    """Everything one run produced.

    Attributes
    ----------
    estimate
        The primary estimate (the spec's estimator and inference).
    event_study
        The event study behind the chart and the pre-trend diagnostics.
    pretrends
        Joint Wald test of the leads (``stat``, ``df``, ``p_value``) and, where computed, the
        Roth (2022) power of that test.
    honest
        Rambachan-Roth sensitivity (a tidy frame: ``m, ci_low, ci_high``) and breakdown value.
    robustness
        Tidy table of alternative estimators and outcomes (one row per specification).
    cba
        The Green Book appraisal with the primary estimate as its effect.
    """

    spec: Spec
    panel: Panel
    estimation_sample: pd.DataFrame
    estimate: DiDResults
    trends: pd.DataFrame
    illustrative: IllustrativeResult | None
    provenance: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    event_study: DiDResults | None = None
    pretrends: dict[str, Any] | None = None
    honest: Any = None
    robustness: pd.DataFrame | None = None
    cba: Any = None

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


_PANEL_FIELDS = ("data", "illustrative", "harmonisation", "period_start", "period_end")
_panel_cache: dict[str, tuple[Panel, IllustrativeResult | None]] = {}


def build_panel_cached(spec: Spec) -> tuple[Panel, IllustrativeResult | None]:
    """:func:`build_panel`, memoised on the spec fields that shape the panel (within a process)."""
    key = json.dumps(spec.model_dump(mode="json", include=set(_PANEL_FIELDS)), sort_keys=True)
    if key not in _panel_cache:
        _panel_cache[key] = build_panel(spec)
    return _panel_cache[key]


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
    if spec.comparison.method != "all_non_pilot" or spec.comparison.exclude:
        from kinship_eval.design.comparison import select_comparison

        chosen = select_comparison(frame, spec.comparison)
        frame = chosen.apply(frame)
        notes.append(
            f"Comparison group: {chosen.description}: {chosen.n_comparison} LAs "
            f"(effective number {chosen.effective_n:.1f})."
        )
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


PANEL_COLUMNS = {"unit": "la_code", "time": "period", "first_treated": "first_treated_0"}


def estimate(
    spec: Spec, sample: pd.DataFrame, *, outcome: str | None = None, estimator: str | None = None
) -> DiDResults:
    """Run the spec's estimator with its inference on the estimation sample.

    ``outcome`` and ``estimator`` override the spec's (for robustness tables).
    """
    from kinship_eval.did.estimate import fit_with_inference

    outcome = outcome or spec.outcome
    estimator = estimator or spec.estimator
    has_outcome = sample[outcome].notna()
    observed = has_outcome & sample[list(spec.covariates)].notna().all(axis=1)
    n_no_covariate = int((has_outcome & ~observed).sum())
    sample = sample.loc[observed]
    balance_note = (
        f"{n_no_covariate} LA-years with a covariate missing were left out"
        if n_no_covariate
        else None
    )
    if estimator in ("sdid", "sc"):
        sample, balance_note = _balanced(sample, outcome)
    options: dict[str, Any] = {}
    if estimator in ("twfe", "cs", "imputation"):
        options["anticipation"] = spec.anticipation
    if estimator == "cs":
        # every LA contributes: unbalanced panels use the repeated cross-section estimators
        options["allow_unbalanced_panel"] = True
    result = fit_with_inference(
        estimator,
        sample,
        outcome=outcome,
        inference=None if spec.inference == "default" else spec.inference,
        control_group=spec.control_group,
        covariates=spec.covariates,
        reps=spec.reps,
        seed=spec.seed,
        strata=spec.strata,
        level=spec.level,
        source="estimation sample",
        **PANEL_COLUMNS,
        **options,
    )
    if balance_note:
        result.notes.append(balance_note)
    return result


def _balanced(sample: pd.DataFrame, outcome: str) -> tuple[pd.DataFrame, str | None]:
    """Keep the LAs observed in every period (synthetic estimators need a balanced panel)."""
    n_periods = sample["period"].nunique()
    counts = sample.groupby("la_code")["period"].nunique()
    keep = counts.index[counts == n_periods]
    dropped = sorted(set(counts.index) - set(keep))
    if not dropped:
        return sample, None
    pilots_dropped = sorted(set(sample.loc[sample["pilot"], "la_code"]) & set(dropped))
    note = (
        f"{len(dropped)} LAs with {outcome} missing in some year were left out to balance the "
        "panel" + (f", including pilot LAs {', '.join(pilots_dropped)}" if pilots_dropped else "")
    )
    return sample.loc[sample["la_code"].isin(keep)], note


def event_study_for(spec: Spec, sample: pd.DataFrame) -> DiDResults:
    """The event study the report draws (and HonestDiD uses)."""
    from kinship_eval.did.estimate import fit

    es = spec.event_study
    options: dict[str, Any] = (
        {"leads": es.leads, "lags": es.lags} if es.estimator == "event_study" else {}
    )
    if es.estimator == "imputation":
        options["pretrend_leads"] = es.leads
    return fit(
        es.estimator,
        sample.loc[sample[spec.outcome].notna()],
        outcome=spec.outcome,
        unit=PANEL_COLUMNS["unit"],
        time=PANEL_COLUMNS["time"],
        first_treated=PANEL_COLUMNS["first_treated"],
        level=spec.level,
        **options,
    )


def pretrend_diagnostics(spec: Spec, es: DiDResults) -> tuple[dict[str, Any] | None, Any]:
    """Joint test of the leads and HonestDiD sensitivity from an event study."""
    from kinship_eval.did.pretrends import honest_did, honest_inputs

    wald = es.extra.get("pretrend_wald") or es.extra.get("pretest")
    honest = None
    if spec.honest.enabled and "vcov" in es.extra:
        beta, sigma, num_pre, num_post = honest_inputs(es)
        if num_pre >= 1 and num_post >= 1:
            honest = honest_did(
                beta,
                sigma,
                num_pre,
                num_post,
                method=spec.honest.method,
                m_values=list(spec.honest.m_values),
                alpha=1 - spec.level,
            )
    return (dict(wald) if wald else None), honest


def robustness_table(spec: Spec, sample: pd.DataFrame, primary: DiDResults) -> pd.DataFrame:
    """Re-estimate with the alternative estimators (primary outcome) and outcomes (primary
    estimator), each with the estimator's default inference."""
    rows = []
    # each estimator's own default inference; resampling variance (SDID placebo) with the
    # synthdid default of 200 replications
    plain = spec.model_copy(update={"inference": "default", "reps": min(spec.reps, 200)})
    jobs = [(est, spec.outcome) for est in spec.robustness.estimators]
    jobs += [(spec.estimator, out) for out in spec.robustness.outcomes if out in sample]
    for est, out in jobs:
        try:
            res = estimate(plain, sample, outcome=out, estimator=est)
            status = "ok"
        except (EstimationError, SpecError, InputError) as exc:
            res, status = None, str(exc).splitlines()[0]
        rows.append(
            {
                "estimator": est,
                "outcome": out,
                "att": res.att if res else float("nan"),
                "se": res.se if res else float("nan"),
                "ci_low": res.ci_low if res else float("nan"),
                "ci_high": res.ci_high if res else float("nan"),
                "p_value": res.p_value if res else float("nan"),
                "inference": res.inference if res else "",
                "n_units": res.n_units if res else 0,
                "status": status,
            }
        )
    rows.insert(
        0,
        {
            "estimator": primary.estimator,
            "outcome": spec.outcome,
            "att": primary.att,
            "se": primary.se,
            "ci_low": primary.ci_low,
            "ci_high": primary.ci_high,
            "p_value": primary.p_value,
            "inference": primary.inference,
            "n_units": primary.n_units,
            "status": "primary",
        },
    )
    return pd.DataFrame(rows)


def appraisal(spec: Spec, primary: DiDResults, illustrative: bool) -> Any:
    """The Green Book appraisal, with the primary estimate as its effect if the spec says so."""
    from kinship_eval.cba.spec import CBASpec, load_cba_spec, run_cba_spec

    overrides: list[str] = []
    if spec.cba.use_did_effect:
        label = f"DiD estimate ({primary.estimator}, {primary.inference}) on {spec.outcome}" + (
            " from ILLUSTRATIVE simulated pilot years" if illustrative else ""
        )
        overrides = [
            "effect.source=assumed",
            f"effect.estimate={primary.att!r}",
            f"effect.se={primary.se!r}",
            f"effect.ci_low={primary.ci_low!r}",
            f"effect.ci_high={primary.ci_high!r}",
            f"effect.illustrative={'true' if illustrative else 'false'}",
            f"effect.label={json.dumps(label)}",
        ]
    if spec.cba.spec is not None:
        cba_spec = load_cba_spec(spec.cba.spec, overrides)
        source = str(spec.cba.spec)
    else:
        from kinship_eval.spec import apply_override

        raw: dict[str, Any] = {}
        for item in overrides:
            apply_override(raw, item)
        cba_spec = CBASpec.model_validate(raw)
        source = "package defaults"
    return run_cba_spec(cba_spec, source=source)


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
    es = event_study_for(spec, sample) if spec.event_study.enabled else None
    pretrends, honest = pretrend_diagnostics(spec, es) if es is not None else (None, None)
    robustness = robustness_table(spec, sample, result) if spec.robustness.enabled else None
    cba = appraisal(spec, result, illustrative is not None) if spec.cba.enabled else None
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
        event_study=es,
        pretrends=pretrends,
        honest=honest,
        robustness=robustness,
        cba=cba,
    )


def write_outputs(results: EvaluationResults, out_dir: str | Path) -> list[Path]:
    """Write the report, tables, figures and manifest into ``out_dir`` atomically."""
    from kinship_eval.report.render import describe_outputs, render_outputs

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kinship-eval-", dir=out.parent))
    try:
        files = render_outputs(results, staging)
        manifest = {**results.provenance, "outputs": describe_outputs(staging, files)}
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
