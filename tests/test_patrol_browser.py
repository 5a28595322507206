"""The fire patrol (消防巡查) in a real browser against the demo kindergarten's gateway: the
guard logs in on a phone and records a round with one problem; he cannot sign his own round
(the refusal shows on the page); the head of logistics signs it on a desktop. The day's
safety record then shows the round with both names, the audit trail each action with its
actor, and a viewer is refused both actions. Screenshots (phone and desktop, zh-CN and en)
go to `test-artifacts/patrol/`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import DESKTOP, PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import DEMO_PASSWORD, Site, log_in, running_site, show, signed_in, use_language
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

NOTE = "二楼走廊灭火器压力不足"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "patrol") as s:
        yield s


def a_round_to_record(site: Site) -> tuple[str, dict[str, Any]]:
    """A round that can be recorded now: today's, or (in the small hours) yesterday's. The test
    site is closed every day, so these are the kindergarten's night rounds."""
    today = site.api.get("/api/v1/fire-patrols").json()
    yesterday = (date.fromisoformat(today["date"]) - timedelta(days=1)).isoformat()
    for day in (today, site.api.get("/api/v1/fire-patrols", params={"date": yesterday}).json()):
        found = [r for r in day["rounds"] if r["recordable"]]
        if found:
            return day["date"], found[-1]
    raise AssertionError("no round can be recorded")


def answer_login(page: Page, user: str) -> None:
    dialog = page.locator("dialog#dialog")
    dialog.locator("input[name=username]").fill(user)
    dialog.locator("input[name=password]").fill(DEMO_PASSWORD)
    dialog.locator("button[type=submit]").click()
    expect(dialog).not_to_be_visible()


def test_a_round_is_patrolled_on_a_phone_and_signed_by_another(browser: Browser, site: Site) -> None:
    day, rnd = a_round_to_record(site)
    shots = artifacts_dir("patrol")
    with open_page(browser, PHONE) as (page, console):
        show(page, site.url, f"patrol?date={day}", ".patrol-day")
        row = page.locator(f"article.patrol-round[data-round='{rnd['id']}']")
        expect(row.locator("[data-role=status]")).to_have_text("待巡查" if rnd["status"] == "pending" else "未按时巡查")
        screenshot(page, shots, "phone-zh-day")
        # Not logged in: the login comes first, before anything is ticked.
        row.locator("button").click()
        answer_login(page, "guard-wang")
        form = page.locator("form.patrol-form")
        expect(form).to_be_visible()
        expect(form).to_contain_text("巡查人：王师傅（当前登录）")
        assert form.locator("li.patrol-item").count() == 6
        problem = form.locator("li[data-item=extinguishers]")
        problem.locator("label.toggle.bad").click()
        # A problem without a word about it is not submitted.
        form.locator("button[type=submit]").click()
        expect(form.locator(".error-text")).to_have_text("「灭火器材完好有效」有问题：请写明是什么问题。")
        problem.locator("textarea").fill(NOTE)
        screenshot(page, shots, "phone-zh-round-form")
        form.locator("button[type=submit]").click()
        record = page.locator("ol.patrol-items li.patrol-item.problem")
        expect(record).to_contain_text(NOTE)
        expect(page.locator("[data-role=status]")).to_have_text("有问题")
        # The patroller cannot sign his own round: the refusal is on the page.
        page.locator("button.sign").click()
        expect(page.locator(".patrol .error-text")).to_have_text("不能审核签字自己的巡查，请由另一位负责人签字。")
        assert horizontal_overflow(page) == 0
        screenshot(page, shots, "phone-zh-round-refused")
        assert console.problems("status of 409") == []

    with open_page(browser, DESKTOP) as (page, console):
        show(page, site.url, f"patrol/{rnd['id']}?date={day}", ".patrol-round-head")
        log_in(page, "logistics-li")
        page.locator("button.sign").click()
        expect(page.locator("[data-role=signature]")).to_contain_text("审核签字：李主任")
        screenshot(page, shots, "desktop-zh-round-signed")
        assert console.problems() == []

    record = site.api.get("/api/v1/reports/safety", params={"date": day}).json()
    [item] = [i for i in record["items"] if i["id"] == f"fire:{rnd['id']}"]
    assert (item["category"], item["status"], item["subject"]) == ("fire", "fail", rnd["at"])
    for text in ("王师傅", "李主任", NOTE, "灭火器材完好有效"):
        assert text in item["detail_zh"], text
    assert "Signed by 李主任" in item["detail_en"]

    admin = signed_in(site.api, "logistics-li")
    target = f"fire_patrol:{day}:{rnd['id']}"
    trail = {e["action"]: e for e in site.api.get("/api/v1/audit", params={"limit": 1000}, headers=admin).json()
             if e["target"] == target}
    assert (trail["fire_patrol.patrolled"]["actor"], trail["fire_patrol.patrolled"]["who"]["name_zh"]) == (
        "guard-wang", "王师傅")
    assert trail["fire_patrol.patrolled"]["detail"] == {"problems": [{"item": "extinguishers", "note": NOTE}]}
    assert (trail["fire_patrol.supervised"]["actor"], trail["fire_patrol.supervised"]["who"]["name_zh"]) == (
        "logistics-li", "李主任")

    viewer = signed_in(site.api, "teacher-sun")
    body = {"items": [{"id": i["id"], "result": "ok"} for i in site.api.get("/api/v1/fire-patrols").json()["items"]]}
    assert site.api.post(f"/api/v1/fire-patrols/{day}/{rnd['id']}", json=body, headers=viewer).status_code == 403
    assert site.api.post(f"/api/v1/fire-patrols/{day}/{rnd['id']}/signature", headers=viewer).status_code == 403


def test_screenshots_in_both_languages(browser: Browser, site: Site) -> None:
    """After the round above: the day and the round, phone and desktop, zh-CN and en."""
    today = site.api.get("/api/v1/fire-patrols").json()
    yesterday = (date.fromisoformat(today["date"]) - timedelta(days=1)).isoformat()
    days = [today, site.api.get("/api/v1/fire-patrols", params={"date": yesterday}).json()]
    day = next(d["date"] for d in days if any(r["patrol"] for r in d["rounds"]))
    shots = artifacts_dir("patrol")
    for lang in ("zh-CN", "en"):
        for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            with open_page(browser, viewport) as (page, console):
                use_language(page, site.url, lang)
                show(page, site.url, f"patrol?date={day}", ".patrol-day")
                assert horizontal_overflow(page) == 0
                screenshot(page, shots, f"{name}-{lang}-day")
                page.locator("article.patrol-round a.button").first.click()
                page.wait_for_selector("#view ol.patrol-items")
                assert horizontal_overflow(page) == 0
                screenshot(page, shots, f"{name}-{lang}-round")
                assert console.problems() == []


def test_a_missed_round_reads_as_the_whole_sites_alert(browser: Browser, site: Site) -> None:
    """Whether a round was missed recently enough to remind of depends on the time the test
    runs (the test site runs on the wall clock): where one was, its alert names the site, never
    the round's id."""
    missed = site.api.get("/api/v1/alerts", params={"rule": "fire_patrol_missed"}).json()
    if not missed:
        pytest.skip("no round was missed in the last 12 hours at this time of day")
    with open_page(browser, PHONE) as (page, console):
        show(page, site.url, "alerts?rule=fire_patrol_missed", f"article.alert[data-alert='{missed[0]['id']}']")
        article = page.locator(f"article.alert[data-alert='{missed[0]['id']}']")
        expect(article).to_contain_text("的消防巡查未按时完成")
        expect(article).to_contain_text("向日葵幼儿园")
        assert "fire-patrol-" not in article.inner_text()
        screenshot(page, artifacts_dir("patrol"), "phone-zh-missed-alert")
        assert console.problems() == []
