"""The HTTP API of the 留样 register (gateway/canteen/samples.py): a day's meals with their
samples and what is in the sample fridges now; registering a sample and discarding one.

Reading needs a viewer; registering and discarding a staff login (or a key with the `ack`
scope), and the login is who took or discarded the sample. Refusals a person can act on (too
little kept, a meal not served that day, discarded already) come in both languages. Handlers
are `async`: the register and the alerts it raises live on the event loop's thread; the
fridges' readings are read in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.api.access import PeopleDep, Staff, Viewer
from gateway.api.deps import CalendarDep, ClockDep, LocalDayDep, SamplesDep, SiteDep, StoreDep
from gateway.api.problems import GUARDED, problems, refusal
from gateway.canteen.samples import FoodSample, retained, served
from gateway.clock import from_ms, to_ms
from gateway.config import SiteConfig
from gateway.refused import Refused
from gateway.reports.safety_model import ItemStatus, RetainedSample
from gateway.storage.readings import ReadingStore

router = APIRouter(tags=["samples"])
CHANGES = problems(400, 401, 403, 404, 409, 422)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


class FridgeOut(BaseModel):
    id: str
    name: str


class MealOut(BaseModel):
    id: str
    label_zh: str
    label_en: str
    deadline: datetime = Field(description="its samples are due by then, that day")
    served: bool
    status: ItemStatus = Field(description="as in the daily record: pass, fail (none by the deadline), pending, "
                                           "not_required (not served that day)")
    detail_zh: str
    detail_en: str
    samples: list[RetainedSample]


class SamplesDay(BaseModel):
    day: date
    as_of: datetime
    min_weight_g: float
    keep_h: float
    fridges: list[FridgeOut]
    meals: list[MealOut]
    kept: list[RetainedSample] = Field(description="in the sample fridges now, oldest first, of any day")


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date = Field(description="the meal's local date")
    meal: str = Field(max_length=32, description="a meal's id in the site's samples settings")
    dish: str = Field(min_length=1, max_length=60, pattern=r"\S", description="e.g. 番茄炒蛋")
    weight_g: float = Field(gt=0, le=5000)
    fridge: str = Field(max_length=64, description="a sample_fridge device")
    taken_at: AwareDatetime | None = Field(None, description="default: now")


class DiscardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500, description="required before discard_after")


async def _lines(store: ReadingStore, site: SiteConfig, people: PeopleDep, samples: list[FoodSample],
                 now_ms: int) -> list[RetainedSample]:
    """The samples as people read them; the fridges' readings are read in a worker thread."""
    return await asyncio.to_thread(retained, store, site, samples, people.directory(), now_ms)


@router.get("/api/v1/samples", responses=GUARDED)
async def samples_of_day(
    register: SamplesDep, store: StoreDep, site: SiteDep, clock: ClockDep, cal: CalendarDep, people: PeopleDep,
    _: Viewer, day: LocalDayDep = None,
) -> SamplesDay:
    """A day's meals (deadline, status, samples) and every sample in the fridges now."""
    now = to_ms(clock.now())
    on = day or cal.local_date(now)
    start, end = cal.day_bounds_ms(on)
    info = cal.day(on)
    items = {i.id: i for i in register.items(site, info, start, end, min(now, end))}
    of_day, kept = register.on_day(on), register.kept()
    lines = await _lines(store, site, people, [*of_day, *kept], now)
    by_id = dict(zip([x.id for x in of_day], lines[:len(of_day)], strict=True))
    meals = []
    for meal in site.samples.meals:
        item = items[f"sample:{meal.id}"]
        meals.append(MealOut(
            id=meal.id, label_zh=meal.label_zh, label_en=meal.label_en,
            deadline=from_ms(register.deadline_ms(on, meal), UTC), served=served(meal, info), status=item.status,
            detail_zh=item.detail_zh, detail_en=item.detail_en,
            samples=[by_id[x.id] for x in of_day if x.meal == meal.id]))
    return SamplesDay(
        day=on, as_of=from_ms(now, UTC), min_weight_g=site.samples.min_weight_g, keep_h=site.samples.keep_h,
        fridges=[FridgeOut(id=d.id, name=d.name or d.id) for d in register.fridges], meals=meals,
        kept=lines[len(of_day):])


@router.post("/api/v1/samples", status_code=201, responses=CHANGES)
async def register_sample(register: SamplesDep, store: StoreDep, site: SiteDep, clock: ClockDep, people: PeopleDep,
                          who: Staff, body: SampleIn) -> RetainedSample:
    """Registers one dish's sample, taken by the signed-in person."""
    taken = None if body.taken_at is None else to_ms(body.taken_at)
    try:
        sample = register.register(body.day, body.meal, body.dish.strip(), body.weight_g, body.fridge, taken,
                                   who.name)
    except Refused as exc:
        raise refusal(exc.status, exc.zh, exc.en) from None
    register.judge(to_ms(clock.now()))  # a late sample clears its alert at once
    [line] = await _lines(store, site, people, [sample], to_ms(clock.now()))
    return line


@router.post("/api/v1/samples/{sample_id}/discard", responses=CHANGES)
async def discard_sample(register: SamplesDep, store: StoreDep, site: SiteDep, clock: ClockDep, people: PeopleDep,
                         who: Staff, sample_id: Id, body: DiscardIn) -> RetainedSample:
    """Records that the signed-in person discarded the sample. Before its `discard_after` only
    with a reason, which raises the early-discard alert."""
    try:
        sample = register.discard(sample_id, who.name, body.reason)
    except Refused as exc:
        raise refusal(exc.status, exc.zh, exc.en) from None
    register.judge(to_ms(clock.now()))  # an early discard raises its alert at once
    [line] = await _lines(store, site, people, [sample], to_ms(clock.now()))
    return line
