"""Faults injected into a simulated site's messages, for scenario tests of alert rules.

A fault is a small frozen description: what goes wrong, on which device, over which window
[start, end) of aware datetimes. `inject(messages, faults, site)` rewrites the stream of
`SiteSimulation.messages` lazily (a month of messages is never held in memory) and keeps it
physically consistent: a leak shows as extra flow while it lasts and as extra volume on the
meter from then on, a lamp that did not run adds no tube hours, and so on.

Choices:

- `inject` takes the site. It checks every fault against the site's devices up front (an
  unknown device or a fault that does not fit the device's kind is a `ValueError` naming the
  device), and stamps inserted events in the site's time zone. Rewritten messages keep their
  `ts` and payload `ts` untouched, so the two always agree.
- Faults apply in the order given, each to the output of the previous ones, and to inserted
  events as well (a `Silence` drops an `Access` inside its window).
- A fault's description is immutable and reusable; what it has to remember while a stream
  passes (a counter's value at the start of the window) lives in a `Memo` that `inject` makes
  fresh for every fault on every call.
- `LampSkipped`, `LampOn` and `CounterReset` read the counter at the first tick they see at or
  after their start, so the stream should begin before the fault does. (A stream that begins
  after a `LampSkipped` day keeps its counter; one that begins after a `LampOn` window counts
  the whole window as extra, as if the lamp would otherwise have been off.)
- Inserted events come out in time order wherever they fall, also before the first or after
  the last message of the stream; at equal times they come before the stream's message.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from operator import attrgetter
from typing import ClassVar, Final

from devices import kinds
from gateway.config import SiteConfig
from simulators.model import UV_LAMP_W, SimMessage, number

_COUNTERS: Final = ("energy_kwh", "volume_m3", "lamp_hours")
_POWER_FACTOR: Final = 0.95  # the model's electricity meters: three balanced phases


@dataclass
class Memo:
    """What one fault remembers of the stream during one `inject` call."""

    anchor: float | None = None  # the counter at the first tick at or after the start
    offset: float | None = None  # what the fault adds to the counter once it is over


@dataclass(frozen=True)
class Fault(ABC):
    """A fault on one device. Subclasses say which of the simulator's behaviours they fit
    (`simulators.model.BEHAVIOURS`; empty: any): a fault rewrites the fields that a behaviour's
    model sends, so it fits every kind the simulator drives that way."""

    device_id: str
    fits: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        """The message as the faulty device sends it, or None when it sends nothing. Only
        messages of `device_id` are passed in."""

    def inserted(self, tz: tzinfo) -> Iterable[SimMessage]:
        """Messages the fault adds to the stream, stamped in the site's time zone."""
        return ()


@dataclass(frozen=True)
class _Windowed(Fault):
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"{self.device_id}: the window of {type(self).__name__} must be timezone-aware")
        if self.start >= self.end:
            raise ValueError(f"{self.device_id}: {type(self).__name__} must start before it ends")

    def _during(self, message: SimMessage) -> bool:
        return self.start <= message.ts < self.end

    def _elapsed_s(self, message: SimMessage) -> float:
        """Seconds of the window gone by at the message, 0 before it and all of it after."""
        return max(0.0, (min(message.ts, self.end) - self.start).total_seconds())


# --- Meters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leak(_Windowed):
    """A water leak of `lpm` litres a minute on top of the normal flow."""

    lpm: float
    fits: ClassVar[frozenset[str]] = frozenset({"metered_water"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lpm <= 0:
            raise ValueError(f"{self.device_id}: a leak must have a positive flow, not {self.lpm} L/min")

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or message.ts < self.start:
            return message
        payload = message.payload
        # The meter keeps the lost water for ever after, so the counter stays monotonic.
        leaked_m3 = self.lpm * self._elapsed_s(message) / 60 / 1000
        fields: dict[str, object] = {"volume_m3": round(number(payload, "volume_m3") + leaked_m3, 3)}
        if self._during(message) and "flow_lpm" in payload:
            fields["flow_lpm"] = round(number(payload, "flow_lpm") + self.lpm, 1)
        return _with(message, fields)


@dataclass(frozen=True)
class ExtraLoad(_Windowed):
    """An extra load of `watts` left running: a heater or lights left on; from 1500 W up, a
    high-power appliance."""

    watts: float
    fits: ClassVar[frozenset[str]] = frozenset({"metered_electricity"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.watts <= 0:
            raise ValueError(f"{self.device_id}: an extra load must draw a positive power, not {self.watts} W")

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or message.ts < self.start:
            return message
        payload = message.payload
        used_kwh = self.watts * self._elapsed_s(message) / 3600 / 1000
        fields: dict[str, object] = {"energy_kwh": round(number(payload, "energy_kwh") + used_kwh, 3)}
        if self._during(message):
            if "power_w" in payload:
                fields["power_w"] = round(number(payload, "power_w") + self.watts, 1)
            if "current_a" in payload and "voltage_v" in payload:
                extra_a = self.watts / (3 * number(payload, "voltage_v") * _POWER_FACTOR)
                fields["current_a"] = round(number(payload, "current_a") + extra_a, 2)
        return _with(message, fields)


@dataclass(frozen=True)
class CounterReset(Fault):
    """The meter is replaced at `at`: its counter (energy, volume or lamp hours) restarts from 0
    at the first tick at or after `at`."""

    at: datetime
    fits: ClassVar[frozenset[str]] = frozenset({"metered_electricity", "metered_water", "uv_session"})

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"{self.device_id}: the time of CounterReset must be timezone-aware")

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or message.ts < self.at:
            return message
        key = next((k for k in _COUNTERS if k in message.payload), None)
        if key is None:
            return message
        value = number(message.payload, key)
        if memo.offset is None:
            memo.offset = -value
        return _with(message, {key: round(value + memo.offset, 3)})


# --- UV lamps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LampOverride(Fault):
    """A lamp forced on or off for a while. While forced, the tube hours run on at 1 h/h from the
    start (on) or stand still (off), from their value at the first tick of the override;
    afterwards the counter carries the difference to what the lamp really did for ever after."""

    forced_on: ClassVar[bool]

    @abstractmethod
    def _during(self, message: SimMessage) -> bool: ...

    @abstractmethod
    def _over(self, message: SimMessage) -> bool: ...

    @abstractmethod
    def _forced_hours(self, until: datetime) -> float:
        """Tube hours the forced lamp has run by `until`."""

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry":
            return message
        during, over = self._during(message), self._over(message)
        if not (during or over):
            return message
        payload = message.payload
        hours = number(payload, "lamp_hours")
        if memo.anchor is None:
            memo.anchor = hours
        if during:
            power_w = payload.get("power_w", 0.0) if payload["on"] else UV_LAMP_W
            forced = memo.anchor + self._forced_hours(message.ts)
            return _with(message, {
                "on": self.forced_on,
                "power_w": power_w if self.forced_on else 0.0,
                "lamp_hours": round(forced, 3),
            })
        if memo.offset is None:
            memo.offset = memo.anchor + self._forced_hours(message.ts) - hours
        return _with(message, {"lamp_hours": round(hours + memo.offset, 3)})


@dataclass(frozen=True)
class LampSkipped(_LampOverride):
    """The lamp does not run at all on `day`, a local day of the site (read from the payload's
    `ts`): off all day, and the hours it would have run missing from its tube hours after."""

    day: date
    fits: ClassVar[frozenset[str]] = frozenset({"uv_session"})
    forced_on: ClassVar[bool] = False

    def _during(self, message: SimMessage) -> bool:
        return _local_date(message) == self.day

    def _over(self, message: SimMessage) -> bool:
        return _local_date(message) > self.day

    def _forced_hours(self, until: datetime) -> float:
        return 0.0


@dataclass(frozen=True)
class LampOn(_LampOverride, _Windowed):
    """The lamp is switched on for the whole window (left on, or on while people are in the
    room): on, about 30 W, and its tube hours count the extra time from then on."""

    fits: ClassVar[frozenset[str]] = frozenset({"uv_session"})
    forced_on: ClassVar[bool] = True

    def _during(self, message: SimMessage) -> bool:
        return self.start <= message.ts < self.end

    def _over(self, message: SimMessage) -> bool:
        return message.ts >= self.end

    def _forced_hours(self, until: datetime) -> float:
        return max(0.0, (min(until, self.end) - self.start).total_seconds() / 3600)


# --- Sample fridge, doors, leak sensors, any device --------------------------------------------


@dataclass(frozen=True)
class FridgeTemperature(_Windowed):
    """The fridge's air holds at `celsius` in the window (a failed compressor, a door left ajar)."""

    celsius: float
    fits: ClassVar[frozenset[str]] = frozenset({"cold_store"})

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or not self._during(message):
            return message
        return _with(message, {"temperature_c": round(self.celsius, 1)})


@dataclass(frozen=True)
class Battery(_Windowed):
    """The sensor reports `pct` battery in the window."""

    pct: int
    fits: ClassVar[frozenset[str]] = frozenset({"cold_store", "door_traffic"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.pct <= 100:
            raise ValueError(f"{self.device_id}: a battery level lies within 0–100 %, not {self.pct}")

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or not self._during(message):
            return message
        return _with(message, {"battery_pct": self.pct})


@dataclass(frozen=True)
class DoorHeldOpen(_Windowed):
    """The door stands open throughout the window (propped open, a broken closer)."""

    fits: ClassVar[frozenset[str]] = frozenset({"door_traffic"})

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or not self._during(message):
            return message
        return _with(message, {"open": True})


@dataclass(frozen=True)
class FloorWet(_Windowed):
    """Water reaches a leak sensor: it reports wet throughout the window (a burst hose, a
    blocked drain) and dry again once the floor is mopped."""

    fits: ClassVar[frozenset[str]] = frozenset({"dry_floor"})

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        if message.channel != "telemetry" or not self._during(message):
            return message
        return _with(message, {"leak": True})


@dataclass(frozen=True)
class Access(Fault):
    """One more card swipe at `at`, as the door's reader reports it."""

    at: datetime
    credential: str
    granted: bool = True
    fits: ClassVar[frozenset[str]] = frozenset({"door_traffic"})

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"{self.device_id}: the time of Access must be timezone-aware")

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        return message

    def inserted(self, tz: tzinfo) -> Iterable[SimMessage]:
        payload: dict[str, object] = {
            "ts": self.at.astimezone(tz).isoformat(),
            "type": "access",
            "credential": self.credential,
            "granted": self.granted,
        }
        return (SimMessage(self.at.astimezone(UTC), self.device_id, "event", payload),)


@dataclass(frozen=True)
class Silence(_Windowed):
    """The device is offline in the window: nothing arrives from it."""

    def apply(self, message: SimMessage, memo: Memo) -> SimMessage | None:
        return None if self._during(message) else message


# --- The stream --------------------------------------------------------------------------------


def inject(messages: Iterable[SimMessage], faults: Sequence[Fault], site: SiteConfig) -> Iterator[SimMessage]:
    """`messages` of `site` (in time order) with `faults` applied, lazily and in time order.

    Raises ValueError at once if a fault names a device the site does not have or a device of
    a kind the fault does not fit."""
    devices = {device.id: kinds()[device.kind] for device in site.devices}
    for fault in faults:
        kind = devices.get(fault.device_id)
        if kind is None:
            raise ValueError(f"{fault.device_id}: site {site.id} has no such device for {type(fault).__name__}")
        if fault.fits and kind.simulation not in fault.fits:
            fitting = sorted(k.name for k in kinds().values() if k.simulation in fault.fits)
            raise ValueError(f"{fault.device_id}: {type(fault).__name__} fits {', '.join(fitting)}, not {kind.name}")
    added = sorted((m for fault in faults for m in fault.inserted(site.tz)), key=attrgetter("ts"))
    return _faulty(messages, faults, added)


def _faulty(messages: Iterable[SimMessage], faults: Sequence[Fault], added: list[SimMessage]) -> Iterator[SimMessage]:
    by_device: dict[str, list[tuple[Fault, Memo]]] = {}
    for fault in faults:
        by_device.setdefault(fault.device_id, []).append((fault, Memo()))
    # heapq.merge is lazy and stable: on equal times the added event comes first.
    for original in heapq.merge(added, messages, key=attrgetter("ts")):
        message = _through(original, by_device.get(original.device_id, ()))
        if message is not None:
            yield message


def _through(message: SimMessage, faults: Iterable[tuple[Fault, Memo]]) -> SimMessage | None:
    for fault, memo in faults:
        out = fault.apply(message, memo)
        if out is None:
            return None
        message = out
    return message


def _with(message: SimMessage, fields: dict[str, object]) -> SimMessage:
    return replace(message, payload={**message.payload, **fields})


def _local_date(message: SimMessage) -> date:
    return datetime.fromisoformat(str(message.payload["ts"])).date()
