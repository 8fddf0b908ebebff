"""Run the benchmarks and write ``benchmarks/results.json``.

Usage::

    python -m benchmarks.run --out benchmarks/results.json [--repeat 5] [--only NAME ...]

``--only`` keeps the cases whose name contains any of the given strings (``cs_``, ``sdid``,
``twfe``, ...). ``--list`` prints the case names. ``--update-readme`` rewrites the results table in
``benchmarks/README.md`` (between its ``results`` markers) from the rows just measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Case, run_case

README = Path(__file__).with_name("README.md")
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"

#: Case families, in run order: module name -> what it covers.
FAMILIES = {
    "cases_cs": "Callaway & Sant'Anna",
    "cases_sdid": "synthetic difference-in-differences",
    "cases_twfe": "TWFE and event study",
    "cases_inference": "wild cluster bootstrap, randomization inference, HonestDiD",
    "cases_pipeline": "the full evaluation pipeline",
}


def _builders() -> list[Callable[[], list[Case]]]:
    import importlib

    return [importlib.import_module(f"benchmarks.{m}").cases for m in FAMILIES]


def collect(only: list[str] | None) -> list[Case]:
    out: list[Case] = []
    for build in _builders():
        for case in build():
            if not only or any(s in case.name for s in only):
                out.append(case)
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def _with_range(median: Any, spread: dict[str, float] | None) -> str:
    """``median (min-max)`` of the timed runs."""
    text = _fmt(median)
    if spread and median is not None and spread["max"] > spread["min"]:
        text += f" ({_fmt(spread['min'])}–{_fmt(spread['max'])})"
    return text


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| name | ours_s (min–max) | peer | peer_s (min–max) | ratio | target | agree |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = _fmt(r["ratio"])
        if r.get("meets_target") is False:
            ratio = f"**{ratio}**"
        peer = r["peer"] or "—"
        if r.get("peer_version"):
            peer = f"{peer} {r['peer_version']}"
        peer_s = _with_range(r["peer_s"], r.get("peer_spread"))
        if r["peer"] and r["peer_s"] is None:
            peer_s = "skipped"
        target = "—" if r["target"] is None else f"≤ {r['target']:g}"
        lines.append(
            f"| {r['case']} | {_with_range(r['ours_s'], r.get('ours_spread'))} | {peer} | "
            f"{peer_s} | {ratio} | {target} | {_fmt(r['agree'])} |"
        )
    return "\n".join(lines)


def skipped_notes(rows: list[dict[str, Any]]) -> str:
    notes = [f"- {r['name']}: {r['reason']}" for r in rows if r.get("reason")]
    return "\n".join(notes)


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, numpy scalars plain Python values."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "date": time.strftime("%Y-%m-%d"),
    }


def update_readme(rows: list[dict[str, Any]], total_s: float | None, repeat: int) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    env = environment()
    loads = [x for r in rows for x in (r.get("loadavg_1m") or []) if x is not None]
    load = f"; 1-minute load average {min(loads):.1f}-{max(loads):.1f}" if loads else ""
    block = "\n".join(
        [
            BEGIN,
            f"Measured {env['date']} on {env['cpus']} cores ({env['machine']}), Python "
            f"{env['python']}, numpy {env['numpy']}, OPENBLAS_CORETYPE="
            f"{env['OPENBLAS_CORETYPE'] or 'unset'}; median of up to {repeat} timed runs after "
            "one warm-up"
            + (f"; whole run {total_s:.0f} s" if total_s is not None else "")
            + load
            + ". Ratios that miss their target are in bold.",
            "",
            markdown_table(rows),
            "",
            "Skipped or partial rows:",
            "",
            skipped_notes(rows) or "- none",
            END,
        ]
    )
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + block + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per implementation")
    parser.add_argument(
        "--budget",
        type=float,
        default=150.0,
        metavar="SECONDS",
        help="fewer timed runs (at least 2) for an implementation whose --repeat runs would take "
        "longer than this (default 150)",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="substrings of case names")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--update-readme", action="store_true", help="rewrite the results table in README.md"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="with --update-readme: take the rows from a results file instead of running",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if args.from_json:
        rows = json.loads(args.from_json.read_text())
        print(markdown_table(rows))
        if args.update_readme:
            update_readme(rows, None, max(r.get("n_repeat") or 0 for r in rows))
        return 0
    cases = collect(args.only)
    if args.list:
        for case in cases:
            print(f"{case.name}: {case.description}")
        return 0
    if not cases:
        parser.error(f"no case matches {args.only}")

    # some peers set the root logger to INFO; the PDF font subsetting then floods the log
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for case in cases:
        print(f"[{time.perf_counter() - start:7.1f}s] {case.name}", flush=True)
        case_rows = run_case(
            case, args.repeat, log=lambda m: print(m, flush=True), budget_s=args.budget
        )
        for r in case_rows:
            print(
                f"    {r['peer'] or '(no peer)':<12} ours {_fmt(r['ours_s'])} s  "
                f"peer {_fmt(r['peer_s'])} s  ratio {_fmt(r['ratio'])}  "
                f"target {_fmt(r['target'])}  agree {_fmt(r['agree'])}"
                + (f"  [{r['reason']}]" if r.get("reason") else ""),
                flush=True,
            )
        rows.extend(case_rows)
    total = time.perf_counter() - start

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".partial")
    tmp.write_text(json.dumps(_finite(rows), indent=2, allow_nan=False) + "\n")
    tmp.replace(args.out)
    print()
    print(markdown_table(rows))
    print(f"\nwrote {len(rows)} rows to {args.out} in {total:.0f} s")
    if args.update_readme:
        update_readme(rows, total, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
