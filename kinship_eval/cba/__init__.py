"""Green Book cost-benefit analysis of the kinship allowance pilot.

* :mod:`~kinship_eval.cba.discounting` - the declining STPR schedule and present values;
* :mod:`~kinship_eval.cba.prices` - GDP deflators and real prices;
* :mod:`~kinship_eval.cba.appraisal` - appraisal of any stream of flows (NPSV, BCR);
* :mod:`~kinship_eval.cba.model` - the pilot's appraisal model (fiscal, economic, social);
* :mod:`~kinship_eval.cba.sensitivity` - switching values, tornado tables, Monte Carlo;
* :mod:`~kinship_eval.cba.spec` - YAML specs and the command-line entry points.

The appraisal takes the effect and its uncertainty from a DiD result
(:meth:`CBAAssumptions.from_did`) or from an assumed value for ex-ante work. Every default input is
data in ``kinship_eval/cba/inputs/`` with its source and evidence strength.
"""

from __future__ import annotations

from kinship_eval.cba.appraisal import AppraisalResults, appraise, read_flows, validate_flows
from kinship_eval.cba.discounting import DiscountSchedule, present_value
from kinship_eval.cba.model import (
    PERSPECTIVES,
    CBAAssumptions,
    CBAResults,
    EffectInput,
    appraise_pilot,
    default_inputs,
)
from kinship_eval.cba.prices import Deflators, to_real
from kinship_eval.cba.sensitivity import (
    MonteCarloResults,
    monte_carlo,
    plot_tornado,
    switching_value,
    switching_values,
    tornado,
)
from kinship_eval.cba.spec import CBARun, appraise_flows_file, load_cba_spec, run_cba

__all__ = [
    "PERSPECTIVES",
    "AppraisalResults",
    "CBAAssumptions",
    "CBAResults",
    "CBARun",
    "Deflators",
    "DiscountSchedule",
    "EffectInput",
    "MonteCarloResults",
    "appraise",
    "appraise_flows_file",
    "appraise_pilot",
    "default_inputs",
    "load_cba_spec",
    "monte_carlo",
    "plot_tornado",
    "present_value",
    "read_flows",
    "run_cba",
    "switching_value",
    "switching_values",
    "to_real",
    "tornado",
    "validate_flows",
]
