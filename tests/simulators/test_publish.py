import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import aiomqtt
import pytest

import simulators
from devices.vendors.modbus import PART, ModbusSource
from gateway.config import SiteConfig, load
from gateway.ingest.bus import PollError
from gateway.ingest.modbus import ModbusBus
from simulators import vendors
from simulators.meters import on_free_ports
from simulators.model import SimMessage, SiteSimulation
from simulators.publish import publications, run
from simulators.vendors import MQTT_SOURCES
from tests.services import Mosquitto, MosquittoFactory

pytestmark = pytest.mark.integration

# The demo site; a test that runs its simulated meters moves them to free ports as it starts
# them (`on_free_ports`): ports picked when the module was collected could be taken by the time a
# long run reaches the test.
SITE: SiteConfig = load(simulators.DEMO_SITE)
ARRIVALS = datetime(2026, 11, 23, 7, 58, tzinfo=SITE.tz)  # a Monday: the gate is busy
NATIVE = f"facility/{SITE.id}/#"
VENDOR_TOPICS = [topic for d in SITE.devices if isinstance(d.source, MQTT_SOURCES) for topic in d.source.topics()]
AVAILABILITY = [vendors.availability(d.source) for d in SITE.devices if isinstance(d.source, MQTT_SOURCES)]
POLLED = {d.id for d in SITE.devices if d.source is not None and d.source.bus_key() is not None}
Sent = tuple[str, bytes]  # topic, payload


def as_sent(messages: Iterable[SimMessage]) -> list[Sent]:
    """What goes out over MQTT for `messages`: everything but the polled meters' telemetry."""
    return [sent for m in messages if not (m.channel == "telemetry" and m.device_id in POLLED)
            for sent in publications(SITE, m)]


async def receive(subscriber: aiomqtt.Client, last: Sent) -> list[Sent]:
    """Everything the subscriber gets, up to and including `last`, but for messages the broker
    kept from before it subscribed."""
    received: list[Sent] = []
    async with asyncio.timeout(10):
        async for message in subscriber.messages:
            assert isinstance(message.payload, bytes)
            if not message.retain:
                received.append((message.topic.value, message.payload))
            if received and received[-1] == last:
                return received
    raise AssertionError("the subscription ended")


async def test_publishes_the_simulation_in_time_order_in_each_devices_format(mosquitto: Mosquitto) -> None:
    until = ARRIVALS + timedelta(minutes=4)
    expected = list(SiteSimulation(SITE, seed=7).messages(ARRIVALS, until))
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="test-simulation-sub") as subscriber:
        for topic in (NATIVE, *VENDOR_TOPICS):
            await subscriber.subscribe(topic, qos=1)
        published = await run(on_free_ports(SITE), mosquitto.url, speed=600, seed=7, start=ARRIVALS, until=until)
        received = await receive(subscriber, as_sent(expected)[-1])
    assert published == len(expected)
    assert any(m.channel == "event" for m in expected)
    assert received == AVAILABILITY + as_sent(expected)
    assert {topic.split("/")[0] for topic, _ in received} >= {"facility", "zigbee2mqtt", "tele",
                                                              "shellyplusplugs-e86beae1f2a0"}
    # The devices' "online" stays on the broker for subscribers that come later.
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="test-simulation-late") as late:
        for topic, _ in AVAILABILITY:
            await late.subscribe(topic, qos=1)
        kept = []
        async with asyncio.timeout(10):
            async for message in late.messages:
                assert message.retain
                kept.append((message.topic.value, message.payload))
                if len(kept) == len(AVAILABILITY):
                    break
    assert sorted(kept) == sorted(AVAILABILITY)


async def test_serves_the_polled_meters_while_it_runs(mosquitto: Mosquitto) -> None:
    site = on_free_ports(SITE)
    meter = next(d for d in site.devices if isinstance(d.source, ModbusSource))
    assert isinstance(meter.source, ModbusSource)
    start = ARRIVALS
    # Twelve simulated hours (72 s here): still running when the test is done with it, however long
    # a busy machine takes to get to the meter.
    until = start + timedelta(hours=12)
    sent = [m.payload["energy_kwh"] for m in SiteSimulation(SITE).messages(start, until) if m.device_id == meter.id]
    publisher = asyncio.create_task(run(site, mosquitto.url, speed=600, start=start, until=until))
    client = ModbusBus(meter.source.bus(), meter.source.url, meter.source.timeout_s)
    try:
        # The meter listens from its first reading on, once the publisher gets to it: a second here
        # (ten simulated minutes) on a quiet machine, later under a full test run. Polled again, as
        # the gateway would, until it answers.
        async with asyncio.timeout(30):
            while True:
                try:
                    answer = await client.read(meter.id, meter.source)
                    break
                except PollError as exc:
                    if exc.reason != "connection":
                        raise
                    await asyncio.sleep(0.2)
        read = meter.source.decode(meter.id, PART, answer).values
    finally:
        await client.close()
        # Still running, so cancelled — again if need be: aiomqtt waits for a PUBACK with Python
        # 3.11's `asyncio.wait_for`, which swallows a cancellation that comes as the PUBACK does.
        while not publisher.done():
            publisher.cancel()
            await asyncio.wait([publisher], timeout=1.0)
        assert publisher.cancelled()
    assert any(read["energy_kwh"] == pytest.approx(kwh, rel=1e-7) for kwh in sent)


async def test_keeps_publishing_across_a_broker_restart(
    mosquitto_factory: MosquittoFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="simulators.publish")
    broker = mosquitto_factory()
    until = ARRIVALS + timedelta(minutes=4)
    expected = [sent for sent in as_sent(SiteSimulation(SITE).messages(ARRIVALS, until))
                if sent[0].startswith(f"facility/{SITE.id}/")]
    publisher = asyncio.create_task(run(on_free_ports(SITE), broker.url, speed=120, start=ARRIVALS, until=until))
    # Up first (a busy machine may take more than a moment to connect), then the broker goes away.
    for _ in range(200):
        if caplog.records:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    broker.stop()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(broker.start)
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-simulation-sub") as subscriber:
        await subscriber.subscribe(NATIVE, qos=1)
        published = await asyncio.wait_for(publisher, 30)
        # The subscriber joined after the restart: it sees an unbroken tail of the simulation.
        received = await receive(subscriber, expected[-1])
    assert published == len(list(SiteSimulation(SITE).messages(ARRIVALS, until)))
    assert received == expected[-len(received):]
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING", "INFO"]  # up, away, back


async def test_refuses_a_broker_url_that_is_not_mqtt() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        await run(SITE, "http://127.0.0.1:1883", until=ARRIVALS)
