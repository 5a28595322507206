"""The HTTP API of alerts and the school calendar (work orders: gateway/api/work_orders.py).

Reading needs a viewer; acknowledging an alert needs a staff login or an API key with the
`ack` scope. Handlers are `async` so that they run on the event
loop's thread, like the rules that write the same tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from gateway.alerting.alerts import Alert, AlertError, AlertFilter, AlertNotFound, AlertState
from gateway.alerting.severity import Severity
from gateway.api.access import PeopleDep, Staff, Viewer
from gateway.api.deps import AlertsDep, CalendarDep, ClockDep, RosterDep, SiteDep, WorkOrdersDep
from gateway.api.problems import GUARDED, problems
from gateway.auth.people import Actor, Directory
from gateway.clock import from_ms, to_ms
from gateway.rules import registry

router = APIRouter()
Id = Annotated[int, Path(ge=1, le=2**63 - 1, description="SQLite row ids are 64-bit")]
CHANGES = problems(400, 401, 403, 404, 409, 422)  # 400: a body that is not JSON


def utc(ms: int | None) -> datetime | None:
    """Unix milliseconds as an aware UTC datetime; None stays None."""
    return None if ms is None else from_ms(ms, UTC)


if TYPE_CHECKING:
    RuleName = str  # a member of the enum below is a str
else:
    RuleName = registry.name_enum()


class AlertOut(BaseModel):
    id: int
    rule: str
    device_id: str
    building: str
    room: str
    severity: Severity
    state: AlertState
    title_zh: str
    title_en: str
    detail_zh: str
    detail_en: str
    facts: dict[str, float | str] = Field(
        description="the figures behind the texts (minutes, loss_m3, waste_kwh, cost_yuan, worst_c, …): as they "
                    "stand while the alert is active, final once it is cleared")
    # Event time: the moments of the readings, docs/alerts.md.
    first: datetime = Field(description="event time: when the condition began (its first reading)")
    raised_at: datetime | None = Field(
        description="event time: when the condition had lasted long enough to raise the alert; null for an alert "
                    "stored before this was kept")
    last: datetime = Field(description="event time: the newest reading that still showed the condition")
    count: int
    level: int
    acked_by: str | None = Field(description="the login id; acked_by_actor is how people read it")
    acked_by_actor: Actor | None
    acked_at: datetime | None = Field(description="wall clock: when a person acknowledged it")
    ack_comment: str | None
    cleared_at: datetime | None = Field(description="event time: the reading that ended the condition")
    work_order_id: int | None = Field(description="the work order opened for it, if any")

    @classmethod
    def of(cls, a: Alert, names: Directory, work_order_id: int | None) -> AlertOut:
        return cls(
            id=a.id, rule=a.rule, device_id=a.device_id, building=a.building_id, room=a.room_id,
            severity=a.severity, state=a.state, title_zh=a.title_zh, title_en=a.title_en, detail_zh=a.detail_zh,
            detail_en=a.detail_en, facts=a.facts, first=utc(a.first_ms), raised_at=utc(a.raised_ms),
            last=utc(a.last_ms), count=a.count, level=a.level, acked_by=a.acked_by,
            acked_by_actor=names.maybe(a.acked_by), acked_at=utc(a.acked_ms), ack_comment=a.ack_comment,
            cleared_at=utc(a.cleared_ms), work_order_id=work_order_id,
        )


class HistoryOut(BaseModel):
    at: datetime = Field(description="wall clock: when the gateway recorded the transition")
    actor: str
    who: Actor
    action: str
    detail: dict[str, Any]


class AlertDetail(AlertOut):
    history: list[HistoryOut]


class AckIn(BaseModel):
    comment: str = Field("", max_length=1000)


@router.get("/api/v1/alerts", tags=["alerts"], responses=GUARDED)
async def list_alerts(
    alerts: AlertsDep, work_orders: WorkOrdersDep, people: PeopleDep, _: Viewer,
    state: AlertState | None = None,
    severity: Severity | None = None,
    rule: RuleName | None = None,
    building: str | None = None,
    device: str | None = None,
    open: Annotated[bool, Query(description="only alerts not cleared yet (active or acknowledged)")] = False,
    start: Annotated[AwareDatetime | None, Query(description="alerts that began at or after")] = None,
    end: Annotated[AwareDatetime | None, Query(description="alerts that began before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AlertOut]:
    """Newest first."""
    try:
        since = None if start is None else to_ms(start)
        until = None if end is None else to_ms(end)
    except OverflowError:
        raise HTTPException(422, "start and end must lie between the years 1 and 9999") from None
    found = alerts.find(AlertFilter(state, severity, rule, building, device, since, until, open, limit, offset))
    names = people.directory()
    orders = work_orders.for_alerts([a.id for a in found])
    return [AlertOut.of(a, names, orders.get(a.id)) for a in found]


@router.get("/api/v1/alerts/{alert_id}", tags=["alerts"], responses=GUARDED)
async def get_alert(alerts: AlertsDep, work_orders: WorkOrdersDep, people: PeopleDep, _: Viewer,
                    alert_id: Id) -> AlertDetail:
    try:
        alert = alerts.get(alert_id)
    except AlertNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    names = people.directory()
    history = [HistoryOut(at=utc(e.at_ms), actor=e.actor, who=names.actor(e.actor), action=e.action,
                          detail=dict(e.detail))
               for e in alerts.history(alert_id)]
    order = work_orders.for_alerts([alert_id]).get(alert_id)
    return AlertDetail(**AlertOut.of(alert, names, order).model_dump(), history=history)


@router.post("/api/v1/alerts/{alert_id}/ack", tags=["alerts"], responses=CHANGES)
async def acknowledge(alerts: AlertsDep, work_orders: WorkOrdersDep, people: PeopleDep, who: Staff, alert_id: Id,
                      body: AckIn) -> AlertOut:
    try:
        acked = alerts.acknowledge(alert_id, who.name, body.comment)
    except AlertNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None
    return AlertOut.of(acked, people.directory(), work_orders.for_alerts([alert_id]).get(alert_id))


class SpanOut(BaseModel):
    start: datetime
    end: datetime


class BuildingDay(BaseModel):
    id: str
    name: str
    open: list[SpanOut]


class CalendarDay(BaseModel):
    date: date
    kind: str
    school_day: bool
    name_zh: str
    name_en: str
    guard_duty: bool
    source: str
    buildings: list[BuildingDay]
    on_duty: list[str] = Field(description="the duty chain at noon that day: on duty first, then who is next")


@router.get("/api/v1/calendar", tags=["calendar"], responses=GUARDED)
async def calendar(
    site: SiteDep, clock: ClockDep, school_calendar: CalendarDep, roster: RosterDep, _: Viewer,
    day: Annotated[date | None, Query(alias="date", description="default: today in the site's time zone")] = None,
) -> CalendarDay:
    """What kind of day it is and when each building is open."""
    when = day or clock.now().astimezone(site.tz).date()
    if not date(1971, 1, 1) <= when <= date(9998, 12, 31):
        raise HTTPException(422, "date must lie between 1971 and 9998")
    info = school_calendar.day(when)
    buildings = []
    for b in site.buildings:
        spans = [SpanOut(start=from_ms(lo, UTC), end=from_ms(hi, UTC))
                 for lo, hi in school_calendar.open_spans_ms(b.id, when)]
        buildings.append(BuildingDay(id=b.id, name=b.name, open=spans))
    noon = school_calendar.day_bounds_ms(when)[0] + 12 * 3_600_000
    return CalendarDay(
        date=when, kind=info.kind, school_day=info.school_day, name_zh=info.name_zh, name_en=info.name_en,
        guard_duty=info.guard_duty, source=info.source, buildings=buildings,
        on_duty=[p.name for p in roster.chain(noon)],
    )
