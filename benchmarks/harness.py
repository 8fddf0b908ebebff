"""Timing harness: cases, implementations, repetitions and result rows.

A :class:`Case` pairs the package's implementation (``ours``) with one or more peer packages on the
same data. :func:`run_case` imports everything and runs every implementation once untimed (the
warm-up: imports, numba/JIT compilation and caches are excluded from the timings), then times
``repeat`` rounds in which each implementation runs once, in turn (interleaving spreads any drift of
the machine evenly over the implementations). The reported time is the median of the rounds. An
implementation whose warm-up shows that ``repeat`` runs would take longer than the time budget runs
fewer times (at least twice); ``n_repeat`` / ``peer_n_repeat`` record how many. Cases that take
minutes end to end (``Case.warmup = False``) count their first run instead of discarding it.

Each implementation returns an :class:`Outcome`; agreement compares the ``values`` of ours and a
peer (same keys, largest absolute difference within the case's tolerance) and, for the inference
cases, a p-value within ``p_tolerance``.
"""

from __future__ import annotations

import gc
import importlib.metadata
import math
import os
import statistics
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Required ratio ours/peer: at most as slow as diff-diff, at most half the time of the others.
TARGET_FASTEST_PEER = 1.0
TARGET_OTHER_PEERS = 0.5
FASTEST_PEER = "diff-diff"


@dataclass
class Outcome:
    """What one implementation estimated.

    Attributes
    ----------
    values
        Estimates compared for agreement, keyed (e.g. by ``(group, time)`` or event time).
    headline
        One number reported in the results (the overall ATT, the coefficient, ...).
    p_value
        For inference cases: the p-value compared within ``p_tolerance``.
    se
        Standard errors under the keys of ``values`` (recorded as ``se_max_abs_diff``; not part
        of the agreement).
    info
        Anything else worth recording (standard errors, number of draws, ...).
    """

    values: Mapping[Any, float]
    headline: float
    p_value: float | None = None
    se: Mapping[Any, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Impl:
    """One implementation of a case.

    ``setup`` (untimed) returns the argument of ``run`` (typically a fresh copy of the data);
    ``run`` (timed) returns the :class:`Outcome`.
    """

    name: str
    run: Callable[[Any], Outcome]
    setup: Callable[[], Any] = lambda: None
    package: str | None = None  # distribution whose version is recorded
    note: str = ""


@dataclass
class Unavailable:
    """A peer (or our side) that cannot be run, with the reason recorded in the results."""

    name: str
    reason: str
    package: str | None = None


@dataclass
class Case:
    """One benchmark: our implementation against peers on the same data."""

    name: str
    description: str
    ours: Impl | Unavailable | None
    peers: list[Impl | Unavailable]
    tolerance: float
    p_tolerance: float | None = None
    family: str = ""
    #: ``False`` for long cases timed end to end (a grid, ``make report``): the first run is timed
    #: and counted instead of being thrown away as a warm-up.
    warmup: bool = True


def optional(name: str, package: str, build: Callable[[], Impl]) -> Impl | Unavailable:
    """``build()``, or an :class:`Unavailable` peer when its package is not installed."""
    try:
        return build()
    except ImportError as exc:  # includes importlib.metadata.PackageNotFoundError
        return Unavailable(name, f"not installed: {exc}", package)


def version_of(package: str | None) -> str | None:
    if package is None:
        return None
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _clock(impl: Impl) -> tuple[float, float]:
    """Wall and CPU (all threads of this process) seconds of one run."""
    arg = impl.setup()
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    impl.run(arg)
    return time.perf_counter() - start, time.process_time() - cpu


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def _spread(times: list[float]) -> dict[str, float] | None:
    if not times:
        return None
    q = np.quantile(times, [0.25, 0.75]) if len(times) > 1 else [times[0], times[0]]
    return {"min": min(times), "max": max(times), "iqr": float(q[1] - q[0])}


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def _compare(
    ours: Outcome, peer: Outcome, tolerance: float, p_tolerance: float | None
) -> tuple[bool, dict[str, Any]]:
    extra: dict[str, Any] = {}
    keys_ours, keys_peer = set(ours.values), set(peer.values)
    common = keys_ours & keys_peer
    if keys_ours != keys_peer:
        extra["key_mismatch"] = {
            "only_ours": sorted(map(str, keys_ours - keys_peer))[:10],
            "only_peer": sorted(map(str, keys_peer - keys_ours))[:10],
        }
    diffs = [abs(float(ours.values[k]) - float(peer.values[k])) for k in common]
    finite = [d for d in diffs if math.isfinite(d)]
    max_diff = max(finite) if finite and len(finite) == len(diffs) else math.inf
    extra["max_abs_diff"] = max_diff if math.isfinite(max_diff) else None
    extra["n_compared"] = len(common)
    if ours.se is not None and peer.se is not None:
        se_diffs = [
            abs(float(ours.se[k]) - float(peer.se[k]))
            for k in set(ours.se) & set(peer.se)
            if math.isfinite(float(ours.se[k]) - float(peer.se[k]))
        ]
        extra["se_max_abs_diff"] = max(se_diffs) if se_diffs else None
    agree = keys_ours == keys_peer and bool(common) and max_diff <= tolerance
    if p_tolerance is not None:
        extra["ours_p_value"] = ours.p_value
        extra["peer_p_value"] = peer.p_value
        if ours.p_value is None or peer.p_value is None:
            agree = False
        else:
            p_diff = abs(ours.p_value - peer.p_value)
            extra["p_value_abs_diff"] = p_diff
            agree = agree and p_diff <= p_tolerance
    return agree, extra


def _target_for(peer: str | None) -> float | None:
    if peer is None:
        return None
    return TARGET_FASTEST_PEER if peer == FASTEST_PEER else TARGET_OTHER_PEERS


def _round(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _repeats(warmup_s: float, repeat: int, budget_s: float | None) -> int:
    """Timed runs for an implementation whose warm-up took ``warmup_s``: ``repeat``, fewer (at
    least 2) when ``repeat`` runs would exceed ``budget_s``."""
    if budget_s is None or warmup_s <= 0:
        return repeat
    return max(min(repeat, 2), min(repeat, int(budget_s // warmup_s)))


def run_case(
    case: Case,
    repeat: int,
    log: Callable[[str], None] = print,
    budget_s: float | None = None,
) -> list[dict[str, Any]]:
    """Warm up and time every implementation of ``case``; one result row per peer.

    ``budget_s`` caps the timed runs of one implementation at about that many seconds (never
    fewer than two runs); the number of runs is recorded per side.
    """
    impls: list[Impl] = []
    failures: dict[str, str] = {}
    outcomes: dict[str, Outcome] = {}
    sides = [case.ours, *case.peers]
    warmup: dict[str, float] = {}
    first_cpu: dict[str, float] = {}
    for impl in sides:
        if not isinstance(impl, Impl):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arg = impl.setup()
                gc.collect()
                cpu_start = time.process_time()
                start = time.perf_counter()
                outcomes[impl.name] = impl.run(arg)
                warmup[impl.name] = time.perf_counter() - start
                first_cpu[impl.name] = time.process_time() - cpu_start
            impls.append(impl)
        except Exception as exc:  # a peer that fails is recorded, never fatal
            failures[impl.name] = "failed: " + _short_error(exc)
            log(f"  {impl.name}: {failures[impl.name]}")
            log("".join(traceback.format_exception(exc, limit=-3)).rstrip())

    load_before = _load()
    times: dict[str, list[float]] = {impl.name: [] for impl in impls}
    cpu: dict[str, list[float]] = {impl.name: [] for impl in impls}
    wanted = {impl.name: _repeats(warmup[impl.name], repeat, budget_s) for impl in impls}
    first = 0
    if not case.warmup:
        first = 1
        for impl in impls:
            times[impl.name].append(warmup[impl.name])
            cpu[impl.name].append(first_cpu[impl.name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(first, repeat):
            for impl in impls:
                if i < wanted[impl.name]:
                    wall, used = _clock(impl)
                    times[impl.name].append(wall)
                    cpu[impl.name].append(used)
    load_after = _load()

    ours_name = case.ours.name if case.ours is not None else None
    ours_ok = case.ours is not None and ours_name in times
    ours_reason = None
    if isinstance(case.ours, Unavailable):
        ours_reason = case.ours.reason
    elif ours_name in failures:
        ours_reason = failures[ours_name]
    ours_s = statistics.median(times[ours_name]) if ours_ok else None
    ours_out = outcomes.get(ours_name) if ours_ok else None

    rows: list[dict[str, Any]] = []
    base = {
        "case": case.name,
        "family": case.family,
        "description": case.description,
        "tolerance": case.tolerance,
        "n_repeat": len(times[ours_name]) if ours_ok else None,
        "ours_cpu_s": _round(statistics.median(cpu[ours_name])) if ours_ok else None,
        "loadavg_1m": [load_before, load_after],
    }
    if case.p_tolerance is not None:
        base["p_tolerance"] = case.p_tolerance
    if not case.peers:
        rows.append(
            {
                "name": case.name,
                "ours_s": _round(ours_s),
                "peer": None,
                "peer_s": None,
                "ratio": None,
                "target": None,
                "agree": None,
                "ours_estimate": _round(ours_out.headline, 10) if ours_out else None,
                "peer_estimate": None,
                "ours_spread": _spread(times.get(ours_name, [])),
                "peer_spread": None,
                **base,
                **({"reason": ours_reason} if ours_reason else {}),
                **({"ours_info": ours_out.info} if ours_out and ours_out.info else {}),
            }
        )
        return rows

    for peer in case.peers:
        name = peer.name
        row: dict[str, Any] = {
            "name": f"{case.name} vs {name}",
            "ours_s": _round(ours_s),
            "peer": name,
            "peer_s": None,
            "ratio": None,
            "target": _target_for(name),
            "agree": None,
            "ours_estimate": _round(ours_out.headline, 10) if ours_out else None,
            "peer_estimate": None,
            "ours_spread": _spread(times.get(ours_name, [])) if ours_ok else None,
            "peer_spread": None,
            **base,
            "peer_version": version_of(peer.package),
        }
        reasons = []
        if ours_reason:
            reasons.append(f"ours: {ours_reason}")
        if isinstance(peer, Unavailable):
            reasons.append(peer.reason)
        elif name in failures:
            reasons.append(failures[name])
        else:
            peer_s = statistics.median(times[name])
            peer_out = outcomes[name]
            row["peer_s"] = _round(peer_s)
            row["peer_spread"] = _spread(times[name])
            row["peer_n_repeat"] = len(times[name])
            row["peer_cpu_s"] = _round(statistics.median(cpu[name]))
            if row["ours_cpu_s"] and row["peer_cpu_s"]:
                row["cpu_ratio"] = _round(row["ours_cpu_s"] / row["peer_cpu_s"], 4)
            row["peer_estimate"] = _round(peer_out.headline, 10)
            if peer.note:
                row["peer_note"] = peer.note
            if peer_out.info:
                row["peer_info"] = peer_out.info
            if ours_s is not None and ours_out is not None:
                row["ratio"] = _round(ours_s / peer_s, 4)
                agree, extra = _compare(ours_out, peer_out, case.tolerance, case.p_tolerance)
                row["agree"] = agree
                row.update(extra)
                target = row["target"]
                row["meets_target"] = row["ratio"] <= target if target is not None else None
        if ours_out is not None and ours_out.info:
            row["ours_info"] = ours_out.info
        if reasons:
            row["reason"] = "; ".join(reasons)
        rows.append(row)
    return rows
