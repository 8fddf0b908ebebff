"""Data sets shared by the benchmark cases.

* ``mpdta`` -- Callaway & Sant'Anna's minimum-wage example (500 counties x 2003-2007);
* ``prop99`` -- Abadie, Diamond & Hainmueller's California Proposition 99 panel (39 states x
  1970-2000);
* :func:`simulated_panel` -- a seeded 150-unit x 15-year panel with staggered adoption, the size of
  the LA x year panel the package is built for.

The reference CSVs live in ``../shared/reference`` next to the repository (override the folder with
``$KINSHIP_EVAL_REFERENCE``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

#: Seed of the simulated panel (fixed so every run times the same data).
SEED = 20260227
N_UNITS = 150
YEARS = np.arange(2010, 2025)  # 15 years
#: Adoption cohorts of the simulated panel; each gets ``COHORT_SIZE`` units, the rest never treated.
COHORTS = (2014, 2016, 2018, 2020, 2022)
COHORT_SIZE = 12
#: First treated year of every treated unit in the common-timing variant.
COMMON_YEAR = 2018


def reference_dir() -> Path:
    """Folder holding ``mpdta.csv`` and ``california_prop99.csv``."""
    env = os.environ.get("KINSHIP_EVAL_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def _reference_file(name: str) -> Path:
    path = reference_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: set KINSHIP_EVAL_REFERENCE to the folder holding {name}"
        )
    return path


@cache
def _mpdta() -> pd.DataFrame:
    df = pd.read_csv(_reference_file("mpdta.csv"))
    df["countyreal"] = df["countyreal"].astype(int)
    df["year"] = df["year"].astype(int)
    df["first.treat"] = df["first.treat"].astype(int)
    return df.sort_values(["countyreal", "year"], ignore_index=True)


def mpdta() -> pd.DataFrame:
    """mpdta: columns ``year, countyreal, lpop, lemp, first.treat, treat`` (a fresh copy)."""
    return _mpdta().copy()


@cache
def _prop99() -> pd.DataFrame:
    df = pd.read_csv(_reference_file("california_prop99.csv"), sep=";")
    df["Year"] = df["Year"].astype(int)
    treated_states = df.loc[df["treated"] == 1, "State"].unique()
    first = df.loc[df["treated"] == 1].groupby("State")["Year"].min()
    df["first_treated"] = df["State"].map(first).fillna(0).astype(int)
    df["treated_unit"] = df["State"].isin(treated_states).astype(int)
    df["post"] = (df["Year"] >= first.min()).astype(int)
    return df.sort_values(["State", "Year"], ignore_index=True)


def prop99() -> pd.DataFrame:
    """Prop 99: ``State, Year, PacksPerCapita, treated`` plus ``first_treated`` (1989 for
    California, 0 otherwise), ``treated_unit`` and ``post`` (a fresh copy)."""
    return _prop99().copy()


@cache
def _simulated(common: bool) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    n, t = N_UNITS, len(YEARS)
    first = np.zeros(n, dtype=int)
    for k, g in enumerate(COHORTS):
        first[k * COHORT_SIZE : (k + 1) * COHORT_SIZE] = g
    first = rng.permutation(first)
    ever = first > 0
    x = rng.normal(size=n) + 0.3 * ever
    alpha = rng.normal(scale=1.0, size=n) + 0.5 * ever
    gamma = np.cumsum(rng.normal(scale=0.3, size=t))
    eps = rng.normal(scale=1.0, size=(n, t))
    if common:
        first = np.where(ever, COMMON_YEAR, 0)
    year = YEARS[None, :]
    g = first[:, None]
    treated = (g > 0) & (year >= g)
    # dynamic effect growing with exposure, plus a covariate-specific trend (so that
    # conditioning on x matters for the doubly robust estimators)
    effect = np.where(treated, 0.5 + 0.1 * (year - g), 0.0)
    trend = 0.05 * x[:, None] * (year - YEARS[0])
    base = alpha[:, None] + gamma[None, :] + trend + eps
    y = base + effect
    # a fifth of the effect: what the inference cases test (p-values away from 0)
    y_weak = base + 0.2 * effect
    frame = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(1, n + 1), t),
            "year": np.tile(YEARS, n),
            "y": y.ravel(),
            "y_weak": y_weak.ravel(),
            "first_treated": np.repeat(first, t),
            "x": np.repeat(x, t),
            "treated": treated.ravel().astype(int),
        }
    )
    frame["treated_unit"] = (frame["first_treated"] > 0).astype(int)
    if common:
        frame["post"] = (frame["year"] >= COMMON_YEAR).astype(int)
    return frame


def simulated_panel(*, common: bool = False) -> pd.DataFrame:
    """Seeded 150-unit x 15-year panel (2,250 rows), a fresh copy.

    Columns: ``unit`` (1..150), ``year`` (2010-2024), ``y``, ``y_weak`` (the same outcome with a
    fifth of the effect, for the inference cases), ``first_treated`` (0 = never),
    ``x`` (time-invariant covariate), ``treated`` (1 once treated), ``treated_unit`` (ever
    treated). Five cohorts of 12 units adopt in 2014, 2016, 2018, 2020 and 2022; 90 units are
    never treated. The effect is ``0.5 + 0.1 * (year - first_treated)`` once treated.

    With ``common=True`` the same 60 units all adopt in 2018 (and a ``post`` column is added):
    the design of the peers that only handle a common adoption date.
    """
    return _simulated(common).copy()
