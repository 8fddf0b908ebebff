"""The PDF report: a pure function of the HTML report and a print stylesheet (WeasyPrint).

The print stylesheet (``reports/templates/print.css``) turns the HTML into a paged document: a
cover page, a contents page with page numbers (``target-counter``), page numbers in the footer
and a running header with the title (and "ILLUSTRATIVE" for illustrative runs, taken from the
``data-running-head`` attribute of the report's ``<header>``). The PDF is tagged for
accessibility; its identifier is derived from the HTML and embedded fonts get a fixed timestamp
(``SOURCE_DATE_EPOCH``, 0 unless set), so the same HTML gives the same PDF, byte for byte.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

__all__ = ["html_to_pdf", "with_print_styles", "write_pdf"]


def with_print_styles(html: str, print_css: str) -> str:
    """The HTML with the print stylesheet as its last style sheet.

    Added as an author style sheet after the report's own, so its rules win over the screen
    styles of equal specificity (style sheets passed to WeasyPrint separately are user style
    sheets, which lose to the document's own).
    """
    block = f'<style media="print">\n{print_css}\n</style>\n'
    head_end = html.find("</head>")
    if head_end < 0:
        return block + html
    return html[:head_end] + block + html[head_end:]


def html_to_pdf(html: str, print_css: str, *, base_url: str | None = None) -> bytes:
    """Render HTML to PDF bytes with the print stylesheet.

    Parameters
    ----------
    html
        The complete report HTML (self-contained: images embedded).
    print_css
        CSS applied on top of the HTML's own styles (``@page`` rules, page breaks); see
        :func:`with_print_styles`.
    base_url
        Base for any relative URL in the HTML (none in the self-contained report).

    Returns
    -------
    bytes
        The PDF.
    """
    identifier = hashlib.sha256((html + print_css).encode("utf-8")).hexdigest()[:32].encode()
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)  # font-subsetting notices are not the user's concern
    # embedded font subsets carry a timestamp; a fixed one makes the PDF reproducible
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = epoch or "0"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="weasyprint")
            from weasyprint import HTML

            document = HTML(string=with_print_styles(html, print_css), base_url=base_url).render(
                pdf_tags=True
            )
            return document.write_pdf(pdf_identifier=identifier, pdf_tags=True)
    finally:
        logger.setLevel(level)
        if epoch is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)


def write_pdf(html: str, print_css: str, path: str | Path) -> Path:
    """Write :func:`html_to_pdf` of ``html`` to ``path``."""
    out = Path(path)
    out.write_bytes(html_to_pdf(html, print_css))
    return out
