"""The monthly energy report laid out for reading (zh-CN or en): key figures, a plain-language
summary, concrete recommendations, then the details behind them. Every sentence is written
in both languages side by side and says the same in each; a month in progress reads as the
month to date (月初至今) throughout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from zoneinfo import ZoneInfo

from devices.base import Utility
from gateway.clock import from_ms
from gateway.config import SiteConfig
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
    Table,
    Tone,
)
from gateway.reports.energy import (
    COMPLETE,
    METERS,
    MIN_COVERAGE,
    MIN_HOURS,
    BaseSource,
    BuildingUse,
    Comparison,
    EnergyReport,
    Intensity,
    IntensityMeasure,
    Metering,
    MeterUse,
    SubitemUse,
    Totals,
)
from gateway.reports.subitems import CATEGORIES, words
from gateway.rules.power import LOAD_AFTER_HOURS, power_words

# Recommend looking at a meter's load left on from this much waste in the period.
WASTE_WORTH_KWH = 20.0
WASTE_WORTH_SHARE = 0.02
NIGHT_WATER_WORTH_SHARE = 0.15  # after-hours water above this share of all water is worth a look
COVERAGE_WORTH = 0.95  # meters with fewer hours of data than this are named; other months compared from it
# A site with more meters than this gets, in HTML and PDF, the meters worth a look (this many
# of each kind) instead of a table of every meter; the CSV lists them all.
METERS_SHOWN_WHOLE = 40
METERS_WORTH_A_LOOK = 10
PERIOD_NAMES = {"sharp": ("尖峰", "critical peak"), "peak": ("峰", "peak"), "flat": ("平", "flat"),
                "valley": ("谷", "valley")}
WEEKDAYS = (("周一", "Mon"), ("周二", "Tue"), ("周三", "Wed"), ("周四", "Thu"), ("周五", "Fri"), ("周六", "Sat"),
            ("周日", "Sun"))
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
AS_ALERTS_SAY = ("数字取自各告警；未恢复的告警为截至最后一次更新的数字",
                 "The figures are the alerts' own; an alert not cleared yet shows them as of its last update")
# Where a base load comes from, as a reader says it: (zh, en), in brackets after its value.
BASE_SOURCES: dict[BaseSource, tuple[str, str]] = {
    "configured": ("设定值", "configured"),
    "learned": ("网关按近几晚学到的值", "learned by the gateway from recent nights"),
    "mixed": ("部分设定、部分学到", "partly configured, partly learned"),
}
# The same, short, for a table's column of its own.
BASE_SOURCES_SHORT: dict[BaseSource, tuple[str, str]] = {
    "configured": ("设定", "configured"),
    "learned": ("学到", "learned"),
    "mixed": ("部分设定", "partly configured"),
}


# Each intensity as a reader says it, with its unit: (zh, en).
INTENSITY_WORDS: dict[IntensityMeasure, tuple[str, str]] = {
    "kgce_per_m2": ("单位面积能耗（kgce/m²）", "Energy per m² (kgce/m²)"),
    "kgce_per_person": ("人均能耗（kgce/人）", "Energy per person (kgce/person)"),
    "kgce_per_student": ("生均能耗（kgce/生）", "Energy per student (kgce/student)"),
    "kwh_per_m2": ("单位面积用电（kWh/m²）", "Electricity per m² (kWh/m²)"),
    "kwh_per_person": ("人均用电（kWh/人）", "Electricity per person (kWh/person)"),
    "water_m3_per_person": ("人均用水（m³/人）", "Water per person (m³/person)"),
}


class ReportText:
    """The reader's language, and the words of the report's period: the month, or the month
    to date while it is in progress."""

    def __init__(self, lang: str, partial: bool) -> None:
        self.zh = lang != "en"
        self.partial = partial

    def __call__(self, zh: str, en: str) -> str:
        return zh if self.zh else en

    @property
    def period(self) -> str:
        """Before a noun or verb in Chinese, after a clause in English: 本月 / this month."""
        return self("月初至今", "so far this month") if self.partial else self("本月", "this month")

    @property
    def vs_previous(self) -> tuple[str, str]:
        return ("上月同期", "the same days last month") if self.partial else ("上月", "last month")

    @property
    def vs_last_year(self) -> tuple[str, str]:
        return ("去年同期", "the same days last year") if self.partial else ("去年同月", "the same month last year")


def power_text(watts: float | None) -> str:
    """A power as people read it (`power_words`), "—" where none is known."""
    return "—" if watts is None else power_words(watts)


def _money(v: float | None) -> str:
    """Yuan: whole above ¥10, to the fen below it (a small leak costs ¥0.45, not ¥0)."""
    if v is None:
        return "¥—"
    return f"¥{v:,.0f}" if abs(v) >= 10 or not v else f"¥{v:,.2f}"


def number(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def percent(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def comparable(c: Comparison) -> float | None:
    """Another month's total where it is worth comparing with: readings in nearly all the
    hours of the span compared."""
    return c.total if c.total and c.coverage >= COVERAGE_WORTH else None


def _change(t: ReportText, u: Totals) -> tuple[str, Tone]:
    """The key figure's note: the change against the previous month's same span, unless this
    period or that one has too little data."""
    zh, en = t.vs_previous
    if not u.enough_data:
        return t("数据不足，暂不比较", "too little data to compare"), Tone.PLAIN
    then = comparable(u.previous_month)
    if u.total is None or not then:
        return t(f"比{zh}：无完整数据", f"vs {en}: no complete data"), Tone.PLAIN
    delta = (u.total - then) / then
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    tone = Tone.BAD if delta > 0.02 else Tone.GOOD if delta < -0.02 else Tone.PLAIN
    return t(f"比{zh} {arrow} {abs(delta) * 100:.1f}%", f"vs {en} {arrow} {abs(delta) * 100:.1f}%"), tone


def month_words(t: ReportText, month: str) -> str:
    """2026-12 as people write it: 2026 年 12 月, December 2026."""
    year, number = (int(x) for x in month.split("-"))
    return t(f"{year} 年 {number} 月", f"{MONTHS[number - 1]} {year}")


def _moment(t: ReportText, ms: int, tz: ZoneInfo) -> str:
    """A moment as people write it: 11 月 2 日 10:00, 2 November 10:00."""
    local = from_ms(ms, tz)
    return t(f"{local.month} 月 {local.day} 日 {local:%H:%M}", f"{local.day} {MONTHS[local.month - 1]} {local:%H:%M}")


def days_open(t: ReportText, site: SiteConfig) -> str:
    """What the days people come in are called: a kindergarten's 开园日, a school's 上学日."""
    zh, en = site.day_word()
    return t(zh, f"{en[0].upper()}{en[1:]}s")


def energy_document(r: EnergyReport, site: SiteConfig, lang: str = "zh-CN") -> Document:
    t = ReportText(lang, r.partial)
    tz = site.tz
    month = month_words(t, r.month)
    if r.partial:
        month = t(f"{month}（月初至今）", f"{month} (month to date)")
        days = t(f"{r.school_days} 天（全月 {r.school_days_month} 天）",
                 f"{r.school_days} so far ({r.school_days_month} in the month)")
    else:
        days = t(f"{r.school_days} 天", str(r.school_days))
    meta = [
        (t("单位", "Site"), r.site_name),
        (t("月份", "Month"), month),
        (t("统计时段", "Period"), t(f"{local_time(r.start_ms, tz)} 至 {local_time(r.through_ms, tz)}",
                                    f"{local_time(r.start_ms, tz)} to {local_time(r.through_ms, tz)}")),
        (days_open(t, site), days),
        (t("生成时间", "Generated"), local_time(r.generated_ms, tz)),
    ]
    return Document(
        key=f"energy-{r.month}", lang="en" if not t.zh else "zh-CN",
        title=t(f"{r.site_name} {month}节能报告", f"{r.site_name}: energy-saving report for {month}"),
        meta=meta,
        sections=[
            Section(t("概要", "Summary"), [_figures(t, r), Paragraphs(_summary(t, r, tz))]),
            Section(t("建议", "Recommendations"), [Paragraphs(_recommendations(t, r, site), bullets=True)]),
            Section(t("用电", "Electricity"), _utility_blocks(t, r.electricity, "electricity", tz)),
            Section(t("用水", "Water"), _utility_blocks(t, r.water, "water", tz)),
            Section(t("分项能耗与定额", "Sub-items and quotas"), _subitem_blocks(t, r, site)),
            Section(t("闭园用电与基础负荷", "After-hours electricity and base load"), _after_hours(t, r)),
            Section(t("楼宇排名", "Buildings ranked"), [_buildings(t, r)]),
            Section(t("表计明细", "Meters"), [_meters(t, r)]),
            Section(t("闭园负荷偏高告警", "Load left on after hours"), [_episodes(t, r, tz)]),
            Section(t("漏水损失", "Leak losses"), [_leaks(t, r, tz)]),
            Section(t("计算说明", "How the figures are computed"), [Paragraphs(_method(t))]),
        ],
    )


def _main_episodes(r: EnergyReport) -> tuple[int, float]:
    """The after-hours load alerts of main meters: how many, and their hours."""
    mains = [m for m in r.meters if m.main and m.utility == "electricity"]
    return sum(m.waste_episodes for m in mains), sum(m.waste_minutes for m in mains) / 60


def _figures(t: ReportText, r: EnergyReport) -> Figures:
    e, w = r.electricity, r.water
    e_note, e_tone = _change(t, e)
    w_note, w_tone = _change(t, w)
    cost = None if e.cost_yuan is None and w.cost_yuan is None else (e.cost_yuan or 0) + (w.cost_yuan or 0)
    episodes, _ = _main_episodes(r)
    quiet = Tone.GOOD if e.enough_data else Tone.PLAIN  # nothing found in too little data is no all-clear
    items = [
        Figure(t("用电", "Electricity"), f"{number(e.total)} kWh", e_note, e_tone),
        Figure(t("用水", "Water"), f"{number(w.total, 1)} m³", w_note, w_tone),
        Figure(t("费用", "Cost"), f"{_money(cost)}", t("电费 + 水费", "power + water")),
        Figure(t("闭园时段用电", "Electricity after hours"), percent(e.after_hours_share),
               f"{number(e.after_hours)} kWh"),
        Figure(t("闭园负荷偏高浪费", "Wasted after hours"), f"{_money(r.waste_yuan)}",
               t(f"{number(r.waste_kwh)} kWh，{episodes} 次告警" if episodes else "没有告警",
                 f"{number(r.waste_kwh)} kWh, {_plural(episodes, 'alert', 'alerts')}" if episodes else "no alerts"),
               Tone.BAD if r.waste_kwh else quiet),
    ]
    high = [b for b in r.buildings if b.base_excess_yuan]
    if high:
        items.append(Figure(t("基础负荷高于待机", "Base load above standby"),
                            f"{_money(sum(b.base_excess_yuan or 0 for b in high))}",
                            f"{number(sum(b.base_excess_kwh or 0 for b in high))} kWh", Tone.WARN))
    items.append(Figure(t("漏水损失", "Leak losses"), f"{_money(r.leak_yuan)}", f"{number(r.leak_m3, 2)} m³",
                        Tone.BAD if r.leaks else quiet if w.enough_data else Tone.PLAIN))
    return Figures(items)


def _summary(t: ReportText, r: EnergyReport, tz: ZoneInfo) -> list[str]:
    e, w = r.electricity, r.water
    out = []
    if r.partial:
        out.append(t(f"本报告为月初至今（截至 {_moment(t, r.through_ms, tz)}，共 {r.hours} 小时）的数据，"
                     "与上月和去年同月的相同日期相比；月度目标到月底再比较。",
                     f"This report covers the month to date (up to {_moment(t, r.through_ms, tz)}, {r.hours} hours) "
                     "and compares it with the same days of last month and of the same month last year; the monthly "
                     "target is compared at the end of the month."))
    if r.hours < MIN_HOURS:
        out.append(t(f"月初至今只有 {r.hours} 小时，不足 {MIN_HOURS // 24} 天：暂不与其他月份比较，也不据此判断节约。",
                     f"The month to date is only {r.hours} hours, less than {MIN_HOURS // 24} days: it is not "
                     "compared with other months yet, nor judged as a saving."))
    for name_zh, name_en, u, digits in (("用电", "Electricity", e, 0), ("用水", "Water", w, 1)):
        period_zh = "月初至今" if r.partial else "本月"
        period_en = "month to date" if r.partial else "this month"
        if u.total is None:
            out.append(t(f"{period_zh}{name_zh}：无数据。", f"{name_en} {period_en}: no data."))
            continue
        parts = [t(f"{period_zh}{name_zh} {number(u.total, digits)} {u.unit}，费用 {_money(u.cost_yuan)}",
                   f"{name_en} {period_en}: {number(u.total, digits)} {u.unit}, costing {_money(u.cost_yuan)}")]
        if r.hours >= MIN_HOURS and u.coverage < MIN_COVERAGE:
            parts.append(t(f"只有 {u.coverage * 100:.0f}% 的小时有数据（不到一半）：暂不比较，也不据此判断节约",
                           f"with readings in only {u.coverage * 100:.0f}% of the hours (under half): it is not "
                           "compared, nor judged as a saving"))
        elif u.enough_data:
            for other, (zh, en) in ((u.previous_month, t.vs_previous), (u.same_month_last_year, t.vs_last_year)):
                if then := comparable(other):
                    d = (u.total - then) / then * 100
                    parts.append(t(f"比{zh}{'增加' if d > 0 else '减少'} {abs(d):.1f}%",
                                   f"{abs(d):.1f}% {'more' if d > 0 else 'less'} than {en}"))
            if u.target and not r.partial:
                d = (u.total - u.target) / u.target * 100
                parts.append(t(f"{'超出' if d > 0 else '低于'}目标 {abs(d):.1f}%",
                               f"{abs(d):.1f}% {'over' if d > 0 else 'under'} target"))
        if u.after_hours_share is not None:
            parts.append(t(f"闭园时段占 {percent(u.after_hours_share)}", f"{percent(u.after_hours_share)} after hours"))
        out.append(t("，".join(parts) + "。", "; ".join(parts) + "."))
    if e.after_hours:
        out.append(_after_hours_sentence(t, r))
    if r.leaks:
        n = len(r.leaks)
        out.append(t(f"共 {n} 次漏水/长流水告警，损失约 {number(r.leak_m3, 2)} m³ ≈ {_money(r.leak_yuan)}。",
                     f"{_plural(n, 'leak or running-tap alert', 'leak or running-tap alerts')} lost about "
                     f"{number(r.leak_m3, 2)} m³ ≈ {_money(r.leak_yuan)}."))
    return out


def _after_hours_sentence(t: ReportText, r: EnergyReport) -> str:
    """The after-hours energy split: the waste the alerts counted, and the rest."""
    after = r.electricity.after_hours or 0.0
    episodes, hours = _main_episodes(r)
    rest = max(0.0, after - (r.waste_kwh or 0.0))
    if not episodes:
        return t(f"闭园时段用电 {number(after)} kWh，没有闭园负荷偏高告警：全部是基础负荷及短时用电。",
                 f"{number(after)} kWh was drawn while closed, with no after-hours load alert: all of it is the base "
                 "load and short uses.")
    return t(f"闭园时段用电 {number(after)} kWh：其中 {episodes} 次闭园负荷偏高告警（共 {hours:.1f} 小时）"
             f"比基础负荷多耗 {number(r.waste_kwh, 1)} kWh ≈ {_money(r.waste_yuan)}，"
             f"其余 {number(rest)} kWh 是基础负荷及短时用电。",
             f"{number(after)} kWh was drawn while closed: "
             f"{_plural(episodes, 'after-hours load alert', 'after-hours load alerts')} ({hours:.1f} h in all) "
             f"counted {number(r.waste_kwh, 1)} kWh ≈ {_money(r.waste_yuan)} above the base load, and the other "
             f"{number(rest)} kWh is the base load and short uses.")


def _source(t: ReportText, source: BaseSource | None) -> str | None:
    """Where a base load comes from, in a table's cell: 设定, learned."""
    return None if source is None else t(*BASE_SOURCES_SHORT[source])


def _base_cell(t: ReportText, watts: float | None) -> str:
    return power_text(watts) if watts is not None else t("未学到", "not learned yet")


def _base(t: ReportText, watts: float | None, source: BaseSource | None) -> str:
    """A base load with where it comes from: 2.1 kW（设定值）, 2.1 kW (configured)."""
    if watts is None or source is None:
        return t("未学到", "not learned yet")
    zh, en = BASE_SOURCES[source]
    return t(f"{power_text(watts)}（{zh}）", f"{power_text(watts)} ({en})")


def _recommendations(t: ReportText, r: EnergyReport, site: SiteConfig) -> list[str]:
    """Each thing worth doing, the most money at stake first."""
    found = [*_load_advice(t, r, site), *_water_advice(t, r, site), *_tariff_advice(t, r), *_target_advice(t, r),
             *_coverage_advice(t, r)]
    if found:
        return [text for _, text in sorted(found, key=lambda f: -f[0])]
    if not r.electricity.enough_data:
        return [t("月初至今的数据还不足以判断，暂无建议；到月底的报告再完整比较。",
                  "There is too little data so far this month to judge: no recommendations yet; the report at the "
                  "end of the month compares it in full.")]
    return [t(f"{t.period}没有发现浪费、漏水或数据缺失，继续保持。",
              f"No waste, leaks or data gaps {t.period}: keep it up.")]


Advice = list[tuple[float, str]]  # (yuan at stake, text)


def _load_advice(t: ReportText, r: EnergyReport, site: SiteConfig) -> Advice:
    buildings = {b.id: b.name for b in site.buildings}
    found = [(m.waste_yuan or 0, _waste_text(t, m, buildings[m.building_id])) for m in r.meters
             if m.waste_kwh and m.total and m.waste_kwh >= min(WASTE_WORTH_KWH, m.total * WASTE_WORTH_SHARE)]
    return found + [(b.base_excess_yuan or 0, _standby_text(t, b)) for b in r.buildings if b.base_excess_kwh]


def _water_advice(t: ReportText, r: EnergyReport, site: SiteConfig) -> Advice:
    found = []
    for leak in {x.device_id: x for x in r.leaks}:
        mine = [x for x in r.leaks if x.device_id == leak]
        n, m3, yuan = len(mine), sum(x.loss_m3 for x in mine), sum(x.cost_yuan for x in mine)
        found.append((yuan, t(f"{mine[0].name}：{t.period}有 {n} 次漏水或长流水，约 {m3:,.2f} m³ ≈ {_money(yuan)}。"
                              "请水工检查管路、阀门和水箱浮球，修好后观察夜间读数是否归零。",
                              f"{mine[0].name}: {_plural(n, 'leak or running tap', 'leaks or running taps')} "
                              f"{t.period}, about {m3:,.2f} m³ ≈ {_money(yuan)}. Have the plumber check pipes, valves "
                              "and cistern floats, then watch that the night reading stays at zero.")))
    w = r.water
    if not r.leaks and w.enough_data and w.after_hours_share and w.after_hours_share > NIGHT_WATER_WORTH_SHARE:
        found.append(((w.after_hours or 0) * site.tariffs.water_yuan_per_m3,
                      t(f"闭园时段用水占 {percent(w.after_hours_share)}（{number(w.after_hours, 1)} m³），"
                        "高于正常水平：请检查是否有滴漏或长流水。",
                        f"{percent(w.after_hours_share)} of the water ({number(w.after_hours, 1)} m³) was used "
                        "after hours, more than usual: look for drips and taps left running.")))
    return found


def _tariff_advice(t: ReportText, r: EnergyReport) -> Advice:
    e = r.electricity
    peak = next((p for p in e.by_period if p.period == "peak"), None)
    valley = next((p for p in e.by_period if p.period == "valley"), None)
    if not (peak and valley and e.enough_data and e.total and peak.kwh > 0):
        return []
    saving = peak.kwh * 0.1 * (peak.yuan_per_kwh - valley.yuan_per_kwh)
    return [(saving, t(
        f"{t.period}峰时段用电 {number(peak.kwh)} kWh（¥{peak.yuan_per_kwh:.2f}/kWh）。如把其中一成（如消毒柜、"
        f"热水器、洗衣）移到谷时段（¥{valley.yuan_per_kwh:.2f}/kWh），可省约 {_money(saving)}。",
        f"{number(peak.kwh)} kWh was drawn at peak price (¥{peak.yuan_per_kwh:.2f}/kWh) {t.period}. Moving a "
        f"tenth of it (sterilising cabinets, water heaters, laundry) to valley hours "
        f"(¥{valley.yuan_per_kwh:.2f}/kWh) would save about {_money(saving)}."))]


def _target_advice(t: ReportText, r: EnergyReport) -> Advice:
    found: Advice = []
    for u, zh, en in ((r.electricity, "用电", "Electricity"), (r.water, "用水", "Water")):
        if u.total is None or not u.target or u.total <= u.target:
            continue
        over = (u.total - u.target) / u.target * 100
        if r.partial:  # the whole month's target, already passed: no pro rata guess needed
            text = t(f"{zh}月初至今已超出全月目标 {over:.1f}%：请在行政会上通报，并对照楼宇排名找出增长最多的楼宇。",
                     f"{en} so far this month is already {over:.1f}% over the whole month's target: raise it at "
                     "the staff meeting and check the building ranking for the largest rise.")
        else:
            text = t(f"{zh}超出月度目标 {over:.1f}%：请在行政会上通报，并对照楼宇排名找出增长最多的楼宇。",
                     f"{en} is {over:.1f}% over the monthly target: raise it at the staff meeting and check the "
                     "building ranking for the largest rise.")
        found.append((0.0, text))
    return found


def _coverage_advice(t: ReportText, r: EnergyReport) -> Advice:
    if not r.hours:  # coverage is of the elapsed hours: none have elapsed in the month's first hour
        return []
    return [(0.0, t(f"{m.name}：{t.period}只有 {m.coverage * 100:.0f}% 的小时有数据，请检查表计通信；"
                    "缺数据的小时不计入上面的数字。",
                    f"{m.name}: only {m.coverage * 100:.0f}% of the hours {t.period} have readings; "
                    "check its communication. Hours without data are not in the figures above."))
            for m in r.meters if m.coverage < COVERAGE_WORTH]


def _waste_text(t: ReportText, m: MeterUse, building: str) -> str:
    hours = m.waste_minutes / 60
    excess = (m.waste_kwh or 0) / hours * 1000 if hours else 0.0
    if m.base_w is None or m.base_source is None:
        above_zh = f"平均高出基础负荷约 {power_text(excess)}"
        above_en = f"about {power_text(excess)} above its base load"
    else:
        zh, en = BASE_SOURCES[m.base_source]
        above_zh = f"平均比基础负荷 {power_text(m.base_w)}（{zh}）高出约 {power_text(excess)}"
        above_en = f"about {power_text(excess)} above its base load of {power_text(m.base_w)} ({en})"
    where_zh = m.name if building in m.name else f"{building}{m.name}"
    where_en = m.name if building in m.name else f"{building} {m.name}"
    return t(
        f"{where_zh}：{t.period}有 {m.waste_episodes} 次闭园后负荷偏高（共 {hours:.1f} 小时），{above_zh}，"
        f"共多耗约 {number(m.waste_kwh, 1)} kWh ≈ {_money(m.waste_yuan)}。请门卫在闭园检查时关闭照明、空调、饮水机和"
        "电脑，考虑给该回路加装定时断电。",
        f"{where_en}: load was left on after closing {_times(m.waste_episodes)} {t.period} "
        f"({hours:.1f} h in all), on average {above_en}, about {number(m.waste_kwh, 1)} kWh ≈ {_money(m.waste_yuan)} "
        "in all. Have the guard switch off lights, air conditioners, water dispensers and computers at closing, "
        "and consider a timer on that circuit.")


def _standby_text(t: ReportText, b: BuildingUse) -> str:
    extra = (b.base_w or 0) - (b.standby_w or 0)
    return t(
        f"{b.name}：闭园时的基础负荷为 {_base(t, b.base_w, b.base_source)}，高于该楼预期的待机功率 "
        f"{power_text(b.standby_w)}；多出的 {power_text(extra)} 在{t.period}的 {b.closed_h:,.0f} 个闭园小时里约 "
        f"{number(b.base_excess_kwh, 1)} kWh ≈ {_money(b.base_excess_yuan)}。请检查闭园后仍开着的冰箱、服务器、热水器和"
        "饮水机，能关的关掉或加装定时。",
        f"{b.name}: its base load while closed is {_base(t, b.base_w, b.base_source)}, above the building's "
        f"expected standby of {power_text(b.standby_w)}; the extra {power_text(extra)} over the "
        f"{b.closed_h:,.0f} closed hours {t.period} comes to about {number(b.base_excess_kwh, 1)} kWh ≈ "
        f"{_money(b.base_excess_yuan)}. Check the fridges, servers, water heaters and water dispensers left on "
        "after closing: switch off what can be, or put it on a timer.")


Blocks = list[Figures | Table | Chart | HeatMap | Paragraphs]


def _utility_blocks(t: ReportText, u: Totals, key: str, tz: ZoneInfo) -> Blocks:
    if u.total is None:
        return [Paragraphs([t(f"{t.period}没有数据。", f"No data {t.period}.")])]
    blocks: Blocks = []
    prev, year = u.previous_month, u.same_month_last_year

    def delta(then: float | None) -> float | None:
        return _delta(u.total, then) if u.enough_data else None

    rows: list[list[str | int | float | None]] = [
        [t("月初至今", "Month to date") if t.partial else t("本月", "This month"), u.total, None,
         round(u.coverage * 100, 1)],
        [t("上月同期", "Same days last month") if t.partial else t("上月", "Last month"), prev.total,
         delta(comparable(prev)), round(prev.coverage * 100, 1)],
        [t("去年同期", "Same days last year") if t.partial else t("去年同月", "Same month last year"), year.total,
         delta(comparable(year)), round(year.coverage * 100, 1)],
        [t("月度目标", "Monthly target"), u.target, None if t.partial else delta(u.target), None],
    ]
    if t.partial:
        span = f"{local_time(prev.start_ms, tz)} – {local_time(prev.end_ms, tz)}"
        caption = t(f"对比：上月和去年同月取相同日期（上月为 {span}）；数据不足 95% 的时段不作比较；"
                    "月度目标到月底再比较",
                    f"Comparison: last month and the same month last year over the same days (last month: {span}); "
                    "spans with under 95% of their data are not compared; the monthly target is compared at the "
                    "end of the month")
    else:
        caption = t("对比（数据不足 95% 的月份不作比较）",
                    "Comparison (months with under 95% of their data are not compared)")
    if not u.enough_data:
        caption += t("；本期数据不足，暂不比较", "; this period has too little data to compare")
    blocks.append(Table(f"{key}-comparison", [t("项目", "Item"), u.unit, t("本期相比 %", "This period vs, %"),
                                              t("数据完整 %", "Data %")], rows,
                        decimals=[None, 2 if key == "water" else 0, 1, 1], caption=caption))
    # Intensities are small numbers (0.48 kWh a person so far): a table with their own digits.
    blocks.append(Table(f"{key}-intensity", [t("强度", "Intensity"), u.unit],
                        [[t("人均", "Per person"), u.per_person], [t("每平方米", "Per m²"), u.per_m2]],
                        decimals=[None, 2]))
    blocks.append(Chart(f"{key}-daily", t("每日用量", "Daily use"), u.unit, [d.date.strftime("%d") for d in u.daily],
                        [Series(t("开园时段", "Open hours"),
                                [None if d.total is None or d.after_hours is None else round(d.total - d.after_hours, 3)
                                 for d in u.daily]),
                         Series(t("闭园时段", "After hours"), [d.after_hours for d in u.daily])], stacked=True))
    blocks.append(HeatMap(f"{key}-hours", t("每小时平均用量（星期 × 时）", "Mean use per hour (weekday × hour)"),
                          u.unit, [f"{h}" for h in range(24)], [t(zh, en) for zh, en in WEEKDAYS], u.weekday_hours))
    if u.by_period:
        blocks.append(Table(f"{key}-tariff", [t("时段", "Period"), t("电价（元/kWh）", "Price (¥/kWh)"), "kWh",
                                              t("费用（元）", "Cost (¥)"), t("占比", "Share")],
                            [[t(*PERIOD_NAMES[p.period]), p.yuan_per_kwh, p.kwh, p.cost_yuan,
                              round(p.kwh / u.total * 100, 1) if u.total else None] for p in u.by_period],
                            decimals=[None, 2, 0, 0, 1], caption=t("分时电价", "Time-of-use tariff")))
    return blocks


def _delta(now: float | None, then: float | None) -> float | None:
    return None if now is None or not then else round((now - then) / then * 100, 1)


def _after_hours(t: ReportText, r: EnergyReport) -> list[Paragraphs | Table]:
    """Per building (and per main meter where a building has several), the after-hours energy
    split into the waste the alerts counted and the rest, the base and the expected standby."""
    rows: list[list[str | int | float | None]] = []
    tones: list[list[Tone]] = []
    mains = {b.building_id: [m for m in r.meters if m.main and m.utility == "electricity" and m.building_id ==
                             b.building_id] for b in r.buildings}
    for b in r.buildings:
        standby = power_text(b.standby_w) if b.standby_w is not None else t("未设定", "not set")
        rows.append([b.name, b.after_hours_kwh, b.waste_kwh, b.after_hours_rest, _base_cell(t, b.base_w),
                     _source(t, b.base_source), standby, b.base_excess_kwh, b.base_excess_yuan])
        tones.append([Tone.PLAIN] * 2 + [Tone.BAD if b.waste_kwh else Tone.PLAIN] + [Tone.PLAIN] * 4
                     + [Tone.WARN if b.base_excess_kwh else Tone.PLAIN] * 2)
        if len(mains[b.building_id]) > 1:
            for m in mains[b.building_id]:
                rows.append([f"  {m.name}", m.after_hours, m.waste_kwh, m.after_hours_rest, _base_cell(t, m.base_w),
                             _source(t, m.base_source), None, None, None])
                tones.append([Tone.PLAIN] * 9)
    explain = t("闭园时段用电 = 闭园负荷偏高告警算出的浪费 + 基础负荷及短时用电。"
                f"基础负荷是「{LOAD_AFTER_HOURS.label_zh}」规则用的值：设定值，或网关按近几晚学到的值。"
                "预期待机是楼宇配置里该楼闭园时应有的用电（网络、监控、必须开着的冰箱）；"
                "基础负荷高于它的部分，按闭园小时和当时电价折算成电量和费用。",
                "Electricity after hours = the waste the after-hours load alerts counted + the base load and short "
                f"uses. The base load is the one the “{LOAD_AFTER_HOURS.label_en}” rule uses: configured, or "
                "learned by the gateway from recent nights. The expected standby is what the building should draw "
                "while closed (network, CCTV, the fridges that must stay on), as its settings give it; a base above "
                "it is costed over the closed hours at the price of their time.")
    table = Table("after-hours", [t("楼宇", "Building"), t("闭园用电 kWh", "After hours kWh"),
                                  t("其中浪费 kWh", "Of it waste kWh"),
                                  t("基础负荷及短时用电 kWh", "Base load and short uses kWh"),
                                  t("基础负荷", "Base load"), t("来源", "From"), t("预期待机", "Expected standby"),
                                  t("超出待机 kWh", "Above standby kWh"), t("超出待机（元）", "Above standby (¥)")],
                  rows, decimals=[None, 0, 1, 0, None, None, None, 0, 0], tones=tones,
                  caption=t("浪费取自闭园负荷偏高告警", "Waste is quoted from the after-hours load alerts"))
    return [Paragraphs([explain]), table]


def _buildings(t: ReportText, r: EnergyReport) -> Table:
    rows: list[list[str | int | float | None]] = []
    tones = []
    for i, b in enumerate(r.buildings, 1):
        change = _delta(b.electricity_kwh, comparable(b.previous_kwh)) if b.enough_data else None
        rows.append([i, b.name, b.electricity_kwh, b.kwh_per_m2, b.water_m3, b.kgce, b.cost_yuan,
                     None if b.after_hours_share is None else round(b.after_hours_share * 100, 1), b.waste_kwh, change])
        tones.append([Tone.PLAIN] * 8 + [Tone.BAD if b.waste_kwh else Tone.PLAIN,
                                         Tone.BAD if change and change > 2 else Tone.GOOD if change and change < -2
                                         else Tone.PLAIN])
    zh, en = t.vs_previous
    return Table("buildings", [t("名次", "Rank"), t("楼宇", "Building"), "kWh", "kWh/m²", "m³", "kgce",
                               t("费用（元）", "Cost (¥)"),
                               t("闭园用电 %", "After hours %"), t("浪费 kWh", "Waste kWh"),
                               t(f"比{zh} %", f"vs {en} %")],
                 rows, decimals=[0, None, 0, 2, 1, 1, 0, 1, 1, 1], tones=tones,
                 caption=t("按每平方米用电排序（无面积时按总量）",
                           "By electricity per m² (by total where no area is given)"))


def _meters(t: ReportText, r: EnergyReport) -> Table:
    rows: list[list[str | int | float | None]] = []
    tones = []
    for m in r.meters:
        category = CATEGORIES[m.utility]
        rows.append([m.name, t(category.zh, category.en), t("总表", "main") if m.main else t("分表", "sub"),
                     t(*words(m.subitem)) if m.subitem else None, m.total, METERS[m.utility][2],
                     None if m.after_hours_share is None else round(m.after_hours_share * 100, 1),
                     power_text(m.base_w) if m.base_w is not None else None, m.waste_kwh, m.waste_yuan, m.cost_yuan,
                     round(m.coverage * 100, 1), None if m.completeness is None else round(m.completeness * 100, 1)])
        tones.append([Tone.PLAIN] * 8 + [Tone.BAD if m.waste_kwh else Tone.PLAIN] * 2
                     + [Tone.PLAIN, Tone.WARN if m.coverage < COVERAGE_WORTH else Tone.PLAIN,
                        Tone.PLAIN if m.complete else Tone.WARN])
    return Table("meters", [t("表计", "Meter"), t("类别", "Utility"), t("类型", "Type"), t("分项", "Sub-item"),
                            t("用量", "Use"), t("单位", "Unit"), t("闭园 %", "After hours %"),
                            t("基础负荷", "Base load"), t("浪费 kWh", "Waste kWh"), t("浪费（元）", "Waste (¥)"),
                            t("费用（元）", "Cost (¥)"), t("数据完整 %", "Data %"), t("记录完整 %", "Records %")],
                 rows, decimals=[None, None, None, None, 2, None, 1, None, 1, 1, 0, 1, 1], tones=tones,
                 caption=t(f"分表的用量已含在所属总表中；记录完整度是收到的记录数除以按上报间隔应有的记录数，"
                           f"低于 {COMPLETE:.0%} 标黄",
                           f"Sub-meters are part of their building's main meter; records % is the readings received "
                           f"over those the meter's reporting interval expects, flagged under {COMPLETE:.0%}"),
                 excerpt=_meters_worth_a_look(t, r.meters))


def _incomplete(m: MeterUse) -> bool:
    return m.coverage < COVERAGE_WORTH or (m.completeness is not None and not m.complete)


def _meters_worth_a_look(t: ReportText, meters: Sequence[MeterUse]) -> Excerpt | None:
    """Of a site with many meters, the ones a reader should see: the largest of each utility,
    those with the most waste and those with the least complete data, each up to
    `METERS_WORTH_A_LOOK`, in the table's order; None when every meter fits."""
    if len(meters) <= METERS_SHOWN_WHOLE:
        return None
    n = METERS_WORTH_A_LOOK
    index = {m.device_id: i for i, m in enumerate(meters)}
    largest = [m for u in METERS for m in sorted((m for m in meters if m.utility == u and m.total is not None),
                                                key=lambda m: -(m.total or 0))[:n]]
    wasting = sorted((m for m in meters if m.waste_kwh), key=lambda m: -(m.waste_kwh or 0))
    incomplete = sorted((m for m in meters if _incomplete(m)),
                        key=lambda m: (min(m.coverage, 1.0 if m.completeness is None else m.completeness)))
    shown = sorted({index[m.device_id] for m in (*largest, *wasting[:n], *incomplete[:n])})
    zh = [f"共 {len(meters)} 块表计，这里列出 {len(shown)} 块：每类用量最大的 {n} 块"]
    en = [f"{len(meters)} meters, {len(shown)} of them here: the {n} largest of each utility"]
    for found, zh_what, en_what in ((wasting, "浪费最多", "the most waste"),
                                    (incomplete, "数据最不完整", "the least complete data")):
        if found:
            zh.append(f"{zh_what}的 {min(n, len(found))} 块（共 {len(found)} 块）")
            en.append(f"the {min(n, len(found))} with {en_what} (of {len(found)})")
    return Excerpt(shown, t("、".join(zh) + "。全部表计见 CSV 下载。",
                            ", ".join(en) + ". The CSV download lists every meter."))


def _subitem_blocks(t: ReportText, r: EnergyReport, site: SiteConfig) -> list[Paragraphs | Table]:
    """The categories and sub-items in their units and in standard coal, the intensities
    against the site's quotas, and the metering coverage."""
    categories = Table("categories", [t("分类", "Category"), t("用量", "Use"), t("单位", "Unit"), "kgce"],
                       [[category_words(t, c.utility), c.total, c.unit, c.kgce] for c in r.categories
                        if c.total is not None],
                       decimals=[None, 2, None, 1],
                       caption=t(f"折标准煤合计 {number(r.total_kgce, 1)} kgce；水不折标准煤",
                                 f"{number(r.total_kgce, 1)} kgce of standard coal in all; water is not converted"))
    return [categories, subitem_table(t, r.subitems, site), intensity_table(t, r.intensity, r.quota_standard),
            metering_table(t, r.metering)]


def category_words(t: ReportText, utility: Utility) -> str:
    c = CATEGORIES[utility]
    return f"{c.code} {t(c.zh, c.en)}"


def subitem_table(t: ReportText, subitems: Sequence[SubitemUse], site: SiteConfig) -> Table | Paragraphs:
    if not subitems:
        return Paragraphs([t("还没有表计标注分项。", "No meter is tagged with a sub-item yet.")])
    buildings = {b.id: b.name for b in site.buildings}
    return Table("subitems", [t("分项", "Sub-item"), t("楼宇", "Building"), t("用量", "Use"), t("单位", "Unit"), "kgce",
                              t("计量方式", "Measured as")],
                 [[t(*words(u.code)), buildings.get(u.building_id or "", t("全园", "whole site")), u.total, u.unit,
                   u.kgce, _measured(t, site, u.plus, u.minus)] for u in subitems],
                 decimals=[None, None, 2, None, 1, None])


def intensity_table(t: ReportText, found: Sequence[Intensity], standard: str,
                    last_year: Sequence[float | None] | None = None) -> Table:
    """Each intensity against its quota for the period (and, given, last year's same span)."""
    rows: list[list[Cell]] = []
    tones = []
    for n, i in enumerate(found):
        judged = (None if i.exceeded is None else t("超出定额", "above quota") if i.exceeded
                  else t("未超出", "within quota"))
        then = [] if last_year is None else [last_year[n], _delta(i.value, last_year[n])]
        rows.append([t(*INTENSITY_WORDS[i.measure]), i.value, *then, i.quota_period, i.quota_year, judged])
        tones.append([Tone.PLAIN] * (4 + len(then))
                     + [Tone.BAD if i.exceeded else Tone.GOOD if i.exceeded is False else Tone.PLAIN])
    compared = [] if last_year is None else [t("去年同期", "Last year"), t("同比 %", "Year on year, %")]
    source = standard or t("未注明", "not named")
    return Table("intensity", [t("强度", "Intensity"), t("本期", "This period"), *compared,
                               t("本期定额", "Quota for the period"), t("全年定额", "Quota for the year"),
                               t("判断", "Judgement")],
                 rows, decimals=[None, 3, *([3, 1] if compared else []), 3, 2, None], tones=tones,
                 caption=t(f"全年定额按本期已过小时数折算；定额来源：{source}",
                           f"The year's quota in proportion to the period's hours; quotas from: {source}"))


# The 2014 notice's targets for each coverage: per unit 100 %, per zone and per sub-item 90 %.
METERING_TARGETS: Final = (("per_unit", ("分户计量率", "Per building"), 1.0),
                           ("per_zone", ("分区计量率", "Per zone"), 0.9),
                           ("per_subitem", ("分项计量率", "Per sub-item"), 0.9))


def metering_table(t: ReportText, metering: Sequence[Metering]) -> Table:
    """Each category's metering coverage against its target."""
    rows: list[list[Cell]] = []
    tones = []
    for m in metering:
        for key, (zh, en), target in METERING_TARGETS:
            share = getattr(m, key)
            rows.append([category_words(t, m.utility), t(zh, en), None if share is None else round(share * 100, 1),
                         round(target * 100), None if share is None else t("达到", "met") if share >= target
                         else t("未达到", "not met")])
            tones.append([Tone.PLAIN] * 4 + [Tone.PLAIN if share is None else Tone.GOOD if share >= target
                                             else Tone.WARN])
    return Table("metering", [t("分类", "Category"), t("覆盖率", "Coverage"), t("本期 %", "This period, %"),
                              t("目标 %", "Target, %"), t("判断", "Judgement")], rows,
                 decimals=[None, None, 1, 0, None], tones=tones,
                 caption=t("分户：有自己总表的楼宇占全部楼宇；分区：总表用量中再由分区分表计量的比例"
                           "（无总表而由多块表分别计量各部分的楼宇全部计入）；分项：总表用量中计入分项的比例。"
                           "目标取自 2014 年公共机构能源资源计量器具配备的通知",
                           "Per building: buildings with a meter of their own; per zone: the share of the main "
                           "meters' use measured again by zone meters (a building metered part by part by several "
                           "meters counts whole); per sub-item: the share counted in a sub-item. Targets from the "
                           "2014 notice on public institutions' meters"))


def _measured(t: ReportText, site: SiteConfig, plus: list[str], minus: list[str]) -> str:
    def name(device_id: str) -> str:
        device = site.device(device_id)
        return device.name if device and device.name else device_id
    text = t("、", ", ").join(name(d) for d in plus)
    return text + "".join(t(f" 减 {name(d)}", f" less {name(d)}") for d in minus)


def _episodes(t: ReportText, r: EnergyReport, tz: ZoneInfo) -> Table | Paragraphs:
    if not r.load_episodes:
        return Paragraphs([t(f"{t.period}没有闭园负荷偏高告警。", f"No after-hours load alerts {t.period}.")])
    return Table("load-episodes", [t("表计", "Meter"), t("开始", "From"), t("到", "Until"), t("已恢复", "Cleared"),
                                   t("分钟", "Minutes"), t("当时基础负荷", "Base load then"),
                                   t("浪费 kWh", "Waste kWh"), t("浪费（元）", "Waste (¥)")],
                 [[x.name, local_time(x.first_ms, tz), local_time(x.until_ms, tz),
                   t("是", "yes") if x.cleared else t("否，仍在进行", "no, still on"), x.minutes,
                   power_text(x.base_w) if x.base_w is not None else None, x.waste_kwh, x.cost_yuan]
                  for x in r.load_episodes], decimals=[None, None, None, None, 0, None, 2, 2],
                 caption=t(*AS_ALERTS_SAY))


def _leaks(t: ReportText, r: EnergyReport, tz: ZoneInfo) -> Table | Paragraphs:
    if not r.leaks:
        return Paragraphs([t(f"{t.period}没有漏水或长流水告警。", f"No leak or running-tap alerts {t.period}.")])
    return Table("leaks", [t("表计", "Meter"), t("开始", "From"), t("到", "Until"), t("已恢复", "Cleared"),
                           t("分钟", "Minutes"), "m³", t("损失（元）", "Loss (¥)")],
                 [[x.name, local_time(x.first_ms, tz), local_time(x.until_ms, tz),
                   t("是", "yes") if x.cleared else t("否，仍在进行", "no, still on"), x.minutes,
                   x.loss_m3, x.cost_yuan] for x in r.leaks], decimals=[None, None, None, None, 0, 3, 2],
                 caption=t(*AS_ALERTS_SAY))


def _method(t: ReportText) -> list[str]:
    return [
        t("各楼宇用量取自其总表（配电间、水表间），分表不重复计入；"
          "用量是表计读数的增量，通信中断后补报的用量计入恢复的时段。",
          "A building's use comes from its main meters (plant room); sub-meters are not counted twice. Use is the "
          "increase of the meter reading; what a meter reports after a gap counts where it resumes."),
        t("月份未结束时报告月初至今：从 1 日 0 时到最近一个整点，与上月和去年同月的相同日期、相同时刻相比"
          "（那个月较短时取整月）；月度目标到月底再比较，不按天数折算。数据完整度按已过去的小时计算；"
          "不足 3 天或不到一半的小时有数据时，不作比较，也不判断节约。",
          "While the month is in progress the report covers the month to date, from the 1st at 00:00 to the last "
          "whole hour, and compares it with the same days and hours of last month and of the same month last year "
          "(the whole month where that month is shorter); the monthly target is compared at the end of the month, "
          "not scaled by days. Data coverage counts the hours that have passed; with under 3 days, or readings in "
          "under half of the hours, nothing is compared or judged as a saving."),
        t("闭园时段按校历（含节假日、调休和楼宇自己的开放时间）以 5 分钟为单位划分。",
          "After hours follows the school calendar (holidays, make-up days, each building's hours) in 5-minute steps."),
        t(f"浪费：本月开始的每次「{LOAD_AFTER_HOURS.label_zh}」告警所算的电量——从超出开始到告警恢复，表计计量的用电"
          "减去当时的基础负荷乘以这段时间，按用电时的电价计费；其余闭园用电是基础负荷及短时用电。基础负荷是该规则的"
          "设定值，未设定时为网关按近几晚学到的值。",
          f"Waste: what each “{LOAD_AFTER_HOURS.label_en}” alert begun this month counted, from when the load "
          "rose until the alert cleared: the energy the meter counted less the base load in force over that time, "
          "at the price of when it was drawn; the rest of the after-hours energy is the base load and short uses. "
          "The base load is the rule's configured one, else the one the gateway learned from recent nights."),
        t("漏水损失：本月开始的每个漏水或长流水告警所算的水量——漏水期间超过该水表正常流量的部分（闭园时全部计入），"
          "按水价计费。",
          "Leak losses: what each leak or running-tap alert begun this month counted: the water above the meter's "
          "normal flow during the leak (all of it while the building is closed), at the water price."),
    ]


def local_time(ms: int, tz: ZoneInfo) -> str:
    return from_ms(ms, tz).strftime("%Y-%m-%d %H:%M")
