"""The notifier against real receivers: an HTTP server for the webhook and the WeCom and
DingTalk robots, aiosmtpd for e-mail and Mosquitto for MQTT. Retries, drops, routing and
health as a channel's operator would see them in /metrics and /health."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import queue
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Row, select

from gateway import config
from gateway.alerting.alerts import Alert, AlertState, Notice, Transition, notice_from_json, notice_json
from gateway.alerting.severity import Severity
from gateway.clock import ManualClock
from gateway.config import SiteConfig
from gateway.config.duty import Person
from gateway.counters import Counters
from gateway.notify import notifier as notifier_module
from gateway.notify.channels import channels
from gateway.notify.message import ChannelSettings, Message
from gateway.notify.notifier import Notifier, render
from gateway.notify.outbox import OUTBOX
from gateway.storage.state import StateDatabase, sqlite_url
from tests.receivers import HttpReceiver, Received, Reply, SmtpReceiver
from tests.services import Mosquitto, mqtt_client, until

SITE = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms: [{id: kitchen, name: 厨房, type: kitchen}]
  - id: dorm
    name: 宿舍楼
    rooms: [{id: dorm-101, name: 101室, type: dorm}]
duty:
  people:
    - {id: zhang, name: 张三, role: 门卫, email: zhang@kg.example, mobile: "13800000001"}
    - {id: li, name: 李四, role: 后勤主任, email: li@kg.example, mobile: "13800000002"}
"""
T0 = datetime(2025, 5, 6, 13, 3, tzinfo=UTC)  # 21:03 in Shanghai
T0_MS = int(T0.timestamp() * 1000)
ZHANG = Person(id="zhang", name="张三", role="门卫", email="zhang@kg.example", mobile="13800000001")
OK = Reply(200, {"errcode": 0, "errmsg": "ok"})


def site_with(*channels: dict[str, Any], **settings: Any) -> SiteConfig:
    """The site with these notification channels; retries fast unless told otherwise."""
    notifications = {"retry_first_s": 0.05, "retry_max_s": 0.2} | settings | {"channels": list(channels)}
    return config.parse(SITE + f"notifications: {json.dumps(notifications, ensure_ascii=False)}\n", "test.yaml")


def make_notice(transition: Transition = Transition.RAISED, recipients: tuple[Person, ...] = (ZHANG,),
                **changes: Any) -> Notice:
    alert = Alert(
        id=7, rule="door_after_hours", device_id="kitchen-door", building_id="main", room_id="kitchen",
        severity=Severity.CRITICAL, state=AlertState.ACTIVE,
        title_zh="厨房门 在闭园时段开着", title_en="Kitchen door open after hours",
        detail_zh="厨房门 在闭园时段开着 (自 21:03 起, 已 12 分钟)",
        detail_en="Kitchen door open after hours (since 21:03, 12 min)",
        facts={"since_ms": T0_MS}, first_ms=T0_MS, last_ms=T0_MS + 120_000, count=2,
    )
    return Notice(transition, dataclasses.replace(alert, **changes), T0_MS + 720_000, recipients)


def sample(counters: Counters, name: str, **labels: str) -> float:
    return counters.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as group:
        task = group.create_task(notifier.run())
        try:
            yield
        finally:
            task.cancel()


def alert_ids(requests: list[Received]) -> list[int]:
    return [r.json()["alert"]["id"] for r in requests]


@pytest.fixture
def counters() -> Counters:
    return Counters()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDatabase]:
    """The notifier's outbox, on SQLite; the outbox's own tests (below) run on both engines."""
    state = StateDatabase(sqlite_url(tmp_path / "state.db"))
    yield state
    state.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + timedelta(minutes=12))


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver(default=OK) as r:
        yield r


# ------------------------------------------------------------------------ formats


def test_text_in_chinese_for_each_transition() -> None:
    site = site_with()
    raised = render(make_notice(), site)
    assert raised.headline == "【紧急】厨房门 在闭园时段开着"
    assert raised.text.splitlines() == [
        "【紧急】厨房门 在闭园时段开着",
        "厨房门 在闭园时段开着 (自 21:03 起, 已 12 分钟)",
        "事件: 告警",
        "位置: 教学楼 厨房",
        "时间: 2025-05-06 21:15",
        "首次: 2025-05-06 21:03, 共 2 次",
        "值班: 张三",
    ]
    acked = render(make_notice(Transition.ACKNOWLEDGED, (), state=AlertState.ACKNOWLEDGED, acked_by="zhang",
                               ack_comment="已关门", acked_ms=T0_MS), site)
    assert acked.headline == "【紧急·已确认】厨房门 在闭园时段开着"
    assert "事件: 已确认 (张三: 已关门)" in acked.text.splitlines()
    assert "值班" not in acked.text
    reminder = render(make_notice(Transition.REMINDER, severity=Severity.MINOR), site)
    assert reminder.headline == "【一般·提醒(未确认)】厨房门 在闭园时段开着"
    assert render(make_notice(Transition.CLEARED, severity=Severity.WARNING), site).headline.startswith("【提示·已恢复】")


async def test_webhook_posts_the_alert_as_json(receiver: HttpReceiver, counters: Counters,
                                               clock: ManualClock, db: StateDatabase) -> None:
    site = site_with({"id": "hook", "type": "webhook", "url": f"{receiver.url}/alerts",
                      "headers": {"Authorization": "Bearer t0ken-for-tests"}})
    notifier = Notifier(site, counters, clock, db)
    async with running(notifier):
        notifier.submit(make_notice())
        (request,) = await receiver.wait_for(1)
        await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
    assert (request.method, request.path) == ("POST", "/alerts")
    assert request.headers["authorization"] == "Bearer t0ken-for-tests"
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["site"] == "kg-1"
    assert body["transition"] == "raised"
    assert body["at"] == "2025-05-06T21:15:00.000+08:00"
    alert = body["alert"]
    assert alert["severity"] == "critical"
    assert alert["state"] == "active"
    assert alert["rule"] == "door_after_hours"
    assert alert["first_ms"] == T0_MS
    assert alert["first_at"] == "2025-05-06T21:03:00.000+08:00"
    assert alert["cleared_ms"] is None
    assert alert["cleared_at"] is None
    assert alert["facts"] == {"since_ms": T0_MS}
    assert alert["count"] == 2
    assert body["recipients"] == [
        {"id": "zhang", "name": "张三", "role": "门卫", "email": "zhang@kg.example", "mobile": "13800000001"}
    ]
    assert body["text"] == render(make_notice(), site).text
    assert notifier.health() == {"hook": "ok"}


# ------------------------------------------------------------------------ delivery policy


async def test_transient_failures_are_retried_with_backoff(receiver: HttpReceiver, counters: Counters,
                                                           clock: ManualClock, db: StateDatabase) -> None:
    receiver.respond(503, times=2)
    notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": receiver.url}), counters, clock, db)
    async with running(notifier):
        notifier.submit(make_notice())
        requests = await receiver.wait_for(3)
        await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
    assert len({r.body for r in requests}) == 1  # the same notice each time
    first_gap, second_gap = requests[1].at - requests[0].at, requests[2].at - requests[1].at
    assert first_gap >= 0.05 * 0.5  # retry_first_s, less at most half for jitter
    assert second_gap >= 0.1 * 0.5  # doubled
    assert sample(counters, "facility_notifications_failed_total", channel="hook") == 2
    assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="gave_up") == 0
    assert notifier.health() == {"hook": "ok"}


async def test_a_refused_notice_is_dropped_and_the_next_goes_through(receiver: HttpReceiver, counters: Counters,
                                                                     clock: ManualClock, db: StateDatabase) -> None:
    receiver.respond(400, "bad request")
    notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": receiver.url}), counters, clock, db)
    async with running(notifier):
        notifier.submit(make_notice(id=1))
        notifier.submit(make_notice(id=2))
        await receiver.wait_for(2)
        await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
        await asyncio.sleep(0.2)  # no retry of the refused one
    assert alert_ids(receiver.requests) == [1, 2]
    assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="refused") == 1
    assert sample(counters, "facility_notifications_failed_total", channel="hook") == 1


async def test_a_full_queue_drops_its_oldest_notice(receiver: HttpReceiver, counters: Counters,
                                                    clock: ManualClock, db: StateDatabase) -> None:
    site = site_with({"id": "hook", "type": "webhook", "url": receiver.url, "queue": 2})
    notifier = Notifier(site, counters, clock, db)
    for i in (1, 2, 3):  # before the worker runs: all three wait in a queue of two
        notifier.submit(make_notice(id=i))
    assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="queue_full") == 1
    assert sample(counters, "facility_notifications_queued", channel="hook") == 2
    async with running(notifier):
        await receiver.wait_for(2)
        await asyncio.sleep(0.2)
    assert alert_ids(receiver.requests) == [2, 3]
    assert 'facility_notifications_dropped_total{channel="hook",reason="queue_full"} 1.0' in (
        counters.exposition().decode())


async def test_gives_up_on_a_notice_after_give_up_after_h_by_the_clock(counters: Counters,
                                                                       clock: ManualClock, db: StateDatabase) -> None:
    with HttpReceiver(default=Reply(503)) as receiver:
        site = site_with({"id": "hook", "type": "webhook", "url": receiver.url},
                         give_up_after_h=1, retry_first_s=0.02, retry_max_s=0.05)
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice(id=1))
            await receiver.wait_for(3)
            assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="gave_up") == 0
            clock.advance(timedelta(minutes=61))
            await until(lambda: sample(counters, "facility_notifications_dropped_total",
                                            channel="hook", reason="gave_up") == 1)
            assert notifier.health() == {"hook": "failing: HTTP 503"}
            receiver.default = OK
            notifier.submit(make_notice(id=2))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
        assert alert_ids(receiver.requests)[-1] == 2
        assert set(alert_ids(receiver.requests)) == {1, 2}
        assert notifier.health() == {"hook": "ok"}


async def test_a_hanging_channel_does_not_delay_another(counters: Counters, clock: ManualClock,
                                                        db: StateDatabase) -> None:
    with HttpReceiver(default=Reply(hang=True)) as slow, HttpReceiver(default=OK) as fast:
        site = site_with({"id": "slow", "type": "webhook", "url": slow.url},
                         {"id": "fast", "type": "webhook", "url": fast.url})
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice(id=1))
            notifier.submit(make_notice(id=2))
            await fast.wait_for(2, within_s=2)
            # Both went out while the slow channel's first still waits for an answer (it gives
            # up after HTTP_TIMEOUT_S): neither sent nor failed yet.
            assert len(await slow.wait_for(1)) == 1
            assert sample(counters, "facility_notifications_failed_total", channel="slow") == 0
        assert alert_ids(fast.requests) == [1, 2]
        assert sample(counters, "facility_notifications_sent_total", channel="slow") == 0


async def test_routing_by_severity_rule_and_building(receiver: HttpReceiver, counters: Counters,
                                                     clock: ManualClock, db: StateDatabase) -> None:
    site = site_with(
        {"id": "all", "type": "webhook", "url": f"{receiver.url}/all"},
        {"id": "major", "type": "webhook", "url": f"{receiver.url}/major", "min_severity": "major"},
        {"id": "doors", "type": "webhook", "url": f"{receiver.url}/doors", "rules": ["door_after_hours"]},
        {"id": "dorm", "type": "webhook", "url": f"{receiver.url}/dorm", "buildings": ["dorm"]},
        {"id": "dorm-minor", "type": "webhook", "url": f"{receiver.url}/dorm-minor", "buildings": ["dorm"],
         "min_severity": "minor", "rules": ["lights_out"]},
    )
    notifier = Notifier(site, counters, clock, db)
    async with running(notifier):
        notifier.submit(make_notice(id=1))  # critical door in the main building
        notifier.submit(make_notice(id=2, severity=Severity.MINOR, rule="lights_out", building_id="dorm",
                                    room_id="dorm-101"))
        notifier.submit(make_notice(id=3, severity=Severity.WARNING, rule="lights_out", building_id="dorm",
                                    room_id="dorm-101"))
        notifier.submit(make_notice(id=4, severity=Severity.MAJOR, rule="fridge_temperature"))
        await receiver.wait_for(9)
        await asyncio.sleep(0.1)
    by_path: dict[str, list[int]] = {}
    for r in receiver.requests:
        by_path.setdefault(r.path, []).append(r.json()["alert"]["id"])
    assert by_path == {"/all": [1, 2, 3, 4], "/major": [1, 4], "/doors": [1], "/dorm": [2, 3], "/dorm-minor": [2]}


async def test_health_says_failing_then_ok_and_logs_each_change_once(
    receiver: HttpReceiver, counters: Counters, clock: ManualClock, db: StateDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.notify.notifier")
    receiver.default = Reply(503)
    notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": receiver.url}), counters, clock, db)
    assert notifier.health() == {"hook": "ok"}
    async with running(notifier):
        notifier.submit(make_notice())
        await receiver.wait_for(4)
        assert notifier.health() == {"hook": "failing: HTTP 503"}
        receiver.default = OK
        await until(lambda: notifier.health() == {"hook": "ok"})
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.notify.notifier"]
    assert messages == ["notification channel hook failing: HTTP 503",
                        f"notification channel hook recovered after {len(receiver.requests) - 1} failed attempts"]


async def test_an_unreachable_channel_is_failing(counters: Counters, clock: ManualClock, db: StateDatabase) -> None:
    with HttpReceiver() as gone:
        url = gone.url  # a port nobody listens on any more
    notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": url}), counters, clock, db)
    async with running(notifier):
        notifier.submit(make_notice())
        await until(lambda: sample(counters, "facility_notifications_failed_total", channel="hook") >= 2)
    assert notifier.health()["hook"].startswith("failing: ConnectError")


# ------------------------------------------------------------------------ group robots


async def test_wecom_robot_text_with_mentions(receiver: HttpReceiver, counters: Counters,
                                              clock: ManualClock, db: StateDatabase) -> None:
    receiver.respond(200, {"errcode": 45009, "errmsg": "api freq out of limit"})  # transient: retried
    site = site_with({"id": "wecom", "type": "wecom", "url": f"{receiver.url}/cgi-bin/webhook/send?key=k-123"})
    notifier = Notifier(site, counters, clock, db)
    async with running(notifier):
        notifier.submit(make_notice(id=1))
        await receiver.wait_for(2)
        await until(lambda: sample(counters, "facility_notifications_sent_total", channel="wecom") == 1)
        receiver.respond(200, {"errcode": 93000, "errmsg": "invalid webhook url"})  # permanent
        notifier.submit(make_notice(id=2))
        await until(lambda: sample(counters, "facility_notifications_dropped_total",
                                        channel="wecom", reason="refused") == 1)
    first, second, _ = receiver.requests
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]  # a retry says it is one
    assert (second.path, second.query) == ("/cgi-bin/webhook/send", {"key": "k-123"})
    assert second.json() == {
        "msgtype": "text",
        "text": {"content": render(make_notice(id=1), site).text, "mentioned_mobile_list": ["13800000001"]},
    }
    assert sample(counters, "facility_notifications_failed_total", channel="wecom") == 2
    assert notifier.health() == {"wecom": "failing: errcode 93000 invalid webhook url"}


async def test_dingtalk_robot_signs_each_request(counters: Counters, clock: ManualClock, db: StateDatabase) -> None:
    secret = "SEC0f3a9c1d7e5b2468ac"

    def verify(request: Received) -> Reply:
        """As DingTalk does: the sign must be HMAC-SHA256 of "<timestamp>\\n<secret>"."""
        timestamp = request.query.get("timestamp", "")
        digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
        if request.query.get("sign") != base64.b64encode(digest).decode():
            return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
        return OK

    with HttpReceiver(responder=verify) as receiver:
        site = site_with(
            {"id": "ding", "type": "dingtalk", "url": f"{receiver.url}/robot/send?access_token=tok", "secret": secret},
            {"id": "ding-wrong", "type": "dingtalk", "url": f"{receiver.url}/wrong?access_token=tok",
             "secret": "SEC-not-the-robots-secret", "mention_duty": False},
        )
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice())
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="ding") == 1
                             and sample(counters, "facility_notifications_dropped_total",
                                        channel="ding-wrong", reason="refused") == 1)
    (good,) = (r for r in receiver.requests if r.path == "/robot/send")
    assert good.query["access_token"] == "tok"
    assert good.query["timestamp"] == str(int(clock.now().timestamp() * 1000))
    text = render(make_notice(), site).text
    assert good.json() == {
        "msgtype": "text",
        "text": {"content": f"{text}\n@13800000001"},
        "at": {"atMobiles": ["13800000001"], "isAtAll": False},
    }
    (wrong,) = (r for r in receiver.requests if r.path == "/wrong")
    assert wrong.json()["at"] == {"atMobiles": [], "isAtAll": False}
    assert notifier.health() == {"ding": "ok", "ding-wrong": "failing: errcode 310000 sign not match"}


# ------------------------------------------------------------------------ e-mail


async def test_email_in_chinese_to_the_list_and_the_person_on_duty(counters: Counters, clock: ManualClock,
                                                                   db: StateDatabase) -> None:
    with SmtpReceiver() as smtp:
        site = site_with({"id": "mail", "type": "email", "host": smtp.host, "port": smtp.port,
                          "sender": "facility@kg.example", "to": ["office@kg.example"]})
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice())
            (mail,) = await smtp.wait_for(1)
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="mail") == 1)
    assert mail.recipients == ["office@kg.example", "zhang@kg.example"]
    assert mail.sender == "facility@kg.example"
    assert mail.subject == "【紧急】厨房门 在闭园时段开着"
    assert mail.text.rstrip("\n") == render(make_notice(), site).text
    assert "值班: 张三" in mail.text
    assert mail.message.get_content_charset() == "utf-8"
    assert mail.message["To"] == "office@kg.example, zhang@kg.example"
    # Derived from the outbox row, so a notice sent again has the same Message-ID.
    [row_id] = [row.id for row in outbox_rows(db)]
    assert mail.message["Message-ID"] == f"<kg-1.notice.{row_id}@facility-gateway>"


async def test_email_refused_by_the_server_is_dropped(counters: Counters, clock: ManualClock,
                                                      db: StateDatabase) -> None:
    with SmtpReceiver(refuse={"nobody@kg.example"}) as smtp:
        site = site_with({"id": "mail", "type": "email", "host": smtp.host, "port": smtp.port,
                          "sender": "facility@kg.example", "to": ["nobody@kg.example"], "to_duty": False})
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice())
            await until(lambda: sample(counters, "facility_notifications_dropped_total",
                                            channel="mail", reason="refused") == 1)
        assert smtp.mails == []
    assert notifier.health() == {"mail": "failing: SMTP 550: recipients refused"}


async def test_a_title_with_a_line_break_stays_one_line_in_the_subject(counters: Counters,
                                                                       clock: ManualClock, db: StateDatabase) -> None:
    """A line break in a title (from a device or a site file) must not break the mail's headers."""
    with SmtpReceiver() as smtp:
        site = site_with({"id": "mail", "type": "email", "host": smtp.host, "port": smtp.port,
                          "sender": "facility@kg.example", "to": ["office@kg.example"], "to_duty": False})
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice(title_zh="厨房门\r\nBcc: someone@elsewhere.example"))
            (mail,) = await smtp.wait_for(1)
    assert mail.subject == "【紧急】厨房门 Bcc: someone@elsewhere.example"
    assert mail.message["Bcc"] is None
    assert mail.recipients == ["office@kg.example"]


async def test_a_defect_in_one_channel_is_that_channels_failure(
        receiver: HttpReceiver, counters: Counters, clock: ManualClock, db: StateDatabase,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Whatever a channel raises (here: making the text of one notice fails) is counted and
    logged for that channel; the channel goes on with the next notice and the notifier runs on."""
    made = notifier_module.render

    def render_or_fail(notice: Notice, site: SiteConfig) -> Message:
        if notice.alert.id == 1:
            raise ValueError("a defect in the text of alert 1")
        return made(notice, site)

    monkeypatch.setattr(notifier_module, "render", render_or_fail)
    notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": receiver.url}), counters, clock, db)
    async with running(notifier):
        with caplog.at_level(logging.ERROR, logger="gateway.notify.notifier"):
            notifier.submit(make_notice(id=1))
            notifier.submit(make_notice(id=2))
            await receiver.wait_for(1)
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
            assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="error") == 1
            assert sample(counters, "facility_notifications_failed_total", channel="hook") == 1
            notifier.submit(make_notice(id=3))
            await receiver.wait_for(2)
    assert alert_ids(receiver.requests) == [2, 3]
    [logged] = [r for r in caplog.records if r.exc_info]
    assert "alert 1" in logged.getMessage()
    assert notifier.health() == {"hook": "ok"}


# ------------------------------------------------------------------------ MQTT


async def test_mqtt_keeps_each_alerts_state_retained(mosquitto: Mosquitto, counters: Counters,
                                                     clock: ManualClock, db: StateDatabase) -> None:
    device = f"door-{uuid.uuid4().hex[:8]}"
    site = site_with({"id": "mqtt", "type": "mqtt"})
    with mqtt_client(mosquitto, f"gateway-{device}") as (publisher, _):
        sent: list[mqtt.MQTTMessageInfo] = []

        async def publish(topic: str, payload: bytes) -> None:
            sent.append(publisher.publish(topic, payload, 1, True))

        notifier = Notifier(site, counters, clock, db, publish=publish)
        async with running(notifier):
            notifier.submit(make_notice(device_id=device))
            notifier.submit(make_notice(Transition.CLEARED, (), device_id=device, state=AlertState.CLEARED,
                                        cleared_ms=T0_MS + 900_000))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="mqtt") == 2)
        for info in sent:
            await asyncio.to_thread(info.wait_for_publish, 5)
    topic = f"facility/kg-1/alerts/door_after_hours/{device}"
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    with mqtt_client(mosquitto, f"reader-{device}") as (reader, _):
        reader.on_message = lambda client, userdata, message: received.put(message)
        reader.subscribe(topic, qos=1)
        message = await asyncio.to_thread(received.get, timeout=5)
    assert message.topic == topic
    assert message.retain
    state = json.loads(message.payload)
    assert state["transition"] == "cleared"
    assert state["alert"]["state"] == "cleared"
    assert state["alert"]["cleared_at"] == "2025-05-06T21:18:00.000+08:00"
    assert "recipients" not in state  # no phone numbers on the broker


def test_an_mqtt_channel_needs_a_publish_function(counters: Counters, clock: ManualClock, db: StateDatabase) -> None:
    with pytest.raises(ValueError, match="no publish function"):
        Notifier(site_with({"id": "mqtt", "type": "mqtt"}), counters, clock, db)


# ------------------------------------------------------------------------ the convention


@pytest.mark.parametrize("kind", sorted(channels()))
def test_a_channel_is_one_module_that_declares_itself(kind: str) -> None:
    """docs/architecture.md, "Adding a channel": a module in gateway/notify/channels/ with
    its settings (a `type` literal of its own), whether it takes reports, and its sender."""
    module = channels()[kind]
    settings = module.SETTINGS
    assert issubclass(settings, ChannelSettings)
    assert get_args(settings.model_fields["type"].annotation) == (kind,)
    assert module.REPORTS in ("default", "listed", "never")
    assert callable(module.make)
    assert module.__doc__, f"{module.__name__} says what the channel sends, and how"
    # the site file takes it by its type
    assert site_with({"id": "x", "type": kind, **_REQUIRED.get(kind, {})}).notifications.channels[0].type == kind


_REQUIRED: dict[str, dict[str, Any]] = {
    "webhook": {"url": "http://127.0.0.1:9/hook"}, "wecom": {"url": "http://127.0.0.1:9/w"},
    "dingtalk": {"url": "http://127.0.0.1:9/d"}, "email": {"host": "127.0.0.1", "sender": "a@b.example"},
}


async def test_channels_changed_while_running_keep_what_they_had_queued(counters: Counters,
                                                                        clock: ManualClock, db: StateDatabase) -> None:
    with HttpReceiver(default=OK) as old, HttpReceiver(default=OK) as new, HttpReceiver(default=OK) as added:
        old.respond(503, times=1000)  # the office's old address is down: the notice waits in its queue
        notifier = Notifier(site_with({"id": "office", "type": "webhook", "url": old.url}), counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice())
            await old.wait_for(1)
            # The head corrects the office's address and adds the guard's phone, in the dashboard.
            notifier.reconfigure(site_with({"id": "office", "type": "webhook", "url": new.url},
                                           {"id": "guard", "type": "webhook", "url": added.url}))
            assert alert_ids(await new.wait_for(1)) == [make_notice().alert.id]  # sent the new way
            notifier.submit(make_notice(Transition.CLEARED))
            await added.wait_for(1)
            await new.wait_for(2)
            # The guard's channel is removed again: it stops; the office's goes on.
            notifier.reconfigure(site_with({"id": "office", "type": "webhook", "url": new.url}))
            assert notifier.health() == {"office": "ok"}
            notifier.submit(make_notice())
            await new.wait_for(3)
        assert len(added.requests) == 1


# ------------------------------------------------------------------------ the outbox, on both engines


def outbox_rows(db: StateDatabase) -> list[Row[Any]]:
    with db.read() as conn:
        return list(conn.execute(select(OUTBOX).order_by(OUTBOX.c.id)))


@contextmanager
def gateway_process(state_url: str) -> Iterator[StateDatabase]:
    """What a gateway process has of the state store: its own engine and pool."""
    db = StateDatabase(state_url)
    try:
        yield db
    finally:
        db.close()


class Switch:
    """A receiver's answer the test turns: 503 while down, else OK; what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.accepted: list[Received] = []

    def __call__(self, request: Received) -> Reply:
        if self.down:
            return Reply(503)
        self.accepted.append(request)
        return OK


def test_a_notice_round_trips_through_json() -> None:
    person = Person(id="li", name="李四", role="后勤主任", trades=["water"], email=None, mobile="13800000002")
    for notice in (
        make_notice(),
        make_notice(Transition.ACKNOWLEDGED, (ZHANG, person), state=AlertState.ACKNOWLEDGED, acked_by="zhang",
                    acked_ms=T0_MS + 1, ack_comment="已关门\n\"引号\"", cleared_ms=T0_MS + 2, raised_ms=T0_MS,
                    level=2, facts={"loss_m3": 0.1 + 0.2, "since": "21:03", "big": 2**53 + 1}),
        make_notice(Transition.CLEARED, (), facts={}, detail_zh="", raised_ms=None),
    ):
        assert notice_from_json(notice_json(notice)) == notice
    with pytest.raises(ValueError, match="not a notice"):
        notice_from_json('{"transition": "raised", "alert": {"id": 1}, "at_ms": 0, "recipients": []}')


@given(title=st.text(), facts=st.dictionaries(st.text(), st.one_of(st.floats(allow_nan=False), st.text())),
       at_ms=st.integers(-(2**62), 2**62))
def test_any_notice_round_trips_through_json(title: str, facts: dict[str, float | str], at_ms: int) -> None:
    notice = dataclasses.replace(make_notice(title_zh=title, facts=facts), at_ms=at_ms)
    assert notice_from_json(notice_json(notice)) == notice


async def test_a_notice_left_pending_is_sent_once_by_the_next_process(state_url: str, clock: ManualClock) -> None:
    """A restart, or a standby taking the site over: the notice the first process could not
    deliver is sent by the next one, once, and by no process after that."""
    switch = Switch()
    with HttpReceiver(responder=switch) as receiver:
        site = site_with({"id": "hook", "type": "webhook", "url": receiver.url})
        with gateway_process(state_url) as db:
            counters = Counters()
            notifier = Notifier(site, counters, clock, db)
            async with running(notifier):
                notifier.submit(make_notice(id=1))
                await receiver.wait_for(2)  # down: retried
            assert [row.state for row in outbox_rows(db)] == ["pending"]
        switch.down = False
        with gateway_process(state_url) as db:
            counters = Counters()
            notifier = Notifier(site, counters, clock, db)
            assert sample(counters, "facility_notifications_queued", channel="hook") == 1
            async with running(notifier):
                await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
            [row] = outbox_rows(db)
            assert (row.state, row.last_error) == ("sent", "HTTP 503")
            assert 2 <= row.attempts <= len(receiver.requests)  # an attempt cut short by the stop is not counted
        with gateway_process(state_url) as db:
            counters = Counters()
            notifier = Notifier(site, counters, clock, db)
            assert sample(counters, "facility_notifications_queued", channel="hook") == 0
            async with running(notifier):
                notifier.submit(make_notice(id=2))
                await until(lambda: len(switch.accepted) == 2)
        assert alert_ids(switch.accepted) == [1, 2]
        # Every attempt of a notice, before and after the restart, under one key; another notice's differs.
        keys = [r.headers["idempotency-key"] for r in receiver.requests]
        assert len(set(keys[:-1])) == 1
        assert keys[-1] != keys[0]


async def test_a_send_not_recorded_before_a_crash_is_sent_again_under_the_same_key(
        state_url: str, clock: ManualClock) -> None:
    """At least once: the receiver had the message, the process died before recording it, so
    the next process sends it again, and the receiver can tell it by its Idempotency-Key."""
    with HttpReceiver(default=OK) as receiver:
        receiver.respond(hang=True)  # it takes the message and the process dies waiting for the answer
        site = site_with({"id": "hook", "type": "webhook", "url": receiver.url})
        with gateway_process(state_url) as db:
            notifier = Notifier(site, Counters(), clock, db)
            async with running(notifier):
                notifier.submit(make_notice())
                await receiver.wait_for(1)
        with gateway_process(state_url) as db:
            counters = Counters()
            notifier = Notifier(site, counters, clock, db)
            async with running(notifier):
                await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
        first, again = receiver.requests
    assert first.body == again.body
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]


async def test_a_stop_lets_a_send_under_way_finish_and_records_it(state_url: str, clock: ManualClock) -> None:
    """A stop while the receiver is answering (a restart, a site handed over): the answer is
    waited for, the notice recorded as sent, and the next process does not send it again."""
    def slow(_: Received) -> Reply:
        time.sleep(0.5)
        return OK

    with HttpReceiver(responder=slow) as receiver:
        site = site_with({"id": "hook", "type": "webhook", "url": receiver.url})
        with gateway_process(state_url) as db:
            counters = Counters()
            notifier = Notifier(site, counters, clock, db)
            async with running(notifier):
                notifier.submit(make_notice())
                await receiver.wait_for(1)  # it has the message; its answer is on its way
            assert sample(counters, "facility_notifications_sent_total", channel="hook") == 1
            assert [row.state for row in outbox_rows(db)] == ["sent"]
        with gateway_process(state_url) as db:
            counters = Counters()
            async with running(Notifier(site, counters, clock, db)):
                await asyncio.sleep(0.5)
            assert sample(counters, "facility_notifications_queued", channel="hook") == 0
        assert len(receiver.requests) == 1


async def test_two_sites_outboxes_stay_apart(state_url: str, clock: ManualClock) -> None:
    down = Switch()
    with HttpReceiver(responder=down) as kg1, HttpReceiver(default=OK) as kg2, gateway_process(state_url) as db:
        first = Notifier(site_with({"id": "hook", "type": "webhook", "url": kg1.url}), Counters(), clock, db)
        async with running(first):
            first.submit(make_notice(id=1))
            await kg1.wait_for(1)
        # Another school on the same state store, with a channel of another name: kg-1's
        # pending notice is neither sent nor dropped as a removed channel's.
        other = site_with({"id": "office", "type": "webhook", "url": kg2.url}).model_copy(update={"id": "kg-2"})
        counters = Counters()
        second = Notifier(other, counters, clock, db)
        async with running(second):
            second.submit(make_notice(id=2))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="office") == 1)
        assert alert_ids(kg2.requests) == [2]
        assert [(row.site, row.state) for row in outbox_rows(db)] == [("kg-1", "pending"), ("kg-2", "sent")]
        down.down = False
        counters = Counters()
        again = Notifier(site_with({"id": "hook", "type": "webhook", "url": kg1.url}), counters, clock, db)
        async with running(again):
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
        assert alert_ids(down.accepted) == [1]
        assert kg2.requests[0].headers["idempotency-key"].startswith("kg-2.")


async def test_a_full_queue_drops_its_oldest_waiting_notice(state_url: str, clock: ManualClock) -> None:
    """The bound counts the notices waiting behind the one being delivered, as `queue` says."""
    switch = Switch()
    with HttpReceiver(responder=switch) as receiver, gateway_process(state_url) as db:
        counters = Counters()
        site = site_with({"id": "hook", "type": "webhook", "url": receiver.url, "queue": 2})
        notifier = Notifier(site, counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice(id=1))
            await receiver.wait_for(1)  # being retried
            for i in (2, 3, 4):
                notifier.submit(make_notice(id=i))
            assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="queue_full") == 1
            assert sample(counters, "facility_notifications_queued", channel="hook") == 2
            switch.down = False
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 3)
            assert sample(counters, "facility_notifications_queued", channel="hook") == 0
        assert alert_ids(switch.accepted) == [1, 3, 4]
        assert [(row.state, row.reason) for row in outbox_rows(db)] == [
            ("sent", None), ("dropped", "queue_full"), ("sent", None), ("sent", None)]


async def test_a_removed_channel_drops_what_it_had_to_send(state_url: str, clock: ManualClock) -> None:
    with HttpReceiver(default=Reply(503)) as down, HttpReceiver(default=OK) as up:
        hook = {"id": "hook", "type": "webhook", "url": down.url}
        office = {"id": "office", "type": "webhook", "url": up.url}
        with gateway_process(state_url) as db:
            counters = Counters()
            notifier = Notifier(site_with(hook, office), counters, clock, db)
            async with running(notifier):
                notifier.submit(make_notice(id=1))
                await down.wait_for(1)
                notifier.reconfigure(site_with(office))  # removed while running
                assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="removed") == 1
                assert sample(counters, "facility_notifications_queued", channel="hook") == 0
                notifier.reconfigure(site_with(hook, office))  # and back, without what it had
                notifier.submit(make_notice(id=2))
                await down.wait_for(len(down.requests) + 1)
                await until(lambda: sample(counters, "facility_notifications_sent_total", channel="office") == 2)
        with gateway_process(state_url) as db:  # removed from the site file while the gateway was down
            counters = Counters()
            notifier = Notifier(site_with(office), counters, clock, db)
            async with running(notifier):
                await until(lambda: sample(counters, "facility_notifications_dropped_total",
                                                channel="hook", reason="removed") == 1)
            assert [(row.channel, row.state, row.reason) for row in outbox_rows(db)] == [
                ("hook", "dropped", "removed"), ("office", "sent", None),
                ("hook", "dropped", "removed"), ("office", "sent", None)]
        assert alert_ids(up.requests) == [1, 2]
        assert set(alert_ids(down.requests)) == {1, 2}


async def test_notices_done_are_kept_thirty_days(state_url: str, clock: ManualClock) -> None:
    with HttpReceiver(default=OK) as receiver, gateway_process(state_url) as db:
        counters = Counters()
        notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": receiver.url}), counters, clock, db)
        async with running(notifier):
            notifier.submit(make_notice(id=1))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
            clock.advance(timedelta(days=29, hours=23))
            notifier.submit(make_notice(id=2))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 2)
            clock.advance(timedelta(hours=2))  # the first done 30 days and an hour ago, the second an hour ago
            notifier.submit(make_notice(id=3))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 3)
        assert [row.notice for row in outbox_rows(db)] == [notice_json(make_notice(id=i)) for i in (2, 3)]


async def test_a_notice_that_cannot_be_read_is_dropped_and_the_next_goes_through(
        receiver: HttpReceiver, counters: Counters, clock: ManualClock, db: StateDatabase,
        caplog: pytest.LogCaptureFixture) -> None:
    """A row that is not a notice of this version (written by another) is that channel's
    defect: dropped as `error`, logged with its traceback; the channel goes on."""
    notifier = Notifier(site_with({"id": "hook", "type": "webhook", "url": receiver.url}), counters, clock, db)
    with db.write() as conn:
        conn.execute(OUTBOX.insert().values(site="kg-1", channel="hook", notice='{"transition": "raised"}',
                                            queued_ms=T0_MS, state="pending"))
    with caplog.at_level(logging.ERROR, logger="gateway.notify.notifier"):
        async with running(notifier):
            notifier.submit(make_notice(id=2))
            await until(lambda: sample(counters, "facility_notifications_sent_total", channel="hook") == 1)
    assert alert_ids(receiver.requests) == [2]
    assert sample(counters, "facility_notifications_dropped_total", channel="hook", reason="error") == 1
    assert [(row.state, row.reason) for row in outbox_rows(db)] == [("dropped", "error"), ("sent", None)]
    [logged] = [r for r in caplog.records if r.exc_info]
    assert "could not read notice" in logged.getMessage()
