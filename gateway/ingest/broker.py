"""The embedded MQTT broker (amqtt) for the one-command demo: in the gateway's own process,
bound to loopback. Production uses Mosquitto or EMQX (see docker-compose.yml)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class _Broker(Broker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt's broker, closing every connection it accepted once its handler is done.

    amqtt returns from a connection whose CONNECT never came (a port probe, a client that
    gave up) without closing it, so its StreamWriter is only closed by the garbage
    collector, possibly after the event loop is gone (a ResourceWarning)."""

    async def stream_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               listener_name: str) -> None:
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            writer.close()


@asynccontextmanager
async def embedded_broker(host: str, port: int) -> AsyncIterator[None]:
    broker = _Broker(
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
