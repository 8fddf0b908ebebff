"""The ``kinship-eval`` command line.

Errors are printed as at most a few clear lines on stderr with a non-zero exit code, never a
traceback (set ``KINSHIP_EVAL_DEBUG=1`` to see one).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kinship_eval.errors import KinshipEvalError

app = typer.Typer(
    name="kinship-eval",
    help="Evaluate the kinship allowance pilot: data, difference-in-differences, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from kinship_eval.did.estimate import ESTIMATORS, INFERENCE_METHODS  # noqa: E402

HONEST_METHODS = ("smoothness", "relative_magnitude")


@app.command()
def run(
    spec: Annotated[Path, typer.Option(help="YAML specification of the analysis.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a spec field: key=value (repeatable)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the report.")] = Path(
        "reports/build"
    ),
) -> None:
    """Run the evaluation a spec describes and write the report into OUT."""
    from kinship_eval.pipeline import run as run_pipeline
    from kinship_eval.pipeline import write_outputs
    from kinship_eval.spec import load_spec

    parsed = load_spec(spec, tuple(set_ or ()))
    results = run_pipeline(parsed)
    written = write_outputs(results, out)
    est = results.estimate
    typer.echo(
        f"{parsed.name}: {est.estimator} ATT on {parsed.outcome} = {est.att:.3f} "
        f"(95% CI {est.ci_low:.3f} to {est.ci_high:.3f})"
        + (" [illustrative pilot years]" if results.illustrative else "")
    )
    typer.echo(f"wrote {len(written)} files to {out}/ (report: {out / 'report.html'})")


@app.command()
def panel(
    spec: Annotated[Path, typer.Option(help="YAML specification (data, periods, harmonisation).")],
    out: Annotated[Path, typer.Option(help="CSV file to write the panel to.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: key=value.")] = None,
) -> None:
    """Build the LA x year panel a spec describes and write it as CSV."""
    from kinship_eval.pipeline import build_panel
    from kinship_eval.spec import load_spec

    built, _ = build_panel(load_spec(spec, tuple(set_ or ())))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    built.frame.to_csv(tmp, index=False)
    tmp.replace(out)
    typer.echo(f"wrote {len(built.frame)} rows ({built.frame['la_code'].nunique()} LAs) to {out}")


@app.command()
def estimate(
    data: Annotated[Path, typer.Option(help="Long panel CSV: one row per unit and period.")],
    unit: Annotated[str, typer.Option(help="Unit (LA) column.")],
    time: Annotated[str, typer.Option(help="Period column.")],
    outcome: Annotated[str, typer.Option(help="Outcome column.")],
    first_treated: Annotated[
        str, typer.Option(help="First treated period column (0 or empty = never treated).")
    ],
    estimator: Annotated[str, typer.Option(help="One of: " + ", ".join(ESTIMATORS) + ".")] = (
        "twfe"
    ),
    control_group: Annotated[
        str, typer.Option(help="never_treated or not_yet_treated (staggered estimators).")
    ] = "never_treated",
    covariates: Annotated[str, typer.Option(help="Comma-separated covariate columns.")] = "",
    inference: Annotated[
        str | None,
        typer.Option(help="One of: " + ", ".join(INFERENCE_METHODS) + " (default: estimator's)."),
    ] = None,
    reps: Annotated[int, typer.Option(help="Replications for resampling inference.")] = 999,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    strata: Annotated[
        str | None, typer.Option(help="Column to stratify randomization inference within.")
    ] = None,
    honest: Annotated[
        str | None,
        typer.Option(help="HonestDiD restriction: smoothness or relative_magnitude."),
    ] = None,
    honest_m: Annotated[
        str, typer.Option(help="Comma-separated M (smoothness) or M-bar values.")
    ] = "0,0.5,1,1.5,2",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit one estimator on any long panel CSV."""
    from kinship_eval.data.tables import read_csv_frame
    from kinship_eval.did.estimate import fit_with_inference

    if estimator not in ESTIMATORS:
        raise typer.BadParameter(
            f"{estimator!r}; choose one of {', '.join(ESTIMATORS)}", param_hint="--estimator"
        )
    if honest is not None and honest not in HONEST_METHODS:
        raise typer.BadParameter(
            f"{honest!r}; choose one of {', '.join(HONEST_METHODS)}", param_hint="--honest"
        )
    if honest is not None and estimator not in ("event_study", "cs"):
        raise typer.BadParameter(
            "HonestDiD needs an event study with its covariance: use --estimator event_study or cs",
            param_hint="--honest",
        )
    m_values = _floats(honest_m, "--honest-m")
    options = {"base_period": "universal"} if honest is not None and estimator == "cs" else {}
    frame = read_csv_frame(data)
    result = fit_with_inference(
        estimator,
        frame,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        inference=inference,
        control_group=control_group,
        covariates=tuple(c for c in covariates.split(",") if c),
        reps=reps,
        seed=seed,
        strata=strata,
        source=str(data),
        **options,
    )
    payload = result.to_dict()
    if honest is not None:
        from kinship_eval.did.pretrends import event_study_inputs, honest_did

        beta, sigma, num_pre, num_post = event_study_inputs(result)
        sensitivity = honest_did(
            beta,
            sigma,
            num_pre,
            num_post,
            method=honest,
            m_values=m_values,  # type: ignore[arg-type]
        )
        payload["honest"] = sensitivity.records()
        payload["honest_method"] = honest
        payload["honest_breakdown"] = sensitivity.to_dict().get("breakdown")
    if json_out:
        typer.echo(json.dumps(payload))
    else:
        typer.echo(result.summary())
        if honest is not None:
            typer.echo("")
            typer.echo(sensitivity.summary())


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of numbers", param_hint=option
        ) from None


@app.command()
def grid(
    spec: Annotated[
        Path, typer.Option(help="Grid YAML: base spec, fixed overrides, varied fields.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder (results CSV, curve, cache).")] = Path(
        "reports/build/grid"
    ),
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override every member: key=value.")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel workers (-1: all cores).")] = -1,
    backend: Annotated[
        str, typer.Option(help="joblib backend: loky, threading, or dask (needs a cluster).")
    ] = "loky",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, with --backend dask.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ignore cached results.")] = False,
) -> None:
    """Run every specification of a grid in parallel and draw the specification curve."""
    import time as _time

    from kinship_eval.grid import load_grid, run_grid, write_grid_outputs

    members = load_grid(spec, tuple(set_ or ()))
    start = _time.perf_counter()
    client = None
    if backend == "dask":
        from dask.distributed import Client

        client = Client(scheduler) if scheduler else Client(processes=False)
    try:
        results = run_grid(
            members,
            cache_dir=None if no_cache else out / "cache",
            n_jobs=jobs,
            backend=backend,
        )
    finally:
        if client is not None:
            client.close()
    written = write_grid_outputs(results, out)
    elapsed = _time.perf_counter() - start
    ok = results["status"].eq("ok")
    typer.echo(
        f"{len(results)} specifications ({int(ok.sum())} estimated, "
        f"{int(results['cached'].eq(True).sum())} from cache, {int((~ok).sum())} not estimable) "
        f"in {elapsed:.1f} s; wrote {', '.join(p.name for p in written)} to {out}/"
    )


@app.command()
def compare(
    spec_a: Annotated[Path, typer.Argument(help="First spec (A).")],
    spec_b: Annotated[Path, typer.Argument(help="Second spec (B).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """Show two specs and their primary estimates side by side."""
    from kinship_eval.grid import compare_specs
    from kinship_eval.spec import load_spec

    table = compare_specs(load_spec(spec_a), load_spec(spec_b))
    if json_out:
        typer.echo(table.to_json(orient="records"))
    else:
        typer.echo(f"A = {spec_a}\nB = {spec_b}\n")
        typer.echo(table.to_string(index=False))


@app.command()
def power(
    spec: Annotated[Path, typer.Option(help="YAML power specification.")] = Path(
        "analysis/specs/power.yaml"
    ),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: key=value.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the power tables and figures.")] = Path(
        "reports/build/power"
    ),
    jobs: Annotated[
        int, typer.Option("--jobs", help="Parallel workers (1 = none, -1 = all cores).")
    ] = -1,
    progress: Annotated[bool, typer.Option(help="Progress bar (only on a terminal).")] = True,
) -> None:
    """Simulate power and minimum detectable effects of the pilot design on the real panel."""
    from kinship_eval.design import run_power

    result = run_power(spec, tuple(set_ or ()), n_jobs=jobs, progress=progress)
    written = result.write(out)
    typer.echo(result.summary())
    typer.echo(f"wrote {len(written)} files to {out}/ (MDE table: {out / 'power_mde.csv'})")


@app.command()
def notebooks(
    small: Annotated[
        bool, typer.Option("--small", help="Small parameters (few replications, a small grid).")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run this notebook only, by name or number (repeatable)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Notebook parameter: name=value, value as YAML (repeatable)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the notebooks and HTML.")] = Path(
        "reports/build/notebooks"
    ),
    jobs: Annotated[int, typer.Option(help="Notebooks executed at the same time.")] = 1,
    timeout: Annotated[float, typer.Option(help="Time limit of one cell, in seconds.")] = 1800,
) -> None:
    """Execute the analysis notebooks (analysis/NN_*.py) and export each as HTML into OUT."""
    from kinship_eval.notebooks import (
        SMALL_PARAMETERS,
        NotebookRun,
        parse_parameters,
        run_notebooks,
    )

    def report(run: NotebookRun) -> None:
        status = "ok" if run.ok else f"FAILED: {run.error}"
        typer.echo(f"{run.name}: {status} ({run.seconds:.1f} s) -> {run.html or run.notebook}")

    parameters = {**(SMALL_PARAMETERS if small else {}), **parse_parameters(set_ or ())}
    runs = run_notebooks(
        only or None,
        out_dir=out,
        parameters=parameters,
        timeout=timeout,
        jobs=jobs,
        raise_on_error=False,
        on_done=report,
    )
    failed = [r.name for r in runs if not r.ok]
    if failed:
        typer.echo(f"error: {len(failed)} notebook(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"wrote {len(runs)} notebooks and their HTML to {out}/")


@app.command()
def appraise(
    flows: Annotated[Path, typer.Option(help="CSV of year_index, kind (cost|benefit), amount.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    schedule: Annotated[str, typer.Option(help="Discount schedule: standard or health.")] = (
        "standard"
    ),
) -> None:
    """Appraise a stream of real-price flows with the Green Book discount schedule."""
    from kinship_eval.cba import appraise_flows_file
    from kinship_eval.cba.appraisal import appraise as appraise_flows
    from kinship_eval.cba.appraisal import read_flows

    if json_out:
        typer.echo(json.dumps(appraise_flows_file(flows, schedule=schedule)))
    else:
        typer.echo(appraise_flows(read_flows(flows), schedule).summary())


@app.command()
def cba(
    spec: Annotated[Path, typer.Option(help="YAML CBA specification.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: key=value.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write the CBA tables to.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the full Green Book appraisal of the pilot."""
    from kinship_eval.cba import run_cba

    result = run_cba(spec, tuple(set_ or ()))
    if out is not None:
        written = result.write(out)
        typer.echo(f"wrote {len(written)} files to {out}/", err=json_out)
    typer.echo(json.dumps(result.to_dict()) if json_out else result.summary())


# ----------------------------------------------------------------------------- episodes
episodes_app = typer.Typer(
    help="Child-level SSDA903 episodes: synthetic data, the quarter panel, matched analysis.",
    no_args_is_help=True,
)
app.add_typer(episodes_app, name="episodes")


@episodes_app.command("simulate")
def episodes_simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the SYNTHETIC returns to.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    scale: Annotated[float, typer.Option(help="1 = national scale.")] = 1.0,
    first_year: Annotated[int, typer.Option(help="First return year (ending 31 March).")] = 2020,
    last_year: Annotated[int, typer.Option(help="Last return year.")] = 2029,
    effect: Annotated[float, typer.Option(help="Injected allowance effect (probability).")] = 0.0,
    layout: Annotated[str, typer.Option(help="folders (LA_CODE/YEAR/) or stacked.")] = "stacked",
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write a seeded synthetic SSDA903 data set (clearly marked SYNTHETIC)."""
    from kinship_eval.episodes import simulate_ssda903

    if layout not in ("folders", "stacked") or file_format not in ("csv", "parquet"):
        raise KinshipEvalError("--layout must be folders or stacked; --format csv or parquet")
    sim = simulate_ssda903(
        seed=seed, scale=scale, first_year=first_year, last_year=last_year, effect=effect
    )
    sim.write(out, layout=layout, file_format=file_format)  # type: ignore[arg-type]
    typer.echo(sim.summary())
    typer.echo(f"wrote SYNTHETIC returns to {out}/")


@episodes_app.command("panel")
def episodes_panel(
    data: Annotated[Path, typer.Option(help="SSDA903 returns: folder or episodes file.")],
    out: Annotated[Path, typer.Option(help="CSV file to write the LA x quarter panel to.")],
    period_format: Annotated[str, typer.Option(help="period (2027Q1) or int (20271).")] = "period",
) -> None:
    """Validate SSDA903 returns and write the LA x quarter panel as CSV."""
    from kinship_eval.episodes import episodes_to_panel, read_ssda903
    from kinship_eval.episodes.ssda903 import PANEL_COLUMNS

    episodes = read_ssda903(data, columns=PANEL_COLUMNS, header=False)
    built = episodes_to_panel(episodes, period_format=period_format)  # type: ignore[arg-type]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    built.frame.to_csv(tmp, index=False)
    tmp.replace(out)
    typer.echo(built.summary())
    typer.echo(episodes.quality.summary())
    typer.echo(f"wrote {len(built.frame)} rows to {out}")


@episodes_app.command("matched")
def episodes_matched(
    data: Annotated[Path, typer.Option(help="SSDA903 returns: folder or episodes file.")],
    start: Annotated[str, typer.Option(help="Date the allowance starts (ISO).")] = "2026-04-01",
    inference: Annotated[str, typer.Option(help="cluster or wild.")] = "cluster",
    reps: Annotated[int, typer.Option(help="Wild bootstrap draws.")] = 999,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the impact table as JSON.")
    ] = False,
) -> None:
    """Matched child-level difference-in-differences (Supporting Families style)."""
    import warnings

    from kinship_eval.episodes import child_outcomes, matched_did, read_ssda903

    outcomes = child_outcomes(read_ssda903(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-cluster caveat is in the notes
        result = matched_did(
            outcomes,
            start=start,
            inference=inference,
            reps=reps,
            seed=seed,  # type: ignore[arg-type]
        )
    if as_json:
        payload = {
            "synthetic": result.synthetic,
            "estimates": json.loads(result.to_frame().to_json(orient="records")),
            "max_smd_after": result.max_smd_after,
            "notes": result.notes,
        }
        typer.echo(json.dumps(payload))
    else:
        typer.echo(result.summary())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kinship-eval`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    debug = os.environ.get("KINSHIP_EVAL_DEBUG") == "1"
    try:
        app(args=argv, standalone_mode=False)
    except KinshipEvalError as exc:
        for line in str(exc).splitlines()[:8]:
            typer.echo(f"error: {line}", err=True)
        if debug:
            raise
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except Exception as exc:
        if debug:
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        typer.echo(
            "error: unexpected failure; rerun with KINSHIP_EVAL_DEBUG=1 for details", err=True
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
