"""The safety record, the canteen record and the summaries laid out as `Document`s in the
reader's language (zh-CN by default, English), for `gateway.reports.render`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from gateway.alerting.severity import Severity
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
    SignLine,
    SignLines,
    Table,
    Tone,
)
from gateway.reports.safety_model import (
    AlertLine,
    CanteenRecord,
    DayInfo,
    Entry,
    FridgeLog,
    Item,
    ItemRef,
    ItemStatus,
    RetainedSample,
    SafetyRecord,
    SafetySummary,
    Signatures,
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
    "checks": ("检查记录", "Checks"),
    "alerts": ("当日告警", "Alerts of the day"),
    "no_alerts": ("当日无告警。", "No alerts that day."),
    "item": ("检查项目", "Check"),
    "finding": ("检查情况", "Finding"),
    "result": ("结果", "Result"),
    "checker": ("检查人", "Checked by"),
    "problem": ("存在问题", "Problem"),
    "measure": ("整改措施", "Measure"),
    "outcome": ("整改结果", "Outcome"),
    "sensors": ("自动监测", "Sensors"),
    "checked_ok": ("人工检查，正常", "checked by hand, in order"),
    "checked_problem": ("人工检查，发现问题", "checked by hand: a problem"),
    "by": ("{text}（{who} {t}）", "{text} ({who}, {t})"),
    "severity": ("级别", "Severity"),
    "alert": ("告警", "Alert"),
    "began": ("开始", "Began"),
    "cleared": ("恢复", "Cleared"),
    "state": ("状态", "State"),
    "acked_by": ("确认人", "Ack. by"),
    "acked_at": ("确认时间", "Ack. at"),
    "comment": ("处理说明", "Comment"),
    "partial": ("当日尚未结束：记录截至 {t}，之后的数据尚未判定；签字只对签字时已判定的内容负责。",
                "The day is not over: judged up to {t}; a signature vouches for what was judged when it was given."),
    "blank_left": ("尚有 {n} 项待检查（台账空白），请检查后在系统中登记。",
                   "{n} items still to check (blank in the ledger): check them and register them in the gateway."),
    "none_blank": ("所有项目均已检查或由传感器判定。", "Every item is checked, by a person or by its sensors."),
    "signatures": ("签字", "Signatures"),
    "sign_inspector": ("检查人：", "Inspector:"),
    "sign_responsible": ("负责人：", "Person responsible:"),
    "sign_review": ("园长（审核）：", "Principal (review):"),
    "signed": ("签字", "Signed"),
    "not_signed": ("未签字", "not signed"),
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
    "fails": ("异常项目及整改", "Problems and their rectification"),
    "no_fails": ("本期没有异常项目。", "No problems in this period."),
    "open": ("台账空白（待检查，无人登记）", "Blank in the ledger (to check, nobody registered)"),
    "none_open": ("本期台账没有空白。", "Nothing blank in this period."),
    "unsigned": ("检查人未签字的日子：{days}。", "Days the inspector has not signed: {days}."),
    "alert_count": ("告警", "Alerts"),
    "per_day": ("每日检查结果", "Checks per day"),
    "items_unit": ("项", "items"),
}
# The one vocabulary of the statuses: the dashboard's ledger view uses the same words.
STATUS: Final[dict[ItemStatus, tuple[str, str, Tone]]] = {
    ItemStatus.PASS: ("正常", "OK", Tone.GOOD),
    ItemStatus.FAIL: ("异常", "Problem", Tone.BAD),
    ItemStatus.MANUAL: ("待检查", "To check", Tone.WARN),
    ItemStatus.DONE: ("已检查", "Checked", Tone.GOOD),
    ItemStatus.NOT_REQUIRED: ("无需检查", "Not required", Tone.PLAIN),
    ItemStatus.PENDING: ("未到时间", "Not due yet", Tone.PLAIN),
}
# As the dashboard says them (dashboards/static/i18n.js: state.*).
_ALERT_STATE: Final[dict[str, tuple[str, str]]] = {
    "active": ("未确认", "Active"), "acknowledged": ("已确认", "Acknowledged"), "cleared": ("已恢复", "Cleared"),
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

    def day(self, info: DayInfo) -> str:
        kind = self.pick(info.kind_zh, info.kind_en)
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


def _checked(w: _Words, i: Item | ItemRef) -> str:
    """检查项目: what is checked, and where."""
    what = w.pick(i.check_zh, i.check_en)
    return what if not i.subject else w.pick(f"{what}（{i.subject}）", f"{what} ({i.subject})")


def _finding(w: _Words, i: Item | ItemRef) -> str:
    """检查情况: what a person found, else what the sensors show (or why it is still open)."""
    c = i.completion
    if c is None or i.status not in (ItemStatus.DONE, ItemStatus.FAIL):
        return w.pick(i.detail_zh, i.detail_en)
    if c.result == "ok":
        return w("checked_ok") + (w.pick(f"：{c.note}", f": {c.note}") if c.note else "")
    return w("checked_problem")


def _checker(w: _Words, i: Item, on: date) -> str:
    """检查人: who checked it, else the sensors where they judged it."""
    if i.completion is not None:
        return f"{w.pick(i.completion.by.name_zh, i.completion.by.name_en)} {w.time(i.completion.at, on)}"
    return "" if i.needs_check or i.device is None else w("sensors")


def _entry(w: _Words, entry: Entry | None, on: date | None) -> str | None:
    if entry is None:
        return None
    return w("by", text=entry.text, who=w.pick(entry.by.name_zh, entry.by.name_en), t=w.time(entry.at, on))


def _rectification(w: _Words, i: Item | ItemRef, on: date | None) -> list[Cell]:
    r = i.rectification
    return [None, None, None] if r is None else [_entry(w, r.problem, on), _entry(w, r.measure, on),
                                                 _entry(w, r.outcome, on)]


def _items_table(w: _Words, items: Sequence[Item], on: date) -> Table:
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for i in items:
        rows.append([_checked(w, i), _finding(w, i), w.status(i.status), _checker(w, i, on),
                     *_rectification(w, i, on)])
        tones.append([Tone.PLAIN, Tone.PLAIN, STATUS[i.status][2]])
    columns = ("item", "finding", "result", "checker", "problem", "measure", "outcome")
    return Table("items", [w(k) for k in columns], rows, tones=tones)


def _alerts_block(w: _Words, alerts: Sequence[AlertLine], on: date) -> Block:
    if not alerts:
        return Paragraphs([w("no_alerts")])
    rows: list[list[Cell]] = [
        [Severity(a.severity).words[w.n], w.pick(a.title_zh, a.title_en), w.time(a.first, on), w.time(a.cleared, on),
         _ALERT_STATE[a.state][w.n], "" if a.acked_by_actor is None else w.pick(a.acked_by_actor.name_zh,
                                                                                 a.acked_by_actor.name_en),
         w.time(a.acked_at, on), a.ack_comment or ""]
        for a in alerts
    ]
    tones = [[Tone.BAD if a.severity in ("critical", "major") else Tone.WARN] for a in alerts]
    return Table("alerts", [w(k) for k in ("severity", "alert", "began", "cleared", "state", "acked_by", "acked_at",
                                           "comment")], rows, tones=tones)


def _counted(w: _Words, counts: dict[ItemStatus, int]) -> str:
    """正常 17 项，异常 2 项，…: a line, where a filed record has no room for tiles."""
    shown = [f"{w.status(st)} {n} {w('items_unit')}" for st, n in counts.items() if n or st in _SHOWN]
    return w.pick("，", ", ").join(shown) + w.pick("。", ".")


def _sign_lines(w: _Words, signatures: Signatures, on: date) -> SignLines:
    lines = []
    for role in ("inspector", "responsible", "review"):
        s = getattr(signatures, role)
        lines.append(SignLine(w(f"sign_{role}")) if s is None
                     else SignLine(w(f"sign_{role}"), w.pick(s.by.name_zh, s.by.name_en), w.time(s.at, on)))
    return SignLines("signatures", lines)


def _meta(w: _Words, site_name: str, info: DayInfo, as_of: datetime, complete: bool) -> list[tuple[str, str]]:
    return [(w("site"), site_name), (w("date"), w.day(info)),
            (w("as_of"), w("whole_day") if complete else w.time(as_of, info.date))]


def daily_document(r: SafetyRecord, lang: Lang, tz: ZoneInfo) -> Document:
    w = _Words(lang, tz)
    on = r.day.date
    blank = r.counts.get(ItemStatus.MANUAL, 0)
    notes = [w("blank_left", n=blank) if blank else w("none_blank")]
    if not r.complete:
        notes.insert(0, w("partial", t=w.time(r.as_of, on)))
    return Document(
        key=f"safety-{on.isoformat()}", lang=lang, title=w("daily"),
        meta=_meta(w, r.site_name, r.day, r.as_of, r.complete),
        sections=[
            Section(w("summary"), [Paragraphs([_counted(w, r.counts), *notes])]),
            Section(w("checks"), [_items_table(w, r.items, on)]),
            Section(w("alerts"), [_alerts_block(w, r.alerts, on)]),
            Section(w("signatures"), [_sign_lines(w, r.signatures, on)]),
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


def _blank_table(w: _Words, refs: Sequence[ItemRef]) -> Table:
    rows: list[list[Cell]] = [[ref.date.isoformat(), _checked(w, ref), w.pick(ref.detail_zh, ref.detail_en)]
                              for ref in refs]
    return Table("open_manual", [w(k) for k in ("date", "item", "finding")], rows,
                 tones=[[Tone.PLAIN, Tone.WARN] for _ in refs])


def _fails_table(w: _Words, refs: Sequence[ItemRef]) -> Table:
    """Each failure with its rectification: a missing measure or outcome shows as missing."""
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for ref in refs:
        rectified = _rectification(w, ref, None)
        rows.append([ref.date.isoformat(), _checked(w, ref), _finding(w, ref), *rectified])
        tones.append([Tone.PLAIN, Tone.BAD, Tone.PLAIN, Tone.PLAIN,
                      *(Tone.WARN if cell is None else Tone.GOOD for cell in rectified[1:])])
    return Table("fails", [w(k) for k in ("date", "item", "finding", "problem", "measure", "outcome")], rows,
                 tones=tones)


def _signed(w: _Words, signatures: Signatures) -> str:
    who = [w(f"sign_{role}").rstrip("：:") for role in ("inspector", "responsible", "review")
           if getattr(signatures, role) is not None]
    return w.pick("、", ", ").join(who) if who else w("not_signed")


def _summary_title(w: _Words, s: SafetySummary) -> str:
    """安全检查周汇报（2026 年第 42 周）; a month by its number, 安全检查月总结 2026-10."""
    if s.kind == "month":
        return f"{w(s.kind)} {s.period}"
    year, week = s.period[:4], int(s.period[6:])
    return w.pick(f"{w(s.kind)}（{year} 年第 {week} 周）", f"{w(s.kind)}: week {week} of {year}")


def summary_document(s: SafetySummary, lang: Lang, tz: ZoneInfo) -> Document:
    """The blank ledger first (items nobody checked, days nobody signed), then the problems
    with their rectification, then the days."""
    w = _Words(lang, tz)
    rows: list[list[Cell]] = []
    tones: list[list[Tone]] = []
    for line in s.days:
        kind = w.pick(line.day.kind_zh, line.day.kind_en)
        rows.append([line.day.date.isoformat(), _WEEKDAYS[w.n][line.day.date.weekday()], kind,
                     *(line.counts[st] for st in _SHOWN), line.alerts, _signed(w, line.signatures)])
        tones.append([Tone.PLAIN, Tone.PLAIN, Tone.PLAIN,
                      *(STATUS[st][2] if line.counts[st] else Tone.PLAIN for st in _SHOWN), Tone.PLAIN,
                      Tone.WARN if line.signatures.inspector is None else Tone.PLAIN])
    days = Table("days", [w("date"), w("weekday"), w("kind"), *(w.status(st) for st in _SHOWN), w("alert_count"),
                          w("signed")], rows, tones=tones)
    chart = Chart("days_chart", w("per_day"), w("items_unit"), [line.day.date.strftime("%m-%d") for line in s.days],
                  [Series(w.status(st), [float(line.counts[st]) for line in s.days]) for st in _SHOWN[:4]],
                  stacked=True)
    figures = _status_figures(w, s.totals)
    figures = Figures([*figures.items, Figure(w("alert_count"), str(s.alerts))])
    unsigned = [line.day.date.strftime("%m-%d") for line in s.days if line.signatures.inspector is None]
    blank: list[Block] = [_blank_table(w, s.open_manual)] if s.open_manual else [Paragraphs([w("none_open")])]
    if unsigned:
        blank.append(Paragraphs([w("unsigned", days=w.pick("、", ", ").join(unsigned))]))
    return Document(
        key=f"safety-{s.period}", lang=lang, title=_summary_title(w, s),
        meta=[(w("site"), s.site_name), (w("period"), f"{s.first.isoformat()} – {s.last.isoformat()}"),
              (w("as_of"), w.time(s.as_of))],
        sections=[
            Section(w("summary"), [figures]),
            Section(w("open"), blank),
            Section(w("fails"), [_fails_table(w, s.fails) if s.fails else Paragraphs([w("no_fails")])]),
            Section(w("days"), [chart, days]),
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
