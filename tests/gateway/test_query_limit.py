"""Heavy reads cannot starve the gateway: the gateway as its own process (`facility-gateway
run`) on a store with 30 days of readings a minute, many clients reading all of it at once
over real HTTP while /health and /metrics are probed; paging through a series that is too
long for one answer."""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, get_args

import httpx
import pytest
import yaml
from fastapi.params import Depends
from fastapi.routing import APIRoute

from devices.base import Sample
from gateway.api import alerts, auth, dashboard, devices, energy, ingest, operations, reports
from gateway.api.devices import MAX_RAW_POINTS
from gateway.api.query_limit import HeavyQuery, QueryLimiter
from gateway.counters import Counters
from gateway.storage.sqlite import SqliteStore
from tests.services import GatewayProcess, Mosquitto, free_port

pytestmark = pytest.mark.integration

METERS = 2
DAYS = 30
STEP_S = 60
READERS = 60
PROBE_LIMIT_S = 1.0
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START = NOW - timedelta(days=DAYS)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A readings store with a reading a minute of each meter for 30 days up to now:
    43,200 points a series, more than four answers' worth."""
    db = tmp_path_factory.mktemp("history") / "readings.db"
    store = SqliteStore(db)
    try:
        for i in range(METERS):
            start_s = int(START.timestamp())
            samples = [Sample(f"em-{i}", (start_s + k * STEP_S) * 1000,
                              {"energy_kwh": 1000.0 + k / 60, "power_w": 2000.0 + k % 600})
                       for k in range(DAYS * 86_400 // STEP_S)]
            for k in range(0, len(samples), 5000):
                store.write(samples[k:k + 5000], [])
    finally:
        store.close()
    return db


Start = Callable[..., httpx.Client]


@pytest.fixture
def gateway(mosquitto: Mosquitto, history: Path, tmp_path: Path,
            request: pytest.FixtureRequest) -> Iterator[Start]:
    """`gateway(**api_settings)`: the gateway on a copy of the history, reads public."""
    started: list[GatewayProcess] = []

    def start(**api: Any) -> httpx.Client:
        data = tmp_path / f"data-{len(started)}"
        data.mkdir()
        shutil.copy(history, data / "readings.db")
        port = free_port()
        site = {
            "id": "kg", "name": "测试幼儿园",
            "buildings": [{"id": "main", "name": "教学楼", "rooms": [{"id": "plant", "name": "配电间", "type": "plant"}]}],
            "devices": [{"id": f"em-{i}", "kind": "electricity_meter", "room": "plant"} for i in range(METERS)],
            "mqtt": {"url": mosquitto.url, "client_id": f"gw-{request.node.name}"[:60]},
            "storage": {"data_dir": str(data)},
            "api": {"port": port, **api},
            "auth": {"public_read": True},
        }
        config = tmp_path / f"site-{len(started)}.yaml"
        config.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
        process = GatewayProcess(config, port, tmp_path / f"gateway-{len(started)}.log")
        process.start()
        started.append(process)
        return process.client

    yield start
    for process in started:
        process.client.close()
        process.stop()


class Answer(NamedTuple):
    status: int
    retry_after: str | None
    detail: str | None


def _read(base_url: str, start: datetime, i: int) -> Answer:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        r = client.get(f"/api/v1/devices/em-{i % METERS}/readings", params={"start": start.isoformat()})
    return Answer(r.status_code, r.headers.get("Retry-After"), r.json()["detail"] if r.status_code == 503 else None)


def _read_all(base_url: str, start: datetime, readers: int) -> list[Answer]:
    with ThreadPoolExecutor(readers) as pool:
        return list(pool.map(partial(_read, base_url, start), range(readers)))


def read_all(base_url: str, readers: int) -> list[Answer]:
    """`readers` clients at once, each asking for every raw reading of a meter over 30 days.
    They run in a process of their own: receiving megabytes of answers in 60 threads of the
    test's process would slow its probes' own clients, and the probes would time the test."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_read_all, base_url, START, readers).result()


@contextmanager
def probing(client: httpx.Client, path: str) -> Iterator[list[float]]:
    """Seconds each GET `path` took, probed every 0.1 s for as long as the block runs."""
    took: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.wait(0.1):
            start = time.monotonic()
            assert client.get(path, timeout=30).status_code == 200
            took.append(time.monotonic() - start)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        yield took
    finally:
        done.set()
        prober.join()


@pytest.mark.alone  # judges /health's answer time: not beside another test process on two cores
def test_health_answers_at_once_while_heavy_reads_are_refused_beyond_the_limit(gateway: Start) -> None:
    client = gateway(max_heavy_queries=4, heavy_wait_s=0.2)
    with probing(client, "/health") as health, probing(client, "/metrics") as metrics:
        answers = read_all(str(client.base_url), READERS)
    assert len(health) >= 3, "the reads were over before /health was probed"
    assert max(health) < PROBE_LIMIT_S, f"/health took {max(health):.2f} s under load"
    assert max(metrics) < PROBE_LIMIT_S, f"/metrics took {max(metrics):.2f} s under load"
    statuses = sorted({a.status for a in answers})
    assert statuses == [200, 503], statuses  # some served, some told to come back; no 500
    for busy in (a for a in answers if a.status == 503):
        assert busy.retry_after == "2"
        assert (busy.detail or "").startswith("the gateway is busy: 4 heavy queries")
    refused = sum(a.status == 503 for a in answers)
    exposition = client.get("/metrics").text
    assert f"facility_api_heavy_queries_refused_total {float(refused)}" in exposition
    assert "facility_api_heavy_queries_limit 4.0" in exposition
    assert "facility_api_heavy_queries_running 0.0" in exposition
    # Told to come back, a client gets its answer
    assert client.get("/api/v1/devices/em-0/readings", params={"start": START.isoformat()}).status_code == 200


def test_a_series_too_long_for_one_answer_says_where_it_goes_on(gateway: Start) -> None:
    client = gateway()
    seen: list[str] = []
    start = START.isoformat()
    while True:
        [series] = client.get("/api/v1/devices/em-0/readings",
                              params={"metric": "power_w", "start": start, "end": NOW.isoformat()}).json()
        seen += [p["ts"] for p in series["points"]]
        if not series["truncated"]:
            assert series["next"] is None
            break
        assert len(series["points"]) == MAX_RAW_POINTS
        start = series["next"]
    assert len(seen) == len(set(seen)) == DAYS * 86_400 // STEP_S  # every point once, none left out
    assert seen == sorted(seen)


HEAVY = {"/api/v1/devices/{device_id}/readings", "/api/v1/devices/{device_id}/events", "/api/v1/reports/safety",
         "/api/v1/reports/canteen", "/api/v1/reports/energy", "/api/v1/reports/energy/period",
         "/api/v1/reports/disclosure"}


def test_every_heavy_route_takes_a_slot() -> None:
    [depends] = [a for a in get_args(HeavyQuery) if isinstance(a, Depends)]
    routers = (devices.router, ingest.router, operations.router, alerts.router, energy.router, reports.router,
               auth.router, dashboard.router)
    routes = {(r.path, *sorted(r.methods or ())): r for router in routers for r in router.routes if isinstance(r, APIRoute)}
    assert {path for path, *_ in routes} >= HEAVY
    for (path, *methods), route in routes.items():
        takes = any(d.call is depends.dependency for d in route.dependant.dependencies)
        assert takes == (path in HEAVY and methods == ["GET"]), path


async def test_a_query_waits_a_moment_for_a_slot_then_is_refused() -> None:
    limiter = QueryLimiter(1, 0.5, Counters())
    assert await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.1)
    limiter.release()
    assert await waiting  # a slot came free within the wait
    started = time.monotonic()
    assert not await limiter.acquire()
    assert time.monotonic() - started >= 0.5
    limiter.release()
    assert await limiter.acquire()

    at_once = QueryLimiter(1, 0, Counters())
    assert await at_once.acquire()
    assert not await at_once.acquire()
