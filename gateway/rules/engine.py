"""The rule engine: every enabled rule of the registry on every device it applies to, fed in
event time.

Rule state is per device and in memory, so the engine can be partitioned by device. Each
finding goes to the caller's `report` with its evidence: the device's recent readings of the
metric its rule cites (`Rule.evidence`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from devices import kinds
from devices.base import Event, Sample
from gateway.rules.base import Context, Finding, Rule, occupancy_sensor
from gateway.rules.registry import specs

if TYPE_CHECKING:
    from gateway.config import SiteConfig
    from gateway.schedule.school_calendar import SchoolCalendar

# Readings kept per device and cited metric as evidence for work orders: at one a minute,
# the last four hours.
EVIDENCE_KEEP: Final = 240


class _Recent:
    """A metric's newest readings of one device, at most EVIDENCE_KEEP, as two arrays (16 bytes
    a reading): every reading of every metric in a deque of dicts took 75 KB a device once
    full, 750 MB for a site of 10,000 devices."""

    __slots__ = ("_next", "_ts", "_values")

    def __init__(self) -> None:
        self._ts = array("q")
        self._values = array("d")
        self._next = 0  # once full: the oldest, overwritten next

    def append(self, ts_ms: int, value: float) -> None:
        if len(self._ts) < EVIDENCE_KEEP:
            self._ts.append(ts_ms)
            self._values.append(value)
            return
        self._ts[self._next], self._values[self._next] = ts_ms, value
        self._next = (self._next + 1) % EVIDENCE_KEEP

    def since(self, lo_ms: int) -> Iterator[tuple[int, float]]:
        """Its readings from `lo_ms` on, oldest first."""
        n = self._next
        for ts, value in zip(self._ts[n:] + self._ts[:n], self._values[n:] + self._values[:n], strict=True):
            if ts >= lo_ms:
                yield ts, value



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
        self._calendar = calendar
        self._rules: dict[str, list[Rule[Any]]] = {}
        self._room_watchers: dict[str, list[Rule[Any]]] = {}  # occupancy sensor → its room's rules that watch it
        self._cited: dict[str, tuple[str, ...]] = {}  # device → the metrics its rules cite as evidence
        self._recent: dict[tuple[str, str], _Recent] = {}  # (device, metric) → its newest readings
        self._made_from: dict[str, tuple[object, ...]] = {}  # what each device's rules were made from
        self.reconfigure(site, set())

    def reconfigure(self, site: SiteConfig, open_alerts: set[tuple[str, str]]) -> list[str]:
        """The rules as the site is configured now. A device whose rules would be made from the
        same things (itself, its room, its building, the prices, the site's rule parameters)
        keeps its rules and what they are in the middle of (a leak being timed); a new or
        changed device gets new rules, which know of its open alerts (`resume`). Returns the
        devices no longer configured, whose open alerts the caller ends."""
        rules_by_device: dict[str, list[Rule[Any]]] = {}
        made_from: dict[str, tuple[object, ...]] = {}
        sensors: dict[str, list[str]] = {}
        sensing = {name for name, kind in kinds().items() if occupancy_sensor(kind)}
        for device in site.devices:
            if device.kind in sensing:
                sensors.setdefault(device.room, []).append(device.id)
        watchers: dict[str, list[Rule[Any]]] = {}
        # Hours are the calendar's, which every rule shares and which takes them anew in place.
        shells = {b.id: b.model_copy(update={"rooms": [], "opening_hours": None}) for b in site.buildings}
        # Each kind's rules found once, not asked of every rule for every device (10,000 devices: 230,000 asks).
        kind_rules = {name: [spec for spec in specs().values() if spec.applies(name)] for name in kinds()}
        places = {r.id: (r, b) for b in site.buildings for r in b.rooms}  # not 20,000 lookups through the site: 25 ms
        for device in site.devices:
            room, building = places[device.room]
            room_sensors = tuple(s for s in sensors.get(room.id, ()) if s != device.id)
            shell = shells[building.id]
            made_from[device.id] = key = (device, room, shell, site.tariffs, site.tz, room_sensors)
            if self._made_from.get(device.id) == key:
                rules_by_device[device.id] = self._rules[device.id]
                self._watch(watchers, rules_by_device[device.id])
                continue
            ctx = Context(device, room, building, self._calendar, site.tariffs, site.tz, room_sensors)
            rules: list[Rule[Any]] = []
            for spec in kind_rules.get(device.kind, ()):
                if (params := spec.runs_on(device, room.type)) is not None:
                    rule = spec.detector(ctx, params)
                    rule.raised = (rule.name, device.id) in open_alerts
                    rules.append(rule)
            rules_by_device[device.id] = rules
            self._watch(watchers, rules)
        gone = [d for d in self._rules if d not in rules_by_device]
        self._cited = {d: tuple({r.evidence for r in rules if r.evidence is not None})
                       for d, rules in rules_by_device.items()}
        self._recent = {(d, metric): recent for (d, metric), recent in self._recent.items()
                        if metric in self._cited.get(d, ())}
        self._rules, self._made_from, self._room_watchers = rules_by_device, made_from, watchers
        return gone

    @staticmethod
    def _watch(watchers: dict[str, list[Rule[Any]]], rules: list[Rule[Any]]) -> None:
        for rule in rules:
            if rule.watch_room:
                for sensor in rule.ctx.room_sensors:
                    watchers.setdefault(sensor, []).append(rule)

    def resume(self, open_alerts: set[tuple[str, str]]) -> None:
        """After a restart or a takeover: rules whose (rule, device) alert is still open know
        it, so that they clear it when the condition ends and never raise it again (their
        other state is what `prime` gives them)."""
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
        self._remember(sample)
        for rule in rules:
            self._emit(rule.on_sample(sample))
            self._emit(rule.heard(received_ms))
            self._emit(rule.on_time(sample.ts_ms))
        for rule in self._room_watchers.get(sample.device_id, ()):
            self._emit(rule.on_room(sample))

    def _remember(self, sample: Sample) -> None:
        """A device's newest readings of the metrics its rules cite, the evidence of their
        findings; kept from its first (an empty store for each of 10,000 devices was 7 MB)."""
        for metric in self._cited.get(sample.device_id, ()):
            value = sample.values.get(metric)
            if value is not None:
                recent = self._recent.get((sample.device_id, metric))
                if recent is None:
                    recent = self._recent[(sample.device_id, metric)] = _Recent()
                recent.append(sample.ts_ms, value)

    def prime(self, sample: Sample) -> None:
        """At a start, before live messages: a device's newest stored values at their own
        time, so that a condition under way is timed from when it was seen (a door open since
        17:40) rather than from the first live message. Not a message heard now: silence is
        timed from the start, as before. Each rule's `prime` says what it makes of one
        reading (docs/district.md)."""
        rules = self._rules.get(sample.device_id)
        if rules is None:
            return
        self._remember(sample)
        for rule in rules:
            self._emit(rule.prime(sample))
        for rule in self._room_watchers.get(sample.device_id, ()):  # a door still open when it was stored
            self._emit(rule.on_room(sample))

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
            recent = self._recent.get((found.device_id, key))
            evidence = Evidence(key, list(recent.since(lo)) if recent is not None else [])
        self._report(found, evidence)
