"""A quarter's or a year's energy report laid out (`energy_period.PeriodReport`): the totals
year on year, each month, the categories in standard coal, the buildings, the sub-items, the
intensities against the quotas, metering coverage and each meter's data completeness. The
tables are the monthly report's (gateway/reports/energy_doc.py) where they show the same."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway.clock import from_ms
from gateway.config import SiteConfig
from gateway.reports.document import (
    Cell,
    Chart,
    Document,
    Excerpt,
    Figure,
    Figures,
    Paragraphs,
    Section,
    Series,
    Table,
    Tone,
)
from gateway.reports.energy import COMPLETE
from gateway.reports.energy_doc import (
    COVERAGE_WORTH,
    METERS_SHOWN_WHOLE,
    METERS_WORTH_A_LOOK,
    ReportText,
    category_words,
    intensity_table,
    local_time,
    metering_table,
    month_words,
    number,
    subitem_table,
)
from gateway.reports.energy_period import PeriodReport, YearOnYear

NOTABLE = 0.02  # a change year on year beyond this reads red or green, as the monthly report's


def period_document(r: PeriodReport, site: SiteConfig, lang: str = "zh-CN") -> Document:
    t = ReportText(lang, r.partial)
    tz = site.tz
    when = period_title(t, r, tz)
    power = next(c for c in r.categories if c.utility == "electricity")
    water = next(c for c in r.categories if c.utility == "water")
    complete = [m for m in r.meters if m.completeness is not None]
    meta = [
        (t("单位", "Site"), r.site_name),
        (t("期间", "Period"), when),
        (t("统计时段", "Span"), span_words(t, r, tz)),
        (t("生成时间", "Generated"), local_time(r.generated_ms, tz)),
    ]
    summary = Figures([
        yoy_figure(t, t("用电", "Electricity"), power.total, "kWh", 0, NOTABLE),
        yoy_figure(t, t("用水", "Water"), water.total, "m³", 1, NOTABLE),
        yoy_figure(t, t("综合能耗", "Energy"), r.total_kgce, "kgce", 0, NOTABLE),
        Figure(t("数据完整的表计", "Meters with complete data"),
               f"{sum(m.complete for m in complete)} / {len(complete)}",
               t(f"收到的读数不少于应收的 {COMPLETE:.0%}", f"at least {COMPLETE:.0%} of the readings expected"),
               Tone.GOOD if all(m.complete for m in complete) else Tone.WARN),
    ])
    sections = [
        Section(t("概要", "Summary"), [summary, Paragraphs([_compared_how(t, r)])]),
        Section(t("分类能耗与同比", "Categories, year on year"), [_categories(t, r)]),
        Section(t("各月", "By month"), _months(t, r)),
        Section(t("楼宇", "Buildings"), [_buildings(t, r)]),
        Section(t("分项能耗", "Sub-items"), [subitem_table(t, r.subitems, site)]),
        Section(t("能耗强度与定额", "Intensity and quotas"),
                [intensity_table(t, r.intensity, r.quota_standard, [i.last_year for i in r.intensity])]),
        Section(t("计量覆盖率", "Metering coverage"), [metering_table(t, r.metering)]),
        Section(t("数据完整率", "Data completeness"), [_completeness(t, r)]),
    ]
    return Document(key=f"energy-{r.period}", lang="zh-CN" if t.zh else "en",
                    title=t(f"{r.site_name} {when}能耗报告", f"{r.site_name}: energy report for {when}"),
                    meta=meta, sections=sections)


def period_words(t: ReportText, period: str) -> str:
    """2026-Q3 as people write it: 2026 年第三季度, Q3 2026 (a month or a year as well)."""
    year, _, rest = period.partition("-")
    if not rest:
        return t(f"{year} 年度", f"the year {year}")
    if rest.startswith("Q"):
        n = int(rest[1:])
        return t(f"{year} 年第{'一二三四'[n - 1]}季度", f"Q{n} {year}")
    return t(f"{year} 年 {int(rest)} 月", f"{year}-{rest}")


def period_title(t: ReportText, r: PeriodReport, tz: ZoneInfo) -> str:
    """The period as a title says it: 2026 年第三季度, or （截至 …） while it is in progress."""
    when = period_words(t, r.period)
    if r.partial:
        return t(f"{when}（截至 {local_time(r.through_ms, tz)}）", f"{when} (to {local_time(r.through_ms, tz)})")
    return when


def span_words(t: ReportText, r: PeriodReport, tz: ZoneInfo) -> str:
    """What the period covers: its first and last days, or to the hour while in progress."""
    first = f"{from_ms(r.start_ms, tz):%Y-%m-%d}"
    last = local_time(r.through_ms, tz) if r.partial else f"{from_ms(r.through_ms - 1, tz):%Y-%m-%d}"
    return t(f"{first} 至 {last}", f"{first} to {last}")


def yoy_figure(t: ReportText, label: str, f: YearOnYear, unit: str, digits: int, notable: float) -> Figure:
    """A key figure with its change year on year (where last year's data is complete enough),
    red or green beyond `notable`."""
    if f.change is None or f.coverage < COVERAGE_WORTH:
        return Figure(label, f"{number(f.now, digits)} {unit}", t("去年同期无完整数据", "no complete data last year"))
    arrow = "▲" if f.change > 0 else "▼" if f.change < 0 else "="
    tone = Tone.BAD if f.change > notable else Tone.GOOD if f.change < -notable else Tone.PLAIN
    return Figure(label, f"{number(f.now, digits)} {unit}",
                  t(f"同比 {arrow} {abs(f.change) * 100:.1f}%", f"year on year {arrow} {abs(f.change) * 100:.1f}%"),
                  tone)


def _compared_how(t: ReportText, r: PeriodReport) -> str:
    if r.partial:
        return t("同比取去年同期的相同日期（进行中的月份到同一时刻）；去年同期数据不足 95% 的不作比较。",
                 "Year on year over the same days last year (the month in progress up to the same time); last "
                 "year's figures with under 95% of their data are not compared.")
    return t("同比取去年同期；去年同期数据不足 95% 的不作比较。",
             "Year on year against the same period last year; last year's figures with under 95% of their data "
             "are not compared.")


def _then(f: YearOnYear) -> tuple[float | None, float | None]:
    """Last year's figure and the change in %, where last year's data is complete enough."""
    if f.coverage < COVERAGE_WORTH or f.last_year is None:
        return None, None
    return f.last_year, None if f.change is None else round(f.change * 100, 1)


def _categories(t: ReportText, r: PeriodReport) -> Table:
    rows: list[list[Cell]] = []
    for c in r.categories:
        if c.total.now is None and c.utility not in ("electricity", "water"):
            continue
        then, change = _then(c.total)
        rows.append([category_words(t, c.utility), c.unit, c.total.now, then, change, c.kgce.now,
                     _then(c.kgce)[0]])
    then, change = _then(r.total_kgce)
    rows.append([t("合计（折标准煤）", "In all (standard coal)"), "kgce", r.total_kgce.now, then, change, None, None])
    return Table("categories", [t("分类", "Category"), t("单位", "Unit"), t("本期", "This period"),
                                t("去年同期", "Last year"), t("同比 %", "Year on year, %"), "kgce",
                                t("去年 kgce", "kgce last year")], rows,
                 decimals=[None, None, 1, 1, 1, 1, 1], caption=t("水不折标准煤", "Water is not converted to coal"))


def _months(t: ReportText, r: PeriodReport) -> list[Table | Chart]:
    x = [month_words(t, m.month) for m in r.by_month]
    return [
        Chart("months-electricity", t("各月用电", "Electricity by month"), "kWh", x,
              [Series(t("用电", "Electricity"), [m.electricity_kwh for m in r.by_month])]),
        Table("months", [t("月份", "Month"), "kWh", "m³", "kgce"],
              [[month_words(t, m.month) + (t("（至今）", " (to date)") if m.partial else ""), m.electricity_kwh,
                m.water_m3, m.kgce] for m in r.by_month], decimals=[None, 0, 1, 1]),
    ]


def _buildings(t: ReportText, r: PeriodReport) -> Table:
    return Table("buildings", [t("楼宇", "Building"), "kWh", "m³", "kgce", t("建筑面积 m²", "Floor area m²"),
                               "kWh/m²"],
                 [[b.name, b.electricity_kwh, b.water_m3, b.kgce, b.floor_area_m2, b.kwh_per_m2] for b in r.buildings],
                 decimals=[None, 0, 1, 1, 0, 2])


def _completeness(t: ReportText, r: PeriodReport) -> Table:
    rows: list[list[Cell]] = []
    tones = []
    for m in sorted(r.meters, key=lambda m: (m.completeness if m.completeness is not None else 2, m.name)):
        rows.append([m.name, category_words(t, m.utility), t("总表", "main") if m.main else t("分表", "sub-meter"),
                     m.records, m.expected, None if m.completeness is None else round(m.completeness * 100, 1)])
        tones.append([Tone.PLAIN] * 5 + [Tone.PLAIN if m.completeness is None else Tone.GOOD if m.complete
                                         else Tone.WARN])
    return Table("completeness", [t("表计", "Meter"), t("分类", "Category"), t("类型", "Type"),
                                  t("收到读数", "Readings received"), t("应收读数", "Readings expected"),
                                  t("完整率 %", "Complete, %")], rows, decimals=[None, None, None, 0, 0, 1],
                 tones=tones, caption=t(f"按各表上报间隔计算应收读数；低于 {COMPLETE:.0%} 标黄",
                                        f"Expected from each meter's reporting interval; under {COMPLETE:.0%} flagged"),
                 excerpt=_least_complete(t, r))


def _least_complete(t: ReportText, r: PeriodReport) -> Excerpt | None:
    """Of a site with many meters, the least complete (the table's first rows); None when every meter fits."""
    if len(r.meters) <= METERS_SHOWN_WHOLE:
        return None
    complete = sum(m.complete for m in r.meters)
    n = METERS_WORTH_A_LOOK
    return Excerpt(list(range(n)), t(f"共 {len(r.meters)} 块表计，{complete} 块数据完整；这里列出完整率最低的 {n} 块。"
                                     "全部表计见 CSV 下载。",
                                     f"{len(r.meters)} meters, {complete} of them with complete data; the {n} least "
                                     "complete here. The CSV download lists every meter."))
