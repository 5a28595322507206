"""The UV lamps' care register (gateway/reports/uv_care.py) on real stores with a ManualClock:
a tube's hours start again at a recorded change, and the count kept at each midnight and
gone on from equals one count of every reading; the tube-life alert is raised at its share of
the rated life and cleared by a tube change; an irradiance test is judged against the new
tube's limit first and the in-use limit after, a failing one raising its alert; the wipe and
the test fall due on their intervals, once, and clear when done; each entry is audited."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from sqlalchemy import event

from devices.base import Sample
from gateway import config
from gateway.alerting.alerts import AlertFilter, AlertStore
from gateway.alerting.severity import Severity
from gateway.auth.audit import AuditTrail
from gateway.clock import ManualClock, to_ms
from gateway.refused import Refused
from gateway.reports.safety_model import ItemStatus
from gateway.reports.uv_care import Care, UvCare, lit_ms
from gateway.rules.health import silent_after_ms
from gateway.rules.uv import UV_TUBE_LIFE, lamp_settings
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.sqlite import SqliteStore
from gateway.storage.state import StateDatabase
from tests.rule_scenarios import site_with

MONDAY: Final = date(2026, 3, 16)
LAMP: Final = "uv-nap"
TUBE_LIFE_H: Final = 10  # a short life, so that a few evenings reach it
SITE: Final = site_with({"device_settings": {LAMP: {"tube_life_h": TUBE_LIFE_H}}})
TZ: Final = SITE.tz
HOUR_MS: Final = 3_600_000


def at(day: date, hh_mm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), TZ)


@dataclass
class Room:
    clock: ManualClock
    care: UvCare
    alerts: AlertStore
    audit: AuditTrail
    readings: SqliteStore

    def open_alerts(self, rule: str) -> list[Any]:
        return self.alerts.find(AlertFilter(rule=rule, device_id=LAMP, open_only=True))

    def judge_at(self, when: datetime) -> None:
        self.clock.set(when)
        self.care.judge(to_ms(when))

    def count_at(self, when: datetime) -> None:
        """The watchdog's pass: the tubes counted, then judged."""
        self.clock.set(when)
        self.care.judge(to_ms(when), self.care.count(to_ms(when)))

    def lit(self, day: date, minutes: int, start: str = "18:00") -> None:
        """The lamp lit `minutes` from `start` on `day`, a reading a minute, then off."""
        begin = at(day, start)
        self.readings.write([Sample(LAMP, to_ms(begin + timedelta(minutes=m)), {"on": float(m < minutes)})
                             for m in range(minutes + 1)], [])

    def item(self, day: date = MONDAY, as_of_ms: int | None = None) -> Any:
        """The lamp's care item in the daily record of `day`, as of `as_of_ms` (default now)."""
        as_of = to_ms(self.clock.now()) if as_of_ms is None else as_of_ms
        [found] = [i for i in self.care.items(SITE, SchoolCalendar(SITE).day(day), 0, as_of, as_of)
                   if i.id == f"uvcare:{LAMP}"]
        return found


@pytest.fixture
def room(state_db: StateDatabase, tmp_path: Path) -> Iterator[Room]:
    clock = ManualClock(at(MONDAY, "07:00"))
    calendar = SchoolCalendar(SITE)
    audit = AuditTrail(state_db, SITE.id)
    alerts = AlertStore(state_db, SITE, audit, Roster(SITE, calendar), clock, lambda notice: None)
    readings = SqliteStore(tmp_path / "readings.db")
    yield Room(clock, UvCare(state_db, SITE, audit, clock, alerts, readings), alerts, audit, readings)
    readings.close()


def lamp() -> config.Device:
    found = SITE.device(LAMP)
    assert found is not None
    return found


def test_tube_hours_start_again_at_a_recorded_change(room: Room) -> None:
    """Lit two hours each evening for three days; the tube changed on the second morning:
    the new tube has the hours of the second and third evenings alone."""
    lit_per_day_min = 120
    for n in range(3):
        room.lit(MONDAY + timedelta(days=n), lit_per_day_min)
    end = to_ms(at(MONDAY + timedelta(days=3), "07:00"))
    before = room.care.tube_hours(lamp(), end)
    assert (before.since_ms, before.hours) == (0, 3 * lit_per_day_min / 60)
    room.clock.set(at(MONDAY + timedelta(days=1), "08:00"))
    room.care.record(LAMP, Care.TUBE, "wang")
    after = room.care.tube_hours(lamp(), end)
    assert after.since_ms == to_ms(at(MONDAY + timedelta(days=1), "08:00"))
    assert after.hours == 2 * lit_per_day_min / 60


def test_the_count_kept_at_midnights_equals_one_count_of_every_reading(room: Room, state_db: StateDatabase) -> None:
    """Three weeks of irregular evenings (a reading a minute, sometimes a gap longer than the
    lamp's hold, sometimes a run past midnight): counted on every pass, kept at each midnight,
    or read by a register that kept nothing, the hours are those of one count of all of them."""
    rng = random.Random(20)
    for n in range(21):
        day = MONDAY + timedelta(days=n)
        start = f"{rng.randint(17, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        minutes = rng.randint(0, 150)
        room.lit(day, minutes, start)
        if rng.random() < 0.3:  # the lamp silent for a while, then heard lit again
            room.readings.write([Sample(LAMP, to_ms(at(day, "12:00")), {"on": 1.0})], [])
    hold = round(silent_after_ms(lamp()))
    every = [(p.ts_ms, p.value) for p in room.readings.points(LAMP, "on", 0, 2**62, 1_000_000)]
    passes = [at(MONDAY + timedelta(days=n), hh) for n in range(22) for hh in ("06:30", "19:15", "23:59")]
    for when in passes:
        now = to_ms(when)
        room.clock.set(when)
        assert room.care.tube_hours(lamp(), now).lit_ms == lit_ms(every, 0, now, hold), when
    end = to_ms(passes[-1])
    fresh = UvCare(state_db, SITE, room.audit, room.clock, room.alerts, room.readings)
    assert fresh.tube_hours(lamp(), end).lit_ms == lit_ms(every, 0, end, hold)
    room.clock.set(at(MONDAY + timedelta(days=9), "12:00"))
    room.care.record(LAMP, Care.TUBE, "wang")
    since = to_ms(room.clock.now())
    assert room.care.tube_hours(lamp(), end).lit_ms == lit_ms(every, since, end, hold)
    # The daily record of a day past reads that day's count, not today's; on the day of a
    # change, the new tube has nothing yet.
    day = MONDAY + timedelta(days=5)
    day_end = to_ms(datetime.combine(day + timedelta(days=1), time(), TZ))
    assert f"已点亮 {round(lit_ms(every, 0, day_end, hold) / HOUR_MS, 1):g} 小时" in room.item(day, day_end).detail_zh
    fitted_on = room.item(MONDAY + timedelta(days=9), since + HOUR_MS).detail_zh
    assert f"本灯管截至 {room.clock.now():%Y-%m-%d %H:%M} 已点亮 0 小时" in fitted_on


def test_every_pass_counts_the_readings_that_came_late(room: Room) -> None:
    """Passes a minute apart while readings come late (a spool flushed after an outage, a
    lamp's buffer sent hours later): every pass equals one count of every reading. A count
    that went on from the last pass's would miss them (tried: docs/performance.md)."""
    hold = round(silent_after_ms(lamp()))

    def passes(first: datetime, minutes: int) -> None:
        for m in range(minutes):
            now = to_ms(first + timedelta(minutes=m))
            every = [(p.ts_ms, p.value) for p in room.readings.points(LAMP, "on", 0, 2**62, 1_000_000)]
            assert room.care.tube_hours(lamp(), now).lit_ms == lit_ms(every, 0, now, hold), m

    room.lit(MONDAY, 90, "17:00")  # to 18:30
    passes(at(MONDAY, "19:00"), 45)
    # Lit again from 19:20 to 19:40, heard only at 19:50.
    room.lit(MONDAY, 20, "19:20")
    passes(at(MONDAY, "19:50"), 60)
    # Lit from 12:00 to 13:00, heard only at 20:50.
    room.lit(MONDAY, 60, "12:00")
    passes(at(MONDAY, "20:50"), 30)
    assert room.care.tube_hours(lamp(), to_ms(at(MONDAY, "21:30"))).hours == round(170 / 60, 1)


def test_a_pass_reads_the_kept_counts_once_not_lamp_by_lamp(room: Room, state_db: StateDatabase) -> None:
    """A site of 2,600 lamps asked the store for each lamp's kept count on every pass (1 s of
    a worker thread a minute): a pass now makes as many statements whatever the number of
    lamps (the kept counts read on the first pass only), and a count asked of a time before
    the newest kept one is still that time's."""
    hold = round(silent_after_ms(lamp()))
    for n in range(4):
        room.lit(MONDAY + timedelta(days=n), 60 + 10 * n)
    every = [(p.ts_ms, p.value) for p in room.readings.points(LAMP, "on", 0, 2**62, 1_000_000)]
    statements: list[str] = []

    def counted(*args: Any) -> None:
        if args[2].startswith("SELECT") and "FROM uv_tube_days" in args[2]:
            statements.append(args[2])

    event.listen(state_db.engine, "before_cursor_execute", counted)
    try:
        reads = []
        for n in (4, 5, 6):
            now = to_ms(at(MONDAY + timedelta(days=n), "07:00"))
            assert room.care.count(now)[LAMP].lit_ms == lit_ms(every, 0, now, hold)
            reads.append(len(statements))
        assert len(room.care.lamps) == 8
        assert reads == [1, 1, 1]  # asked lamp by lamp: 8, 16, 24
    finally:
        event.remove(state_db.engine, "before_cursor_execute", counted)
    earlier = to_ms(at(MONDAY + timedelta(days=2), "07:00"))
    assert room.care.tube_hours(lamp(), earlier).lit_ms == lit_ms(every, 0, earlier, hold)


def test_a_pass_over_every_lamp_judges_each_by_its_own_entries(room: Room) -> None:
    """The watchdog's pass reads every lamp's entries at once (`by_lamp`): what was recorded
    for one lamp is not another's — each lamp's care is what it is when read alone, and its
    tube's hours start at its own change."""
    other = "uv-clinic"
    room.lit(MONDAY, 120)
    room.care.record(LAMP, Care.CLEAN, "zhou")
    room.clock.set(at(MONDAY, "21:00"))
    room.care.record(other, Care.TUBE, "wang")
    room.care.record(other, Care.TEST, "wang", lamp_settings(lamp()).new_tube_min_uw_cm2 + 1)
    now = to_ms(room.clock.now())
    entries = room.care.by_lamp()
    for device in room.care.lamps:
        assert room.care.care(device, now, entries) == room.care.care(device, now)
    other_lamp = SITE.device(other)
    assert other_lamp is not None
    mine, theirs = room.care.care(lamp(), now, entries), room.care.care(other_lamp, now, entries)
    assert (mine.cleaned_ms, mine.tube_since_ms, mine.test) == (to_ms(at(MONDAY, "07:00")), None, None)
    assert (theirs.cleaned_ms, theirs.tube_since_ms, theirs.test is not None) == (None, now, True)
    tubes = room.care.count(now)
    assert (tubes[LAMP].since_ms, tubes[LAMP].hours) == (0, 2)
    assert (tubes[other].since_ms, tubes[other].lit_ms) == (now, 0)


def test_the_tube_life_alert_is_raised_at_its_share_and_cleared_by_a_tube_change(room: Room) -> None:
    """Lit two hours an evening: the life alert comes on the evening the tube passes
    `warn_at_pct` of its life (90 % of 10 h: the fifth), with its figures; a tube change
    clears it at once, and the new tube's hours start from nothing."""
    warn_h = TUBE_LIFE_H * UV_TUBE_LIFE.params_for(lamp()).warn_at_pct / 100
    evenings = 0
    while not room.open_alerts("uv_tube_life"):
        day = MONDAY + timedelta(days=evenings)
        room.lit(day, 120)
        evenings += 1
        room.count_at(at(day, "21:00"))
    assert evenings == int(warn_h // 2) + 1
    [alert] = room.open_alerts("uv_tube_life")
    assert alert.facts["tube_hours"] == 2 * evenings
    assert alert.facts["life_pct"] == round(100 * 2 * evenings / TUBE_LIFE_H)
    assert f"已点亮 {2 * evenings:g} 小时，额定寿命 {TUBE_LIFE_H:g} 小时" in alert.detail_zh
    assert "未登记过更换灯管" in alert.detail_zh
    room.count_at(at(MONDAY + timedelta(days=evenings), "09:00"))  # raised once
    assert len(room.alerts.find(AlertFilter(rule="uv_tube_life", device_id=LAMP))) == 1
    room.care.record(LAMP, Care.TUBE, "wang")
    assert room.open_alerts("uv_tube_life") == []
    room.lit(MONDAY + timedelta(days=evenings), 120)
    room.count_at(at(MONDAY + timedelta(days=evenings), "21:00"))
    assert room.open_alerts("uv_tube_life") == []
    assert room.care.tube_hours(lamp(), to_ms(room.clock.now())).hours == 2


def test_an_irradiance_test_is_judged_and_a_low_one_raises_its_alert(room: Room) -> None:
    settings = lamp_settings(lamp())
    new, in_use = settings.new_tube_min_uw_cm2, settings.min_uw_cm2
    assert new > in_use
    room.care.record(LAMP, Care.TUBE, "wang")
    between = (new + in_use) / 2  # enough for a tube in use, not for a new one
    room.clock.advance(timedelta(minutes=10))
    room.care.record(LAMP, Care.TEST, "zhou", between)
    [low] = room.open_alerts("uv_intensity_low")
    assert low.severity is Severity.MAJOR
    assert f"{between:g}" in low.detail_zh
    assert f"{new:g}" in low.detail_zh
    assert room.care.care(lamp(), to_ms(room.clock.now())).test is not None
    room.clock.advance(timedelta(minutes=10))
    room.care.record(LAMP, Care.TEST, "zhou", new + 1)  # a new tube that passes
    assert room.open_alerts("uv_intensity_low") == []
    room.clock.advance(timedelta(days=30))
    room.care.record(LAMP, Care.TEST, "zhou", between)  # the same value, now a tube in use: passes
    assert room.open_alerts("uv_intensity_low") == []
    verdict = room.care.care(lamp(), to_ms(room.clock.now())).test
    assert verdict is not None
    assert (verdict.passed, verdict.limit_uw_cm2) == (True, in_use)
    room.clock.advance(timedelta(days=30))
    room.care.record(LAMP, Care.TEST, "zhou", in_use - 1)
    assert len(room.open_alerts("uv_intensity_low")) == 1
    room.care.record(LAMP, Care.CLEAN, "zhou")
    assert room.item().status is ItemStatus.FAIL
    assert "需更换灯管" in room.item().detail_zh


def test_a_wipe_falls_due_once_and_clears_when_done(room: Room) -> None:
    every = timedelta(days=lamp_settings(lamp()).clean_every_days)
    room.care.record(LAMP, Care.CLEAN, "zhou")
    wiped = room.clock.now()
    room.judge_at(wiped + every - timedelta(minutes=1))
    assert room.open_alerts("uv_clean_due") == []
    for later in (every, every + timedelta(hours=1)):
        room.judge_at(wiped + later)
    [due] = room.open_alerts("uv_clean_due")
    assert due.first_ms == to_ms(wiped + every)
    assert room.item().status is ItemStatus.FAIL
    room.care.record(LAMP, Care.CLEAN, "zhou")
    assert room.open_alerts("uv_clean_due") == []


def test_the_half_yearly_test_falls_due_and_a_new_tube_must_be_tested(room: Room) -> None:
    every = timedelta(days=lamp_settings(lamp()).test_every_days)
    room.care.record(LAMP, Care.CLEAN, "zhou")
    room.care.record(LAMP, Care.TEST, "zhou", 100)
    tested = room.clock.now()
    room.judge_at(tested + every - timedelta(hours=1))
    assert room.open_alerts("uv_test_due") == []
    room.care.record(LAMP, Care.CLEAN, "zhou")
    assert room.item().status is ItemStatus.PASS
    room.judge_at(tested + every)
    assert len(room.open_alerts("uv_test_due")) == 1
    room.care.record(LAMP, Care.TEST, "zhou", 100)
    assert room.open_alerts("uv_test_due") == []
    room.clock.advance(timedelta(days=1))
    room.care.record(LAMP, Care.TUBE, "wang")  # the test was of the old tube
    assert len(room.open_alerts("uv_test_due")) == 1
    assert "新灯管未做强度检测" in room.item().detail_zh


def test_nothing_recorded_asks_a_person_and_raises_nothing(room: Room) -> None:
    room.judge_at(at(MONDAY, "20:00"))
    assert room.item().status is ItemStatus.MANUAL
    assert [room.open_alerts(r) for r in ("uv_clean_due", "uv_test_due", "uv_intensity_low")] == [[], [], []]


def test_entries_are_refused_without_what_they_need_and_audited_with_who(room: Room) -> None:
    with pytest.raises(Refused) as no_value:
        room.care.record(LAMP, Care.TEST, "zhou")
    assert no_value.value.status == 409
    with pytest.raises(Refused) as not_a_lamp:
        room.care.record("main-gate", Care.CLEAN, "zhou")
    assert not_a_lamp.value.status == 404
    entry = room.care.record(LAMP, Care.TEST, "zhou", 88.5)
    [audited] = room.audit.about(f"uv_care:{entry.id}")
    assert (audited.actor, audited.action) == ("zhou", "uv.test")
    assert [(e.action, e.by, e.uw_cm2) for e in room.care.entries(LAMP)] == [(Care.TEST, "zhou", 88.5)]
