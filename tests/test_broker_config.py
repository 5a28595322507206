"""The shipped broker config on a real Mosquitto: `deploy/mosquitto/mosquitto.conf` and `acl`
as they ship (only the port and file locations changed, `services.start_shipped_mosquitto`),
with `facility-gateway run` as its own process logged in as the shipped `gateway` user with
the shipped client id, and devices logged in under their own ids.

What a device login sends must not cost the gateway its session, a retained message must be
counted once, and the gateway's alert states must reach who may read them and no one else."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.config import MqttSettings
from gateway.ingest.mqtt import session_client_id
from tests.services import (
    DEPLOY_MOSQUITTO,
    MQTT_TIMEOUT_S,
    Accounting,
    GatewayProcess,
    Mosquitto,
    accounting,
    free_port,
    log_tail,
    mqtt_client,
    start_shipped_mosquitto,
    wait_for,
)

pytestmark = pytest.mark.integration

SITE_ID: Final = "broker-kg"
METERS: Final = ("m00", "m01", "m02")
LEAK: Final = "leak-1"
# Every login of the password file: the gateway, the devices, a device login that tries to
# pass for the gateway, and the shipped reader of alert states.
PASSWORDS: Final = {
    "gateway": "gateway-pw", **{m: f"{m}-pw" for m in METERS}, LEAK: "leak-pw", "intruder": "intruder-pw",
    "alerts": "alerts-pw",
}
# Event times two days back, one second apart per meter: inside the clock-skew policy.
T0: Final = int(time.time()) // 3600 * 3600 - 2 * 86_400
SETTLE_S: Final = 30.0
ACKED_S: Final = 1.0  # for the gateway's PUBACKs of what it has stored to reach the broker
LOST_CONNECTION: Final = "MQTT connection to"  # … lost: … ; the gateway's warning when kicked off


def reading(k: int) -> tuple[str, str, bytes]:
    """Reading k: (device, topic, payload); each meter's energy total grows with k."""
    device = METERS[k % len(METERS)]
    payload = json.dumps({"ts": T0 + k // len(METERS), "energy_kwh": k}).encode()
    return device, f"facility/{SITE_ID}/{device}/telemetry", payload


def write_site(tmp_path: Path, broker: Mosquitto, **changes: Any) -> tuple[Path, int]:
    api_port = free_port()
    site: dict[str, Any] = {
        "id": SITE_ID, "name": "消息代理测试幼儿园",
        "buildings": [{"id": "main", "name": "主楼", "rooms": [{"id": "plant", "name": "配电房"}]}],
        "devices": [
            *({"id": m, "kind": "electricity_meter", "room": "plant", "interval_s": 60} for m in METERS),
            {"id": LEAK, "kind": "leak_sensor", "room": "plant"},
        ],
        # The shipped login and, left at its default, the shipped client id (deploy/site.yaml).
        "mqtt": {"url": broker.url, "username": "gateway", "password": PASSWORDS["gateway"]},
        "storage": {"data_dir": str(tmp_path / "data")},
        "api": {"port": api_port},
        "auth": {"public_read": True},
        "fire_patrol": {"rounds": []},  # no reminders of missed patrol rounds among the alerts published
    }
    for key, value in changes.items():
        site[key] = site[key] | value if isinstance(value, dict) and key in site else value
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    return path, api_port


@contextmanager
def running_gateway(tmp_path: Path, broker: Mosquitto, **changes: Any) -> Iterator[GatewayProcess]:
    config, api_port = write_site(tmp_path, broker, **changes)
    gateway = GatewayProcess(config, api_port, tmp_path / "gateway.log")
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.client.close()
        gateway.stop()


@contextmanager
def devices(broker: Mosquitto, *logins: str) -> Iterator[dict[str, mqtt.Client]]:
    """Connected clients, each logged in as its device id with that id as its client id."""
    with ExitStack() as stack:
        clients = {}
        for login in logins:
            client, reason = stack.enter_context(mqtt_client(broker, login, login, PASSWORDS[login]))
            assert not reason.is_failure, f"{login}: {reason}"
            clients[login] = client
        yield clients


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    """At QoS 1, returning once the broker has acknowledged it."""
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(MQTT_TIMEOUT_S)
    assert info.is_published(), f"the broker did not acknowledge {topic}"


def try_to_take_over(broker: Mosquitto, client_id: str) -> None:
    """A device login connecting with `client_id` and a clean session, as a misconfigured or
    hostile device would: under MQTT that closes any other connection with the same client id
    and discards its session, with whatever waits in it."""
    with mqtt_client(broker, client_id, "intruder", PASSWORDS["intruder"]) as (_, reason):
        assert not reason.is_failure, reason


def within(timeout: float, check: Callable[[], bool]) -> bool:
    """Polls `check` until it holds or `timeout` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def counts(gateway: GatewayProcess) -> Accounting:
    """The gateway's counters, from /metrics."""
    return accounting(gateway.client)


def readings_in_api(gateway: GatewayProcess, device: str) -> list[float]:
    window = {"metric": "energy_kwh", "start": datetime.fromtimestamp(T0 - 60, UTC).isoformat(),
              "end": datetime.fromtimestamp(T0 + 3600, UTC).isoformat()}
    series = gateway.client.get(f"/api/v1/devices/{device}/readings", params=window).json()
    return [p["value"] for p in series[0]["points"]]


# ------------------------------------------------------------------------ client ids


def test_a_device_login_cannot_take_over_the_gateways_session(tmp_path: Path) -> None:
    """300 readings the broker acknowledged, published around takeover attempts with the
    gateway's client id — while it runs, and while it is stopped and its session holds what
    arrives — are all stored, and the gateway is never disconnected."""
    gateway_client_id = session_client_id(MqttSettings(), SITE_ID)  # what the gateway asks for, left at its default
    (tmp_path / "mq").mkdir()
    broker = start_shipped_mosquitto(tmp_path / "mq", PASSWORDS)
    n = 300
    try:
        with devices(broker, *METERS) as clients, running_gateway(tmp_path, broker) as gateway:

            def send(first: int, last: int, takeovers: tuple[int, ...]) -> None:
                for k in range(first, last):
                    if k in takeovers:
                        try_to_take_over(broker, gateway_client_id)
                    device, topic, payload = reading(k)
                    publish(clients[device], topic, payload)
                    time.sleep(0.02)  # 50 a second: each takeover has time to cost something

            send(0, 100, takeovers=(20, 50, 80))
            gateway.stop()  # a restart (an upgrade, a reboot): its session keeps what arrives
            send(100, 200, takeovers=(150,))
            gateway.start()
            send(200, 300, takeovers=(220, 260))

            within(SETTLE_S, lambda: counts(gateway).stored("sqlite") >= n)  # the assertion says how many
            m = counts(gateway)
            assert m.stored("sqlite") == n, f"stored {m.stored('sqlite'):.0f} of {n} acknowledged readings"
            m.check()
            for i, device in enumerate(METERS):
                assert readings_in_api(gateway, device) == [float(k) for k in range(i, n, len(METERS))], device
            log = (tmp_path / "gateway.log").read_text(encoding="utf-8")
            assert LOST_CONNECTION not in log, log_tail(tmp_path / "gateway.log")
    finally:
        broker.stop()


# ------------------------------------------------------------------------ alert states


@contextmanager
def subscribed(broker: Mosquitto, login: str, topic: str) -> Iterator[queue.Queue[mqtt.MQTTMessage]]:
    """What `login` receives on `topic` (subscribed before this yields)."""
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    granted = threading.Event()
    with mqtt_client(broker, login, login, PASSWORDS[login]) as (client, reason):
        assert not reason.is_failure, f"{login}: {reason}"
        client.on_message = lambda _client, _userdata, message: received.put(message)
        client.on_subscribe = lambda *_: granted.set()
        client.subscribe(topic, qos=1)
        assert granted.wait(MQTT_TIMEOUT_S)
        yield received


def publish_v5(broker: Mosquitto, login: str, topic: str, payload: bytes) -> ReasonCode:
    """Publishes at QoS 1 over MQTT 5 as `login`; the reason code of the broker's PUBACK
    (MQTT 3.1.1 acknowledges a publish the ACL denies as if it were taken)."""
    acked: queue.Queue[ReasonCode] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=login, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(login, PASSWORDS[login])
    client.on_publish = lambda _client, _userdata, _mid, reason, _properties: acked.put(reason)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        return acked.get(timeout=MQTT_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def raise_leak_alert(broker: Mosquitto) -> None:
    with devices(broker, LEAK) as clients:
        publish(clients[LEAK], f"facility/{SITE_ID}/{LEAK}/telemetry", b'{"leak": true}')


MQTT_CHANNEL: Final = {"channels": [{"id": "broker", "type": "mqtt"}]}
ALERT_TOPIC: Final = f"facility/{SITE_ID}/alerts/leak_detected/{LEAK}"


def test_the_alerts_login_gets_the_alert_states_the_gateway_publishes(tmp_path: Path) -> None:
    (tmp_path / "mq").mkdir()
    broker = start_shipped_mosquitto(tmp_path / "mq", PASSWORDS)
    try:
        with (running_gateway(tmp_path, broker, notifications=MQTT_CHANNEL) as gateway,
              subscribed(broker, "alerts", f"facility/{SITE_ID}/alerts/#") as received):
            raise_leak_alert(broker)
            message = received.get(timeout=10)
            assert message.topic == ALERT_TOPIC
            state = json.loads(message.payload)
            assert (state["transition"], state["alert"]["rule"], state["alert"]["device_id"]) == (
                "raised", "leak_detected", LEAK)
            sent = 'facility_notifications_sent_total{channel="broker"} 1.0'
            wait_for(lambda: sent in gateway.client.get("/metrics").text)
    finally:
        broker.stop()


@pytest.mark.parametrize("login", ["alerts", LEAK, "intruder"])
def test_no_other_login_may_publish_an_alert_state(tmp_path: Path, login: str) -> None:
    """Not the reader of alert states (whose user name, `alerts`, would fit the devices'
    pattern `facility/+/%u/#` at the alert topics' level), not a device."""
    (tmp_path / "mq").mkdir()
    broker = start_shipped_mosquitto(tmp_path / "mq", PASSWORDS)
    try:
        reason = publish_v5(broker, login, ALERT_TOPIC, b'{"transition": "cleared"}')
        assert reason == "Not authorized"
        assert not publish_v5(broker, "gateway", ALERT_TOPIC, b"{}").is_failure
    finally:
        broker.stop()


def test_under_mqtt5_an_alert_state_the_broker_refuses_counts_as_refused_not_sent(tmp_path: Path) -> None:
    """With the shipped config but an ACL that does not let the gateway write alert states
    (as the ACL shipped before), MQTT 5's PUBACK says so and the channel counts the notice
    as a failed attempt and refused for good, not as sent."""
    shipped = (DEPLOY_MOSQUITTO / "acl").read_text(encoding="utf-8")
    grant = "topic write facility/+/alerts/#\n"
    assert grant in shipped
    acl = tmp_path / "acl"
    acl.write_text(shipped.replace(grant, ""), encoding="utf-8")
    (tmp_path / "mq").mkdir()
    broker = start_shipped_mosquitto(tmp_path / "mq", PASSWORDS, acl_file=acl)
    try:
        with running_gateway(tmp_path, broker, notifications=MQTT_CHANNEL, mqtt={"protocol": "5"}) as gateway:
            raise_leak_alert(broker)
            refused = 'facility_notifications_dropped_total{channel="broker",reason="refused"} 1.0'
            assert within(10, lambda: refused in gateway.client.get("/metrics").text), "not counted as refused"
            m = accounting(gateway.client)
            assert m.total("facility_notifications_failed_total", channel="broker") == 1
            assert m.total("facility_notifications_sent_total", channel="broker") == 0
            health = gateway.client.get("/health").json()["components"]["notify:broker"]
            assert health["state"] == "down"
            assert "Not authorized" in health["detail"]
    finally:
        broker.stop()


# ------------------------------------------------------------------------ retained messages


def connections(tmp_path: Path) -> int:
    """How often the gateway has connected to the broker so far, by its log."""
    return (tmp_path / "gateway.log").read_text(encoding="utf-8").count("MQTT connected to")


@pytest.mark.parametrize(("protocol", "reconnect"), [
    ("3.1.1", "broker restart"),
    ("5", "broker restart"),
    ("5", "gateway restart"),
])
def test_a_retained_message_counts_once_however_often_the_gateway_reconnects(
    tmp_path: Path, protocol: str, reconnect: str,
) -> None:
    """A malformed payload and a good reading, both retained on device topics before the
    gateway first subscribed, are received once each: the bad one is rejected and kept as a
    dead letter once, the good one is stored once, through two reconnections."""
    (tmp_path / "mq").mkdir()
    broker = start_shipped_mosquitto(tmp_path / "mq", PASSWORDS)
    bad_topic = f"facility/{SITE_ID}/m00/telemetry"
    try:
        with devices(broker, "m00", "m01") as clients:
            publish(clients["m00"], bad_topic, b"{not json", retain=True)
            _, topic, payload = reading(1)  # m01's
            publish(clients["m01"], topic, payload, retain=True)
        with running_gateway(tmp_path, broker, mqtt={"protocol": protocol}) as gateway:
            wait_for(lambda: counts(gateway).total("facility_messages_received_total") >= 2)

            def reconnect_then_send(k: int) -> None:
                """Reconnects, then sends m02's reading k and waits until it is stored."""
                if reconnect == "broker restart":
                    before = connections(tmp_path)
                    # The gateway acknowledges what it has stored just after its spool commits it;
                    # a broker restarted before the PUBACK arrives delivers the message again, as
                    # QoS 1 allows, and the count below would be one over (a retained reading was,
                    # restarted 90 ms after the first connection on a loaded machine).
                    time.sleep(ACKED_S)
                    broker.restart()  # persistence: the gateway's session and the retained messages stay
                    wait_for(lambda: connections(tmp_path) > before, SETTLE_S)
                else:
                    gateway.stop()
                    gateway.start()
                time.sleep(0.3)  # the gateway's SUBSCRIBE is handled before the reading below
                with devices(broker, "m02") as clients:
                    _, topic, payload = reading(k)
                    publish(clients["m02"], topic, payload)
                wait_for(lambda: float(k) in readings_in_api(gateway, "m02"))

            reconnect_then_send(2)
            reconnect_then_send(5)
            m = counts(gateway)
            rejected = gateway.client.get("/api/v1/rejected").json()
            assert (m.total("facility_messages_rejected_total"), len(rejected)) == (1, 1), rejected
            assert rejected[0]["source"] == f"mqtt:{bad_topic}"
            assert m.total("facility_messages_received_total") == 4  # the two retained, m02's two
            assert m.stored("sqlite") == 3
            assert readings_in_api(gateway, "m01") == [1.0]
    finally:
        broker.stop()
