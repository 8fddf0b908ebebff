"""The ONS population reader on the real file, and replacing the bundled population."""

from __future__ import annotations

import csv

import pytest

from kinship_eval.data.measures import read_measures
from kinship_eval.data.population import read_population, replace_population

ONS = "dfe/dfe_csc_dashboard/data-raw/ons_mid-year_population_estimates_2012_to_2024.csv"


def test_read_population_on_real_file(reference):
    path = reference / ONS
    pop = read_population(path)
    assert set(pop["measure"]) == {"population_0_17"}
    assert pop["period"].min() == 2013  # mid-2012 estimates are the 2013 denominator
    # independent read of one cell with the csv module
    with open(path, encoding="utf-8") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["time_period"] == "2023"
            and r["new_la_code"] == "E06000054"
            and r["age_group"] == "Children aged 0 to 17 years"
        ]
    assert len(rows) == 1
    got = pop.loc[(pop["la_code"] == "E06000054") & (pop["period"] == 2024), "value"]
    assert got.iloc[0] == float(rows[0]["population_estimate"])
    # 'x' for LAs that did not exist in a year stays missing with a reason, never zero
    missing = pop.loc[pop["value"].isna()]
    assert (missing["status"] != "published").all()
    assert (pop.loc[pop["status"] == "published", "value"] > 0).all()


def test_replace_population_keeps_other_measures(reference):
    measures = read_measures()
    pop = read_population(reference / ONS)
    out = replace_population(measures, pop)
    assert (out["measure"] != "population_0_17").sum() == (
        measures["measure"] != "population_0_17"
    ).sum()
    assert (out["measure"] == "population_0_17").sum() == len(pop)


def test_bundled_population_matches_the_ons_file(reference):
    """The bundled denominators are the ONS file's estimates (latest release) for 2013-2025."""
    pop = read_population(reference / ONS).set_index(["la_code", "period"])["value"]
    bundled = read_measures()
    bundled = bundled.loc[
        (bundled["measure"] == "population_0_17") & bundled["period"].between(2021, 2025)
    ].set_index(["la_code", "period"])["value"]
    common = bundled.index.intersection(pop.index)
    assert len(common) > 500
    assert bundled.loc[common].to_numpy() == pytest.approx(pop.loc[common].to_numpy())
