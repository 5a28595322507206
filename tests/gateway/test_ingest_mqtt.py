"""`MqttIngest` on a real Mosquitto with a password file and an ACL. `publish` (the `mqtt`
notification channel's alert states) returns once the broker has acknowledged the message,
and raises when the broker refused it (MQTT 5), when there is no connection, when the
connection drops before the acknowledgement and when none comes in time. A retained message
that the broker sends again on a reconnection is passed on only when it is new. A batch's
PUBACKs go as one write; the socket read ahead gives every packet whole and in order."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry

from devices.base import Sample
from gateway import config
from gateway.clock import SystemClock
from gateway.discovery.listener import Discovery
from gateway.ingest import mqtt as ingest_mqtt
from gateway.ingest.mqtt import MqttIngest
from gateway.ingest.pipeline import IngestBuffer, Ingestor, run_acks
from tests.garbage import cyclic_garbage
from tests.services import MQTT_TIMEOUT_S, Mosquitto, MosquittoFactory, mosquitto_passwd, mqtt_client, wait_for

pytestmark = pytest.mark.integration

SITE = """\
id: pub-kg
name: 发布测试幼儿园
buildings:
  - {id: main, name: 教学楼, rooms: [{id: plant, name: 配电房}]}
devices:
  - {id: meter, kind: electricity_meter, room: plant}
  - {id: meter2, kind: electricity_meter, room: plant}
"""
ALLOWED = "facility/pub-kg/alerts/leak_detected/leak-1"
DENIED = "facility/pub-kg/elsewhere/leak-1"
ACL = """\
user gateway
topic read facility/#
topic write facility/+/gateway/status
topic write facility/+/alerts/#
user reader
topic read facility/#
user meter
topic write facility/pub-kg/meter/#
topic write facility/pub-kg/meter2/#
"""
PROTOCOLS = ["3.1.1", "5"]


@pytest.fixture
def broker(tmp_path: Path, mosquitto_factory: MosquittoFactory) -> Mosquitto:
    password_file = tmp_path / "passwd"
    mosquitto_passwd(password_file, {"gateway": "gateway-pw", "reader": "reader-pw", "meter": "meter-pw"})
    acl_file = tmp_path / "acl"
    acl_file.write_text(ACL, encoding="utf-8")
    return mosquitto_factory(allow_anonymous=False, password_file=password_file, acl_file=acl_file)


@contextmanager
def connected(broker: Mosquitto, protocol: str, buffer: IngestBuffer | None = None) -> Iterator[MqttIngest]:
    mqtt_yaml = (f"mqtt: {{url: '{broker.url}', username: gateway, password: gateway-pw, "
                 f"protocol: '{protocol}', client_id: pub-gateway}}\n")
    site = config.parse(SITE + mqtt_yaml, "site.yaml")
    if buffer is None:  # not `or`: an empty buffer is falsy
        buffer = IngestBuffer(100, on_ready=lambda: None)
    ingest = MqttIngest(site.mqtt, site.id, Ingestor(site, buffer), SystemClock(), Discovery(site, CollectorRegistry()))
    ingest.start()
    try:
        wait_for(lambda: ingest.connected)
        yield ingest
    finally:
        ingest.stop()


def retained(broker: Mosquitto, topic: str) -> bytes:
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    with mqtt_client(broker, "reader", "reader", "reader-pw") as (reader, _):
        reader.on_message = lambda _client, _userdata, message: received.put(message)
        reader.subscribe(topic, qos=1)
        return bytes(received.get(timeout=MQTT_TIMEOUT_S).payload)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_publish_returns_once_the_broker_has_the_message(broker: Mosquitto, protocol: str) -> None:
    with connected(broker, protocol) as ingest:
        await ingest.publish(ALLOWED, b'{"transition": "raised"}')
    assert retained(broker, ALLOWED) == b'{"transition": "raised"}'


async def test_under_mqtt5_a_publish_the_acl_denies_is_refused(broker: Mosquitto) -> None:
    with connected(broker, "5") as ingest:
        with pytest.raises(PermissionError, match="Not authorized"):
            await ingest.publish(DENIED, b"{}")
        await ingest.publish(ALLOWED, b"{}")  # the connection goes on


async def test_under_mqtt311_the_broker_acknowledges_a_denied_publish_like_any_other(broker: Mosquitto) -> None:
    """Why refusals need MQTT 5: 3.1.1 has no reason code in its PUBACK."""
    with connected(broker, "3.1.1") as ingest:
        await ingest.publish(DENIED, b"{}")


@pytest.mark.parametrize(("topic", "refused"), [(ALLOWED, False), (DENIED, True)])
async def test_a_puback_that_comes_before_its_publisher_waits_for_it_still_counts(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch, topic: str, refused: bool,
) -> None:
    """paho sends at once on its own thread: the PUBACK may be handled before `publish` has
    the message id to wait for. Here it always is."""
    with connected(broker, "5") as ingest:
        acked = threading.Event()

        def noting(client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode,
                   properties: Properties | None) -> None:
            ingest._on_publish(client, userdata, mid, reason, properties)
            acked.set()

        register = ingest._await_puback

        def late(mid: int, waiter: asyncio.Future[ReasonCode] | None) -> ReasonCode | None:
            assert acked.wait(MQTT_TIMEOUT_S)  # on the event loop: paho's thread goes on meanwhile
            return register(mid, waiter)

        monkeypatch.setattr(ingest._client, "on_publish", noting)
        monkeypatch.setattr(ingest, "_await_puback", late)
        started = time.monotonic()
        if refused:
            with pytest.raises(PermissionError):
                await ingest.publish(topic, b"{}")
        else:
            await ingest.publish(topic, b"{}")
        assert time.monotonic() - started < 2, "it waited for a PUBACK that had come already"


async def test_publish_fails_at_once_without_a_connection(broker: Mosquitto) -> None:
    with connected(broker, "5") as ingest:
        broker.stop()
        wait_for(lambda: not ingest.connected)
        with pytest.raises(ConnectionError, match="not connected"):
            await ingest.publish(ALLOWED, b"{}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_publish_fails_when_no_puback_comes_in_time(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch, protocol: str,
) -> None:
    monkeypatch.setattr(ingest_mqtt, "PUBACK_TIMEOUT_S", 0.5)
    with connected(broker, protocol) as ingest:
        broker.pause()
        try:
            with pytest.raises(TimeoutError, match="no PUBACK"):
                await ingest.publish(ALLOWED, b"{}")
        finally:
            broker.resume()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_publish_fails_when_the_connection_drops_before_the_puback(broker: Mosquitto, protocol: str) -> None:
    with connected(broker, protocol) as ingest:
        broker.pause()
        waiting = asyncio.create_task(ingest.publish(ALLOWED, b"{}"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        broker.kill()
        with pytest.raises(ConnectionError, match="disconnected"):
            await asyncio.wait_for(waiting, 5)
        broker.start()  # paho sends the message again; its late PUBACK is nobody's
        wait_for(lambda: ingest.connected)
        await ingest.publish(ALLOWED, b'{"transition": "cleared"}')
    assert retained(broker, ALLOWED) == b'{"transition": "cleared"}'


def test_a_retained_copy_of_what_was_received_is_not_taken_again_but_a_changed_one_is(broker: Mosquitto) -> None:
    """MQTT 3.1.1: on every reconnection the broker sends each retained message again."""
    ts = int(time.time()) - 3600

    def reading(energy_kwh: int) -> bytes:
        return json.dumps({"ts": ts + energy_kwh, "energy_kwh": energy_kwh}).encode()

    buffer = IngestBuffer(100, on_ready=lambda: None)
    taken: list[tuple[str, float]] = []  # the readings passed on

    def spool() -> int:
        """Takes what is waiting as the spool would, acknowledging it; how many readings so far."""
        batch = buffer.take()
        taken.extend((item.device_id, item.values["energy_kwh"]) for _, item in batch.items if isinstance(item, Sample))
        run_acks(batch.acks)  # as the spooler does: the batch's PUBACKs in one write
        return len(taken)

    with (connected(broker, "3.1.1", buffer) as ingest,
          mqtt_client(broker, "meter", "meter", "meter-pw") as (meter, _)):
        for device, energy_kwh in (("meter", 1), ("meter2", 10)):
            meter.publish(f"facility/pub-kg/{device}/telemetry", reading(energy_kwh), qos=1,
                          retain=True).wait_for_publish(MQTT_TIMEOUT_S)
        wait_for(lambda: spool() >= 2)
        time.sleep(0.3)  # paho's thread sends the PUBACKs: else the broker sends them again, as dups
        connection = ingest._client.socket()
        assert isinstance(connection, socket.socket)
        connection.shutdown(socket.SHUT_RDWR)  # the network drops; paho reconnects in 1–2 s
        wait_for(lambda: not ingest.connected)
        # At QoS 0 the broker keeps nothing for the absent gateway: only the retained copy tells.
        meter.publish("facility/pub-kg/meter2/telemetry", reading(20), qos=0, retain=True).wait_for_publish(
            MQTT_TIMEOUT_S)
        wait_for(lambda: ingest.connected)
        wait_for(lambda: spool() >= 3)
        time.sleep(0.5)  # anything else the broker would send after reconnecting
        spool()
    assert taken == [("meter", 1), ("meter2", 10), ("meter2", 20)]


def test_every_connection_sends_without_waiting_for_the_broker_s_acknowledgement(broker: Mosquitto) -> None:
    """Nagle's algorithm is off on the gateway's connection, the first and the one after the
    network dropped: a batch's PUBACKs, the status and an alert published go out at once."""

    def nodelay(ingest: MqttIngest) -> socket.socket:
        connection = ingest._client.socket()
        assert isinstance(connection, socket.socket)
        assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        return connection

    with connected(broker, "3.1.1") as ingest:
        first = nodelay(ingest)
        first.shutdown(socket.SHUT_RDWR)
        wait_for(lambda: not ingest.connected)
        wait_for(lambda: ingest.connected)
        assert nodelay(ingest) is not first


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_batch_s_pubacks_in_one_write_acknowledge_each_message_and_no_other(broker: Mosquitto, protocol: str) -> None:
    """The PUBACKs of all but the last 100 of 300 messages sent as one write (as the spooler
    does after its commit): after a reconnection of the session the broker sends again exactly
    the 100 left unacknowledged."""
    ts = int(time.time()) - 3600
    buffer = IngestBuffer(1_000, on_ready=lambda: None)

    def energies(n: int) -> list[float]:
        wait_for(lambda: len(buffer) >= n)
        time.sleep(0.3)  # anything more would have come by now
        batch = buffer.take()
        assert len(batch.items) == n
        run_acks(batch.acks[:-100] if n == 300 else batch.acks)  # all but the last 100 readings
        time.sleep(0.3)  # paho's thread sends them
        return [item.values["energy_kwh"] for _, item in batch.items if isinstance(item, Sample)]

    with mqtt_client(broker, "meter", "meter", "meter-pw") as (meter, _):
        with connected(broker, protocol, buffer):
            time.sleep(0.3)  # the gateway's own retained status first (acknowledged with the batch too)
            for i in range(300):
                meter.publish("facility/pub-kg/meter/telemetry", json.dumps({"ts": ts + i, "energy_kwh": i}), qos=1)
            assert energies(300) == list(range(300))
        with connected(broker, protocol, buffer):
            assert energies(100) == list(range(200, 300))
        with connected(broker, protocol, buffer):
            time.sleep(0.5)
            assert len(buffer) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_burst_read_ahead_arrives_whole_and_in_order(broker: Mosquitto, protocol: str) -> None:
    """paho's socket is read 64 KiB at a time: packets of every size, split anywhere between
    two reads, and some larger than a read, come out whole and in the order they were sent."""
    ts = int(time.time()) - 3600
    buffer = IngestBuffer(10_000, on_ready=lambda: None)
    sizes = [(i * 7919) % 3000 for i in range(1_500)]  # padding, bytes: packets end anywhere in a read
    large = {100, 700, 1_200}  # beyond a read, and beyond the payload limit: refused, whole
    limit = config.parse(SITE, "site.yaml").ingest.max_payload_bytes
    with (mqtt_client(broker, "meter", "meter", "meter-pw") as (meter, _),
          connected(broker, protocol, buffer)):
        time.sleep(0.3)  # the gateway's own retained status first
        for i, pad in enumerate(sizes):
            body = json.dumps({"ts": ts + i, "energy_kwh": i}) + " " * (limit + 70_000 if i in large else pad)
            meter.publish("facility/pub-kg/meter/telemetry", body, qos=1)
        taken: list[float] = []
        refused: list[str] = []

        def spool() -> bool:
            """As the spooler does: takes what came and acknowledges it (the broker sends no
            more than 1,000 unacknowledged)."""
            batch = buffer.take()
            taken.extend(item.values["energy_kwh"] for _, item in batch.items if isinstance(item, Sample))
            refused.extend(r.reason for r in batch.rejections)
            run_acks(batch.acks)
            return len(taken) + len(refused) >= len(sizes)

        wait_for(spool, timeout=30)
    assert taken == [i for i in range(len(sizes)) if i not in large]
    assert refused == ["too_large"] * len(large)


def test_a_message_received_leaves_no_garbage_in_cycles(broker: Mosquitto) -> None:
    """paho matched every message's topic against callbacks added per topic filter (none here)
    with a recursive closure: six objects in a cycle a message, which only the garbage
    collector frees, in collections that hold the GIL for tens of milliseconds."""
    ts = int(time.time()) - 3600
    buffer = IngestBuffer(10_000, on_ready=lambda: None)
    taken: list[float] = []
    with (mqtt_client(broker, "meter", "meter", "meter-pw") as (meter, _),
          connected(broker, "5", buffer)):
        time.sleep(0.3)  # the gateway's own retained status first
        with cyclic_garbage() as garbage:
            for i in range(500):
                meter.publish("facility/pub-kg/meter/telemetry", json.dumps({"ts": ts + i, "energy_kwh": i}), qos=1)

            def spool() -> bool:
                batch = buffer.take()
                taken.extend(item.values["energy_kwh"] for _, item in batch.items if isinstance(item, Sample))
                run_acks(batch.acks)
                return len(taken) >= 500

            wait_for(spool, timeout=30)
    assert taken == list(range(500))  # every message, in order
    assert len(garbage) < 50, sorted({type(o).__name__ for o in garbage})
