"""The built report: HTML accessibility, PDF, accessible spreadsheet, CSVs, disclosure audit.

The report is built once (module-scoped) from a small synthetic specification.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest
from odf import opendocument
from odf import table as odftable
from odf import text as odftext

from kinship_eval.pipeline import run, write_outputs
from kinship_eval.report import sdc
from kinship_eval.report.render import build_report, describe_outputs, render_outputs
from kinship_eval.report.spreadsheet import TABLE_START_ROW, CoverInfo, write_ods
from kinship_eval.spec import load_spec
from tests.conftest import synthetic_inputs

pytestmark = pytest.mark.e2e

RUNNING_HEAD = "Kinship allowance pilot: impact evaluation — ILLUSTRATIVE"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Run a small synthetic evaluation once and write its outputs."""
    tmp = tmp_path_factory.mktemp("report")
    geo, measures, pilot = synthetic_inputs(n_las=40, seed=3)
    geo.las.to_csv(tmp / "las.csv", index=False)
    geo.reorganisations.to_csv(tmp / "reorg.csv", index=False)
    measures.assign(old_la_code="", la_name="", source="synthetic").to_csv(
        tmp / "measures.csv", index=False
    )
    pilot.assign(start_date=pilot["start_date"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp / "pilot.csv", index=False
    )
    (tmp / "spec.yaml").write_text(
        "name: synthetic\n"
        "data:\n  measures: measures.csv\n  geography: las.csv\n"
        "  reorganisations: reorg.csv\n  pilot_register: pilot.csv\n"
        "illustrative:\n  effect: 0.5\n  seed: 7\n"
        "period_start: 2016\n"
        "inference: cluster\n"
        "robustness:\n  estimators: [twfe, cs]\n"
        "  outcomes: [kinship_exits_per_10k, cao_exits_per_10k]\n"
    )
    with pytest.warns(Warning, match="clusters"):  # few clusters: expected warnings
        results = run(load_spec(tmp / "spec.yaml"))
    out = tmp / "build"
    written = write_outputs(results, out)
    return {"results": results, "out": out, "written": written, "tmp": tmp}


@pytest.fixture(scope="module")
def report(built):
    return build_report(built["results"])


# ----------------------------------------------------------------------------- files
def test_every_output_is_written(built, report):
    out = built["out"]
    names = {p.relative_to(out).as_posix() for p in built["written"]}
    assert {"report.html", "report.pdf", "report_tables.ods", "manifest.json"} <= names
    for key in report.tables:
        assert f"tables/{key}.csv" in names
    for key in report.figures:
        assert {f"figures/{key}.png", f"figures/{key}.svg"} <= names
    assert {"trends", "event_study", "honest", "cba_tornado"} <= set(report.figures)
    manifest = json.loads((out / "manifest.json").read_text())
    listed = [o if isinstance(o, str) else o["path"] for o in manifest["outputs"]]
    assert "report.pdf" in listed


def test_describe_outputs_hashes_every_file(built):
    out = built["out"]
    files = [p.relative_to(out).as_posix() for p in built["written"] if p.name != "manifest.json"]
    records = describe_outputs(out, files)
    assert [r["path"] for r in records] == sorted(files)
    assert all(len(r["sha256"]) == 64 and r["bytes"] > 0 for r in records)


def test_csv_tables_publish_rates_and_protected_counts(built):
    tables = built["out"] / "tables"
    panel = pd.read_csv(tables / "panel.csv")
    assert not any(c.startswith(("sgo_exits", "population")) for c in panel.columns)
    assert any("(per 10,000 children)" in c for c in panel.columns)
    counts = pd.read_csv(tables / "outcome_counts.csv", dtype=str)
    values = counts.drop(columns="Local authority").to_numpy().ravel()
    for v in values:
        assert v in ("c", "x") or (int(float(v)) % 5 == 0 and (float(v) == 0 or float(v) >= 10))
    assert counts["Local authority"].iloc[-1] == "Total"


# ----------------------------------------------------------------------------- HTML
class Audit(HTMLParser):
    """Collect what the accessibility checks need from the report HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = None
        self.images: list[dict] = []
        self.tables: list[dict] = []
        self.links: list[dict] = []
        self.scripts = 0
        self.title = ""
        self._in_title = False
        self._in_caption = False
        self.captions: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "img":
            self.images.append(a)
        elif tag == "table":
            self.tables.append({"caption": False, "th": [], "thead": False})
        elif tag == "caption" and self.tables:
            self.tables[-1]["caption"] = True
            self._in_caption = True
            self.captions.append("")
        elif tag == "th" and self.tables:
            self.tables[-1]["th"].append(a.get("scope"))
        elif tag == "thead" and self.tables:
            self.tables[-1]["thead"] = True
        elif tag == "link":
            self.links.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._in_caption:
            self.captions[-1] += data


@pytest.fixture(scope="module")
def html(built):
    return (built["out"] / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def audit(html):
    parser = Audit()
    parser.feed(html)
    return parser


def test_html_declares_its_language_and_title(audit):
    assert audit.lang == "en-GB"
    assert "ILLUSTRATIVE" in audit.title


def test_every_image_has_alt_text_written_from_the_data(audit, report):
    assert len(audit.images) == len(report.figures)
    for img in audit.images:
        alt = img.get("alt", "")
        assert len(alt) > 60, alt
        assert re.search(r"\d", alt), alt  # numbers from the data
        assert img["src"].startswith("data:image/png;base64,")  # self-contained


def test_every_table_has_a_caption_header_row_and_scoped_headers(audit, report):
    shown = [t for t in report.tables.values() if t.in_report]
    assert len(audit.tables) == len(shown)
    for t in audit.tables:
        assert t["caption"]
        assert t["thead"]
        assert t["th"]
        assert all(scope in ("col", "row") for scope in t["th"])


def test_tables_are_numbered_in_the_order_they_appear(audit):
    numbers = [int(re.match(r"\s*Table (\d+):", c).group(1)) for c in audit.captions]
    assert numbers == list(range(1, len(numbers) + 1))


def test_html_is_self_contained(audit, html):
    assert audit.scripts == 0
    assert not [link for link in audit.links if link.get("rel") == "stylesheet"]
    assert 'src="http' not in html
    assert "url(http" not in html


def test_illustrative_is_said_everywhere_it_applies(html, report):
    assert "ILLUSTRATIVE RESULTS" in html  # banner
    headline = html.split('class="headline-box"')[1].split("</div>")[0]
    for item in re.findall(r"<li>(.*?)</li>", headline, flags=re.S):
        assert "illustrative" in item.lower(), item
    for t in report.tables.values():
        if t.illustrative and t.in_report:
            assert "illustrative" in t.title.lower(), t.title
    for f in report.figures.values():
        assert "llustrative" in f.caption, f.caption


def test_headline_is_firm_for_a_clear_well_behaved_synthetic_effect(report):
    ctx = report.context
    assert ctx["assessment"].strength == "firm"
    assert "the allowance increased" in ctx["impact_sentence"]


def test_suppressed_cells_are_marked_and_explained(html, report):
    counts = report.tables["outcome_counts"]
    if "c" in counts.markers_used():
        assert '<abbr title="c: suppressed for statistical disclosure control">c</abbr>' in html
    assert "Statistical disclosure control" in html


# ----------------------------------------------------------------------------- PDF
def test_pdf_has_cover_contents_running_header_and_page_numbers(built):
    pdf = built["out"] / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        from weasyprint import HTML

        doc = HTML(filename=str(built["out"] / "report.html")).render()
        assert len(doc.pages) >= 10
        return
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 10
    assert RUNNING_HEAD not in pages[0]  # the cover has no running header
    assert "Page" not in pages[0]
    for i, page in enumerate(pages[1:], start=2):
        assert RUNNING_HEAD in page, f"page {i}"
        assert f"Page {i} of {len(pages)}" in page
    contents = pages[1]
    assert "Contents" in contents
    assert re.search(r"Headline findings\s*\.+\s*\d+", contents)
    assert re.search(r"Technical annex\s*\.+\s*\d+", contents)


# ----------------------------------------------------------------------------- spreadsheet
@pytest.fixture(scope="module")
def sheets(built):
    return pd.read_excel(
        built["out"] / "report_tables.ods", engine="odf", sheet_name=None, header=None
    )


def test_workbook_has_cover_contents_notes_then_one_sheet_per_table(sheets, report):
    names = list(sheets)
    n = len(report.tables)
    assert names[:3] == ["Cover", "Contents", "Notes"]
    assert names[3:] == [f"Table_{i}" for i in range(1, n + 1)]
    cover = " ".join(sheets["Cover"][0].dropna().astype(str))
    assert "ILLUSTRATIVE" in cover
    for word in ("Contact", "Source", "Shorthand", "[c]"):
        assert word in cover
    contents = sheets["Contents"]
    assert contents.iloc[2].tolist()[:3] == ["Sheet name", "Table title", "Description"]
    assert contents.iloc[3:, 0].tolist() == names[3:]
    notes = sheets["Notes"]
    assert notes.iloc[2, 0] == "Note number"
    assert notes.iloc[3, 0] == "[note 1]"
    assert "ILLUSTRATIVE" in notes.iloc[3, 1]


def test_each_table_sheet_follows_the_accessible_layout(sheets, report):
    header_row = TABLE_START_ROW - 1
    for t in report.tables.values():
        sheet = sheets[t.sheet_name]
        assert sheet.iloc[0, 0].startswith(f"Table {t.number}: ")
        assert sheet.iloc[1:header_row, 1:].isna().all().all()  # preamble in column A only
        assert sheet.iloc[2, 0].startswith("Source: ")
        assert ("ILLUSTRATIVE" in sheet.iloc[3, 0]) == t.illustrative
        if t.illustrative:
            assert "[note 1]" in sheet.iloc[0, 0]
        header = sheet.iloc[header_row].tolist()
        assert header == list(t.frame.columns)
        body = sheet.iloc[header_row + 1 :]
        assert len(body) == len(t.frame)
        assert not body.isna().any().any(), t.key  # no blank cells, rows or columns


def test_workbook_has_no_merged_cells_links_its_contents_and_marks_header_rows(built, report):
    doc = opendocument.load(str(built["out"] / "report_tables.ods"))
    for cell in doc.getElementsByType(odftable.TableCell):
        assert not cell.getAttribute("numbercolumnsspanned")
        assert not cell.getAttribute("numberrowsspanned")
    hrefs = [a.getAttribute("href") for a in doc.getElementsByType(odftext.A)]
    assert hrefs == [f"#Table_{i}.A1" for i in range(1, len(report.tables) + 1)]
    ranges = doc.getElementsByType(odftable.DatabaseRange)
    assert len(ranges) == len(report.tables)
    assert all(r.getAttribute("containsheader") == "true" for r in ranges)
    sheets = [t for t in doc.getElementsByType(odftable.Table) if t.getAttribute("name") != "Cover"]
    assert all(s.getElementsByType(odftable.TableHeaderRows) for s in sheets)


def test_suppressed_cells_read_back_as_shorthand_and_pass_the_audit(sheets, report):
    header_row = TABLE_START_ROW - 1
    for t in report.tables.values():
        if t.sdc is None:
            continue
        sheet = sheets[t.sheet_name]
        frame = sheet.iloc[header_row + 1 :].copy()
        frame.columns = sheet.iloc[header_row].tolist()
        frame = frame.reset_index(drop=True)
        for col in t.sdc.count_columns:
            frame[col] = [v if isinstance(v, str) else float(v) for v in frame[col]]
        frame.attrs["sdc"] = t.sdc
        audit = sdc.check(frame)
        assert audit.passed, (t.key, audit.problems)
        symbols = {v for col in t.sdc.count_columns for v in frame[col] if isinstance(v, str)}
        assert symbols <= {"[c]", "[x]", "[z]"}


def test_spreadsheet_is_byte_identical_when_rewritten(report, tmp_path):
    cover = CoverInfo(title="t", description="d", source="s")
    a = write_ods(report.ordered_tables, report.notes, tmp_path / "a.ods", cover=cover)
    b = write_ods(report.ordered_tables, report.notes, tmp_path / "b.ods", cover=cover)
    assert a.read_bytes() == b.read_bytes()


def test_spreadsheet_does_not_depend_on_documents_handled_before(report, tmp_path):
    """odfpy keeps the namespaces of every element it has built in one class-wide registry; other
    ODF documents handled earlier in the process must not reach the workbook's XML."""
    from odf import anim, draw
    from odf.opendocument import OpenDocumentPresentation

    cover = CoverInfo(title="t", description="d", source="s")
    a = write_ods(report.ordered_tables, report.notes, tmp_path / "a.ods", cover=cover)
    other = OpenDocumentPresentation()
    page = draw.Page(masterpagename="m")
    page.addElement(anim.Par())  # a namespace no workbook uses
    other.presentation.addElement(page)
    other.save(str(tmp_path / "other.odp"))
    b = write_ods(report.ordered_tables, report.notes, tmp_path / "b.ods", cover=cover)
    assert a.read_bytes() == b.read_bytes()


# ----------------------------------------------------------------------------- SDC audit
def test_every_published_table_passes_the_disclosure_audit(report):
    audits = {key: sdc.check(t) for key, t in report.tables.items()}
    failed = {k: a.problems for k, a in audits.items() if not a.passed}
    assert not failed
    assert audits["outcome_counts"].count_columns  # the counts table is audited as counts
    assert audits["cba_children"].count_columns


def test_a_table_failing_the_audit_stops_the_build(built, monkeypatch):
    import kinship_eval.report.render as render
    from kinship_eval.report.tables import PublishedTable

    real = render.build_tables

    def leaky(*args, **kwargs):
        tables, notes = real(*args, **kwargs)
        tables["leak"] = PublishedTable(
            key="leak",
            title="Leak",
            description="A table with an unprotected count",
            frame=pd.DataFrame({"Area": ["a"], "Number of children": [3]}),
        )
        return tables, notes

    monkeypatch.setattr(render, "build_tables", leaky)
    with pytest.raises(sdc.DisclosureError, match="leak"):
        render.build_report(built["results"])


# ----------------------------------------------------------------------------- optional parts
def test_specification_curve_and_balance_sections_render_when_supplied(built, tmp_path):
    grid = pd.DataFrame(
        {
            "spec_id": ["a", "b", "c", "d"],
            "estimator": ["twfe", "cs", "twfe", "cs"],
            "harmonisation": ["aggregate", "aggregate", "drop", "drop"],
            "outcome": ["sgo_exits_per_10k"] * 4,
            "att": [1.8, 2.1, 1.5, 2.4],
            "se": [0.4, 0.5, 0.6, 0.5],
            "ci_low": [1.0, 1.1, 0.3, 1.4],
            "ci_high": [2.6, 3.1, 2.7, 3.4],
            "p_value": [0.001, 0.002, 0.01, 0.0001],
            "inference": ["cluster"] * 4,
            "n_units": [40] * 4,
            "n_treated_units": [7] * 4,
            "status": ["ok"] * 4,
        }
    )
    balance = pd.DataFrame(
        {"Measure": ["Population aged 0-17"], "Pilot LAs (mean)": [81_000.0], "Other": [79_000.0]}
    )
    out = tmp_path / "with_grid"
    files = render_outputs(built["results"], out, spec_curve=grid, balance=balance, pdf=False)
    assert {"tables/spec_curve_summary.csv", "tables/spec_curve.csv"} <= set(files)
    assert {"figures/spec_curve.png", "figures/spec_curve.svg"} <= set(files)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Specification curve" in page
    assert "Population aged 0-17" in page
    assert "Specification curve" not in (built["out"] / "report.html").read_text()


def test_pdf_is_a_pure_function_of_the_html_and_print_stylesheet():
    from kinship_eval.report.pdf import html_to_pdf
    from kinship_eval.report.render import print_stylesheet

    page = (
        '<!DOCTYPE html><html lang="en-GB"><head><title>t</title></head><body>'
        '<header class="cover" data-running-head="Title — ILLUSTRATIVE"><h1>Title</h1></header>'
        '<section class="chapter"><h2 id="a">A</h2><p>Text.</p></section></body></html>'
    )
    css = print_stylesheet()
    first = html_to_pdf(page, css)
    assert first == html_to_pdf(page, css)
    assert first != html_to_pdf(page.replace("Text.", "Other text."), css)


def test_disclosure_rule_comes_from_the_spec_where_it_has_one():
    from types import SimpleNamespace

    from kinship_eval.report.render import rule_from_spec

    assert rule_from_spec(SimpleNamespace(report=SimpleNamespace())) == sdc.SDCRule()
    spec = SimpleNamespace(report=SimpleNamespace(sdc_threshold=20, sdc_rounding_base=10))
    assert rule_from_spec(spec) == sdc.SDCRule(threshold=20, rounding_base=10)


def test_whole_number_columns_are_published_as_integers(built, report):
    for key, t in report.tables.items():
        whole = [c for c in t.frame.columns if t.column_format(c) == "d0"]
        if not whole:
            continue
        text = pd.read_csv(built["out"] / "tables" / f"{key}.csv", dtype=str, keep_default_na=False)
        for col in whole:
            assert not text[col].str.fullmatch(r"-?\d+\.0").any(), (key, col)
