# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 Cost-benefit analysis
#
# Green Book appraisal of the kinship allowance pilot (`analysis/specs/cba.yaml`, run with
# `kinship_eval.cba.run_cba`): costs and benefits in real prices, discounted at the Social Time
# Preference Rate, from the fiscal, economic and social perspectives; switching values; one-way
# sensitivity (tornado); and a Monte Carlo simulation of the benefit-cost ratio.
#
# **ILLUSTRATIVE. No post-pilot data exist yet, so the effect of the allowance on kinship exits
# is an assumption (+1.0 exit per 10,000 children a year by default), not an estimate. Every
# net present social value, benefit-cost ratio and probability below rests on that assumption.**
# Once the effect has been estimated on real data, set `effect.source` to `did_json` or
# `did_spec` (see the comments in `cba.yaml`), e.g. through `cba_overrides`.

# %% tags=["parameters"]
cba_spec_path = "specs/cba.yaml"  # CBA spec (relative to analysis/)
cba_overrides = []  # overrides, as with `kinship-eval cba --set`
mc_draws = None  # Monte Carlo draws (None: the spec's)
perspective = None  # perspective of the tornado and the BCR chart (None: the spec's)

# %%
# Notebook conventions: imports follow the parameters cell; a bare expression displays.
# ruff: noqa: E402, B018
import pandas as pd
from IPython.display import Markdown, display
from matplotlib_inline.backend_inline import set_matplotlib_formats

from kinship_eval.cba import run_cba
from kinship_eval.report import figures

set_matplotlib_formats("png")
pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)
pd.set_option("display.float_format", "{:,.3f}".format)

cba = run_cba(
    cba_spec_path,
    [*cba_overrides, *([f"monte_carlo.draws={mc_draws}"] if mc_draws is not None else [])],
)
perspective = perspective or cba.spec.sensitivity.perspective
display(Markdown(f"**{cba.results.headline(perspective)}**"))
effect = cba.assumptions.effect
display(Markdown(f"Effect: {effect.source} (illustrative: **{effect.illustrative}**)"))

# %% [markdown]
# ## The appraisal
#
# Present values by perspective. In the economic and social perspectives the allowance is a
# transfer from taxpayers to carers and nets out. **Illustrative effect.**

# %%
print(cba.results.summary())

# %%
cba.results.to_frame()

# %% [markdown]
# ### Assumptions
#
# Every input with its value, range, source and strength of evidence.

# %%
cba.assumptions.table()

# %% [markdown]
# ## Switching values
#
# The value of each input at which the net present social value (NPSV) changes sign, others
# held at their central values.

# %%
cba.switching

# %% [markdown]
# ## One-way sensitivity
#
# NPSV (£ million) with each input at its low (solid) and high (hatched) value, widest first.
# **Illustrative effect.**

# %%
figures.plot_tornado(cba.tornado)

# %%
display(Markdown("*Alt text:* " + figures.tornado_alt_text(cba.tornado, perspective)))
cba.tornado

# %% [markdown]
# ## Monte Carlo
#
# Joint draws of the effect and the uncertain inputs from their ranges (seeded, so a rerun gives
# the same draws). **The probabilities rest on the illustrative effect and its assumed standard
# error.**

# %%
print(cba.monte_carlo.summary())
cba.monte_carlo.summary_table()

# %%
figures.plot_bcr_distribution(cba.monte_carlo, perspective)

# %%
display(Markdown("*Alt text:* " + figures.bcr_alt_text(cba.monte_carlo, perspective)))
