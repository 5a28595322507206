"""The district's page in Chromium, served over real HTTP (tests/district_site.py): a district
account logs in, reads the league table, sorts it by a column, downloads the CSV, and each
school's name links to its own dashboard next to the page; a school's account is told why it
sees nothing; on a phone the page does not overflow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import PHONE, horizontal_overflow, open_page, settle
from tests.district_site import MONTH, PASSWORD, SCHOOLS, District, build
from tests.served import serve

pytestmark = pytest.mark.integration

EXPECTED_401 = "status of 401"  # the first load, before the login


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    yield from build(tmp_path_factory.mktemp("district"))


@pytest.fixture(scope="module")
def base_url(district: District) -> Iterator[str]:
    with serve(district.app) as url:
        yield url


def _log_in(page: Page, user: str) -> None:
    dialog = page.locator("dialog#dialog")
    dialog.locator("input[name=username]").fill(user)
    dialog.locator("input[name=password]").fill(PASSWORD)
    dialog.locator("button[type=submit]").click()
    expect(dialog).not_to_be_visible()


def _names(page: Page) -> list[str]:
    return page.locator("table.league tbody td.name a").all_inner_texts()


def test_a_district_account_reads_sorts_and_drills_down(browser: Browser, base_url: str) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base_url}/district?month={MONTH}")
        expect(page.locator("dialog#dialog")).to_contain_text("请用区级账号登录")
        _log_in(page, "bureau-zhou")
        page.wait_for_selector(f"#view[data-month='{MONTH}']")
        assert _names(page) == ["西城幼儿园", "东城小学", "北城中学"]  # by electricity per m²
        west = page.locator("tr", has=page.locator("a", has_text="西城幼儿园"))
        expect(west).to_have_class("attention")
        expect(west.locator(".reasons")).to_contain_text("安全台账只签了 10/31 天")
        expect(west.locator("td").nth(2)).to_contain_text("kWh/m²")
        expect(page.locator("tr", has=page.locator("a", has_text="北城中学")).locator(".reasons")).to_have_count(0)

        water = page.locator("th[data-column=water] button")
        water.click()  # the most first
        expect(page.locator("th[data-column=water]")).to_have_attribute("aria-sort", "descending")
        by_water = sorted(SCHOOLS, key=lambda s: -s.m3_per_h)
        assert _names(page) == [s.name for s in by_water]
        water.click()
        expect(page.locator("th[data-column=water]")).to_have_attribute("aria-sort", "ascending")
        assert _names(page) == [s.name for s in reversed(by_water)]

        for school in SCHOOLS:
            assert page.locator("a", has_text=school.name).get_attribute("href") == f"sites/{school.id}/"

        with page.expect_download() as download:
            page.locator(".downloads button", has_text="CSV").click()
        assert download.value.suggested_filename == f"district-{MONTH}.csv"

        page.locator("#lang").click()
        expect(page.locator("#view h2").nth(1)).to_have_text("Schools ranked")
        expect(west.locator(".reasons")).to_contain_text("signed on 10 of 31 days")
        assert console.problems(EXPECTED_401) == []


def test_a_school_account_is_told_to_use_a_district_one(browser: Browser, base_url: str) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base_url}/district?month={MONTH}")
        _log_in(page, "principal-east")
        alert = page.locator("#view [role=alert]")
        expect(alert).to_contain_text("这是学校的账号")
        expect(page.locator("table.league")).to_have_count(0)
        assert console.problems(EXPECTED_401, "status of 403") == []


def test_the_table_scrolls_inside_the_page_on_a_phone(browser: Browser, base_url: str) -> None:
    with open_page(browser, PHONE) as (page, _):
        page.goto(f"{base_url}/district?month={MONTH}")
        _log_in(page, "bureau-zhou")
        page.wait_for_selector(f"#view[data-month='{MONTH}']")
        settle(page)
        assert horizontal_overflow(page) <= 1
        assert page.locator("a", has_text="东城小学").is_visible()
