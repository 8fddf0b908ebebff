"""Which LAs to compare the pilot LAs with: the comparison group, chosen by a spec and reported.

The pilot LAs were chosen for a mix of geography and service models, not at random, so the choice
of comparison group is a design decision to make before looking at post-pilot outcomes and to
report. :func:`select_comparison` implements four, selected by :class:`ComparisonSpec.method`:

``all_non_pilot``
    Every LA that is not a pilot (the default of the primary analysis).
``exclude_contaminated``
    Every non-pilot LA except those flagged in the comparison register (by default
    ``pays_kinship_allowance_at_fostering_rates``: LAs already paying kinship carers at fostering
    rates receive something like the treatment).
``nearest_neighbour``
    Nearest-neighbour matching of each pilot LA to ``k`` comparison LAs on the pre-period levels
    and trends of the outcomes and covariates (:mod:`kinship_eval.design.features`), by
    Mahalanobis distance or by the distance between estimated propensity-score logits; with or
    without replacement, with an optional caliper and exact matching on columns such as
    ``region``.
``synthetic``
    The unit weights of synthetic difference-in-differences or synthetic control
    (:func:`kinship_eval.did.synthetic.synthetic_did`, fitted on the pre-period only).

Flag columns listed in ``exclude`` are applied first, whatever the method. Every method returns a
:class:`ComparisonResult` with the selected LAs and their weights, the settings, a tidy table
(:meth:`ComparisonResult.to_frame`), a text summary and the balance before and after
(:meth:`ComparisonResult.balance`).

Matching conventions
--------------------
Mahalanobis distance
    ``sqrt((x_p - x_c)' S^-1 (x_p - x_c))`` with ``S`` the pooled within-group covariance of the
    features (pilots and comparison pool), a pseudo-inverse when it is singular.
Propensity score
    A logit of pilot status on the standardised features (statsmodels). With a handful of pilots
    the maximum-likelihood fit often separates; then (or whenever ``propensity_penalty`` is set)
    a ridge-penalised logit is fitted instead (penalty 1 on the standardised coefficients unless
    given, intercept unpenalised) and a note says so. The distance is the absolute difference of
    the linear predictors (logits).
Caliper
    In standard deviations: of the propensity logit across pilots and pool (Austin 2011 recommends
    0.2), or, for Mahalanobis matching, of all pilot-to-candidate distances. Pilots with no
    candidate inside the caliper keep fewer (or no) matches, with a note; they are never dropped
    from the pilot group.
Greedy algorithm
    Without replacement, matching proceeds in ``k`` rounds (every pilot gets its first match before
    any gets a second); within a round the closest remaining (pilot, candidate) pair is matched
    first, so the result does not depend on the order of the pilots. Ties go to the first LA code.
    With replacement each pilot takes its ``k`` nearest candidates.
Weights
    Each pilot spreads a weight of one equally over its matches; a comparison LA's weight is the
    sum over the pilots it was matched to, and the weights are normalised to sum to one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kinship_eval.design.balance import BalanceResult, balance_table
from kinship_eval.design.features import feature_name, pre_period_features
from kinship_eval.design.specs import (
    COMPARISON_METHODS,
    CONTAMINATION_FLAG,
    ComparisonSpec,
    comparison_spec,
)
from kinship_eval.errors import EstimationError, InputError, SpecError

__all__ = [
    "COMPARISON_METHODS",
    "CONTAMINATION_FLAG",
    "ComparisonResult",
    "ComparisonSpec",
    "greedy_match",
    "mahalanobis_distances",
    "propensity_logits",
    "select_comparison",
]

#: Ridge penalty of the fallback propensity logit (on standardised features).
DEFAULT_PENALTY = 1.0


# ---------------------------------------------------------------------------------- results
UNIT_COLUMNS = ["role", "weight", "n_matches", "matched_to", "distance", "reason"]


@dataclass
class ComparisonResult:
    """The comparison group a :class:`ComparisonSpec` selected, and how.

    Attributes
    ----------
    method
        The method name (``ComparisonSpec.method``).
    description
        One line describing the selection.
    settings
        The spec that produced it (JSON-ready).
    pilots
        Pilot units.
    weights
        Weights of the selected comparison units (index = unit; positive; sum to one).
    units
        One row per unit of the data (index = unit): ``name``, ``region``, ``role`` (``pilot``,
        ``comparison``, ``not selected``, ``excluded``, ``no data``), ``weight``, ``n_matches``
        (pilots matched to it), ``matched_to``, ``distance`` (mean distance to the pilots it was
        matched to), ``reason`` (why it was excluded or could not be used).
    matches
        Nearest-neighbour matching only: one row per pair (``pilot``, ``comparison``, ``rank``,
        ``distance``).
    features
        The pre-period features of every unit (index = unit), used for matching and balance.
    pool
        Comparison units before selection (every non-pilot unit): the "before" of the balance.
    pre_periods
        The pre-period window ``(first, last)``.
    notes
        Caveats for the technical annex.
    """

    method: str
    description: str
    settings: dict[str, Any]
    pilots: list[Any]
    weights: pd.Series
    units: pd.DataFrame
    features: pd.DataFrame
    pool: list[Any]
    pre_periods: tuple[int, int]
    unit_col: str = "la_code"
    matches: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def comparison_units(self) -> list[Any]:
        """Selected comparison units (positive weight), largest weight first."""
        return list(self.weights.sort_values(ascending=False, kind="stable").index)

    @property
    def n_comparison(self) -> int:
        return len(self.weights)

    @property
    def effective_n(self) -> float:
        """Kish effective number of comparison LAs, ``1 / sum w^2``."""
        return float(1.0 / (self.weights**2).sum())

    def to_frame(self) -> pd.DataFrame:
        """One row per LA: its role in the design and its weight (tidy)."""
        out = self.units.reset_index()
        out.insert(0, "method", self.method)
        return out

    def balance(
        self, variables: Sequence[str] | None = None, *, threshold: float = 0.1
    ) -> BalanceResult:
        """Balance of the pilots against all non-pilot LAs (before) and this group (after)."""
        return balance_table(
            self.features,
            self.pilots,
            weights=self.weights,
            before=self.pool,
            variables=variables,
            method=self.description,
            threshold=threshold,
        )

    def apply(
        self, data: pd.DataFrame, *, weight_column: str = "comparison_weight"
    ) -> pd.DataFrame:
        """Rows of ``data`` for the pilots and the selected comparison LAs, with their weights.

        ``weight_column`` holds 1 for pilot rows and, for comparison rows, the comparison weight
        scaled so that comparison weights average one (MatchIt's convention): usable as regression
        weights (``weights=`` of :func:`kinship_eval.did.twfe.twfe`).
        """
        if self.unit_col not in data.columns:
            raise InputError("column not found", file="panel", column=self.unit_col)
        scaled = self.weights * len(self.weights)
        mapping = {**{u: 1.0 for u in self.pilots}, **scaled.to_dict()}
        keep = data[self.unit_col].isin(list(mapping))
        out = data.loc[keep].copy()
        out[weight_column] = out[self.unit_col].map(mapping).astype(float)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: method, settings, weights and notes."""
        return {
            "method": self.method,
            "description": self.description,
            "settings": self.settings,
            "pre_periods": list(self.pre_periods),
            "pilots": [str(p) for p in self.pilots],
            "weights": {str(k): float(v) for k, v in self.weights.items()},
            "effective_n": self.effective_n,
            "notes": list(self.notes),
        }

    def summary(self, top: int = 15) -> str:
        """Text summary: the method, the selected LAs with their weights, and notes."""
        names = self.units.get("name")
        lines = [
            f"Comparison group: {self.description}",
            f"pre-period {self.pre_periods[0]}-{self.pre_periods[1]}; {len(self.pilots)} pilot "
            f"LAs; {self.n_comparison} comparison LAs of {len(self.pool)} non-pilot LAs "
            f"(effective number {self.effective_n:.1f})",
        ]
        counts = self.units["role"].value_counts()
        lines.append("roles: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        shown = self.weights.sort_values(ascending=False, kind="stable").head(top)
        lines.append(f"largest weights (top {len(shown)}):")
        for unit, w in shown.items():
            label = f"{unit} {names[unit]}" if names is not None else str(unit)
            matched = self.units.at[unit, "matched_to"]
            extra = f"  matched to {matched}" if isinstance(matched, str) and matched else ""
            lines.append(f"  {label:<45} {w:8.4f}{extra}")
        bal = self.balance()
        lines.append(
            f"max |SMD| of the pre-period features: {bal.max_abs_smd_before:.3f} before, "
            f"{bal.max_abs_smd_after:.3f} after"
        )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------- distances (pure)
def mahalanobis_distances(x_pilot: np.ndarray, x_pool: np.ndarray) -> np.ndarray:
    """Mahalanobis distances (``n_pilot x n_pool``) with the pooled within-group covariance."""
    xp = np.asarray(x_pilot, dtype=float)
    xc = np.asarray(x_pool, dtype=float)
    n1, n0 = len(xp), len(xc)
    cov = np.zeros((xp.shape[1], xp.shape[1]))
    if n1 > 1:
        cov += (n1 - 1) * np.cov(xp, rowvar=False).reshape(cov.shape)
    if n0 > 1:
        cov += (n0 - 1) * np.cov(xc, rowvar=False).reshape(cov.shape)
    cov /= max(n1 + n0 - 2, 1)
    inv = np.linalg.pinv(cov)
    diff = xp[:, None, :] - xc[None, :, :]
    d2 = np.einsum("ijk,kl,ijl->ij", diff, inv, diff)
    return np.sqrt(np.maximum(d2, 0.0))


def propensity_logits(
    x_pilot: np.ndarray, x_pool: np.ndarray, penalty: float | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Linear predictors of a logit of pilot status on standardised features.

    Parameters
    ----------
    x_pilot, x_pool
        Features of the pilots and of the comparison pool.
    penalty
        ``None``: maximum likelihood (:class:`statsmodels.discrete.discrete_model.Logit`),
        falling back to a ridge penalty of :data:`DEFAULT_PENALTY` when the fit separates or
        fails to converge. A number: a ridge-penalised binomial GLM with that penalty on the
        standardised slopes (intercept unpenalised).

    Returns
    -------
    (logits of the pilots, logits of the pool, description of the fit)
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    x = np.vstack([x_pilot, x_pool]).astype(float)
    y = np.r_[np.ones(len(x_pilot)), np.zeros(len(x_pool))]
    sd = x.std(axis=0, ddof=1)
    sd[~(sd > 0)] = 1.0
    z = (x - x.mean(axis=0)) / sd
    design = np.column_stack([np.ones(len(z)), z])
    fit_label = "maximum likelihood"
    lp = None
    if penalty is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = sm.Logit(y, design).fit(disp=0, maxiter=200)
                lp = design @ res.params
            except Exception:  # some statsmodels versions raise on perfect separation
                lp = None
        trouble = any(
            issubclass(w.category, ConvergenceWarning) or "separation" in str(w.message).lower()
            for w in caught
        )
        if lp is None or trouble or not np.all(np.isfinite(lp)) or np.abs(lp).max() > 25:
            penalty = DEFAULT_PENALTY
            lp = None
            fit_label = (
                f"ridge-penalised (penalty {DEFAULT_PENALTY:g}; the maximum-likelihood fit "
                "separated or did not converge)"
            )
    if lp is None:
        pen = float(penalty if penalty is not None else DEFAULT_PENALTY)
        alpha = np.r_[0.0, np.full(z.shape[1], pen / len(y))]
        model = sm.GLM(y, design, family=sm.families.Binomial())
        res = model.fit_regularized(alpha=alpha, L1_wt=0.0, maxiter=500)
        lp = design @ np.asarray(res.params)
        if fit_label == "maximum likelihood":
            fit_label = f"ridge-penalised (penalty {pen:g})"
    return lp[: len(x_pilot)], lp[len(x_pilot) :], fit_label


def greedy_match(distances: np.ndarray, k: int = 1, replace: bool = False) -> list[list[int]]:
    """Greedy nearest-neighbour matching on a ``n_pilot x n_pool`` distance matrix.

    Entries that are ``inf`` (or ``nan``) are forbidden pairs (outside the caliper or the exact
    strata). Returns, for each pilot, the indices of its matches in order of matching.
    """
    d = np.where(np.isfinite(distances), distances, np.inf).astype(float)
    n1, n0 = d.shape
    matches: list[list[int]] = [[] for _ in range(n1)]
    if replace:
        for i in range(n1):
            order = np.argsort(d[i], kind="stable")
            matches[i] = [int(j) for j in order[:k] if np.isfinite(d[i, j])]
        return matches
    used = np.zeros(n0, dtype=bool)
    for rnd in range(k):
        active = np.array([len(m) == rnd for m in matches])
        while active.any():
            sub = np.where(active[:, None] & ~used[None, :], d, np.inf)
            flat = int(np.argmin(sub))
            i, j = divmod(flat, n0)
            if not np.isfinite(sub[i, j]):
                break
            matches[i].append(j)
            used[j] = True
            active[i] = False
    return matches


# --------------------------------------------------------------------------- the selection
def select_comparison(
    data: pd.DataFrame,
    spec: ComparisonSpec | dict[str, Any] | None = None,
    *,
    unit: str = "la_code",
    time: str = "period",
    pilot: str = "pilot",
    first_treated: str = "first_treated",
    name: str | None = "la_name",
    region: str | None = "region",
    real_only: bool = True,
    **overrides: Any,
) -> ComparisonResult:
    """Choose the comparison LAs for the pilots, as the spec says.

    Parameters
    ----------
    data
        Long LA x year panel (e.g. the estimation sample of :func:`kinship_eval.pipeline.
        estimation_sample`), with a boolean ``pilot`` column and the spec's variables.
    spec
        A :class:`ComparisonSpec` (or a mapping of its fields); default ``ComparisonSpec()``.
    unit, time, pilot, first_treated
        Column names. ``first_treated`` (optional) sets the default pre-period: every period
        before the pilots' earliest first treated period.
    name, region
        Optional descriptive columns carried into the results.
    real_only
        Leave out rows flagged in an ``illustrative`` column (simulated years): the comparison
        group is chosen on real data only.
    **overrides
        Spec fields overriding ``spec`` (e.g. ``method="nearest_neighbour", k=2``).

    Returns
    -------
    ComparisonResult
    """
    if spec is None:
        spec = ComparisonSpec()
    if isinstance(spec, ComparisonSpec):
        spec = comparison_spec(spec.model_dump(), **overrides) if overrides else spec
    else:
        spec = comparison_spec(spec, **overrides)
    for col in (unit, time, pilot):
        if col not in data.columns:
            raise InputError("column not found", file="panel", column=col)
    missing = [v for v in spec.variables if v not in data.columns]
    if missing and spec.method == "nearest_neighbour":
        raise SpecError(
            f"comparison: variable(s) not in the panel: {', '.join(missing)}; numeric columns: "
            + ", ".join(c for c in data.columns if pd.api.types.is_numeric_dtype(data[c]))
        )
    variables = [v for v in spec.variables if v in data.columns]
    frame = data.copy()
    frame[time] = pd.to_numeric(frame[time])
    notes: list[str] = []
    if real_only and "illustrative" in frame.columns and frame["illustrative"].astype(bool).any():
        frame = frame.loc[~frame["illustrative"].astype(bool)]
        notes.append("illustrative (simulated) years left out: chosen on real data only")
    is_pilot = frame.groupby(unit)[pilot].any()
    pilots = sorted(is_pilot.index[is_pilot.to_numpy(dtype=bool)])
    if not pilots:
        raise EstimationError("no pilot LAs in the data (the pilot column is never true)")
    window = _pre_window(frame, spec, time, pilot, first_treated)

    units = pd.DataFrame(index=pd.Index(sorted(frame[unit].unique()), name=unit))
    for label, col in (("name", name), ("region", region)):
        if col and col in frame.columns:
            units[label] = frame.groupby(unit)[col].first().reindex(units.index)
    units["role"] = np.where(units.index.isin(pilots), "pilot", "not selected")
    units["weight"] = 0.0
    units["n_matches"] = 0
    units["matched_to"] = ""
    units["distance"] = np.nan
    units["reason"] = ""
    pool_all = [u for u in units.index if u not in set(pilots)]

    for flag in spec.exclude_flags:
        if flag not in frame.columns:
            raise SpecError(
                f"comparison: flag column '{flag}' not in the panel; give a comparison register "
                "with it (data.comparison_register)"
            )
        flagged = frame.groupby(unit)[flag].any().reindex(units.index).fillna(False)
        hit = flagged.to_numpy(dtype=bool) & (units["role"] != "pilot").to_numpy()
        units.loc[hit, "role"] = "excluded"
        units.loc[hit, "reason"] = flag
        notes.append(f"{int(hit.sum())} non-pilot LAs excluded as flagged '{flag}'")
        flagged_pilots = [p for p in pilots if bool(flagged.get(p, False))]
        if flagged_pilots:
            notes.append(f"pilot LAs also flagged '{flag}' (kept): {', '.join(flagged_pilots)}")
    pool = [u for u in pool_all if units.at[u, "role"] != "excluded"]
    if not pool:
        raise EstimationError("no comparison LAs left after the exclusions")

    if missing:
        notes.append(f"not in the panel, left out of the balance table: {', '.join(missing)}")
    features = pre_period_features(
        frame,
        variables=variables,
        unit=unit,
        time=time,
        periods=window,
        features=spec.features,
    ).reindex(units.index)

    matches = None
    if spec.method in ("all_non_pilot", "exclude_contaminated"):
        weights = pd.Series(1.0 / len(pool), index=pd.Index(pool, name=unit))
    elif spec.method == "nearest_neighbour":
        weights, matches = _nearest_neighbour(spec, features, units, pilots, pool, frame, notes)
    else:
        weights = _synthetic(spec, frame, units, pilots, pool, window, unit, time, notes)
    weights = weights[weights > 0]
    weights = weights / weights.sum()
    weights.name = "weight"
    units.loc[weights.index, "role"] = "comparison"
    units.loc[weights.index, "weight"] = weights.to_numpy()
    settings = spec.model_dump(mode="json")
    settings["exclude_flags"] = list(spec.exclude_flags)
    return ComparisonResult(
        method=spec.method,
        description=spec.describe(),
        settings=settings,
        pilots=pilots,
        weights=weights,
        units=units,
        features=features,
        pool=pool_all,
        pre_periods=window,
        unit_col=unit,
        matches=matches,
        notes=notes,
    )


def _pre_window(
    frame: pd.DataFrame, spec: ComparisonSpec, time: str, pilot: str, first_treated: str
) -> tuple[int, int]:
    first = int(frame[time].min())
    if spec.pre_periods is not None:
        return (int(spec.pre_periods[0]), int(spec.pre_periods[1]))
    if first_treated in frame.columns:
        g = pd.to_numeric(frame.loc[frame[pilot].astype(bool), first_treated], errors="coerce")
        g = g[g > 0]
        if len(g):
            last = int(g.min()) - 1
            if last < first:
                raise EstimationError("the pilots have no pre-period in the data")
            return (first, min(last, int(frame[time].max())))
    return (first, int(frame[time].max()))


def _nearest_neighbour(
    spec: ComparisonSpec,
    features: pd.DataFrame,
    units: pd.DataFrame,
    pilots: list[Any],
    pool: list[Any],
    frame: pd.DataFrame,
    notes: list[str],
) -> tuple[pd.Series, pd.DataFrame]:
    cols = [
        feature_name(v, f) for v in spec.variables for f in spec.features
    ]  # every requested feature
    cols = [c for c in cols if c in features.columns]
    complete = features[cols].notna().all(axis=1)
    bad_pilots = [p for p in pilots if not complete[p]]
    if bad_pilots:
        gaps = features.loc[bad_pilots, cols]
        what = [f"{p}: {', '.join(gaps.columns[gaps.loc[p].isna()])}" for p in bad_pilots]
        raise InputError(
            "pilot LA(s) without the pre-period data to match on (" + "; ".join(what) + "); "
            "drop the variable from the comparison spec or widen pre_periods"
        )
    usable = [u for u in pool if complete[u]]
    lost = [u for u in pool if not complete[u]]
    if lost:
        units.loc[lost, "role"] = "no data"
        units.loc[lost, "reason"] = "pre-period features missing"
        notes.append(f"{len(lost)} comparison LAs lack pre-period data on a matching variable")
    if not usable:
        raise EstimationError("no comparison LA has the pre-period data to match on")
    xp = features.loc[pilots, cols].to_numpy(dtype=float)
    xc = features.loc[usable, cols].to_numpy(dtype=float)
    if spec.distance == "mahalanobis":
        dist = mahalanobis_distances(xp, xc)
        scale = float(np.std(dist, ddof=1)) if dist.size > 1 else math.nan
        fit_label = None
    else:
        lp_p, lp_c, fit_label = propensity_logits(xp, xc, spec.propensity_penalty)
        dist = np.abs(lp_p[:, None] - lp_c[None, :])
        scale = float(np.std(np.r_[lp_p, lp_c], ddof=1))
        notes.append(f"propensity score: {fit_label} logit on {len(cols)} standardised features")
    allowed = np.ones(dist.shape, dtype=bool)
    for col in spec.exact:
        if col not in frame.columns:
            raise SpecError(f"comparison: exact-matching column '{col}' not in the panel")
        unit_col = units.index.name
        values = frame.groupby(unit_col)[col].first()
        allowed &= values.reindex(pilots).to_numpy()[:, None] == values.reindex(usable).to_numpy()
    if spec.caliper is not None:
        limit = spec.caliper * scale
        allowed &= dist <= limit
        notes.append(f"caliper {spec.caliper:g} SD = {limit:.4g} in distance units")
    masked = np.where(allowed, dist, np.inf)
    picked = greedy_match(masked, k=spec.k, replace=spec.replace)
    pairs = []
    weight = np.zeros(len(usable))
    for i, js in enumerate(picked):
        for rank, j in enumerate(js, start=1):
            pairs.append(
                {"pilot": pilots[i], "comparison": usable[j], "rank": rank, "distance": dist[i, j]}
            )
            weight[j] += 1.0 / len(js)
    short = [(pilots[i], len(js)) for i, js in enumerate(picked) if len(js) < spec.k]
    if short:
        notes.append(
            "pilot LA(s) with fewer than k matches inside the caliper / exact strata: "
            + ", ".join(f"{p} ({n})" for p, n in short)
        )
    if not pairs:
        raise EstimationError("no pilot LA could be matched (caliper or exact strata too strict)")
    matches = pd.DataFrame(pairs, columns=["pilot", "comparison", "rank", "distance"])
    by_comp = matches.groupby("comparison")
    units.loc[list(by_comp.groups), "n_matches"] = by_comp.size().to_numpy()
    units.loc[list(by_comp.groups), "matched_to"] = by_comp["pilot"].agg(
        lambda s: ";".join(map(str, s))
    )
    units.loc[list(by_comp.groups), "distance"] = by_comp["distance"].mean().to_numpy()
    weights = pd.Series(weight, index=pd.Index(usable, name=units.index.name))
    return weights, matches


def _synthetic(
    spec: ComparisonSpec,
    frame: pd.DataFrame,
    units: pd.DataFrame,
    pilots: list[Any],
    pool: list[Any],
    window: tuple[int, int],
    unit: str,
    time: str,
    notes: list[str],
) -> pd.Series:
    from kinship_eval.did.synthetic import synthetic_did

    outcome = spec.synthetic_outcome or (spec.outcomes[0] if spec.outcomes else None)
    if outcome is None:
        raise SpecError("comparison: synthetic weights need an outcome (synthetic_outcome)")
    if outcome not in frame.columns:
        raise SpecError(f"comparison: synthetic_outcome '{outcome}' not in the panel")
    lo, hi = window
    pre = frame.loc[(frame[time] >= lo) & (frame[time] <= hi) & frame[outcome].notna()]
    pre = pre.loc[pre[unit].isin([*pilots, *pool]), [unit, time, outcome]]
    n_pre = int(pre[time].nunique())
    if n_pre < 2:
        raise EstimationError("synthetic weights need at least two pre-periods")
    counts = pre.groupby(unit)[time].nunique()
    full = set(counts.index[counts == n_pre])
    used_pilots = [p for p in pilots if p in full]
    dropped_pilots = [p for p in pilots if p not in full]
    if not used_pilots:
        raise EstimationError(f"no pilot LA has {outcome} in every pre-period")
    if dropped_pilots:
        notes.append(
            f"pilot LA(s) without {outcome} in every pre-period, left out of the target path of "
            f"the synthetic weights: {', '.join(map(str, dropped_pilots))}"
        )
    lost = [u for u in pool if u not in full]
    if lost:
        units.loc[lost, "role"] = "no data"
        units.loc[lost, "reason"] = f"{outcome} missing in a pre-period"
        notes.append(f"{len(lost)} comparison LAs lack {outcome} in some pre-period")
    donors = [u for u in pool if u in full]
    if len(donors) < 2:
        raise EstimationError("synthetic weights need at least two comparison LAs")
    if spec.post_periods is not None:
        n_post = spec.post_periods
    else:
        n_post = max(1, int((np.unique(frame[time].to_numpy()) > hi).sum()))
    pre = pre.loc[pre[unit].isin([*used_pilots, *donors])]
    # the unit weights depend on the pre-period only (and, for SDID, on the number of
    # post-periods through the regularisation): placeholder post-periods repeat the last
    # pre-period value
    last = pre.loc[pre[time] == pre[time].max()]
    placeholder = pd.concat([last.assign(**{time: hi + s}) for s in range(1, n_post + 1)])
    block = pd.concat([pre, placeholder], ignore_index=True)
    block["_first_treated"] = np.where(block[unit].isin(used_pilots), hi + 1, 0)
    variance = "jackknife" if len(used_pilots) >= 2 else "placebo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = synthetic_did(
            block,
            unit=unit,
            time=time,
            outcome=outcome,
            first_treated="_first_treated",
            method=spec.synthetic_method,
            variance=variance,
            reps=2,
        )
    omega = res.unit_weights
    if omega is None:
        raise EstimationError("the synthetic estimator returned no unit weights")
    notes.append(
        f"{'SDID' if spec.synthetic_method == 'sdid' else 'synthetic control'} unit weights "
        f"fitted to {outcome} over {lo}-{hi} ({n_pre} periods, {n_post} planned post-periods)"
        + (
            "; SDID weights include an intercept, so they match the pilots' pre-period path up "
            "to a constant: level differences remain by design"
            if spec.synthetic_method == "sdid"
            else ""
        )
    )
    out = pd.Series(omega.to_numpy(dtype=float), index=pd.Index(omega.index, name=unit))
    return out
