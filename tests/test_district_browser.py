"""The district's page in Chromium, served over real HTTP (tests/district_site.py): a district
account logs in, reads the league table, sorts it by a column, downloads the CSV, and each
school's name links to its own dashboard next to the page; a school's account is told why it
sees nothing; on a phone the page does not overflow. A district administrator manages the
district's accounts on the page (#accounts): adds one with a Chinese name, lowers its role, sets
its password, and it logs in; disabled, it no longer does. The district's viewers and staff
neither see the accounts nor reach them through the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.config.auth import Role
from tests.browser import PHONE, horizontal_overflow, open_page, settle
from tests.dashboard_site import signed_in
from tests.district_site import MONTH, NOW, PASSWORD, SCHOOLS, District, build, ms
from tests.served import serve

pytestmark = pytest.mark.integration

EXPECTED_401 = "status of 401"  # the first load, before the login
ADMIN: Final = "bureau-wu"  # the district's administrator
STAFF: Final = "bureau-qian"
QUARTER: Final = "2026-Q4"  # October whole, November begun (tests/district_site.py's NOW)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    for district in build(tmp_path_factory.mktemp("district")):
        district.accounts.add_user(ADMIN, Role.ADMIN, PASSWORD, "setup", ms(NOW), "吴主任")
        district.accounts.add_user(STAFF, Role.STAFF, PASSWORD, "setup", ms(NOW), "钱干事")
        yield district


@pytest.fixture(scope="module")
def base_url(district: District) -> Iterator[str]:
    with serve(district.app) as url:
        yield url


def _log_in(page: Page, user: str, password: str = PASSWORD) -> None:
    dialog = page.locator("dialog#dialog")
    dialog.locator("input[name=username]").fill(user)
    dialog.locator("input[name=password]").fill(password)
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


def test_a_district_admin_manages_the_district_accounts(browser: Browser, base_url: str, district: District) -> None:
    first, second = "inspector-sun-2026", "sun-new-password"
    with open_page(browser) as (page, console):
        page.goto(f"{base_url}/district?month={MONTH}")
        _log_in(page, ADMIN)
        page.wait_for_selector(f"#view[data-month='{MONTH}']")
        page.locator("#accounts", has_text="区级账号").click()
        users = page.locator("#view .users")
        # The district's accounts, a school's not among them.
        expect(users.locator("form.user[data-user=bureau-zhou] input[name=display_name]")).to_have_value("周科长")
        expect(users.locator("form.user[data-user=bureau-zhou] select[name=role] option:checked")).to_have_text("只能查看")
        expect(users.locator("form.user[data-user=principal-east]")).to_have_count(0)

        form = users.locator("form.user-add")
        form.locator("input[name=display_name]").fill("孙督学")
        form.locator("input[name=name]").fill("principal-east")  # a school's login: ids are the district's
        form.locator("select[name=role]").select_option("staff")
        form.locator("input[name=password]").fill("short")
        form.locator("button[type=submit]").click()
        password_field = form.locator("label", has=page.locator("input[name=password]"))
        expect(password_field.locator("[role=alert]")).to_have_text("密码至少要 10 个字符")
        form.locator("input[name=password]").fill(first)
        form.locator("button[type=submit]").click()
        login_field = form.locator("label", has=page.locator("input[name=name]"))
        expect(login_field.locator("[role=alert]")).to_have_text("这个用户名已经有人用了，请换一个")
        form.locator("input[name=name]").fill("inspector-sun")
        form.locator("button[type=submit]").click()
        expect(users.locator(".banner")).to_have_text("已添加账号：孙督学")

        row = users.locator("form.user[data-user=inspector-sun]")
        row.locator("select[name=role]").select_option("viewer")
        row.locator("button[type=submit]").click()
        expect(users.locator(".banner")).to_have_text("已保存")
        expect(row.locator("select[name=role] option:checked")).to_have_text("只能查看")
        row.locator("button.reset").click()
        dialog = page.locator("dialog#dialog")
        dialog.locator("input[name=password]").fill(second)
        dialog.locator("button[type=submit]").click()
        expect(users.locator(".banner")).to_have_text("已为 孙督学 设置新密码，请当面告诉本人")

        with open_page(browser) as (theirs, their_console):
            theirs.goto(f"{base_url}/district?month={MONTH}")
            _log_in(theirs, "inspector-sun", second)
            theirs.wait_for_selector(f"#view[data-month='{MONTH}']")
            expect(theirs.locator("#user")).to_have_text("孙督学 · 退出")
            expect(theirs.locator("#accounts")).to_be_hidden()  # a viewer now
            assert their_console.problems(EXPECTED_401) == []

        row.locator("button.toggle").click()
        expect(row.locator(".chip")).to_have_text("已停用")
        assert console.problems(EXPECTED_401, "status of 409") == []  # the login taken
    refused = httpx.post(f"{base_url}/api/v1/auth/login", json={"username": "inspector-sun", "password": second})
    assert refused.status_code == 401
    assert [(u.name, u.role, u.disabled) for u in district.accounts.list_users() if u.name == "inspector-sun"] == [
        ("inspector-sun", Role.VIEWER, True)]


@pytest.mark.parametrize("user", ["bureau-zhou", STAFF])
def test_the_district_viewers_and_staff_neither_see_nor_reach_the_accounts(base_url: str, user: str) -> None:
    with httpx.Client(base_url=base_url) as api:
        who = signed_in(api, user, PASSWORD)
        assert api.get("/api/v1/users", headers=who).status_code == 403
        added = api.post("/api/v1/users", headers=who,
                         json={"name": "intruder", "display_name": "闯入者", "role": "admin", "password": "x" * 12})
        assert added.status_code == 403
        assert api.patch(f"/api/v1/users/{user}", headers=who, json={"role": "admin"}).status_code == 403
        assert api.get("/api/v1/users", headers=signed_in(api, ADMIN, PASSWORD)).status_code == 200


def test_a_viewer_is_shown_no_accounts(browser: Browser, base_url: str) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base_url}/district?month={MONTH}#accounts")
        _log_in(page, "bureau-zhou")
        page.wait_for_selector(f"#view[data-month='{MONTH}']")  # the league, not the accounts
        expect(page.locator("#accounts")).to_be_hidden()
        expect(page.locator("#view .users")).to_have_count(0)
        assert console.problems(EXPECTED_401) == []


def test_the_accounts_fit_a_phone_in_both_languages(browser: Browser, base_url: str) -> None:
    with open_page(browser, PHONE) as (page, console):
        page.goto(f"{base_url}/district?month={MONTH}#accounts")
        _log_in(page, ADMIN)
        expect(page.locator("#view .users form.user[data-user=bureau-zhou]")).to_be_visible()
        settle(page)
        assert horizontal_overflow(page) <= 1
        page.locator("#lang").click()
        expect(page.locator("#view h2").first).to_have_text("District accounts")
        expect(page.locator("#view form.user[data-user=bureau-zhou] select[name=role] option:checked")).to_have_text("Look only")
        page.locator("#accounts", has_text="Schools ranked").click()
        page.wait_for_selector(f"#view[data-month='{MONTH}']")
        expect(page.locator("#accounts")).to_have_text("District accounts")
        assert console.problems(EXPECTED_401) == []


def test_every_schools_disclosure_side_by_side_on_a_phone(browser: Browser, base_url: str) -> None:
    with open_page(browser, PHONE) as (page, console):
        page.goto(f"{base_url}/district?quarter={QUARTER}#disclosure")
        _log_in(page, "bureau-zhou")
        page.wait_for_selector(f"#view[data-period='{QUARTER}']")
        rows = page.locator("table.disclosure tbody tr")
        expect(rows).to_have_count(len(SCHOOLS))
        east = page.locator("table.disclosure tr[data-site=east]")
        # October's electricity (November has no readings yet), 25 % up on last October's: to explain.
        expect(east.locator("td").nth(2)).to_contain_text("7,440")
        expect(east.locator("td").nth(2)).to_contain_text("同比 +25%")
        expect(east.locator("td.explanation")).to_contain_text("未填写，须说明")
        expect(page.locator("table.disclosure tr[data-site=west] td.explanation")).to_have_text("–")
        assert east.locator("a").get_attribute("href") == f"sites/east/#/reports?type=disclosure&period={QUARTER}"
        settle(page)
        assert horizontal_overflow(page) <= 1
        with page.expect_download() as got:
            page.locator("button", has_text="下载 CSV").click()
        assert got.value.suggested_filename == f"district-disclosure-{QUARTER}.csv"
        page.locator("#disclosure", has_text="← 各校排名").click()  # back to the league (of this month)
        expect(page.locator("#disclosure")).to_have_text("季度公示")
        expect(page.locator("table.disclosure")).to_have_count(0)
        assert console.problems(EXPECTED_401, "status of 422") == []  # the browser's month is after the server's
