"""A seeded synthetic SSDA903 generator at national scale, with an optional known effect.

**Every output is SYNTHETIC**: the episode and header tables carry a ``SYNTHETIC`` column
(``"Y"``), child identifiers start with ``SYN``, written folders hold ``README_SYNTHETIC.txt``,
and everything derived from them (:class:`~kinship_eval.episodes.EpisodeData`, the quarter panel,
child outcomes, matched analyses) is flagged synthetic.

The model (all draws vectorised; one ``numpy`` generator seeded by ``seed``)
------------------------------------------------------------------------------
* **LAs and sizes** — the English LAs with a 2025 child population in the bundled data; each LA's
  share of the national entries is its share of the latest published ``cla_starts`` (its
  population share where missing). ``entries_per_year`` (default 29,000 first entries; with
  re-entries about 31,000 starts a year, the national figure for 2024-25) is spread over the
  LAs and scaled by ``scale``.
* **Entries** — Poisson numbers per LA over the window plus a burn-in (so the stock at the start
  is in steady state), entry days uniform. About 80,000 children are looked after at a time at
  ``scale=1``.
* **Children** — age band at entry (under 1, 1-4, 5-9, 10-15, 16-17; each LA tilts the mix, and
  the pilot LAs more, by ``pilot_mix_shift``, so their entrants are younger), sex, ethnicity,
  category of need and legal status at entry by age.
* **Leaving care** — a multinomial kind of exit (returned home, adopted, SGO to kin, SGO to
  others, CAO, adulthood, other) whose probabilities depend on age, legal status, need, ethnic
  group, prior care, a random LA effect on kinship exits and a national trend (+2% a year in
  kinship exits); gamma-distributed durations by kind, capped at the 18th birthday (then an
  adulthood exit). Children who returned home re-enter with some probability (prior care).
* **Episodes** — placement moves (Poisson in time in care, by age), placement types by age (kin
  placements more likely for children who leave to kin; ``E45`` exits end in a kinship foster
  placement, ``E46`` in another foster placement, adoptions in an ``A5``/``A6`` placement under a
  placement order), legal changes (police protection or EPO to interim care order within days,
  interim to full care order after about nine months), ``RNE`` from what changed.
* **The allowance** (``effect``) — in pilot LAs, each period of care open on or after the start
  date, with probability ``effect``, draws an extra exit to kin (SGO to kin 75%, CAO 25%) at
  ``max(entry, start)`` + gamma(shape 2, mean 9 months); it replaces the planned exit if earlier
  (and before 18). Both exits are kept, so :meth:`SyntheticSSDA903.true_effects` gives the true
  effect on the treated.

Returns are written as DfE returns would be: each year's return holds every episode open at any
time in that year, an episode still open at 31 March being repeated (open, then closed) in later
returns. ``quality_issues`` injects overlaps and open non-final episodes into that share of
episodes (the reader's documented fixes restore them exactly).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kinship_eval.data.bundled import bundled_path
from kinship_eval.episodes import _arrays as A
from kinship_eval.episodes.codes import PLACEMENT_GROUPS, read_code_lists
from kinship_eval.episodes.outcomes import window_days
from kinship_eval.episodes.ssda903 import (
    EPISODE_COLUMNS,
    HEADER_COLUMNS,
    SYNTHETIC_COLUMN,
    EpisodeData,
    episode_data_from_arrow,
)

SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA. These SSDA903-style files were produced by "
    "kinship_eval.episodes.synthetic.simulate_ssda903 from a statistical model. They describe "
    "no real child. Do not use them as evidence about any local authority."
)

# ---------------------------------------------------------------- model parameters (data)
AGE_BANDS = np.array([0.0, 1.0, 5.0, 10.0, 16.0, 17.9])
AGE_PROBS = np.array([0.20, 0.14, 0.16, 0.35, 0.15])
AGE_TILT = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
EXIT_TYPES = ("returned_home", "adopted", "sgo_kin", "sgo_other", "cao", "adulthood", "other")
_HOME, _ADOPT, _SGO_KIN, _SGO_OTHER, _CAO, _ADULT, _OTHER = range(7)
#: Exit-kind probabilities by age band (rows) before the multipliers.
EXIT_BASE = np.array(
    [
        [0.19, 0.36, 0.20, 0.05, 0.06, 0.05, 0.09],
        [0.30, 0.20, 0.18, 0.04, 0.07, 0.10, 0.11],
        [0.36, 0.04, 0.14, 0.03, 0.07, 0.24, 0.12],
        [0.40, 0.00, 0.06, 0.01, 0.04, 0.29, 0.20],
        [0.26, 0.00, 0.01, 0.00, 0.01, 0.58, 0.14],
    ]
)
#: Duration by exit kind (years): gamma (shape, mean); adulthood lasts to the 18th birthday.
DURATION = {
    _HOME: (0.7, 1.0),
    _ADOPT: (6.0, 2.3),
    _SGO_KIN: (4.0, 2.0),
    _SGO_OTHER: (4.0, 2.6),
    _CAO: (3.0, 1.3),
    _OTHER: (0.7, 1.4),
}
LS_CODES = ("C1", "C2", "V2", "L1", "L2", "J1", "J2")
LS_PROBS = np.array(
    [
        [0.55, 0.03, 0.35, 0.02, 0.05, 0.00, 0.00],
        [0.50, 0.04, 0.38, 0.05, 0.03, 0.00, 0.00],
        [0.42, 0.04, 0.46, 0.06, 0.02, 0.00, 0.00],
        [0.30, 0.03, 0.52, 0.07, 0.01, 0.04, 0.03],
        [0.08, 0.01, 0.78, 0.04, 0.00, 0.05, 0.04],
    ]
)
#: Exit-kind multipliers by legal status at entry (rows follow LS_CODES).
LS_EXIT = np.array(
    [
        [0.75, 1.3, 1.3, 1.3, 1.1, 1.1, 0.8],
        [0.75, 1.3, 1.3, 1.3, 1.1, 1.1, 0.8],
        [1.40, 0.25, 0.55, 0.55, 0.9, 0.9, 1.1],
        [1.30, 0.8, 1.0, 1.0, 1.0, 0.8, 1.0],
        [1.30, 0.8, 1.0, 1.0, 1.0, 0.8, 1.0],
        [0.90, 0.0, 0.2, 0.2, 0.3, 0.8, 3.0],
        [0.90, 0.0, 0.2, 0.2, 0.3, 0.8, 3.0],
    ]
)
CIN_CODES = ("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8")
CIN_PROBS = np.array(
    [
        [0.70, 0.02, 0.04, 0.07, 0.14, 0.00, 0.01, 0.02],
        [0.68, 0.03, 0.04, 0.08, 0.14, 0.00, 0.01, 0.02],
        [0.66, 0.04, 0.03, 0.08, 0.14, 0.02, 0.01, 0.02],
        [0.55, 0.04, 0.03, 0.10, 0.13, 0.06, 0.01, 0.08],
        [0.35, 0.02, 0.02, 0.08, 0.10, 0.06, 0.01, 0.36],
    ]
)
CIN_EXIT = np.ones((8, 7))
CIN_EXIT[7] = [0.1, 0.0, 0.1, 0.1, 0.1, 2.5, 1.2]  # absent parenting (largely UASC)
CIN_EXIT[1] = [0.8, 0.8, 0.8, 0.8, 0.8, 1.5, 1.0]  # disability
ETHNIC_CODES = (
    "WBRI", "WIRI", "WOTH", "WIRT", "WROM", "MWBC", "MWBA", "MWAS", "MOTH", "AIND",
    "APKN", "ABAN", "AOTH", "BCRB", "BAFR", "BOTH", "CHNE", "OOTH", "REFU", "NOBT",
)  # fmt: skip
ETHNIC_PROBS = np.array(
    [0.690, 0.005, 0.050, 0.003, 0.006, 0.030, 0.010, 0.012, 0.030, 0.008,
     0.014, 0.005, 0.022, 0.012, 0.040, 0.016, 0.001, 0.040, 0.003, 0.003]
)  # fmt: skip
#: Placement-group probabilities by age band (columns follow PLACEMENT_GROUPS).
PLACE_PROBS = np.array(
    [
        [0.15, 0.71, 0.0, 0.05, 0.00, 0.00, 0.08, 0.01],
        [0.16, 0.74, 0.0, 0.06, 0.01, 0.00, 0.02, 0.01],
        [0.15, 0.72, 0.0, 0.06, 0.05, 0.00, 0.01, 0.01],
        [0.09, 0.59, 0.0, 0.05, 0.22, 0.00, 0.04, 0.01],
        [0.04, 0.36, 0.0, 0.02, 0.44, 0.09, 0.04, 0.01],
    ]
)
PLACE_CODES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "kinship_foster": (("U3", "U1", "U2"), (0.60, 0.38, 0.02)),
    "other_foster": (("U6", "U4", "U5"), (0.55, 0.42, 0.03)),
    "placed_for_adoption": (("A6", "A5", "A4", "A3"), (0.75, 0.15, 0.07, 0.03)),
    "placed_with_parents": (("P1",), (1.0,)),
    "homes_and_semi_independent": (("K2", "H5", "K1"), (0.62, 0.36, 0.02)),
    "independent_living": (("P2",), (1.0,)),
    "other_residential": (("R3", "S1", "R1", "R2", "R5", "P3"), (0.35, 0.2, 0.15, 0.1, 0.15, 0.05)),
    "other_placement": (("Z1", "T0", "T4"), (0.5, 0.2, 0.3)),
}
PROVIDER: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "kinship_foster": (("PR1",), (1.0,)),
    "other_foster": (("PR1", "PR4", "PR5"), (0.55, 0.40, 0.05)),
    "placed_for_adoption": (("PR1", "PR2"), (0.7, 0.3)),
    "placed_with_parents": (("PR0",), (1.0,)),
    "homes_and_semi_independent": (("PR4", "PR1", "PR5"), (0.80, 0.15, 0.05)),
    "independent_living": (("PR4", "PR1"), (0.6, 0.4)),
    "other_residential": (("PR3", "PR4"), (0.5, 0.5)),
    "other_placement": (("PR1", "PR4"), (0.6, 0.4)),
}
MOVE_RATE = np.array([0.35, 0.35, 0.45, 0.70, 0.80])  # new placements per year in care
REASON_CHANGE = (
    ("CARPL", "CREQB", "CREQO", "CHILD", "LAREQ", "PLACE", "ALLEG", "STAND", "CLOSE", "APPRR",
     "CUSTOD", "OTHER"),
    (0.35, 0.15, 0.10, 0.08, 0.07, 0.05, 0.03, 0.02, 0.03, 0.02, 0.02, 0.08),
)  # fmt: skip
#: REC codes within each exit kind.
REC_CODES: dict[int, tuple[tuple[str, ...], tuple[float, ...]]] = {
    _HOME: (("E4A", "E4B"), (0.85, 0.15)),
    _ADOPT: (("E11", "E12"), (0.55, 0.45)),
    _SGO_KIN: (("E45", "E47"), (0.55, 0.45)),
    _SGO_OTHER: (("E46", "E48"), (0.6, 0.4)),
    _CAO: (("E41",), (1.0,)),
    _ADULT: (("E17", "E5", "E6", "E7"), (0.30, 0.38, 0.24, 0.08)),
    _OTHER: (("E13", "E8", "E3", "E14", "E16", "E9", "E15", "E2"),
             (0.35, 0.25, 0.12, 0.10, 0.06, 0.05, 0.05, 0.02)),
}  # fmt: skip
KIN_TYPES = (_SGO_KIN, _CAO)
#: National figures the generator is calibrated to at ``scale=1`` (DOMAIN.md section 1: 83,630
#: children looked after at 31 March 2024, about 12,450 of them fostered by relatives or friends
#: (DfE evidence); about 31,000 children starting to be looked after in 2024-25, bundled data).
NATIONAL_TARGETS: dict[str, float] = {
    "starts_per_year": 31_000.0,
    "looked_after": 80_000.0,
    "kinship_foster_share": 0.15,
}
DAYS_PER_YEAR = 365.25


# ============================================================================ result
@dataclass
class SyntheticSSDA903:
    """A synthetic SSDA903 data set (clearly marked SYNTHETIC) and the truth behind it.

    Attributes
    ----------
    episodes
        One row per episode (no repetition across returns), DfE column names plus ``LA`` and
        ``SYNTHETIC``; dates as ``datetime64[s]``.
    header
        One row per LA x child: ``LA, CHILD, SEX, DOB, ETHNIC, UPN, MOTHER, MC_DOB, SYNTHETIC``.
    periods
        One row per period of care entering in the window, with its potential outcomes:
        ``LA, CHILD, entry_date, pilot, exit_date_0`` / ``exit_kind_0`` (without the allowance)
        and ``exit_date_1`` / ``exit_kind_1`` (as generated).
    params
        The arguments used.
    """

    episodes: pd.DataFrame
    header: pd.DataFrame
    periods: pd.DataFrame
    params: dict[str, object] = field(default_factory=dict)

    @property
    def first_year(self) -> int:
        return int(self.params["first_year"])  # type: ignore[call-overload]

    @property
    def last_year(self) -> int:
        return int(self.params["last_year"])  # type: ignore[call-overload]

    def summary(self) -> str:
        """Plain-text description (says SYNTHETIC)."""
        return (
            f"SYNTHETIC SSDA903 data (seed {self.params['seed']}): "
            f"{self.episodes['LA'].nunique()} LAs, return years {self.first_year}-"
            f"{self.last_year}, {len(self.episodes):,} episodes, "
            f"{len(self.header):,} children, allowance effect {self.params['effect']}"
        )

    # ------------------------------------------------------------------ truth
    def true_effects(
        self, windows: tuple[int, ...] = (12, 24), *, start: str | None = None
    ) -> pd.DataFrame:
        """The true average effect on pilot entrants from the start with complete follow-up.

        For each window ``W``: entries in pilot LAs on or after the start date whose ``W``
        months end by 31 March of the last year; ``left_to_kin_<W>m`` and
        ``days_in_care_<W>m`` with (``treated``) and without (``untreated``) the allowance.
        """
        start_day = A.day_number(start or str(self.params["start"]))
        end_day = int(A.year_end_day(self.last_year))
        p = self.periods
        entry = A.from_datetime64(p["entry_date"].to_numpy()).astype(np.int64)
        rows = []
        for months in windows:
            d = window_days(months)
            sel = p["pilot"].to_numpy() & (entry >= start_day) & (entry + d <= end_day)
            for outcome in ("left_to_kin", "days_in_care"):
                y = {}
                for arm in (0, 1):
                    exit_ = A.from_datetime64(p[f"exit_date_{arm}"].to_numpy()).astype(np.int64)
                    kind = p[f"exit_kind_{arm}"].to_numpy()
                    stay = exit_ - entry
                    if outcome == "left_to_kin":
                        y[arm] = (np.isin(kind, ["sgo_kin", "cao"]) & (stay <= d)).astype(float)
                    else:
                        y[arm] = np.minimum(stay, d).astype(float)
                diff = (y[1] - y[0])[sel]
                rows.append(
                    {
                        "outcome": f"{outcome}_{months}m",
                        "att": float(diff.mean()) if sel.any() else np.nan,
                        "treated_mean": float(y[1][sel].mean()) if sel.any() else np.nan,
                        "untreated_mean": float(y[0][sel].mean()) if sel.any() else np.nan,
                        "n": int(sel.sum()),
                    }
                )
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ returns
    def returns(self) -> tuple[pa.Table, pa.Table]:
        """The yearly returns stacked: episodes and header tables with ``LA`` and ``YEAR``.

        Each return holds the episodes open at any time in its year; ``DEC`` and ``REC`` are
        blank when the episode was still open at 31 March of that year.
        """
        return _returns(self)

    def to_episode_data(self) -> EpisodeData:
        """Read the returns as :func:`~kinship_eval.episodes.read_ssda903` would."""
        epi, hdr = self.returns()
        return episode_data_from_arrow(epi, hdr, label="synthetic SSDA903 returns")

    def write(
        self,
        path: str | Path,
        *,
        layout: Literal["folders", "stacked"] = "stacked",
        file_format: Literal["csv", "parquet"] = "csv",
    ) -> Path:
        """Write the returns: ``LA_CODE/YEAR/{episodes,header}.csv`` or stacked files.

        CSV dates are ``DD/MM/YYYY`` (the DfE layout); Parquet dates are typed. A
        ``README_SYNTHETIC.txt`` is written beside the data.
        """
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        (root / "README_SYNTHETIC.txt").write_text(SYNTHETIC_NOTICE + "\n\n" + self.summary())
        epi, hdr = self.returns()
        if layout == "stacked":
            _write_table(epi, root / f"episodes.{file_format}", file_format)
            _write_table(hdr, root / f"header.{file_format}", file_format)
            return root
        if layout != "folders":
            raise ValueError(f"layout must be 'folders' or 'stacked', not {layout!r}")
        for table, stem in ((epi, "episodes"), (hdr, "header")):
            la = table.column("LA").to_numpy(zero_copy_only=False).astype(str)
            year = table.column("YEAR").to_numpy(zero_copy_only=False)
            keys = np.char.add(la, year.astype(str))
            bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
            body = table.drop_columns(["LA", "YEAR"])
            for a, b in itertools.pairwise(bounds):
                folder = root / la[a] / str(int(year[a]))
                folder.mkdir(parents=True, exist_ok=True)
                _write_table(body.slice(a, b - a), folder / f"{stem}.{file_format}", file_format)
        return root


def _write_table(table: pa.Table, path: Path, file_format: str) -> None:
    if file_format == "parquet":
        pq.write_table(table, path, compression="snappy")
        return
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_date(col.type):
            col = _dmy(col)
        cols.append(col)
    pacsv.write_csv(pa.table(cols, names=table.column_names), path)


def _dmy(col: pa.ChunkedArray) -> pa.Array:
    """date32 column -> dictionary strings ``DD/MM/YYYY`` (blank when missing)."""
    days = col.combine_chunks()
    valid = days.is_valid().to_numpy(zero_copy_only=False)
    d = days.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    lo, hi = (int(d[valid].min()), int(d[valid].max())) if valid.any() else (0, 0)
    dates = pd.to_datetime(np.arange(lo, hi + 1), unit="D").strftime("%d/%m/%Y")
    dictionary = pa.array([*list(dates), ""])
    idx = np.where(valid, d - lo, hi - lo + 1).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(idx), dictionary)


# ============================================================================ generator
def simulate_ssda903(
    *,
    seed: int = 0,
    first_year: int = 2020,
    last_year: int = 2029,
    scale: float = 1.0,
    entries_per_year: float = 29_000.0,
    effect: float = 0.0,
    start: str = "2026-04-01",
    pilot: list[str] | None = None,
    las: list[str] | None = None,
    n_comparison: int | None = None,
    pilot_mix_shift: float = 0.5,
    quality_issues: float = 0.0,
    burn_in_years: int = 18,
) -> SyntheticSSDA903:
    """Generate a synthetic SSDA903 data set (see the module docstring for the model).

    Parameters
    ----------
    seed
        Seed of the random generator: the same arguments give the same data.
    first_year, last_year
        Return years (years ending 31 March) written.
    scale
        Multiplies every LA's size (1 = national scale, about 31,000 entries a year).
    entries_per_year
        National entries to care a year at ``scale=1``.
    effect
        Probability that a period of care in a pilot LA open on or after ``start`` draws an
        extra exit to kin (0 = no effect).
    start
        Date the allowance starts (ISO).
    pilot
        Pilot LA codes (the bundled Kinship Zones by default).
    las
        LA codes to simulate (pilot LAs are always added); all LAs by default.
    n_comparison
        Keep this many randomly chosen comparison LAs (small test sets).
    pilot_mix_shift
        How much younger the pilot LAs' entrants are (log-odds tilt of the age mix).
    quality_issues
        Share of non-final episodes given an overlap or a missing end date in the returns.
    burn_in_years
        Years simulated before the first return so the stock is in steady state.
    """
    if not 0 <= effect <= 1:
        raise ValueError(f"effect must be a probability, not {effect}")
    if last_year < first_year:
        raise ValueError("last_year is before first_year")
    rng = np.random.default_rng(seed)
    sizes = _la_sizes()
    if pilot is None:
        register = pd.read_csv(bundled_path("pilot_register.csv"), dtype=str)
        pilot = sorted(register["la_code"])
    chosen = sizes if las is None else sizes.loc[sizes["la_code"].isin([*las, *pilot])]
    if n_comparison is not None:
        others = chosen.loc[~chosen["la_code"].isin(pilot), "la_code"].to_numpy()
        pick = rng.choice(others, size=min(n_comparison, len(others)), replace=False)
        chosen = chosen.loc[chosen["la_code"].isin([*pilot, *pick])]
    chosen = chosen.sort_values("la_code").reset_index(drop=True)
    la_codes = chosen["la_code"].to_numpy()
    is_pilot_la = np.isin(la_codes, pilot)
    rate = chosen["share"].to_numpy() * entries_per_year * scale
    n_la = len(la_codes)
    la_tilt = rng.normal(0.0, 0.3, n_la) + np.where(is_pilot_la, pilot_mix_shift, 0.0)
    la_kin = np.exp(rng.normal(0.0, 0.35, n_la))

    window_start = int(A.year_start_day(first_year))
    window_end = int(A.year_end_day(last_year))
    start_day = A.day_number(start)
    sim_start = window_start - round(burn_in_years * DAYS_PER_YEAR)
    span_years = (window_end - sim_start + 1) / DAYS_PER_YEAR
    counts = rng.poisson(rate * span_years)
    la = np.repeat(np.arange(n_la), counts)
    entry = rng.integers(sim_start, window_end + 1, size=len(la))
    child = np.arange(len(la), dtype=np.int64)
    kids = _draw_children(rng, la, entry, la_tilt)
    per = _Periods.first(la, child, entry, kids, np.zeros(len(la), dtype=bool))
    _draw_exits(rng, per, la_kin)
    _apply_effect(rng, per, is_pilot_la, effect, start_day)
    # one round of re-entries after returning home
    back = _reentries(rng, per, window_end)
    if back is not None:
        _draw_exits(rng, back, la_kin)
        _apply_effect(rng, back, is_pilot_la, effect, start_day)
        per = per.concat(back)
    keep = (per.exit1 >= window_start) & (per.entry <= window_end)
    per = per.take(np.flatnonzero(keep))
    episodes = _episodes(rng, per, window_end)
    if quality_issues > 0:
        episodes = _inject_issues(rng, episodes, quality_issues)
    params = {
        "seed": seed,
        "first_year": first_year,
        "last_year": last_year,
        "scale": scale,
        "entries_per_year": entries_per_year,
        "effect": effect,
        "start": start,
        "pilot": list(pilot),
        "pilot_mix_shift": pilot_mix_shift,
        "quality_issues": quality_issues,
        "burn_in_years": burn_in_years,
    }
    return _assemble(per, episodes, la_codes, is_pilot_la, window_start, params)


def _la_sizes() -> pd.DataFrame:
    measures = pd.read_csv(
        bundled_path("la_measures.csv"),
        usecols=["period", "la_code", "measure", "value"],
        dtype={"la_code": str, "measure": str},
    )
    pop = measures.loc[measures["measure"] == "population_0_17"].dropna(subset=["value"])
    latest = pop["period"].max()
    pop = pop.loc[pop["period"] == latest, ["la_code", "value"]].rename(
        columns={"value": "population"}
    )
    starts = measures.loc[measures["measure"] == "cla_starts"].dropna(subset=["value"])
    starts = starts.sort_values("period").groupby("la_code")["value"].last()
    out = pop.assign(starts=pop["la_code"].map(starts))
    national_rate = out["starts"].sum() / out.loc[out["starts"].notna(), "population"].sum()
    out["starts"] = out["starts"].fillna(out["population"] * national_rate)
    out["share"] = out["starts"] / out["starts"].sum()
    return out.reset_index(drop=True)


def _choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of a probability matrix (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return (u[:, None] > cum).sum(axis=1)


def _pick(rng: np.random.Generator, options: tuple[tuple[str, ...], tuple[float, ...]], n: int):
    codes, probs = options
    return np.asarray(codes, dtype=object)[rng.choice(len(codes), size=n, p=np.asarray(probs))]


@dataclass
class _Kids:
    band: np.ndarray
    dob: np.ndarray
    female: np.ndarray
    ethnic: np.ndarray


def _draw_children(
    rng: np.random.Generator, la: np.ndarray, entry: np.ndarray, la_tilt: np.ndarray
) -> _Kids:
    n = len(la)
    probs = AGE_PROBS[None, :] * np.exp(la_tilt[la][:, None] * AGE_TILT[None, :])
    band = _choice(rng, probs)
    age = AGE_BANDS[band] + rng.random(n) * (AGE_BANDS[band + 1] - AGE_BANDS[band])
    dob = entry - np.round(age * DAYS_PER_YEAR).astype(np.int64)
    female = rng.random(n) < 0.45
    ethnic = rng.choice(len(ETHNIC_CODES), size=n, p=ETHNIC_PROBS / ETHNIC_PROBS.sum())
    return _Kids(band, dob, female, ethnic)


@dataclass
class _Periods:
    la: np.ndarray
    child: np.ndarray
    entry: np.ndarray
    dob: np.ndarray
    female: np.ndarray
    ethnic: np.ndarray
    prior: np.ndarray
    band: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    ls0: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    cin: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    kind0: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    exit0: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    kind1: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    exit1: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))

    @classmethod
    def first(
        cls,
        la: np.ndarray,
        child: np.ndarray,
        entry: np.ndarray,
        kids: _Kids,
        prior: np.ndarray,
    ) -> _Periods:
        return cls(la, child, entry, kids.dob, kids.female, kids.ethnic, prior)

    def take(self, idx: np.ndarray) -> _Periods:
        return _Periods(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})

    def concat(self, other: _Periods) -> _Periods:
        return _Periods(
            **{
                k: np.concatenate([getattr(self, k), getattr(other, k)])
                for k in self.__dataclass_fields__
            }
        )

    @property
    def birthday18(self) -> np.ndarray:
        return self.dob + round(18 * DAYS_PER_YEAR)


def _draw_exits(rng: np.random.Generator, p: _Periods, la_kin: np.ndarray) -> None:
    n = len(p.la)
    age = (p.entry - p.dob) / DAYS_PER_YEAR
    p.band = np.clip(np.searchsorted(AGE_BANDS, age, side="right") - 1, 0, 4)
    p.ls0 = _choice(rng, LS_PROBS[p.band])
    p.cin = _choice(rng, CIN_PROBS[p.band])
    probs = EXIT_BASE[p.band] * LS_EXIT[p.ls0] * CIN_EXIT[p.cin]
    year = A.financial_year(p.entry)
    trend = np.exp(0.02 * (year - 2020))
    kin_mult = la_kin[p.la] * trend
    probs[:, _SGO_KIN] *= kin_mult
    probs[:, _CAO] *= kin_mult
    probs[:, _SGO_OTHER] *= np.sqrt(la_kin[p.la])
    minority = np.isin(p.ethnic, [9, 10, 11, 12, 13, 14, 15])  # Asian and Black groups
    probs[minority, _SGO_KIN] *= 0.8
    probs[minority, _CAO] *= 0.8
    probs[p.female, _SGO_KIN] *= 1.05
    probs[p.prior, _HOME] *= 0.8
    probs[p.prior, _OTHER] *= 1.1
    kind = _choice(rng, probs)
    dur = np.zeros(n)
    for k, (shape, mean) in DURATION.items():
        sel = kind == k
        dur[sel] = rng.gamma(shape, mean / shape, sel.sum())
    days = np.maximum(1, np.round(dur * DAYS_PER_YEAR)).astype(np.int64)
    exit_ = p.entry + days
    b18 = p.birthday18
    aged_out = (kind == _ADULT) | (exit_ >= b18)
    exit_ = np.where(aged_out, np.maximum(b18, p.entry + 1), exit_)
    kind = np.where(aged_out, _ADULT, kind)
    p.kind0, p.exit0 = kind, exit_
    p.kind1, p.exit1 = kind.copy(), exit_.copy()


def _apply_effect(
    rng: np.random.Generator, p: _Periods, is_pilot_la: np.ndarray, effect: float, start: int
) -> None:
    n = len(p.la)
    u = rng.random(n)
    wait = rng.gamma(2.0, 0.75 / 2.0, n) * DAYS_PER_YEAR
    kin_kind = np.where(rng.random(n) < 0.75, _SGO_KIN, _CAO)
    when = np.maximum(p.entry, start) + np.maximum(1, np.round(wait)).astype(np.int64)
    take = (
        is_pilot_la[p.la]
        & (p.exit0 > start)
        & (u < effect)
        & (when < p.exit0)
        & (when < p.birthday18)
    )
    p.exit1 = np.where(take, when, p.exit0)
    p.kind1 = np.where(take, kin_kind, p.kind0)


def _reentries(rng: np.random.Generator, p: _Periods, window_end: int) -> _Periods | None:
    gap = np.round(rng.gamma(1.5, 1.0 / 1.5, len(p.la)) * DAYS_PER_YEAR).astype(np.int64) + 7
    again = rng.random(len(p.la)) < 0.22
    back_at = p.exit1 + gap
    sel = np.flatnonzero(
        (p.kind1 == _HOME) & again & (back_at <= window_end) & (back_at < p.birthday18 - 180)
    )
    if not len(sel):
        return None
    q = p.take(sel)
    q.entry = back_at[sel]
    q.prior = np.ones(len(sel), dtype=bool)
    return q


# ============================================================================ episodes
@dataclass
class _Episodes:
    period: np.ndarray
    decom: np.ndarray
    dec: np.ndarray
    rne: np.ndarray
    ls: np.ndarray
    place: np.ndarray
    provider: np.ndarray
    rec: np.ndarray
    reason: np.ndarray


def _episodes(rng: np.random.Generator, p: _Periods, window_end: int) -> _Episodes:
    n = len(p.la)
    dur = p.exit1 - p.entry
    # adoption: last placement from exit - gamma(3, mean 0.5y), after entry + 30 days
    adopt = p.kind1 == _ADOPT
    t_adopt = dur - np.round(rng.gamma(3.0, 0.5 / 3.0, n) * DAYS_PER_YEAR).astype(np.int64)
    t_adopt = np.clip(t_adopt, np.minimum(30, dur - 1), dur - 1)
    # placement moves (excluding the adoption placement)
    move_span = np.where(adopt, t_adopt, dur)
    n_moves = rng.poisson(MOVE_RATE[p.band] * move_span / DAYS_PER_YEAR)
    n_moves = np.minimum(n_moves, 14)
    mv_period = np.repeat(np.arange(n), n_moves)
    mv_t = (rng.random(len(mv_period)) * move_span[mv_period]).astype(np.int64)
    # legal changes
    ls_codes = list(LS_CODES)
    c1, c2, v2 = ls_codes.index("C1"), ls_codes.index("C2"), ls_codes.index("V2")
    emergency = np.isin(p.ls0, [ls_codes.index("L1"), ls_codes.index("L2")])
    ls0 = np.where(adopt & (p.ls0 == v2), c1, p.ls0)
    after_emergency = np.where(rng.random(n) < 0.7, c1, v2)
    after_emergency = np.where(adopt, c1, after_emergency)
    t_e = rng.integers(2, 11, n)
    to_c1 = (ls0 == c1) | (emergency & (after_emergency == c1))
    t_c2 = np.where(emergency, t_e, 0) + np.round(
        rng.gamma(4.0, 0.75 / 4.0, n) * DAYS_PER_YEAR
    ).astype(np.int64)
    t_c2 = np.where(adopt, np.minimum(t_c2, (t_adopt * 0.8).astype(np.int64)), t_c2)
    ev = {
        "period": [np.arange(n), mv_period],
        "t": [np.zeros(n, np.int64), mv_t],
        "place": [np.ones(n, bool), np.ones(len(mv_period), bool)],
        "legal": [np.zeros(n, bool), np.zeros(len(mv_period), bool)],
        "ls": [ls0, np.full(len(mv_period), -1)],
    }

    def add(sel: np.ndarray, t: np.ndarray, place: bool, new_ls: np.ndarray) -> None:
        idx = np.flatnonzero(sel)
        ev["period"].append(idx)
        ev["t"].append(t[idx])
        ev["place"].append(np.full(len(idx), place))
        ev["legal"].append(np.ones(len(idx), bool))
        ev["ls"].append(new_ls[idx])

    add(emergency & (t_e < dur), t_e, False, after_emergency)
    add(to_c1 & (t_c2 > 0) & (t_c2 < dur), t_c2, False, np.full(n, c2))
    add(adopt, t_adopt, True, np.full(n, len(LS_CODES)))  # E1 placement order
    period = np.concatenate(ev["period"])
    t = np.concatenate(ev["t"])
    is_place = np.concatenate(ev["place"])
    is_legal = np.concatenate(ev["legal"])
    new_ls = np.concatenate(ev["ls"])
    ok = (t >= 0) & (t < dur[period])
    period, t, is_place, is_legal, new_ls = (
        period[ok],
        t[ok],
        is_place[ok],
        is_legal[ok],
        new_ls[ok],
    )
    order = np.lexsort((~is_legal, t, period))
    period, t, is_place, is_legal, new_ls = (
        period[order],
        t[order],
        is_place[order],
        is_legal[order],
        new_ls[order],
    )
    # merge events on the same day
    key = period * (1 << 20) + t
    starts = A.group_starts(key)
    gid = np.cumsum(starts) - 1
    m = int(starts.sum())
    e_period = period[starts]
    e_t = t[starts]
    e_place = np.zeros(m, bool)
    np.logical_or.at(e_place, gid, is_place)
    e_legal = np.zeros(m, bool)
    np.logical_or.at(e_legal, gid, is_legal)
    e_ls = np.full(m, -1)
    has_ls = new_ls >= 0
    e_ls[gid[has_ls]] = new_ls[has_ls]  # the last legal change of the day wins
    first = A.group_starts(e_period)
    # legal status: forward fill within each period
    have = e_ls >= 0
    fill = np.maximum.accumulate(np.where(have, np.arange(m), 0))
    ls_idx = e_ls[fill]
    # placements
    place_no = np.cumsum(e_place) - 1
    n_place = int(e_place.sum())
    pl_period = e_period[e_place]
    band = p.band[pl_period]
    probs = PLACE_PROBS[band].copy()
    kin_bound = np.isin(p.kind1[pl_period], KIN_TYPES)
    probs[kin_bound, 0] *= 2.0
    group = _choice(rng, probs)
    last_place = np.r_[pl_period[1:] != pl_period[:-1], True]
    rec = _rec_codes(rng, p.kind1)
    groups = list(PLACEMENT_GROUPS)
    lp = np.flatnonzero(last_place)
    lp_rec = rec[pl_period[lp]]
    forced = np.full(len(lp), -1)
    forced[np.isin(lp_rec, ["E45"])] = groups.index("kinship_foster")
    forced[np.isin(lp_rec, ["E46"])] = groups.index("other_foster")
    forced[np.isin(lp_rec, ["E11", "E12"])] = groups.index("placed_for_adoption")
    cao_kin = np.isin(lp_rec, ["E41"]) & (rng.random(len(lp)) < 0.3)
    forced[cao_kin] = groups.index("kinship_foster")
    home_p1 = np.isin(lp_rec, ["E4A", "E4B"]) & (rng.random(len(lp)) < 0.25)
    forced[home_p1] = groups.index("placed_with_parents")
    group[lp[forced >= 0]] = forced[forced >= 0]
    adoption_grp = groups.index("placed_for_adoption")
    not_adopt = (group == adoption_grp) & ~np.isin(rec[pl_period], ["E11", "E12"])
    group[not_adopt] = groups.index("other_foster")
    place = np.empty(n_place, dtype=object)
    provider = np.empty(n_place, dtype=object)
    for g, name in enumerate(groups):
        sel = group == g
        place[sel] = _pick(rng, PLACE_CODES[name], int(sel.sum()))
        provider[sel] = _pick(rng, PROVIDER[name], int(sel.sum()))
    e_place_code = place[place_no]
    e_provider = provider[place_no]
    # RNE
    same_carer = np.isin(e_place_code, ["A3", "A5"]) | (rng.random(m) < 0.1)
    rne = np.where(
        first,
        "S",
        np.where(
            e_place & e_legal,
            np.where(same_carer, "U", "B"),
            np.where(e_place, np.where(same_carer, "T", "P"), "L"),
        ),
    ).astype(object)
    ls_all = np.asarray([*LS_CODES, "E1"], dtype=object)
    # dates
    decom = p.entry[e_period] + e_t
    last = np.r_[e_period[1:] != e_period[:-1], True]
    dec = np.where(last, p.exit1[e_period], np.r_[decom[1:], 0])
    rec_e = np.where(last, rec[e_period], "X1").astype(object)
    open_ = dec > window_end
    dec = np.where(open_, A.NO_DATE, dec)
    rec_e[open_] = None
    next_place = np.r_[e_place[1:], False] & ~last
    reason = np.full(m, None, dtype=object)
    reason[next_place] = _pick(rng, REASON_CHANGE, int(next_place.sum()))
    seen = decom <= window_end  # episodes starting after the last return are not written
    return _Episodes(
        period=e_period[seen],
        decom=decom[seen],
        dec=dec[seen],
        rne=rne[seen],
        ls=ls_all[ls_idx][seen],
        place=e_place_code[seen],
        provider=e_provider[seen],
        rec=rec_e[seen],
        reason=reason[seen],
    )


def _rec_codes(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    out = np.empty(len(kind), dtype=object)
    for k, options in REC_CODES.items():
        sel = kind == k
        out[sel] = _pick(rng, options, int(sel.sum()))
    return out


def _inject_issues(rng: np.random.Generator, e: _Episodes, share: float) -> _Episodes:
    m = len(e.period)
    not_last = np.r_[e.period[1:] == e.period[:-1], False] & (e.dec != A.NO_DATE)
    cand = np.flatnonzero(not_last & (rng.random(m) < share))
    overlap = cand[rng.random(len(cand)) < 0.5]
    opened = np.setdiff1d(cand, overlap)
    nxt_len = np.r_[e.dec[1:] - e.decom[1:], 0]
    room = np.where(nxt_len > 1, nxt_len - 1, 0)
    shift = np.minimum(rng.integers(1, 21, len(overlap)), room[overlap])
    overlap = overlap[shift > 0]
    e.dec[overlap] += shift[shift > 0]
    e.dec[opened] = A.NO_DATE
    e.rec[opened] = None
    return e


# ============================================================================ assembly
def _assemble(
    p: _Periods,
    e: _Episodes,
    la_codes: np.ndarray,
    is_pilot_la: np.ndarray,
    window_start: int,
    params: dict[str, object],
) -> SyntheticSSDA903:
    # child identifiers: SYN + serial, one per LA x child
    present = np.zeros(int(p.child.max(initial=0)) + 1, dtype=bool)
    present[p.child] = True
    child_idx = (np.cumsum(present) - 1)[p.child]
    child_id = np.char.mod("SYN%08d", np.arange(int(present.sum()))).astype(object)
    child_dtype = pd.CategoricalDtype(pd.Index(child_id, dtype=object))
    codes = read_code_lists()
    ep_la = p.la[e.period]
    episodes = pd.DataFrame(
        {
            "LA": pd.Categorical.from_codes(ep_la, categories=list(la_codes)),
            "CHILD": pd.Categorical.from_codes(child_idx[e.period], dtype=child_dtype),
            "DECOM": A.to_datetime64(e.decom.astype(np.int32)),
            "RNE": pd.Categorical(e.rne, categories=codes.codes("RNE")),
            "LS": pd.Categorical(e.ls, categories=codes.codes("LS")),
            "CIN": pd.Categorical(np.asarray(CIN_CODES, dtype=object)[p.cin[e.period]],
                                  categories=codes.codes("CIN")),
            "PLACE": pd.Categorical(e.place, categories=codes.codes("PLACE")),
            "PLACE_PROVIDER": pd.Categorical(e.provider, categories=codes.codes("PLACE_PROVIDER")),
            "DEC": A.to_datetime64(e.dec.astype(np.int32)),
            "REC": pd.Categorical(e.rec, categories=codes.codes("REC")),
            "REASON_PLACE_CHANGE": pd.Categorical(
                e.reason, categories=codes.codes("REASON_PLACE_CHANGE")
            ),
        }
    )  # fmt: skip
    for col in ("HOME_POST", "PL_POST", "URN"):
        episodes[col] = _blank(len(episodes))
    episodes[SYNTHETIC_COLUMN] = pd.Categorical.from_codes(
        np.zeros(len(episodes), dtype=np.int8), categories=["Y"]
    )
    # header: one row per child (first period's attributes)
    first = np.unique(child_idx, return_index=True)[1]
    header = pd.DataFrame(
        {
            "LA": pd.Categorical.from_codes(p.la[first], categories=list(la_codes)),
            "CHILD": pd.Categorical.from_codes(child_idx[first], dtype=child_dtype),
            "SEX": pd.Categorical(np.where(p.female[first], "2", "1"), categories=["1", "2"]),
            "DOB": A.to_datetime64(p.dob[first].astype(np.int32)),
            "ETHNIC": pd.Categorical.from_codes(p.ethnic[first], categories=list(ETHNIC_CODES)),
            "UPN": _blank(len(first)),
            "MOTHER": _blank(len(first)),
            "MC_DOB": np.full(len(first), np.datetime64("NaT"), dtype="datetime64[s]"),
            SYNTHETIC_COLUMN: pd.Categorical.from_codes(
                np.zeros(len(first), dtype=np.int8), categories=["Y"]
            ),
        }
    )
    kinds = np.asarray(EXIT_TYPES, dtype=object)
    entered = p.entry >= window_start
    sel = np.flatnonzero(entered)
    periods = pd.DataFrame(
        {
            "LA": la_codes[p.la[sel]],
            "CHILD": child_id[child_idx[sel]],
            "entry_date": A.to_datetime64(p.entry[sel].astype(np.int32)),
            "pilot": is_pilot_la[p.la[sel]],
            "prior_care": p.prior[sel],
            "exit_date_0": A.to_datetime64(p.exit0[sel].astype(np.int32)),
            "exit_kind_0": kinds[p.kind0[sel]],
            "exit_date_1": A.to_datetime64(p.exit1[sel].astype(np.int32)),
            "exit_kind_1": kinds[p.kind1[sel]],
        }
    )
    params = {**params, "la_codes": list(la_codes)}
    return SyntheticSSDA903(episodes, header, periods, params)


def _blank(n: int) -> pd.Categorical:
    return pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=["X"])


def _returns(s: SyntheticSSDA903) -> tuple[pa.Table, pa.Table]:
    ep = s.episodes
    first_year, last_year = s.first_year, s.last_year
    decom = A.from_datetime64(ep["DECOM"].to_numpy()).astype(np.int64)
    dec = A.from_datetime64(ep["DEC"].to_numpy()).astype(np.int64)
    open_ = dec == A.NO_DATE
    y0 = np.maximum(A.financial_year(decom), first_year)
    y1 = np.where(open_, last_year, np.minimum(A.financial_year(np.maximum(dec, 0)), last_year))
    copies = np.maximum(y1 - y0 + 1, 0)
    rows = np.repeat(np.arange(len(ep)), copies)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(copies) - copies, copies)
    year = y0[rows] + offset
    la_codes = ep["LA"].cat.categories
    la_idx = ep["LA"].cat.codes.to_numpy()[rows]
    child_codes = ep["CHILD"].cat.codes.to_numpy().astype(np.int64)
    child_words = ep["CHILD"].cat.categories.to_numpy()
    order = np.lexsort((decom[rows], child_codes[rows], year, la_idx))
    rows, year, la_idx = rows[order], year[order], la_idx[order]
    still_open = open_[rows] | (dec[rows] > A.year_end_day(year))
    cols: dict[str, pa.Array] = {
        "LA": pa.DictionaryArray.from_arrays(pa.array(la_idx.astype(np.int32)),
                                             pa.array(list(la_codes))),
        "YEAR": pa.array(year.astype(np.int32)),
        "CHILD": _dictionary(child_codes[rows], child_words),
    }  # fmt: skip
    for name in EPISODE_COLUMNS[1:]:
        col = ep[name]
        if name in ("DECOM", "DEC"):
            days = (decom if name == "DECOM" else dec)[rows]
            mask = days == A.NO_DATE
            if name == "DEC":
                mask = mask | still_open
            cols[name] = pa.array(days.astype(np.int32), type=pa.date32(), mask=mask)
        elif isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()[rows].astype(np.int32)
            mask = codes < 0
            if name == "REC":
                mask = mask | still_open
            cols[name] = pa.DictionaryArray.from_arrays(
                pa.array(codes, mask=mask), pa.array(list(col.cat.categories), pa.string())
            )
        else:
            cols[name] = pa.nulls(len(rows), pa.string())
    cols[SYNTHETIC_COLUMN] = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(len(rows), np.int32)), pa.array(["Y"])
    )
    episodes = pa.table(cols)
    # header rows: each child in each return it appears in
    pair = np.unique(child_codes[rows].astype(np.int64) * 4096 + (year % 4096))
    h_child, h_year = pair // 4096, pair % 4096
    head = s.header
    position = np.empty(len(child_words), dtype=np.int64)
    position[head["CHILD"].cat.codes.to_numpy()] = np.arange(len(head))
    sub = head.iloc[position[h_child]]
    h_la = sub["LA"].cat.codes.to_numpy()
    order = np.lexsort((h_child, h_year, h_la))
    sub = sub.iloc[order]
    dob = A.from_datetime64(sub["DOB"].to_numpy())
    hcols = {
        "LA": pa.DictionaryArray.from_arrays(pa.array(h_la[order].astype(np.int32)),
                                             pa.array(list(la_codes))),
        "YEAR": pa.array(h_year[order].astype(np.int32)),
        "CHILD": _dictionary(h_child[order], child_words),
        "SEX": _dictionary(sub["SEX"].cat.codes.to_numpy(), sub["SEX"].cat.categories),
        "DOB": pa.array(dob, type=pa.date32()),
        "ETHNIC": _dictionary(sub["ETHNIC"].cat.codes.to_numpy(), sub["ETHNIC"].cat.categories),
        "UPN": pa.nulls(len(sub), pa.string()),
        "MOTHER": pa.nulls(len(sub), pa.string()),
        "MC_DOB": pa.nulls(len(sub), pa.date32()),
        SYNTHETIC_COLUMN: pa.array(np.full(len(sub), "Y")),
    }  # fmt: skip
    assert list(hcols)[2:-1] == list(HEADER_COLUMNS)
    return episodes, pa.table(hcols)


def _dictionary(codes: np.ndarray, words: object) -> pa.DictionaryArray:
    values = pa.array(np.asarray(words, dtype=object).astype(str).tolist(), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), values)
