"""Alerts end to end, with real parts: readings published to a real Mosquitto reach
`facility-gateway run` (its own process); the alert goes out to a real HTTP receiver
(webhook), a real SMTP server and, retained, to the broker; a staff user acknowledges it
through the API; a leak opens a work order that a technician moves along."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from paho.mqtt.client import MQTTMessage

from gateway import config
from simulators import DEMO_SITE
from tests.receivers import HttpReceiver, Received, SmtpReceiver
from tests.services import Mosquitto, free_port, gateway_process, mqtt_client

pytestmark = pytest.mark.integration

STAFF_PASSWORD = "a-long-staff-passphrase-42"
WAIT_S = 10.0


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    with HttpReceiver() as hook, SmtpReceiver() as smtp:
        yield hook, smtp


@pytest.fixture
def site_file(tmp_path: Path, mosquitto: Mosquitto, receivers: tuple[HttpReceiver, SmtpReceiver]) -> Path:
    hook, smtp = receivers
    data = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    # Closed every day, whatever day the test runs on: a door open now is open after hours.
    data["opening_hours"] = {}
    for building in data["buildings"]:
        building.pop("opening_hours", None)
    data |= {
        "mqtt": {"url": mosquitto.url, "client_id": "alerting-gateway"},
        "storage": {"data_dir": str(tmp_path / "data")},
        "api": {"port": free_port()},
        "rules": {"door_after_hours": {"grace_min": 0}},
        "fire_patrol": {"rounds": []},  # no reminders of missed patrol rounds among the notices tested
        "notifications": {"channels": [
            {"id": "office-hook", "type": "webhook", "url": hook.url},
            {"id": "mail", "type": "email", "host": smtp.host, "port": smtp.port, "sender": "gateway@school.test",
             "min_severity": "major"},
            {"id": "broker", "type": "mqtt"},
        ]},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def api(site_file: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    site = config.load(site_file)
    with gateway_process(site_file, site.api.port, tmp_path / "gateway.log") as client:
        yield client


def add_user(site_file: Path, name: str, role: str) -> None:
    cli = str(Path(sys.executable).parent / "facility-gateway")
    subprocess.run([cli, "user", "--config", str(site_file), name, "--role", role], check=True,
                   env=os.environ | {"FACILITY_NEW_PASSWORD": STAFF_PASSWORD}, capture_output=True)


def login(api: httpx.Client, name: str) -> dict[str, str]:
    answer = api.post("/api/v1/auth/login", json={"username": name, "password": STAFF_PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def notices(hook: HttpReceiver, n: int) -> list[dict[str, Any]]:
    received: list[Received] = hook.wait(n, WAIT_S)
    return [r.json() for r in received]


def test_door_left_open_reaches_the_person_on_duty_and_is_acknowledged(
    api: httpx.Client, site_file: Path, mosquitto: Mosquitto, receivers: tuple[HttpReceiver, SmtpReceiver],
) -> None:
    hook, smtp = receivers
    add_user(site_file, "wang", "staff")
    add_user(site_file, "visitor", "viewer")
    staff, viewer = login(api, "wang"), login(api, "visitor")
    now = datetime.now(UTC)
    with mqtt_client(mosquitto, "door-sensor") as (client, _):
        client.publish("facility/sunflower-kg/kitchen-door/telemetry",
                       json.dumps({"ts": now.timestamp(), "open": True}), qos=1).wait_for_publish()
        raised = notices(hook, 1)[0]
        assert raised["transition"] == "raised"
        assert raised["alert"]["rule"] == "door_after_hours"
        assert raised["alert"]["title_zh"] == "厨房门 在闭园时段开着"
        # Every day is closed here, so the guard holds the duty (the closed-day shift).
        assert [p["name"] for p in raised["recipients"]] == ["王师傅"]
        deadline = time.monotonic() + WAIT_S
        while not smtp.mails and time.monotonic() < deadline:
            time.sleep(0.05)
        mail = smtp.mails[0]
        assert "厨房门" in mail.subject
        assert "guard@sunflower-kg.example" in mail.recipients

        alerts = api.get("/api/v1/alerts", params={"state": "active"}, headers=viewer).json()
        assert [a["rule"] for a in alerts] == ["door_after_hours"]
        alert_id = alerts[0]["id"]
        assert api.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "x"}, headers=viewer).status_code == 403
        acked = api.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "已去关门"}, headers=staff)
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"
        assert acked.json()["acked_by"] == "wang"
        assert notices(hook, 2)[1]["transition"] == "acknowledged"
        again = api.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": ""}, headers=staff)
        assert again.status_code == 409

        client.publish("facility/sunflower-kg/kitchen-door/telemetry",
                       json.dumps({"ts": now.timestamp() + 60, "open": False}), qos=1).wait_for_publish()
        assert notices(hook, 3)[2]["transition"] == "cleared"

    detail = api.get(f"/api/v1/alerts/{alert_id}", headers=viewer).json()
    assert detail["state"] == "cleared"
    assert [(h["action"], h["actor"]) for h in detail["history"]] == [
        ("alert.raised", "rule:door_after_hours"), ("alert.acknowledged", "wang"), ("alert.cleared", "rule:door_after_hours"),
    ]
    # The alert's state, retained on the broker for anyone who subscribes later.
    retained: queue.Queue[MQTTMessage] = queue.Queue()
    with mqtt_client(mosquitto, "late-subscriber") as (late, _):
        late.on_message = lambda c, u, m: retained.put(m)
        late.subscribe("facility/sunflower-kg/alerts/#", qos=1)
        first = message = retained.get(timeout=WAIT_S)
        # The broker channel may still be sending the last transitions: wait for the clearing.
        while json.loads(message.payload)["alert"]["state"] != "cleared":
            message = retained.get(timeout=WAIT_S)
    assert first.retain
    assert message.topic == "facility/sunflower-kg/alerts/door_after_hours/kitchen-door"
    # The gateway hears its own alert states (it subscribes to the whole site): not input.
    assert not re.search(r'^facility_messages_rejected_total\{.*\} [1-9]', api.get("/metrics").text, re.M)


def test_a_leak_opens_a_work_order_with_its_evidence(
    api: httpx.Client, site_file: Path, mosquitto: Mosquitto, receivers: tuple[HttpReceiver, SmtpReceiver],
) -> None:
    hook, _ = receivers
    add_user(site_file, "plumber", "staff")
    staff = login(api, "plumber")
    start = datetime.now(UTC) - timedelta(minutes=65)
    with mqtt_client(mosquitto, "water-meter") as (client, _):
        for minute in range(66):  # 2 L/min for 65 minutes while closed
            payload = {"ts": (start + timedelta(minutes=minute)).timestamp(), "volume_m3": 1000 + 0.002 * minute,
                       "flow_lpm": 2.0}
            client.publish("facility/sunflower-kg/kitchen-water/telemetry", json.dumps(payload), qos=1)
        raised = next(n for n in notices(hook, 1) if n["alert"]["rule"] == "water_leak")
    assert raised["alert"]["facts"]["loss_m3"] == pytest.approx(0.12, abs=0.003)
    orders = api.get("/api/v1/work-orders", headers=staff).json()
    assert len(orders) == 1
    order = orders[0]
    assert (order["trade"], order["room"], order["status"], order["overdue"]) == ("water", "kitchen", "open", False)
    assert order["evidence"]["metric"] == "flow_lpm"
    assert order["evidence"]["unit"] == "L/min"
    assert len(order["evidence"]["points"]) >= 60
    assigned = api.patch(f"/api/v1/work-orders/{order['id']}", json={"assignee": "张师傅"}, headers=staff)
    assert assigned.json()["status"] == "assigned"
    back = api.patch(f"/api/v1/work-orders/{order['id']}", json={"status": "open"}, headers=staff)
    assert back.status_code == 409
    done = api.patch(f"/api/v1/work-orders/{order['id']}", json={"status": "done", "note": "换了阀门"}, headers=staff)
    assert done.json()["done_at"] is not None


def test_a_card_with_a_line_break_is_refused_and_the_gateway_goes_on(
    api: httpx.Client, site_file: Path, mosquitto: Mosquitto, receivers: tuple[HttpReceiver, SmtpReceiver],
) -> None:
    """The reported attack: a credential with a line break, after hours, with an e-mail
    channel. It used to become the alert's e-mail Subject, where Python's e-mail policy
    raised, which stopped ingest and every channel while the API went on answering."""
    hook, smtp = receivers
    now = datetime.now(UTC)
    with mqtt_client(mosquitto, "main-gate") as (client, _):
        client.publish("facility/sunflower-kg/main-gate/event", json.dumps(
            {"ts": now.timestamp(), "type": "access", "credential": "card:0043\nX", "granted": True}),
            qos=1).wait_for_publish()
        client.publish("facility/sunflower-kg/main-gate/event", json.dumps(
            {"ts": now.timestamp() + 1, "type": "access", "credential": "card:0044", "granted": True}),
            qos=1).wait_for_publish()
        raised = notices(hook, 1)[0]
    # The bad one is refused with its reason, at the door to the gateway; the next card goes through.
    assert raised["alert"]["facts"]["credential"] == "card:0044"
    add_user(site_file, "visitor", "viewer")
    [rejected] = api.get("/api/v1/rejected", headers=login(api, "visitor")).json()
    assert (rejected["device_id"], rejected["reason"]) == ("main-gate", "bad_text")
    assert "control characters" in rejected["detail"]
    deadline = time.monotonic() + WAIT_S
    while not smtp.mails and time.monotonic() < deadline:
        time.sleep(0.05)
    [mail] = smtp.mails
    assert mail.subject == "【重要】大门 闭园时段刷卡 (card:0044)"
    parts = api.get("/health").json()["components"]  # the demo's polled meters are not served here
    assert {name: parts[name]["state"] for name in ("mqtt", "spool", "sqlite", "notify:mail")} == dict.fromkeys(
        ("mqtt", "spool", "sqlite", "notify:mail"), "ok")
    assert "gateway" not in parts
    assert 'facility_notifications_sent_total{channel="mail"} 1.0' in api.get("/metrics").text


def test_calendar_knows_holidays_and_make_up_days(api: httpx.Client, site_file: Path) -> None:
    add_user(site_file, "reader", "viewer")
    viewer = login(api, "reader")
    national_day = api.get("/api/v1/calendar", params={"date": "2026-10-01"}, headers=viewer).json()
    assert (national_day["kind"], national_day["name_zh"], national_day["school_day"]) == ("holiday", "国庆节", False)
    assert national_day["on_duty"] == ["王师傅", "李主任", "赵园长"]
    assert api.get("/api/v1/calendar", params={"date": "not-a-date"}, headers=viewer).status_code == 422
