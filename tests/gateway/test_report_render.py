"""The report renderer: HTML, PDF (checked with poppler's tools, pages kept as PNGs under
test-artifacts/reports/ for people to look at), CSV and the SVG charts."""

from __future__ import annotations

import csv
import math
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from markupsafe import escape

from gateway.reports import render, svg
from gateway.reports.document import (
    Cell,
    Chart,
    Document,
    Excerpt,
    Figure,
    Figures,
    HeatMap,
    Paragraphs,
    Section,
    Series,
    SignLine,
    SignLines,
    Table,
    Tone,
)
from tests.browser import artifacts_dir
from tests.services import require_binary

DAYS = [f"10-{d:02d}" for d in range(1, 32)]
WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
HOURS = [f"{h:02d}" for h in range(24)]
ROOMS = ["一号楼 大班教室", "一号楼 中班教室", "二号楼 小班教室", "厨房", "配餐间", "多功能厅", "行政办公室", "门卫室"]


def energy_report() -> Document:
    """A monthly energy report in Chinese with every kind of block, long enough for three pages."""
    lighting: list[float | None] = [round(80 + 7 * (d % 7), 1) for d in range(31)]
    lighting[12] = None  # a day without data: a gap in every chart
    heat: list[list[float | None]] = [
        [round(3 + 40 * (8 <= h <= 17) * (w < 5) + h * 0.5, 1) for h in range(24)] for w in range(7)
    ]
    heat[6][:6] = [None] * 6
    return Document(
        key="energy-2026-10",
        lang="zh-CN",
        title="阳光幼儿园 2026年10月 能耗月报",
        meta=[("园区", "阳光幼儿园（总园）"), ("统计周期", "2026-10-01 至 2026-10-31"), ("生成时间", "2026-11-01 08:00")],
        sections=[
            Section("本月概览", [
                Figures([
                    Figure("总用电量", "12,345.7 kWh", "比上月 ▼ 8.2%", Tone.GOOD),
                    Figure("总用水量", "1,020 m³", "比上月 ▲ 12.5%", Tone.BAD),
                    Figure("非教学时段用电", "2,310 kWh", "占 18.7%", Tone.WARN),
                    Figure("电费估算", "¥ 9,876"),
                ]),
                Paragraphs(["空调用电比上月下降 21%，主要因为气温回落。", "周末仍有 3 个教室的照明未关闭，建议检查定时开关。"], bullets=True),
            ]),
            Section("每日用电", [
                Chart("daily", "每日用电量（分项）", "kWh", DAYS, [
                    Series("照明", lighting),
                    Series("空调", [round(150 - 3 * d, 1) for d in range(31)]),
                    Series("厨房", [60.0 + (d % 3) * 10 for d in range(31)]),
                ], stacked=True),
                Chart("peak", "每日最大功率", "kW", DAYS, [
                    Series("最大功率", [None if d in (4, 5, 20) else round(30 + 10 * (d % 5), 1) for d in range(31)]),
                ], kind="line"),
                HeatMap("hourly", "按星期与小时的平均用电", "kWh", HOURS, WEEKDAYS, heat),
            ]),
            Section("分表明细", [
                Table(
                    "meters",
                    ["房间", "电表编号", "本月用电 (kWh)", "上月用电 (kWh)", "变化", "非教学时段占比"],
                    [[room, f"EM-{i + 1:03d}", 12345.678 / (i + 1), 11000.5 / (i + 1) if i != 3 else None,
                      f"{(i - 3) * 2.5:+.1f}%", 0.1 * i] for i, room in enumerate(ROOMS)],
                    decimals=[None, None, 1, 1, None, 2],
                    tones=[[Tone.PLAIN] * 4 + [Tone.BAD if i > 3 else Tone.GOOD] for i in range(len(ROOMS))],
                    caption="各房间电表（按用电量排序）",
                ),
                Paragraphs(["数据来自各房间的智能电表，每分钟上报一次；缺失的数据不计入合计。"]),
                Table(  # wider than the page at the usual font size
                    "months",
                    ["房间", *(f"{m}月" for m in [*range(11, 13), *range(1, 11)])],
                    [[room, *(round(23456.78 / (i + 1) * (1 + m / 10), 2) for m in range(12))] for i, room in enumerate(ROOMS)],
                    decimals=[None, *[1] * 12],
                    caption="近 12 个月用电 (kWh)",
                ),
                Table(
                    "daily-records",
                    ["日期", "时段", "用电 (kWh)", "用水 (m³)", "最高室温 (°C)", "备注"],
                    [[day, shift, 3000 + 12.5 * d, 30 + d % 4, 24.5 + (d % 6) * 0.5,
                      "厨房冷柜夜间开门两次，已由后勤确认并记录在案" if d % 9 == 0 and shift == "夜间" else ""]
                     for d, day in enumerate(DAYS) for shift in ("日间", "夜间")],
                    decimals=[None, None, 1, 0, 1, None],
                    caption="每日记录",
                ),
            ]),
        ],
    )


def safety_report() -> Document:
    return Document(
        key="safety-2026-10-15",
        lang="en",
        title="Sunshine Kindergarten: daily safety record, 15 October 2026",
        meta=[("Site", "Sunshine Kindergarten"), ("Date", "2026-10-15")],
        sections=[
            Section("Summary", [
                Figures([
                    Figure("UV disinfection", "6 of 6 rooms", "all on schedule", Tone.GOOD),
                    Figure("Sample fridge", "4.2 °C", "max 5.1 °C"),
                    Figure("Doors left open", "1", "needs a check", Tone.WARN),
                ]),
                Chart("fridge", "Sample fridge temperature", "°C", HOURS,
                      [Series("Fridge 1", [4.0 + (h % 5) * 0.3 for h in range(24)]),
                       Series("Fridge 2", [None if h < 3 else 3.5 + (h % 4) * 0.2 for h in range(24)])], kind="line"),
                Table("uv", ["Room", "Minutes", "Status"],
                      [["Class 1", 30, "done"], ["Class 2", 12, "short"], ["Dormitory", None, "no data"]],
                      tones=[[], [Tone.PLAIN, Tone.BAD, Tone.BAD], [Tone.PLAIN, Tone.WARN, Tone.WARN]]),
            ]),
            Section("Signatures", [SignLines("signatures", [
                SignLine("Inspector:", "Wang", "17:40"), SignLine("Person responsible:"),
                SignLine("Principal (review):")])]),
        ],
    )


def texts(doc: Document) -> Iterator[str]:
    """Every text the HTML must show (x and column labels may be thinned, so not those)."""
    yield doc.title
    for label, value in doc.meta:
        yield from (label, value)
    for section in doc.sections:
        yield section.title
        for block in section.blocks:
            if isinstance(block, Figures):
                for f in block.items:
                    yield from (f.label, f.value, f.note)
            elif isinstance(block, Paragraphs):
                yield from block.items
            elif isinstance(block, Table):
                yield from (block.caption, *block.columns)
            elif isinstance(block, Chart):
                yield from (block.title, block.unit, *(s.name for s in block.series))
            elif isinstance(block, SignLines):
                yield from (text for line in block.lines for text in (line.label, line.name, line.when))
            else:
                yield from (block.title, *block.rows)


# ----------------------------------------------------------------------------------- HTML


@pytest.mark.parametrize("doc", [energy_report(), safety_report()], ids=["zh", "en"])
def test_html_shows_every_title_label_and_value(doc: Document) -> None:
    page = render.html(doc)
    assert page.startswith("<!DOCTYPE html>")
    assert f'<html lang="{doc.lang}">' in page
    missing = [t for t in texts(doc) if str(escape(t)) not in page]
    assert not missing
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page


def test_html_formats_table_numbers_with_decimals_and_separators() -> None:
    page = render.html(energy_report())
    assert '<td class="num tone-plain">12,345.7</td>' in page  # decimals=1
    assert '<td class="num tone-plain">0.70</td>' in page  # decimals=2
    assert '<td class="num tone-plain empty">—</td>' in page  # None, in a numeric column
    assert '<td class="text tone-bad">+5.0%</td>' in page
    assert '<td class="num tone-plain">12,345.678</td>' in render.html(Document(
        "k", "en", "t", [], [Section("s", [Table("t", ["n"], [[12345.678]])])]))  # decimals not given: as is


def test_html_escapes_text() -> None:
    evil = '<script>alert("x")</script>'
    doc = Document("k", "en", evil, [(evil, evil)], [Section(evil, [
        Figures([Figure(evil, evil, evil)]),
        Paragraphs([evil]),
        Table("t", [evil], [[evil]], caption=evil),
        Chart("c", evil, evil, [evil], [Series(evil, [1.0]), Series("b", [2.0])]),
        HeatMap("h", evil, evil, [evil], [evil], [[1.0]]),
    ])])
    page = render.html(doc)
    assert "<script" not in page
    assert "&lt;script&gt;" in page


# ------------------------------------------------------------------------------------ PDF


def _pdf_tool(name: str, *args: str) -> str:
    binary = require_binary(name, "poppler-utils")
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each sample's PDF by language, rendered once for all the PDF tests."""
    directory = tmp_path_factory.mktemp("reports")
    paths = {}
    for doc in (energy_report(), safety_report()):
        paths[doc.lang] = directory / f"{doc.key}.pdf"
        paths[doc.lang].write_bytes(render.pdf(doc))
    return paths


@pytest.fixture
def energy_pdf(pdfs: dict[str, Path]) -> Path:
    return pdfs["zh-CN"]


def test_pdf_has_the_chinese_text(energy_pdf: Path) -> None:
    text = _pdf_tool("pdftotext", "-layout", str(energy_pdf), "-")
    # pdftotext puts spaces where the layout has gaps, and between Chinese and Latin.
    squeezed = re.sub(r"\s+", "", text)
    for expected in ("阳光幼儿园2026年10月能耗月报", "分表明细", "一号楼大班教室", "6,172.8", "12,345.7kWh", "每日最大功率"):
        assert expected in squeezed
    pages = text.split("\f")[:-1]  # pdftotext ends every page with a form feed
    assert f"第1/{len(pages)}页" in squeezed
    assert "阳光幼儿园2026年10月能耗月报" in re.sub(r"\s+", "", pages[1])  # in the header
    # The daily records run over two pages, each with the table's header.
    assert sum("最高室温" in page for page in pages) == 2


def test_pdf_draws_the_charts(pdfs: dict[str, Path]) -> None:
    """The charts go into the PDF as images of their SVG: what is drawn in them (legends,
    rows of a heat map) is there, not only the captions around them."""
    for doc in (energy_report(), safety_report()):
        squeezed = re.sub(r"\s+", "", _pdf_tool("pdftotext", str(pdfs[doc.lang]), "-"))
        blocks = [b for s in doc.sections for b in s.blocks]
        drawn = [re.sub(r"\s+", "", name) for b in blocks if isinstance(b, Chart) for name in (
            [s.name for s in b.series] if len(b.series) > 1 else [])]
        drawn += [label for b in blocks if isinstance(b, HeatMap) for label in b.rows]
        assert drawn
        assert [text for text in drawn if text not in squeezed] == []


def test_pdf_keeps_everything_within_the_margins(energy_pdf: Path) -> None:
    """The 12-month table is wider than the page at the usual size; no word may cross the
    right margin (15 mm) or the left one."""
    boxes = _pdf_tool("pdftotext", "-bbox", str(energy_pdf), "-")
    page = re.search(r'<page width="([\d.]+)"', boxes)
    assert page
    page_width = float(page[1])
    margin = 15 / 25.4 * 72
    words = re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', boxes)
    assert len(words) > 300
    outside = [text for x_min, x_max, text in words if float(x_min) < margin - 1 or float(x_max) > page_width - margin + 1]
    assert not outside


def test_pdf_embeds_a_cjk_font(energy_pdf: Path) -> None:
    lines = _pdf_tool("pdffonts", str(energy_pdf)).splitlines()[2:]
    # name … emb sub uni object-number generation: the type may contain spaces, the rest not
    embedded = {line.split()[0] for line in lines if line.split()[-5] == "yes"}
    assert any("CJK" in name for name in embedded), lines


def test_pdf_numbers_pages_in_english(pdfs: dict[str, Path]) -> None:
    assert "Page 1 of 1" in _pdf_tool("pdftotext", "-layout", str(pdfs["en"]), "-")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pdf_pages_as_png(pdfs: dict[str, Path], lang: str) -> None:
    """Pages as images, kept for a person to look at (clipping, overlaps, missing glyphs)."""
    directory = artifacts_dir("reports")
    name = pdfs[lang].stem
    for old in directory.glob(f"{name}-*.png"):
        old.unlink()
    _pdf_tool("pdftoppm", "-png", "-r", "60", str(pdfs[lang]), str(directory / name))
    pngs = sorted(directory.glob(f"{name}-*.png"))
    assert pngs
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


# ------------------------------------------------------------------------------------ CSV


def _csv_blocks(text: str) -> list[list[list[str]]]:
    """The CSV's groups of rows, split at blank lines."""
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(text.splitlines()):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


def test_csv_quotes_text_that_a_spreadsheet_would_run() -> None:
    cells = ["=1+1", "@SUM(A1)", "-2+3", "+cmd", "-7.5%", "+2.5", "a=b"]
    doc = Document("k", "en", "t", [], [Section("s", [Table("t", cells, [list[Cell](cells)])])])
    header, row = list(csv.reader(render.csv(doc)[1:].splitlines()))[1:]
    assert header == row == ["'=1+1", "'@SUM(A1)", "'-2+3", "'+cmd", "-7.5%", "+2.5", "a=b"]


def test_csv_lists_meta_tables_charts_and_heat_maps_with_raw_numbers() -> None:
    doc = energy_report()
    text = render.csv(doc)
    assert text.startswith("\ufeff")
    meta, daily, peak, hourly, meters, months, records = _csv_blocks(text[1:])
    assert meta == [list(line) for line in doc.meta]

    assert meters[0] == ["meters", "各房间电表（按用电量排序）"]
    assert meters[1][2] == "本月用电 (kWh)"
    assert meters[2][:4] == ["一号楼 大班教室", "EM-001", "12345.678", "11000.5"]
    assert float(meters[3][2]) == 12345.678 / 2  # a raw float round-trips
    assert meters[5][3] == ""  # None
    assert meters[6][4] == "+2.5%"

    assert daily[:2] == [["daily", "每日用电量（分项） (kWh)"], ["", "照明", "空调", "厨房"]]
    assert daily[2] == ["10-01", "80", "150", "60.0"]
    assert daily[14][:2] == ["10-13", ""]
    assert len(daily) == 2 + len(DAYS)
    assert peak[1] == ["", "最大功率"]
    assert peak[6] == ["10-05", ""]

    assert hourly[:2] == [["hourly", "按星期与小时的平均用电 (kWh)"], ["", *HOURS]]
    assert [row[0] for row in hourly[2:]] == WEEKDAYS
    assert hourly[8][1:7] == [""] * 6
    assert hourly[2][10] == "47.5"
    assert months[2][1] == "23456.78"
    assert records[0] == ["daily-records", "每日记录"]
    assert records[2][2] == "3000.0"
    assert "," not in "".join(cell for row in records for cell in row[2:5])  # no thousands separators


def test_a_table_with_an_excerpt_shows_its_rows_and_note_and_lists_every_row_in_csv() -> None:
    rows: list[list[Cell]] = [[f"电表{i:03d}", 1000.0 - i, "ok" if i % 7 else "检查"] for i in range(120)]
    tones = [[Tone.PLAIN, Tone.PLAIN, Tone.PLAIN if i % 7 else Tone.WARN] for i in range(120)]
    picked = [0, 1, 7, 14, 118]
    note = "共 120 块表计，这里列出 5 块；全部表计见 CSV。"
    table = Table("meters", ["表计", "用量", "状态"], rows, decimals=[None, 1, None], tones=tones, caption="表计明细",
                  excerpt=Excerpt(picked, note))
    doc = Document("k", "zh-CN", "t", [], [Section("s", [table])])
    page = render.html(doc)
    shown = re.findall(r'<td class="text tone-plain">(电表\d+)</td>', page)
    assert shown == [f"电表{i:03d}" for i in picked]
    assert page.count('<td class="text tone-warn">检查</td>') == 3  # the tones go with their rows
    assert '<td class="num tone-plain">882.0</td>' in page
    assert note in page
    lines = list(csv.reader(render.csv(doc)[1:].splitlines()))
    assert lines[:2] == [["meters", "表计明细"], ["表计", "用量", "状态"]]
    assert [line[0] for line in lines[2:]] == [f"电表{i:03d}" for i in range(120)]
    assert note not in render.csv(doc)
    assert note not in render.html(replace(doc, sections=[Section("s", [replace(table, excerpt=None)])]))


# ------------------------------------------------------------------------------------ SVG


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_line_chart_breaks_at_missing_values_without_a_legend_for_one_series() -> None:
    chart = Chart("c", "t", "kW", ["a", "b", "c", "d", "e", "f"], [Series("only", [1.0, 2.0, None, 4.0, None, 5.0])], kind="line")
    root = _svg(svg.chart(chart))
    assert len(root.findall("polyline")) == 1  # a–b; d and f stand alone
    assert len(root.findall("circle")) == 4
    assert not root.findall("rect")  # no legend swatch
    assert root.get("font-family") == svg.FONT_STACK


def test_stacked_bars_stand_on_each_other() -> None:
    chart = Chart("c", "t", "kWh", ["a", "b"], [Series("x", [10.0, None]), Series("y", [5.0, 7.0])], stacked=True)
    rects = _svg(svg.chart(chart)).findall("rect")
    swatches, bars = rects[:2], rects[2:]
    assert [s.get("fill") for s in swatches] == list(svg.PALETTE[:2])
    assert len(bars) == 3
    lower, upper, alone = ({k: float(v) for k, v in r.attrib.items() if k in "xywidthheight"} for r in bars)
    assert upper["y"] + upper["height"] == pytest.approx(lower["y"], abs=0.11)
    assert upper["x"] == lower["x"]
    assert upper["height"] == pytest.approx(lower["height"] / 2, abs=0.11)
    assert alone["height"] == pytest.approx(upper["height"] * 7 / 5, abs=0.11)


def test_heat_map_without_data_has_empty_cells_and_no_legend() -> None:
    root = _svg(svg.heat_map(HeatMap("h", "t", "kWh", ["1", "2"], ["a", "b"], [[None, None], [None, None]])))
    assert {r.get("fill") for r in root.findall("rect")} == {"#fff"}
    assert len(root.findall("rect")) == 4


def test_heat_map_with_equal_values_uses_one_shade() -> None:
    root = _svg(svg.heat_map(HeatMap("h", "t", "kWh", ["1", "2"], ["a"], [[3.0, 3.0]])))
    fills = [r.get("fill") for r in root.findall("rect")]
    assert len(fills) == 3  # two cells, one legend swatch
    assert len(set(fills)) == 1
    assert "3 kWh" in [t.text for t in root.findall("text")]


def test_heat_map_shades_from_light_to_dark() -> None:
    root = _svg(svg.heat_map(HeatMap("h", "t", "kWh", ["1", "2", "3"], ["a"], [[0.0, None, 100.0]])))
    cells = root.findall("rect")[:3]
    assert [c.get("fill") for c in cells] == ["#deebf7", "#fff", "#08519c"]
    assert [t.text for t in root.findall("text")][-2:] == ["0", "100 kWh"]


def test_charts_without_data_still_draw() -> None:
    for markup in (svg.chart(Chart("c", "t", "kWh", [], [])), svg.chart(Chart("c", "t", "kWh", ["a"], [], stacked=True)),
                   svg.chart(Chart("c", "t", "kWh", ["a", "b"], [Series("s", [None, None])], kind="line")),
                   svg.heat_map(HeatMap("h", "t", "kWh", [], [], []))):
        assert _svg(markup).tag == "svg"


@given(st.floats(-1e9, 1e9), st.floats(1e-6, 1e9))
def test_nice_ticks_are_four_to_six_round_steps_covering_the_range(lo: float, span: float) -> None:
    assume(span > abs(lo) * 1e-9)  # beyond, float precision blurs the steps
    hi = lo + span
    ticks = svg.nice_ticks(lo, hi)
    assert 4 <= len(ticks) <= 6
    step = ticks[1] - ticks[0]
    assert ticks[0] <= lo + step * 1e-6
    assert ticks[-1] >= hi - step * 1e-6
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 2.5, 5, 10)) < 1e-3


def test_x_labels_are_thinned_when_they_would_overlap() -> None:
    many = [f"2026-10-{d:02d}" for d in range(1, 32)]
    root = _svg(svg.chart(Chart("c", "t", "kWh", many, [Series("s", [1.0] * 31)])))
    shown = [t.text for t in root.findall("text") if t.text in many]
    assert 4 < len(shown) < 31
    assert shown[0] == many[0]


# --------------------------------------------------------------------------------- render


def test_render_names_the_file_and_media_type() -> None:
    doc = safety_report()
    body, media_type, name = render.render(doc, "csv")
    assert (media_type, name) == ("text/csv; charset=utf-8", "safety-2026-10-15.csv")
    assert body.startswith(b"\xef\xbb\xbf")
    body, media_type, name = render.render(doc, "html")
    assert (media_type, name) == ("text/html; charset=utf-8", "safety-2026-10-15.html")
    body, media_type, name = render.render(doc, "pdf")
    assert (media_type, name, body[:5]) == ("application/pdf", "safety-2026-10-15.pdf", b"%PDF-")


def test_signature_lines_print_names_and_blank_lines_and_list_in_csv(pdfs: dict[str, Path]) -> None:
    text = re.sub(r"\s+", " ", _pdf_tool("pdftotext", "-layout", str(pdfs["en"]), "-"))
    assert "Inspector: Wang 17:40 Person responsible: Principal (review):" in text
    rows = list(csv.reader(render.csv(safety_report())[1:].splitlines()))
    assert rows[-5:] == [["signatures", ""], ["", "", ""], ["Inspector:", "Wang", "17:40"],
                         ["Person responsible:", "", ""], ["Principal (review):", "", ""]]


def test_render_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="html, pdf, csv"):
        render.render(safety_report(), "json")
