"""Build the LA x period Panel (the contract in DESIGN.md) from long measures.

Steps, each a pure function:

1. :func:`assemble` — harmonise LA codes to stable units (:func:`geography.harmonise`), pivot the
   measures wide (``<measure>`` and ``<measure>_status``), derive the kinship outcomes and the rates
   per 10,000 children aged 0-17.
2. :func:`attach_treatment` — add ``pilot`` and ``first_treated`` from the pilot register, flag
   contaminated comparison LAs from the comparison register, and check every pilot LA has both
   pre- and post-treatment periods in the panel.
3. :func:`validate_panel` — the pandera Panel schema (unique LA x period, valid codes, counts >= 0,
   rates consistent with counts and population, missing counts carry a reason).

Suppressed counts stay missing with their reason in ``<measure>_status``; they are never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kinship_eval.data.geography import Geography, HarmonisationLog, HarmonisationRule, harmonise
from kinship_eval.data.measures import COUNT_MEASURES, OTHER_MEASURES
from kinship_eval.data.schemas import panel_schema, validate
from kinship_eval.errors import InputError

#: Derived count outcomes: name -> (components summed, label).
DERIVED_COUNTS: dict[str, tuple[tuple[str, ...], str]] = {
    "kinship_exits": (
        ("sgo_exits", "cao_exits"),
        "Children leaving care to kinship carers "
        "(special guardianship or child arrangements order)",
    ),
}
RATE_SUFFIX = "_per_10k"


@dataclass
class Panel:
    """An LA x period panel and how it was made.

    Attributes
    ----------
    frame
        One row per LA x period (see DESIGN.md, "The Panel").
    harmonisation
        What the harmonisation rule combined, recoded or dropped.
    count_columns, rate_columns
        The count outcomes present and the rate derived from each (rate -> count).
    notes
        Plain-language notes for the technical annex.
    """

    frame: pd.DataFrame
    harmonisation: HarmonisationLog
    count_columns: list[str]
    rate_columns: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def periods(self) -> list[int]:
        return sorted(int(p) for p in self.frame["period"].unique())

    @property
    def pilot_codes(self) -> list[str]:
        return sorted(self.frame.loc[self.frame["pilot"], "la_code"].unique())

    def label(self, column: str) -> str:
        """Plain-language label of an outcome column."""
        base = column.removesuffix(RATE_SUFFIX)
        text = COUNT_MEASURES.get(base) or OTHER_MEASURES.get(base)
        if text is None and base in DERIVED_COUNTS:
            text = DERIVED_COUNTS[base][1]
        text = text or base
        return f"{text}, per 10,000 children" if column.endswith(RATE_SUFFIX) else text


def assemble(
    measures: pd.DataFrame,
    geography: Geography,
    *,
    rule: HarmonisationRule = "aggregate",
    periods: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame, HarmonisationLog]:
    """Harmonise and pivot long measures into a wide LA x period frame with derived rates."""
    if periods is not None:
        measures = measures.loc[measures["period"].between(*periods)]
    if measures.empty:
        raise InputError("no measures fall inside the chosen period range")
    long, hlog = harmonise(measures, geography, rule)
    index = ["la_code", "la_name", "period"]
    values = long.pivot(index=index, columns="measure", values="value")
    status = long.pivot(index=index, columns="measure", values="status")
    wide = values.copy()
    for m in status.columns:
        wide[f"{m}_status"] = status[m].fillna("not_collected")
    wide = wide.reset_index()
    wide.columns.name = None
    for m in [*COUNT_MEASURES, *OTHER_MEASURES]:
        if m in values.columns and f"{m}_status" not in wide:
            wide[f"{m}_status"] = "not_collected"
    # rows created by the pivot for measures an LA lacks in a year
    for m in values.columns:
        wide[f"{m}_status"] = wide[f"{m}_status"].where(
            wide[m].notna() | wide[f"{m}_status"].ne("published"), "not_collected"
        )
    for name, (parts, _label) in DERIVED_COUNTS.items():
        if all(p in wide for p in parts):
            wide[name] = wide[list(parts)].sum(axis=1, min_count=len(parts))
            wide.loc[wide[list(parts)].isna().any(axis=1), name] = np.nan
            reason = pd.Series("published", index=wide.index)
            for p in reversed(parts):
                reason = reason.where(wide[f"{p}_status"].eq("published"), wide[f"{p}_status"])
            wide[f"{name}_status"] = reason.where(wide[name].isna(), "published")
    region = geography.las.set_index("la_code")["region_name"]
    first_code = wide["la_code"].str.split(" / ").str[0]
    wide.insert(2, "region", first_code.map(region).fillna("").astype(str))
    if "population_0_17" not in wide:
        raise InputError("the measures have no population_0_17 rows: rates cannot be derived")
    for col in [*COUNT_MEASURES, *DERIVED_COUNTS]:
        if col in wide:
            wide[f"{col}{RATE_SUFFIX}"] = wide[col] / wide["population_0_17"] * 10_000
    wide["period"] = wide["period"].astype(int)
    wide["illustrative"] = False
    return wide.sort_values(["la_code", "period"]).reset_index(drop=True), hlog


def attach_treatment(
    frame: pd.DataFrame,
    pilot_register: pd.DataFrame,
    *,
    comparison_register: pd.DataFrame | None = None,
    source: str = "pilot register",
) -> pd.DataFrame:
    """Add ``pilot`` and ``first_treated`` (and comparison-register flags) to a wide panel.

    Raises
    ------
    InputError
        A pilot LA is not in the panel, or its first treated period leaves no pre- or no
        post-treatment period in the panel.
    """
    out = frame.copy()
    first = pilot_register.set_index("la_code")["first_treated_period"]
    lo, hi = int(out["period"].min()), int(out["period"].max())
    units = set(out["la_code"])
    for i, (code, g) in enumerate(first.items()):
        if code not in units:
            raise InputError(
                f"pilot LA {code} is not in the panel", file=source, row=i + 2, column="la_code"
            )
        if not lo < int(g) <= hi:
            raise InputError(
                f"pilot start outside the panel: first treated period {int(g)} for {code}, but "
                f"the panel covers {lo}-{hi} (needs at least one period before and one from it)",
                file=source,
                row=i + 2,
                column="start_date",
            )
    out["pilot"] = out["la_code"].isin(first.index)
    out["first_treated"] = out["la_code"].map(first).astype("Int64")
    if comparison_register is not None:
        flags = comparison_register.set_index("la_code")
        for col in flags.columns:
            if flags[col].dtype == bool:
                out[col] = out["la_code"].map(flags[col]).fillna(False).astype(bool)
    return out


def validate_panel(frame: pd.DataFrame, *, source: str = "panel") -> pd.DataFrame:
    """Check a panel against the Panel contract."""
    counts = [c for c in [*COUNT_MEASURES, *DERIVED_COUNTS] if c in frame]
    rates = {f"{c}{RATE_SUFFIX}": c for c in counts if f"{c}{RATE_SUFFIX}" in frame}
    return validate(frame.reset_index(drop=True), panel_schema(counts, rates), file=source)


def panel_columns(frame: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The count columns and rate -> count mapping present in a panel frame."""
    counts = [c for c in [*COUNT_MEASURES, *DERIVED_COUNTS] if c in frame]
    return counts, {f"{c}{RATE_SUFFIX}": c for c in counts if f"{c}{RATE_SUFFIX}" in frame}
