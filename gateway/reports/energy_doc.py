"""The monthly energy report laid out for reading (zh-CN or en): key figures, a plain-language
summary, concrete recommendations, then the details behind them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway.clock import from_ms
from gateway.config import SiteConfig
from gateway.reports.document import (
    Chart,
    Document,
    Figure,
    Figures,
    HeatMap,
    Paragraphs,
    Section,
    Series,
    Table,
    Tone,
)
from gateway.reports.energy import Comparison, EnergyReport, MeterUse, Totals
from gateway.rules.power import LOAD_AFTER_HOURS

# Recommend looking at a meter's load left on from this much waste in a month.
WASTE_WORTH_KWH = 20.0
WASTE_WORTH_SHARE = 0.02
NIGHT_WATER_WORTH_SHARE = 0.15  # after-hours water above this share of all water is worth a look
COVERAGE_WORTH = 0.95  # meters with fewer hours of data than this are named
PERIOD_NAMES = {"sharp": ("尖峰", "critical peak"), "peak": ("峰", "peak"), "flat": ("平", "flat"),
                "valley": ("谷", "valley")}
WEEKDAYS = (("周一", "Mon"), ("周二", "Tue"), ("周三", "Wed"), ("周四", "Thu"), ("周五", "Fri"), ("周六", "Sat"),
            ("周日", "Sun"))


class _Text:
    def __init__(self, lang: str) -> None:
        self.zh = lang != "en"

    def __call__(self, zh: str, en: str) -> str:
        return zh if self.zh else en


def _num(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _comparable(c: Comparison) -> float | None:
    """Another month's total where it is worth comparing with: readings in nearly all its hours."""
    return c.total if c.total and c.coverage >= COVERAGE_WORTH else None


def _change(t: _Text, now: float | None, then: float | None, versus: str) -> tuple[str, Tone]:
    if now is None or not then:
        return t(f"{versus}：无完整数据", f"{versus}: no complete data"), Tone.PLAIN
    delta = (now - then) / then
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f"{versus} {arrow} {abs(delta) * 100:.1f}%", Tone.BAD if delta > 0.02 else Tone.GOOD if delta < -0.02 \
        else Tone.PLAIN


def _month(t: _Text, month: str) -> str:
    """2026-12 as people write it: 2026 年 12 月, December 2026."""
    year, number = (int(x) for x in month.split("-"))
    names = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")
    return t(f"{year} 年 {number} 月", f"{names[number - 1]} {year}")


def days_open(t: _Text, site: SiteConfig) -> str:
    """What the days people come in are called: a kindergarten's 开园日, a school's 上学日."""
    zh, en = site.day_word()
    return t(zh, f"{en[0].upper()}{en[1:]}s")


def energy_document(r: EnergyReport, site: SiteConfig, lang: str = "zh-CN") -> Document:
    t = _Text(lang)
    tz = site.tz
    month = _month(t, r.month)
    meta = [
        (t("单位", "Site"), r.site_name),
        (t("月份", "Month"), month),
        (days_open(t, site), t(f"{r.school_days} 天", str(r.school_days))),
        (t("生成时间", "Generated"), _local(r.generated_ms, tz)),
    ]
    if r.generated_ms < r.end_ms:
        meta.append((t("数据截至", "Data up to"), _local(r.generated_ms, tz)))
    return Document(
        key=f"energy-{r.month}", lang="en" if not t.zh else "zh-CN",
        title=t(f"{r.site_name} {month}节能报告", f"{r.site_name}: energy-saving report for {month}"),
        meta=meta,
        sections=[
            Section(t("概要", "Summary"), [_figures(t, r), Paragraphs(_summary(t, r))]),
            Section(t("建议", "Recommendations"), [Paragraphs(_recommendations(t, r, site), bullets=True)]),
            Section(t("用电", "Electricity"), _utility_blocks(t, r.electricity, "electricity")),
            Section(t("用水", "Water"), _utility_blocks(t, r.water, "water")),
            Section(t("楼宇排名", "Buildings ranked"), [_buildings(t, r)]),
            Section(t("表计明细", "Meters"), [_meters(t, r)]),
            Section(t("漏水损失", "Leak losses"), [_leaks(t, r, tz)]),
            Section(t("计算说明", "How the figures are computed"), [Paragraphs(_method(t))]),
        ],
    )


def _figures(t: _Text, r: EnergyReport) -> Figures:
    e, w = r.electricity, r.water
    e_note, e_tone = _change(t, e.total, _comparable(e.previous_month), t("比上月", "vs last month"))
    w_note, w_tone = _change(t, w.total, _comparable(w.previous_month), t("比上月", "vs last month"))
    cost = None if e.cost_yuan is None and w.cost_yuan is None else (e.cost_yuan or 0) + (w.cost_yuan or 0)
    items = [
        Figure(t("用电", "Electricity"), f"{_num(e.total)} kWh", e_note, e_tone),
        Figure(t("用水", "Water"), f"{_num(w.total, 1)} m³", w_note, w_tone),
        Figure(t("费用", "Cost"), f"¥{_num(cost)}", t("电费 + 水费", "power + water")),
        Figure(t("闭园时段用电", "Electricity after hours"), _pct(e.after_hours_share),
               f"{_num(e.after_hours)} kWh"),
        Figure(t("可节约（浪费）", "Waste above base load"), f"¥{_num(r.waste_yuan)}", f"{_num(r.waste_kwh)} kWh",
               Tone.BAD if r.waste_kwh else Tone.GOOD),
        Figure(t("漏水损失", "Leak losses"), f"¥{_num(r.leak_yuan)}", f"{_num(r.leak_m3, 2)} m³",
               Tone.BAD if r.leaks else Tone.GOOD),
    ]
    return Figures(items)


def _summary(t: _Text, r: EnergyReport) -> list[str]:
    e, w = r.electricity, r.water
    out = []
    for name_zh, name_en, u, digits in (("用电", "Electricity", e, 0), ("用水", "Water", w, 1)):
        if u.total is None:
            out.append(t(f"本月{name_zh}：无数据。", f"{name_en} this month: no data."))
            continue
        parts = [t(f"本月{name_zh} {_num(u.total, digits)} {u.unit}，费用 ¥{_num(u.cost_yuan)}",
                   f"{name_en} this month: {_num(u.total, digits)} {u.unit}, costing ¥{_num(u.cost_yuan)}")]
        for other, zh, en in ((u.previous_month, "上月", "last month"),
                              (u.same_month_last_year, "去年同月", "the same month last year")):
            if then := _comparable(other):
                d = (u.total - then) / then * 100
                parts.append(t(f"比{zh}{'增加' if d > 0 else '减少'} {abs(d):.1f}%",
                               f"{abs(d):.1f}% {'more' if d > 0 else 'less'} than {en}"))
        if u.target:
            d = (u.total - u.target) / u.target * 100
            parts.append(t(f"{'超出' if d > 0 else '低于'}目标 {abs(d):.1f}%",
                           f"{abs(d):.1f}% {'over' if d > 0 else 'under'} target"))
        if u.after_hours_share is not None:
            parts.append(t(f"闭园时段占 {_pct(u.after_hours_share)}", f"{_pct(u.after_hours_share)} after hours"))
        out.append(t("，".join(parts) + "。", "; ".join(parts) + "."))
    if r.waste_kwh:
        out.append(t(f"闭园时段高于基础负荷的用电约 {_num(r.waste_kwh)} kWh ≈ ¥{_num(r.waste_yuan)}，可以节约。",
                     f"About {_num(r.waste_kwh)} kWh ≈ ¥{_num(r.waste_yuan)} was drawn above base load "
                     "while buildings were closed: it can be saved."))
    if r.leaks:
        out.append(t(f"共 {len(r.leaks)} 次漏水/长流水告警，损失约 {_num(r.leak_m3, 2)} m³ ≈ ¥{_num(r.leak_yuan)}。",
                     f"{len(r.leaks)} leak or running-tap alerts lost about {_num(r.leak_m3, 2)} m³ ≈ "
                     f"¥{_num(r.leak_yuan)}."))
    return out


def _recommendations(t: _Text, r: EnergyReport, site: SiteConfig) -> list[str]:
    buildings = {b.id: b.name for b in site.buildings}
    found: list[tuple[float, str]] = []  # (yuan at stake, text)
    for m in r.meters:
        if m.waste_kwh and m.total and (m.waste_kwh >= WASTE_WORTH_KWH or m.waste_kwh >= m.total * WASTE_WORTH_SHARE):
            found.append((m.waste_yuan or 0, _waste_text(t, m, buildings[m.building_id])))
    for leak in {x.device_id: x for x in r.leaks}:
        mine = [x for x in r.leaks if x.device_id == leak]
        m3, yuan = sum(x.loss_m3 for x in mine), sum(x.cost_yuan for x in mine)
        found.append((yuan, t(f"{mine[0].name}：本月 {len(mine)} 次漏水或长流水，约 {m3:,.2f} m³ ≈ ¥{yuan:,.0f}。"
                              "请水工检查管路、阀门和水箱浮球，修好后观察夜间读数是否归零。",
                              f"{mine[0].name}: {len(mine)} leaks or running taps this month, about {m3:,.2f} m³ ≈ "
                              f"¥{yuan:,.0f}. Have the plumber check pipes, valves and cistern floats, then "
                              "watch that the night reading stays at zero.")))
    w = r.water
    if not r.leaks and w.after_hours_share and w.after_hours_share > NIGHT_WATER_WORTH_SHARE:
        found.append(((w.after_hours or 0) * site.tariffs.water_yuan_per_m3,
                      t(f"闭园时段用水占 {_pct(w.after_hours_share)}（{_num(w.after_hours, 1)} m³），"
                        "高于正常水平：请检查是否有滴漏或长流水。",
                        f"{_pct(w.after_hours_share)} of the water ({_num(w.after_hours, 1)} m³) was used "
                        "after hours, more than usual: look for drips and taps left running.")))
    peak = next((p for p in r.electricity.by_period if p.period == "peak"), None)
    valley = next((p for p in r.electricity.by_period if p.period == "valley"), None)
    if peak and valley and r.electricity.total and peak.kwh > 0:
        moved = peak.kwh * 0.1
        saving = moved * (peak.yuan_per_kwh - valley.yuan_per_kwh)
        found.append((saving, t(
            f"峰时段用电 {_num(peak.kwh)} kWh（¥{peak.yuan_per_kwh:.2f}/kWh）。把其中一成（如消毒柜、热水器、"
            f"洗衣）移到谷时段（¥{valley.yuan_per_kwh:.2f}/kWh），每月可省约 ¥{saving:,.0f}。",
            f"{_num(peak.kwh)} kWh was drawn at peak price (¥{peak.yuan_per_kwh:.2f}/kWh). Moving a tenth of it "
            f"(sterilising cabinets, water heaters, laundry) to valley hours (¥{valley.yuan_per_kwh:.2f}/kWh) "
            f"saves about ¥{saving:,.0f} a month.")))
    for u, zh, en in ((r.electricity, "用电", "Electricity"), (r.water, "用水", "Water")):
        if u.total is not None and u.target and u.total > u.target:
            found.append((0.0, t(f"{zh}超出月度目标 {((u.total - u.target) / u.target * 100):.1f}%：请在行政会上"
                                 "通报，并对照楼宇排名找出增长最多的楼宇。",
                                 f"{en} is {((u.total - u.target) / u.target * 100):.1f}% over the monthly target: "
                                 "raise it at the staff meeting and check the building ranking for the largest rise.")))
    for m in r.meters:
        if m.coverage < COVERAGE_WORTH:
            found.append((0.0, t(f"{m.name}：本月只有 {m.coverage * 100:.0f}% 的小时有数据，请检查表计通信；"
                                 "缺数据的小时不计入上面的数字。",
                                 f"{m.name}: only {m.coverage * 100:.0f}% of the month's hours have readings; check "
                                 "its communication. Hours without data are not in the figures above.")))
    if not found:
        return [t("本月没有发现浪费、漏水或数据缺失，继续保持。",
                  "No waste, leaks or data gaps this month: keep it up.")]
    return [text for _, text in sorted(found, key=lambda f: -f[0])]


def _waste_text(t: _Text, m: MeterUse, building: str) -> str:
    excess_kw = (m.waste_kwh or 0) / m.waste_duration_h if m.waste_duration_h else 0.0
    base = t("（设定值）", "(configured)") if m.base_configured else t("（按本月最低时段估算）", "(learned)")
    return t(
        f"{building}{m.name}：{m.waste_nights} 个闭园的夜间或假日比基础负荷 {_num(m.base_kw, 1)} kW{base}多耗"
        f"约 {excess_kw:.1f} kW，共约 {_num(m.waste_kwh)} kWh ≈ ¥{_num(m.waste_yuan)}。请门卫在闭园检查时关闭"
        "照明、空调、饮水机和电脑，考虑给该回路加装定时断电。",
        f"{building} {m.name}: on {m.waste_nights} closed nights or days it drew about {excess_kw:.1f} kW above its "
        f"base load of {_num(m.base_kw, 1)} kW {base}, about {_num(m.waste_kwh)} kWh ≈ ¥{_num(m.waste_yuan)} in all. "
        "Have the guard switch off lights, air conditioners, water dispensers and computers at closing, and "
        "consider a timer on that circuit.")


def _utility_blocks(t: _Text, u: Totals, key: str) -> list[Figures | Table | Chart | HeatMap | Paragraphs]:
    if u.total is None:
        return [Paragraphs([t("本月没有数据。", "No data this month.")])]
    blocks: list[Figures | Table | Chart | HeatMap | Paragraphs] = []
    rows: list[list[str | int | float | None]] = [
        [t("本月", "This month"), u.total, None],
        [t("上月", "Last month"), u.previous_month.total, _delta(u.total, _comparable(u.previous_month)),
         round(u.previous_month.coverage * 100, 1)],
        [t("去年同月", "Same month last year"), u.same_month_last_year.total,
         _delta(u.total, _comparable(u.same_month_last_year)), round(u.same_month_last_year.coverage * 100, 1)],
        [t("月度目标", "Monthly target"), u.target, _delta(u.total, u.target), None],
        [t("人均", "Per person"), u.per_person, None, None],
        [t("每平方米", "Per m²"), u.per_m2, None, None],
    ]
    blocks.append(Table(f"{key}-comparison", [t("项目", "Item"), u.unit, t("本月相比 %", "This month vs, %"),
                                              t("数据完整 %", "Data %")], rows,
                        decimals=[None, 2 if key == "water" else 0, 1, 1],
                        caption=t("对比（数据不足 95% 的月份不作比较）",
                                  "Comparison (months with under 95% of their data are not compared)")))
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


def _buildings(t: _Text, r: EnergyReport) -> Table:
    rows: list[list[str | int | float | None]] = []
    tones = []
    for i, b in enumerate(r.buildings, 1):
        change = _delta(b.electricity_kwh, _comparable(b.previous_kwh))
        rows.append([i, b.name, b.electricity_kwh, b.kwh_per_m2, b.water_m3, b.cost_yuan,
                     None if b.after_hours_share is None else round(b.after_hours_share * 100, 1), b.waste_kwh, change])
        tones.append([Tone.PLAIN] * 7 + [Tone.BAD if b.waste_kwh else Tone.PLAIN,
                                         Tone.BAD if change and change > 2 else Tone.GOOD if change and change < -2
                                         else Tone.PLAIN])
    return Table("buildings", [t("名次", "Rank"), t("楼宇", "Building"), "kWh", "kWh/m²", "m³",
                               t("费用（元）", "Cost (¥)"),
                               t("闭园用电 %", "After hours %"), t("浪费 kWh", "Waste kWh"),
                               t("比上月 %", "vs last month %")],
                 rows, decimals=[0, None, 0, 2, 1, 0, 1, 0, 1], tones=tones,
                 caption=t("按每平方米用电排序（无面积时按总量）",
                           "By electricity per m² (by total where no area is given)"))


def _meters(t: _Text, r: EnergyReport) -> Table:
    rows: list[list[str | int | float | None]] = []
    tones = []
    for m in r.meters:
        rows.append([m.name, t("电", "power") if m.utility == "electricity" else t("水", "water"),
                     t("总表", "main") if m.main else t("分表", "sub"), m.total, "kWh" if m.utility == "electricity"
                     else "m³", None if m.after_hours_share is None else round(m.after_hours_share * 100, 1),
                     m.base_kw, m.waste_kwh, m.waste_yuan, m.cost_yuan, round(m.coverage * 100, 1)])
        tones.append([Tone.PLAIN] * 7 + [Tone.BAD if m.waste_kwh else Tone.PLAIN] * 2
                     + [Tone.PLAIN, Tone.WARN if m.coverage < COVERAGE_WORTH else Tone.PLAIN])
    return Table("meters", [t("表计", "Meter"), t("类别", "Utility"), t("类型", "Type"), t("用量", "Use"),
                            t("单位", "Unit"), t("闭园 %", "After hours %"), t("基础负荷 kW", "Base kW"),
                            t("浪费 kWh", "Waste kWh"), t("浪费（元）", "Waste (¥)"), t("费用（元）", "Cost (¥)"),
                            t("数据完整 %", "Data %")],
                 rows, decimals=[None, None, None, 2, None, 1, 2, 1, 1, 0, 1], tones=tones,
                 caption=t("分表的用量已含在所属总表中", "Sub-meters are part of their building's main meter"))


def _leaks(t: _Text, r: EnergyReport, tz: ZoneInfo) -> Table | Paragraphs:
    if not r.leaks:
        return Paragraphs([t("本月没有漏水或长流水告警。", "No leak or running-tap alerts this month.")])
    return Table("leaks", [t("表计", "Meter"), t("开始", "From"), t("到", "Until"), t("已恢复", "Cleared"),
                           "m³", t("损失（元）", "Loss (¥)")],
                 [[x.name, _local(x.first_ms, tz), _local(x.until_ms, tz),
                   t("是", "yes") if x.cleared else t("否", "no"),
                   x.loss_m3, x.cost_yuan] for x in r.leaks], decimals=[None, None, None, None, 3, 2])


def _method(t: _Text) -> list[str]:
    return [
        t("各楼宇用量取自其总表（配电间、水表间），分表不重复计入；"
          "用量是表计读数的增量，通信中断后补报的用量计入恢复的时段。",
          "A building's use comes from its main meters (plant room); sub-meters are not counted twice. Use is the "
          "increase of the meter reading; what a meter reports after a gap counts where it resumes."),
        t("闭园时段按校历（含节假日、调休和楼宇自己的开放时间）以 5 分钟为单位划分。",
          "After hours follows the school calendar (holidays, make-up days, each building's hours) in 5-minute steps."),
        t(f"基础负荷：「{LOAD_AFTER_HOURS.label_zh}」规则中设定的基础负荷，"
          "未设定时取本月整点闭园小时功率的第 10 百分位。"
          "浪费：闭园时段功率超过告警限值（基础负荷加裕量）的小时里，高于基础负荷的电量，按当时电价计费。",
          f"Base load: as set for the “{LOAD_AFTER_HOURS.label_en}” rule, else the 10th percentile of the month's "
          "power in whole closed hours. Waste: in closed hours above the alert limit (base plus margin), the energy "
          "above the base load, at the price of its time."),
        t("漏水损失：本月开始的每个漏水或长流水告警，从流水开始到告警恢复期间该水表的用量。",
          "Leak losses: for each leak or running-tap alert begun this month, what its meter counted from the start "
          "of the flow until the alert cleared."),
    ]


def _local(ms: int, tz: ZoneInfo) -> str:
    return from_ms(ms, tz).strftime("%Y-%m-%d %H:%M")
