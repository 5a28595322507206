"""From raw bytes to decoded messages on their way into the spool.

`Ingestor.accept` is what every transport calls with (topic or device, payload, time of
receipt): it routes, decodes, checks and puts the result in the `IngestBuffer`, or records
the rejection. It runs on the transport's thread (the MQTT network thread, an HTTP handler,
a backfill thread) and does no I/O.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pydantic_core import from_json

from devices import kinds
from devices.base import DecodeError, DeviceKind, Event, MetricType, Reason, Sample
from devices.vendors import VendorSource
from gateway.config import SiteConfig
from gateway.spool.store import Rejection
from gateway.storage.sqlite import Point

CHANNELS: Final = ("telemetry", "event")


Ack = Callable[[], object]


@dataclass(slots=True)
class GroupAck:
    """An acknowledgement that goes out with the others of its `send_many` next to it in a
    batch, in one call (MQTT PUBACKs: one write for a batch). Not frozen: one is made for every
    message, and a frozen dataclass takes twice as long to make."""

    send_many: Callable[[list[int]], object]
    key: int

    def __call__(self) -> None:
        self.send_many([self.key])


def run_acks(acks: list[Ack]) -> None:
    """Runs a durable batch's acknowledgements in order; neighbouring `GroupAck`s of one
    sender as one call."""
    group: list[int] = []
    send: Callable[[list[int]], object] | None = None
    for ack in acks:
        if isinstance(ack, GroupAck) and ack.send_many == send:
            group.append(ack.key)
            continue
        if send is not None:
            send(group)
            group, send = [], None
        if isinstance(ack, GroupAck):
            group, send = [ack.key], ack.send_many
        else:
            ack()
    if send is not None:
        send(group)


@dataclass(slots=True)
class Batch:
    """What arrived since the spooler last looked, in order of arrival."""

    items: list[tuple[int, Sample | Event]] = field(default_factory=list)  # (received_ms, item)
    rejections: list[Rejection] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)  # messages by transport
    # Run once the batch is durable, in order: MQTT PUBACKs, HTTP requests waiting for their answer.
    acks: list[Ack] = field(default_factory=list)

    def __len__(self) -> int:
        """Messages waiting for the spool, rejected ones included: they take memory too."""
        return len(self.items) + len(self.rejections)

    @property
    def empty(self) -> bool:
        return not self.items and not self.rejections and not self.acks


class BufferFull(Exception):
    """The buffer stayed full for longer than the caller was willing to wait."""


class IngestBuffer:
    """Decoded messages on their way into the spool. Bounded: overflow policy *block* — a
    full buffer makes producers wait (MQTT: unacknowledged messages stay with the broker;
    HTTP: 503 after a short wait), so nothing is dropped here."""

    def __init__(self, capacity: int, on_ready: Callable[[], None]) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._batch = Batch()
        self._on_ready = on_ready

    def __len__(self) -> int:
        return len(self._batch)

    def put(self, item: Sample | Event, received_ms: int, transport: str, ack: Ack | None,
            timeout: float | None = None) -> None:
        self._add(lambda batch: batch.items.append((received_ms, item)), transport, ack, timeout)

    def reject(self, rejection: Rejection, transport: str, ack: Ack | None, timeout: float | None = None) -> None:
        self._add(lambda batch: batch.rejections.append(rejection), transport, ack, timeout)

    def _add(self, add: Callable[[Batch], None], transport: str, ack: Ack | None, timeout: float | None) -> None:
        with self._cond:
            if len(self._batch) >= self.capacity and not self._cond.wait_for(
                lambda: len(self._batch) < self.capacity, timeout
            ):
                raise BufferFull(f"ingest buffer full ({self.capacity} messages waiting)")
            batch = self._batch
            was_empty = batch.empty
            add(batch)
            batch.received[transport] += 1
            if ack is not None:
                batch.acks.append(ack)
        if was_empty:
            self._on_ready()

    def after(self, ack: Ack) -> None:
        """Runs `ack` once everything put so far is durable."""
        with self._cond:
            was_empty = self._batch.empty
            self._batch.acks.append(ack)
        if was_empty:
            self._on_ready()

    def take(self) -> Batch:
        """Everything waiting, as one batch; producers blocked on a full buffer go on."""
        with self._cond:
            batch, self._batch = self._batch, Batch()
            self._cond.notify_all()
        return batch


# A counter reading below this fraction of the previous one is taken as a reset (meter
# replaced, rollover); a smaller decrease is a bad reading and is rejected.
COUNTER_RESET_FRACTION: Final = 0.1

_Series = tuple[str, str]  # (device, metric)
_Count = tuple[int, float]  # (ts_ms, value)


class Ingestor:
    """Routes, decodes and checks what the transports receive. Messages are counted as
    received when the spool commits them (with the rejections), so the accounting is exact
    across crashes; a message lost from memory before that was never acknowledged."""

    def __init__(self, site: SiteConfig, buffer: IngestBuffer) -> None:
        self._buffer = buffer
        self._max_bytes = site.ingest.max_payload_bytes
        self._future_ms = int(site.ingest.max_clock_skew_s * 1000)
        self._past_ms = site.storage.retention_days * 86_400_000
        self._counter_keys = {
            name: frozenset(m.key for m in kind.metrics if m.type is MetricType.COUNTER)
            for name, kind in kinds().items()
        }
        self._kinds: dict[str, DeviceKind] = {}
        # Vendor topics (Zigbee2MQTT, Tasmota, Shelly): topic → (device, its source, the part).
        self._routes: dict[str, tuple[str, VendorSource, str]] = {}
        self.reconfigure(site)
        self._status_topic = f"facility/{site.id}/gateway/status"
        self._alerts_prefix = f"facility/{site.id}/alerts/"
        self._last_count: dict[_Series, _Count] = {}  # newest value of each counter
        self._lock = threading.Lock()  # transports call in from several threads

    def reconfigure(self, site: SiteConfig) -> None:
        """The devices as configured now: each map is built whole and then swapped in, so a
        transport's thread reading it meanwhile sees the old one or the new one."""
        self._kinds = {d.id: kinds()[d.kind] for d in site.devices}
        self._routes = {
            topic: (d.id, d.source, part) for d in site.devices if d.source is not None
            for topic, part in d.source.topics().items()
        }

    def seed(self, latest: Mapping[str, Mapping[str, Point]]) -> None:
        """The newest stored counter values, so a decrease is caught across restarts."""
        for device_id, points in latest.items():
            kind = self._kinds.get(device_id)
            if kind is not None:
                for key in self._counter_keys[kind.name] & points.keys():
                    self._last_count[(device_id, key)] = (points[key].ts_ms, points[key].value)

    @property
    def vendor_topics(self) -> list[str]:
        """The MQTT topics of devices with a vendor source, for the transport to subscribe to."""
        return list(self._routes)

    def accept_mqtt(self, topic: str, payload: bytes, received_ms: int, ack: Ack | None) -> None:
        """A message from `facility/<site>/<device>/<channel>` (the subscription covers only
        this gateway's site) or from a vendor topic of one of its devices. `ack` acknowledges
        it to the broker; it runs once the message (or its rejection) is durable."""
        route = self._routes.get(topic)
        if route is not None:
            device_id, vendor, part = route
            self._accept(f"mqtt:{topic}", "mqtt", device_id, payload, received_ms, ack, None,
                         lambda kind: kind.from_values(device_id, vendor.decode(device_id, part, payload),
                                                       received_ms, payload))
            return
        if topic == self._status_topic or topic.startswith(self._alerts_prefix):
            if ack is not None:  # our own status and alert states, retained on the broker
                self._buffer.after(ack)
            return
        source = f"mqtt:{topic}"
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "facility" or parts[3] not in CHANNELS:
            error = DecodeError("", Reason.BAD_TOPIC, "expected facility/<site>/<device_id>/telemetry or …/event",
                                payload)
            self._record(source, "mqtt", error, received_ms, ack, timeout=None)
            return
        decode = _native(parts[2], parts[3], payload, received_ms)
        self._accept(source, "mqtt", parts[2], payload, received_ms, ack, None, decode)

    def accept(
        self, transport: str, device_id: str, channel: str, payload: bytes, received_ms: int,
        timeout: float | None = None,
    ) -> DecodeError | None:
        """A message from a transport that names the device itself (HTTP, replay). Returns
        the rejection, if any, so the caller can answer its client."""
        return self._accept(transport, transport, device_id, payload, received_ms, None, timeout,
                            _native(device_id, channel, payload, received_ms))

    def accept_polled(
        self, transport: str, device_id: str, source: VendorSource, part: str, payload: bytes, received_ms: int,
        timeout: float | None = None,
    ) -> DecodeError | None:
        """What a poll of a meter read (Modbus registers, DL/T 645 frames), as raw bytes."""
        return self._accept(transport, transport, device_id, payload, received_ms, None, timeout,
                            lambda kind: kind.from_values(device_id, source.decode(device_id, part, payload),
                                                          received_ms, payload))

    def _accept(
        self, source: str, transport: str, device_id: str, payload: bytes, received_ms: int,
        ack: Ack | None, timeout: float | None, decode: Callable[[DeviceKind], Sample | Event],
    ) -> DecodeError | None:
        kind = self._kinds.get(device_id)
        try:
            if kind is None:
                raise DecodeError(device_id, Reason.UNKNOWN_DEVICE,
                                  f"device {device_id!r} is not in the site file", payload)
            if len(payload) > self._max_bytes:
                raise DecodeError(device_id, Reason.TOO_LARGE,
                                  f"{len(payload)} bytes, limit {self._max_bytes}", payload)
            item = decode(kind)
            self._check_time(item, received_ms, payload)
            counts = self._check_counters(item, kind.name, payload) if isinstance(item, Sample) else []
            self._buffer.put(item, received_ms, transport, ack, timeout)
            if counts:
                with self._lock:
                    self._last_count.update(counts)
        except DecodeError as exc:
            self._record(source, transport, exc, received_ms, ack, timeout)
            return exc
        return None

    def _check_time(self, item: Sample | Event, received_ms: int, payload: bytes) -> None:
        ahead = item.ts_ms - received_ms
        if ahead > self._future_ms:
            raise DecodeError(item.device_id, Reason.FUTURE_TIMESTAMP,
                              f"ts is {ahead / 1000:.0f} s ahead of the time of receipt "
                              f"(clock-skew limit {self._future_ms / 1000:.0f} s)", payload)
        if -ahead > self._past_ms:
            raise DecodeError(item.device_id, Reason.STALE_TIMESTAMP,
                              f"ts is {-ahead / 86_400_000:.0f} days before the time of receipt, "
                              f"beyond retention ({self._past_ms // 86_400_000} days)", payload)

    def _check_counters(self, sample: Sample, kind: str, payload: bytes) -> list[tuple[_Series, _Count]]:
        """A cumulative counter must not go back; returns the new newest values."""
        newest = []
        for key in self._counter_keys[kind] & sample.values.keys():
            value = sample.values[key]
            with self._lock:
                last = self._last_count.get((sample.device_id, key))
            if last is not None and sample.ts_ms < last[0]:
                continue  # a late reading from before the newest one: nothing to compare
            if last is not None and value < last[1] * (1 - 1e-9) and value > last[1] * COUNTER_RESET_FRACTION:
                raise DecodeError(sample.device_id, Reason.COUNTER_DECREASED,
                                  f"{key} went back from {last[1]:g} to {value:g}", payload)
            newest.append(((sample.device_id, key), (sample.ts_ms, value)))
        return newest

    def accept_named(self, transport: str, payload: bytes, received_ms: int,
                     timeout: float | None = None) -> DecodeError | None:
        """A reading, as JSON bytes, that names its device in a `device_id` field (HTTP
        ingest). The bytes go to the device's decoder as they came, with the same parser as
        MQTT payloads, so an item is rejected for what it is (not JSON, not an object, no
        device, or whatever its kind's decoder finds) and never breaks the request."""
        try:
            message = from_json(payload)
        except ValueError as exc:
            return self.refuse(transport, "", Reason.NOT_JSON, not_json(exc), payload, received_ms, timeout)
        if not isinstance(message, dict):
            return self.refuse(transport, "", Reason.NOT_OBJECT, "a reading must be a JSON object", payload,
                               received_ms, timeout)
        device_id = message.get("device_id")
        if not isinstance(device_id, str):
            return self.refuse(transport, "", Reason.MISSING_FIELD, "device_id: a string is required", payload,
                               received_ms, timeout)
        return self.accept(transport, device_id, "telemetry", payload, received_ms, timeout)

    def refuse(
        self, transport: str, device_id: str, reason: Reason, detail: str, payload: bytes, received_ms: int,
        timeout: float | None = None,
    ) -> DecodeError:
        """Records a message that a transport found unusable before decoding (no device
        named, not an object): counted as received and rejected, kept as a dead letter."""
        error = DecodeError(device_id, reason, detail, payload)
        self._record(transport, transport, error, received_ms, None, timeout)
        return error

    def _record(self, source: str, transport: str, exc: DecodeError, received_ms: int, ack: Ack | None,
                timeout: float | None) -> None:
        rejection = Rejection(received_ms, source, exc.device_id, exc.reason.value, exc.detail, exc.preview)
        self._buffer.reject(rejection, transport, ack, timeout)


def _native(device_id: str, channel: str, payload: bytes, received_ms: int) -> Callable[[DeviceKind], Sample | Event]:
    """Our own JSON: a telemetry sample or an event, by channel."""
    if channel == "telemetry":
        return lambda kind: kind.decode(device_id, payload, received_ms)
    return lambda kind: kind.decode_event(device_id, payload, received_ms)


# What the JSON parser's terse messages mean, for the person who reads the rejection.
_JSON_HINTS: Final = {
    "recursion limit exceeded": "nested too deep",
    "number out of range": "a number with too many digits",
    "hex escape": "a \\u escape that is not a whole character, e.g. a lone surrogate",
}


def not_json(exc: ValueError) -> str:
    """The detail of a NOT_JSON rejection: the parser's message (with where it stopped) and,
    where it is terse, what it means."""
    hint = next((h for key, h in _JSON_HINTS.items() if key in str(exc)), None)
    return f"not JSON: {exc}" + (f" ({hint})" if hint else "")


# A JSON array's structure: whole strings (skipped, whatever they hold), brackets and commas;
# a quote that starts no whole string is an unterminated one.
_ARRAY_TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[][{},"]', re.S)
_CLOSES: Final = {ord("]"): ord("["), ord("}"): ord("{")}
_JSON_SPACE: Final = b" \t\r\n"


def json_array_items(body: bytes) -> list[bytes] | None:
    """The elements of a JSON array, each as its own bytes, unparsed; None when `body` is not
    an array. Only the array's own brackets and commas are read (strings are skipped whole, and
    nesting is counted, not recursed into), so an element that is bad JSON, nested too deep or
    holding a number too long to read is one element to reject, not a broken body. Raises
    ValueError when the array itself is malformed: unbalanced, unterminated, an empty element."""
    start = len(body) - len(body.lstrip(_JSON_SPACE))
    if body[start:start + 1] != b"[":
        return None
    items: list[bytes] = []
    open_brackets: list[int] = []
    item_start = start + 1

    def element(end: int) -> None:
        item = body[item_start:end].strip(_JSON_SPACE)
        if not item:
            raise ValueError(f"an empty element of the array before byte {end}")
        items.append(item)

    for token in _ARRAY_TOKEN.finditer(body, start):
        char = body[token.start()]
        if char == ord('"'):
            if token.end() - token.start() == 1:
                raise ValueError(f"a string that is not closed, at byte {token.start()}")
        elif char in _CLOSES:
            if not open_brackets or open_brackets.pop() != _CLOSES[char]:
                raise ValueError(f"an unbalanced {chr(char)!r} at byte {token.start()}")
            if not open_brackets:  # the array's own closing bracket
                if body[token.end():].strip(_JSON_SPACE):
                    raise ValueError(f"more after the array's end, from byte {token.end()}")
                if items or body[item_start:token.start()].strip(_JSON_SPACE):
                    element(token.start())
                return items
        elif char == ord(","):
            if len(open_brackets) == 1:
                element(token.start())
                item_start = token.end()
        else:
            open_brackets.append(char)
    raise ValueError("the array is not closed")
