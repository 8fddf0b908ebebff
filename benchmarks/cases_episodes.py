"""SSDA903 episodes -> LA x quarter panel, against a hand-written DuckDB query on the same files.

The data are a seeded synthetic national SSDA903 set (``kinship_eval.episodes.simulate_ssda903``,
marked SYNTHETIC) written as DfE yearly returns stacked in one file, about 5 million episode rows
(every episode open at 31 March repeated in the next year's return, as real returns do). It is
written once to a cache folder (``$KINSHIP_EVAL_BENCH_EPISODES`` or the system temp folder) in
Parquet and in CSV (DD/MM/YYYY dates).

Ours
    ``episodes_to_panel(PATH)``: read the episode columns the panel needs, validate every
    value (dates, codes, DEC >= DECOM, DEC/REC consistency, dates inside the return year), apply
    the documented data-quality rules (latest return wins, duplicates, overlaps, open episodes
    followed by others, lost to follow-up), then build the panel: stocks at quarter end by
    placement group, flows by reason, population, rates per 10,000, treatment columns.
Peer (``duckdb``)
    One SQL query on the same file applying the same cleaning rules (window functions) and the
    same counts (a range join of episodes to quarter ends for the stocks, group-bys for the
    flows). It does no validation and no rates.

Agreement: every count cell (LA x quarter x {stock, kinship foster, other foster, starts, exits,
SGO to kin, all SGO, CAO, exits to kin}) is identical. Peak memory of ours is measured in a
fresh subprocess (its ``VmHWM`` high-water mark, interpreter and imports included) and must stay
under ``PEAK_TARGET_MB``; the time target is ``ours_s / peer_s <= TARGET``.

``run(repeat)`` also times the generation of the full national ten-year synthetic set (no peer;
target about one to two minutes on two cores).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: ours_s / peer_s must be at most this.
TARGET = 2.0
#: Peak resident memory of ours (MB), interpreter and imports included.
PEAK_TARGET_MB = 2048.0
#: The synthetic set: national scale x SCALE over ten return years ~ 5 million episode rows.
SEED = 2026
SCALE = 3.05
YEARS = (2020, 2029)
COMPARED = (
    "cla_stock",
    "kinship_foster",
    "other_foster",
    "cla_starts",
    "cla_exits",
    "sgo_exits_kin",
    "sgo_exits",
    "cao_exits",
    "exits_to_kin",
)
KIN_PLACE = ("U1", "U2", "U3", "Q1")
OTHER_FOSTER = ("U4", "U5", "U6", "Q2")


# ------------------------------------------------------------------------------ data
def data_dir() -> Path:
    base = os.environ.get("KINSHIP_EVAL_BENCH_EPISODES")
    root = Path(base) if base else Path(tempfile.gettempdir()) / "kinship_eval_bench_episodes"
    return root / f"seed{SEED}_scale{SCALE}_{YEARS[0]}_{YEARS[1]}"


def ensure_data() -> dict[str, Any]:
    """Write the synthetic returns once (Parquet and CSV); return their paths and row count."""
    folder = data_dir()
    info_file = folder / "info.json"
    if info_file.exists():
        return json.loads(info_file.read_text())
    from kinship_eval.episodes import simulate_ssda903

    start = time.perf_counter()
    sim = simulate_ssda903(seed=SEED, scale=SCALE, first_year=YEARS[0], last_year=YEARS[1])
    sim.write(folder / "parquet", layout="stacked", file_format="parquet")
    sim.write(folder / "csv", layout="stacked", file_format="csv")
    import pyarrow.parquet as pq

    rows = pq.read_metadata(folder / "parquet" / "episodes.parquet").num_rows
    info = {
        "parquet": str(folder / "parquet" / "episodes.parquet"),
        "csv": str(folder / "csv" / "episodes.csv"),
        "rows": int(rows),
        "write_s": time.perf_counter() - start,
    }
    info_file.write_text(json.dumps(info))
    return info


# ------------------------------------------------------------------------------ ours
def ours(path: str) -> pd.DataFrame:
    from kinship_eval.episodes import episodes_to_panel

    return episodes_to_panel(path).frame


def ours_counts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[["la_code", "quarter_end", *COMPARED]].copy()
    out["quarter_end"] = pd.to_datetime(out["quarter_end"]).dt.date
    return out.set_index(["la_code", "quarter_end"]).sort_index()


# ------------------------------------------------------------------------------ duckdb
def _reader(path: str) -> str:
    if path.endswith(".parquet"):
        return f"read_parquet('{path}')"
    return (
        f"read_csv('{path}', header=true, dateformat='%d/%m/%Y', all_varchar=false, "
        "types={'DECOM': 'DATE', 'DEC': 'DATE', 'CHILD': 'VARCHAR', 'LA': 'VARCHAR'})"
    )


def duckdb_sql(path: str) -> str:
    kin = ", ".join(f"'{c}'" for c in KIN_PLACE)
    other = ", ".join(f"'{c}'" for c in OTHER_FOSTER)
    return f"""
WITH raw AS (
    SELECT LA AS la, YEAR AS year, CHILD AS child, DECOM AS decom, DEC AS dec,
           RNE AS rne, LS AS ls, PLACE AS place, REC AS rec
    FROM {_reader(path)}
),
years AS (SELECT la, min(year) AS first_year, max(year) AS last_year FROM raw GROUP BY la),
dedup AS (
    SELECT * FROM raw
    QUALIFY row_number() OVER (
        PARTITION BY la, child, decom ORDER BY year DESC, dec DESC NULLS FIRST) = 1
),
seq AS (
    SELECT d.*, y.last_year,
           lead(decom) OVER w AS next_start, lead(rne) OVER w AS next_rne
    FROM dedup d JOIN years y USING (la)
    WINDOW w AS (PARTITION BY la, child ORDER BY decom)
),
clean AS (
    SELECT la, decom, rne, place,
        CASE WHEN dec IS NULL AND next_start IS NOT NULL THEN next_start
             WHEN dec > next_start THEN next_start
             WHEN dec IS NULL AND year < last_year THEN make_date(year, 3, 31)
             ELSE dec END AS dec,
        CASE WHEN dec IS NULL AND next_start IS NOT NULL
             THEN CASE WHEN next_rne = 'S' THEN NULL ELSE 'X1' END
             ELSE rec END AS rec,
        (dec IS NULL AND next_start IS NULL AND year < last_year) AS lost
    FROM seq
    WHERE ls NOT IN ('V3', 'V4')
),
qs AS (
    SELECT CAST(unnest(range(
        CAST(make_date((SELECT min(first_year) FROM years) - 1, 4, 1) AS TIMESTAMP),
        CAST(make_date((SELECT max(last_year) FROM years), 4, 1) AS TIMESTAMP),
        INTERVAL 3 MONTH)) + INTERVAL 3 MONTH - INTERVAL 1 DAY AS DATE) AS qend
),
quarters AS (
    SELECT y.la, qs.qend FROM years y, qs
    WHERE qs.qend > make_date(y.first_year - 1, 3, 31) AND qs.qend <= make_date(y.last_year, 3, 31)
),
stock AS (
    SELECT c.la, q.qend, count(*) AS cla_stock,
           count(*) FILTER (WHERE c.place IN ({kin})) AS kinship_foster,
           count(*) FILTER (WHERE c.place IN ({other})) AS other_foster
    FROM clean c JOIN quarters q
      ON c.la = q.la AND c.decom <= q.qend AND (c.dec IS NULL OR c.dec > q.qend)
    GROUP BY ALL
),
starts AS (
    SELECT la, last_day(date_trunc('quarter', decom) + INTERVAL 2 MONTH) AS qend,
           count(*) AS cla_starts
    FROM clean WHERE rne = 'S' GROUP BY ALL
),
exits AS (
    SELECT la, last_day(date_trunc('quarter', dec) + INTERVAL 2 MONTH) AS qend,
           count(*) AS cla_exits,
           count(*) FILTER (WHERE rec IN ('E45', 'E47')) AS sgo_exits_kin,
           count(*) FILTER (WHERE rec IN ('E43', 'E44', 'E45', 'E46', 'E47', 'E48'))
               AS sgo_exits,
           count(*) FILTER (WHERE rec = 'E41') AS cao_exits,
           count(*) FILTER (WHERE rec IN ('E41', 'E45', 'E47')) AS exits_to_kin
    FROM clean WHERE dec IS NOT NULL AND NOT lost AND (rec IS NULL OR rec <> 'X1')
    GROUP BY ALL
)
SELECT q.la AS la_code, q.qend AS quarter_end,
       coalesce(s.cla_stock, 0) AS cla_stock,
       coalesce(s.kinship_foster, 0) AS kinship_foster,
       coalesce(s.other_foster, 0) AS other_foster,
       coalesce(a.cla_starts, 0) AS cla_starts,
       coalesce(e.cla_exits, 0) AS cla_exits,
       coalesce(e.sgo_exits_kin, 0) AS sgo_exits_kin,
       coalesce(e.sgo_exits, 0) AS sgo_exits,
       coalesce(e.cao_exits, 0) AS cao_exits,
       coalesce(e.exits_to_kin, 0) AS exits_to_kin
FROM quarters q
LEFT JOIN stock s USING (la, qend)
LEFT JOIN starts a USING (la, qend)
LEFT JOIN exits e USING (la, qend)
ORDER BY la_code, quarter_end
"""


def peer(path: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        return con.execute(duckdb_sql(path)).df()
    finally:
        con.close()


def peer_counts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["quarter_end"] = pd.to_datetime(out["quarter_end"]).dt.date
    return out.set_index(["la_code", "quarter_end"]).sort_index()[list(COMPARED)]


def agreement(a: pd.DataFrame, b: pd.DataFrame) -> tuple[bool, dict[str, Any]]:
    a, b = a.align(b, join="outer")
    diff = (a.fillna(-1) - b.fillna(-1)).abs()
    cells = int((diff > 0).to_numpy().sum())
    return cells == 0, {"cells_compared": int(a.size), "cells_differing": cells}


# ------------------------------------------------------------------------------ memory
def peak_memory_mb(path: str, which: str = "ours") -> float | None:
    """Peak resident memory (MB) of a fresh interpreter that builds the panel once.

    Read from ``VmHWM`` in ``/proc/self/status`` (the high-water mark of the new process image;
    ``ru_maxrss`` would carry over the parent's peak through fork on Linux), else ``ru_maxrss``.
    """
    func = "ours" if which == "ours" else "peer"
    code = (
        "import resource\n"
        f"from benchmarks.cases_episodes import {func}\n"
        f"{func}({path!r})\n"
        "peak = None\n"
        "try:\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            peak = int(line.split()[1])\n"
        "except OSError:\n"
        "    pass\n"
        "print(peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    numbers = re.findall(r"^\s*(\d+)\s*$", proc.stdout, flags=re.MULTILINE)
    return int(numbers[-1]) / 1024.0 if numbers else None  # kB -> MB


# ------------------------------------------------------------------------------ cases
def _time(fn: Any, arg: Any, repeat: int) -> tuple[float, list[float], Any]:
    result = fn(arg)  # warm-up (imports, caches)
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def _duckdb_version() -> str | None:
    try:
        import duckdb
    except ImportError:
        return None
    return str(duckdb.__version__)


def _panel_case(fmt: str, info: dict[str, Any], repeat: int) -> dict[str, Any]:
    path = info[fmt]
    name = f"episodes_panel_5m_{fmt}"
    ours_s, ours_times, frame = _time(ours, path, repeat)
    peak = peak_memory_mb(path, "ours")
    record: dict[str, Any] = {
        "name": f"{name} vs duckdb",
        "case": name,
        "family": "episodes",
        "description": (
            f"SSDA903 returns ({info['rows']:,} synthetic episode rows, stacked {fmt}) -> "
            "validated, cleaned LA x quarter panel"
        ),
        "rows": info["rows"],
        "ours_s": round(ours_s, 4),
        "ours_times": [round(t, 4) for t in ours_times],
        "ours_peak_mb": None if peak is None else round(peak, 1),
        "peak_target_mb": PEAK_TARGET_MB,
        "peer": "duckdb",
        "peer_version": _duckdb_version(),
        "peer_s": None,
        "ratio": None,
        "target": TARGET,
        "agree": None,
        "meets_target": None,
    }
    if record["peer_version"] is None:
        record["reason"] = "duckdb is not installed (pip install duckdb to compare)"
        record["meets_target"] = peak is not None and peak < PEAK_TARGET_MB
        return record
    peer_s, peer_times, peer_frame = _time(peer, path, repeat)
    agree, extra = agreement(ours_counts(frame), peer_counts(peer_frame))
    peer_peak = peak_memory_mb(path, "duckdb")
    ratio = ours_s / peer_s
    record.update(
        {
            "peer_s": round(peer_s, 4),
            "peer_times": [round(t, 4) for t in peer_times],
            "peer_peak_mb": None if peer_peak is None else round(peer_peak, 1),
            "ratio": round(ratio, 3),
            "agree": agree,
            **extra,
            "meets_target": bool(
                ratio <= TARGET and agree and peak is not None and peak < PEAK_TARGET_MB
            ),
        }
    )
    return record


def _generation_case(repeat: int) -> dict[str, Any]:
    from kinship_eval.episodes import simulate_ssda903

    times = []
    n = 0
    for _ in range(max(1, min(repeat, 2))):
        start = time.perf_counter()
        sim = simulate_ssda903(seed=SEED, first_year=YEARS[0], last_year=YEARS[1])
        epi, _ = sim.returns()
        times.append(time.perf_counter() - start)
        n = epi.num_rows
    return {
        "name": "episodes_generate_national_10y",
        "case": "episodes_generate_national_10y",
        "family": "episodes",
        "description": (
            f"simulate_ssda903 at national scale, ten return years ({n:,} synthetic episode rows "
            "in the yearly returns), in memory"
        ),
        "rows": n,
        "ours_s": round(statistics.median(times), 4),
        "ours_times": [round(t, 4) for t in times],
        "peer": None,
        "peer_s": None,
        "ratio": None,
        "target": 120.0,
        "agree": None,
        "meets_target": statistics.median(times) <= 120.0,
    }


def run(repeat: int) -> list[dict[str, Any]]:
    """Run the episode cases; one record per case (see the module docstring)."""
    info = ensure_data()
    records = [_panel_case(fmt, info, repeat) for fmt in ("parquet", "csv")]
    records.append(_generation_case(repeat))
    return records


if __name__ == "__main__":  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for rec in run(args.repeat):
        print(json.dumps(rec, default=lambda x: None if x is np.nan else str(x)))
