"""Local-authority geography: codes, regions and the 2019-2023 reorganisations.

Outcome series cross LA reorganisations: Bournemouth, Poole and Dorset county became Bournemouth,
Christchurch and Poole (BCP) and Dorset in April 2019; Northamptonshire split into North and West
Northamptonshire in April 2021; Cumbria split into Cumberland and Westmorland and Furness in April
2023; North Yorkshire and Somerset became unitary with new ONS codes in April 2023.

A panel needs units that mean the same thing in every period. :func:`harmonise` applies one of two
documented rules, chosen per analysis:

``aggregate``
    Predecessors and successors that cannot be matched one-to-one are combined into one stable unit
    for the whole panel (BCP + Dorset, the two Northamptonshires, Cumberland + Westmorland and
    Furness), coded with the combined pseudo-code that Explore Education Statistics itself uses
    (``"E06000058 / E06000059"``). Counts are summed; a sum with any suppressed part is itself
    missing, with the reason ``suppressed_component``. Pure recodes (North Yorkshire, Somerset) are
    one-to-one and take the current code.
``drop``
    LAs in a split or merge are dropped from the panel, each with a logged reason; pure recodes are
    kept under the current code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from kinship_eval.data.bundled import bundled_path
from kinship_eval.errors import InputError

log = logging.getLogger(__name__)

HarmonisationRule = Literal["aggregate", "drop"]
HARMONISATION_RULES: tuple[str, ...] = ("aggregate", "drop")
LA_CODE_PATTERN = r"^E(06|08|09|10)\d{6}$"
COMBINED_CODE_SEP = " / "


@dataclass(frozen=True)
class Geography:
    """The LA lookup and the reorganisation table.

    Attributes
    ----------
    las
        One row per LA code ever used: ``la_code, old_la_code, la_name, region_code,
        region_name, date_of_operation, date_of_termination``.
    reorganisations
        One row per predecessor-successor pair: ``predecessor_code, successor_code,
        effective_period`` (first year ending 31 March under the new geography) and ``note``.
    """

    las: pd.DataFrame
    reorganisations: pd.DataFrame
    source: str = "bundled"

    @property
    def known_codes(self) -> set[str]:
        return set(self.las["la_code"])

    def name_of(self, code: str) -> str:
        row = self.las.loc[self.las["la_code"] == code, "la_name"]
        return str(row.iloc[0]) if len(row) else code

    def region_of(self, code: str) -> tuple[str, str]:
        row = self.las.loc[self.las["la_code"] == code]
        if not len(row):
            return ("", "")
        return (str(row["region_code"].iloc[0]), str(row["region_name"].iloc[0]))

    def operating(self, code: str, period: int) -> bool:
        """Whether LA ``code`` existed for the year ending 31 March ``period``."""
        row = self.las.loc[self.las["la_code"] == code]
        if not len(row):
            return False
        end_of_year = pd.Timestamp(year=period, month=3, day=31)
        start = pd.to_datetime(row["date_of_operation"].iloc[0] or None, errors="coerce")
        stop = pd.to_datetime(row["date_of_termination"].iloc[0] or None, errors="coerce")
        started = pd.isna(start) or start < end_of_year
        not_ended = pd.isna(stop) or stop >= end_of_year
        return bool(started and not_ended)

    def stable_units(self) -> pd.DataFrame:
        """Map every LA code to the stable unit it belongs to under each rule.

        Returns
        -------
        DataFrame
            ``la_code, unit_code, unit_name, kind`` where ``kind`` is ``stable`` (never
            reorganised), ``recode`` (one-to-one new code) or ``combined`` (part of a split or
            merge).
        """
        edges = self.reorganisations[["predecessor_code", "successor_code"]]
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in edges.itertuples(index=False):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
        groups: dict[str, list[str]] = {}
        for code in parent:
            groups.setdefault(find(code), []).append(code)

        rows = []
        in_group: set[str] = set()
        for members in groups.values():
            successors = sorted(
                set(self.reorganisations["successor_code"])
                & set(members) - set(self.reorganisations["predecessor_code"])
            )
            kind = "recode" if len(members) == 2 and len(successors) == 1 else "combined"
            unit_code = COMBINED_CODE_SEP.join(successors)
            unit_name = COMBINED_CODE_SEP.join(self.name_of(c) for c in successors)
            for code in members:
                rows.append((code, unit_code, unit_name, kind))
                in_group.add(code)
        for code in self.las["la_code"]:
            if code not in in_group:
                rows.append((code, code, self.name_of(code), "stable"))
        return pd.DataFrame(rows, columns=["la_code", "unit_code", "unit_name", "kind"])


def load_geography(
    las_path: str | Path | None = None, reorganisations_path: str | Path | None = None
) -> Geography:
    """Read the LA lookup and reorganisation table (the bundled ones by default)."""
    las_file = Path(las_path) if las_path else bundled_path("la_geography.csv")
    reorg_file = (
        Path(reorganisations_path)
        if reorganisations_path
        else bundled_path("la_reorganisations.csv")
    )
    las = _read_csv(las_file, ["la_code", "old_la_code", "la_name", "region_code", "region_name"])
    bad = ~las["la_code"].astype(str).str.match(LA_CODE_PATTERN)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"not a 9-character English LA code: {las['la_code'].iloc[i]!r}",
            file=las_file,
            row=i + 2,
            column="la_code",
        )
    reorg = _read_csv(reorg_file, ["predecessor_code", "successor_code", "effective_period"])
    known = set(las["la_code"])
    for col in ("predecessor_code", "successor_code"):
        unknown = ~reorg[col].isin(known)
        if unknown.any():
            i = int(unknown.to_numpy().nonzero()[0][0])
            raise InputError(
                f"LA code {reorg[col].iloc[i]!r} is not in the LA lookup",
                file=reorg_file,
                row=i + 2,
                column=col,
            )
    reorg["effective_period"] = reorg["effective_period"].astype(int)
    return Geography(las=las, reorganisations=reorg, source=f"{las_file}; {reorg_file}")


def _read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    if not path.exists():
        raise InputError("file not found", file=path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in required:
        if col not in frame.columns:
            raise InputError(
                f"required column missing; found {', '.join(frame.columns)}", file=path, column=col
            )
    return frame


@dataclass
class HarmonisationLog:
    """What a harmonisation rule did, for the technical annex."""

    rule: str
    combined: dict[str, list[str]] = field(default_factory=dict)
    recoded: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """Plain-language lines describing the rule and what it changed."""
        lines = []
        for unit, members in sorted(self.combined.items()):
            lines.append(f"Combined into one unit for every year: {', '.join(members)} -> {unit}.")
        for old, new in sorted(self.recoded.items()):
            lines.append(f"Recoded {old} -> {new} (same area, new code).")
        for code, why in sorted(self.dropped.items()):
            lines.append(f"Dropped {code}: {why}.")
        return lines


def harmonise(
    measures: pd.DataFrame,
    geography: Geography,
    rule: HarmonisationRule = "aggregate",
    *,
    value_columns: Iterable[str] = ("value",),
    status_column: str = "status",
    key_columns: Iterable[str] = ("period", "measure"),
) -> tuple[pd.DataFrame, HarmonisationLog]:
    """Map LA codes to stable units over the whole panel.

    Parameters
    ----------
    measures
        Long table with ``la_code``, the key columns, the value column(s) and a status column
        (``published`` or the reason a value is missing).
    geography
        LA lookup and reorganisation table.
    rule
        ``aggregate`` or ``drop`` (see the module docstring).

    Returns
    -------
    (DataFrame, HarmonisationLog)
        The table with ``la_code`` replaced by the stable unit code and ``la_name`` by its name,
        one row per unit and key; and a log of what was combined, recoded or dropped.
    """
    if rule not in HARMONISATION_RULES:
        raise InputError(
            f"unknown harmonisation rule {rule!r}; choose one of {', '.join(HARMONISATION_RULES)}"
        )
    units = geography.stable_units()
    unknown = sorted(set(measures["la_code"]) - set(units["la_code"]))
    if unknown:
        raise InputError(
            f"unknown or retired LA code(s) not in the LA lookup: {', '.join(unknown[:5])}",
            column="la_code",
        )
    hlog = HarmonisationLog(rule=rule)
    mapping = units.set_index("la_code")
    present = set(measures["la_code"])
    for code, row in mapping.iterrows():
        if code not in present or row["kind"] == "stable":
            continue
        if row["kind"] == "recode" and code != row["unit_code"]:
            hlog.recoded[code] = row["unit_code"]
        elif row["kind"] == "combined":
            if rule == "aggregate":
                hlog.combined.setdefault(row["unit_code"], []).append(code)
            else:
                hlog.dropped[code] = "part of an LA split or merge (rule 'drop')"
    for members in hlog.combined.values():
        members.sort()

    frame = measures.copy()
    frame["unit_code"] = frame["la_code"].map(mapping["unit_code"])
    frame["unit_name"] = frame["la_code"].map(mapping["unit_name"])
    kind = frame["la_code"].map(mapping["kind"])
    if rule == "drop":
        frame = frame.loc[kind != "combined"]
        for code in hlog.dropped:
            log.info("harmonise: dropped %s", code)

    keys = ["unit_code", "unit_name", *key_columns]
    value_columns = list(value_columns)
    published = frame[status_column].eq("published")
    frame = frame.assign(_n=1, _published=published.astype(int))
    agg = {c: "sum" for c in value_columns}
    agg.update({"_n": "sum", "_published": "sum", status_column: "first"})
    for col in value_columns:
        frame[col] = frame[col].where(published)
    grouped = frame.groupby(keys, sort=True, dropna=False).agg(agg).reset_index()
    complete = grouped["_published"] == grouped["_n"]
    for col in value_columns:
        grouped[col] = grouped[col].where(complete)
    partial = (~complete) & (grouped["_n"] > 1)
    grouped.loc[partial, status_column] = "suppressed_component"
    combined_members = (
        units.loc[units["kind"] == "combined"].groupby("unit_code")["la_code"].apply(list).to_dict()
    )
    expected_cache: dict[tuple[str, int], int] = {}

    def expected(unit: str, period: int) -> int:
        if unit not in combined_members:
            return 1
        key = (unit, period)
        if key not in expected_cache:
            expected_cache[key] = sum(
                geography.operating(c, period) for c in combined_members[unit]
            )
        return expected_cache[key]

    if "period" in grouped.columns:
        n_expected = [
            expected(u, int(p))
            for u, p in zip(grouped["unit_code"], grouped["period"], strict=True)
        ]
    else:
        n_expected = [1] * len(grouped)
    short = grouped["_n"].to_numpy() < np.asarray(n_expected)
    for col in value_columns:
        grouped.loc[short, col] = float("nan")
    grouped.loc[short, status_column] = "incomplete_component"
    grouped = grouped.drop(columns=["_n", "_published"]).rename(
        columns={"unit_code": "la_code", "unit_name": "la_name"}
    )
    return grouped, hlog
