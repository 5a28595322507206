"""The head's overview (概览): everything that needs attention today, on one screen.

The open alerts with their titles and who has them in hand, who is on duty and who is next,
today's work orders and the daily safety record's completion so far, each building's closing
state, today's consumption against yesterday and last week, the sample fridges, the doors open,
today's UV disinfection and the devices offline. Computed from what the gateway holds (devices'
newest values, open alerts, the roster) plus index lookups in the store; the safety record of
today is judged as its own route judges it (`gateway.reports.safety`), in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from devices import kinds, meters
from devices.base import ClosingCondition, Utility
from gateway.alerting.alerts import Alert, AlertState
from gateway.alerting.severity import Severity
from gateway.alerting.work_orders import Status, WorkOrder
from gateway.api.access import PeopleDep, Viewer
from gateway.api.alerts import utc
from gateway.api.closing import BuildingState, Sensors, closing_states
from gateway.api.dashboard import (
    DeviceRef,
    DoorOut,
    _checked,
    _doors_open,
    _latest,
    _ref,
    _window,
)
from gateway.api.deps import (
    AlertsDep,
    CalendarDep,
    ClockDep,
    LearnedDep,
    ReportSourcesDep,
    RosterDep,
    SiteDep,
    StatesDep,
    StoreDep,
    WorkOrdersDep,
)
from gateway.api.problems import GUARDED
from gateway.auth.people import Actor, Directory
from gateway.clock import to_ms
from gateway.config import SiteConfig
from gateway.config.work_orders import Trade
from gateway.device_state import DeviceStates
from gateway.reports.judging import MAX_POINTS
from gateway.reports.safety import Sources, day_states, record
from gateway.reports.safety_model import ItemStatus
from gateway.rules.uv import lamp_count, required_minutes
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.site import Device
from gateway.storage.readings import ReadingStore
from gateway.storage.sqlite import increase

router = APIRouter()
DAY_MS = 86_400_000


class DayOut(BaseModel):
    date: str
    kind: str
    school_day: bool
    name_zh: str
    name_en: str


class Comparison(BaseModel):
    """A site's consumption today so far, against the same span of yesterday and of the same
    weekday last week (midnight to the same time of day), from its buildings' main meters."""

    unit: str
    today: float | None
    yesterday: float | None
    last_week: float | None
    yesterday_total: float | None



class FridgeOut(DeviceRef):
    metric: str  # the gauge kept within range; the kind says which
    temperature_c: float | None
    at: datetime | None
    min_c: float
    max_c: float
    in_range: bool | None



# unknown: the gateway started after the window began, and the lamp has not run its minutes since
LampStatus = Literal["running", "ran", "due", "missed", "unknown", "none"]


class LampOut(DeviceRef):
    on: bool | None
    status: LampStatus
    minutes_run: float
    minutes_required: float
    window_start: datetime | None
    window_end: datetime | None


class OfflineOut(DeviceRef):
    last_seen: datetime | None



def _consumption(start: float | None, end: float | None) -> float | None:
    """A counter's increase between two readings; None when either is unknown."""
    return None if start is None or end is None else increase(start, end)


async def _comparison(site: SiteConfig, cal: SchoolCalendar, store: ReadingStore, utility: Utility,
                      now_ms: int) -> Comparison:
    today = cal.local_date(now_ms)
    midnight, _ = cal.day_bounds_ms(today)
    day_ms, week_ms = 86_400_000, 7 * 86_400_000
    # (start, end) of: today so far, yesterday to this time, last week's same day to this time, all yesterday
    spans = [(midnight, now_ms), (midnight - day_ms, now_ms - day_ms), (midnight - week_ms, now_ms - week_ms),
             (midnight - day_ms, midnight)]
    times = sorted({t for span in spans for t in span})
    kind, counter = meters()[utility]
    metric, unit = counter.key, counter.unit
    main = [d.id for b in site.buildings for d in site.main_meters(kind.name, b)]
    if not main:
        return Comparison(unit=unit, today=None, yesterday=None, last_week=None, yesterday_total=None)
    values = await asyncio.to_thread(store.values_at, metric, main, times)
    totals: list[float | None] = []
    for start, end in spans:
        parts = [_consumption(values[m][times.index(start)], values[m][times.index(end)]) for m in main]
        known = [p for p in parts if p is not None]
        totals.append(round(sum(known), 3) if known else None)
    return Comparison(unit=unit, today=totals[0], yesterday=totals[1], last_week=totals[2],
                      yesterday_total=totals[3])


def _fridges(site: SiteConfig, states: DeviceStates) -> list[FridgeOut]:
    """Every gauge its kind keeps within a range that the device's settings set."""
    out = []
    for d in site.devices:
        for m in kinds()[d.kind].metrics:
            if m.allowed is None:
                continue
            low, high = m.allowed.of(d.kind_settings())
            point = states.get(d.id).latest.get(m.key)
            temp = None if point is None else point.value
            out.append(FridgeOut(
                **_ref(site, states, d).model_dump(), metric=m.key, temperature_c=temp,
                at=None if point is None else utc(point.ts_ms), min_c=low, max_c=high,
                in_range=None if temp is None else low <= temp <= high,
            ))
    return out



async def _lamps(site: SiteConfig, states: DeviceStates, store: ReadingStore, calendar: SchoolCalendar,
                 checked: list[tuple[Device, str]], now_ms: int) -> list[LampOut]:
    """Each lamp's disinfection today, counted from its stored readings as the daily record
    counts it (`lamp_count`): every replica, and a restarted gateway, shows the same minutes."""
    windows = [(d, metric, _window(site, calendar, d, now_ms)) for d, metric in checked]

    def read(device_id: str, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        return [(p.ts_ms, p.value) for p in store.points(device_id, metric, lo, hi, MAX_POINTS)]

    def runs() -> list[tuple[float, bool]]:
        out = []
        for d, _, window in windows:
            if window is None:
                out.append((0.0, True))
                continue
            count = lamp_count(read, site, d, window, now_ms)
            out.append((count.minutes, not count.holes))
        return out

    lamps = []
    for (d, metric, window), (ran, complete) in zip(windows, await asyncio.to_thread(runs), strict=True):
        on = _latest(states, d.id, metric)
        required = required_minutes(d)
        status: LampStatus
        if window is None:
            status = "none"
        elif on and window[0] <= now_ms < window[1]:
            status = "running"
        elif ran >= required:
            status = "ran"
        elif not complete:
            status = "unknown"
        else:
            status = "due" if now_ms < window[1] else "missed"
        lamps.append(LampOut(
            **_ref(site, states, d).model_dump(), on=None if on is None else bool(on), status=status,
            minutes_run=ran, minutes_required=required, window_start=None if window is None else utc(window[0]),
            window_end=None if window is None else utc(window[1]),
        ))
    return lamps


class AlertLine(BaseModel):
    """An open alert as the head reads it: what, where, how bad, and whose hands it is in."""

    id: int
    severity: Severity
    state: AlertState
    title_zh: str
    title_en: str
    device: str
    room: str
    building: str
    first: datetime
    acked_by: Actor | None = Field(description="who acknowledged it")
    assignee: Actor | None = Field(description="who its work order is assigned to")
    order_id: int | None = Field(description="its work order, if it opened one")
    order_status: Status | None


class DutyOut(BaseModel):
    id: str
    name: str = Field(description="as people read it: the account's display name, else the roster's")
    role: str = Field(description="their duty role from the roster (门卫, 后勤主任), may be empty")


class DutyNow(BaseModel):
    on_duty: DutyOut | None = Field(description="the first of the duty chain now; none: no shift covers now")
    next: list[DutyOut] = Field(description="who an unacknowledged alert escalates to, in order")


class OrderLine(BaseModel):
    id: int
    trade: Trade
    title_zh: str
    title_en: str
    status: Status
    assignee: Actor | None
    due: datetime
    overdue: bool


class OrdersToday(BaseModel):
    """Orders opened or due today, and any still not done: the day's list of repairs."""

    by_status: dict[Status, int]
    overdue: int
    orders: list[OrderLine]


class LedgerToday(BaseModel):
    """Today's daily safety record so far (安全台账), counted as the head reads it."""

    done: int = Field(description="vouched for by the sensors or checked by a person")
    blank: int = Field(description="a person must check it and nobody has yet")
    failed: int
    pending: int = Field(description="not due yet today")
    total: int = Field(description="items asked for today (those not required are left out)")


class ClosingLine(BaseModel):
    """A building's closing state in one line (the closing board has the details)."""

    id: str
    name: str
    state: BuildingState
    open_now: bool
    closes_at: datetime | None
    closed_up: bool
    left: int = Field(description="things still open, on or flowing that keep it from being closed up")


class OverviewOut(BaseModel):
    at: datetime
    day: DayOut
    open_alerts: dict[Severity, int]
    unacknowledged: int
    alerts: list[AlertLine] = Field(description="the open alerts, most severe first, then newest")
    duty: DutyNow
    orders: OrdersToday
    ledger: LedgerToday
    closing: list[ClosingLine]
    electricity: Comparison
    water: Comparison
    fridges: list[FridgeOut]
    doors_open: list[DoorOut]
    lamps: list[LampOut]
    offline: list[OfflineOut]


_SEVERITY_ORDER = list(Severity)


def _alert_lines(open_alerts: list[Alert], orders: list[WorkOrder], names: Directory) -> list[AlertLine]:
    by_alert = {o.alert_id: o for o in orders}
    ranked = sorted(open_alerts, key=lambda a: (_SEVERITY_ORDER.index(a.severity), -a.first_ms))
    out = []
    for a in ranked:
        order = by_alert.get(a.id)
        out.append(AlertLine(
            id=a.id, severity=a.severity, state=a.state, title_zh=a.title_zh, title_en=a.title_en,
            device=a.device_id, room=a.room_id, building=a.building_id, first=utc(a.first_ms),
            acked_by=names.maybe(a.acked_by), assignee=names.maybe(order.assignee if order else None),
            order_id=order.id if order else None, order_status=order.status if order else None,
        ))
    return out


def _duty(roster: Roster, names: Directory, now_ms: int) -> DutyNow:
    people = [DutyOut(id=p.id, name=names.display(p.id), role=p.role) for p in roster.chain(now_ms)]
    return DutyNow(on_duty=people[0] if people else None, next=people[1:])


def _orders_today(orders: list[WorkOrder], names: Directory, day: tuple[int, int], now_ms: int) -> OrdersToday:
    start, end = day
    today = [o for o in orders if start <= o.opened_ms < end or start <= o.due_ms < end or o.status is not Status.DONE]
    counts = dict.fromkeys(Status, 0)
    for o in today:
        counts[o.status] += 1
    return OrdersToday(
        by_status=counts, overdue=sum(1 for o in today if o.overdue(now_ms) and o.status is not Status.DONE),
        orders=[OrderLine(id=o.id, trade=o.trade, title_zh=o.title_zh, title_en=o.title_en, status=o.status,
                          assignee=names.maybe(o.assignee), due=utc(o.due_ms),
                          overdue=o.overdue(now_ms) and o.status is not Status.DONE) for o in today],
    )


async def _ledger(sources: Sources, today_ms: int) -> LedgerToday:
    [state] = day_states(sources, [sources.calendar.local_date(today_ms)])
    counts = (await asyncio.to_thread(record, sources.store, sources.site, state)).counts
    done = counts[ItemStatus.PASS] + counts[ItemStatus.DONE]
    blank, failed, pending = counts[ItemStatus.MANUAL], counts[ItemStatus.FAIL], counts[ItemStatus.PENDING]
    return LedgerToday(done=done, blank=blank, failed=failed, pending=pending, total=done + blank + failed + pending)


@router.get("/api/v1/dashboard/overview", tags=["dashboard"], responses=GUARDED)
async def overview(
    site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep, store: StoreDep, alerts: AlertsDep,
    work_orders: WorkOrdersDep, roster: RosterDep, learned: LearnedDep, sources: ReportSourcesDep,
    people: PeopleDep, _: Viewer,
) -> OverviewOut:
    """Everything that needs attention today, on one screen."""
    now_ms = to_ms(clock.now())
    day = calendar.day(calendar.local_date(now_ms))
    bounds = calendar.day_bounds_ms(day.date)
    open_alerts = await asyncio.to_thread(alerts.open_alerts)
    orders = work_orders.find(limit=10_000)
    names = people.directory()
    counts = dict.fromkeys(Severity, 0)
    for a in open_alerts:
        counts[a.severity] += 1
    closing = await closing_states(Sensors(site, states, store, calendar, learned), alerts, work_orders, names,
                                   now_ms)
    return OverviewOut(
        at=utc(now_ms),
        day=DayOut(date=day.date.isoformat(), kind=day.kind, school_day=day.school_day, name_zh=day.name_zh,
                   name_en=day.name_en),
        open_alerts=counts,
        unacknowledged=sum(1 for a in open_alerts if a.acked_by is None),
        alerts=_alert_lines(open_alerts, orders, names),
        duty=_duty(roster, names, now_ms),
        orders=_orders_today(orders, names, bounds, now_ms),
        ledger=await _ledger(sources, now_ms),
        closing=[ClosingLine(id=b.id, name=b.name, state=b.state, open_now=b.open_now, closes_at=b.closes_at,
                             closed_up=b.state == "closed_up",
                             left=sum(1 for i in b.items if i.state != "scheduled"))
                 for b in closing],
        electricity=await _comparison(site, calendar, store, "electricity", now_ms),
        water=await _comparison(site, calendar, store, "water", now_ms),
        fridges=_fridges(site, states),
        doors_open=await _doors_open(site, states, store, _checked(site.devices, ClosingCondition.TRUE)),
        lamps=await _lamps(site, states, store, calendar,
                           _checked(site.devices, ClosingCondition.TRUE_UNLESS_SCHEDULED), now_ms),
        offline=[OfflineOut(**_ref(site, states, d).model_dump(), last_seen=states.last_seen(d.id))
                 for d in site.devices if not states.online(d.id)],
    )
