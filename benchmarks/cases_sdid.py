"""Synthetic difference-in-differences on California's Proposition 99.

``kinship_eval.did.synthetic_did`` (method ``sdid``, placebo variance with 200 replications)
against diff-diff ``SyntheticDiD`` and ``synthdid-py`` (a Python port of the reference R package
``synthdid``). The published estimate is -15.604 packs per capita; point estimates must agree to
``TOLERANCE``. Placebo standard errors are Monte Carlo quantities (each package draws its own
placebo assignments) and are recorded but not compared.

The PyPI package ``synthdid`` (another port) cannot be installed next to the package's pinned
dependencies; it is listed with its reason.
"""

from __future__ import annotations

import pandas as pd

from benchmarks import data
from benchmarks.harness import Case, Impl, Outcome, Unavailable, optional

TOLERANCE = 1e-3
REPS = 200
SEED = 12345
POST_PERIODS = list(range(1989, 2001))

SYNTHDID_REASON = (
    "not installable alongside the pinned dependencies: synthdid 0.10.1 (the only release with a "
    "wheel) requires numpy==1.23.5, pandas==1.5.3, scipy==1.10.1, statsmodels==0.13.5 and "
    "matplotlib==3.7.1 exactly, and its older releases are sdists whose setup.py downloads files "
    "at build time; installed without its dependencies it fails on pandas 3 (KeyError 'unit' in "
    "synthdid.utils.panel_matrices: groupby.apply no longer passes the grouping column). "
    "synthdid-py, a port of the same R package, is timed instead"
)


def _ours() -> Impl:
    from kinship_eval.did import synthetic_did

    def run(df: pd.DataFrame) -> Outcome:
        res = synthetic_did(
            df,
            unit="State",
            time="Year",
            outcome="PacksPerCapita",
            first_treated="first_treated",
            method="sdid",
            variance="placebo",
            reps=REPS,
            seed=SEED,
        )
        return Outcome({"att": float(res.att)}, float(res.att), se={"att": float(res.se)})

    return Impl("ours", run, data.prop99, package="kinship_eval")


def _diff_diff() -> Impl:
    from diff_diff import SyntheticDiD

    def run(df: pd.DataFrame) -> Outcome:
        res = SyntheticDiD(variance_method="placebo", n_bootstrap=REPS, seed=SEED).fit(
            df,
            outcome="PacksPerCapita",
            treatment="treated_unit",
            unit="State",
            time="Year",
            post_periods=POST_PERIODS,
        )
        return Outcome({"att": float(res.att)}, float(res.att), se={"att": float(res.se)})

    return Impl("diff-diff", run, data.prop99, package="diff-diff")


def _synthdid_py() -> Impl:
    import importlib.metadata

    importlib.metadata.version("synthdid-py")  # the module is also called ``synthdid``
    import synthdid

    def run(df: pd.DataFrame) -> Outcome:
        pm = synthdid.panel_matrices(
            df, unit="State", time="Year", outcome="PacksPerCapita", treatment="treated"
        )
        est = synthdid.synthdid_estimate(pm.Y, pm.N0, pm.T0)
        se = synthdid.synthdid_se(est, method="placebo", replications=REPS, random_state=SEED)
        return Outcome({"att": float(est)}, float(est), se={"att": float(se)})

    return Impl("synthdid-py", run, data.prop99, package="synthdid-py")


def cases() -> list[Case]:
    return [
        Case(
            name="sdid_prop99_placebo200",
            family="synthetic_did",
            description=(
                "Synthetic DiD on Prop 99 (39 states x 31 years, 1 treated unit, 12 post "
                f"periods): unit and time weights by Frank-Wolfe, placebo variance with {REPS} "
                "replications (each re-solving both weight problems)"
            ),
            ours=_ours(),
            peers=[
                optional("diff-diff", "diff-diff", _diff_diff),
                optional("synthdid-py", "synthdid-py", _synthdid_py),
                Unavailable("synthdid", SYNTHDID_REASON, "synthdid"),
            ],
            tolerance=TOLERANCE,
        )
    ]
