"""Headline wording: firm only when the evidence supports it; illustrative always said."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kinship_eval.report import narrative as nar

LABEL = "Children leaving care through a special guardianship order, per 10,000 children"


def evidence(**changes) -> nar.Evidence:
    """A clear, well-behaved result on real data, changed as asked."""
    base = nar.Evidence(
        att=2.0,
        ci_low=0.5,
        ci_high=3.5,
        p_value=0.01,
        outcome_label=LABEL,
        pct_change=40.0,
        pretrend_p=0.40,
        honest_computed=True,
        breakdown=1.2,
        honest_m_max=2.0,
    )
    return dataclasses.replace(base, **changes)


def sentences(text: str) -> list[str]:
    """Split prose into sentences (on a full stop followed by a space and a capital)."""
    return [s for s in re.split(r"(?<=\.)\s+(?=[A-Z])", text) if s.strip()]


# ----------------------------------------------------------------------------- firm
def test_firm_only_when_interval_excludes_zero_and_diagnostics_pass():
    ev = evidence()
    a = nar.assess(ev)
    assert a.strength == "firm"
    assert a.reasons == ()
    text = nar.impact_sentence(ev)
    assert text.startswith("The allowance increased the rate of children leaving care")
    assert "0.50 to 3.50" in text
    assert "not firm" not in text
    assert "illustrative" not in text.lower()


def test_firm_reduction_says_reduced():
    ev = evidence(att=-2.0, ci_low=-3.5, ci_high=-0.5, pct_change=-30.0)
    text = nar.impact_sentence(ev)
    assert "the allowance reduced" in text.lower()
    assert "fall" in text
    assert "\u22123.50 to \u22120.50" in text


@pytest.mark.parametrize("breakdown", [None, 0.05, 0.3, 2.0])
def test_breakdown_away_from_zero_or_beyond_the_grid_allows_firm_wording(breakdown):
    assert nar.assess(evidence(breakdown=breakdown)).strength == "firm"


def test_pretrend_p_exactly_at_the_threshold_passes():
    assert nar.assess(evidence(pretrend_p=nar.PRETREND_ALPHA)).pretrends_pass is True


# ----------------------------------------------------------------------------- cautious
def test_failed_pretrend_test_gives_cautious_wording_said_plainly():
    ev = evidence(pretrend_p=0.001)
    a = nar.assess(ev)
    assert a.strength == "cautious"
    assert a.pretrends_pass is False
    text = nar.impact_sentence(ev)
    assert "the allowance increased" not in text.lower()
    assert "not firm evidence" in text
    assert "the pre-pilot trends of the pilot and comparison areas differ" in text
    assert "may reflect those differences rather than the allowance" in text
    assert "p = 0.001" in text


@pytest.mark.parametrize("breakdown", [0.0, 0.01, 0.049])
def test_trivially_zero_breakdown_gives_cautious_wording(breakdown):
    ev = evidence(breakdown=breakdown)
    a = nar.assess(ev)
    assert a.strength == "cautious"
    assert a.honest_pass is False
    text = nar.impact_sentence(ev)
    assert "small departure from parallel trends" in text
    assert "not robust" in nar.honest_sentence(ev)


def test_missing_diagnostics_are_not_a_pass():
    no_test = nar.assess(evidence(pretrend_p=None))
    assert no_test.strength == "cautious"
    assert "were not tested" in nar.impact_sentence(evidence(pretrend_p=None))
    no_honest = nar.assess(evidence(honest_computed=False, breakdown=None))
    assert no_honest.strength == "cautious"
    assert nar.honest_sentence(evidence(honest_computed=False)) is None


def test_interval_including_zero_is_no_clear_evidence():
    ev = evidence(ci_low=-0.3, ci_high=4.3, p_value=0.09)
    assert nar.assess(ev).strength == "no_clear_effect"
    text = nar.impact_sentence(ev)
    assert text.startswith("There is no clear evidence that the allowance changed")
    assert "includes no change" in text
    assert "+2.00" in text
    assert "pre-pilot trends" not in text


def test_no_clear_effect_with_failed_pretrends_adds_the_caveat():
    text = nar.impact_sentence(evidence(ci_low=-0.3, ci_high=4.3, pretrend_p=0.0001))
    assert "no clear evidence" in text
    assert "also differ" in text
    assert "p < 0.001" in text


def test_cautious_cost_benefit_says_it_shares_the_caveats():
    cba = nar.CBAEvidence(
        benefit_per_pound=0.28,
        perspective="economic",
        bcr=1.77,
        npsv=22.1e6,
        pv_public_spending=182.2e6,
        price_base_year="2025-26",
        prob_bcr_gt_1=0.8,
        n_draws=10_000,
        impact_strength="cautious",
    )
    out = nar.cba_sentences(cba)
    assert out[0].startswith("Each £1 of public spending on the pilot returns an estimated £0.28")
    assert "benefit-cost ratio is 1.77" in out[1]
    assert "80% of 10,000 Monte Carlo draws" in out[2]
    assert "not evidence that the pilot is value for money" in out[-1]
    firm = nar.cba_sentences(dataclasses.replace(cba, impact_strength="firm"))
    assert not any("caveats" in s for s in firm)


# ----------------------------------------------------------------------------- illustrative
ILLUSTRATIVE = (2026, 2027, 2028)


@pytest.mark.parametrize(
    "changes",
    [
        {},  # firm
        {"pretrend_p": 0.001},  # cautious
        {"ci_low": -0.3, "ci_high": 4.3},  # no clear effect
        {"breakdown": None},  # robust across the grid
        {"breakdown": 0.0},  # not robust
    ],
)
def test_every_headline_sentence_on_illustrative_years_says_so(changes):
    ev = evidence(illustrative_years=ILLUSTRATIVE, pretrend_reference_illustrative=True, **changes)
    out = nar.headline_sentences(ev, true_att=1.3)
    assert len(out) >= 3
    for paragraph in out:
        for sentence in sentences(paragraph):
            if sentence.startswith("Passing this test"):
                continue  # a general remark about pre-tests, not a finding
            assert "illustrative" in sentence.lower(), sentence


def test_firm_wording_on_illustrative_years_still_names_them():
    text = nar.impact_sentence(evidence(illustrative_years=ILLUSTRATIVE))
    assert text.startswith("On the illustrative (simulated) data for 2026 to 2028, the allowance")


def test_real_data_sentences_do_not_say_illustrative():
    out = nar.headline_sentences(evidence(), true_att=None)
    assert not any("illustrative" in s.lower() for s in out)


def test_truth_sentence_reports_recovery_or_miss():
    ev = evidence(illustrative_years=ILLUSTRATIVE)
    assert "recovers it" in nar.truth_sentence(ev, 1.3)
    assert "misses it" in nar.truth_sentence(ev, 5.0)
    assert "illustrative" in nar.truth_sentence(ev, 1.3)


def test_secondary_robustness_and_cost_sentences_say_illustrative():
    sec = [
        nar.SecondaryResult("Children leaving care to kinship carers", 2.8, 0.2, 5.5),
        nar.SecondaryResult("Children who started to be looked after", -3.2, -8.3, 1.7),
    ]
    text = nar.secondary_sentence(sec, illustrative_years=ILLUSTRATIVE)
    assert text.startswith("On the illustrative (simulated) data for 2026 to 2028, 1 of the 2")
    assert "shows a change" in text
    rob = nar.robustness_sentence(
        [("A", 2.1, -0.1, 4.0), ("B", 2.7, 0.1, 5.3)], illustrative_years=ILLUSTRATIVE
    )
    assert "illustrative" in rob
    assert "1 of 2" in rob
    one = nar.robustness_sentence([("Sun and Abraham (2021)", 2.7, 0.1, 5.3)])
    assert one == (
        "The alternative estimator (Sun and Abraham (2021)) gives 2.70 "
        "(95% confidence interval 0.10 to 5.30)."
    )
    cba = nar.CBAEvidence(0.28, "economic", 1.77, 22.1e6, 182.2e6, "2025-26", 0.8, 10_000, True)
    for sentence in nar.cba_sentences(cba):
        assert "illustrative" in sentence.lower(), sentence


# ----------------------------------------------------------------------------- formatting
def test_number_formatting():
    assert nar.fmt_num(-0.311) == "\u22120.31"
    assert nar.fmt_num(-0.001) == "0.00"  # no minus sign on a rounded zero
    assert nar.fmt_num(2.5, 1, sign=True) == "+2.5"
    assert nar.fmt_num(float("nan")) == "not available"
    assert nar.fmt_p(0.0004) == "p < 0.001"
    assert nar.fmt_p(0.0883) == "p = 0.088"
    assert nar.fmt_money(-131.36e6) == "\u2212£131.4m"
    assert nar.fmt_years([2026, 2027, 2028]) == "2026 to 2028"
    assert nar.fmt_years([2027, 2028]) == "2027 and 2028"
    assert nar.outcome_phrase(LABEL) == "children leaving care through a special guardianship order"


@pytest.mark.parametrize("p", [0.4, 0.001])
def test_pretrend_sentences_resting_on_an_illustrative_reference_year_say_so(p):
    ev = evidence(
        pretrend_p=p, illustrative_years=ILLUSTRATIVE, pretrend_reference_illustrative=True
    )
    for sentence in sentences(nar.pretrend_sentence(ev)):
        if sentence.startswith("Passing this test"):
            continue
        assert "illustrative" in sentence.lower(), sentence
    real = nar.pretrend_sentence(evidence(pretrend_p=p))
    assert "illustrative" not in real
