"""The 留样 register in a real browser (Chromium) against a gateway process of the demo
kindergarten: the canteen manager, on a phone, registers lunch's samples (two dishes), is
refused a 100 g sample with the reason shown on the page in Chinese, and discards a sample
early, which raises an alert; the audit trail names her for each action, and a teacher (a
viewer) is refused through the API. Screenshots (desktop and phone, zh-CN and en) go to
`$SAMPLES_ARTIFACTS` (default `test-artifacts/samples/`).

The test site is closed every day (tests/dashboard_site.py), so its meals are set to be
served every day: the test runs on any date."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import DESKTOP, PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import Site, log_in, running_site, show, signed_in, use_language, wait_until
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

MEALS: Final = [
    {"id": "breakfast", "label_zh": "早餐", "label_en": "Breakfast", "deadline": "08:30", "days": "every_day"},
    {"id": "lunch", "label_zh": "午餐", "label_en": "Lunch", "deadline": "12:30", "days": "every_day"},
    {"id": "snack", "label_zh": "午点", "label_en": "Afternoon snack", "deadline": "15:30", "days": "every_day"},
]
READY: Final = ".samples-view"
SHOTS: Final = artifacts_dir("samples")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "samples", {"samples": {"meals": MEALS}}) as s:
        yield s


def register(page: Page, dish: str, grams: str) -> None:
    page.locator("#view button.register").click()
    form = page.locator("dialog#dialog form.sample-form")
    expect(form).to_be_visible()
    form.locator("select[name=meal]").select_option("lunch")
    form.locator("input[name=dish]").fill(dish)
    form.locator("input[name=weight]").fill(grams)
    form.locator("button[type=submit]").click()


def test_the_canteen_manager_registers_lunch_on_a_phone_and_discards_one_early(browser: Browser, site: Site) -> None:
    with open_page(browser, PHONE, locale="zh-CN") as (page, console):
        show(page, site.url, "samples", READY)
        log_in(page, "canteen-chen")
        register(page, "番茄炒蛋", "130")
        expect(page.locator("dialog#dialog")).not_to_be_visible()
        register(page, "清炒西兰花", "128")
        expect(page.locator("dialog#dialog")).not_to_be_visible()
        lunch = page.locator("#view [data-meal=lunch]")
        expect(lunch.locator(".sample")).to_have_count(2)
        expect(lunch).to_have_attribute("data-status", "pass")
        expect(lunch.locator(".sample").first).to_contain_text("陈师傅 登记")

        register(page, "米饭", "100")
        refusal = page.locator("dialog#dialog [role=alert]")
        expect(refusal).to_have_text("留样重量不足：每样至少 125 克，本次只有 100 克。请补足后再登记。")
        screenshot(page, SHOTS, "register-refused-phone-zh")
        page.locator("dialog#dialog button.secondary").click()
        expect(lunch.locator(".sample")).to_have_count(2)
        assert horizontal_overflow(page) == 0
        screenshot(page, SHOTS, "samples-phone-zh")

        kept = page.locator("#view .sample.kept").first
        expect(kept).to_contain_text("可处理时间")
        kept.locator("button.discard").click()
        dialog = page.locator("dialog#dialog")
        expect(dialog.locator(".warning")).to_contain_text("提前处理会发出告警")
        dialog.locator("textarea[name=reason]").fill("冰箱门未关严，留样已变质")
        screenshot(page, SHOTS, "discard-early-phone-zh")
        dialog.locator("button[type=submit]").click()
        expect(dialog).not_to_be_visible()
        expect(page.locator("#view .sample.kept")).to_have_count(1)
        expect(lunch.locator(".sample").first).to_contain_text("提前处理")
        screenshot(page, SHOTS, "after-discard-phone-zh")
        assert console.problems("status of 409") == []  # the refused 100 g sample

    [alert] = wait_until("the early-discard alert", lambda: site.api.get(
        "/api/v1/alerts", params={"rule": "sample_discarded_early"}).json())
    assert alert["device_id"] == "sample-fridge"
    assert "冰箱门未关严，留样已变质" in alert["detail_zh"]

    admin = signed_in(site.api, "logistics-li")
    trail = site.api.get("/api/v1/audit", params={"limit": 1000}, headers=admin).json()
    ours = [(e["action"], e["actor"], e["who"]["name_zh"]) for e in reversed(trail) if e["action"].startswith("sample.")]
    assert ours == [("sample.registered", "canteen-chen", "陈师傅")] * 2 + [("sample.discarded", "canteen-chen", "陈师傅")]


def test_a_viewer_can_read_the_register_but_not_change_it(site: Site) -> None:
    viewer = signed_in(site.api, "teacher-sun")
    day = site.api.get("/api/v1/samples", headers=viewer)
    assert day.status_code == 200
    body: dict[str, Any] = {"day": day.json()["day"], "meal": "lunch", "dish": "米饭", "weight_g": 150,
                            "fridge": "sample-fridge"}
    assert site.api.post("/api/v1/samples", json=body, headers=viewer).status_code == 403
    staff = signed_in(site.api, "canteen-chen")
    made = site.api.post("/api/v1/samples", json=body, headers=staff)
    assert made.status_code == 201, made.text
    discard = site.api.post(f"/api/v1/samples/{made.json()['id']}/discard", json={"reason": "试"}, headers=viewer)
    assert discard.status_code == 403
    assert httpx.codes.is_success(site.api.get("/api/v1/samples").status_code)  # a wall display reads it


@pytest.mark.parametrize(("viewport", "lang"), [(DESKTOP, "zh-CN"), (DESKTOP, "en"), (PHONE, "en")],
                         ids=["desktop-zh", "desktop-en", "phone-en"])
def test_screenshots(browser: Browser, site: Site, viewport: Any, lang: str) -> None:
    with open_page(browser, viewport, locale=lang) as (page, console):
        use_language(page, site.url, lang)
        show(page, site.url, "samples", READY)
        assert horizontal_overflow(page) == 0
        name = f"samples-{'desktop' if viewport == DESKTOP else 'phone'}-{'zh' if lang == 'zh-CN' else 'en'}"
        screenshot(page, SHOTS, name)
        assert console.problems() == []
