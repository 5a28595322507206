"""Scheduled report delivery in-process on a manual clock, to a real SMTP server and a real
HTTP receiver: the daily safety record after closing, the month's energy report and safety
summary on the 1st; nothing twice, a failed channel tried again, nothing from before the
lookback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time as wall
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from gateway import config
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.runtime import Gateway
from gateway.storage.state import sqlite_url
from simulators import DEMO_SITE
from tests.receivers import HttpReceiver, Received, Reply, SmtpReceiver
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")


def site_file(tmp_path: Path, hook: HttpReceiver, smtp: SmtpReceiver, mosquitto: Mosquitto, state_url: str,
              channels: list[dict[str, Any]] | None = None, site_id: str = "delivery-kg") -> config.SiteConfig:
    """The demo site delivering its reports by e-mail and webhook, or to `channels`, with its
    state in `state_url`."""
    data = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    data |= {
        "id": site_id,  # its own topics on the shared broker: the gateway publishes retained ones
        "mqtt": {"url": mosquitto.url, "client_id": site_id},
        "storage": {"data_dir": str(tmp_path / site_id), "state_url": state_url},
        "auth": {"public_read": True},
        "notifications": {"channels": [
            {"id": "office-mail", "type": "email", "host": smtp.host, "port": smtp.port,
             "sender": "gateway@kg.example", "to": ["principal@kg.example"], "min_severity": "critical"},
            # alerts of critical severity only: the devices of an empty database go offline
            {"id": "hook", "type": "webhook", "url": hook.url, "min_severity": "critical"},
        ], "retry_first_s": 0.1},
    }
    data["reports"] |= {"public_url": "http://10.0.0.5:8000"}
    if channels is not None:  # for reports only: no alert is critical in an empty database
        data["notifications"]["channels"] += [c | {"min_severity": "critical"} for c in channels]
        data["reports"]["channels"] = [c["id"] for c in channels]
    path = tmp_path / f"{site_id}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config.load(path)


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    with HttpReceiver() as hook, SmtpReceiver() as smtp:
        yield hook, smtp


def gateway_of(client: TestClient) -> Gateway:
    gw = client.app.state.gateway  # type: ignore[attr-defined]
    assert isinstance(gw, Gateway)
    return gw


def deliver(client: TestClient) -> None:
    """One round of the scheduler, as its minute loop would run it."""
    async def once() -> None:
        async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http:
            await gateway_of(client).deliveries.deliver_due(http)
    client.portal.call(once)  # type: ignore[union-attr]


def test_the_daily_record_goes_out_after_closing_once(tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver],
                                                     mosquitto: Mosquitto, state_url: str) -> None:
    hook, smtp = receivers
    site = site_file(tmp_path, hook, smtp, mosquitto, state_url)
    # Wednesday 2026-11-18: the service building closes last, at 18:00; the record is due 30 min later.
    clock = ManualClock(datetime(2026, 11, 18, 18, 20, tzinfo=TZ))
    with TestClient(create_app(site, clock)) as client:
        deliver(client)
        wall.sleep(0.3)
        assert smtp.mails == []  # not yet: closing plus 30 minutes
        assert hook.requests == []  # not yet: closing plus 30 minutes
        clock.set(datetime(2026, 11, 18, 18, 31, tzinfo=TZ))
        deliver(client)
        deliver(client)  # a second round sends nothing again
        hook.wait(1)
        [mail] = smtp.mails
        assert "2026-11-18" in mail.message["Subject"]
        [pdf] = [p for p in mail.message.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert pdf.get_content().startswith(b"%PDF")
        text = mail.message.get_body()
        assert text is not None
        assert "http://10.0.0.5:8000/api/v1/reports/safety?date=2026-11-18&format=pdf" in text.get_content()
        [request] = hook.requests
        body = request.json()
        assert body["type"] == "report"
        assert body["url"].endswith("/api/v1/reports/safety?date=2026-11-18&format=pdf&lang=zh-CN")
        # the link works
        linked = client.get(body["path"])
        assert linked.status_code == 200
        assert linked.content.startswith(b"%PDF")
        wall.sleep(0.3)
        assert len(smtp.mails) == 1
        assert len(hook.requests) == 1


def test_the_monthly_reports_on_the_first_and_a_failed_channel_is_retried(
        tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver], mosquitto: Mosquitto) -> None:
    # About the channels and the reports, not the state store's engine: on SQLite only (the
    # deliveries' own record is tested on both engines above and below).
    state_url = sqlite_url(tmp_path / "state.db")
    hook, smtp = receivers
    site = site_file(tmp_path, hook, smtp, mosquitto, state_url)
    clock = ManualClock(datetime(2026, 11, 29, 12, 0, tzinfo=TZ))  # a Sunday: nothing falls due
    hook.respond(503, times=2)  # the webhook is down for the first round (two reports)
    with TestClient(create_app(site, clock)) as client:
        deliver(client)
        clock.set(datetime(2026, 12, 1, 8, 5, tzinfo=TZ))  # Tuesday the 1st, after 08:00 (Monday's record too)
        deliver(client)
        subjects = [m.message["Subject"] for m in smtp.mails]
        assert len(subjects) == 3
        assert "2026-11-30" in subjects[0]  # Monday's record, due on Monday evening
        assert sorted("节能" in s for s in subjects[1:]) == [False, True]
        assert all("2026-11" in s for s in subjects)
        hook.wait(3)  # Monday's record and the first try of the other two… of which two failed
        deliver(client)  # the webhook again: now it answers
        hook.wait(5)
        assert sorted(r.json()["path"].split("?")[0] for r in hook.requests[3:]) == [
            "/api/v1/reports/energy", "/api/v1/reports/safety"]
        assert len(smtp.mails) == 3  # e-mail had them already
        metrics = client.get("/metrics").text
        assert 'facility_reports_failed_total{channel="hook"} 2.0' in metrics
        assert 'facility_reports_sent_total{channel="office-mail"} 3.0' in metrics


def test_only_what_fell_due_since_delivery_began_and_not_older_than_two_days(
        tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver], mosquitto: Mosquitto, state_url: str) -> None:
    hook, smtp = receivers
    site = site_file(tmp_path, hook, smtp, mosquitto, state_url)
    clock = ManualClock(datetime(2026, 11, 16, 12, 0, tzinfo=TZ))  # a Monday: installed at noon
    with TestClient(create_app(site, clock)) as client:
        deliveries = gateway_of(client).deliveries

        def due() -> list[tuple[str, str]]:
            return [(d.kind, d.period) for d in deliveries.due(int(clock.now().timestamp() * 1000))]

        assert due() == []  # Friday's record fell due before the installation
        clock.set(datetime(2026, 11, 18, 12, 0, tzinfo=TZ))  # Wednesday noon, nothing delivered yet
        assert due() == [("safety", "2026-11-16"), ("safety", "2026-11-17")]
        clock.set(datetime(2026, 11, 20, 19, 0, tzinfo=TZ))  # Friday 19:00: Wednesday's (due 18:30) is too old
        assert due() == [("safety", "2026-11-19"), ("safety", "2026-11-20")]


def test_two_sites_on_one_database_keep_their_own_deliveries(
        tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver], mosquitto: Mosquitto, state_url: str) -> None:
    hook, smtp = receivers
    ours = site_file(tmp_path, hook, smtp, mosquitto, state_url)
    theirs = site_file(tmp_path, hook, smtp, mosquitto, state_url, site_id="delivery-kg-2")
    clock = ManualClock(datetime(2026, 11, 18, 18, 20, tzinfo=TZ))
    with TestClient(create_app(ours, clock)) as client:
        deliver(client)  # our delivery begins before the record of the 18th is due, theirs after
        clock.set(datetime(2026, 11, 18, 18, 31, tzinfo=TZ))
        deliver(client)
        hook.wait(1)
        with TestClient(create_app(theirs, clock)) as other:
            deliver(other)
            now_ms = int(clock.now().timestamp() * 1000)
            [due] = gateway_of(client).deliveries.due(now_ms)
            assert gateway_of(client).deliveries.delivered(due) == {"office-mail", "hook"}
            assert gateway_of(other).deliveries.due(now_ms) == []
            assert gateway_of(other).deliveries.delivered(due) == set()
            wall.sleep(0.3)
    assert [r.json()["site"] for r in hook.requests] == ["delivery-kg"]
    assert len(smtp.mails) == 1


def test_signed_robots_get_the_report_and_only_an_errcode_0_counts(
        tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver], mosquitto: Mosquitto) -> None:
    state_url = sqlite_url(tmp_path / "state.db")  # about the robots' signatures: SQLite only
    """Report delivery goes through the alerts' channels: DingTalk's 加签 is applied, and a
    robot that answers HTTP 200 with an errcode has not taken the report."""
    secret = "SEC0f3a9c1d7e5b2468ac"

    def robot(request: Received) -> Reply:
        """As DingTalk and WeCom do: 200 with an errcode; DingTalk checks its signature."""
        if request.path == "/wecom":
            return Reply(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
        digest = hmac.new(secret.encode(), f"{request.query.get('timestamp', '')}\n{secret}".encode(),
                          hashlib.sha256).digest()
        if request.query.get("sign") != base64.b64encode(digest).decode():
            return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    _, smtp = receivers
    with HttpReceiver(responder=robot) as robots:
        site = site_file(tmp_path, robots, smtp, mosquitto, state_url, channels=[
            {"id": "ding", "type": "dingtalk", "url": f"{robots.url}/ding?access_token=t", "secret": secret},
            {"id": "ding-wrong", "type": "dingtalk", "url": f"{robots.url}/ding?access_token=t",
             "secret": "SEC-not-the-robots-secret"},
            {"id": "wecom", "type": "wecom", "url": f"{robots.url}/wecom?key=k"},
        ])
        clock = ManualClock(datetime(2026, 11, 18, 18, 20, tzinfo=TZ))
        with TestClient(create_app(site, clock)) as client:
            deliver(client)  # delivery begins
            clock.set(datetime(2026, 11, 18, 18, 31, tzinfo=TZ))  # the record of the 18th is due
            deliver(client)
            robots.wait(3)
            deliveries = gateway_of(client).deliveries
            [due] = deliveries.due(int(clock.now().timestamp() * 1000))
            assert deliveries.delivered(due) == {"ding"}
            metrics = client.get("/metrics").text
            deliver(client)  # the refused ones are tried again, the delivered one is not
            robots.wait(5)
    assert 'facility_reports_sent_total{channel="ding"} 1.0' in metrics
    assert 'facility_reports_failed_total{channel="ding-wrong"} 1.0' in metrics
    assert 'facility_reports_failed_total{channel="wecom"} 1.0' in metrics
    [signed, *_] = [r for r in robots.requests if r.path == "/ding" and r.query["sign"]]
    assert signed.query["access_token"] == "t"
    text = signed.json()["text"]["content"]
    assert "2026-11-18" in text
    assert "http://10.0.0.5:8000/api/v1/reports/safety?date=2026-11-18&format=pdf" in text
    assert sum(r.path == "/ding" for r in robots.requests) == 3  # ding once, ding-wrong twice
