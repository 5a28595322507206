"""The safety ledger (安全台账) in a real browser (Chromium) against a gateway of the demo
kindergarten as its own process: the gate guard completes today's blank items (one of them a
problem) and signs as the inspector; the head of logistics writes the measures and signs as
the person responsible; the principal reviews. The page shows the three names and times, the
audit trail names each actor, a viewer is refused each action, and the printed record has the
filing columns, the names and the problem, and no login ids. Screenshots (desktop and phone,
zh-CN and en) go to `$DASHBOARD_ARTIFACTS` (default `test-artifacts/dashboard/`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser import DESKTOP, PHONE, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import Site, log_in, running_site, show, signed_in, use_language
from tests.services import Mosquitto, require_binary

pytestmark = pytest.mark.integration

PROBLEM = "三楼走廊灯没关，已关闭"
NAMES = ("王师傅", "李主任", "赵园长")
LOGINS = ("guard-wang", "logistics-li", "principal-zhao", "teacher-sun")
SIGNED = ".ledger-signatures [data-sign={role}] .sign-name"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "ledger") as s:
        yield s


def switch_user(page: Page, user: str) -> None:
    """Logs the one signed in out with the header's button, and `user` in; returns once the
    view is drawn anew for them (what is typed before would be typed into the old page)."""
    page.locator("#user").click()
    expect(page.locator("#user")).to_have_text(re.compile("登录|Log in"))
    page.evaluate("() => { document.querySelector('.ledger').dataset.stale = 'yes'; }")
    log_in(page, user)
    page.wait_for_selector(".ledger:not([data-stale]) .ledger-signatures")


def sign(page: Page, role: str) -> None:
    page.locator(f".ledger-signatures [data-sign={role}] button").click()
    expect(page.locator(SIGNED.format(role=role))).to_be_visible()


def test_a_day_is_checked_rectified_and_signed_by_three_people(browser: Browser, site: Site) -> None:
    shots = artifacts_dir("dashboard")
    with open_page(browser) as (page, console):
        show(page, site.url, "ledger", ".ledger-signatures")
        day = page.locator(".ledger").get_attribute("data-day")
        assert day
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day)
        log_in(page, "guard-wang")
        blank = page.locator(".ledger-blank article[data-item]")
        expect(blank.first).to_be_visible()
        screenshot(page, shots, "ledger-blank-desktop-zh")
        # Signing a blank ledger is refused, and the page says what is left, in words.
        page.locator(".ledger-signatures [data-sign=inspector] button").click()
        refusal = page.locator("[data-role=sign-error]")
        expect(refusal).to_contain_text("台账空白")
        expect(refusal).to_contain_text("「下班前安全检查」")

        # The guard's own round had a problem; everything else was in order.
        walk = page.locator('.ledger-blank article[data-item="guard:walkround"]')
        walk.locator("button.problem").click()
        page.locator("dialog#dialog textarea[name=note]").fill(PROBLEM)
        page.locator("dialog#dialog button[type=submit]").click()
        expect(walk).to_have_count(0)
        # A fire round is kept on the patrol's page, which the ledger links to: the guard walks
        # the rounds due by now there (through its API here), and the ledger shows them done.
        rounds = page.locator('.ledger-blank article[data-item^="fire:"]')
        if rounds.count():
            expect(rounds.first.locator('a[href="#/patrol"]')).to_be_visible()
            items = [{"id": i["id"], "result": "ok"} for i in site.api.get(
                "/api/v1/fire-patrols", params={"date": day}).json()["items"]]
            for item_id in [rounds.nth(k).get_attribute("data-item") for k in range(rounds.count())]:
                assert item_id is not None
                answer = site.api.post(f"/api/v1/fire-patrols/{day}/{item_id.removeprefix('fire:')}",
                                       json={"items": items}, headers=signed_in(site.api, "guard-wang"))
                assert answer.status_code == 200, answer.text
            page.reload()
            # Drawn anew before the blank items are counted: counted mid-draw they read 0.
            expect(page.locator(".ledger-blank, .ledger-complete").first).to_be_visible()
            expect(rounds).to_have_count(0)
        # A lamp's tube care is kept on the lamp's page, which the ledger links to: the health
        # doctor records a wipe and an irradiance test there (through its API here).
        tubes = page.locator('.ledger-blank article[data-item^="uvcare:"]')
        lamps = [(tubes.nth(k).get_attribute("data-item") or "").removeprefix("uvcare:") for k in range(tubes.count())]
        assert lamps
        expect(tubes.first.locator(f'a[href="#/device/{lamps[0]}"]')).to_be_visible()
        doctor = signed_in(site.api, "doctor-zhou")
        for lamp in lamps:
            for body in ({"action": "clean"}, {"action": "test", "uw_cm2": 95.5}):
                answer = site.api.post(f"/api/v1/uv/{lamp}/care", json=body, headers=doctor)
                assert answer.status_code == 201, answer.text
        page.reload()
        expect(page.locator(".ledger-blank, .ledger-complete").first).to_be_visible()
        expect(tubes).to_have_count(0)
        while blank.count():
            item = blank.first
            item_id = item.get_attribute("data-item")
            item.locator("button.ok").click()
            expect(page.locator(f'.ledger-blank article[data-item="{item_id}"]')).to_have_count(0)
        expect(page.locator(".ledger-complete")).to_be_visible()
        walked = page.locator('.ledger-failed article[data-item="guard:walkround"]')
        expect(walked.locator("textarea[name=problem]")).to_have_value(PROBLEM)
        expect(walked.locator("[data-stage=problem] .by")).to_contain_text("王师傅")
        sign(page, "inspector")

        # The head of logistics writes a measure for every problem, then signs.
        switch_user(page, "logistics-li")
        failed = page.locator(".ledger-failed article[data-item]")
        for k in range(failed.count()):
            item = failed.nth(k)
            item.locator("textarea[name=measure]").fill("已处理，明天复查" if k else "已关灯，提醒值班老师下班前巡查")
            item.locator("button.save").click()
            expect(failed.nth(k).locator("[data-stage=measure] .by")).to_contain_text("李主任")
        sign(page, "responsible")

        switch_user(page, "principal-zhao")
        sign(page, "review")
        for role, name in zip(("inspector", "responsible", "review"), NAMES, strict=True):
            expect(page.locator(SIGNED.format(role=role))).to_contain_text(name)
            expect(page.locator(SIGNED.format(role=role))).to_contain_text(re.compile(r"\d{2}:\d{2}"))
        screenshot(page, shots, "ledger-signed-desktop-zh")
        assert console.problems("409") == []

    # Each action is in the audit trail with its actor.
    admin = signed_in(site.api, "principal-zhao")

    def audit(action: str) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = site.api.get("/api/v1/audit", params={"action": action},
                                                       headers=admin).json()
        return [e for e in entries if str(e["target"]).startswith(f"safety:{day}")]

    completed = audit("safety_check.completed")
    assert {e["actor"] for e in completed} == {"guard-wang"}
    assert any(e["detail"] == {"result": "problem", "note": PROBLEM} for e in completed)
    # A sensor's failure: what it showed is saved as the problem with the measure.
    rectified = {(e["actor"], e["target"], e["detail"]["stage"]) for e in audit("safety_check.rectified")}  # type: ignore[index]
    assert ("logistics-li", f"safety:{day}:guard:walkround", "measure") in rectified
    assert {actor for actor, _, _ in rectified} == {"logistics-li"}
    assert ("logistics-li", f"safety:{day}:guard:walkround", "problem") not in rectified
    assert [(e["actor"], e["detail"]) for e in audit("safety_record.signed")] == [
        ("principal-zhao", {"role": "review"}), ("logistics-li", {"role": "responsible"}),
        ("guard-wang", {"role": "inspector"})]

    # A viewer may do none of it.
    viewer = signed_in(site.api, "teacher-sun")
    base = f"/api/v1/reports/safety/{day}"
    for path, body in ((f"{base}/items/guard:walkround", {"result": "ok", "note": ""}),
                       (f"{base}/items/guard:walkround/rectification", {"outcome": "已复查"}),
                       (f"{base}/signatures/inspector", {}), (f"{base}/signatures/responsible", {}),
                       (f"{base}/signatures/review", {})):
        assert site.api.post(path, json=body, headers=viewer).status_code == 403, path

    # The printed record: its columns, the three names, the problem; no login ids.
    pdf = site.api.get("/api/v1/reports/safety", params={"date": day, "format": "pdf"})
    assert pdf.status_code == 200
    printed = artifacts_dir("reports") / "ledger-browser.pdf"
    printed.write_bytes(pdf.content)
    text = subprocess.run([require_binary("pdftotext", "poppler-utils"), "-layout", str(printed), "-"], check=True,
                          capture_output=True, text=True).stdout
    squeezed = re.sub(r"\s+", "", text)
    for words in ("每日安全检查记录", "检查项目", "检查情况", "结果", "检查人", "存在问题", "整改措施", "整改结果",
                  "负责人：", "园长（审核）：", re.sub(r"\s+", "", PROBLEM), *NAMES):
        assert words in squeezed, words
    assert not [login for login in LOGINS if login in text]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_ledger_reads_on_a_phone_and_in_english(browser: Browser, site: Site, lang: str,
                                                    viewport: ViewportSize) -> None:
    with open_page(browser, viewport) as (page, console):
        use_language(page, site.url, lang)
        show(page, site.url, "ledger", ".ledger-signatures")
        expect(page.locator("#nav a.active")).to_have_text("安全台账" if lang == "zh-CN" else "Safety ledger")
        day = page.locator(".ledger").get_attribute("data-day")
        assert day
        # The day before, by its link; and back by the date field.
        page.locator(".ledger-nav a.prev").click()
        page.wait_for_selector(f".ledger[data-day]:not([data-day='{day}'])")
        page.locator(".ledger-nav input[type=date]").fill(day)
        page.wait_for_selector(f".ledger[data-day='{day}'] .ledger-signatures")
        if lang == "en":  # the site file's names and what people wrote stay Chinese; none of the page's own words
            body = page.locator("#view").inner_text()
            assert not [w for w in ("检查", "签字", "台账", "整改", "正常", "异常", "：") if w in body], body
        kind = "phone" if viewport == PHONE else "desktop"
        screenshot(page, artifacts_dir("dashboard"), f"ledger-{kind}-{lang}")
        if viewport == PHONE:
            assert horizontal_overflow(page) <= 1
        assert console.problems() == []

