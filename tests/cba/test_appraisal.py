"""Appraisal of flow streams (NPSV, BCR, payback) and the validated flow reader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinship_eval.cba.appraisal import appraise, appraise_by_perspective, read_flows
from kinship_eval.cba.discounting import DiscountSchedule
from kinship_eval.cba.spec import appraise_flows_file
from kinship_eval.errors import InputError


def _flows(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["year_index", "kind", "amount"])


def _write(tmp_path: Path, text: str, name: str = "flows.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- values
def test_hand_computed_appraisal() -> None:
    flows = _flows([(0, "cost", 100.0), (1, "benefit", 60.0), (2, "benefit", 60.0)])
    res = appraise(flows)
    pv_b = 60 / 1.035 + 60 / 1.035**2
    assert res.pv_costs == 100.0
    assert res.pv_benefits == pytest.approx(pv_b, rel=1e-13)
    assert res.npsv == pytest.approx(pv_b - 100, rel=1e-13)
    assert res.bcr == pytest.approx(pv_b / 100, rel=1e-13)
    assert res.payback_year == 2  # cumulative: -100, -42.0, +14.0
    assert res.by_year["cumulative_pv_net"].iloc[-1] == pytest.approx(res.npsv)


def test_annuity_of_benefits_equals_closed_form() -> None:
    n = 20
    flows = _flows([(t, "benefit", 1.0) for t in range(n)] + [(0, "cost", 1.0)])
    res = appraise(flows, "standard")
    closed = (1 - 1.035**-n) / 0.035 * 1.035
    assert res.pv_benefits == pytest.approx(closed, rel=1e-12)
    assert res.bcr == pytest.approx(closed, rel=1e-12)


def test_repeated_rows_add_up_and_year_gaps_are_zero() -> None:
    flows = _flows([(3, "cost", 10.0), (3, "cost", 5.0), (0, "benefit", 1.0)])
    res = appraise(flows, DiscountSchedule.constant(0.0))
    assert res.by_year["costs"].tolist() == [0.0, 0.0, 0.0, 15.0]
    assert res.n_years == 4
    longer = appraise(flows, DiscountSchedule.constant(0.0), n_years=6)
    assert longer.n_years == 6
    assert longer.npsv == res.npsv


def test_no_costs_gives_undefined_bcr_and_json_null() -> None:
    res = appraise(_flows([(0, "benefit", 5.0)]))
    assert math.isnan(res.bcr)
    out = res.to_dict()
    assert out["bcr"] is None
    assert out["pv_benefits"] == 5.0
    assert out["npsv"] == 5.0


def test_payback_never_reached_and_benefits_first() -> None:
    never = appraise(_flows([(0, "cost", 100.0), (5, "benefit", 10.0)]))
    assert never.payback_year is None
    # benefits before costs: the cumulative net dips below zero at year 2 and recovers at year 4
    flows = _flows(
        [(0, "benefit", 10.0), (2, "cost", 30.0), (3, "benefit", 10.0), (4, "benefit", 20.0)]
    )
    res = appraise(flows, DiscountSchedule.constant(0.0))
    assert res.by_year["cumulative_pv_net"].tolist() == [10.0, 10.0, -20.0, -10.0, 10.0]
    assert res.payback_year == 4


def test_switching_values_of_a_flow_appraisal() -> None:
    res = appraise(_flows([(0, "cost", 80.0), (1, "benefit", 100.0)]))
    k = res.switching_value("benefits")
    assert k * res.pv_benefits == pytest.approx(res.pv_costs, rel=1e-13)
    assert res.switching_value("costs") * res.pv_costs == pytest.approx(res.pv_benefits)
    with pytest.raises(ValueError, match="benefits"):
        res.switching_value("effect")


def test_perspectives_must_be_chosen() -> None:
    flows = pd.DataFrame(
        {
            "year_index": [0, 1, 0, 1],
            "kind": ["cost", "benefit", "cost", "benefit"],
            "amount": [100.0, 50.0, 10.0, 50.0],
            "perspective": ["fiscal", "fiscal", "economic", "economic"],
            "item": ["allowance", "savings", "admin", "savings"],
        }
    )
    with pytest.raises(InputError, match="several perspectives"):
        appraise(flows)
    with pytest.raises(InputError, match="no flows for perspective 'social'"):
        appraise(flows, perspective="social")
    by_p = appraise_by_perspective(flows)
    assert list(by_p) == ["fiscal", "economic"]
    assert by_p["economic"].pv_costs == 10.0
    assert by_p["fiscal"].npsv == pytest.approx(50 / 1.035 - 100)
    items = by_p["fiscal"].by_item.set_index("item")["pv"]
    assert items["savings"] == pytest.approx(50 / 1.035)


def test_views_share_the_headline_numbers() -> None:
    res = appraise(
        _flows([(0, "cost", 10.0), (2, "benefit", 30.0)]),
        price_base_year="2025-26",
        first_year="2025-26",
        label="test",
    )
    frame = res.to_frame().set_index("term")["estimate"]
    assert frame["npsv"] == res.npsv
    assert frame["bcr"] == res.bcr
    assert res.by_year["financial_year"].tolist() == ["2025-26", "2026-27", "2027-28"]
    text = res.summary()
    assert "2025-26 prices" in text
    assert "BCR" in text
    assert json.loads(json.dumps(res.to_dict()))["price_base_year"] == "2025-26"


# ---------------------------------------------------------------------- the flow reader
def test_read_flows_accepts_a_good_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'year_index,kind,amount\n0, Cost ,"£1,000"\n1,benefit,600.5\n2,benefit,-10\n',
    )
    flows = read_flows(path)
    assert flows["kind"].tolist() == ["cost", "benefit", "benefit"]
    assert flows["amount"].tolist() == [1000.0, 600.5, -10.0]
    assert flows["year_index"].dtype == np.int64


@pytest.mark.parametrize(
    ("text", "row", "column", "message"),
    [
        ("year,kind,amount\n0,cost,1\n", None, "year_index", "required column missing"),
        ("year_index,kind\n0,cost\n", None, "amount", "required column missing"),
        ("year_index,kind,amount\n0,cost,1\nx,cost,1\n", 3, "year_index", "whole number"),
        ("year_index,kind,amount\n1.5,cost,1\n", 2, "year_index", "whole number"),
        ("year_index,kind,amount\n0,cost,1\n-1,benefit,2\n", 3, "year_index", "0 or more"),
        ("year_index,kind,amount\n0,saving,1\n", 2, "kind", "'cost' or 'benefit'"),
        ("year_index,kind,amount\n0,cost,ten\n", 2, "amount", "must be a number"),
        ("year_index,kind,amount\n0,cost,\n", 2, "amount", "must be a number"),
    ],
)
def test_read_flows_bad_input(
    tmp_path: Path, text: str, row: int | None, column: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        read_flows(path)
    assert err.value.file == str(path)
    assert err.value.row == row
    assert err.value.column == column


def test_read_flows_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no rows"):
        read_flows(_write(tmp_path, "year_index,kind,amount\n"))
    with pytest.raises(InputError, match="not found"):
        read_flows(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="semicolons"):
        read_flows(_write(tmp_path, "year_index;kind;amount\n0;cost;1\n"))


def test_in_memory_flows_are_validated_too() -> None:
    with pytest.raises(InputError, match="0 or more") as err:
        appraise(_flows([(0, "cost", 1.0), (-2, "benefit", 1.0)]))
    assert err.value.row == 3
    with pytest.raises(InputError, match="must be a number"):
        appraise(_flows([(0, "cost", float("inf"))]))


# ---------------------------------------------------------------------- the CLI entry point
def test_appraise_flows_file_json_contract(tmp_path: Path) -> None:
    path = _write(tmp_path, "year_index,kind,amount\n0,cost,100\n1,benefit,103.5\n")
    out = appraise_flows_file(path)
    assert {"pv_costs", "pv_benefits", "npsv", "bcr"} <= set(out)
    assert out["pv_costs"] == 100.0
    assert out["pv_benefits"] == pytest.approx(100.0, rel=1e-12)
    assert out["npsv"] == pytest.approx(0.0, abs=1e-9)
    assert out["bcr"] == pytest.approx(1.0, rel=1e-12)
    assert out["discount_schedule"] == "standard"
    json.dumps(out)  # serialisable


def test_appraise_flows_file_with_perspectives(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "year_index,kind,amount,perspective\n0,cost,100,economic\n1,benefit,207,economic\n"
        "0,cost,200,fiscal\n1,benefit,103.5,fiscal\n",
    )
    out = appraise_flows_file(path)
    assert out["perspective"] == "economic"
    assert out["bcr"] == pytest.approx(2.0, rel=1e-12)
    assert out["perspectives"]["fiscal"]["bcr"] == pytest.approx(0.5, rel=1e-12)
    fiscal = appraise_flows_file(path, perspective="fiscal", schedule="health")
    assert fiscal["pv_benefits"] == pytest.approx(103.5 / 1.015, rel=1e-12)
