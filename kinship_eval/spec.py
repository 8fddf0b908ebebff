"""The analysis specification: one validated, YAML-serialisable description of a run.

A spec names the inputs (or the bundled default data), the harmonisation rule, the periods, the
outcome, the comparison group, the estimator and its inference, and the report options. Specs are
read from YAML and can be overridden from the command line with ``--set key=value`` (dotted keys
reach nested fields: ``--set illustrative.effect=0.5``). Errors name the field and list the valid
values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kinship_eval.design.specs import ComparisonSpec
from kinship_eval.errors import SpecError

Estimator = Literal["twfe", "event_study", "cs", "sunab", "imputation", "sdid", "sc", "poisson"]
Inference = Literal[
    "default",
    "cluster",
    "wild_bootstrap",
    "randomization",
    "multiplier",
    "placebo",
    "jackknife",
    "bootstrap",
]
ComparisonGroup = Literal["all_non_pilot", "exclude_contaminated"]
ControlGroup = Literal["never_treated", "not_yet_treated"]
EventStudyEstimator = Literal["cs", "sunab", "imputation", "event_study"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Model):
    """Input files; ``null`` means the bundled default."""

    measures: Path | None = Field(None, description="Long LA-measures CSV (bundled real data)")
    population: Path | None = Field(
        None, description="ONS 0-17 population (EES layout); replaces the measures' population"
    )
    geography: Path | None = Field(None, description="LA lookup CSV")
    reorganisations: Path | None = Field(None, description="LA reorganisations CSV")
    pilot_register: Path | None = Field(None, description="Pilot register CSV (Kinship Zones)")
    comparison_register: Path | None = Field(None, description="Comparison register CSV")


class IllustrativeSpec(_Model):
    """Illustrative pilot years (simulated; see :mod:`kinship_eval.data.demo`)."""

    enabled: bool = True
    years: tuple[int, ...] = (2026, 2027, 2028)
    effect: float = Field(0.25, ge=-0.9, le=5.0)
    dynamics: Literal["constant", "growing"] = "constant"
    stagger: bool = False
    seed: int = 20260227


class EventStudySpec(_Model):
    """The event study drawn in the report and used for pre-trend diagnostics."""

    enabled: bool = True
    estimator: EventStudyEstimator = "event_study"
    leads: int = Field(5, ge=1, le=20)
    lags: int = Field(2, ge=0, le=20)


class HonestSpec(_Model):
    """Rambachan-Roth sensitivity of the first post-period effect to parallel-trend violations."""

    enabled: bool = True
    method: Literal["smoothness", "relative_magnitude"] = "relative_magnitude"
    m_values: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)


class RobustnessSpec(_Model):
    """Alternative specifications re-estimated for the report's robustness section."""

    enabled: bool = True
    estimators: tuple[Estimator, ...] = ("twfe", "cs", "sunab", "imputation", "sdid")
    outcomes: tuple[str, ...] = (
        "kinship_exits_per_10k",
        "cao_exits_per_10k",
        "cla_starts_per_10k",
        "cla_31mar_per_10k",
    )


class CBARef(_Model):
    """The Green Book appraisal run with the primary estimate as its effect."""

    enabled: bool = True
    spec: Path | None = Field(None, description="CBA spec YAML; null = the package defaults")
    use_did_effect: bool = True


class ReportSpec(_Model):
    """Report options (disclosure control: ONS 10-5 rule by default)."""

    title: str = "Kinship allowance pilot: impact evaluation"
    templates: Path | None = None
    spec_curve: Path | None = Field(
        None, description="grid_results.csv of `kinship-eval grid`: adds the specification curve"
    )
    sdc_threshold: int = Field(10, ge=1, description="Suppress counts of fewer children")
    sdc_rounding_base: int = Field(5, ge=1, description="Round published counts to this base")
    sdc_zeros_disclosive: bool = False
    pdf: bool = True


class Spec(_Model):
    """A whole analysis specification."""

    name: str = "primary"
    description: str = ""
    data: DataSpec = DataSpec()
    illustrative: IllustrativeSpec = IllustrativeSpec()
    harmonisation: Literal["aggregate", "drop"] = "aggregate"
    period_start: int = Field(2018, ge=1990, le=2100)
    period_end: int = Field(2028, ge=1990, le=2100)
    outcome: str = "sgo_exits_per_10k"
    comparison_group: ComparisonGroup = "all_non_pilot"
    control_group: ControlGroup = "never_treated"
    estimator: Estimator = "twfe"
    inference: Inference = "default"
    reps: int = Field(999, ge=10, le=100_000)
    strata: str | None = Field(None, description="Panel column to stratify randomization within")
    covariates: tuple[str, ...] = ()
    anticipation: int = Field(0, ge=0, le=5)
    level: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 20260227
    event_study: EventStudySpec = EventStudySpec()
    honest: HonestSpec = HonestSpec()
    robustness: RobustnessSpec = RobustnessSpec()
    cba: CBARef = CBARef()
    comparison: ComparisonSpec = ComparisonSpec()
    report: ReportSpec = ReportSpec()

    @field_validator("period_end")
    @classmethod
    def _end_after_start(cls, v: int, info: Any) -> int:
        start = info.data.get("period_start")
        if start is not None and v <= start:
            raise ValueError(f"period_end ({v}) must be after period_start ({start})")
        return v

    def digest(self) -> str:
        """A short hash of the spec (for caching and provenance)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """Read a YAML spec, apply ``key=value`` overrides and validate it.

    Relative paths inside the spec are resolved against the spec file's folder.
    """
    raw, file = read_spec_mapping(path, overrides)
    resolve_paths(raw, file.parent)
    return build_spec(raw, source=str(file))


def read_spec_mapping(
    path: str | Path, overrides: Sequence[str] = (), *, kind: str = "spec"
) -> tuple[dict[str, Any], Path]:
    """Read a YAML spec file of any kind as a mapping and apply ``key=value`` overrides.

    Raises
    ------
    SpecError
        The file is missing, is not valid YAML, or is not a mapping of fields.
    """
    file = Path(path)
    if not file.exists():
        raise SpecError(f"{file}: {kind} file not found")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{file}: a {kind} must be a mapping of fields")
    for item in overrides:
        apply_override(raw, item)
    return raw, file


def resolve_paths(raw: dict[str, Any], folder: Path) -> None:
    """Make the spec's relative file paths absolute, relative to ``folder`` (the spec's)."""

    def absolute(v: Any) -> Any:
        return str((folder / v).resolve()) if isinstance(v, str) and v else v

    if isinstance(raw.get("data"), dict):
        raw["data"] = {k: absolute(v) for k, v in raw["data"].items()}
    for section, key in (("cba", "spec"), ("report", "templates"), ("report", "spec_curve")):
        if isinstance(raw.get(section), dict) and raw[section].get(key):
            raw[section][key] = absolute(raw[section][key])


def build_spec(raw: dict[str, Any], *, source: str = "spec") -> Spec:
    """Validate a spec mapping, turning pydantic's errors into one clear :class:`SpecError`."""
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            ctx = err.get("ctx") or {}
            if "expected" in ctx:
                msg = f"{msg} (valid values: {ctx['expected']})"
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            lines.append(f"{source}: field '{field}': {msg}")
        raise SpecError("\n".join(lines)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override (value parsed as YAML) to a spec mapping."""
    if "=" not in item:
        raise SpecError(f"override {item!r} is not of the form key=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"override {item!r}: '{part}' is not a section")
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
