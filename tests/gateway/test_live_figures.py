"""An alert that stays active for hours tells its figures as they grow, and the clearing
notice carries the final ones; the daily record says the same. A night leak on a real
gateway (the ingest path, the spool, SQLite, the rules, the alerts, a real webhook receiver,
a real broker), fed in event time on a manual clock, checked against the readings sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gateway import config
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config.auth import Scope
from gateway.runtime import Gateway
from tests.receivers import HttpReceiver
from tests.services import Mosquitto, wait_for

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 24, tzinfo=TZ)  # a Tuesday: the kitchen is closed from 17:30 to 07:30
LEAK = (time(1, 0), time(4, 30))
LPM = 2.0
SITE = """\
id: live
name: 小星星幼儿园
buildings:
  - {{id: service, name: 综合楼, rooms: [{{id: kitchen, name: 厨房, type: kitchen}}]}}
devices:
  - {{id: kitchen-water, name: 厨房水表, kind: water_meter, room: kitchen}}
mqtt: {{url: "{url}", client_id: "gw-live-figures"}}
storage: {{data_dir: "{data_dir}"}}
notifications:
  retry_first_s: 0.05
  channels: [{{id: hook, type: webhook, url: "{hook}"}}]
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def readings(until: datetime) -> Iterator[tuple[datetime, float, float]]:
    """(when, volume m³, flow L/min) each minute of the night: no water but the leak."""
    volume, when = 100.0, NIGHT
    while when < until:
        leaking = LEAK[0] <= when.time() < LEAK[1]
        yield when, round(volume, 4), LPM if leaking else 0.0
        when += timedelta(minutes=1)
        volume += LPM / 1000 if leaking else 0.0


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def client(mosquitto: Mosquitto, hook: HttpReceiver, tmp_path: Path) -> Iterator[TestClient]:
    site = config.parse(SITE.format(url=mosquitto.url, data_dir=tmp_path / "data", hook=f"{hook.url}/alerts"),
                        "site.yaml")
    with TestClient(create_app(site, ManualClock(NIGHT + timedelta(hours=8)))) as api:
        key = api.app.state.auth.create_api_key("tests", [Scope.READ], "test", 0)  # type: ignore[attr-defined]
        api.headers["Authorization"] = f"Bearer {key}"
        yield api


def feed(api: TestClient, start: datetime, until: datetime) -> None:
    """The meter's readings from `start` to `until` through the ingest path, then waits until
    the rules have seen the last of them."""
    gateway: Gateway = api.app.state.gateway  # type: ignore[attr-defined]
    last = None
    for when, volume, flow in readings(until):
        if when >= start:
            payload = json.dumps({"ts": when.isoformat(), "volume_m3": volume, "flow_lpm": flow}).encode()
            assert gateway.ingestor.accept("replay", "kitchen-water", "telemetry", payload, ms(when)) is None
            last = when
    assert last is not None
    def seen() -> bool:
        stamp = api.get("/api/v1/devices/kitchen-water").json()["last_seen"]
        return stamp is not None and datetime.fromisoformat(stamp) == last

    wait_for(seen, 10)


def the_alert(api: TestClient) -> dict[str, Any]:
    found: list[dict[str, Any]] = api.get("/api/v1/alerts", params={"rule": "water_leak"}).json()
    [alert] = found
    return alert


def test_a_leak_active_for_hours_tells_its_figures_as_they_grow_and_its_final_ones_at_clearing(
        client: TestClient, hook: HttpReceiver) -> None:
    feed(client, NIGHT, NIGHT + timedelta(hours=2, minutes=30))
    at_half_past_two = the_alert(client)
    feed(client, NIGHT + timedelta(hours=2, minutes=30), NIGHT + timedelta(hours=4))
    at_four = the_alert(client)

    # Raised an hour after the flow began; its figures went on growing with the readings.
    began = NIGHT + timedelta(hours=1)
    assert at_four["first"] == at_half_past_two["first"]
    assert datetime.fromisoformat(at_four["first"]) == began
    assert datetime.fromisoformat(at_four["raised_at"]) == began + timedelta(hours=1)
    assert datetime.fromisoformat(at_four["last"]) == NIGHT + timedelta(hours=3, minutes=59)
    assert at_half_past_two["title_zh"] == "厨房水表 闭园时段持续用水 89 分钟"
    assert at_four["title_zh"] == "厨房水表 闭园时段持续用水 179 分钟"
    # What the meter counted from the leak's start to 03:59: 179 minutes of 2 L/min.
    assert at_four["facts"]["loss_m3"] == pytest.approx(LPM * 179 / 1000, abs=1e-6)
    assert "已流失 0.358 m³" in at_four["detail_zh"]
    assert at_four["state"] == "active"

    feed(client, NIGHT + timedelta(hours=4), NIGHT + timedelta(hours=6))
    cleared = the_alert(client)
    stopped = datetime.combine(NIGHT.date(), LEAK[1], TZ)
    assert cleared["state"] == "cleared"
    assert datetime.fromisoformat(cleared["cleared_at"]) == stopped
    assert datetime.fromisoformat(cleared["last"]) == stopped - timedelta(minutes=1)  # the last reading with flow
    # 01:00 to 04:30 at 2 L/min: 0.42 m³, ¥2.1 at the default ¥5/m³, counted by the meter.
    sent = {when: volume for when, volume, _ in readings(stopped + timedelta(minutes=1))}
    counted = sent[stopped] - sent[began - timedelta(minutes=1)]
    assert cleared["facts"]["loss_m3"] == pytest.approx(counted, abs=5e-4)
    assert cleared["facts"]["loss_m3"] == pytest.approx(LPM * 210 / 1000, abs=5e-4)
    assert cleared["facts"]["minutes"] == 210
    assert cleared["title_zh"] == "厨房水表 跑水 210 分钟, 流失 0.42 m³"
    assert cleared["detail_zh"].startswith("11-24 01:00–04:30 持续流水 210 分钟后停止, 共流失 0.42 m³")

    # People's phones heard of it twice: raised and cleared, the clearing with the final figures.
    wait_for(lambda: len(hook.requests) >= 2, 10)
    notices = [r.json() for r in hook.requests]
    assert [n["transition"] for n in notices] == ["raised", "cleared"]
    raised_notice, cleared_notice = notices
    assert raised_notice["alert"]["title_zh"] == "厨房水表 闭园时段持续用水 60 分钟"
    assert cleared_notice["alert"]["facts"] == cleared["facts"]
    assert cleared_notice["alert"]["title_zh"] == cleared["title_zh"]
    assert "共流失 0.42 m³" in cleared_notice["text"]

    # The daily record gives the same loss, by the same definition.
    record = client.get("/api/v1/reports/safety", params={"date": NIGHT.date().isoformat()}).json()
    [water] = [i for i in record["items"] if i["id"] == "water:kitchen-water"]
    assert water["status"] == "fail"
    assert water["facts"]["loss_m3"] == cleared["facts"]["loss_m3"]
    assert water["facts"]["cost_yuan"] == cleared["facts"]["cost_yuan"]
