"""The one results-object pattern shared by every difference-in-differences estimator.

Estimators compute; results objects only hold what was computed and present it. Every estimator
returns a :class:`DiDResults` (or a subclass adding estimator-specific views), with

* the overall average effect on the treated (``att``) and its inference (``se``, ``ci_low``,
  ``ci_high``, ``p_value``, ``inference``),
* where the estimator has them, an event study (``event_study``: one row per event time) and
  group-time effects (``group_time``: one row per cohort and period),
* ``summary()`` (text), ``to_frame()`` (tidy rows), ``to_dict()`` (the JSON contract of
  ``kinship-eval estimate --json``) and ``plot()``,
* ``settings``: the options that produced it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

EVENT_STUDY_COLUMNS = ["rel_time", "att", "se", "ci_low", "ci_high"]
GROUP_TIME_COLUMNS = ["group", "time", "att", "se"]


def normal_interval(estimate: float, se: float, level: float = 0.95) -> tuple[float, float, float]:
    """Two-sided normal confidence interval and p-value for ``estimate`` with standard error ``se``.

    Returns
    -------
    (ci_low, ci_high, p_value)
    """
    if not np.isfinite(se) or se <= 0:
        return (math.nan, math.nan, math.nan)
    z = special.ndtri(0.5 + level / 2)
    p = 2 * special.ndtr(-abs(estimate / se))
    return (estimate - z * se, estimate + z * se, float(p))


def event_study_table(
    rel_time: np.ndarray, att: np.ndarray, se: np.ndarray, n_obs: np.ndarray, *, z: float
) -> pd.DataFrame:
    """Event-study view with normal intervals at critical value ``z`` and the observations behind
    each event time."""
    return pd.DataFrame(
        {
            "rel_time": rel_time,
            "att": att,
            "se": se,
            "ci_low": att - z * se,
            "ci_high": att + z * se,
            "n_obs": n_obs,
        }
    )


def _clean(value: Any) -> Any:
    """Turn numpy scalars and NaN into JSON-friendly Python values (NaN -> None)."""
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _records(frame: pd.DataFrame | None, columns: list[str]) -> list[dict[str, Any]] | None:
    if frame is None:
        return None
    present = [c for c in columns if c in frame.columns]
    return [{c: _clean(v) for c, v in row.items()} for row in frame[present].to_dict("records")]


@dataclass
class DiDResults:
    """Results of a difference-in-differences estimator.

    Attributes
    ----------
    estimator
        Short name of the estimator (``twfe``, ``event_study``, ``cs``, ``sunab``, ``imputation``,
        ``sdid``, ``sc``, ``poisson``).
    outcome
        Name of the outcome column.
    att
        Overall average effect on the treated.
    se, ci_low, ci_high, p_value
        Inference for ``att`` from the method named in ``inference``; intervals at ``level``.
    n_units, n_treated_units, n_periods
        Size of the estimation sample.
    inference
        Name of the inference method (``cluster``, ``wild_bootstrap``, ...).
    event_study
        Optional frame with columns ``rel_time, att, se, ci_low, ci_high`` (and optionally
        ``band_low, band_high`` for uniform bands).
    group_time
        Optional frame with columns ``group, time, att, se``.
    settings
        The options that produced the result.
    notes
        Warnings and caveats to print beneath the summary.
    """

    estimator: str
    outcome: str
    att: float
    se: float
    n_units: int
    n_treated_units: int
    n_periods: int
    inference: str = "cluster"
    level: float = 0.95
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    event_study: pd.DataFrame | None = None
    group_time: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if math.isnan(self.ci_low) and math.isnan(self.ci_high) and math.isnan(self.p_value):
            self.ci_low, self.ci_high, self.p_value = normal_interval(self.att, self.se, self.level)

    # ------------------------------------------------------------------ views
    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``kinship-eval estimate --json`` (see DESIGN.md)."""
        out: dict[str, Any] = {
            "estimator": self.estimator,
            "att": _clean(self.att),
            "se": _clean(self.se),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
            "p_value": _clean(self.p_value),
            "n_units": int(self.n_units),
            "n_treated_units": int(self.n_treated_units),
            "n_periods": int(self.n_periods),
            "inference": self.inference,
        }
        es = _records(self.event_study, EVENT_STUDY_COLUMNS)
        if es is not None:
            out["event_study"] = es
        gt = _records(self.group_time, GROUP_TIME_COLUMNS)
        if gt is not None:
            out["group_time"] = gt
        for key, value in self.extra.items():
            if key not in out and isinstance(value, (list, dict, str, int, float)):
                out[key] = value
        return out

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows: the overall effect, then event-study and group-time rows where present."""
        rows = [
            {
                "term": "ATT",
                "rel_time": np.nan,
                "group": np.nan,
                "time": np.nan,
                "estimate": self.att,
                "std_error": self.se,
                "conf_low": self.ci_low,
                "conf_high": self.ci_high,
                "p_value": self.p_value,
            }
        ]
        if self.event_study is not None:
            for r in self.event_study.to_dict("records"):
                rows.append(
                    {
                        "term": "event_time",
                        "rel_time": r["rel_time"],
                        "group": np.nan,
                        "time": np.nan,
                        "estimate": r["att"],
                        "std_error": r.get("se", np.nan),
                        "conf_low": r.get("ci_low", np.nan),
                        "conf_high": r.get("ci_high", np.nan),
                        "p_value": np.nan,
                    }
                )
        if self.group_time is not None:
            for r in self.group_time.to_dict("records"):
                rows.append(
                    {
                        "term": "group_time",
                        "rel_time": np.nan,
                        "group": r["group"],
                        "time": r["time"],
                        "estimate": r["att"],
                        "std_error": r.get("se", np.nan),
                        "conf_low": np.nan,
                        "conf_high": np.nan,
                        "p_value": np.nan,
                    }
                )
        frame = pd.DataFrame(rows)
        frame.insert(0, "estimator", self.estimator)
        frame.insert(1, "outcome", self.outcome)
        return frame

    def summary(self) -> str:
        """A plain-text summary table."""
        pct = round(self.level * 100)
        lines = [
            f"{'Estimator:':<22}{self.estimator}",
            f"{'Outcome:':<22}{self.outcome}",
            f"{'Units (treated):':<22}{self.n_units} ({self.n_treated_units})",
            f"{'Periods:':<22}{self.n_periods}",
            f"{'Inference:':<22}{self.inference}",
            "",
            f"{'':<12}{'estimate':>12}{'std.err':>12}{f'{pct}% low':>12}{f'{pct}% high':>12}"
            f"{'p-value':>10}",
            f"{'ATT':<12}{self.att:>12.4f}{self.se:>12.4f}{self.ci_low:>12.4f}"
            f"{self.ci_high:>12.4f}{self.p_value:>10.4f}",
        ]
        if self.event_study is not None and len(self.event_study):
            lines += ["", "Event study (event time relative to first treated period)"]
            for r in self.event_study.to_dict("records"):
                lines.append(
                    f"{'e=' + str(int(r['rel_time'])):<12}{r['att']:>12.4f}"
                    f"{r.get('se', np.nan):>12.4f}{r.get('ci_low', np.nan):>12.4f}"
                    f"{r.get('ci_high', np.nan):>12.4f}"
                )
        if self.notes:
            lines += ["", *[f"Note: {n}" for n in self.notes]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, ax: Any = None) -> Any:
        """Event-study plot with confidence intervals (and uniform bands where present)."""
        from kinship_eval.report.figures import plot_event_study

        return plot_event_study(self, ax=ax)
