"""The Spec model: YAML loading, overrides and clear errors."""

from __future__ import annotations

import pytest

from kinship_eval.errors import SpecError
from kinship_eval.spec import apply_override, build_spec, load_spec
from tests.conftest import REPO


def test_primary_spec_loads():
    spec = load_spec(REPO / "analysis" / "specs" / "primary.yaml")
    assert spec.estimator == "twfe"
    assert spec.outcome == "sgo_exits_per_10k"
    assert spec.illustrative.enabled


def test_overrides_reach_nested_fields():
    spec = load_spec(
        REPO / "analysis" / "specs" / "primary.yaml",
        ["illustrative.effect=0.5", "harmonisation=drop", "covariates=[a, b]"],
    )
    assert spec.illustrative.effect == 0.5
    assert spec.harmonisation == "drop"
    assert spec.covariates == ("a", "b")


def test_unknown_field_names_the_field():
    with pytest.raises(SpecError, match="field 'estimatr': unknown field"):
        build_spec({"estimatr": "twfe"})


def test_bad_value_lists_valid_values():
    with pytest.raises(SpecError) as err:
        build_spec({"harmonisation": "split"})
    assert "field 'harmonisation'" in str(err.value)
    assert "'aggregate'" in str(err.value)
    assert "'drop'" in str(err.value)


def test_period_end_must_follow_start():
    with pytest.raises(SpecError, match="period_end"):
        build_spec({"period_start": 2020, "period_end": 2019})


def test_override_syntax_error():
    with pytest.raises(SpecError, match="key=value"):
        apply_override({}, "estimator")


def test_digest_changes_with_spec():
    assert build_spec({}).digest() != build_spec({"anticipation": 1}).digest()
    assert build_spec({}).digest() == build_spec({}).digest()


def test_relative_data_paths_resolve_against_spec_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    spec_file = tmp_path / "sub" / "s.yaml"
    spec_file.write_text("data:\n  pilot_register: ../pilot.csv\n")
    spec = load_spec(spec_file)
    assert spec.data.pilot_register == (tmp_path / "pilot.csv").resolve()


def test_missing_and_malformed_spec_files(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("estimator: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
