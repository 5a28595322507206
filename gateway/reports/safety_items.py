"""The items of the daily safety record, each judged from the day's readings by the same
definitions the alert rules use (their parameters, the lamp's window, the learned base load,
the flow and power of a reading). How each status is decided is in docs/reports.md.

Two choices hold for every sensor item. A reading vouches for its value until the next one
for at most the device's offline threshold (gateway/rules/health.py `silent_after_ms`);
beyond that the time is a gap, and an item whose judged time has a gap is `manual` unless
what the data does show already fails it. And an excursion, an opening or a run of flow is
measured whole, also where it runs past midnight, so one that straddles two days fails both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from devices import sample_fridge
from devices.base import Sample
from gateway.clock import from_ms
from gateway.reports.safety_model import (
    Category,
    Completion,
    DoorFacts,
    FridgeFacts,
    Item,
    ItemStatus,
    PowerFacts,
    SpanOut,
    UvFacts,
    WaterFacts,
)
from gateway.reports.safety_series import (
    Held,
    Span,
    clip,
    gaps,
    held,
    integral_min,
    intersect,
    mean,
    minus,
    overlaps,
    runs,
    total_ms,
    where,
)
from gateway.rules.doors import DOOR_AFTER_HOURS
from gateway.rules.health import silent_after_ms
from gateway.rules.power import LOAD_AFTER_HOURS, Power
from gateway.rules.uv import UV_NOT_RUN
from gateway.rules.water import WATER_LEAK, Flow

if TYPE_CHECKING:
    from gateway.alerting.alerts import Alert
    from gateway.config import Device, SiteConfig
    from gateway.schedule.school_calendar import SchoolDay
    from gateway.storage.sqlite import SqliteStore

MIN_MS: Final = 60_000
_NO_SCHOOL: Final = ("非上学日, 无需消毒", "not a school day: no disinfection required")
# A day of one reading a second fits; past it the rest of the day shows as a gap (manual).
MAX_POINTS: Final = 200_000
# Rooms where children or food are: a building with one of them and no UV lamp needs its
# disinfection registered by hand.
UV_ROOMS: Final = frozenset({"classroom", "nap_room", "dorm", "kitchen"})


@dataclass(frozen=True)
class DayState:
    """One local day, with what the gateway's live state says about it: read on the event
    loop's thread, where the rules and alerts live; the readings are read later, elsewhere."""

    info: SchoolDay
    start_ms: int
    end_ms: int
    as_of_ms: int  # min(now, end of the day)
    open_spans: dict[str, list[Span]]  # building → open spans from the day before to the day after
    closing_ms: dict[str, int | None]  # building → when it closed that day
    lamps: dict[str, tuple[Span | None, float] | None]  # lamp → (window, minutes required); None: rule off
    limits: dict[str, tuple[float | None, float | None] | None]  # meter → (base W, limit W); None: rule off
    alerts: list[Alert]
    completions: dict[str, Completion]


class Judge:
    """Reads one day's readings from the store and judges sensor items. Runs in a worker
    thread: the store's queries open their own connections."""

    def __init__(self, store: SqliteStore, site: SiteConfig, day: DayState) -> None:
        self.store = store
        self.site = site
        self.day = day
        self.tz = site.tz
        self.judged: Span = (day.start_ms, day.as_of_ms)

    def hold_ms(self, device: Device) -> int:
        return round(silent_after_ms(device))

    def points(self, device_id: str, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        return [(p.ts_ms, p.value) for p in self.store.points(device_id, metric, lo, hi, MAX_POINTS)]

    def samples(self, device_id: str, metrics: Sequence[str], lo: int, hi: int) -> list[Sample]:
        """The device's readings of `metrics`, joined by time into samples as they arrived."""
        values: dict[int, dict[str, float]] = {}
        for metric in metrics:
            for ts, value in self.points(device_id, metric, lo, hi):
                values.setdefault(ts, {})[metric] = value
        return [Sample(device_id, ts, values[ts]) for ts in sorted(values)]

    def closed(self, building_id: str, lo: int, hi: int) -> list[Span]:
        return minus((lo, hi), self.day.open_spans[building_id])

    def span(self, span: Span) -> SpanOut:
        lo, hi = span
        return SpanOut(start=utc(lo), end=utc(hi), minutes=minutes(hi - lo))

    def clock(self, ms: int) -> str:
        """Local time; with the date when it is not on the record's day."""
        local = from_ms(ms, self.tz)
        return f"{local:%H:%M}" if local.date() == self.day.info.date else f"{local:%m-%d %H:%M}"

    def spans(self, spans: Sequence[Span]) -> str:
        shown = ", ".join(f"{self.clock(lo)}–{self.clock(hi)}" for lo, hi in spans[:3])
        return shown + (" …" if len(spans) > 3 else "")


def utc(ms: int) -> datetime:
    return from_ms(ms, UTC)


def minutes(ms: float) -> float:
    return round(ms / MIN_MS, 1)


def _item(item_id: str, category: Category, device: Device | None, site: SiteConfig, status: ItemStatus,
          detail: tuple[str, str], *, subject: str | None = None, building: str | None = None,
          room: str | None = None) -> Item:
    check_zh, check_en = CHECKS[category]
    if device is not None:
        room = device.room
        building = site.building_of(device.room).id
        subject = device.name or device.id
    return Item(id=item_id, category=category, building=building, room=room,
                device=None if device is None else device.id, subject=subject or "", check_zh=check_zh,
                check_en=check_en, status=status, needs_check=status is ItemStatus.MANUAL,
                detail_zh=detail[0], detail_en=detail[1])


def _verdict(failed: bool, holes: Sequence[Span], readings: int) -> ItemStatus:
    """A failure the data shows stands; otherwise missing data needs a person; otherwise pass."""
    if failed:
        return ItemStatus.FAIL
    if holes or readings == 0:
        return ItemStatus.MANUAL
    return ItemStatus.PASS


def _missing(j: Judge, holes: Sequence[Span], readings: int) -> tuple[str, str]:
    if readings == 0:
        return "无读数: 传感器无法担保, 请人工检查", "no readings: no sensor vouches for it, check by hand"
    gone = minutes(total_ms(holes))
    return (f"数据中断 {gone:g} 分钟 ({j.spans(holes)}): 传感器无法担保, 请人工检查",
            f"no data for {gone:g} min ({j.spans(holes)}): no sensor vouches for it, check by hand")


# --------------------------------------------------------------------------- sample fridge


def fridge(j: Judge, d: Device) -> Item:
    """In range all day: fails on an excursion that lasted the fridge's alarm delay or longer;
    shorter ones (the door opened for the samples) are counted and named, not failed."""
    s = d.kind_settings()
    assert isinstance(s, sample_fridge.Settings)
    delay_ms = round(s.alarm_delay_min * MIN_MS)
    hold = j.hold_ms(d)
    lo, hi = j.day.start_ms - delay_ms, min(j.day.end_ms + delay_ms, j.day.as_of_ms)
    points = j.points(d.id, "temperature_c", lo - hold, hi)
    stretches = held(points, lo, hi, hold)
    today = clip(stretches, [j.judged])

    def out(celsius: float) -> bool:
        return celsius < s.min_c or celsius > s.max_c

    excursions = [r for r in runs(where(stretches, out)) if overlaps(r, [j.judged])]
    failed = [r for r in excursions if r[1] - r[0] >= delay_ms]
    holes = gaps(today, [j.judged])
    readings = [v for ts, v in points if j.judged[0] <= ts < j.judged[1]]
    longest = max(excursions, key=lambda r: r[1] - r[0], default=None)
    out_min = minutes(total_ms([(h.start, h.end) for h in where(today, out)]))
    facts = FridgeFacts(
        range_min_c=s.min_c, range_max_c=s.max_c, alarm_delay_min=s.alarm_delay_min,
        lowest_c=min(readings, default=None), highest_c=max(readings, default=None),
        mean_c=None if (m := mean(today)) is None else round(m, 1), minutes_out=out_min,
        excursions=len(excursions), short_excursions=len(excursions) - len(failed),
        longest=None if longest is None else j.span(longest),
    )
    status = _verdict(bool(failed), holes, len(readings))
    band = f"{s.min_c:g}–{s.max_c:g} °C"
    if status is ItemStatus.FAIL:
        worst = max(failed, key=lambda r: r[1] - r[0])
        detail = (f"{j.spans([worst])} 超出 {band} {minutes(worst[1] - worst[0]):g} 分钟, 达到报警延时 "
                  f"{s.alarm_delay_min:g} 分钟 (全天最低 {facts.lowest_c} °C, 最高 {facts.highest_c} °C): 请检查留样",
                  f"outside {band} for {minutes(worst[1] - worst[0]):g} min ({j.spans([worst])}), at least the "
                  f"{s.alarm_delay_min:g}-min alarm delay (lowest {facts.lowest_c} °C, highest {facts.highest_c} °C): "
                  "check the retained samples")
    elif status is ItemStatus.MANUAL:
        detail = _missing(j, holes, len(readings))
    else:
        detail = (f"全天在 {band} 内 (最低 {facts.lowest_c}, 最高 {facts.highest_c}, 平均 {facts.mean_c} °C)",
                  f"within {band} all day (lowest {facts.lowest_c}, highest {facts.highest_c}, "
                  f"mean {facts.mean_c} °C)")
        if excursions:
            detail = (detail[0] + f"; 开门等短时超出 {len(excursions)} 次共 {out_min:g} 分钟, 均短于 "
                      f"{s.alarm_delay_min:g} 分钟报警延时, 不计为不合格",
                      detail[1] + f"; {len(excursions)} short excursions (door openings), {out_min:g} min in "
                      f"all, each under the {s.alarm_delay_min:g}-min alarm delay: not failures")
    item = _item(f"fridge:{d.id}", Category.FRIDGE, d, j.site, status, detail)
    return item.model_copy(update={"facts": facts, "gaps": [j.span(g) for g in holes]})


# ------------------------------------------------------------------------------- UV lamps


def lamp_run(points: Sequence[tuple[int, float]], window: Span, as_of_ms: int,
             hold_ms: int) -> tuple[float, list[Span]]:
    """The minutes a lamp was on in its window up to `as_of_ms`, and the stretches of the
    window no reading vouches for: one count for the daily record and the dashboard. `points`
    are its `on` readings from `hold_ms` before the window on (each holds until the next, or
    for `hold_ms`, the device's silence)."""
    lo, hi = window
    judged = (lo, max(lo, min(hi, as_of_ms)))
    stretches = held(list(points), *judged, hold_ms)
    ran = minutes(total_ms([(h.start, h.end) for h in where(stretches, bool)]))
    return ran, gaps(stretches, [judged]) if judged[0] < judged[1] else []


def uv(j: Judge, d: Device) -> Item:
    """Ran its minutes in the lamp rule's window (the rule's own window and minutes)."""
    lamp = j.day.lamps.get(d.id)
    item_id = f"uv:{d.id}"
    if lamp is None:
        return _item(item_id, Category.UV, d, j.site, ItemStatus.NOT_REQUIRED,
                     (f"本灯未启用消毒检查 ({UV_NOT_RUN.id} 规则已关闭)",
                      f"the {UV_NOT_RUN.id} rule is off for this lamp"))
    window, required = lamp
    if window is None:
        why = ("今日无消毒时段", "no disinfection window today") if j.day.info.school_day else _NO_SCHOOL
        return _item(item_id, Category.UV, d, j.site, ItemStatus.NOT_REQUIRED, why)
    lo, hi = window
    hold = j.hold_ms(d)
    points = j.points(d.id, "on", lo - hold, max(lo, min(hi, j.day.as_of_ms)))
    ran, holes = lamp_run(points, window, j.day.as_of_ms, hold)
    facts = UvFacts(window=j.span(window), minutes_on=ran, minutes_required=required)
    span = j.spans([window])
    if ran >= required:
        status, detail = ItemStatus.PASS, (f"{span} 内运行 {ran:g} 分钟, 要求 {required:g} 分钟",
                                           f"ran {ran:g} min in {span}; {required:g} min required")
    elif j.day.as_of_ms < hi:
        status, detail = ItemStatus.PENDING, (f"消毒时段 {span} 未结束, 已运行 {ran:g} 分钟",
                                              f"the window {span} has not ended; {ran:g} min so far")
    elif ran + minutes(total_ms(holes)) < required:
        status, detail = ItemStatus.FAIL, (f"{span} 内只运行 {ran:g} 分钟, 要求至少 {required:g} 分钟",
                                           f"ran only {ran:g} min in {span}; at least {required:g} min required")
    else:
        status, detail = ItemStatus.MANUAL, _missing(j, holes, sum(1 for ts, _ in points if ts >= lo))
    return _item(item_id, Category.UV, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in holes]})


# -------------------------------------------------------------------------- closed hours


@dataclass(frozen=True)
class _Closed:
    """A condition (open, flowing, above the limit) during the day's closed hours."""

    hours: list[Span]  # the building's closed hours of the day, up to as_of
    episodes: list[Span]  # runs of the condition that overlap them, whole
    inside: list[Held[float]]  # the condition's stretches within them
    holes: list[Span]
    readings: int  # in the closed hours


def _closed(j: Judge, d: Device, points: Callable[[int, int], list[tuple[int, float]]], margin_ms: int,
            condition: Callable[[float], bool]) -> _Closed:
    """Reads only the closed hours (and `margin_ms` around the day, for runs across midnight):
    on a school day that is about half of it. `points(lo, hi)` is called once per closed span."""
    building = j.site.building_of(d.room).id
    lo, hi = j.day.start_ms - margin_ms, min(j.day.end_ms + margin_ms, j.day.as_of_ms)
    closed_around = j.closed(building, lo, hi)
    hours = intersect(closed_around, [j.judged])
    hold = j.hold_ms(d)
    found = [p for span_lo, span_hi in closed_around for p in points(span_lo - hold, span_hi)]
    stretches = clip(held(found, lo, hi, hold), closed_around)
    within = clip(stretches, hours)
    episodes = [r for r in runs(where(stretches, condition)) if overlaps(r, hours)]
    readings = sum(1 for ts, _ in found if overlaps((ts, ts + 1), hours))
    return _Closed(hours, episodes, where(within, condition), gaps(within, hours), readings)


def _longest(episodes: Sequence[Span]) -> Span | None:
    return max(episodes, key=lambda r: r[1] - r[0], default=None)


def _disabled(item_id: str, category: Category, d: Device, site: SiteConfig, rule: str) -> Item:
    return _item(item_id, category, d, site, ItemStatus.NOT_REQUIRED,
                 (f"本设备已关闭 {rule} 规则", f"the {rule} rule is off for this device"))


def door(j: Judge, d: Device) -> Item:
    """Closed after hours: fails on an opening during closed hours that lasted the
    after-hours door rule's grace or longer."""
    params = DOOR_AFTER_HOURS.params_for(d)
    item_id = f"door:{d.id}"
    if not params.enabled:
        return _disabled(item_id, Category.DOOR, d, j.site, DOOR_AFTER_HOURS.id)
    grace_ms = round(params.grace_min * MIN_MS)
    c = _closed(j, d, lambda lo, hi: j.points(d.id, "open", lo, hi), grace_ms, bool)
    failed = [r for r in c.episodes if r[1] - r[0] >= grace_ms]
    [last_closed] = j.store.runs_since("open", 0.0, [(d.id, j.judged[1] - 1)])
    longest = _longest(c.episodes)
    open_min = minutes(total_ms([(h.start, h.end) for h in c.inside]))
    facts = DoorFacts(
        closing=None if (closing := j.day.closing_ms[j.site.building_of(d.room).id]) is None else utc(closing),
        closed_since=None if last_closed is None else utc(last_closed), open_after_hours=bool(c.inside),
        openings=len(c.episodes), minutes_open=open_min, grace_min=params.grace_min,
        longest=None if longest is None else j.span(longest),
    )
    status = _verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = _longest(failed)
        assert worst is not None
        detail = (f"闭园时段开着 {minutes(worst[1] - worst[0]):g} 分钟 ({j.spans([worst])}), 超过 "
                  f"{params.grace_min:g} 分钟宽限",
                  f"open for {minutes(worst[1] - worst[0]):g} min after hours ({j.spans([worst])}), "
                  f"past the {params.grace_min:g}-min grace")
    elif status is ItemStatus.MANUAL:
        detail = _missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段开启 {len(c.episodes)} 次, 共 {open_min:g} 分钟, 均短于 {params.grace_min:g} 分钟宽限",
                  f"opened {len(c.episodes)} times after hours, {open_min:g} min in all, each under the "
                  f"{params.grace_min:g}-min grace")
    else:
        detail = "闭园时段未开启", "not opened after hours"
    if last_closed is not None and status is not ItemStatus.MANUAL:
        detail = detail[0] + f"; {j.clock(last_closed)} 起关闭", detail[1] + f"; closed since {j.clock(last_closed)}"
    return _item(item_id, Category.DOOR, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})


def water(j: Judge, d: Device) -> Item:
    """No running water at night: fails on flow above the leak rule's threshold in every
    reading of its `continuous_min` or longer while the building is closed."""
    params = WATER_LEAK.params_for(d)
    item_id = f"water:{d.id}"
    if not params.enabled:
        return _disabled(item_id, Category.WATER, d, j.site, WATER_LEAK.id)
    run_ms = round(params.continuous_min * MIN_MS)
    c = _closed(j, d, lambda lo, hi: _flows(j, d, lo, hi), run_ms, lambda lpm: lpm > params.flow_threshold_lpm)
    failed = [r for r in c.episodes if r[1] - r[0] >= run_ms]
    flowing = minutes(total_ms([(h.start, h.end) for h in c.inside]))
    loss = round(integral_min(c.inside) / 1000, 3)
    longest = _longest(c.episodes)
    facts = WaterFacts(threshold_lpm=params.flow_threshold_lpm, continuous_min=params.continuous_min,
                       minutes_flowing=flowing, loss_m3=loss, longest=None if longest is None else j.span(longest))
    status = _verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = _longest(failed)
        assert worst is not None
        detail = (f"闭园时段持续流水 {minutes(worst[1] - worst[0]):g} 分钟 ({j.spans([worst])}), 达到 "
                  f"{params.continuous_min:g} 分钟跑水判定; 当日闭园时段流水 {flowing:g} 分钟, 约 {loss:g} m³",
                  f"water ran for {minutes(worst[1] - worst[0]):g} min after hours ({j.spans([worst])}), at least "
                  f"the {params.continuous_min:g} min of a leak; {flowing:g} min and about {loss:g} m³ after hours "
                  "that day")
    elif status is ItemStatus.MANUAL:
        detail = _missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段流水 {flowing:g} 分钟 (约 {loss:g} m³), 最长连续不足 {params.continuous_min:g} 分钟",
                  f"{flowing:g} min of flow after hours (about {loss:g} m³), none of it "
                  f"{params.continuous_min:g} min without a break")
    else:
        detail = "闭园时段无流水", "no flow after hours"
    return _item(item_id, Category.WATER, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})


def leak(j: Judge, d: Device) -> Item:
    """No water on the floor: fails when the leak sensor was wet at any time of the day, open
    or closed, as its leak alert would."""
    hold = j.hold_ms(d)
    lo, hi = j.judged
    points = j.points(d.id, "leak", lo - hold, hi)
    today = clip(held(points, lo, hi, hold), [j.judged])
    wet = runs(where(today, bool))
    holes = gaps(today, [j.judged])
    readings = sum(1 for ts, _ in points if lo <= ts < hi)
    status = _verdict(bool(wet), holes, readings)
    if status is ItemStatus.FAIL:
        wet_min = minutes(total_ms(wet))
        detail = (f"检测到漏水 ({j.spans(wet)}), 共 {wet_min:g} 分钟: 请检查并处理",
                  f"water detected ({j.spans(wet)}), {wet_min:g} min in all: check and deal with it")
    elif status is ItemStatus.MANUAL:
        detail = _missing(j, holes, readings)
    else:
        detail = "全天未检测到漏水", "no water detected all day"
    return _item(f"leak:{d.id}", Category.WATER, d, j.site, status, detail).model_copy(
        update={"gaps": [j.span(g) for g in holes]})


def _flows(j: Judge, d: Device, lo: int, hi: int) -> list[tuple[int, float]]:
    flow = Flow()
    return [(s.ts_ms, got[0]) for s in j.samples(d.id, ("volume_m3", "flow_lpm"), lo, hi)
            if (got := flow(s)) is not None]


def power(j: Judge, d: Device) -> Item:
    """No load above base after hours: fails on power above the after-hours load rule's
    limit (its configured or learned base load plus margin, as it stands now) for the rule's
    `duration_min` or longer while the building is closed."""
    item_id = f"power:{d.id}"
    found = j.day.limits.get(d.id)
    if found is None:
        return _disabled(item_id, Category.POWER, d, j.site, LOAD_AFTER_HOURS.id)
    base, limit = found
    params = LOAD_AFTER_HOURS.params_for(d)
    duration_min = params.duration_min
    if limit is None:
        return _item(item_id, Category.POWER, d, j.site, ItemStatus.MANUAL,
                     ("基础负荷尚未学习到 (需先有一个完整的闭园时段): 请人工检查电器电源",
                      "the base load is not learned yet (it needs one whole closed period): check power by hand"))
    run_ms = round(duration_min * MIN_MS)
    c = _closed(j, d, lambda lo, hi: _powers(j, d, lo, hi), run_ms, lambda watts: watts > limit)
    failed = [r for r in c.episodes if r[1] - r[0] >= run_ms]
    above = minutes(total_ms([(h.start, h.end) for h in c.inside]))
    excess = round(integral_min([Held(h.start, h.end, h.value - limit) for h in c.inside]) / 60_000, 2)
    longest = _longest(c.episodes)
    facts = PowerFacts(base_w=None if base is None else round(base), limit_w=round(limit), duration_min=duration_min,
                       minutes_above=above, kwh_above_limit=excess,
                       longest=None if longest is None else j.span(longest))
    status = _verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = _longest(failed)
        assert worst is not None
        detail = (f"闭园时段高于基础负荷上限 {limit:.0f} W 连续 {minutes(worst[1] - worst[0]):g} 分钟 "
                  f"({j.spans([worst])}); 当日闭园时段共 {above:g} 分钟, 超出约 {excess:g} kWh",
                  f"above the {limit:.0f} W base-load limit for {minutes(worst[1] - worst[0]):g} min after hours "
                  f"({j.spans([worst])}); {above:g} min and about {excess:g} kWh above it that day")
    elif status is ItemStatus.MANUAL:
        detail = _missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段高于 {limit:.0f} W 共 {above:g} 分钟, 最长连续不足 {duration_min:g} 分钟",
                  f"above {limit:.0f} W for {above:g} min after hours, none of it {duration_min:g} min long")
    else:
        detail = f"闭园时段未超过 {limit:.0f} W", f"never above {limit:.0f} W after hours"
    return _item(item_id, Category.POWER, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})


def _powers(j: Judge, d: Device, lo: int, hi: int) -> list[tuple[int, float]]:
    watts = Power()
    return [(s.ts_ms, got) for s in j.samples(d.id, ("energy_kwh", "power_w"), lo, hi)
            if (got := watts(s)) is not None]


SENSOR_ITEMS: Final[dict[str, Callable[[Judge, Device], Item]]] = {
    "sample_fridge": fridge, "uv_lamp": uv, "door": door, "water_meter": water, "electricity_meter": power,
    "leak_sensor": leak,
}

# ------------------------------------------------------------------------ without sensors

CHECKS: Final[dict[Category, tuple[str, str]]] = {
    Category.FRIDGE: ("留样冰箱全天温度合格", "Sample fridge in range all day"),
    Category.UV: ("紫外线消毒灯运行时长达标", "UV lamp ran its minutes"),
    Category.DOOR: ("闭园后门已关", "Doors closed after hours"),
    Category.WATER: ("夜间无跑水", "No running water at night"),
    Category.POWER: ("闭园后无超基础负荷用电", "No after-hours load above base"),
    Category.CANTEEN: ("食堂登记", "Canteen register"),
    Category.GUARD: ("门卫巡查", "Guard's round"),
}


@dataclass(frozen=True)
class ManualCheck:
    """A check no sensor in this product covers: always a person's."""

    id: str
    category: Category
    check_zh: str
    check_en: str
    school_days_only: bool


# The short list of what only a person can vouch for. Canteen items count where the site has a kitchen.
ALWAYS_MANUAL: Final = (
    ManualCheck("canteen:tableware", Category.CANTEEN, "餐具消毒: 餐用具每餐后消毒并登记",
                "Tableware disinfection: after every meal, registered", True),
    ManualCheck("canteen:goods", Category.CANTEEN, "食品验收: 食品原料到货验收并登记",
                "Goods acceptance: deliveries checked on arrival, registered", True),
    ManualCheck("canteen:samples", Category.CANTEEN, "留样登记: 每餐每样 ≥125 g, 冷藏 ≥48 小时",
                "Sample registration: ≥125 g of every dish, kept refrigerated ≥48 h", True),
    ManualCheck("guard:walkround", Category.GUARD, "下班前电器、电源、门窗检查",
                "Walk-round before leaving: appliances, power, doors and windows", False),
)

# A building without a sensor of a kind gets the check by hand: (category, kind, what to do).
_BY_HAND: Final = (
    (Category.DOOR, "door", ("本楼无门磁: 请人工检查门窗是否关锁",
                             "no door sensor here: check by hand that doors are locked")),
    (Category.WATER, "water_meter", ("本楼无水表: 请人工检查有无长流水、跑冒滴漏",
                                     "no water meter here: check by hand for running taps and leaks")),
    (Category.POWER, "electricity_meter", ("本楼无电表: 请人工检查电器电源是否关闭",
                                           "no electricity meter here: check by hand that appliances are off")),
    (Category.UV, "uv_lamp", ("本楼无紫外线灯传感器: 请人工登记消毒",
                              "no UV lamp sensor here: register disinfection by hand")),
)


def uncovered(site: SiteConfig, day: SchoolDay) -> list[Item]:
    """Manual items for each check a building (or kitchen) has no sensor for."""
    out: list[Item] = []
    for b in site.buildings:
        rooms = {r.id for r in b.rooms}
        kinds = {d.kind for d in site.devices if d.room in rooms}
        for category, kind, todo in _BY_HAND:
            if kind in kinds or (category is Category.UV and not any(r.type in UV_ROOMS for r in b.rooms)):
                continue
            status, detail = ItemStatus.MANUAL, todo
            if category is Category.UV and not day.school_day:
                status, detail = ItemStatus.NOT_REQUIRED, _NO_SCHOOL
            out.append(_item(f"{category}@{b.id}", category, None, site, status, detail, subject=b.name,
                             building=b.id))
        for r in b.rooms:
            if r.type == "kitchen" and not any(d.kind == "sample_fridge" and d.room == r.id for d in site.devices):
                out.append(_item(f"fridge@{r.id}", Category.FRIDGE, None, site, ItemStatus.MANUAL,
                                 ("无留样冰箱传感器: 请人工记录冰箱温度",
                                  "no sample fridge sensor: log its temperature by hand"),
                                 subject=r.name, building=b.id, room=r.id))
    return out


def always_manual(site: SiteConfig, day: SchoolDay) -> list[Item]:
    kitchen = any(r.type == "kitchen" for b in site.buildings for r in b.rooms)
    out = []
    for check in ALWAYS_MANUAL:
        if check.category is Category.CANTEEN and not kitchen:
            continue
        if check.school_days_only and not day.school_day:
            status, detail = ItemStatus.NOT_REQUIRED, ("非上学日, 食堂不开餐",
                                                       "not a school day: the canteen is closed")
        else:
            status, detail = ItemStatus.MANUAL, ("无传感器可担保: 请人工检查并登记",
                                                 "no sensor vouches for this: check and register it")
        item = _item(check.id, check.category, None, site, status, detail)
        out.append(item.model_copy(update={"check_zh": check.check_zh, "check_en": check.check_en}))
    return out


def completed(item: Item, completion: Completion | None) -> Item:
    """A person's check applies to an item that needs one: done, or fail for a problem."""
    if completion is None:
        return item
    if not item.needs_check:
        return item.model_copy(update={"completion": completion})
    status = ItemStatus.DONE if completion.result == "ok" else ItemStatus.FAIL
    return item.model_copy(update={"completion": completion, "status": status})
