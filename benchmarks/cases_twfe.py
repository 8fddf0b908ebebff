"""Two-way fixed effects and the TWFE event study on the simulated 150 x 15 panel.

``kinship_eval.did.twfe`` and ``kinship_eval.did.event_study`` against pyfixest (``feols`` with
``| unit + year`` and ``vcov={"CRV1": "unit"}``) and linearmodels ``PanelOLS`` called directly
(entity and time effects, clustered by entity), each starting from the same long DataFrame and
building its own regressors. Coefficients agree to ``TOLERANCE``; standard errors are recorded
(the small-sample factors differ: ours reproduces PanelOLS, whose TWFE default counts the fixed
effects and whose event study here uses ``group_debias``; pyfixest's default counts the time
effects only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks import data
from benchmarks.harness import Case, Impl, Outcome, optional

TOLERANCE = 1e-8
LEADS = 4
LAGS = 4
COLS = {"unit": "unit", "time": "year", "outcome": "y", "first_treated": "first_treated"}


def _rel_time(df: pd.DataFrame) -> np.ndarray:
    """Binned event time ``clip(year - first_treated, -LEADS, LAGS)``; -1 for never treated."""
    g = df["first_treated"].to_numpy()
    return np.where(g > 0, np.clip(df["year"].to_numpy() - g, -LEADS, LAGS), -1)


# ------------------------------------------------------------------------------------ TWFE
def _twfe_ours() -> Impl:
    from kinship_eval.did import twfe

    def run(df: pd.DataFrame) -> Outcome:
        res = twfe(df, **COLS)
        return Outcome({"treated": res.att}, res.att, se={"treated": res.se})

    return Impl("ours", run, data.simulated_panel, package="kinship_eval")


def _twfe_pyfixest() -> Impl:
    import pyfixest as pf

    def run(df: pd.DataFrame) -> Outcome:
        df["treated"] = ((df["first_treated"] > 0) & (df["year"] >= df["first_treated"])).astype(
            int
        )
        fit = pf.feols("y ~ treated | unit + year", data=df, vcov={"CRV1": "unit"})
        b, se = float(fit.coef()["treated"]), float(fit.se()["treated"])
        return Outcome({"treated": b}, b, se={"treated": se})

    return Impl("pyfixest", run, data.simulated_panel, package="pyfixest")


def _twfe_linearmodels() -> Impl:
    from linearmodels.panel import PanelOLS

    def run(df: pd.DataFrame) -> Outcome:
        df["treated"] = ((df["first_treated"] > 0) & (df["year"] >= df["first_treated"])).astype(
            float
        )
        indexed = df.set_index(["unit", "year"])
        fit = PanelOLS(
            indexed["y"], indexed[["treated"]], entity_effects=True, time_effects=True
        ).fit(cov_type="clustered", cluster_entity=True)
        b, se = float(fit.params["treated"]), float(fit.std_errors["treated"])
        return Outcome({"treated": b}, b, se={"treated": se})

    return Impl("linearmodels", run, data.simulated_panel, package="linearmodels")


# ------------------------------------------------------------------------------ event study
def _es_ours() -> Impl:
    from kinship_eval.did import event_study

    def run(df: pd.DataFrame) -> Outcome:
        res = event_study(df, **COLS, leads=LEADS, lags=LAGS, ref_period=-1, bin_endpoints=True)
        es = res.event_study
        es = es[es["rel_time"] != -1]
        values = dict(zip(es["rel_time"].astype(int), es["att"], strict=True))
        se = dict(zip(es["rel_time"].astype(int), es["se"], strict=True))
        return Outcome(values, float(res.att), se=se)

    return Impl("ours", run, data.simulated_panel, package="kinship_eval")


def _post_average(values: dict[int, float]) -> float:
    return float(np.mean([values[e] for e in range(LAGS + 1)]))


def _es_pyfixest() -> Impl:
    import pyfixest as pf

    def run(df: pd.DataFrame) -> Outcome:
        df["rel"] = _rel_time(df)
        fit = pf.feols("y ~ i(rel, ref=-1) | unit + year", data=df, vcov={"CRV1": "unit"})
        coef, se = fit.coef(), fit.se()
        values = {int(str(k).split("::")[1]): float(v) for k, v in coef.items()}
        ses = {int(str(k).split("::")[1]): float(v) for k, v in se.items()}
        return Outcome(values, _post_average(values), se=ses)

    return Impl("pyfixest", run, data.simulated_panel, package="pyfixest")


def _es_linearmodels() -> Impl:
    from linearmodels.panel import PanelOLS

    def run(df: pd.DataFrame) -> Outcome:
        rel = _rel_time(df)
        treated = df["first_treated"].to_numpy() > 0
        events = [e for e in range(-LEADS, LAGS + 1) if e != -1]
        for e in events:
            df[f"e{e}"] = (treated & (rel == e)).astype(float)
        indexed = df.set_index(["unit", "year"])
        fit = PanelOLS(
            indexed["y"],
            indexed[[f"e{e}" for e in events]],
            entity_effects=True,
            time_effects=True,
        ).fit(cov_type="clustered", cluster_entity=True, group_debias=True)
        values = {e: float(fit.params[f"e{e}"]) for e in events}
        ses = {e: float(fit.std_errors[f"e{e}"]) for e in events}
        return Outcome(values, _post_average(values), se=ses)

    return Impl("linearmodels", run, data.simulated_panel, package="linearmodels")


def cases() -> list[Case]:
    return [
        Case(
            name="twfe_sim150",
            family="twfe",
            description=(
                "TWFE DiD coefficient with unit and year effects and unit-clustered standard "
                "errors on the simulated 150 x 15 panel (2,250 rows)"
            ),
            ours=_twfe_ours(),
            peers=[
                optional("pyfixest", "pyfixest", _twfe_pyfixest),
                optional("linearmodels", "linearmodels", _twfe_linearmodels),
            ],
            tolerance=TOLERANCE,
        ),
        Case(
            name="event_study_sim150",
            family="event_study",
            description=(
                f"TWFE event study, event times -{LEADS}..{LAGS} with binned endpoints and "
                "reference -1, unit and year effects, unit-clustered standard errors, on the "
                "simulated 150 x 15 panel"
            ),
            ours=_es_ours(),
            peers=[
                optional("pyfixest", "pyfixest", _es_pyfixest),
                optional("linearmodels", "linearmodels", _es_linearmodels),
            ],
            tolerance=TOLERANCE,
        ),
    ]
