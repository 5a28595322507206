"""From raw bytes to decoded messages waiting for the sinks.

`Ingestor.accept` is what every transport calls with (topic or device, payload, time of
receipt): it routes, decodes and puts the result in the `IngestBuffer`, or records the
rejection. It runs on the transport's thread (the MQTT network thread, an HTTP handler, a
backfill thread) and does no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from devices import kinds
from devices.base import DecodeError, Event, Reason, Sample
from gateway.config import SiteConfig
from gateway.counters import Counters
from gateway.storage.state import Rejection

CHANNELS: Final = ("telemetry", "event")


@dataclass(slots=True)
class Batch:
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    received_ms: list[int] = field(default_factory=list)  # of every sample and event
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        """Messages to store; rejections are not counted."""
        return len(self.samples) + len(self.events)

    @property
    def empty(self) -> bool:
        return not self.samples and not self.events and not self.rejections


class BufferFull(Exception):
    """The buffer stayed full for longer than the caller was willing to wait."""


class IngestBuffer:
    """Decoded messages waiting for the sinks. Bounded: overflow policy *block* — a full
    buffer makes producers wait (MQTT: the broker keeps the rest; HTTP: 503 after a short
    wait), so nothing is dropped here."""

    def __init__(self, capacity: int, on_ready: Callable[[], None]) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._batch = Batch()
        self._on_ready = on_ready

    def __len__(self) -> int:
        return len(self._batch)

    def put(self, item: Sample | Event, received_ms: int, timeout: float | None = None) -> None:
        with self._cond:
            batch = self._batch
            if len(batch) >= self.capacity and not self._cond.wait_for(
                lambda: len(self._batch) < self.capacity, timeout
            ):
                raise BufferFull(f"ingest buffer full ({self.capacity} messages waiting)")
            batch = self._batch
            was_empty = batch.empty
            if isinstance(item, Sample):
                batch.samples.append(item)
            else:
                batch.events.append(item)
            batch.received_ms.append(received_ms)
        if was_empty:
            self._on_ready()

    def reject(self, rejection: Rejection) -> None:
        with self._cond:
            was_empty = self._batch.empty
            self._batch.rejections.append(rejection)
        if was_empty:
            self._on_ready()

    def take(self) -> Batch:
        """Everything waiting, as one batch; producers blocked on a full buffer go on."""
        with self._cond:
            batch, self._batch = self._batch, Batch()
            self._cond.notify_all()
        return batch


class Ingestor:
    def __init__(self, site: SiteConfig, buffer: IngestBuffer, counters: Counters) -> None:
        self._buffer = buffer
        self._counters = counters
        self._max_bytes = site.ingest.max_payload_bytes
        self._kinds = {d.id: kinds()[d.kind] for d in site.devices}
        self._status_topic = f"facility/{site.id}/gateway/status"
        self._received = {t: counters.received.labels(t) for t in ("mqtt", "http", "replay")}
        self._rejected = {r: counters.rejected.labels(r.value) for r in Reason}

    def accept_mqtt(self, topic: str, payload: bytes, received_ms: int) -> None:
        """A message from `facility/<site>/<device>/<channel>` (the subscription covers only
        this gateway's site)."""
        if topic == self._status_topic:
            return  # our own status, retained on the broker
        self._received["mqtt"].inc()
        source = f"mqtt:{topic}"
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "facility" or parts[3] not in CHANNELS:
            error = DecodeError("", Reason.BAD_TOPIC, "expected facility/<site>/<device_id>/telemetry or …/event",
                                payload)
            self._record(source, error, received_ms)
            return
        self._accept(source, parts[2], parts[3], payload, received_ms, timeout=None)

    def accept(
        self, transport: str, device_id: str, channel: str, payload: bytes, received_ms: int,
        timeout: float | None = None,
    ) -> DecodeError | None:
        """A message from a transport that names the device itself (HTTP, replay). Returns
        the rejection, if any, so the caller can answer its client."""
        self._received[transport].inc()
        return self._accept(transport, device_id, channel, payload, received_ms, timeout)

    def _accept(
        self, source: str, device_id: str, channel: str, payload: bytes, received_ms: int,
        timeout: float | None,
    ) -> DecodeError | None:
        kind = self._kinds.get(device_id)
        try:
            if kind is None:
                raise DecodeError(device_id, Reason.UNKNOWN_DEVICE,
                                  f"device {device_id!r} is not in the site file", payload)
            if len(payload) > self._max_bytes:
                raise DecodeError(device_id, Reason.TOO_LARGE,
                                  f"{len(payload)} bytes, limit {self._max_bytes}", payload)
            if channel == "telemetry":
                item: Sample | Event = kind.decode(device_id, payload, received_ms)
            else:
                item = kind.decode_event(device_id, payload, received_ms)
        except DecodeError as exc:
            self._record(source, exc, received_ms)
            return exc
        self._buffer.put(item, received_ms, timeout)
        return None

    def refuse(
        self, transport: str, device_id: str, reason: Reason, detail: str, payload: bytes, received_ms: int
    ) -> DecodeError:
        """Records a message that a transport found unusable before decoding (no device
        named, not an object): counted as received and rejected, kept as a dead letter."""
        self._received[transport].inc()
        error = DecodeError(device_id, reason, detail, payload)
        self._record(transport, error, received_ms)
        return error

    def _record(self, source: str, exc: DecodeError, received_ms: int) -> None:
        self._rejected[exc.reason].inc()
        self._buffer.reject(
            Rejection(received_ms, source, exc.device_id, exc.reason.value, exc.detail, exc.preview)
        )


