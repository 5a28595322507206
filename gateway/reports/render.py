"""A `Document` as HTML (a page that works offline: no assets, no scripts), as an A4 PDF made
from that HTML by WeasyPrint, or as CSV for spreadsheets.

The PDF embeds subsets of the fonts it uses, so Chinese needs a CJK font on the server
(Debian's `fonts-noto-cjk`, first in `svg.FONT_STACK`), and WeasyPrint needs Pango.
"""

from __future__ import annotations

import base64
import csv as csvlib
import io
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import weasyprint
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from weasyprint.text.fonts import FontConfiguration

from gateway.reports import svg
from gateway.reports.document import Cell, Chart, Document, Figures, HeatMap, Paragraphs, SignLines, Table, Tone

FORMATS: Final = ("html", "pdf", "csv")
_MEDIA_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}
# Excel takes a CSV file without a byte order mark for the locale's code page (GBK in China).
_BOM: Final = "\ufeff"
# Text that a spreadsheet would run as a formula; signed numbers ("+2.5%") are left alone.
_FORMULA: Final = re.compile(r"[=@\t\r]|[+-](?![\d.,]+%?$)")


@dataclass(frozen=True)
class _CellView:
    text: str
    numeric: bool  # right-aligned
    tone: Tone = Tone.PLAIN
    empty: bool = False

    @property
    def css_class(self) -> str:
        return " ".join(["num" if self.numeric else "text", f"tone-{self.tone}", *(["empty"] if self.empty else [])])


@dataclass(frozen=True)
class _TableView:
    header: list[_CellView]
    rows: list[list[_CellView]]
    font_size: float  # pt
    widths: list[float]  # per column, % of the table's width


# A table's width is the page's less its margins (180 mm ≈ 510 pt); its font is the first
# of these sizes at which its numbers and the least of its text fit.
_TABLE_WIDTH_PT: Final = 510.0
_TABLE_FONT_SIZES_PT: Final = (9.0, 8.0, 7.0)
_CELL_PADDING_EM: Final = 1.2  # as in the template, with some slack for the estimate
_MIN_TEXT_COLUMN_EM: Final = 6.0


def html(doc: Document, drawings_as_images: bool = False) -> str:
    """The page; with `drawings_as_images`, each chart is an image of its SVG rather than the
    SVG itself (see `pdf`)."""
    return _TEMPLATE.render(doc=doc, font_stack=svg.FONT_STACK,
                            drawing=_as_image if drawings_as_images else lambda d, _label: d)


def pdf(doc: Document) -> bytes:
    """The page as an A4 PDF. Its charts go in as images: WeasyPrint then neither parses their
    hundreds of elements as HTML nor computes a CSS style for each. One font configuration
    serves every PDF, one at a time: building it loads Fontconfig's fonts again (0.15 s), and
    Pango's font map is not to be shared by threads. Both: a 500-device monthly report's PDF
    2.42 → 1.94 s (docs/performance.md)."""
    global _fonts  # noqa: PLW0603 — made once, at the first PDF, so weasyprint's fonts load only when needed
    page = html(doc, drawings_as_images=True)
    with _PDF_LOCK:
        if _fonts is None:
            _fonts = FontConfiguration()
        body: bytes = weasyprint.HTML(string=page).write_pdf(font_config=_fonts)
    return body


_PDF_LOCK: Final = threading.Lock()
_SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"
_fonts: FontConfiguration | None = None


def _as_image(drawing: Markup, label: str) -> Markup:
    """An SVG as an `<img>` of itself (a file of its own, so it names its namespace; inline, the
    HTML parser knows it)."""
    data = base64.b64encode(str(drawing).replace("<svg ", f'<svg xmlns="{_SVG_NAMESPACE}" ', 1).encode()).decode()
    return Markup('<img alt="{}" src="data:image/svg+xml;base64,{}">').format(label, data)


def csv(doc: Document) -> str:
    """Meta lines, then each table, chart and heat map under a line with its key and title,
    with raw numbers; a blank line between them."""
    out = io.StringIO()
    out.write(_BOM)
    writer = csvlib.writer(out)
    writer.writerows([_csv_cell(label), _csv_cell(value)] for label, value in doc.meta)
    # Figures and paragraphs are left out: their numbers are in the tables.
    blocks = [b for s in doc.sections for b in s.blocks if not isinstance(b, Figures | Paragraphs)]
    for k, block in enumerate(blocks):
        if k or doc.meta:
            writer.writerow([])
        title, header, rows = _as_table(block)
        writer.writerow([block.key, _csv_cell(title)])
        writer.writerow([_csv_cell(h) for h in header])
        writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return out.getvalue()


def render(doc: Document, fmt: str) -> tuple[bytes, str, str]:
    """The document in `fmt` (one of `FORMATS`): body, media type and file name."""
    renderers: dict[str, Callable[[Document], bytes]] = {
        "html": lambda d: html(d).encode(),
        "pdf": pdf,
        "csv": lambda d: csv(d).encode(),
    }
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return renderers[fmt](doc), _MEDIA_TYPES[fmt], f"{doc.key}.{fmt}"


def _as_table(block: Table | Chart | HeatMap | SignLines) -> tuple[str, list[str], list[list[Cell]]]:
    """A block's title, header and rows as CSV lists them: a chart by x label, one column
    per series; a heat map by row label, one column per column label; signatures a line each."""
    if isinstance(block, Table):
        return block.caption, block.columns, block.rows
    if isinstance(block, SignLines):
        return "", ["", "", ""], [[line.label, line.name, line.when] for line in block.lines]
    title = f"{block.title} ({block.unit})" if block.unit else block.title
    if isinstance(block, Chart):
        columns = [s.values for s in block.series]
        rows = [[x, *(v[i] if i < len(v) else None for v in columns)] for i, x in enumerate(block.x)]
        return title, ["", *(s.name for s in block.series)], rows
    values = block.values
    rows = [[label, *(values[i] if i < len(values) else [])] for i, label in enumerate(block.rows)]
    return title, ["", *block.columns], rows


def _csv_cell(value: Cell) -> Cell:
    """Numbers as they are; text that a spreadsheet would run as a formula, quoted by a `'`."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def _table_view(table: Table) -> _TableView:
    """Cells as shown (the excerpt's rows, where the table has one): numbers formatted and
    right-aligned, with their column's header."""
    decimals = [table.decimals[j] if j < len(table.decimals) else None for j in range(len(table.columns))]
    shown = table.excerpt.rows if table.excerpt else range(len(table.rows))
    numeric_columns = {j for i in shown for j, v in enumerate(table.rows[i]) if _is_number(v)}
    rows = []
    for i in shown:
        row = table.rows[i]
        tones = table.tones[i] if i < len(table.tones) else []
        rows.append([
            _CellView(
                _cell_text(v, decimals[j] if j < len(decimals) else None),
                j in numeric_columns and not isinstance(v, str),
                tones[j] if j < len(tones) else Tone.PLAIN,
                v is None,
            )
            for j, v in enumerate(row)
        ])
    header = [_CellView(title, j in numeric_columns) for j, title in enumerate(table.columns)]
    return _TableView(header, rows, *_table_layout(header, rows))


def _table_layout(header: list[_CellView], rows: list[list[_CellView]]) -> tuple[float, list[float]]:
    """A font size and column widths that keep a table within the page, where a browser's
    automatic layout would overflow it (numbers do not wrap) or squeeze a text column to
    one character (Chinese wraps anywhere).

    Each column would like its widest cell and its header on one line. When that is too
    wide, headers of numbers take two lines and text columns give way, down to a few
    characters, at the largest font size where that is enough; at the smallest, every
    column shrinks, and numbers wrap rather than overflow."""
    need, least = [], []
    for j, title in enumerate(header):
        content = max((svg.text_width(row[j].text, 1) for row in rows if j < len(row)), default=0.0)
        need.append(max(content, svg.text_width(title.text, 1)) + _CELL_PADDING_EM)
        # Two lines of header, without breaking a Latin word ("(kWh)").
        words = [svg.text_width(w, 1) for w in re.findall(r"[!-~]+", title.text)]
        two_lines = max(content, svg.text_width(title.text, 1) / 2, *words) + _CELL_PADDING_EM
        least.append(two_lines if title.numeric else min(need[-1], _MIN_TEXT_COLUMN_EM))
    size = next((s for s in _TABLE_FONT_SIZES_PT if sum(least) <= _TABLE_WIDTH_PT / s), _TABLE_FONT_SIZES_PT[-1])
    excess = sum(need) - _TABLE_WIDTH_PT / size
    slack = sum(need) - sum(least)
    if excess > 0 and slack > 0:
        need = [n - (n - m) * min(excess / slack, 1.0) for n, m in zip(need, least, strict=True)]
    return size, [100 * n / sum(need) for n in need]


def _is_number(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell_text(value: Cell, decimals: int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return svg.format_number(value, decimals)


def _template_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.reports"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests.update(
        figures=lambda b: isinstance(b, Figures),
        paragraphs=lambda b: isinstance(b, Paragraphs),
        table=lambda b: isinstance(b, Table),
        chart=lambda b: isinstance(b, Chart),
        heat_map=lambda b: isinstance(b, HeatMap),
        sign_lines=lambda b: isinstance(b, SignLines),
    )
    env.globals.update(table_view=_table_view, chart_svg=svg.chart, heat_map_svg=svg.heat_map)
    return env


_TEMPLATE: Final = _template_environment().get_template("report.html")
