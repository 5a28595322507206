"""Shared fixtures: real services (see `services.py`), started once per session on free
loopback ports and stopped at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser

from tests.browser import chromium
from tests.services import (
    Mosquitto,
    MosquittoFactory,
    VictoriaMetrics,
    start_mosquitto,
    start_victoria_metrics,
)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """An anonymous broker that never drops a message for a slow subscriber."""
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """Starts extra brokers, `mosquitto_factory(allow_anonymous=False, password_file=…)`
    (options as for `services.start_mosquitto`); all are stopped after the test."""
    started: list[Mosquitto] = []

    def start(**options: str | int | bool | Path) -> Mosquitto:
        directory = tmp_path / f"mosquitto-{len(started)}"
        directory.mkdir()
        broker = start_mosquitto(directory, **options)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Callable[[str, bytes], None]]:
    """Publishes at QoS 1 on the session's broker and waits until the broker has it."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()

    def publish(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    yield publish
    client.disconnect()
    client.loop_stop()


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = start_victoria_metrics(tmp_path_factory.mktemp("victoria-metrics"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for a module's browser tests (tests/browser.py)."""
    with chromium() as b:
        yield b
