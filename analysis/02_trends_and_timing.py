# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 Descriptive trends and treatment timing
#
# Mean outcomes of the pilot LAs (the seven Kinship Zones) and the comparison LAs by year ending
# 31 March, and when each pilot LA starts to be treated.
#
# **The years 2026-2028 are ILLUSTRATIVE: simulated continuations of the real series with a
# known effect added in the pilot LAs, shown hatched in the charts. The post-pilot part of every
# chart and table below is therefore not evidence about the pilot.** Only the pre-pilot years
# (2018-2025 by default) are published statistics.

# %% tags=["parameters"]
spec_path = "specs/primary.yaml"  # analysis spec (relative to analysis/)
spec_overrides = []  # overrides, as with `kinship-eval run --set`
secondary_outcome = "kinship_exits_per_10k"  # a second outcome to chart

# %%
# Notebook conventions: imports follow the parameters cell; a bare expression displays.
# ruff: noqa: E402
import pandas as pd
from IPython.display import Markdown, display
from matplotlib_inline.backend_inline import set_matplotlib_formats

from kinship_eval.data.geography import load_geography
from kinship_eval.data.pilot import read_pilot_register
from kinship_eval.pipeline import build_panel, estimation_sample, group_trends, input_files
from kinship_eval.report import figures
from kinship_eval.spec import load_spec

set_matplotlib_formats("png")
pd.set_option("display.max_columns", 40)

spec = load_spec(spec_path, spec_overrides)
panel, illustrative = build_panel(spec)
sample, sample_notes = estimation_sample(spec, panel)
illustrative_years = tuple(illustrative.config.years) if illustrative is not None else ()
first_treated = int(sample.loc[sample["pilot"], "first_treated"].min())
display(Markdown("\n".join(f"- {note}" for note in [*panel.notes, *sample_notes])))

# %% [markdown]
# ## Pilot and comparison trends: primary outcome
#
# Unweighted mean across LAs (as the estimator weights them). The dotted line marks the first
# year of payments; **hatched years are illustrative (simulated)**.

# %%
display(Markdown(f"**{panel.label(spec.outcome)}** (`{spec.outcome}`)"))
trends = group_trends(sample, spec.outcome)
figures.plot_trends(
    trends,
    ylabel="Per 10,000 children aged 0-17",
    first_treated=first_treated,
    illustrative_from=min(illustrative_years) if illustrative_years else None,
)

# %%
alt = figures.trends_alt_text(
    trends,
    panel.label(spec.outcome),
    first_treated=first_treated,
    illustrative_years=illustrative_years,
)
display(Markdown(f"*Alt text:* {alt}"))
trends.pivot(index="period", columns="group", values=["mean", "n_las"]).round(2)

# %% [markdown]
# ## Secondary outcome
#
# The same view for the secondary outcome (by default SGO and CAO exits together, which the
# illustrative simulation also acts on). **Hatched years are illustrative.**

# %%
secondary_sample, _ = estimation_sample(
    spec.model_copy(update={"outcome": secondary_outcome}), panel
)
secondary_trends = group_trends(secondary_sample, secondary_outcome)
display(Markdown(f"**{panel.label(secondary_outcome)}** (`{secondary_outcome}`)"))
figures.plot_trends(
    secondary_trends,
    ylabel="Per 10,000 children aged 0-17",
    first_treated=first_treated,
    illustrative_from=min(illustrative_years) if illustrative_years else None,
)

# %%
alt = figures.trends_alt_text(
    secondary_trends,
    panel.label(secondary_outcome),
    first_treated=first_treated,
    illustrative_years=illustrative_years,
)
display(Markdown(f"*Alt text:* {alt}"))

# %% [markdown]
# ## Treatment timing
#
# The pilot register: when payments begin in each Kinship Zone and the first year ending
# 31 March counted as treated.

# %%
files = input_files(spec)
geography = load_geography(files["geography"], files["reorganisations"])
read_pilot_register(files["pilot_register"], geography)

# %% [markdown]
# Treatment status of each pilot LA in each year of the estimation sample: `before` payments,
# `paid` from the first treated year, and `-` where the outcome is missing (suppressed). **Years
# marked `(illustrative)` are simulated.** With `illustrative.stagger: true` in the spec, every
# second pilot LA starts a year later (a staggered design).

# %%
pilot_sample = sample.loc[sample["pilot"]]
timing_label = pilot_sample["period"].ge(pilot_sample["first_treated"]).map(
    {True: "paid", False: "before"}
) + pilot_sample["illustrative"].map({True: " (illustrative)", False: ""})
(
    pilot_sample.assign(status=timing_label)
    .pivot(index="la_name", columns="period", values="status")
    .reindex(columns=panel.periods)
    .fillna("-")
)

# %% [markdown]
# Treatment cohorts: number of LAs by first treated year (`0` = never treated, the comparison
# group under `control_group: never_treated`).

# %%
sample.drop_duplicates("la_code")["first_treated_0"].value_counts().sort_index().rename(
    "LAs"
).to_frame()
