"""Power and minimum detectable effects of the pilot design, by simulation on real data.

"With 7-10 pilot LAs and two years, what effect could we detect at all?" The answer is simulated
on the real LA panel before the pilot (the bundled years 2018-2025, or the user's data), where no
LA was treated, so every estimate of a placebo pilot is noise of exactly the kind the evaluation
will face -- real serial correlation, heteroskedasticity, outliers and missing years:

1. **Placebo pilots.** Draw ``n_pilot`` LAs by a selection rule: ``random`` (simple random
   sample), ``stratified`` (proportional to the number of LAs in each stratum, e.g. region) or
   ``actual_regions`` (mimicking the actual selection: the regions of the real pilot LAs, in the
   same proportions; with seven pilots in seven regions, one LA from each). Fractional
   allocations are rounded at random in proportion to their remainders.
2. **Fake post-periods.** The last ``post_periods`` years of the panel are treated (one block
   adoption date); the years before are the pre-period.
3. **Injected effects.** Add ``delta`` to the placebo pilots' post-period outcomes: an
   ``additive`` effect in outcome units (children per 10,000), or a ``proportional`` effect,
   ``delta`` times each LA's own pre-period mean.
4. **Estimate and test.** Run the estimator and inference (default TWFE with cluster-robust and
   wild cluster bootstrap p-values) and reject at level ``alpha`` (two-sided).

Power at ``delta`` is the share of replications that reject; its Monte Carlo standard error is
``sqrt(p (1 - p) / reps)``. The minimum detectable effect (MDE) is the smallest ``delta`` at
which power reaches ``target_power`` (80%), interpolated linearly on the power curve; it is
reported in outcome units and as % of the placebo pilots' pre-period mean. The rejection rate at
``delta = 0`` is the test's size on this design: a rate well above ``alpha`` (cluster-robust
errors with few treated LAs) means its power is overstated.

Fast path
---------
TWFE with ``cluster`` or ``wild_bootstrap`` inference is computed by
:mod:`kinship_eval.design._fast_twfe` (identical results, a few milliseconds per replication);
every effect size reuses the same fit, so the power curve is evaluated on a fine grid and the MDE
interpolated on it. Any other estimator or inference goes through
:func:`kinship_eval.did.estimate.fit_with_inference`, refitted for every effect size of the grid.

Reproducibility
---------------
Replication ``r`` of the design (``n_pilot``, ``post_periods``) draws its placebo pilots and its
bootstrap weights from ``numpy.random.SeedSequence(seed, spawn_key=(n_pilot, post_periods, r))``,
so results do not depend on ``n_jobs``, on how replications are split among workers, or on which
other designs are in the grid; every estimator, inference method and effect size of a replication
sees the same placebo pilots (common random numbers).

An analytic MDE (:mod:`kinship_eval.design.analytic`) is reported beside each simulated one.
"""

from __future__ import annotations

import json
import math
import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import ValidationError

from kinship_eval.design._fast_twfe import WEIGHT_TYPES, FastTwfe, draw_weights
from kinship_eval.design.analytic import (
    ErrorStructure,
    analytic_mde,
    analytic_se,
    estimate_error_structure,
)
from kinship_eval.design.specs import (
    DEFAULT_EFFECTS,
    SELECTION_RULES,
    EffectType,
    PowerSpec,
    Selection,
)
from kinship_eval.errors import EstimationError, InputError, SpecError

__all__ = [
    "DEFAULT_EFFECTS",
    "SELECTION_RULES",
    "PowerResult",
    "PowerSpec",
    "allocate",
    "draw_placebo_pilots",
    "load_power_spec",
    "minimum_detectable_effect",
    "power_data",
    "run_power",
    "simulate_power",
]

FAST_INFERENCE = ("cluster", "wild_bootstrap")
#: Points of the fine grid on which fast-path power curves are evaluated for the MDE.
DENSE_POINTS = 121
_CHUNK = 25

CURVE_COLUMNS = [
    "estimator",
    "inference",
    "n_pilot",
    "post_periods",
    "effect_type",
    "effect",
    "effect_level",
    "effect_pct",
    "power",
    "mc_se",
    "n_valid",
]
MDE_COLUMNS = [
    "estimator",
    "inference",
    "n_pilot",
    "post_periods",
    "n_pre",
    "n_units",
    "baseline",
    "size",
    "size_mc_se",
    "mde",
    "mde_pct",
    "mde_analytic",
    "mde_analytic_pct",
    "mde_analytic_emp",
    "se_analytic",
    "se_analytic_emp",
    "sd_estimate",
    "mean_se",
    "reps",
]


# ------------------------------------------------------------------------ selection (pure)
def allocate(
    rng: np.random.Generator, shares: np.ndarray, capacity: np.ndarray, n: int
) -> np.ndarray:
    """Split ``n`` units across strata in proportion to ``shares``, within ``capacity``.

    Each stratum gets the integer part of its quota ``n * share``; the remaining units go one at a
    time to strata drawn with probability proportional to their unmet quota (strata with room
    left), so the expected allocation is proportional whenever capacity allows.
    """
    shares = np.asarray(shares, dtype=float)
    capacity = np.asarray(capacity, dtype=int)
    if n > capacity.sum():
        raise EstimationError(
            f"cannot draw {n} placebo pilots: only {int(capacity.sum())} eligible LAs"
        )
    quota = n * shares / shares.sum()
    counts = np.minimum(np.floor(quota).astype(int), capacity)
    while counts.sum() < n:
        room = counts < capacity
        gap = np.where(room, np.maximum(quota - counts, 0.0), 0.0)
        if gap.sum() <= 0:
            gap = room.astype(float)
        pick = rng.choice(len(gap), p=gap / gap.sum())
        counts[pick] += 1
    return counts


def draw_placebo_pilots(
    rng: np.random.Generator,
    eligible: np.ndarray,
    n: int,
    *,
    rule: Selection = "random",
    strata: np.ndarray | None = None,
    actual_strata: Sequence[Any] = (),
) -> np.ndarray:
    """Indices (into ``eligible``'s positions) of ``n`` placebo pilots.

    Parameters
    ----------
    rng
        Random generator.
    eligible
        Boolean mask of the units that may be drawn.
    n
        Number of placebo pilots.
    rule
        ``random``, ``stratified`` (proportional to stratum sizes among eligible units) or
        ``actual_regions`` (proportional to the strata of the actual pilots, ``actual_strata``).
    strata
        Stratum of every unit (needed by the stratified rules).
    actual_strata
        Strata of the actual pilot LAs (one entry per pilot).

    Returns
    -------
    numpy.ndarray
        Sorted unit positions.
    """
    pool = np.flatnonzero(eligible)
    if rule == "random":
        if n > len(pool):
            raise EstimationError(f"cannot draw {n} placebo pilots from {len(pool)} eligible LAs")
        return np.sort(rng.choice(pool, size=n, replace=False))
    if strata is None:
        raise SpecError(f"selection rule '{rule}' needs a strata column (e.g. region)")
    labels = np.asarray(strata)[pool]
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    capacity = np.bincount(codes, minlength=len(names))
    if rule == "stratified":
        shares = capacity.astype(float)
    elif rule == "actual_regions":
        wanted = pd.Series([str(s) for s in actual_strata]).value_counts()
        if wanted.empty:
            raise SpecError("selection rule 'actual_regions' needs the actual pilots' strata")
        shares = np.array([float(wanted.get(name, 0.0)) for name in names])
        if shares.sum() == 0:
            raise EstimationError("no eligible LA lies in the actual pilots' strata")
        capacity = np.where(shares > 0, capacity, 0)
    else:
        raise SpecError(f"unknown selection rule {rule!r}; choose one of {SELECTION_RULES}")
    counts = allocate(rng, shares, capacity, n)
    chosen = [
        rng.choice(pool[codes == s], size=c, replace=False) for s, c in enumerate(counts) if c
    ]
    return np.sort(np.concatenate(chosen))


def minimum_detectable_effect(effects: Any, power: Any, target: float = 0.8) -> float:
    """Smallest effect at which a power curve reaches ``target`` (linear interpolation).

    ``nan`` when the curve never reaches it on the grid.
    """
    e = np.asarray(effects, dtype=float)
    p = np.asarray(power, dtype=float)
    order = np.argsort(e, kind="stable")
    e, p = e[order], p[order]
    ok = np.isfinite(p)
    e, p = e[ok], p[ok]
    hit = np.flatnonzero(p >= target)
    if not len(hit):
        return math.nan
    i = int(hit[0])
    if i == 0:
        return float(e[0])
    e0, e1, p0, p1 = e[i - 1], e[i], p[i - 1], p[i]
    return float(e0 + (target - p0) * (e1 - e0) / (p1 - p0))


# ------------------------------------------------------------------------------ the workers
@dataclass(frozen=True)
class _PanelArrays:
    """The panel as arrays, shipped to the workers."""

    units: np.ndarray
    unit_codes: np.ndarray
    time_codes: np.ndarray
    periods: np.ndarray
    y: np.ndarray
    strata: np.ndarray | None
    eligible_base: np.ndarray


@dataclass(frozen=True)
class _Task:
    panel: _PanelArrays
    n_pilot: int
    post_periods: int
    reps: tuple[int, ...]
    combos: tuple[tuple[str, str], ...]
    effects: np.ndarray
    dense: np.ndarray
    effect_type: str
    rule: Selection
    actual_strata: tuple[Any, ...]
    seed: int
    bootstrap_reps: int
    bootstrap_weights: str
    alpha: float
    names: dict[str, str]


@dataclass
class _TaskResult:
    n_pilot: int
    post_periods: int
    reps: tuple[int, ...]
    reject: dict[tuple[str, str], np.ndarray]
    valid: dict[tuple[str, str], np.ndarray]
    estimate: dict[tuple[str, str], np.ndarray]
    se: dict[tuple[str, str], np.ndarray]
    p_value: dict[tuple[str, str], np.ndarray]
    baseline: np.ndarray
    pilots: list[str]


def _is_fast(combo: tuple[str, str]) -> bool:
    return combo[0] == "twfe" and combo[1] in FAST_INFERENCE


def _design_arrays(panel: _PanelArrays, post_periods: int) -> tuple[int, np.ndarray, np.ndarray]:
    """First treated period code, eligible units, and each unit's pre-period mean."""
    n_t = len(panel.periods)
    g_code = n_t - post_periods
    pre = panel.time_codes < g_code
    n_u = len(panel.units)
    n_pre = np.bincount(panel.unit_codes[pre], minlength=n_u)
    n_post = np.bincount(panel.unit_codes[~pre], minlength=n_u)
    sums = np.bincount(panel.unit_codes[pre], weights=panel.y[pre], minlength=n_u)
    with np.errstate(invalid="ignore", divide="ignore"):
        baseline = sums / n_pre
    eligible = panel.eligible_base & (n_pre > 0) & (n_post > 0)
    return g_code, eligible, baseline


def _run_task(task: _Task) -> _TaskResult:
    panel = task.panel
    g_code, eligible, unit_base = _design_arrays(panel, task.post_periods)
    fast = [c for c in task.combos if _is_fast(c)]
    slow = [c for c in task.combos if not _is_fast(c)]
    engine = FastTwfe(panel.unit_codes, panel.time_codes, panel.y) if fast else None
    need_wild = any(c[1] == "wild_bootstrap" for c in fast)
    n_rep = len(task.reps)
    grid = {c: (task.dense if _is_fast(c) else task.effects) for c in task.combos}
    reject = {c: np.zeros(len(grid[c]), dtype=np.int64) for c in task.combos}
    valid = {c: np.zeros(len(grid[c]), dtype=np.int64) for c in task.combos}
    est = {c: np.full(n_rep, math.nan) for c in task.combos}
    se = {c: np.full(n_rep, math.nan) for c in task.combos}
    pv = {c: np.full(n_rep, math.nan) for c in task.combos}
    baseline = np.full(n_rep, math.nan)
    pilots: list[str] = []
    post = panel.time_codes >= g_code
    for k, rep in enumerate(task.reps):
        seq = np.random.SeedSequence(task.seed, spawn_key=(task.n_pilot, task.post_periods, rep))
        assign_seq, boot_seq = seq.spawn(2)
        rng = np.random.default_rng(assign_seq)
        chosen = draw_placebo_pilots(
            rng,
            eligible,
            task.n_pilot,
            rule=task.rule,
            strata=panel.strata,
            actual_strata=task.actual_strata,
        )
        boot_seed = int(boot_seq.generate_state(1)[0])
        treated = np.zeros(len(panel.units), dtype=bool)
        treated[chosen] = True
        d = (treated[panel.unit_codes] & post).astype(float)
        baseline[k] = float(np.mean(unit_base[chosen]))
        pilots.append(";".join(map(str, panel.units[chosen])))
        effect = None if task.effect_type == "additive" else unit_base[panel.unit_codes] * d
        if engine is not None:
            draws = None
            if need_wild:
                draws = draw_weights(
                    np.random.default_rng(boot_seed),
                    task.bootstrap_weights,
                    engine.n_units,
                    task.bootstrap_reps,
                )
            res = engine.fit(d, task.dense, effect=effect, draws=draws)
            for c in fast:
                wild = c[1] == "wild_bootstrap"
                p = None if res is None else (res.p_wild if wild else res.p_cluster)
                s = None if res is None else (res.se_wild if wild else res.se_cluster)
                if res is None or p is None or s is None:
                    continue  # the placebo indicator is absorbed by the fixed effects
                ok = np.isfinite(p)
                reject[c] += (ok & (p < task.alpha)).astype(np.int64)
                valid[c] += ok.astype(np.int64)
                est[c][k], se[c][k], pv[c][k] = res.estimate[0], s[0], p[0]
        if slow:
            _slow_fits(
                task, slow, treated, d, effect, g_code, boot_seed, k, reject, valid, est, se, pv
            )
    return _TaskResult(
        task.n_pilot, task.post_periods, task.reps, reject, valid, est, se, pv, baseline, pilots
    )


def _slow_fits(
    task: _Task,
    combos: list[tuple[str, str]],
    treated: np.ndarray,
    d: np.ndarray,
    effect: np.ndarray | None,
    g_code: int,
    boot_seed: int,
    k: int,
    reject: dict[tuple[str, str], np.ndarray],
    valid: dict[tuple[str, str], np.ndarray],
    est: dict[tuple[str, str], np.ndarray],
    se: dict[tuple[str, str], np.ndarray],
    pv: dict[tuple[str, str], np.ndarray],
) -> None:
    """Refit through :func:`fit_with_inference` for every effect size of the grid."""
    from kinship_eval.did.estimate import fit_with_inference

    panel, names = task.panel, task.names
    pattern = d if effect is None else effect
    frame = pd.DataFrame(
        {
            names["unit"]: panel.units[panel.unit_codes],
            names["time"]: panel.periods[panel.time_codes],
            "_first_treated": np.where(treated[panel.unit_codes], panel.periods[g_code], 0),
        }
    )
    for c in combos:
        estimator, inference = c
        for j, delta in enumerate(task.effects):
            frame[names["outcome"]] = panel.y + delta * pattern
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = fit_with_inference(
                        estimator,
                        frame,
                        unit=names["unit"],
                        time=names["time"],
                        outcome=names["outcome"],
                        first_treated="_first_treated",
                        inference=None if inference == "default" else inference,
                        reps=task.bootstrap_reps,
                        seed=boot_seed,
                        level=1 - task.alpha,
                    )
                p = float(res.p_value)
            except (EstimationError, InputError, np.linalg.LinAlgError, ValueError):
                continue
            if not np.isfinite(p):
                continue
            valid[c][j] += 1
            reject[c][j] += int(p < task.alpha)
            if j == 0:
                est[c][k], se[c][k], pv[c][k] = float(res.att), float(res.se), p


# ------------------------------------------------------------------------------ the results
@dataclass
class PowerResult:
    """Simulated power curves and minimum detectable effects.

    Attributes
    ----------
    curves
        Power at each effect size of the requested grid (columns :data:`CURVE_COLUMNS`).
    dense
        Power on the grid used for the MDE (the fine grid for the fast path, the requested one
        otherwise).
    mde
        One row per estimator, inference, number of pilots and post-period length (columns
        :data:`MDE_COLUMNS`): ``size`` is the rejection rate at zero effect, ``mde`` the MDE in
        outcome units (children per 10,000 for ``*_per_10k`` outcomes), ``mde_pct`` in % of the
        placebo pilots' pre-period mean (``baseline``); ``mde_analytic`` (and ``se_analytic``)
        the analytic approximation with AR(1) errors, ``mde_analytic_emp`` (``se_analytic_emp``)
        with the empirical residual covariance (:mod:`kinship_eval.design.analytic`);
        ``sd_estimate`` the standard deviation of the placebo estimates at zero effect (the true
        standard error of the design) and ``mean_se`` their mean reported standard error.
    replications
        One row per replication, estimator and inference: the placebo pilots, the estimate,
        standard error and p-value at zero effect.
    settings
        Everything that produced the result.
    error_structure
        The error variance and serial correlation behind the analytic MDE.
    notes
        Caveats.
    elapsed
        Wall-clock seconds.
    """

    curves: pd.DataFrame
    dense: pd.DataFrame
    mde: pd.DataFrame
    replications: pd.DataFrame
    settings: dict[str, Any]
    error_structure: ErrorStructure | None = None
    notes: list[str] = field(default_factory=list)
    elapsed: float = math.nan

    def to_frame(self, grid: Literal["effects", "dense"] = "effects") -> pd.DataFrame:
        """Power curves, tidy: one row per design, estimator, inference and effect size."""
        return (self.curves if grid == "effects" else self.dense).copy()

    def mde_table(self) -> pd.DataFrame:
        """Minimum detectable effects, one row per design, estimator and inference."""
        return self.mde.copy()

    @property
    def outcome(self) -> str:
        return str(self.settings.get("outcome", ""))

    def _unit_label(self) -> str:
        return "children per 10,000" if self.outcome.endswith("_per_10k") else "outcome units"

    def summary(self) -> str:
        """Text summary: the design, the MDE table and the notes."""
        s = self.settings
        lines = [
            f"Power simulation: {s.get('outcome')} ({self._unit_label()})",
            f"data: {s.get('n_units')} LAs, periods {s.get('periods')[0]}-{s.get('periods')[-1]}; "
            f"{s.get('reps')} placebo pilots per design, selection '{s.get('selection')}', "
            f"{s.get('effect_type')} effects, two-sided alpha {s.get('alpha')}, target power "
            f"{s.get('target_power')}",
            "",
            f"{'estimator':<10} {'inference':<15} {'pilots':>6} {'post':>4} {'size':>6} "
            f"{'MDE':>6} {'MDE %':>6} {'AR(1)':>6} {'%':>6} {'emp.':>6} {'SD est':>6}",
        ]
        for row in self.mde.itertuples(index=False):
            lines.append(
                f"{row.estimator:<10} {row.inference:<15} {row.n_pilot:>6} {row.post_periods:>4} "
                f"{row.size:>6.3f} {_fmt(row.mde):>6} {_fmt(row.mde_pct, 1):>6} "
                f"{_fmt(row.mde_analytic):>6} {_fmt(row.mde_analytic_pct, 1):>6} "
                f"{_fmt(row.mde_analytic_emp):>6} {_fmt(row.sd_estimate, 3):>6}"
            )
        lines += [
            "",
            "size = rejection rate at zero effect; MDE = smallest effect detected with "
            f"{s.get('target_power', 0.8):.0%} power ({self._unit_label()}; MDE % = % of the "
            "placebo pilots' pre-period mean); AR(1), emp. = analytic MDE (z_{1-a/2} + z_power) "
            "x SE, SE from the DiD variance with AR(1) errors (and % of baseline) or with the "
            "empirical residual covariance; SD est = SD of the placebo estimates at zero effect.",
        ]
        if self.error_structure is not None:
            es = self.error_structure
            lines.append(
                f"error structure: sigma {math.sqrt(es.sigma2):.3f}, AR(1) rho {es.rho:.2f} "
                f"({es.n_units} LAs observed every year)"
            )
        if math.isfinite(self.elapsed):
            lines.append(f"elapsed: {self.elapsed:.1f} s")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, *, grid: Literal["effects", "dense"] = "dense") -> Any:
        """Power curves: one panel per estimator/inference (rows) and post-period length (columns).

        Lines differ by style and marker (readable without colour), one per number of pilot LAs;
        dashed and dotted horizontal lines mark the target power and ``alpha``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        data = self.dense if grid == "dense" else self.curves
        combos = list(dict.fromkeys(zip(data["estimator"], data["inference"], strict=True)))
        posts = sorted(data["post_periods"].unique())
        pilots = sorted(data["n_pilot"].unique())
        fig = Figure(figsize=(3.6 * len(posts) + 0.6, 3.0 * len(combos) + 0.8))
        axes = np.atleast_2d(fig.subplots(len(combos), len(posts), sharey=True, squeeze=False))
        styles = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]
        markers = ["o", "s", "^", "D", "v", "x"]
        greys = ["black", "0.25", "0.4", "0.55", "0.3", "0.15"]
        proportional = self.settings.get("effect_type") == "proportional"
        marks = self.curves
        for r, (est, inf) in enumerate(combos):
            for c, post in enumerate(posts):
                ax = axes[r, c]
                for i, n in enumerate(pilots):
                    sel = data[
                        (data["estimator"] == est)
                        & (data["inference"] == inf)
                        & (data["post_periods"] == post)
                        & (data["n_pilot"] == n)
                    ].sort_values("effect")
                    x = sel["effect"] * (100 if proportional else 1)
                    ax.plot(
                        x,
                        sel["power"],
                        linestyle=styles[i % len(styles)],
                        color=greys[i % len(greys)],
                        linewidth=1.3,
                    )
                    m = marks[
                        (marks["estimator"] == est)
                        & (marks["inference"] == inf)
                        & (marks["post_periods"] == post)
                        & (marks["n_pilot"] == n)
                    ]
                    ax.plot(
                        m["effect"] * (100 if proportional else 1),
                        m["power"],
                        linestyle=styles[i % len(styles)],
                        marker=markers[i % len(markers)],
                        markersize=4.5,
                        markerfacecolor="white" if i % 2 else greys[i % len(greys)],
                        color=greys[i % len(greys)],
                        linewidth=0 if grid == "dense" else 1.3,
                    )
                target = float(self.settings.get("target_power", 0.8))
                ax.axhline(target, color="0.35", linestyle="--", linewidth=0.8)
                ax.axhline(float(self.settings.get("alpha", 0.05)), color="0.35", linestyle=":")
                ax.set_ylim(0, 1.02)
                ax.set_title(
                    f"{est}, {inf}: {post} post-period{'s' if post > 1 else ''}", fontsize="small"
                )
                ax.grid(color="0.92", linewidth=0.6)
                if r == len(combos) - 1:
                    ax.set_xlabel(
                        "effect (% of baseline)"
                        if proportional
                        else f"effect ({self._unit_label()})",
                        fontsize="small",
                    )
                if c == 0:
                    ax.set_ylabel("power", fontsize="small")
        from matplotlib.lines import Line2D

        handles = [
            Line2D(
                [],
                [],
                linestyle=styles[i % len(styles)],
                marker=markers[i % len(markers)],
                markersize=4.5,
                markerfacecolor="white" if i % 2 else greys[i % len(greys)],
                color=greys[i % len(greys)],
                label=f"{n} pilot LAs",
            )
            for i, n in enumerate(pilots)
        ]
        axes[0, 0].legend(handles=handles, fontsize="x-small", loc="lower right")
        fig.suptitle(
            f"Power to detect an effect on {self.outcome} "
            f"({self.settings.get('reps')} placebo pilots per point)",
            fontsize="medium",
        )
        fig.tight_layout()
        return fig

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, notes, error structure and MDE table."""
        return {
            "settings": self.settings,
            "error_structure": None
            if self.error_structure is None
            else self.error_structure.to_dict(),
            "notes": list(self.notes),
            "elapsed_seconds": self.elapsed,
            "mde": [{k: _plain(v) for k, v in row.items()} for row in self.mde.to_dict("records")],
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write the tables (CSV), summary, settings (JSON) and power curves (PNG, SVG).

        Files: ``power_mde.csv``, ``power_curves.csv``, ``power_curves_dense.csv``,
        ``power_replications.csv``, ``power_summary.txt``, ``power_results.json``,
        ``power_curves.png``, ``power_curves.svg``. Each file is written to a temporary name
        first and then renamed, so a failure never leaves a half-written file.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []

        def put(name: str, write: Any) -> None:
            target = out / name
            tmp = target.with_name(f".{name}.partial")
            write(tmp)
            tmp.replace(target)
            written.append(target)

        put("power_mde.csv", lambda p: self.mde.to_csv(p, index=False))
        put("power_curves.csv", lambda p: self.curves.to_csv(p, index=False))
        put("power_curves_dense.csv", lambda p: self.dense.to_csv(p, index=False))
        put("power_replications.csv", lambda p: self.replications.to_csv(p, index=False))
        put("power_summary.txt", lambda p: p.write_text(self.summary() + "\n", encoding="utf-8"))
        put(
            "power_results.json",
            lambda p: p.write_text(json.dumps(self.to_dict(), indent=2, default=str), "utf-8"),
        )
        fig = self.plot()
        put("power_curves.png", lambda p: fig.savefig(p, dpi=150, format="png"))
        put("power_curves.svg", lambda p: fig.savefig(p, format="svg"))
        return written


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------- the simulation
def simulate_power(
    data: pd.DataFrame,
    *,
    unit: str = "la_code",
    time: str = "period",
    outcome: str = "sgo_exits_per_10k",
    strata: str | None = "region",
    n_pilot: Sequence[int] = (5, 7, 10, 15),
    post_periods: Sequence[int] = (1, 2, 3),
    effects: Sequence[float] = DEFAULT_EFFECTS,
    effect_type: EffectType = "additive",
    selection: Selection = "random",
    actual_pilots: Sequence[Any] = (),
    exclude_actual: bool = False,
    estimators: Sequence[str] = ("twfe",),
    inference: Sequence[str] = ("cluster", "wild_bootstrap"),
    reps: int = 500,
    bootstrap_reps: int = 999,
    bootstrap_weights: str = "webb",
    alpha: float = 0.05,
    target_power: float = 0.8,
    seed: int = 20260227,
    n_jobs: int | None = 1,
    progress: bool = True,
    fast: bool = True,
) -> PowerResult:
    """Simulate power and MDEs of placebo pilots on a panel without treatment.

    Parameters
    ----------
    data
        Long panel without any treated period (e.g. the real pre-pilot years), one row per unit
        and period; rows with a missing outcome are dropped.
    unit, time, outcome
        Column names.
    strata
        Unit-level column for the stratified selection rules (``None`` for none).
    n_pilot, post_periods
        The designs: numbers of placebo pilots and of treated (last) periods.
    effects
        Effect sizes: in outcome units (``additive``) or as fractions of each LA's pre-period
        mean (``proportional``, e.g. 0.1 = +10%). Zero is always added.
    effect_type
        ``additive`` or ``proportional``.
    selection
        ``random``, ``stratified`` or ``actual_regions`` (see the module notes).
    actual_pilots
        The real pilot units (for ``actual_regions`` and ``exclude_actual``).
    exclude_actual
        Drop the real pilot units from the panel altogether.
    estimators, inference
        Every estimator is run with every inference method valid for it (``wild_bootstrap``:
        TWFE only; ``cluster`` or ``default`` give the other estimators their own default).
    reps
        Placebo replications per design.
    bootstrap_reps, bootstrap_weights
        Wild bootstrap (and other resampling inference) draws and weights.
    alpha, target_power
        Two-sided test level and the power the MDE is defined at.
    seed
        Root of the per-replication seed sequences.
    n_jobs
        joblib workers (``-1`` = all cores; ``None`` or 1 = no parallelism).
    progress
        Show a progress bar (only on a terminal).
    fast
        Use the fast TWFE path where it applies (turn off to check it against the general one).

    Returns
    -------
    PowerResult
    """
    started = _time.perf_counter()
    if reps < 1:
        raise InputError(f"reps must be positive, not {reps}")
    if not 0 < alpha < 1 or not 0 < target_power < 1:
        raise InputError("alpha and target_power must be between 0 and 1")
    if effect_type not in ("additive", "proportional"):
        raise InputError(f"effect_type must be 'additive' or 'proportional', not {effect_type!r}")
    if selection not in SELECTION_RULES:
        raise InputError(f"selection must be one of {', '.join(SELECTION_RULES)}")
    if bootstrap_weights not in WEIGHT_TYPES:
        raise InputError(f"bootstrap_weights must be one of {', '.join(WEIGHT_TYPES)}")
    effects_arr = np.array(sorted({0.0, *(float(e) for e in effects)}))
    if (effects_arr < 0).any():
        raise InputError("effect sizes must be zero or positive")
    combos = _combos(estimators, inference)
    notes: list[str] = []
    panel, frame = _prepare(
        data, unit, time, outcome, strata, actual_pilots, exclude_actual, combos, notes
    )
    n_periods = len(panel.periods)
    for r in post_periods:
        if not 1 <= r < n_periods:
            raise InputError(
                f"post_periods {r} leaves no pre-period: the panel has {n_periods} periods"
            )
    actual_strata: tuple[Any, ...] = ()
    if selection == "actual_regions":
        if strata is None:
            raise SpecError("selection 'actual_regions' needs a strata column (e.g. region)")
        known = frame.drop_duplicates(unit).set_index(unit)[strata]
        missing = [p for p in actual_pilots if p not in known.index]
        if not actual_pilots or len(missing) == len(actual_pilots):
            raise SpecError("selection 'actual_regions' needs the actual pilot LAs in the data")
        actual_strata = tuple(str(known[p]) for p in actual_pilots if p in known.index)

    structure = None
    try:
        structure = estimate_error_structure(frame, unit=unit, time=time, outcome=outcome)
    except (EstimationError, InputError) as exc:
        notes.append(f"no analytic MDE: {exc}")

    designs = [(int(n), int(r)) for n in n_pilot for r in post_periods]
    design_info: dict[tuple[int, int], dict[str, Any]] = {}
    for n, r in designs:
        _, eligible, unit_base = _design_arrays(panel, r)
        n_elig = int(eligible.sum())
        if n >= n_elig:
            raise InputError(f"{n} placebo pilots leave no comparison LA ({n_elig} eligible)")
        pool_base = float(np.nanmean(unit_base[eligible]))
        info: dict[str, Any] = {"n_units": n_elig, "n_pre": n_periods - r, "pool_base": pool_base}
        se_a = se_e = math.nan
        if structure is not None:
            shape = {"n_treated": n, "n_control": n_elig - n, "n_pre": n_periods - r, "n_post": r}
            se_a = analytic_se(structure, **shape)
            if structure.n_periods >= n_periods:
                se_e = analytic_se(structure, **shape, covariance="empirical")
        info["se_analytic"] = se_a
        info["se_analytic_emp"] = se_e
        info["mde_analytic"] = analytic_mde(se_a, alpha=alpha, power=target_power)
        info["mde_analytic_emp"] = analytic_mde(se_e, alpha=alpha, power=target_power)
        hi = float(effects_arr.max())
        if np.isfinite(info["mde_analytic"]):
            scale = pool_base if effect_type == "proportional" and pool_base > 0 else 1.0
            hi = max(hi, 2.5 * info["mde_analytic"] / scale)
        info["dense"] = np.unique(np.r_[effects_arr, np.linspace(0.0, hi, DENSE_POINTS)])
        design_info[(n, r)] = info

    tasks = [
        _Task(
            panel=panel,
            n_pilot=n,
            post_periods=r,
            reps=tuple(range(start, min(start + _CHUNK, reps))),
            combos=tuple(combos),
            effects=effects_arr,
            dense=design_info[(n, r)]["dense"],
            effect_type=effect_type,
            rule=selection,
            actual_strata=actual_strata,
            seed=int(seed),
            bootstrap_reps=int(bootstrap_reps),
            bootstrap_weights=bootstrap_weights,
            alpha=float(alpha),
            names={"unit": unit, "time": time, "outcome": outcome},
        )
        for n, r in designs
        for start in range(0, reps, _CHUNK)
    ]
    results = _execute(tasks, n_jobs=n_jobs, progress=progress, total=reps * len(designs))
    curves, dense, mde, replications = _assemble(
        results, designs, combos, design_info, effects_arr, effect_type, reps, target_power
    )
    for row in mde.itertuples(index=False):
        limit = alpha + 3 * math.sqrt(alpha * (1 - alpha) / max(reps, 1))
        if row.size > limit:
            notes.append(
                f"{row.estimator}/{row.inference} with {row.n_pilot} pilots and "
                f"{row.post_periods} post-period(s) rejects {row.size:.1%} of placebo pilots at "
                f"zero effect, more than the nominal {alpha:.0%} allows for Monte Carlo error: "
                "it over-rejects on this design, so its power is overstated"
            )
    if mde["mde"].isna().any():
        notes.append("MDE n/a: power did not reach the target on the simulated effect grid")
    settings = {
        "outcome": outcome,
        "unit": unit,
        "time": time,
        "strata": strata,
        "periods": [int(p) for p in panel.periods],
        "n_units": len(panel.units),
        "n_pilot": [int(n) for n in n_pilot],
        "post_periods": [int(r) for r in post_periods],
        "effects": [float(e) for e in effects_arr],
        "effect_type": effect_type,
        "selection": selection,
        "actual_pilots": [str(p) for p in actual_pilots],
        "exclude_actual": exclude_actual,
        "estimators": list(dict.fromkeys(c[0] for c in combos)),
        "inference": list(dict.fromkeys(c[1] for c in combos)),
        "reps": int(reps),
        "bootstrap_reps": int(bootstrap_reps),
        "bootstrap_weights": bootstrap_weights,
        "alpha": float(alpha),
        "target_power": float(target_power),
        "seed": int(seed),
        "fast_path": [f"{e}/{i}" for e, i in combos if fast and _is_fast((e, i))],
    }
    return PowerResult(
        curves=curves,
        dense=dense,
        mde=mde,
        replications=replications,
        settings=settings,
        error_structure=structure,
        notes=notes,
        elapsed=_time.perf_counter() - started,
    )


def _combos(estimators: Sequence[str], inference: Sequence[str]) -> list[tuple[str, str]]:
    from kinship_eval.did.estimate import ESTIMATORS, INFERENCE_METHODS

    combos = []
    for est in dict.fromkeys(estimators):
        if est not in ESTIMATORS:
            raise SpecError(f"unknown estimator {est!r}; choose one of {', '.join(ESTIMATORS)}")
        for inf in dict.fromkeys(inference):
            if inf != "default" and inf not in INFERENCE_METHODS:
                raise SpecError(f"unknown inference {inf!r}")
            if inf == "wild_bootstrap" and est != "twfe":
                continue
            combos.append((est, inf))
    if not combos:
        raise SpecError("no valid estimator and inference combination to simulate")
    return combos


def _prepare(
    data: pd.DataFrame,
    unit: str,
    time: str,
    outcome: str,
    strata: str | None,
    actual_pilots: Sequence[Any],
    exclude_actual: bool,
    combos: list[tuple[str, str]],
    notes: list[str],
) -> tuple[_PanelArrays, pd.DataFrame]:
    cols = [unit, time, outcome] + ([strata] if strata else [])
    for col in cols:
        if col not in data.columns:
            raise InputError("column not found", file="power data", column=col)
    frame = data[cols].copy()
    frame[time] = pd.to_numeric(frame[time])
    frame[outcome] = pd.to_numeric(frame[outcome], errors="coerce")
    n_missing = int(frame[outcome].isna().sum())
    frame = frame.dropna(subset=[outcome])
    if n_missing:
        notes.append(f"{n_missing} unit-periods without {outcome} left out")
    if exclude_actual and len(actual_pilots):
        frame = frame.loc[~frame[unit].isin(list(actual_pilots))]
        notes.append(f"the {len(actual_pilots)} actual pilot LAs left out of the panel")
    if frame.duplicated([unit, time]).any():
        raise InputError("duplicate unit and period rows", file="power data", column=unit)
    if any(c[0] in ("sdid", "sc") for c in combos):
        n_t = frame[time].nunique()
        counts = frame.groupby(unit)[time].nunique()
        keep = counts.index[counts == n_t]
        if len(keep) < len(counts):
            notes.append(
                f"{len(counts) - len(keep)} LAs not observed every year left out (synthetic "
                "estimators need a balanced panel)"
            )
        frame = frame.loc[frame[unit].isin(keep)]
    frame = frame.sort_values([unit, time], kind="stable").reset_index(drop=True)
    units, unit_codes = np.unique(frame[unit].to_numpy(), return_inverse=True)
    periods, time_codes = np.unique(frame[time].to_numpy(dtype=np.int64), return_inverse=True)
    strata_arr = None
    if strata:
        per_unit = frame.groupby(unit)[strata]
        if (per_unit.nunique(dropna=False) > 1).any():
            raise InputError("strata must be constant within each unit", column=strata)
        strata_arr = per_unit.first().reindex(units).astype(str).to_numpy()
    panel = _PanelArrays(
        units=units,
        unit_codes=unit_codes.astype(np.intp),
        time_codes=time_codes.astype(np.intp),
        periods=periods,
        y=frame[outcome].to_numpy(dtype=float),
        strata=strata_arr,
        eligible_base=np.ones(len(units), dtype=bool),
    )
    return panel, frame


def _execute(
    tasks: list[_Task], *, n_jobs: int | None, progress: bool, total: int
) -> list[_TaskResult]:
    from joblib import Parallel, delayed
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    show = progress and console.is_terminal
    results: list[_TaskResult] = []
    with Progress(
        TextColumn("[bold]power simulation"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=False,
    ) as bar:
        job = bar.add_task("reps", total=total)
        if n_jobs in (None, 1):
            stream: Any = (_run_task(t) for t in tasks)
        else:
            stream = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_run_task)(t) for t in tasks
            )
        for res in stream:
            results.append(res)
            bar.advance(job, len(res.reps))
    return results


def _assemble(
    results: list[_TaskResult],
    designs: list[tuple[int, int]],
    combos: list[tuple[str, str]],
    info: dict[tuple[int, int], dict[str, Any]],
    effects: np.ndarray,
    effect_type: str,
    reps: int,
    target: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    by_design: dict[tuple[int, int], list[_TaskResult]] = {d: [] for d in designs}
    for res in results:
        by_design[(res.n_pilot, res.post_periods)].append(res)
    curve_rows: list[dict[str, Any]] = []
    dense_rows: list[dict[str, Any]] = []
    mde_rows: list[dict[str, Any]] = []
    rep_frames: list[pd.DataFrame] = []
    for design in designs:
        parts = sorted(by_design[design], key=lambda r: r.reps[0])
        n, r = design
        baseline_all = np.concatenate([p.baseline for p in parts])
        baseline = float(np.nanmean(baseline_all))
        rep_index = np.concatenate([np.asarray(p.reps) for p in parts])
        pilot_sets = [s for p in parts for s in p.pilots]
        for c in combos:
            grid = info[design]["dense"] if _is_fast(c) else effects
            reject = np.sum([p.reject[c] for p in parts], axis=0)
            valid = np.sum([p.valid[c] for p in parts], axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                power = reject / valid
            mc_se = np.sqrt(power * (1 - power) / np.maximum(valid, 1))
            for rows, keep in (
                (dense_rows, np.ones(len(grid), bool)),
                (curve_rows, np.isin(grid, effects)),
            ):
                for e, p, s, v in zip(
                    grid[keep], power[keep], mc_se[keep], valid[keep], strict=True
                ):
                    level = e * baseline if effect_type == "proportional" else e
                    rows.append(
                        {
                            "estimator": c[0],
                            "inference": c[1],
                            "n_pilot": n,
                            "post_periods": r,
                            "effect_type": effect_type,
                            "effect": float(e),
                            "effect_level": float(level),
                            "effect_pct": 100.0 * level / baseline if baseline else math.nan,
                            "power": float(p),
                            "mc_se": float(s),
                            "n_valid": int(v),
                        }
                    )
            mde_e = minimum_detectable_effect(grid, power, target)
            mde_level = mde_e * baseline if effect_type == "proportional" else mde_e
            est = np.concatenate([p.estimate[c] for p in parts])
            se = np.concatenate([p.se[c] for p in parts])
            pv = np.concatenate([p.p_value[c] for p in parts])
            zero = int(np.flatnonzero(grid == 0.0)[0])
            size = float(power[zero])
            mde_a = info[design]["mde_analytic"]
            mde_rows.append(
                {
                    "estimator": c[0],
                    "inference": c[1],
                    "n_pilot": n,
                    "post_periods": r,
                    "n_pre": info[design]["n_pre"],
                    "n_units": info[design]["n_units"],
                    "baseline": baseline,
                    "size": size,
                    "size_mc_se": float(mc_se[zero]),
                    "mde": mde_level,
                    "mde_pct": 100.0 * mde_level / baseline if baseline else math.nan,
                    "mde_analytic": mde_a,
                    "mde_analytic_pct": 100.0 * mde_a / baseline if baseline else math.nan,
                    "mde_analytic_emp": info[design]["mde_analytic_emp"],
                    "se_analytic": info[design]["se_analytic"],
                    "se_analytic_emp": info[design]["se_analytic_emp"],
                    "sd_estimate": float(np.nanstd(est, ddof=1))
                    if np.isfinite(est).sum() > 1
                    else math.nan,
                    "mean_se": float(np.nanmean(se)) if np.isfinite(se).any() else math.nan,
                    "reps": int(valid[zero]),
                }
            )
            rep_frames.append(
                pd.DataFrame(
                    {
                        "estimator": c[0],
                        "inference": c[1],
                        "n_pilot": n,
                        "post_periods": r,
                        "rep": rep_index,
                        "placebo_pilots": pilot_sets,
                        "baseline": baseline_all,
                        "estimate": est,
                        "se": se,
                        "p_value": pv,
                    }
                )
            )
    replications = pd.concat(rep_frames, ignore_index=True) if rep_frames else pd.DataFrame()
    return (
        pd.DataFrame(curve_rows, columns=CURVE_COLUMNS),
        pd.DataFrame(dense_rows, columns=CURVE_COLUMNS),
        pd.DataFrame(mde_rows, columns=MDE_COLUMNS),
        replications,
    )


# ------------------------------------------------------------------------------ power specs
def load_power_spec(path: str | Path, overrides: Sequence[str] = ()) -> PowerSpec:
    """Read a power spec, apply ``key=value`` overrides and validate it.

    Relative paths (``base_spec``, ``data_csv``) are resolved against the spec file's folder.
    """
    from kinship_eval.spec import read_spec_mapping

    raw, file = read_spec_mapping(path, overrides, kind="power spec")
    for key in ("base_spec", "data_csv"):
        if isinstance(raw.get(key), str) and raw[key]:
            raw[key] = str((file.parent / raw[key]).resolve())
    try:
        return PowerSpec.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            fld = ".".join(str(p) for p in err["loc"])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            ctx = err.get("ctx") or {}
            if "expected" in ctx:
                msg = f"{msg} (valid values: {ctx['expected']})"
            lines.append(f"{file}: field '{fld}': {msg}")
        raise SpecError("\n".join(lines)) from None


def power_data(spec: PowerSpec) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The panel a power spec simulates on: real years only.

    Returns
    -------
    (data, actual pilot units, notes)
    """
    notes: list[str] = []
    if spec.data_csv is not None:
        from kinship_eval.data.tables import read_csv_frame

        data = read_csv_frame(spec.data_csv)
        source = str(spec.data_csv)
        pilots_col = data["pilot"].astype(bool) if "pilot" in data.columns else None
    else:
        from kinship_eval.pipeline import build_panel, estimation_sample
        from kinship_eval.spec import Spec, load_spec

        base = load_spec(spec.base_spec) if spec.base_spec is not None else Spec()
        base = base.model_copy(update={"outcome": spec.outcome})
        panel, _ = build_panel(base)
        data, sample_notes = estimation_sample(base, panel)
        notes += sample_notes
        source = str(spec.base_spec) if spec.base_spec else "bundled data"
        pilots_col = data["pilot"].astype(bool)
    if "illustrative" in data.columns:
        flagged = data["illustrative"].astype(bool)
        if flagged.any():
            notes.append(f"illustrative (simulated) years of {source} left out: real years only")
        data = data.loc[~flagged]
        if pilots_col is not None:
            pilots_col = pilots_col.loc[data.index]
    if spec.periods is not None:
        lo, hi = spec.periods
        t = pd.to_numeric(data[spec.time])
        data = data.loc[(t >= lo) & (t <= hi)]
        if pilots_col is not None:
            pilots_col = pilots_col.loc[data.index]
    if data.empty:
        raise InputError("no real data in the power spec's periods", file=source)
    if spec.actual_pilots is not None:
        actual = list(spec.actual_pilots)
    elif pilots_col is not None:
        actual = sorted(data.loc[pilots_col, spec.unit].unique())
    else:
        actual = []
    return data, actual, notes


def run_power(
    spec_path: str | Path,
    overrides: Sequence[str] = (),
    *,
    n_jobs: int | None = 1,
    progress: bool = True,
) -> PowerResult:
    """Run the power simulation a power spec describes (``kinship-eval power``).

    Parameters
    ----------
    spec_path
        The power spec (YAML).
    overrides
        ``dotted.key=value`` overrides of its fields (e.g. ``reps=200``).
    n_jobs
        joblib workers (``-1`` = all cores).
    progress
        Show a progress bar on a terminal.

    Returns
    -------
    PowerResult
        With the spec, its digest and the data source in ``settings``.
    """
    import hashlib

    spec = load_power_spec(spec_path, overrides)
    data, actual, notes = power_data(spec)
    result = simulate_power(
        data,
        unit=spec.unit,
        time=spec.time,
        outcome=spec.outcome,
        strata=spec.strata,
        n_pilot=spec.n_pilot,
        post_periods=spec.post_periods,
        effects=spec.effects,
        effect_type=spec.effect_type,
        selection=spec.selection,
        actual_pilots=actual,
        exclude_actual=spec.exclude_actual_pilots,
        estimators=spec.estimators,
        inference=spec.inference,
        reps=spec.reps,
        bootstrap_reps=spec.bootstrap_reps,
        bootstrap_weights=spec.bootstrap_weights,
        alpha=spec.alpha,
        target_power=spec.target_power,
        seed=spec.seed,
        n_jobs=n_jobs,
        progress=progress,
    )
    dumped = spec.model_dump(mode="json")
    result.settings["spec"] = dumped
    result.settings["spec_name"] = spec.name
    result.settings["spec_digest"] = hashlib.sha256(
        json.dumps(dumped, sort_keys=True).encode()
    ).hexdigest()[:16]
    result.notes[:0] = notes
    return result
