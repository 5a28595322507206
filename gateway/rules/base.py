"""What every rule is made of: a per-device instance fed that device's readings and events
in event time, and the `Finding` it reports when its condition begins or ends.

A rule never reads the wall clock. `on_time(now_ms)` is called after each of its device's
readings with the reading's event time (deadlines are judged on it, so a replay of a month
gives the alerts of that month); rules keep the newest time they were told. Only the
watchdog's `on_clock(now_ms)`, on the injected clock, judges silence: against `heard`, the
time the gateway received the device's last message, so history fed in late is no silence.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field
from datetime import time
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from devices.base import Event, Sample
from gateway.clock import from_ms
from gateway.rules.params import RuleParams
from gateway.severity import Severity

if TYPE_CHECKING:
    from gateway.config import Building, Device, Room, Tariffs
    from gateway.schedule.school_calendar import SchoolCalendar

P = TypeVar("P", bound=RuleParams)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's report on its device: the condition began (`active`) or ended. The texts say
    what was seen, since when and, where it applies, what it cost."""

    rule: str
    device_id: str
    active: bool
    severity: Severity
    since_ms: int
    at_ms: int
    title_zh: str
    title_en: str
    detail_zh: str = ""
    detail_en: str = ""
    facts: dict[str, float | str] = field(default_factory=dict)
    evidence: str | None = None  # the metric whose recent readings back the finding


@dataclass(frozen=True, slots=True)
class Context:
    """Where a device is and what its site knows: the calendar, prices and time zone."""

    device: Device
    room: Room
    building: Building
    calendar: SchoolCalendar
    tariffs: Tariffs
    tz: ZoneInfo

    def is_open(self, ts_ms: int) -> bool:
        return self.calendar.is_open(self.building.id, ts_ms)

    @property
    def name(self) -> str:
        return self.device.name or self.device.id

    def local_time(self, ts_ms: int) -> time:
        return from_ms(ts_ms, self.tz).time()

    def clock(self, ts_ms: int) -> str:
        """Local time of day, e.g. "21:03"."""
        return from_ms(ts_ms, self.tz).strftime("%H:%M")

    def stamp(self, ts_ms: int) -> str:
        """Local date and time, e.g. "10-03 21:03"."""
        return from_ms(ts_ms, self.tz).strftime("%m-%d %H:%M")


def minutes(ms: float) -> int:
    return round(ms / 60_000)


class Rule(ABC, Generic[P]):
    """One rule on one device. Subclasses set `name` and override what they need."""

    name: ClassVar[str]
    # Room types the rule is meant for; None: every room.
    room_types: ClassVar[frozenset[str] | None] = None

    def __init__(self, ctx: Context, params: P) -> None:
        self.ctx = ctx
        self.params = params
        self.now_ms = 0
        self.raised = False

    def on_sample(self, sample: Sample) -> Finding | None:
        return None

    def on_event(self, event: Event) -> Finding | None:
        return None

    def on_time(self, now_ms: int) -> Finding | None:
        self.now_ms = max(self.now_ms, now_ms)
        return self.check_time()

    def check_time(self) -> Finding | None:
        """Conditions of event time alone (deadlines), at `self.now_ms`."""
        return None

    def heard(self, received_ms: int) -> Finding | None:
        """The gateway received a message of this device at `received_ms` (injected clock)."""
        return None

    def on_clock(self, now_ms: int) -> Finding | None:
        """The watchdog, on the injected clock."""
        return None

    def finding(self, active: bool, since_ms: int, at_ms: int, title: tuple[str, str],
                detail: tuple[str, str] = ("", ""), facts: dict[str, float | str] | None = None,
                evidence: str | None = None) -> Finding:
        self.raised = active
        return Finding(
            self.name, self.ctx.device.id, active, self.params.severity, since_ms, at_ms,
            title[0], title[1], detail[0], detail[1], facts or {}, evidence,
        )

    def clear(self, at_ms: int, facts: dict[str, float | str] | None = None,
              detail: tuple[str, str] = ("", "")) -> Finding:
        return self.finding(False, at_ms, at_ms, ("", ""), detail, facts)
