"""Dispatching work orders (派单) in a real browser (Chromium, see `browser.py`) against the
demo kindergarten's gateway as its own process (`dashboard_site.py`): the head of logistics
opens the kitchen leak's order, sees its evidence chart and dispatches it to the plumber; the
plumber, on a phone, marks 到场 and completes it with what was done and a photo; the order
shows its history by name; an alert without an order is dispatched from its row; every step
is in the audit trail under the signed-in account; a viewer may do none of it. Screenshots
of the orders view and the dispatch dialog (desktop and phone, zh-CN and en) go to
`$DASHBOARD_ARTIFACTS` (default `test-artifacts/dashboard/`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot, settle
from tests.dashboard_site import (
    DEMO_PASSWORD,
    Site,
    log_in,
    publish,
    running_site,
    show,
    signed_in,
    use_language,
    wait_until,
)
from tests.gateway.test_work_orders import tiny_png

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTE = "先关厨房总阀，带上阀芯"
WORK_DONE = "更换了水龙头阀芯，试水不漏"
LOGINS = ("logistics-li", "plumber-liu", "carpenter-zhang", "teacher-sun", "principal-zhao")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Any) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "dispatch") as s:
        yield s


def _leak_order(site: Site) -> dict[str, Any]:
    orders: list[dict[str, Any]] = site.api.get("/api/v1/work-orders").json()
    return next(o for o in orders if o["rule"] == "water_leak")


def _no_login_ids(page: Page) -> None:
    text = page.locator("#view").inner_text()
    assert not [login for login in LOGINS if login in text], text


def _status(page: Page) -> str | None:
    return page.locator(".order-page").get_attribute("data-status")


def test_the_head_dispatches_and_the_plumber_completes_on_a_phone(browser: Browser, site: Site) -> None:
    order = _leak_order(site)
    route = f"orders/{order['id']}"
    due = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    shots = artifacts_dir("dashboard")

    # The head of logistics, at the office: the list, the order with its evidence, 派单.
    with open_page(browser) as (page, console):
        show(page, site.url, "orders", f"article.order[data-order='{order['id']}']")
        log_in(page, "logistics-li")
        screenshot(page, shots, "desktop-orders")
        page.locator(f"article.order[data-order='{order['id']}'] strong a").click()
        page.wait_for_selector("#view .order-page .chart.evidence canvas")
        settle(page)
        expect(page.locator(".evidence-card h2")).to_have_text("触发时的瞬时流量（升/分钟）")
        expect(page.locator("[data-role=status]")).to_have_text("待派")
        page.locator(".order-page button.dispatch").click()
        dialog = page.locator("dialog#dialog")
        expect(dialog.locator("select[name=trade]")).to_have_value("water")
        # Who repairs water comes first, by name and trades, never by login.
        first = dialog.locator("select[name=assignee] optgroup").first
        expect(first).to_have_attribute("label", "会水工活的")
        expect(first.locator("option").first).to_have_text("刘师傅（水工、电工）")
        dialog.locator("select[name=assignee]").select_option("plumber-liu")
        dialog.locator("input[name=due]").fill(due.strftime("%Y-%m-%dT%H:%M"))
        dialog.locator("textarea[name=note]").fill(NOTE)
        screenshot(page, shots, "desktop-dispatch-dialog")
        dialog.locator("button[type=submit]").click()
        expect(dialog).not_to_be_visible()
        expect(page.locator("[data-role=status]")).to_have_text("已派")
        expect(page.locator(".order-page .order")).to_contain_text("负责人：刘师傅")
        _no_login_ids(page)
        screenshot(page, shots, "desktop-order-assigned")
        assert console.problems() == []
    dispatched = site.api.get(f"/api/v1/work-orders/{order['id']}").json()
    assert (dispatched["assignee"], dispatched["note"], dispatched["trade"]) == ("plumber-liu", NOTE, "water")
    assert datetime.fromisoformat(dispatched["due"]) == due

    # The plumber, on a phone: 到场, then 完成 with what was done, 更换 and a photo.
    with open_page(browser, PHONE) as (page, console):
        show(page, site.url, route, ".order-page")
        log_in(page, "plumber-liu")
        page.locator(".order-page button.on-site").click()
        expect(page.locator("[data-role=status]")).to_have_text("已到场")
        page.locator(".order-page button.done").click()
        dialog = page.locator("dialog#dialog")
        dialog.locator("textarea[name=work_done]").fill(WORK_DONE)
        dialog.locator("input[name=repair][value=replace]").check()
        # A photo over the limit is refused on the page, before it is sent.
        dialog.locator("input[name=photo]").set_input_files(
            {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + bytes(6 * 1024 * 1024)})
        dialog.locator("button[type=submit]").click()
        expect(dialog.locator(".error-text")).to_have_text("照片太大（6 MB），不能超过 5 MB，请换一张或压缩后再传。")
        dialog.locator("input[name=photo]").set_input_files(
            {"name": "水龙头.png", "mimeType": "image/png", "buffer": tiny_png(320, 200)})
        expect(dialog.locator(".error-text")).to_be_empty()
        screenshot(page, artifacts_dir("dashboard"), "phone-done-dialog")
        dialog.locator("button[type=submit]").click()
        expect(dialog).not_to_be_visible()
        expect(page.locator("[data-role=status]")).to_have_text("已完成")
        expect(page.locator(".result .work-done")).to_have_text(WORK_DONE)
        expect(page.locator(".result .repair")).to_have_text("更换")
        page.wait_for_function("() => document.querySelector('.result img.photo')?.naturalWidth === 320")
        steps = page.locator(".steps li")
        expect(steps).to_have_count(4)
        expect(steps.locator(".who")).to_have_text(["系统（跑水漏水）", "李主任", "刘师傅", "刘师傅"])
        expect(steps.nth(1)).to_contain_text("派给 刘师傅（水工）")
        expect(steps.nth(1)).to_contain_text(NOTE)
        expect(steps.nth(3)).to_contain_text(f"完成（更换）：{WORK_DONE}")
        _no_login_ids(page)
        assert horizontal_overflow(page) <= 1
        screenshot(page, shots, "phone-order-done")
        assert console.problems() == []

    # Each step, in the audit trail, under the signed-in account.
    admin = signed_in(site.api, "principal-zhao")
    audit = site.api.get("/api/v1/audit", params={"limit": 200}, headers=admin).json()
    steps_ = [(e["action"], e["actor"], e["who"]["name_zh"]) for e in reversed(audit)
              if e["target"] == f"work_order:{order['id']}"]
    assert steps_ == [("work_order.open", "rule:water_leak", "系统（跑水漏水）"),
                      ("work_order.dispatch", "logistics-li", "李主任"),
                      ("work_order.on_site", "plumber-liu", "刘师傅"),
                      ("work_order.done", "plumber-liu", "刘师傅")]


def test_an_alert_without_an_order_is_dispatched_from_its_row(browser: Browser, site: Site) -> None:
    publish(site.broker, [("kitchen-door", {"ts": time.time(), "open": True})])
    alert = wait_until("door alert", lambda: site.api.get(
        "/api/v1/alerts", params={"rule": "door_after_hours", "open": "true"}).json())[0]
    assert alert["work_order_id"] is None
    leak = _leak_order(site)
    with open_page(browser) as (page, console):
        show(page, site.url, "alerts", f"article.alert[data-alert='{alert['id']}']")
        # An alert that has an order links to it.
        expect(page.locator(f"article.alert[data-alert='{leak['alert_id']}'] a.order-link")).to_have_attribute(
            "href", f"#/orders/{leak['id']}")
        page.locator(f"article.alert[data-alert='{alert['id']}'] button.dispatch").click()
        dialog = page.locator("dialog#dialog")
        log = dialog.locator("input[name=username]")
        log.fill("logistics-li")  # asked before anything is typed
        dialog.locator("input[name=password]").fill(DEMO_PASSWORD)
        dialog.locator("button[type=submit]").click()
        dialog.locator("select[name=trade]").select_option("carpentry")
        expect(dialog.locator("select[name=assignee] optgroup").first.locator("option").first).to_have_text(
            "张师傅（木工、其他）")
        dialog.locator("select[name=assignee]").select_option("carpenter-zhang")
        dialog.locator("textarea[name=note]").fill("门关不严，检查闭门器")
        dialog.locator("button[type=submit]").click()
        page.wait_for_selector("#view .order-page")
        expect(page.locator("[data-role=status]")).to_have_text("已派")
        expect(page.locator(".evidence-card")).to_contain_text("这张工单是手动派的")
        expect(page.locator(".steps .who")).to_have_text(["李主任", "李主任"])
        _no_login_ids(page)
        assert console.problems() == []
    opened = site.api.get(f"/api/v1/alerts/{alert['id']}").json()["work_order_id"]
    assert site.api.get(f"/api/v1/work-orders/{opened}").json()["assignee"] == "carpenter-zhang"


def test_a_viewer_may_do_none_of_it(browser: Browser, site: Site) -> None:
    order = _leak_order(site)
    viewer = signed_in(site.api, "teacher-sun")
    url = f"/api/v1/work-orders/{order['id']}"
    for refused in [
        site.api.post(f"{url}/dispatch", json={"assignee": "plumber-liu"}, headers=viewer),
        site.api.post(f"{url}/on-site", headers=viewer),
        site.api.post(f"{url}/done", data={"work_done": "x", "repair": "repair"}, headers=viewer),
        site.api.patch(url, json={"note": "x"}, headers=viewer),
        site.api.post(f"/api/v1/alerts/{order['alert_id']}/work-order",
                      json={"assignee": "plumber-liu", "trade": "water"}, headers=viewer),
    ]:
        assert refused.status_code == 403, refused.request.url
    # On the page, the viewer is told so, in words.
    with open_page(browser) as (page, console):
        show(page, site.url, "orders", "article.order button.dispatch")
        log_in(page, "teacher-sun")
        page.locator("article.order button.dispatch").first.click()
        dialog = page.locator("dialog#dialog")
        # The page says the viewer's account may not, and asks for one that may.
        expect(dialog.locator("p.muted")).to_have_text("您的账号无权办理此事，请换有权限的账号登录")
        dialog.locator("button.secondary").click()
        expect(dialog).not_to_be_visible()
        assert console.problems() == []


@pytest.mark.parametrize(("lang", "viewport"), [("zh-CN", "desktop"), ("en", "desktop"), ("zh-CN", "phone"),
                                                ("en", "phone")])
def test_screenshots_of_the_orders_view_and_the_dispatch_dialog(
        browser: Browser, site: Site, lang: str, viewport: str) -> None:
    orders: list[dict[str, Any]] = site.api.get("/api/v1/work-orders").json()
    with open_page(browser, PHONE) if viewport == "phone" else open_page(browser) as (page, console):
        use_language(page, site.url, lang)
        show(page, site.url, "orders", "article.order")
        log_in(page, "logistics-li")
        shots = artifacts_dir("dashboard")
        name = f"{viewport}-{lang}"
        screenshot(page, shots, f"{name}-orders-list")
        assert horizontal_overflow(page) <= 1
        for o in orders:
            show(page, site.url, f"orders/{o['id']}", ".order-page")
            if o["evidence"]["points"]:
                page.wait_for_selector(".chart.evidence canvas")
            if o["photo_url"]:
                page.wait_for_function("() => document.querySelector('.result img.photo')?.naturalWidth > 0")
            settle(page)
            screenshot(page, shots, f"{name}-order-{o['status']}")
            assert horizontal_overflow(page) <= 1
        show(page, site.url, "alerts", "article.alert")
        screenshot(page, shots, f"{name}-alerts")
        show(page, site.url, "orders", "article.order button.dispatch")
        page.locator("article.order button.dispatch").first.click()
        page.wait_for_selector("dialog#dialog select[name=assignee]")
        screenshot(page, shots, f"{name}-dispatch-dialog")
        assert console.problems() == []
