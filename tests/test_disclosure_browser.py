"""The energy report by quarter and year and the quarterly public disclosure (能耗公示) in a real
browser (Chromium) against a gateway process of the demo kindergarten (tests/dashboard_site.py):
an admin on a phone writes the quarter's explanation, saves it, sees it and finds it in the
downloaded CSV; a too long one is refused in words; a viewer reads the sheet without an editor;
the quarter's view shows the API's figures and sub-items in words, its span in the address.
Screenshots go to `$DISCLOSURE_ARTIFACTS` (default `test-artifacts/disclosure/`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.reports.disclosure import MAX_TEXT, ROWS
from tests.browser import DESKTOP, PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import Site, log_in, running_site, show, use_language
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

SHOTS: Final = artifacts_dir("disclosure")
ADMIN: Final = "logistics-li"  # 李主任
VIEWER: Final = "teacher-sun"
EXPLANATION: Final = "本季度新增两间午睡室的空调，\n用电同比上升。"
WORDS: Final = {r.key: (r.words_zh, r.words_en) for r in ROWS}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "disclosure") as s:
        yield s


@pytest.fixture(scope="module")
def quarter(site: Site) -> str:
    """The quarter in progress at the site."""
    year, month, _ = (int(x) for x in site.api.get("/api/v1/calendar").json()["date"].split("-"))
    return f"{year}-Q{(month - 1) // 3 + 1}"


def sheet(page: Page, site: Site, period: str) -> None:
    show(page, site.url, f"reports?type=disclosure&period={period}", "table[data-table=disclosure]")


def items(page: Page) -> list[str]:
    return page.locator("table[data-table=disclosure] .item-words").all_inner_texts()


def test_an_admin_on_a_phone_explains_the_quarter_and_finds_it_in_the_csv(
    browser: Browser, site: Site, quarter: str,
) -> None:
    data: dict[str, Any] = site.api.get("/api/v1/reports/disclosure", params={"period": quarter}).json()
    with open_page(browser, PHONE) as (page, console):
        use_language(page, site.url, "zh-CN")
        log_in(page, ADMIN)
        sheet(page, site, quarter)
        # The sheet's rows in the PDF's words and order, the marked ones those the API asks to explain.
        assert items(page) == ["用能人数", "建筑面积"] + [zh for key, (zh, _) in WORDS.items() if key in data["figures"]]
        marked = page.locator("table[data-table=disclosure] tr", has=page.locator(".chip.warn"))
        assert marked.locator(".item-words").all_inner_texts() == [WORDS[k][0] for k in data["to_explain"]]

        editor = page.locator(".explanation-editor")
        # Longer than the gateway keeps (typed text stops at the field's limit; a pasted script's does not).
        editor.locator("textarea").evaluate("(field, n) => { field.value = '长'.repeat(n + 1); }", MAX_TEXT)
        editor.locator("button.save-explanation").click()
        expect(editor.locator("[role=status]")).to_have_text(f"说明太长了：最多 {MAX_TEXT:,} 个字。")

        editor.locator("textarea").fill(EXPLANATION)
        editor.locator("button.save-explanation").click()
        expect(editor.locator("[role=status]")).to_have_text("说明已保存。")
        expect(page.locator(".explanation-text")).to_have_text(EXPLANATION)
        expect(page.locator(".explanation")).to_contain_text("李主任 于")
        assert horizontal_overflow(page) <= 1
        screenshot(page, SHOTS, "phone-disclosure-admin")

        with page.expect_download() as download:
            page.locator(".downloads button[data-format=csv]").click()
        assert download.value.suggested_filename == f"disclosure-{quarter}.csv"
        csv = download.value.path().read_text(encoding="utf-8-sig")
        assert " ".join(EXPLANATION.split()) in " ".join(csv.replace('"', "").split())
        assert console.problems("status of 422") == []  # the refused save, logged by the browser

    saved = site.api.get("/api/v1/reports/disclosure", params={"period": quarter}).json()["explanation"]
    assert (saved["text"], saved["by"]["name_zh"]) == (EXPLANATION, "李主任")
    # After a reload the page reads it from the gateway.
    with open_page(browser, DESKTOP) as (page, console):
        use_language(page, site.url, "en")
        sheet(page, site, quarter)
        expect(page.locator(".explanation-text")).to_have_text(EXPLANATION)
        assert items(page) == ["Energy users", "Floor area"] + [en for key, (_, en) in WORDS.items()
                                                                  if key in data["figures"]]
        screenshot(page, SHOTS, "desktop-en-disclosure")
        assert console.problems() == []


@pytest.mark.parametrize("user", [VIEWER, None])
def test_a_viewer_reads_the_sheet_without_an_editor(browser: Browser, site: Site, quarter: str, user: str | None) -> None:
    with open_page(browser, PHONE) as (page, console):
        use_language(page, site.url, "zh-CN")
        if user:
            log_in(page, user)
        sheet(page, site, quarter)
        expect(page.locator(".explanation")).to_be_visible()
        expect(page.locator("textarea")).to_have_count(0)
        expect(page.locator("button.save-explanation")).to_have_count(0)
        # The sheet's files, PDF and CSV; no web page of it.
        assert page.locator(".downloads button").evaluate_all("(b) => b.map((x) => x.dataset.format)") == ["pdf", "csv"]
        assert console.problems() == []


def shown_number(text: str) -> float:
    found = re.search(r"-?[\d,]+(\.\d+)?", text)
    assert found, text
    return float(found[0].replace(",", ""))


@pytest.mark.parametrize(("lang", "screen"), [("zh-CN", "phone"), ("en", "desktop")])
def test_the_quarter_view_shows_the_api_s_figures(browser: Browser, site: Site, quarter: str, lang: str,
                                                  screen: str) -> None:
    report = site.api.get("/api/v1/reports/energy/period", params={"period": quarter}).json()
    power = next(c for c in report["categories"] if c["utility"] == "electricity")["total"]["now"]
    assert power, "the site's meters have readings this quarter"
    with open_page(browser, PHONE if screen == "phone" else DESKTOP) as (page, console):
        use_language(page, site.url, lang)
        show(page, site.url, f"reports?type=energy&span=quarter&period={quarter}", "[data-report=energy-period]")
        figure = page.locator("[data-report=energy-period] .figure").first
        assert shown_number(figure.locator("strong").inner_text()) == pytest.approx(power, abs=0.5)
        # Last year has no data here: the change is not made up.
        expect(figure.locator(".figure-note")).to_have_text("去年同期无完整数据" if lang == "zh-CN"
                                                            else "no complete data last year")
        words = "words_zh" if lang == "zh-CN" else "words_en"
        first_cells = page.locator("table[data-table=subitems] tbody td:first-child").all_inner_texts()
        assert first_cells == [s[words] for s in report["subitems"]]
        assert page.locator("table[data-table=months] tbody tr").count() == len(report["by_month"])
        assert horizontal_overflow(page) <= 1
        screenshot(page, SHOTS, f"{screen}-{lang}-energy-quarter")

        # The span is in the address: a year now, its own latest period.
        page.locator("select[name=span]").select_option("year")
        page.wait_for_function("() => location.hash.includes('span=year')")
        expect(page.locator("#view select[name=period]")).to_have_value(quarter.split("-", maxsplit=1)[0])
        assert "period=" not in page.evaluate("() => location.hash")
        assert console.problems() == []
