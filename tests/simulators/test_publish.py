import asyncio
import json
import logging
from datetime import datetime, timedelta

import aiomqtt
import pytest

import simulators
from gateway.config import SiteConfig, load
from simulators.model import SimMessage, SiteSimulation
from simulators.publish import run
from tests.services import Mosquitto, MosquittoFactory

pytestmark = pytest.mark.integration

SITE: SiteConfig = load(simulators.DEMO_SITE)
ARRIVALS = datetime(2026, 11, 23, 7, 58, tzinfo=SITE.tz)  # a Monday: the gate is busy
Sent = tuple[str, dict[str, object]]  # topic, decoded payload


def as_sent(messages: list[SimMessage]) -> list[Sent]:
    return [(f"facility/{SITE.id}/{m.device_id}/{m.channel}", m.payload) for m in messages]


async def receive(subscriber: aiomqtt.Client, last: Sent) -> list[Sent]:
    """Everything the subscriber gets, up to and including `last`."""
    received: list[Sent] = []
    async with asyncio.timeout(10):
        async for message in subscriber.messages:
            assert isinstance(message.payload, bytes)
            received.append((message.topic.value, json.loads(message.payload)))
            if received[-1] == last:
                return received
    raise AssertionError("the subscription ended")


async def test_publishes_the_simulation_in_time_order(mosquitto: Mosquitto) -> None:
    until = ARRIVALS + timedelta(minutes=4)
    expected = list(SiteSimulation(SITE, seed=7).messages(ARRIVALS, until))
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="test-simulation-sub") as subscriber:
        await subscriber.subscribe(f"facility/{SITE.id}/#", qos=1)
        published = await run(SITE, mosquitto.url, speed=600, seed=7, start=ARRIVALS, until=until)
        received = await receive(subscriber, as_sent(expected)[-1])
    assert published == len(expected)
    assert any(m.channel == "event" for m in expected)
    assert received == as_sent(expected)


async def test_keeps_publishing_across_a_broker_restart(
    mosquitto_factory: MosquittoFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="simulators.publish")
    broker = mosquitto_factory()
    until = ARRIVALS + timedelta(minutes=4)
    expected = list(SiteSimulation(SITE).messages(ARRIVALS, until))
    publisher = asyncio.create_task(run(SITE, broker.url, speed=120, start=ARRIVALS, until=until))
    await asyncio.sleep(0.5)
    broker.stop()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(broker.start)
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-simulation-sub") as subscriber:
        await subscriber.subscribe(f"facility/{SITE.id}/#", qos=1)
        published = await asyncio.wait_for(publisher, 30)
        # The subscriber joined after the restart: it sees an unbroken tail of the simulation.
        received = await receive(subscriber, as_sent(expected)[-1])
    assert published == len(expected)
    assert received == as_sent(expected)[-len(received):]
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING", "INFO"]  # up, away, back


async def test_refuses_a_broker_url_that_is_not_mqtt() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        await run(SITE, "http://127.0.0.1:1883", until=ARRIVALS)
