"""Child-level SSDA903 episodes: readers, the LA x quarter panel, child outcomes, a matched
child-level difference-in-differences and a synthetic national generator.

Public API
----------
:func:`read_ssda903`
    Read and validate returns (one file per LA-year, or stacked) into :class:`EpisodeData`, with a
    :class:`DataQualityReport` of the documented fixes.
:func:`episode_data_from_frames`, :func:`episode_data_from_arrow`
    The same for tables already in memory.
:func:`episodes_to_panel`
    The LA x quarter :class:`QuarterPanel` (Panel contract, quarterly periods).
:func:`child_outcomes`
    One row per entry to care with characteristics and outcomes (left care to kin within 12/24
    months, days in care, placement moves, censoring).
:func:`matched_did`
    Propensity-matched difference-in-differences in the Supporting Families style
    (:class:`MatchedDiDResults`).
:func:`simulate_ssda903`
    A seeded synthetic national SSDA903 data set (:class:`SyntheticSSDA903`), clearly marked.
"""

from kinship_eval.episodes.aggregate import QuarterPanel, episodes_to_panel
from kinship_eval.episodes.codes import CodeLists, read_code_lists
from kinship_eval.episodes.matched import (
    MatchedDiDResults,
    covariate_frame,
    did_regression,
    la_covariates_from_panel,
    matched_did,
    nearest_neighbour_match,
    propensity_logit,
    standardised_differences,
)
from kinship_eval.episodes.outcomes import child_outcomes
from kinship_eval.episodes.ssda903 import (
    DataQualityReport,
    EpisodeData,
    episode_data_from_arrow,
    episode_data_from_frames,
    read_ssda903,
)
from kinship_eval.episodes.synthetic import SyntheticSSDA903, simulate_ssda903

__all__ = [
    "CodeLists",
    "DataQualityReport",
    "EpisodeData",
    "MatchedDiDResults",
    "QuarterPanel",
    "SyntheticSSDA903",
    "child_outcomes",
    "covariate_frame",
    "did_regression",
    "episode_data_from_arrow",
    "episode_data_from_frames",
    "episodes_to_panel",
    "la_covariates_from_panel",
    "matched_did",
    "nearest_neighbour_match",
    "propensity_logit",
    "read_code_lists",
    "read_ssda903",
    "simulate_ssda903",
    "standardised_differences",
]
