"""Render an evaluation's results into the report (HTML) and its tables and figures.

Templates are Jinja2 files in ``reports/templates/`` (installed with the package as
``kinship_eval.report.templates``); a spec can point at another folder with
``report.templates``.
"""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from kinship_eval.report.figures import plot_trends, render_figure, trends_alt_text

if TYPE_CHECKING:
    from kinship_eval.pipeline import EvaluationResults

REPORT_TEMPLATE = "report.html.j2"


def template_dir(override: Path | None = None) -> Path:
    """Folder of the report templates: the spec's, else the installed package's."""
    if override is not None:
        return Path(override)
    source_tree = Path(__file__).resolve().parents[2] / "reports" / "templates"
    if source_tree.is_dir():  # editable install / source checkout
        return source_tree
    return Path(str(resources.files("kinship_eval.report.templates")))


def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v, dp=2: "–" if v is None or pd.isna(v) else f"{v:,.{dp}f}"
    env.filters["pval"] = lambda v: "–" if pd.isna(v) else ("<0.001" if v < 0.001 else f"{v:.3f}")
    return env


def impact_table(results: EvaluationResults) -> pd.DataFrame:
    """The impact table: pilot and comparison means after the start, difference, CI, p-value."""
    est = results.estimate
    sample = results.estimation_sample
    post = sample["period"] >= results.first_treated
    pilot_mean = sample.loc[post & sample["pilot"], results.spec.outcome].mean()
    comp_mean = sample.loc[post & ~sample["pilot"], results.spec.outcome].mean()
    counterfactual = pilot_mean - est.att
    pct = 100 * est.att / counterfactual if counterfactual else float("nan")
    significant = est.p_value < 1 - est.level
    return pd.DataFrame(
        [
            {
                "Outcome": results.outcome_label,
                "Pilot LAs (mean, post)": pilot_mean,
                "Comparison LAs (mean, post)": comp_mean,
                "Estimated effect": est.att,
                "% change vs counterfactual": pct,
                "95% CI low": est.ci_low,
                "95% CI high": est.ci_high,
                "p-value": est.p_value,
                "Statistically significant": "Yes" if significant else "No",
            }
        ]
    )


def headline(results: EvaluationResults) -> str:
    """Headline wording that says what the evidence supports."""
    est = results.estimate
    label = results.outcome_label.lower()
    excludes_zero = est.ci_low > 0 or est.ci_high < 0
    direction = "increased" if est.att > 0 else "reduced"
    prefix = "On illustrative (simulated) pilot years, " if results.illustrative else ""
    if excludes_zero:
        text = (
            f"{prefix}the allowance is estimated to have {direction} {label} by "
            f"{abs(est.att):.2f} (95% confidence interval {est.ci_low:.2f} to {est.ci_high:.2f})."
        )
    else:
        text = (
            f"{prefix}there is no clear evidence that the allowance changed {label}: the estimate "
            f"is {est.att:.2f}, and the 95% confidence interval ({est.ci_low:.2f} to "
            f"{est.ci_high:.2f}) includes no effect."
        )
    return text[0].upper() + text[1:]


def render_outputs(results: EvaluationResults, out: Path) -> list[str]:
    """Write ``report.html``, tables (CSV) and figures (PNG, SVG) into ``out``.

    Returns
    -------
    list of str
        The files written, relative to ``out``.
    """
    written: list[str] = []
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)

    panel = results.panel
    illustrative_from = (
        min(results.illustrative.config.years) if results.illustrative is not None else None
    )
    fig = plot_trends(
        results.trends,
        ylabel="Per 10,000 children aged 0-17"
        if results.spec.outcome.endswith("_per_10k")
        else results.outcome_label,
        first_treated=results.first_treated,
        illustrative_from=illustrative_from,
    )
    trend_images = render_figure(fig)
    for fmt, data in trend_images.items():
        (out / "figures" / f"trends.{fmt}").write_bytes(data)
        written.append(f"figures/trends.{fmt}")

    impact = impact_table(results)
    estimates = results.estimate.to_frame()
    tables = {
        "impact": impact,
        "estimates": estimates,
        "trends": results.trends,
    }
    if results.illustrative is not None:
        tables["illustrative_truth"] = results.illustrative.truth
    for name, table in tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
        written.append(f"tables/{name}.csv")
    panel_out = panel.frame.copy()
    panel_out.to_csv(out / "tables" / "panel.csv", index=False)
    written.append("tables/panel.csv")

    context: dict[str, Any] = {
        "title": results.spec.report.title,
        "illustrative": results.illustrative is not None,
        "illustrative_years": list(results.illustrative.config.years)
        if results.illustrative
        else [],
        "true_att": results.illustrative.true_att(results.spec.outcome)
        if results.illustrative
        else None,
        "headline": headline(results),
        "estimate": results.estimate,
        "impact": impact.to_dict("records")[0],
        "outcome_label": results.outcome_label,
        "pilot_las": panel.frame.loc[panel.frame["pilot"]]
        .drop_duplicates("la_code")[["la_code", "la_name", "region", "first_treated"]]
        .to_dict("records"),
        "n_comparison": int(
            results.estimation_sample.loc[~results.estimation_sample["pilot"], "la_code"].nunique()
        ),
        "periods": panel.periods,
        "trend_png": base64.b64encode(trend_images["png"]).decode(),
        "trend_alt": trends_alt_text(results.trends, results.outcome_label),
        "notes": results.notes,
        "estimate_notes": results.estimate.notes,
        "provenance": results.provenance,
        "spec_yaml": results.spec.to_yaml(),
        "harmonisation": panel.harmonisation,
    }
    env = _environment(template_dir(results.spec.report.templates))
    html = env.get_template(REPORT_TEMPLATE).render(**context)
    (out / "report.html").write_text(html, encoding="utf-8")
    written.append("report.html")
    return written
