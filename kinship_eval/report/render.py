"""Render an evaluation's results into the published report and its tables and figures.

:func:`render_outputs` writes, into one folder:

* ``report.html`` -- self-contained (figures embedded), accessible HTML report;
* ``report.pdf`` -- the same HTML paged by WeasyPrint with the print stylesheet
  (:mod:`kinship_eval.report.pdf`);
* ``report_tables.ods`` -- every table in an accessible spreadsheet
  (:mod:`kinship_eval.report.spreadsheet`);
* ``tables/<key>.csv`` -- every table as CSV, plus ``tables/estimates.csv`` (the primary
  estimate's tidy rows, full precision);
* ``figures/<key>.png`` and ``.svg`` -- every figure.

Every table passes :func:`kinship_eval.report.sdc.check` before anything is written; a table
that fails stops the build (:class:`~kinship_eval.report.sdc.DisclosureError`).

Templates are Jinja2 files in ``reports/templates/`` (installed with the package as
``kinship_eval.report.templates``); a spec can point at another folder with
``report.templates``.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from kinship_eval.report import figures as figs
from kinship_eval.report import narrative as nar
from kinship_eval.report import sdc
from kinship_eval.report.provenance import sha256_file
from kinship_eval.report.tables import (
    ESTIMATOR_NAMES,
    INFERENCE_NAMES,
    Note,
    PublishedTable,
    build_tables,
    impact_records,
    note_numbers,
)

if TYPE_CHECKING:
    from kinship_eval.pipeline import EvaluationResults

REPORT_TEMPLATE = "report.html.j2"
PRINT_STYLESHEET = "print.css"
SPREADSHEET = "report_tables.ods"
SERIES = "Kinship allowance pilot evaluation"

__all__ = [
    "Report",
    "build_report",
    "describe_outputs",
    "evidence",
    "headline",
    "render_html",
    "render_outputs",
    "rule_from_spec",
    "template_dir",
]


def template_dir(override: Path | None = None) -> Path:
    """Folder of the report templates: the spec's, else the installed package's."""
    if override is not None:
        return Path(override)
    source_tree = Path(__file__).resolve().parents[2] / "reports" / "templates"
    if source_tree.is_dir():  # editable install / source checkout
        return source_tree
    return Path(str(resources.files("kinship_eval.report.templates")))


def _environment(folder: Path) -> jinja2.Environment:
    """Jinja2 environment: templates from ``folder``, falling back to the package's own (so a
    custom folder need only hold the templates it changes)."""
    folders = [str(folder)]
    default = template_dir(None)
    if Path(folder).resolve() != default.resolve():
        folders.append(str(default))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters["num"] = lambda v, dp=2, sign=False: nar.fmt_num(
        None if v is None or pd.isna(v) else float(v), dp, sign=sign
    )
    env.filters["pval"] = nar.fmt_p
    env.filters["money"] = nar.fmt_money
    env.filters["years"] = nar.fmt_years
    env.filters["pct"] = lambda v, dp=0: "not available" if v is None else f"{100 * v:.{dp}f}%"
    return env


# ----------------------------------------------------------------------------- evidence
def _illustrative_years(results: EvaluationResults) -> tuple[int, ...]:
    if results.illustrative is None:
        return ()
    return tuple(int(y) for y in results.illustrative.config.years)


def evidence(results: EvaluationResults) -> nar.Evidence:
    """The facts the headline wording rests on, from the results."""
    est = results.estimate
    primary = impact_records_safe(results)
    pct = primary.get("pct_change") if primary else None
    pct = float(pct) if isinstance(pct, (int, float)) and math.isfinite(pct) else None
    years = _illustrative_years(results)
    honest = results.honest
    ref = results.first_treated - 1 - int(results.spec.anticipation)
    pre_p = results.pretrends.get("p_value") if results.pretrends else None
    return nar.Evidence(
        att=float(est.att),
        ci_low=float(est.ci_low),
        ci_high=float(est.ci_high),
        p_value=float(est.p_value),
        level=float(est.level),
        outcome_label=results.outcome_label,
        pct_change=pct,
        pretrend_p=None if pre_p is None else float(pre_p),
        honest_computed=honest is not None,
        breakdown=None if honest is None or honest.breakdown is None else float(honest.breakdown),
        honest_method=getattr(honest, "method", "relative_magnitude"),
        honest_m_max=float(max(honest.m)) if honest is not None and len(honest.m) else None,
        illustrative_years=years,
        pretrend_reference_illustrative=ref in years,
    )


def impact_records_safe(results: EvaluationResults) -> dict[str, Any]:
    """The primary row of the impact table (empty if it cannot be computed)."""
    from kinship_eval.report.tables import TableContext

    ctx = TableContext(
        results=results,
        rule=sdc.SDCRule(),
        illustrative_years=_illustrative_years(results),
        first_treated=results.first_treated,
    )
    rows = impact_records(ctx)
    return rows[0] if rows else {}


def headline(results: EvaluationResults) -> str:
    """The headline sentence about the primary estimate (see :mod:`.narrative`)."""
    return nar.impact_sentence(evidence(results))


def cba_evidence(results: EvaluationResults, strength: nar.Strength) -> nar.CBAEvidence | None:
    """The facts the cost-benefit headline rests on."""
    cba = results.cba
    if cba is None:
        return None
    persp = cba.spec.sensitivity.perspective
    row = cba.results.to_frame().set_index("perspective").loc[persp]
    mc = cba.monte_carlo
    return nar.CBAEvidence(
        benefit_per_pound=float(row["benefit_per_pound_spent"]),
        perspective=persp,
        bcr=float(row["bcr"]),
        npsv=float(row["npsv"]),
        pv_public_spending=float(cba.results.pv_public_spending),
        price_base_year=str(cba.assumptions.price_base_year),
        prob_bcr_gt_1=None if mc is None else float(mc.prob_bcr_above(1.0, persp)),
        n_draws=None if mc is None else int(mc.n_draws),
        illustrative=bool(cba.assumptions.effect.illustrative),
        impact_strength=strength,
    )


# ----------------------------------------------------------------------------- figures
def build_figures(
    results: EvaluationResults, spec_curve: pd.DataFrame | None = None
) -> dict[str, figs.RenderedFigure]:
    """Every figure, numbered in the order the report shows them."""
    out: list[figs.RenderedFigure] = []
    years = _illustrative_years(results)
    label = results.outcome_label
    unit_label = (
        "Per 10,000 children aged 0-17" if results.spec.outcome.endswith("_per_10k") else label
    )
    illus_note = (
        f" Years {nar.fmt_years(years)} are illustrative (simulated), shown hatched."
        if years
        else ""
    )

    def add(key: str, fig: Any, caption: str, alt: str) -> None:
        images = figs.render_figure(fig, dpi=150)
        if years and "illustrative" not in alt:
            alt += f" Illustrative: rests on the simulated years {nar.fmt_years(years)}."
        out.append(figs.RenderedFigure(key, caption, alt, images["png"], images["svg"]))

    add(
        "trends",
        figs.plot_trends(
            results.trends,
            ylabel=unit_label,
            first_treated=results.first_treated,
            illustrative_from=min(years) if years else None,
        ),
        f"{label.split(', per 10,000')[0]}: mean per 10,000 children across pilot and "
        f"comparison local authorities, by year ending 31 March.{illus_note}",
        figs.trends_alt_text(
            results.trends, label, first_treated=results.first_treated, illustrative_years=years
        ),
    )
    es = results.event_study
    if es is not None and es.event_study is not None and es.event_study["att"].notna().any():
        rel_from = min(years) - results.first_treated if years else None
        band = "band_low" in es.event_study and es.event_study["band_low"].notna().any()
        add(
            "event_study",
            figs.plot_event_study(
                es, ylabel="Difference, per 10,000 children", illustrative_from=rel_from
            ),
            "Event study: difference between pilot and comparison local authorities in each "
            "year relative to the first year of payments, with 95% confidence intervals"
            + (" and a uniform confidence band" if band else "")
            + ". Year −1 is the reference year."
            + (
                f" Years from {rel_from:+d} onwards rest on illustrative (simulated) data."
                if rel_from is not None
                else ""
            ),
            figs.event_study_alt_text(es),
        )
    cba = results.cba
    if cba is not None:
        persp = cba.spec.sensitivity.perspective
        illus = (
            " Illustrative: the effect rests on simulated years."
            if (cba.assumptions.effect.illustrative)
            else ""
        )
        if cba.monte_carlo is not None:
            add(
                "cba_bcr",
                figs.plot_bcr_distribution(cba.monte_carlo, persp),
                f"Monte Carlo distribution of the {persp} benefit-cost ratio "
                f"({cba.monte_carlo.n_draws:,} draws); the dashed line marks break-even.{illus}",
                figs.bcr_alt_text(cba.monte_carlo, persp),
            )
        if cba.tornado is not None and len(cba.tornado):
            add(
                "cba_tornado",
                figs.plot_tornado(cba.tornado),
                f"One-way sensitivity of the {persp} net present social value (£ million): each "
                "input at its low (solid) and high (hatched) value, others at their central "
                f"values; widest first.{illus}",
                figs.tornado_alt_text(cba.tornado, persp),
            )
    if results.honest is not None:
        add(
            "honest",
            figs.plot_honest(results.honest, ylabel="First-year effect, per 10,000 children"),
            "Sensitivity of the first-year effect to departures from parallel trends "
            "(Rambachan and Roth 2023): conventional interval and robust intervals as the "
            "allowed departure grows." + (" Illustrative." if years else ""),
            figs.honest_alt_text(results.honest),
        )
    if spec_curve is not None and (spec_curve.get("status", pd.Series()) == "ok").sum() >= 2:
        from kinship_eval.grid import plot_spec_curve

        truth = (
            results.illustrative.true_att(results.spec.outcome)
            if results.illustrative is not None
            else None
        )
        add(
            "spec_curve",
            plot_spec_curve(spec_curve, truth=truth),
            "Specification curve: every specification's estimate with its confidence interval, "
            "sorted; below, the choices each one makes." + (" Illustrative." if years else ""),
            figs.spec_curve_alt_text(spec_curve),
        )
    for i, f in enumerate(out, start=1):
        f.number = i
    return {f.key: f for f in out}


# ----------------------------------------------------------------------------- report
@dataclass
class Report:
    """Everything the report is rendered from."""

    results: EvaluationResults
    tables: dict[str, PublishedTable]
    notes: dict[str, Note]
    figures: dict[str, figs.RenderedFigure]
    rule: sdc.SDCRule
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def ordered_tables(self) -> list[PublishedTable]:
        return sorted(self.tables.values(), key=lambda t: t.number)


def build_report(
    results: EvaluationResults,
    *,
    spec_curve: pd.DataFrame | None = None,
    balance: pd.DataFrame | None = None,
    sdc_rule: sdc.SDCRule | None = None,
) -> Report:
    """Build the tables, figures and template context of the report (no files written)."""
    rule = sdc_rule or sdc.SDCRule()
    tables, notes = build_tables(results, rule=rule, spec_curve=spec_curve, balance=balance)
    audit = [sdc.check(t) for t in tables.values()]
    failed = [a for a in audit if not a.passed]
    if failed:
        detail = "; ".join(f"{a.table}: {a.problems[0]}" for a in failed)
        raise sdc.DisclosureError(f"tables fail disclosure control: {detail}")
    figures = build_figures(results, spec_curve)
    report = Report(results, tables, notes, figures, rule)
    report.context = _context(report)
    return report


def _context(report: Report) -> dict[str, Any]:
    results = report.results
    spec = results.spec
    est = results.estimate
    years = _illustrative_years(results)
    ev = evidence(results)
    assessment = nar.assess(ev)
    true_att = results.illustrative.true_att(spec.outcome) if results.illustrative else None
    cba_ev = cba_evidence(results, assessment.strength)
    impact = impact_records_safe(results)
    secondary = [
        nar.SecondaryResult(
            outcome_label=r["label"],
            att=float(r["att"]),
            ci_low=float(r["ci_low"]),
            ci_high=float(r["ci_high"]),
        )
        for r in impact_records(_table_context(report))
        if r["role"] == "Secondary"
    ]
    rob = results.robustness
    alternatives: list[tuple[str, float, float, float]] = []
    if rob is not None:
        alt = rob.loc[rob["outcome"].eq(spec.outcome) & rob["status"].eq("ok")]
        alt = alt.loc[~(alt["estimator"].eq(spec.estimator))]
        alternatives = [
            (
                ESTIMATOR_NAMES.get(r["estimator"], r["estimator"]),
                r["att"],
                r["ci_low"],
                r["ci_high"],
            )
            for r in alt.to_dict("records")
        ]
    sample = results.estimation_sample
    numbers = note_numbers(report.ordered_tables, report.notes)
    title = spec.report.title
    running_head = title + (" — ILLUSTRATIVE" if years else "")
    periods = results.panel.periods
    real_periods = [p for p in periods if p not in years]
    cba = results.cba
    tornado_top: list[str] = []
    if cba is not None and cba.tornado is not None and len(cba.tornado):
        tornado_top = [str(s) for s in cba.tornado["label"].head(3)]
    missing = results.panel.frame
    return {
        "title": title,
        "running_head": running_head,
        "series": SERIES,
        "description": spec.description,
        "illustrative": bool(years),
        "illustrative_years": list(years),
        "illustrative_config": results.illustrative.config if results.illustrative else None,
        "true_att": true_att,
        "evidence": ev,
        "assessment": assessment,
        "headline_sentences": nar.headline_sentences(ev, true_att=true_att),
        "impact_sentence": nar.impact_sentence(ev, assessment),
        "pretrend_sentence": nar.pretrend_sentence(ev),
        "honest_sentence": nar.honest_sentence(ev),
        "secondary_sentence": nar.secondary_sentence(secondary, illustrative_years=years),
        "robustness_sentence": nar.robustness_sentence(alternatives, illustrative_years=years),
        "cba": cba,
        "cba_evidence": cba_ev,
        "cba_sentences": nar.cba_sentences(cba_ev) if cba_ev else [],
        "tornado_top": tornado_top,
        "estimate": est,
        "estimator_name": ESTIMATOR_NAMES.get(est.estimator, est.estimator),
        "inference_name": INFERENCE_NAMES.get(est.inference, est.inference),
        "impact": impact,
        "outcome_label": results.outcome_label,
        "outcome_phrase": nar.outcome_phrase(results.outcome_label),
        "first_treated": results.first_treated,
        "n_pilot": int(sample.loc[sample["pilot"], "la_code"].nunique()),
        "n_comparison": int(sample.loc[~sample["pilot"], "la_code"].nunique()),
        "periods": periods,
        "real_periods": real_periods,
        "spec": spec,
        "pretrends": results.pretrends,
        "honest": results.honest,
        "event_study": results.event_study,
        "tables": report.tables,
        "figures": report.figures,
        "figure_png": {
            k: base64.b64encode(f.png).decode("ascii") for k, f in report.figures.items()
        },
        "note_numbers": numbers,
        "notes_ordered": sorted(
            ((n, report.notes[k]) for k, n in numbers.items()), key=lambda x: x[0]
        ),
        "panel_notes": results.notes,
        "estimate_notes": est.notes,
        "harmonisation_lines": results.panel.harmonisation.describe(),
        "harmonisation_rule": results.panel.harmonisation.rule,
        "sdc_rule": report.rule,
        "sdc_text": report.rule.describe(),
        "provenance": results.provenance,
        "spec_yaml": spec.to_yaml(),
        "spreadsheet": SPREADSHEET,
        "spreadsheet_only": [t for t in report.ordered_tables if not t.in_report],
        "n_la_years_missing": int(missing[spec.outcome].isna().sum())
        if spec.outcome in missing
        else 0,
    }


def _table_context(report: Report) -> Any:
    from kinship_eval.report.tables import TableContext

    return TableContext(
        results=report.results,
        rule=report.rule,
        illustrative_years=_illustrative_years(report.results),
        first_treated=report.results.first_treated,
    )


def render_html(report: Report, templates: Path | None = None) -> str:
    """Render the report HTML from the templates."""
    folder = template_dir(templates)
    env = _environment(folder)
    return env.get_template(REPORT_TEMPLATE).render(**report.context)


def print_stylesheet(templates: Path | None = None) -> str:
    """The print stylesheet the PDF is built with."""
    folder = template_dir(templates)
    path = folder / PRINT_STYLESHEET
    if not path.exists():  # a custom template folder without one: use the package's
        path = template_dir(None) / PRINT_STYLESHEET
    return path.read_text(encoding="utf-8")


def rule_from_spec(spec: Any) -> sdc.SDCRule:
    """The disclosure-control rule a spec asks for (``report.sdc_threshold``,
    ``report.sdc_rounding_base``, ``report.sdc_zeros_disclosive`` where the spec has them), else
    the default 10-5 rule."""
    options = getattr(spec, "report", None)
    default = sdc.SDCRule()
    return sdc.SDCRule(
        threshold=int(getattr(options, "sdc_threshold", default.threshold)),
        rounding_base=int(getattr(options, "sdc_rounding_base", default.rounding_base)),
        zeros_disclosive=bool(getattr(options, "sdc_zeros_disclosive", default.zeros_disclosive)),
    )


def render_outputs(
    results: EvaluationResults,
    out: Path,
    *,
    spec_curve: pd.DataFrame | None = None,
    balance: pd.DataFrame | None = None,
    sdc_rule: sdc.SDCRule | None = None,
    pdf: bool | None = None,
) -> list[str]:
    """Write the report (HTML, PDF), the spreadsheet, CSV tables and figures into ``out``.

    Parameters
    ----------
    results
        The evaluation's results.
    out
        Output folder (created if needed).
    spec_curve
        Results of a specification grid (``grid_results.csv``: ``spec_id``, the varied fields,
        ``estimator, outcome, att, se, ci_low, ci_high, p_value, status``); adds the
        specification-curve section. Default: the CSV named by the spec's ``report.spec_curve``
        where the spec has that option, else no such section.
    balance
        A balance table to publish instead of the default (pre-pilot means of every outcome
        rate, pilot vs comparison LAs).
    sdc_rule
        Disclosure-control rule (default: :func:`rule_from_spec`, i.e. suppress counts below 10
        and round others to the nearest 5 unless the spec says otherwise).
    pdf
        Also write ``report.pdf`` (default: the spec's ``report.pdf`` where it has that option,
        else yes).

    Returns
    -------
    list of str
        The files written, relative to ``out``.
    """
    from kinship_eval.report.pdf import html_to_pdf
    from kinship_eval.report.spreadsheet import CoverInfo, write_ods

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    options = results.spec.report
    if spec_curve is None and getattr(options, "spec_curve", None):
        spec_curve = pd.read_csv(options.spec_curve)
    report = build_report(
        results,
        spec_curve=spec_curve,
        balance=balance,
        sdc_rule=sdc_rule or rule_from_spec(results.spec),
    )
    templates = results.spec.report.templates

    for key, f in report.figures.items():
        for fmt, data in (("png", f.png), ("svg", f.svg)):
            (out / "figures" / f"{key}.{fmt}").write_bytes(data)
            written.append(f"figures/{key}.{fmt}")

    for t in report.ordered_tables:
        t.published("csv").to_csv(out / "tables" / f"{t.key}.csv", index=False)
        written.append(f"tables/{t.key}.csv")
    results.estimate.to_frame().to_csv(out / "tables" / "estimates.csv", index=False)
    written.append("tables/estimates.csv")

    ctx = report.context
    prov = results.provenance
    cover = CoverInfo(
        title=f"{ctx['title']}: tables" + (" (ILLUSTRATIVE)" if ctx["illustrative"] else ""),
        description=(
            f"The tables of the report '{ctx['title']}': the estimated impact of the kinship "
            "allowance on children leaving care to kinship carers in the pilot local authorities "
            "(difference-in-differences against the other local authorities in England), the "
            "robustness and sensitivity analyses, and the Green Book cost-benefit analysis."
        ),
        source=(
            "Department for Education, Children looked after in England including adoptions "
            "(Explore Education Statistics) and local authority finance data; Office for "
            "National Statistics mid-year population estimates. Open Government Licence v3.0."
        ),
        illustrative_warning=(
            f"ILLUSTRATIVE: years {nar.fmt_years(ctx['illustrative_years'])} are simulated, "
            "not data. Values that rest on them show how the evaluation will work; they are not "
            "evidence about the pilot."
            if ctx["illustrative"]
            else None
        ),
        disclosure=report.rule.describe(),
        reproducibility=[
            f"Specification: {results.spec.name} (digest {prov.get('spec_digest', 'unknown')})",
            f"Code: kinship_eval {prov.get('package_version', '')}, git revision "
            f"{prov.get('git_revision', 'unknown')}",
            "Rerun with: kinship-eval run --spec <specification> --out <folder>",
        ],
    )
    write_ods(report.ordered_tables, report.notes, out / SPREADSHEET, cover=cover)
    written.append(SPREADSHEET)

    html = render_html(report, templates)
    (out / "report.html").write_text(html, encoding="utf-8")
    written.append("report.html")
    if pdf is None:
        pdf = bool(getattr(options, "pdf", True))
    if pdf:
        (out / "report.pdf").write_bytes(html_to_pdf(html, print_stylesheet(templates)))
        written.append("report.pdf")
    return written


def describe_outputs(out: str | Path, files: list[str]) -> list[dict[str, Any]]:
    """One record per written file: ``path`` (relative), ``bytes`` and ``sha256``.

    For the run manifest: ``{"outputs": describe_outputs(staging, files)}``.
    """
    folder = Path(out)
    return [
        {
            "path": name,
            "bytes": (folder / name).stat().st_size,
            "sha256": sha256_file(folder / name),
        }
        for name in sorted(files)
    ]
