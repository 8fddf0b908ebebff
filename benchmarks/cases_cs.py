"""Callaway & Sant'Anna ATT(g,t): ``kinship_eval.did.callaway_santanna`` against its peers.

Every implementation computes the ATT(g,t) of every cohort and period (never-treated comparison
group, varying base period) with their standard errors and the aggregations our estimator always
computes (simple, group, dynamic, calendar; diff-diff has no calendar aggregation, so it does the
other three). Agreement: every ATT(g,t) within ``ATT_TOLERANCE`` of ours (the point estimates are
deterministic); standard errors are recorded (``se_max_abs_diff``) but only the analytic ones are
expected to match. With a propensity score (``dr``) the tolerance is ``PSCORE_TOLERANCE``.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import data
from benchmarks.harness import Case, Impl, Outcome, Unavailable, optional

ATT_TOLERANCE = 1e-6
#: With a propensity score the packages stop their logit iterations at different tolerances (and
#: diff-diff clips scores to [0.01, 0.99]); R ``did`` results are matched to about 1e-5 there.
PSCORE_TOLERANCE = 1e-5
BOOT_REPS = 999
SEED = 12345


def _key(g: Any, t: Any) -> tuple[int, int]:
    return round(float(g)), round(float(t))


def _values(groups: Any, times: Any, att: Any) -> dict[tuple[int, int], float]:
    return {_key(g, t): float(a) for g, t, a in zip(groups, times, np.asarray(att), strict=True)}


class _Spec:
    """Column names and options of one case."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        unit: str,
        time: str,
        outcome: str,
        first_treated: str,
        covariates: tuple[str, ...],
        est_method: str,
        bootstrap: bool,
    ) -> None:
        self.frame = frame
        self.unit = unit
        self.time = time
        self.outcome = outcome
        self.first_treated = first_treated
        self.covariates = covariates
        self.est_method = est_method
        self.bootstrap = bootstrap

    def copy(self) -> pd.DataFrame:
        return self.frame.copy()

    @property
    def xformla(self) -> str | None:
        return "~" + "+".join(self.covariates) if self.covariates else None


# ------------------------------------------------------------------------------------ ours
def _ours(spec: _Spec) -> Impl:
    from kinship_eval.did import callaway_santanna

    def run(df: pd.DataFrame) -> Outcome:
        res = callaway_santanna(
            df,
            unit=spec.unit,
            time=spec.time,
            outcome=spec.outcome,
            first_treated=spec.first_treated,
            covariates=spec.covariates,
            control_group="never_treated",
            est_method=spec.est_method,
            bootstrap=spec.bootstrap,
            reps=BOOT_REPS,
            seed=SEED,
            weight_type="mammen",
        )
        gt = res.group_time
        return Outcome(
            values=_values(gt["group"], gt["time"], gt["att"]),
            headline=float(res.extra["aggregations"]["simple"]["att"]),
            se=_values(gt["group"], gt["time"], gt["se"]),
        )

    return Impl("ours", run, spec.copy, package="kinship_eval")


# ------------------------------------------------------------------------------------ peers
def _diff_diff(spec: _Spec) -> Impl:
    from diff_diff import CallawaySantAnna

    def run(df: pd.DataFrame) -> Outcome:
        est = CallawaySantAnna(
            control_group="never_treated",
            estimation_method=spec.est_method,
            n_bootstrap=BOOT_REPS if spec.bootstrap else 0,
            bootstrap_weights="mammen",
            seed=SEED,
            cband=spec.bootstrap,
        )
        res = est.fit(
            df,
            outcome=spec.outcome,
            unit=spec.unit,
            time=spec.time,
            first_treat=spec.first_treated,
            covariates=list(spec.covariates) or None,
        )
        res.aggregate("event_study")
        res.aggregate("group")
        cells = res.group_time_effects
        return Outcome(
            values={_key(g, t): float(v["effect"]) for (g, t), v in cells.items()},
            headline=float(res.overall_att),
            se={_key(g, t): float(v["se"]) for (g, t), v in cells.items()},
        )

    return Impl("diff-diff", run, spec.copy, package="diff-diff")


def _csdid(spec: _Spec) -> Impl:
    from csdid.att_gt import ATTgt

    def run(df: pd.DataFrame) -> Outcome:
        with contextlib.redirect_stdout(io.StringIO()):
            model = ATTgt(
                yname=spec.outcome,
                tname=spec.time,
                idname=spec.unit,
                gname=spec.first_treated,
                data=df,
                control_group="nevertreated",
                xformla=spec.xformla,
                cband=spec.bootstrap,
                biters=BOOT_REPS,
            )
            # csdid draws its multipliers from numpy's global generator
            np.random.seed(SEED)  # noqa: NPY002
            model.fit(est_method=spec.est_method, bstrap=spec.bootstrap)
            simple_att = float(model.aggte(typec="simple").atte["overall_att"])
            for kind in ("group", "dynamic", "calendar"):
                model.aggte(typec=kind)
        r = model.results
        return Outcome(
            values=_values(r["group"], r["year"], r["att"]),
            headline=simple_att,
            se=_values(r["group"], r["year"], r["se"]),
        )

    return Impl("csdid", run, spec.copy, package="csdid")


def _differences(spec: _Spec) -> Impl:
    from differences import ATTgt

    def setup() -> pd.DataFrame:
        df = spec.copy()
        df["cohort_"] = df[spec.first_treated].where(df[spec.first_treated] > 0)
        return df

    def run(df: pd.DataFrame) -> Outcome:
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars of the bootstrap
            return _run(df)

    def _run(df: pd.DataFrame) -> Outcome:
        indexed = df.set_index([spec.unit, spec.time])
        model = ATTgt(data=indexed, cohort_column="cohort_")
        formula = spec.outcome + (" ~ " + " + ".join(spec.covariates) if spec.covariates else "")
        boot = BOOT_REPS if spec.bootstrap else 0
        res = model.fit(
            formula=formula,
            est_method=spec.est_method,
            control_group="never_treated",
            boot_iterations=boot,
            random_state=SEED,
            progress_bar=False,
        )
        simple = model.aggregate("simple", boot_iterations=boot, random_state=SEED)
        for kind in ("cohort", "event", "time"):
            model.aggregate(kind, boot_iterations=boot, random_state=SEED)
        table = res.to_pandas()
        cohorts = table.index.get_level_values("cohort")
        times = table.index.get_level_values("time")
        att = table.iloc[:, 0].to_numpy()
        se = table.iloc[:, 1].to_numpy()
        return Outcome(
            values=_values(cohorts, times, att),
            headline=float(simple.iloc[0, 0]),
            se=_values(cohorts, times, se),
        )

    return Impl("differences", run, setup, package="differences")


def _moderndid(spec: _Spec) -> Impl:
    import moderndid

    def run(df: pd.DataFrame) -> Outcome:
        res = moderndid.att_gt(
            df,
            yname=spec.outcome,
            tname=spec.time,
            idname=spec.unit,
            gname=spec.first_treated,
            xformla=spec.xformla,
            est_method=spec.est_method,
            control_group="nevertreated",
            boot=spec.bootstrap,
            biters=BOOT_REPS,
            cband=spec.bootstrap,
            random_state=SEED,
        )
        simple = moderndid.aggte(res, type="simple")
        for kind in ("group", "dynamic", "calendar"):
            moderndid.aggte(res, type=kind)
        return Outcome(
            values=_values(res.groups, res.times, res.att_gt),
            headline=float(simple.overall_att),
            se=_values(res.groups, res.times, res.se_gt),
        )

    return Impl("moderndid", run, spec.copy, package="moderndid")


_PEERS = {
    "diff-diff": (_diff_diff, "diff-diff"),
    "csdid": (_csdid, "csdid"),
    "differences": (_differences, "differences"),
    "moderndid": (_moderndid, "moderndid"),
}


def _peer(name: str, spec: _Spec) -> Impl | Unavailable:
    build, package = _PEERS[name]
    return optional(name, package, lambda: build(spec))


def _case(
    name: str,
    description: str,
    spec: _Spec,
    peers: tuple[str, ...],
    tolerance: float = ATT_TOLERANCE,
) -> Case:
    return Case(
        name=name,
        family="callaway_santanna",
        description=description,
        ours=_ours(spec),
        peers=[_peer(p, spec) for p in peers],
        tolerance=tolerance,
    )


def _mpdta(est_method: str, covariates: tuple[str, ...], bootstrap: bool) -> _Spec:
    return _Spec(
        data.mpdta(),
        unit="countyreal",
        time="year",
        outcome="lemp",
        first_treated="first.treat",
        covariates=covariates,
        est_method=est_method,
        bootstrap=bootstrap,
    )


def _simulated(est_method: str, bootstrap: bool) -> _Spec:
    return _Spec(
        data.simulated_panel(),
        unit="unit",
        time="year",
        outcome="y",
        first_treated="first_treated",
        covariates=(),
        est_method=est_method,
        bootstrap=bootstrap,
    )


ALL_PEERS = ("diff-diff", "csdid", "differences", "moderndid")


def cases() -> list[Case]:
    return [
        _case(
            "cs_mpdta_reg_analytic",
            "CS ATT(g,t) on mpdta (500 units x 5 years), outcome regression without covariates, "
            "never-treated comparison, analytic (influence-function) standard errors, plus the "
            "aggregations",
            _mpdta("reg", (), bootstrap=False),
            ALL_PEERS,
        ),
        _case(
            "cs_mpdta_dr_lpop_analytic",
            "CS ATT(g,t) on mpdta, doubly robust with covariate lpop (logit propensity score and "
            "outcome regression per cell), never-treated comparison, analytic standard errors",
            _mpdta("dr", ("lpop",), bootstrap=False),
            ALL_PEERS,
            tolerance=PSCORE_TOLERANCE,
        ),
        _case(
            "cs_mpdta_reg_boot999",
            f"CS on mpdta, outcome regression, {BOOT_REPS} multiplier-bootstrap draws (Mammen "
            "weights) with sup-t uniform bands, every aggregation bootstrapped",
            _mpdta("reg", (), bootstrap=True),
            ALL_PEERS,
        ),
        _case(
            "cs_sim150_reg_analytic",
            "CS ATT(g,t) on the simulated 150 x 15 panel (5 cohorts, 70 cells), outcome "
            "regression, never-treated comparison, analytic standard errors",
            _simulated("reg", bootstrap=False),
            ALL_PEERS,
        ),
        _case(
            "cs_sim150_reg_boot999",
            f"CS on the simulated 150 x 15 panel, outcome regression, {BOOT_REPS} "
            "multiplier-bootstrap draws with uniform bands",
            _simulated("reg", bootstrap=True),
            ALL_PEERS,
        ),
    ]
