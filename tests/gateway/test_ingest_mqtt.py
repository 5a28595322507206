"""`MqttIngest.publish` (the `mqtt` notification channel's alert states) on a real Mosquitto
with a password file and an ACL: it returns once the broker has acknowledged the message,
and raises when the broker refused it (MQTT 5), when there is no connection, when the
connection drops before the acknowledgement and when none comes in time."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway import config
from gateway.clock import SystemClock
from gateway.ingest import mqtt as ingest_mqtt
from gateway.ingest.mqtt import MqttIngest
from gateway.pipeline import IngestBuffer, Ingestor
from tests.services import MQTT_TIMEOUT_S, Mosquitto, MosquittoFactory, mosquitto_passwd, mqtt_client, wait_for

pytestmark = pytest.mark.integration

SITE = """\
id: pub-kg
name: 发布测试幼儿园
buildings:
  - {id: main, name: 教学楼, rooms: [{id: plant, name: 配电房}]}
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
"""
PROTOCOLS = ["3.1.1", "5"]


@pytest.fixture
def broker(tmp_path: Path, mosquitto_factory: MosquittoFactory) -> Mosquitto:
    password_file = tmp_path / "passwd"
    mosquitto_passwd(password_file, {"gateway": "gateway-pw", "reader": "reader-pw"})
    acl_file = tmp_path / "acl"
    acl_file.write_text(ACL, encoding="utf-8")
    return mosquitto_factory(allow_anonymous=False, password_file=password_file, acl_file=acl_file)


@contextmanager
def connected(broker: Mosquitto, protocol: str) -> Iterator[MqttIngest]:
    mqtt_yaml = (f"mqtt: {{url: '{broker.url}', username: gateway, password: gateway-pw, "
                 f"protocol: '{protocol}', client_id: pub-gateway}}\n")
    site = config.parse(SITE + mqtt_yaml, "site.yaml")
    ingest = MqttIngest(site.mqtt, site.id, Ingestor(site, IngestBuffer(100, on_ready=lambda: None)), SystemClock())
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
