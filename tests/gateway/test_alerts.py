"""The alert store: raise, repeat and clear by (rule, device), acknowledgement, reminders and
escalation down the duty chain on the injected clock, the audit trail and persistence, on a
real state database (SQLite and PostgreSQL) and the demo kindergarten's duty roster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import BigInteger, Column, MetaData, Table, Text

from gateway.alerting.alerts import (
    Alert,
    AlertError,
    AlertFilter,
    AlertNotFound,
    AlertState,
    AlertStore,
    Notice,
    Transition,
)
from gateway.alerting.severity import Severity
from gateway.auth.audit import AuditTrail
from gateway.clock import ManualClock
from gateway.config import SiteConfig, parse
from gateway.config.duty import Person
from gateway.rules.base import Finding
from gateway.rules.engine import Evidence
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.state import ID, StateDatabase
from tests.rule_scenarios import DEMO, another_school, demo_site

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Thursday 2026-10-15 is a school day: logistics-li answers 07:00-18:00, the guard at night.
SCHOOL_MORNING = datetime(2026, 10, 15, 10, 0, tzinfo=SHANGHAI)
SCHOOL_NIGHT = datetime(2026, 10, 15, 22, 0, tzinfo=SHANGHAI)
NATIONAL_DAY = datetime(2026, 10, 2, 10, 0, tzinfo=SHANGHAI)  # a statutory holiday: the guard
MINUTE = timedelta(minutes=1)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _variant(**changes: Any) -> SiteConfig:
    """The demo site with top-level keys merged in (`duty` settings are merged, not replaced)."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    for key, value in changes.items():
        data[key] = data.get(key, {}) | value
    return parse(yaml.safe_dump(data, allow_unicode=True), "t.yaml")


@dataclass
class Harness:
    url: str
    db: StateDatabase
    site: SiteConfig
    clock: ManualClock
    audit: AuditTrail
    roster: Roster
    notices: list[Notice] = field(default_factory=list)
    raised: list[tuple[Alert, Evidence]] = field(default_factory=list)
    restarts: list[StateDatabase] = field(default_factory=list)

    def open(self) -> AlertStore:
        """A store on the test's state database."""
        return self._store(self.db)

    def restart(self) -> AlertStore:
        """A store on a database engine of its own, as another process (a replica, or this
        gateway restarted) opens it; closed at the end of the test."""
        db = StateDatabase(self.url)
        self.restarts.append(db)
        return self._store(db)

    def _store(self, db: StateDatabase) -> AlertStore:
        return AlertStore(db, self.site, AuditTrail(db, self.site.id), self.roster, self.clock, self.notices.append,
                          lambda alert, evidence: self.raised.append((alert, evidence)))

    def close(self) -> None:
        for db in self.restarts:
            db.close()

    def now_ms(self) -> int:
        return _ms(self.clock.now())

    def person(self, person_id: str) -> Person:
        return self.roster.person(person_id)

    def take(self) -> list[Notice]:
        """The notices since the last call."""
        taken = list(self.notices)
        self.notices.clear()
        return taken


def _harness(url: str, db: StateDatabase, site: SiteConfig, start: datetime = SCHOOL_MORNING) -> Harness:
    return Harness(url, db, site, ManualClock(start), AuditTrail(db, site.id), Roster(site, SchoolCalendar(site)))


@pytest.fixture
def h(state_url: str, state_db: StateDatabase) -> Iterator[Harness]:
    harness = _harness(state_url, state_db, demo_site())
    yield harness
    harness.close()


def _finding(h: Harness, rule: str = "water_leak", device: str = "kitchen-water", *, active: bool = True,
             severity: Severity = Severity.MAJOR, since: int | None = None, at: int | None = None,
             facts: dict[str, float | str] | None = None) -> Finding:
    """A finding in event time: by default it began five minutes before the clock and is seen now."""
    at_ms = h.now_ms() if at is None else at
    since_ms = at_ms - 5 * 60_000 if since is None else since
    title = ("厨房水表 夜间有流量", "Kitchen water meter: flow at night") if active else ("", "")
    return Finding(rule, device, active, severity, since_ms, at_ms, *title,
                   detail_zh="自 21:55 起" if active else "", detail_en="since 21:55" if active else "",
                   facts={} if facts is None else facts, evidence="flow_lpm" if active else None)


def _evidence(h: Harness) -> Evidence:
    now = h.now_ms()
    return Evidence("flow_lpm", [(now - 120_000, 1.5), (now - 60_000, 1.6), (now, 1.4)])


def _raise(h: Harness, store: AlertStore, rule: str = "water_leak", device: str = "kitchen-water",
           **kw: Any) -> Alert:
    alert = store.apply(_finding(h, rule, device, **kw), _evidence(h))
    assert alert is not None
    return alert


def _advance_and_tick(h: Harness, store: AlertStore, minutes: int) -> None:
    """Moves the clock one minute at a time, ticking after each, as the gateway's watchdog does."""
    for _ in range(minutes):
        h.clock.advance(MINUTE)
        store.tick()


def _timeline(h: Harness, start_ms: int, notices: list[Notice]) -> list[tuple[int, Transition, list[str], int]]:
    """(minute since start, transition, recipient ids, level) of each notice."""
    return [((n.at_ms - start_ms) // 60_000, n.transition, [p.id for p in n.recipients], n.alert.level)
            for n in notices]


# --- raise, repeat, clear -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "on_duty"),
    [
        (SCHOOL_MORNING, "logistics-li"),
        (datetime(2026, 10, 15, 7, 0, tzinfo=SHANGHAI), "logistics-li"),  # the day shift's start
        (SCHOOL_NIGHT, "guard-wang"),
        (datetime(2026, 10, 15, 6, 30, tzinfo=SHANGHAI), "guard-wang"),  # Wednesday's night shift
        (NATIONAL_DAY, "guard-wang"),
        (datetime(2026, 10, 17, 10, 0, tzinfo=SHANGHAI), "guard-wang"),  # a Saturday
    ],
)
def test_a_raise_is_stored_and_notified_to_whoever_is_on_duty_at_that_time(
        h: Harness, when: datetime, on_duty: str) -> None:
    h.clock.set(when)
    store = h.open()
    found = _finding(h, facts={"flow_lpm": 1.5, "since": "21:55"})

    alert = store.apply(found, _evidence(h))

    assert alert is not None
    assert (alert.rule, alert.device_id, alert.building_id, alert.room_id) == (
        "water_leak", "kitchen-water", "service", "kitchen")
    assert (alert.state, alert.severity, alert.count, alert.level) == (AlertState.ACTIVE, Severity.MAJOR, 1, 0)
    assert (alert.first_ms, alert.last_ms) == (found.since_ms, found.at_ms)
    assert (alert.title_zh, alert.title_en, alert.detail_zh, alert.detail_en) == (
        found.title_zh, found.title_en, found.detail_zh, found.detail_en)
    assert alert.facts == {"flow_lpm": 1.5, "since": "21:55"}
    assert (alert.acked_by, alert.acked_ms, alert.ack_comment, alert.cleared_ms) == (None, None, None, None)
    assert store.get(alert.id) == alert
    assert store.open_alerts() == [alert]
    assert h.take() == [Notice(Transition.RAISED, alert, _ms(when), (h.person(on_duty),))]


def test_a_repeat_while_open_counts_on_the_same_alert(h: Harness) -> None:
    store = h.open()
    first = _raise(h, store, facts={"flow_lpm": 1.5})
    h.take()
    h.clock.advance(3 * MINUTE)
    again = _finding(h, facts={"flow_lpm": 2.5})

    repeated = store.apply(again, _evidence(h))

    assert repeated is not None
    assert repeated.id == first.id
    assert (repeated.count, repeated.state) == (2, AlertState.ACTIVE)
    assert (repeated.first_ms, repeated.last_ms) == (first.first_ms, again.at_ms)  # began when it first began
    assert repeated.facts == {"flow_lpm": 2.5}
    assert store.get(first.id) == repeated
    assert store.find(AlertFilter()) == [repeated]  # one row
    assert h.take() == [Notice(Transition.REPEATED, repeated, h.now_ms(), (h.person("logistics-li"),))]


def test_a_clear_closes_the_alert_with_the_time_of_the_finding_and_merges_its_facts(h: Harness) -> None:
    store = h.open()
    raised = _raise(h, store, facts={"flow_lpm": 1.5, "since": "09:55"})
    h.take()
    h.clock.advance(20 * MINUTE)
    ended_at = h.now_ms() - 2 * 60_000  # event time lags the clock
    clear = _finding(h, active=False, at=ended_at, facts={"loss_m3": 0.42, "cost_yuan": 2.1, "flow_lpm": 0.0})

    cleared = store.apply(clear, Evidence())

    assert cleared is not None
    assert cleared.id == raised.id
    # The newest reading that showed the condition stays where it was: the clearing reading did not show it.
    assert (cleared.state, cleared.cleared_ms, cleared.last_ms) == (AlertState.CLEARED, ended_at, raised.last_ms)
    assert cleared.facts == {"flow_lpm": 0.0, "since": "09:55", "loss_m3": 0.42, "cost_yuan": 2.1}
    assert (cleared.title_zh, cleared.first_ms, cleared.count) == (raised.title_zh, raised.first_ms, 1)
    assert store.get(raised.id) == cleared
    assert store.open_alerts() == []
    assert h.take() == [Notice(Transition.CLEARED, cleared, h.now_ms(), ())]


def test_a_clear_without_an_open_alert_does_nothing(h: Harness) -> None:
    store = h.open()
    assert store.apply(_finding(h, active=False), Evidence()) is None
    assert h.take() == []
    assert store.find(AlertFilter()) == []


def test_a_finding_after_a_clear_opens_a_new_alert(h: Harness) -> None:
    store = h.open()
    old = _raise(h, store)
    _raise(h, store)  # a repeat
    h.clock.advance(10 * MINUTE)
    store.apply(_finding(h, active=False), Evidence())
    h.clock.advance(60 * MINUTE)
    h.take()

    new = _raise(h, store)

    assert new.id != old.id
    assert (new.count, new.state, new.level) == (1, AlertState.ACTIVE, 0)
    assert store.get(old.id).state is AlertState.CLEARED
    assert store.get(old.id).count == 2
    assert store.open_alerts() == [new]
    assert [n.transition for n in h.take()] == [Transition.RAISED]


def test_there_is_one_open_alert_per_rule_and_device(h: Harness) -> None:
    store = h.open()
    leak_kitchen = _raise(h, store, "water_leak", "kitchen-water")
    leak_teaching = _raise(h, store, "water_leak", "teaching-water")
    tap_kitchen = _raise(h, store, "running_tap", "kitchen-water")
    again = _raise(h, store, "water_leak", "teaching-water")

    assert len({leak_kitchen.id, leak_teaching.id, tap_kitchen.id}) == 3
    assert again.id == leak_teaching.id
    assert [(a.rule, a.device_id, a.count) for a in store.open_alerts()] == [
        ("water_leak", "kitchen-water", 1), ("water_leak", "teaching-water", 2), ("running_tap", "kitchen-water", 1)]
    assert leak_teaching.building_id == "teaching"
    # Clearing one leaves the others open.
    store.apply(_finding(h, "water_leak", "kitchen-water", active=False), Evidence())
    assert [a.id for a in store.open_alerts()] == [leak_teaching.id, tap_kitchen.id]


def test_another_replica_sees_the_same_open_alerts(h: Harness) -> None:
    """What the API reads of open alerts comes from the store, not one process's memory: a
    second store on the same database (another replica, or this one restarted) agrees at once."""
    writer, reader = h.open(), h.restart()
    leak = _raise(h, writer, "water_leak", "kitchen-water")
    tap = _raise(h, writer, "running_tap", "kitchen-water")
    _raise(h, writer, "water_leak", "kitchen-water")
    assert [(a.id, a.count) for a in reader.open_alerts()] == [(leak.id, 2), (tap.id, 1)]
    writer.apply(_finding(h, "water_leak", "kitchen-water", active=False), Evidence())
    assert [a.id for a in reader.open_alerts()] == [tap.id]


def test_on_raised_gets_each_raise_with_its_evidence_but_no_repeat_or_clear(h: Harness) -> None:
    store = h.open()
    evidence = _evidence(h)
    alert = store.apply(_finding(h), evidence)
    assert alert is not None
    store.apply(_finding(h), Evidence("flow_lpm", [(1, 9.0)]))
    store.apply(_finding(h, active=False), Evidence())

    assert h.raised == [(alert, evidence)]
    assert h.raised[0][1] is evidence

    again = _raise(h, store)
    assert [a.id for a, _ in h.raised] == [alert.id, again.id]


# --- reminders and escalation ----------------------------------------------------------------------


def test_reminders_start_after_remind_every_min_and_stop_at_acknowledgement(h: Harness) -> None:
    store = h.open()
    start = h.now_ms()
    alert = _raise(h, store)
    h.take()

    store.tick()  # at once: nothing
    h.clock.advance(timedelta(minutes=9, seconds=59))
    store.tick()
    assert h.take() == []

    h.clock.advance(timedelta(seconds=1))
    store.tick()
    store.tick()  # a second tick at the same time sends nothing more
    notices = h.take()
    assert _timeline(h, start, notices) == [(10, Transition.REMINDER, ["logistics-li"], 0)]
    assert notices[0].alert == alert

    h.clock.advance(2 * MINUTE)
    store.acknowledge(alert.id, "logistics-li", "在处理")
    h.take()
    _advance_and_tick(h, store, 120)
    assert h.take() == []


def test_reminders_repeat_every_remind_every_min_while_unacknowledged(state_url: str, state_db: StateDatabase,
                                                                     ) -> None:
    h = _harness(state_url, state_db, _variant(duty={"remind_every_min": 5, "escalate_after_min": 60}))
    store = h.open()
    start = h.now_ms()
    _raise(h, store)
    h.take()
    _advance_and_tick(h, store, 21)
    assert _timeline(h, start, h.take()) == [
        (m, Transition.REMINDER, ["logistics-li"], 0) for m in (5, 10, 15, 20)]


def test_escalation_walks_the_night_chain_and_stops_at_its_end(h: Harness) -> None:
    h.clock.set(SCHOOL_NIGHT)
    store = h.open()
    start = h.now_ms()
    alert = _raise(h, store)

    _advance_and_tick(h, store, 60)

    assert _timeline(h, start, h.take()) == [
        (0, Transition.RAISED, ["guard-wang"], 0),
        (10, Transition.REMINDER, ["guard-wang"], 0),
        (15, Transition.ESCALATED, ["logistics-li"], 1),
        (25, Transition.REMINDER, ["logistics-li"], 1),
        (30, Transition.ESCALATED, ["principal-zhao"], 2),
        (40, Transition.REMINDER, ["principal-zhao"], 2),
        (50, Transition.REMINDER, ["principal-zhao"], 2),
        (60, Transition.REMINDER, ["principal-zhao"], 2),
    ]
    assert store.get(alert.id).level == 2
    assert store.open_alerts()[0].level == 2


def test_escalation_in_the_day_has_one_step(h: Harness) -> None:
    store = h.open()
    start = h.now_ms()
    _raise(h, store)

    _advance_and_tick(h, store, 50)

    assert _timeline(h, start, h.take()) == [
        (0, Transition.RAISED, ["logistics-li"], 0),
        (10, Transition.REMINDER, ["logistics-li"], 0),
        (15, Transition.ESCALATED, ["principal-zhao"], 1),
        (25, Transition.REMINDER, ["principal-zhao"], 1),
        (35, Transition.REMINDER, ["principal-zhao"], 1),
        (45, Transition.REMINDER, ["principal-zhao"], 1),
    ]


def test_escalation_notice_is_for_the_next_in_the_chain_only(h: Harness) -> None:
    h.clock.set(SCHOOL_NIGHT)
    store = h.open()
    alert = _raise(h, store)
    h.take()
    h.clock.advance(15 * MINUTE)

    store.tick()

    escalated = store.get(alert.id)
    assert escalated.level == 1
    assert h.take() == [Notice(Transition.ESCALATED, escalated, h.now_ms(), (h.person("logistics-li"),))]
    # A repeat now goes to whoever the alert has reached.
    _raise(h, store)
    assert [p.id for p in h.take()[0].recipients] == ["logistics-li"]


def test_escalation_stops_after_acknowledgement(h: Harness) -> None:
    h.clock.set(SCHOOL_NIGHT)
    store = h.open()
    start = h.now_ms()
    alert = _raise(h, store)
    _advance_and_tick(h, store, 16)
    store.acknowledge(alert.id, "logistics-li", "马上到")

    _advance_and_tick(h, store, 90)

    assert [(m, t) for m, t, _, _ in _timeline(h, start, h.take())] == [
        (0, Transition.RAISED), (10, Transition.REMINDER), (15, Transition.ESCALATED), (16, Transition.ACKNOWLEDGED)]
    assert store.get(alert.id).level == 1
    assert store.get(alert.id).state is AlertState.ACKNOWLEDGED


def test_a_cleared_alert_gets_no_reminders(h: Harness) -> None:
    store = h.open()
    _raise(h, store)
    h.clock.advance(5 * MINUTE)
    store.apply(_finding(h, active=False), Evidence())
    h.take()
    _advance_and_tick(h, store, 60)
    assert h.take() == []


# --- acknowledgement -----------------------------------------------------------------------------


def test_acknowledge_stores_who_when_and_why(h: Harness) -> None:
    store = h.open()
    alert = _raise(h, store)
    h.take()
    h.clock.advance(7 * MINUTE)

    acked = store.acknowledge(alert.id, "logistics-li", "已关总阀, 等维修")

    assert (acked.state, acked.acked_by, acked.acked_ms, acked.ack_comment) == (
        AlertState.ACKNOWLEDGED, "logistics-li", h.now_ms(), "已关总阀, 等维修")
    assert acked.cleared_ms is None
    assert store.get(alert.id) == acked
    assert store.open_alerts() == [acked]
    assert h.take() == [Notice(Transition.ACKNOWLEDGED, acked, h.now_ms(), ())]
    # Still open: a repeat counts on it and keeps it acknowledged.
    repeated = _raise(h, store)
    assert (repeated.id, repeated.count, repeated.state, repeated.acked_by) == (
        alert.id, 2, AlertState.ACKNOWLEDGED, "logistics-li")


def test_a_second_acknowledgement_is_refused(h: Harness) -> None:
    store = h.open()
    alert = _raise(h, store)
    acked = store.acknowledge(alert.id, "logistics-li", "ok")
    h.take()
    h.clock.advance(MINUTE)

    with pytest.raises(AlertError, match="logistics-li") as caught:
        store.acknowledge(alert.id, "principal-zhao", "me too")

    assert not isinstance(caught.value, AlertNotFound)
    assert store.get(alert.id) == acked
    assert h.take() == []


def test_acknowledging_an_unknown_alert_is_not_found(h: Harness) -> None:
    store = h.open()
    with pytest.raises(AlertNotFound):
        store.acknowledge(4711, "logistics-li", "?")
    with pytest.raises(AlertNotFound):
        store.get(4711)
    assert h.take() == []


def test_acknowledging_a_cleared_alert_keeps_it_cleared_and_records_who(h: Harness) -> None:
    store = h.open()
    alert = _raise(h, store)
    h.clock.advance(5 * MINUTE)
    cleared = store.apply(_finding(h, active=False), Evidence())
    assert cleared is not None
    h.clock.advance(60 * MINUTE)
    h.take()

    acked = store.acknowledge(alert.id, "guard-wang", "夜里看过, 已自行停止")

    assert (acked.state, acked.acked_by, acked.acked_ms, acked.ack_comment, acked.cleared_ms) == (
        AlertState.CLEARED, "guard-wang", h.now_ms(), "夜里看过, 已自行停止", cleared.cleared_ms)
    assert store.get(alert.id) == acked
    assert store.open_alerts() == []
    assert [n.transition for n in h.take()] == [Transition.ACKNOWLEDGED]
    # A new finding is a new alert, not the cleared one.
    assert _raise(h, store).id != alert.id


# --- history and audit -----------------------------------------------------------------------------


def test_history_lists_every_transition_in_order_with_its_actor(h: Harness) -> None:
    store = h.open()
    start = h.now_ms()
    alert = _raise(h, store)
    other = _raise(h, store, "running_tap", "kitchen-water")
    h.clock.advance(2 * MINUTE)
    _raise(h, store)
    _advance_and_tick(h, store, 13)  # reminder at 10 (both alerts), escalation at 15 (both)
    store.acknowledge(alert.id, "principal-zhao", "收到")
    h.clock.advance(5 * MINUTE)
    store.apply(_finding(h, active=False), Evidence())

    history = store.history(alert.id)

    minute = [(e.at_ms - start) // 60_000 for e in history]
    assert [(e.action, e.actor) for e in history] == [
        ("alert.raised", "rule:water_leak"),
        ("alert.repeated", "rule:water_leak"),
        ("alert.reminder", "duty"),
        ("alert.escalated", "duty"),
        ("alert.acknowledged", "principal-zhao"),
        ("alert.cleared", "rule:water_leak"),
    ]
    assert minute == [0, 2, 10, 15, 15, 20]
    assert {e.target for e in history} == {f"alert:{alert.id}"}
    assert [e.id for e in history] == sorted(e.id for e in history)
    raised, repeated, reminder, escalated, acked, cleared = (dict(e.detail) for e in history)
    assert raised == {"rule": "water_leak", "device": "kitchen-water", "state": "active", "count": 1, "level": 0,
                      "to": ["logistics-li"]}
    assert (repeated["count"], reminder["to"]) == (2, ["logistics-li"])
    assert (escalated["level"], escalated["to"]) == (1, ["principal-zhao"])
    assert (acked["state"], acked["comment"]) == ("acknowledged", "收到")
    assert "to" not in acked
    assert cleared["state"] == "cleared"
    # The other alert has its own history; the audit trail holds both, newest first.
    assert [e.action for e in store.history(other.id)] == ["alert.raised", "alert.reminder", "alert.escalated"]
    assert h.audit.newest(1) == [history[-1]]
    assert h.audit.newest(5, action="alert.acknowledged") == [history[4]]
    assert h.audit.about(f"alert:{alert.id}") == list(reversed(history))


def test_history_of_an_unknown_alert_is_empty(h: Harness) -> None:
    assert h.open().history(4711) == []


# --- persistence -----------------------------------------------------------------------------------


def test_open_alerts_and_their_timers_survive_a_restart(h: Harness) -> None:
    store = h.open()
    start = h.now_ms()
    alert = _raise(h, store, facts={"flow_lpm": 1.5})
    acked = _raise(h, store, "running_tap", "kitchen-water")
    store.acknowledge(acked.id, "logistics-li", "ok")
    gone = _raise(h, store, "water_leak", "teaching-water")
    store.apply(_finding(h, "water_leak", "teaching-water", active=False), Evidence())
    _advance_and_tick(h, store, 5)
    h.take()

    reopened = h.restart()
    assert reopened.open_alerts() == [reopened.get(alert.id), reopened.get(acked.id)]
    assert reopened.open_alerts()[0] == alert
    assert reopened.get(gone.id).state is AlertState.CLEARED

    # The timers count from the raise before the restart.
    _advance_and_tick(h, reopened, 10)
    assert _timeline(h, start, h.take()) == [
        (10, Transition.REMINDER, ["logistics-li"], 0), (15, Transition.ESCALATED, ["principal-zhao"], 1)]

    again = h.restart()
    assert again.get(alert.id).level == 1
    repeated = _raise(h, again)
    assert (repeated.id, repeated.count, repeated.level) == (alert.id, 2, 1)
    assert again.get(alert.id).count == 2
    assert _raise(h, again, "running_tap", "kitchen-water").id == acked.id
    # Clearing after the restart closes the same row; the next finding is a new alert.
    again.apply(_finding(h, active=False), Evidence())
    assert _raise(h, again).id not in {alert.id, acked.id, gone.id}


def test_an_older_database_gets_the_new_columns_and_its_open_alert_is_the_sites(h: Harness) -> None:
    """A state database from before the raise moment and the site were kept: its open alert
    counts on after the upgrade."""
    old = Table("alerts", MetaData(), Column("id", ID, primary_key=True),
                *(Column(name, Text, nullable=False) for name in (
                    "rule", "device_id", "building_id", "room_id", "severity", "state", "title_zh", "title_en",
                    "detail_zh", "detail_en", "facts")),
                *(Column(name, BigInteger, nullable=False) for name in (
                    "first_ms", "last_ms", "count", "level", "notified_ms", "raised_clock_ms")),
                Column("acked_by", Text), Column("acked_ms", BigInteger), Column("ack_comment", Text),
                Column("cleared_ms", BigInteger))
    old.create(h.db.engine)
    now = h.now_ms()
    with h.db.write() as conn:
        conn.execute(old.insert().values(
            rule="water_leak", device_id="kitchen-water", building_id="service", room_id="kitchen", severity="major",
            state="active", title_zh="厨房水表 夜间有流量", title_en="Kitchen water meter: flow at night",
            detail_zh="", detail_en="", facts='{"flow_lpm": 1.5}', first_ms=now - 600_000, last_ms=now, count=3,
            level=0, notified_ms=now, raised_clock_ms=now))

    store = h.open()

    [alert] = store.open_alerts()
    assert (alert.rule, alert.device_id, alert.count, alert.facts, alert.raised_ms) == (
        "water_leak", "kitchen-water", 3, {"flow_lpm": 1.5}, None)
    repeated = _raise(h, store)
    assert (repeated.id, repeated.count) == (alert.id, 4)
    assert store.get(alert.id) == repeated


# --- sites -------------------------------------------------------------------------------------------


def test_each_school_sees_only_its_own_alerts(h: Harness) -> None:
    """Schools of a district share one database: the same rule on the same device is open at
    both, and neither reaches the other's alert, not even by its id."""
    other = _harness(h.url, h.db, another_school())
    try:
        ours, theirs = h.open(), other.open()
        mine = _raise(h, ours)
        their = _raise(other, theirs)
        assert _raise(other, theirs).id == their.id  # a repeat counts on that school's alert only
        assert mine.id != their.id
        assert ([(a.id, a.count) for a in ours.open_alerts()], [(a.id, a.count) for a in theirs.open_alerts()]) == (
            [(mine.id, 1)], [(their.id, 2)])
        assert [a.id for a in ours.find(AlertFilter())] == [mine.id]
        assert [a.id for a in ours.find(AlertFilter(device_id="kitchen-water", open_only=True))] == [mine.id]
        for store, foreign in ((ours, their.id), (theirs, mine.id)):
            with pytest.raises(AlertNotFound):
                store.get(foreign)
            with pytest.raises(AlertNotFound):
                store.acknowledge(foreign, "logistics-li", "不是我们的")
            assert store.history(foreign) == []
        assert theirs.get(their.id).acked_by is None

        # A clear at one school leaves the other's open; a restart loads its own open alerts only.
        ours.apply(_finding(h, active=False), Evidence())
        assert [a.id for a in other.restart().open_alerts()] == [their.id]
        assert (h.restart().open_alerts(), theirs.get(their.id).state) == ([], AlertState.ACTIVE)
        other.take()
        _advance_and_tick(other, theirs, 10)
        assert [(n.transition, n.alert.id) for n in other.take()] == [(Transition.REMINDER, their.id)]
    finally:
        other.close()


# --- find --------------------------------------------------------------------------------------------


def test_find_filters_and_pages_newest_first(h: Harness) -> None:
    store = h.open()
    day = _ms(SCHOOL_MORNING)
    leak = _raise(h, store, "water_leak", "kitchen-water", severity=Severity.CRITICAL, since=day - 3_600_000)
    tap = _raise(h, store, "running_tap", "kitchen-water", severity=Severity.MINOR, since=day - 1_800_000)
    teaching = _raise(h, store, "water_leak", "teaching-water", severity=Severity.MAJOR, since=day - 600_000)
    door = _raise(h, store, "door_open_too_long", "main-gate", severity=Severity.MINOR, since=day)
    store.acknowledge(tap.id, "logistics-li", "ok")
    store.apply(_finding(h, "water_leak", "teaching-water", active=False), Evidence())

    def ids(**kw: Any) -> list[int]:
        return [a.id for a in store.find(AlertFilter(**kw))]

    assert ids() == [door.id, teaching.id, tap.id, leak.id]
    assert ids(state=AlertState.ACTIVE) == [door.id, leak.id]
    assert ids(state=AlertState.ACKNOWLEDGED) == [tap.id]
    assert ids(state=AlertState.CLEARED) == [teaching.id]
    assert ids(severity=Severity.MINOR) == [door.id, tap.id]
    assert ids(severity=Severity.WARNING) == []
    assert ids(rule="water_leak") == [teaching.id, leak.id]
    assert ids(building_id="teaching") == [teaching.id]
    assert ids(building_id="service") == [door.id, tap.id, leak.id]
    assert ids(device_id="kitchen-water") == [tap.id, leak.id]
    assert ids(rule="water_leak", building_id="service", state=AlertState.ACTIVE) == [leak.id]
    # since at or after, until before, on the time the condition began
    assert ids(since_ms=day - 1_800_000) == [door.id, teaching.id, tap.id]
    assert ids(until_ms=day - 600_000) == [tap.id, leak.id]
    assert ids(since_ms=day - 1_800_000, until_ms=day) == [teaching.id, tap.id]
    assert ids(limit=2) == [door.id, teaching.id]
    assert ids(limit=2, offset=2) == [tap.id, leak.id]
    assert ids(limit=2, offset=4) == []
    assert store.find(AlertFilter(device_id="main-gate")) == [store.get(door.id)]
