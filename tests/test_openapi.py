"""Schemathesis against the gateway's own OpenAPI schema: every operation, with inputs
that the schema allows and inputs that it does not, sent with an API key that holds every
scope. Every answer must be no server error and as documented: status code, content
type, headers and body (schemathesis' default checks; the few exceptions are listed in
`_not_a_finding`, each with its reason).

The gateway runs in-process (its lifespan in a TestClient) without an MQTT broker: paho
keeps retrying in the background, which the HTTP API does not need."""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.openapi.checks import AllowHeaderMismatch, IgnoredAuth, RejectedPositiveData
from starlette.types import ASGIApp, Receive, Scope, Send

from devices import kinds
from gateway import config
from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config.auth import Role
from gateway.config.auth import Scope as KeyScope
from gateway.runtime import Gateway
from tests.services import free_port, wait_for

SITE = """\
id: kg
name: 测试幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {{id: kitchen, name: 厨房, type: kitchen}}
      - {{id: gate-house, name: 门卫室, type: gate}}
      - {{id: class-1, name: 小一班, type: classroom}}
devices:
  - {{id: fridge, kind: sample_fridge, room: kitchen, interval_s: 60}}
  - {{id: meter, kind: electricity_meter, room: kitchen}}
  - {{id: water, kind: water_meter, room: kitchen}}
  - {{id: uv-1, kind: uv_lamp, room: class-1, settings: {{tube_life_h: 800}}}}
  - {{id: gate, kind: door, room: gate-house}}
mqtt: {{url: "mqtt://127.0.0.1:{port}", client_id: "gw-openapi"}}
storage: {{data_dir: "{data_dir}"}}
"""
DEVICE_KINDS = {"fridge": "sample_fridge", "meter": "electricity_meter", "water": "water_meter",
                "uv-1": "uv_lamp", "gate": "door"}
USER = "caretaker"  # for PATCH /api/v1/users/{name} to find
PASSWORD = "a-long-enough-password"
STEPS = ("300", "5m", "1h", "1d")
FINITE = st.floats(allow_nan=False, allow_infinity=False)  # what JSON can carry
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), FINITE, st.text(max_size=8))
TIMESTAMPS = st.one_of(
    st.integers(), FINITE, st.text(max_size=30),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=14))]))
    .map(datetime.isoformat),
)


def _site(port: int, data_dir: Path) -> config.SiteConfig:
    return config.parse(SITE.format(port=port, data_dir=data_dir), "site.yaml")


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """`app` for HTTP, with the lifespan protocol answered here. Schemathesis starts the
    lifespan of the ASGI app it calls (and ends it after each test), which would start a
    second `Gateway` on the fixture's data directory next to the TestClient's."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapper


# Under pytest-xdist this module's cases, one per operation, collapse (6 tests ran instead of 70):
# scripts/check runs it in a pytest of its own, after the parallel run of the others.
pytestmark = pytest.mark.alone

# The schema as the app serves it, from a twin of the app under test that is never started
# (it opens no files); the fixture checks that the app under test serves the same schema.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", without_lifespan(create_app(_site(1, Path("unused")), SystemClock()))
)
# The live stream never ends by itself, so a case on it would never return; the browser
# tests (tests/test_dashboard_browser.py) read it from a real gateway.
fuzzed = schema.exclude(path="/api/v1/live")


ApiCase = schemathesis.Case[Any]


@dataclass(frozen=True)
class Api:
    app: ASGIApp
    headers: dict[str, str]
    key_id: str  # the key every case is sent with: must never be revoked
    spare_key_id: str  # one for DELETE /api/v1/api-keys/{key_id} to find
    login: str  # a user that no case can guess (schemathesis draws strings from the sources)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("openapi") / "data"
    # Nobody listens on the port: paho retries in the background, /health says mqtt is down.
    with TestClient(create_app(_site(free_port(), data_dir), SystemClock())) as client:
        assert client.get("/openapi.json").json() == schema.raw_schema
        gw: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        key = gw.auth.create_api_key("openapi", list(KeyScope), "test", now_ms)
        spare = gw.auth.create_api_key("spare", [KeyScope.READ], "test", now_ms)
        login = f"user-{secrets.token_hex(8)}"
        for name in (USER, login):
            gw.auth.add_user(name, Role.VIEWER, PASSWORD, "test", now_ms)
        client.headers["Authorization"] = f"Bearer {key}"
        _seed(client, gw)
        yield Api(without_lifespan(client.app), {"Authorization": f"Bearer {key}"}, _key_id(key), _key_id(spare),
                  login)
        # Nothing the cases did (DELETE /api/v1/api-keys/…, PATCH /api/v1/users/…) locked the key out.
        assert client.get("/api/v1/auth/me").json()["name"] == f"key:{_key_id(key)}"


def _key_id(key: str) -> str:
    return key.split("_")[1]


def _seed(client: TestClient, gw: Gateway) -> None:
    """Readings of every device over the last hour, door events and a rejection, so that
    the read endpoints answer with data."""
    now = datetime.now(UTC)
    readings: list[dict[str, Any]] = []
    for i in range(6):
        ts = (now - timedelta(minutes=10 * (6 - i))).isoformat()
        readings += [
            {"device_id": "fridge", "ts": ts, "temperature_c": 3.5 + i / 2, "door_open": i == 2},
            {"device_id": "meter", "ts": ts, "energy_kwh": 100.0 + i, "power_w": 2500 - 10 * i},
            {"device_id": "water", "ts": ts, "volume_m3": 12.0 + i / 10, "flow_lpm": 3.0},
            {"device_id": "uv-1", "ts": ts, "on": i % 2 == 0, "power_w": 30.0, "lamp_hours": 10.0 + i},
            {"device_id": "gate", "ts": ts, "open": i % 2 == 1, "battery_pct": 80},
        ]
    response = client.post("/api/v1/readings", content=json.dumps(readings))
    assert response.json() == {"accepted": len(readings), "rejected": []}
    response = client.post("/api/v1/readings", json={"device_id": "ghost", "temperature_c": 1})
    assert response.json()["rejected"][0]["reason"] == "unknown_device"
    # HTTP ingest takes telemetry only; door events come in as the MQTT transport hands them over.
    received_ms = int(now.timestamp() * 1000)
    for i, granted in enumerate((True, False)):
        event = {"ts": received_ms - 60_000 * (i + 1), "type": "access", "credential": f"card:{i:04}",
                 "granted": granted}
        assert gw.ingestor.accept("http", "gate", "event", json.dumps(event).encode(), received_ms) is None
    durable = threading.Event()
    gw.buffer.after(durable.set)
    assert durable.wait(10)
    wait_for(lambda: len(client.get("/api/v1/devices/gate/events").json()) == 2)
    wait_for(lambda: all(client.get(f"/api/v1/devices/{d}").json()["last_seen"] for d in DEVICE_KINDS))


def _aim(case: ApiCase, data: st.DataObject, api: Api) -> None:
    """Points some cases at things that exist (generated ids almost never do), so that
    answers with data get checked too. Schemathesis re-evaluates whether an edited case
    is still one the schema allows."""
    if case.headers is not None:
        # The case goes with `Authorization`, which the gateway reads first: a generated
        # X-API-Key would be ignored, and an invalid one would seem to be accepted.
        case.headers.pop("X-API-Key", None)
    path = case.path_parameters if case.path_parameters is not None else {}
    query = case.query if case.query is not None else {}
    if "device_id" in path and (device := data.draw(st.sampled_from([None, *DEVICE_KINDS]), "device")):
        path["device_id"] = device
        if "metric" in query and data.draw(st.booleans(), "known metric"):
            query["metric"] = data.draw(st.sampled_from([m.key for m in kinds()[DEVICE_KINDS[device]].metrics]))
        if "step" in query and data.draw(st.booleans(), "known step"):
            query["step"] = data.draw(st.sampled_from(STEPS))
    if "name" in path and data.draw(st.booleans(), "existing user"):
        path["name"] = USER
    if "key_id" in path:
        if data.draw(st.booleans(), "existing key"):
            path["key_id"] = api.spare_key_id
        # Ids are 64 random bits, but schemathesis may reuse values seen in responses.
        if path["key_id"] == api.key_id:
            path["key_id"] = api.spare_key_id
    if case.operation.label == "POST /api/v1/readings" and isinstance(case.body, dict) \
            and (device := data.draw(st.sampled_from([None, *DEVICE_KINDS]), "reading of")):
        case.body["device_id"] = device
        for metric in kinds()[DEVICE_KINDS[device]].metrics:
            if data.draw(st.booleans(), f"with {metric.key}"):
                case.body[metric.key] = data.draw(JSON_VALUES)
        if data.draw(st.booleans(), "with ts"):
            case.body["ts"] = data.draw(TIMESTAMPS)


# 422s for rules between parameters, or between a parameter and the site, which a schema cannot state.
_UNSTATABLE = re.compile(
    r"start must be before end|a \w+ has no metric|more than \d+ buckets|between the years 1 and 9999|longer than a year"
    r"|date must lie between|exactly one of date|is not in the calendar|has not begun|is not YYYY-MM|is not a month \(2026-10\), a quarter"
    # a work order's assignee is an enabled account; its completion says what was done
    r"|no such account|account is disabled|Say what was done"
    r"|When you found a problem, say what it is|Write the problem, the measure or the outcome"
    # a channel's `type` picks its settings: each channel's model defaults it, so the schema has it optional
    r"|Unable to extract tag using discriminator"
    # PUT /api/v1/admin/config/{section}: a section's value is checked by that section's model,
    # which one operation's schema cannot state for every section
    r"|Some values are not right: see the note under each|The school's fields are its name, kind"
)


@schema.hook
def filter_failure(_ctx: schemathesis.HookContext, failure: Failure, case: ApiCase,
                   response: schemathesis.Response) -> bool:
    """Keeps every failure but those that `_not_a_finding` explains."""
    return _not_a_finding(failure, case, response) is None


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _not_a_finding(failure: Failure, case: ApiCase, response: schemathesis.Response) -> str | None:
    if isinstance(failure, AllowHeaderMismatch):
        return ("Starlette answers a method that no route takes with the Allow of the first route with "
                "the path: OPTIONS /api/v1/users says `Allow: GET`, though POST works too")
    if isinstance(failure, IgnoredAuth) and case.operation.label == "POST /api/v1/auth/logout":
        return "by design: ending an unknown session is no error, so any token gets 204"
    if isinstance(failure, RejectedPositiveData) and response.status_code == 422 \
            and _UNSTATABLE.search(response.text):
        return "a rule the schema cannot state"
    if isinstance(failure, RejectedPositiveData) and "Expected UploadFile" in response.text:
        return ("a multipart field that is no file (no file name) for a file: OpenAPI's `format: binary` "
                "cannot say that it must be one")
    if isinstance(failure, AcceptedNegativeData) and any(isinstance(v, list) for v in (case.query or {}).values()):
        return "FastAPI takes the last of a repeated query parameter that is not a list"
    if isinstance(failure, AcceptedNegativeData) and any(v == {} for v in (case.query or {}).values()):
        return "an empty object in a query is sent as an empty value, which a text parameter may be"
    if isinstance(failure, AcceptedNegativeData) and any(
            _is_number(v) for k, v in (case.query or {}).items() if k in ("start", "end")):
        return "start and end take Unix seconds too, as their descriptions say"
    return None


@fuzzed.parametrize()
@schema.given(data=st.data())
# 50 examples per operation keep the module under 30 s on two slow cores; every example
# needs a round trip through the app, readings ingest waits for the spool to commit.
@settings(max_examples=50, deadline=None, database=None)
def test_api_conforms_to_its_schema(case: ApiCase, data: st.DataObject, api: Api) -> None:
    _aim(case, data, api)
    case.call_and_validate(app=api.app, headers=api.headers)


def from_client(app: ASGIApp, host: str) -> ASGIApp:
    """`app`, called from another client address: logins are locked per address too."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "client": (host, 50000)} if scope["type"] == "http" else scope, receive, send)

    return wrapper


def test_a_login_conforms_to_the_schema(api: Api) -> None:
    """The answer that the test above cannot get: after five failed logins from its client
    address, every login from there gets a 429."""
    case = schema["/api/v1/auth/login"]["POST"].Case(body={"username": api.login, "password": PASSWORD},
                                                     media_type="application/json")
    response = case.call_and_validate(app=from_client(api.app, "192.0.2.1"))
    assert response.status_code == 200


READINGS = schema["/api/v1/devices/{device_id}/readings"]["GET"]
EVENTS = schema["/api/v1/devices/{device_id}/events"]["GET"]


@pytest.mark.parametrize(("operation", "query"), [
    # `end` within a day of year 1: the default `start` (end - 24 h) is before year 1.
    pytest.param(READINGS, {"end": "0001-01-01T00:00:00Z"}, id="readings-end-year-1"),
    pytest.param(EVENTS, {"end": "0001-01-01T00:00:00Z"}, id="events-end-year-1"),
    # `start` in the site's time zone (Asia/Shanghai, +08:00) is after year 9999.
    pytest.param(READINGS, {"start": "9999-12-31T20:00:00Z", "end": "9999-12-31T23:00:00Z"},
                 id="readings-start-year-9999"),
    # A step whose milliseconds exceed SQLite's 64-bit integers, for a series with data.
    pytest.param(READINGS, {"metric": "temperature_c", "step": "106751991168d"}, id="readings-huge-step"),
])
def test_no_server_error(operation: Any, query: dict[str, str], api: Api) -> None:
    """Inputs that crashed the server, replayed on every run: the fuzzing above finds them
    only by chance. Schemathesis found the first three; the last is the same kind of
    overflow, found in the code next to them."""
    case = operation.Case(path_parameters={"device_id": "fridge"}, query=query)
    case.call_and_validate(app=api.app, headers=api.headers, checks=[not_a_server_error])


def test_every_operation_that_reads_a_json_body_documents_400() -> None:
    """FastAPI answers 400 to a body it cannot parse as JSON, before the operation runs."""
    app = create_app(_site(1, Path("unused")), SystemClock())
    paths = app.openapi()["paths"]
    undocumented = [f"{method} {route.path}" for route in app.routes
                    if isinstance(route, APIRoute) and route.body_field is not None
                    for method in route.methods or () if "400" not in paths[route.path][method.lower()]["responses"]]
    assert undocumented == []
