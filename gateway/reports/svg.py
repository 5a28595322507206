"""Charts drawn on the server as inline SVG: reports are read on school intranets and
printed, so there is no JavaScript, and WeasyPrint draws the very same SVG into the PDF.

Coordinates are CSS pixels at the width of an A4 page's text (180 mm ≈ 680 px) and every
SVG is that wide, so that all charts share one scale and font sizes here are about what is
printed. There are no font metrics on the server: text widths are estimated generously.
WeasyPrint does not apply the page's CSS font to an inline SVG, hence `font-family` on
each SVG element.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from typing import Final

from markupsafe import Markup, escape

from gateway.reports.document import Chart, HeatMap, Series

FONT_STACK: Final = (
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif'
)
WIDTH: Final = 680
TEXT_SIZE: Final = 11
LINE_HEIGHT: Final = 18
PLOT_HEIGHT: Final = 190
HEAT_ROW_HEIGHT: Final = 22
HEAT_MAX_CELL_WIDTH: Final = 64
# Line charts mark every point up to this many x labels; beyond, only points without a
# neighbour (which a line cannot show).
MAX_MARKED_POINTS: Final = 40
TEXT_COLOUR: Final = "#555"
GRID_COLOUR: Final = "#e4e4e4"
AXIS_COLOUR: Final = "#9a9a9a"
EMPTY_CELL_COLOUR: Final = "#e2e2e2"
# Muted colours, in the order series use them.
PALETTE: Final = ("#3b6ea5", "#e0a33b", "#5a9e8c", "#c0605a", "#8a72b0", "#8a8a8a")
HEAT_LIGHT: Final = (222, 235, 247)
HEAT_DARK: Final = (8, 81, 156)
_NICE_MANTISSAS: Final = (1.0, 2.0, 2.5, 5.0)
_MAX_TICK_INTERVALS: Final = 5
_NARROW: Final = frozenset(" ,.:;'!|()[]-/°fijlrtI")
_WIDE: Final = frozenset("mwMW%@")

_Scale = Callable[[float], float]  # an x label's index or a y value to a coordinate


def format_number(value: float, decimals: int | None = None) -> str:
    """Thousands separators and a decimal point, as both zh-CN and en write numbers
    ("1,234.5"); `decimals` None keeps the value's own digits."""
    if decimals is None:
        return f"{value:,}"
    # Adding 0.0 turns a negative zero from rounding (-0.04 → "-0.0") into "0.0".
    return f"{round(value, decimals) + 0.0:,.{decimals}f}"


def text_width(text: str, size: float = TEXT_SIZE) -> float:
    """An estimate on the wide side of Noto Sans CJK's advances (regular and bold): CJK
    glyphs are square, Latin ones from about 0.3 em (punctuation, "i") to 0.9 em ("m")."""
    return size * sum(_advance(c) for c in text)


def _advance(c: str) -> float:
    if unicodedata.east_asian_width(c) in "WF":
        return 1.0
    if c.isdigit():
        return 0.58
    return 0.36 if c in _NARROW else 0.93 if c in _WIDE else 0.64


def nice_ticks(lo: float, hi: float) -> list[float]:
    """4 to 6 evenly spaced round values (steps of 1, 2, 2.5 or 5 × 10ⁿ) from at most `lo` to
    at least `hi`, which must be greater than `lo`.

    The smallest step that needs at most 5 intervals is taken: the next smaller one needed
    6 or more and is at most 2.5 times smaller, so this one needs at least 3."""
    exponent = math.floor(math.log10(hi - lo)) - 1  # a step that needs 10 or more intervals
    while True:
        for mantissa in _NICE_MANTISSAS:
            step = mantissa * 10.0**exponent
            first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
            if last - first <= _MAX_TICK_INTERVALS:
                return [i * step for i in range(first, last + 1)]
        exponent += 1


def chart(c: Chart) -> Markup:
    """A bar chart (grouped, or stacked when `c.stacked`) or a line chart, with a y axis in
    `c.unit` and a legend when there are several series."""
    n = max(len(c.x), 1)
    legend, top = _legend([s.name for s in c.series]) if len(c.series) > 1 else ([], 0.0)
    top += LINE_HEIGHT + 4  # the unit, above the axis
    stacked = c.kind == "bar" and c.stacked and len(c.series) > 1
    values = _stack_extents(c.series, len(c.x)) if stacked else [v for s in c.series for v in s.values if v is not None]
    ticks = nice_ticks(*_value_range(values, include_zero=c.kind == "bar"))
    tick_decimals = _decimals(ticks[1] - ticks[0])
    tick_labels = [format_number(t, tick_decimals) for t in ticks]
    left = max(text_width(label) for label in tick_labels) + 10
    right = 10.0
    # Wide x labels at either end need room beyond their slot.
    overhang = max((text_width(t) for t in c.x), default=0.0) / 2 - (WIDTH - left - right) / n / 2 + 4
    left, right = max(left, overhang), max(right, overhang)
    slot = (WIDTH - left - right) / n
    bottom = top + PLOT_HEIGHT

    def x_at(i: float) -> float:
        return left + slot * (i + 0.5)

    def y_at(v: float) -> float:
        return top + PLOT_HEIGHT * (ticks[-1] - v) / (ticks[-1] - ticks[0])

    parts = [*legend, _text(0, top - 10, c.unit)]
    for tick, label in zip(ticks, tick_labels, strict=True):
        parts.append(_line(left, y_at(tick), WIDTH - right, y_at(tick), GRID_COLOUR))
        parts.append(_text(left - 6, y_at(tick) + 4, label, anchor="end"))
    axis = y_at(0.0) if ticks[0] <= 0 <= ticks[-1] else bottom
    parts.append(_line(left, axis, WIDTH - right, axis, AXIS_COLOUR))
    parts += _x_labels(c.x, x_at, slot, bottom + 16)
    value_decimals = _decimals_for(values)
    if c.kind == "bar":
        parts += _bars(c, stacked, slot, x_at, y_at, value_decimals)
    else:
        parts += _lines(c, x_at, y_at, value_decimals)
    return _svg(c.title, bottom + 24, parts)


def heat_map(h: HeatMap) -> Markup:
    """Cells coloured from light (the smallest value) to dark (the largest) in one hue,
    with a legend of both; cells without data are left empty."""
    present = [v for row in h.values for v in row if v is not None]
    lo, hi = (min(present), max(present)) if present else (0.0, 0.0)
    decimals = _decimals_for(present)
    label_width = max((text_width(r) for r in h.rows), default=0.0) + 10
    cell_width = min((WIDTH - label_width) / max(len(h.columns), 1), HEAT_MAX_CELL_WIDTH)
    top = LINE_HEIGHT + 2

    def x_at(j: float) -> float:
        return label_width + cell_width * (j + 0.5)

    parts = _x_labels(h.columns, x_at, cell_width, top - 6)
    for i, row_label in enumerate(h.rows):
        y = top + i * HEAT_ROW_HEIGHT
        parts.append(_text(label_width - 8, y + HEAT_ROW_HEIGHT / 2 + 4, row_label, anchor="end"))
        row = h.values[i] if i < len(h.values) else []
        for j, column_label in enumerate(h.columns):
            v = row[j] if j < len(row) else None
            x = label_width + j * cell_width
            if v is None:
                parts.append(_rect(x + 1, y + 1, cell_width - 2, HEAT_ROW_HEIGHT - 2, "#fff", stroke=EMPTY_CELL_COLOUR))
            else:
                fill = _heat_colour((v - lo) / (hi - lo) if hi > lo else 0.5)
                tip = f"{row_label} · {column_label}: {format_number(v, decimals)} {h.unit}"
                parts.append(_rect(x + 0.5, y + 0.5, cell_width - 1, HEAT_ROW_HEIGHT - 1, fill, tip=tip))
    y = top + len(h.rows) * HEAT_ROW_HEIGHT + 12
    if present:
        parts += _heat_legend(lo, hi, decimals, h.unit, label_width, y)
        y += LINE_HEIGHT
    return _svg(h.title, y + 4, parts)


def _heat_legend(lo: float, hi: float, decimals: int, unit: str, x: float, y: float) -> list[str]:
    """"lo ▮▮▮▮▮ hi unit", or one swatch when every value is the same."""
    shades = [0.5] if hi == lo else [k / 4 for k in range(5)]
    parts: list[str] = []
    if hi > lo:
        parts.append(_text(x, y + 10, format_number(lo, decimals)))
        x += text_width(format_number(lo, decimals)) + 6
    for shade in shades:
        parts.append(_rect(x, y, 20, 12, _heat_colour(shade)))
        x += 21
    parts.append(_text(x + 5, y + 10, f"{format_number(hi, decimals)} {unit}"))
    return parts


def _heat_colour(t: float) -> str:
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(HEAT_LIGHT, HEAT_DARK, strict=True))


def _value(series: Series, i: int) -> float | None:
    return series.values[i] if i < len(series.values) else None


def _stack_extents(series: Sequence[Series], n: int) -> list[float]:
    """The top and bottom of each stack: positive values stack up, negative ones down."""
    extents: list[float] = []
    for i in range(n):
        column = [v for s in series if (v := _value(s, i)) is not None]
        extents += [sum(v for v in column if v > 0), sum(v for v in column if v < 0)]
    return extents


def _value_range(values: Sequence[float], include_zero: bool) -> tuple[float, float]:
    """What the y axis must show; a single value (or none) gets some room around it."""
    lo, hi = min(values, default=0.0), max(values, default=0.0)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if lo == hi:
        pad = abs(lo) / 10
        return (0.0, 1.0) if pad == 0 else (lo - pad, hi + pad)
    return lo, hi


def _decimals(step: float) -> int:
    """Enough decimals to tell ticks `step` apart (2.5 → 1, 0.25 → 2, 50 → 0)."""
    return next(d for d in range(12) if abs(round(step, d) - step) < step * 1e-6)


def _decimals_for(values: Sequence[float]) -> int:
    """Decimals for a value shown on its own (a legend, a tooltip): none for counts, fewer
    as values grow."""
    largest = max((abs(v) for v in values), default=0.0)
    return 0 if largest >= 100 or all(float(v).is_integer() for v in values) else 1 if largest >= 10 else 2


def _legend(names: Sequence[str]) -> tuple[list[str], float]:
    """Swatches with names, in as many rows as needed; returns them and their height."""
    parts: list[str] = []
    x = y = 0.0
    for k, name in enumerate(names):
        width = 14 + text_width(name) + 18
        if x > 0 and x + width > WIDTH:
            x, y = 0.0, y + LINE_HEIGHT
        parts.append(_rect(x, y + 3, 10, 10, PALETTE[k % len(PALETTE)]))
        parts.append(_text(x + 14, y + 12, name))
        x += width
    return parts, y + LINE_HEIGHT + 4


def _x_labels(labels: Sequence[str], x_at: _Scale, slot: float, y: float) -> list[str]:
    """Labels centred on their slots, every n-th only when they would overlap; kept inside
    the SVG at its edges, and dropped where that moves one onto its neighbour."""
    gap = 8
    step = max(1, math.ceil((max((text_width(t) for t in labels), default=0.0) + gap) / slot))
    parts = []
    right = -math.inf  # of the last label shown
    for i in range(0, len(labels), step):
        half = text_width(labels[i]) / 2
        x = min(max(x_at(i), half), WIDTH - half)
        if x - half >= right + gap:
            parts.append(_text(x, y, labels[i], anchor="middle"))
            right = x + half
    return parts


def _bars(c: Chart, stacked: bool, slot: float, x_at: _Scale, y_at: _Scale, decimals: int) -> list[str]:
    band = slot * 0.72
    width = band if stacked else band / max(len(c.series), 1)
    parts: list[str] = []
    for i, label in enumerate(c.x):
        up = down = 0.0  # the stack's current top and bottom
        for k, s in enumerate(c.series):
            v = _value(s, i)
            if v is None:
                continue
            x = x_at(i) - band / 2 + (0 if stacked else k * width)
            base = (up if v >= 0 else down) if stacked else 0.0
            if stacked and v >= 0:
                up += v
            elif stacked:
                down += v
            y0, y1 = sorted((y_at(base), y_at(base + v)))
            tip = f"{label} · {s.name}: {format_number(v, decimals)} {c.unit}"
            gap = 1 if width > 4 else 0  # between neighbouring bars, when there is room
            parts.append(_rect(x, y0, width - gap, y1 - y0, PALETTE[k % len(PALETTE)], tip=tip))
    return parts


def _lines(c: Chart, x_at: _Scale, y_at: _Scale, decimals: int) -> list[str]:
    """One polyline per run of values: a None breaks the line."""
    parts: list[str] = []
    for k, s in enumerate(c.series):
        colour = PALETTE[k % len(PALETTE)]
        runs: list[list[tuple[int, float]]] = [[]]
        for i in range(len(c.x)):
            v = _value(s, i)
            if v is None:
                runs.append([])
            else:
                runs[-1].append((i, v))
        for run in runs:
            if len(run) > 1:
                coordinates = " ".join(f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in run)
                parts.append(
                    f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2" '
                    'stroke-linejoin="round" stroke-linecap="round"/>'
                )
            if len(run) == 1 or len(c.x) <= MAX_MARKED_POINTS:
                for i, v in run:
                    tip = f"{c.x[i]} · {s.name}: {format_number(v, decimals)} {c.unit}"
                    parts.append(
                        f'<circle cx="{x_at(i):.1f}" cy="{y_at(v):.1f}" r="2.5" fill="{colour}">{_tip(tip)}</circle>'
                    )
    return parts


def _svg(label: str, height: float, parts: Sequence[str]) -> Markup:
    # Safe: every text in `parts` went through `escape` (in `_text` and `_tip`).
    return Markup(  # noqa: S704
        f'<svg viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img" '
        f'aria-label="{escape(label)}" font-family="{escape(FONT_STACK)}" font-size="{TEXT_SIZE}">'
        + "".join(parts)
        + "</svg>"
    )


def _text(x: float, y: float, content: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" fill="{TEXT_COLOUR}" text-anchor="{anchor}">{escape(content)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="1"/>'


def _rect(x: float, y: float, width: float, height: float, fill: str, stroke: str = "none", tip: str = "") -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'fill="{fill}" stroke="{stroke}">{_tip(tip)}</rect>'
    )


def _tip(text: str) -> str:
    """A tooltip in browsers (an SVG title); print ignores it."""
    return f"<title>{escape(text)}</title>" if text else ""
