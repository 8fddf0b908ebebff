"""Execute the analysis notebooks and export them as HTML.

The notebooks live in ``analysis/`` as jupytext percent scripts (``NN_name.py``), the reviewed
source. :func:`run_notebooks` converts each script to a notebook with jupytext, executes it with
papermill (injecting parameters after its ``parameters`` cell, with ``analysis/`` as the working
folder) into ``OUT/NN_name.ipynb`` and exports ``OUT/NN_name.html`` with nbconvert. A notebook that
fails is still written (with its traceback) and exported, so the HTML shows where it stopped.

``make notebooks`` runs them all with their default parameters; ``make test`` runs them with
:data:`SMALL_PARAMETERS` (``kinship-eval notebooks --small``), which keep every notebook's code
path but use few replications and a small specification grid.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kinship_eval.errors import KinshipEvalError

#: Default folder for the executed notebooks and their HTML.
DEFAULT_OUT = Path("reports/build/notebooks")
#: Jupyter kernel the notebooks run in (ipykernel's own, available wherever ipykernel is).
KERNEL_NAME = "python3"
#: Default time limit of one cell, in seconds.
DEFAULT_TIMEOUT = 1800.0
#: Notebook scripts: two digits, an underscore, a name (``01_data_quality.py``).
NOTEBOOK_PATTERN = "[0-9][0-9]_*.py"

#: Quick-check parameters (``--small`` and the test suite): every notebook still runs every step,
#: with fewer replications and draws, two HonestDiD values, two robustness estimators, a
#: four-member grid and 20 placebo pilots per power design.
#: Each notebook receives only the parameters its ``parameters`` cell declares.
SMALL_PARAMETERS: dict[str, Any] = {
    "reps": 99,
    "honest_m_values": [0.5, 1.0],
    "robustness_estimators": ["twfe", "imputation"],
    "robustness_outcomes": ["kinship_exits_per_10k"],
    "grid_path": "specs/notebook_small.yaml",
    "grid_jobs": 1,
    "grid_cache_dir": None,
    "mc_draws": 500,
    "power_reps": 20,
    "power_bootstrap_reps": 99,
    "power_jobs": 1,
}


class NotebookError(KinshipEvalError):
    """A notebook could not be found, parameterised or executed."""


@dataclass
class NotebookRun:
    """What happened to one notebook.

    Attributes
    ----------
    name
        The notebook's name (its script's stem, e.g. ``03_primary_impact``).
    notebook, html
        The executed notebook and its HTML export (``None`` when nothing could be written).
    seconds
        Wall time of the conversion, execution and export.
    parameters
        The parameters injected.
    error
        ``None`` when every cell ran; otherwise the error, in one line.
    """

    name: str
    notebook: Path | None
    html: Path | None
    seconds: float
    parameters: dict[str, Any]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def notebook_dir(source_dir: str | Path | None = None) -> Path:
    """The folder of the notebook scripts: ``source_dir``, else ``./analysis``, else the
    ``analysis/`` folder beside the package (an editable install of the repository)."""
    if source_dir is not None:
        folder = Path(source_dir)
        if not folder.is_dir():
            raise NotebookError(f"notebook folder {folder} not found")
        return folder
    for folder in (Path.cwd() / "analysis", Path(__file__).resolve().parents[1] / "analysis"):
        if any(folder.glob(NOTEBOOK_PATTERN)):
            return folder
    raise NotebookError(
        "no analysis notebooks found in ./analysis or beside the package; pass source_dir"
    )


def list_notebooks(source_dir: str | Path | None = None) -> list[str]:
    """Names of the notebooks, in order (``01_data_quality``, ``02_trends_and_timing``, ...)."""
    return sorted(p.stem for p in notebook_dir(source_dir).glob(NOTEBOOK_PATTERN))


def select_notebooks(names: Iterable[str] | None, available: Sequence[str]) -> list[str]:
    """Resolve names or number prefixes (``"03"``, ``"03_primary_impact"``) to notebook names."""
    if names is None:
        return list(available)
    chosen: list[str] = []
    for name in names:
        stem = Path(name).stem
        hits = [a for a in available if a == stem or a.startswith(f"{stem}_")]
        if len(hits) != 1:
            raise NotebookError(
                f"notebook {name!r} {'is ambiguous' if hits else 'not found'}; "
                f"available: {', '.join(available)}"
            )
        if hits[0] not in chosen:
            chosen.append(hits[0])
    return chosen


def parse_parameters(items: Iterable[str]) -> dict[str, Any]:
    """``name=value`` strings to a dict; each value is read as YAML (``reps=99``, ``m=[0, 1]``)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise NotebookError(f"parameter {item!r}: expected name=value")
        try:
            out[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise NotebookError(f"parameter {item!r}: value is not valid YAML: {exc}") from None
    return out


def _to_ipynb(script: Path, target: Path) -> None:
    import jupytext
    import nbformat

    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, target)


def _declared(ipynb: Path) -> dict[str, Any]:
    import papermill

    return dict(papermill.inspect_notebook(str(ipynb)))


def _export_html(ipynb: Path, html: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(ipynb))
    tmp = html.with_name(html.name + ".partial")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html)


def _error_line(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        cell = getattr(exc, "exec_count", None)
        where = f" (cell [{cell}])" if cell is not None else ""
        return f"{ename}: {evalue}{where}".splitlines()[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _execute(
    name: str,
    ipynb: Path,
    out: Path,
    parameters: dict[str, Any],
    cwd: Path,
    timeout: float | None,
    html: bool,
) -> NotebookRun:
    """Execute one prepared notebook into ``out`` and export it; never raises."""
    import papermill

    start = time.perf_counter()
    executed = out / f"{name}.ipynb"
    page = out / f"{name}.html"
    for stale in (executed, page):
        stale.unlink(missing_ok=True)
    error = None
    try:
        papermill.execute_notebook(
            str(ipynb),
            str(executed),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            execution_timeout=timeout,
        )
    except Exception as exc:  # the executed notebook keeps the traceback
        error = _error_line(exc)
    if html and executed.exists():
        try:
            _export_html(executed, page)
        except Exception as exc:
            error = error or f"HTML export failed: {_error_line(exc)}"
    return NotebookRun(
        name=name,
        notebook=executed if executed.exists() else None,
        html=page if page.exists() else None,
        seconds=time.perf_counter() - start,
        parameters=parameters,
        error=error,
    )


def run_notebooks(
    names: Iterable[str] | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    source_dir: str | Path | None = None,
    jobs: int = 1,
    html: bool = True,
    raise_on_error: bool = True,
    on_done: Callable[[NotebookRun], None] | None = None,
) -> list[NotebookRun]:
    """Execute notebooks into ``out_dir`` (``NAME.ipynb``) and export them (``NAME.html``).

    Parameters
    ----------
    names
        Notebook names or number prefixes (``"03"``); ``None`` runs every notebook, in order.
    out_dir
        Output folder (created).
    parameters
        Values injected after each notebook's ``parameters`` cell; a notebook receives only those
        it declares, and a name no notebook in the folder declares is an error.
    timeout
        Time limit of one cell, in seconds (``None``: no limit).
    source_dir
        Folder of the notebook scripts (default: see :func:`notebook_dir`); it is also the
        working folder of the kernel, so notebooks name specs as ``specs/primary.yaml``.
    jobs
        Notebooks executed at the same time (each in its own process and kernel).
    html
        Export each executed notebook as HTML.
    raise_on_error
        Raise :class:`NotebookError` after the last notebook when any failed.
    on_done
        Called with each :class:`NotebookRun` as it finishes (for progress output).

    Returns
    -------
    list of NotebookRun
        One per notebook, in order.
    """
    source = notebook_dir(source_dir).resolve()
    chosen = select_notebooks(names, list_notebooks(source))
    out = Path(out_dir).resolve()  # papermill runs in `source`: relative paths would move
    given = dict(parameters or {})
    results: dict[str, NotebookRun] = {}
    with tempfile.TemporaryDirectory(prefix="kinship-eval-nb-") as tmp:
        prepared: dict[str, tuple[Path, dict[str, Any]]] = {}
        known: set[str] = set()
        for name in list_notebooks(source):
            ipynb = Path(tmp) / f"{name}.ipynb"
            _to_ipynb(source / f"{name}.py", ipynb)
            declared = _declared(ipynb)
            known |= set(declared)
            if name in chosen:
                prepared[name] = (ipynb, {k: v for k, v in given.items() if k in declared})
        unknown = set(given) - known
        if unknown:
            raise NotebookError(
                f"parameter(s) {', '.join(sorted(unknown))} not declared by any notebook in "
                f"{source}; declared: {', '.join(sorted(known))}"
            )
        out.mkdir(parents=True, exist_ok=True)
        tasks = [(name, *prepared[name]) for name in chosen]
        if jobs <= 1 or len(tasks) <= 1:
            for name, ipynb, params in tasks:
                results[name] = _execute(name, ipynb, out, params, source, timeout, html)
                if on_done is not None:
                    on_done(results[name])
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # papermill changes the working folder of its process: one process per notebook
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=context) as pool:
                futures = [
                    pool.submit(_execute, name, ipynb, out, params, source, timeout, html)
                    for name, ipynb, params in tasks
                ]
                for future in as_completed(futures):
                    run = future.result()
                    results[run.name] = run
                    if on_done is not None:
                        on_done(run)
    runs = [results[name] for name in chosen]
    failed = [r for r in runs if not r.ok]
    if failed and raise_on_error:
        raise NotebookError(
            "notebook(s) failed:\n"
            + "\n".join(f"{r.name}: {r.error} (see {r.html or r.notebook or out})" for r in failed)
        )
    return runs


__all__ = [
    "DEFAULT_OUT",
    "SMALL_PARAMETERS",
    "NotebookError",
    "NotebookRun",
    "list_notebooks",
    "notebook_dir",
    "parse_parameters",
    "run_notebooks",
    "select_notebooks",
]
