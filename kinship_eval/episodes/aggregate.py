"""The LA x quarter panel derived from SSDA903 episodes (the Panel contract, quarterly).

Definitions (quarters are calendar quarters; the one ending 31 March 2027 is ``2027Q1``):

* **stocks at quarter end** — a child is looked after at the end of a quarter when an episode
  has ``DECOM`` on or before that day and ``DEC`` after it (or blank), as DfE counts children
  looked after at 31 March. ``cla_stock`` counts every child; the placement mix counts them by
  the placement group of the episode (``kinship_foster`` = ``U1``-``U3``, ``Q1`` before 2015;
  the other groups are in ``ssda903_codes.csv``); ``cla_foster`` = kinship + other foster care;
* **flows in the quarter** — ``cla_starts`` (episodes with ``RNE`` = ``S`` starting in the
  quarter), ``cla_exits`` (episodes ending in the quarter with a reason other than ``X1``),
  ``sgo_exits`` (``E43``-``E48``), ``sgo_exits_kin`` (``E45``, ``E47``), ``sgo_exits_other``
  (``E46``, ``E48``), ``sgo_exits_unknown`` (``E43``, ``E44``), ``cao_exits`` (``E41``),
  ``kinship_exits`` (SGO + CAO, as in the annual panel), ``exits_to_kin`` (``E41``, ``E45``,
  ``E47``), ``adopted_exits`` and ``returned_home_exits``. Episodes closed by the ``open_lost``
  rule are not exits.

Episodes under short-break legal statuses (``V3``, ``V4``) are left out, as DfE leaves them out
of looked-after counts (``exclude_short_breaks=False`` keeps them).

Every count has ``<count>_status`` (``published`` when the LA's returns cover the quarter's
year, ``not_collected`` otherwise, the count then missing) and ``<count>_per_10k``, the count per
10,000 children aged 0-17. The population of the year ending 31 March that contains the quarter
is used for every quarter of that year (the ONS mid-year estimate; the bundled data by
default); a year beyond the population data takes the nearest year available (noted). Rates of
flows are per quarter: multiply by 4 for an annual-equivalent rate.

``period`` is a pandas quarterly ``Period`` (or the integer ``YYYYQ``, e.g. ``20271``, with
``period_format="int"``); ``quarter_index`` numbers quarters consecutively (``year * 4 +
quarter - 1``) and ``first_treated_index`` is the first treated quarter on that scale, so the
panel can go straight to :func:`kinship_eval.did.estimate.fit` with ``time="quarter_index"``
and ``first_treated="first_treated_index"``. A pilot LA is first treated in the first quarter
that starts on or after its ``start_date`` in the pilot register (2026-04-01: ``2026Q2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from kinship_eval.data.bundled import bundled_path
from kinship_eval.episodes import _arrays as A
from kinship_eval.episodes.codes import (
    CONTINUES_REC,
    PLACEMENT_GROUPS,
    SHORT_BREAK_LS,
    CodeLists,
    read_code_lists,
)
from kinship_eval.episodes.ssda903 import (
    FIX_FLAGS,
    PANEL_COLUMNS,
    DataQualityReport,
    EpisodeData,
    read_ssda903,
)
from kinship_eval.errors import InputError

RATE_SUFFIX = "_per_10k"
PeriodFormat = Literal["period", "int"]

#: Exit flows: column -> REC groups counted.
EXIT_FLOWS: dict[str, tuple[str, ...]] = {
    "sgo_exits": ("sgo_kin", "sgo_other", "sgo_unknown"),
    "sgo_exits_kin": ("sgo_kin",),
    "sgo_exits_other": ("sgo_other",),
    "sgo_exits_unknown": ("sgo_unknown",),
    "cao_exits": ("cao",),
    "kinship_exits": ("sgo_kin", "sgo_other", "sgo_unknown", "cao"),
    "exits_to_kin": ("cao", "sgo_kin"),
    "adopted_exits": ("adopted",),
    "returned_home_exits": ("returned_home",),
}

#: Plain-language labels of the panel's counts.
LABELS: dict[str, str] = {
    "cla_stock": "Children looked after at the end of the quarter",
    "kinship_foster": "Looked-after children fostered by relatives or friends at quarter end",
    "other_foster": "Looked-after children with other foster carers at quarter end",
    "cla_foster": "Looked-after children in foster placements at quarter end",
    "placed_for_adoption": "Looked-after children placed for adoption at quarter end",
    "placed_with_parents": "Looked-after children placed with parents at quarter end",
    "homes_and_semi_independent": (
        "Looked-after children in children's homes, secure units or semi-independent living"
    ),
    "independent_living": "Looked-after children in independent living at quarter end",
    "other_residential": "Looked-after children in other residential settings at quarter end",
    "other_placement": "Looked-after children in other or temporary placements at quarter end",
    "cla_starts": "Children who started to be looked after in the quarter",
    "cla_exits": "Children who ceased to be looked after in the quarter",
    "sgo_exits": "Children leaving care through a special guardianship order",
    "sgo_exits_kin": "Children leaving care through an SGO to relatives or friends",
    "sgo_exits_other": "Children leaving care through an SGO to other carers",
    "sgo_exits_unknown": "Children leaving care through an SGO (older codes, carer unknown)",
    "cao_exits": "Children leaving care through a child arrangements (or residence) order",
    "kinship_exits": "Children leaving care through a special guardianship or child "
    "arrangements order",
    "exits_to_kin": "Children leaving care to kin (CAO, or SGO to relatives or friends)",
    "adopted_exits": "Children adopted from care",
    "returned_home_exits": "Children who returned home from care",
}


@dataclass
class QuarterPanel:
    """An LA x quarter panel derived from SSDA903 episodes.

    Attributes
    ----------
    frame
        One row per LA x quarter (see the module docstring).
    count_columns
        The count columns, stocks then flows.
    rate_columns
        Rate column -> the count it is derived from.
    notes
        Plain-language notes for the technical annex.
    quality
        The data-quality report of the episodes it was built from.
    synthetic
        True when built from synthetic data (``illustrative`` is then True in every row).
    """

    frame: pd.DataFrame
    count_columns: list[str]
    rate_columns: dict[str, str]
    notes: list[str] = field(default_factory=list)
    quality: DataQualityReport | None = None
    synthetic: bool = False

    @property
    def pilot_codes(self) -> list[str]:
        return sorted(self.frame.loc[self.frame["pilot"], "la_code"].unique())

    def to_frame(self) -> pd.DataFrame:
        """A copy of the panel."""
        return self.frame.copy()

    def label(self, column: str) -> str:
        """Plain-language label of a count or rate column."""
        base = column.removesuffix(RATE_SUFFIX)
        text = LABELS.get(base, base)
        return f"{text}, per 10,000 children" if column.endswith(RATE_SUFFIX) else text

    def summary(self) -> str:
        """Plain-text description."""
        mark = "SYNTHETIC DATA - not real children.\n" if self.synthetic else ""
        periods = self.frame["period"]
        return (
            f"{mark}LA x quarter panel from SSDA903 episodes: {self.frame['la_code'].nunique()} "
            f"LAs, {periods.nunique()} quarters ({periods.min()} to {periods.max()}), "
            f"{len(self.pilot_codes)} pilot LAs\n" + "\n".join(f"note: {n}" for n in self.notes)
        )


def episodes_to_panel(
    data: EpisodeData | str | Path,
    *,
    start: str | pd.Period | None = None,
    end: str | pd.Period | None = None,
    population: pd.DataFrame | None = None,
    pilot_register: pd.DataFrame | Literal[False] | None = None,
    period_format: PeriodFormat = "period",
    exclude_short_breaks: bool = True,
    codes: CodeLists | None = None,
) -> QuarterPanel:
    """Build the LA x quarter panel from SSDA903 episodes.

    Parameters
    ----------
    data
        Episodes read by :func:`~kinship_eval.episodes.read_ssda903`, or a path to read (only
        the columns the panel needs, without the header).
    start, end
        First and last quarter (e.g. ``"2020Q2"``); by default the quarters of the years the
        returns cover.
    population
        ``la_code, period, population_0_17`` (``period`` = year ending 31 March), or long
        measures with ``measure == "population_0_17"`` and ``value``; the bundled ONS estimates
        by default.
    pilot_register
        ``la_code, start_date`` of the pilot LAs (the bundled Kinship Zones by default);
        ``False`` for none.
    period_format
        ``"period"`` (pandas quarterly Period) or ``"int"`` (``YYYYQ``).
    exclude_short_breaks
        Leave out episodes with legal status ``V3``/``V4``.
    codes
        Code lists (the bundled SSDA903 lists by default).

    Returns
    -------
    QuarterPanel
    """
    if period_format not in ("period", "int"):
        raise InputError(f"period_format must be 'period' or 'int', not {period_format!r}")
    if not isinstance(data, EpisodeData):
        data = read_ssda903(data, columns=PANEL_COLUMNS, header=False)
    codes = codes or read_code_lists()
    notes: list[str] = []
    ep = data.episodes
    la_codes = list(ep["la_code"].cat.categories)
    la = ep["la_code"].cat.codes.to_numpy().astype(np.int64)
    decom = A.from_datetime64(ep["decom"].to_numpy())
    dec = A.from_datetime64(ep["dec"].to_numpy())
    keep = np.ones(len(ep), dtype=bool)
    if exclude_short_breaks and "ls" in ep:
        keep &= ~ep["ls"].isin(SHORT_BREAK_LS).to_numpy()
    q_lo, q_hi = _quarter_range(data.coverage, start, end)
    nq = q_hi - q_lo + 1
    n_la = len(la_codes)

    counts: dict[str, np.ndarray] = {}
    # ---- stocks at quarter end (difference arrays over quarters)
    groups = codes.groups("PLACE")
    group_names = list(PLACEMENT_GROUPS)
    place_cats = list(ep["place"].cat.categories)
    place_group = np.array([group_names.index(groups[c]) for c in place_cats] + [-1])
    g = place_group[ep["place"].cat.codes.to_numpy()]
    q_decom = A.quarter_number(decom)
    q_first = q_decom
    q_last = np.where(dec == A.NO_DATE, q_hi, A.quarter_number(np.maximum(dec, 0)) - 1)
    q_first = np.maximum(q_first, q_lo)
    q_last = np.minimum(q_last, q_hi)
    live = keep & (q_first <= q_last) & (g >= 0)
    n_g = len(group_names)
    width = nq + 1
    flat_start = (la[live] * n_g + g[live]) * width + (q_first[live] - q_lo)
    flat_stop = (la[live] * n_g + g[live]) * width + (q_last[live] - q_lo + 1)
    size = n_la * n_g * width
    diff = np.bincount(flat_start, minlength=size) - np.bincount(flat_stop, minlength=size)
    stock = np.cumsum(diff.reshape(n_la, n_g, width), axis=2)[:, :, :nq]
    for j, name in enumerate(group_names):
        counts[name] = stock[:, j, :]
    counts["cla_foster"] = counts["kinship_foster"] + counts["other_foster"]
    counts["cla_stock"] = stock.sum(axis=1)

    # ---- flows in the quarter
    if "rne" in ep:
        rne_s = ep["rne"].cat.codes.to_numpy() == list(ep["rne"].cat.categories).index("S")
    else:
        rne_s = np.zeros(len(ep), dtype=bool)
    q_start = q_decom - q_lo
    in_range = keep & rne_s & (q_start >= 0) & (q_start < nq)
    counts["cla_starts"] = _bincount2(la[in_range], q_start[in_range], n_la, nq)
    closed = dec != A.NO_DATE
    q_end = np.where(closed, A.quarter_number(np.maximum(dec, 0)) - q_lo, -1)
    rec_groups = codes.groups("REC")
    rec_cats = list(ep["rec"].cat.categories)
    rec_codes = ep["rec"].cat.codes.to_numpy()
    lost = (ep["fix"].cat.codes.to_numpy() == FIX_FLAGS.index("open_lost")) if "fix" in ep else 0
    x1 = rec_cats.index(CONTINUES_REC)
    exit_ = keep & closed & (rec_codes != x1) & ~lost & (q_end >= 0) & (q_end < nq)
    counts["cla_exits"] = _bincount2(la[exit_], q_end[exit_], n_la, nq)
    group_names_rec = sorted(set(rec_groups.values()))
    group_of_rec = np.array(
        [group_names_rec.index(rec_groups[c]) for c in rec_cats] + [-1], dtype=np.int16
    )
    rec_group = group_of_rec[rec_codes]
    la_e, q_e, g_e = la[exit_], q_end[exit_], rec_group[exit_]
    for name, wanted in EXIT_FLOWS.items():
        sel = np.isin(g_e, [group_names_rec.index(w) for w in wanted])
        counts[name] = _bincount2(la_e[sel], q_e[sel], n_la, nq)

    stock_cols = ["cla_stock", *group_names[:2], "cla_foster", *group_names[2:]]
    flow_cols = ["cla_starts", "cla_exits", *EXIT_FLOWS]
    count_columns = stock_cols + flow_cols
    frame = _frame(counts, count_columns, la_codes, q_lo, nq)
    frame = _mask_coverage(frame, data.coverage, count_columns)
    frame = _add_population(frame, population, notes)
    rate_columns: dict[str, str] = {}
    for col in count_columns:
        frame[f"{col}{RATE_SUFFIX}"] = frame[col] / frame["population_0_17"] * 10_000
        rate_columns[f"{col}{RATE_SUFFIX}"] = col
    frame["kinship_foster_share"] = frame["kinship_foster"] / frame["cla_stock"].where(
        frame["cla_stock"] > 0
    )
    frame = _add_treatment(frame, pilot_register, notes)
    frame = _format_periods(frame, period_format)
    frame["illustrative"] = bool(data.synthetic)
    frame["synthetic"] = bool(data.synthetic)
    if data.synthetic:
        notes.insert(0, "SYNTHETIC DATA: built from synthetic SSDA903 episodes, not real children")
    if exclude_short_breaks:
        notes.append("episodes under short-break legal statuses (V3, V4) are left out")
    notes.append("flow rates are per quarter (multiply by 4 for an annual-equivalent rate)")
    return QuarterPanel(frame, count_columns, rate_columns, notes, data.quality, data.synthetic)


def _bincount2(a: np.ndarray, b: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    return np.bincount(a * n_b + b, minlength=n_a * n_b).reshape(n_a, n_b)


def _parse_quarter(value: str | pd.Period) -> int:
    p = pd.Period(value, freq="Q-DEC")
    return p.year * 4 + p.quarter - 1


def _quarter_range(
    coverage: pd.DataFrame, start: str | pd.Period | None, end: str | pd.Period | None
) -> tuple[int, int]:
    if coverage.empty:
        raise InputError("no episodes: the panel would be empty")
    lo = (int(coverage["first_year"].min()) - 1) * 4 + 1  # April-June of the first year
    hi = int(coverage["last_year"].max()) * 4  # January-March of the last year
    try:
        if start is not None:
            lo = _parse_quarter(start)
        if end is not None:
            hi = _parse_quarter(end)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a quarter: {exc} (expected e.g. '2024Q1')") from None
    if hi < lo:
        raise InputError("the last quarter is before the first")
    return lo, hi


def _frame(
    counts: dict[str, np.ndarray], columns: list[str], la_codes: list[str], q_lo: int, nq: int
) -> pd.DataFrame:
    n_la = len(la_codes)
    frame = pd.DataFrame(
        {
            "la_code": np.repeat(np.array(la_codes, dtype=object), nq),
            "quarter_index": np.tile(np.arange(q_lo, q_lo + nq, dtype=np.int64), n_la),
        }
    )
    for col in columns:
        frame[col] = counts[col].reshape(-1).astype(float)
    return frame


def _mask_coverage(frame: pd.DataFrame, coverage: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    q = frame["quarter_index"].to_numpy()
    fy = np.where(q % 4 == 0, q // 4, q // 4 + 1)
    pairs = {(code, y) for code, ys in zip(coverage["la_code"], coverage["years"], strict=True)
             for y in ys}  # fmt: skip
    las, inverse = np.unique(frame["la_code"].to_numpy(dtype=object), return_inverse=True)
    table = np.zeros((len(las), 2101 - 1990), dtype=bool)
    for i, code in enumerate(las):
        for y in range(1990, 2101):
            table[i, y - 1990] = (code, y) in pairs
    covered = table[inverse, np.clip(fy, 1990, 2100) - 1990]
    frame["financial_year"] = fy
    for col in columns:
        frame[f"{col}_status"] = np.where(covered, "published", "not_collected")
        frame.loc[~covered, col] = np.nan
    return frame


@cache
def _bundled_population_cached() -> pd.DataFrame:
    measures = pd.read_csv(
        bundled_path("la_measures.csv"),
        usecols=["period", "la_code", "measure", "value"],
        dtype={"la_code": str, "measure": str},
    )
    pop = measures.loc[measures["measure"] == "population_0_17"]
    return pop.rename(columns={"value": "population_0_17"})[
        ["la_code", "period", "population_0_17"]
    ]


def _population_table(population: pd.DataFrame | None) -> pd.DataFrame:
    if population is None:
        return _bundled_population_cached().copy()
    pop = population
    if "population_0_17" not in pop.columns:
        if {"measure", "value"} <= set(pop.columns):
            pop = pop.loc[pop["measure"] == "population_0_17"].rename(
                columns={"value": "population_0_17"}
            )
        else:
            raise InputError(
                "population needs columns la_code, period, population_0_17 (or long measures)",
                file="population",
            )
    missing = [c for c in ("la_code", "period") if c not in pop.columns]
    if missing:
        raise InputError("required column missing", file="population", column=missing[0])
    out = pop[["la_code", "period", "population_0_17"]].copy()
    out["period"] = pd.to_numeric(out["period"], errors="coerce")
    out["population_0_17"] = pd.to_numeric(out["population_0_17"], errors="coerce")
    return out.dropna()


def _add_population(
    frame: pd.DataFrame, population: pd.DataFrame | None, notes: list[str]
) -> pd.DataFrame:
    pop = _population_table(population)
    pop = pop.sort_values(["la_code", "period"])
    pop_years = pop["period"].to_numpy().astype(np.int64)
    pop_values = pop["population_0_17"].to_numpy(dtype=float)
    by_la = pop.groupby("la_code", sort=False).indices
    values = np.full(len(frame), np.nan)
    used_year = np.full(len(frame), -1, dtype=np.int64)
    carried: set[str] = set()
    for code, rows in frame.groupby("la_code", sort=False).indices.items():
        if code not in by_la:
            continue
        years = pop_years[by_la[code]]
        vals = pop_values[by_la[code]]
        want = frame["financial_year"].to_numpy()[rows]
        pos = np.clip(np.searchsorted(years, want, side="right") - 1, 0, len(years) - 1)
        values[rows] = vals[pos]
        used_year[rows] = years[pos]
        if (years[pos] != want).any():
            carried.add(code)
    frame["population_0_17"] = values
    frame["population_year"] = pd.array(np.where(used_year > 0, used_year, 0), dtype="Int64")
    frame.loc[used_year < 0, "population_year"] = pd.NA
    if carried:
        notes.append(
            f"population: {len(carried)} LAs lack an estimate for some years; the nearest "
            "year available is used"
        )
    no_pop = sorted(set(frame.loc[frame["population_0_17"].isna(), "la_code"]))
    if no_pop:
        notes.append(f"no population for {len(no_pop)} LAs ({', '.join(no_pop[:5])}): no rates")
    return frame


def _add_treatment(
    frame: pd.DataFrame, register: pd.DataFrame | Literal[False] | None, notes: list[str]
) -> pd.DataFrame:
    if register is None:
        # the bundled Kinship Zones register (validated by kinship_eval.data.pilot)
        register = pd.read_csv(bundled_path("pilot_register.csv"), dtype=str)
    first: dict[str, int] = {}
    if register is not False:
        for row in register.itertuples(index=False):
            day = A.day_number(pd.Timestamp(row.start_date))
            first[str(row.la_code)] = A.first_quarter_from(day)
    present = set(frame["la_code"])
    absent = sorted(set(first) - present)
    if absent:
        notes.append(f"pilot LAs with no episodes: {', '.join(absent)}")
    frame["pilot"] = frame["la_code"].isin(list(first))
    frame["first_treated_index"] = pd.array([first.get(c) for c in frame["la_code"]], dtype="Int64")
    return frame


@cache
def _la_names() -> tuple[dict[str, str], dict[str, str]]:
    las = pd.read_csv(bundled_path("la_geography.csv"), dtype=str, keep_default_na=False)
    names = dict(zip(las["la_code"], las["la_name"], strict=True))
    regions = dict(zip(las["la_code"], las["region_name"], strict=True))
    return names, regions


def _format_periods(frame: pd.DataFrame, period_format: PeriodFormat) -> pd.DataFrame:
    q = frame["quarter_index"].to_numpy()
    year, quarter = q // 4, q % 4 + 1
    ft = frame["first_treated_index"]
    if period_format == "period":
        period = pd.PeriodIndex.from_fields(year=year, quarter=quarter, freq="Q-DEC")
        valid = ft.notna().to_numpy()
        ft_num = ft.fillna(0).to_numpy(dtype=np.int64)
        ft_period = pd.PeriodIndex.from_fields(
            year=np.where(valid, ft_num // 4, 2000),
            quarter=np.where(valid, ft_num % 4 + 1, 1),
            freq="Q-DEC",
        )
        first_treated = pd.Series(ft_period, index=frame.index).where(valid)
    else:
        period = year * 10 + quarter
        first_treated = pd.array((ft // 4) * 10 + ft % 4 + 1, dtype="Int64")
    frame["period"] = period
    frame["first_treated"] = first_treated
    frame["quarter_end"] = A.to_datetime64(A.quarter_end_day(q).astype(np.int32))
    names, regions = _la_names()
    frame["la_name"] = frame["la_code"].map(names).fillna(frame["la_code"]).astype(str)
    frame["region"] = frame["la_code"].map(regions).fillna("").astype(str)
    front = ["la_code", "la_name", "region", "period", "quarter_end", "financial_year"]
    rest = [c for c in frame.columns if c not in front]
    return frame[front + rest]
