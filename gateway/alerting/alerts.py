"""Alerts: one lifecycle for every rule (active → acknowledged → cleared), one active alert
per (rule, device) with an occurrence count, reminders and escalation up the duty roster.
Every transition is kept in the alert's history and in the audit trail, and handed to the
notifier, which never blocks the caller."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Column, ColumnElement, Index, Integer, Select, Table, Text, select

from gateway.alerting.severity import Severity
from gateway.auth.audit import AuditEntry, AuditTrail
from gateway.clock import Clock, to_ms
from gateway.config.duty import Person
from gateway.rules.base import Finding
from gateway.storage.state import ID, METADATA, StateDatabase, of_site

if TYPE_CHECKING:
    from gateway.config import SiteConfig
    from gateway.rules.engine import Evidence
    from gateway.schedule.roster import Roster


class AlertState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class Transition(StrEnum):
    """What happened to an alert; each is one history entry and one notice."""

    RAISED = "raised"
    UPDATED = "updated"  # new figures while open (duration, loss): for live views, not a message to people
    REPEATED = "repeated"  # raised again while still open: the occurrence count went up
    REMINDER = "reminder"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule: str
    device_id: str
    building_id: str
    room_id: str
    severity: Severity
    state: AlertState
    # What was seen, since when and what it costs, in both languages, e.g.
    # "厨房门 在闭园时段开着 (自 21:03 起, 已 12 分钟)".
    title_zh: str
    title_en: str
    detail_zh: str
    detail_en: str
    # The numbers behind the text: since_ms, minutes, loss_m3, cost_yuan, … as they stand while
    # the alert is active, its final figures once cleared.
    facts: dict[str, float | str]
    # Event time (the readings' timestamps), docs/alerts.md: when the condition began, the
    # newest reading that still showed it, when it was raised and cleared.
    first_ms: int
    last_ms: int
    count: int  # occurrences while open
    level: int = 0  # escalation level: index into the duty chain
    acked_by: str | None = None
    acked_ms: int | None = None
    ack_comment: str | None = None
    cleared_ms: int | None = None
    raised_ms: int | None = None  # None for an alert stored before the raise moment was kept


@dataclass(frozen=True, slots=True)
class Notice:
    """One transition of an alert for the notification channels, with whom it is for: the
    person on duty for `raised`/`reminder`, the next in the chain for `escalated`."""

    transition: Transition
    alert: Alert
    at_ms: int
    recipients: tuple[Person, ...] = field(default=())


def notice_json(notice: Notice) -> str:
    """A notice as JSON text, for the notifications' outbox: `notice_from_json` gives it back
    equal, field for field."""
    return json.dumps({
        "transition": notice.transition.value,
        "alert": asdict(notice.alert),
        "at_ms": notice.at_ms,
        "recipients": [p.model_dump(mode="json") for p in notice.recipients],
    }, ensure_ascii=False)


def notice_from_json(text: str) -> Notice:
    """The notice `notice_json` wrote; ValueError when the text is not one (a row written by a
    version whose notices had other fields)."""
    try:
        document = json.loads(text)
        alert = document["alert"]
        return Notice(
            Transition(document["transition"]),
            Alert(**alert | {"severity": Severity(alert["severity"]), "state": AlertState(alert["state"])}),
            document["at_ms"],
            tuple(Person.model_validate(p) for p in document["recipients"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a notice: {exc!r}") from exc


ALERTS = Table(
    "alerts", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),  # unique across sites
    Column("rule", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("building_id", Text, nullable=False),
    Column("room_id", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("title_zh", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("detail_zh", Text, nullable=False),
    Column("detail_en", Text, nullable=False),
    Column("facts", Text, nullable=False),  # a JSON object
    Column("first_ms", BigInteger, nullable=False),  # event time
    Column("last_ms", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("level", Integer, nullable=False),
    Column("acked_by", Text),
    Column("acked_ms", BigInteger),
    Column("ack_comment", Text),
    Column("cleared_ms", BigInteger),
    Column("raised_ms", BigInteger),  # event time of the raise; NULL in rows stored before it was kept
    Column("notified_ms", BigInteger, nullable=False),  # the clock's time of the last notice to a person
    Column("raised_clock_ms", BigInteger, nullable=False),
    Column("site", Text, nullable=False, server_default=""),
    Index("alerts_first", "first_ms"),
)
# One open alert per (rule, device) of a site. A state database of a single site from before
# sites were recorded keeps its index on (rule, device_id): the same, for its one site.
_OPEN: Final = ALERTS.c.state != AlertState.CLEARED.value
Index("alerts_open", ALERTS.c.site, ALERTS.c.rule, ALERTS.c.device_id, unique=True, sqlite_where=_OPEN,
      postgresql_where=_OPEN)

_COLUMNS: Final = (ALERTS.c.id, ALERTS.c.rule, ALERTS.c.device_id, ALERTS.c.building_id, ALERTS.c.room_id,
                   ALERTS.c.severity, ALERTS.c.state, ALERTS.c.title_zh, ALERTS.c.title_en, ALERTS.c.detail_zh,
                   ALERTS.c.detail_en, ALERTS.c.facts, ALERTS.c.first_ms, ALERTS.c.last_ms, ALERTS.c.count,
                   ALERTS.c.level, ALERTS.c.acked_by, ALERTS.c.acked_ms, ALERTS.c.ack_comment, ALERTS.c.cleared_ms,
                   ALERTS.c.raised_ms)


class AlertError(Exception):
    """A request the alert's state does not allow."""


class AlertNotFound(AlertError):
    pass


@dataclass(frozen=True, slots=True)
class AlertFilter:
    state: AlertState | None = None
    severity: Severity | None = None
    rule: str | None = None
    building_id: str | None = None
    device_id: str | None = None
    since_ms: int | None = None  # first_ms at or after
    until_ms: int | None = None  # first_ms before
    open_only: bool = False  # active or acknowledged, not cleared
    limit: int | None = 100  # None: all
    offset: int = 0


@dataclass(slots=True)
class _Timers:
    notified_ms: int  # clock
    raised_clock_ms: int


class AlertStore:
    """The alerts of one site in the state database (their ids are unique across sites). Open
    alerts (active or acknowledged) are also held in memory by (rule, device), so applying a
    finding costs no query. Called from the event loop's thread only; every transition is one
    transaction, then one audit entry, then one notice."""

    def __init__(self, db: StateDatabase, site: SiteConfig, audit: AuditTrail, roster: Roster, clock: Clock,
                 notify: Callable[[Notice], None],
                 on_raised: Callable[[Alert, Evidence], object] | None = None) -> None:
        db.create(ALERTS, site=site.id)
        self._db = db
        self._site_id = site.id
        self._site = site
        self._audit = audit
        self._roster = roster
        self._clock = clock
        self._notify = notify
        self._on_raised = on_raised
        self._duty = site.duty
        self._open: dict[tuple[str, str], Alert] = {}
        self._timers: dict[int, _Timers] = {}
        query = select(*_COLUMNS, ALERTS.c.notified_ms, ALERTS.c.raised_clock_ms).where(self._mine(), _OPEN)
        with db.read() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            alert = _alert(row[:21])
            self._open[alert.rule, alert.device_id] = alert
            self._timers[alert.id] = _Timers(row[21], row[22])

    def _mine(self, alert_id: int | None = None) -> ColumnElement[bool]:
        return of_site(ALERTS, self._site_id, alert_id)

    def _set(self, alert_id: int, **values: object) -> None:
        with self._db.write() as conn:
            conn.execute(ALERTS.update().where(self._mine(alert_id)).values(**values))

    def reconfigure(self, site: SiteConfig) -> None:
        self._site = site
        self._duty = site.duty

    def retire(self, device_id: str, at_ms: int) -> None:
        """A device taken out of service: its open alerts end, saying why."""
        for (rule, device), alert in list(self._open.items()):
            if device == device_id:
                retired = Finding(rule, device_id, False, alert.severity, alert.first_ms, at_ms, "", "",
                                  "设备已停用，不再监测。", "The device was retired; it is no longer watched.")
                self._clear(alert, retired)

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    # --- findings --------------------------------------------------------------------------

    def apply(self, found: Finding, evidence: Evidence) -> Alert | None:
        """A rule's finding: raise, update the figures, count a repeat, or clear. Returns the
        alert it touched."""
        key = (found.rule, found.device_id)
        current = self._open.get(key)
        if not found.active:
            if current is None:
                return None
            return self._clear(current, found)
        if found.update:
            return None if current is None else self._update(current, found)
        if current is not None:
            return self._repeat(current, found)
        return self._raise(found, evidence)

    def _raise(self, found: Finding, evidence: Evidence) -> Alert:
        device = self._site.device(found.device_id)
        # A finding about no device (a fire patrol not done) is the whole site's: no building, no room.
        building, room = ("", "") if device is None else (self._site.building_of(device.room).id, device.room)
        now = self._now_ms()
        with self._db.write() as conn:
            alert_id: int = conn.execute(ALERTS.insert().returning(ALERTS.c.id).values(
                rule=found.rule, device_id=found.device_id, building_id=building, room_id=room,
                severity=found.severity.value, state=AlertState.ACTIVE.value, title_zh=found.title_zh,
                title_en=found.title_en, detail_zh=found.detail_zh, detail_en=found.detail_en, facts=_json(found.facts),
                first_ms=found.since_ms, last_ms=found.at_ms, count=1, level=0, raised_ms=found.at_ms, notified_ms=now,
                raised_clock_ms=now, site=self._site_id,
            )).scalar_one()
        alert = Alert(alert_id, found.rule, found.device_id, building, room, found.severity,
                      AlertState.ACTIVE, found.title_zh, found.title_en, found.detail_zh, found.detail_en,
                      dict(found.facts), found.since_ms, found.at_ms, 1, raised_ms=found.at_ms)
        self._open[found.rule, found.device_id] = alert
        self._timers[alert_id] = _Timers(now, now)
        self._transition(alert, Transition.RAISED, now, f"rule:{found.rule}", self._on_duty(0, now))
        if self._on_raised is not None:
            self._on_raised(alert, evidence)
        return alert

    def _repeat(self, alert: Alert, found: Finding) -> Alert:
        updated = replace(alert, count=alert.count + 1, last_ms=found.at_ms, title_zh=found.title_zh,
                          title_en=found.title_en, detail_zh=found.detail_zh, detail_en=found.detail_en,
                          facts=dict(found.facts))
        self._set(alert.id, count=updated.count, last_ms=updated.last_ms, title_zh=updated.title_zh,
                  title_en=updated.title_en, detail_zh=updated.detail_zh, detail_en=updated.detail_en,
                  facts=_json(updated.facts))
        self._open[alert.rule, alert.device_id] = updated
        now = self._now_ms()
        self._transition(updated, Transition.REPEATED, now, f"rule:{found.rule}", self._on_duty(alert.level, now))
        return updated

    def _update(self, alert: Alert, found: Finding) -> Alert:
        """New figures of an open alert: stored, and told to live views only (no message, no
        audit entry: the figures of a leak change with every reading)."""
        updated = replace(alert, last_ms=max(alert.last_ms, found.at_ms), title_zh=found.title_zh,
                          title_en=found.title_en, detail_zh=found.detail_zh, detail_en=found.detail_en,
                          facts=alert.facts | dict(found.facts))
        if updated == alert:
            return alert
        self._set(alert.id, last_ms=updated.last_ms, title_zh=updated.title_zh, title_en=updated.title_en,
                  detail_zh=updated.detail_zh, detail_en=updated.detail_en, facts=_json(updated.facts))
        self._open[alert.rule, alert.device_id] = updated
        self._notify(Notice(Transition.UPDATED, updated, self._now_ms()))
        return updated

    def _clear(self, alert: Alert, found: Finding) -> Alert:
        """The condition ended: its final figures (title, detail and facts where the rule gives
        them) replace the running ones; `last_ms` stays the newest reading that showed it."""
        facts = alert.facts | dict(found.facts)
        updated = replace(alert, state=AlertState.CLEARED, cleared_ms=found.at_ms, facts=facts,
                          title_zh=found.title_zh or alert.title_zh, title_en=found.title_en or alert.title_en,
                          detail_zh=found.detail_zh or alert.detail_zh, detail_en=found.detail_en or alert.detail_en)
        self._set(alert.id, state=AlertState.CLEARED.value, cleared_ms=found.at_ms, facts=_json(facts),
                  title_zh=updated.title_zh, title_en=updated.title_en, detail_zh=updated.detail_zh,
                  detail_en=updated.detail_en)
        del self._open[alert.rule, alert.device_id]
        self._timers.pop(alert.id, None)
        self._transition(updated, Transition.CLEARED, self._now_ms(), f"rule:{found.rule}", ())
        return updated

    # --- people ----------------------------------------------------------------------------

    def acknowledge(self, alert_id: int, who: str, comment: str) -> Alert:
        alert = self.get(alert_id)
        if alert.acked_by is not None:
            raise AlertError(f"alert {alert_id} was acknowledged already, by {alert.acked_by}")
        now = self._now_ms()
        state = AlertState.CLEARED if alert.state is AlertState.CLEARED else AlertState.ACKNOWLEDGED
        updated = replace(alert, state=state, acked_by=who, acked_ms=now, ack_comment=comment)
        self._set(alert_id, state=state.value, acked_by=who, acked_ms=now, ack_comment=comment)
        if state is AlertState.ACKNOWLEDGED:
            self._open[alert.rule, alert.device_id] = updated
        self._transition(updated, Transition.ACKNOWLEDGED, now, who, (), {"comment": comment})
        return updated

    def tick(self) -> None:
        """Reminders and escalation of unacknowledged alerts, on the injected clock."""
        now = self._now_ms()
        remind_ms = self._duty.remind_every_min * 60_000
        escalate_ms = self._duty.escalate_after_min * 60_000
        for alert in list(self._open.values()):
            if alert.state is not AlertState.ACTIVE:
                continue
            timers = self._timers[alert.id]
            level = int((now - timers.raised_clock_ms) // escalate_ms)
            chain = self._roster.chain(now)
            if level > alert.level and alert.level + 1 < len(chain):
                updated = replace(alert, level=alert.level + 1)
                self._notified(updated, now)
                self._transition(updated, Transition.ESCALATED, now, "duty", (chain[updated.level],))
            elif now - timers.notified_ms >= remind_ms:
                self._notified(alert, now)
                self._transition(alert, Transition.REMINDER, now, "duty", self._on_duty(alert.level, now))

    def _notified(self, alert: Alert, now: int) -> None:
        self._set(alert.id, notified_ms=now, level=alert.level)
        self._timers[alert.id].notified_ms = now
        self._open[alert.rule, alert.device_id] = alert

    def _on_duty(self, level: int, now: int) -> tuple[Person, ...]:
        chain = self._roster.chain(now)
        return chain[min(level, len(chain) - 1):][:1] if chain else ()

    def _transition(self, alert: Alert, what: Transition, now: int, actor: str, to: tuple[Person, ...],
                    extra: dict[str, object] | None = None) -> None:
        detail: dict[str, object] = {"rule": alert.rule, "device": alert.device_id, "state": alert.state,
                                     "count": alert.count, "level": alert.level}
        if to:
            detail["to"] = [p.id for p in to]
        self._audit.record(now, actor, f"alert.{what}", f"alert:{alert.id}", detail | (extra or {}))
        self._notify(Notice(what, alert, now, to))

    # --- reading ---------------------------------------------------------------------------

    def get(self, alert_id: int) -> Alert:
        """The site's alert `alert_id`; another site's is as unknown as a missing one."""
        with self._db.read() as conn:
            row = conn.execute(select(*_COLUMNS).where(self._mine(alert_id))).one_or_none()
        if row is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return _alert(row)

    def open_alerts(self) -> list[Alert]:
        """The alerts not cleared, oldest first, from the store: what another replica, or this
        one after a restart, answers too (the memory of open alerts is the rules' working copy)."""
        return self._select(select(*_COLUMNS).where(self._mine(), _OPEN).order_by(ALERTS.c.id))

    def find(self, f: AlertFilter) -> list[Alert]:
        c = ALERTS.c
        query = select(*_COLUMNS).where(self._mine())
        for column, value in ((c.state, f.state), (c.severity, f.severity), (c.rule, f.rule),
                              (c.building_id, f.building_id), (c.device_id, f.device_id)):
            if value is not None:
                query = query.where(column == value)
        if f.since_ms is not None:
            query = query.where(c.first_ms >= f.since_ms)
        if f.until_ms is not None:
            query = query.where(c.first_ms < f.until_ms)
        if f.open_only:
            query = query.where(_OPEN)
        return self._select(query.order_by(c.id.desc()).limit(f.limit).offset(f.offset))

    def _select(self, query: Select[Any]) -> list[Alert]:
        with self._db.read() as conn:
            return [_alert(row) for row in conn.execute(query)]

    def history(self, alert_id: int) -> list[AuditEntry]:
        return list(reversed(self._audit.about(f"alert:{alert_id}")))


def _json(facts: Mapping[str, object]) -> str:
    return json.dumps(dict(facts), ensure_ascii=False, sort_keys=True)


def _alert(row: Sequence[Any]) -> Alert:
    (id_, rule, device, building, room, severity, state, tzh, ten, dzh, den, facts, first, last, count, level,
     acked_by, acked_ms, comment, cleared, raised) = row
    return Alert(id_, rule, device, building, room, Severity(severity), AlertState(state), tzh, ten, dzh, den,
                 json.loads(facts), first, last, count, level, acked_by, acked_ms, comment, cleared, raised)
