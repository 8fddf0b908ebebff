# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 Robustness and sensitivity
#
# How much the primary estimate (notebook 03) depends on the choices behind it:
#
# 1. a robustness table of alternative estimators and outcomes;
# 2. the event study and a joint test of the pre-treatment coefficients (parallel pre-trends);
# 3. HonestDiD (Rambachan and Roth 2023): robust intervals when parallel trends may fail by up
#    to a multiple of the largest pre-treatment departure;
# 4. a specification grid and its specification curve.
#
# **ILLUSTRATIVE. Every post-treatment estimate below rests on the simulated years 2026-2028,
# into which a known effect was put; so does the event study from the first simulated year on.
# These results check the methods; they are not evidence about the allowance.**

# %% tags=["parameters"]
spec_path = "specs/primary.yaml"  # analysis spec (relative to analysis/)
spec_overrides = []  # overrides, as with `kinship-eval run --set`
reps = None  # bootstrap replications of the primary estimate (None: the spec's)
honest_m_values = None  # HonestDiD M or Mbar values (None: the spec's)
robustness_estimators = None  # estimators of the robustness table (None: the spec's)
robustness_outcomes = None  # outcomes of the robustness table (None: the spec's)
grid_path = "specs/sensitivity.yaml"  # specification grid (relative to analysis/)
grid_overrides = []  # overrides applied to every grid member
grid_jobs = -1  # parallel workers for the grid (-1: all cores)
grid_cache_dir = "../reports/build/grid/cache"  # grid cache (as `kinship-eval grid`)

# %%
# Notebook conventions: imports follow the parameters cell; a bare expression displays.
# ruff: noqa: E402, B018
import json

import pandas as pd
from IPython.display import Markdown, display
from matplotlib_inline.backend_inline import set_matplotlib_formats

from kinship_eval.grid import load_grid, plot_spec_curve, run_grid
from kinship_eval.pipeline import (
    build_panel,
    estimate,
    estimation_sample,
    event_study_for,
    pretrend_diagnostics,
    robustness_table,
)
from kinship_eval.report import figures
from kinship_eval.spec import load_spec

set_matplotlib_formats("png")
pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)

optional = {
    "reps": reps,
    "honest.m_values": honest_m_values,
    "robustness.estimators": robustness_estimators,
    "robustness.outcomes": robustness_outcomes,
}
spec = load_spec(
    spec_path,
    [*spec_overrides, *(f"{k}={json.dumps(v)}" for k, v in optional.items() if v is not None)],
)
panel, illustrative = build_panel(spec)
sample, sample_notes = estimation_sample(spec, panel)
illustrative_years = tuple(illustrative.config.years) if illustrative is not None else ()
first_treated = int(sample.loc[sample["pilot"], "first_treated"].min())
truth = illustrative.true_att(spec.outcome) if illustrative is not None else None
primary = estimate(spec, sample)
print(primary.summary())

# %% [markdown]
# ## 1. Robustness table
#
# The primary outcome under each alternative estimator, and the alternative outcomes under the
# primary estimator, each with that estimator's default inference. **Illustrative.**

# %%
robustness = robustness_table(spec, sample, primary)
robustness

# %% [markdown]
# ## 2. Event study and pre-trend test
#
# Differences between pilot and comparison LAs in each year relative to the first year of
# payments (year -1 is the reference). **Hatched event times rest on illustrative (simulated)
# years**; the pre-trend test below uses the pre-treatment coefficients, and with the default
# spec the reference year (2026) is itself a simulated year.

# %%
event_study = event_study_for(spec, sample)
figures.plot_event_study(
    event_study,
    ylabel="Difference, per 10,000 children",
    illustrative_from=min(illustrative_years) - first_treated if illustrative_years else None,
)

# %%
display(Markdown("*Alt text:* " + figures.event_study_alt_text(event_study)))
event_study.event_study

# %% [markdown]
# Joint Wald test that every pre-treatment coefficient is zero. A small p-value is evidence
# against parallel pre-trends; a large one is weak evidence for them (pre-tests have low power).

# %%
pretrends, honest = pretrend_diagnostics(spec, event_study)
pd.Series(pretrends, name="pre-trend test").to_frame()

# %% [markdown]
# ## 3. HonestDiD sensitivity
#
# Robust confidence intervals for the first-year effect as larger departures from parallel
# trends are allowed. Under the relative-magnitudes restriction (the primary spec's) the
# year-to-year change in the departure after treatment is at most `Mbar` times the largest such
# change before treatment (`Mbar` = 0: parallel trends hold exactly after treatment); under the
# smoothness restriction `M` bounds how much the slope of the departure may change from one year
# to the next. The breakdown value is the smallest `Mbar` (or `M`) at which the interval includes
# zero. **Illustrative.**

# %%
print(honest.summary())
honest.to_frame()

# %%
figures.plot_honest(honest, ylabel="First-year effect, per 10,000 children")

# %%
display(Markdown("*Alt text:* " + figures.honest_alt_text(honest)))

# %% [markdown]
# ## 4. Specification grid
#
# Every combination of the grid file's choices is one specification, estimated on the same
# data. The curve sorts the estimates; below it, dots mark the choices each one makes. The
# dashed line is the true effect put into the illustrative years (primary outcome). **All
# estimates are illustrative.**

# %%
members = load_grid(grid_path, grid_overrides)
grid = run_grid(members, cache_dir=grid_cache_dir, n_jobs=grid_jobs, progress=False)
display(
    Markdown(
        f"**{len(grid)} specifications** from `{grid_path}`, "
        f"{int(grid['status'].eq('ok').sum())} estimated."
    )
)
grid

# %%
plot_spec_curve(grid, level=spec.level, truth=truth)

# %%
display(Markdown("*Alt text:* " + figures.spec_curve_alt_text(grid)))
