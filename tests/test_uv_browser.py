"""A UV lamp's tube care in a real browser (Chromium) against a gateway process of the demo
kindergarten: the lamp's page gives one figure for the tube's hours, the care register's, in
its header and its care card, and not the fixture's own counter; the health doctor, on a
phone, opens the nap room lamp's page, records a wipe and an irradiance test below the limit;
the entries show with her name, the page fits the phone, the low test raises its alert, and a
teacher (a viewer) is refused through the API. Screenshots go to `$UV_ARTIFACTS` (default
`test-artifacts/uv/`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Final

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import Site, log_in, publish, running_site, show, signed_in, wait_until
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

LAMP: Final = "uv-nap"
READY: Final = "form.uv-test"
SHOTS: Final = artifacts_dir("uv")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "uv") as s:
        yield s


def test_the_header_and_the_care_card_give_the_tube_hours_of_the_register(browser: Browser, site: Site) -> None:
    """The lamp lit 90 minutes this morning (a reading a minute): the tube's hours are 1.5,
    in the header and the card alike, while the lamp's own counter (240 h) is left out of both."""
    lit_min, began = 90, time.time() - 4 * 3600
    publish(site.broker, [(LAMP, {"ts": began + 60 * m, "on": m < lit_min}) for m in range(lit_min + 1)])
    care = wait_until("the lit morning counted", lambda: (c := site.api.get(f"/api/v1/uv/{LAMP}/care").json())
                      ["tube_hours"] >= lit_min / 60 and c)
    assert care["tube_hours"] == lit_min / 60
    with open_page(browser, PHONE, locale="zh-CN") as (page, _):
        show(page, site.url, f"device/{LAMP}", READY)
        shown = page.locator("#view [data-tube-hours]")
        expect(shown).to_have_count(2)
        hours = f"{lit_min / 60:g}"
        assert [shown.nth(i).get_attribute("data-tube-hours") for i in range(2)] == [hours, hours]
        head = page.locator("#view .device-head").inner_text()
        assert f"本灯管已用\n{hours} 小时" in head
        assert "240" not in head  # the fixture's counter, as the site's readings give it
        expect(shown.nth(1)).to_contain_text(f"本灯管已用 {hours} 小时")
        assert horizontal_overflow(page) == 0
        screenshot(page, SHOTS, "tube-hours-phone-zh")


def test_the_doctor_records_a_wipe_and_a_low_test_on_a_phone(browser: Browser, site: Site) -> None:
    with open_page(browser, PHONE, locale="zh-CN") as (page, _):
        show(page, site.url, f"device/{LAMP}", READY)
        log_in(page, "doctor-zhou")
        page.locator("#view button", has_text="已擦拭灯管").click()
        expect(page.locator("#view [data-care=clean]")).to_have_count(1)
        expect(page.locator("#view [data-care=clean]")).to_contain_text("周医生")
        page.locator("#view form.uv-test input[name=uw_cm2]").fill("65")
        page.locator("#view form.uv-test button[type=submit]").click()
        expect(page.locator("#view [data-care=test]")).to_contain_text("65")
        assert horizontal_overflow(page) == 0
        screenshot(page, SHOTS, "care-phone-zh")
    [alert] = wait_until("the low irradiance alert", lambda: site.api.get(
        "/api/v1/alerts", params={"rule": "uv_intensity_low"}).json())
    assert alert["device_id"] == LAMP
    assert "65" in alert["detail_zh"]
    viewer = signed_in(site.api, "teacher-sun")
    refused = site.api.post(f"/api/v1/uv/{LAMP}/care", json={"action": "clean"}, headers=viewer)
    assert refused.status_code == 403
