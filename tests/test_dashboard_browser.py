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

import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import (
    DESKTOP,
    PHONE,
    ROOT,
    artifacts_dir,
    horizontal_overflow,
    open_page,
    screenshot,
    settle,
    stamp_when,
    stamped_at,
)
from tests.dashboard_site import SITE, STAFF, Site, publish, running_site, use_language, wait_until, write_site
from tests.dashboard_site import show as shared_show
from tests.services import GatewayProcess, Mosquitto, MosquittoFactory, mqtt_client
from tests.test_alerting import STAFF_PASSWORD

pytestmark = pytest.mark.integration

LIVE_BOUND_MS = 5_000  # generous: the 1 s target is measured by a benchmark, not asserted here
FRIDGE = '[data-live="sample-fridge:temperature_c"]'
SHOWS = "([selector, value]) => document.querySelector(selector)?.dataset.value === value"
# Each view's route, and an element that only that view shows once it has rendered.
VIEWS = {
    "overview": ".severities",
    "closing": "section.closing",
    "sweep": ".sweep-page",
    "patrol": ".patrol-day",
    "buildings": ".rooms .tile.device",
    "device/sample-fridge": ".device-head ~ .card .chart canvas",
    "alerts": "form.filters select[name=rule]",
    "orders": "form.filters select[name=trade]",
    "ledger": ".ledger-signatures",
}
NAV_ZH = ["概览", "闭园检查", "留样", "消防巡查", "安全台账", "工单", "告警", "报表", "楼宇房间", "放假前检查"]
NAV_EN = ["Overview", "Closing check", "Samples", "Fire patrol", "Safety ledger", "Work orders", "Alerts", "Reports",
          "Buildings", "Pre-break check"]
INDEX = ROOT / "dashboards" / "static" / "views" / "index.js"
DEVICE_PAGE = "device/sample-fridge"


def _declared(name: str) -> list[str]:
    found = re.search(rf"export const {name} = \[([^\]]*)\]", INDEX.read_text(encoding="utf-8"))
    assert found, f"views/index.js declares {name}"
    return re.findall(r'"([a-z_]+)"', found[1])


def nav() -> list[str]:
    """The menu's views, read from views/index.js now: a view added there is covered at once."""
    return _declared("NAV")


def menu() -> list[str]:
    """The menu as anyone but an admin sees it (the admin's views, ADMIN_ONLY, left out)."""
    return [v for v in nav() if v not in _declared("ADMIN_ONLY")]


# Pages of a view behind its first: the reports' other tabs; a state's and a counter's chart.
MORE_PAGES = ["reports?type=energy&span=quarter", "reports?type=energy&span=year", "reports?type=safety",
              "reports?type=safety&period=month", "reports?type=canteen", "reports?type=disclosure",
              "device/sample-fridge?metric=door_open", "device/teaching-water?metric=volume_m3", "device/uv-nap"]


def every_page() -> list[str]:
    """Every view of the menu, and a device's page (reached by links)."""
    return [*nav(), DEVICE_PAGE]


def file_name(route: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", route).strip("-")


def show_any(page: Page, base_url: str, route: str) -> None:
    """Opens any view and waits until it has rendered (app.js names it on #view) and the live
    stream is connected; a device page also waits for its chart."""
    url = f"{base_url}/#/{route}"
    if page.url.startswith(base_url):
        page.evaluate("(hash) => { delete document.getElementById('view').dataset.view; location.hash = hash; }",
                      f"#/{route}")
    else:
        page.goto(url)
    page.wait_for_selector(f"#view[data-view='{route.split('?', maxsplit=1)[0]}']")
    if route.startswith("device/"):
        page.wait_for_selector("#view .chart canvas, #view .chart p")
    page.wait_for_selector("#live[data-state=connected]")
    settle(page)

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "dashboard") as s:
        yield s


def show(page: Page, base_url: str, route: str) -> None:
    shared_show(page, base_url, route, VIEWS[route])


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
                # The kitchen tap is running (a known leak: its work order is open), the
                # teaching building has nothing left on.
                expect(page.locator("section.closing[data-building=teaching]")).to_have_attribute("data-state", "closed_up")
                expect(page.locator("section.closing[data-building=service]")).to_have_attribute("data-state", "known")
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
        # Not logged in: the page asks for a login first, before anything is typed.
        dialog.locator("input[name=username]").fill(STAFF)
        dialog.locator("input[name=password]").fill("not the password")
        dialog.locator("button[type=submit]").click()
        expect(dialog.locator(".error-text")).to_have_text("用户名或密码不对")
        dialog.locator("input[name=password]").fill(STAFF_PASSWORD)
        screenshot(page, artifacts_dir("dashboard"), "desktop-alerts-login")
        dialog.locator("button[type=submit]").click()
        dialog.locator("textarea[name=comment]").fill(comment)
        dialog.locator("button[type=submit]").click()
        expect(article).to_have_attribute("data-state", "acknowledged")
        expect(dialog).not_to_be_visible()
        expect(article.locator(".ack-note")).to_contain_text(STAFF)
        expect(article.locator(".ack-note")).to_contain_text(comment)
        expect(article.locator("button.ack")).to_have_count(0)
        expect(page.locator("#user")).to_contain_text(STAFF)
        # The refused login is logged by the browser as a failed resource; nothing else is.
        assert console.problems("status of 401") == []
    detail = site.api.get(f"/api/v1/alerts/{alert['id']}").json()
    assert (detail["state"], detail["acked_by"], detail["ack_comment"]) == ("acknowledged", STAFF, comment)


def menu_reads(page: Page, words: list[str]) -> None:
    """The menu has an entry per view of NAV but the admin's and reads in `words`' language
    (views added by others may sit between them)."""
    entries = page.locator("#nav a")
    expect(entries).to_have_count(len(menu()))
    expect(entries.first).to_have_text(words[0])
    assert set(words) <= set(entries.all_inner_texts())


def test_the_language_switch_sticks(browser: Browser, site: Site) -> None:
    with open_page(browser) as (page, console):
        show(page, site.url, "overview")
        menu_reads(page, NAV_ZH)
        assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
        page.locator("#lang").click()
        menu_reads(page, NAV_EN)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator(".severities a[data-severity=critical]")).to_contain_text("Critical")
        page.reload()
        page.wait_for_selector("#view .severities")
        menu_reads(page, NAV_EN)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        assert page.evaluate("() => localStorage.getItem('facility.lang')") == "en"
        page.locator("#lang").click()
        menu_reads(page, NAV_ZH)
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
        for route in every_page() + MORE_PAGES:
            show_any(page, site.url, route)
            overflows[route] = horizontal_overflow(page)
        # The folded menu, opened, fits too.
        page.locator("#menu").click()
        expect(page.locator("#nav")).to_be_visible()
        expect(page.locator("#nav a")).to_have_count(len(menu()))
        overflows["menu"] = horizontal_overflow(page)
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
            for route in every_page() + MORE_PAGES:
                show_any(page, site.url, route)
                path = screenshot(page, directory, f"{name}{suffix}-{file_name(route)}")
                assert path.stat().st_size > 0
            if name == "phone":
                page.locator("#menu").click()
                screenshot(page, directory, f"{name}{suffix}-menu")
