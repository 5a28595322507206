"""消毒灯 rules: each school day a room's UV lamp must run its minutes inside its window (an
alert at the deadline if not); a lamp must not be on while its room is in use; and a tube
near the end of its rated life needs replacing."""

from __future__ import annotations

from datetime import date, time
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from devices import uv_lamp
from devices.base import Label, Sample
from gateway.alerting.severity import Severity
from gateway.alerting.trade import Trade
from gateway.clock import from_ms
from gateway.reports.judging import (
    Judge,
    lamp_run,
    minutes,
    missing,
    no_school,
    record_item,
)
from gateway.reports.safety_model import (
    Category,
    Item,
    ItemStatus,
    UvFacts,
)
from gateway.reports.safety_series import total_ms
from gateway.rules.base import Calendar, Context, Finding, Rule, RuleSpec, kind_named
from gateway.rules.params import PERCENT, RuleParams, SeverityLevel
from gateway.site import Device

if TYPE_CHECKING:
    from gateway.config import SiteConfig


class UvNotRun(RuleParams):
    """消毒灯: on a school day a lamp must run its minutes (the kind's min_session_min) in a window."""

    severity: SeverityLevel = Severity.MAJOR
    window_start: Annotated[time | None, Label(
        "消毒时段开始（不填则为所在楼关门时）", "Disinfection window from (unset: when the building closes)",
    )] = Field(None, description="default: when the lamp's building closes")
    window_end: Annotated[time, Label("消毒时段结束", "Disinfection window until")] = time(20, 0)


class UvOnWhileOpen(RuleParams):
    """A UV lamp on while its room is in use: people must not be exposed."""

    severity: SeverityLevel = Severity.WARNING


class UvTubeLife(RuleParams):
    """A tube near the end of its rated life (the kind's tube_life_h)."""

    severity: SeverityLevel = Severity.WARNING
    warn_at_pct: Annotated[float, Label(
        "灯管用到额定寿命的多少时提醒", "Warn at this share of the tube's rated life", *PERCENT,
    )] = Field(90, gt=0, le=100)



def disinfection_window(p: UvNotRun, cal: Calendar, building_id: str, day: date) -> tuple[int, int] | None:
    """A lamp's disinfection window on `day` (Unix ms), None on a day without one: from the
    building's closing (or `window_start`) to `window_end`, on school days. A function of the
    site and the calendar alone, so that the daily record reads it without a running rule."""
    if not cal.day(day).school_day:
        return None
    midnight, _ = cal.day_bounds_ms(day)
    if p.window_start is not None:
        lo: int | None = midnight + (p.window_start.hour * 60 + p.window_start.minute) * 60_000
    else:
        lo = cal.closing_ms(building_id, day)
    hi = midnight + (p.window_end.hour * 60 + p.window_end.minute) * 60_000
    return None if lo is None or lo >= hi else (lo, hi)


def lamp_window(site: SiteConfig, cal: Calendar, device: Device, day: date) -> tuple[int, int] | None:
    """A lamp's disinfection window on `day`, None without one or where the rule is off for it."""
    room = site.room(device.room)
    params = UV_NOT_RUN.runs_on(device, room.type)
    if params is None:
        return None
    return disinfection_window(params, cal, site.building_of(room.id).id, day)


def required_minutes(device: Device) -> float:
    """The minutes a lamp must run in its window: its kind's session length."""
    return _lamp(device).min_session_min


def _lamp(device: Device) -> uv_lamp.Settings:
    settings = device.kind_settings()
    assert isinstance(settings, uv_lamp.Settings)
    return settings


class UvNotRunRule(Rule[UvNotRun]):
    name = "uv_not_run"

    def __init__(self, ctx: Context, params: UvNotRun) -> None:
        super().__init__(ctx, params)
        self._required_ms = required_minutes(ctx.device) * 60_000
        self._max_gap_ms = 2 * ctx.device.interval_s * 1000  # a longer gap is not counted as run time
        self._day: date | None = None
        self._window: tuple[int, int] | None = None  # today's, None on a day without one
        self._ran_ms = 0.0
        self._judged = False
        self._prev: tuple[int, bool] | None = None
        self._missed = ("", "")  # the raised alert's detail (unknown after a restart)

    def on_sample(self, sample: Sample) -> Finding | None:
        on = sample.values.get("on")
        if on is None:
            return None
        ts = sample.ts_ms
        found = self._roll(ts)
        if self._prev is not None and self._prev[1] and self._window is not None:
            lo, hi = self._window
            start, end = self._prev[0], min(ts, self._prev[0] + self._max_gap_ms)
            self._ran_ms += max(0, min(end, hi) - max(start, lo))
        self._prev = (ts, bool(on))
        if self.raised and self._window is not None and self._ran_ms >= self._required_ms:
            # The alert is about the day that was missed: its figures stay that day's.
            day, (missed_zh, missed_en) = f"{self._day:%m-%d}" if self._day else "", self._missed
            return self.clear(ts, {"next_run_ms": ts},
                              (f"{missed_zh}; {day} 已按要求运行, 恢复正常" if missed_zh else "",
                               f"{missed_en}; it ran its minutes on {day}: back to normal" if missed_en else ""))
        return found

    def prime(self, sample: Sample) -> Finding | None:
        """Not taken: a day is judged on the lamp's readings through its window, and a reading
        from before a takeover says nothing of what ran since. Live readings start the day as
        after any start (a day first heard inside its window is not judged)."""
        return None

    def check_time(self) -> Finding | None:
        return self._roll(self.now_ms)

    def _roll(self, now_ms: int) -> Finding | None:
        """Judges the day whose window has ended; moves on to a new local day."""
        found = None
        if self._window is not None and not self._judged and now_ms >= self._window[1]:
            self._judged = True
            if self._ran_ms < self._required_ms and not self.raised:
                found = self._raise(self._window)
        day = self.ctx.calendar.local_date(now_ms)
        if day != self._day:
            first = self._day is None
            self._day, self._ran_ms = day, 0.0
            self._window = disinfection_window(self.params, self.ctx.calendar, self.ctx.building.id, day)
            # Heard first inside or after a window (the gateway started mid-evening): what ran
            # before is unknown, so that day is not judged.
            self._judged = first and self._window is not None and now_ms > self._window[0]
        return found

    def _raise(self, window: tuple[int, int]) -> Finding:
        lo, hi = window
        ran = round(self._ran_ms / 60_000)
        need = round(self._required_ms / 60_000)
        name, day = self.ctx.name, from_ms(lo, self.ctx.tz).strftime("%m-%d")
        span = f"{day} {self.ctx.clock(lo)}–{self.ctx.clock(hi)}"
        self._missed = (f"{span} 只运行了 {ran} 分钟, 要求至少 {need} 分钟",
                        f"ran {ran} min in {span}; at least {need} min required")
        return self.finding(
            True, lo, hi,
            (f"{name} {day} 未完成消毒", f"{name} did not complete its disinfection on {day}"),
            self._missed,
            {"since_ms": lo, "minutes_run": ran, "minutes_required": need}, "on",
        )


class UvOnWhileOpenRule(Rule[UvOnWhileOpen]):
    name = "uv_on_while_open"

    def on_sample(self, sample: Sample) -> Finding | None:
        on = sample.values.get("on")
        if on is None:
            return None
        ts = sample.ts_ms
        if on and self.ctx.is_open(ts):
            if self.raised:
                return None
            name = self.ctx.name
            return self.finding(
                True, ts, ts,
                (f"{name} 在开放时段开启", f"{name} is on while its room is in use"),
                (f"{self.ctx.stamp(ts)} 紫外线灯开启而房间在开放时段: 紫外线伤眼伤皮肤, 请确认室内无人",
                 f"the UV lamp is on at {self.ctx.stamp(ts)} while the room is open: make sure nobody is inside"),
                {"since_ms": ts}, "on",
            )
        return self.clear(ts) if self.raised else None


class UvTubeLifeRule(Rule[UvTubeLife]):
    name = "uv_tube_life"

    def __init__(self, ctx: Context, params: UvTubeLife) -> None:
        super().__init__(ctx, params)
        self._life_h = _lamp(ctx.device).tube_life_h
        self._warn_h = self._life_h * params.warn_at_pct / 100

    def on_sample(self, sample: Sample) -> Finding | None:
        hours = sample.values.get("lamp_hours")
        if hours is None:
            return None
        ts = sample.ts_ms
        if hours < self._warn_h:
            return self.clear(ts, {"lamp_hours": hours}) if self.raised else None
        if self.raised:
            return None
        pct = round(100 * hours / self._life_h)
        name = self.ctx.name
        return self.finding(
            True, ts, ts,
            (f"{name} 灯管已用 {pct}% 寿命", f"{name}: tube at {pct}% of its rated life"),
            (f"累计 {hours:.0f} 小时, 额定 {self._life_h:g} 小时: 请准备更换灯管",
             f"{hours:.0f} h of {self._life_h:g} h rated: plan a new tube"),
            {"lamp_hours": hours, "life_pct": pct},
        )

# ------------------------------------------------------------ the daily record's judge


def uv(j: Judge, d: Device) -> Item:
    """Ran its minutes in the lamp rule's window (the rule's own window and minutes)."""
    lamp = j.day.lamps.get(d.id)
    item_id = f"uv:{d.id}"
    if lamp is None:
        return record_item(item_id, Category.UV, d, j.site, ItemStatus.NOT_REQUIRED,
                           (f"本灯已关闭「{UV_NOT_RUN.label_zh}」检查",
                            f"the “{UV_NOT_RUN.label_en}” check is off for this lamp"))
    window, required = lamp
    if window is None:
        why = ("今日无消毒时段", "no disinfection window today") if j.day.info.school_day else no_school(j.site)
        return record_item(item_id, Category.UV, d, j.site, ItemStatus.NOT_REQUIRED, why)
    lo, hi = window
    hold = j.hold_ms(d)
    points = j.points(d.id, "on", lo - hold, max(lo, min(hi, j.day.as_of_ms)))
    ran, holes = lamp_run(points, window, j.day.as_of_ms, hold)
    facts = UvFacts(window=j.span(window), minutes_on=ran, minutes_required=required)
    span = j.spans([window])
    if ran >= required:
        status, detail = ItemStatus.PASS, (f"{span} 内运行 {ran:g} 分钟，要求 {required:g} 分钟",
                                           f"ran {ran:g} min in {span}; {required:g} min required")
    elif j.day.as_of_ms < hi:
        status, detail = ItemStatus.PENDING, (f"消毒时段 {span} 还没结束，已运行 {ran:g} 分钟",
                                              f"the window {span} has not ended; {ran:g} min so far")
    elif ran + minutes(total_ms(holes)) < required:
        status, detail = ItemStatus.FAIL, (f"{span} 内只运行了 {ran:g} 分钟，要求至少 {required:g} 分钟",
                                           f"ran only {ran:g} min in {span}; at least {required:g} min required")
    else:
        status, detail = ItemStatus.MANUAL, missing(j, holes, sum(1 for ts, _ in points if ts >= lo))
    return record_item(item_id, Category.UV, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in holes]})


_LAMP = kind_named(uv_lamp.KIND.name)  # the rules read the kind's settings (session, tube life)
UV_NOT_RUN: RuleSpec[UvNotRun] = RuleSpec(UvNotRunRule, UvNotRun, "紫外线灯未消毒", "UV lamp did not run", _LAMP,
                                          judge=uv)
RULES = (
    UV_NOT_RUN,
    RuleSpec(UvOnWhileOpenRule, UvOnWhileOpen, "开放时段紫外线灯开启", "UV lamp on while open", _LAMP),
    RuleSpec(UvTubeLifeRule, UvTubeLife, "灯管寿命", "UV tube life", _LAMP, trade=Trade.ELECTRIC),
)
