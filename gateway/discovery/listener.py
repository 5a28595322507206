"""Listening for devices that announce themselves, on the MQTT network thread.

`Discovery.observe` sees every message the transport receives. It takes the discovery
topics (Zigbee2MQTT's bridge, Tasmota's and Home Assistant's discovery, `shellies/announce`)
for itself, and notes a native reading from a device id the site file lacks (which the
ingest goes on to reject, as before). It must cost next to nothing for an ordinary reading
(a prefix test and a set lookup), never raise, and hold a bounded amount: what it saw waits
in `pending` (at most `MAX_PENDING` devices, newcomers beyond that dropped and counted)
until the inbox writes it to the state database in one transaction (`DiscoveryInbox.flush`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter

from devices import kinds
from gateway.config import SiteConfig
from gateway.discovery.sightings import (
    Sighting,
    Unusable,
    homeassistant,
    native,
    shelly_announce,
    tasmota,
    z2m_devices,
    z2m_event,
)

# A discovery message larger than this is refused unread: a school's Zigbee2MQTT device list
# (tens of devices, a few kB each) is well below it.
MAX_DISCOVERY_BYTES: Final = 1_048_576
# Devices waiting to be written; a flood of new ids beyond this is dropped (and counted).
MAX_PENDING: Final = 500
# The last messages kept per device.
SAMPLES_KEPT: Final = 3
SHELLY_ANNOUNCE: Final = "shellies/announce"
CHANNELS: Final = ("telemetry", "event")
RESERVED_IDS: Final = frozenset({"gateway", "alerts"})


@dataclass(frozen=True, slots=True)
class Sample:
    topic: str
    payload: bytes
    at_ms: int


@dataclass(slots=True)
class Seen:
    """What was heard of one device since the last flush."""

    first: Sighting
    first_ms: int
    first_topic: str
    facts: Sighting
    last_ms: int
    last_topic: str
    messages: int = 0
    samples: list[Sample] = field(default_factory=list)


Parse = Callable[[str, bytes], list[Sighting]]


class Discovery:
    def __init__(self, site: SiteConfig, registry: CollectorRegistry) -> None:
        settings = site.mqtt.discovery
        self.enabled = settings.enabled
        base, self._z2m_base = settings.zigbee2mqtt_base, settings.zigbee2mqtt_base
        # Exact topics and their parsers; prefixes whose topics are parsed by their levels.
        self._exact: dict[str, Parse] = {
            f"{base}/bridge/devices": lambda _t, p: z2m_devices(p, base),
            f"{base}/bridge/event": lambda _t, p: z2m_event(p, base),
        }
        if settings.shelly:
            self._exact[SHELLY_ANNOUNCE] = lambda _t, p: shelly_announce(p)
        self._tasmota = f"{settings.tasmota_prefix}/"
        self._ha = f"{settings.homeassistant_prefix}/"
        self.topics: list[str] = [
            *self._exact,
            f"{self._tasmota}+/config", f"{self._tasmota}+/sensors",
            f"{self._ha}+/+/config", f"{self._ha}+/+/+/config",
        ] if self.enabled else []
        self._native = f"facility/{site.id}/"
        self._configured = frozenset(d.id for d in site.devices) | RESERVED_IDS
        self._metric_keys = frozenset(m.key for k in kinds().values() for m in k.metrics)
        self._lock = threading.Lock()
        self._pending: dict[str, Seen] = {}
        self.heard = Counter("facility_discovery_messages", "Discovery messages taken, by protocol", ["protocol"],
                             registry=registry)
        self.ignored = Counter("facility_discovery_ignored", "Discovery messages ignored: not JSON, too large, "
                               "not the shape their topic promises, or too many new devices at once", ["reason"],
                               registry=registry)

    def reconfigure(self, site: SiteConfig) -> None:
        """The devices configured now: an adopted device's readings are no longer noted."""
        self._configured = frozenset(d.id for d in site.devices) | RESERVED_IDS

    def observe(self, topic: str, payload: bytes, received_ms: int) -> bool:
        """Notes what `topic` says of a device. True when the message is discovery's alone (the
        transport acknowledges it and goes on); False when it is the ingest's (every other
        message, an unknown native device's included)."""
        if not self.enabled:
            return False
        if topic.startswith(self._native):
            self._observe_native(topic, payload, received_ms)
            return False
        parse = self._parser(topic)
        if parse is None:
            return False
        if not payload:
            return True  # a retained message cleared: nothing to note
        if len(payload) > MAX_DISCOVERY_BYTES:
            self.ignored.labels("too_large").inc()
            return True
        try:
            sightings = parse(topic, payload)
        except Unusable as exc:
            self.ignored.labels(exc.reason).inc()
            return True
        for sighting in sightings:
            self._note(sighting, topic, received_ms)
        return True

    def _parser(self, topic: str) -> Parse | None:
        exact = self._exact.get(topic)
        if exact is not None:
            return exact
        if topic.startswith(self._tasmota):
            levels = topic[len(self._tasmota):].split("/")
            if len(levels) == 2 and levels[1] in ("config", "sensors"):  # <MAC>/<leaf>
                return lambda _t, p: tasmota(p, levels[0], levels[1])
        if topic.startswith(self._ha) and topic.endswith("/config"):
            levels = topic[len(self._ha):].split("/")[:-1]
            if len(levels) in (2, 3):  # <component>/[<node_id>/]<object_id>
                return lambda _t, p: homeassistant(p, levels[0], levels[1:], self._z2m_base)
        return None

    def _observe_native(self, topic: str, payload: bytes, received_ms: int) -> None:
        parts = topic.split("/")
        if len(parts) != 4 or parts[3] not in CHANNELS or parts[2] in self._configured:
            return
        for sighting in native(payload[:MAX_DISCOVERY_BYTES], parts[2], self._metric_keys):
            self._note(sighting, topic, received_ms)

    def _note(self, sighting: Sighting, topic: str, received_ms: int) -> None:
        sample = Sample(topic, sighting.sample, received_ms)
        with self._lock:
            seen = self._pending.get(sighting.key)
            if seen is None:
                if len(self._pending) >= MAX_PENDING:
                    self.ignored.labels("too_many_devices").inc()
                    return
                seen = self._pending[sighting.key] = Seen(sighting, received_ms, topic, sighting, received_ms, topic)
            else:
                seen.facts = merged(seen.facts, sighting)
                seen.last_ms, seen.last_topic = received_ms, topic
            seen.messages += 1
            seen.samples = [*seen.samples[-(SAMPLES_KEPT - 1):], sample]
        self.heard.labels(sighting.protocol).inc()

    def take(self) -> list[Seen]:
        """What was heard since the last call, for the inbox to write."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return list(pending.values())


def merged(old: Sighting, new: Sighting) -> Sighting:
    """Two messages about one device: what each says, the newer winning where both do (a
    Tasmota device's config names its topic, its sensors message what it measures)."""
    return Sighting(
        old.key, old.protocol, new.said or old.said, new.model or old.model, old.keys | new.keys,
        new.source if new.source is not None else old.source,
        (new.note or old.note) if new.source is None and old.source is None else "", new.sample,
    )
