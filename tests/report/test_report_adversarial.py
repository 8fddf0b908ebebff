"""Adversarial checks on the built report: disclosure control and reproducibility.

The report is built from a synthetic panel full of small counts, in which some pilot LA counts
are set to exact sentinel values (3 and 7 children). Every published copy of every table (HTML,
PDF text, spreadsheet, CSV) is then read back and checked against the 10-5 rule, and the rates
published beside the counts are checked not to give any suppressed count back. A second build from
the same inputs, through the command line, must give the same bytes.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kinship_eval.data.measures import COUNT_MEASURES
from kinship_eval.data.panel import DERIVED_COUNTS
from kinship_eval.report.provenance import git_revision
from kinship_eval.report.render import SPREADSHEET
from kinship_eval.report.spreadsheet import TABLE_START_ROW

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

#: Exact counts of children planted in the pilot LAs' data; none may ever be published.
SENTINELS = (3, 7)
THRESHOLD, BASE = 10, 5
N_LAS = 40
N_PILOT = 7
OUTCOME = "sgo_exits"  # the primary outcome is its rate per 10,000 children
REAL_YEARS = range(2016, 2026)
SMALL_MEASURES = ("sgo_exits", "cao_exits", "sgo_exits_kin", "cla_starts", "kinship_foster")
#: One year in which every count is 12-25 except these (LA index -> counts): single small counts
#: among large ones in a group (pilot or comparison LAs) and year.
LARGE_YEAR = 2020
LARGE_YEAR_SENTINELS = {
    0: {"cao_exits": 7},
    10: {"sgo_exits": 3},
    11: {"cao_exits": 7},
    12: {"cla_starts": 3},
}

SUPPRESSED = {"c", "[c]"}
NOT_A_COUNT = {"x", "[x]", "z", "[z]"}  # not available / not applicable: no value published
MINUS = "\N{MINUS SIGN}"


# ----------------------------------------------------------------------------- inputs
def _pilot_counts(index: int, year: int, large: int) -> dict[str, int]:
    """Counts of the pilot LAs: sentinels, rows forcing secondary suppression, and rows in which
    the SGO + CAO = kinship exits identity holds one small count next to large ones."""
    odd = year % 2 == 1
    if index == 0:
        return {"sgo_exits": 3, "cao_exits": 7}
    if index == 1:
        return {"sgo_exits": 7, "cao_exits": 3}
    if index == 2:
        return {"sgo_exits": 7 if odd else 3}
    if index == 3:  # one small SGO count in an otherwise large row
        return {"sgo_exits": 3 if year == 2019 else large, "cao_exits": large if odd else 7}
    if index == 4:
        return {
            "sgo_exits": 7 if year == 2021 else large,
            "cao_exits": 3 if year == 2018 else large,
        }
    if index == 5:  # SGO published, CAO suppressed, kinship exits published
        return {"sgo_exits": large, "cao_exits": 7 if odd else 3}
    return {}


def write_small_count_inputs(folder: Path) -> Path:
    """Write 40 synthetic LAs (7 pilot) whose counts are mostly 1-9 a year, and a spec.

    Every LA has every measure in every year, so the estimation sample is the whole panel."""
    rng = np.random.default_rng(20260227)
    codes = [f"E06{900000 + i:06d}" for i in range(N_LAS)]
    pd.DataFrame(
        {
            "la_code": codes,
            "old_la_code": [str(100 + i) for i in range(N_LAS)],
            "la_name": [f"LA {i}" for i in range(N_LAS)],
            "region_code": "E12000001",
            "region_name": "North East",
            "date_of_operation": "2009-01-01",
            "date_of_termination": "",
        }
    ).to_csv(folder / "las.csv", index=False)
    pd.DataFrame(columns=["predecessor_code", "successor_code", "effective_period", "note"]).to_csv(
        folder / "reorg.csv", index=False
    )
    rows = []
    for i, code in enumerate(codes):
        population = float(rng.integers(8_000, 20_000))
        for year in REAL_YEARS:
            if year == LARGE_YEAR:
                counts = {m: int(rng.integers(12, 26)) for m in SMALL_MEASURES}
                counts.update(LARGE_YEAR_SENTINELS.get(i, {}))
            else:
                counts = {m: int(rng.integers(1, 10)) for m in SMALL_MEASURES}
                if i < N_PILOT:
                    counts.update(_pilot_counts(i, year, int(rng.integers(12, 26))))
            counts["sgo_exits_kin"] = min(counts["sgo_exits_kin"], counts["sgo_exits"])
            rows.append((year, code, "population_0_17", population))
            rows += [(year, code, m, float(v)) for m, v in counts.items()]
    measures = pd.DataFrame(rows, columns=["period", "la_code", "measure", "value"])
    measures.assign(status="published", old_la_code="", la_name="", source="synthetic").to_csv(
        folder / "measures.csv", index=False
    )
    pd.DataFrame(
        {"la_code": codes[:N_PILOT], "start_date": "2026-04-01", "first_treated_period": 2027}
    ).to_csv(folder / "pilot.csv", index=False)
    spec = folder / "spec.yaml"
    spec.write_text(
        "name: small-counts\n"
        "data:\n  measures: measures.csv\n  geography: las.csv\n"
        "  reorganisations: reorg.csv\n  pilot_register: pilot.csv\n"
        "illustrative:\n  effect: 0.5\n  seed: 7\n"
        "period_start: 2016\n"
        f"outcome: {OUTCOME}_per_10k\n"
        "inference: cluster\n"
        "robustness:\n  estimators: [twfe]\n"
        "  outcomes: [kinship_exits_per_10k, cao_exits_per_10k]\n"
        "report:\n  pdf: false\n"
    )
    return spec


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    return write_small_count_inputs(tmp_path_factory.mktemp("small_counts"))


#: The first build: the pipeline and the report (with the PDF) in a fresh interpreter, which also
#: keeps the exact (unpublished) panel for the checks.
BUILD_WITH_PDF = """
import sys
import kinship_eval.pipeline as pipeline
from kinship_eval.report.render import render_outputs
from kinship_eval.spec import load_spec
spec, out, revision, exact = sys.argv[1:]
pipeline.git_revision = lambda *args, **kwargs: revision
results = pipeline.run(load_spec(spec))
render_outputs(results, out, pdf=True)
results.panel.frame.to_pickle(exact)
"""
#: The second build: ``kinship-eval run --spec SPEC --out DIR`` (no PDF, as the spec says).
BUILD_WITH_CLI = """
import sys
import kinship_eval.pipeline as pipeline
from kinship_eval.cli import main
revision = sys.argv[1]
pipeline.git_revision = lambda *args, **kwargs: revision
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def builds(spec_file) -> dict[str, Path]:
    """Two builds from the same inputs, each in a fresh interpreter with its own hash seed, run
    side by side.

    Fresh interpreters, as ``kinship-eval run`` is used. Both builds record the git revision
    read here: edits elsewhere in the working tree between the two builds would change it (and so
    the software table) without any fault in the report."""
    folder = spec_file.parent
    paths = {"a": folder / "build_a", "b": folder / "build_b", "exact": folder / "exact.pkl"}
    revision = git_revision(REPO)
    spec, out_a, out_b, exact = map(str, (spec_file, paths["a"], paths["b"], paths["exact"]))
    commands = {
        "a": ["-c", BUILD_WITH_PDF, spec, out_a, revision, exact],
        "b": ["-c", BUILD_WITH_CLI, revision, "run", "--spec", spec, "--out", out_b],
    }
    procs = {
        key: subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, (key, args) in enumerate(commands.items(), start=1)
    }
    errors = {key: proc.communicate(timeout=300)[1] for key, proc in procs.items()}
    for key, proc in procs.items():
        assert proc.returncode == 0, f"build {key}: {errors[key]}"
    return paths


# ----------------------------------------------------------------------------- reading tables
@dataclass
class Table:
    """One published table as read back: its title, header and rows (row label first)."""

    source: str
    title: str
    header: list[str]
    rows: list[list[Any]]


def _norm(text: str) -> str:
    return " ".join(text.split())


class HTMLTables(HTMLParser):
    """Captions, header rows and body rows of every ``<table>``, as text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self._caption: list[str] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(Table("html", "", [], []))
        elif tag == "caption":
            self._caption = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption" and self._caption is not None:
            self.tables[-1].title = _norm("".join(self._caption))
            self._caption = None
        elif tag == "thead":
            self._in_head = False
        elif tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append(_norm("".join(self._cell)))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._in_head:
                self.tables[-1].header = self._row
            else:
                self.tables[-1].rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._caption is not None:
            self._caption.append(data)


def html_tables(out: Path) -> list[Table]:
    parser = HTMLTables()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    return parser.tables


def ods_tables(out: Path) -> list[Table]:
    sheets = pd.read_excel(
        out / SPREADSHEET, engine="odf", sheet_name=None, header=None, dtype=object
    )
    tables = []
    for name, sheet in sheets.items():
        if not name.startswith("Table_"):
            continue
        header = [str(h) for h in sheet.iloc[TABLE_START_ROW - 1].tolist()]
        body = sheet.iloc[TABLE_START_ROW:]
        rows = [list(r) for r in body.itertuples(index=False)]
        tables.append(Table(f"ods:{name}", str(sheet.iloc[0, 0]), header, rows))
    return tables


def csv_tables(out: Path, titled: list[Table]) -> list[Table]:
    """Every CSV under tables/, titled from the spreadsheet sheet with the same header."""
    tables = []
    for path in sorted((out / "tables").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        header = list(frame.columns)
        title = next((t.title for t in titled if t.header == header), "")
        tables.append(Table(f"csv:{path.name}", title, header, frame.to_numpy().tolist()))
    return tables


def pdf_tables(out: Path, html: list[Table]) -> list[Table]:
    """The PDF rows of every HTML table that holds counts, read from ``pdftotext -layout``.

    A body line is the row label of the HTML table followed by one token per other column; the
    columns are the HTML table's (the PDF is the same HTML, paged)."""
    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line.strip() for line in text.splitlines()]
    tables = []
    for t in html:
        if not count_columns(t):
            continue
        number = re.match(r"Table (\d+):", t.title).group(1)
        start = next(i for i, line in enumerate(lines) if line.startswith(f"Table {number}:"))
        labels = sorted({str(r[0]) for r in t.rows}, key=len, reverse=True)
        rows = []
        for line in lines[start + 1 :]:
            if line.startswith("Source:"):
                break
            label = next((lb for lb in labels if line == lb or line.startswith(lb + " ")), None)
            if label is None:
                continue
            cells = line[len(label) :].split()
            if len(cells) == len(t.header) - 1:
                rows.append([label, *cells])
        assert {r[0] for r in rows} == {str(r[0]) for r in t.rows}, f"PDF rows of {t.title}"
        tables.append(Table(f"pdf:Table {number}", t.title, t.header, rows))
    return tables


# ----------------------------------------------------------------------------- count columns
#: A table whose title says its cells are numbers of children (the counts behind the primary
#: outcome, by LA and year): every column but the row label holds counts, whatever its header
#: (the headers there are years and "Total").
COUNT_TABLE_TITLE = re.compile(r"\(number of children\)", re.IGNORECASE)
#: Elsewhere a column holds counts of children if its header says so ...
COUNT_HEADER = re.compile(
    r"\bchildren\b|\bnumber\b|\bcount\b|\bexits\b|\bentries\b|\bstarts\b", re.IGNORECASE
)
#: ... and is not a rate, share, amount, statistic, mean, year or a count of LAs or bytes.
NOT_COUNT_HEADER = re.compile(
    r"per 10,000|\brates?\b|%|£|p-value|\bCI\b|confidence|standard error|\bSE\b|\bmeans?\b|"
    r"median|number of LAs|LAs \(number\)|bytes|year ending|years relative|years since|"
    r"difference|estimate|effect|ratio|\bBCR\b|NPSV|probability|percentile",
    re.IGNORECASE,
)


def count_columns(table: Table) -> list[int]:
    """Positions of the columns of ``table`` that hold counts of children."""
    if COUNT_TABLE_TITLE.search(table.title):
        return list(range(1, len(table.header)))
    return [
        i
        for i, h in enumerate(table.header)
        if COUNT_HEADER.search(h) and not NOT_COUNT_HEADER.search(h)
    ]


def _number(value: Any) -> float | None:
    """A published cell as a number (None for text and markers)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().replace(",", "").replace(MINUS, "-")
    try:
        return float(text)
    except ValueError:
        return None


def _marker(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() in SUPPRESSED | NOT_A_COUNT:
        return value.strip()
    return None


def cell_problem(value: Any) -> str | None:
    """Why a published count cell breaks the 10-5 rule (None if it does not)."""
    if _marker(value):
        return None
    v = _number(value)
    if v is None:
        return f"not a count: {value!r}"
    if v == 0:
        return None  # zeros are published: a true zero says nothing about any one child
    if v in SENTINELS:
        return f"sentinel count {v:g} published"
    if v < THRESHOLD:
        return f"count {v:g} below {THRESHOLD}"
    if v % BASE:
        return f"count {v:g} not rounded to a multiple of {BASE}"
    return None


def lonely_suppressions(table: Table, cols: list[int]) -> list[str]:
    """Lines (a row or column of counts with a published total) holding exactly one suppressed
    cell: that cell would be the total minus the others."""
    names = [table.header[i] for i in cols]
    grid = {(str(r[0]), table.header[i]): r[i] for r in table.rows for i in cols}
    labels = [str(r[0]) for r in table.rows]
    lines = []
    if "Total" in names:
        members = [c for c in names if c != "Total"]
        lines += [([(lb, c) for c in members], (lb, "Total")) for lb in labels]
    if "Total" in labels:
        members = [lb for lb in labels if lb != "Total"]
        lines += [([(lb, c) for lb in members], ("Total", c)) for c in names]
    problems = []
    for members, total in lines:
        if _number(grid[total]) is None:
            continue  # the total is not published
        hidden = [m for m in members if _marker(grid[m]) in SUPPRESSED]
        if len(hidden) == 1:
            problems.append(f"{table.source}: {hidden[0]} is the only suppressed cell of its line")
    return problems


# ----------------------------------------------------------------------------- rates
def _rate_header(measure: str) -> str:
    label = COUNT_MEASURES.get(measure) or DERIVED_COUNTS[measure][1]
    return f"{label} (per 10,000 children)"


def rate_problems(panel: Table, exact: pd.DataFrame, counts: Table, outcome: str) -> list[str]:
    """Rates in the panel extract that reveal a suppressed count.

    * a rate whose count is 1-9 children must be suppressed;
    * in each row, SGO + CAO = kinship exits: never exactly one of the three rates suppressed;
    * the report publishes each rate's mean over the pilot and over the comparison LAs by year
      (trends, event study) and over years (balance, impact), with the number of LAs: in a group
      and year, never exactly one rate suppressed (it would be the mean x the number of LAs minus
      the others);
    * a count suppressed in the counts table (``counts``, of the ``outcome`` measure) must not be
      published as a rate here: rate x the public population gives the count back, undoing the
      secondary suppression.
    """
    col = {h: i for i, h in enumerate(panel.header)}
    year = col["Year ending 31 March"]
    by_code = {(r[col["LA code"]], int(r[year])): r for r in panel.rows}
    by_name = {(r[col["LA name"]], int(r[year])): r for r in panel.rows}
    measures = [m for m in [*COUNT_MEASURES, *DERIVED_COUNTS] if _rate_header(m) in col]
    problems = []
    for rec in exact.to_dict("records"):
        row = by_code[(rec["la_code"], int(rec["period"]))]
        for m in measures:
            v = rec[m]
            if pd.notna(v) and 0 < v < THRESHOLD and _marker(row[col[_rate_header(m)]]) is None:
                problems.append(
                    f"{panel.source}: {rec['la_code']} {rec['period']} {m} rate published for "
                    f"{v:g} children"
                )
    for name, (parts, _label) in DERIVED_COUNTS.items():
        line = [col[_rate_header(m)] for m in [*parts, name]]
        for r in panel.rows:
            if _marker(r[line[-1]]) in NOT_A_COUNT:
                continue
            if sum(_marker(r[i]) in SUPPRESSED for i in line) == 1:
                problems.append(
                    f"{panel.source}: {r[0]} {r[year]} {[*parts, name]} rates "
                    f"{[r[i] for i in line]}: the suppressed one is the others' difference"
                )
    groups: dict[tuple[str, int], list[list[Any]]] = {}
    for r in panel.rows:
        groups.setdefault((str(r[col["Pilot LA"]]), int(r[year])), []).append(r)
    for m in measures:
        i = col[_rate_header(m)]
        for (pilot, period), rows in groups.items():
            if sum(_marker(r[i]) in SUPPRESSED for r in rows) == 1:
                problems.append(
                    f"{panel.source}: {m} rate of one LA suppressed among pilot={pilot} LAs in "
                    f"{period}: the group mean gives it back"
                )
    rate = col[_rate_header(outcome)]
    for r in counts.rows:
        for i, h in enumerate(counts.header):
            if i == 0 or h == "Total" or r[0] == "Total" or _marker(r[i]) not in SUPPRESSED:
                continue
            published = by_name[(str(r[0]), int(h.split()[0]))][rate]
            if _marker(published) not in SUPPRESSED:
                problems.append(
                    f"{panel.source}: {r[0]} {h}: count suppressed in {counts.source} but its "
                    f"rate {published} is published"
                )
    return problems


# ----------------------------------------------------------------------------- tests
def test_no_count_of_fewer_than_ten_children_is_published_or_recoverable(builds):
    out = builds["a"]
    html = html_tables(out)
    ods = ods_tables(out)
    csv = csv_tables(out, ods)
    formats = {"html", "ods", "csv"} | ({"pdf"} if shutil.which("pdftotext") else set())
    pdf = pdf_tables(out, html) if "pdf" in formats else []
    tables = [*html, *pdf, *ods, *csv]
    exact = pd.read_pickle(builds["exact"])
    pilot = exact.loc[exact["pilot"]]
    exact_counts = {(str(r["la_name"]), int(r["period"])): r[OUTCOME] for _, r in pilot.iterrows()}
    # the planted sentinels are in the data the report is built from
    real = pilot.loc[pilot["period"].isin(REAL_YEARS)]
    for value in SENTINELS:
        assert (real[OUTCOME] == value).sum() >= 5
        assert (real["cao_exits"] == value).sum() >= 5
    large_year = exact.loc[exact["period"].eq(LARGE_YEAR)].set_index("la_code")
    for i, planted in LARGE_YEAR_SENTINELS.items():
        for m, v in planted.items():
            assert large_year.loc[f"E06{900000 + i:06d}", m] == v
    assert exact[f"{OUTCOME}_per_10k"].notna().all()  # group means cover every panel row

    problems: list[str] = []
    checked: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    count_tables: dict[str, set[str]] = {}
    for t in tables:
        cols = count_columns(t)
        if not cols:
            continue
        fmt = t.source.split(":")[0]
        count_tables.setdefault(fmt, set()).add(t.title)
        for r in t.rows:
            for i in cols:
                problem = cell_problem(r[i])
                if problem:
                    problems.append(f"{t.source} [{r[0]}, {t.header[i]}]: {problem}")
                checked[fmt] = checked.get(fmt, 0) + 1
                suppressed[fmt] = suppressed.get(fmt, 0) + (_marker(r[i]) in SUPPRESSED)
        problems += lonely_suppressions(t, cols)
        if COUNT_TABLE_TITLE.search(t.title):  # every exact count of 1-9 children is suppressed
            for r in t.rows:
                for i in cols:
                    if "Total" in (r[0], t.header[i]):
                        continue
                    v = exact_counts[(str(r[0]), int(t.header[i].split()[0]))]
                    if 0 < v < THRESHOLD and _marker(r[i]) not in SUPPRESSED:
                        problems.append(f"{t.source} [{r[0]}, {t.header[i]}]: {v:g} is {r[i]}")
    assert not problems, "\n".join(problems[:40])

    # the check saw both tables of counts, with suppressed cells, in every format
    assert set(count_tables) == formats
    for fmt, titles in count_tables.items():
        assert any(COUNT_TABLE_TITLE.search(title) for title in titles), fmt
        assert any("modelled to leave care" in title for title in titles), fmt
        assert checked[fmt] >= 100, (fmt, checked)
        assert suppressed[fmt] >= 50, (fmt, suppressed)

    counts_csv = next(t for t in csv if t.source == "csv:outcome_counts.csv")
    counts_ods = next(t for t in ods if t.header == counts_csv.header)
    panel_csv = next(t for t in csv if t.source == "csv:panel.csv")
    panel_ods = next(t for t in ods if t.header == panel_csv.header)
    problems = rate_problems(panel_csv, exact, counts_csv, OUTCOME)
    problems += rate_problems(panel_ods, exact, counts_ods, OUTCOME)
    assert not problems, "\n".join(problems[:40])


def test_two_builds_from_the_same_inputs_are_byte_identical(builds):
    out_a, out_b = builds["a"], builds["b"]

    def listing(out: Path) -> list[str]:
        return sorted(
            p.relative_to(out).as_posix()
            for sub in ("tables", "figures")
            for p in (out / sub).rglob("*")
            if p.is_file()
        )

    files = listing(out_a)
    assert files == listing(out_b)
    assert {".csv", ".png", ".svg"} == {Path(f).suffix for f in files}
    assert len([f for f in files if f.startswith("figures/")]) >= 8
    differ = [
        f for f in [*files, SPREADSHEET] if (out_a / f).read_bytes() != (out_b / f).read_bytes()
    ]
    assert not differ

    html_a = (out_a / "report.html").read_text(encoding="utf-8")
    html_b = (out_b / "report.html").read_text(encoding="utf-8")
    diff = difflib.unified_diff(html_a.splitlines(), html_b.splitlines(), lineterm="", n=0)
    assert html_a == html_b, "\n".join(list(diff)[:20])
