"""The web dashboard in a real browser (Chromium, see `browser.py`) against
`facility-gateway run` as its own process, fed over a real Mosquitto: every view renders
without console errors, live readings arrive without a reload, an alert is acknowledged
from the page with a staff login, the language switch sticks, the live stream survives a
gateway restart, phone screens do not scroll sideways. Screenshots of every view go to
`$DASHBOARD_ARTIFACTS` (default `test-artifacts/dashboard/`) for people to look at.

The site is the demo kindergarten, closed all day (so an open door raises
`door_after_hours` at once) and readable without login (`auth.public_read`: a wall
display); writes still need a staff login.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from simulators import DEMO_SITE
from tests.browser import (
    DESKTOP,
    PHONE,
    artifacts_dir,
    chromium,
    horizontal_overflow,
    open_page,
    screenshot,
    settle,
    stamp_when,
    stamped_at,
)
from tests.services import GatewayProcess, Mosquitto, MosquittoFactory, free_port, mqtt_client
from tests.test_alerting import STAFF_PASSWORD, add_user

pytestmark = pytest.mark.integration

SITE = "sunflower-kg"
STAFF = "wang"
WAIT_MS = 10_000
LIVE_BOUND_MS = 5_000  # generous: the 1 s target is measured by a benchmark, not asserted here
FRIDGE = '[data-live="sample-fridge:temperature_c"]'
SHOWS = "([selector, value]) => document.querySelector(selector)?.dataset.value === value"
# Each view's route, and an element that only that view shows once it has rendered.
VIEWS = {
    "overview": ".severities",
    "closing": "section.closing",
    "buildings": ".rooms .tile.device",
    "device/sample-fridge": ".device-head ~ .card .chart canvas",
    "alerts": "form.filters select[name=rule]",
    "orders": "form.filters select[name=trade]",
}
NAV_ZH = ["概览", "闭园检查", "楼宇房间", "告警", "工单"]
NAV_EN = ["Overview", "Closing check", "Buildings", "Alerts", "Work orders"]

_client_ids = itertools.count()
T = TypeVar("T")


@dataclass
class Site:
    url: str
    api: httpx.Client
    broker: Mosquitto


def write_site(directory: Path, broker: Mosquitto, client_id: str) -> tuple[Path, int]:
    """The demo site, closed every day, readable without login; its file and API port."""
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
    }
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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    """One gateway for the module, with a staff user and a day of readings."""
    directory = tmp_path_factory.mktemp("dashboard")
    config, port = write_site(directory, mosquitto, "dashboard-gateway")
    add_user(config, STAFF, "staff")
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def show(page: Page, base_url: str, route: str) -> None:
    """Opens the view (a fresh load, or a hash change on a loaded page) and waits until it
    has rendered and the live stream is connected."""
    url = f"{base_url}/#/{route}"
    if page.url.startswith(base_url):
        page.evaluate("(hash) => { location.hash = hash; }", f"#/{route}")
    else:
        page.goto(url)
    page.wait_for_selector(f"#view {VIEWS[route]}")
    page.wait_for_selector("#live[data-state=connected]")
    settle(page)


def use_language(page: Page, base_url: str, lang: str) -> None:
    """Loads the dashboard with `lang` chosen, as the language button leaves it."""
    page.goto(f"{base_url}/")
    page.evaluate("(lang) => localStorage.setItem('facility.lang', lang)", lang)
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", lang)


# ------------------------------------------------------------------------------ the tests


def test_every_view_renders_without_console_errors(browser: Browser, site: Site) -> None:
    for route in VIEWS:
        with open_page(browser) as (page, console):
            show(page, site.url, route)
            assert console.problems() == [], route
            if route == "overview":
                assert page.locator(".severities a[data-severity]").evaluate_all(
                    "(links) => links.map((a) => a.dataset.severity)") == ["critical", "major", "minor", "warning"]
                fridge = page.locator(FRIDGE)
                value = float(fridge.get_attribute("data-value") or "nan")
                expect(fridge).to_have_text(f"{value:g} °C")
            elif route == "closing":
                # The kitchen tap is running, the teaching building has nothing left on.
                expect(page.locator("section.closing[data-building=teaching]")).to_have_class(re.compile(r"\bclosing good\b"))
                expect(page.locator("section.closing[data-building=service]")).to_have_class(re.compile(r"\bclosing bad\b"))
            elif route == "buildings":
                # A state reads in its kind's words, not as true/false.
                expect(page.locator('[data-device=kitchen-door] [data-live="kitchen-door:open"]')).to_have_text("已关")
                expect(page.locator('[data-device=uv-nap] [data-live="uv-nap:on"]')).to_have_text("关")
            elif route == "orders":
                assert page.locator("article.order[data-order]").count() >= 1


def test_a_new_reading_shows_without_reload(
    browser: Browser, site: Site, record_property: Callable[[str, object], None],
) -> None:
    latencies = []
    with open_page(browser) as (page, console), mqtt_client(site.broker, "dashboard-fridge") as (client, _):
        show(page, site.url, "overview")
        page.evaluate("() => { window.sameDocument = true; }")
        for value in (5.3, 5.5, 5.7):
            key = stamp_when(page, SHOWS, [FRIDGE, str(value)])
            sent_ms = time.time() * 1000
            client.publish(f"facility/{SITE}/sample-fridge/telemetry",
                           json.dumps({"ts": sent_ms / 1000, "temperature_c": value}), qos=1).wait_for_publish(5)
            latencies.append(stamped_at(page, key, LIVE_BOUND_MS) - sent_ms)
            expect(page.locator(FRIDGE)).to_have_text(f"{value} °C")
        assert page.evaluate("() => window.sameDocument") is True
        assert console.problems() == []
    record_property("live_latency_ms", [round(x) for x in latencies])
    print(f"\nlive latency publish → DOM, ms: {[round(x) for x in latencies]} "
          f"(median {statistics.median(latencies):.0f})")
    assert max(latencies) < LIVE_BOUND_MS


def test_an_alert_is_acknowledged_from_the_page(browser: Browser, site: Site) -> None:
    publish(site.broker, [("kitchen-door", {"ts": time.time(), "open": True})])
    alert = wait_until("door alert", lambda: site.api.get(
        "/api/v1/alerts", params={"rule": "door_after_hours", "state": "active"}).json())[0]
    comment = "已到现场, 门已关好"
    with open_page(browser) as (page, console):
        show(page, site.url, "alerts")
        article = page.locator(f"article.alert[data-alert='{alert['id']}']")
        expect(article).to_have_attribute("data-state", "active")
        article.locator("button.ack").click()
        dialog = page.locator("dialog#dialog")
        dialog.locator("textarea[name=comment]").fill(comment)
        dialog.locator("button[type=submit]").click()
        # Not logged in: the gateway refuses, the page asks for a staff login and retries.
        dialog.locator("input[name=username]").fill(STAFF)
        dialog.locator("input[name=password]").fill(STAFF_PASSWORD)
        screenshot(page, artifacts_dir("dashboard"), "desktop-alerts-login")
        dialog.locator("button[type=submit]").click()
        expect(article).to_have_attribute("data-state", "acknowledged")
        expect(dialog).not_to_be_visible()
        expect(article.locator(".ack-note")).to_contain_text(STAFF)
        expect(article.locator(".ack-note")).to_contain_text(comment)
        expect(article.locator("button.ack")).to_have_count(0)
        expect(page.locator("#user")).to_contain_text(STAFF)
        # The refused POST is logged by the browser as a failed resource; nothing else is.
        assert console.problems("status of 401", "status of 403") == []
    detail = site.api.get(f"/api/v1/alerts/{alert['id']}").json()
    assert (detail["state"], detail["acked_by"], detail["ack_comment"]) == ("acknowledged", STAFF, comment)


def test_the_language_switch_sticks(browser: Browser, site: Site) -> None:
    with open_page(browser) as (page, console):
        nav = page.locator("#nav a")
        show(page, site.url, "overview")
        expect(nav).to_have_text(NAV_ZH)
        assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
        page.locator("#lang").click()
        expect(nav).to_have_text(NAV_EN)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator(".severities a[data-severity=critical]")).to_contain_text("Critical")
        page.reload()
        page.wait_for_selector("#view .severities")
        expect(nav).to_have_text(NAV_EN)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        assert page.evaluate("() => localStorage.getItem('facility.lang')") == "en"
        page.locator("#lang").click()
        expect(nav).to_have_text(NAV_ZH)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator(".severities a[data-severity=critical]")).to_contain_text("紧急")
        assert console.problems() == []


def test_the_live_stream_comes_back_after_a_gateway_restart(
    browser: Browser, mosquitto_factory: MosquittoFactory, tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    broker = mosquitto_factory()
    config, port = write_site(tmp_path, broker, "dashboard-restart")
    gateway = GatewayProcess(config, port, tmp_path / "gateway.log")
    gateway.start()
    try:
        publish(broker, [("sample-fridge", {"ts": time.time(), "temperature_c": 4.1})])
        base_url = f"http://127.0.0.1:{port}"
        wait_until("fridge reading", lambda: gateway.client.get("/api/v1/devices/sample-fridge").json()["online"])
        with open_page(browser) as (page, console):
            show(page, base_url, "overview")
            page.evaluate("""() => {
              window.sameDocument = true;
              window.liveStates = [];
              const live = document.getElementById("live");
              new MutationObserver(() => window.liveStates.push(live.dataset.state))
                .observe(live, { attributes: true, attributeFilter: ["data-state"] });
            }""")
            gateway.stop()
            page.wait_for_selector("#live[data-state=down]")
            stopped = time.monotonic()
            gateway.start()
            page.wait_for_selector("#live[data-state=connected]", timeout=30_000)
            back_s = time.monotonic() - stopped
            record_property("reconnect_s", round(back_s, 1))
            print(f"\nlive stream back {back_s:.1f} s after the gateway stopped")
            states = page.evaluate("() => window.liveStates")
            assert "down" in states
            assert states[-1] == "connected"
            key = stamp_when(page, SHOWS, [FRIDGE, "6.3"])
            publish(broker, [("sample-fridge", {"ts": time.time(), "temperature_c": 6.3})])
            stamped_at(page, key, LIVE_BOUND_MS)
            expect(page.locator(FRIDGE)).to_have_text("6.3 °C")
            assert page.evaluate("() => window.sameDocument") is True
            # While the gateway was away its requests failed; the page itself did not.
            assert console.page_errors == []
    finally:
        gateway.client.close()
        gateway.stop()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_no_view_scrolls_sideways_on_a_phone(browser: Browser, site: Site, lang: str) -> None:
    with open_page(browser, PHONE) as (page, console):
        use_language(page, site.url, lang)
        overflows = {}
        for route in VIEWS:
            show(page, site.url, route)
            overflows[route] = horizontal_overflow(page)
        assert {r: px for r, px in overflows.items() if px > 1} == {}
        assert console.problems() == []


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_screenshots_of_every_view(browser: Browser, site: Site, lang: str) -> None:
    """Full-page screenshots for people to look at: `<desktop|phone>[-en]-<view>.png`."""
    directory = artifacts_dir("dashboard")
    suffix = "" if lang == "zh-CN" else f"-{lang}"
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with open_page(browser, viewport) as (page, _):
            use_language(page, site.url, lang)
            for route in VIEWS:
                show(page, site.url, route)
                path = screenshot(page, directory, f"{name}{suffix}-{route.replace('/', '-')}")
                assert path.stat().st_size > 0
