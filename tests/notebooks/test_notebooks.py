"""The analysis notebooks: conventions of the scripts, and each one executed with small parameters.

Every notebook in ``analysis/`` is executed once (module fixture) through
:func:`kinship_eval.notebooks.run_notebooks` with :data:`SMALL_PARAMETERS` into a temporary folder;
each test then checks that its notebook ran without error and shows its key outputs.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupytext")
pytest.importorskip("papermill")
pytest.importorskip("nbconvert")

from kinship_eval.notebooks import (
    SMALL_PARAMETERS,
    NotebookError,
    NotebookRun,
    list_notebooks,
    parse_parameters,
    run_notebooks,
    select_notebooks,
)

ANALYSIS = Path(__file__).resolve().parents[2] / "analysis"
NOTEBOOKS = list_notebooks(ANALYSIS)
#: Notebooks that need a module which may not exist yet: name -> module.
REQUIRES = {"06_design_and_power": "kinship_eval.design.power"}

#: Text each executed notebook must show (in any output), and how many images at least.
EXPECTED: dict[str, tuple[list[str], int]] = {
    "01_data_quality": (
        ["Harmonisation rule", "Combined into one unit", "suppressed", "ILLUSTRATIVE"],
        0,
    ),
    "02_trends_and_timing": (["Alt text:", "Pilot LAs", "paid (illustrative)"], 2),
    "03_primary_impact": (
        ["Estimator:", "wild_bootstrap", "randomization", "Illustrative check"],
        0,
    ),
    "04_robustness_and_sensitivity": (
        ["pre-trend test", "Breakdown value", "4 specifications", "Alt text:"],
        3,
    ),
    "05_cost_benefit": (
        ["benefit per £1", "Monte Carlo: 500 draws", "switching_value", "Alt text:"],
        2,
    ),
    "06_design_and_power": (
        ["nearest-neighbour", "synthetic DiD", "max |SMD|", "Power simulation", "MDE"],
        3,
    ),
}


def _missing_requirement(name: str) -> str | None:
    module = REQUIRES.get(name)
    if module is None:
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return None if found else module


# ------------------------------------------------------------------ the scripts themselves
def test_every_notebook_has_expectations() -> None:
    assert NOTEBOOKS, f"no notebooks found in {ANALYSIS}"
    assert set(NOTEBOOKS) == set(EXPECTED)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_script_has_parameters_cell_and_no_logic(name: str) -> None:
    """A parameters cell for papermill; only calls and displays (no functions, classes, loops)."""
    text = (ANALYSIS / f"{name}.py").read_text(encoding="utf-8")
    assert '# %% tags=["parameters"]' in text
    assert "ILLUSTRATIVE" in text or "illustrative" in text
    tree = ast.parse(text)
    banned = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.For, ast.While)
    found = [type(node).__name__ for node in ast.walk(tree) if isinstance(node, banned)]
    assert not found, f"{name}.py defines or loops ({', '.join(found)}): move it into kinship_eval"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_papermill_reads_every_parameter(name: str, tmp_path: Path) -> None:
    """Each assignment of the parameters cell is one papermill can parse (one line each)."""
    import jupytext
    import papermill

    script = ANALYSIS / f"{name}.py"
    nb = jupytext.read(script, fmt="py:percent")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.id for node in ast.parse(cell.source).body for t in node.targets]
    jupytext.write(nb, tmp_path / f"{name}.ipynb")
    assert list(papermill.inspect_notebook(str(tmp_path / f"{name}.ipynb"))) == assigned


def test_select_and_parse() -> None:
    assert select_notebooks(["03"], NOTEBOOKS) == ["03_primary_impact"]
    assert select_notebooks(["03_primary_impact.py"], NOTEBOOKS) == ["03_primary_impact"]
    with pytest.raises(NotebookError, match="not found"):
        select_notebooks(["99"], NOTEBOOKS)
    assert parse_parameters(["reps=99", "m=[0, 1]", "path=specs/x.yaml"]) == {
        "reps": 99,
        "m": [0, 1],
        "path": "specs/x.yaml",
    }
    with pytest.raises(NotebookError, match="name=value"):
        parse_parameters(["reps"])


def test_unknown_parameter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="not declared"):
        run_notebooks(["03"], out_dir=tmp_path, parameters={"repz": 9}, source_dir=ANALYSIS)
    assert not list(tmp_path.iterdir())


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``kinship-eval notebooks`` (once wired): a bad name or parameter exits 2 without running."""
    from kinship_eval.cli import app, main

    if "notebooks" not in {c.name or c.callback.__name__ for c in app.registered_commands}:
        pytest.skip("the notebooks command is not wired into the CLI yet")
    assert main(["notebooks", "--only", "99"]) == 2
    assert "notebook '99' not found" in capsys.readouterr().err
    assert main(["notebooks", "--only", "03", "--set", "repz=1"]) == 2
    assert "repz not declared" in capsys.readouterr().err


def test_failing_notebook_is_reported(tmp_path: Path) -> None:
    """A cell that raises fails the run, and the executed notebook and HTML still show it."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "01_broken.py").write_text(
        '# %% tags=["parameters"]\nx = 1\n\n# %%\nraise ValueError(f"broken {x}")\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    with pytest.raises(NotebookError, match=r"01_broken: ValueError: broken 2"):
        run_notebooks(out_dir=out, parameters={"x": 2}, source_dir=source, timeout=120)
    assert "broken 2" in (out / "01_broken.html").read_text(encoding="utf-8")
    assert "broken 2" in (out / "01_broken.ipynb").read_text(encoding="utf-8")


# ------------------------------------------------------------------ executed notebooks
@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NotebookRun]:
    runs = run_notebooks(
        [n for n in NOTEBOOKS if _missing_requirement(n) is None],
        out_dir=tmp_path_factory.mktemp("notebooks"),
        parameters=SMALL_PARAMETERS,
        timeout=600,
        source_dir=ANALYSIS,
        jobs=2,
        raise_on_error=False,
    )
    return {r.name: r for r in runs}


def _outputs(notebook: Path) -> tuple[str, int, list[dict[str, Any]]]:
    """All output text of a notebook, its number of images, and its error outputs."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    texts: list[str] = []
    images = 0
    errors = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                errors.append(out)
            texts.append("".join(out.get("text", "")))
            data = out.get("data", {})
            for kind in ("text/plain", "text/markdown", "text/html"):
                texts.append("".join(data.get(kind, "")))
            images += "image/png" in data
    return "\n".join(texts), images, errors


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(executed: dict[str, NotebookRun], name: str) -> None:
    missing = _missing_requirement(name)
    if missing is not None:
        pytest.skip(f"{name} needs {missing}, not available yet")
    run = executed[name]
    assert run.notebook is not None
    assert run.notebook.exists()
    text, images, errors = _outputs(run.notebook)
    assert run.ok, f"{name} failed: {run.error}\n" + "\n".join(
        "\n".join(e.get("traceback", [])) for e in errors
    )
    assert not errors
    assert run.html is not None
    assert run.html.stat().st_size > 10_000
    assert "injected-parameters" in run.notebook.read_text(encoding="utf-8") or not run.parameters
    strings, min_images = EXPECTED[name]
    for s in strings:
        assert s in text, f"{name}: expected output {s!r} not found"
    assert images >= min_images, f"{name}: {images} images, expected at least {min_images}"
