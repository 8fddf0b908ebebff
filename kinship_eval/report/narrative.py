"""Report wording generated from the results: pure functions, no I/O.

The headline says what the evidence supports, and no more:

* **firm** wording ("the allowance increased ...") only when the confidence interval excludes
  zero *and* the pre-trend diagnostics pass: the joint test of the pre-pilot differences has
  ``p >= 0.05`` and the HonestDiD breakdown value is not trivially zero (see
  :data:`MIN_BREAKDOWN`);
* **cautious** wording when the interval excludes zero but a diagnostic fails or was not run,
  saying plainly which and why it matters;
* **no clear effect** when the interval includes zero.

Every sentence that rests on illustrative (simulated) years says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "MIN_BREAKDOWN",
    "PRETREND_ALPHA",
    "Assessment",
    "CBAEvidence",
    "Evidence",
    "assess",
    "cba_sentences",
    "fmt_money",
    "fmt_num",
    "fmt_p",
    "headline_sentences",
    "honest_sentence",
    "illustrative_prefix",
    "impact_sentence",
    "outcome_phrase",
    "pretrend_sentence",
    "robustness_sentence",
    "secondary_sentence",
    "truth_sentence",
]

#: Joint pre-trend tests with a p-value below this fail.
PRETREND_ALPHA = 0.05
#: HonestDiD breakdown values below this count as "trivially zero": the conclusion does not survive
#: a post-pilot departure from parallel trends a twentieth the size of the largest pre-pilot one
#: (relative magnitudes), i.e. it rounds to 0.0 at one decimal place.
MIN_BREAKDOWN = 0.05

Strength = Literal["firm", "cautious", "no_clear_effect"]
MINUS = "\u2212"


# ----------------------------------------------------------------------------- formatting
def fmt_num(value: float | None, dp: int = 2, *, sign: bool = False) -> str:
    """A number with ``dp`` decimals, a true minus sign, and ``+`` when ``sign`` is set."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not available"
    text = f"{abs(value):,.{dp}f}"
    if value < 0 and float(text.replace(",", "")) != 0:
        return MINUS + text
    return ("+" + text) if sign and value > 0 else text


def fmt_p(p: float | None) -> str:
    """``p < 0.001`` or ``p = 0.042``."""
    if p is None or not math.isfinite(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_money(value: float, *, scale: float = 1e6, dp: int = 1) -> str:
    """``£22.1m`` / ``−£131.4m`` (present values in millions by default)."""
    unit = "m" if scale == 1e6 else ""
    text = f"£{abs(value) / scale:,.{dp}f}{unit}"
    return (MINUS + text) if value < 0 else text


def fmt_years(years: Sequence[int]) -> str:
    """``2026``, ``2026 and 2027`` or ``2026 to 2028`` (consecutive years)."""
    ys = sorted(int(y) for y in years)
    if not ys:
        return ""
    if len(ys) == 1:
        return str(ys[0])
    if ys == list(range(ys[0], ys[-1] + 1)):
        return f"{ys[0]} and {ys[1]}" if len(ys) == 2 else f"{ys[0]} to {ys[-1]}"
    return ", ".join(map(str, ys[:-1])) + f" and {ys[-1]}"


def outcome_phrase(label: str) -> str:
    """A plain-language outcome label turned into a noun phrase for a sentence.

    ``"Children leaving care through an SGO, per 10,000 children"`` becomes
    ``"children leaving care through an SGO"``.
    """
    text = label.split(", per 10,000")[0].strip()
    if len(text) > 1 and not text[:2].isupper():
        text = text[0].lower() + text[1:]
    return text


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


# ----------------------------------------------------------------------------- evidence
@dataclass(frozen=True)
class Evidence:
    """What the headline rests on.

    Attributes
    ----------
    att, ci_low, ci_high, p_value, level
        The primary estimate and its interval.
    outcome_label
        Plain-language label of the outcome (e.g. ``Panel.label``).
    unit
        Unit of the estimate, used after the number (``per 10,000 children``).
    pct_change
        The estimate as a % of the pilot areas' estimated level without the allowance.
    pretrend_p
        p-value of the joint test that every pre-pilot event-study coefficient is zero
        (``None``: not computed).
    honest_computed
        Whether the HonestDiD sensitivity analysis was run.
    breakdown
        HonestDiD breakdown value (``None`` with ``honest_computed``: no value on the grid
        overturns the conclusion).
    honest_method
        ``relative_magnitude`` or ``smoothness``.
    honest_m_max
        Largest ``M`` on the HonestDiD grid.
    illustrative_years
        Simulated years the estimate rests on (empty: real data only).
    pretrend_reference_illustrative
        Whether the pre-trend test's reference year is an illustrative year.
    """

    att: float
    ci_low: float
    ci_high: float
    p_value: float
    outcome_label: str
    level: float = 0.95
    unit: str = "per 10,000 children"
    pct_change: float | None = None
    pretrend_p: float | None = None
    honest_computed: bool = False
    breakdown: float | None = None
    honest_method: str = "relative_magnitude"
    honest_m_max: float | None = None
    illustrative_years: tuple[int, ...] = ()
    pretrend_reference_illustrative: bool = False

    @property
    def illustrative(self) -> bool:
        return bool(self.illustrative_years)

    @property
    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)

    @property
    def level_pct(self) -> str:
        return f"{round(self.level * 100)}%"


@dataclass(frozen=True)
class Assessment:
    """How strongly the headline may be worded, and why.

    Attributes
    ----------
    strength
        ``firm``, ``cautious`` or ``no_clear_effect``.
    pretrends_pass
        ``True``/``False``, or ``None`` when the test was not run.
    honest_pass
        ``True``/``False``, or ``None`` when the sensitivity analysis was not run.
    reasons
        Plain-language reasons the wording is not firm (empty when firm).
    """

    strength: Strength
    excludes_zero: bool
    pretrends_pass: bool | None
    honest_pass: bool | None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def diagnostics_pass(self) -> bool:
        return bool(self.pretrends_pass) and bool(self.honest_pass)


def assess(ev: Evidence) -> Assessment:
    """Classify the evidence behind the headline (see the module docstring)."""
    pretrends_pass = None if ev.pretrend_p is None else bool(ev.pretrend_p >= PRETREND_ALPHA)
    if not ev.honest_computed:
        honest_pass = None
    else:
        honest_pass = ev.breakdown is None or ev.breakdown >= MIN_BREAKDOWN
    reasons = []
    if pretrends_pass is None:
        reasons.append(
            "the pre-pilot trends of the pilot and comparison areas were not tested, so the "
            "comparison areas cannot be shown to be a fair guide to what would have happened "
            "without the allowance"
        )
    elif not pretrends_pass:
        reasons.append(
            "the pre-pilot trends of the pilot and comparison areas differ "
            f"(joint test, {fmt_p(ev.pretrend_p)}), so this estimate may reflect those "
            "differences rather than the allowance"
        )
    if honest_pass is None:
        reasons.append("its sensitivity to departures from parallel trends was not assessed")
    elif not honest_pass:
        reasons.append(
            "the interval no longer excludes zero once even a small departure from parallel "
            "trends is allowed for"
        )
    if not ev.excludes_zero:
        strength: Strength = "no_clear_effect"
    elif reasons:
        strength = "cautious"
    else:
        strength = "firm"
    return Assessment(
        strength=strength,
        excludes_zero=ev.excludes_zero,
        pretrends_pass=pretrends_pass,
        honest_pass=honest_pass,
        reasons=tuple(reasons),
    )


def illustrative_prefix(years: Sequence[int]) -> str:
    """``"On the illustrative (simulated) data for 2026 to 2028, "`` or ``""``."""
    if not years:
        return ""
    return f"On the illustrative (simulated) data for {fmt_years(years)}, "


def _interval(ev: Evidence) -> str:
    return f"{ev.level_pct} confidence interval {fmt_num(ev.ci_low)} to {fmt_num(ev.ci_high)}"


def _size(ev: Evidence) -> str:
    """``2.16 per 10,000 children (a 45% rise``."""
    text = f"{fmt_num(abs(ev.att))} {ev.unit}"
    if ev.pct_change is not None and math.isfinite(ev.pct_change):
        word = "rise" if ev.att > 0 else "fall"
        text += f" (a {abs(ev.pct_change):.0f}% {word}; {_interval(ev)})"
    else:
        text += f" ({_interval(ev)})"
    return text


def impact_sentence(ev: Evidence, assessment: Assessment | None = None) -> str:
    """The headline sentence about the primary estimate."""
    a = assessment or assess(ev)
    outcome = outcome_phrase(ev.outcome_label)
    prefix = illustrative_prefix(ev.illustrative_years)
    direction = "increased" if ev.att > 0 else "reduced"
    if a.strength == "firm":
        text = f"{prefix}the allowance {direction} the rate of {outcome} by {_size(ev)}."
    elif a.strength == "cautious":
        verb = "an increase" if ev.att > 0 else "a reduction"
        text = (
            f"{prefix}the estimate points to {verb} in the rate of {outcome} of {_size(ev)}, "
            f"but this is not firm evidence of an effect of the allowance: "
            f"{'; and '.join(a.reasons)}."
        )
    else:
        text = (
            f"{prefix}there is no clear evidence that the allowance changed the rate of "
            f"{outcome}: the estimated change is {fmt_num(ev.att, sign=True)} {ev.unit}, and "
            f"the {ev.level_pct} confidence interval ({fmt_num(ev.ci_low)} to "
            f"{fmt_num(ev.ci_high)}) includes no change."
        )
        if a.pretrends_pass is False:
            text += (
                " The pre-pilot trends of the pilot and comparison areas also differ "
                f"(joint test, {fmt_p(ev.pretrend_p)}), so even this estimate may reflect those "
                "differences rather than the allowance."
            )
    return _capitalise(text)


def pretrend_sentence(ev: Evidence) -> str:
    """What the joint pre-trend test says, in plain words."""
    ref = (
        "; the test measures each year against the illustrative simulated year just before the "
        "allowance began"
        if ev.pretrend_reference_illustrative
        else ""
    )
    if ev.pretrend_p is None:
        return (
            "The pre-pilot trends of the pilot and comparison areas were not tested, so there is "
            "no check that the comparison areas are a fair guide to what would have happened "
            "without the allowance."
        )
    if ev.pretrend_p >= PRETREND_ALPHA:
        return (
            "Before the pilot, outcomes in the pilot and comparison areas moved in parallel: the "
            f"joint test of the pre-pilot differences finds none ({fmt_p(ev.pretrend_p)}{ref}). "
            "Passing this test is reassuring but does not prove the assumption."
        )
    so = (
        "On this partly illustrative test, the comparison areas may therefore"
        if ev.pretrend_reference_illustrative
        else "The comparison areas may therefore"
    )
    return (
        "Before the pilot, the trends of the pilot and comparison areas differ: the joint test "
        f"of the pre-pilot differences rejects parallel trends ({fmt_p(ev.pretrend_p)}{ref}). "
        f"{so} not be a fair guide to what would have happened in the pilot areas without the "
        "allowance."
    )


def honest_sentence(ev: Evidence) -> str | None:
    """What the HonestDiD sensitivity analysis says (``None`` if it was not run)."""
    if not ev.honest_computed:
        return None
    illus = " on the illustrative data" if ev.illustrative else ""
    subject = f"In the event study{illus}, the effect in the first year of payments"
    if ev.honest_method == "smoothness":
        unit = (
            "the slope of the difference in trends changes by more than {b} "
            + ev.unit
            + " from one year to the next"
        )
        allowed = "the slope of the difference in trends may change by {b} " + ev.unit + " a year"
    else:
        unit = (
            "departures from parallel trends after the pilot began are more than {b} times the "
            "largest departure before it"
        )
        allowed = (
            "departures from parallel trends after the pilot began may be {b} times the largest "
            "departure before it"
        )
    if ev.breakdown is None:
        grid = fmt_num(ev.honest_m_max, 1) if ev.honest_m_max is not None else "the largest"
        return (
            f"{subject} stays clear of zero across the whole sensitivity analysis, even where "
            f"{allowed.format(b=grid)}."
        )
    if ev.breakdown < MIN_BREAKDOWN:
        return (
            f"{subject} is not robust: its interval includes zero as soon as any departure "
            "from parallel trends is allowed for."
        )
    return (
        f"{subject} stays clear of zero unless "
        f"{unit.format(b=fmt_num(ev.breakdown, 2))} (the breakdown value of the sensitivity "
        "analysis)."
    )


def truth_sentence(ev: Evidence, true_att: float) -> str:
    """For illustrative runs: whether the interval covers the effect put into the simulation."""
    covers = ev.ci_low <= true_att <= ev.ci_high
    return (
        f"Because the years {fmt_years(ev.illustrative_years)} are illustrative, the true effect "
        f"is known: {fmt_num(true_att)} {ev.unit}. The estimate from the illustrative data, "
        f"{fmt_num(ev.att)}, "
        + (
            "recovers it: the true effect lies inside its confidence interval."
            if covers
            else "misses it: the true effect lies outside its confidence interval."
        )
    )


def headline_sentences(ev: Evidence, *, true_att: float | None = None) -> list[str]:
    """The headline findings: the impact, the pre-trend check, the sensitivity, the truth.

    The pre-trend sentence is left out when the impact sentence already says the test failed.
    """
    a = assess(ev)
    out = [impact_sentence(ev, a)]
    if a.pretrends_pass is True or (a.pretrends_pass is False and a.strength == "firm"):
        out.append(pretrend_sentence(ev))
    honest = honest_sentence(ev)
    if honest:
        out.append(honest)
    if ev.illustrative and true_att is not None:
        out.append(truth_sentence(ev, true_att))
    return out


# ----------------------------------------------------------------------------- other sections
@dataclass(frozen=True)
class SecondaryResult:
    """One secondary outcome's estimate (from the robustness table)."""

    outcome_label: str
    att: float
    ci_low: float
    ci_high: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)


def secondary_sentence(
    results: Sequence[SecondaryResult], *, illustrative_years: Sequence[int] = ()
) -> str | None:
    """Summary of the secondary outcomes, flagging those whose interval excludes zero."""
    if not results:
        return None
    prefix = illustrative_prefix(illustrative_years)
    clear = [r for r in results if r.excludes_zero]
    n = len(results)
    noun = "outcome" if n == 1 else "outcomes"
    if not clear:
        body = (
            f"none of the {n} secondary {noun} shows a change whose 95% confidence interval "
            "excludes zero"
        )
    else:
        items = "; ".join(
            f"{outcome_phrase(r.outcome_label)} ({fmt_num(r.att, sign=True)}, "
            f"{fmt_num(r.ci_low)} to {fmt_num(r.ci_high)})"
            for r in clear
        )
        verb = "shows" if len(clear) == 1 else "show"
        body = f"{len(clear)} of the {n} secondary {noun} {verb} a change whose 95% confidence "
        body += f"interval excludes zero: {items}"
    return _capitalise(
        f"{prefix}{body}. Secondary outcomes are exploratory: they use conventional clustered "
        "standard errors and were not tested for pre-pilot trends."
    )


def robustness_sentence(
    estimates: Sequence[tuple[str, float, float, float]],
    *,
    illustrative_years: Sequence[int] = (),
) -> str | None:
    """How the alternative estimators compare: ``(name, att, ci_low, ci_high)`` each."""
    if not estimates:
        return None
    if len(estimates) == 1:
        name, att, lo, hi = estimates[0]
        return _capitalise(
            f"{illustrative_prefix(illustrative_years)}the alternative estimator ({name}) gives "
            f"{fmt_num(att)} (95% confidence interval {fmt_num(lo)} to {fmt_num(hi)})."
        )
    atts = [e[1] for e in estimates]
    clear = sum(1 for e in estimates if e[2] > 0 or e[3] < 0)
    same_sign = all(a > 0 for a in atts) or all(a < 0 for a in atts)
    prefix = illustrative_prefix(illustrative_years)
    text = (
        f"{prefix}the {len(estimates)} alternative estimators give estimates from "
        f"{fmt_num(min(atts))} to {fmt_num(max(atts))}"
        + (", all with the same sign" if same_sign else ", of differing signs")
        + f"; {clear} of {len(estimates)} have a 95% confidence interval that excludes zero."
    )
    return _capitalise(text)


@dataclass(frozen=True)
class CBAEvidence:
    """What the cost-benefit headline rests on."""

    benefit_per_pound: float
    perspective: str
    bcr: float
    npsv: float
    pv_public_spending: float
    price_base_year: str
    prob_bcr_gt_1: float | None = None
    n_draws: int | None = None
    illustrative: bool = False
    impact_strength: Strength = "firm"


def cba_sentences(c: CBAEvidence) -> list[str]:
    """The cost-benefit headline: benefits per £1 spent, the BCR, and its uncertainty."""
    prefix = "On the illustrative effect, " if c.illustrative else ""
    out = [
        _capitalise(
            f"{prefix}each £1 of public spending on the pilot returns an estimated "
            f"£{c.benefit_per_pound:.2f} of {c.perspective} benefits (present values, "
            f"{c.price_base_year} prices; public spending {fmt_money(c.pv_public_spending)})."
        )
    ]
    transfer = (
        " The allowance itself is a transfer to kinship families: a cost to the Exchequer but not "
        "to society, so it is left out of the economic costs."
        if c.perspective in ("economic", "social")
        else ""
    )
    illus = " (illustrative)" if c.illustrative else ""
    out.append(
        f"The {c.perspective} benefit-cost ratio is {c.bcr:.2f}{illus} and the net present social "
        f"value {fmt_money(c.npsv)}{illus}.{transfer}"
    )
    if c.prob_bcr_gt_1 is not None:
        draws = f"{c.n_draws:,} " if c.n_draws else ""
        out.append(
            f"Allowing for uncertainty in the effect and the unit costs, the {c.perspective} "
            f"benefit-cost ratio exceeds 1 in {c.prob_bcr_gt_1:.0%} of {draws}Monte Carlo "
            f"draws{illus}."
        )
    if c.impact_strength != "firm":
        which = "illustrative impact estimate" if c.illustrative else "impact estimate"
        out.append(
            f"These values rest on the {which} above and share its caveats: they are not "
            "evidence that the pilot is value for money."
        )
    return out
