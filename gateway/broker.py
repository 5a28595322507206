"""The embedded MQTT broker (amqtt) for the one-command demo: in the gateway's own process,
bound to loopback. Production uses Mosquitto or EMQX (see docker-compose.yml)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

log = logging.getLogger(__name__)


@asynccontextmanager
async def embedded_broker(host: str, port: int) -> AsyncIterator[None]:
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            # Loopback only, so anonymous clients are acceptable for the demo.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    log.info("embedded MQTT broker (amqtt) listening on %s:%d", host, port)
    try:
        yield
    finally:
        await broker.shutdown()
