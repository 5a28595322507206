"""The closing board (闭园检查): per building, what is still open, on or running, by place and
in the words a guard uses (「厨房：门还开着（18:20 起）」), each with its open alert and work
order; and the guard's walk-round, signed on the board.

A building reads neutral while it is open, red after closing only for what nobody knows of
yet: a fault that is acknowledged or has a work order reads as known, not as left on. What
each sensor says (`look`) is also what the sweep before a break reads (gateway/api/sweeps.py).
The thresholds are the rules' own, so the board and the alerts agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from devices import kinds
from devices.base import ClosingCondition
from gateway.alerting.alerts import Alert, AlertState, AlertStore
from gateway.alerting.work_orders import Status, WorkOrder, WorkOrders
from gateway.api.access import PeopleDep, Viewer
from gateway.api.alerts import utc
from gateway.api.deps import (
    AlertsDep,
    CalendarDep,
    ChecksDep,
    ClockDep,
    LearnedDep,
    SiteDep,
    StatesDep,
    StoreDep,
    SweepsDep,
    WorkOrdersDep,
)
from gateway.api.problems import GUARDED
from gateway.auth.people import Actor, Directory
from gateway.clock import from_ms, to_ms
from gateway.config import SiteConfig
from gateway.config.sweep import Sensed
from gateway.config.work_orders import Trade
from gateway.device_state import DeviceStates
from gateway.reports.checks import CheckResult, ManualChecks
from gateway.reports.sweeps import due_sweeps
from gateway.rules.learned import LearnedStore
from gateway.rules.uv import lamp_window
from gateway.rules.water import WATER_LEAK
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.site import Building, Device
from gateway.storage.readings import ReadingStore

router = APIRouter()

# What each closing condition of a kind (devices/) checks, in the board's words.
_SENSED: Final[dict[ClosingCondition, Sensed]] = {
    ClosingCondition.TRUE: "door",
    ClosingCondition.TRUE_UNLESS_SCHEDULED: "uv",
    ClosingCondition.ABOVE_FLOW_THRESHOLD: "water",
    ClosingCondition.ABOVE_BASE_LOAD: "power",
}
# The ledger's item the guard signs on the board (gateway/reports/safety_items.py).
WALKROUND: Final = "guard:walkround"



# --------------------------------------------------------------------- what the sensors say


@dataclass(frozen=True, slots=True)
class Sensors:
    """What a look at the sensors reads."""

    site: SiteConfig
    states: DeviceStates
    store: ReadingStore
    calendar: SchoolCalendar
    learned: LearnedStore


@dataclass(frozen=True, slots=True)
class Look:
    """What one sensor says at closing: left open, on or running (`left`), or not; `value`
    None when it has not been heard."""

    device: Device
    sensed: Sensed
    value: float | None
    left: bool
    scheduled: bool  # a UV lamp on inside its disinfection window: expected, not forgotten
    since_ms: int | None
    place: str  # the room's name; the building's for a meter that measures all of it
    text: tuple[str, str]


def _num(value: float, digits: int) -> str:
    return f"{round(value, digits):g}"


def power_words(watts: float) -> tuple[str, str]:
    """2.7 千瓦 / 2.7 kW; under 100 W in watts."""
    if watts < 100:
        return f"{_num(watts, 0)} 瓦", f"{_num(watts, 0)} W"
    return f"{_num(watts / 1000, 1)} 千瓦", f"{_num(watts / 1000, 1)} kW"


def _since(site: SiteConfig, since_ms: int, now_ms: int) -> tuple[str, str]:
    at, now = from_ms(since_ms, site.tz), from_ms(now_ms, site.tz)
    if at.date() == now.date():
        return f"{at:%H:%M} 起", f"since {at:%H:%M}"
    return f"{at.month}月{at.day}日 {at:%H:%M} 起", f"since {at:%b} {at.day} {at:%H:%M}"


def _noun(d: Device, room: str) -> str:
    """The device's name without its room's (厨房门 in 厨房: 门)."""
    name = d.name or kinds()[d.kind].label_zh
    return name.removeprefix(room) or name


def _window(s: Sensors, d: Device, now_ms: int) -> tuple[int, int] | None:
    return lamp_window(s.site, s.calendar, d, s.calendar.local_date(now_ms))


def _words(s: Sensors, look: Look, base_w: float | None, standby: bool, now_ms: int) -> tuple[str, str]:
    """The sentence a guard reads for one sensor."""
    p, d = look.place, look.device
    label_en = kinds()[d.kind].label_en.lower()
    if look.value is None:
        return f"{p}：{_noun(d, p)}没有读数，请到现场看一下", f"{p}: no reading from the {label_en}, look on site"
    if look.sensed == "door":
        if not look.left:
            return f"{p}：{_noun(d, p)}已关好", f"{p}: the {label_en} is shut"
        zh, en = f"{p}：{_noun(d, p)}还开着", f"{p}: the {label_en} is still open"
        if look.since_ms is not None:
            szh, sen = _since(s.site, look.since_ms, now_ms)
            zh, en = f"{zh}（{szh}）", f"{en} ({sen})"
        return zh, en
    if look.sensed == "uv":
        if look.scheduled:
            return f"{p}：正在按计划消毒", f"{p}: disinfecting on schedule"
        return (f"{p}：紫外线灯亮着", f"{p}: the UV lamp is on") if look.left else (
            f"{p}：紫外线灯已关", f"{p}: the UV lamp is off")
    if look.sensed == "water":
        lpm = _num(look.value, 1)
        return (f"{p}：水还在流（{lpm} 升/分钟）", f"{p}: water still running ({lpm} L/min)") if look.left else (
            f"{p}：没有流水", f"{p}: no water running")
    now_zh, now_en = power_words(look.value)
    if look.left:
        if base_w is None:
            return f"{p}：用电 {now_zh}，高于待机", f"{p}: using {now_en}, above standby"
        base_zh, base_en = power_words(base_w)
        usual = ("平时待机约", "standby is about") if standby else ("平时夜里约", "usually about")
        return f"{p}：用电 {now_zh}，{usual[0]} {base_zh}", f"{p}: using {now_en}, {usual[1]} {base_en} at night"
    return f"{p}：用电已降到待机（{now_zh}）", f"{p}: power down to standby ({now_en})"


async def look(s: Sensors, devices: Sequence[Device], now_ms: int,
               standby_w: Mapping[str, float] | None = None) -> list[Look]:
    """What each of `devices` with a closing check says now, in the order given. A circuit is
    left on above `standby_w` where the sweep sets one, else above its learned limit (base
    load plus the after-hours rule's margin); a circuit with neither is not judged."""
    standby_w = standby_w or {}
    base_loads = await asyncio.to_thread(s.learned.base_loads)
    found: list[tuple[Device, Sensed, str, float | None, bool, bool, float | None, bool]] = []
    for d in devices:
        check = kinds()[d.kind].closing
        if check is None:
            continue
        sensed = _SENSED[check.condition]
        point = s.states.get(d.id).latest.get(check.metric)
        value = None if point is None else point.value
        left = scheduled = standby = False
        base_w: float | None = None
        if value is not None:
            if sensed == "door":
                left = bool(value)
            elif sensed == "uv":
                window = _window(s, d, now_ms)
                scheduled = bool(value) and window is not None and window[0] <= now_ms < window[1]
                left = bool(value) and not scheduled
            elif sensed == "water":
                left = value > WATER_LEAK.params_for(d).flow_threshold_lpm
            else:
                learned = base_loads.get(d.id)
                standby = d.id in standby_w
                limit = standby_w[d.id] if standby else None if learned is None else learned.limit_w
                base_w = standby_w[d.id] if standby else None if learned is None else learned.base_w
                if limit is None:
                    continue  # nothing learned yet to judge it by
                left = value > limit
        found.append((d, sensed, check.metric, value, left, scheduled, base_w, standby))

    # When each open door was opened: one query per metric, in a worker thread.
    open_doors = [(d.id, metric, s.states.get(d.id).latest[metric].ts_ms)
                  for d, sensed, metric, _, left, *_ in found if sensed == "door" and left]

    def opened() -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for metric in dict.fromkeys(m for _, m, _ in open_doors):
            at = [(i, ts) for i, m, ts in open_doors if m == metric]
            out.update(zip([i for i, _ in at], s.store.runs_since(metric, 1.0, at), strict=True))
        return out

    since = await asyncio.to_thread(opened)
    looks = []
    for d, sensed, _, value, left, scheduled, base_w, standby in found:
        building = s.site.building_of(d.room)
        # A meter in a plant room measures its whole building (gateway/site.py: main_meters).
        whole = s.site.room(d.room).type == "plant"
        draft = Look(d, sensed, value, left, scheduled, since.get(d.id),
                     building.name if whole else s.site.room(d.room).name, ("", ""))
        looks.append(replace(draft, text=_words(s, draft, base_w, standby, now_ms)))
    return looks


def devices_in(site: SiteConfig, building: Building) -> list[Device]:
    rooms = {r.id for r in building.rooms}
    return [d for d in site.devices if d.room in rooms]


# ----------------------------------------------------------------------------- the board


class AlertRef(BaseModel):
    id: int
    state: AlertState
    acked_by: Actor | None
    acked_at: datetime | None


class OrderRef(BaseModel):
    id: int
    trade: Trade
    status: Status
    assignee: str | None = Field(description="as the order holds it: a login is shown as the person's name")


ItemState = Literal["todo", "known", "scheduled"]
BuildingState = Literal["open", "todo", "known", "closed_up"]


class ClosingItem(BaseModel):
    device: str
    room: str
    check: Sensed
    state: ItemState = Field(description="todo: nobody knows of it yet; known: acknowledged or with a work "
                                         "order; scheduled: a UV lamp on its timer, not counted")
    place: str
    text_zh: str
    text_en: str
    since: datetime | None
    alert: AlertRef | None
    order: OrderRef | None
    known_zh: str = Field(description="「已派单 · 水工 · 已到场」, 「已确认 · 李主任」; empty when unknown")
    known_en: str


class BuildingClosing(BaseModel):
    id: str
    name: str
    state: BuildingState = Field(description="open: still open (neutral); todo: closed with something nobody "
                                             "knows of; known: only known faults left; closed_up: all shut")
    open_now: bool
    closes_at: datetime | None
    items: list[ClosingItem]


def _known(alert: Alert | None, order: WorkOrder | None, names: Directory) -> tuple[str, str]:
    parts: list[tuple[str, str]] = []
    if order is not None:
        tzh, ten = order.trade.words
        szh, sen = order.status.words
        who = "" if order.assignee is None else names.display(order.assignee)
        parts.append((" · ".join(x for x in ("已派单", tzh, who, szh) if x),
                      " · ".join(x for x in ("Work order", ten, who, sen) if x)))
    if alert is not None and alert.acked_by is not None:
        who = names.display(alert.acked_by)
        parts.append((f"已确认 · {who}", f"Acknowledged · {who}"))
    elif alert is not None and order is None:
        parts.append(("已报警，还没有人确认", "Alerted, not acknowledged yet"))
    return "；".join(zh for zh, _ in parts), "; ".join(en for _, en in parts)


async def closing_states(s: Sensors, alerts: AlertStore, work_orders: WorkOrders, names: Directory,
                         now_ms: int) -> list[BuildingClosing]:
    """Each building's closing state, in the site's order (the overview shows it too)."""
    open_alerts: dict[str, Alert] = {}
    for a in sorted(await asyncio.to_thread(alerts.open_alerts), key=lambda a: a.first_ms):
        open_alerts[a.device_id] = a  # the newest per device
    orders = {o.alert_id: o for status in (Status.OPEN, Status.ASSIGNED, Status.ON_SITE)
              for o in work_orders.find(status=status, limit=10_000) if o.alert_id}
    out = []
    for b in s.site.buildings:
        items = []
        for seen in await look(s, devices_in(s.site, b), now_ms):
            if not (seen.left or seen.scheduled) or seen.value is None:
                continue
            alert = open_alerts.get(seen.device.id)
            order = None if alert is None else orders.get(alert.id)
            state: ItemState = "scheduled" if seen.scheduled else (
                "known" if order is not None or (alert is not None and alert.acked_by is not None) else "todo")
            kzh, ken = _known(alert, order, names)
            items.append(ClosingItem(
                device=seen.device.id, room=seen.device.room, check=seen.sensed, state=state, place=seen.place,
                text_zh=seen.text[0], text_en=seen.text[1], since=utc(seen.since_ms),
                alert=None if alert is None else AlertRef(id=alert.id, state=alert.state,
                                                          acked_by=names.maybe(alert.acked_by),
                                                          acked_at=utc(alert.acked_ms)),
                order=None if order is None else OrderRef(id=order.id, trade=order.trade, status=order.status,
                                                          assignee=order.assignee),
                known_zh=kzh, known_en=ken))
        open_now = s.calendar.is_open(b.id, now_ms)
        bstate: BuildingState = "open" if open_now else (
            "todo" if any(i.state == "todo" for i in items) else
            "known" if any(i.state == "known" for i in items) else "closed_up")
        out.append(BuildingClosing(
            id=b.id, name=b.name, state=bstate, open_now=open_now,
            closes_at=utc(s.calendar.closing_ms(b.id, s.calendar.local_date(now_ms))), items=items))
    return out


class WalkroundOut(BaseModel):
    result: CheckResult
    note: str
    by: Actor
    at: datetime


class SweepLink(BaseModel):
    """A sweep before a break due today: the board links to its page."""

    id: int | None = Field(description="None until someone opens it")
    day: date
    title_zh: str
    title_en: str


class ClosingOut(BaseModel):
    at: datetime
    day: date
    buildings: list[BuildingClosing]
    walkround: WalkroundOut | None = Field(description="today's walk-round, once the guard signed it")
    sweeps: list[SweepLink] = Field(description="sweeps before a break due today")


def _walkround(checks: ManualChecks, day: date, names: Directory) -> WalkroundOut | None:
    signed = next((c for c in checks.between(day, day) if c.item == WALKROUND), None)
    if signed is None:
        return None
    return WalkroundOut(result=signed.result, note=signed.note, by=names.actor(signed.by), at=utc(signed.at_ms))


@router.get("/api/v1/dashboard/closing", tags=["dashboard"], responses=GUARDED)
async def closing(
    site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep, store: StoreDep, learned: LearnedDep,
    alerts: AlertsDep, work_orders: WorkOrdersDep, checks: ChecksDep, sweeps: SweepsDep, people: PeopleDep,
    _: Viewer,
) -> ClosingOut:
    """闭园检查: per building, what is still open, on or running, with its alert and work
    order; today's walk-round; the sweeps before a break due today."""
    now_ms = to_ms(clock.now())
    today = calendar.local_date(now_ms)
    names = people.directory()
    sensors = Sensors(site, states, store, calendar, learned)
    started = {(w.day, w.kind): w for w in await asyncio.to_thread(sweeps.between, today, today)}
    due = [SweepLink(id=started[(d.day, d.kind)].id if (d.day, d.kind) in started else None, day=d.day,
                     title_zh=d.title[0], title_en=d.title[1])
           for d in due_sweeps(calendar, site.sweep.min_break_days, today, today)]
    due += [SweepLink(id=w.id, day=w.day, title_zh=w.title_zh, title_en=w.title_en)
            for w in started.values() if w.kind == "on_demand"]
    return ClosingOut(
        at=utc(now_ms), day=today, buildings=await closing_states(sensors, alerts, work_orders, names, now_ms),
        walkround=await asyncio.to_thread(_walkround, checks, today, names), sweeps=due)
