"""The sweep before a break (拉网式检查) in the dashboard: the sweeps the calendar asks for and
those the head starts, each building's checklist (what the sensors say now, and the checks
only a person can do), a person's 正常 / 有问题 per item, an item with a problem turned into a
work order, the building signed; and who guards the school over the break (护校)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Annotated, Final

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from devices import kinds
from gateway.alerting.work_orders import Status, WorkOrders
from gateway.api.access import Admin, PeopleDep, Staff, Viewer
from gateway.api.alerts import utc
from gateway.api.closing import Sensors, devices_in, look
from gateway.api.deps import (
    CalendarDep,
    ClockDep,
    LearnedDep,
    RosterDep,
    SiteDep,
    StatesDep,
    StoreDep,
    SweepsDep,
    WorkOrdersDep,
)
from gateway.api.problems import GUARDED, problems, refusal
from gateway.auth.people import Actor, Directory, People
from gateway.clock import to_ms
from gateway.config import SiteConfig
from gateway.config.work_orders import Trade
from gateway.device_state import DeviceStates
from gateway.reports.checks import CheckResult
from gateway.reports.sweeps import (
    Break,
    DueSweep,
    Mark,
    Sweep,
    SweepError,
    SweepKind,
    SweepNotFound,
    SweepStore,
    due_sweeps,
)
from gateway.rules.learned import LearnedStore
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.site import Building
from gateway.storage.readings import ReadingStore

router = APIRouter(tags=["sweeps"])
CHANGES = problems(400, 401, 403, 404, 409, 422)  # 400: a body that is not JSON

# Who fixes what a sensor found (a door that does not shut: the carpenter).
_SENSOR_TRADE: Final = {"door": Trade.CARPENTRY, "water": Trade.WATER, "power": Trade.ELECTRIC,
                        "uv": Trade.ELECTRIC, "fridge": Trade.ELECTRIC}
_LONGEST_ROSTER: Final = 62  # days of a break listed with who is on duty


class BreakOut(BaseModel):
    first: date
    last: date
    name_zh: str
    name_en: str


class DueOut(BaseModel):
    id: int | None = Field(description="None until someone opens it")
    day: date
    kind: SweepKind
    title_zh: str
    title_en: str
    closed: BreakOut | None = Field(description="the break it is for")


class SweepLine(BaseModel):
    id: int
    day: date
    kind: SweepKind
    title_zh: str
    title_en: str
    started_by: Actor
    signed: int = Field(description="buildings signed")
    buildings: int


class SweepsOut(BaseModel):
    today: date
    due: list[DueOut] = Field(description="what the calendar asks for from today on (sweep.days_ahead)")
    sweeps: list[SweepLine] = Field(description="the sweeps opened in the last 60 days and ahead, newest first")


class OrderOut(BaseModel):
    id: int
    trade: Trade
    status: Status


class ItemOut(BaseModel):
    id: str
    sensed: bool = Field(description="filled from a sensor; otherwise a check only a person can do")
    text_zh: str
    text_en: str
    sensor_result: CheckResult | None = Field(description="what the sensor says; None without a reading")
    result: CheckResult | None = Field(description="a person's mark, else the sensor's; None: not checked yet")
    note: str
    marked_by: Actor | None
    marked_at: datetime | None
    trade: Trade
    order: OrderOut | None


class SignedOut(BaseModel):
    by: Actor
    at: datetime
    note: str
    problems: int


class ChecklistOut(BaseModel):
    id: str
    name: str
    items: list[ItemOut]
    signed: SignedOut | None


class DutyRun(BaseModel):
    """Days in a row with the same person on duty."""

    first: date
    last: date
    guard_duty: bool = Field(description="护校 days of the calendar")
    on_duty: str = Field(description="the person's name; empty when no shift covers the day")


class SweepOut(BaseModel):
    id: int
    day: date
    kind: SweepKind
    title_zh: str
    title_en: str
    started_by: Actor
    closed: BreakOut | None
    roster: list[DutyRun]
    buildings: list[ChecklistOut]


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=60, pattern=r"\S", description="e.g. 运动会前检查")


class MarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: CheckResult
    note: str = Field("", max_length=2000)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trade: Trade | None = Field(None, description="default: the item's")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000)


Id = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="SQLite row ids are 64-bit")]
BuildingId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
ItemId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9:_.-]{1,80}$", description="gas, or sensor:<device>")]


def _break(b: Break | None) -> BreakOut | None:
    return None if b is None else BreakOut(first=b.first, last=b.last, name_zh=b.name_zh, name_en=b.name_en)


def _not_found() -> Exception:
    return refusal(404, "没有这次检查。", "There is no such check.")


def _signed_already() -> Exception:
    return refusal(409, "这栋楼已经签过字，不能再改。", "This building is already signed; it can no longer change.")


def _building(site: SiteConfig, building_id: str) -> Building:
    found = next((b for b in site.buildings if b.id == building_id), None)
    if found is None:
        raise refusal(404, "没有这栋楼。", "There is no such building.")
    return found


def _due(site: SiteConfig, calendar: SchoolCalendar, sweep: Sweep) -> DueSweep | None:
    return next((d for d in due_sweeps(calendar, site.sweep.min_break_days, sweep.day, sweep.day)
                 if d.kind == sweep.kind), None)


# ------------------------------------------------------------------------ the checklist


class _Parts:
    """What a checklist is made of, for one request."""

    def __init__(self, sensors: Sensors, sweeps: SweepStore, work_orders: WorkOrders, names: Directory) -> None:
        self.sensors, self.sweeps, self.work_orders, self.names = sensors, sweeps, work_orders, names


async def _checklist(p: _Parts, sweep: Sweep, b: Building, now_ms: int) -> list[ItemOut]:
    """The building's items now: the sensors' (each device with a closing check, each fridge),
    then the manual ones that apply to it, each with its mark and work order."""
    site = p.sensors.site
    marks = p.sweeps.marks(sweep.id)
    devices = devices_in(site, b)
    sensed: list[tuple[str, str, str, CheckResult | None, Trade]] = []
    seen = await look(p.sensors, devices, now_ms, site.sweep.standby_w)
    for s in seen:
        result: CheckResult | None = None if s.value is None else "problem" if s.left else "ok"
        sensed.append((f"sensor:{s.device.id}", *s.text, result, _SENSOR_TRADE[s.sensed]))
    for d in devices:
        for m in kinds()[d.kind].metrics:
            if m.allowed is None:
                continue
            low, high = m.allowed.of(d.kind_settings())
            point = p.sensors.states.get(d.id).latest.get(m.key)
            room = site.room(d.room).name
            name = d.name or d.id
            if point is None:
                sensed.append((f"fridge:{d.id}", f"{room}：{name}没有读数，请到现场看一下",
                               f"{room}: no reading from {name}, look on site", None, Trade.ELECTRIC))
                continue
            ok = low <= point.value <= high
            temp, span = f"{round(point.value, 1):g} °C", f"{low:g}–{high:g} °C"
            zh, en = ((f"{room}：{name} {temp}，在 {span} 之内", f"{room}: {name} at {temp}, within {span}") if ok else
                      (f"{room}：{name} {temp}，超出 {span}", f"{room}: {name} at {temp}, outside {span}"))
            sensed.append((f"fridge:{d.id}", zh, en, "ok" if ok else "problem", Trade.ELECTRIC))
    checked = {s.sensed for s in seen if s.value is not None}
    types = {r.type for r in b.rooms}
    manual = [(i.id, i.zh, i.en, None, i.trade) for i in site.sweep.items
              if (i.room_types is None or types & set(i.room_types)) and i.unless_sensed not in checked]
    # A fault a sensor shows may already have its work order (a leak's, for the plumber): it
    # shows with the item, which then is not turned into a second one.
    pending = {o.device_id: o for status in (Status.OPEN, Status.ASSIGNED, Status.ON_SITE)
               for o in p.work_orders.find(status=status, limit=10_000) if o.device_id}
    out = []
    for item_id, zh, en, sensor, trade in sensed + manual:
        mark = marks.get((b.id, item_id))
        order = (p.work_orders.get(mark.order_id) if mark is not None and mark.order_id is not None
                 else pending.get(item_id.partition(":")[2]) if sensor == "problem" else None)
        out.append(ItemOut(
            id=item_id, sensed=item_id.partition(":")[1] == ":", text_zh=zh, text_en=en, sensor_result=sensor,
            result=mark.result if mark else sensor, note=mark.note if mark else "",
            marked_by=None if mark is None else p.names.actor(mark.by),
            marked_at=None if mark is None else utc(mark.at_ms), trade=order.trade if order else trade,
            order=None if order is None else OrderOut(id=order.id, trade=order.trade, status=order.status)))
    return out


def _duty(calendar: SchoolCalendar, roster: Roster, closed: Break) -> list[DutyRun]:
    runs: list[DutyRun] = []
    d = closed.first
    while d <= min(closed.last, closed.first + timedelta(days=_LONGEST_ROSTER - 1)):
        chain = roster.chain(calendar.local_ms(d, time(12)))
        who, guard = chain[0].name if chain else "", calendar.day(d).guard_duty
        if runs and runs[-1].on_duty == who and runs[-1].guard_duty == guard and runs[-1].last == d - timedelta(1):
            runs[-1] = runs[-1].model_copy(update={"last": d})
        else:
            runs.append(DutyRun(first=d, last=d, guard_duty=guard, on_duty=who))
        d += timedelta(days=1)
    return runs


async def _sweep_out(p: _Parts, roster: Roster, sweep: Sweep, now_ms: int) -> SweepOut:
    site, calendar = p.sensors.site, p.sensors.calendar
    due = _due(site, calendar, sweep)
    signed = p.sweeps.signatures([sweep.id])
    buildings = []
    for b in site.buildings:
        sig = signed.get((sweep.id, b.id))
        items = ([ItemOut.model_validate(i) for i in sig.items] if sig is not None
                 else await _checklist(p, sweep, b, now_ms))
        buildings.append(ChecklistOut(
            id=b.id, name=b.name, items=items,
            signed=None if sig is None else SignedOut(by=p.names.actor(sig.by), at=utc(sig.at_ms), note=sig.note,
                                                      problems=sig.problems)))
    return SweepOut(
        id=sweep.id, day=sweep.day, kind=sweep.kind, title_zh=sweep.title_zh, title_en=sweep.title_en,
        started_by=p.names.actor(sweep.started_by), closed=_break(None if due is None else due.closed),
        roster=[] if due is None or due.kind != "before_break" else _duty(calendar, roster, due.closed),
        buildings=buildings)


# ----------------------------------------------------------------------------- the routes


@router.get("/api/v1/sweeps", responses=GUARDED)
async def list_sweeps(site: SiteDep, clock: ClockDep, calendar: CalendarDep, sweeps: SweepsDep, people: PeopleDep,
                      _: Viewer) -> SweepsOut:
    """The sweeps due from today on, and those opened lately."""
    today = calendar.local_date(to_ms(clock.now()))
    stored = await asyncio.to_thread(sweeps.between, today - timedelta(days=60), today + timedelta(days=366))
    opened = {(s.day, s.kind): s.id for s in stored}
    due = [DueOut(id=opened.get((d.day, d.kind)), day=d.day, kind=d.kind, title_zh=d.title[0], title_en=d.title[1],
                  closed=_break(d.closed))
           for d in due_sweeps(calendar, site.sweep.min_break_days, today,
                               today + timedelta(days=site.sweep.days_ahead))]
    signed = sweeps.signatures([s.id for s in stored])
    names = people.directory()
    lines = [SweepLine(id=s.id, day=s.day, kind=s.kind, title_zh=s.title_zh, title_en=s.title_en,
                       started_by=names.actor(s.started_by), signed=sum(1 for i, _ in signed if i == s.id),
                       buildings=len(site.buildings))
             for s in reversed(stored)]
    return SweepsOut(today=today, due=due, sweeps=lines)


@router.post("/api/v1/sweeps", responses=CHANGES)
async def start_sweep(calendar: CalendarDep, clock: ClockDep, sweeps: SweepsDep, people: PeopleDep, who: Admin,
                      body: StartIn) -> SweepLine:
    """The head starts a sweep today, under a title of their own (运动会前检查)."""
    today = calendar.local_date(to_ms(clock.now()))
    title = body.title.strip()
    sweep = sweeps.start(today, "on_demand", (title, title), who.name)
    return SweepLine(id=sweep.id, day=sweep.day, kind=sweep.kind, title_zh=sweep.title_zh, title_en=sweep.title_en,
                     started_by=people.directory().actor(sweep.started_by), signed=0, buildings=0)


@router.post("/api/v1/sweeps/due/{day}", responses=CHANGES)
async def open_due(site: SiteDep, calendar: CalendarDep, clock: ClockDep, sweeps: SweepsDep, people: PeopleDep,
                   who: Staff, day: date) -> SweepLine:
    """Opens the sweep the calendar asks for on `day` (once: whoever comes first)."""
    today = calendar.local_date(to_ms(clock.now()))
    found = next(iter(due_sweeps(calendar, site.sweep.min_break_days, day, day)), None)
    if found is None:
        raise refusal(404, "这一天没有放假前检查。", "No pre-break check is due that day.")
    if day > today + timedelta(days=site.sweep.days_ahead):
        raise refusal(409, "还太早，不能开始这次检查。", "It is too early to start this check.")
    sweep = sweeps.start(day, found.kind, found.title, who.name)
    return SweepLine(id=sweep.id, day=sweep.day, kind=sweep.kind, title_zh=sweep.title_zh, title_en=sweep.title_en,
                     started_by=people.directory().actor(sweep.started_by),
                     signed=len(sweeps.signatures([sweep.id])), buildings=len(site.buildings))


def _parts(site: SiteConfig, states: DeviceStates, store: ReadingStore, calendar: SchoolCalendar,
           learned: LearnedStore, sweeps: SweepStore, work_orders: WorkOrders, people: People) -> _Parts:
    return _Parts(Sensors(site, states, store, calendar, learned), sweeps, work_orders, people.directory())


def _get(sweeps: SweepStore, sweep_id: int) -> Sweep:
    try:
        return sweeps.get(sweep_id)
    except SweepNotFound:
        raise _not_found() from None


@router.get("/api/v1/sweeps/{sweep_id}", responses=GUARDED)
async def get_sweep(site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep, store: StoreDep,
                    learned: LearnedDep, roster: RosterDep, sweeps: SweepsDep, work_orders: WorkOrdersDep,
                    people: PeopleDep, _: Viewer, sweep_id: Id) -> SweepOut:
    """Each building's checklist: live until it is signed, then as it was signed."""
    p = _parts(site, states, store, calendar, learned, sweeps, work_orders, people)
    return await _sweep_out(p, roster, _get(sweeps, sweep_id), to_ms(clock.now()))


async def _item(p: _Parts, sweep: Sweep, building: Building, item_id: str, now_ms: int) -> ItemOut:
    if (sweep.id, building.id) in p.sweeps.signatures([sweep.id]):
        raise _signed_already()
    found = next((i for i in await _checklist(p, sweep, building, now_ms) if i.id == item_id), None)
    if found is None:
        raise refusal(404, "这份检查单上没有这一项。", "This checklist has no such item.")
    return found


@router.post("/api/v1/sweeps/{sweep_id}/buildings/{building_id}/items/{item_id}", responses=CHANGES)
async def mark_item(site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep, store: StoreDep,
                    learned: LearnedDep, sweeps: SweepsDep, work_orders: WorkOrdersDep, people: PeopleDep,
                    who: Staff, sweep_id: Id, building_id: BuildingId, item_id: ItemId, body: MarkIn) -> ItemOut:
    """正常 or 有问题 for one item, with a note; again replaces it (the audit trail keeps both)."""
    p = _parts(site, states, store, calendar, learned, sweeps, work_orders, people)
    sweep, building, now = _get(sweeps, sweep_id), _building(site, building_id), to_ms(clock.now())
    await _item(p, sweep, building, item_id, now)
    try:
        sweeps.mark(sweep.id, building.id, item_id, body.result, body.note.strip(), who.name)
    except SweepError:
        raise _signed_already() from None
    return await _item(p, sweep, building, item_id, now)


@router.post("/api/v1/sweeps/{sweep_id}/buildings/{building_id}/items/{item_id}/work-order", responses=CHANGES)
async def item_to_work_order(site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep,
                             store: StoreDep, learned: LearnedDep, sweeps: SweepsDep, work_orders: WorkOrdersDep,
                             people: PeopleDep, who: Staff, sweep_id: Id, building_id: BuildingId, item_id: ItemId,
                             body: OrderIn) -> ItemOut:
    """转为工单: an item found with a problem becomes a work order for its trade, due by the
    end of the day."""
    p = _parts(site, states, store, calendar, learned, sweeps, work_orders, people)
    sweep, building, now = _get(sweeps, sweep_id), _building(site, building_id), to_ms(clock.now())
    item = await _item(p, sweep, building, item_id, now)
    if item.result != "problem":
        raise refusal(409, "只有「有问题」的项目才能转为工单。", "Only an item with a problem can become a work order.")
    if item.order is not None:
        raise refusal(409, "这一项已经转为工单了。", "This item is already a work order.")
    marks = sweeps.marks(sweep.id)
    if (building.id, item_id) not in marks:  # a sensor's problem nobody marked yet: the person vouches for it
        marks[(building.id, item_id)] = sweeps.mark(sweep.id, building.id, item_id, "problem", "", who.name)
    mark: Mark = marks[(building.id, item_id)]
    text = item.text_zh if item.sensed else f"{building.name}：{item.text_zh}"
    text_en = item.text_en if item.sensed else f"{building.name}: {item.text_en}"
    note_zh, note_en = (f"（{mark.note}）", f" ({mark.note})") if mark.note else ("", "")
    order = work_orders.open_by_hand(
        who.name, body.trade or item.trade, building.id, "",
        (f"{sweep.title_zh}：{text}{'' if item.sensed else '——有问题'}{note_zh}",
         f"{sweep.title_en}: {text_en}{'' if item.sensed else ' — a problem'}{note_en}"),
        calendar.day_bounds_ms(calendar.local_date(now))[1], "sweep")
    sweeps.ordered(sweep.id, building.id, item_id, order.id, who.name)
    return await _item(p, sweep, building, item_id, now)


@router.post("/api/v1/sweeps/{sweep_id}/buildings/{building_id}/sign", responses=CHANGES)
async def sign_building(site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep, store: StoreDep,
                        learned: LearnedDep, roster: RosterDep, sweeps: SweepsDep, work_orders: WorkOrdersDep,
                        people: PeopleDep, who: Staff, sweep_id: Id, building_id: BuildingId,
                        body: SignIn) -> ChecklistOut:
    """Signs the building's checklist as the signed-in person: every item must be 正常 or 有问题
    (a sensor's counts); what it says then is kept with the signature."""
    p = _parts(site, states, store, calendar, learned, sweeps, work_orders, people)
    sweep, building, now = _get(sweeps, sweep_id), _building(site, building_id), to_ms(clock.now())
    if (sweep.id, building.id) in sweeps.signatures([sweep.id]):
        raise _signed_already()
    items = await _checklist(p, sweep, building, now)
    left: list[ItemOut] = [i for i in items if i.result is None]
    if left:
        raise refusal(409, f"还有 {len(left)} 项没有检查：{'、'.join(i.text_zh for i in left)}。",
                      f"{len(left)} item(s) not checked yet: {'; '.join(i.text_en for i in left)}.")
    problems_ = sum(1 for i in items if i.result == "problem")
    try:
        sig = sweeps.sign(sweep.id, building.id, who.name, body.note.strip(),
                          [i.model_dump(mode="json") for i in items], problems_)
    except SweepError:
        raise _signed_already() from None
    return ChecklistOut(id=building.id, name=building.name, items=items,
                        signed=SignedOut(by=p.names.actor(sig.by), at=utc(sig.at_ms), note=sig.note,
                                         problems=sig.problems))

