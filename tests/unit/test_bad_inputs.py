"""One test per kind of bad input: each gives an InputError naming file, row and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kinship_eval.data.measures import read_measures
from kinship_eval.data.panel import assemble, attach_treatment
from kinship_eval.data.pilot import first_full_year, read_comparison_register, read_pilot_register
from kinship_eval.data.tables import read_table
from kinship_eval.errors import InputError

HEADER = "period,la_code,old_la_code,la_name,measure,value,status,source\n"


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_missing_column(tmp_path):
    path = _write(tmp_path, "m.csv", "period,la_code,measure,value\n2020,E06000001,sgo_exits,3\n")
    with pytest.raises(InputError) as err:
        read_measures(path)
    assert err.value.column == "status"
    assert err.value.file == str(path)


def test_wrong_type(tmp_path):
    path = _write(
        tmp_path,
        "m.csv",
        HEADER
        + "2020,E06000001,801,One,sgo_exits,3,published,t\n"
        + "2021,E06000001,801,One,sgo_exits,three,published,t\n",
    )
    with pytest.raises(InputError) as err:
        read_measures(path)
    assert (err.value.row, err.value.column) == (3, "value")
    assert "three" in str(err.value)


def test_unknown_la_code(tmp_path, geography):
    path = _write(
        tmp_path, "m.csv", HEADER + "2020,E06000999,801,Nowhere,sgo_exits,3,published,t\n"
    )
    with pytest.raises(InputError) as err:
        read_measures(path, geography)
    assert (err.value.row, err.value.column) == (2, "la_code")


def test_malformed_la_code(tmp_path):
    path = _write(tmp_path, "m.csv", HEADER + "2020,E0600001,801,Short,sgo_exits,3,published,t\n")
    with pytest.raises(InputError) as err:
        read_measures(path)
    assert (err.value.row, err.value.column) == (2, "la_code")


def test_retired_la_code_in_pilot_register(tmp_path, geography):
    path = _write(tmp_path, "p.csv", "la_code,start_date\nE06000028,2026-04-01\n")
    with pytest.raises(InputError, match="retired LA code") as err:
        read_pilot_register(path, geography)
    assert (err.value.row, err.value.column) == (2, "la_code")


def test_duplicate_key(tmp_path):
    path = _write(
        tmp_path,
        "m.csv",
        HEADER
        + "2020,E06000001,801,One,sgo_exits,3,published,t\n"
        + "2020,E06000001,801,One,sgo_exits,4,published,t\n",
    )
    with pytest.raises(InputError, match="duplicate") as err:
        read_measures(path)
    assert err.value.row in (2, 3)


def test_duplicate_pilot_la(tmp_path):
    path = _write(
        tmp_path, "p.csv", "la_code,start_date\nE06000001,2026-04-01\nE06000001,2026-04-01\n"
    )
    with pytest.raises(InputError, match="duplicate") as err:
        read_pilot_register(path)
    assert err.value.column == "la_code"


def test_negative_count(tmp_path):
    path = _write(tmp_path, "m.csv", HEADER + "2020,E06000001,801,One,sgo_exits,-2,published,t\n")
    with pytest.raises(InputError, match="negative") as err:
        read_measures(path)
    assert (err.value.row, err.value.column) == (2, "value")


def test_symbol_value_with_published_status_is_rejected(tmp_path):
    path = _write(tmp_path, "m.csv", HEADER + "2020,E06000001,801,One,sgo_exits,,published,t\n")
    with pytest.raises(InputError, match="published"):
        read_measures(path)


def test_pilot_start_outside_the_panel(geography):
    frame = pd.DataFrame(
        {
            "la_code": ["E06000001", "E06000001", "E06000002", "E06000002"],
            "period": [2020, 2021, 2020, 2021],
        }
    )
    register = pd.DataFrame({"la_code": ["E06000001"], "first_treated_period": [2027]})
    with pytest.raises(InputError, match="pilot start outside the panel") as err:
        attach_treatment(frame, register, source="pilot.csv")
    assert (err.value.file, err.value.row, err.value.column) == ("pilot.csv", 2, "start_date")
    register_first = pd.DataFrame({"la_code": ["E06000001"], "first_treated_period": [2020]})
    with pytest.raises(InputError, match="pilot start outside the panel"):
        attach_treatment(frame, register_first)


def test_empty_file(tmp_path):
    path = _write(tmp_path, "m.csv", "")
    with pytest.raises(InputError, match="empty") as err:
        read_measures(path)
    assert err.value.file == str(path)


def test_header_only_file(tmp_path):
    path = _write(tmp_path, "p.csv", "la_code,start_date\n")
    with pytest.raises(InputError, match="no rows"):
        read_pilot_register(path)


def test_wrong_delimiter(tmp_path):
    path = _write(tmp_path, "p.csv", "la_code;start_date\nE06000001;2026-04-01\n")
    with pytest.raises(InputError, match="semicolons") as err:
        read_table(path)
    assert err.value.row == 1


def test_wrong_encoding(tmp_path):
    path = _write(
        tmp_path, "p.csv", "la_code,la_name,start_date\nE06000001,Caf\u00e9,2026-04-01\n", "cp1252"
    )
    with pytest.raises(InputError, match="not UTF-8") as err:
        read_pilot_register(path)
    assert err.value.row == 2


def test_bad_date_in_pilot_register(tmp_path):
    path = _write(tmp_path, "p.csv", "la_code,start_date\nE06000001,next spring\n")
    with pytest.raises(InputError, match="not a date") as err:
        read_pilot_register(path)
    assert (err.value.row, err.value.column) == (2, "start_date")


def test_bad_flag_in_comparison_register(tmp_path):
    path = _write(
        tmp_path,
        "c.csv",
        "la_code,pays_kinship_allowance_at_fostering_rates\nE06000001,true\nE06000002,maybe\n",
    )
    with pytest.raises(InputError, match="true/false") as err:
        read_comparison_register(path)
    assert (err.value.row, err.value.column) == (3, "pays_kinship_allowance_at_fostering_rates")


def test_comparison_register_flags_become_booleans(tmp_path):
    path = _write(
        tmp_path,
        "c.csv",
        "la_code,pays_kinship_allowance_at_fostering_rates\nE06000001,yes\nE06000002,0\n",
    )
    frame = read_comparison_register(path)
    assert frame["pays_kinship_allowance_at_fostering_rates"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-04-01", 2027),  # first day of the year ending 31 March 2027
        ("2026-02-27", 2027),  # part-year before it is anticipation, not treatment
        ("2026-04-02", 2028),  # not a full year of payments in 2026-27
        ("2025-11-01", 2027),
    ],
)
def test_first_full_year_rule(start, expected):
    assert first_full_year(pd.Timestamp(start)) == expected


def test_explicit_first_treated_period_overrides_rule(tmp_path):
    path = _write(
        tmp_path,
        "p.csv",
        "la_code,start_date,first_treated_period\nE06000001,2026-04-01,2026\nE06000002,2026-04-01,\n",
    )
    frame = read_pilot_register(path)
    assert frame["first_treated_period"].tolist() == [2026, 2027]


def test_assemble_rejects_empty_period_range(geography):
    m = pd.DataFrame(
        {
            "period": [2020],
            "la_code": ["E06000001"],
            "measure": ["sgo_exits"],
            "value": [1.0],
            "status": ["published"],
        }
    )
    with pytest.raises(InputError, match="period range"):
        assemble(m, geography, periods=(2000, 2005))
