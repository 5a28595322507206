"""What every rule is made of: its declared `RuleSpec` (id, parameters, what it applies to,
labels, severity, work-order trade), a per-device instance fed
that device's readings and events in event time, and the `Finding` it reports when its
condition begins or ends. Rule modules declare `RULES`, a tuple of specs; gateway/rules/registry.py
finds them.

A rule never reads the wall clock. `on_time(now_ms)` is called after each of its device's
readings with the reading's event time (deadlines are judged on it, so a replay of a month
gives the alerts of that month); rules keep the newest time they were told. Only the
watchdog's `on_clock(now_ms)`, on the injected clock, judges silence: against `heard`, the
time the gateway received the device's last message, so history fed in late is no silence
(and a door's limit, where the door has said nothing since it was received open in time).
At a start, `prime` gives a rule its device's newest stored reading (docs/district.md).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from devices import kinds
from devices.base import DeviceKind, Event, Label, MetricType, Sample, labels
from gateway.alerting.severity import Severity
from gateway.clock import from_ms
from gateway.rules.params import RuleParams

if TYPE_CHECKING:
    from gateway.alerting.trade import Trade
    from gateway.site import Building, Device, Room, Tariffs

P = TypeVar("P", bound=RuleParams)


class CalendarDay(Protocol):
    @property
    def school_day(self) -> bool: ...


class Calendar(Protocol):
    """What a rule reads of the school calendar (gateway/schedule/school_calendar.py)."""

    def is_open(self, building_id: str, ts_ms: int) -> bool: ...
    def local_date(self, ts_ms: int) -> date: ...
    def day_bounds_ms(self, d: date) -> tuple[int, int]: ...
    def day(self, d: date) -> CalendarDay: ...
    def closing_ms(self, building_id: str, d: date) -> int | None: ...


AppliesTo = Callable[[DeviceKind], bool]
# A rule's judge for the daily safety record: (gateway.reports.judging.Judge, Device) →
# gateway.reports.safety_model.Item. Named loosely here: those types reach the site's config
# and the alerts, which import this module, and a cycle under TYPE_CHECKING is still one.
DayJudge = Callable[[Any, "Device"], Any]


def every_kind(kind: DeviceKind) -> bool:
    """For rules on every device (silence): a kind added later is covered without a word here."""
    return True


def no_device(kind: DeviceKind) -> bool:
    """For rules about the site rather than a device (a fire patrol not done in time): the
    engine runs them on no device; their own module raises and clears their findings."""
    return False


def kind_named(*names: str) -> AppliesTo:
    """For rules that read a kind's own settings (a fridge's range, a lamp's tube life)."""
    return lambda kind: kind.name in names


def with_metric(key: str) -> AppliesTo:
    """For rules on a capability: every kind that records metric `key`."""
    return lambda kind: any(m.key == key for m in kind.metrics)


# The metrics that say someone may be in a room: a door open (people come and go), presence seen.
OCCUPANCY_METRICS: Final = ("open", "presence")


def occupancy_sensor(kind: DeviceKind) -> bool:
    return any(m.key in OCCUPANCY_METRICS for m in kind.metrics)


def occupied(values: Mapping[str, float]) -> bool | None:
    """Whether a room sensor's reading says someone may be inside; None where it says nothing."""
    said = [bool(values[k]) for k in OCCUPANCY_METRICS if k in values]
    return any(said) if said else None


def with_counter(kind: DeviceKind) -> bool:
    return any(m.type is MetricType.COUNTER for m in kind.metrics)


@dataclass(frozen=True)
class RuleSpec(Generic[P]):
    """One rule, declared by its module: everything that lists rules derives from these.

    The id is the detector's `name`; the default severity is its parameters' default; a
    trade, where given, opens a work order by default."""

    detector: type[Rule[P]]
    params: type[P]
    label_zh: str
    label_en: str
    applies_to: AppliesTo
    room_types: frozenset[str] | None = None  # None: every room
    trade: Trade | None = None
    kind_defaults: Mapping[str, Mapping[str, object]] = field(default_factory=dict)  # kind → parameters
    judge: DayJudge | None = None  # its item of the daily safety record, per device (gateway/reports/judging.py)
    _applies: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)  # kind → applies

    @property
    def id(self) -> str:
        return self.detector.name

    @property
    def severity(self) -> Severity:
        default = self.params.model_fields["severity"].default
        return Severity(default)

    def param_labels(self) -> dict[str, Label]:
        """Each parameter as people read it (label and unit), in the parameters' order."""
        return labels(self.params)

    def applies(self, kind: str) -> bool:
        known = self._applies.get(kind)
        if known is None:  # once a kind: a site's 10,000 devices ask each rule
            found = kinds().get(kind)
            known = self._applies[kind] = found is not None and self.applies_to(found)
        return known

    def resolve(self, device: Device, site_rules: Mapping[str, Mapping[str, object]]) -> P:
        """Validates this rule's parameters for `device`: its own over the site's over its
        kind's over the defaults. Done once, when the site is loaded."""
        merged = (dict(self.kind_defaults.get(device.kind, {})) | dict(site_rules.get(self.id, {}))
                  | device.rules.get(self.id, {}))
        return self.params.model_validate(merged)

    def runs_on(self, device: Device, room_type: str) -> P | None:
        """This rule's parameters where it runs on `device` (in a room of `room_type`); None
        where it does not: a kind it does not apply to, a room type it leaves out, or off."""
        if not self.applies(device.kind) or (self.room_types is not None and room_type not in self.room_types):
            return None
        params = self.params_for(device)
        return params if params.enabled else None

    def params_for(self, device: Device) -> P:
        """This rule's parameters for `device`, as validated with its site (a device outside
        a site gets its own over the defaults)."""
        found = device.rule_params.get(self.id)
        if found is None:
            found = self.resolve(device, {})
        if not isinstance(found, self.params):
            raise TypeError(f"{device.id}: parameters of {self.id} are a {type(found).__name__}")
        return found


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's report on its device: the condition began (`active`), goes on with new
    figures (`update`: its duration, loss or worst value so far; not a new occurrence) or
    ended (its final figures). The texts say what was seen, since when and, where it
    applies, what it cost."""

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
    update: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """Where a device is and what its site knows: the calendar, prices and time zone."""

    device: Device
    room: Room
    building: Building
    calendar: Calendar
    tariffs: Tariffs
    tz: ZoneInfo
    # The room's other devices that tell whether someone may be inside (a door, a presence
    # sensor: `occupancy_sensor`), for rules that `watch_room`.
    room_sensors: tuple[str, ...] = ()

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
    """One rule on one device. Subclasses set `name` (the rule's id) and override what they need."""

    name: ClassVar[str]
    # Fed its room's occupancy sensors' readings too (`on_room`): a UV lamp's room must be empty.
    watch_room: ClassVar[bool] = False
    # The metric whose recent readings back what it raises (a leak's flow): the engine keeps
    # those of its device, and no other, for the finding's evidence.
    evidence: ClassVar[str | None] = None

    def __init__(self, ctx: Context, params: P) -> None:
        self.ctx = ctx
        self.params = params
        self.now_ms = 0
        self.raised = False

    def on_sample(self, sample: Sample) -> Finding | None:
        return None

    def on_event(self, event: Event) -> Finding | None:
        return None

    def on_room(self, sample: Sample) -> Finding | None:
        """A reading of one of its room's occupancy sensors (`Context.room_sensors`), in event time."""
        return None

    def prime(self, sample: Sample) -> Finding | None:
        """The device's newest stored reading, given at a start (a takeover) before live
        messages: taken as a reading unless the rule says otherwise."""
        return self.on_sample(sample)

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
                detail: tuple[str, str] = ("", ""), facts: dict[str, float | str] | None = None) -> Finding:
        self.raised = active
        return Finding(
            self.name, self.ctx.device.id, active, self.params.severity, since_ms, at_ms,
            title[0], title[1], detail[0], detail[1], facts or {}, self.evidence if active else None,
        )

    def update(self, since_ms: int, at_ms: int, title: tuple[str, str], detail: tuple[str, str],
               facts: dict[str, float | str]) -> Finding:
        """The open condition's figures as they stand at `at_ms` (event time)."""
        return Finding(
            self.name, self.ctx.device.id, True, self.params.severity, since_ms, at_ms,
            title[0], title[1], detail[0], detail[1], facts, None, update=True,
        )

    def clear(self, at_ms: int, facts: dict[str, float | str] | None = None,
              detail: tuple[str, str] = ("", ""), title: tuple[str, str] = ("", "")) -> Finding:
        """The condition ended at `at_ms`; `title`, `detail` and `facts`, where given, are its
        final figures and replace those of the alert."""
        return self.finding(False, at_ms, at_ms, title, detail, facts)
