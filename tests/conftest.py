"""Shared fixtures: real services (see `services.py`), started once per session on free
loopback ports and stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser

from gateway.storage.state import StateDatabase, sqlite_url
from tests.browser import chromium
from tests.services import (
    Mosquitto,
    MosquittoFactory,
    Postgres,
    VictoriaMetrics,
    start_mosquitto,
    start_postgres,
    start_victoria_metrics,
)

# The processes the tests start (the gateway, simulators, the demo) run this checkout's code,
# not whatever checkout the virtual environment was installed from (a worktree or a clone
# sharing one environment would otherwise test another tree in its subprocesses).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                          os.environ.get("PYTHONPATH")]))

# The modules that take longest, first, longest of all first (seconds in a full run here): the
# suite runs in two processes a module at a time (scripts/check), and one of these begun last
# would leave the other process idle meanwhile. xdist would otherwise order modules by their
# number of tests (pyproject.toml turns that off), which put the month, one test, last.
SLOWEST_FIRST = (
    "tests/test_reports_month.py",      # a simulated month through the gateway, ~115 s
    "tests/test_admin_browser.py",      # ~75 s
    "tests/gateway/test_safety_report.py",  # ~75 s
    "tests/test_dashboard_browser.py",  # ~70 s
    "tests/gateway/test_auth.py",       # ~60 s
    "tests/test_district.py",           # ~55 s
    "tests/test_faults.py",             # ~55 s
    "tests/test_broker_config.py",      # ~50 s
    "tests/gateway/test_rules.py",      # a normal month raises nothing, ~40 s
    "tests/devices/test_decode_properties.py",  # ~40 s
    "tests/test_language_scan.py",      # ~35 s
    "tests/gateway/test_latest_readings.py",  # ~30 s
    "tests/test_alerting.py",
    "tests/gateway/test_dashboard.py",
    "tests/gateway/test_failover.py",
    "tests/gateway/test_report_delivery.py",
    "tests/test_dispatch_browser.py",
    "tests/gateway/test_ingest_mqtt.py",
    "tests/test_ledger_browser.py",
    "tests/test_disclosure_browser.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: each module's own order is kept


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state store of its own for the test, once on each engine: a SQLite file, then a
    schema of its own in the session's PostgreSQL server. The stores' tests take it (or
    `state_db`), so both implementations pass the same suite."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "state.db")
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_schema()


@pytest.fixture
def postgres_state(postgres: Postgres) -> str:
    """A state store of its own for the test in the session's PostgreSQL (a schema): where
    several gateway processes share one."""
    return postgres.new_schema()


@pytest.fixture
def state_db(state_url: str) -> Iterator[StateDatabase]:
    db = StateDatabase(state_url)
    yield db
    db.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for a module's browser tests (tests/browser.py)."""
    with chromium() as b:
        yield b
