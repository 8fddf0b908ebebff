"""SSDA903 code lists, kept as data in ``ssda903_codes.csv``, and the kinship groupings.

The CSV has one row per valid code: ``field`` (the SSDA903 column: ``SEX``, ``ETHNIC``, ``RNE``,
``LS``, ``CIN``, ``PLACE``, ``PLACE_PROVIDER``, ``REC``, ``REASON_PLACE_CHANGE``), ``code``,
``group`` (the analysis grouping: placement type for ``PLACE``, kind of exit for ``REC``, ethnic
group for ``ETHNIC``, ...), ``in_use`` (``current``, or ``historical`` for codes found only in
older returns, such as ``Q1``/``Q2`` before 2015 and ``E43``/``E44`` before the SGO codes
separated relatives and friends) and ``label``. Historical codes are accepted in any year.

The kinship groupings follow DOMAIN.md ("SSDA903 codes relevant to kinship"):

* kinship foster placements: ``U1``-``U3`` (``Q1`` before 2015);
* exits to kin: ``E41`` (residence / child arrangements order), ``E45`` and ``E47`` (special
  guardianship orders to relatives or friends); ``E46``/``E48`` are SGOs to other carers and
  ``E43``/``E44`` older SGO codes that do not say whether the carer was kin.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from kinship_eval.errors import InputError

CODE_FIELDS: tuple[str, ...] = (
    "SEX",
    "ETHNIC",
    "RNE",
    "LS",
    "CIN",
    "PLACE",
    "PLACE_PROVIDER",
    "REC",
    "REASON_PLACE_CHANGE",
)

#: Kinship foster placements (PLACE).
KINSHIP_FOSTER_PLACE: tuple[str, ...] = ("U1", "U2", "U3", "Q1")
#: Child arrangements (or residence) order (REC).
CAO_REC: tuple[str, ...] = ("E41",)
#: Special guardianship orders to relatives or friends (REC).
SGO_KIN_REC: tuple[str, ...] = ("E45", "E47")
#: Special guardianship orders to other carers (REC).
SGO_OTHER_REC: tuple[str, ...] = ("E46", "E48")
#: Older special guardianship codes that do not separate kin from other carers (REC).
SGO_UNKNOWN_REC: tuple[str, ...] = ("E43", "E44")
#: Every special guardianship code (REC).
SGO_REC: tuple[str, ...] = SGO_KIN_REC + SGO_OTHER_REC + SGO_UNKNOWN_REC
#: Leaving care to kin: CAO and SGOs to relatives or friends (REC).
KIN_EXIT_REC: tuple[str, ...] = CAO_REC + SGO_KIN_REC
#: The episode ends but the child stays looked after (REC).
CONTINUES_REC = "X1"
#: Legal statuses of short-break care, left out of looked-after counts as DfE does (LS).
SHORT_BREAK_LS: tuple[str, ...] = ("V3", "V4")
#: Reasons for a new episode that start a new placement (RNE).
PLACEMENT_CHANGE_RNE: tuple[str, ...] = ("P", "T", "B", "U")
#: Placement groups (PLACE ``group``), in the order used for the placement mix.
PLACEMENT_GROUPS: tuple[str, ...] = (
    "kinship_foster",
    "other_foster",
    "placed_for_adoption",
    "placed_with_parents",
    "homes_and_semi_independent",
    "independent_living",
    "other_residential",
    "other_placement",
)
#: Ethnic groups (ETHNIC ``group``).
ETHNIC_GROUPS: tuple[str, ...] = ("white", "mixed", "asian", "black", "other", "unknown")


@dataclass(frozen=True)
class CodeLists:
    """The valid codes of each SSDA903 field, with their groups and labels.

    Attributes
    ----------
    table
        ``field, code, group, in_use, label``, one row per valid code.
    source
        Where the table was read from.
    """

    table: pd.DataFrame
    source: str = "bundled"

    def codes(self, field: str) -> tuple[str, ...]:
        """Valid codes of ``field``, in file order."""
        rows = self.table.loc[self.table["field"] == field, "code"]
        if rows.empty:
            raise KeyError(f"no code list for field {field!r}")
        return tuple(rows)

    def groups(self, field: str) -> dict[str, str]:
        """Code -> group for ``field``."""
        rows = self.table.loc[self.table["field"] == field]
        return dict(zip(rows["code"], rows["group"], strict=True))

    def labels(self, field: str) -> dict[str, str]:
        """Code -> label for ``field``."""
        rows = self.table.loc[self.table["field"] == field]
        return dict(zip(rows["code"], rows["label"], strict=True))

    def with_codes(self, field: str, extra: dict[str, str]) -> CodeLists:
        """A copy that also accepts ``extra`` codes (code -> group) for ``field``."""
        add = pd.DataFrame(
            {
                "field": field,
                "code": list(extra),
                "group": list(extra.values()),
                "in_use": "added",
                "label": "",
            }
        )
        return CodeLists(pd.concat([self.table, add], ignore_index=True), self.source)


def read_code_lists(path: str | Path | None = None) -> CodeLists:
    """Read a code-list CSV (the bundled SSDA903 lists by default).

    Raises
    ------
    InputError
        The file lacks a column, a field is unknown or a code is listed twice.
    """
    if path is None:
        return _bundled()
    file = Path(path)
    if not file.exists():
        raise InputError("file not found", file=file)
    return _parse(pd.read_csv(file, dtype=str, keep_default_na=False), str(file))


@cache
def _bundled() -> CodeLists:
    ref = resources.files(__package__).joinpath("ssda903_codes.csv")
    with resources.as_file(ref) as file:
        return _parse(pd.read_csv(file, dtype=str, keep_default_na=False), "bundled")


def _parse(table: pd.DataFrame, source: str) -> CodeLists:
    required = ["field", "code", "group", "in_use", "label"]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError("required column missing", file=source, column=missing[0])
    table = table[required].apply(lambda s: s.str.strip())
    unknown = ~table["field"].isin(CODE_FIELDS)
    if unknown.any():
        i = int(unknown.to_numpy().nonzero()[0][0])
        raise InputError(
            f"unknown field {table['field'].iloc[i]!r}; known: {', '.join(CODE_FIELDS)}",
            file=source,
            row=i + 2,
            column="field",
        )
    dup = table.duplicated(["field", "code"])
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(
            f"code {table['code'].iloc[i]!r} listed twice", file=source, row=i + 2, column="code"
        )
    return CodeLists(table.reset_index(drop=True), source)
