"""Specification grids: run many specifications in parallel, cache them, draw the curve.

A grid file names a base spec, fixed overrides and the fields to vary::

    base: primary.yaml            # relative to the grid file
    set:                          # applied to every member (dotted keys)
      robustness.enabled: false
    grid:                         # the cartesian product of these values
      estimator: [twfe, cs, sunab, imputation]
      outcome: [sgo_exits_per_10k, kinship_exits_per_10k]
      harmonisation: [aggregate, drop]

Each member is one validated :class:`~kinship_eval.spec.Spec`. Its primary estimate is cached
under a hash of the spec and the SHA-256 of every input file, so an unchanged rerun only reads the
cache. Members run in parallel with joblib; the same code runs on a Dask cluster through joblib's
``dask`` backend (``backend="dask"`` with a ``dask.distributed.Client`` connected to the cluster).
A member that cannot be estimated (e.g. an inference method an estimator lacks) is recorded with
its error rather than stopping the grid.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from kinship_eval.errors import KinshipEvalError, SpecError
from kinship_eval.spec import Spec, apply_override, build_spec, load_spec, resolve_paths

RESULT_COLUMNS = [
    "spec_id",
    "estimator",
    "outcome",
    "att",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "inference_used",
    "n_units",
    "n_treated_units",
    "status",
    "cached",
]


_RESULT_ONLY = set(RESULT_COLUMNS) - {"estimator", "outcome"}


@dataclass(frozen=True)
class GridMember:
    """One specification of a grid, with the values of the varied fields."""

    spec_id: str
    spec: Spec
    varied: dict[str, Any]


def load_grid(path: str | Path, overrides: Sequence[str] = ()) -> list[GridMember]:
    """Expand a grid file into its validated members (errors name the field and value)."""
    file = Path(path)
    if not file.exists():
        raise SpecError(f"{file}: grid file not found")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{file}: not valid YAML: {exc}") from None
    unknown = set(raw) - {"base", "set", "grid", "name", "description"}
    if unknown:
        raise SpecError(f"{file}: unknown section(s) {sorted(unknown)}; use base, set, grid")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not grid:
        raise SpecError(f"{file}: 'grid' must map spec fields to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{file}: grid field '{key}' must be a non-empty list")
    fixed = [f"{k}={_yaml(v)}" for k, v in (raw.get("set") or {}).items()]
    base_raw: dict[str, Any] = {}
    if raw.get("base"):
        base_file = (file.parent / raw["base"]).resolve()
        if not base_file.exists():
            raise SpecError(f"{file}: base spec {base_file} not found")
        base_raw = yaml.safe_load(base_file.read_text(encoding="utf-8")) or {}
        resolve_paths(base_raw, base_file.parent)
    members = []
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        member_raw = json.loads(json.dumps(base_raw))
        varied = dict(zip(keys, combo, strict=True))
        for item in [*fixed, *(f"{k}={_yaml(v)}" for k, v in varied.items()), *overrides]:
            apply_override(member_raw, item)
        label = ", ".join(f"{k}={v}" for k, v in varied.items())
        spec = build_spec(member_raw, source=f"{file} [{label}]")
        members.append(GridMember(spec.digest(), spec, varied))
    return members


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def cache_key(spec: Spec) -> str:
    """Hash of the spec, the content of every input file it reads and the package's code (so a
    change to an estimator never reuses results cached before it)."""
    from kinship_eval.pipeline import input_files
    from kinship_eval.report.provenance import sha256_file

    files = input_files(spec)
    payload = {
        "spec": spec.model_dump(mode="json"),
        "inputs": {role: sha256_file(path) for role, path in sorted(files.items())},
        "version": _package_version(),
        "code": _code_digest(),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _package_version() -> str:
    from kinship_eval import __version__

    return __version__


@functools.cache
def _code_digest() -> str:
    """SHA-256 of every Python module of the installed package (paths and contents)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_member(spec_json: str, cache_dir: str | None) -> dict[str, Any]:
    """Estimate one member (or read it from the cache); never raises for a bad combination."""
    spec = Spec.model_validate_json(spec_json)
    key = cache_key(spec)
    cached = Path(cache_dir) / f"{key}.json" if cache_dir else None
    if cached is not None and cached.exists():
        record = json.loads(cached.read_text())
        record["cached"] = True
        return record
    record = _estimate_record(spec)
    if cached is not None and record["status"] == "ok":
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".partial")
        tmp.write_text(json.dumps(record))
        tmp.replace(cached)
    record["cached"] = False
    return record


def _estimate_record(spec: Spec) -> dict[str, Any]:
    from kinship_eval.pipeline import build_panel_cached, estimate, estimation_sample

    record: dict[str, Any] = {"estimator": spec.estimator, "outcome": spec.outcome}
    try:
        panel, _ = build_panel_cached(spec)
        sample, _ = estimation_sample(spec, panel)
        res = estimate(spec, sample)
    except KinshipEvalError as exc:
        return {**record, "status": f"error: {str(exc).splitlines()[0]}"}
    return {
        **record,
        "att": res.att,
        "se": res.se,
        "ci_low": res.ci_low,
        "ci_high": res.ci_high,
        "p_value": res.p_value,
        "inference_used": res.inference,
        "n_units": res.n_units,
        "n_treated_units": res.n_treated_units,
        "status": "ok",
    }


def run_grid(
    members: Sequence[GridMember],
    *,
    cache_dir: str | Path | None = None,
    n_jobs: int = -1,
    backend: str = "loky",
    progress: bool = True,
) -> pd.DataFrame:
    """Run every member in parallel (joblib) and return the tidy results table.

    Parameters
    ----------
    members
        From :func:`load_grid`.
    cache_dir
        Folder of cached member results (``None``: no cache).
    n_jobs
        joblib workers (-1: all cores).
    backend
        joblib backend: ``loky`` (processes on this machine), ``threading``, or ``dask`` (a
        ``dask.distributed.Client`` must be connected to the cluster first).
    progress
        Show a progress bar (rich) on a terminal.
    """
    from joblib import Parallel, delayed, parallel_config

    cache = str(cache_dir) if cache_dir is not None else None
    tasks = (delayed(run_member)(m.spec.model_dump_json(), cache) for m in members)
    # parallel_config (not Parallel(backend=...)) also registers joblib's external "dask" backend
    with parallel_config(backend=backend, n_jobs=n_jobs):
        parallel = Parallel(return_as="generator")
        records = list(_progress(parallel(tasks), len(members), progress))
    rows = []
    for member, record in zip(members, records, strict=True):
        rows.append({"spec_id": member.spec_id, **member.varied, **record})
    frame = pd.DataFrame(rows)
    varied = list(members[0].varied) if members else []
    ordered = ["spec_id", *varied, *[c for c in RESULT_COLUMNS[1:] if c not in varied]]
    for col in ordered:
        if col not in frame:
            frame[col] = pd.NA
    return frame[ordered]


def _progress(items: Iterable[Any], total: int, enabled: bool) -> Iterable[Any]:
    import sys

    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("specifications", total=total)
        for item in items:
            bar.advance(task)
            yield item


def varied_columns(results: pd.DataFrame) -> list[str]:
    """The grid's choices: every column that is not an id or a result (estimator and outcome
    always count as choices)."""
    return [c for c in results.columns if c not in _RESULT_ONLY]


def plot_spec_curve(results: pd.DataFrame, *, level: float = 0.95, truth: float | None = None):
    """Specification curve: sorted estimates with intervals, and which choices each one makes.

    Readable without colour: estimates whose interval excludes zero are filled markers, others
    hollow; the choices panel marks each specification's options with a black dot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = results.loc[results["status"] == "ok"].sort_values("att").reset_index(drop=True)
    choices = [c for c in varied_columns(ok) if ok[c].astype(str).nunique() > 1]
    levels = [(c, v) for c in choices for v in sorted(ok[c].astype(str).unique())]
    fig, (ax, axc) = plt.subplots(
        2,
        1,
        figsize=(9, 4 + 0.28 * len(levels)),
        dpi=110,
        sharex=True,
        gridspec_kw={"height_ratios": [3, max(1, 0.25 * len(levels))]},
    )
    x = np.arange(len(ok))
    sig = (ok["ci_low"] > 0) | (ok["ci_high"] < 0)
    ax.vlines(x, ok["ci_low"], ok["ci_high"], color="#12436D", linewidth=1)
    ax.scatter(x[sig], ok.loc[sig, "att"], color="#12436D", zorder=3, label="interval excludes 0")
    ax.scatter(
        x[~sig],
        ok.loc[~sig, "att"],
        facecolor="white",
        edgecolor="#12436D",
        zorder=3,
        label="interval includes 0",
    )
    ax.axhline(0, color="black", linewidth=0.8)
    if truth is not None:
        ax.axhline(truth, color="#F46A25", linestyle="--", linewidth=1, label="true effect")
    ax.set_ylabel(f"Estimate ({int(level * 100)}% CI)")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    for row, (col, value) in enumerate(levels):
        hit = ok[col].astype(str) == value
        axc.scatter(x[hit], np.full(hit.sum(), row), marker="o", color="black", s=12)
    axc.set_yticks(range(len(levels)), [f"{c}: {v}" for c, v in levels], fontsize=8)
    axc.set_xlabel("Specifications, sorted by estimate")
    axc.invert_yaxis()
    axc.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def write_grid_outputs(
    results: pd.DataFrame, out: str | Path, *, truth: float | None = None
) -> list[Path]:
    """Write ``grid_results.csv`` and the specification curve (PNG, SVG) into ``out``."""
    from kinship_eval.report.figures import render_figure

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    table = folder / "grid_results.csv"
    results.drop(columns=["cached"]).to_csv(table, index=False)
    written.append(table)
    if (results["status"] == "ok").sum() >= 2:
        images = render_figure(plot_spec_curve(results, truth=truth))
        for fmt, data in images.items():
            path = folder / f"spec_curve.{fmt}"
            path.write_bytes(data)
            written.append(path)
    return written


def compare_specs(a: Spec, b: Spec) -> pd.DataFrame:
    """Two specs and their primary estimates side by side (differing fields first)."""
    flat_a, flat_b = _flatten(a.model_dump(mode="json")), _flatten(b.model_dump(mode="json"))
    rows = [
        {"item": k, "A": flat_a.get(k), "B": flat_b.get(k)}
        for k in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(k) != flat_b.get(k)
    ]
    for label, spec in (("A", a), ("B", b)):
        spec_json = spec.model_dump_json()
        record = run_member(spec_json, None)
        for key in (
            "att",
            "se",
            "ci_low",
            "ci_high",
            "p_value",
            "inference_used",
            "n_units",
            "status",
        ):
            row = next((r for r in rows if r["item"] == f"result.{key}"), None)
            if row is None:
                row = {"item": f"result.{key}", "A": None, "B": None}
                rows.append(row)
            row[label] = record.get(key)
    return pd.DataFrame(rows, columns=["item", "A", "B"])


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out


__all__ = [
    "GridMember",
    "compare_specs",
    "load_grid",
    "load_spec",
    "plot_spec_curve",
    "run_grid",
    "write_grid_outputs",
]
