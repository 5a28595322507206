"""The district's monthly report (全区月报) laid out for reading, zh-CN or en: the district's
key figures, the schools that need a look with the reasons in words, the league table of every
school, and how the figures are made. Rendered by gateway/reports/render.py like every report
(PDF, or CSV with every school's row)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway.district.view import INTENSITY_ABOVE_MEDIAN, LEDGER_COMPLETE, Disclosures, League, School, SchoolSheet
from gateway.reports.disclosure import EXPLAIN_ABOVE
from gateway.reports.document import Cell, Document, Figure, Figures, Paragraphs, Section, Table, Tone
from gateway.reports.energy_doc import COVERAGE_WORTH, ReportText, local_time, month_words, number, percent
from gateway.reports.energy_period_doc import period_words


def district_document(league: League, lang: str = "zh-CN") -> Document:
    t = ReportText(lang, league.partial)
    tz = ZoneInfo(league.timezone)
    month = month_words(t, league.month)
    if league.partial:
        month = t(f"{month}（月初至今）", f"{month} (month to date)")
    return Document(
        key=f"district-{league.month}", lang="zh-CN" if t.zh else "en",
        title=t(f"全区学校 {month}月报", f"District report for {month}"),
        meta=[(t("月份", "Month"), month), (t("学校", "Schools"), str(league.totals.schools)),
              (t("生成时间", "Generated"), local_time(league.generated_ms, tz))],
        sections=[
            Section(t("概要", "Summary"), [_figures(t, league)]),
            Section(t("需要关注的学校", "Schools that need a look"), [_attention(t, league)]),
            Section(t("各校排名", "League table"), [_table(t, league)]),
            Section(t("计算说明", "How the figures are made"), [Paragraphs(_method(t))]),
        ],
    )


def _figures(t: ReportText, league: League) -> Figures:
    s = league.totals
    median = t(f"全区中位数 {number(s.median_kwh_per_m2, 2)}", f"district median {number(s.median_kwh_per_m2, 2)}")
    serious = s.open_alerts.critical + s.open_alerts.major
    return Figures([
        Figure(t("用电", "Electricity"), f"{number(s.electricity_kwh)} kWh", t.period),
        Figure(t("单位面积用电", "Electricity per m²"), f"{number(s.kwh_per_m2, 2)} kWh/m²", median),
        Figure(t("用水", "Water"), f"{number(s.water_m3, 1)} m³", t.period),
        Figure(t("闭园浪费", "Left on after hours"), f"{number(s.waste_kwh)} kWh",
               t("取自闭园负荷偏高告警", "as the after-hours load alerts counted it")),
        Figure(t("未恢复告警", "Open alerts"), str(s.open_alerts.total),
               t(f"其中紧急或重要 {serious} 条", f"{serious} critical or major"), Tone.BAD if serious else Tone.PLAIN),
        Figure(t("逾期工单", "Work orders past due"), str(s.overdue_orders), "",
               Tone.BAD if s.overdue_orders else Tone.GOOD),
        Figure(t("安全台账签字", "Daily records signed"), percent(s.ledger_completion),
               t(f"{s.ledger_signed}/{s.ledger_days} 校日", f"{s.ledger_signed} of {s.ledger_days} school-days"),
               Tone.WARN if s.ledger_completion is not None and s.ledger_completion < LEDGER_COMPLETE else Tone.PLAIN),
        Figure(t("需要关注", "Need a look"), t(f"{s.attention} 所", str(s.attention)),
               t(f"共 {s.schools} 所学校", f"of {s.schools} schools"), Tone.WARN if s.attention else Tone.GOOD),
    ])


def _attention(t: ReportText, league: League) -> Paragraphs:
    lines = [t(f"{s.name}：{'；'.join(r.zh for r in s.attention)}。",
               f"{s.name}: {'; '.join(r.en for r in s.attention)}.") for s in league.schools if s.attention]
    if not lines:
        return Paragraphs([t("没有需要特别关注的学校。", "No school needs a particular look.")])
    return Paragraphs(lines, bullets=True)


def _pct_cell(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def _row(s: School) -> list[Cell]:
    return [s.rank, s.name, s.floor_area_m2, s.headcount, s.electricity_kwh, s.kwh_per_m2, s.kwh_per_person,
            s.water_m3, s.water_m3_per_person, _pct_cell(s.after_hours_share), s.waste_kwh,
            _pct_cell(s.change_vs_last_year), s.open_alerts.total, s.overdue_orders, _pct_cell(s.ledger_completion)]


def _tones(s: School) -> list[Tone]:
    kinds = {r.kind for r in s.attention}
    change = s.change_vs_last_year
    return [Tone.PLAIN] * 5 + [Tone.BAD if "intensity" in kinds else Tone.PLAIN] + [Tone.PLAIN] * 4 + [
        Tone.BAD if s.waste_kwh else Tone.PLAIN,
        Tone.BAD if change is not None and change > 0.02 else Tone.GOOD if change is not None and change < -0.02
        else Tone.PLAIN,
        Tone.BAD if "alerts" in kinds else Tone.PLAIN, Tone.BAD if "orders" in kinds else Tone.PLAIN,
        Tone.WARN if "ledger" in kinds else Tone.PLAIN]


def _table(t: ReportText, league: League) -> Table:
    zh, en = t.vs_last_year
    return Table(
        "schools",
        [t("名次", "Rank"), t("学校", "School"), "m²", t("人数", "People"), "kWh", "kWh/m²", t("kWh/人", "kWh/person"),
         "m³", t("m³/人", "m³/person"), t("闭园用电 %", "After hours %"), t("浪费 kWh", "Waste kWh"),
         t(f"比{zh} %", f"vs {en} %"), t("未恢复告警", "Open alerts"), t("逾期工单", "Orders past due"),
         t("台账签字 %", "Records signed %")],
        [_row(s) for s in league.schools],
        decimals=[0, None, 0, 0, 0, 2, 1, 1, 2, 1, 1, 1, 0, 0, 0], tones=[_tones(s) for s in league.schools],
        caption=t("按每平方米用电排序，没有面积或读数的学校在后", "By electricity per m²; schools without an area or "
                  "readings last"))


def _method(t: ReportText) -> list[str]:
    above = round(INTENSITY_ABOVE_MEDIAN * 100)
    signed = round(LEDGER_COMPLETE * 100)
    return [
        t("每所学校的用电、用水、闭园用电占比与浪费，就是该校自己的月度节能报告里的数字（同一套计算）。",
          "Each school's electricity, water, after-hours share and waste are the figures of its own monthly "
          "energy report (the same computation)."),
        t("比去年同期：只在两段时间的读数都几乎完整时才比较。",
          "Against last year: compared only where both spans have readings in nearly every hour."),
        t("未恢复告警与逾期工单是生成报告时的状态；台账签字是本月已过去的日子中，检查人已签字的天数所占比例。",
          "Open alerts and work orders past due are as they stand when the report is made; records signed is the "
          "share of the month's past days whose daily record the inspector has signed."),
        t(f"需要关注：每平方米用电高出全区中位数 {above}% 以上、有紧急或重要告警未恢复、有逾期工单、台账签字不到 "
          f"{signed}%，或电表数据不全。",
          f"Needs a look: electricity per m² more than {above}% above the district's median, a critical or major "
          f"alert open, a work order past due, fewer than {signed}% of daily records signed, or incomplete "
          "electricity readings."),
    ]


def disclosures_document(d: Disclosures, lang: str = "zh-CN") -> Document:
    """Every school's quarterly disclosure in one sheet (全区能耗公示): each school's figures as
    its own sheet has them, year on year, and its explanation."""
    t = ReportText(lang, d.partial)
    when = period_words(t, d.period)
    if d.partial:
        when = t(f"{when}（进行中）", f"{when} (in progress)")
    explained = sum(1 for s in d.schools if s.explanation)
    asked = sum(1 for s in d.schools if s.to_explain)
    return Document(
        key=f"district-disclosure-{d.period}", lang="zh-CN" if t.zh else "en",
        title=t(f"全区学校 {when}能源资源消耗公示", f"Schools' energy and water, {when}"),
        meta=[(t("期间", "Period"), when), (t("学校", "Schools"), str(len(d.schools))),
              (t("生成时间", "Generated"), local_time(d.generated_ms, ZoneInfo(d.timezone)))],
        sections=[
            Section(t("各校公示", "Each school"), [Table(
                "schools",
                [t("学校", "School"), t("用能人数", "Energy users"), "m²", "kWh", t("用电同比 %", "Electricity y/y %"),
                 "m³", t("用水同比 %", "Water y/y %"), "kgce", "kgce/m²", t("kgce/人", "kgce/person"),
                 t("m³/人", "m³/person"), t("说明", "Explanation")],
                [_sheet_row(t, s) for s in d.schools],
                decimals=[None, 0, 0, 0, 1, 1, 1, 0, 3, 2, 2, None], tones=[_sheet_tones(s) for s in d.schools],
                caption=t(f"每校数字取自该校自己的公示表；同比变化超过 {EXPLAIN_ABOVE:.0%} 的须由学校说明原因"
                          f"（已说明 {explained} 所，须说明 {asked} 所）；去年同期数据不足 95% 的不作比较",
                          f"Each school's figures are those of its own sheet; a change beyond {EXPLAIN_ABOVE:.0%} "
                          f"needs the school's explanation ({explained} explained, {asked} asked); last year's "
                          "figures with under 95% of their data are not compared"))]),
        ],
    )


def _sheet_change(s: SchoolSheet, key: str) -> float | None:
    f = s.figures.get(key)
    if f is None or f.change is None or f.coverage < COVERAGE_WORTH:
        return None
    return round(f.change * 100, 1)


def _sheet_row(t: ReportText, s: SchoolSheet) -> list[Cell]:
    def now(key: str) -> float | None:
        f = s.figures.get(key)
        return None if f is None else f.now
    said = s.explanation or (t("未填写（须说明）", "none yet (needed)") if s.to_explain else "")
    return [s.name, s.people, s.floor_area_m2, now("electricity"), _sheet_change(s, "electricity"), now("water"),
            _sheet_change(s, "water"), now("kgce"), now("kgce_per_m2"), now("kgce_per_person"),
            now("water_m3_per_person"), said]


def _sheet_tones(s: SchoolSheet) -> list[Tone]:
    def tone(key: str) -> Tone:
        change = _sheet_change(s, key)
        return Tone.PLAIN if change is None else Tone.BAD if change > EXPLAIN_ABOVE * 100 else \
            Tone.GOOD if change < -EXPLAIN_ABOVE * 100 else Tone.PLAIN
    return [Tone.PLAIN] * 4 + [tone("electricity"), Tone.PLAIN, tone("water")] + [Tone.PLAIN] * 4 + [
        Tone.WARN if s.to_explain and not s.explanation else Tone.PLAIN]
