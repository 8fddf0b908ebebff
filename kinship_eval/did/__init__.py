"""Difference-in-differences estimators, inference and pre-trend diagnostics.

Every estimator takes a long panel and column names and returns a :class:`DiDResults`;
:func:`fit` reaches each by name.
"""

from __future__ import annotations

from kinship_eval.did.counts import poisson_did
from kinship_eval.did.estimate import ESTIMATORS, fit
from kinship_eval.did.event_study import event_study
from kinship_eval.did.imputation import imputation
from kinship_eval.did.results import DiDResults
from kinship_eval.did.staggered import CSResults, callaway_santanna
from kinship_eval.did.sunab import sun_abraham
from kinship_eval.did.synthetic import SyntheticResults, synthetic_control, synthetic_did
from kinship_eval.did.twfe import twfe

__all__ = [
    "ESTIMATORS",
    "CSResults",
    "DiDResults",
    "SyntheticResults",
    "callaway_santanna",
    "event_study",
    "fit",
    "imputation",
    "poisson_did",
    "sun_abraham",
    "synthetic_control",
    "synthetic_did",
    "twfe",
]
