"""Sensitivity analysis of the pilot appraisal: switching values, tornado tables, Monte Carlo.

* **Switching values** (Green Book): for each key input, the value at which the option stops being
  worth doing - NPSV = 0, equivalently BCR = 1 - found by root finding (a grid scan for the sign
  change nearest the central value, refined with Brent's method).
* **Tornado**: NPSV and BCR with each input at the low and at the high end of its range, the
  others held at their central values, sorted by the width of the NPSV range.
* **Monte Carlo**: ``n_draws`` (default 10,000) joint draws, vectorised. The DiD effect is drawn
  from its sampling distribution - ``Normal(estimate, se)``, or resampled with replacement from
  bootstrap draws when supplied - and the other uncertain inputs from their ranges:
  ``triangular(low, mode = central value, high)`` or ``uniform(low, high)`` as each range states.
  Inputs whose range is ``fixed`` (policy settings and adjustments such as optimism bias,
  additionality and the cost of funds) are not drawn, and a range with ``low == high`` gives a
  constant; they appear in the tornado only. Draws are
  independent. A seeded :func:`numpy.random.default_rng` makes results identical for the same
  seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize

from kinship_eval.cba.appraisal import _clean
from kinship_eval.cba.model import (
    PARAMETER_LABELS,
    PERSPECTIVES,
    CBAAssumptions,
    evaluate,
)

DEFAULT_SEED = 20260227
DEFAULT_DRAWS = 10_000

#: Inputs examined by default (social-outcome inputs are added when that perspective is on).
KEY_PARAMETERS: tuple[str, ...] = (
    "effect.estimate",
    "duration_exit_years",
    "foster_cost_per_week",
    "residential_cost_per_week",
    "residential_share",
    "kinship_support_per_week",
    "upkeep_per_week",
    "allowance_per_week",
    "recipients",
    "admin_share",
    "optimism_bias.allowance_payments",
    "optimism_bias.administration",
    "cost_of_funds",
    "additionality.displacement",
    "additionality.leakage",
    "diverted_entries_per_10k",
)
SOCIAL_PARAMETERS: tuple[str, ...] = (
    "social.causal_share",
    "social.annual_earnings",
    "social.years_to_adulthood",
    "social.working_years",
)

# Where to look for a switching value: (lowest, highest) admissible value; None = unbounded.
_SHARES = (0.0, 1.0)
_DOMAINS: dict[str, tuple[float | None, float | None]] = {
    "effect.estimate": (None, None),
    "diverted_entries_per_10k": (None, None),
    "residential_share": _SHARES,
    "additionality.deadweight": _SHARES,
    "additionality.displacement": _SHARES,
    "additionality.leakage": _SHARES,
    "additionality.substitution": _SHARES,
    "social.causal_share": _SHARES,
    "social.employment_rate_kinship": _SHARES,
    "social.employment_rate_foster": _SHARES,
    "social.employment_rate_residential": _SHARES,
}


def default_parameters(assumptions: CBAAssumptions) -> list[str]:
    """The inputs examined by default for these assumptions."""
    params = list(KEY_PARAMETERS)
    if assumptions.social.enabled:
        params += list(SOCIAL_PARAMETERS)
    return params


def _check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in PARAMETER_LABELS]
    if unknown:
        raise KeyError(
            f"unknown parameters: {', '.join(unknown)}; known: {', '.join(PARAMETER_LABELS)}"
        )
    return names


def _check_perspective(perspective: str) -> str:
    if perspective not in PERSPECTIVES:
        raise ValueError(f"perspective must be one of {', '.join(PERSPECTIVES)}")
    return perspective


# ---------------------------------------------------------------------- switching values
def _search_domain(a: CBAAssumptions, name: str, base: float) -> tuple[float, float]:
    lo, hi = _DOMAINS.get(name, (0.0, None))
    scale = max(abs(base), 1.0)
    if name == "effect.estimate":
        scale = max(scale, 10 * a.effect.se)
    if name in ("duration_exit_years", "duration_entry_years"):
        hi = float(a.horizon_years)
    width = 1000.0 * scale
    return (base - width if lo is None else lo, base + width if hi is None else hi)


def _grid(lo: float, hi: float, base: float) -> npt.NDArray[np.float64]:
    """A scan grid over [lo, hi], dense near ``base`` (geometric steps) and linear elsewhere."""
    pts = [np.linspace(lo, hi, 801)]
    scale = max(abs(base), 1e-6)
    steps = scale * np.geomspace(1e-4, 1e3, 400)
    pts += [base + steps, base - steps, np.array([base])]
    g = np.unique(np.concatenate(pts))
    return g[(g >= lo) & (g <= hi)]


def switching_value(
    assumptions: CBAAssumptions,
    parameter: str,
    *,
    perspective: str = "economic",
    bounds: tuple[float, float] | None = None,
    xtol: float = 1e-10,
) -> dict[str, Any]:
    """The value of one input at which NPSV = 0 (BCR = 1), the others held constant.

    Parameters
    ----------
    assumptions
        The central assumptions.
    parameter
        An input name (see :data:`kinship_eval.cba.model.PARAMETER_LABELS`).
    perspective
        ``fiscal``, ``economic`` or ``social``.
    bounds
        Where to search; by default the input's admissible domain (shares in [0, 1], costs and
        counts >= 0, durations up to the horizon, effects unbounded).
    xtol
        Absolute tolerance of Brent's method.

    Returns
    -------
    dict
        ``parameter, label, perspective, base_value, switching_value, change, change_pct,
        npsv_base, found, note``. When NPSV does not change sign within the bounds,
        ``switching_value`` is NaN and ``note`` says why.
    """
    _check_perspective(perspective)
    (name,) = _check_names([parameter])
    base = assumptions.parameters()[name]
    npsv_base = float(evaluate(assumptions)[perspective]["npsv"][0])
    lo, hi = bounds if bounds is not None else _search_domain(assumptions, name, base)

    def npsv(x: float | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return evaluate(assumptions, {name: x})[perspective]["npsv"]

    result = {
        "parameter": name,
        "label": PARAMETER_LABELS[name],
        "perspective": perspective,
        "base_value": base,
        "switching_value": math.nan,
        "change": math.nan,
        "change_pct": math.nan,
        "npsv_base": npsv_base,
        "found": False,
        "note": "",
    }
    if npsv_base == 0:
        result.update(switching_value=base, change=0.0, change_pct=0.0, found=True)
        return result
    grid = _grid(lo, hi, base)
    values = npsv(grid)
    finite = np.isfinite(values)
    grid, values = grid[finite], values[finite]
    if np.ptp(values) == 0:
        result["note"] = "NPSV does not depend on this input in this perspective"
        return result
    sign = np.sign(values)
    exact = np.flatnonzero(sign == 0)
    changes = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    candidates: list[float] = [float(grid[i]) for i in exact]
    for i in changes:
        root = optimize.brentq(lambda x: float(npsv(x)[0]), grid[i], grid[i + 1], xtol=xtol)
        candidates.append(float(root))
    if not candidates:
        result["note"] = f"NPSV keeps its sign for values in [{lo:.4g}, {hi:.4g}]"
        return result
    sv = min(candidates, key=lambda x: abs(x - base))
    result.update(
        switching_value=sv,
        change=sv - base,
        change_pct=(sv - base) / base * 100 if base != 0 else math.nan,
        found=True,
    )
    return result


def switching_values(
    assumptions: CBAAssumptions,
    parameters: Sequence[str] | None = None,
    *,
    perspective: str = "economic",
) -> pd.DataFrame:
    """Switching values of several inputs (default: :func:`default_parameters`)."""
    names = _check_names(parameters or default_parameters(assumptions))
    rows = [switching_value(assumptions, n, perspective=perspective) for n in names]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- tornado
def tornado(
    assumptions: CBAAssumptions,
    parameters: Sequence[str] | None = None,
    *,
    perspective: str = "economic",
) -> pd.DataFrame:
    """One-way sensitivity: NPSV and BCR with each input at its low and at its high value.

    Returns
    -------
    DataFrame
        ``parameter, label, base_value, low, high, npsv_low, npsv_high, bcr_low, bcr_high,
        swing, npsv_base`` sorted by ``swing`` (the width of the NPSV range), widest first.
        Inputs without a range (or with low == high) are left out.
    """
    _check_perspective(perspective)
    names = _check_names(parameters or default_parameters(assumptions))
    central = evaluate(assumptions)[perspective]
    base_params = assumptions.parameters()
    rows = []
    for name in names:
        rng = assumptions.range_for(name)
        if rng is None or rng.low == rng.high:
            continue
        vals = evaluate(assumptions, {name: np.array([rng.low, rng.high])})[perspective]
        rows.append(
            {
                "parameter": name,
                "label": PARAMETER_LABELS[name],
                "base_value": base_params[name],
                "low": rng.low,
                "high": rng.high,
                "npsv_low": float(vals["npsv"][0]),
                "npsv_high": float(vals["npsv"][1]),
                "bcr_low": float(vals["bcr"][0]),
                "bcr_high": float(vals["bcr"][1]),
                "swing": float(abs(vals["npsv"][1] - vals["npsv"][0])),
                "npsv_base": float(central["npsv"][0]),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "parameter",
            "label",
            "base_value",
            "low",
            "high",
            "npsv_low",
            "npsv_high",
            "bcr_low",
            "bcr_high",
            "swing",
            "npsv_base",
        ],
    )
    table.attrs["perspective"] = perspective
    return table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def plot_tornado(
    table: pd.DataFrame,
    ax: Any = None,
    *,
    title: str | None = None,
    max_bars: int = 12,
    scale: float = 1e6,
) -> Any:
    """Tornado chart of a :func:`tornado` table (NPSV in £m around the central value).

    Parameters
    ----------
    table
        Output of :func:`tornado`.
    ax
        A matplotlib Axes to draw on (a new figure when ``None``).
    title
        Chart title (default names the perspective).
    max_bars
        Show the widest ``max_bars`` inputs.
    scale
        Divide £ values by this (default £m).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    rows = table.head(max_bars).iloc[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 1) + 1.5))
    base = float(table["npsv_base"].iloc[0]) / scale if len(table) else 0.0
    y = np.arange(len(rows))
    low = rows["npsv_low"].to_numpy(float) / scale
    high = rows["npsv_high"].to_numpy(float) / scale
    ax.barh(y, low - base, left=base, color="#12436D", label="input at low value")
    ax.barh(y, high - base, left=base, color="#F46A25", label="input at high value")
    ax.axvline(base, color="black", linewidth=1)
    ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, rows["label"].tolist())
    unit = "£m" if scale == 1e6 else f"£ / {scale:g}"
    ax.set_xlabel(f"NPSV ({unit}, present value)")
    persp = table.attrs.get("perspective", "")
    ax.set_title(title or (f"NPSV sensitivity, {persp}" if persp else "NPSV sensitivity"))
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small", frameon=False
    )
    ax.figure.tight_layout()
    return ax


# ---------------------------------------------------------------------- Monte Carlo
@dataclass
class MonteCarloResults:
    """Monte Carlo draws of the appraisal.

    Attributes
    ----------
    draws
        One row per draw: the drawn inputs, then ``npsv_<perspective>`` and ``bcr_<perspective>``.
    seed, n_draws
        Reproduce the run with the same seed.
    drawn
        Names of the inputs drawn, with their distribution.
    central
        Deterministic NPSV and BCR by perspective at the central values.
    """

    draws: pd.DataFrame
    seed: int
    n_draws: int
    drawn: dict[str, str]
    central: dict[str, dict[str, float]]
    notes: list[str] = field(default_factory=list)

    def bcr(self, perspective: str = "economic") -> npt.NDArray[np.float64]:
        return self.draws[f"bcr_{perspective}"].to_numpy(float)

    def npsv(self, perspective: str = "economic") -> npt.NDArray[np.float64]:
        return self.draws[f"npsv_{perspective}"].to_numpy(float)

    def prob_bcr_above(self, threshold: float = 1.0, perspective: str = "economic") -> float:
        """Share of draws with BCR above ``threshold`` (draws with undefined BCR count as not)."""
        b = self.bcr(perspective)
        return float(np.mean(np.where(np.isfinite(b), b > threshold, False)))

    def summary_table(self, percentiles: Sequence[float] = (5, 25, 50, 75, 95)) -> pd.DataFrame:
        """Mean, SD and percentiles of NPSV and BCR by perspective, P(BCR > 1), P(NPSV > 0)."""
        rows = []
        for p in PERSPECTIVES:
            for stat in ("npsv", "bcr"):
                x = self.draws[f"{stat}_{p}"].to_numpy(float)
                x = x[np.isfinite(x)]
                row: dict[str, Any] = {
                    "perspective": p,
                    "statistic": stat,
                    "central": self.central[p][stat],
                    "mean": float(np.mean(x)) if x.size else math.nan,
                    "sd": float(np.std(x, ddof=1)) if x.size > 1 else math.nan,
                }
                for q in percentiles:
                    row[f"p{q:g}"] = float(np.percentile(x, q)) if x.size else math.nan
                row["prob_bcr_gt_1"] = self.prob_bcr_above(1.0, p)
                row["prob_npsv_gt_0"] = float(np.mean(self.npsv(p) > 0))
                rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no individual draws)."""
        table = self.summary_table()
        return {
            "seed": self.seed,
            "n_draws": self.n_draws,
            "drawn": dict(self.drawn),
            "summary": [{k: _clean(v) for k, v in r.items()} for r in table.to_dict("records")],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Plain-text summary of the BCR distribution by perspective."""
        lines = [
            f"Monte Carlo: {self.n_draws:,} draws (seed {self.seed}); drawn inputs: "
            + ", ".join(f"{k} ({v})" for k, v in self.drawn.items()),
            "",
            f"{'perspective':<12}{'BCR central':>12}{'mean':>8}{'p5':>8}{'p50':>8}{'p95':>8}"
            f"{'P(BCR>1)':>10}",
        ]
        for p in PERSPECTIVES:
            b = self.bcr(p)
            b = b[np.isfinite(b)]
            if b.size == 0:
                lines.append(f"{p:<12}{'undefined':>12}")
                continue
            p5, p50, p95 = np.percentile(b, [5, 50, 95])
            lines.append(
                f"{p:<12}{self.central[p]['bcr']:>12.2f}{np.mean(b):>8.2f}{p5:>8.2f}"
                f"{p50:>8.2f}{p95:>8.2f}{self.prob_bcr_above(1.0, p):>10.1%}"
            )
        if self.notes:
            lines += ["", *[f"Note: {n}" for n in self.notes]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, perspective: str = "economic", ax: Any = None, bins: int = 60) -> Any:
        """Histogram of the BCR draws with the break-even line at 1."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        b = self.bcr(perspective)
        ax.hist(b[np.isfinite(b)], bins=bins, color="#12436D")
        ax.axvline(1.0, color="#F46A25", linestyle="--", label="BCR = 1")
        ax.set_xlabel(f"BCR ({perspective} perspective)")
        ax.set_ylabel("draws")
        ax.set_title(
            f"P(BCR > 1) = {self.prob_bcr_above(1.0, perspective):.1%} "
            f"({self.n_draws:,} draws, seed {self.seed})"
        )
        ax.legend(frameon=False)
        return ax


def monte_carlo(
    assumptions: CBAAssumptions,
    *,
    n_draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    effect_draws: npt.ArrayLike | None = None,
    parameters: Sequence[str] | None = None,
) -> MonteCarloResults:
    """Monte Carlo simulation of NPSV and BCR for every perspective.

    Parameters
    ----------
    assumptions
        Central assumptions; their ranges (:meth:`CBAAssumptions.range_for`) give the
        distributions.
    n_draws
        Number of joint draws (at least 10,000 recommended).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical results.
    effect_draws
        Bootstrap draws of the DiD effect to resample (default ``assumptions.effect.draws``;
        otherwise ``Normal(estimate, se)``).
    parameters
        Inputs to draw besides the effect (default: every input with a triangular or uniform
        range). Inputs with a ``fixed`` range are never drawn.

    Returns
    -------
    MonteCarloResults
    """
    if n_draws < 1:
        raise ValueError("n_draws must be at least 1")
    rng = np.random.default_rng(seed)
    drawn: dict[str, str] = {}
    samples: dict[str, npt.NDArray[np.float64]] = {}
    notes: list[str] = []

    boot = effect_draws if effect_draws is not None else assumptions.effect.draws
    est, se = assumptions.effect.estimate, assumptions.effect.se
    if boot is not None:
        pool = np.asarray(boot, dtype=float).ravel()
        pool = pool[np.isfinite(pool)]
        if pool.size == 0:
            raise ValueError("effect_draws holds no finite values")
        samples["effect.estimate"] = rng.choice(pool, size=n_draws, replace=True)
        drawn["effect.estimate"] = f"bootstrap resample of {pool.size} draws"
    elif se > 0:
        samples["effect.estimate"] = rng.normal(est, se, size=n_draws)
        drawn["effect.estimate"] = f"normal(mean {est:.4g}, sd {se:.4g})"
    else:
        samples["effect.estimate"] = np.full(n_draws, float(est))
        drawn["effect.estimate"] = f"constant {est:.4g} (se = 0)"
        notes.append("The effect has no sampling uncertainty (se = 0); it is held fixed.")

    names = _check_names(parameters) if parameters is not None else list(PARAMETER_LABELS)
    base = assumptions.parameters()
    for name in names:
        if name == "effect.estimate":
            continue
        rng_ = assumptions.range_for(name)
        if rng_ is None or rng_.distribution == "fixed":
            continue
        if name.startswith("social.") and not assumptions.social.enabled:
            continue
        if rng_.low == rng_.high:  # a degenerate range: no variance
            samples[name] = np.full(n_draws, rng_.low)
            drawn[name] = f"constant {rng_.low:.4g}"
        elif rng_.distribution == "triangular":
            mode = min(max(base[name], rng_.low), rng_.high)
            samples[name] = rng.triangular(rng_.low, mode, rng_.high, size=n_draws)
            drawn[name] = f"triangular({rng_.low:.4g}, {mode:.4g}, {rng_.high:.4g})"
        else:
            samples[name] = rng.uniform(rng_.low, rng_.high, size=n_draws)
            drawn[name] = f"uniform({rng_.low:.4g}, {rng_.high:.4g})"

    values = evaluate(assumptions, samples)
    frame = pd.DataFrame({k: v for k, v in samples.items()})
    for p in PERSPECTIVES:
        frame[f"npsv_{p}"] = np.broadcast_to(values[p]["npsv"], (n_draws,))
        frame[f"bcr_{p}"] = np.broadcast_to(values[p]["bcr"], (n_draws,))
    central_vals = evaluate(assumptions)
    central = {
        p: {"npsv": float(central_vals[p]["npsv"][0]), "bcr": float(central_vals[p]["bcr"][0])}
        for p in PERSPECTIVES
    }
    notes.append(
        "Inputs are drawn independently; fixed-range inputs (policy settings, optimism bias, "
        "additionality, cost of funds) are held at their central values."
    )
    return MonteCarloResults(frame, seed, n_draws, drawn, central, notes)
