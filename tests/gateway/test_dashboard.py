"""The dashboard's server side in-process: the page and its static files, the site, the
overview and closing-board summaries computed from readings ingested over HTTP (real SQLite,
real rules, a manual clock), and the live bus that feeds the event stream. The browser side
is tests/test_dashboard_browser.py."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time as wall
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devices.base import Event, Sample
from gateway import config
from gateway.app import create_app
from gateway.auth.store import AuthStore
from gateway.clock import ManualClock
from gateway.config.auth import Role, Scope
from gateway.counters import Counters
from gateway.live import LiveBus
from gateway.rules.uv import UvNotRun
from tests.served import serve
from tests.services import Mosquitto, accounting

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
TODAY = datetime(2026, 11, 18, tzinfo=TZ)  # a Wednesday and a school day
NOW = TODAY + timedelta(hours=10)

SITE = """\
id: kg
name: 测试幼儿园
opening_hours:
  mon: [{{start: "07:30", end: "17:30"}}]
  tue: [{{start: "07:30", end: "17:30"}}]
  wed: [{{start: "07:30", end: "17:30"}}]
  thu: [{{start: "07:30", end: "17:30"}}]
  fri: [{{start: "07:30", end: "17:30"}}]
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {{id: plant, name: 配电间, type: plant}}
      - {{id: kitchen, name: 厨房, type: kitchen}}
      - {{id: class-1, name: 小一班, type: classroom}}
  - id: annex
    name: 综合楼
    rooms:
      - {{id: office, name: 办公室, type: office}}
      - {{id: clinic, name: 保健室, type: office}}
devices:
  - {{id: em-main, kind: electricity_meter, room: plant, name: 总电表,
      rules: {{load_after_hours: {{base_load_w: 1000}}}}}}
  - {{id: em-kitchen, kind: electricity_meter, room: kitchen, name: 厨房电表}}
  - {{id: wm-office, kind: water_meter, room: office, name: 办公室水表}}
  - {{id: wm-clinic, kind: water_meter, room: clinic, name: 保健室水表}}
  - {{id: fridge, kind: sample_fridge, room: kitchen, name: 留样冰箱}}
  - {{id: kitchen-door, kind: door, room: kitchen, name: 厨房门}}
  - {{id: uv-1, kind: uv_lamp, room: class-1, name: 小一班紫外线灯, settings: {{min_session_min: 30}}}}
duty:
  people:
    - {{id: guard-wang, name: 王师傅, role: 门卫}}
    - {{id: logistics-li, name: 李主任, role: 后勤主任}}
    - {{id: principal-zhao, name: 赵园长, role: 园长}}
  shifts:
    - {{days: [school_day], start: "07:00", end: "18:00", chain: [logistics-li, principal-zhao]}}
    - {{days: [school_day], start: "18:00", end: "07:00", chain: [guard-wang, logistics-li]}}
mqtt: {{url: "{url}", client_id: "{client_id}"}}
storage: {{data_dir: "{data_dir}"}}
ingest: {{max_clock_skew_s: 86400}}
# Nobody keeps the 留样 register or patrols here: no alerts for meals without samples or missed rounds.
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""


def at(day: datetime, hh_mm: str) -> datetime:
    return datetime.combine(day.date(), time.fromisoformat(hh_mm), TZ)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def api(mosquitto: Mosquitto, tmp_path: Path, clock: ManualClock,
        request: pytest.FixtureRequest) -> Iterator[TestClient]:
    site = config.parse(
        SITE.format(url=mosquitto.url, client_id=f"gw-{request.node.name}"[:60], data_dir=tmp_path / "data"),
        "site.yaml",
    )
    with TestClient(create_app(site, clock)) as client:
        key = client.app.state.auth.create_api_key("tests", [Scope.READ, Scope.INGEST], "test", 0)  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


Post = Callable[..., None]
PASSWORD = "a staff password"


@pytest.fixture
def staff(api: TestClient) -> dict[str, str]:
    """王师傅's login (staff), as headers."""
    auth: AuthStore = api.app.state.auth  # type: ignore[attr-defined]
    auth.add_user("guard-wang", Role.STAFF, PASSWORD, "tests", 0, display_name="王师傅")
    token = api.post("/api/v1/auth/login", json={"username": "guard-wang", "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def wait_for(check: Callable[[], Any], timeout_s: float = 10) -> Any:
    deadline = wall.monotonic() + timeout_s
    while not (found := check()):
        assert wall.monotonic() < deadline, "not in time"
        wall.sleep(0.05)
    return found


@pytest.fixture
def post(api: TestClient) -> Post:
    """Ingests readings over HTTP, in the order given (counters must not go back)."""

    def send(*readings: tuple[str, datetime, dict[str, Any]]) -> None:
        body = [{"device_id": d, "ts": when.isoformat(), **values} for d, when, values in readings]
        answer = api.post("/api/v1/readings", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rejected"] == []
        # The answer comes once the readings are in the spool; the summaries read the SQLite
        # store, which its writer fills from the spool a moment later.
        deadline = wall.monotonic() + 10
        while accounting(api).pending("sqlite"):
            assert wall.monotonic() < deadline, "the readings did not reach SQLite"
            wall.sleep(0.01)

    return send


# ------------------------------------------------------------------------------ the page


def test_the_page_is_chinese_by_default_and_its_files_are_served(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "<title>测试幼儿园</title>" in page.text
    scripts = re.findall(r'src="(/static/[0-9a-f]{12}/app\.js)"', page.text)
    assert len(scripts) == 1
    static = scripts[0].rsplit("/", 1)[0]
    for name in ("app.js", "api.js", "ui.js", "views/index.js", "views/overview.js", "i18n.js", "app.css", "vendor/echarts/echarts.min.js",
                 "vendor/echarts/LICENSE"):
        assert api.get(f"{static}/{name}").status_code == 200, name
    assert api.get("/?lang=en").text.startswith('<!doctype html>\n<html lang="en">')
    assert api.get("/?lang=fr").status_code == 422


def test_no_page_asset_comes_from_elsewhere(api: TestClient) -> None:
    """Schools run this on an intranet: every src and href is the gateway's own."""
    page = api.get("/").text
    static = Path(__file__).parents[2] / "dashboards" / "static"
    texts = [page] + [p.read_text(encoding="utf-8") for p in static.rglob("*.js")
                                  if "vendor" not in p.parts] + [(static / "app.css").read_text()]
    for text in texts:
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
        assert "import(\"http" not in text


def test_the_site_lists_buildings_rooms_and_the_kinds_in_use(api: TestClient) -> None:
    site = api.get("/api/v1/site").json()
    assert [b["id"] for b in site["buildings"]] == ["main", "annex"]
    assert site["timezone"] == "Asia/Shanghai"
    assert set(site["kinds"]) == {"electricity_meter", "water_meter", "sample_fridge", "door", "uv_lamp"}
    fridge = {m["key"]: m for m in site["kinds"]["sample_fridge"]["metrics"]}
    assert (fridge["temperature_c"]["unit"], fridge["temperature_c"]["label_zh"]) == ("°C", "温度")
    # What the page shows comes from the kinds: a state's words, what a tile shows, card events.
    door = {m["key"]: m for m in site["kinds"]["door"]["metrics"]}
    assert door["open"]["words"] == {"true_zh": "开着", "false_zh": "已关", "true_en": "Open", "false_en": "Closed"}
    assert fridge["temperature_c"]["words"] is None
    assert (door["open"]["tile"], door["battery_pct"]["tile"], door["rssi_dbm"]["tile"], door["online"]["tile"]) == (
        True, True, False, False)
    assert (site["kinds"]["door"]["events"], site["kinds"]["uv_lamp"]["events"]) == (["access"], [])
    # A site is a school unless it says it is a kindergarten (its days are 开园日, not 上学日).
    assert site["kind"] == "school"


def test_settings_and_events_read_as_words(api: TestClient) -> None:
    """Every setting has its label and unit, every event and its fields their words: the page
    never shows a settings key (min_session_min) or a raw value (true)."""
    kinds = api.get("/api/v1/site").json()["kinds"]
    lamp = {s["key"]: s for s in kinds["uv_lamp"]["settings"]}
    assert (lamp["min_session_min"]["label_zh"], lamp["min_session_min"]["unit_zh"]) == ("每次消毒至少", "分钟")
    assert (lamp["tube_life_h"]["label_en"], lamp["tube_life_h"]["unit_en"]) == ("Tube life", "h")
    assert [s["key"] for s in kinds["sample_fridge"]["settings"]] == ["min_c", "max_c", "alarm_delay_min"]
    access = kinds["door"]["event_labels"]["access"]
    assert (access["label_zh"], access["label_en"]) == ("刷卡", "Card swipe")
    fields = {f["key"]: f for f in access["fields"]}
    assert fields["credential"]["label_zh"] == "卡号"
    assert fields["granted"]["words"] == {"true_zh": "已开门", "false_zh": "未开门", "true_en": "door opened",
                                          "false_en": "refused"}
    assert kinds["electricity_meter"]["settings"] == []
    # A gauge kept within a range names the device settings that bound it.
    fridge = {m["key"]: m for m in kinds["sample_fridge"]["metrics"]}
    assert fridge["temperature_c"]["allowed"] == {"low": "min_c", "high": "max_c"}
    assert fridge["door_open"]["allowed"] is None


# -------------------------------------------------------------------------- the overview


def test_consumption_today_against_yesterday_and_last_week_from_the_main_meters(post: Post, api: TestClient) -> None:
    day, week = timedelta(days=1), timedelta(days=7)
    post(
        ("em-main", TODAY - week, {"energy_kwh": 1000.0}),
        ("em-main", NOW - week, {"energy_kwh": 1050.0}),  # 50 kWh by 10:00 a week ago
        ("em-main", TODAY - day, {"energy_kwh": 2000.0}),
        ("em-main", NOW - day, {"energy_kwh": 2080.0}),  # 80 kWh by 10:00 yesterday
        ("em-main", TODAY, {"energy_kwh": 2200.0}),  # 200 kWh all of yesterday
        ("em-main", NOW - timedelta(minutes=5), {"energy_kwh": 2260.0}),  # 60 kWh so far today
        # A sub-meter behind the main meter: its kWh are in the main meter's already.
        ("em-kitchen", TODAY - day, {"energy_kwh": 100.0}),
        ("em-kitchen", NOW - timedelta(minutes=5), {"energy_kwh": 900.0}),
        # The annex has no main meter: its room meters add up.
        ("wm-office", TODAY, {"volume_m3": 10.0}),
        ("wm-office", NOW - timedelta(minutes=1), {"volume_m3": 10.5}),
        ("wm-clinic", TODAY, {"volume_m3": 3.0}),
        ("wm-clinic", NOW - timedelta(minutes=1), {"volume_m3": 3.25}),
    )
    o = api.get("/api/v1/dashboard/overview").json()
    assert o["electricity"] == {"unit": "kWh", "today": 60.0, "yesterday": 80.0, "last_week": 50.0,
                                "yesterday_total": 200.0}
    assert o["water"]["today"] == 0.75
    assert o["water"]["yesterday"] is None  # no readings then: unknown, not zero


def test_a_counter_reset_counts_from_zero_not_as_negative_use(post: Post, api: TestClient) -> None:
    post(("em-main", TODAY, {"energy_kwh": 5000.0}), ("em-main", NOW - timedelta(minutes=1), {"energy_kwh": 12.5}))
    assert api.get("/api/v1/dashboard/overview").json()["electricity"]["today"] == 12.5


def test_fridges_doors_lamps_and_offline_devices(post: Post, api: TestClient, clock: ManualClock) -> None:
    post(
        ("fridge", NOW - timedelta(minutes=2), {"temperature_c": 9.4}),
        ("kitchen-door", NOW - timedelta(minutes=30), {"open": False}),
        ("kitchen-door", NOW - timedelta(minutes=20), {"open": True}),
        ("kitchen-door", NOW - timedelta(minutes=1), {"open": True}),
        ("uv-1", NOW - timedelta(minutes=1), {"on": False}),
    )
    o = api.get("/api/v1/dashboard/overview").json()
    assert o["day"]["school_day"] is True
    [fridge] = o["fridges"]
    assert (fridge["temperature_c"], fridge["in_range"], fridge["min_c"], fridge["max_c"]) == (9.4, False, 0, 8)
    [door] = o["doors_open"]
    assert door["device"] == "kitchen-door"
    assert datetime.fromisoformat(door["open_since"]) == NOW - timedelta(minutes=20)
    [lamp] = o["lamps"]
    # The window opens when the building closes (17:30) and ends at 20:00: at 10:00 it is due.
    assert (lamp["status"], lamp["minutes_run"], lamp["minutes_required"]) == ("due", 0, 30)
    assert datetime.fromisoformat(lamp["window_start"]) == at(TODAY, "17:30")
    assert {d["device"] for d in o["offline"]} == {"em-main", "em-kitchen", "wm-office", "wm-clinic"}


def test_a_lamp_is_running_then_ran_then_a_skipped_one_missed(post: Post, api: TestClient,
                                                             clock: ManualClock) -> None:
    def lamp() -> dict[str, Any]:
        [out] = api.get("/api/v1/dashboard/overview").json()["lamps"]
        return dict(out)

    start = at(TODAY, "18:00")
    warmup = UvNotRun().warmup_min  # the first minutes after switch-on do not count
    post(*[("uv-1", start + timedelta(minutes=m), {"on": True}) for m in range(21)])
    clock.set(start + timedelta(minutes=20))
    assert (lamp()["status"], lamp()["minutes_run"]) == ("running", 20 - warmup)
    post(*[("uv-1", start + timedelta(minutes=m), {"on": m < 35}) for m in range(21, 41)])
    clock.set(start + timedelta(minutes=40))
    assert (lamp()["status"], lamp()["minutes_run"]) == ("ran", 35 - warmup)
    # The next day the lamp says it is off all through its window (17:30–20:00): missed once
    # the window has ended.
    window = at(TODAY + timedelta(days=1), "17:30")
    clock.set(window + timedelta(minutes=155))
    post(*[("uv-1", window + timedelta(minutes=m), {"on": False}) for m in range(155)])
    assert (lamp()["status"], lamp()["minutes_run"]) == ("missed", 0)
    # A day it says nothing in its window is not known to be missed, as the daily record says.
    clock.set(window + timedelta(days=1, minutes=155))
    post(("uv-1", window + timedelta(days=1, minutes=155), {"on": False}))
    assert (lamp()["status"], lamp()["minutes_run"]) == ("unknown", 0)


def test_open_alerts_by_severity(post: Post, api: TestClient) -> None:
    post(*[("fridge", NOW - timedelta(minutes=m), {"temperature_c": 12.0}) for m in range(30, 0, -1)])
    o = api.get("/api/v1/dashboard/overview").json()
    assert o["open_alerts"] == {"critical": 1, "major": 0, "minor": 0, "warning": 0}
    assert o["unacknowledged"] == 1
    [alert] = api.get("/api/v1/alerts", params={"open": True}).json()
    assert alert["rule"] == "fridge_temperature"


def test_open_alerts_have_titles_and_owners(post: Post, api: TestClient) -> None:
    """The head sees each open alert by its title, and whose hands it is in, by name."""
    post(*[("fridge", NOW - timedelta(minutes=m), {"temperature_c": 12.0}) for m in range(30, 0, -1)])
    [line] = api.get("/api/v1/dashboard/overview").json()["alerts"]
    assert line["title_zh"].startswith("留样冰箱")
    assert (line["severity"], line["state"], line["acked_by"], line["assignee"]) == ("critical", "active", None, None)
    app: Any = api.app
    app.state.auth.add_user("guard-wang", Role.STAFF, "a long demo password", "test", 0, display_name="王师傅")
    app.state.gateway.alerts.acknowledge(line["id"], "guard-wang", "已到现场")
    [line] = api.get("/api/v1/dashboard/overview").json()["alerts"]
    assert line["state"] == "acknowledged"
    assert (line["acked_by"]["name_zh"], line["acked_by"]["person"]) == ("王师傅", True)


def test_who_is_on_duty_and_who_is_next(api: TestClient, clock: ManualClock) -> None:
    duty = api.get("/api/v1/dashboard/overview").json()["duty"]
    assert duty["on_duty"] == {"id": "logistics-li", "name": "李主任", "role": "后勤主任"}
    assert duty["next"] == [{"id": "principal-zhao", "name": "赵园长", "role": "园长"}]
    clock.set(at(TODAY, "21:00"))
    duty = api.get("/api/v1/dashboard/overview").json()["duty"]
    assert (duty["on_duty"]["name"], [p["name"] for p in duty["next"]]) == ("王师傅", ["李主任"])
    clock.set(at(TODAY + timedelta(days=3), "10:00"))  # a Saturday: no shift covers it
    assert api.get("/api/v1/dashboard/overview").json()["duty"] == {"on_duty": None, "next": []}


def test_todays_ledger_orders_and_closing_state(post: Post, api: TestClient) -> None:
    """Today's safety record counted as the record itself counts it; no work orders; each
    building's closing state in one line, as the closing board judges it."""
    post(("kitchen-door", NOW - timedelta(minutes=5), {"open": True}))
    o = api.get("/api/v1/dashboard/overview").json()
    record = api.get("/api/v1/reports/safety", params={"date": TODAY.date().isoformat()}).json()["counts"]
    assert o["ledger"] == {"done": record["pass"] + record["done"], "blank": record["manual"],
                           "failed": record["fail"], "pending": record["pending"],
                           "total": sum(record.values()) - record["not_required"]}
    assert o["orders"] == {"by_status": {"open": 0, "assigned": 0, "on_site": 0, "done": 0}, "overdue": 0,
                           "orders": []}
    board = {b["id"]: b for b in api.get("/api/v1/dashboard/closing").json()["buildings"]}
    for line in o["closing"]:
        b = board[line["id"]]
        assert (line["name"], line["state"], line["open_now"]) == (b["name"], b["state"], b["open_now"])
        assert line["closed_up"] == (b["state"] == "closed_up")
        assert line["left"] == sum(1 for i in b["items"] if i["state"] != "scheduled")
    assert [line["state"] for line in o["closing"]] == ["open", "open"]  # 10:00 on a school day


# ----------------------------------------------------------------------- closing board


def test_the_closing_board_lists_what_is_left_and_turns_green(post: Post, api: TestClient,
                                                              clock: ManualClock) -> None:
    evening = at(TODAY, "17:45")
    clock.set(evening)
    post(
        ("kitchen-door", evening - timedelta(minutes=10), {"open": True}),
        ("em-main", evening - timedelta(minutes=1), {"energy_kwh": 10.0, "power_w": 2600.0}),  # limit 1300 W
        ("wm-office", evening - timedelta(minutes=1), {"volume_m3": 1.0, "flow_lpm": 1.2}),
        ("uv-1", evening - timedelta(minutes=1), {"on": True}),  # 17:30–20:00 is its window
    )
    out = api.get("/api/v1/dashboard/closing").json()
    board = {b["id"]: b for b in out["buildings"]}
    main, annex = board["main"], board["annex"]
    assert main["open_now"] is False
    assert datetime.fromisoformat(main["closes_at"]) == at(TODAY, "17:30")
    # By place, in plain words; a lamp on its timer is listed but does not count.
    assert [(i["device"], i["state"], i["text_zh"], i["text_en"]) for i in main["items"]] == [
        ("em-main", "todo", "教学楼：用电 2.6 千瓦，平时夜里约 1 千瓦", "教学楼: using 2.6 kW, usually about 1 kW at night"),
        ("kitchen-door", "todo", "厨房：门还开着（17:35 起）", "厨房: the door is still open (since 17:35)"),
        ("uv-1", "scheduled", "小一班：正在按计划消毒", "小一班: disinfecting on schedule"),
    ]
    assert main["state"] == "todo"
    assert [(i["device"], i["text_zh"]) for i in annex["items"]] == [("wm-office", "办公室：水还在流（1.2 升/分钟）")]
    assert annex["state"] == "todo"
    assert out["walkround"] is None

    post(
        ("kitchen-door", evening, {"open": False}),
        ("em-main", evening, {"energy_kwh": 10.1, "power_w": 900.0}),
        ("wm-office", evening, {"volume_m3": 1.0, "flow_lpm": 0.0}),
    )
    board = {b["id"]: b for b in api.get("/api/v1/dashboard/closing").json()["buildings"]}
    assert board["main"]["state"] == "closed_up"  # the lamp is on, but on its schedule
    assert board["annex"]["state"] == "closed_up"


def test_the_closing_board_is_neutral_while_open_and_a_known_fault_reads_as_known(
        post: Post, api: TestClient, clock: ManualClock, staff: dict[str, str]) -> None:
    noon = at(TODAY, "12:00")
    clock.set(noon)
    post(("wm-office", noon - timedelta(minutes=1), {"volume_m3": 1.0, "flow_lpm": 1.2}))
    annex = api.get("/api/v1/dashboard/closing").json()["buildings"][1]
    assert (annex["state"], annex["open_now"]) == ("open", True)

    late = at(TODAY, "21:00")
    clock.set(late)
    # An hour of running water at night: the leak rule raises an alert, which opens a work order.
    post(*[("wm-office", late - timedelta(minutes=70 - m), {"volume_m3": 1.0 + m / 1000, "flow_lpm": 1.2})
           for m in range(70)])
    [item] = wait_for(lambda: (b := api.get("/api/v1/dashboard/closing").json()["buildings"][1])["items"]
                      and b["items"][0]["order"] and b["items"])
    assert item["state"] == "known"
    assert item["known_zh"] == "已派单 · 水工 · 待派"
    assert api.get("/api/v1/dashboard/closing").json()["buildings"][1]["state"] == "known"
    api.post(f"/api/v1/alerts/{item['alert']['id']}/ack", json={"comment": "已关总阀"}, headers=staff)
    [item] = api.get("/api/v1/dashboard/closing").json()["buildings"][1]["items"]
    assert item["known_zh"] == "已派单 · 水工 · 待派；已确认 · 王师傅"
    assert item["known_en"] == "Work order · Plumbing · Open; Acknowledged · 王师傅"


def test_a_lamp_on_outside_its_window_keeps_a_building_open(post: Post, api: TestClient,
                                                            clock: ManualClock) -> None:
    late = at(TODAY, "21:00")
    clock.set(late)
    post(("uv-1", late - timedelta(minutes=1), {"on": True}))
    main = api.get("/api/v1/dashboard/closing").json()["buildings"][0]
    assert [(i["device"], i["state"], i["text_zh"]) for i in main["items"]] == [("uv-1", "todo", "小一班：紫外线灯亮着")]
    assert main["state"] == "todo"


def test_a_lamp_first_heard_inside_its_window_is_unknown_not_due(post: Post, api: TestClient,
                                                                 clock: ManualClock) -> None:
    """After a restart at 18:40 the gateway cannot know whether the lamp ran at 18:00."""
    late = at(TODAY, "18:40")
    clock.set(late)
    post(("uv-1", late, {"on": False}))
    [lamp] = api.get("/api/v1/dashboard/overview").json()["lamps"]
    assert (lamp["status"], lamp["minutes_run"]) == ("unknown", 0)


# ---------------------------------------------------------------------------- live bus


def _site(tmp_path: Path) -> config.SiteConfig:
    return config.parse(SITE.format(url="mqtt://127.0.0.1:1", client_id="x", data_dir=tmp_path), "site.yaml")


async def test_a_slow_reader_gets_the_newest_values_without_a_backlog(tmp_path: Path) -> None:
    bus = LiveBus(_site(tmp_path), Counters())
    with bus.subscribe() as sub:
        bus.committed([(0, Sample("fridge", 1000, {"temperature_c": 4.0, "door_open": 0.0}))])
        bus.committed([(0, Sample("fridge", 2000, {"temperature_c": 5.0}))])
        bus.committed([(0, Sample("kitchen-door", 2000, {"open": 1.0}))])
        bus.committed([(0, Event("kitchen-door", 2500, "access", {"credential": "card:1", "granted": True}))])
        bus.publish("alert:7", "alert", {"id": 7, "state": "active"})
        bus.publish("alert:7", "alert", {"id": 7, "state": "acknowledged"})
        got = await sub.next(1.0)
    assert got == [
        # the temperature replaced, the door state not lost, states as booleans
        ("reading", {"device": "fridge", "ts": 2000, "values": {"temperature_c": 5.0, "door_open": False}}),
        ("reading", {"device": "kitchen-door", "ts": 2000, "values": {"open": True}}),
        ("event", {"device": "kitchen-door", "ts": 2500, "type": "access",
                   "data": {"credential": "card:1", "granted": True}}),
        ("alert", {"id": 7, "state": "acknowledged"}),
    ]


async def test_a_quiet_stream_times_out_and_a_closed_one_ends(tmp_path: Path) -> None:
    bus = LiveBus(_site(tmp_path), Counters())
    bus.committed([(0, Sample("fridge", 1000, {"temperature_c": 4.0}))])  # nobody listens: dropped
    with bus.subscribe() as sub:
        assert await sub.next(0.05) == []
        waiting = asyncio.create_task(sub.next(10.0))
        await asyncio.sleep(0)
        bus.close()
        assert await asyncio.wait_for(waiting, 1.0) == []
        assert sub.closed



# ------------------------------------------------------------------ the live stream's access

LIVE_HEARTBEAT_S = 0.3
# One heartbeat, and slack for a busy machine.
ENDS_WITHIN_S = LIVE_HEARTBEAT_S + 1.0
PASSWORDS = {"vic": "vic-viewer-passphrase", "ada": "ada-admin-passphrase"}


@dataclass
class Served:
    """The gateway under uvicorn on a free port, with a client for it."""

    app: FastAPI
    clock: ManualClock
    http: httpx.Client

    @property
    def auth(self) -> AuthStore:
        store: AuthStore = self.app.state.auth
        return store

    def login(self, name: str) -> str:
        answer = self.http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name]})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token


@pytest.fixture
def served(mosquitto: Mosquitto, tmp_path: Path, clock: ManualClock,
           request: pytest.FixtureRequest) -> Iterator[Callable[..., Served]]:
    """`served(public_read=False)`: the gateway with a short live heartbeat, a viewer (vic)
    and an admin (ada)."""
    with ExitStack() as stack:

        def start(public_read: bool = False) -> Served:
            text = SITE.format(url=mosquitto.url, client_id=f"gw-{request.node.name}"[:60], data_dir=tmp_path / "data")
            text += f"api: {{live_heartbeat_s: {LIVE_HEARTBEAT_S}}}\nauth: {{public_read: {str(public_read).lower()}}}\n"
            app = create_app(config.parse(text, "site.yaml"), clock)
            url = stack.enter_context(serve(app))
            http = stack.enter_context(httpx.Client(base_url=url, timeout=5))
            now_ms = int(clock.now().timestamp() * 1000)
            for name, role in (("vic", Role.VIEWER), ("ada", Role.ADMIN)):
                app.state.auth.add_user(name, role, PASSWORDS[name], "test", now_ms)
            return Served(app, clock, http)

        yield start


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@contextmanager
def live_stream(http: httpx.Client, headers: dict[str, str]) -> Iterator[Iterator[str]]:
    """The stream's lines, from after its `hello`."""
    with http.stream("GET", "/api/v1/live", headers=headers) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        for line in lines:
            if line == "event: hello":
                break
        yield lines


def ended_after(lines: Iterator[str], limit_s: float) -> float | None:
    """Seconds until the stream ended, or None if it still runs after `limit_s` (its
    heartbeat sends a line at least every LIVE_HEARTBEAT_S, so this never blocks longer)."""
    started = wall.monotonic()
    for _ in lines:
        if wall.monotonic() - started > limit_s:
            return None
    return wall.monotonic() - started


@pytest.mark.parametrize("ending", ["logout", "disabled", "expired", "revoked"])
def test_a_live_stream_ends_within_a_heartbeat_once_its_access_does(served: Callable[..., Served],
                                                                    ending: str) -> None:
    gw = served()
    admin = bearer(gw.login("ada"))
    if ending == "revoked":
        created = gw.http.post("/api/v1/api-keys", json={"name": "wall display", "scopes": ["read"]}, headers=admin)
        credential, key_id = created.json()["key"], created.json()["id"]
    else:
        credential = gw.login("vic")
    with live_stream(gw.http, bearer(credential)) as lines:
        assert ended_after(lines, 4 * LIVE_HEARTBEAT_S) is None  # valid access: it keeps going
        if ending == "logout":
            assert gw.http.post("/api/v1/auth/logout", headers=bearer(credential)).status_code == 204
        elif ending == "disabled":
            assert gw.http.patch("/api/v1/users/vic", json={"disabled": True}, headers=admin).status_code == 200
        elif ending == "expired":
            gw.clock.advance(timedelta(hours=12))  # auth.session_ttl_h
        else:
            assert gw.http.delete(f"/api/v1/api-keys/{key_id}", headers=admin).status_code == 204
        took = ended_after(lines, ENDS_WITHIN_S)
        assert took is not None, f"the stream still runs {ENDS_WITHIN_S} s after its access ended ({ending})"
    assert gw.http.get("/api/v1/live", headers=bearer(credential)).status_code == 401  # and cannot come back


def test_a_busy_live_stream_ends_too(served: Callable[..., Served]) -> None:
    """Readings arriving faster than the heartbeat must not put the check off."""
    gw = served()
    token = gw.login("vic")
    ingest = bearer(gw.auth.create_api_key("sensors", [Scope.INGEST], "test", 0))
    stop = threading.Event()

    def feed() -> None:
        with httpx.Client(base_url=str(gw.http.base_url), timeout=5) as http:
            for i in itertools.count():
                if stop.wait(LIVE_HEARTBEAT_S / 5):
                    return
                reading = {"device_id": "fridge", "ts": (NOW - timedelta(hours=1, seconds=-i)).isoformat(),
                           "temperature_c": 4.0}
                assert http.post("/api/v1/readings", json=reading, headers=ingest).status_code == 200

    feeder = threading.Thread(target=feed)
    with live_stream(gw.http, bearer(token)) as lines:
        feeder.start()
        try:
            assert ended_after(lines, 4 * LIVE_HEARTBEAT_S) is None
            assert gw.http.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
            took = ended_after(lines, ENDS_WITHIN_S)
        finally:
            stop.set()
            feeder.join()
    assert took is not None, f"the busy stream still runs {ENDS_WITHIN_S} s after the logout"


def test_an_anonymous_stream_lasts_while_reads_are_public(served: Callable[..., Served]) -> None:
    gw = served(public_read=True)
    token = gw.login("vic")
    with live_stream(gw.http, {}) as anonymous, live_stream(gw.http, bearer(token)) as vic:
        assert gw.http.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
        assert ended_after(vic, ENDS_WITHIN_S) is not None
        assert ended_after(anonymous, 4 * LIVE_HEARTBEAT_S) is None
