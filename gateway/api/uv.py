"""The HTTP API of the UV lamps' care register (gateway/reports/uv_care.py): a lamp's tube
hours, wipes and irradiance tests; recording a tube change, a wipe or a test.

Reading needs a viewer; recording a staff login (or a key with the `ack` scope), and the login
is who did it. The tube's hours are the register's count (the one the tube-life rule judges),
read from the readings in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.api.access import PeopleDep, Staff, Viewer
from gateway.api.deps import ClockDep, UvCareDep
from gateway.api.problems import GUARDED, problems, refusal
from gateway.auth.actor import Actor
from gateway.clock import from_ms, to_ms
from gateway.refused import Refused
from gateway.reports.uv_care import Care, UvCare

router = APIRouter(tags=["uv"])
CHANGES = problems(400, 401, 403, 404, 409, 422)
LampId = Annotated[str, Path(description="the lamp's device id: uv-kitchen")]


class CareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Care = Field(description="tube: a new tube fitted; clean: the tube wiped; test: the irradiance tested")
    uw_cm2: float | None = Field(None, gt=0, le=10_000, description="a test's irradiance at 1 m, µW/cm²")
    at: AwareDatetime | None = Field(None, description="when it was done; default: now")


class CareLine(BaseModel):
    action: Care
    action_zh: str
    action_en: str
    at: datetime
    by: Actor
    uw_cm2: float | None


class LampCareOut(BaseModel):
    device: str
    name: str
    tube_since: datetime | None = Field(description="the newest tube change recorded; None: none recorded")
    tube_hours: float = Field(description="lit hours since the tube was fitted (since the first reading if unknown)")
    tube_life_h: float
    tube_life_pct: int = Field(description="the tube's hours as a share of its rated life, in %")
    clean_due: datetime | None = Field(description="the next wipe is due then; None: never wiped")
    test_due: datetime | None = Field(description="the next irradiance test is due then; None: never tested")
    test_limit_uw_cm2: float | None = Field(description="what the newest test was judged against")
    test_passed: bool | None
    entries: list[CareLine] = Field(description="newest first")


async def _out(register: UvCare, people: PeopleDep, device_id: str, now_ms: int) -> LampCareOut:
    lamp = register.lamp(device_id)
    care = register.care(lamp, now_ms)
    names = people.directory()
    tube = await asyncio.to_thread(register.tube_hours, lamp, now_ms)
    return LampCareOut(
        device=lamp.id, name=lamp.name or lamp.id,
        tube_since=None if care.tube_since_ms is None else from_ms(care.tube_since_ms, UTC),
        tube_hours=tube.hours, tube_life_h=tube.life_h, tube_life_pct=tube.life_pct,
        clean_due=None if care.clean_due_ms is None else from_ms(care.clean_due_ms, UTC),
        test_due=None if care.test_due_ms is None else from_ms(care.test_due_ms, UTC),
        test_limit_uw_cm2=None if care.test is None else care.test.limit_uw_cm2,
        test_passed=None if care.test is None else care.test.passed,
        entries=[CareLine(action=e.action, action_zh=e.action.words[0], action_en=e.action.words[1],
                          at=from_ms(e.at_ms, UTC), by=names.actor(e.by), uw_cm2=e.uw_cm2)
                 for e in reversed(register.entries(lamp.id))],
    )


@router.get("/api/v1/uv/{device_id}/care", responses=GUARDED)
async def lamp_care(register: UvCareDep, clock: ClockDep, people: PeopleDep, _: Viewer,
                    device_id: LampId) -> LampCareOut:
    """A lamp's tube hours, its wipes and irradiance tests and when the next are due."""
    try:
        return await _out(register, people, device_id, to_ms(clock.now()))
    except Refused as exc:
        raise refusal(exc.status, exc.zh, exc.en) from None


@router.post("/api/v1/uv/{device_id}/care", status_code=201, responses=CHANGES)
async def record_care(register: UvCareDep, clock: ClockDep, people: PeopleDep, who: Staff,
                      device_id: LampId, body: CareIn) -> LampCareOut:
    """Records that the signed-in person changed the tube, wiped it or tested its irradiance
    (now, or at `at`); a test below the limit raises its alert (and a work order) at once."""
    try:
        register.record(device_id, body.action, who.name, body.uw_cm2, None if body.at is None else to_ms(body.at))
        return await _out(register, people, device_id, to_ms(clock.now()))
    except Refused as exc:
        raise refusal(exc.status, exc.zh, exc.en) from None

