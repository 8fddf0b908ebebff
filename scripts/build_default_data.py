#!/usr/bin/env python
"""Build the package's bundled default data from the real DfE/ONS files.

Usage::

    python scripts/build_default_data.py [--reference DIR] [--out DIR]

(or ``make bundled-data``). ``--reference`` is the folder of real files described in its
``README.md`` (default ``../shared/reference/dfe``); ``--out`` is where the bundled files are
written (default ``kinship_eval/data/bundled``).

Outputs (all UTF-8, comma-separated, sorted, byte-identical on every run from the same inputs):

``la_measures.csv``
    Long table, one row per ``(period, la_code, measure)``: ``period`` (year ending 31 March),
    ``la_code`` (ONS code in force in that year), ``old_la_code``, ``la_name``, ``measure``,
    ``value`` (empty when not published), ``status`` (``published`` or the reason a symbol gave),
    ``source`` (id of the file it came from; see ``DATA_NOTES.md``).
``la_geography.csv``, ``la_reorganisations.csv``
    Every English children's-services LA operating in any year from 2010, and every
    predecessor-successor pair of the code changes, splits and merges since then.
``pilot_register.csv``
    The seven Kinship Zones and the 2025-26 fostering national minimum allowances.
``DATA_NOTES.md``, ``sources.csv``
    Documentation (sources, rules, coverage, cross-checks) and the SHA-256 of every input.

Rules
-----
* Only local-authority rows are kept (national and regional rows are dropped).
* ``la_code`` is the code **in force** for the year: the LA operating on 31 March of the period
  with the row's 3-digit ``old_la_code`` (from ``dfe_geography/las.csv``). Later releases relabel
  earlier years of recoded LAs with the new code (e.g. North Yorkshire E06000065 for 2021); those
  rows are put back under the code of the time (E10000023). Rows for an LA that did not exist in
  that year (published as ``z``) are dropped. Nothing is harmonised across reorganisations here.
* Latest release wins: for each ``(period, la_code, measure)`` the value of the most recent
  release is used, revisions included, and so is its suppression (an older release's number never
  replaces a newer ``c``). Only when the latest release has no figure for a reason other than
  suppression (``x``/``..``/blank: not available, ``z``: not applicable) is the most recent
  release that has one used.
* Symbols are kept as ``status``; a value is never 0 for a symbol.
* A measure made of several published cells (e.g. SGOs to former foster carers + to other carers)
  is published only when every part is; otherwise it takes the reason of its parts (suppression
  first).
* ``SFR27_2010_March.csv``: its 21 placement columns are re-labelled to alphabetical code order
  (A3, A4, ... Q1, Q2, ... Z1) before use; see the reference README.
* ``SFR34_ADM2015.csv`` labels its 2015 starts ``CLA_started2014``; they are read as 2015.
* Financial years (LAIT ``2016-17 (OT)``) become the year ending 31 March (2017).
* ``population_0_17`` for period *Y* is the ONS mid-year estimate for mid-(*Y*-1): the
  denominator DfE uses for rates per 10,000 in the year ending 31 March *Y*.
* LAIT (``bds_long_0.parquet``) is the only source of the two finance measures; for counts it is
  used only to cross-check and to fill a ``(period, LA)`` that no DfE release covers, labelled
  ``lait_..._gapfill``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import itertools
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kinship_eval.data.ees import read_csv_strings, read_ees, read_wide_sfr
from kinship_eval.data.symbols import PUBLISHED, parse_series
from kinship_eval.errors import InputError

# ------------------------------------------------------------------------------------------------
# Constants
# ------------------------------------------------------------------------------------------------

LA = "Local authority"
MEASURE_COLUMNS = [
    "period",
    "la_code",
    "old_la_code",
    "la_name",
    "measure",
    "value",
    "status",
    "source",
]
MEASURES: dict[str, str] = {
    "sgo_exits": "Ceased to be looked after: special guardianship order (all carers)",
    "sgo_exits_kin": "Ceased to be looked after: SGO to relative(s) or friend(s) (E45 + E47)",
    "cao_exits": "Ceased to be looked after: residence order / child arrangements order (E41)",
    "cla_exits": "Ceased to be looked after during the year (all reasons)",
    "cla_starts": "Started to be looked after during the year",
    "cla_31mar": "Looked after at 31 March",
    "cla_foster": "Looked after at 31 March in a foster placement",
    "kinship_foster": "Looked after at 31 March in a foster placement with relative or friend",
    "population_0_17": "ONS mid-year population estimate, aged 0-17 (mid-(period-1))",
    "foster_unit_cost_weekly": "S251 fostering unit cost, GBP per child per week (LAIT)",
    "cla_spend_total": "S251 gross expenditure on children looked after, GBP (LAIT)",
}
#: Statuses that settle a value: a newer release with one of these is never overridden.
DECISIVE = {PUBLISHED, "suppressed", "suppressed_or_not_available", "low", "low_reliability"}
#: Order in which the reasons of parts decide the reason of a sum.
REASON_ORDER = [
    "suppressed",
    "suppressed_or_not_available",
    "low",
    "low_reliability",
    "nil_or_not_available",
    "not_available",
    "missing",
    "not_applicable",
]
#: The 2010 placement columns in the order the data really are (alphabetical codes).
ALPHABETICAL_2010 = [
    "A3", "A4", "A5", "A6", "H5", "K1", "K2", "M1", "M2", "M3", "P1",
    "P2", "P3", "Q1", "Q2", "R1", "R2", "R3", "R5", "S1", "Z1",
]  # fmt: skip

LA_CODE = re.compile(r"^E(06|08|09|10)\d{6}$")

#: Repository and commit of each top-level folder of the reference files (from its README).
REPOSITORIES = {
    "bengoodair_dfe_cla": (
        "BenGoodair/childrens_social_care_data",
        "ca4389abf37edc6531b03995b1d30be0e1a37807",
    ),
    "dfe_csc_dashboard": (
        "dfe-analytical-services/CSC_outcomes_and_enablers",
        "2f5d11a431050523dab58810083259d3313029ae",
    ),
    "dfe_lait": (
        "dfe-analytical-services/local-authority-interactive-tool",
        "2e30e3959a6ab8b2d22941b84764da41a40ac91b",
    ),
    "dfe_geography": (
        "dfe-analytical-services/dfe-published-data-qa",
        "bcc7ca543e7fa7c4b6f69c56c37f5cfa387b2a67",
    ),
    "staying_put_sim": (
        "grahamstark/staying_put_sim",
        "d6a05d1aa3a145ba9a85176807262825a8314115",
    ),
    "pilot_and_nma_facts": ("(transcribed from web pages; URLs in the file)", ""),
}


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One input file and the release it belongs to."""

    id: str
    path: str
    release: int
    description: str
    priority: int = 0


SOURCES: dict[str, Source] = {}


def _src(id_: str, path: str, release: int, description: str, priority: int = 0) -> Source:
    source = Source(id_, path, release, description, priority)
    SOURCES[id_] = source
    return source


BG = "bengoodair_dfe_cla"
SP = "staying_put_sim"
DB = "dfe_csc_dashboard"

S2010_MARCH = _src(
    "sfr2010_march", f"{BG}/sfr2010_la/SFR27_2010_March.csv", 2010, "SFR27/2010 at 31 March"
)
S2010_STARTED = _src(
    "sfr2010_started", f"{BG}/sfr2010_la/SFR27_2010_Started.csv", 2010, "SFR27/2010 started"
)
S2010_CEASED = _src(
    "sfr2010_ceased", f"{BG}/sfr2010_la/SFR27_2010_Ceased.csv", 2010, "SFR27/2010 ceased"
)
SFR_FILES = {
    2011: ("sfr2011_la/SFR21_CLA.csv", "sfr2011_la/SFR21_CEA.csv", "sfr2011_la/SFE21_ADM.csv"),
    2012: (
        "sfr2012_la/SFR20_CLA2012.csv",
        "sfr2012_la/SFR_CEA2012.csv",
        "sfr2012_la/SFR20_ADM2012.csv",
    ),
    2013: (
        "sfr2013_la/SFR36_CLA2013.csv",
        "sfr2013_la/SFR36_CEA2013.csv",
        "sfr2013_la/SFR36_ADM2013.csv",
    ),
    2014: (
        "sfr2014_la/SFR36_CLA2014.csv",
        "sfr2014_la/SFR36_CEA2014.csv",
        "sfr2014_la/SFR36_ADM2014.csv",
    ),
    2015: (
        "sfr2015_la/SFR34_CLA2015.csv",
        "sfr2015_la/SFR34_CEA2015.csv",
        "sfr2015_la/SFR34_ADM2015.csv",
    ),
    2016: (
        "sfr2016_la/SFR41_CLA2016.csv",
        "sfr2016_la/SFR41_CEA2016.csv",
        "sfr2016_la/SFR41_ADM2016.csv",
    ),
    2017: (
        "sfr2017_la/SFR50_CLA2017.csv",
        "sfr2017_la/SFR50_CEA2017.csv",
        "sfr2017_la/SFR50_ADM2017.csv",
    ),
}
for _year, (_cla, _cea, _adm) in SFR_FILES.items():
    _src(f"sfr{_year}_cla", f"{BG}/{_cla}", _year, f"SFR {_year} underlying data: at 31 March")
    _src(f"sfr{_year}_cea", f"{BG}/{_cea}", _year, f"SFR {_year} underlying data: ceased")
    _src(f"sfr{_year}_adm", f"{BG}/{_adm}", _year, f"SFR {_year} underlying data: started")
for _year, _adm in ((2018, "ADM2018_amended.csv"), (2019, "ADM2019.csv")):
    _src(f"ud{_year}_cla", f"{SP}/CLA{_year}.csv", _year, f"{_year} underlying data: at 31 March")
    _src(f"ud{_year}_cea", f"{SP}/CEA{_year}.csv", _year, f"{_year} underlying data: ceased")
    _src(f"ud{_year}_adm", f"{SP}/{_adm}", _year, f"{_year} underlying data: started")

EES_RELEASES = {2022: "ees_2018to2022", 2023: "ees_2019to2023", 2024: "ees_2020to2024"}
EES_CEASED = {
    2022: "la_children_who_ceased_during_year.csv",
    2023: "la_children_who_ceased_during_the_year.csv",
    2024: "la_children_who_ceased_during_the_year.csv",
}
EES_SGO = {
    2022: "la_children_who_ceased_during_the_year_sgo_adoptions.csv",
    2023: "la_children_who_ceased_during_the_year_sgo_adoption.csv",
    2024: "la_children_who_ceased_during_the_year_sgo_adoption.csv",
}
for _rel, _dir in EES_RELEASES.items():
    _src(
        f"ees{_rel}_ceased",
        f"{BG}/{_dir}/{EES_CEASED[_rel]}",
        _rel,
        f"EES CLA release {_rel}: ceased by reason",
        priority=1,
    )
    _src(
        f"ees{_rel}_sgo",
        f"{BG}/{_dir}/{EES_SGO[_rel]}",
        _rel,
        f"EES CLA release {_rel}: SGOs by carer",
    )
_src(
    "ees2022_started",
    f"{BG}/ees_2018to2022/la_cla_who_started_to_be_looked_after.csv",
    2022,
    "EES CLA release 2022: started",
    priority=1,
)
for _rel in (2023, 2024):
    _src(
        f"ees{_rel}_cla_number",
        f"{BG}/{EES_RELEASES[_rel]}/cla_number_and_rate_per_10k_children.csv",
        _rel,
        f"EES CLA release {_rel}: numbers and rates",
    )
_src(
    "ees2025_cla_number",
    f"{DB}/data-raw/cla_number_and_rate_per_10k_children.csv",
    2025,
    "EES CLA release 2025: numbers and rates",
)
_src(
    "ees2025_ceased_rds",
    f"{DB}/derived_csv/cla_ceased_during_year_2021_2025_from_rds.csv",
    2025,
    "EES CLA release 2025 (DfE dashboard copy): ceased by reason",
    priority=1,
)
_src(
    "ees2025_31mar_rds",
    f"{DB}/derived_csv/cla_on_31_march_by_characteristics_2021_2025_from_rds.csv",
    2025,
    "EES CLA release 2025 (DfE dashboard copy): at 31 March by placement",
    priority=1,
)
ONS = _src(
    "ons_mye_0_17",
    f"{DB}/data-raw/ons_mid-year_population_estimates_2012_to_2024.csv",
    2025,
    "ONS mid-year estimates 0-17, mid-2012 to mid-2024 (EES layout, DfE dashboard)",
)
LAIT = _src(
    "lait",
    "dfe_lait/bds_long_0.parquet",
    2026,
    "DfE LAIT big data set (long), April 2026",
)
LAS = _src("las", "dfe_geography/las.csv", 0, "EES screener list of LAs with dates")
HIERARCHY = _src(
    "region_hierarchy", "dfe_geography/region_la_hierarchy.csv", 0, "LA to region hierarchy"
)
PILOT = _src(
    "pilot_facts",
    "pilot_and_nma_facts/kinship_allowance_pilot_las_transcribed.csv",
    0,
    "The seven Kinship Zones (transcribed)",
)

LAIT_MEASURES = {
    "FosteringFinance": "foster_unit_cost_weekly",
    "TotalLACFinance": "cla_spend_total",
}
LAIT_CHECKS = {
    "LAC_ceased_SGO": "sgo_exits",
    "LACnum": "cla_31mar",
    "LACceased": "cla_exits",
    "LACnum_Start": "cla_starts",
}
#: LAIT years whose values are rounded (to the nearest 5): never used to fill a gap.
LAIT_ROUNDED = {"LAC_ceased_SGO": range(2016, 2018)}


# ------------------------------------------------------------------------------------------------
# Geography
# ------------------------------------------------------------------------------------------------


def _uk_date(text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    return dt.datetime.strptime(text, "%d/%m/%Y").date()


def period_end(period: int) -> dt.date:
    """31 March of the period (the end of the year ending 31 March)."""
    return dt.date(period, 3, 31)


def first_period(date: dt.date) -> int:
    """First year ending 31 March whose 31 March falls on or after ``date``."""
    return date.year if (date.month, date.day) <= (3, 31) else date.year + 1


class Geography:
    """Real LAs from ``las.csv`` with their dates and regions; code-in-force lookups."""

    def __init__(self, reference: Path, reads: dict[str, int]) -> None:
        las = read_csv_strings(reference / LAS.path)
        reads[LAS.path] = len(las)
        hierarchy = read_csv_strings(reference / HIERARCHY.path)
        reads[HIERARCHY.path] = len(hierarchy)
        regions = (
            hierarchy.loc[
                hierarchy["region_code"].str.startswith("E12"), ["region_code", "region_name"]
            ]
            .drop_duplicates()
            .set_index("region_code")["region_name"]
        )
        real = las.loc[las["new_la_code"].str.fullmatch(LA_CODE.pattern)].copy()
        real["op"] = real["date_of_operation"].map(_uk_date)
        real["term"] = real["date_of_termination"].map(_uk_date)
        # Keep LAs operating in some year ending 31 March from 2010 on.
        keep = real["term"].map(lambda d: d is None or d >= period_end(2010))
        real = real.loc[keep]
        real["region_code"] = real["parent_geography_code"]
        unknown_region = ~real["region_code"].isin(regions.index)
        if unknown_region.any():
            i = int(np.flatnonzero(unknown_region.to_numpy())[0])
            raise InputError(
                f"region {real['region_code'].iloc[i]!r} not in the region hierarchy",
                file=reference / LAS.path,
                row=int(real["source_row"].iloc[i]),
                column="parent_geography_code",
            )
        real["region_name"] = real["region_code"].map(regions)
        self.table = real.reset_index(drop=True)
        self.by_code = {r.new_la_code: r for r in self.table.itertuples(index=False)}
        self.by_old: dict[str, list] = {}
        for r in self.table.itertuples(index=False):
            self.by_old.setdefault(r.old_la_code, []).append(r)

    def operating(self, code: str, period: int) -> bool:
        r = self.by_code.get(code)
        if r is None:
            return False
        end = period_end(period)
        return (r.op is None or r.op <= end) and (r.term is None or r.term >= end)

    def code_in_force(self, old_code: str, period: int) -> str | None:
        """The LA code with 3-digit code ``old_code`` operating on 31 March ``period``."""
        found = [
            r.new_la_code
            for r in self.by_old.get(old_code, [])
            if self.operating(r.new_la_code, period)
        ]
        if len(found) > 1:
            raise InputError(f"old LA code {old_code} has several LAs in {period}: {found}")
        return found[0] if found else None

    def old_code_of(self, code: str) -> str | None:
        r = self.by_code.get(code)
        return None if r is None else r.old_la_code

    def la_geography(self) -> pd.DataFrame:
        t = self.table
        out = pd.DataFrame(
            {
                "la_code": t["new_la_code"],
                "old_la_code": t["old_la_code"],
                "la_name": t["la_name"],
                "region_code": t["region_code"],
                "region_name": t["region_name"],
                "date_of_operation": t["op"].map(lambda d: d.isoformat() if d else ""),
                "date_of_termination": t["term"].map(lambda d: d.isoformat() if d else ""),
            }
        )
        return out.sort_values("la_code").reset_index(drop=True)

    def reorganisations(self) -> pd.DataFrame:
        """Recodes (same 3-digit code, new ONS code) found in the dates; splits/merges as known."""
        rows: list[tuple[str, str, str]] = []
        for old_code, members in self.by_old.items():
            members = sorted(members, key=lambda r: r.op or dt.date.min)
            for a, b in itertools.pairwise(members):
                if a.term is not None and b.op is not None and b.op == a.term + dt.timedelta(1):
                    rows.append((a.new_la_code, b.new_la_code, "recode"))
                else:  # pragma: no cover - not in the current file
                    raise InputError(
                        f"old code {old_code}: codes {a.new_la_code}, {b.new_la_code} "
                        "do not follow on"
                    )
        known = [
            ("E06000028", "E06000058", "merge"),  # Bournemouth -> BCP
            ("E06000029", "E06000058", "merge"),  # Poole -> BCP
            ("E10000009", "E06000058", "split"),  # Dorset county (Christchurch) -> BCP
            ("E10000009", "E06000059", "split"),  # Dorset county -> Dorset
            ("E10000021", "E06000061", "split"),  # Northamptonshire -> North Northamptonshire
            ("E10000021", "E06000062", "split"),  # Northamptonshire -> West Northamptonshire
            ("E10000006", "E06000063", "split"),  # Cumbria -> Cumberland
            ("E10000006", "E06000064", "split"),  # Cumbria -> Westmorland and Furness
        ]
        for pred, succ, note in known:
            a, b = self.by_code[pred], self.by_code[succ]
            if a.term is None or b.op != a.term + dt.timedelta(1):
                raise InputError(f"{pred} -> {succ}: dates in las.csv do not show this change")
            rows.append((pred, succ, note))
        out = pd.DataFrame(rows, columns=["predecessor_code", "successor_code", "note"])
        out["predecessor_name"] = out["predecessor_code"].map(lambda c: self.by_code[c].la_name)
        out["successor_name"] = out["successor_code"].map(lambda c: self.by_code[c].la_name)
        out["effective_period"] = out["successor_code"].map(
            lambda c: first_period(self.by_code[c].op)
        )
        out = out[
            [
                "predecessor_code",
                "predecessor_name",
                "successor_code",
                "successor_name",
                "effective_period",
                "note",
            ]
        ]
        return out.sort_values(
            ["effective_period", "predecessor_code", "successor_code"]
        ).reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# Building candidate rows
# ------------------------------------------------------------------------------------------------


@dataclass
class Collector:
    """Candidate rows from every source, plus the bookkeeping for the notes."""

    reference: Path
    geo: Geography
    reads: dict[str, int]

    def __post_init__(self) -> None:
        self.parts: list[pd.DataFrame] = []
        self.recoded: dict[str, int] = {}
        self.dropped_not_operating: dict[str, int] = {}
        self.dropped_published: list[str] = []

    def add(
        self,
        source: Source,
        frame: pd.DataFrame,
        *,
        period: int | pd.Series,
        measure: str,
        value: pd.Series,
        status: pd.Series,
        gapfill: bool = False,
        priority: int | None = None,
    ) -> None:
        """Add rows (LA rows only) with the code in force for their period."""
        old = frame["old_la_code"].astype("str").str.strip()
        periods = (
            pd.Series(period, index=frame.index, dtype="int64")
            if isinstance(period, int)
            else period.astype("int64")
        )
        file_codes = (
            frame["new_la_code"].astype("str").str.strip()
            if "new_la_code" in frame.columns
            else pd.Series("", index=frame.index, dtype="str")
        )
        codes = []
        for o, p, f, row in zip(old, periods, file_codes, frame["source_row"], strict=True):
            if f and LA_CODE.match(f):
                known_old = self.geo.old_code_of(f)
                if known_old is None:
                    raise InputError(
                        f"LA code {f!r} is not in dfe_geography/las.csv",
                        file=self.reference / source.path,
                        row=int(row),
                        column="new_la_code",
                    )
                if known_old != o:
                    raise InputError(
                        f"LA code {f!r} has old code {known_old} in las.csv, the file gives {o!r}",
                        file=self.reference / source.path,
                        row=int(row),
                        column="old_la_code",
                    )
            code = self.geo.code_in_force(o, int(p))
            if code is not None and f and code != f:
                self.recoded[source.id] = self.recoded.get(source.id, 0) + 1
            codes.append(code)
        rows = pd.DataFrame(
            {
                "period": periods.to_numpy(),
                "la_code": pd.array(codes, dtype="object"),
                "measure": measure,
                "value": value.to_numpy(dtype="float64"),
                "status": status.to_numpy(dtype="object"),
                "source": f"{source.id}_gapfill" if gapfill else source.id,
                "release": source.release,
                "priority": source.priority if priority is None else priority,
            }
        )
        missing = rows["la_code"].isna()
        if missing.any():
            self.dropped_not_operating[source.id] = self.dropped_not_operating.get(
                source.id, 0
            ) + int(missing.sum())
            pub = rows.loc[missing & rows["status"].eq(PUBLISHED)]
            for r, o in zip(pub.itertuples(index=False), old[missing.to_numpy()], strict=False):
                self.dropped_published.append(f"{source.id}: {o} {r.period} {r.measure}")
            rows = rows.loc[~missing]
        self.parts.append(rows)

    def frame(self) -> pd.DataFrame:
        return pd.concat(self.parts, ignore_index=True)


def status_of(reasons: pd.Series) -> pd.Series:
    """``published`` where the reason is NA, else the reason."""
    return reasons.astype("object").where(reasons.notna(), PUBLISHED)


def combine(
    parts: Sequence[tuple[pd.Series, pd.Series]],
) -> tuple[pd.Series, pd.Series]:
    """Sum several (value, reason) columns; the sum is published only if every part is."""
    values = sum((v for v, _ in parts), start=pd.Series(0.0, index=parts[0][0].index))
    reasons = pd.DataFrame({i: r.astype("object") for i, (_, r) in enumerate(parts)})

    def reason(row: pd.Series) -> object:
        present = [x for x in row if isinstance(x, str)]
        if not present:
            return None
        return min(present, key=lambda x: REASON_ORDER.index(x) if x in REASON_ORDER else 99)

    combined = reasons.apply(reason, axis=1)
    values = values.where(combined.isna())
    return values, pd.Series(combined, index=values.index, dtype="object")


def _wide(
    col: Collector,
    source: Source,
    spec: Mapping[str, Sequence[tuple[int, Sequence[str]]]],
    *,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read a wide SFR file; ``spec`` = measure -> [(period, [columns summed])]."""
    columns = sorted({c for entries in spec.values() for _, cols in entries for c in cols})
    path = col.reference / source.path
    frame = read_wide_sfr(path, columns=columns, rename=rename, geographic_level=LA)
    col.reads[source.path] = len(read_csv_strings(path, ragged=True))
    for measure, entries in spec.items():
        for period, cols in entries:
            parts = [(frame[c], frame[f"{c}_reason"]) for c in cols]
            value, reason = combine(parts) if len(parts) > 1 else parts[0]
            col.add(
                source,
                frame,
                period=period,
                measure=measure,
                value=value,
                status=status_of(reason),
            )
    return frame


def collect_sfr(col: Collector) -> None:
    """SFR 2010-2017 and the 2018/2019 underlying data."""
    # 2010: re-label the misaligned placement columns first.
    header = (col.reference / S2010_MARCH.path).read_text(encoding="utf-8").splitlines()[0]
    placement = [h for h in header.split(",") if h.startswith("MarPlace_")]
    if len(placement) != len(ALPHABETICAL_2010):
        raise InputError(
            f"expected {len(ALPHABETICAL_2010)} placement columns, found {len(placement)}",
            file=col.reference / S2010_MARCH.path,
            row=1,
        )
    rename = {
        old: f"MarPlace_{code}_2010" for old, code in zip(placement, ALPHABETICAL_2010, strict=True)
    }
    _wide(
        col,
        S2010_MARCH,
        {
            "cla_31mar": [(2010, ["MarTotal_2010"])],
            "population_0_17": [(2010, ["Mid2009Pop0-17"])],
            "kinship_foster": [(2010, ["MarPlace_Q1_2010"])],
            "cla_foster": [(2010, ["MarPlace_Q1_2010", "MarPlace_Q2_2010"])],
        },
        rename=rename,
    )
    _wide(col, S2010_STARTED, {"cla_starts": [(2010, ["StartTotal_2010"])]})
    _wide(
        col,
        S2010_CEASED,
        {
            "cla_exits": [(2010, ["CeasedTotal_2010"])],
            "cao_exits": [(2010, ["CeasedResOrd_2010"])],
            "sgo_exits": [(2010, ["CeasedSpeGuaForm_2010", "CeasedSpecGuaOth_2010"])],
        },
    )
    for year in range(2011, 2018):
        cla, cea, adm = (SOURCES[f"sfr{year}_{k}"] for k in ("cla", "cea", "adm"))
        _wide(
            col,
            cla,
            {"cla_31mar": [(year, [f"CLA_Mar{year}"])], "cla_foster": [(year, ["CLA_Fost"])]},
        )
        if year <= 2016:
            sgo1 = "CLA_ceaSpecG1" if year == 2016 else "CLA_ceaSpecG"
            cea_spec = {
                "cla_exits": [(year, ["CLA_cease"])],
                "cao_exits": [(year, ["CLA_ceaROG"])],
                "sgo_exits": [(year, [sgo1, "CLA_ceaSpecG2"])],
            }
        else:
            cea_spec = {
                "cla_exits": [(year, [f"CLA_cease{year}"])],
                "cao_exits": [(year, ["CEA_CAO"])],
                "sgo_exits": [(year, ["CEA_SGO1", "CEA_SGO2"])],
            }
        _wide(col, cea, cea_spec)
        # SFR34_ADM2015.csv labels its own year's starts "CLA_started2014".
        started = "CLA_started2014" if year == 2015 else f"CLA_started{year}"
        _wide(col, adm, {"cla_starts": [(year, [started])]})

    _wide(
        col,
        SOURCES["ud2018_cla"],
        {
            "cla_31mar": [(y, [f"CLA_Mar{y}"]) for y in range(2014, 2019)],
            # CLA2018 labels each population by the year of the rate it is the denominator of.
            "population_0_17": [(y, [f"CLA_Pop{y}"]) for y in range(2014, 2019)],
            "cla_foster": [(2018, ["CLA_Fost"])],
        },
    )
    _wide(
        col,
        SOURCES["ud2018_cea"],
        {
            "cla_exits": [(y, [f"CLA_cease{y}"]) for y in range(2014, 2019)],
            "cao_exits": [(2018, ["CEA_CAO"])],
            "sgo_exits": [(2018, ["CEA_SGO1", "CEA_SGO2"])],
        },
    )
    _wide(
        col,
        SOURCES["ud2018_adm"],
        {"cla_starts": [(y, [f"CLA_started{y}"]) for y in range(2014, 2019)]},
    )
    _wide(
        col,
        SOURCES["ud2019_cla"],
        {
            "cla_31mar": [(y, [f"CLA_Mar{y}"]) for y in range(2015, 2020)],
            # CLA2019 labels populations by mid-year: CLA_Pop2018 is the denominator for 2019.
            "population_0_17": [(y + 1, [f"CLA_Pop{y}"]) for y in range(2014, 2019)],
            "cla_foster": [(2019, ["CLA_Fost"])],
        },
    )
    _wide(
        col,
        SOURCES["ud2019_cea"],
        {
            "cla_exits": [(y, [f"CLA_cease{y}"]) for y in range(2015, 2020)],
            "cao_exits": [(2019, ["CEA_CAO"])],
            "sgo_exits": [
                (
                    2019,
                    ["CEA_SGO_FFC_Rel", "CEA_SGO_FFC_Oth", "CEA_SGO_Car_Rel", "CEA_SGO_Car_Oth"],
                )
            ],
            "sgo_exits_kin": [(2019, ["CEA_SGO_FFC_Rel", "CEA_SGO_Car_Rel"])],
        },
    )
    _wide(
        col,
        SOURCES["ud2019_adm"],
        {"cla_starts": [(y, [f"CLA_started{y}"]) for y in range(2015, 2020)]},
    )


SGO_KIN = [
    "Special guardianship order made to former foster carer, who was/are a relative or friend",
    "Special guardianship order made to carer, other than former foster carer, who was/are a "
    "relative or friend",
]


def _ees(
    col: Collector, source: Source, filters: Mapping[str, str | Sequence[str]], indicator: str
) -> pd.DataFrame:
    path = col.reference / source.path
    frame = read_ees(path, indicators=[indicator], filters=filters, geographic_level=LA)
    col.reads.setdefault(source.path, len(read_csv_strings(path)))
    return frame


def _add_by_characteristic(
    col: Collector,
    source: Source,
    frame: pd.DataFrame,
    filter_col: str,
    mapping: Mapping[str, str],
    indicator: str,
    *,
    period_shift: int = 0,
) -> None:
    for characteristic, measure in mapping.items():
        sub = frame.loc[frame[filter_col].eq(characteristic)]
        col.add(
            source,
            sub,
            period=sub["time_period"] + period_shift,
            measure=measure,
            value=sub[indicator],
            status=status_of(sub[f"{indicator}_reason"]),
        )


def collect_ees(col: Collector) -> None:
    """EES releases 2022-2025 (and the dashboard copies of the 2025 release)."""
    ceased = {
        "Special guardianship orders": "sgo_exits",
        "Residence order or child arrangement order granted": "cao_exits",
        "Total": "cla_exits",
    }
    for rel in EES_RELEASES:
        src = SOURCES[f"ees{rel}_ceased"]
        frame = _ees(
            col,
            src,
            {"cla_group": "Reason episode ceased", "characteristic": list(ceased)},
            "number",
        )
        _add_by_characteristic(col, src, frame, "characteristic", ceased, "number")

        src = SOURCES[f"ees{rel}_sgo"]
        frame = _ees(
            col,
            src,
            {"cla_group": "Special guardianship orders", "characteristic": SGO_KIN},
            "number",
        )
        a = frame.loc[frame["characteristic"].eq(SGO_KIN[0])].set_index(
            ["time_period", "new_la_code"]
        )
        b = frame.loc[frame["characteristic"].eq(SGO_KIN[1])].set_index(
            ["time_period", "new_la_code"]
        )
        b = b.reindex(a.index)
        if b["number_reason"].isna().all() and b["number"].isna().all():  # pragma: no cover
            raise InputError("SGO kin parts do not line up", file=col.reference / src.path)
        value, reason = combine(
            [(a["number"], a["number_reason"]), (b["number"], b["number_reason"])]
        )
        kin = a.reset_index()
        col.add(
            src,
            kin,
            period=kin["time_period"],
            measure="sgo_exits_kin",
            value=pd.Series(value.to_numpy(), index=kin.index),
            status=pd.Series(status_of(reason).to_numpy(), index=kin.index),
        )

    src = SOURCES["ees2022_started"]
    frame = _ees(col, src, {"cla_group": "Age group", "characteristic": "Total"}, "number")
    _add_by_characteristic(col, src, frame, "characteristic", {"Total": "cla_starts"}, "number")

    numbers = {
        2023: ("population_count", "number", "at"),
        2024: ("population_count", "number", "at"),
        2025: ("population_type", "children_count", "on"),
    }
    for rel, (type_col, count_col, at_on) in numbers.items():
        src = SOURCES[f"ees{rel}_cla_number"]
        kinds = {
            f"Children looked after {at_on} 31 March each year": "cla_31mar",
            "Children starting to be looked after each year": "cla_starts",
            "Children ceasing to be looked after each year": "cla_exits",
        }
        path = col.reference / src.path
        frame = read_ees(
            path,
            indicators=[count_col, "population_estimate"],
            filters={type_col: list(kinds)},
            geographic_level=LA,
        )
        col.reads[src.path] = len(read_csv_strings(path))
        _add_by_characteristic(col, src, frame, type_col, kinds, count_col)
        pop = frame.loc[frame[type_col].eq(next(iter(kinds)))]
        col.add(
            src,
            pop,
            period=pop["time_period"],
            measure="population_0_17",
            value=pop["population_estimate"],
            status=status_of(pop["population_estimate_reason"]),
            priority=1,  # the ONS file of the same release comes first
        )

    # ONS mid-year estimates: time_period T is mid-T, the denominator for period T + 1.
    path = col.reference / ONS.path
    frame = read_ees(
        path,
        indicators=["population_estimate"],
        filters={"age_group": "Children aged 0 to 17 years"},
        geographic_level=LA,
    )
    col.reads[ONS.path] = len(read_csv_strings(path))
    col.add(
        ONS,
        frame,
        period=frame["time_period"] + 1,
        measure="population_0_17",
        value=frame["population_estimate"],
        status=status_of(frame["population_estimate_reason"]),
    )

    # Dashboard copies of the 2025 release (not in EES layout: read as plain strings).
    for src, group, mapping in (
        (
            SOURCES["ees2025_ceased_rds"],
            "Reason episode ceased",
            {
                "Special guardianship order": "sgo_exits",
                "Residence order or child arrangement order granted": "cao_exits",
                "Total": "cla_exits",
            },
        ),
        (
            SOURCES["ees2025_31mar_rds"],
            "Placement",
            {"Foster placements": "cla_foster", "Total": "cla_31mar"},
        ),
    ):
        path = col.reference / src.path
        raw = read_csv_strings(path)
        col.reads[src.path] = len(raw)
        for needed in ("time_period", "geographic_level", "old_la_code", "new_la_code"):
            if needed not in raw.columns:
                raise InputError("required column is missing", file=path, column=needed)
        sub = raw.loc[raw["geographic_level"].eq(LA) & raw["cla_group"].eq(group)]
        sub = sub.loc[sub["characteristic"].isin(list(mapping))].reset_index(drop=True)
        for characteristic in mapping:
            if not sub["characteristic"].eq(characteristic).any():
                raise InputError(
                    f"no rows for {group!r} / {characteristic!r}",
                    file=path,
                    column="characteristic",
                )
        values, reasons = parse_series(
            sub["number"], file=path, column="number", rows=sub["source_row"].to_numpy()
        )
        sub = sub.assign(
            time_period=sub["time_period"].astype("int64"), number=values, number_reason=reasons
        )
        _add_by_characteristic(col, src, sub, "characteristic", mapping, "number")


def _lait(reference: Path, reads: dict[str, int], items: Iterable[str]) -> pd.DataFrame:
    path = reference / LAIT.path
    table = pd.read_parquet(path)
    reads[LAIT.path] = len(table)
    needed = {"Short Desc", "Years", "Values", "LA Number", "LA and Regions"}
    for name in sorted(needed - set(table.columns)):
        raise InputError("required column is missing", file=path, column=name)
    table = table.assign(source_row=np.arange(len(table)) + 2)
    sub = table.loc[table["Short Desc"].isin(list(items))].reset_index(drop=True)
    number = pd.to_numeric(sub["LA Number"], errors="coerce")
    sub = sub.assign(old_la_code=number.map(lambda x: "" if pd.isna(x) else f"{int(x):03d}"))
    years = sub["Years"].astype("str").str.strip()
    fy = years.str.extract(r"^(\d{4})-(\d{2})")
    period = pd.Series(pd.NA, index=sub.index, dtype="Int64")
    is_fy = fy[0].notna()
    period[is_fy] = fy.loc[is_fy, 0].astype("int64") + 1
    is_year = years.str.fullmatch(r"\d{4}")
    period[is_year] = years[is_year].astype("int64")
    sub = sub.assign(period=period).loc[period.notna()].reset_index(drop=True)
    values, reasons = parse_series(
        sub["Values"], file=path, column="Values", rows=sub["source_row"].to_numpy()
    )
    return sub.assign(value=values, reason=reasons)


def collect_lait(col: Collector) -> pd.DataFrame:
    """LAIT: the finance measures, and the count series used for cross-checks and gap fills."""
    lait = _lait(col.reference, col.reads, [*LAIT_MEASURES, *LAIT_CHECKS])
    las_old = set(col.geo.by_old)
    lait = lait.loc[lait["old_la_code"].isin(las_old)].reset_index(drop=True)
    for item in LAIT_CHECKS:
        SOURCES[f"lait_{item}"] = Source(f"lait_{item}", LAIT.path, LAIT.release, f"LAIT {item}")
    for item, measure in LAIT_MEASURES.items():
        sub = lait.loc[lait["Short Desc"].eq(item)]
        src = Source(f"lait_{item}", LAIT.path, LAIT.release, f"LAIT {item}")
        SOURCES[src.id] = src
        col.add(
            src,
            sub,
            period=sub["period"].astype("int64"),
            measure=measure,
            value=sub["value"],
            status=status_of(sub["reason"]),
        )
    return lait


# ------------------------------------------------------------------------------------------------
# Selection and cross-checks
# ------------------------------------------------------------------------------------------------


def select_latest(candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per (period, la_code, measure): the latest release, with the documented fallback."""
    c = candidates.assign(decisive=candidates["status"].isin(DECISIVE))
    c = c.sort_values(
        ["period", "la_code", "measure", "release", "priority", "source"],
        ascending=[True, True, True, False, True, True],
        kind="mergesort",
    )
    # Prefer the latest decisive row; if none is decisive, the latest row.
    c = c.sort_values(
        ["period", "la_code", "measure", "decisive", "release", "priority", "source"],
        ascending=[True, True, True, False, False, True, True],
        kind="mergesort",
    )
    first = c.drop_duplicates(["period", "la_code", "measure"], keep="first")
    return first.drop(columns=["decisive"]).reset_index(drop=True)


def gap_fill(
    selected: pd.DataFrame, lait: pd.DataFrame, col: Collector
) -> tuple[pd.DataFrame, int]:
    """Fill (period, LA, measure) cells that no DfE release settles from LAIT counts."""
    fills = []
    for item, measure in LAIT_CHECKS.items():
        sub = lait.loc[lait["Short Desc"].eq(item) & lait["reason"].isna()]
        sub = sub.loc[~sub["period"].isin(list(LAIT_ROUNDED.get(item, [])))]
        if sub.empty:
            continue
        codes = [
            col.geo.code_in_force(o, int(p))
            for o, p in zip(sub["old_la_code"], sub["period"], strict=True)
        ]
        f = pd.DataFrame(
            {
                "period": sub["period"].astype("int64").to_numpy(),
                "la_code": codes,
                "measure": measure,
                "value": sub["value"].to_numpy(),
                "status": PUBLISHED,
                "source": f"lait_{item}_gapfill",
                "release": LAIT.release,
                "priority": 9,
            }
        ).dropna(subset=["la_code"])
        fills.append(f)
    if not fills:
        return selected, 0
    fill = pd.concat(fills, ignore_index=True)
    key = ["period", "la_code", "measure"]
    settled = selected.loc[selected["status"].isin(DECISIVE), key]
    # Only for measures and years that the DfE files cover at all (not earlier/later years).
    covered = selected.groupby("measure")["period"].agg(["min", "max"])
    fill = fill.merge(covered, left_on="measure", right_index=True)
    fill = fill.loc[(fill["period"] >= fill["min"]) & (fill["period"] <= fill["max"])].drop(
        columns=["min", "max"]
    )
    fill = fill.merge(settled.assign(_settled=True), on=key, how="left")
    fill = fill.loc[fill["_settled"].isna()].drop(columns=["_settled"])
    if fill.empty:
        return selected, 0
    rest = selected.merge(fill[key].assign(_replaced=True), on=key, how="left")
    rest = rest.loc[rest["_replaced"].isna()].drop(columns=["_replaced"])
    return pd.concat([rest, fill], ignore_index=True), len(fill)


def cross_checks(
    candidates: pd.DataFrame, selected: pd.DataFrame, lait: pd.DataFrame, geo: Geography
) -> list[dict]:
    """Compare overlapping sources; return one summary dict per comparison."""
    out: list[dict] = []
    pub = candidates.loc[candidates["status"].eq(PUBLISHED)]
    key = ["period", "la_code", "measure"]

    # 1. Revisions between releases (same measure, LA and year published by several releases).
    latest = pub.sort_values(["release", "priority"], ascending=[False, True]).drop_duplicates(key)
    merged = pub.merge(latest[[*key, "value", "source"]], on=key, suffixes=("", "_latest"))
    merged = merged.loc[merged["source"] != merged["source_latest"]]
    for measure, grp in merged.groupby("measure", sort=True):
        diff = grp.loc[(grp["value"] - grp["value_latest"]).abs() > 1e-9]
        example = ""
        if len(diff):
            r = diff.sort_values(["period", "la_code", "source"]).iloc[0]
            example = (
                f"{r.la_code} {r.period}: {r.source} {r.value:g} vs {r.source_latest} "
                f"{r.value_latest:g}"
            )
        out.append(
            {
                "check": f"{measure}: other files (earlier releases, same-release files) "
                "vs the value used",
                "compared": len(grp),
                "disagree": len(diff),
                "example": example,
            }
        )

    # 2. LAIT count series vs the values used.
    for item, measure in LAIT_CHECKS.items():
        sub = lait.loc[lait["Short Desc"].eq(item) & lait["reason"].isna()]
        codes = [
            geo.code_in_force(o, int(p))
            for o, p in zip(sub["old_la_code"], sub["period"], strict=True)
        ]
        lait_values = pd.DataFrame(
            {
                "period": sub["period"].astype("int64").to_numpy(),
                "la_code": codes,
                "lait": sub["value"].to_numpy(),
            }
        ).dropna(subset=["la_code"])
        s = selected.loc[selected["measure"].eq(measure) & selected["status"].eq(PUBLISHED)]
        m = s.merge(lait_values, on=["period", "la_code"])
        m = m.loc[~m["source"].str.endswith("_gapfill")]
        diff = m.loc[(m["value"] - m["lait"]).abs() > 1e-9]
        example = ""
        if len(diff):
            r = diff.sort_values(["period", "la_code"]).iloc[0]
            example = f"{r.la_code} {r.period}: {r.source} {r.value:g} vs LAIT {r.lait:g}"
            years = ", ".join(
                f"{int(y)}: {int(n)}" for y, n in diff.groupby("period").size().items()
            )
            example += f" (by year {years})"
        out.append(
            {
                "check": f"{measure}: LAIT {item} vs the value used",
                "compared": len(m),
                "disagree": len(diff),
                "example": example,
            }
        )
        unpublished = selected.loc[
            selected["measure"].eq(measure) & selected["status"].ne(PUBLISHED)
        ].merge(lait_values, on=["period", "la_code"])
        if len(unpublished):
            years = ", ".join(
                f"{int(y)}: {int(n)}" for y, n in unpublished.groupby("period").size().items()
            )
            out.append(
                {
                    "check": f"{measure}: LAIT {item} has a number where the value used is not "
                    "published (not used: see the rules)",
                    "compared": len(unpublished),
                    "disagree": "",
                    "example": f"by year {years}",
                }
            )
    return out


# ------------------------------------------------------------------------------------------------
# Other outputs
# ------------------------------------------------------------------------------------------------


def pilot_register(reference: Path, geo: Geography, reads: dict[str, int]) -> pd.DataFrame:
    path = reference / PILOT.path
    raw = read_csv_strings(path)
    reads[PILOT.path] = len(raw)
    for name in ("la_name", "new_la_code", "old_la_code", "announced", "source_url"):
        if name not in raw.columns:
            raise InputError("required column is missing", file=path, column=name)
    for r in raw.itertuples(index=False):
        known = geo.by_code.get(r.new_la_code)
        if known is None or known.old_la_code != r.old_la_code or known.term is not None:
            raise InputError(
                f"{r.new_la_code} / {r.old_la_code} is not a current LA in las.csv",
                file=path,
                row=int(r.source_row),
                column="new_la_code",
            )
    out = pd.DataFrame(
        {
            "la_code": raw["new_la_code"],
            "la_name": raw["la_name"],
            "start_date": "2026-04-01",
            "first_treated_period": 2027,
            "arm": "kinship_zone",
            "weekly_allowance": "",
            "announced": raw["announced"],
            "source": "Kinship allowance pilot 'Kinship Zones' announced 27 Feb 2026 ("
            + raw["source_url"]
            + "); payments treated as starting 2026-04-01, first full year ending 31 March 2027;"
            " allowance follows the fostering NMA for the child's age",
        }
    )
    return out.sort_values("la_code").reset_index(drop=True)


def md_row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def fmt_number(x: float) -> str:
    if pd.isna(x):
        return ""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def readme_paths(reference: Path) -> dict[str, str]:
    """Original repository path of each reference file, from the README tables."""
    readme = reference / "README.md"
    if not readme.is_file():
        return {}
    found = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([^`]+)` \|[^|]*\|[^|]*\| `([^`]+)` @ `([0-9a-f]+)`", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def coverage(measures: pd.DataFrame) -> tuple[str, str]:
    """Markdown tables: published/rows per measure and year, and LAs per year."""
    years = sorted(measures["period"].unique())
    lines = ["| measure | " + " | ".join(str(y) for y in years) + " |"]
    lines.append("|---|" + "---|" * len(years))
    for measure in MEASURES:
        sub = measures.loc[measures["measure"].eq(measure)]
        cells = []
        for y in years:
            s = sub.loc[sub["period"].eq(y)]
            cells.append(f"{int(s['status'].eq(PUBLISHED).sum())}/{len(s)}" if len(s) else "–")
        lines.append(f"| `{measure}` | " + " | ".join(cells) + " |")
    las = measures.groupby("period")["la_code"].nunique()
    lines2 = [
        "| period | " + " | ".join(str(y) for y in years) + " |",
        "|---|" + "---|" * len(years),
    ]
    lines2.append("| LAs | " + " | ".join(str(int(las.get(y, 0))) for y in years) + " |")
    return "\n".join(lines), "\n".join(lines2)


def status_table(measures: pd.DataFrame) -> str:
    counts = measures.groupby(["measure", "status"]).size().unstack(fill_value=0)
    statuses = sorted(counts.columns, key=lambda s: (s != PUBLISHED, s))
    lines = ["| measure | " + " | ".join(statuses) + " |", "|---|" + "---|" * len(statuses)]
    for measure in MEASURES:
        if measure in counts.index:
            lines.append(
                f"| `{measure}` | "
                + " | ".join(str(int(counts.loc[measure, s])) for s in statuses)
                + " |"
            )
    return "\n".join(lines)


def source_table(measures: pd.DataFrame, reference: Path, original: Mapping[str, str]) -> str:
    used = measures.groupby("source").agg(
        rows=("measure", "size"), periods=("period", lambda p: f"{p.min()}–{p.max()}")
    )
    lines = [
        md_row(
            "source id",
            "release",
            "file (under the reference folder)",
            "repository @ commit, original path",
            "rows used",
            "periods",
        ),
        "|---|---|---|---|---|---|",
    ]
    for sid in sorted(used.index):
        base = sid.removesuffix("_gapfill")
        src = SOURCES[base]
        top = src.path.split("/")[0]
        repo, commit = REPOSITORIES.get(top, ("", ""))
        orig = original.get(src.path, "")
        where = f"{repo} @ `{commit[:12]}`" + (f", `{orig}`" if orig else "")
        lines.append(
            md_row(
                f"`{sid}`",
                src.release,
                f"`{src.path}`",
                where,
                int(used.loc[sid, "rows"]),
                used.loc[sid, "periods"],
            )
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def build(reference: Path, out: Path, echo: Callable[[str], None] = print) -> dict[str, object]:
    """Build every bundled file; return a summary (used by the notes and by tests)."""
    if not reference.is_dir():
        raise InputError("reference folder not found", file=reference)
    out.mkdir(parents=True, exist_ok=True)
    reads: dict[str, int] = {}
    geo = Geography(reference, reads)
    col = Collector(reference, geo, reads)
    collect_sfr(col)
    collect_ees(col)
    lait = collect_lait(col)
    candidates = col.frame()
    unknown = sorted(set(candidates["measure"]) - set(MEASURES))
    if unknown:  # pragma: no cover - programming error
        raise RuntimeError(f"unknown measures {unknown}")
    bad_zero = candidates["status"].ne(PUBLISHED) & candidates["value"].notna()
    if bad_zero.any():  # pragma: no cover - guarded by combine()
        raise RuntimeError("a value was kept for a symbol")

    selected = select_latest(candidates)
    selected, n_filled = gap_fill(selected, lait, col)
    # A measure-year in which every LA is "not applicable" carries no information: leave it out
    # (the 2018 relative/friend SGO split, collected only from 2019).
    all_na = selected.groupby(["measure", "period"])["status"].transform(
        lambda s: bool(s.eq("not_applicable").all())
    )
    omitted = sorted(
        f"{m} {p}"
        for m, p in selected.loc[all_na, ["measure", "period"]]
        .drop_duplicates()
        .itertuples(index=False)
    )
    selected = selected.loc[~all_na]
    checks = cross_checks(candidates, selected, lait, geo)

    las = geo.la_geography().set_index("la_code")
    measures = selected.assign(
        old_la_code=selected["la_code"].map(las["old_la_code"]),
        la_name=selected["la_code"].map(las["la_name"]),
    )
    order = {m: i for i, m in enumerate(MEASURES)}
    measures = measures.assign(_m=measures["measure"].map(order)).sort_values(
        ["period", "la_code", "_m"], kind="mergesort"
    )
    measures = measures[MEASURE_COLUMNS].reset_index(drop=True)
    if measures.duplicated(["period", "la_code", "measure"]).any():  # pragma: no cover
        raise RuntimeError("duplicate rows")
    written = measures.assign(value=measures["value"].map(fmt_number))
    write_csv(written, out / "la_measures.csv")

    write_csv(geo.la_geography(), out / "la_geography.csv")
    reorg = geo.reorganisations()
    write_csv(reorg, out / "la_reorganisations.csv")
    write_csv(pilot_register(reference, geo, reads), out / "pilot_register.csv")

    files = sorted(reads)
    srcs = pd.DataFrame(
        {
            "file": files,
            "sha256": [sha256(reference / f) for f in files],
            "rows_read": [reads[f] for f in files],
        }
    )
    write_csv(srcs, out / "sources.csv")

    summary = {
        "rows": len(measures),
        "gap_filled": n_filled,
        "checks": checks,
        "recoded": dict(sorted(col.recoded.items())),
        "dropped_not_operating": dict(sorted(col.dropped_not_operating.items())),
        "dropped_published": sorted(col.dropped_published),
        "omitted": omitted,
    }
    notes = data_notes(measures, reorg, reference, summary)
    (out / "DATA_NOTES.md").write_bytes(notes.encode("utf-8"))

    echo(
        f"la_measures.csv: {len(measures)} rows, {measures['la_code'].nunique()} LA codes, "
        f"periods {measures['period'].min()}-{measures['period'].max()}"
    )
    echo(f"gap-filled from LAIT: {n_filled} rows")
    echo("cross-checks (compared / disagree):")
    for c in checks:
        echo(
            f"  {c['check']}: {c['compared']} / {c['disagree']}"
            + (f"  e.g. {c['example']}" if c["example"] else "")
        )
    echo(f"rows relabelled to the code in force: {sum(col.recoded.values())}")
    echo(
        f"rows dropped (LA not operating that year): {sum(col.dropped_not_operating.values())}"
        f" (of which with a published value: {len(col.dropped_published)})"
    )
    return summary


def data_notes(
    measures: pd.DataFrame, reorg: pd.DataFrame, reference: Path, summary: Mapping
) -> str:
    cov, las = coverage(measures)
    original = readme_paths(reference)
    checks = "\n".join(
        ["| comparison | compared | disagree | first example |", "|---|---|---|---|"]
        + [
            f"| {c['check']} | {c['compared']} | {c['disagree']} | {c['example']} |"
            for c in summary["checks"]
        ]
    )
    measures_list = "\n".join(f"| `{m}` | {d} |" for m, d in MEASURES.items())
    recoded = ", ".join(f"`{k}` {v}" for k, v in summary["recoded"].items()) or "none"
    dropped = ", ".join(f"`{k}` {v}" for k, v in summary["dropped_not_operating"].items()) or "none"
    dropped_pub = "; ".join(summary["dropped_published"]) or "none"
    omitted = ", ".join(summary["omitted"]) or "none"
    reorg_md = "\n".join(
        ["| predecessor | successor | from period | kind |", "|---|---|---|---|"]
        + [
            md_row(
                f"{r.predecessor_name} `{r.predecessor_code}`",
                f"{r.successor_name} `{r.successor_code}`",
                r.effective_period,
                r.note,
            )
            for r in reorg.itertuples(index=False)
        ]
    )
    return f"""# Bundled default data

Built by `scripts/build_default_data.py` from the real public files described in
`shared/reference/dfe/README.md`. Rebuild with `make bundled-data` (or
`python scripts/build_default_data.py --reference ../shared/reference/dfe`); the build is
deterministic, so an unchanged input gives byte-identical files. `sources.csv` gives the SHA-256 and
the number of rows read of every input file.

Licence: the statistics are Crown copyright (DfE, ONS), published under the
[Open Government Licence v3.0](https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/).
The repositories they were copied from license only their own code.

## Files

* `la_measures.csv`: LA x year measures in long form (below).
* `la_geography.csv`: every English children's-services LA operating in any year ending
  31 March from 2010: `la_code, old_la_code, la_name, region_code, region_name,
  date_of_operation, date_of_termination` (ISO dates; empty = none). From
  `dfe_geography/las.csv` (names, dates, region codes) and `region_la_hierarchy.csv` (region
  names); the combined pseudo-codes (e.g. `E06000061 / E06000062`) are left out.
* `la_reorganisations.csv`: one row per predecessor-successor pair: `predecessor_code,
  predecessor_name, successor_code, successor_name, effective_period, note`; `effective_period`
  is the first year ending 31 March under the new geography, `note` is `merge`, `split` or
  `recode` (same area and 3-digit code, new ONS code).
* `pilot_register.csv`: the seven Kinship Zones: `la_code, la_name, start_date,
  first_treated_period, arm, weekly_allowance, announced, source`. Payments are taken to start on
  2026-04-01, so the first full treated year is the year ending 31 March 2027;
  `weekly_allowance` is empty because the allowance follows the fostering NMA for the child's age.
* `sources.csv`: `file, sha256, rows_read` of every input file.

## `la_measures.csv`

Columns: `period` (int, year ending 31 March), `la_code` (9-character ONS code in force that year),
`old_la_code` (3-digit DfE code), `la_name`, `measure`, `value` (float; empty when not published),
`status` (`published`, or the reason the source gives for no number: `suppressed` (`c`),
`suppressed_or_not_available` (`x` in SFR-era files), `not_available` (`x`, `..`, `.`, `:`),
`not_applicable` (`z`), `nil_or_not_available` (`-`), `low` (`low`, `k`, `~`), `low_reliability`
(`u`), `missing` (blank)), `source` (id below). A value is never 0 for a symbol. Rows are sorted by
`period, la_code, measure` (measures in the order below). Only local-authority rows are kept.

| measure | definition |
|---|---|
{measures_list}

### Rules

* **Codes in force.** `la_code` is the code of the LA operating on 31 March of the period with the
  row's 3-digit code (`las.csv` dates). Pre-reorganisation LAs (Bournemouth, Poole, Dorset county,
  Northamptonshire, Cumbria, North Yorkshire E10000023, Somerset E10000027, Buckinghamshire
  E10000002, Gateshead E08000020, Northumberland E06000048) keep their own codes for the years they
  existed; nothing is harmonised here (see `kinship_eval.data.geography`). Later releases label
  earlier years of recoded LAs with the new code; such rows were put back under the code of the
  time (rows relabelled per source: {recoded}). Rows for LAs that did not exist in a year (`z`) are
  dropped (per source: {dropped}; with a published value: {dropped_pub}). A measure-year in which
  every LA is `z` is left out ({omitted}).
* **Latest release wins.** Release order: SFR 2010 … 2017, underlying data 2018, 2019, EES
  2022 (2018-2022), 2023, 2024, 2025 (2021-2025), by the year of publication. The latest release's
  figure is used, revisions included, and so is its suppression (an older number never replaces a
  newer `c`). Only when the latest release has no figure for another reason (`x`, `..`, `z`,
  blank) is the most recent release with a figure or a suppression used. Within a release the
  headline file (`cla_number_and_rate`) comes before the detailed files.
* **Sums of parts.** `sgo_exits` before 2018 is SGO to former foster carers + SGO to other carers
  (E43 + E44, or E45-E48 in 2019); `sgo_exits_kin` is SGO to relative/friend former foster carers +
  SGO to other relative/friend carers (E45 + E47); `cla_foster` in 2010 is Q1 + Q2. A sum is
  published only when every part is; otherwise it takes its parts' reason (suppression first). No
  suppressed cell is ever derived back from totals.
* **2010 re-labelling.** `SFR27_2010_March.csv` lists its 21 placement columns in metadata order
  (Q1, Q2, A3 …) but the data are in alphabetical code order (A3, A4, A5, A6, H5, K1, K2, M1, M2,
  M3, P1, P2, P3, Q1, Q2, R1, R2, R3, R5, S1, Z1); the columns are re-labelled before use. The
  national row then gives Q1 (foster placement with relative or friend) = 7,300 and Q2 = 39,900,
  which sum to the published 47,200.
* **Mislabelled column.** `SFR34_ADM2015.csv` labels its 2015 starts `CLA_started2014`; they are
  read as 2015 (they match the 2015 column of the 2018 underlying data, not the 2014 ones).
* **Financial years.** LAIT `2016-17 (OT)` (outturn) is the year ending 31 March 2017.
* **Population.** `population_0_17` for period *Y* is the ONS mid-year estimate for mid-(*Y*-1),
  the denominator DfE uses for rates per 10,000 in the year ending 31 March *Y*: 2010 from
  `Mid2009Pop0-17` (rounded to 100) in `SFR27_2010_March.csv`; 2013-2025 from the ONS file (mid-2012
  to mid-2024, the latest, Census-2021-based vintage); 2014-2019 figures from the 2018/2019
  underlying data (an older vintage) are used only where the ONS file has none (Bournemouth, Poole
  and Dorset county, which the ONS file shows on 2019 boundaries only). No source gives 2011-2012.
* **LAIT** (`bds_long_0.parquet`, LAs identified by 3-digit number, mapped to the code in force)
  is the only source of `foster_unit_cost_weekly` (`FosteringFinance`, £ per child per week) and
  `cla_spend_total` (`TotalLACFinance`, gross £). Its count series (`LAC_ceased_SGO`, `LACnum`,
  `LACceased`, `LACnum_Start`) are used to cross-check and to fill a cell no DfE release settles
  (source ids ending `_gapfill`; {summary["gap_filled"]} rows). LAIT's `LAC_ceased_SGO` for
  2016 and 2017 is rounded to the nearest 5 (every value is a multiple of 5, and it differs from
  the unrounded SFR figures), so it is never used for those years, not even to fill a cell whose
  SFR parts are suppressed.

### Coverage: published / rows, by measure and period

{cov}

LAs with at least one row, by period:

{las}

Rows by status:

{status_table(measures)}

### Cross-checks between overlapping sources

"compared" counts (period, LA) cells published by both; "disagree" those with different values.
Differences between releases are revisions (the latest is used).

{checks}

### Known gaps and caveats

* `kinship_foster` (foster placements with relatives or friends by LA) exists only for 2010: DfE's
  LA-level file with the kinship split was too large to keep (see the reference README).
* `cla_foster` has no source for 2020 (the 2021-2025 dashboard copy starts in 2021; LAIT gives
  only a percentage).
* `sgo_exits` in 2010-2017 is the sum of two published cells (SGO to former foster carers, SGO
  to other carers), each suppressed as `x` when 1-5, so about 40-60% of LAs have no published sum
  in those years (status `suppressed_or_not_available`). LAIT has totals for 2016-2017, but rounded
  to 5 (not used).
* The Isles of Scilly are absent from the 2011-2015 SFR files, and `z` in several later series.
* `cla_foster` for Cumbria 2021-2023 and Northamptonshire 2021 is missing: the 2025 dashboard copy
  shows only the LAs of 2025, and no other file gives foster placements for those years.
* `sgo_exits_kin` is only published from 2019 (2018 uses the older two-way split, which does not
  separate relatives and friends) and is heavily suppressed (`c`) at LA level.
* `cla_starts` and `cla_exits` in 2010-2017 come from SFR files unrevised by later releases
  except where the 2018/2019 underlying data give five-year series (2014-2019).
* The 2025 ceased and 31 March figures are DfE's dashboard copies of the 2025 release (processed,
  not the raw EES files).
* Population figures mix ONS vintages where noted above; 2011-2012 have none.

## Reorganisations

{reorg_md}

## Sources

{source_table(measures, reference, original)}

Other inputs: `dfe_geography/las.csv`, `dfe_geography/region_la_hierarchy.csv`
(dfe-analytical-services/dfe-published-data-qa @ `bcc7ca543e7f`), and the transcribed pilot
facts in `pilot_and_nma_facts/` (source URLs in `pilot_register.csv`). The fostering national
minimum allowance rates are appraisal inputs: `kinship_eval/cba/inputs/allowance_rates.csv`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=Path("../shared/reference/dfe"))
    parser.add_argument("--out", type=Path, default=Path("kinship_eval/data/bundled"))
    args = parser.parse_args(argv)
    try:
        build(args.reference, args.out)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
