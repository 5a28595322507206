"""Shared fixtures: real services (see `services.py`), started once per session on free
loopback ports and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = start_victoria_metrics(tmp_path_factory.mktemp("victoria-metrics"))
    yield server
    server.stop()
