"""Inference: wild cluster bootstrap, randomization inference and HonestDiD bounds.

Our side comes from ``kinship_eval.did.inference`` and ``kinship_eval.did.pretrends``; when a module
or function is missing the case is kept with our side recorded as "not available" (the peers are
still timed, as a reference).

* ``wild_bootstrap_sim150_9999`` -- TWFE coefficient (unit and year effects) on the simulated
  150 x 15 panel's ``y_weak`` outcome, WCR wild cluster bootstrap by unit with 9,999 Rademacher
  draws: ``wild_bootstrap_did`` against ``wildboottest`` (statsmodels OLS with explicit unit and
  year dummies) and pyfixest's ``Feols.wildboottest``. The coefficient must agree to 1e-8 and the
  bootstrap p-values within ``WILD_P_TOLERANCE``. Ours also inverts the test for a confidence
  interval; the peers report only the p-value.
* ``ri_twfe_sim150_common_5000`` -- Fisher randomization inference with 5,000 random
  reassignments of which units are treated, on the common-timing variant of the panel (all 60
  treated units adopt in 2018; the peer handles only one adoption date): ``randomization_inference``
  (TWFE, ``ci=False``) against diff-diff ``permutation_test`` (2x2 DiD refitted per permutation).
  On a balanced common-timing panel the TWFE and 2x2 estimates coincide; p-values agree within
  ``RI_P_TOLERANCE``.
* ``honestdid_sim150_sd_flci`` / ``honestdid_sim150_rm_clf`` -- HonestDiD robust confidence sets
  (Rambachan & Roth 2023) for the first post-treatment event-study coefficient, from the same
  coefficient vector and covariance (a TWFE event study of ``y_weak``, 3 pre and 5 post periods,
  computed once, untimed): smoothness restrictions with FLCI for 5 values of M, and relative
  magnitudes with the conditional least-favourable hybrid for 2 values of Mbar on a common
  200-point grid. Peer: moderndid (a port of the R package). Interval ends agree within the
  stated tolerances (FLCI: the folded-normal quantile; C-LF: two grid steps).

Monte Carlo tolerances: two p-values from independent draws differ with standard deviation
``sqrt(2 p (1 - p) / B)``, at most 0.010 for B = 5,000 and 0.0071 for B = 9,999; the tolerances are
three of those.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import data
from benchmarks.harness import Case, Impl, Outcome, Unavailable, optional

WILD_REPS = 9999
RI_REPS = 5000
SEED = 12345
WILD_P_TOLERANCE = 0.02
RI_P_TOLERANCE = 0.03
COEF_TOLERANCE = 1e-8
OUTCOME = "y_weak"

LEADS, LAGS = 4, 4
SD_M = [0.0, 0.01, 0.02, 0.05, 0.1]
RM_MBAR = [0.5, 1.0]
GRID_POINTS = 200
FLCI_TOLERANCE = 2e-3


def _ours_function(module: str, names: tuple[str, ...]) -> Callable[..., Any] | str:
    """Our function, or the reason it is not available."""
    try:
        mod = importlib.import_module(f"kinship_eval.did.{module}")
    except ImportError:
        return f"not available (kinship_eval.did.{module} does not exist)"
    for name in names:
        if hasattr(mod, name):
            return getattr(mod, name)
    return f"not available (kinship_eval.did.{module} has no {' / '.join(names)})"


# ------------------------------------------------------------------------- wild bootstrap
def _wild_ours() -> Impl | Unavailable:
    fn = _ours_function("inference", ("wild_bootstrap_did",))
    if isinstance(fn, str):
        return Unavailable("ours", fn, "kinship_eval")

    def run(df: pd.DataFrame) -> Outcome:
        res = fn(
            df,
            unit="unit",
            time="year",
            outcome=OUTCOME,
            first_treated="first_treated",
            reps=WILD_REPS,
            weights="rademacher",
            impose_null=True,
            seed=SEED,
            full_enumeration=False,
        )
        return Outcome(
            {"treated": float(res.att)},
            float(res.att),
            p_value=float(res.p_value),
            info={"ci": [res.ci_low, res.ci_high]},
        )

    return Impl("ours", run, data.simulated_panel, package="kinship_eval")


def _wild_wildboottest() -> Impl:
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest

    def run(df: pd.DataFrame) -> Outcome:
        dummies = pd.get_dummies(df[["unit", "year"]].astype(str), drop_first=True, dtype=float)
        X = sm.add_constant(pd.concat([df[["treated"]].astype(float), dummies], axis=1))
        model = sm.OLS(df[OUTCOME], X)
        table = wildboottest(
            model,
            B=WILD_REPS,
            cluster=df["unit"],
            param="treated",
            weights_type="rademacher",
            impose_null=True,
            seed=SEED,
            show=False,
        )
        coef = float(model.fit().params["treated"])
        return Outcome({"treated": coef}, coef, p_value=float(table["p-value"].iloc[0]))

    return Impl("wildboottest", run, data.simulated_panel, package="wildboottest")


def _wild_pyfixest() -> Impl:
    import pyfixest as pf

    importlib.import_module("wildboottest")

    def run(df: pd.DataFrame) -> Outcome:
        fit = pf.feols(f"{OUTCOME} ~ treated | unit + year", data=df, vcov={"CRV1": "unit"})
        res = fit.wildboottest(
            reps=WILD_REPS,
            param="treated",
            cluster="unit",
            weights_type="rademacher",
            impose_null=True,
            seed=SEED,
        )
        coef = float(fit.coef()["treated"])
        return Outcome({"treated": coef}, coef, p_value=float(res["Pr(>|t|)"]))

    return Impl(
        "pyfixest", run, data.simulated_panel, package="pyfixest", note="Feols.wildboottest"
    )


# ------------------------------------------------------------------ randomization inference
def _common() -> pd.DataFrame:
    return data.simulated_panel(common=True)


def _ri_ours() -> Impl | Unavailable:
    fn = _ours_function("inference", ("randomization_inference",))
    if isinstance(fn, str):
        return Unavailable("ours", fn, "kinship_eval")

    def run(df: pd.DataFrame) -> Outcome:
        res = fn(
            df,
            unit="unit",
            time="year",
            outcome=OUTCOME,
            first_treated="first_treated",
            estimator="twfe",
            reps=RI_REPS,
            seed=SEED,
            exact=False,
            ci=False,
        )
        return Outcome({"att": float(res.att)}, float(res.att), p_value=float(res.p_value))

    return Impl("ours", run, _common, package="kinship_eval")


def _ri_diff_diff() -> Impl:
    from diff_diff import permutation_test

    def run(df: pd.DataFrame) -> Outcome:
        res = permutation_test(
            df,
            outcome=OUTCOME,
            treatment="treated_unit",
            post="post",
            unit="unit",
            n_permutations=RI_REPS,
            seed=SEED,
        )
        att = float(res.original_effect)
        return Outcome({"att": att}, att, p_value=float(res.p_value))

    return Impl("diff-diff", run, _common, package="diff-diff", note="permutation_test")


# --------------------------------------------------------------------------------- HonestDiD
def _event_study_inputs() -> dict[str, Any]:
    """TWFE event-study coefficients and their clustered covariance (computed once, untimed)."""
    from linearmodels.panel import PanelOLS

    df = data.simulated_panel()
    g = df["first_treated"].to_numpy()
    rel = np.where(g > 0, np.clip(df["year"].to_numpy() - g, -LEADS, LAGS), -1)
    events = [e for e in range(-LEADS, LAGS + 1) if e != -1]
    for e in events:
        df[f"e{e}"] = ((g > 0) & (rel == e)).astype(float)
    indexed = df.set_index(["unit", "year"])
    fit = PanelOLS(
        indexed[OUTCOME], indexed[[f"e{e}" for e in events]], entity_effects=True, time_effects=True
    ).fit(cov_type="clustered", cluster_entity=True)
    beta = fit.params.to_numpy()
    sigma = fit.cov.to_numpy()
    num_pre = sum(e < 0 for e in events)
    sd = math.sqrt(sigma[num_pre, num_pre])
    return {
        "beta": beta,
        "sigma": sigma,
        "num_pre": num_pre,
        "num_post": len(events) - num_pre,
        "grid": (float(beta[num_pre] - 10 * sd), float(beta[num_pre] + 10 * sd)),
    }


def _intervals(m: Any, lo: Any, hi: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for mv, a, b in zip(np.asarray(m), np.asarray(lo), np.asarray(hi), strict=True):
        out[f"lb@{float(mv):g}"] = float(a)
        out[f"ub@{float(mv):g}"] = float(b)
    return out


def _honest_ours(inputs: dict[str, Any], method: str) -> Impl | Unavailable:
    fn = _ours_function("pretrends", ("honest_did",))
    if isinstance(fn, str):
        return Unavailable("ours", fn, "kinship_eval")

    def run(_: Any) -> Outcome:
        kwargs: dict[str, Any] = {"m_values": SD_M if method == "smoothness" else RM_MBAR}
        if method == "relative_magnitude":
            kwargs.update(grid_points=GRID_POINTS, grid_bounds=inputs["grid"])
        res = fn(
            inputs["beta"],
            inputs["sigma"],
            inputs["num_pre"],
            inputs["num_post"],
            method=method,
            **kwargs,
        )
        values = _intervals(res.m, res.ci_low, res.ci_high)
        return Outcome(values, float(np.asarray(res.ci_low)[0]))

    return Impl("ours", run, package="kinship_eval")


def _honest_moderndid(inputs: dict[str, Any], method: str) -> Impl:
    import moderndid

    def run(_: Any) -> Outcome:
        args = (inputs["beta"], inputs["sigma"], inputs["num_pre"], inputs["num_post"])
        if method == "smoothness":
            res = moderndid.create_sensitivity_results_sm(
                *args, method="FLCI", m_vec=np.asarray(SD_M)
            )
            m = res["m"].to_numpy()
        else:
            lo, hi = inputs["grid"]
            res = moderndid.create_sensitivity_results_rm(
                *args,
                method="C-LF",
                m_bar_vec=np.asarray(RM_MBAR),
                grid_points=GRID_POINTS,
                grid_lb=lo,
                grid_ub=hi,
            )
            m = res["Mbar"].to_numpy()
        values = _intervals(m, res["lb"].to_numpy(), res["ub"].to_numpy())
        return Outcome(values, float(res["lb"].to_numpy()[0]))

    return Impl("moderndid", run, package="moderndid")


HONESTDID_REASON = (
    "not installed: honestdid 0.1.1 requires torch (with its CUDA wheels, several GB) and cvxpy; "
    "excluded from benchmarks/requirements.txt, moderndid's HonestDiD port is timed instead"
)


def cases() -> list[Case]:
    out = [
        Case(
            name="wild_bootstrap_sim150_9999",
            family="inference",
            description=(
                f"WCR wild cluster bootstrap ({WILD_REPS} Rademacher draws, clusters = 150 units) "
                "of the TWFE coefficient with unit and year effects, simulated 150 x 15 panel"
            ),
            ours=_wild_ours(),
            peers=[
                optional("wildboottest", "wildboottest", _wild_wildboottest),
                optional("pyfixest", "pyfixest", _wild_pyfixest),
            ],
            tolerance=COEF_TOLERANCE,
            p_tolerance=WILD_P_TOLERANCE,
        ),
        Case(
            name="ri_twfe_sim150_common_5000",
            family="inference",
            description=(
                f"Randomization inference, {RI_REPS} random reassignments of the 60 treated "
                "units among 150, DiD estimate per reassignment, common-timing 150 x 15 panel"
            ),
            ours=_ri_ours(),
            peers=[optional("diff-diff", "diff-diff", _ri_diff_diff)],
            tolerance=COEF_TOLERANCE,
            p_tolerance=RI_P_TOLERANCE,
        ),
    ]
    inputs = _event_study_inputs()
    grid_step = (inputs["grid"][1] - inputs["grid"][0]) / (GRID_POINTS - 1)
    for method, name, tol, what in (
        (
            "smoothness",
            "honestdid_sim150_sd_flci",
            FLCI_TOLERANCE,
            f"smoothness restriction Delta^SD(M), FLCI, M in {SD_M}",
        ),
        (
            "relative_magnitude",
            "honestdid_sim150_rm_clf",
            2 * grid_step,
            f"relative magnitudes Delta^RM(Mbar), C-LF hybrid, Mbar in {RM_MBAR}, "
            f"{GRID_POINTS}-point grid",
        ),
    ):
        out.append(
            Case(
                name=name,
                family="pretrends",
                description=(
                    "HonestDiD robust confidence sets for the first post-treatment coefficient of "
                    f"a TWFE event study (3 pre, 5 post periods): {what}"
                ),
                ours=_honest_ours(inputs, method),
                peers=[
                    optional(
                        "moderndid", "moderndid", lambda m=method: _honest_moderndid(inputs, m)
                    ),
                    Unavailable("honestdid", HONESTDID_REASON, "honestdid"),
                ],
                tolerance=tol,
            )
        )
    return out
