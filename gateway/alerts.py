"""Alerts: one lifecycle for every rule (active → acknowledged → cleared), one active alert
per (rule, device) with an occurrence count, reminders and escalation up the duty roster.
Every transition is kept in the alert's history and in the audit trail, and handed to the
notifier, which never blocks the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from gateway.roster import Person


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for warning: compare with `>=` for "at least"."""
        return _RANKS[self]


_RANKS: Final = {Severity.CRITICAL: 3, Severity.MAJOR: 2, Severity.MINOR: 1, Severity.WARNING: 0}


class AlertState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class Transition(StrEnum):
    """What happened to an alert; each is one history entry and one notice."""

    RAISED = "raised"
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
    facts: dict[str, float | str]  # the numbers behind the text: since_ms, loss_m3, cost_yuan, …
    first_ms: int  # event time the condition began
    last_ms: int  # event time of the newest occurrence or update
    count: int  # occurrences while open
    level: int = 0  # escalation level: index into the duty chain
    acked_by: str | None = None
    acked_ms: int | None = None
    ack_comment: str | None = None
    cleared_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One transition of an alert for the notification channels, with whom it is for: the
    person on duty for `raised`/`reminder`, the next in the chain for `escalated`."""

    transition: Transition
    alert: Alert
    at_ms: int
    recipients: tuple[Person, ...] = field(default=())
