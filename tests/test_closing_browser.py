"""The closing board and the sweep before a break in a real browser (Chromium), against the
demo kindergarten's gateway as its own process (tests/dashboard_site.py), each done by the
person who does it: the guard signs the walk-round on the board, the head of logistics runs a
sweep. Every action is in the audit trail with its actor; a viewer is refused. Screenshots
of both views (desktop and phone, zh-CN and en) go to `test-artifacts/dashboard/`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import DESKTOP, PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import DEMO_PASSWORD, Site, running_site, show, signed_in, use_language
from tests.services import Mosquitto

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "closing") as s:
        yield s


def sign_in_when_asked(page: Page, user: str) -> None:
    """The login the page asks for before an action (ui.js `signedIn`)."""
    dialog = page.locator("dialog#dialog")
    dialog.locator("input[name=username]").fill(user)
    dialog.locator("input[name=password]").fill(DEMO_PASSWORD)
    dialog.locator("button[type=submit]").click()


def audit(site: Site, *actions: str) -> list[tuple[str, str, str]]:
    """(actor, action, target), oldest first, of the actions named."""
    entries = site.api.get("/api/v1/audit", params={"limit": 500}, headers=signed_in(site.api, "principal-zhao")).json()
    return [(e["actor"], e["action"], e["target"]) for e in reversed(entries) if e["action"] in actions]


def test_the_guard_sees_the_known_leak_as_known_and_signs_the_walk_round(browser: Browser, site: Site) -> None:
    with open_page(browser) as (page, console):
        show(page, site.url, "closing", "section.closing")
        service = page.locator("section.closing[data-building=service]")
        # The kitchen tap runs, but its alert opened a work order for the plumber: known, not red.
        expect(service).to_have_attribute("data-state", "known")
        leak = service.locator("li.closing-item[data-device=kitchen-water]")
        expect(leak).to_contain_text("厨房：水还在流（2 升/分钟）")
        expect(leak).to_contain_text("已派单 · 水工 · 待派")
        expect(page.locator("section.closing[data-building=teaching]")).to_have_attribute("data-state", "closed_up")
        expect(page.locator(".closing-top .updated")).to_contain_text("更新于 ")

        page.locator("button.walk-sign").click()
        sign_in_when_asked(page, "guard-wang")
        form = page.locator("dialog#dialog form.walk-form")
        form.locator("textarea[name=note]").fill("门窗已锁，厨房漏水已报修")
        form.locator("button[type=submit]").click()
        expect(page.locator(".walkround .walk-signed")).to_contain_text("王师傅")
        expect(page.locator("button.walk-sign")).to_have_count(0)
        assert console.problems() == []

    day = site.api.get("/api/v1/dashboard/closing").json()["day"]
    record = site.api.get("/api/v1/reports/safety", params={"date": day}).json()
    walk = next(i for i in record["items"] if i["id"] == "guard:walkround")
    assert (walk["status"], walk["completion"]["by"]["name_zh"], walk["completion"]["by"]["id"],
            walk["completion"]["note"]) == ("done", "王师傅", "guard-wang", "门窗已锁，厨房漏水已报修")
    assert audit(site, "safety_check.completed") == [
        ("guard-wang", "safety_check.completed", f"safety:{day}:guard:walkround")]
    # A viewer may not sign it.
    viewer = signed_in(site.api, "teacher-sun")
    assert site.api.post(f"/api/v1/reports/safety/{day}/items/guard:walkround", json={"result": "ok", "note": ""},
                         headers=viewer).status_code == 403


def test_the_head_runs_a_sweep_and_turns_a_problem_into_a_work_order(browser: Browser, site: Site) -> None:
    with open_page(browser) as (page, console):
        show(page, site.url, "sweep", ".sweep-page")
        page.locator("form.own-sweep input[name=title]").fill("运动会前检查")
        page.locator("form.own-sweep button[type=submit]").click()
        sign_in_when_asked(page, "logistics-li")
        page.wait_for_selector("#view .sweep-head h1")
        expect(page.locator(".sweep-head h1")).to_have_text("运动会前检查")
        sweep_id = int(page.url.rsplit("/", 1)[1])

        teaching = page.locator(".sweep-building[data-building=teaching]")
        dispensers = teaching.locator("li.sweep-item[data-item=dispensers]")
        dispensers.locator("button.mark-problem").click()
        page.locator("dialog#dialog textarea[name=note]").fill("大一班饮水机插头没拔")
        page.locator("dialog#dialog button[type=submit]").click()
        expect(dispensers.locator("[data-role=result]")).to_have_text("有问题")
        dispensers.locator("button.to-order").click()
        expect(dispensers.locator("a.ordered")).to_have_text("已转工单 · 电工 · 待派")
        # Everything else is in order: tick what is still unchecked, one by one.
        while (unchecked := teaching.locator("li.sweep-item.unchecked")).count():
            before = unchecked.count()
            unchecked.first.locator("button.mark-ok").click()
            expect(teaching.locator("li.sweep-item.unchecked")).to_have_count(before - 1)
        teaching.locator("button.sign").click()
        page.locator("dialog#dialog button[type=submit]").click()
        expect(teaching.locator("[data-role=signed]")).to_contain_text("李主任")
        expect(teaching.locator("[data-role=signed]")).to_contain_text("1 项有问题")
        expect(teaching.locator("button.mark-ok")).to_have_count(0)
        assert console.problems() == []

    got = site.api.get(f"/api/v1/sweeps/{sweep_id}").json()
    [order_id] = [i["order"]["id"] for i in got["buildings"][0]["items"] if i["order"]]
    # The kitchen leak a sensor shows comes with the work order its alert opened.
    leak = next(i for i in got["buildings"][1]["items"] if i["id"] == "sensor:kitchen-water")
    assert (leak["result"], leak["order"]["trade"]) == ("problem", "water")
    order = site.api.get(f"/api/v1/work-orders/{order_id}").json()
    assert (order["trade"], order["title_zh"]) == ("electric", "运动会前检查：教学楼：饮水机已断电——有问题（大一班饮水机插头没拔）")
    today = date.fromisoformat(got["day"]).isoformat()
    record = site.api.get("/api/v1/reports/safety", params={"date": today}).json()
    assert next(i for i in record["items"] if i["id"] == "sweep@teaching")["status"] == "fail"
    assert next(i for i in record["items"] if i["id"] == "sweep@service")["status"] == "manual"

    trail = audit(site, "sweep.start", "sweep.mark", "sweep.work_order", "sweep.sign", "work_order.open")
    mine = [(actor, action) for actor, action, target in trail
            if target.startswith(f"sweep:{sweep_id}") or (action == "work_order.open" and actor == "logistics-li")]
    assert mine[:4] == [("logistics-li", "sweep.start"), ("logistics-li", "sweep.mark"),
                        ("logistics-li", "work_order.open"), ("logistics-li", "sweep.work_order")]
    assert mine[-1] == ("logistics-li", "sweep.sign")
    assert {actor for actor, _ in mine} == {"logistics-li"}

    # A viewer reads, and is refused every action.
    viewer = signed_in(site.api, "teacher-sun")
    base = f"/api/v1/sweeps/{sweep_id}/buildings/service"
    for path, body in ((f"{base}/items/valuables", {"result": "ok"}), (f"{base}/items/valuables/work-order", {}),
                       (f"{base}/sign", {}), ("/api/v1/sweeps", {"title": "开学前检查"})):
        assert site.api.post(path, json=body, headers=viewer).status_code == 403, path
    assert site.api.get(f"/api/v1/sweeps/{sweep_id}", headers=viewer).status_code == 200


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_screenshots_of_the_closing_board_and_the_sweep(browser: Browser, site: Site, lang: str) -> None:
    """`<desktop|phone>[-en]-<closing|sweep>.png`; a phone does not scroll sideways."""
    directory = artifacts_dir("dashboard")
    suffix = "" if lang == "zh-CN" else f"-{lang}"
    sweeps = site.api.get("/api/v1/sweeps").json()["sweeps"]
    routes = {"closing": "section.closing", "sweep": ".sweep-page"}
    if sweeps:
        routes[f"sweep/{sweeps[0]['id']}"] = ".sweep-building"
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with open_page(browser, viewport) as (page, console):
            use_language(page, site.url, lang)
            for route, ready in routes.items():
                show(page, site.url, route, ready)
                screenshot(page, directory, f"{name}{suffix}-{route.split('/')[0]}{'-one' if '/' in route else ''}")
                if viewport is PHONE:
                    assert horizontal_overflow(page) <= 1, route
            assert console.problems() == []
