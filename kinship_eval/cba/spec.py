"""CBA specifications (YAML) and the entry points of ``kinship-eval cba`` and ``appraise``.

A CBA spec names the assumptions that differ from the bundled defaults, where the effect comes from
and the sensitivity settings::

    name: pilot_cba
    assumptions:            # any field of CBAAssumptions; omitted = bundled default
      price_base_year: 2025-26
      horizon_years: 30
      admin_share: 0.10
    effect:
      source: assumed       # assumed | did_json | did_spec
      estimate: 1.0         # additional kinship exits per 10,000 children a year
      se: 0.5
      label: ILLUSTRATIVE ...
      # path: estimate.json  (did_json: output of `kinship-eval estimate --json`;
      #                        did_spec: an analysis spec for `kinship-eval run`)
      # draws_path: draws.csv (optional bootstrap draws of the effect)
    sensitivity:
      perspective: economic
    monte_carlo:
      draws: 10000
      seed: 20260227

Relative paths are resolved against the spec file's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinship_eval.cba.appraisal import _clean, appraise, appraise_by_perspective, read_flows
from kinship_eval.cba.discounting import DiscountSchedule
from kinship_eval.cba.model import (
    PERSPECTIVES,
    CBAAssumptions,
    CBAResults,
    EffectInput,
    appraise_pilot,
)
from kinship_eval.cba.sensitivity import (
    DEFAULT_DRAWS,
    DEFAULT_SEED,
    MonteCarloResults,
    monte_carlo,
    plot_tornado,
    switching_values,
    tornado,
)
from kinship_eval.errors import InputError, SpecError

Perspective = Literal["fiscal", "economic", "social"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EffectSpec(_Model):
    """Where the effect on kinship exits comes from."""

    source: Literal["assumed", "did_json", "did_spec"] = "assumed"
    estimate: float | None = None
    se: float | None = Field(None, ge=0)
    ci_low: float | None = None
    ci_high: float | None = None
    label: str | None = None
    illustrative: bool | None = None
    path: Path | None = None
    draws_path: Path | None = None


class SensitivitySpec(_Model):
    """One-way sensitivity and switching-value settings."""

    perspective: Perspective = "economic"
    switching_perspectives: tuple[Perspective, ...] = ("fiscal", "economic")
    parameters: tuple[str, ...] | None = None


class MonteCarloSpec(_Model):
    """Monte Carlo settings."""

    enabled: bool = True
    draws: int = Field(DEFAULT_DRAWS, ge=1, le=1_000_000)
    seed: int = DEFAULT_SEED


class CBASpec(_Model):
    """A whole CBA specification."""

    name: str = "cba"
    description: str = ""
    assumptions: dict[str, Any] = Field(default_factory=dict)
    effect: EffectSpec = EffectSpec()
    sensitivity: SensitivitySpec = SensitivitySpec()
    monte_carlo: MonteCarloSpec = MonteCarloSpec()


def _errors(exc: ValidationError, source: str, prefix: str = "") -> SpecError:
    lines = []
    for err in exc.errors():
        fld = prefix + ".".join(str(p) for p in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: field '{fld}': {msg}" if fld else f"{source}: {msg}")
    return SpecError("\n".join(lines))


def load_cba_spec(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> CBASpec:
    """Read a CBA spec, apply ``dotted.key=value`` overrides and validate it.

    Raises
    ------
    SpecError
        Missing file, invalid YAML, unknown fields or invalid values.
    """
    from kinship_eval.spec import read_spec_mapping

    raw, file = read_spec_mapping(path, overrides, kind="CBA spec")
    effect = raw.get("effect")
    if isinstance(effect, dict):
        for key in ("path", "draws_path"):
            if isinstance(effect.get(key), str) and effect[key]:
                effect[key] = str((file.parent / effect[key]).resolve())
    try:
        spec = CBASpec.model_validate(raw)
    except ValidationError as exc:
        raise _errors(exc, str(file)) from None
    _validate_assumptions(spec.assumptions, str(file))  # fail early, before any estimation
    return spec


def _validate_assumptions(values: dict[str, Any], source: str) -> None:
    if "effect" in values:
        raise SpecError(f"{source}: give the effect in the top-level 'effect' section")
    try:
        CBAAssumptions.model_validate(values)
    except ValidationError as exc:
        raise _errors(exc, source, prefix="assumptions.") from None


def _read_draws(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputError("file of effect draws not found", file=path)
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        values = data.get("draws", data) if isinstance(data, dict) else data
        arr = np.asarray(values, dtype=float)
    else:
        frame = pd.read_csv(path)
        col = "att" if "att" in frame.columns else frame.columns[0]
        arr = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise InputError("no numeric effect draws found", file=path)
    return arr


def resolve_effect(spec: EffectSpec) -> EffectInput:
    """The :class:`EffectInput` a spec's ``effect`` section describes.

    ``assumed`` uses ``estimate`` and ``se`` (bundled illustrative values when omitted);
    ``did_json`` reads ``att``, ``se``, ``ci_low`` and ``ci_high`` from the JSON written by
    ``kinship-eval estimate --json``; ``did_spec`` runs the evaluation pipeline on an analysis
    spec and takes its estimate (flagged illustrative when the pipeline used illustrative years).
    """
    draws = _read_draws(spec.draws_path) if spec.draws_path is not None else None
    if spec.source == "assumed":
        kwargs: dict[str, Any] = {}
        for key in ("estimate", "se", "ci_low", "ci_high"):
            if getattr(spec, key) is not None:
                kwargs[key] = getattr(spec, key)
        if spec.label:
            kwargs["source"] = spec.label
        kwargs["illustrative"] = True if spec.illustrative is None else spec.illustrative
        if draws is not None:
            kwargs["draws"] = tuple(float(x) for x in draws)
        return EffectInput(**kwargs)
    if spec.path is None:
        raise SpecError(f"effect.source '{spec.source}' needs effect.path")
    if spec.source == "did_json":
        if not spec.path.exists():
            raise InputError("DiD results file not found", file=spec.path)
        try:
            data = json.loads(spec.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc}", file=spec.path) from None
        if not isinstance(data, dict) or "att" not in data:
            raise InputError("expected a JSON object with 'att' and 'se'", file=spec.path)
        effect = EffectInput.from_did(data, draws=draws, source=spec.label)
        if spec.illustrative:
            effect = effect.model_copy(update={"illustrative": True})
        return effect
    from kinship_eval.pipeline import run
    from kinship_eval.spec import load_spec

    evaluation = run(load_spec(spec.path))
    effect = EffectInput.from_did(
        evaluation.estimate,
        draws=draws,
        source=spec.label
        or f"DiD estimate from {spec.path.name} ({evaluation.estimate.estimator})",
    )
    simulated = bool(getattr(evaluation, "illustrative", False))
    update: dict[str, Any] = {"illustrative": simulated or bool(spec.illustrative)}
    if simulated and not spec.label:
        update["source"] = effect.source + " on ILLUSTRATIVE simulated post-pilot years"
    return effect.model_copy(update=update)


def build_assumptions(spec: CBASpec, *, source: str = "spec") -> CBAAssumptions:
    """Validated :class:`CBAAssumptions` from a spec (assumptions + resolved effect)."""
    _validate_assumptions(spec.assumptions, source)
    effect = resolve_effect(spec.effect)
    try:
        return CBAAssumptions.model_validate({**spec.assumptions, "effect": effect})
    except ValidationError as exc:
        raise _errors(exc, source, prefix="assumptions.") from None


# ---------------------------------------------------------------------- a full run
@dataclass
class CBARun:
    """Everything ``kinship-eval cba`` produces."""

    spec: CBASpec
    results: CBAResults
    switching: pd.DataFrame
    tornado: pd.DataFrame
    monte_carlo: MonteCarloResults | None

    @property
    def assumptions(self) -> CBAAssumptions:
        return self.results.assumptions

    def summary(self) -> str:
        """Text: the appraisal, the widest sensitivities, switching values and Monte Carlo."""
        headline = self.results.headline(self.spec.sensitivity.perspective)
        lines = [self.results.summary(), "", headline]
        lines += ["", "Switching values (value at which NPSV = 0, others held constant)"]
        for r in self.switching.loc[self.switching["found"]].to_dict("records"):
            lines.append(
                f"  {r['perspective']:<9}{r['label']:<56}{r['base_value']:>12,.4g} -> "
                f"{r['switching_value']:>12,.4g}"
            )
        lines += ["", f"One-way sensitivity ({self.spec.sensitivity.perspective} NPSV, £m)"]
        for r in self.tornado.head(8).to_dict("records"):
            lines.append(
                f"  {r['label']:<56}{r['npsv_low'] / 1e6:>9,.1f} to {r['npsv_high'] / 1e6:>9,.1f}"
            )
        if self.monte_carlo is not None:
            lines += ["", self.monte_carlo.summary()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly output of the whole run."""
        return {
            "spec": self.spec.name,
            **self.results.to_dict(),
            "switching_values": [
                {k: _clean(v) for k, v in r.items()} for r in self.switching.to_dict("records")
            ],
            "tornado": [
                {k: _clean(v) for k, v in r.items()} for r in self.tornado.to_dict("records")
            ],
            "monte_carlo": None if self.monte_carlo is None else self.monte_carlo.to_dict(),
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write tables (CSV), the JSON results, a text summary and charts (PNG) to ``out_dir``."""
        from matplotlib.figure import Figure

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []

        def save_csv(frame: pd.DataFrame, name: str) -> None:
            path = out / name
            frame.to_csv(path, index=False)
            written.append(path)

        save_csv(self.results.to_frame(), "cba_perspectives.csv")
        save_csv(self.results.flows(), "cba_flows.csv")
        save_csv(self.results.children, "cba_children.csv")
        save_csv(self.assumptions.table(), "cba_assumptions.csv")
        save_csv(self.switching, "cba_switching_values.csv")
        save_csv(self.tornado, "cba_tornado.csv")
        if self.monte_carlo is not None:
            save_csv(self.monte_carlo.summary_table(), "cba_monte_carlo.csv")
        path = out / "cba_results.json"
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        written.append(path)
        path = out / "cba_summary.txt"
        path.write_text(self.summary() + "\n", encoding="utf-8")
        written.append(path)
        if len(self.tornado):
            fig = Figure(figsize=(10, 0.45 * min(len(self.tornado), 12) + 1.5))
            plot_tornado(self.tornado, ax=fig.subplots())
            path = out / "cba_tornado.png"
            fig.savefig(path, dpi=150)
            written.append(path)
        if self.monte_carlo is not None:
            fig = Figure(figsize=(7, 4))
            self.monte_carlo.plot(self.spec.sensitivity.perspective, ax=fig.subplots())
            fig.tight_layout()
            path = out / "cba_bcr_distribution.png"
            fig.savefig(path, dpi=150)
            written.append(path)
        return written


def run_cba_spec(spec: CBASpec, *, source: str = "spec") -> CBARun:
    """Run the appraisal, sensitivity analysis and Monte Carlo a validated spec describes."""
    assumptions = build_assumptions(spec, source=source)
    results = appraise_pilot(assumptions)
    params = list(spec.sensitivity.parameters) if spec.sensitivity.parameters else None
    try:
        switching = pd.concat(
            [
                switching_values(assumptions, params, perspective=p)
                for p in spec.sensitivity.switching_perspectives
            ],
            ignore_index=True,
        )
        table = tornado(assumptions, params, perspective=spec.sensitivity.perspective)
    except KeyError as exc:
        raise SpecError(f"{source}: sensitivity.parameters: {exc.args[0]}") from None
    mc = (
        monte_carlo(assumptions, n_draws=spec.monte_carlo.draws, seed=spec.monte_carlo.seed)
        if spec.monte_carlo.enabled
        else None
    )
    return CBARun(spec, results, switching, table, mc)


def run_cba(spec_path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> CBARun:
    """Entry point of ``kinship-eval cba --spec SPEC.yaml``.

    Parameters
    ----------
    spec_path
        The YAML CBA spec.
    overrides
        ``dotted.key=value`` overrides (e.g. ``assumptions.admin_share=0.2``,
        ``effect.estimate=2``, ``monte_carlo.draws=20000``).

    Returns
    -------
    CBARun
        ``summary()`` for the terminal, ``to_dict()`` for JSON, ``write(out_dir)`` for files.

    Raises
    ------
    SpecError, InputError
        With a clear message naming the field or file.
    """
    spec = load_cba_spec(spec_path, overrides)
    return run_cba_spec(spec, source=str(spec_path))


def appraise_flows_file(
    path: str | Path,
    *,
    schedule: str = "standard",
    perspective: str | None = None,
    price_base_year: str | None = None,
) -> dict[str, Any]:
    """Entry point of ``kinship-eval appraise --flows FILE --json``.

    Reads and validates the flow CSV (:func:`~kinship_eval.cba.appraisal.read_flows`) and
    appraises it with the Green Book discount schedule.

    Returns
    -------
    dict
        ``pv_costs``, ``pv_benefits``, ``npsv``, ``bcr`` (``None`` when PV costs are 0), then
        ``perspective``, ``discount_schedule``, ``price_base_year``, ``n_years``, ``payback_year``
        and ``by_year``. When the file has a ``perspective`` column with several perspectives, the
        top-level values are those of ``perspective`` (default: the first one listed in the file)
        and ``perspectives`` holds the headline values of each.

    Raises
    ------
    InputError
        A malformed file, naming the file, row and column.
    """
    flows = read_flows(path)
    sched = DiscountSchedule.load(schedule)
    label = str(path)
    if "perspective" in flows.columns:
        by_p = appraise_by_perspective(flows, sched, price_base_year=price_base_year, label=label)
        chosen = perspective or next(iter(by_p))
        if chosen not in by_p:
            raise InputError(
                f"no flows for perspective {chosen!r}; found: {', '.join(by_p)}",
                file=path,
                column="perspective",
            )
        out = by_p[chosen].to_dict()
        if len(by_p) > 1:
            out["perspectives"] = {p: r.to_dict(by_year=False) for p, r in by_p.items()}
        return out
    return appraise(flows, sched, price_base_year=price_base_year, label=label).to_dict()


__all__ = [
    "PERSPECTIVES",
    "CBARun",
    "CBASpec",
    "EffectSpec",
    "MonteCarloSpec",
    "SensitivitySpec",
    "appraise_flows_file",
    "build_assumptions",
    "load_cba_spec",
    "resolve_effect",
    "run_cba",
    "run_cba_spec",
]
