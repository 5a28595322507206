"""消毒灯 rules (WS/T 367-2012; docs/uv.md): each school day a room's UV lamp must run its
minutes inside its window (an alert at the deadline if not), counted from its warm-up on and
only while the room is empty as far as its door and presence sensors tell; a lamp must not be
on while its room is in use or while someone may be inside; and a tube near the end of its
rated life needs replacing (judged by the care register, gateway/reports/uv_care.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from devices import kinds, uv_lamp
from devices.base import MINUTES, Label, Sample
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
from gateway.reports.safety_series import Span, held, normalised, total_ms, where
from gateway.rules.base import OCCUPANCY_METRICS, Calendar, Context, Finding, Rule, RuleSpec, kind_named, occupied
from gateway.rules.health import silent_after_ms
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
    # WS/T 367-2012 measures a tube's output after 5 min; kindergartens count a session from 5–7 min.
    warmup_min: Annotated[float, Label(
        "开灯后预热时间（不计入消毒时长）", "Warm-up after switch-on (not counted)", *MINUTES,
    )] = Field(5, ge=0)


class UvOnOccupied(RuleParams):
    """A UV lamp lit while its room's door is open or someone is seen inside. Critical, as a
    fridge out of its range is: ultraviolet light burns the eyes and skin of whoever is there,
    children first, and only someone on site can stop it."""

    severity: SeverityLevel = Severity.CRITICAL


class UvCleanDue(RuleParams):
    """A tube not wiped with alcohol within its kind's clean_every_days of the last wipe."""

    severity: SeverityLevel = Severity.WARNING


class UvTestDue(RuleParams):
    """An irradiance test not done within its kind's test_every_days, or a new tube untested."""

    severity: SeverityLevel = Severity.WARNING


class UvIntensityLow(RuleParams):
    """A test below the kind's min_uw_cm2 (the first test of a new tube: new_tube_min_uw_cm2):
    the tube no longer disinfects and must be replaced, so it opens a work order."""

    severity: SeverityLevel = Severity.MAJOR


class UvOnWhileOpen(RuleParams):
    """A UV lamp on while its room is in use: people must not be exposed."""

    severity: SeverityLevel = Severity.WARNING


class UvTubeLife(RuleParams):
    """A tube near the end of its rated life (the kind's tube_life_h): its lit hours since the
    newest tube change recorded in the care register."""

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
    return lamp_settings(device).min_session_min


def lamp_settings(device: Device) -> uv_lamp.Settings:
    """A lamp's kind settings: its session, tube life, care intervals and irradiance limits."""
    settings = device.kind_settings()
    assert isinstance(settings, uv_lamp.Settings)
    return settings


class RoomWatch:
    """What a room's occupancy sensors (its doors, presence sensors) said last: someone may be
    inside while any of them says so. `checked` is False in a room without one."""

    def __init__(self, sensors: tuple[str, ...]) -> None:
        self.checked = bool(sensors)
        self._said: dict[str, bool] = {}

    def take(self, sample: Sample) -> None:
        said = occupied(sample.values)
        if said is not None:
            self._said[sample.device_id] = said

    @property
    def occupied(self) -> bool:
        return any(self._said.values())


def unchecked_note(checked: bool) -> tuple[str, str]:
    """What a lamp's count says of its room's emptiness."""
    if checked:
        return "；开门或有人的时间不计", "; time with the door open or someone inside not counted"
    return ("；房间没有门磁或人体感应器，无法确认室内无人",
            "; the room has no door or presence sensor: that it was empty could not be checked")


class UvNotRunRule(Rule[UvNotRun]):
    name = "uv_not_run"
    evidence = "on"
    watch_room = True

    def __init__(self, ctx: Context, params: UvNotRun) -> None:
        super().__init__(ctx, params)
        self._required_ms = required_minutes(ctx.device) * 60_000
        self._warmup_ms = params.warmup_min * 60_000
        self._max_gap_ms = 2 * ctx.device.interval_s * 1000  # a longer gap is not counted as run time
        self._day: date | None = None
        self._window: tuple[int, int] | None = None  # today's, None on a day without one
        self._ran_ms = 0.0  # counted: past the warm-up, the room empty
        self._judged = False
        self._lamp: tuple[int, bool] | None = None  # its last reading
        self._on_since: int | None = None  # when it was switched on, while it is
        self._mark: int | None = None  # counted up to here
        self._room = RoomWatch(ctx.room_sensors)
        self._missed = ("", "")  # the raised alert's detail (unknown after a restart)

    def on_sample(self, sample: Sample) -> Finding | None:
        on = sample.values.get("on")
        if on is None:
            return None
        ts = sample.ts_ms
        self._count(ts)
        found = self._roll(ts)
        was_on = self._lamp is not None and self._lamp[1] and ts - self._lamp[0] <= self._max_gap_ms
        if on and not was_on:
            self._on_since = ts
        self._lamp = (ts, bool(on))
        if self.raised and self._window is not None and self._ran_ms >= self._required_ms:
            # The alert is about the day that was missed: its figures stay that day's.
            day, (missed_zh, missed_en) = f"{self._day:%m-%d}" if self._day else "", self._missed
            return self.clear(ts, {"next_run_ms": ts},
                              (f"{missed_zh}; {day} 已按要求运行, 恢复正常" if missed_zh else "",
                               f"{missed_en}; it ran its minutes on {day}: back to normal" if missed_en else ""))
        return found

    def on_room(self, sample: Sample) -> Finding | None:
        self._count(sample.ts_ms)
        self._room.take(sample)
        return None

    def _count(self, ts: int) -> None:
        """Adds the counted time from the last reading (the lamp's or its room's) to `ts`, as
        things stood: lit past its warm-up, inside the window, the room empty."""
        mark, lamp, window = self._mark, self._lamp, self._window
        if mark is not None and ts > mark and lamp is not None and lamp[1] and self._on_since is not None \
                and window is not None and not self._room.occupied:
            start = max(mark, window[0], self._on_since + self._warmup_ms)
            end = min(ts, window[1], lamp[0] + self._max_gap_ms)
            self._ran_ms += max(0, end - start)
        self._mark = ts if mark is None else max(mark, ts)

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
        warm = f"{self.params.warmup_min:g}"
        room_zh, room_en = unchecked_note(self._room.checked)
        self._missed = (f"{span} 有效消毒只有 {ran} 分钟, 要求至少 {need} 分钟（开灯后 {warm} 分钟预热不计{room_zh}）",
                        f"{ran} min of effective disinfection in {span}; at least {need} min required "
                        f"(the first {warm} min after switch-on not counted{room_en})")
        return self.finding(
            True, lo, hi,
            (f"{name} {day} 未完成消毒", f"{name} did not complete its disinfection on {day}"),
            self._missed,
            {"since_ms": lo, "minutes_run": ran, "minutes_required": need},
        )


class UvOnWhileOpenRule(Rule[UvOnWhileOpen]):
    name = "uv_on_while_open"
    evidence = "on"

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
                {"since_ms": ts},
            )
        return self.clear(ts) if self.raised else None


class UvOnOccupiedRule(Rule[UvOnOccupied]):
    """Raised once when the lamp is lit while its room is occupied (either comes first),
    cleared when the lamp is off or the room empty again."""

    name = "uv_on_occupied"
    evidence = "on"
    watch_room = True

    def __init__(self, ctx: Context, params: UvOnOccupied) -> None:
        super().__init__(ctx, params)
        self._on = False
        self._room = RoomWatch(ctx.room_sensors)

    def on_sample(self, sample: Sample) -> Finding | None:
        on = sample.values.get("on")
        if on is None:
            return None
        self._on = bool(on)
        return self._judge(sample.ts_ms)

    def on_room(self, sample: Sample) -> Finding | None:
        self._room.take(sample)
        return self._judge(sample.ts_ms)

    def _judge(self, ts: int) -> Finding | None:
        if not (self._on and self._room.occupied):
            return self.clear(ts) if self.raised else None
        if self.raised:
            return None
        name = self.ctx.name
        return self.finding(
            True, ts, ts,
            (f"{name} 开启时室内可能有人", f"{name} is lit while someone may be in the room"),
            (f"{self.ctx.stamp(ts)} 紫外线灯亮着，而房间的门开着或感应到有人：紫外线伤眼伤皮肤，请立即关灯并让人离开",
             f"at {self.ctx.stamp(ts)} the UV lamp is lit while the room's door is open or someone is seen inside: "
             "ultraviolet light burns eyes and skin; switch it off and get everyone out"),
            {"since_ms": ts},
        )


class UvTubeLifeRule(Rule[UvTubeLife]):
    """Judged by the care register from the tube's hours (its lit time since the newest
    recorded tube change), like `UvCleanDueRule`: the lamp's own `lamp_hours` counter goes on
    across tube changes, so it says nothing of the tube fitted now."""

    name = "uv_tube_life"


class UvCleanDueRule(Rule[UvCleanDue]):
    """Judged by the UV lamps' care register (gateway/reports/uv_care.py) from its table on the
    watchdog's clock, not on readings: the engine's instance only carries the parameters."""

    name = "uv_clean_due"


class UvTestDueRule(Rule[UvTestDue]):
    """Judged by the care register, like `UvCleanDueRule`."""

    name = "uv_test_due"


class UvIntensityLowRule(Rule[UvIntensityLow]):
    """Judged by the care register when a test is recorded, like `UvCleanDueRule`."""

    name = "uv_intensity_low"

# ------------------------------------------------------------ the daily record's judge


Read = Callable[[str, str, int, int], list[tuple[int, float]]]  # (device, metric, from, to) → readings


@dataclass(frozen=True, slots=True)
class LampCount:
    minutes: float  # counted: past the warm-up, the room empty as far as its sensors tell
    holes: list[Span]  # stretches of the window no reading of the lamp vouches for
    readings: int  # the lamp's, in the window
    room_checked: bool  # the room has a door or presence sensor


def room_sensors(site: SiteConfig, device: Device) -> list[tuple[Device, str]]:
    """The occupancy sensors of a lamp's room (its doors, presence sensors), each with the metric it says it by."""
    return [(d, m.key) for d in site.devices if d.room == device.room and d.id != device.id
            for m in kinds()[d.kind].metrics if m.key in OCCUPANCY_METRICS]


def lamp_count(read: Read, site: SiteConfig, device: Device, window: Span, as_of_ms: int) -> LampCount:
    """A lamp's disinfection in `window` up to `as_of_ms` as `uv_not_run` counts it, from stored
    readings: the daily record's and the dashboard's one count."""
    lo, hi = window
    end = max(lo, min(hi, as_of_ms))
    sensors = room_sensors(site, device)
    occupied_spans = []
    for sensor, key in sensors:
        sensor_hold = round(silent_after_ms(sensor))
        said = held(read(sensor.id, key, lo - sensor_hold, end), lo, end, sensor_hold)
        occupied_spans += [(h.start, h.end) for h in where(said, bool)]
    hold = round(silent_after_ms(device))
    points = read(device.id, "on", lo - hold, end)
    warmup_ms = UV_NOT_RUN.params_for(device).warmup_min * 60_000
    ran, holes = lamp_run(points, window, as_of_ms, hold, warmup_ms, normalised(occupied_spans))
    return LampCount(ran, holes, sum(1 for ts, _ in points if ts >= lo), bool(sensors))


def uv(j: Judge, d: Device) -> Item:
    """Ran its minutes in the lamp rule's window (the rule's own window, minutes and count)."""
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
    hi = window[1]
    count = lamp_count(j.points, j.site, d, window, j.day.as_of_ms)
    ran, holes = count.minutes, count.holes
    facts = UvFacts(window=j.span(window), minutes_on=ran, minutes_required=required)
    span = j.spans([window])
    warm = f"{UV_NOT_RUN.params_for(d).warmup_min:g}"
    note_zh, note_en = unchecked_note(count.room_checked)
    how = f"（开灯后 {warm} 分钟预热不计{note_zh}）", f" (the first {warm} min after switch-on not counted{note_en})"
    if ran >= required:
        status, detail = ItemStatus.PASS, (f"{span} 内有效消毒 {ran:g} 分钟，要求 {required:g} 分钟{how[0]}",
                                           f"{ran:g} min of effective disinfection in {span}; {required:g} min "
                                           f"required{how[1]}")
    elif j.day.as_of_ms < hi:
        status, detail = ItemStatus.PENDING, (f"消毒时段 {span} 还没结束，已有效消毒 {ran:g} 分钟{how[0]}",
                                              f"the window {span} has not ended; {ran:g} min counted so far{how[1]}")
    elif ran + minutes(total_ms(holes)) < required:
        status, detail = ItemStatus.FAIL, (f"{span} 内有效消毒只有 {ran:g} 分钟，要求至少 {required:g} 分钟{how[0]}",
                                           f"only {ran:g} min of effective disinfection in {span}; at least "
                                           f"{required:g} min required{how[1]}")
    else:
        status, detail = ItemStatus.MANUAL, missing(j, holes, count.readings)
    return record_item(item_id, Category.UV, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in holes]})


_LAMP = kind_named(uv_lamp.KIND.name)  # the rules read the kind's settings (session, tube life)
UV_NOT_RUN: RuleSpec[UvNotRun] = RuleSpec(UvNotRunRule, UvNotRun, "紫外线灯未消毒", "UV lamp did not run", _LAMP,
                                          judge=uv)
UV_CLEAN_DUE: RuleSpec[UvCleanDue] = RuleSpec(UvCleanDueRule, UvCleanDue, "紫外线灯管待擦拭", "UV tube to wipe", _LAMP)
UV_TEST_DUE: RuleSpec[UvTestDue] = RuleSpec(UvTestDueRule, UvTestDue, "紫外线灯待强度检测", "UV irradiance test due",
                                            _LAMP)
UV_INTENSITY_LOW: RuleSpec[UvIntensityLow] = RuleSpec(UvIntensityLowRule, UvIntensityLow, "紫外线灯强度不合格",
                                                      "UV irradiance too low", _LAMP, trade=Trade.ELECTRIC)
UV_TUBE_LIFE: RuleSpec[UvTubeLife] = RuleSpec(UvTubeLifeRule, UvTubeLife, "灯管寿命", "UV tube life", _LAMP,
                                              trade=Trade.ELECTRIC)
RULES = (
    UV_NOT_RUN,
    RuleSpec(UvOnWhileOpenRule, UvOnWhileOpen, "开放时段紫外线灯开启", "UV lamp on while open", _LAMP),
    RuleSpec(UvOnOccupiedRule, UvOnOccupied, "室内有人时紫外线灯开启", "UV lamp lit with someone inside", _LAMP),
    UV_TUBE_LIFE,
    UV_CLEAN_DUE,
    UV_TEST_DUE,
    UV_INTENSITY_LOW,
)
