"""The UV lamps' care register (gateway/reports/uv_care.py) on real stores with a ManualClock:
a tube's hours start again at a recorded change; an irradiance test is judged against the new
tube's limit first and the in-use limit after, a failing one raising its alert; the wipe and
the test fall due on their intervals, once, and clear when done; each entry is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from devices.base import Sample
from gateway import config
from gateway.alerting.alerts import AlertFilter, AlertStore
from gateway.alerting.severity import Severity
from gateway.auth.audit import AuditTrail
from gateway.clock import ManualClock, to_ms
from gateway.refused import Refused
from gateway.reports.safety_model import ItemStatus
from gateway.reports.uv_care import Care, UvCare, tube_hours
from gateway.rules.uv import lamp_settings
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.sqlite import SqliteStore
from gateway.storage.state import StateDatabase
from simulators import DEMO_SITE

MONDAY: Final = date(2026, 3, 16)
LAMP: Final = "uv-nap"
SITE: Final = config.load(DEMO_SITE)
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

    def open_alerts(self, rule: str) -> list[Any]:
        return self.alerts.find(AlertFilter(rule=rule, device_id=LAMP, open_only=True))

    def judge_at(self, when: datetime) -> None:
        self.clock.set(when)
        self.care.judge(to_ms(when))

    def item(self) -> Any:
        now = to_ms(self.clock.now())
        [found] = [i for i in self.care.items(SITE, SchoolCalendar(SITE).day(MONDAY), 0, now, now)
                   if i.id == f"uvcare:{LAMP}"]
        return found


@pytest.fixture
def room(state_db: StateDatabase) -> Room:
    clock = ManualClock(at(MONDAY, "07:00"))
    calendar = SchoolCalendar(SITE)
    audit = AuditTrail(state_db, SITE.id)
    alerts = AlertStore(state_db, SITE, audit, Roster(SITE, calendar), clock, lambda notice: None)
    return Room(clock, UvCare(state_db, SITE, audit, clock, alerts), alerts, audit)


def lamp() -> config.Device:
    found = SITE.device(LAMP)
    assert found is not None
    return found


def test_tube_hours_start_again_at_a_recorded_change(room: Room, tmp_path: Path) -> None:
    """Lit two hours each evening for three days; the tube changed on the second morning:
    the new tube has the hours of the second and third evenings alone."""
    store = SqliteStore(tmp_path / "readings.db")
    lit_per_day_min = 120
    samples = []
    for n in range(3):
        start = at(MONDAY + timedelta(days=n), "18:00")
        for minute in range(lit_per_day_min + 1):
            ts = to_ms(start + timedelta(minutes=minute))
            samples.append(Sample(LAMP, ts, {"on": float(minute < lit_per_day_min)}))
    store.write(samples, [])

    def read(device_id: str, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        return [(p.ts_ms, p.value) for p in store.points(device_id, metric, lo, hi, 100_000)]

    end = to_ms(at(MONDAY + timedelta(days=3), "07:00"))
    hold = 3 * 60_000
    assert room.care.care(lamp(), end).tube_since_ms is None
    before = tube_hours(read, lamp(), 0, end, hold)
    assert before == 3 * lit_per_day_min / 60
    room.clock.set(at(MONDAY + timedelta(days=1), "08:00"))
    room.care.record(LAMP, Care.TUBE, "wang")
    since = room.care.care(lamp(), end).tube_since_ms
    assert since == to_ms(at(MONDAY + timedelta(days=1), "08:00"))
    assert tube_hours(read, lamp(), since, end, hold) == 2 * lit_per_day_min / 60
    store.close()


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
