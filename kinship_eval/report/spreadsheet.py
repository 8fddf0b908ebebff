"""The report's tables as an accessible OpenDocument spreadsheet (``report_tables.ods``).

Follows the Government Analysis Function guidance on releasing statistics in spreadsheets (the
conventions the ``gptables`` package implements):

* a **Cover** sheet (title, what the workbook holds, the illustrative warning, source, shorthand,
  disclosure control, contact), a **Contents** sheet (one row per table, with a link to its sheet)
  and a **Notes** sheet (one row per note), then one table per sheet;
* every table sheet has its title in cell A1, a line on what the sheet holds in A2, the source in
  A3 and the illustrative status in A4; the table itself always starts in row
  :data:`TABLE_START_ROW` with one header row (bold, marked as a header row and as the header of
  a named database range), no merged cells and no blank rows, columns or cells inside it;
* units are in column headers; notes are referred to as ``[note N]`` in titles; suppressed cells
  hold ``[c]``, unavailable ones ``[x]`` and not-applicable ones ``[z]``, explained on the cover.

The file is written with fixed timestamps, so an unchanged run writes identical bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odf import dc, meta, number, style, table, text
from odf.element import Element
from odf.opendocument import OpenDocumentSpreadsheet

from kinship_eval.report.sdc import MARKERS
from kinship_eval.report.tables import Marker, Note, PublishedTable, note_numbers

__all__ = ["TABLE_START_ROW", "CoverInfo", "write_ods"]

#: 1-based row where every table sheet's header row is.
TABLE_START_ROW = 5
SHORTHAND = {
    "[c]": "Confidential: suppressed for statistical disclosure control.",
    "[x]": "Not available: suppressed or not collected at source, or not applicable to the LA "
    "and year.",
    "[z]": "Not applicable.",
}
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class CoverInfo:
    """What the cover sheet says."""

    title: str
    description: str
    source: str
    illustrative_warning: str | None = None
    disclosure: str = ""
    contact: str = "[Contact details to be added before publication]"
    reproducibility: list[str] = field(default_factory=list)


class _Styles:
    """The automatic styles the workbook uses, created once."""

    def __init__(self, doc: OpenDocumentSpreadsheet) -> None:
        self.doc = doc
        default = style.DefaultStyle(family="table-cell")
        default.addElement(
            style.TextProperties(language="en", country="GB", fontname="Arial", fontsize="10pt")
        )
        doc.styles.addElement(default)
        self.title = self._cell("title", bold=True, size="14pt")
        self.heading = self._cell("heading", bold=True, size="12pt")
        self.header = self._cell("header", bold=True, wrap=True, border=True)
        self.text = self._cell("text", wrap=True)
        self.plain = self._cell("plain")
        self.link = self._cell("link", underline=True)
        self.numbers: dict[str, style.Style] = {}
        self.columns: dict[str, style.Style] = {}

    def _cell(
        self,
        name: str,
        *,
        bold: bool = False,
        size: str | None = None,
        wrap: bool = False,
        border: bool = False,
        underline: bool = False,
        data_style: str | None = None,
    ) -> style.Style:
        kwargs: dict[str, Any] = {"name": name, "family": "table-cell"}
        if data_style:
            kwargs["datastylename"] = data_style
        st = style.Style(**kwargs)
        tprops: dict[str, Any] = {}
        if bold:
            tprops.update(fontweight="bold", fontweightasian="bold", fontweightcomplex="bold")
        if size:
            tprops["fontsize"] = size
        if underline:
            tprops.update(textunderlinestyle="solid", textunderlinewidth="auto", color="#1D70B8")
        if tprops:
            st.addElement(style.TextProperties(**tprops))
        cprops: dict[str, Any] = {"verticalalign": "top"}
        if wrap:
            cprops["wrapoption"] = "wrap"
        if border:
            cprops["borderbottom"] = "0.5pt solid #000000"
        st.addElement(style.TableCellProperties(**cprops))
        self.doc.automaticstyles.addElement(st)
        return st

    def number(self, decimals: int) -> style.Style:
        key = f"N{decimals}"
        if key not in self.numbers:
            ns = number.NumberStyle(name=f"{key}fmt")
            ns.addElement(
                number.Number(decimalplaces=decimals, minintegerdigits=1, grouping="true")
            )
            self.doc.automaticstyles.addElement(ns)
            self.numbers[key] = self._cell(f"{key}cell", data_style=f"{key}fmt")
        return self.numbers[key]

    def column(self, width_cm: float) -> style.Style:
        key = f"{width_cm:.1f}"
        if key not in self.columns:
            st = style.Style(name=f"col{len(self.columns)}", family="table-column")
            st.addElement(style.TableColumnProperties(columnwidth=f"{key}cm"))
            self.doc.automaticstyles.addElement(st)
            self.columns[key] = st
        return self.columns[key]


def _text_cell(value: str, st: style.Style | None = None) -> table.TableCell:
    kwargs: dict[str, Any] = {"valuetype": "string"}
    if st is not None:
        kwargs["stylename"] = st
    cell = table.TableCell(**kwargs)
    for line in str(value).split("\n"):
        cell.addElement(text.P(text=line))
    return cell


def _number_cell(value: float, display: str, st: style.Style | None) -> table.TableCell:
    kwargs: dict[str, Any] = {"valuetype": "float", "value": repr(float(value))}
    if st is not None:
        kwargs["stylename"] = st
    cell = table.TableCell(**kwargs)
    cell.addElement(text.P(text=display))
    return cell


def _link_cell(label: str, target: str, st: style.Style) -> table.TableCell:
    cell = table.TableCell(valuetype="string", stylename=st)
    p = text.P()
    p.addElement(text.A(type="simple", href=f"#{target}.A1", text=label))
    cell.addElement(p)
    return cell


def _row(cells: Sequence[table.TableCell], *, header: bool = False) -> table.TableRow:
    row = table.TableRow()
    for c in cells:
        row.addElement(c)
    if header:
        hr = table.TableHeaderRows()
        hr.addElement(row)
        return hr
    return row


def _columns(sheet: table.Table, styles: _Styles, widths: Sequence[float]) -> None:
    for w in widths:
        sheet.addElement(table.TableColumn(stylename=styles.column(w)))


def _width(values: Sequence[str], header: str) -> float:
    longest = max([len(header) / 2.2, *[len(v) for v in values]])
    return float(min(max(2.2, 0.2 * longest + 0.6), 12.0))


def _column_letter(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def _preamble_sheet(
    name: str, title: str, lines: Sequence[str], styles: _Styles, widths: Sequence[float]
) -> table.Table:
    sheet = table.Table(name=name)
    _columns(sheet, styles, widths)
    sheet.addElement(_row([_text_cell(title, styles.title)]))
    for line in lines:
        sheet.addElement(_row([_text_cell(line, styles.plain)]))
    return sheet


def _cover(info: CoverInfo, tables: Sequence[PublishedTable], styles: _Styles) -> table.Table:
    sheet = table.Table(name="Cover")
    _columns(sheet, styles, [24.0])
    sheet.addElement(_row([_text_cell(info.title, styles.title)]))
    if info.illustrative_warning:
        sheet.addElement(_row([_text_cell(info.illustrative_warning, styles.heading)]))
    sections: list[tuple[str, list[str]]] = [
        ("About these tables", [info.description]),
    ]
    if info.illustrative_warning:
        sections.append(
            (
                "Illustrative (simulated) values",
                [
                    "Tables whose title mentions 'illustrative', and whose cell A4 says so, "
                    "contain values that rest on simulated years. They are not evidence about "
                    "the pilot."
                ],
            )
        )
    used = sorted({MARKERS["ods"][m] for t in tables for m in t.markers_used()})
    sections += [
        ("Source", [info.source]),
        (
            "Shorthand used in these tables",
            [f"{m}: {SHORTHAND[m]}" for m in used] or ["None."],
        ),
        ("Statistical disclosure control", [info.disclosure]),
        ("Contact", [info.contact]),
        ("Reproducibility", info.reproducibility or ["Not recorded."]),
    ]
    for heading, lines in sections:
        sheet.addElement(_row([_text_cell(heading, styles.heading)]))
        for line in lines:
            sheet.addElement(_row([_text_cell(line, styles.text)]))
    return sheet


def _contents(tables: Sequence[PublishedTable], styles: _Styles) -> table.Table:
    sheet = _preamble_sheet(
        "Contents",
        "Table of contents",
        ["This worksheet contains one table. Select a sheet name to go to that table."],
        styles,
        [3.0, 14.0, 18.0, 3.5],
    )
    sheet.addElement(
        _row(
            [
                _text_cell("Sheet name", styles.header),
                _text_cell("Table title", styles.header),
                _text_cell("Description", styles.header),
                _text_cell("Illustrative", styles.header),
            ],
            header=True,
        )
    )
    for t in tables:
        sheet.addElement(
            _row(
                [
                    _link_cell(t.sheet_name, t.sheet_name, styles.link),
                    _text_cell(f"{t.label}: {t.title}", styles.text),
                    _text_cell(t.description, styles.text),
                    _text_cell("Yes" if t.illustrative else "No", styles.plain),
                ]
            )
        )
    return sheet


def _notes(ordered: Sequence[tuple[int, Note]], styles: _Styles) -> table.Table:
    sheet = _preamble_sheet(
        "Notes",
        "Notes",
        ["This worksheet contains one table. Notes are referred to as [note N] in table titles."],
        styles,
        [3.0, 24.0],
    )
    sheet.addElement(
        _row(
            [_text_cell("Note number", styles.header), _text_cell("Note text", styles.header)],
            header=True,
        )
    )
    for n, note in ordered:
        sheet.addElement(
            _row([_text_cell(f"[note {n}]", styles.plain), _text_cell(note.text, styles.text)])
        )
    if not ordered:
        sheet.addElement(_row([_text_cell("None", styles.plain), _text_cell("No notes.")]))
    return sheet


def _table_sheet(
    t: PublishedTable, numbers: dict[str, int], styles: _Styles
) -> tuple[table.Table, str]:
    refs = " ".join(f"[note {n}]" for n in sorted(numbers[k] for k in t.notes if k in numbers))
    title = f"{t.label}: {t.title}" + (f" {refs}" if refs else "")
    used = sorted(MARKERS["ods"][m] for m in t.markers_used())
    shorthand = f" Shorthand used: {', '.join(used)} (see the Cover sheet)." if used else ""
    status = (
        "ILLUSTRATIVE: this table contains values that rest on simulated years; they are not data."
        if t.illustrative
        else "This table contains no illustrative (simulated) values."
    )
    lines = [
        "This worksheet contains one table. Some cells refer to notes, listed in the Notes "
        f"worksheet.{shorthand}",
        f"Source: {t.source}",
        status,
    ]
    frame = t.frame
    fmts = {c: t.column_format(c) for c in frame.columns}
    display = {c: [t.cell_text(v, fmts[c], output="ods") for v in frame[c]] for c in frame.columns}
    widths = [_width(display[c], c) for c in frame.columns]
    sheet = table.Table(name=t.sheet_name)
    _columns(sheet, styles, widths)
    sheet.addElement(_row([_text_cell(title, styles.title)]))
    for line in lines:
        sheet.addElement(_row([_text_cell(line, styles.plain)]))
    assert len(lines) + 2 == TABLE_START_ROW
    sheet.addElement(_row([_text_cell(c, styles.header) for c in frame.columns], header=True))
    columns = {c: frame[c].tolist() for c in frame.columns}
    for i in range(len(frame)):
        cells = []
        for c in frame.columns:
            v = columns[c][i]
            shown = display[c][i]
            fmt = fmts[c]
            if isinstance(v, (Marker, str)) or fmt == "t":
                cells.append(_text_cell(shown, styles.text if fmt == "t" else styles.plain))
            else:
                st = None
                if fmt.startswith("d"):
                    st = styles.number(int(fmt[1:]))
                elif fmt == "p":
                    st = styles.number(4)
                cells.append(_number_cell(float(v), shown, st))
        sheet.addElement(_row(cells))
    last_col = _column_letter(len(frame.columns) - 1)
    last_row = TABLE_START_ROW + len(frame)
    address = f"{t.sheet_name}.A{TABLE_START_ROW}:{t.sheet_name}.{last_col}{last_row}"
    return sheet, address


def write_ods(
    tables: Sequence[PublishedTable],
    notes: dict[str, Note],
    path: str | Path,
    *,
    cover: CoverInfo,
) -> Path:
    """Write the workbook: Cover, Contents, Notes, then one sheet per table.

    Parameters
    ----------
    tables
        Numbered tables, in order.
    notes
        Notes by key; those referred to by a table are numbered in order of first reference.
    path
        Output file.
    cover
        What the cover sheet says.
    """
    # odfpy declares, in every document it writes, each namespace any element built in this
    # process has used; start from none so that the XML depends on this workbook alone
    Element.namespaces.clear()
    doc = OpenDocumentSpreadsheet()
    doc.meta.addElement(dc.Title(text=cover.title))
    doc.meta.addElement(dc.Language(text="en-GB"))
    doc.meta.addElement(meta.Generator(text="kinship_eval"))
    styles = _Styles(doc)
    numbers = note_numbers(tables, notes)
    ordered = sorted(((n, notes[k]) for k, n in numbers.items()), key=lambda x: x[0])
    doc.spreadsheet.addElement(_cover(cover, tables, styles))
    doc.spreadsheet.addElement(_contents(tables, styles))
    doc.spreadsheet.addElement(_notes(ordered, styles))
    ranges = table.DatabaseRanges()
    for t in tables:
        sheet, address = _table_sheet(t, numbers, styles)
        doc.spreadsheet.addElement(sheet)
        ranges.addElement(
            table.DatabaseRange(
                name=f"{t.sheet_name}_data", targetrangeaddress=address, containsheader="true"
            )
        )
    doc.spreadsheet.addElement(ranges)
    buf = io.BytesIO()
    doc.write(buf)
    out = Path(path)
    out.write_bytes(_fixed_timestamps(buf.getvalue()))
    return out


def _fixed_timestamps(data: bytes) -> bytes:
    """Re-pack a zip with fixed member timestamps (``mimetype`` first and stored)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            fixed.compress_type = (
                zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            )
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))
    return buf.getvalue()
