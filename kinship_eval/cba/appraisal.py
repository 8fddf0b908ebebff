"""Green Book appraisal of a stream of real-price flows: PV costs, PV benefits, NPSV and BCR.

A flow table has one row per flow with columns

* ``year_index`` - 0 for the first appraisal year (undiscounted), 1, 2, ...;
* ``kind`` - ``cost`` or ``benefit``;
* ``amount`` - £ in real prices of the price base year;
* optionally ``perspective`` (e.g. ``fiscal``, ``economic``, ``social``) and ``item`` (a label).

Definitions used throughout the package (HM Treasury Green Book):

* NPSV (net present social value) = PV benefits - PV costs;
* BCR (benefit-cost ratio) = PV benefits / PV costs, undefined (NaN) when PV costs are 0;
* payback year = the first year from which the cumulative discounted net flow stays >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kinship_eval.cba.discounting import DiscountSchedule, resolve_schedule
from kinship_eval.cba.prices import shift_year
from kinship_eval.data.tables import read_table
from kinship_eval.errors import InputError

FLOW_COLUMNS = ("year_index", "kind", "amount")
KINDS = ("cost", "benefit")
BY_YEAR_COLUMNS = [
    "year_index",
    "costs",
    "benefits",
    "net",
    "discount_factor",
    "pv_costs",
    "pv_benefits",
    "pv_net",
    "cumulative_pv_net",
]


#: The Green Book perspectives a flow can belong to.
KNOWN_PERSPECTIVES: tuple[str, ...] = ("fiscal", "economic", "social")


def _clean(value: Any) -> Any:
    """JSON-friendly scalars: numpy types to Python, NaN/inf to None."""
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ---------------------------------------------------------------------- reading and validation
def validate_flows(frame: pd.DataFrame, *, file: str | Path = "flows") -> pd.DataFrame:
    """Check and normalise a flow table.

    Parameters
    ----------
    frame
        Columns ``year_index``, ``kind``, ``amount`` and optionally ``perspective``, ``item``.
        Values may be strings (as read from a CSV) or numbers.
    file
        Name used in error messages. Row numbers count the header as line 1.

    Returns
    -------
    DataFrame
        ``year_index`` (int64 >= 0), ``kind`` (``cost``/``benefit``), ``amount`` (float) and the
        optional columns, in the input order.

    Raises
    ------
    InputError
        A required column is missing, the table is empty, ``year_index`` is not a whole number
        >= 0, ``kind`` is not ``cost`` or ``benefit``, or ``amount`` is not a finite number.
    """
    for col in FLOW_COLUMNS:
        if col not in frame.columns:
            raise InputError(
                f"required column missing; found: {', '.join(map(str, frame.columns))}",
                file=file,
                column=col,
            )
    if frame.empty:
        raise InputError("the flow table has no rows", file=file)

    out = pd.DataFrame(index=range(len(frame)))
    years = pd.to_numeric(_strip(frame["year_index"]), errors="coerce").to_numpy(float)
    for i, y in enumerate(years):
        if not math.isfinite(y) or y != math.floor(y):
            raise InputError(
                f"year_index must be a whole number, got {frame['year_index'].iloc[i]!r}",
                file=file,
                row=i + 2,
                column="year_index",
            )
        if y < 0:
            raise InputError(
                f"year_index must be 0 or more (0 = first appraisal year), got {int(y)}",
                file=file,
                row=i + 2,
                column="year_index",
            )
    out["year_index"] = years.astype(np.int64)

    kinds = frame["kind"].astype(str).str.strip().str.lower().to_numpy()
    for i, k in enumerate(kinds):
        if k not in KINDS:
            raise InputError(
                f"kind must be 'cost' or 'benefit', got {frame['kind'].iloc[i]!r}",
                file=file,
                row=i + 2,
                column="kind",
            )
    out["kind"] = kinds

    raw_amount = _strip(frame["amount"])
    if not pd.api.types.is_numeric_dtype(raw_amount):
        raw_amount = raw_amount.str.replace(r"[£,\s]", "", regex=True)
    amounts = pd.to_numeric(raw_amount, errors="coerce").to_numpy(float)
    for i, a in enumerate(amounts):
        if not math.isfinite(a):
            raise InputError(
                f"amount must be a number (£, real prices), got {frame['amount'].iloc[i]!r}",
                file=file,
                row=i + 2,
                column="amount",
            )
        if a < 0 and kinds[i] == "cost":
            raise InputError(
                f"a cost must not be negative, got {a:g}: enter a saving as a benefit",
                file=file,
                row=i + 2,
                column="amount",
            )
    out["amount"] = amounts

    for col in ("perspective", "item"):
        if col in frame.columns:
            values = frame[col].astype(str).str.strip().to_numpy()
            if col == "perspective":
                for i, v in enumerate(values):
                    if v in ("", "nan", "None"):
                        raise InputError(
                            "perspective is empty (name one, or drop the column)",
                            file=file,
                            row=i + 2,
                            column=col,
                        )
                    if v not in KNOWN_PERSPECTIVES:
                        raise InputError(
                            f"unknown perspective {v!r}; use one of "
                            f"{', '.join(KNOWN_PERSPECTIVES)}",
                            file=file,
                            row=i + 2,
                            column=col,
                        )
            out[col] = values
    return out


def _strip(col: pd.Series) -> pd.Series:
    """Text columns stripped of surrounding spaces; numeric columns unchanged."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col
    return col.astype(str).str.strip()


def read_flows(path: str | Path) -> pd.DataFrame:
    """Read and validate a flow CSV (see :func:`validate_flows` for the checks).

    Raises
    ------
    InputError
        Naming the file, row (header = line 1) and column of the first problem found.
    """
    frame = read_table(path, required=FLOW_COLUMNS)
    return validate_flows(frame, file=path)


# ---------------------------------------------------------------------- results
@dataclass
class AppraisalResults:
    """Result of appraising one stream of costs and benefits.

    Attributes
    ----------
    by_year
        One row per year: ``year_index, costs, benefits, net, discount_factor, pv_costs,
        pv_benefits, pv_net, cumulative_pv_net`` (and ``financial_year`` when known).
    schedule
        The discount schedule used.
    price_base_year
        The price base year of the amounts (e.g. ``"2025-26"``), when stated.
    perspective
        ``fiscal``, ``economic``, ``social`` or ``None``.
    by_item
        PV by ``item`` and ``kind`` when the flows were labelled.
    notes
        Caveats printed beneath the summary.
    """

    by_year: pd.DataFrame
    schedule: DiscountSchedule
    price_base_year: str | None = None
    perspective: str | None = None
    by_item: pd.DataFrame | None = None
    label: str = ""
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ headline values
    @property
    def pv_costs(self) -> float:
        """Present value of costs (£, base-year prices)."""
        return float(self.by_year["pv_costs"].sum())

    @property
    def pv_benefits(self) -> float:
        """Present value of benefits (£, base-year prices)."""
        return float(self.by_year["pv_benefits"].sum())

    @property
    def npsv(self) -> float:
        """Net present social value: PV benefits - PV costs."""
        return self.pv_benefits - self.pv_costs

    @property
    def bcr(self) -> float:
        """Benefit-cost ratio: PV benefits / PV costs (NaN when PV costs are 0)."""
        return self.pv_benefits / self.pv_costs if self.pv_costs != 0 else math.nan

    @property
    def benefit_per_pound(self) -> float:
        """£ of benefit per £1 of cost (the BCR)."""
        return self.bcr

    @property
    def payback_year(self) -> int | None:
        """First ``year_index`` from which the cumulative discounted net flow stays >= 0.

        Counted from the first year with any flow; ``None`` when there are no flows or the
        cumulative discounted net flow is still negative at the horizon.
        """
        cum = self.by_year["cumulative_pv_net"].to_numpy(float)
        active = np.flatnonzero(
            (self.by_year["costs"].to_numpy(float) != 0)
            | (self.by_year["benefits"].to_numpy(float) != 0)
        )
        if active.size == 0 or cum[-1] < 0:
            return None
        negative = np.flatnonzero(cum < 0)
        t = max(int(active[0]), 0 if negative.size == 0 else int(negative[-1]) + 1)
        return int(self.by_year["year_index"].iloc[t])

    @property
    def n_years(self) -> int:
        return len(self.by_year)

    def switching_value(self, param: str = "benefits") -> float:
        """The factor by which all ``benefits`` (or all ``costs``) must be multiplied for NPSV = 0.

        E.g. 0.8 for ``benefits`` means the option stops being worth doing if benefits fall by
        more than 20%.
        """
        if param == "benefits":
            return self.pv_costs / self.pv_benefits if self.pv_benefits != 0 else math.nan
        if param == "costs":
            return self.pv_benefits / self.pv_costs if self.pv_costs != 0 else math.nan
        raise ValueError("param must be 'benefits' or 'costs' for a flow appraisal")

    # ------------------------------------------------------------------ views
    def to_dict(self, *, by_year: bool = True) -> dict[str, Any]:
        """The JSON contract of ``kinship-eval appraise --json``.

        Keys ``pv_costs``, ``pv_benefits``, ``npsv`` and ``bcr`` (``null`` when undefined), then
        ``perspective``, ``discount_schedule``, ``price_base_year``, ``n_years``,
        ``payback_year`` and, unless ``by_year=False``, a ``by_year`` list.
        """
        out: dict[str, Any] = {
            "pv_costs": _clean(self.pv_costs),
            "pv_benefits": _clean(self.pv_benefits),
            "npsv": _clean(self.npsv),
            "bcr": _clean(self.bcr),
            "perspective": self.perspective,
            "discount_schedule": self.schedule.name,
            "price_base_year": self.price_base_year,
            "n_years": self.n_years,
            "payback_year": self.payback_year,
        }
        if by_year:
            out["by_year"] = [
                {k: _clean(v) for k, v in row.items()} for row in self.by_year.to_dict("records")
            ]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Tidy one-row-per-statistic table (``term``, ``estimate``)."""
        rows = [
            ("pv_costs", self.pv_costs),
            ("pv_benefits", self.pv_benefits),
            ("npsv", self.npsv),
            ("bcr", self.bcr),
        ]
        frame = pd.DataFrame(rows, columns=["term", "estimate"])
        frame.insert(0, "perspective", self.perspective)
        frame["discount_schedule"] = self.schedule.name
        frame["price_base_year"] = self.price_base_year
        return frame

    tidy = to_frame

    def summary(self) -> str:
        """A plain-text summary."""
        base = f" ({self.price_base_year} prices)" if self.price_base_year else ""
        head = self.label or "Appraisal"
        if self.perspective:
            head += f" - {self.perspective} perspective"
        payback = self.payback_year
        lines = [
            head,
            f"{'Discount schedule:':<22}{self.schedule.name} ({self.schedule.describe()})",
            f"{'Years appraised:':<22}{self.n_years} (year 0 undiscounted)",
            "",
            f"{'PV costs' + base + ':':<40}£{self.pv_costs:>16,.0f}",
            f"{'PV benefits' + base + ':':<40}£{self.pv_benefits:>16,.0f}",
            f"{'NPSV:':<40}£{self.npsv:>16,.0f}",
            f"{'BCR:':<40}{_fmt_ratio(self.bcr):>17}",
            f"{'Payback year (year_index):':<40}{payback if payback is not None else 'none':>17}",
        ]
        if self.by_item is not None and len(self.by_item):
            lines += ["", "Present values by item"]
            for r in self.by_item.to_dict("records"):
                lines.append(f"  {r['kind']:<8}{r['item']:<36}£{r['pv']:>16,.0f}")
        if self.notes:
            lines += ["", *[f"Note: {n}" for n in self.notes]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _fmt_ratio(x: float) -> str:
    return "undefined" if not math.isfinite(x) else f"{x:.2f}"


# ---------------------------------------------------------------------- appraisal
def appraise(
    flows: pd.DataFrame,
    schedule: DiscountSchedule | str | None = None,
    *,
    price_base_year: str | None = None,
    perspective: str | None = None,
    n_years: int | None = None,
    first_year: str | None = None,
    label: str = "",
) -> AppraisalResults:
    """Appraise a stream of real-price flows with a Green Book discount schedule.

    Parameters
    ----------
    flows
        Flow table (``year_index``, ``kind``, ``amount`` and optionally ``perspective``,
        ``item``); validated with :func:`validate_flows`.
    schedule
        A :class:`DiscountSchedule` or the name of a bundled one; ``standard`` STPR by default.
    price_base_year
        The price base year of the amounts, recorded on the result.
    perspective
        When the flows have a ``perspective`` column, the perspective to appraise. Required when
        the column holds more than one perspective.
    n_years
        Years to report (default: up to the last year with a flow).
    first_year
        Financial year of ``year_index`` 0 (adds a ``financial_year`` column to ``by_year``).
    label
        A title for the summary.

    Returns
    -------
    AppraisalResults
    """
    table = validate_flows(flows, file=label or "flows")
    if perspective is not None and perspective not in KNOWN_PERSPECTIVES:
        raise InputError(
            f"unknown perspective {perspective!r}; use one of {', '.join(KNOWN_PERSPECTIVES)}",
            file=label or "flows",
            column="perspective",
        )
    sched = resolve_schedule(schedule)
    if "perspective" in table.columns:
        present = list(dict.fromkeys(table["perspective"]))
        if perspective is None:
            if len(present) > 1:
                raise InputError(
                    f"the flows hold several perspectives ({', '.join(present)}); choose one",
                    file=label or "flows",
                    column="perspective",
                )
            perspective = present[0]
        elif perspective not in present:
            raise InputError(
                f"no flows for perspective {perspective!r}; found: {', '.join(present)}",
                file=label or "flows",
                column="perspective",
            )
        table = table.loc[table["perspective"] == perspective]

    horizon = int(table["year_index"].max()) + 1 if len(table) else 0
    if n_years is not None:
        if n_years < horizon:
            raise ValueError(f"n_years={n_years} is shorter than the flows ({horizon} years)")
        horizon = n_years
    costs = np.zeros(horizon)
    benefits = np.zeros(horizon)
    is_cost = (table["kind"] == "cost").to_numpy()
    years = table["year_index"].to_numpy()
    amounts = table["amount"].to_numpy(float)
    np.add.at(costs, years[is_cost], amounts[is_cost])
    np.add.at(benefits, years[~is_cost], amounts[~is_cost])

    factors = sched.factors(horizon)
    by_year = pd.DataFrame(
        {
            "year_index": np.arange(horizon, dtype=np.int64),
            "costs": costs,
            "benefits": benefits,
            "net": benefits - costs,
            "discount_factor": factors,
            "pv_costs": costs * factors,
            "pv_benefits": benefits * factors,
        }
    )
    by_year["pv_net"] = by_year["pv_benefits"] - by_year["pv_costs"]
    by_year["cumulative_pv_net"] = by_year["pv_net"].cumsum()
    if first_year is not None:
        by_year.insert(1, "financial_year", [shift_year(first_year, t) for t in range(horizon)])

    by_item = None
    if "item" in table.columns:
        pv = table["amount"].to_numpy(float) * factors[years]
        by_item = (
            pd.DataFrame({"kind": table["kind"].to_numpy(), "item": table["item"], "pv": pv})
            .groupby(["kind", "item"], sort=False, as_index=False)["pv"]
            .sum()
        )
    return AppraisalResults(
        by_year=by_year,
        schedule=sched,
        price_base_year=price_base_year,
        perspective=perspective,
        by_item=by_item,
        label=label,
    )


def appraise_by_perspective(
    flows: pd.DataFrame,
    schedule: DiscountSchedule | str | None = None,
    **kwargs: Any,
) -> dict[str, AppraisalResults]:
    """Appraise each perspective in a flow table separately (in order of first appearance)."""
    table = validate_flows(flows, file=kwargs.get("label") or "flows")
    if "perspective" not in table.columns:
        return {"all": appraise(table, schedule, **kwargs)}
    n_years = kwargs.pop("n_years", None) or int(table["year_index"].max()) + 1
    return {
        p: appraise(table, schedule, perspective=p, n_years=n_years, **kwargs)
        for p in dict.fromkeys(table["perspective"])
    }
