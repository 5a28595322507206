"""The layout of a report, independent of its format: a title, then sections of blocks
(key figures, paragraphs, tables, charts). Reports build one in the reader's language, with
every label already translated and every number already formatted where it is shown as
text; `gateway.reports.render` turns it into HTML, PDF or CSV.

Charts carry their numbers, not pictures: HTML and PDF draw them as SVG, CSV lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Tone(StrEnum):
    """How a figure or a cell reads: good (passed, saved), bad (failed, over target), warn
    (needs a person: a manual check), or plain."""

    PLAIN = "plain"
    GOOD = "good"
    WARN = "warn"
    BAD = "bad"


@dataclass(frozen=True)
class Figure:
    """A key figure: `value` is formatted with its unit ("1,234 kWh"); `note` compares it
    ("比上月 ▼ 8.2%")."""

    label: str
    value: str
    note: str = ""
    tone: Tone = Tone.PLAIN


@dataclass(frozen=True)
class Figures:
    items: list[Figure]


@dataclass(frozen=True)
class Paragraphs:
    """Plain text, one paragraph per item; `bullets` shows them as a list."""

    items: list[str]
    bullets: bool = False


Cell = str | int | float | None


@dataclass(frozen=True)
class Excerpt:
    """The rows of a long table worth reading (indexes into its `rows`, in the order shown),
    and a line that says which they are and where the rest is."""

    rows: list[int]
    note: str


@dataclass(frozen=True)
class Table:
    """A table: `key` names it in CSV (stable, English, e.g. "meters"); `columns` are the
    translated headers; numbers stay numbers (formatted for display by the renderer with
    `decimals` per column, raw in CSV); `tones` optionally colours cells (same shape as
    `rows`, or a shorter list of rows: missing means plain). With an `excerpt`, HTML and PDF
    show only its rows and its note, while CSV lists every row: a reader gets what is worth
    a look, a spreadsheet gets all."""

    key: str
    columns: list[str]
    rows: list[list[Cell]]
    decimals: list[int | None] = field(default_factory=list)  # per column; None: as given
    tones: list[list[Tone]] = field(default_factory=list)
    caption: str = ""
    excerpt: Excerpt | None = None


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]  # one per x label; None: no data


@dataclass(frozen=True)
class Chart:
    """A bar chart (`stacked` bars when several series) or a line chart over `x` labels."""

    key: str
    title: str
    unit: str
    x: list[str]
    series: list[Series]
    kind: str = "bar"  # "bar" or "line"
    stacked: bool = False


@dataclass(frozen=True)
class HeatMap:
    """Values over two axes: `values[row][column]` (None: no data), e.g. weekday × hour."""

    key: str
    title: str
    unit: str
    columns: list[str]
    rows: list[str]
    values: list[list[float | None]]


@dataclass(frozen=True)
class SignLine:
    """One place to sign: `label` with its colon ("检查人："), and who signed and when, or
    empty strings for a line left to sign by hand."""

    label: str
    name: str = ""
    when: str = ""


@dataclass(frozen=True)
class SignLines:
    """The signatures at the foot of a record that is printed and filed (检查人：＿＿)."""

    key: str
    lines: list[SignLine]


Block = Figures | Paragraphs | Table | Chart | HeatMap | SignLines


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block]


@dataclass(frozen=True)
class Document:
    """`lang` is "zh-CN" or "en"; `meta` are short label/value lines under the title
    (site, period, generated at, data as of)."""

    key: str  # e.g. "energy-2026-10": names downloads
    lang: str
    title: str
    meta: list[tuple[str, str]]
    sections: list[Section]
