# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 Design and power
#
# Design choices made before looking at post-pilot outcomes (`kinship_eval.design`):
#
# 1. **the comparison group**: all non-pilot LAs (the primary analysis), nearest-neighbour
#    matching on pre-period levels and trends, or synthetic DiD unit weights;
# 2. **covariate balance** of the pilot LAs against each comparison group, before and after
#    selection (standardised mean differences and a love plot);
# 3. **power**: the smallest effect the design could detect, simulated by drawing placebo pilots
#    from the real pre-pilot panel, with an analytic cross-check.
#
# Everything in this notebook uses the **real** years only (2018-2025 by default): comparison
# groups, balance and power are computed with the illustrative simulated years 2026-2028 left
# out (each result says so in its notes). Power describes the design; it is not an estimate of
# the allowance's effect.

# %% tags=["parameters"]
spec_path = "specs/primary.yaml"  # analysis spec (relative to analysis/)
spec_overrides = []  # overrides, as with `kinship-eval run --set`
nn_k = 1  # comparison LAs matched to each pilot LA (nearest-neighbour matching)
power_spec_path = "specs/power.yaml"  # power spec (relative to analysis/)
power_overrides = []  # overrides of the power spec, as with `--set`
power_reps = None  # placebo pilots per design (None: the power spec's)
power_bootstrap_reps = None  # wild bootstrap draws per placebo pilot (None: the spec's)
power_jobs = -1  # parallel workers for the power simulation (-1: all cores)

# %%
# Notebook conventions: imports follow the parameters cell; a bare expression displays.
# ruff: noqa: E402, B018
import pandas as pd
from IPython.display import Markdown, display
from matplotlib_inline.backend_inline import set_matplotlib_formats

from kinship_eval.design import run_power, select_comparison
from kinship_eval.pipeline import build_panel, estimation_sample
from kinship_eval.spec import load_spec

set_matplotlib_formats("png")
pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)

spec = load_spec(spec_path, spec_overrides)
panel, illustrative = build_panel(spec)
sample, sample_notes = estimation_sample(spec, panel)
display(Markdown("\n".join(f"- {note}" for note in [*panel.notes, *sample_notes])))

# %% [markdown]
# ## 1. Comparison groups
#
# ### All non-pilot LAs (the primary analysis)

# %%
all_non_pilot = select_comparison(sample, method="all_non_pilot")
print(all_non_pilot.summary(top=5))

# %% [markdown]
# ### Nearest-neighbour matching
#
# Each pilot LA matched to its nearest comparison LA(s) by Mahalanobis distance on the
# pre-period levels and trends of the outcome and covariates, without replacement.

# %%
matched = select_comparison(sample, method="nearest_neighbour", k=nn_k)
print(matched.summary())

# %%
matched.matches

# %% [markdown]
# ### Synthetic DiD unit weights
#
# Comparison LAs weighted so that their pre-period path matches the pilots' up to a constant
# (fitted on the pre-period only).

# %%
synthetic = select_comparison(sample, method="synthetic")
print(synthetic.summary(top=10))

# %% [markdown]
# ## 2. Balance
#
# Standardised mean differences (SMD) of the pre-period features between the pilot LAs and each
# comparison group: "before" is every non-pilot LA, "after" the selected (weighted) group. An
# |SMD| below 0.1 is the usual benchmark of good balance; with seven pilot LAs SMDs are noisy.

# %%
matched_balance = matched.balance()
print(matched_balance.summary())

# %%
matched_balance.plot()

# %%
synthetic_balance = synthetic.balance()
synthetic_balance.to_frame()

# %%
synthetic_balance.plot()

# %% [markdown]
# ## 3. Power and minimum detectable effects
#
# Placebo pilots drawn from the **real** pre-pilot panel (no LA treated), the last 1-3 real years
# playing the post-pilot years, effects of known size added, and the primary estimator and
# inference run on each. Power is the share of placebo pilots for which the test rejects; the
# minimum detectable effect (MDE) is the smallest effect detected with 80% power, beside an
# analytic approximation. `size` (the rejection rate at zero effect) should be close to 5%.

# %%
power = run_power(
    power_spec_path,
    [
        *power_overrides,
        *([f"reps={power_reps}"] if power_reps is not None else []),
        *([f"bootstrap_reps={power_bootstrap_reps}"] if power_bootstrap_reps is not None else []),
    ],
    n_jobs=power_jobs,
    progress=False,
)
print(power.summary())

# %%
power.mde_table()

# %%
power.plot()
