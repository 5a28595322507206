"""The safety record, the canteen record and the summaries laid out as `Document`s in the
reader's language (zh-CN by default, English), for `gateway.reports.render`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from gateway.reports.document import (
    Block,
    Cell,
    Chart,
    Document,
    Figure,
    Figures,
    Paragraphs,
    Section,
    Series,
    Table,
    Tone,
)
from gateway.reports.safety_model import (
    AlertLine,
    CanteenRecord,
    Category,
    DayInfo,
    FridgeLog,
    Item,
    ItemRef,
    ItemStatus,
    RetainedSample,
    SafetyRecord,
    SafetySummary,
)

Lang = Literal["zh-CN", "en"]

_LABELS: Final[dict[str, tuple[str, str]]] = {
    "daily": ("每日安全检查记录", "Daily safety record"),
    "canteen": ("食堂每日记录", "Daily canteen record"),
    "week": ("安全检查周汇报", "Weekly safety summary"),
    "month": ("安全检查月总结", "Monthly safety summary"),
    "site": ("园所", "Site"),
    "date": ("日期", "Date"),
    "period": ("期间", "Period"),
    "as_of": ("数据截至", "Data as of"),
    "whole_day": ("全天", "the whole day"),
    "summary": ("概况", "Summary"),
    "checks": ("检查项目", "Checks"),
    "alerts": ("当日告警", "Alerts of the day"),
    "no_alerts": ("当日无告警。", "No alerts that day."),
    "category": ("类别", "Category"),
    "check": ("检查项", "Check"),
    "subject": ("对象", "Subject"),
    "status": ("状态", "Status"),
    "detail": ("说明", "Detail"),
    "by_hand": ("人工确认", "Checked by"),
    "severity": ("级别", "Severity"),
    "alert": ("告警", "Alert"),
    "began": ("开始", "Began"),
    "cleared": ("解除", "Cleared"),
    "state": ("状态", "State"),
    "acked_by": ("确认人", "Acknowledged by"),
    "acked_at": ("确认时间", "Acknowledged at"),
    "comment": ("确认备注", "Comment"),
    "partial": ("当日尚未结束: 记录截至 {t}, 之后的数据尚未判定。", "The day is not over: judged up to {t}."),
    "complete_by_hand": ("「待人工检查」项请检查后在系统中登记, 不得空白。",
                         "Every item marked 'manual check' needs a person's check, registered in the gateway."),
    "compliance": ("留样冰箱合规", "Sample fridge compliance"),
    "yes": ("合格", "compliant"),
    "no": ("不合格", "not compliant"),
    "unknown": ("待人工确认", "needs a manual check"),
    "fridge_log": ("温度记录: {name}", "Temperature log: {name}"),
    "hour": ("时段", "Hour"),
    "hourly": ("每小时温度", "Temperature by hour"),
    "lowest": ("最低 °C", "Lowest °C"),
    "highest": ("最高 °C", "Highest °C"),
    "mean": ("平均 °C", "Mean °C"),
    "readings": ("读数", "Readings"),
    "range": ("合格范围 {lo:g}–{hi:g} °C", "allowed range {lo:g}–{hi:g} °C"),
    "days": ("每日", "Day by day"),
    "weekday": ("星期", "Weekday"),
    "kind": ("日类型", "Day"),
    "fails": ("未通过项", "Failed checks"),
    "no_fails": ("本期无未通过项。", "No failed checks in this period."),
    "open": ("待人工检查 (台账空白)", "Manual checks not done (blank ledger)"),
    "none_open": ("本期无空白项。", "No blank entries in this period."),
    "alert_count": ("告警", "Alerts"),
    "per_day": ("每日检查结果", "Checks per day"),
    "items_unit": ("项", "items"),
}
STATUS: Final[dict[ItemStatus, tuple[str, str, Tone]]] = {
    ItemStatus.PASS: ("通过", "pass", Tone.GOOD),
    ItemStatus.FAIL: ("未通过", "fail", Tone.BAD),
    ItemStatus.MANUAL: ("待人工检查", "manual check", Tone.WARN),
    ItemStatus.DONE: ("已人工确认", "done", Tone.GOOD),
    ItemStatus.NOT_REQUIRED: ("无需检查", "not required", Tone.PLAIN),
    ItemStatus.PENDING: ("待判定", "pending", Tone.PLAIN),
}
_CATEGORY: Final[dict[Category, tuple[str, str]]] = {
    Category.FRIDGE: ("留样冰箱", "Sample fridge"),
    Category.UV: ("紫外线消毒", "UV disinfection"),
    Category.DOOR: ("门", "Doors"),
    Category.WATER: ("用水", "Water"),
    Category.POWER: ("用电", "Power"),
    Category.CANTEEN: ("食堂", "Canteen"),
    Category.GUARD: ("门卫", "Guard"),
    Category.FIRE: ("消防", "Fire safety"),
}
_DAY_KINDS: Final[dict[str, tuple[str, str]]] = {
    "school_day": ("上学日", "school day"),
    "weekend": ("周末", "weekend"),
    "holiday": ("法定节假日", "public holiday"),
    "makeup_day": ("调休上学日", "make-up school day"),
    "term_break": ("假期", "term break"),
    "closure": ("停课", "closure"),
    "guard_duty": ("护校", "guard duty"),
}
_SEVERITY: Final[dict[str, tuple[str, str]]] = {
    "critical": ("严重", "critical"), "major": ("重要", "major"), "minor": ("一般", "minor"),
    "warning": ("提示", "warning"),
}
_ALERT_STATE: Final[dict[str, tuple[str, str]]] = {
    "active": ("未确认", "active"), "acknowledged": ("已确认", "acknowledged"), "cleared": ("已解除", "cleared"),
}
_WEEKDAYS: Final = (("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
                    ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
# The statuses a summary counts per day, in the order shown.
_SHOWN: Final = (ItemStatus.PASS, ItemStatus.FAIL, ItemStatus.MANUAL, ItemStatus.DONE, ItemStatus.NOT_REQUIRED)


class _Words:
    """Labels and formats in one language."""

    def __init__(self, lang: Lang, tz: ZoneInfo) -> None:
        self.lang = lang
        self.n = 0 if lang == "zh-CN" else 1
        self.tz = tz

    def __call__(self, key: str, **values: object) -> str:
        return _LABELS[key][self.n].format(**values)

    def pick(self, zh: str, en: str) -> str:
        return (zh, en)[self.n]

    def status(self, status: ItemStatus) -> str:
        return STATUS[status][self.n]

    def category(self, category: Category) -> str:
        return _CATEGORY[category][self.n]

    def day(self, info: DayInfo) -> str:
        kind = _DAY_KINDS.get(info.kind, (info.kind, info.kind))[self.n]
        name = self.pick(info.name_zh, info.name_en)
        weekday = _WEEKDAYS[self.n][info.date.weekday()]
        return f"{info.date.isoformat()} {weekday} · {kind}" + (f" ({name})" if name else "")

    def time(self, when: datetime | None, on: date | None = None) -> str:
        """Local time, with the date unless it is on day `on`."""
        if when is None:
            return ""
        local = when.astimezone(self.tz)
        return f"{local:%H:%M}" if local.date() == on else f"{local:%Y-%m-%d %H:%M}"


def _status_figures(w: _Words, counts: dict[ItemStatus, int]) -> Figures:
    return Figures([Figure(w.status(s), f"{n} {w('items_unit')}", tone=STATUS[s][2] if n else Tone.PLAIN)
                    for s, n in counts.items() if n or s in _SHOWN])


def _items_table(w: _Words, items: Sequence[Item], on: date) -> Table:
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for i in items:
        c = i.completion
        by_hand = "" if c is None else " ".join(p for p in (
            c.name, w.time(c.at, on), w.pick("正常", "ok") if c.result == "ok" else w.pick("有问题", "problem"), c.note,
        ) if p)
        rows.append([w.category(i.category), w.pick(i.check_zh, i.check_en), i.subject, w.status(i.status),
                     w.pick(i.detail_zh, i.detail_en), by_hand])
        tones.append([Tone.PLAIN, Tone.PLAIN, Tone.PLAIN, STATUS[i.status][2]])
    return Table("items", [w(k) for k in ("category", "check", "subject", "status", "detail", "by_hand")], rows,
                 tones=tones)


def _alerts_block(w: _Words, alerts: Sequence[AlertLine], on: date) -> Block:
    if not alerts:
        return Paragraphs([w("no_alerts")])
    rows: list[list[Cell]] = [
        [_SEVERITY[a.severity][w.n], w.pick(a.title_zh, a.title_en), w.time(a.first, on), w.time(a.cleared, on),
         _ALERT_STATE[a.state][w.n], a.acked_by_name or a.acked_by or "", w.time(a.acked_at, on), a.ack_comment or ""]
        for a in alerts
    ]
    tones = [[Tone.BAD if a.severity in ("critical", "major") else Tone.WARN] for a in alerts]
    return Table("alerts", [w(k) for k in ("severity", "alert", "began", "cleared", "state", "acked_by", "acked_at",
                                           "comment")], rows, tones=tones)


def _meta(w: _Words, site_name: str, info: DayInfo, as_of: datetime, complete: bool) -> list[tuple[str, str]]:
    return [(w("site"), site_name), (w("date"), w.day(info)),
            (w("as_of"), w("whole_day") if complete else w.time(as_of, info.date))]


def daily_document(r: SafetyRecord, lang: Lang, tz: ZoneInfo) -> Document:
    w = _Words(lang, tz)
    on = r.day.date
    notes = [w("complete_by_hand")]
    if not r.complete:
        notes.insert(0, w("partial", t=w.time(r.as_of, on)))
    return Document(
        key=f"safety-{on.isoformat()}", lang=lang, title=w("daily"),
        meta=_meta(w, r.site_name, r.day, r.as_of, r.complete),
        sections=[
            Section(w("summary"), [_status_figures(w, r.counts), Paragraphs(notes)]),
            Section(w("checks"), [_items_table(w, r.items, on)]),
            Section(w("alerts"), [_alerts_block(w, r.alerts, on)]),
        ],
    )


def _fridge_section(w: _Words, log: FridgeLog, key: str) -> Section:
    hours = [f"{row.hour:02d}" for row in log.hours]
    chart = Chart(f"{key}_chart", w("hourly"), "°C", hours, [
        Series(w("lowest"), [row.min_c for row in log.hours]),
        Series(w("mean"), [row.mean_c for row in log.hours]),
        Series(w("highest"), [row.max_c for row in log.hours]),
    ], kind="line")
    rows: list[list[Cell]] = [[f"{row.hour:02d}:00", row.min_c, row.max_c, row.mean_c, row.readings]
                              for row in log.hours]
    tones = [[Tone.PLAIN, *(Tone.BAD if v is not None and not log.range_min_c <= v <= log.range_max_c
                            else Tone.PLAIN for v in (row.min_c, row.max_c, row.mean_c))] for row in log.hours]
    table = Table(key, [w(k) for k in ("hour", "lowest", "highest", "mean", "readings")], rows,
                  decimals=[None, 1, 1, 1, 0], tones=tones,
                  caption=w("range", lo=log.range_min_c, hi=log.range_max_c))
    return Section(w("fridge_log", name=log.name), [chart, table])


def canteen_document(r: CanteenRecord, lang: Lang, tz: ZoneInfo) -> Document:
    w = _Words(lang, tz)
    on = r.day.date
    verdict, tone = {True: ("yes", Tone.GOOD), False: ("no", Tone.BAD), None: ("unknown", Tone.WARN)}[r.compliant]
    figures = Figures([Figure(w("compliance"), w(verdict), tone=tone), *_status_figures(w, r.counts).items])
    many = len(r.fridges) > 1
    return Document(
        key=f"canteen-{on.isoformat()}", lang=lang, title=w("canteen"),
        meta=_meta(w, r.site_name, r.day, r.as_of, r.complete),
        sections=[
            Section(w("summary"), [figures]),
            *(_fridge_section(w, log, f"fridge_log_{log.device}" if many else "fridge_log") for log in r.fridges),
            _samples_section(w, r.samples, on),
            Section(w("checks"), [_items_table(w, r.items, on)]),
        ],
    )


def _refs_table(w: _Words, key: str, refs: Sequence[ItemRef], detail: bool) -> Table:
    columns = ["date", "category", "check", "subject"] + (["detail"] if detail else [])
    rows: list[list[Cell]] = []
    for ref in refs:
        row: list[Cell] = [ref.date.isoformat(), w.category(ref.category), w.pick(ref.check_zh, ref.check_en),
                           ref.subject]
        rows.append([*row, w.pick(ref.detail_zh, ref.detail_en)] if detail else row)
    return Table(key, [w(k) for k in columns], rows)


def summary_document(s: SafetySummary, lang: Lang, tz: ZoneInfo) -> Document:
    w = _Words(lang, tz)
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for line in s.days:
        kind = _DAY_KINDS.get(line.day.kind, (line.day.kind, line.day.kind))[w.n]
        rows.append([line.day.date.isoformat(), _WEEKDAYS[w.n][line.day.date.weekday()], kind,
                     *(line.counts[st] for st in _SHOWN), line.alerts])
        tones.append([Tone.PLAIN, Tone.PLAIN, Tone.PLAIN,
                      *(STATUS[st][2] if line.counts[st] else Tone.PLAIN for st in _SHOWN)])
    days = Table("days", [w("date"), w("weekday"), w("kind"), *(w.status(st) for st in _SHOWN), w("alert_count")],
                 rows, tones=tones)
    chart = Chart("days_chart", w("per_day"), w("items_unit"), [line.day.date.strftime("%m-%d") for line in s.days],
                  [Series(w.status(st), [float(line.counts[st]) for line in s.days]) for st in _SHOWN[:4]],
                  stacked=True)
    figures = _status_figures(w, s.totals)
    figures = Figures([*figures.items, Figure(w("alert_count"), str(s.alerts))])
    return Document(
        key=f"safety-{s.period}", lang=lang, title=f"{w(s.kind)} {s.period}",
        meta=[(w("site"), s.site_name), (w("period"), f"{s.first.isoformat()} – {s.last.isoformat()}"),
              (w("as_of"), w.time(s.as_of))],
        sections=[
            Section(w("summary"), [figures]),
            Section(w("days"), [chart, days]),
            Section(w("fails"), [_refs_table(w, "fails", s.fails, True) if s.fails else Paragraphs([w("no_fails")])]),
            Section(w("open"), [_refs_table(w, "open_manual", s.open_manual, False) if s.open_manual
                                else Paragraphs([w("none_open")])]),
        ],
    )


# ------------------------------------------------- 留样 register (gateway/canteen/samples.py)

_SAMPLE_WORDS: Final[dict[str, tuple[str, str]]] = {
    "title": ("留样记录", "Retained food samples"),
    "none": ("当日无留样记录。", "No samples registered that day."),
    "meal": ("餐次", "Meal"),
    "dish": ("菜品", "Dish"),
    "weight": ("重量（克）", "Weight (g)"),
    "taken": ("留样时间 / 留样人", "Taken / by"),
    "fridge": ("冰箱", "Fridge"),
    "after": ("可处理时间", "Discard after"),
    "discarded": ("处理时间 / 处理人", "Discarded / by"),
    "kept": ("仍在冰箱", "still in the fridge"),
    "early": ("提前处理，原因：{reason}", "discarded early: {reason}"),
    "temperature": ("保存期间温度", "Temperature while kept"),
    "extremes": ("最低 {lo:g}、最高 {hi:g} °C", "lowest {lo:g}, highest {hi:g} °C"),
    "within": ("，全程在 {lo:g}–{hi:g} °C 内", "; within {lo:g}–{hi:g} °C throughout"),
    "outside": ("，超出 {lo:g}–{hi:g} °C 共 {out:g} 分钟", "; {out:g} min outside {lo:g}–{hi:g} °C"),
    "no_data": ("无读数", "no readings"),
    "gap": ("，无数据 {gap:g} 分钟", ", no data for {gap:g} min"),
}


def _samples_section(w: _Words, samples: Sequence[RetainedSample], on: date) -> Section:
    """The day's 留样 register: each dish with who kept it, where, until when, and its
    fridge's temperature over the time it was kept."""

    def say(key: str, **values: object) -> str:
        return _SAMPLE_WORDS[key][w.n].format(**values)

    if not samples:
        return Section(say("title"), [Paragraphs([say("none")])])
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for x in samples:
        by = w.pick(x.taken_by.name_zh, x.taken_by.name_en)
        if x.discarded_at is None:
            discarded = say("kept")
        else:
            who = "" if x.discarded_by is None else w.pick(x.discarded_by.name_zh, x.discarded_by.name_en)
            discarded = f"{w.time(x.discarded_at, on)} {who}".strip()
            if x.early_reason:
                discarded += f"（{say('early', reason=x.early_reason)}）" if w.n == 0 else \
                    f" ({say('early', reason=x.early_reason)})"
        t = x.temperature
        if t is None or t.lowest_c is None or t.highest_c is None:
            temperature = say("no_data")
        else:
            temperature = say("extremes", lo=t.lowest_c, hi=t.highest_c) + say(
                "outside" if t.minutes_out else "within", lo=t.range_min_c, hi=t.range_max_c, out=t.minutes_out)
            if t.minutes_no_data:
                temperature += say("gap", gap=t.minutes_no_data)
        rows.append([w.pick(x.meal_zh, x.meal_en), x.dish, x.weight_g, f"{w.time(x.taken_at, on)} {by}",
                     x.fridge_name, w.time(x.discard_after, on), discarded, temperature])
        out = t is not None and (t.minutes_out > 0 or t.lowest_c is None)
        tones.append([*[Tone.PLAIN] * 6, Tone.BAD if x.early_reason else Tone.PLAIN, Tone.BAD if out else Tone.PLAIN])
    columns = [say(k) for k in ("meal", "dish", "weight", "taken", "fridge", "after", "discarded", "temperature")]
    return Section(say("title"), [Table("samples", columns, rows, decimals=[None, None, 0], tones=tones)])
