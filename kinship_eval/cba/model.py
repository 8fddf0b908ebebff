"""The appraisal model of the kinship allowance pilot: assumptions -> cost and benefit streams.

Logic model
-----------
The pilot pays a weekly allowance at the fostering national minimum allowance (NMA) to special
guardians and child-arrangements-order carers in seven LAs. Its intended effect is more children
leaving care to (or never entering care because of) kinship carers. The difference-in-differences
estimate is an effect on *kinship exits from care per 10,000 children aged 0-17 per year*, so

    additional children in year t = effect x child population of the pilot LAs / 10,000
        x (1 - deadweight)(1 - displacement)(1 - leakage)(1 - substitution)

for each year in which the allowance is paid. Each additional child spends ``duration`` years in a
kinship placement instead of care (the last year pro rata), which avoids the weekly cost of care
(a foster/residential mix) and adds the cost of supporting the kinship placement.

Streams (real prices of the price base year, by ``year_index``; year 0 = ``first_year``)

==================  =======  ==========================================  =====================
component           kind     what                                        counted in
==================  =======  ==========================================  =====================
allowance           cost     recipients x allowance x 52 x (1 + OB)      fiscal (a transfer:
                                                                         nets out otherwise)
administration      cost     admin share x allowance x (1 + OB)          all
set_up              cost     set-up cost in year 0 x (1 + OB)            all
kinship_support     cost     additional child-years x support cost       all
upkeep              cost     additional child-years x cost of a child    economic, social
                             (valued at the NMA) borne by the household
cost_of_funds       cost     marginal excess burden x programme spend    economic, social
avoided_care        benefit  additional child-years x weekly care cost   all
avoided_court       benefit  children diverted from care x court cost    all
employment          benefit  adult employment gap x earnings (off by     social
                             default; low evidence)
==================  =======  ==========================================  =====================

Perspectives: **fiscal** counts cash to central and local government; **economic** counts
resource costs to society, so the allowance (a transfer from taxpayers to kinship households)
nets out, leaving its administration and the cost of raising the funds; **social** adds
monetised outcomes where evidence allows. "£ of benefit per £1 spent" divides each perspective's
PV benefits by the PV of public spending (the fiscal perspective's PV costs), one formulation used
for every perspective, as in the Supporting Families evaluation.

Every default value is data in ``kinship_eval/cba/inputs/`` with its source and evidence strength;
:func:`default_inputs` shows them in the chosen price base year.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kinship_eval.cba._inputs import (
    input_table,
    outcome_value,
    pilot_parameter,
    unit_cost,
)
from kinship_eval.cba.appraisal import AppraisalResults, _clean, appraise
from kinship_eval.cba.discounting import DiscountSchedule
from kinship_eval.cba.prices import default_deflators, financial_year, shift_year

PERSPECTIVES = ("fiscal", "economic", "social")
DEFAULT_PRICE_BASE_YEAR = "2025-26"
NMA_YEAR = "2025-26"
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Component:
    """One cost or benefit stream and the perspectives that count it."""

    kind: Literal["cost", "benefit"]
    perspectives: tuple[str, ...]
    description: str


COMPONENTS: dict[str, Component] = {
    "allowance": Component(
        "cost", ("fiscal",), "Kinship allowance payments (a transfer to kinship households)"
    ),
    "administration": Component("cost", PERSPECTIVES, "Administration of the allowance"),
    "set_up": Component("cost", PERSPECTIVES, "Set-up costs (year 0)"),
    "kinship_support": Component(
        "cost", PERSPECTIVES, "LA support for additional kinship placements outside care"
    ),
    "upkeep": Component(
        "cost",
        ("economic", "social"),
        "Cost of a child's upkeep borne by the kinship household (valued at the NMA)",
    ),
    "cost_of_funds": Component(
        "cost", ("economic", "social"), "Marginal excess burden of raising the public funds"
    ),
    "avoided_care": Component("benefit", PERSPECTIVES, "Avoided looked-after placement costs"),
    "avoided_court": Component(
        "benefit", PERSPECTIVES, "Avoided court costs for children diverted from care"
    ),
    "employment": Component(
        "benefit", ("social",), "Adult employment of children raised in kinship care (low evidence)"
    ),
}
TRANSFERS: dict[str, tuple[str, ...]] = {"allowance": ("economic", "social")}


# ---------------------------------------------------------------------- input values
@dataclass(frozen=True)
class InputValue:
    """A default input value with its range, distribution and provenance."""

    value: float
    low: float | None = None
    high: float | None = None
    distribution: str = "fixed"
    unit: str = ""
    source: str = ""
    evidence: str = ""
    note: str = ""


PARAMETER_LABELS: dict[str, str] = {
    "effect.estimate": "Effect: additional kinship exits per 10,000 children a year",
    "diverted_entries_per_10k": "Children diverted from care per 10,000 a year",
    "child_population": "Children aged 0-17 in the pilot LAs",
    "recipients": "Children receiving the allowance each year",
    "allowance_per_week": "Allowance per child per week (£)",
    "upkeep_per_week": "Cost of a child's upkeep per week (£)",
    "weeks_per_year": "Weeks per year",
    "admin_share": "Administration cost (share of allowance)",
    "setup_cost": "Set-up cost (£, year 0)",
    "duration_exit_years": "Years of care avoided per additional exit",
    "duration_entry_years": "Years of care avoided per diverted entry",
    "foster_cost_per_week": "Foster care cost per child per week (£)",
    "residential_cost_per_week": "Residential care cost per child per week (£)",
    "residential_share": "Share of avoided care that is residential",
    "kinship_support_per_week": "Support for a kinship placement per week (£)",
    "court_cost_per_entry": "Court costs avoided per diverted entry (£)",
    "cost_of_funds": "Marginal excess burden of public funds",
    "optimism_bias.allowance_payments": "Optimism bias: allowance payments",
    "optimism_bias.administration": "Optimism bias: administration",
    "optimism_bias.set_up": "Optimism bias: set-up",
    "additionality.deadweight": "Deadweight",
    "additionality.displacement": "Displacement",
    "additionality.leakage": "Leakage",
    "additionality.substitution": "Substitution",
    "social.employment_rate_kinship": "Adult employment rate: kinship care",
    "social.employment_rate_foster": "Adult employment rate: foster care",
    "social.employment_rate_residential": "Adult employment rate: residential care",
    "social.annual_earnings": "Annual earnings of an employed adult (£)",
    "social.causal_share": "Share of the employment gap caused by placement type",
    "social.years_to_adulthood": "Years until adulthood",
    "social.working_years": "Working years valued",
}


def _row_value(row: pd.Series, col: str) -> float | None:
    v = row.get(col)
    return None if v is None or pd.isna(v) else float(v)


def _from_pilot(name: str) -> InputValue:
    r = pilot_parameter(name)
    return InputValue(
        float(r["value"]),
        _row_value(r, "low"),
        _row_value(r, "high"),
        str(r["distribution"]),
        str(r["unit"]),
        str(r["source"]),
        str(r["evidence"]),
        "" if pd.isna(r["note"]) else str(r["note"]),
    )


def _scaled(v: float | None, f: float) -> float | None:
    return None if v is None else v * f


def _ranged_inputs(
    file: str, index: str, keys: tuple[str, ...], *, value: str, unit: str
) -> dict[str, InputValue]:
    """Fixed inputs with a sensitivity range from the rows ``keys`` of an input table with
    ``low``, ``high``, ``source``, ``evidence`` and ``rationale`` columns, keyed
    ``<file stem>.<key>``."""
    rows = input_table(file).set_index(index)
    prefix = Path(file).stem
    return {
        f"{prefix}.{key}": InputValue(
            float(rows.at[key, value]),
            float(rows.at[key, "low"]),
            float(rows.at[key, "high"]),
            "fixed",
            unit,
            str(rows.at[key, "source"]),
            str(rows.at[key, "evidence"]),
            str(rows.at[key, "rationale"]),
        )
        for key in keys
    }


@lru_cache(maxsize=16)
def _default_inputs(base: str) -> dict[str, InputValue]:
    defl = default_deflators()
    out: dict[str, InputValue] = {}
    for name in (
        "recipients",
        "admin_share",
        "setup_cost",
        "duration_exit_years",
        "duration_entry_years",
        "residential_share",
        "diverted_entries_per_10k",
        "weeks_per_year",
    ):
        out[name] = _from_pilot(name)
    out["effect.estimate"] = _from_pilot("effect_estimate")
    out["effect.se"] = _from_pilot("effect_se")

    las = input_table("pilot_las.csv")
    las_src = "pilot_las.csv: " + str(las["source"].iloc[0])
    out["child_population"] = InputValue(
        float(las["population_0_17"].sum()),
        unit="children aged 0-17",
        source="ONS mid-year population estimates 2024, sum over the seven pilot LAs",
        evidence="high (official statistics)",
    )
    cla = las["children_looked_after_2025"].to_numpy(float)
    f24 = defl.factor("2024-25", base)
    for name, col, label in (
        ("foster_cost_per_week", "fostering_unit_cost_2024_25", "FosteringFinance"),
        ("residential_cost_per_week", "residential_unit_cost_2024_25", "RescareFinance"),
    ):
        costs = las[col].to_numpy(float)
        out[name] = InputValue(
            float(np.average(costs, weights=cla)) * f24,
            float(costs.min()) * f24,
            float(costs.max()) * f24,
            "triangular",
            f"£ per child per week, {base} prices",
            f"DfE S251 outturn 2024-25 (LAIT {label}) for the pilot LAs, weighted by children "
            f"looked after at 31 March 2025; range = lowest and highest pilot LA; {las_src}",
            "high (official statistics; approximate unit costs)",
            "Uprated from 2024-25 with the GDP deflator.",
        )

    # Allowance: NMA 2025-26 by area and age, weighted by the pilot LAs' child population by
    # NMA area and by the assumed age mix of children in paid kinship placements.
    rates = input_table("allowance_rates.csv")
    rates = rates.loc[rates["financial_year"] == NMA_YEAR]
    pivot = rates.pivot(index="area", columns="age_band", values="gbp_per_week").astype(float)
    area_w = las.groupby("nma_area")["population_0_17"].sum()
    area_w = area_w / area_w.sum()
    mix = input_table("age_mix.csv").set_index("age_band")["share"].astype(float)
    mix = mix / mix.sum()
    by_area = pivot[mix.index].to_numpy() @ mix.to_numpy()
    w = area_w.reindex(pivot.index).fillna(0.0).to_numpy()
    f_nma = defl.factor(NMA_YEAR, base)
    nma = float(w @ by_area) * f_nma
    nma_low = float(w @ pivot["3-4"].to_numpy()) * f_nma
    nma_high = float(w @ pivot["11-15"].to_numpy()) * f_nma
    nma_src = (
        "Fostering NMA 2025-26 (allowance_rates.csv) weighted by the pilot LAs' child population "
        "by NMA area and the assumed age mix (age_mix.csv); range = area-weighted rates for ages "
        "3-4 and 11-15"
    )
    out["allowance_per_week"] = InputValue(
        nma,
        nma_low,
        nma_high,
        "triangular",
        f"£ per child per week, {base} prices",
        nma_src,
        "medium (official rates; assumed age mix)",
    )
    out["upkeep_per_week"] = InputValue(
        nma,
        nma_low,
        nma_high,
        "triangular",
        f"£ per child per week, {base} prices",
        "The NMA is set to cover the cost of caring for a child; " + nma_src,
        "medium (proxy)",
        "Resource cost of the child's upkeep, borne by the kinship household instead of the LA.",
    )

    sw = unit_cost("social_worker_hour")
    hours = unit_cost("kinship_support_hours_per_week")
    f_sw = defl.factor(sw["price_year"], base)
    out["kinship_support_per_week"] = InputValue(
        float(hours["value"]) * float(sw["value"]) * f_sw,
        float(hours["low"]) * float(sw["low"]) * f_sw,
        float(hours["high"]) * float(sw["high"]) * f_sw,
        "triangular",
        f"£ per child per week, {base} prices",
        f"{hours['value']} social worker hours a week ({hours['source']}) x {sw['source']}",
        "low (assumption x unit cost)",
    )
    court = unit_cost("court_costs_care_case")
    out["court_cost_per_entry"] = InputValue(
        0.0,
        0.0,
        float(court["value"]) * defl.factor(court["price_year"], base),
        "fixed",
        f"£ per diverted entry, {base} prices",
        f"{court['source']} ({court['price_year']}); 0 by default",
        str(court["evidence"]),
        str(court["note"]),
    )
    cpf = input_table("cost_of_public_funds.csv").iloc[0]
    out["cost_of_funds"] = InputValue(
        float(cpf["default"]),
        0.0,
        float(cpf["sensitivity"]),
        "fixed",
        "share of programme spending",
        str(cpf["source"]),
        str(cpf["evidence"]),
        str(cpf["rationale"]),
    )
    out |= _ranged_inputs(
        "optimism_bias.csv",
        "category",
        ("allowance_payments", "administration", "set_up"),
        value="uplift",
        unit="uplift on costs",
    )
    out |= _ranged_inputs(
        "additionality.csv",
        "factor",
        ("deadweight", "displacement", "leakage", "substitution"),
        value="default",
        unit="share of the gross effect",
    )
    for key, item, dist in (
        ("social.employment_rate_kinship", "employment_rate_kinship", "fixed"),
        ("social.employment_rate_foster", "employment_rate_foster", "fixed"),
        ("social.employment_rate_residential", "employment_rate_residential", "fixed"),
        ("social.annual_earnings", "annual_earnings", "triangular"),
        ("social.causal_share", "employment_causal_share", "triangular"),
        ("social.years_to_adulthood", "years_to_adulthood", "fixed"),
        ("social.working_years", "working_years_valued", "fixed"),
    ):
        r = outcome_value(item)
        f = 1.0 if pd.isna(r["price_year"]) else defl.factor(r["price_year"], base)
        out[key] = InputValue(
            float(r["value"]) * f,
            _scaled(_row_value(r, "low"), f),
            _scaled(_row_value(r, "high"), f),
            dist,
            str(r["unit"]),
            str(r["source"]),
            str(r["evidence"]),
            "" if pd.isna(r["note"]) else str(r["note"]),
        )
    return out


def default_inputs(price_base_year: str | int = DEFAULT_PRICE_BASE_YEAR) -> dict[str, InputValue]:
    """Every default input of the pilot appraisal, in ``price_base_year`` real prices.

    Keys are the parameter names used by :mod:`kinship_eval.cba.sensitivity` (dotted for nested
    assumptions, e.g. ``effect.estimate``, ``optimism_bias.administration``).
    """
    return dict(_default_inputs(financial_year(price_base_year)))


def _default(key: str) -> float:
    return _default_inputs(DEFAULT_PRICE_BASE_YEAR)[key].value


# ---------------------------------------------------------------------- assumptions
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """Range of an uncertain input for sensitivity analysis and Monte Carlo.

    ``distribution`` is ``triangular`` (mode = the central value), ``uniform`` or ``fixed``
    (used for one-way sensitivity and switching values only, not drawn in Monte Carlo).
    """

    low: float
    high: float
    distribution: Literal["triangular", "uniform", "fixed"] = "triangular"

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        return self


class EffectInput(_Model):
    """The effect of the allowance on kinship exits from care.

    Attributes
    ----------
    estimate
        Additional children leaving care to kinship carers (SGO/CAO) per 10,000 children aged 0-17
        per year: the DiD ATT on ``kinship_exits_per_10k``, or an assumed value for ex-ante work.
    se
        Its standard error (Monte Carlo draws the effect from ``Normal(estimate, se)``).
    ci_low, ci_high
        Confidence interval (default ``estimate -/+ 1.96 se``); the tornado uses it.
    draws
        Optional bootstrap draws of the effect; Monte Carlo resamples these instead of the normal.
    source
        Where the number comes from.
    illustrative
        True for assumed, illustrative values (flagged in every output).
    """

    estimate: float = Field(default_factory=lambda: _default("effect.estimate"))
    se: float = Field(default_factory=lambda: _default("effect.se"), ge=0)
    ci_low: float | None = None
    ci_high: float | None = None
    draws: tuple[float, ...] | None = None
    source: str = "ILLUSTRATIVE assumption (about +20% on the pilot LAs' baseline kinship exits)"
    illustrative: bool = True

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The confidence interval used for the one-way sensitivity."""
        if self.ci_low is not None and self.ci_high is not None:
            return (self.ci_low, self.ci_high)
        from scipy import stats

        z = float(stats.norm.ppf(0.5 + level / 2))
        return (self.estimate - z * self.se, self.estimate + z * self.se)

    @classmethod
    def from_did(
        cls,
        results: Any,
        *,
        draws: npt.ArrayLike | None = None,
        source: str | None = None,
    ) -> EffectInput:
        """Take the effect and its uncertainty from a DiD results object.

        Parameters
        ----------
        results
            A :class:`kinship_eval.did.results.DiDResults` (or anything with ``att``, ``se`` and
            optionally ``ci_low``, ``ci_high``, ``estimator``, ``outcome``), or a mapping with the
            keys of ``kinship-eval estimate --json``.
        draws
            Optional bootstrap draws of the ATT.
        source
            Description; by default built from the estimator and outcome.
        """
        get = results.get if isinstance(results, Mapping) else lambda k: getattr(results, k, None)
        att, se = get("att"), get("se")
        if att is None or not math.isfinite(float(att)):
            raise ValueError("the DiD result has no finite 'att'")
        se_f = float(se) if se is not None and math.isfinite(float(se)) else 0.0
        lo, hi = get("ci_low"), get("ci_high")
        finite = lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)
        desc = source or (
            f"DiD estimate ({get('estimator') or 'estimator not stated'}) on "
            f"{get('outcome') or 'outcome not stated'}"
        )
        return cls(
            estimate=float(att),
            se=se_f,
            ci_low=float(lo) if finite else None,
            ci_high=float(hi) if finite else None,
            draws=None if draws is None else tuple(float(x) for x in np.ravel(draws)),
            source=desc,
            illustrative=False,
        )


class OptimismBias(_Model):
    """Optimism bias uplifts on costs (none on benefits; see ``inputs/optimism_bias.csv``)."""

    allowance_payments: float = Field(
        default_factory=lambda: _default("optimism_bias.allowance_payments"), ge=0
    )
    administration: float = Field(
        default_factory=lambda: _default("optimism_bias.administration"), ge=0
    )
    set_up: float = Field(default_factory=lambda: _default("optimism_bias.set_up"), ge=0)


class Additionality(_Model):
    """Additionality adjustments to the effect (HCA Additionality Guide).

    With a DiD effect the comparison group supplies the reference case, so deadweight is 0.
    """

    deadweight: float = Field(
        default_factory=lambda: _default("additionality.deadweight"), ge=0, le=1
    )
    displacement: float = Field(
        default_factory=lambda: _default("additionality.displacement"), ge=0, le=1
    )
    leakage: float = Field(default_factory=lambda: _default("additionality.leakage"), ge=0, le=1)
    substitution: float = Field(
        default_factory=lambda: _default("additionality.substitution"), ge=0, le=1
    )

    @property
    def net_share(self) -> float:
        """Share of the gross effect that is additional."""
        return (
            (1 - self.deadweight)
            * (1 - self.displacement)
            * (1 - self.leakage)
            * (1 - self.substitution)
        )


class SocialOutcomes(_Model):
    """Monetised outcomes for the social perspective (off by default: low evidence).

    Employment: adults who grew up in kinship care are more often employed (69%) than those who grew
    up in foster (59%) or residential care (48%) - a descriptive gap, not a causal effect, so only
    ``causal_share`` of it is valued, at ``annual_earnings`` a year for ``working_years`` years
    starting ``years_to_adulthood`` years after the child leaves care.
    """

    enabled: bool = False
    employment_rate_kinship: float = Field(
        default_factory=lambda: _default("social.employment_rate_kinship"), ge=0, le=1
    )
    employment_rate_foster: float = Field(
        default_factory=lambda: _default("social.employment_rate_foster"), ge=0, le=1
    )
    employment_rate_residential: float = Field(
        default_factory=lambda: _default("social.employment_rate_residential"), ge=0, le=1
    )
    annual_earnings: float | None = Field(None, ge=0, description="£ a year, base-year prices")
    causal_share: float = Field(default_factory=lambda: _default("social.causal_share"), ge=0, le=1)
    years_to_adulthood: float = Field(
        default_factory=lambda: _default("social.years_to_adulthood"), ge=0
    )
    working_years: float = Field(default_factory=lambda: _default("social.working_years"), ge=0)
    evidence: str = "low (descriptive association; not a causal estimate)"


# Top-level monetary inputs filled from the bundled data in the chosen price base year.
_PRICE_DEPENDENT = (
    "allowance_per_week",
    "upkeep_per_week",
    "foster_cost_per_week",
    "residential_cost_per_week",
    "kinship_support_per_week",
)
_PRICE_FREE = (
    "child_population",
    "recipients",
    "admin_share",
    "setup_cost",
    "duration_exit_years",
    "duration_entry_years",
    "residential_share",
    "diverted_entries_per_10k",
    "weeks_per_year",
    "court_cost_per_entry",
    "cost_of_funds",
)


class CBAAssumptions(_Model):
    """Everything the pilot appraisal assumes, validated.

    Omitted values are filled from the bundled input files (``kinship_eval/cba/inputs/``),
    converted to ``price_base_year`` prices with the GDP deflator; :meth:`table` lists every value
    with its range, source and evidence strength.

    Attributes
    ----------
    price_base_year
        Real prices of this financial year (Green Book: the first year of the proposal).
    first_year
        Financial year of ``year_index`` 0 (undiscounted).
    horizon_years
        Years appraised (``year_index`` 0..horizon_years - 1).
    discount_schedule
        Name of a bundled schedule: ``standard`` (STPR), ``health``, ``long_horizon_test``.
    payment_years
        ``year_index`` values in which the allowance is paid (default 1-3 = 2026-27 to 2028-29;
        2025-26 is the announcement year).
    effect_years
        Years in which the allowance changes kinship exits (default: the payment years).
    recipients
        Children receiving the allowance in each payment year (about 5,000).
    allowance_per_week
        Average allowance per child per week (NMA by area and age mix).
    admin_share
        Administration cost as a share of allowance payments.
    cost_of_funds
        Marginal excess burden of taxation on programme spending (default 0, as the Green Book
        does not generally include it; 0.2 as a sensitivity).
    effect
        The effect on kinship exits (from the DiD, or assumed).
    diverted_entries_per_10k
        Children diverted from entering care per 10,000 a year (default 0: no estimate yet).
    duration_exit_years, duration_entry_years
        Years of care avoided per additional child.
    foster_cost_per_week, residential_cost_per_week, residential_share
        Weekly cost of the care avoided (a foster/residential mix).
    kinship_support_per_week
        Cost to the LA of supporting a kinship placement outside care.
    upkeep_per_week
        Resource cost of a child's upkeep borne by the kinship household (economic perspective).
    ranges
        Overrides of the default ranges used by sensitivity analysis and Monte Carlo.
    """

    name: str = "Kinship allowance pilot"
    price_base_year: str = DEFAULT_PRICE_BASE_YEAR
    first_year: str = DEFAULT_PRICE_BASE_YEAR
    horizon_years: int = Field(30, ge=1, le=300)
    discount_schedule: str = "standard"
    n_pilot_las: int = Field(7, ge=1)
    child_population: float = Field(gt=0)
    payment_years: tuple[int, ...] = (1, 2, 3)
    effect_years: tuple[int, ...] | None = None
    recipients: float = Field(ge=0)
    allowance_per_week: float = Field(ge=0)
    upkeep_per_week: float = Field(ge=0)
    weeks_per_year: float = Field(gt=0, le=53)
    admin_share: float = Field(ge=0)
    setup_cost: float = Field(ge=0)
    effect: EffectInput = Field(default_factory=EffectInput)
    diverted_entries_per_10k: float
    duration_exit_years: float = Field(ge=0)
    duration_entry_years: float = Field(ge=0)
    foster_cost_per_week: float = Field(ge=0)
    residential_cost_per_week: float = Field(ge=0)
    residential_share: float = Field(ge=0, le=1)
    kinship_support_per_week: float = Field(ge=0)
    court_cost_per_entry: float = Field(ge=0)
    cost_of_funds: float = Field(ge=0)
    optimism_bias: OptimismBias = Field(default_factory=OptimismBias)
    additionality: Additionality = Field(default_factory=Additionality)
    social: SocialOutcomes = Field(default_factory=SocialOutcomes)
    ranges: dict[str, Range] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        base = financial_year(data.get("price_base_year") or DEFAULT_PRICE_BASE_YEAR)
        data["price_base_year"] = base
        data["first_year"] = financial_year(data.get("first_year") or base)
        defaults = _default_inputs(base)
        for key in (*_PRICE_DEPENDENT, *_PRICE_FREE):
            if data.get(key) is None:
                data[key] = defaults[key].value
        social = data.get("social")
        if isinstance(social, SocialOutcomes):
            social = social.model_dump()
        if social is None or isinstance(social, dict):
            social = dict(social or {})
            if social.get("annual_earnings") is None:
                social["annual_earnings"] = defaults["social.annual_earnings"].value
            data["social"] = social
        return data

    @field_validator("discount_schedule")
    @classmethod
    def _known_schedule(cls, v: str) -> str:
        DiscountSchedule.load(v)  # raises InputError listing the known schedules
        return v

    @model_validator(mode="after")
    def _years_in_horizon(self) -> CBAAssumptions:
        for label, years in (("payment_years", self.payment_years), ("effect_years", self.years)):
            bad = [y for y in years if y < 0 or y >= self.horizon_years]
            if bad:
                raise ValueError(
                    f"{label} {bad} fall outside the horizon (0..{self.horizon_years - 1})"
                )
        unknown = sorted(set(self.ranges) - set(PARAMETER_LABELS))
        if unknown:
            raise ValueError(f"ranges for unknown parameters: {', '.join(unknown)}")
        return self

    # ------------------------------------------------------------------ conveniences
    @property
    def years(self) -> tuple[int, ...]:
        """Years in which the effect applies."""
        return self.payment_years if self.effect_years is None else self.effect_years

    @classmethod
    def from_did(cls, results: Any, **overrides: Any) -> CBAAssumptions:
        """Assumptions with the effect from a DiD result (see :meth:`EffectInput.from_did`)."""
        draws = overrides.pop("effect_draws", None)
        return cls(effect=EffectInput.from_did(results, draws=draws), **overrides)

    def with_values(self, **values: Any) -> CBAAssumptions:
        """A validated copy with some values changed; dotted names reach nested models."""
        data = self.model_dump()
        for key, value in values.items():
            node = data
            parts = key.split("__") if "__" in key else key.split(".")
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = value
        return CBAAssumptions.model_validate(data)

    def parameters(self) -> dict[str, float]:
        """The numeric inputs, flattened to the dotted names of :data:`PARAMETER_LABELS`."""
        out: dict[str, float] = {}
        for key in PARAMETER_LABELS:
            node: Any = self
            for part in key.split("."):
                node = getattr(node, part)
            out[key] = float(node)
        return out

    def range_for(self, name: str) -> Range | None:
        """The range of one input: an explicit override, else the bundled default.

        The effect's range is its confidence interval (drawn from its sampling distribution in
        Monte Carlo). A default range that does not contain the current value is widened to it.
        """
        if name in self.ranges:
            return self.ranges[name]
        value = self.parameters()[name]
        if name == "effect.estimate":
            lo, hi = self.effect.interval()
            return Range(low=min(lo, value), high=max(hi, value), distribution="fixed")
        d = _default_inputs(self.price_base_year).get(name)
        if d is None or d.low is None or d.high is None:
            return None
        dist = d.distribution if d.distribution in ("triangular", "uniform") else "fixed"
        return Range(low=min(d.low, value), high=max(d.high, value), distribution=dist)

    def table(self) -> pd.DataFrame:
        """Every numeric input with its range, distribution, unit, source and evidence."""
        defaults = _default_inputs(self.price_base_year)
        params = self.parameters()
        rows = []
        for key, label in PARAMETER_LABELS.items():
            d = defaults.get(key)
            rng = self.range_for(key)
            changed = d is not None and not math.isclose(params[key], d.value, rel_tol=1e-12)
            source = d.source if d is not None else ""
            if key == "effect.estimate":
                source = self.effect.source
            elif changed:
                source = "set in the appraisal spec"
            rows.append(
                {
                    "parameter": key,
                    "label": label,
                    "value": params[key],
                    "low": None if rng is None else rng.low,
                    "high": None if rng is None else rng.high,
                    "distribution": None if rng is None else rng.distribution,
                    "unit": d.unit if d is not None else "",
                    "source": source,
                    "evidence": (
                        ("illustrative" if self.effect.illustrative else "DiD estimate")
                        if key == "effect.estimate"
                        else (d.evidence if d is not None else "")
                    ),
                }
            )
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------- the vectorised engine
@dataclass(frozen=True)
class Structure:
    """The non-numeric settings of a model run (years, horizon, discount factors)."""

    horizon: int
    payment_mask: Array
    effect_mask: Array
    social: bool
    factors: Array

    @classmethod
    def of(cls, a: CBAAssumptions) -> Structure:
        t = a.horizon_years
        pay = np.zeros(t)
        pay[list(a.payment_years)] = 1.0
        eff = np.zeros(t)
        eff[list(a.years)] = 1.0
        return cls(
            t, pay, eff, a.social.enabled, DiscountSchedule.load(a.discount_schedule).factors(t)
        )


def _lagged(x: Array, w: Array) -> Array:
    """``out[:, s] = sum_{k <= s} x[:, s - k] * w[:, k]`` (cohorts x lag weights)."""
    t = x.shape[1]
    out = np.zeros(np.broadcast_shapes(x.shape, w.shape))
    for k in range(t):
        out[:, k:] += x[:, : t - k] * w[:, k : k + 1]
    return out


def compute_streams(
    params: Mapping[str, float | npt.ArrayLike], structure: Structure
) -> dict[str, Array]:
    """Undiscounted streams by component, vectorised over draws.

    Parameters
    ----------
    params
        The inputs keyed as :meth:`CBAAssumptions.parameters`; each a scalar or a 1-D array of
        draws (all arrays the same length).
    structure
        Years and discount factors (:meth:`Structure.of`).

    Returns
    -------
    dict
        Component name -> array (n_draws, horizon), plus ``additional_exits``,
        ``diverted_entries`` and ``child_years`` (the counts behind the money).
    """

    def p(key: str) -> Array:
        return np.asarray(params[key], dtype=float).reshape(-1, 1)

    t = structure.horizon
    lags = np.arange(t, dtype=float)[None, :]
    pay = structure.payment_mask[None, :]
    eff = structure.effect_mask[None, :]
    year0 = np.zeros((1, t))
    year0[0, 0] = 1.0

    net = (
        (1 - p("additionality.deadweight"))
        * (1 - p("additionality.displacement"))
        * (1 - p("additionality.leakage"))
        * (1 - p("additionality.substitution"))
    )
    per10k = p("child_population") / 10_000 * net
    exits = p("effect.estimate") * per10k * eff
    entries = p("diverted_entries_per_10k") * per10k * eff
    w_exit = np.clip(p("duration_exit_years") - lags, 0.0, 1.0)
    w_entry = np.clip(p("duration_entry_years") - lags, 0.0, 1.0)
    child_years = _lagged(exits, w_exit) + _lagged(entries, w_entry)

    weeks = p("weeks_per_year")
    res = p("residential_share")
    care_pw = (1 - res) * p("foster_cost_per_week") + res * p("residential_cost_per_week")
    allowance_base = p("recipients") * p("allowance_per_week") * weeks * pay
    allowance = allowance_base * (1 + p("optimism_bias.allowance_payments"))
    administration = p("admin_share") * allowance_base * (1 + p("optimism_bias.administration"))
    set_up = p("setup_cost") * (1 + p("optimism_bias.set_up")) * year0

    out = {
        "allowance": allowance,
        "administration": administration,
        "set_up": set_up,
        "kinship_support": child_years * p("kinship_support_per_week") * weeks,
        "upkeep": child_years * p("upkeep_per_week") * weeks,
        "cost_of_funds": p("cost_of_funds") * (allowance + administration + set_up),
        "avoided_care": child_years * care_pw * weeks,
        "avoided_court": entries * p("court_cost_per_entry"),
    }
    if structure.social:
        gap = p("social.employment_rate_kinship") - (
            (1 - res) * p("social.employment_rate_foster")
            + res * p("social.employment_rate_residential")
        )
        start = p("social.years_to_adulthood")
        window = ((lags >= start) & (lags < start + p("social.working_years"))).astype(float)
        per_child = gap * p("social.causal_share") * p("social.annual_earnings")
        out["employment"] = _lagged(exits + entries, window) * per_child
    else:
        out["employment"] = np.zeros((1, t))
    shape = np.broadcast_shapes(
        *(v.shape for v in out.values()), exits.shape, entries.shape, child_years.shape
    )
    out = {k: np.broadcast_to(v, shape).astype(float) for k, v in out.items()}
    out["additional_exits"] = np.broadcast_to(exits, shape).astype(float)
    out["diverted_entries"] = np.broadcast_to(entries, shape).astype(float)
    out["child_years"] = np.broadcast_to(child_years, shape).astype(float)
    return out


def perspective_values(streams: Mapping[str, Array], factors: Array) -> dict[str, dict[str, Array]]:
    """PV costs, PV benefits, NPSV, BCR and PV of public spending per perspective (vectorised)."""
    pv = {name: streams[name] @ factors for name in COMPONENTS}
    public = sum(
        pv[n] for n, c in COMPONENTS.items() if c.kind == "cost" and "fiscal" in c.perspectives
    )
    out: dict[str, dict[str, Array]] = {}
    for persp in PERSPECTIVES:
        costs = sum(
            pv[n] for n, c in COMPONENTS.items() if c.kind == "cost" and persp in c.perspectives
        )
        benefits = sum(
            pv[n] for n, c in COMPONENTS.items() if c.kind == "benefit" and persp in c.perspectives
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            bcr = np.where(costs != 0, benefits / np.where(costs != 0, costs, 1.0), np.nan)
            per_pound = np.where(public != 0, benefits / np.where(public != 0, public, 1.0), np.nan)
        out[persp] = {
            "pv_costs": costs,
            "pv_benefits": benefits,
            "npsv": benefits - costs,
            "bcr": bcr,
            "benefit_per_pound_spent": per_pound,
            "pv_public_spending": public,
        }
    return out


def evaluate(
    assumptions: CBAAssumptions,
    params: Mapping[str, float | npt.ArrayLike] | None = None,
) -> dict[str, dict[str, Array]]:
    """Perspective values for ``assumptions`` with some inputs replaced by ``params``.

    ``params`` may hold arrays of draws (Monte Carlo) or alternative scalar values (sensitivity).
    """
    structure = Structure.of(assumptions)
    merged: dict[str, Any] = assumptions.parameters()
    if params:
        unknown = sorted(set(params) - set(merged))
        if unknown:
            raise KeyError(f"unknown parameters: {', '.join(unknown)}")
        merged.update(params)
    return perspective_values(compute_streams(merged, structure), structure.factors)


# ---------------------------------------------------------------------- deterministic results
@dataclass
class CBAResults:
    """The appraisal of the pilot from three perspectives.

    Attributes
    ----------
    assumptions
        The validated assumptions.
    perspectives
        ``fiscal``, ``economic`` and ``social`` :class:`AppraisalResults`.
    streams
        Long table of undiscounted flows: ``year_index, financial_year, component, kind, amount``.
    children
        ``year_index, additional_exits, diverted_entries, child_years`` (net of additionality).
    """

    assumptions: CBAAssumptions
    perspectives: dict[str, AppraisalResults]
    streams: pd.DataFrame
    children: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def pv_public_spending(self) -> float:
        """PV of public spending: the fiscal perspective's PV costs."""
        return self.perspectives["fiscal"].pv_costs

    def benefit_per_pound_spent(self, perspective: str = "economic") -> float:
        """£ of ``perspective`` benefits per £1 of public spending (PV)."""
        spend = self.pv_public_spending
        return self.perspectives[perspective].pv_benefits / spend if spend else math.nan

    @property
    def fiscal_return(self) -> float:
        """£ of fiscal savings per £1 of public spending (the fiscal BCR)."""
        return self.perspectives["fiscal"].bcr

    @property
    def payback_year(self) -> int | None:
        """Fiscal payback: first ``year_index`` from which cumulative discounted net cash stays
        >= 0 (``None`` if not within the horizon)."""
        return self.perspectives["fiscal"].payback_year

    def flows(self) -> pd.DataFrame:
        """The flows as a table for :func:`~kinship_eval.cba.appraisal.appraise` (all perspectives),
        i.e. the input format of ``kinship-eval appraise --flows``."""
        rows = []
        for persp in PERSPECTIVES:
            for name, comp in COMPONENTS.items():
                if persp not in comp.perspectives:
                    continue
                sub = self.streams.loc[self.streams["component"] == name]
                rows.append(
                    pd.DataFrame(
                        {
                            "year_index": sub["year_index"].to_numpy(),
                            "kind": comp.kind,
                            "amount": sub["amount"].to_numpy(),
                            "perspective": persp,
                            "item": name,
                        }
                    )
                )
        return pd.concat(rows, ignore_index=True)

    def to_frame(self) -> pd.DataFrame:
        """One row per perspective: PV costs, PV benefits, NPSV, BCR, £ per £1 spent, payback."""
        rows = []
        for persp, res in self.perspectives.items():
            rows.append(
                {
                    "perspective": persp,
                    "pv_costs": res.pv_costs,
                    "pv_benefits": res.pv_benefits,
                    "npsv": res.npsv,
                    "bcr": res.bcr,
                    "benefit_per_pound_spent": self.benefit_per_pound_spent(persp),
                    "payback_year": res.payback_year,
                }
            )
        frame = pd.DataFrame(rows)
        frame["payback_year"] = frame["payback_year"].astype("Int64")
        return frame

    tidy = to_frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly results (headline values per perspective, children, assumptions)."""
        a = self.assumptions
        payback = self.payback_year
        return {
            "name": a.name,
            "price_base_year": a.price_base_year,
            "first_year": a.first_year,
            "discount_schedule": a.discount_schedule,
            "horizon_years": a.horizon_years,
            "effect": {
                "estimate": a.effect.estimate,
                "se": a.effect.se,
                "source": a.effect.source,
                "illustrative": a.effect.illustrative,
            },
            "perspectives": {
                p: {
                    **{k: _clean(v) for k, v in res.to_dict(by_year=False).items()},
                    "benefit_per_pound_spent": _clean(self.benefit_per_pound_spent(p)),
                }
                for p, res in self.perspectives.items()
            },
            "pv_public_spending": _clean(self.pv_public_spending),
            "fiscal_return": _clean(self.fiscal_return),
            "payback_year": payback,
            "payback_financial_year": None
            if payback is None
            else shift_year(a.first_year, payback),
            "additional_children": _clean(
                float(self.children["additional_exits"].sum())
                + float(self.children["diverted_entries"].sum())
            ),
            "child_years_in_kinship": _clean(float(self.children["child_years"].sum())),
            "notes": list(self.notes),
        }

    def headline(self, perspective: str = "economic") -> str:
        """One sentence: £X of benefit per £1 spent, flagged when the effect is illustrative."""
        ratio = self.benefit_per_pound_spent(perspective)
        flag = " (ILLUSTRATIVE effect)" if self.assumptions.effect.illustrative else ""
        return (
            f"£{ratio:.2f} of {perspective} benefit per £1 of public spending; "
            f"{perspective} NPSV £{self.perspectives[perspective].npsv / 1e6:,.1f}m "
            f"({self.assumptions.price_base_year} prices, present value){flag}."
        )

    def summary(self) -> str:
        """Plain-text summary: headline table by perspective, counts and notes."""
        a = self.assumptions
        sched = DiscountSchedule.load(a.discount_schedule)
        kids = self.children
        n_children = kids["additional_exits"].sum() + kids["diverted_entries"].sum()
        lines = [
            f"{a.name}: Green Book appraisal",
            f"{'Prices:':<24}{a.price_base_year} real prices (HM Treasury GDP deflator)",
            f"{'Year 0:':<24}{a.first_year}; horizon {a.horizon_years} years",
            f"{'Discounting:':<24}{sched.name} ({sched.describe()})",
            f"{'Effect:':<24}{a.effect.estimate:+.3f} kinship exits per 10,000 a year "
            f"(se {a.effect.se:.3f}) - {a.effect.source}",
            f"{'Additional children:':<24}{n_children:,.0f}"
            f" ({self.children['child_years'].sum():,.0f} child-years in kinship instead of care)",
            "",
            f"{'perspective':<12}{'PV costs £m':>13}{'PV benefits £m':>16}{'NPSV £m':>11}"
            f"{'BCR':>7}{'£ per £1 spent':>16}{'payback':>10}",
        ]
        for r in self.to_frame().to_dict("records"):
            pb = r["payback_year"]
            pb_s = "none" if pb is None or pd.isna(pb) else shift_year(a.first_year, int(pb))
            lines.append(
                f"{r['perspective']:<12}{r['pv_costs'] / 1e6:>13,.1f}"
                f"{r['pv_benefits'] / 1e6:>16,.1f}{r['npsv'] / 1e6:>11,.1f}"
                f"{_ratio(r['bcr']):>7}{_ratio(r['benefit_per_pound_spent']):>16}{pb_s:>10}"
            )
        lines += [
            "",
            "BCR = PV benefits / PV costs of the perspective; '£ per £1 spent' = PV benefits / PV"
            " of public spending (fiscal PV costs). In the economic and social perspectives the"
            " allowance is a transfer and nets out.",
        ]
        if self.notes:
            lines += ["", *[f"Note: {n}" for n in self.notes]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _ratio(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def appraise_pilot(assumptions: CBAAssumptions | None = None) -> CBAResults:
    """Appraise the pilot from the fiscal, economic and social perspectives.

    Parameters
    ----------
    assumptions
        The assumptions; the bundled defaults (with the ILLUSTRATIVE effect) when omitted.

    Returns
    -------
    CBAResults
    """
    a = assumptions or CBAAssumptions()
    structure = Structure.of(a)
    streams = compute_streams(a.parameters(), structure)
    years = np.arange(structure.horizon)
    fys = [shift_year(a.first_year, int(t)) for t in years]
    long = pd.concat(
        [
            pd.DataFrame(
                {
                    "year_index": years,
                    "financial_year": fys,
                    "component": name,
                    "kind": comp.kind,
                    "amount": streams[name][0],
                }
            )
            for name, comp in COMPONENTS.items()
        ],
        ignore_index=True,
    )
    children = pd.DataFrame(
        {
            "year_index": years,
            "financial_year": fys,
            "additional_exits": streams["additional_exits"][0],
            "diverted_entries": streams["diverted_entries"][0],
            "child_years": streams["child_years"][0],
        }
    )
    notes = _notes(a, streams)
    partial = CBAResults(a, {}, long, children, notes)
    flows = partial.flows()
    sched = DiscountSchedule.load(a.discount_schedule)
    partial.perspectives = {
        p: appraise(
            flows,
            sched,
            perspective=p,
            price_base_year=a.price_base_year,
            n_years=a.horizon_years,
            first_year=a.first_year,
            label=a.name,
        )
        for p in PERSPECTIVES
    }
    return partial


def _notes(a: CBAAssumptions, streams: Mapping[str, Array]) -> list[str]:
    notes = []
    if a.effect.illustrative:
        notes.append(
            "The effect is an ILLUSTRATIVE assumption, not an estimate: no post-pilot data exist "
            "yet. Replace it with the DiD estimate."
        )
    budget = pilot_parameter("pilot_budget_first_two_years")
    first_two = sorted(a.payment_years)[:2]
    implied = float(
        sum(streams["allowance"][0][t] + streams["administration"][0][t] for t in first_two)
    )
    notes.append(
        f"Implied allowance and administration in the first two payment years: "
        f"£{implied / 1e6:,.0f}m ({a.price_base_year} prices) against the announced "
        f"£{float(budget['value']) / 1e6:,.0f}m for the first two years."
    )
    if a.cost_of_funds == 0:
        notes.append(
            "No marginal excess burden of taxation is included (Green Book practice); "
            "see the cost_of_funds sensitivity."
        )
    if a.social.enabled:
        notes.append(
            "The social perspective values an adult employment gap that is a descriptive "
            "association (low evidence), not a causal effect."
        )
    else:
        notes.append(
            "Monetised outcomes for children (social perspective) are off by default for lack of "
            "causal evidence; the social perspective then equals the economic one."
        )
    return notes
