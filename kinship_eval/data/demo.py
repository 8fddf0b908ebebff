"""Illustrative pilot years: a documented, seeded continuation of the real series.

Years after the latest DfE release do not exist yet. To let the whole pipeline run — and to check
that it recovers a known effect — :func:`extend_illustrative` continues each LA's real series into
the pilot years and adds a known effect of the allowance in the pilot LAs. Every simulated value is
flagged ``illustrative`` (the row's ``illustrative`` column and each measure's status), so nothing
that rests on it can be mistaken for published statistics.

The model, for LA *i*, count measure *m* and year *t* after the last real year *T*:

.. math::

    \\ell_{imt} = \\mu_{im} + \\phi(\\ell_{im,t-1} - \\mu_{im}) + \\delta_{mt} + \\varepsilon_{imt},
    \\qquad \\varepsilon_{imt} \\sim N(0, \\sigma_{im}^2),\\ \\delta_{mt} \\sim N(0, \\tau^2)

where :math:`\\ell = \\log(\\text{rate per 10,000} + 0.1)`, :math:`\\mu_{im}` is the LA's mean over
its last ``base_years`` real years, :math:`\\sigma_{im}` the standard deviation of its deviations
from that mean (bounded to [0.05, 0.30]), :math:`\\phi` the persistence (serial correlation) and
:math:`\\delta_{mt}` a national shock common to all LAs. Population grows at each LA's mean growth
over its last three real years. Counts are Poisson with mean rate x population / 10,000. In pilot
LAs from their first treated period, the expected kinship exits (SGO and CAO) are multiplied by
``1 + effect x ramp(e)`` (``ramp`` = 1, or (e + 1) / 2 when ``dynamics="growing"``), so the true
effect on the treated is known exactly (in expectation) and returned with the panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from kinship_eval.data.measures import COUNT_MEASURES
from kinship_eval.data.panel import DERIVED_COUNTS, RATE_SUFFIX

#: Measures the allowance is assumed to act on in the illustrative simulation.
TREATED_MEASURES: tuple[str, ...] = ("sgo_exits", "cao_exits")
ILLUSTRATIVE = "illustrative"
TRUTH_COLUMNS = ["la_code", "period", "event_time", "outcome", "effect"]


@dataclass(frozen=True)
class IllustrativeConfig:
    """Settings of the illustrative simulation.

    Attributes
    ----------
    years
        Years (ending 31 March) to simulate, after the last real year.
    effect
        Proportional increase in expected kinship exits in pilot LAs once treated (0.25 = +25%).
    dynamics
        ``constant`` or ``growing`` (effect x (e + 1) / 2 in event year e).
    stagger
        If true, every second pilot LA (in code order) starts one year later than its register
        says — to exercise staggered-adoption estimators.
    persistence, national_shock_sd, base_years
        The serial correlation, the sd of the common yearly shock, and the number of real years
        that anchor each LA's level.
    seed
        Seed of the random generator; the same seed gives identical data.
    """

    years: tuple[int, ...] = (2026, 2027, 2028)
    effect: float = 0.25
    dynamics: Literal["constant", "growing"] = "constant"
    stagger: bool = False
    persistence: float = 0.5
    national_shock_sd: float = 0.03
    base_years: int = 5
    seed: int = 20260227


@dataclass(frozen=True)
class IllustrativeResult:
    """A panel extended with illustrative years, and the truth that was put into it."""

    frame: pd.DataFrame
    first_treated: dict[str, int]
    truth: pd.DataFrame
    config: IllustrativeConfig

    def true_att(self, outcome: str = "sgo_exits_per_10k") -> float:
        """True average effect on the treated (expected values) on a rate outcome.

        Outcomes the simulation does not act on have a true effect of 0.
        """
        rows = self.truth.loc[self.truth["outcome"] == outcome, "effect"]
        return float(rows.mean()) if len(rows) else 0.0


def staggered_starts(first_treated: Mapping[str, int], stagger: bool) -> dict[str, int]:
    """First treated periods, with every second pilot LA moved a year later if ``stagger``."""
    out = {code: int(g) for code, g in sorted(first_treated.items())}
    if stagger:
        for i, code in enumerate(sorted(out)):
            if i % 2 == 1:
                out[code] += 1
    return out


def extend_illustrative(
    frame: pd.DataFrame, first_treated: Mapping[str, int], config: IllustrativeConfig
) -> IllustrativeResult:
    """Append illustrative years to a wide panel (output of :func:`panel.assemble`).

    Parameters
    ----------
    frame
        Wide LA x period frame of real data.
    first_treated
        Pilot LA code -> first treated period (from the pilot register).
    config
        Simulation settings.
    """
    rng = np.random.default_rng(config.seed)
    starts = staggered_starts(first_treated, config.stagger)
    last_real = int(frame["period"].max())
    years = [y for y in sorted(config.years) if y > last_real]
    if not years:
        return IllustrativeResult(frame.copy(), starts, _empty_truth(), config)
    units = sorted(frame["la_code"].unique())
    measures = [m for m in COUNT_MEASURES if m in frame]
    by_unit = {u: g.sort_values("period") for u, g in frame.groupby("la_code")}
    horizon = years[-1] - last_real

    pop = _project_population(by_unit, units, last_real, horizon)
    rows = {
        "la_code": np.repeat(units, len(years)),
        "period": np.tile(years, len(units)),
    }
    sim = pd.DataFrame(rows)
    names = frame.drop_duplicates("la_code").set_index("la_code")
    sim["la_name"] = sim["la_code"].map(names["la_name"])
    sim["region"] = sim["la_code"].map(names["region"])
    offset = np.array(years) - last_real - 1
    sim["population_0_17"] = pop[:, offset].reshape(-1)
    sim["population_0_17_status"] = np.where(
        np.isfinite(sim["population_0_17"]), ILLUSTRATIVE, "not_collected"
    )

    truth_rows = []
    treated_effect = {m: np.zeros((len(units), len(years))) for m in TREATED_MEASURES}
    for m in measures:
        shocks = rng.normal(0.0, config.national_shock_sd, size=horizon)
        counts = np.full((len(units), len(years)), np.nan)
        for i, u in enumerate(units):
            hist = by_unit[u]
            rate = (hist[m] / hist["population_0_17"] * 10_000).to_numpy()
            periods = hist["period"].to_numpy()
            ok = np.isfinite(rate)
            noise = rng.normal(size=horizon)  # drawn for every unit: same stream whatever the data
            if ok.sum() < 2 or not np.isfinite(pop[i]).all():
                continue
            level = np.log(rate[ok] + 0.1)
            anchor = level[-config.base_years :]
            mu = anchor.mean()
            sigma = float(np.clip(anchor.std(ddof=1) if len(anchor) > 1 else 0.1, 0.05, 0.30))
            ell = level[-1]
            steps = last_real - int(periods[ok][-1])  # real years with no usable rate
            path = []
            for k in range(steps + horizon):
                shock = shocks[k - steps] if k >= steps else 0.0
                eps = (
                    sigma
                    * np.sqrt(1 - config.persistence**2)
                    * (noise[k - steps] if k >= steps else 0.0)
                )
                ell = mu + config.persistence * (ell - mu) + shock + eps
                path.append(ell)
            latent = np.maximum(np.exp(np.array(path[steps:])) - 0.1, 0.0)
            lam0 = latent[offset] * pop[i, offset] / 10_000
            lam1 = lam0.copy()
            if u in starts and m in TREATED_MEASURES:
                event = np.array(years) - starts[u]
                ramp = (event + 1) / 2 if config.dynamics == "growing" else np.ones_like(event)
                mult = np.where(event >= 0, 1 + config.effect * ramp, 1.0)
                lam1 = lam0 * mult
                treated_effect[m][i] = (lam1 - lam0) / pop[i, offset] * 10_000
            counts[i] = rng.poisson(lam1)
        sim[m] = counts.reshape(-1)
        sim[f"{m}_status"] = np.where(np.isfinite(sim[m]), ILLUSTRATIVE, "not_collected")

    effects = dict(treated_effect)
    for name, (parts, _label) in DERIVED_COUNTS.items():
        if all(p in effects for p in parts):
            effects[name] = sum(effects[p] for p in parts)
    for i, u in enumerate(units):
        if u not in starts:
            continue
        for j, y in enumerate(years):
            if y >= starts[u]:
                for m, eff in effects.items():
                    truth_rows.append((u, y, y - starts[u], f"{m}{RATE_SUFFIX}", eff[i, j]))

    for name, (parts, _label) in DERIVED_COUNTS.items():
        if all(p in sim for p in parts):
            sim[name] = sim[list(parts)].sum(axis=1, min_count=len(parts))
            sim[f"{name}_status"] = np.where(sim[name].notna(), ILLUSTRATIVE, "not_collected")
    for col in frame.columns:
        if col.endswith(RATE_SUFFIX):
            base = col.removesuffix(RATE_SUFFIX)
            if base in sim:
                sim[col] = sim[base] / sim["population_0_17"] * 10_000
        elif col not in sim:
            sim[col] = "not_collected" if col.endswith("_status") else np.nan
    sim["illustrative"] = True
    out = pd.concat([frame, sim[frame.columns]], ignore_index=True)
    out = out.sort_values(["la_code", "period"]).reset_index(drop=True)
    truth = pd.DataFrame(truth_rows, columns=TRUTH_COLUMNS)
    return IllustrativeResult(out, starts, truth, config)


def _project_population(
    by_unit: Mapping[str, pd.DataFrame], units: list[str], last_real: int, horizon: int
) -> np.ndarray:
    pop = np.full((len(units), horizon), np.nan)
    for i, u in enumerate(units):
        hist = by_unit[u]
        series = hist.set_index("period")["population_0_17"].dropna()
        if len(series) < 2:
            continue
        recent = series.iloc[-4:]
        growth = float(np.mean(recent.to_numpy()[1:] / recent.to_numpy()[:-1]) - 1)
        gap = last_real - int(series.index[-1])
        pop[i] = series.iloc[-1] * (1 + growth) ** (gap + np.arange(1, horizon + 1))
    return pop


def _empty_truth() -> pd.DataFrame:
    return pd.DataFrame(columns=TRUTH_COLUMNS)
