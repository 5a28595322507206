"""Smoke tests of the service fixtures: a message goes through the real broker, a line of
line protocol goes into the real time-series server and comes back."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.services import (
    MQTT_TIMEOUT_S,
    Mosquitto,
    MosquittoFactory,
    VictoriaMetrics,
    mosquitto_passwd,
    mqtt_client,
)

pytestmark = pytest.mark.integration


def test_a_published_message_reaches_a_subscriber(mosquitto: Mosquitto) -> None:
    topic = "facility/smoke/em-1/telemetry"
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    with mqtt_client(mosquitto, "smoke-subscriber") as (subscriber, reason):
        assert not reason.is_failure
        subscriber.on_subscribe = lambda *_: subscribed.set()
        subscriber.on_message = lambda _client, _userdata, message: received.put(message)
        subscriber.subscribe("facility/smoke/#", qos=1)
        assert subscribed.wait(MQTT_TIMEOUT_S)
        with mqtt_client(mosquitto, "smoke-publisher") as (publisher, _):
            publisher.publish(topic, b'{"energy_kwh": 1.5}', qos=1).wait_for_publish(MQTT_TIMEOUT_S)
        message = received.get(timeout=MQTT_TIMEOUT_S)
    assert (message.topic, message.payload, message.qos) == (topic, b'{"energy_kwh": 1.5}', 1)


def test_an_extra_broker_with_a_password_file_refuses_anonymous_clients_across_a_restart(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    password_file = tmp_path / "passwd"
    mosquitto_passwd(password_file, {"gateway": "s3cret"})
    broker = mosquitto_factory(allow_anonymous=False, password_file=password_file)

    def check_logins() -> None:
        with mqtt_client(broker, "anonymous") as (_, reason):
            assert reason == "Not authorized"
        with mqtt_client(broker, "gateway", "gateway", "s3cret") as (_, reason):
            assert not reason.is_failure

    check_logins()
    broker.restart()
    check_logins()


def test_a_line_written_with_the_influxdb_v2_api_can_be_exported(victoria_metrics: VictoriaMetrics) -> None:
    line = (
        "sample_fridge,site=smoke,building=main,room=kitchen,device=fridge-1 "
        "temperature_c=4.25,door_open=false 1700000000123000000"
    )
    with (
        InfluxDBClient(url=victoria_metrics.url, token="any", org="facility") as client,
        client.write_api(write_options=SYNCHRONOUS) as write_api,
    ):
        write_api.write(bucket="facility", record=line)

    series = victoria_metrics.export('{__name__=~"sample_fridge_.*", site="smoke"}')

    labels = {"site": "smoke", "building": "main", "room": "kitchen", "device": "fridge-1"}
    assert sorted(series, key=lambda s: str(s["metric"]["__name__"])) == [
        {
            "metric": {"__name__": "sample_fridge_door_open", **labels},
            "values": [0],  # a boolean field is stored as 0 or 1
            "timestamps": [1700000000123],
        },
        {
            "metric": {"__name__": "sample_fridge_temperature_c", **labels},
            "values": [4.25],
            "timestamps": [1700000000123],
        },
    ]
    assert victoria_metrics.query('sample_fridge_temperature_c{site="smoke"}', at=1700000000.123) == [
        {"metric": {"__name__": "sample_fridge_temperature_c", **labels}, "value": [1700000000.123, "4.25"]}
    ]
