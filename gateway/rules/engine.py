"""The rule engine: every enabled rule of the registry on every device it applies to, fed in
event time.

Rule state is per device and in memory, so the engine can be partitioned by device. Each
finding goes to the caller's `report` with its evidence: the device's recent readings of the
metric the finding names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from devices.base import Event, Sample
from gateway.rules.base import Context, Finding, Rule
from gateway.rules.registry import specs

if TYPE_CHECKING:
    from gateway.config import SiteConfig
    from gateway.schedule.school_calendar import SchoolCalendar

# Readings kept per device as evidence for work orders: at one a minute, the last four hours.
EVIDENCE_KEEP: Final = 240



@dataclass(frozen=True, slots=True)
class Evidence:
    """The readings behind a finding: its metric over the last minutes before and during it."""

    metric: str | None = None
    points: list[tuple[int, float]] = field(default_factory=list)


Report = Callable[[Finding, Evidence], object]
R = TypeVar("R", bound=Rule[Any])


class RuleEngine:
    def __init__(self, site: SiteConfig, calendar: SchoolCalendar, report: Report) -> None:
        self._report = report
        self._rules: dict[str, list[Rule[Any]]] = {}
        self._recent: dict[str, deque[tuple[int, dict[str, float]]]] = {}
        for device in site.devices:
            room = site.room(device.room)
            ctx = Context(device, room, site.building_of(room.id), calendar, site.tariffs, site.tz)
            rules: list[Rule[Any]] = []
            for spec in specs().values():
                if (params := spec.runs_on(device, room.type)) is not None:
                    rules.append(spec.detector(ctx, params))
            self._rules[device.id] = rules
            self._recent[device.id] = deque(maxlen=EVIDENCE_KEEP)

    def resume(self, open_alerts: set[tuple[str, str]]) -> None:
        """After a restart: rules whose (rule, device) alert is still open know it, so that
        they clear it when the condition ends (their other state starts afresh)."""
        for device_id, rules in self._rules.items():
            for rule in rules:
                rule.raised = (rule.name, device_id) in open_alerts

    def rule(self, device_id: str, rule_type: type[R]) -> R | None:
        """A device's instance of a rule, for what it learned (a circuit's base load, which the
        gateway saves for readers: gateway/rules/learned.py); None where the rule is off."""
        return next((r for r in self._rules.get(device_id, ()) if isinstance(r, rule_type)), None)

    def sample(self, sample: Sample, received_ms: int) -> None:
        rules = self._rules.get(sample.device_id)
        if rules is None:
            return
        self._recent[sample.device_id].append((sample.ts_ms, sample.values))
        for rule in rules:
            self._emit(rule.on_sample(sample))
            self._emit(rule.heard(received_ms))
            self._emit(rule.on_time(sample.ts_ms))

    def event(self, event: Event, received_ms: int) -> None:
        for rule in self._rules.get(event.device_id, ()):
            self._emit(rule.on_event(event))
            self._emit(rule.heard(received_ms))

    def tick(self, now_ms: int) -> None:
        """The watchdog, on the injected clock: silence."""
        for rules in self._rules.values():
            for rule in rules:
                self._emit(rule.on_clock(now_ms))

    def _emit(self, found: Finding | None) -> None:
        if found is None:
            return
        evidence = Evidence()
        if found.active and found.evidence is not None:
            key, lo = found.evidence, found.since_ms - 10 * 60_000
            evidence = Evidence(key, [(ts, values[key]) for ts, values in self._recent[found.device_id]
                                      if ts >= lo and key in values])
        self._report(found, evidence)
