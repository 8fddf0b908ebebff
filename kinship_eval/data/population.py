"""ONS child population (aged 0-17) by LA, the denominator of every rate per 10,000 children.

Reads the ONS mid-year estimates in Explore Education Statistics layout (as DfE republishes them:
``time_period, ..., new_la_code, la_name, age_group, population_estimate``) into long
``population_0_17`` measure rows. DfE's rates for the year ending 31 March *Y* use the mid-(*Y*-1)
estimate, so by default the estimate for mid-year *T* becomes period *T* + 1.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kinship_eval.data.ees import read_ees
from kinship_eval.data.symbols import PUBLISHED

CHILDREN_0_17 = "Children aged 0 to 17 years"


def read_population(
    path: str | Path, *, age_group: str = CHILDREN_0_17, period_offset: int = 1
) -> pd.DataFrame:
    """Read an ONS 0-17 population file into long measure rows.

    Parameters
    ----------
    path
        EES-layout ONS mid-year estimates file.
    age_group
        The ``age_group`` filter value of the 0-17 rows.
    period_offset
        Added to ``time_period`` to give the year ending 31 March whose rates use the estimate
        (1: mid-2023 estimates are the denominator for 2024).

    Returns
    -------
    DataFrame
        ``period, la_code, old_la_code, la_name, measure, value, status, source`` with ``measure``
        ``population_0_17``; suppressed or unavailable estimates are missing with their reason.
    """
    file = Path(path)
    frame = read_ees(
        file,
        indicators=["population_estimate"],
        filters={"age_group": age_group},
        geographic_level="Local authority",
    )
    reason = frame["population_estimate_reason"].astype("object")
    return pd.DataFrame(
        {
            "period": frame["time_period"].astype(int) + period_offset,
            "la_code": frame["new_la_code"].astype(str),
            "old_la_code": frame["old_la_code"].astype(str),
            "la_name": frame["la_name"].astype(str),
            "measure": "population_0_17",
            "value": frame["population_estimate"].astype(float),
            "status": reason.where(reason.notna(), PUBLISHED),
            "source": file.name,
        }
    ).reset_index(drop=True)


def replace_population(measures: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """Measures with their ``population_0_17`` rows replaced by ``population``'s."""
    kept = measures.loc[measures["measure"] != "population_0_17"]
    return pd.concat(
        [kept, population[kept.columns.intersection(population.columns)]], ignore_index=True
    )
