# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 Data quality and coverage
#
# What the evaluation's data are made of before any estimate is run: which LA x year values are
# published and which are suppressed, for each measure and year; which years are missing; how
# local-government reorganisations (splits, mergers and new codes) are harmonised; and which
# years of the panel are **illustrative**.
#
# The published statistics are real (DfE children looked after, ONS mid-year estimates; see
# `kinship_eval/data/bundled/DATA_NOTES.md`). **The years 2026-2028 of the panel are
# ILLUSTRATIVE: simulated continuations of the real series with a known effect added in the
# pilot LAs. They are not data**, and nothing in these notebooks that rests on them is evidence
# about the pilot.
#
# Every table below comes from `kinship_eval` (`read_measures`, `build_panel`); the notebook only
# calls and displays.

# %% tags=["parameters"]
spec_path = "specs/primary.yaml"  # analysis spec (relative to analysis/)
spec_overrides = []  # overrides, as with `kinship-eval run --set`

# %%
# Notebook conventions: imports follow the parameters cell; a bare expression displays.
# ruff: noqa: E402, B018
import pandas as pd
from IPython.display import Markdown, display

from kinship_eval.data.geography import load_geography
from kinship_eval.data.measures import COUNT_MEASURES, OTHER_MEASURES, read_measures
from kinship_eval.pipeline import build_panel, input_files
from kinship_eval.spec import load_spec

pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)

spec = load_spec(spec_path, spec_overrides)
files = input_files(spec)
pd.Series({role: str(path) for role, path in files.items()}, name="input file").to_frame()

# %% [markdown]
# ## The published measures
#
# `read_measures` reads and validates the long file of LA x year values: one row per LA, year
# and measure, with `status` saying whether the value was published or why it is missing.
# Missing values stay missing with their reason; they are never set to zero.

# %%
geography = load_geography(files["geography"], files["reorganisations"])
measures = read_measures(files["measures"], geography)
pd.Series({**COUNT_MEASURES, **OTHER_MEASURES}, name="measure").to_frame()

# %%
display(
    Markdown(
        f"**{len(measures):,} rows**, years {measures['period'].min()} to "
        f"{measures['period'].max()}, {measures['la_code'].nunique()} LA codes."
    )
)
pd.crosstab(measures["measure"], measures["status"], margins=True)

# %% [markdown]
# ### Suppression by measure and year
#
# Share of LA rows **not published** (suppressed, or not available) for each measure and year
# ending 31 March. Small counts (1-5) of children are suppressed in the published tables, so
# rare outcomes such as exits through a child arrangements order are often missing.

# %%
not_published = measures["status"].ne("published")
pd.crosstab(
    measures["measure"], measures["period"], values=not_published, aggfunc="mean"
).style.format("{:.0%}", na_rep="-")

# %% [markdown]
# ### Missing years
#
# Number of LA rows for each measure and year; a `0` is a year in which the measure was not
# published for any LA in the input.

# %%
pd.crosstab(measures["measure"], measures["period"]).reindex(
    columns=range(measures["period"].min(), measures["period"].max() + 1), fill_value=0
)

# %% [markdown]
# ## Reorganisations and the harmonisation log
#
# LAs split, merged or given a new code are listed in the reorganisation table, with the first
# year ending 31 March under the new geography. The spec's `harmonisation` rule makes the panel
# consistent over time: `aggregate` combines predecessor and successor LAs into one stable unit
# for every year, `drop` leaves them out.

# %%
geography.reorganisations

# %%
panel, illustrative = build_panel(spec)
display(Markdown(f"**Harmonisation rule: `{panel.harmonisation.rule}`**"))
display(Markdown("\n".join(f"- {line}" for line in panel.harmonisation.describe())))

# %% [markdown]
# The same panel under the other rule, for comparison (the robustness grid in notebook 04
# estimates under both).

# %%
other_rule = "drop" if spec.harmonisation == "aggregate" else "aggregate"
other_panel, _ = build_panel(spec.model_copy(update={"harmonisation": other_rule}))
display(Markdown(f"**Harmonisation rule: `{other_rule}`**"))
display(Markdown("\n".join(f"- {line}" for line in other_panel.harmonisation.describe())))
pd.DataFrame(
    {
        spec.harmonisation: [panel.frame["la_code"].nunique(), len(panel.frame)],
        other_rule: [other_panel.frame["la_code"].nunique(), len(other_panel.frame)],
    },
    index=["LA units", "LA-years"],
)

# %% [markdown]
# ## The panel the estimates use
#
# One row per stable LA unit and year ending 31 March, with the rates per 10,000 children aged
# 0-17. Notes recorded while building it:

# %%
display(Markdown("\n".join(f"- {note}" for note in panel.notes)))
panel.frame.head()

# %% [markdown]
# ### Outcome coverage by year
#
# Status of the primary outcome's count in the panel, by year. **Rows flagged `illustrative`
# (2026-2028 by default) are simulated, not published.**

# %%
outcome_count = spec.outcome.removesuffix("_per_10k")
pd.crosstab(
    [panel.frame["period"], panel.frame["illustrative"]],
    panel.frame[f"{outcome_count}_status"],
    margins=True,
)

# %% [markdown]
# Share of LA units with each outcome rate observed, by year:

# %%
rates = list(panel.rate_columns)
panel.frame[rates].notna().groupby(panel.frame["period"]).mean().style.format("{:.0%}")

# %% [markdown]
# ### The pilot LAs
#
# Status of the primary outcome in each pilot LA and year: a suppressed year is left out of the
# estimation sample rather than imputed. **Values from the illustrative years are simulated.**

# %%
pilot_rows = panel.frame.loc[panel.frame["pilot"]]
pilot_rows.pivot(index="la_name", columns="period", values=f"{outcome_count}_status")
