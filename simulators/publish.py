"""Publishes the simulated site live, as its devices would, on an accelerated clock.

Each message goes out when its simulated time comes round on the clock, in its device's format:

- native devices: compact UTF-8 JSON to `facility/<site>/<device>/<channel>`;
- devices with a Zigbee2MQTT, Tasmota or Shelly source: their telemetry on the vendor's topics
  (simulators/vendors.py), after each device's retained "online" when the publisher connects;
  their events (a door's card reader) stay native;
- polled meters (Modbus, DL/T 645): the publisher serves them (simulators/meters.py) at their
  source URLs from their first message on, and a message updates the meter's values for the
  gateway to read. A meter on a local serial port cannot be served; its messages go out natively.

MQTT messages go at QoS 1. When the broker goes away the publisher reconnects with capped,
jittered backoff and then sends what fell due meanwhile, starting with the message that failed:
at least once, in order, like a device that buffers. The meters are updated in the same order,
so they too stand still until the broker is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import aiomqtt

from gateway.clock import AcceleratedClock
from gateway.config import SiteConfig
from simulators import vendors
from simulators.meters import SimulatedMeters
from simulators.model import SimMessage, SiteSimulation
from simulators.vendors import MQTT_SOURCES, Publication

log = logging.getLogger(__name__)

QOS: Final = 1
BACKOFF_FIRST_S: Final = 1.0
BACKOFF_MAX_S: Final = 30.0
_CHUNK: Final = timedelta(days=1)  # of simulated time, generated at a time when running forever


def topic(site_id: str, message: SimMessage) -> str:
    return f"facility/{site_id}/{message.device_id}/{message.channel}"


def encode(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def publications(site: SiteConfig, message: SimMessage) -> list[Publication]:
    """The MQTT messages of `message`: its device's vendor format for telemetry from a
    Zigbee2MQTT, Tasmota or Shelly device, else our native JSON."""
    device = site.device(message.device_id)
    source = device.source if device is not None else None
    if message.channel == "telemetry" and isinstance(source, MQTT_SOURCES):
        return vendors.telemetry(source, message)
    return [(topic(site.id, message), encode(message.payload))]


def _broker(url: str) -> tuple[str, int, ssl.SSLContext | None]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not an mqtt://host:port or mqtts://host:port URL")
    if parts.scheme == "mqtts":
        return parts.hostname, parts.port or 8883, ssl.create_default_context()
    return parts.hostname, parts.port or 1883, None


def timeline(sim: SiteSimulation, start: datetime, until: datetime | None) -> Iterator[SimMessage]:
    """The simulation's messages from `start` until `until`, or for ever when None."""
    if until is not None:
        yield from sim.messages(start, until)
        return
    while True:
        yield from sim.messages(start, start + _CHUNK)
        start += _CHUNK


async def run(
    site: SiteConfig,
    broker_url: str,
    *,
    speed: float = 1.0,
    seed: int = 1,
    start: datetime | None = None,
    until: datetime | None = None,
    username: str | None = None,
    password: str | None = None,
    messages: Iterator[SimMessage] | None = None,
) -> int:
    """Publishes the simulation of `site` from `start` (default now) until `until` (simulated
    time; forever when None), `speed` times faster than real time, and serves its polled meters
    meanwhile. Returns how many of the simulation's messages went out (published, or taken by a
    meter). `messages` (from `start` on, in time order) replace the site's simulation, e.g. one
    with faults injected."""
    host, port, tls = _broker(broker_url)
    begin = start or datetime.now(UTC)
    clock = AcceleratedClock(begin, speed)
    stream = messages if messages is not None else timeline(SiteSimulation(site, seed), begin, until)
    message = next(stream, None)  # a bad window fails here, before connecting
    online = [vendors.availability(d.source) for d in site.devices if isinstance(d.source, MQTT_SOURCES)]
    published = 0
    backoff = BACKOFF_FIRST_S
    away = False
    async with SimulatedMeters(site) as meters:
        while message is not None:
            try:
                async with aiomqtt.Client(
                    host, port, identifier=f"simulator-{site.id}", username=username, password=password,
                    tls_context=tls,
                ) as client:
                    log.info("publishing the simulation of %s to %s at %g× speed", site.id, broker_url, speed)
                    away, backoff = False, BACKOFF_FIRST_S
                    for availability_topic, payload in online:
                        await client.publish(availability_topic, payload, qos=QOS, retain=True)
                    while message is not None:
                        wait_s = (message.ts - clock.now()).total_seconds() / speed
                        if wait_s > 0:
                            await asyncio.sleep(wait_s)
                        if message.channel == "telemetry" and meters.serves(message.device_id):
                            await meters.update(message)
                        else:
                            for message_topic, payload in publications(site, message):
                                await client.publish(message_topic, payload, qos=QOS)
                        published += 1
                        message = next(stream, None)
            except aiomqtt.MqttError as exc:
                if not away:
                    log.warning("broker %s unavailable (%s); retrying with backoff", broker_url, exc)
                    away = True
                else:
                    log.debug("broker %s still unavailable (%s)", broker_url, exc)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(2 * backoff, BACKOFF_MAX_S)
    return published
