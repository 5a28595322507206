"""The admin area (设置) in a real browser (Chromium) against a gateway process of the demo
kindergarten: the head of logistics adds a building, a room and a water meter whose first
reading is taken at once (no restart); changes a building's hours and adds a closure, which
the calendar and the closing board follow; adds an account with a Chinese name that then logs
in; tags a meter with its energy sub-item (分项), chosen by its words; sends a test message to a real webhook receiver; adopts a Zigbee door sensor that
Zigbee2MQTT's bridge listed, from the 新设备 inbox; imports a changed site file after its
preview; saves after someone else did and is told so, with their settings shown. A site
managed from its file shows every page without a control to change it. Staff and viewers neither see 设置 nor
reach the admin API. A wrong value typed in a form reads under its field in the very words
`check-config` gives for the same value in a site file. Screenshots of every settings page
(zh-CN and en, phone and desktop) go to `$ADMIN_ARTIFACTS` (default `test-artifacts/admin/`).

The test site has no statutory holidays (tests/dashboard_site.py closes it every day), so
that what the calendar says today depends on the test alone, whatever the date."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
import yaml
from playwright.sync_api import Browser, Page, ViewportSize, expect

from gateway.config import ConfigError, parse
from tests.browser import DESKTOP, artifacts_dir, horizontal_overflow, open_page, screenshot
from tests.dashboard_site import Site, log_in, publish, running_site, show, signed_in, use_language, wait_until
from tests.gateway.test_discovery import fixture
from tests.gateway.test_discovery import publish as publish_on
from tests.receivers import HttpReceiver
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

SHOTS: Final = artifacts_dir("admin")
ADMIN: Final = "logistics-li"
# The settings' pages, each by its route (the language scan reads every one of them too).
SETTINGS_PAGES: Final = ["settings/school", "settings/devices", "settings/devices/new", "settings/devices/edit/kitchen-water",
                         "settings/hours",
                         "settings/calendar", "settings/duty", "settings/users", "settings/notifications",
                         "settings/tariffs", "settings/inbox", "settings/file"]
# The width of a large phone: forms must fit it without scrolling sideways.
PHONE_430: Final[ViewportSize] = {"width": 430, "height": 932}
HOOK: Final = "office-hook"
# An Aqara contact sensor in Zigbee2MQTT's list of paired devices (tests/fixtures/discovery/).
DOOR_SENSOR: Final = "zigbee2mqtt:0x00158d000122fcd1"
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, hook: HttpReceiver) -> Iterator[Site]:
    settings = {
        "calendar": {"statutory_holidays": False},
        "notifications": {"channels": [{"type": "webhook", "id": HOOK, "url": hook.url, "min_severity": "critical"}]},
    }
    with running_site(tmp_path_factory, mosquitto, "admin", settings) as s:
        yield s


def settings_page(page: Page, site: Site, sub: str) -> None:
    show(page, site.url, f"settings/{sub}", f".settings[data-page='{sub.split('/', maxsplit=1)[0]}']")


def as_admin(page: Page, site: Site, sub: str, lang: str = "zh-CN") -> None:
    use_language(page, site.url, lang)
    log_in(page, ADMIN)
    settings_page(page, site, sub)


def saved(page: Page) -> None:
    expect(page.locator("#view .banner.notice.ok")).to_be_visible()


def today(site: Site) -> str:
    day: str = site.api.get("/api/v1/calendar").json()["date"]
    return day


def test_an_admin_adds_a_building_a_room_and_a_meter_whose_reading_is_taken_at_once(browser: Browser, site: Site) -> None:
    with open_page(browser) as (page, console):
        as_admin(page, site, "school")
        page.locator("#view .buildings-editor > .add-row > button.add").click()
        building = page.locator("#view fieldset.building").last
        building.locator("input[name=id]").first.fill("library")
        building.locator("input[name=name]").first.fill("图书馆")
        building.locator("input[name=floor_area_m2]").fill("860")
        room = building.locator(".room-fields").first
        room.locator("input[name=id]").fill("reading-room")
        room.locator("input[name=name]").fill("阅览室")
        room.locator("select[name=type]").select_option("office")
        building.locator("xpath=ancestor::form").locator("button.save").click()
        saved(page)
        expect(page.locator("#view .banner.notice")).to_contain_text("新增楼宇「图书馆」")

        settings_page(page, site, "devices")
        page.locator("#view button.add-device").click()
        form = page.locator("#view form.device-form")
        expect(form).to_be_visible()
        form.locator("input[name=name]").fill("图书馆水表")
        form.locator("select[name=kind]").select_option(label="水表")
        form.locator("select[name=room]").select_option("reading-room")
        form.locator("input[name=id]").fill("library-water")
        form.locator("button.save").click()
        line = page.locator("#view [data-device=library-water]")
        expect(line).to_contain_text("图书馆水表")
        assert console.problems() == []

    # Read at once by the running gateway: no restart.
    sent = time.time()
    publish(site.broker, [("library-water", {"ts": sent, "volume_m3": 12.5, "flow_lpm": 0.0})])
    def reading() -> dict[str, Any] | None:
        found: dict[str, Any] = site.api.get("/api/v1/devices/library-water").json()
        return found if found.get("last_values", {}).get("volume_m3") == 12.5 else None

    device = wait_until("the new meter's reading", reading, timeout_s=5)
    assert device is not None
    assert device["room"] == "reading-room"
    assert device["building"] == "library"
    with open_page(browser) as (page, console):
        show(page, site.url, "device/library-water", ".device-head")
        expect(page.locator("#view .device-head")).to_contain_text("图书馆水表")
        expect(page.locator('#view [data-live="library-water:volume_m3"]').first).to_have_attribute("data-value", "12.5")
        assert console.problems() == []


def test_an_admin_tags_a_meter_with_its_sub_item_chosen_in_words(browser: Browser, site: Site) -> None:
    admin = signed_in(site.api, ADMIN)
    with open_page(browser) as (page, console):
        as_admin(page, site, "devices/edit/kitchen-water")
        expect(page.locator("#view form.device-form")).to_be_visible()
        expect(page.locator("#view form.device-form select[name=subitem]")).to_have_count(0)  # water: no sub-items

        settings_page(page, site, "devices/edit/kitchen-power")
        subitem = page.locator("#view form.device-form select[name=subitem]")
        expect(subitem.locator("option:checked")).to_have_text("01D30 特殊用电·厨房餐厅")
        expect(subitem.locator("option").first).to_have_text("不标注（总表或未分项）")
        subitem.select_option(label="01D10 特殊用电·信息中心")
        page.locator("#view form.device-form button.save").click()
        expect(page.locator("#view [data-device=kitchen-power]")).to_be_visible()
        assert console.problems() == []
    devices = site.api.get("/api/v1/admin/config", headers=admin).json()["site"]["devices"]
    assert next(d for d in devices if d["id"] == "kitchen-power")["subitem"] == "01D10"


def test_a_building_s_hours_and_a_closure_reach_the_calendar_and_the_closing_board(browser: Browser, site: Site) -> None:
    day = today(site)
    weekday = WEEKDAYS[datetime.fromisoformat(day).weekday()]
    with open_page(browser) as (page, console):
        as_admin(page, site, "hours")
        # The school opens all day today; the teaching building keeps its own, shorter hours.
        school = page.locator("#view form[data-hours=school]")
        span_of(school, weekday, "00:00", "23:59")
        school.locator("button.save").click()
        saved(page)
        teaching = page.locator("#view form[data-building=teaching]")
        teaching.get_by_label("与学校相同").uncheck()
        spans = teaching.locator(f".weekday[data-day={weekday}] .span-fields")
        expect(spans).to_have_count(1)
        spans.locator("input[name=end]").fill("00:01")
        teaching.locator("button.save").click()
        saved(page)

        open_now = site.api.get("/api/v1/calendar").json()
        assert open_now["kind"] == "school_day"
        hours = {b["id"]: b["open"] for b in open_now["buildings"]}
        tz = ZoneInfo(site.api.get("/api/v1/site").json()["timezone"])
        assert [(datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])) for s in hours["teaching"]] == [
            (datetime.fromisoformat(f"{day}T00:00").replace(tzinfo=tz), datetime.fromisoformat(f"{day}T00:01").replace(tzinfo=tz))]
        assert len(hours["service"]) == 1
        show(page, site.url, "closing", "section.closing")
        expect(page.locator("#view section.closing[data-building=service]")).to_have_attribute("data-state", "open")
        expect(page.locator("#view section.closing[data-building=teaching]")).not_to_have_attribute("data-state", "open")

        settings_page(page, site, "calendar")
        closures = page.locator("#view fieldset[data-periods=closures]")
        closures.locator("button.add").click()
        closures.locator("input[name=start]").fill(day)
        closures.locator("input[name=end]").fill(day)
        closures.locator("input[name=name]").fill("停电检修")
        closures.locator("xpath=ancestor::form").locator("button.save").click()
        saved(page)
        expect(page.locator(f"#view .month .day[data-date='{day}']")).to_have_attribute("data-kind", "closure")
        expect(page.locator(f"#view .month .day[data-date='{day}']")).to_contain_text("停电检修")
        screenshot(page, SHOTS, "calendar-closure-desktop-zh")

        closed = site.api.get("/api/v1/calendar").json()
        assert (closed["kind"], closed["name_zh"], closed["school_day"]) == ("closure", "停电检修", False)
        assert all(b["open"] == [] for b in closed["buildings"])
        show(page, site.url, "closing", "section.closing")
        expect(page.locator("#view section.closing[data-building=service]")).not_to_have_attribute("data-state", "open")
        assert console.problems() == []


def span_of(form: Any, weekday: str, start: str, end: str) -> None:
    """Gives a weekday one span (adding it if the day has none)."""
    day = form.locator(f".weekday[data-day={weekday}]")
    if day.locator(".span-fields").count() == 0:
        day.locator("button.add").click()
    day.locator("input[name=start]").first.fill(start)
    day.locator("input[name=end]").first.fill(end)


def test_an_admin_adds_an_account_with_a_chinese_name_who_then_logs_in(browser: Browser, site: Site) -> None:
    password = "huang-laoshi-2026"
    with open_page(browser) as (page, console):
        as_admin(page, site, "users")
        form = page.locator("#view form.user-add")
        form.locator("input[name=display_name]").fill("黄老师")
        form.locator("input[name=name]").fill("teacher-huang")
        form.locator("select[name=role]").select_option("staff")
        form.locator("input[name=password]").fill("short")
        form.locator("button[type=submit]").click()
        expect(form.locator("[role=alert]")).to_have_text("密码至少要 10 个字符")
        form.locator("input[name=password]").fill(password)
        form.locator("button[type=submit]").click()
        expect(page.locator("#view .users .banner")).to_have_text("已添加账号：黄老师")
        row = page.locator("#view form.user[data-user=teacher-huang]")
        expect(row.locator("input[name=display_name]")).to_have_value("黄老师")
        assert console.problems() == []
    with open_page(browser) as (page, console):
        show(page, site.url, "overview", ".severities")
        log_in(page, "teacher-huang", password)
        expect(page.locator("#user")).to_have_text("黄老师 · 退出")
        expect(page.locator("#nav")).not_to_contain_text("设置")
        assert console.problems() == []


def test_a_test_message_reaches_a_real_webhook(browser: Browser, site: Site, hook: HttpReceiver) -> None:
    with open_page(browser) as (page, console):
        as_admin(page, site, "notifications")
        channel = page.locator(f"#view .channel[data-channel={HOOK}]")
        channel.locator("button.test").click()
        expect(channel.locator(".test-result")).to_have_text("测试消息已送达。")
        assert console.problems() == []
    tests = [r.json() for r in hook.requests if r.json().get("test")]
    assert [(m["channel"], m["site"]) for m in tests] == [(HOOK, "sunflower-kg")]


@pytest.mark.parametrize("user", ["guard-wang", "teacher-sun"])
def test_staff_and_viewers_neither_see_nor_reach_the_settings(browser: Browser, site: Site, user: str) -> None:
    assert site.api.get("/api/v1/admin/config").status_code == 401
    who = signed_in(site.api, user)
    assert site.api.get("/api/v1/admin/config", headers=who).status_code == 403
    change = site.api.put("/api/v1/admin/config/school", headers=who,
                          json={"version": 1, "value": {"name": "改名幼儿园"}})
    assert change.status_code == 403
    assert site.api.get("/api/v1/admin/config/export", headers=who).status_code == 403
    with open_page(browser) as (page, console):
        use_language(page, site.url, "zh-CN")
        log_in(page, user)
        expect(page.locator("#nav a")).not_to_have_text(["设置"])
        expect(page.locator("#nav")).not_to_contain_text("设置")
        page.evaluate("() => { location.hash = '#/settings/school'; }")
        expect(page.locator("#view .settings-refused")).to_contain_text("需要管理员权限")
        expect(page.locator("#view form")).to_have_count(0)
        assert console.problems("status of 403") == []
    with open_page(browser) as (page, _):
        use_language(page, site.url, "zh-CN")
        log_in(page, ADMIN)
        expect(page.locator("#nav")).to_contain_text("设置")


def test_a_save_after_someone_else_s_is_refused_and_the_page_shows_theirs(browser: Browser, site: Site) -> None:
    admin = signed_in(site.api, ADMIN)
    with open_page(browser) as (page, console):
        as_admin(page, site, "school")
        school = page.locator("#view form[data-section=school]")
        school.locator("input[name=headcount]").fill("150")
        # Meanwhile, another admin changes the school from another browser.
        config = site.api.get("/api/v1/admin/config", headers=admin).json()
        theirs = {key: config["site"][key] for key in ("name", "kind", "timezone")} | {"headcount": 160}
        changed = site.api.put("/api/v1/admin/config/school", headers=admin,
                               json={"version": config["version"], "value": theirs})
        assert changed.status_code == 200, changed.text
        school.locator("button.save").click()
        expect(page.locator("#view .banner.notice.bad")).to_contain_text("别人刚刚修改了设置")
        expect(page.locator("#view form[data-section=school] input[name=headcount]")).to_have_value("160")
        assert console.problems("status of 409") == []
    assert site.api.get("/api/v1/admin/config", headers=admin).json()["site"]["headcount"] == 160


def test_a_wrong_value_reads_under_its_field_as_check_config_says(browser: Browser, site: Site) -> None:
    """The same wrong values typed in the form and written in a site file: the same words."""
    school = site.api.get("/api/v1/admin/config", headers=signed_in(site.api, ADMIN)).json()["site"]
    rooms = len(school["buildings"][0]["rooms"])
    document = yaml.safe_load(site.api.get("/api/v1/admin/config/export", headers=signed_in(site.api, ADMIN)).text)
    document["buildings"][0]["floor_area_m2"] = -5
    document["buildings"][0]["rooms"].append({"id": "reading room", "name": "阅览室"})
    with pytest.raises(ConfigError) as refused:
        parse(yaml.safe_dump(document, allow_unicode=True), "site.yaml")
    said = {p.path: p for p in refused.value.problems}
    area, room_id = said[("buildings", 0, "floor_area_m2")], said[("buildings", 0, "rooms", rooms, "id")]
    for lang, words in (("zh-CN", "zh"), ("en", "en")):
        with open_page(browser) as (page, console):
            as_admin(page, site, "school", lang)
            building = page.locator("#view fieldset.building").first
            building.locator("input[name=floor_area_m2]").fill("-5")
            building.locator(".rooms-editor > .add-row > button.add").click()
            room = building.locator(".room-fields").last
            room.locator("input[name=id]").fill("reading room")
            room.locator("input[name=name]").fill("阅览室")
            building.locator("xpath=ancestor::form").locator("button.save").click()
            expect(building.locator("label.field:has(input[name=floor_area_m2]) .field-error")).to_have_text(getattr(area, words))
            expect(room.locator("label.field:has(input[name=id]) .field-error")).to_have_text(getattr(room_id, words))
            screenshot(page, SHOTS, f"school-problems-desktop-{lang[:2]}")
            assert console.problems("status of 422") == []


def test_a_zigbee_door_the_bridge_lists_is_adopted_from_the_inbox(browser: Browser, site: Site) -> None:
    admin = signed_in(site.api, ADMIN)
    # Not retained: the session's broker serves other tests' gateways too.
    publish_on(site.broker, [("zigbee2mqtt/bridge/devices", fixture("z2m_bridge_devices_1.33.json"))])
    wait_until("the bridge's devices in the inbox", lambda: DOOR_SENSOR in {
        e["key"] for e in site.api.get("/api/v1/admin/discovered", headers=admin).json()})
    with open_page(browser) as (page, console):
        as_admin(page, site, "inbox")
        entry = page.locator(f"#view .discovered[data-key='{DOOR_SENSOR}']")
        expect(entry).to_contain_text("建议类型：门")
        entry.locator("details summary").first.click()
        expect(entry.locator(".sample-message pre").first).to_contain_text("Door Sensor")
        screenshot(page, SHOTS, "inbox-desktop-zh")
        entry.locator("button.adopt").click()
        form = page.locator("#view form.device-form[data-mode=adopt]")
        expect(form.locator("select[name=kind]")).to_have_value("door")
        expect(form.locator("select[name=protocol]")).to_have_value("zigbee2mqtt")
        form.locator("input[data-path='device.name']").fill("厨房后门")
        form.locator("select[name=room]").select_option("kitchen")
        device_id = form.locator("input[name=id]").input_value()
        assert device_id
        form.locator("button.save").click()
        expect(page.locator(f"#view [data-device='{device_id}']")).to_contain_text("厨房后门")
        assert console.problems() == []

    publish_on(site.broker, [("zigbee2mqtt/Door Sensor", b'{"contact": false, "battery": 91, "linkquality": 120}')])

    def opened() -> dict[str, Any] | None:
        found: dict[str, Any] = site.api.get(f"/api/v1/devices/{device_id}").json()
        return found if found.get("last_values", {}).get("open") else None

    device = wait_until("the adopted door's reading", opened, timeout_s=5)
    assert device is not None
    assert (device["name"], device["room"]) == ("厨房后门", "kitchen")
    left = {e["key"] for e in site.api.get("/api/v1/admin/discovered", headers=admin).json()}
    assert DOOR_SENSOR not in left


def test_a_site_file_is_imported_after_its_preview(browser: Browser, site: Site) -> None:
    admin = signed_in(site.api, ADMIN)
    exported = site.api.get("/api/v1/admin/config/export", headers=admin)
    assert exported.status_code == 200
    document = yaml.safe_load(exported.text)
    document["tariffs"] = {**document.get("tariffs", {}), "water_yuan_per_m3": 6.2}
    with open_page(browser) as (page, console):
        as_admin(page, site, "file")
        form = page.locator("#view form.import")
        form.locator("textarea[name=yaml]").fill(yaml.safe_dump(document, allow_unicode=True))
        form.locator("button[type=submit]").click()
        expect(form.locator(".preview")).to_contain_text("修改电价和水价")
        form.locator("button.apply").click()
        saved(page)
        assert console.problems() == []
    assert site.api.get("/api/v1/admin/config", headers=admin).json()["site"]["tariffs"]["water_yuan_per_m3"] == 6.2


def test_a_site_file_s_mistakes_are_listed_at_their_lines_on_a_phone(browser: Browser, site: Site) -> None:
    exported = site.api.get("/api/v1/admin/config/export", headers=signed_in(site.api, ADMIN)).text
    lines = exported.splitlines()
    at = next(n for n, line in enumerate(lines) if line.strip().startswith("room:"))
    lines[at] = lines[at].split("room:")[0] + "room: attic"
    with open_page(browser, PHONE_430) as (page, console):
        as_admin(page, site, "file")
        form = page.locator("#view form.import")
        form.locator("textarea[name=yaml]").fill("\n".join(lines))
        form.locator("button[type=submit]").click()
        problems = form.locator(".preview ul.problems li")
        expect(problems).to_have_count(1)
        expect(problems.first).to_contain_text(f"第 {at + 1} 行：")
        expect(problems.first).to_contain_text("attic")
        expect(form.locator("button.apply")).to_be_hidden()
        form.locator("textarea[name=yaml]").fill(exported.replace("name:", "name: !!python/object/apply:os.system", 1))
        form.locator("button[type=submit]").click()
        expect(problems.first).to_contain_text("站点文件不能用标签 !!python/object/apply:os.system")
        screenshot(page, SHOTS, "file-problems-phone-zh")
        assert horizontal_overflow(page) == 0
        assert console.problems() == []


def test_settings_managed_in_the_site_file_are_shown_and_never_changed(
        browser: Browser, tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> None:
    with running_site(tmp_path_factory, mosquitto, "admin-file", {"managed_from": "file"}) as managed:
        admin = signed_in(managed.api, ADMIN)
        config = managed.api.get("/api/v1/admin/config", headers=admin).json()
        assert config["read_only"]
        refused = managed.api.put("/api/v1/admin/config/school", headers=admin,
                                  json={"version": config["version"], "value": {"name": "改名幼儿园"}})
        assert refused.status_code == 409
        with open_page(browser) as (page, console):
            for sub in ("school", "devices", "hours", "calendar", "duty", "notifications", "tariffs", "file"):
                if sub == "school":
                    as_admin(page, managed, sub)
                else:
                    settings_page(page, managed, sub)
                view = page.locator("#view")
                expect(view.locator(".banner.read-only")).to_contain_text(f"由配置文件 {config['file']} 管理")
                expect(view.locator("button.save, button.add, button.remove, button.retire, button.add-device, "
                                    "a.edit, form.import")).to_have_count(0)
                expect(view.locator("input:not([disabled]), select:not([disabled]), textarea:not([disabled])")).to_have_count(0)
                if sub == "school":
                    expect(view.locator("fieldset.building")).to_have_count(len(config["site"]["buildings"]))
                    screenshot(page, SHOTS, "read-only-school-desktop-zh")
            assert console.problems() == []


@pytest.mark.parametrize(("viewport", "lang"), [(PHONE_430, "zh-CN"), (PHONE_430, "en"), (DESKTOP, "zh-CN"), (DESKTOP, "en")],
                         ids=["phone-zh", "phone-en", "desktop-zh", "desktop-en"])
def test_screenshots_of_every_settings_page(browser: Browser, site: Site, viewport: ViewportSize, lang: str) -> None:
    name = f"{'desktop' if viewport is DESKTOP else 'phone'}-{lang[:2]}"
    overflows = {}
    with open_page(browser, viewport, locale=lang) as (page, console):
        as_admin(page, site, "school", lang)
        for route in SETTINGS_PAGES:
            settings_page(page, site, route.removeprefix("settings/"))
            overflows[route] = horizontal_overflow(page)
            whole_page(page, f"{name}-{route.replace('/', '-')}", viewport)
        assert console.problems() == []
    assert {r: px for r, px in overflows.items() if px > 1} == {}


def whole_page(page: Page, name: str, viewport: ViewportSize) -> None:
    """A screenshot of the whole page in a window as tall as it, so that 保存's bar, which stays
    at the bottom of the window, is drawn where it belongs: at the end of its form."""
    page.set_viewport_size({"width": viewport["width"], "height": page.evaluate("() => document.body.scrollHeight")})
    screenshot(page, SHOTS, name)
    page.set_viewport_size(viewport)
