"""`facility-gateway demo` in-process (embedded amqtt broker, SQLite) on a fixed clock: its
history, with the demo's faults, raises exactly the alerts the faults should, and the
dashboard's summaries show them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gateway.cli.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, banner, demo_app
from gateway.clock import ManualClock
from simulators import DEMO_SITE
from tests.services import accounting, free_port, wait_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday, school all week


def test_the_demo_history_shows_each_of_its_faults_and_nothing_else(tmp_path: Path) -> None:
    app = demo_app(tmp_path / "data", free_port(), backfill_days=3, clock=ManualClock(NOW))
    expected = {
        ("water_leak", "kitchen-water", "cleared"),  # Monday night
        ("leak_detected", "kitchen-leak", "cleared"),  # the same night, until mopped up
        ("load_after_hours", "teaching-power", "cleared"),  # Tuesday night, until the morning
        ("door_after_hours", "kitchen-door", "cleared"),  # Tuesday evening
        ("fridge_temperature", "sample-fridge", "cleared"),  # Tuesday afternoon
        ("uv_not_run", "uv-nap", "active"),  # skipped on Tuesday
        # The kitchen's door held open through its lamp's session on Tuesday evening: someone may
        # have been under the light, and those minutes did not disinfect.
        ("uv_on_occupied", "uv-kitchen", "cleared"),
        ("uv_not_run", "uv-kitchen", "active"),
        ("water_leak", "service-water", "active"),  # since midnight, still running
        ("sample_missing", "sample-fridge", "active"),  # nobody registered breakfast's 留样 by 08:30
        # The 02:00 round is walked once the demo's people have written their records; the
        # latest round before noon is left for whoever tries the demo.
        ("fire_patrol_missed", "fire-patrol-2026-11-18-0200", "cleared"),
        ("fire_patrol_missed", "fire-patrol-2026-11-18-0800", "active"),
    }
    with TestClient(app) as client:
        # The history is written in the background: wait until it has all been stored.
        deadline = time.monotonic() + 120
        while not (all(d["last_seen"] and datetime.fromisoformat(d["last_seen"]) >= NOW - timedelta(minutes=2)
                       for d in client.get("/api/v1/devices").json())
                   and accounting(client).pending("sqlite") == 0):
            assert time.monotonic() < deadline, "the demo's history was not stored in time"
            time.sleep(0.5)
        # Then the people's records of the history, which the watchdog judges at its next tick.
        wait_for((tmp_path / "data" / "demo-records.json").exists, timeout=60)
        wait_for(lambda: not client.get("/api/v1/alerts", params={"device": "fire-patrol-2026-11-18-0200",
                                                                  "open": True}).json())
        alerts = client.get("/api/v1/alerts").json()
        assert sorted((a["rule"], a["device_id"], a["state"]) for a in alerts) == sorted(expected)

        board = {b["id"]: b for b in client.get("/api/v1/dashboard/closing").json()["buildings"]}
        assert [i["device"] for i in board["service"]["items"] if i["check"] == "water"] == ["service-water"]
        overview = client.get("/api/v1/dashboard/overview").json()
        assert overview["open_alerts"]["major"] == 3 + 1 + 1  # the patrol round missed, the kitchen's lamp
        assert overview["electricity"]["today"] > 0
        assert overview["electricity"]["yesterday_total"] > 0
        orders = client.get("/api/v1/work-orders").json()
        assert sorted((o["device_id"], o["trade"]) for o in orders) == [
            ("kitchen-leak", "water"), ("kitchen-water", "water"),
            ("service-water", "water")]  # leaks open orders for the plumber
        # The page itself, in Chinese.
        assert "向日葵幼儿园" in client.get("/").text
        assert client.get("/api/v1/rejected").json() == []
        # The people kept their records on the days of the history: Monday's ledger has nothing
        # blank; yesterday nobody kept the snack's sample; both days not signed yet.
        monday = client.get("/api/v1/reports/safety", params={"date": "2026-11-16"}).json()
        assert monday["counts"]["manual"] == 0, [i["id"] for i in monday["items"] if i["status"] == "manual"]
        done = {i["id"]: i for i in monday["items"]}
        assert done["sample:lunch"]["status"] == "pass"
        assert done["fire:0800"]["status"] == "done"
        assert done["canteen:tableware"]["completion"]["by"]["name_zh"] == "陈师傅"
        tuesday = {i["id"]: i["status"] for i in client.get(
            "/api/v1/reports/safety", params={"date": "2026-11-17"}).json()["items"]}
        assert (tuesday["sample:lunch"], tuesday["sample:snack"]) == ("pass", "fail")
        # Each of the school's people can log in, and is greeted by name.
        for login, (role, _) in DEMO_ACCOUNTS.items():
            answer = client.post("/api/v1/auth/login", json={"username": login, "password": DEMO_PASSWORD})
            assert answer.status_code == 200, login
            assert answer.json()["role"] == role
        assert answer.json()["display_name"] == "孙老师"
        me = client.post("/api/v1/auth/login", json={"username": "guard-wang", "password": DEMO_PASSWORD}).json()
        assert me["display_name"] == "王师傅"


def test_the_demo_banner_names_the_dashboard_and_the_accounts() -> None:
    text = banner("127.0.0.1", 8000, 1883, DEMO_SITE, Path("demo-data"), "sunflower-kg")
    assert "http://127.0.0.1:8000/\n" in text
    assert f"站点文件 / Site file:  {DEMO_SITE.resolve()}\n" in text
    assert f"数据目录 / Data:       {Path('demo-data').resolve()}\n" in text
    assert "facility/sunflower-kg/#" in text
    assert DEMO_PASSWORD in text
    for login in DEMO_ACCOUNTS:
        assert f"    {login} " in text

