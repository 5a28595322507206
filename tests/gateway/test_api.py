"""The gateway in-process (FastAPI lifespan) against a real Mosquitto: MQTT and HTTP ingest,
bad input, the devices and readings API, the dead-letter log, health and metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from gateway import config
from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config.auth import Scope
from tests.served import serve
from tests.services import Mosquitto, accounting, wait_for

pytestmark = pytest.mark.integration

SITE = """\
id: kg
name: 测试幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {{id: kitchen, name: 厨房, type: kitchen}}
      - {{id: gate-house, name: 门卫室, type: gate}}
devices:
  - {{id: fridge, kind: sample_fridge, room: kitchen, interval_s: 60}}
  - {{id: meter, kind: electricity_meter, room: kitchen}}
  - {{id: gate, kind: door, room: gate-house}}
mqtt: {{url: "{url}", client_id: "{client_id}"}}
storage: {{data_dir: "{data_dir}"}}
ingest: {{max_payload_bytes: 1024}}
# Nobody keeps the 留样 register or patrols here: no alerts for meals without samples or missed rounds.
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""
T0 = 1_795_219_200  # 2026-11-21T00:00:00Z


@pytest.fixture
def api(mosquitto: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    site = config.parse(
        SITE.format(url=mosquitto.url, client_id=f"gw-{request.node.name}"[:60], data_dir=tmp_path / "data"),
        "site.yaml",
    )
    with TestClient(create_app(site, SystemClock())) as client:
        wait_for(lambda: client.get("/health").json()["components"]["mqtt"]["state"] == "ok")
        key = client.app.state.auth.create_api_key("tests", [Scope.READ, Scope.INGEST], "test", 0)  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def test_mqtt_telemetry_reaches_devices_and_readings(api: TestClient, publisher: Callable[[str, bytes], None]) -> None:
    temps = [4.0, 4.5, 9.25, 5.0]
    for i, t in enumerate(temps):
        publisher("facility/kg/fridge/telemetry",
                  json.dumps({"ts": T0 + 60 * i, "temperature_c": t, "door_open": i == 2}).encode())
    publisher("facility/kg/gate/event",
              json.dumps({"ts": T0, "type": "access", "credential": "card:0042", "granted": True}).encode())

    def fridge() -> dict[str, Any]:
        devices = {d["id"]: d for d in api.get("/api/v1/devices").json()}
        result: dict[str, Any] = devices["fridge"]
        return result

    wait_for(lambda: fridge()["last_values"].get("temperature_c") == 5.0)
    f = fridge()
    assert f["kind"] == "sample_fridge"
    assert f["room"] == "kitchen"
    assert f["building"] == "main"
    assert f["last_values"] == {"temperature_c": 5.0, "door_open": False}
    assert f["last_seen"] == "2026-11-21T00:03:00Z"
    assert f["online"] is True  # heard just now, as the offline rule judges it, though its readings are old

    def stored() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.get("/api/v1/devices/fridge/readings", params={
            "metric": "temperature_c", "start": "2026-11-20T23:00:00Z", "end": "2026-11-21T01:00:00Z"}).json()
        return found

    # The live state moves at the spool's commit; the history once the SQLite sink has written
    # its batch (a sink that has caught up gathers the next commits for a moment).
    wait_for(lambda: len(stored()[0]["points"]) == len(temps))
    series = stored()
    assert [p["value"] for p in series[0]["points"]] == temps
    assert series[0]["unit"] == "°C"

    hourly = api.get("/api/v1/devices/fridge/readings", params={
        "metric": "temperature_c", "start": "2026-11-20T23:00:00Z", "end": "2026-11-21T01:00:00Z",
        "step": "1h"}).json()
    assert hourly[0]["points"] == [{"ts": "2026-11-21T00:00:00Z", "mean": sum(temps) / 4, "min": 4.0,
                                    "max": 9.25, "count": 4}]

    detail = api.get("/api/v1/devices/fridge").json()
    assert detail["settings"]["max_c"] == 8.0
    assert {m["key"] for m in detail["metrics"]} >= {"temperature_c", "door_open"}


def test_bad_input_is_rejected_counted_and_kept(api: TestClient, publisher: Callable[[str, bytes], None]) -> None:
    bad = {
        "facility/kg/fridge/telemetry": b"{not json",
        "facility/kg/meter/telemetry": b'{"energy_kwh": "12"}',
        "facility/kg/ghost/telemetry": b'{"temperature_c": 3}',
        "facility/other-site/fridge/telemetry": b'{"temperature_c": 3}',
        "facility/kg/fridge/status": b"{}",
        "facility/kg/gate/telemetry": b'{"open": false, "pad": "' + b"x" * 2000 + b'"}',
    }
    for topic, payload in bad.items():
        publisher(topic, payload)
    publisher("facility/kg/meter/telemetry", b'{"energy_kwh": 12.5, "ts": 1795219200}')  # one good one

    wait_for(lambda: len(api.get("/api/v1/rejected").json()) >= 5)
    wait_for(lambda: "energy_kwh" in api.get("/api/v1/devices/meter").json()["last_values"])
    rejected = api.get("/api/v1/rejected").json()
    by_reason = {r["reason"]: r for r in rejected}
    assert set(by_reason) == {"not_json", "wrong_type", "unknown_device", "bad_topic", "too_large"}
    assert by_reason["wrong_type"]["source"] == "mqtt:facility/kg/meter/telemetry"
    assert by_reason["wrong_type"]["preview"] == '{"energy_kwh": "12"}'
    assert by_reason["unknown_device"]["device_id"] == "ghost"
    assert by_reason["too_large"]["preview"].endswith("…")
    # another site's traffic is not ours to subscribe to, so it is never seen
    assert all("other-site" not in r["source"] for r in rejected)

    wait_for(lambda: accounting(api).stored("sqlite") == 1)
    m = accounting(api)
    assert m.total("facility_messages_rejected_total", reason="not_json") == 1
    assert m.total("facility_messages_rejected_total", reason="unknown_device") == 1
    assert m.total("facility_messages_received_total", transport="mqtt") == 6
    m.check()
    assert api.get("/health").json()["status"] == "ok"


def test_http_ingest_shares_validation(api: TestClient) -> None:
    response = api.post("/api/v1/readings", content=json.dumps([
        {"device_id": "meter", "ts": T0, "energy_kwh": 100.0, "power_w": 2500},
        {"device_id": "meter", "ts": T0 + 60, "energy_kwh": float("nan")},
        {"device_id": "nobody", "energy_kwh": 1},
        {"energy_kwh": 1},
        "not an object",
    ]))
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(p["index"], p["reason"]) for p in body["rejected"]] == [
        (1, "not_finite"), (2, "unknown_device"), (3, "missing_field"), (4, "not_object")]
    single = api.post("/api/v1/readings", json={"device_id": "gate", "open": True, "ts": T0})
    assert single.json() == {"accepted": 1, "rejected": []}
    assert api.post("/api/v1/readings", content=b"{oops").status_code == 422
    wait_for(lambda: api.get("/api/v1/devices/meter").json()["last_values"].get("power_w") == 2500)
    assert api.get("/api/v1/devices/gate").json()["last_values"] == {"open": True}
    m = accounting(api)
    assert m.total("facility_messages_received_total", transport="http") == 7  # the body that is not JSON too
    assert m.total("facility_messages_rejected_total", reason="not_json") == 1


def test_api_errors_are_clear(api: TestClient) -> None:
    assert api.get("/api/v1/devices/ghost").status_code == 404
    r = api.get("/api/v1/devices/fridge/readings", params={"metric": "volume_m3"})
    assert r.status_code == 422
    assert "no metric 'volume_m3'" in r.json()["detail"]
    assert api.get("/api/v1/devices/fridge/readings", params={"step": "soon"}).status_code == 422
    r = api.get("/api/v1/devices/fridge/readings", params={"start": "2026-11-21T00:00:00"})
    assert r.status_code == 422  # naive datetimes are refused
    assert api.get("/docs").status_code == 200
    assert "/api/v1/readings" in api.get("/openapi.json").json()["paths"]


def test_status_is_retained_online(api: TestClient, mosquitto: Mosquitto) -> None:
    seen: list[bytes] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="status-reader")
    client.on_message = lambda _c, _u, msg: seen.append(bytes(msg.payload))
    client.connect(mosquitto.host, mosquitto.port)
    client.subscribe("facility/kg/gateway/status", qos=1)
    client.loop_start()
    try:
        wait_for(lambda: seen == [b"online"])
    finally:
        client.disconnect()
        client.loop_stop()


def test_reading_and_ingest_need_credentials(api: TestClient, tmp_path: Path) -> None:
    del api.headers["Authorization"]
    assert api.get("/api/v1/devices").status_code == 401
    assert api.post("/api/v1/readings", json={"device_id": "meter", "energy_kwh": 1}).status_code == 401
    assert api.get("/health").status_code == 200  # for the load balancer
    assert api.get("/metrics").status_code == 200  # for Prometheus

    # The first admin comes from the command line, then logs in over the API.
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE.format(url="mqtt://127.0.0.1:1", client_id="cli", data_dir=tmp_path / "data"))
    cli = [str(Path(sys.executable).parent / "facility-gateway"), "user", "--config", str(site_file),
           "head", "--role", "admin"]
    done = subprocess.run(cli, env=os.environ | {"FACILITY_NEW_PASSWORD": "后勤-long-enough"},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    login = api.post("/api/v1/auth/login", json={"username": "head", "password": "后勤-long-enough"})
    assert login.status_code == 200
    admin = {"Authorization": f"Bearer {login.json()['token']}"}

    reader = api.post("/api/v1/api-keys", json={"name": "wall display", "scopes": ["read"]}, headers=admin)
    assert reader.status_code == 201
    read_only = {"Authorization": f"Bearer {reader.json()['key']}"}
    assert api.get("/api/v1/devices", headers=read_only).status_code == 200
    refused = api.post("/api/v1/readings", json={"device_id": "meter", "energy_kwh": 1}, headers=read_only)
    assert refused.status_code == 403
    audit = api.get("/api/v1/audit", headers=admin).json()
    assert [e["action"] for e in audit] == ["api_key.create", "user.add", "api_key.create"]
    assert audit[0]["actor"] == "head"
    assert audit[1]["actor"].startswith("cli:")
    assert audit[2]["actor"] == "test"  # the fixture's key


def test_an_invalid_request_is_a_422_that_does_not_echo_the_input(api: TestClient) -> None:
    # A lone surrogate is valid JSON but not UTF-8: echoing it back used to fail with a 500.
    body = b'{"username": "\\ud800", "password": "x"}'
    response = api.post("/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "input" not in response.json()["detail"][0]


# What Python's json module cannot hold: a lone surrogate (valid JSON, not Unicode), an
# integer longer than Python converts (4300 digits), nesting deeper than its recursion.
UNREADABLE = {
    "lone surrogate": b'{"device_id": "meter", "energy_kwh": 6, "note": "\\ud800"}',
    "too many digits": b'{"device_id": "meter", "energy_kwh": ' + b"9" * 5000 + b"}",
    "nested too deep": b'{"device_id": "meter", "energy_kwh": 7, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
}


def test_http_ingest_rejects_what_json_cannot_hold_as_mqtt_does(api: TestClient) -> None:
    good = json.dumps({"device_id": "meter", "ts": T0, "energy_kwh": 5.0}).encode()
    response = api.post("/api/v1/readings", content=b"[" + b", ".join([good, *UNREADABLE.values()]) + b"]")
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(p["index"], p["reason"]) for p in body["rejected"]] == [(1, "not_json"), (2, "not_json"),
                                                                    (3, "not_json")]
    for problem, meaning in zip(body["rejected"], UNREADABLE, strict=True):
        assert meaning in problem["detail"]
    wait_for(lambda: api.get("/api/v1/devices/meter").json()["last_values"].get("energy_kwh") == 5.0)

    # Alone, each is the whole body: a 422 that says why.
    for meaning, payload in UNREADABLE.items():
        alone = api.post("/api/v1/readings", content=payload)
        assert alone.status_code == 422
        assert alone.json()["detail"].startswith("the body is not JSON")
        assert meaning in alone.json()["detail"]

    # Counted and kept as dead letters, as MQTT's rejections are.
    wait_for(lambda: len(api.get("/api/v1/rejected", params={"reason": "not_json"}).json()) == 6)
    m = accounting(api)
    assert m.total("facility_messages_received_total", transport="http") == 7
    assert m.total("facility_messages_rejected_total", reason="not_json") == 6
    dead = api.get("/api/v1/rejected", params={"reason": "not_json"}).json()
    assert {d["source"] for d in dead} == {"http"}
    assert any(d["preview"].startswith('{"device_id": "meter", "energy_kwh": 6, "note": "\\ud800"') for d in dead)
    wait_for(lambda: accounting(api).stored("sqlite") == 1)
    accounting(api).check()


def test_http_ingest_refuses_a_malformed_array_whole(api: TestClient) -> None:
    for body in (b'[{"device_id": "meter", "energy_kwh": 1},]', b'[{"device_id": "meter"', b'[1] [2]',
                 b'["unterminated]'):
        response = api.post("/api/v1/readings", content=body)
        assert response.status_code == 422, body
        assert response.json()["detail"].startswith("the body is a malformed JSON array")
    assert api.post("/api/v1/readings", content=b" [ ] ").json() == {"accepted": 0, "rejected": []}
    # Brackets, commas and escaped quotes inside strings are no part of the array's structure.
    tricky = rb'[{"device_id": "meter", "ts": 1795219200, "energy_kwh": 2, "note": "a \" ], {[ b"}]'
    assert api.post("/api/v1/readings", content=tricky).json() == {"accepted": 1, "rejected": []}
    wait_for(lambda: accounting(api).total("facility_messages_rejected_total", reason="not_json") == 4)


def test_a_step_with_endless_digits_is_a_422(api: TestClient) -> None:
    for step in ("9" * 5000, "9" * 5000 + "d", "99999999d"):
        response = api.get("/api/v1/devices/fridge/readings", params={"step": step})
        assert response.status_code == 422
    assert "longer than a year" in api.get("/api/v1/devices/fridge/readings",
                                           params={"step": "999999999"}).json()["detail"]


def test_health_and_metrics_never_wait_for_the_thread_pool(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Sync routes (and sync dependencies) run in a shared pool of threads; when all of them
    wait (HTTP ingest waits up to 10 s for its items to be durable, a read for SQLite) the
    load balancer's probe must still get its answer."""
    site = config.parse(SITE.format(url=mosquitto.url, client_id="gw-pool", data_dir=tmp_path / "data"), "site.yaml")
    app = create_app(site, SystemClock())
    release, waiting = threading.Event(), threading.Semaphore(0)

    @app.get("/test/occupy")
    def occupy() -> None:  # a sync route, holding a thread of the pool until released
        waiting.release()
        release.wait(30)

    pool_size = 40  # anyio's default, which FastAPI uses
    with serve(app) as url, ThreadPoolExecutor(pool_size + 10) as clients, httpx.Client(base_url=url) as probe:
        occupied = [clients.submit(httpx.get, f"{url}/test/occupy", timeout=60) for _ in range(pool_size + 10)]
        try:
            for _ in range(pool_size):
                assert waiting.acquire(timeout=10)  # every thread of the pool is taken
            for path in ("/health", "/metrics", "/health"):
                started = time.monotonic()
                assert probe.get(path, timeout=5).status_code == 200
                assert time.monotonic() - started < 1.0, path
        finally:
            release.set()
        assert all(f.result().status_code == 200 for f in occupied)
