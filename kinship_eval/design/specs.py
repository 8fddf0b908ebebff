"""The evaluation-design sections of a spec: the comparison group and the power simulation.

Pure pydantic models (no numerical imports), so that the analysis spec
(:class:`kinship_eval.spec.Spec`) can embed :class:`ComparisonSpec` without slowing down
``import kinship_eval.spec``. The methods themselves live in
:mod:`kinship_eval.design.comparison` and :mod:`kinship_eval.design.power`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kinship_eval.errors import SpecError

__all__ = [
    "COMPARISON_METHODS",
    "CONTAMINATION_FLAG",
    "DEFAULT_COVARIATES",
    "DEFAULT_EFFECTS",
    "SELECTION_RULES",
    "ComparisonSpec",
    "PowerSpec",
    "comparison_spec",
]

Feature = Literal["level", "trend"]
#: Comparison-register flag of LAs already paying kinship carers at fostering rates (the same
#: column as :data:`kinship_eval.pipeline.CONTAMINATION_FLAG`).
CONTAMINATION_FLAG = "pays_kinship_allowance_at_fostering_rates"

Method = Literal["all_non_pilot", "exclude_contaminated", "nearest_neighbour", "synthetic"]
COMPARISON_METHODS: tuple[str, ...] = (
    "all_non_pilot",
    "exclude_contaminated",
    "nearest_neighbour",
    "synthetic",
)
DEFAULT_COVARIATES = (
    "cla_31mar_per_10k",
    "cla_starts_per_10k",
    "population_0_17",
    "foster_unit_cost_weekly",
)


class ComparisonSpec(BaseModel):
    """How the comparison group is chosen (a section of the analysis spec).

    Attributes
    ----------
    method
        ``all_non_pilot``, ``exclude_contaminated``, ``nearest_neighbour`` or ``synthetic``.
    exclude
        Boolean flag columns (from the comparison register): comparison LAs flagged true are
        dropped before anything else. ``exclude_contaminated`` implies
        ``pays_kinship_allowance_at_fostering_rates`` when this is empty.
    outcomes, covariates
        Variables whose pre-period ``features`` are matched on (and reported in the balance
        table).
    features
        ``level`` (pre-period mean) and/or ``trend`` (pre-period slope per year).
    pre_periods
        ``[first, last]`` period of the pre-period window; default every period before the
        pilots' first treated period.
    distance
        ``mahalanobis`` or ``propensity`` (nearest-neighbour matching).
    k
        Comparison LAs matched to each pilot.
    replace
        Match with replacement (a comparison LA may serve several pilots).
    caliper
        Largest distance allowed, in standard deviations (see the module notes); ``null`` = none.
    exact
        Columns to match exactly on (e.g. ``[region]``).
    propensity_penalty
        Ridge penalty of the propensity logit; ``null`` = maximum likelihood, falling back to a
        penalty of 1 when the fit separates.
    synthetic_method
        ``sdid`` (synthetic DiD unit weights, with an intercept: they match pre-period paths up to
        a constant) or ``sc`` (synthetic control: levels).
    synthetic_outcome
        Outcome the synthetic weights are fitted to; default the first of ``outcomes``.
    post_periods
        Planned post-periods (sets the SDID regularisation); default the periods in the data from
        the first treated period on, or 1.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "all_non_pilot"
    exclude: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ("sgo_exits_per_10k",)
    covariates: tuple[str, ...] = DEFAULT_COVARIATES
    features: tuple[Feature, ...] = ("level", "trend")
    pre_periods: tuple[int, int] | None = None
    distance: Literal["mahalanobis", "propensity"] = "mahalanobis"
    k: int = Field(1, ge=1, le=50)
    replace: bool = False
    caliper: float | None = Field(None, gt=0)
    exact: tuple[str, ...] = ()
    propensity_penalty: float | None = Field(None, ge=0)
    synthetic_method: Literal["sdid", "sc"] = "sdid"
    synthetic_outcome: str | None = None
    post_periods: int | None = Field(None, ge=1, le=20)

    @model_validator(mode="after")
    def _check(self) -> ComparisonSpec:
        if not self.outcomes and not self.covariates:
            raise ValueError("give at least one outcome or covariate to describe the LAs by")
        if not self.features:
            raise ValueError("give at least one feature (level, trend)")
        if self.pre_periods is not None and self.pre_periods[0] > self.pre_periods[1]:
            raise ValueError("pre_periods must be [first, last] with first <= last")
        return self

    @property
    def exclude_flags(self) -> tuple[str, ...]:
        """Flag columns applied: ``exclude``, or the contamination flag for that method."""
        if self.method == "exclude_contaminated" and not self.exclude:
            return (CONTAMINATION_FLAG,)
        return self.exclude

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.outcomes, *self.covariates)))

    def describe(self) -> str:
        """One line saying how the comparison group was chosen."""
        flags = ", ".join(self.exclude_flags)
        excl = f", excluding LAs flagged {flags}" if flags else ""
        if self.method in ("all_non_pilot", "exclude_contaminated"):
            return "all non-pilot LAs" + excl
        if self.method == "synthetic":
            label = "synthetic DiD" if self.synthetic_method == "sdid" else "synthetic control"
            return f"{label} unit weights" + excl
        parts = [
            f"{self.k}-nearest-neighbour {self.distance} matching",
            "with replacement" if self.replace else "without replacement",
        ]
        if self.caliper is not None:
            parts.append(f"caliper {self.caliper:g} SD")
        if self.exact:
            parts.append(f"exact on {', '.join(self.exact)}")
        return ", ".join(parts) + excl


def comparison_spec(raw: dict[str, Any] | None = None, **fields: Any) -> ComparisonSpec:
    """Validate a comparison spec mapping, with errors naming the field."""
    data = {**(raw or {}), **fields}
    try:
        return ComparisonSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            fld = ".".join(str(p) for p in err["loc"])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"comparison: field '{fld}': {msg}" if fld else f"comparison: {msg}")
        raise SpecError("\n".join(lines)) from None


# ------------------------------------------------------------------------------ power specs
EffectType = Literal["additive", "proportional"]
Selection = Literal["random", "stratified", "actual_regions"]
SELECTION_RULES: tuple[str, ...] = ("random", "stratified", "actual_regions")
PowerInference = Literal[
    "cluster",
    "wild_bootstrap",
    "randomization",
    "default",
    "placebo",
    "jackknife",
    "bootstrap",
    "multiplier",
]
PowerEstimator = Literal[
    "twfe", "event_study", "cs", "sunab", "imputation", "sdid", "sc", "poisson"
]
#: Additive effects (children per 10,000) simulated by default.
DEFAULT_EFFECTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


class PowerSpec(BaseModel):
    """A power specification (``analysis/specs/power.yaml``).

    ``base_spec`` (an analysis spec) supplies the data, harmonisation, comparison group and the
    actual pilot LAs; only its real (not illustrative) years are used. ``data_csv`` replaces it
    with a long LA x year CSV of the user's own. The other fields are the arguments of
    :func:`kinship_eval.design.power.simulate_power`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "power"
    description: str = ""
    base_spec: Path | None = Field(None, description="Analysis spec whose data are used")
    data_csv: Path | None = Field(None, description="Long LA x year CSV used instead")
    unit: str = "la_code"
    time: str = "period"
    strata: str | None = "region"
    outcome: str = "sgo_exits_per_10k"
    periods: tuple[int, int] | None = None
    actual_pilots: tuple[str, ...] | None = None
    exclude_actual_pilots: bool = False
    n_pilot: tuple[int, ...] = (5, 7, 10, 15)
    post_periods: tuple[int, ...] = (1, 2, 3)
    effect_type: EffectType = "additive"
    effects: tuple[float, ...] = DEFAULT_EFFECTS
    selection: Selection = "random"
    estimators: tuple[PowerEstimator, ...] = ("twfe",)
    inference: tuple[PowerInference, ...] = ("cluster", "wild_bootstrap")
    reps: int = Field(500, ge=10, le=100_000)
    bootstrap_reps: int = Field(999, ge=99, le=99_999)
    bootstrap_weights: Literal["webb", "rademacher", "mammen"] = "webb"
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    target_power: float = Field(0.8, gt=0.0, lt=1.0)
    seed: int = 20260227

    @field_validator("n_pilot", "post_periods")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(x < 1 for x in v):
            raise ValueError("give one or more positive whole numbers")
        return v

    @field_validator("effects")
    @classmethod
    def _effects(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(x < 0 for x in v):
            raise ValueError("give one or more effect sizes, zero or positive")
        return v
