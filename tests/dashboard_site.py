"""What the dashboard's browser tests share: a gateway of the demo kindergarten as its own
process, fed over a real Mosquitto with a day of readings, with an account for each of the
school's people; and how a test opens a view. Each test module starts its own gateway
(`running_site` in a module-scoped fixture) and browser (`tests.browser.chromium`).

The site is the demo kindergarten, closed all day (so an open door raises
`door_after_hours` at once) and readable without login (`auth.public_read`: a wall
display); writes still need a staff login.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect

from gateway.auth.audit import AuditTrail
from gateway.auth.store import AuthStore
from gateway.cli.demo import DEMO_PASSWORD, demo_accounts
from gateway.config import load
from gateway.config.auth import Role
from gateway.storage.state import StateDatabase
from simulators import DEMO_SITE
from tests.browser import settle
from tests.services import GatewayProcess, Mosquitto, free_port, mqtt_client
from tests.test_alerting import STAFF_PASSWORD

__all__ = ["DEMO_PASSWORD", "SITE", "STAFF", "Site", "history", "log_in", "publish", "running_site", "show", "signed_in",
           "use_language", "wait_until", "write_site"]

SITE = "sunflower-kg"
STAFF = "wang"
WAIT_MS = 10_000
T = TypeVar("T")


@dataclass
class Site:
    url: str
    api: httpx.Client
    broker: Mosquitto


_client_ids = itertools.count()


def write_site(directory: Path, broker: Mosquitto, client_id: str,
               settings: dict[str, Any] | None = None) -> tuple[Path, int]:
    """The demo site, closed every day, readable without login, with a test's own `settings`
    (top-level sections of the site file); its file and API port."""
    data = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    # Every device native, fed by the test alone: the site file's meters on fixed ports would
    # be polled from whatever answers there (`facility-gateway simulate`, say).
    for device in data["devices"]:
        device.pop("source", None)
    data["opening_hours"] = {}
    for building in data["buildings"]:
        building.pop("opening_hours", None)
    port = free_port()
    data |= {
        "mqtt": {"url": broker.url, "client_id": client_id},
        "storage": {"data_dir": str(directory / "data")},
        "api": {"port": port},
        "rules": {"door_after_hours": {"grace_min": 0}},
        "auth": {"public_read": True},
    } | (settings or {})
    path = directory / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, port


def publish(broker: Mosquitto, readings: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Publishes `(device, payload)` readings with QoS 1, in order, and waits until the
    broker has them all."""
    with mqtt_client(broker, f"dashboard-test-{next(_client_ids)}") as (client, connack):
        assert not connack.is_failure, connack
        sent = [client.publish(f"facility/{SITE}/{device}/telemetry", json.dumps(payload), qos=1)
                for device, payload in readings]
        for info in sent:
            info.wait_for_publish(5)


def history(now: float) -> list[tuple[str, dict[str, Any]]]:
    """A day of hourly readings from the fridge and the main meters, one reading now from
    every other device but the doors, last heard ten minutes ago (so the overview lists the
    main gate as offline), and a kitchen tap running for an hour while closed (a water leak,
    hence an alert and a work order)."""
    readings: list[tuple[str, dict[str, Any]]] = []
    for hour in range(24, -1, -1):
        ts = now - hour * 3600 - 120
        readings.append(("sample-fridge", {"ts": ts, "temperature_c": round(4.0 + 0.6 * math.sin(hour / 4), 1),
                                           "door_open": False}))
        for meter, base in (("teaching-power", 8_000.0), ("service-power", 12_000.0)):
            readings.append((meter, {"ts": ts, "energy_kwh": base + 6 * (24 - hour), "power_w": 400.0,
                                     "voltage_v": 229.0, "current_a": 1.8}))
        # Still water in the teaching building; the gate house's trickle in the service building.
        for meter, base, flow in (("teaching-water", 500.0, 0.0), ("service-water", 700.0, 0.1)):
            readings.append((meter, {"ts": ts, "volume_m3": base + 0.3 * (24 - hour), "flow_lpm": flow}))
    readings.append(("kitchen-power", {"ts": now, "energy_kwh": 3_000.0, "power_w": 150.0}))
    readings.append(("kitchen-gas", {"ts": now, "gas_m3": 1_520.0, "gas_flow_m3h": 0.0}))
    for lamp in ("uv-small-1", "uv-small-2", "uv-middle-1", "uv-large-1", "uv-nap", "uv-kitchen", "uv-clinic",
                 "uv-isolation"):
        readings.append((lamp, {"ts": now, "on": False, "power_w": 0.0, "lamp_hours": 240.0}))
    for door in ("kitchen-door", "main-gate"):
        readings.append((door, {"ts": now - 600, "open": False}))
    readings += [("kitchen-water", {"ts": now - 3600 - 300 + 60 * minute, "volume_m3": 1000 + 0.002 * minute,
                                    "flow_lpm": 2.0}) for minute in range(66)]
    return readings


def wait_until(what: str, check: Callable[[], T], timeout_s: float = WAIT_MS / 1000) -> T:
    """Polls `check()` until it returns something true, which it returns."""
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s:g} s")
        time.sleep(0.05)
    return found


@contextmanager
def running_site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, name: str,
                 settings: dict[str, Any] | None = None) -> Iterator[Site]:
    """A gateway of the demo kindergarten with a day of readings and the demo's accounts (one
    per role, password `DEMO_PASSWORD`: guard-wang, logistics-li, principal-zhao, canteen-chen,
    doctor-zhou, plumber-liu, carpenter-zhang, teacher-sun the viewer) and `STAFF` (no display name)."""
    directory = tmp_path_factory.mktemp(name)
    config, port = write_site(directory, mosquitto, f"{name}-gateway", settings)
    site_config = load(config)
    site_config.storage.data_dir.mkdir(parents=True, exist_ok=True)
    db = StateDatabase(site_config.storage.state_database_url)
    audit = AuditTrail(db, site_config.id)
    auth = AuthStore(db, site_config.auth, audit)
    try:
        now_ms = int(time.time() * 1000)
        auth.add_user(STAFF, Role.STAFF, STAFF_PASSWORD, "setup", now_ms)
        demo_accounts(auth, site_config, now_ms)
    finally:
        db.close()
    gateway = GatewayProcess(config, port, directory / "gateway.log")
    gateway.start()
    try:
        api = gateway.client
        publish(mosquitto, history(time.time()))
        wait_until("work order from the leak", lambda: api.get("/api/v1/work-orders").json())
        wait_until("fridge reading",
                   lambda: "temperature_c" in api.get("/api/v1/devices/sample-fridge").json()["last_values"])
        yield Site(f"http://127.0.0.1:{port}", api, mosquitto)
    finally:
        gateway.client.close()
        gateway.stop()


def show(page: Page, base_url: str, route: str, ready: str) -> None:
    """Opens the view (a fresh load, or a hash change on a loaded page) and waits until it
    has rendered (`ready`, a selector inside it) and the live stream is connected."""
    url = f"{base_url}/#/{route}"
    if page.url.startswith(base_url):
        page.evaluate("(hash) => { location.hash = hash; }", f"#/{route}")
    else:
        page.goto(url)
    page.wait_for_selector(f"#view {ready}")
    page.wait_for_selector("#live[data-state=connected]")
    settle(page)


def use_language(page: Page, base_url: str, lang: str) -> None:
    """Loads the dashboard with `lang` chosen, as the language button leaves it."""
    page.goto(f"{base_url}/")
    page.evaluate("(lang) => localStorage.setItem('facility.lang', lang)", lang)
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", lang)


def signed_in(api: httpx.Client, user: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """The headers of a request by `user`, logged in through the API."""
    answer = api.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def log_in(page: Page, user: str, password: str = DEMO_PASSWORD) -> None:
    """Logs in with the header's button, as a person would before starting their work."""
    page.locator("#user").click()
    dialog = page.locator("dialog#dialog")
    dialog.locator("input[name=username]").fill(user)
    dialog.locator("input[name=password]").fill(password)
    dialog.locator("button[type=submit]").click()
    expect(dialog).not_to_be_visible()
