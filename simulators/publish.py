"""Publishes the simulated site live over MQTT, as its devices would, on an accelerated clock.

Each message goes out when its simulated time comes round on the clock, as compact UTF-8 JSON
at QoS 1 to `facility/<site>/<device>/<channel>`. When the broker goes away the publisher
reconnects with capped, jittered backoff and then sends what fell due meanwhile, starting with
the message that failed: at least once, in order, like a device that buffers.
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
from simulators.model import SimMessage, SiteSimulation

log = logging.getLogger(__name__)

QOS: Final = 1
BACKOFF_FIRST_S: Final = 1.0
BACKOFF_MAX_S: Final = 30.0
_CHUNK: Final = timedelta(days=1)  # of simulated time, generated at a time when running forever


def topic(site_id: str, message: SimMessage) -> str:
    return f"facility/{site_id}/{message.device_id}/{message.channel}"


def encode(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


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
    time; forever when None), `speed` times faster than real time. Returns how many messages
    were published. `messages` (from `start` on, in time order) replace the site's simulation,
    e.g. one with faults injected."""
    host, port, tls = _broker(broker_url)
    begin = start or datetime.now(UTC)
    clock = AcceleratedClock(begin, speed)
    stream = messages if messages is not None else timeline(SiteSimulation(site, seed), begin, until)
    message = next(stream, None)  # a bad window fails here, before connecting
    published = 0
    backoff = BACKOFF_FIRST_S
    away = False
    while message is not None:
        try:
            async with aiomqtt.Client(
                host, port, identifier=f"simulator-{site.id}", username=username, password=password,
                tls_context=tls,
            ) as client:
                log.info("publishing the simulation of %s to %s at %g× speed", site.id, broker_url, speed)
                away, backoff = False, BACKOFF_FIRST_S
                while message is not None:
                    wait_s = (message.ts - clock.now()).total_seconds() / speed
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                    await client.publish(topic(site.id, message), encode(message.payload), qos=QOS)
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
