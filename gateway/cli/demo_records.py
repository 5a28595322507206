"""What the demo kindergarten's people did on the days of its history, so that the ledger,
the 留样 register and the fire patrols look lived in: the canteen manager kept two dishes of
every meal, the guard walked every fire round and his supervisor signed it, the health doctor
wiped the UV tubes weekly (and tested them when the history began), each day's manual
checks were done, and a day whose record was complete was signed by the inspector, the person
responsible and the principal.

Not every day, because that is not how schools are: one day a week ago nobody filled in
anything (the blank ledger, 台账空白, that the district's inspectors look for first), yesterday
nobody kept the afternoon snack's sample, and the last two days are not signed yet. Today,
what was due before the demo started is done but the latest meal's sample and the latest
fire round, and nobody has ticked the day's manual checks: that is left to whoever tries it.

Each record is written by the store that the dashboard writes through, on a clock set to when
the person did it, so its time and its audit entry read as if it had been done then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final

from gateway.canteen.samples import SampleRegister, served
from gateway.clock import ManualClock, to_ms
from gateway.config.samples import Meal
from gateway.reports.checks import ManualChecks, SignRole
from gateway.reports.safety import day_states, record
from gateway.reports.safety_items import always_manual, uncovered
from gateway.reports.safety_model import Category, ItemStatus
from gateway.reports.uv_care import Care, UvCare
from gateway.schedule.patrols import FirePatrols, Round

if TYPE_CHECKING:
    from gateway.alerting.alerts import AlertStore
    from gateway.auth.audit import AuditTrail
    from gateway.clock import Clock
    from gateway.config import SiteConfig
    from gateway.runtime import Gateway
    from gateway.schedule.school_calendar import SchoolCalendar
    from gateway.storage.readings import ReadingStore
    from gateway.storage.state import StateDatabase

log = logging.getLogger(__name__)

MARKER: Final = "demo-records.json"
# Who did what: the kindergarten's roster ids (simulators/kindergarten.yaml).
CANTEEN, GUARD, HEAD, PRINCIPAL = "canteen-chen", "guard-wang", "logistics-li", "principal-zhao"
DOCTOR: Final = "doctor-zhou"  # wipes the UV tubes every week and tested them when the history began
TESTED_UW_CM2: Final = 96.0
DISHES: Final = (("小米粥", "鸡蛋饼"), ("番茄炒蛋", "清蒸鲈鱼"), ("水果拼盘", "南瓜发糕"))
BLANK_DAY_AGO: Final = 6  # nobody filled in anything that day
UNSIGNED_DAYS: Final = 2  # the last days before today are not signed yet
MISSED_SAMPLE: Final = "snack"  # yesterday's snack kept no sample


def _days(first: date, today: date) -> Iterator[date]:
    day = first
    while day < today:
        yield day
        day += timedelta(days=1)


async def fill(gateway: Gateway, first: date) -> None:
    """Writes the people's records of the days from `first` to yesterday, once per data folder.
    Run after the history's readings are stored: whether a day may be signed depends on them."""
    marker = gateway.site.storage.data_dir / MARKER
    if marker.exists():
        return
    # The readings of the history in the store first: a day's record is judged from them.
    while gateway.spool.totals().pending.get("sqlite", 0) > 0:  # noqa: ASYNC110 (no event says a sink caught up)
        await asyncio.sleep(0.2)
    today = gateway.calendar.local_date(to_ms(gateway.clock.now()))
    office = _Office(gateway.site, gateway.calendar, gateway.state, gateway.audit, gateway.alerts, gateway.clock,
                     gateway.store)
    await asyncio.to_thread(_registers, office, first, today)
    await asyncio.to_thread(_today, office, today)
    signed = 0
    for day in _days(first, today):
        if day < today - timedelta(days=UNSIGNED_DAYS) and day != today - timedelta(days=BLANK_DAY_AGO):
            signed += await _sign(gateway, day)
    marker.write_text("{}")
    log.info("demo: the people's records of the history are written (%d days signed)", signed)


@dataclass(frozen=True, slots=True)
class _Office:
    """What the people's records are written with."""

    site: SiteConfig
    calendar: SchoolCalendar
    state: StateDatabase
    audit: AuditTrail
    alerts: AlertStore
    clock: Clock
    store: ReadingStore


def _stores(gw: _Office, clock: ManualClock) -> tuple[SampleRegister, FirePatrols, ManualChecks]:
    """The stores the dashboard writes through, on a clock of the demo's own."""
    return (SampleRegister(gw.state, gw.site, gw.calendar, gw.audit, clock, gw.alerts),
            FirePatrols(gw.state, gw.site, gw.calendar, gw.audit, clock, gw.alerts.apply),
            ManualChecks(gw.state, gw.site.id, gw.audit, clock))


def _keep(gw: _Office, samples: SampleRegister, patrols: FirePatrols, clock: ManualClock, day: date,
          meals: list[Meal], rounds: list[Round]) -> None:
    """The canteen manager keeps two dishes of each of `meals`; the guard walks `rounds`."""
    for meal in meals:
        dishes = DISHES[gw.site.samples.meals.index(meal) % len(DISHES)]
        for k, dish in enumerate(dishes):
            clock.set(datetime.combine(day, meal.deadline, gw.site.tz) - timedelta(minutes=40 - k))
            samples.register(day, meal.id, dish, 130 + 10 * k, samples.fridges[0].id, None, CANTEEN)
    for r in rounds:
        clock.set(datetime.fromtimestamp(r.due_ms / 1000, gw.site.tz) + timedelta(minutes=10))
        patrols.submit(day, r.id, {i.id: ("ok", "") for i in gw.site.fire_patrol.items}, GUARD)


def _tubes(gw: _Office, clock: ManualClock, first: date, today: date) -> None:
    """The health doctor's UV tube care: an irradiance test on the first day, a wipe every week."""
    care = UvCare(gw.state, gw.site, gw.audit, clock, gw.alerts, gw.store)
    for lamp in care.lamps:
        clock.set(datetime.combine(first, time(16, 50), gw.site.tz))
        care.record(lamp.id, Care.TEST, DOCTOR, TESTED_UW_CM2)
        for day in _days(first, today):
            if (day - first).days % 7 == 0:
                clock.set(datetime.combine(day, time(17, 0), gw.site.tz))
                care.record(lamp.id, Care.CLEAN, DOCTOR)


def _registers(gw: _Office, first: date, today: date) -> None:
    clock = ManualClock(gw.clock.now())
    samples, patrols, checks = _stores(gw, clock)
    for day in _days(first, today):
        if day == today - timedelta(days=BLANK_DAY_AGO):
            continue
        info = gw.calendar.day(day)
        missed = MISSED_SAMPLE if day == today - timedelta(days=1) else None
        meals = [m for m in gw.site.samples.meals if samples.fridges and served(m, info) and m.id != missed]
        _keep(gw, samples, patrols, clock, day, meals, patrols.rounds(day))
        for r in patrols.rounds(day):
            clock.set(datetime.fromtimestamp(r.due_ms / 1000, gw.site.tz) + timedelta(hours=1, minutes=10))
            patrols.sign(day, r.id, HEAD)
        for item in [*uncovered(gw.site, info), *always_manual(gw.site, info)]:
            if item.status is ItemStatus.MANUAL:
                clock.set(datetime.combine(day, time(17, 30), gw.site.tz))
                checks.complete(day, item.id, "ok", "", CANTEEN if item.category is Category.CANTEEN else GUARD)
    _tubes(gw, clock, first, today)
    for sample in samples.kept():
        if sample.discard_after_ms <= to_ms(gw.clock.now()):
            clock.set(datetime.fromtimestamp(sample.discard_after_ms / 1000, gw.site.tz) + timedelta(hours=1))
            samples.discard(sample.id, CANTEEN, None)


def _today(gw: _Office, today: date) -> None:
    """Today's samples and rounds that were due before now, but the latest of each."""
    now = gw.clock.now()
    clock = ManualClock(now)
    samples, patrols, _ = _stores(gw, clock)
    info = gw.calendar.day(today)
    meals = [m for m in gw.site.samples.meals if samples.fridges and served(m, info)
             and datetime.combine(today, m.deadline, gw.site.tz) < now]
    due = [r for r in patrols.rounds(today) if r.due_ms + 10 * 60_000 < to_ms(now)]
    _keep(gw, samples, patrols, clock, today, meals[:-1], due[:-1])


async def _sign(gw: Gateway, day: date) -> int:
    """Signs `day` in the three roles if its record has nothing blank or failed; 1 if it did."""
    [state] = day_states(gw, [day])
    found = await asyncio.to_thread(record, gw.store, gw.site, state)
    if found.counts[ItemStatus.MANUAL] or found.counts[ItemStatus.FAIL]:
        return 0
    clock = ManualClock(datetime.combine(day, time(17, 40), gw.site.tz))
    checks = ManualChecks(gw.state, gw.site.id, gw.audit, clock)
    roles: tuple[tuple[SignRole, str], ...] = (("inspector", GUARD), ("responsible", HEAD), ("review", PRINCIPAL))
    for role, who in roles:
        checks.sign(day, role, who)
        clock.advance(timedelta(minutes=20))
    return 1
