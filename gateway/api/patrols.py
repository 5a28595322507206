"""The HTTP API of the fire patrols (消防巡查): a day's rounds with their records, recording a
round, and the supervisor's signature under it.

Reading needs a viewer; recording and signing a staff login (who did it is always the
signed-in account). Handlers are `async`: the patrols raise and clear alerts, which live on
the event loop's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.access import PeopleDep, Staff, Viewer
from gateway.api.deps import CalendarDep, ClockDep, LocalDayDep, PatrolsDep, SiteDep
from gateway.api.problems import problems, refusal
from gateway.auth.people import Actor, Directory
from gateway.clock import from_ms, to_ms
from gateway.reports.fire_patrol import PatrolRegister, item_id
from gateway.reports.safety_model import ItemStatus
from gateway.schedule.patrols import ItemResult, Patrol, PatrolRefused

router = APIRouter(tags=["fire patrols"])
CHANGES = problems(400, 401, 403, 404, 409, 422)
RoundId = Annotated[str, Path(pattern=r"^([01]\d|2[0-3])[0-5]\d$", description="the round's time, HHMM: 0800")]


def _utc(ms: int) -> datetime:
    return from_ms(ms, UTC)


class ItemOut(BaseModel):
    id: str
    name_zh: str
    name_en: str


class CheckedOut(ItemOut):
    result: ItemResult
    note: str


class PatrolOut(BaseModel):
    items: list[CheckedOut] = Field(description="as patrolled, with the items' names of that day")
    patroller: Actor
    patrolled_at: datetime
    supervisor: Actor | None
    supervised_at: datetime | None

    @classmethod
    def of(cls, p: Patrol, names: Directory) -> PatrolOut:
        return cls(
            items=[CheckedOut(id=c.id, name_zh=c.zh, name_en=c.en, result=c.result, note=c.note) for c in p.items],
            patroller=names.actor(p.patroller), patrolled_at=_utc(p.patrolled_ms),
            supervisor=names.maybe(p.supervisor),
            supervised_at=None if p.supervised_ms is None else _utc(p.supervised_ms))


class RoundOut(BaseModel):
    id: str = Field(description="HHMM")
    at: str = Field(description="local time, HH:MM")
    night: bool
    due: datetime
    status: ItemStatus = Field(description="as in the daily safety record (item fire:<id>)")
    recordable: bool = Field(description="not recorded yet, and due (or nearly): it can be recorded now")
    detail_zh: str
    detail_en: str
    patrol: PatrolOut | None


class PatrolDayOut(BaseModel):
    today: date = Field(description="the site's local date now")
    date: date
    school_day: bool
    grace_min: float
    items: list[ItemOut] = Field(description="what a round checks")
    rounds: list[RoundOut] = Field(description="the day's rounds in time order")


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=32)
    result: ItemResult
    note: str = Field("", max_length=500)


class PatrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[CheckIn] = Field(max_length=50)


@router.get("/api/v1/fire-patrols", responses=problems(401, 403, 422))
async def patrol_day(
    _: Viewer, patrols: PatrolsDep, people: PeopleDep, site: SiteDep, clock: ClockDep, calendar: CalendarDep,
    day: LocalDayDep = None,
) -> PatrolDayOut:
    """The rounds of a day (today by default) with each one's state and record."""
    now = to_ms(clock.now())
    d = day or calendar.local_date(now)
    start, end = calendar.day_bounds_ms(d)
    info = calendar.day(d)
    ledger = {i.id: i for i in PatrolRegister(patrols, people).items(site, info, start, end, min(now, end))}
    records = patrols.of_day(d)
    names = people.directory()
    rounds = []
    for r in patrols.rounds(d):
        item = ledger[item_id(r)]
        record = records.get(r.id)
        rounds.append(RoundOut(id=r.id, at=r.label, night=r.round.night, due=_utc(r.due_ms), status=item.status,
                               recordable=record is None and patrols.recordable(r, now),
                               detail_zh=item.detail_zh, detail_en=item.detail_en,
                               patrol=None if record is None else PatrolOut.of(record, names)))
    return PatrolDayOut(date=d, today=calendar.local_date(now), school_day=info.school_day,
                        grace_min=site.fire_patrol.grace_min,
                        items=[ItemOut(id=i.id, name_zh=i.zh, name_en=i.en) for i in site.fire_patrol.items],
                        rounds=rounds)


@router.post("/api/v1/fire-patrols/{day}/{round_id}", responses=CHANGES)
async def record_patrol(who: Staff, patrols: PatrolsDep, people: PeopleDep, day: date, round_id: RoundId,
                        body: PatrolIn) -> PatrolOut:
    """Records a round as patrolled by the signed-in account: every item 正常 (`ok`) or 有问题
    (`problem`, with a note saying what)."""
    results: dict[str, tuple[ItemResult, str]] = {c.id: (c.result, c.note) for c in body.items}
    return PatrolOut.of(_refused(lambda: patrols.submit(day, round_id, results, who.name)), people.directory())


@router.post("/api/v1/fire-patrols/{day}/{round_id}/signature", responses=CHANGES)
async def sign_patrol(who: Staff, patrols: PatrolsDep, people: PeopleDep, day: date, round_id: RoundId) -> PatrolOut:
    """The supervisor's signature under a round's record: the signed-in account, not the patroller."""
    return PatrolOut.of(_refused(lambda: patrols.sign(day, round_id, who.name)), people.directory())


def _refused(action: Callable[[], Patrol]) -> Patrol:
    try:
        return action()
    except PatrolRefused as exc:
        raise refusal(exc.status, exc.zh, exc.en) from None

