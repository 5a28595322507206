"""The quarterly public disclosure of energy and water (能源资源消耗公示), the sheet a school posts
each quarter: electricity and water used, the energy users (用能人数), energy per m² and per
person, water per person, each year on year, and the school's explanation of the change.

Every figure is the period's (`energy_period.period_report`), so the sheet reads what the
quarter's energy report reads. The explanation is the school's own words, kept per period in
the state database and audited; the sheet asks for one where a figure moved by more than
`EXPLAIN_ABOVE` year on year. docs/disclosure.md says which items follow which text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, Table, Text, select

from gateway.auth.audit import AuditTrail
from gateway.config import SiteConfig
from gateway.refused import Refused
from gateway.reports.document import Cell, Document, Figures, Section, SignLine, SignLines, Tone
from gateway.reports.document import Table as SheetTable
from gateway.reports.energy_doc import COVERAGE_WORTH, ReportText, local_time, number
from gateway.reports.energy_period import PeriodReport, YearOnYear
from gateway.reports.energy_period_doc import period_title, span_words, yoy_figure
from gateway.reports.subitems import CATEGORIES
from gateway.storage.state import METADATA, StateDatabase

# A change year on year beyond this share asks the school for its reason.
EXPLAIN_ABOVE: Final = 0.05
MAX_TEXT: Final = 2000

DISCLOSURE_NOTES = Table(
    "disclosure_notes", METADATA,
    Column("site", Text, nullable=False, server_default=""),
    Column("period", Text, nullable=False),     # "2026-Q3"
    Column("text", Text, nullable=False),
    Column("by", Text, nullable=False),         # the login that wrote it
    Column("at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("site", "period"),
)


@dataclass(frozen=True, slots=True)
class Explanation:
    text: str
    by: str
    at_ms: int


class DisclosureNotes:
    """One site's explanations, one per period; the newest replaces the one before (the audit
    trail keeps every version)."""

    def __init__(self, db: StateDatabase, site_id: str, audit: AuditTrail) -> None:
        self._db = db
        self._site = site_id
        self._audit = audit
        db.create(DISCLOSURE_NOTES, site=site_id)

    def get(self, period: str) -> Explanation | None:
        t = DISCLOSURE_NOTES.c
        with self._db.read() as conn:
            row = conn.execute(select(t.text, t.by, t.at_ms).where(t.site == self._site, t.period == period)).first()
        return None if row is None else Explanation(row.text, row.by, row.at_ms)

    def put(self, period: str, text: str, by: str, now_ms: int) -> Explanation:
        """Keeps `text` (trimmed) as the period's explanation; an empty one removes it."""
        text = text.strip()
        if len(text) > MAX_TEXT:
            raise Refused(422, f"说明太长了：最多 {MAX_TEXT} 个字。",
                          f"The explanation is too long: {MAX_TEXT} characters at most.")
        t = DISCLOSURE_NOTES
        with self._db.write(durable=True) as conn:
            conn.execute(t.delete().where(t.c.site == self._site, t.c.period == period))
            if text:
                conn.execute(t.insert().values(site=self._site, period=period, text=text, by=by, at_ms=now_ms))
        self._audit.record(now_ms, by, "disclosure.explain", f"disclosure:{period}", {"chars": len(text)})
        return Explanation(text, by, now_ms)


class SheetRow(BaseModel):
    """A row of the sheet: its figure's key, its words and unit in both languages, its digits."""

    key: str
    words_zh: str
    words_en: str
    unit_zh: str
    unit_en: str
    digits: int


def _row(key: str, words: tuple[str, str], unit: str | tuple[str, str], digits: int) -> SheetRow:
    zh, en = (unit, unit) if isinstance(unit, str) else unit
    return SheetRow(key=key, words_zh=words[0], words_en=words[1], unit_zh=zh, unit_en=en, digits=digits)


# Each row of the sheet, in the order the sheets list them.
ROWS: Final = (
    _row("electricity", ("用电量", "Electricity"), "kWh", 0),
    _row("water", ("用水量", "Water"), "m³", 1),
    _row("gas", ("用气量", "Gas"), "m³", 1),
    _row("heat", ("集中供热量", "District heat"), "GJ", 2),
    _row("kgce", ("综合能耗（折标准煤）", "Energy in standard coal"), "kgce", 0),
    _row("kgce_per_m2", ("单位建筑面积能耗", "Energy per m²"), "kgce/m²", 3),
    _row("kgce_per_person", ("人均综合能耗", "Energy per person"), ("kgce/人", "kgce/person"), 2),
    _row("kwh_per_person", ("人均用电量", "Electricity per person"), ("kWh/人", "kWh/person"), 1),
    _row("water_m3_per_person", ("人均用水量", "Water per person"), ("m³/人", "m³/person"), 2),
)


def rows_of(found: Mapping[str, object]) -> list[SheetRow]:
    """The sheet's rows that `found` (figures by key) has, in order."""
    return [r for r in ROWS if r.key in found]


def figures(r: PeriodReport) -> dict[str, YearOnYear]:
    """The sheet's figures by row key, each from the period's report (an intensity compared as
    fully as the use it divides)."""
    out: dict[str, YearOnYear] = {c.utility: c.total for c in r.categories
                                  if c.total.now is not None or c.utility in ("electricity", "water")}
    out["kgce"] = r.total_kgce
    divided = {"kgce_per_m2": "kgce", "kgce_per_person": "kgce", "kwh_per_person": "electricity",
               "water_m3_per_person": "water"}
    for i in r.intensity:
        if i.measure in divided:
            out[i.measure] = YearOnYear(now=i.value, last_year=i.last_year, coverage=out[divided[i.measure]].coverage,
                                        change=i.change)
    return out


def to_explain(r: PeriodReport) -> list[str]:
    """The row keys whose change year on year is beyond `EXPLAIN_ABOVE` (compared only where
    last year's data is nearly complete)."""
    return [key for key, f in figures(r).items()
            if f.change is not None and f.coverage >= COVERAGE_WORTH and abs(f.change) > EXPLAIN_ABOVE]


def disclosure_document(r: PeriodReport, site: SiteConfig, explanation: Explanation | None,
                        lang: str = "zh-CN") -> Document:
    t = ReportText(lang, r.partial)
    tz = site.tz
    when = period_title(t, r, tz)
    found = figures(r)
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for row in rows_of(found):
        f = found[row.key]
        then = f.last_year if f.coverage >= COVERAGE_WORTH else None
        change = None if then is None or f.change is None else round(f.change * 100, 1)
        rows.append([t(row.words_zh, row.words_en), t(row.unit_zh, row.unit_en), _rounded(f.now, row.digits),
                     _rounded(then, row.digits), change])
        tones.append([Tone.PLAIN] * 4 + [Tone.PLAIN if change is None else Tone.BAD if change > EXPLAIN_ABOVE * 100
                                         else Tone.GOOD if change < -EXPLAIN_ABOVE * 100 else Tone.PLAIN])
    people_words = t("用能人数", "Energy users")
    rows.insert(0, [people_words, t("人", "people"), r.people, None, None])
    rows.insert(1, [t("建筑面积", "Floor area"), "m²", _rounded(r.floor_area_m2, 0), None, None])
    tones[:0] = [[Tone.PLAIN] * 5, [Tone.PLAIN] * 5]
    explain = to_explain(r)
    if explanation is not None:
        said = [explanation.text]
    elif explain:
        names = t("、", ", ").join(t(r.words_zh, r.words_en) for r in rows_of(dict.fromkeys(explain)))
        said = [t(f"（尚未填写说明：{names}同比变化超过 {EXPLAIN_ABOVE:.0%}，请说明原因。）",
                   f"(No explanation yet: {names} changed by more than {EXPLAIN_ABOVE:.0%} year on year; "
                   "please give the reason.)")]
    else:
        said = [t("（无）", "(none)")]
    sections = [
        Section(t("本期能源资源消耗", "Energy and water this period"), [
            Figures([yoy_figure(t, t(r.words_zh, r.words_en), found[r.key], t(r.unit_zh, r.unit_en), r.digits,
                                EXPLAIN_ABOVE) for r in rows_of(found) if r.key in ("electricity", "water", "kgce")]),
            SheetTable("disclosure", [t("项目", "Item"), t("单位", "Unit"), t("本期", "This period"),
                                      t("去年同期", "Same period last year"), t("同比 %", "Year on year, %")],
                       rows, decimals=[None, None, None, None, 1], tones=tones,
                       caption=_caption(t, r)),
        ]),
        # A table, not a paragraph: the sheet's CSV carries it too.
        Section(t("说明", "Explanation"), [SheetTable("explanation", [t("同比变化说明", "Explanation of the change")],
                                                     [[p] for p in said])]),
        Section(t("公示", "Posted"), [SignLines("disclosure-sign", [
            SignLine(t("单位负责人：", "Head of the school:")), SignLine(t("填报人：", "Prepared by:")),
            SignLine(t("公示日期：", "Posted on:"))])]),
    ]
    meta = [
        (t("单位", "Site"), r.site_name),
        (t("公示期间", "Period"), when),
        (t("统计时段", "Span"), span_words(t, r, tz)),
        (t("生成时间", "Generated"), local_time(r.generated_ms, tz)),
    ]
    return Document(key=f"disclosure-{r.period}", lang="zh-CN" if t.zh else "en",
                    title=t(f"{r.site_name} {when}能源资源消耗公示", f"{r.site_name}: energy and water, {when}"),
                    meta=meta, sections=sections)


def _caption(t: ReportText, r: PeriodReport) -> str:
    names = t("、", ", ").join(t(CATEGORIES[c.utility].zh, CATEGORIES[c.utility].en) for c in r.categories
                               if c.kgce.now is not None)
    return t(f"综合能耗含{names}，按 GB/T 2589 折标准煤；人均与单位面积按现有人数 {number(r.people)} 人、"
             f"建筑面积 {number(r.floor_area_m2)} m² 计算（去年同期同此）；去年同期数据不足 95% 的不作比较。",
             f"Energy includes {names}, in standard coal by GB/T 2589; per person and per m² use today's "
             f"{number(r.people)} people and {number(r.floor_area_m2)} m² (last year's too); last year's figures "
             "with under 95% of their data are not compared.")


def _rounded(value: float | None, digits: int) -> float | int | None:
    """As the sheet shows it: whole units as integers."""
    return None if value is None else round(value) if digits == 0 else round(value, digits)
