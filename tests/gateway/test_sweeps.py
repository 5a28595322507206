"""The sweep before a break (拉网式检查): when the calendar asks for one, and a sweep from
start to signature through the API (real SQLite, real rules, a manual clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gateway import config
from gateway.app import create_app
from gateway.auth.audit import AuditTrail
from gateway.auth.store import AuthStore
from gateway.clock import ManualClock
from gateway.config.auth import Role
from gateway.reports.sweeps import SweepNotFound, SweepStore, due_sweeps
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.state import StateDatabase
from tests.services import Mosquitto

TZ = ZoneInfo("Asia/Shanghai")

SITE = """\
id: kg
name: 测试幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {id: class-1, name: 小一班, type: classroom}
      - {id: office, name: 办公室, type: office}
  - id: annex
    name: 综合楼
    rooms:
      - {id: kitchen, name: 厨房, type: kitchen}
devices:
  - {id: kitchen-door, kind: door, room: kitchen, name: 厨房门}
  - {id: wm-kitchen, kind: water_meter, room: kitchen, name: 厨房水表}
calendar:
  statutory_holidays: false
  term_breaks: [{start: 2026-07-06, end: 2026-08-28, name: 暑假}]
  closures: [{start: 2026-06-08, end: 2026-06-08, name: 校庆}]
  guard_duty: [{start: 2026-07-20, end: 2026-07-21, name: 护校}]
duty:
  people:
    - {id: guard-wang, name: 王师傅}
    - {id: logistics-li, name: 李主任}
  shifts:
    - {days: [guard_duty], start: "07:00", end: "07:00", chain: [logistics-li]}
    - {days: [closed_day], start: "07:00", end: "07:00", chain: [guard-wang, logistics-li]}
"""
NETWORK = """
mqtt: {{url: "{url}", client_id: "{client_id}"}}
storage: {{data_dir: "{data_dir}", state_url: "{state_url}"}}
"""


def _calendar() -> SchoolCalendar:
    return SchoolCalendar(config.parse(SITE, "site.yaml"))


def test_a_term_break_is_swept_on_its_eve_and_before_the_new_term() -> None:
    # Mon 6 July to Fri 28 August, with the weekends either side: Sat 4 July to Sun 30 August.
    due = due_sweeps(_calendar(), 3, date(2026, 7, 1), date(2026, 9, 4))
    assert [(d.day, d.kind, d.closed.first, d.closed.last, d.title) for d in due] == [
        (date(2026, 7, 3), "before_break", date(2026, 7, 4), date(2026, 8, 30), ("暑假放假前检查", "Check before the 暑假 break")),
        (date(2026, 8, 30), "before_term", date(2026, 7, 4), date(2026, 8, 30),
         ("新学期开学前检查", "Check before the new term")),
    ]


def test_a_weekend_is_no_break_but_a_long_weekend_is() -> None:
    cal = _calendar()
    assert due_sweeps(cal, 3, date(2026, 5, 11), date(2026, 5, 24)) == []  # two ordinary weekends
    # 校庆 closes Monday 8 June: Saturday to Monday is three days.
    due = due_sweeps(cal, 3, date(2026, 6, 1), date(2026, 6, 12))
    assert [(d.day, d.kind, d.title[0]) for d in due] == [
        (date(2026, 6, 5), "before_break", "校庆放假前检查"),  # Friday, the last school day
        (date(2026, 6, 8), "before_term", "校庆假期结束前检查"),  # the day before school is back
    ]
    assert due_sweeps(cal, 4, date(2026, 6, 1), date(2026, 6, 12)) == []  # not a break of four days


# ---------------------------------------------------------------------------- the store


def test_two_sites_on_one_database_see_only_their_own_sweeps(state_db: StateDatabase) -> None:
    clock = ManualClock(FRIDAY)
    ours, theirs = (SweepStore(state_db, site, AuditTrail(state_db, site), clock) for site in ("kg", "other-kg"))
    day = FRIDAY.date()
    title = ("暑假放假前检查", "Check before the 暑假 break")
    mine, other = ours.start(day, "before_break", title, "guard-wang"), theirs.start(day, "before_break", title, "zhang")
    assert mine.id != other.id  # one sweep the calendar asks for a day: each site its own
    assert ours.start(day, "before_break", title, "logistics-li") == mine
    ours.mark(mine.id, "main", "gas", "ok", "", "guard-wang")
    theirs.mark(other.id, "main", "gas", "problem", "阀门未关", "zhang")
    ours.sign(mine.id, "main", "logistics-li", "", [], 0)
    assert [s.id for s in ours.between(day, day)] == [mine.id]
    assert [s.id for s in theirs.between(day, day)] == [other.id]
    assert [m.result for m in ours.marks(mine.id).values()] == ["ok"]
    assert ours.marks(other.id) == {}
    assert list(ours.signatures([mine.id, other.id])) == [(mine.id, "main")]
    assert theirs.signatures([mine.id, other.id]) == {}
    with pytest.raises(SweepNotFound):
        ours.get(other.id)
    with pytest.raises(SweepNotFound):
        ours.mark(other.id, "main", "gas", "ok", "", "guard-wang")
    assert theirs.marks(other.id)[("main", "gas")].result == "problem"


# ------------------------------------------------------------------------------ the API


FRIDAY = datetime(2026, 7, 3, 15, 0, tzinfo=TZ)  # the eve of the summer break
PASSWORD = "a long enough password"


@pytest.fixture
def api(mosquitto: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest, state_url: str) -> Iterator[TestClient]:
    site = config.parse(SITE + NETWORK.format(url=mosquitto.url, client_id=f"gw-{request.node.name}"[:60],
                                              data_dir=tmp_path / "data", state_url=state_url), "site.yaml")
    with TestClient(create_app(site, ManualClock(FRIDAY))) as client:
        auth: AuthStore = client.app.state.auth  # type: ignore[attr-defined]
        for login, role, name in (("logistics-li", Role.ADMIN, "李主任"), ("guard-wang", Role.STAFF, "王师傅"),
                                  ("teacher-sun", Role.VIEWER, "孙老师")):
            auth.add_user(login, role, PASSWORD, "tests", 0, display_name=name)
        yield client


def login(api: TestClient, name: str) -> dict[str, str]:
    answer = api.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_a_sweep_from_the_calendar_to_the_daily_record(api: TestClient) -> None:
    head, guard, viewer = login(api, "logistics-li"), login(api, "guard-wang"), login(api, "teacher-sun")
    listed = api.get("/api/v1/sweeps", headers=viewer).json()
    assert [(d["day"], d["title_zh"], d["id"]) for d in listed["due"]] == [("2026-07-03", "暑假放假前检查", None)]
    # The viewer may read, not act.
    assert api.post("/api/v1/sweeps/due/2026-07-03", headers=viewer).status_code == 403
    assert api.post("/api/v1/sweeps", json={"title": "运动会前检查"}, headers=guard).status_code == 403
    sweep = api.post("/api/v1/sweeps/due/2026-07-03", headers=guard).json()
    assert api.post("/api/v1/sweeps/due/2026-07-03", headers=head).json()["id"] == sweep["id"]  # opened once

    got = api.get(f"/api/v1/sweeps/{sweep['id']}", headers=viewer).json()
    # 护校 days and who is on duty, in runs.
    assert [(r["first"], r["last"], r["guard_duty"], r["on_duty"]) for r in got["roster"]][:3] == [
        ("2026-07-04", "2026-07-19", False, "王师傅"), ("2026-07-20", "2026-07-21", True, "李主任"),
        ("2026-07-22", "2026-08-30", False, "王师傅")]
    main, annex = got["buildings"]
    # The teaching building has no sensors: doors and windows, and the office computers, by hand.
    assert [(i["id"], i["text_zh"], i["result"]) for i in main["items"]] == [
        ("valuables", "贵重物品已锁好", None), ("computers", "教师办公电脑及电源已关闭", None),
        ("dispensers", "饮水机已断电", None), ("doors-windows", "门窗已关好", None)]
    # The annex's door sensor has not been heard: a person looks; its gas is checked by hand.
    assert [(i["id"], i["text_zh"], i["result"]) for i in annex["items"]] == [
        ("sensor:kitchen-door", "厨房：门没有读数，请到现场看一下", None),
        ("sensor:wm-kitchen", "厨房：水表没有读数，请到现场看一下", None),
        ("gas", "燃气阀门已关闭", None), ("valuables", "贵重物品已锁好", None),
        ("dispensers", "饮水机已断电", None), ("doors-windows", "门窗已关好", None)]

    base = f"/api/v1/sweeps/{sweep['id']}/buildings/main"
    assert api.post(f"{base}/items/valuables", json={"result": "ok"}, headers=viewer).status_code == 403
    refused = api.post(f"{base}/sign", json={}, headers=guard)
    assert refused.status_code == 409
    assert refused.json()["detail"]["zh"].startswith("还有 4 项没有检查：贵重物品已锁好、")
    for item in ("valuables", "computers", "doors-windows"):
        assert api.post(f"{base}/items/{item}", json={"result": "ok"}, headers=guard).status_code == 200
    marked = api.post(f"{base}/items/dispensers", json={"result": "problem", "note": "大一班饮水机插头没拔"},
                      headers=guard).json()
    assert (marked["result"], marked["marked_by"]["name_zh"]) == ("problem", "王师傅")
    ordered = api.post(f"{base}/items/dispensers/work-order", json={}, headers=guard).json()
    order = api.get(f"/api/v1/work-orders/{ordered['order']['id']}", headers=viewer).json()
    assert (order["trade"], order["title_zh"], order["status"]) == (
        "electric", "暑假放假前检查：教学楼：饮水机已断电——有问题（大一班饮水机插头没拔）", "open")
    assert api.post(f"{base}/items/dispensers/work-order", json={}, headers=guard).status_code == 409

    record = api.get("/api/v1/reports/safety", params={"date": "2026-07-03"}, headers=viewer).json()
    item = next(i for i in record["items"] if i["id"] == "sweep@main")
    assert (item["status"], item["detail_zh"]) == ("manual", "还没有签字：请在「放假前检查」页逐项检查并签字")

    signed = api.post(f"{base}/sign", json={"note": "已通知大一班"}, headers=head).json()
    assert (signed["signed"]["by"]["name_zh"], signed["signed"]["problems"]) == ("李主任", 1)
    assert api.post(f"{base}/items/valuables", json={"result": "ok"}, headers=guard).status_code == 409
    record = api.get("/api/v1/reports/safety", params={"date": "2026-07-03"}, headers=viewer).json()
    item = next(i for i in record["items"] if i["id"] == "sweep@main")
    assert (item["status"], item["detail_zh"], item["check_zh"]) == (
        "fail", "李主任 15:00 签字：1 项有问题", "拉网式检查：暑假放假前检查")
    assert next(i for i in record["items"] if i["id"] == "sweep@annex")["status"] == "manual"

    audit = api.get("/api/v1/audit", params={"limit": 50}, headers=head).json()
    actions = [(e["actor"], e["action"]) for e in reversed(audit) if e["action"].startswith(("sweep.", "work_order"))]
    assert actions == [("guard-wang", "sweep.start")] + [("guard-wang", "sweep.mark")] * 4 + [
        ("guard-wang", "work_order.open"), ("guard-wang", "sweep.work_order"), ("logistics-li", "sweep.sign")]


def test_the_head_starts_a_sweep_of_their_own(api: TestClient) -> None:
    head = login(api, "logistics-li")
    started = api.post("/api/v1/sweeps", json={"title": " 运动会前检查 "}, headers=head).json()
    assert (started["kind"], started["title_zh"], started["day"], started["started_by"]["name_zh"]) == (
        "on_demand", "运动会前检查", "2026-07-03", "李主任")
    got = api.get(f"/api/v1/sweeps/{started['id']}", headers=head).json()
    assert (got["roster"], got["closed"]) == ([], None)
    board = api.get("/api/v1/dashboard/closing", headers=head).json()
    assert [s["title_zh"] for s in board["sweeps"]] == ["暑假放假前检查", "运动会前检查"]
    assert api.post("/api/v1/sweeps", json={"title": " "}, headers=head).status_code == 422
    assert api.get("/api/v1/sweeps/999", headers=head).status_code == 404
