"""Notification channels: a generic JSON webhook, e-mail over SMTP, the WeCom (企业微信) and
DingTalk (钉钉) group robots, and MQTT (each alert's state retained on
`facility/<site>/alerts/<rule>/<device_id>`).

Each channel has its own bounded queue and worker: a slow or failing channel retries with
capped, jittered backoff and, when its queue is full, drops its oldest notice (counted), so
it never slows ingest or another channel.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol
from zoneinfo import ZoneInfo

import httpx
from prometheus_client import Counter, Gauge

from gateway.alerting.alerts import Alert, Notice, Transition
from gateway.clock import Clock, from_ms, to_ms
from gateway.config.notifications import (
    Channel,
    DingtalkChannel,
    EmailChannel,
    MqttChannel,
    WebhookChannel,
    WecomChannel,
)
from gateway.config.severity import Severity
from gateway.counters import Counters
from gateway.retry import Backoff

if TYPE_CHECKING:
    from gateway.config import SiteConfig


















# ------------------------------------------------------------------------ the dispatcher

_log = logging.getLogger(__name__)

HTTP_TIMEOUT_S: Final = 10.0
SMTP_TIMEOUT_S: Final = 10.0
WECOM_MAX_BYTES: Final = 2048  # the robot refuses longer text content
DINGTALK_MAX_BYTES: Final = 20_000
DROP_REASONS: Final = ("queue_full", "gave_up", "refused", "error")

SEVERITY_ZH: Final = {
    Severity.CRITICAL: "严重",
    Severity.MAJOR: "重要",
    Severity.MINOR: "一般",
    Severity.WARNING: "提示",
}
TRANSITION_ZH: Final = {
    Transition.RAISED: "告警",
    Transition.REPEATED: "再次发生",
    Transition.REMINDER: "提醒(未确认)",
    Transition.ESCALATED: "升级",
    Transition.ACKNOWLEDGED: "已确认",
    Transition.CLEARED: "已恢复",
}
# WeCom: 45009 API rate limit, -1 system busy. DingTalk: 130101 sending too fast, -1 busy.
WECOM_TRANSIENT: Final = frozenset({45009, -1})
DINGTALK_TRANSIENT: Final = frozenset({130101, -1})

Publish = Callable[[str, bytes], Awaitable[None]]
"""Publishes retained at QoS 1 on the gateway's MQTT connection and returns once the broker
has taken it; raises `PermissionError` when the broker refuses it for good (then the notice
is dropped) and another `OSError` when it was not taken or it cannot tell (then it is retried)."""


class DeliveryError(Exception):
    """A send that failed: `transient` ones are retried with backoff, the others dropped. A
    `defect` is the gateway's own failure to make or send the message (its cause has the
    traceback), never retried."""

    def __init__(self, reason: str, *, transient: bool, defect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.defect = defect


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel sends, an alert's notice or a report alike, in every channel's terms:
    e-mail takes the headline as its subject and the text as its body, the robots the text,
    the webhook and MQTT the JSON document."""

    headline: str  # 【严重】厨房门 在闭园时段开着 (one line: it becomes an e-mail Subject)
    text: str  # the headline, then the details, one per line
    document: dict[str, Any]
    topic: str | None = None  # where MQTT keeps it retained; None: not for MQTT
    emails: tuple[str, ...] = ()  # addressees beside the channel's own (the person on duty)
    mobiles: tuple[str, ...] = ()  # whom the robots mention
    attachment: Attachment | None = None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with every run of control characters (line breaks included) as one space: what
    goes into a title or a header never breaks it, whatever a device or a site file said."""
    return _CONTROL.sub(" ", text).strip()


def _headline_and_text(notice: Notice, site: SiteConfig) -> tuple[str, str]:
    """The Chinese text of a notice, as every text channel sends it."""
    alert = notice.alert
    severity = SEVERITY_ZH[alert.severity]
    tag = severity if notice.transition is Transition.RAISED else f"{severity}·{TRANSITION_ZH[notice.transition]}"
    headline = one_line(f"【{tag}】{alert.title_zh}")
    event = TRANSITION_ZH[notice.transition]
    if notice.transition is Transition.ACKNOWLEDGED:
        people = {p.id: p.name for p in site.duty.people}
        who = people.get(alert.acked_by, alert.acked_by) if alert.acked_by else "?"
        event += f" ({who}: {alert.ack_comment})" if alert.ack_comment else f" ({who})"
    building = next((b for b in site.buildings if b.id == alert.building_id), None)
    room = next((r for b in site.buildings for r in b.rooms if r.id == alert.room_id), None)
    place = f"{building.name if building else alert.building_id} {room.name if room else alert.room_id}"
    lines = [headline]
    if alert.detail_zh:
        lines.append(alert.detail_zh)
    lines += [
        f"事件: {event}",
        f"位置: {place}",
        f"时间: {_local(notice.at_ms, site.tz)}",
        f"首次: {_local(alert.first_ms, site.tz)}, 共 {alert.count} 次",
    ]
    if notice.recipients:
        lines.append("值班: " + "、".join(p.name for p in notice.recipients))
    return headline, "\n".join(lines)


def render(notice: Notice, site: SiteConfig) -> Message:
    """A notice as every channel sends it."""
    headline, text = _headline_and_text(notice, site)
    alert = notice.alert
    body: dict[str, Any] = {}
    for f in fields(alert):
        value = getattr(alert, f.name)
        body[f.name] = value.value if isinstance(value, StrEnum) else dict(value) if isinstance(value, dict) else value
        if f.name.endswith("_ms"):
            body[f.name.removesuffix("_ms") + "_at"] = None if value is None else _iso(value, site.tz)
    document: dict[str, Any] = {
        "site": site.id,
        "transition": notice.transition.value,
        "at": _iso(notice.at_ms, site.tz),
        "alert": body,
        "recipients": [
            {"id": p.id, "name": p.name, "role": p.role, "email": p.email, "mobile": p.mobile}
            for p in notice.recipients
        ],
        "text": text,
    }
    return Message(
        headline, text, document, topic=alert_topic(site.id, alert),
        emails=tuple(p.email for p in notice.recipients if p.email),
        mobiles=tuple(p.mobile for p in notice.recipients if p.mobile),
    )


def alert_topic(site_id: str, alert: Alert) -> str:
    return f"facility/{site_id}/alerts/{alert.rule}/{alert.device_id}"


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with DingTalk's 加签 parameters appended."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign}"


def _local(ms: int, tz: ZoneInfo) -> str:
    return from_ms(ms, tz).strftime("%Y-%m-%d %H:%M")


def _iso(ms: int, tz: ZoneInfo) -> str:
    return from_ms(ms, tz).isoformat(timespec="milliseconds")


def _truncate(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - len("…".encode())].decode(errors="ignore") + "…"


# ------------------------------------------------------------------------ senders


class Sender(Protocol):
    """One channel's way of sending, used by alert notices and report delivery alike."""

    async def send(self, message: Message) -> bool:
        """Delivers a message once the receiver acknowledged it (False: there was no one to
        deliver it to); raises `DeliveryError` when it could not."""
        ...


async def post_json(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False).encode()
    try:
        response = await client.post(
            url, content=content, headers={"content-type": "application/json; charset=utf-8", **(headers or {})}
        )
    except httpx.TimeoutException:
        raise DeliveryError("timeout", transient=True) from None
    except httpx.TransportError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:200], transient=True) from None
    status = response.status_code
    if status in (408, 429) or status >= 500:
        raise DeliveryError(f"HTTP {status}", transient=True)
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}", transient=False)
    return response


def _errcode(response: httpx.Response, transient_codes: frozenset[int]) -> None:
    """Checks a WeCom or DingTalk robot's answer, `{"errcode": 0, "errmsg": "ok"}`: only that
    is a delivery (the robots answer HTTP 200 to a refused message too)."""
    try:
        answer = response.json()
        code = int(answer["errcode"])
    except (ValueError, KeyError, TypeError):
        raise DeliveryError(f"unexpected answer: {response.text[:80]!r}", transient=False) from None
    if code != 0:
        message = str(answer.get("errmsg", ""))[:80]
        raise DeliveryError(f"errcode {code} {message}".strip(), transient=code in transient_codes)


def _send_mail(c: EmailChannel, mail: EmailMessage, addresses: list[str]) -> None:
    """Sends over SMTP (blocking); `DeliveryError` when it cannot."""
    try:
        with smtplib.SMTP(c.host, c.port, timeout=SMTP_TIMEOUT_S) as smtp:
            if c.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if c.username is not None:
                smtp.login(c.username, c.password.get_secret_value() if c.password else "")
            smtp.send_message(mail, from_addr=c.sender, to_addrs=addresses)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(f"SMTP {min(codes)}: recipients refused",
                            transient=any(code < 500 for code in codes)) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code}", transient=exc.smtp_code < 500) from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError("SMTP server does not support STARTTLS or AUTH", transient=False) from None
    except (smtplib.SMTPException, OSError) as exc:  # SMTPException is an OSError: disconnects, timeouts
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:200], transient=True) from None


@dataclass
class _WebhookSender:
    channel: WebhookChannel
    client: httpx.AsyncClient

    async def send(self, message: Message) -> bool:
        await post_json(self.client, self.channel.url, message.document, self.channel.headers)
        return True


@dataclass
class _WecomSender:
    channel: WecomChannel
    client: httpx.AsyncClient

    async def send(self, message: Message) -> bool:
        text: dict[str, Any] = {"content": _truncate(message.text, WECOM_MAX_BYTES)}
        if self.channel.mention_duty and message.mobiles:
            text["mentioned_mobile_list"] = list(message.mobiles)
        response = await post_json(self.client, self.channel.url, {"msgtype": "text", "text": text})
        _errcode(response, WECOM_TRANSIENT)
        return True


@dataclass
class _DingtalkSender:
    channel: DingtalkChannel
    client: httpx.AsyncClient
    clock: Clock

    async def send(self, message: Message) -> bool:
        mobiles = list(message.mobiles) if self.channel.mention_duty else []
        content = message.text
        if mobiles:  # the robot only mentions whom the text also names
            content += "\n" + " ".join(f"@{m}" for m in mobiles)
        body = {
            "msgtype": "text",
            "text": {"content": _truncate(content, DINGTALK_MAX_BYTES)},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }
        url = self.channel.url
        if self.channel.secret is not None:
            now_ms = to_ms(self.clock.now())
            url = dingtalk_signed_url(url, self.channel.secret.get_secret_value(), now_ms)
        response = await post_json(self.client, url, body)
        _errcode(response, DINGTALK_TRANSIENT)
        return True


@dataclass
class _EmailSender:
    channel: EmailChannel
    clock: Clock

    async def send(self, message: Message) -> bool:
        duty = list(message.emails) if self.channel.to_duty else []
        addresses = list(dict.fromkeys([*self.channel.to, *duty]))
        if not addresses:
            return False
        mail = EmailMessage()
        mail["Subject"] = one_line(message.headline)
        mail["From"] = self.channel.sender
        mail["To"] = ", ".join(addresses)
        mail["Date"] = email.utils.format_datetime(self.clock.now())
        mail["Message-ID"] = email.utils.make_msgid(domain="facility-gateway")
        mail.set_content(message.text)
        if message.attachment is not None:
            maintype, subtype = message.attachment.mime.split("/")
            mail.add_attachment(message.attachment.content, maintype=maintype, subtype=subtype,
                                filename=message.attachment.filename)
        await asyncio.to_thread(_send_mail, self.channel, mail, addresses)
        return True


@dataclass
class _MqttSender:
    publish: Publish

    async def send(self, message: Message) -> bool:
        if message.topic is None:
            return False
        # No phone numbers or e-mail addresses on the broker.
        document = {k: v for k, v in message.document.items() if k != "recipients"}
        try:
            await self.publish(message.topic, json.dumps(document, ensure_ascii=False).encode())
        except PermissionError as exc:  # e.g. not authorized by the broker's ACL (MQTT 5)
            raise DeliveryError(f"publish refused: {exc}"[:200], transient=False) from None
        except OSError as exc:
            raise DeliveryError(f"publish: {exc}"[:200], transient=True) from None
        return True


async def attempt(channel: Sender, make: Callable[[], Message]) -> bool:
    """One delivery attempt of the message `make` builds, for alerts and reports alike:
    `send`'s answer, or `DeliveryError`, a defect in making or sending the message included
    (a text, a library's refusal: the channel's failure, never its caller's)."""
    try:
        return await channel.send(make())
    except DeliveryError:
        raise
    except Exception as exc:  # whatever goes wrong in one channel stays that channel's
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:200], transient=False, defect=True) from exc


def sender(channel: Channel, client: httpx.AsyncClient, clock: Clock, publish: Publish | None) -> Sender:
    """The sender of a configured channel."""
    if isinstance(channel, WebhookChannel):
        return _WebhookSender(channel, client)
    if isinstance(channel, WecomChannel):
        return _WecomSender(channel, client)
    if isinstance(channel, DingtalkChannel):
        return _DingtalkSender(channel, client, clock)
    if isinstance(channel, EmailChannel):
        return _EmailSender(channel, clock)
    if publish is None:
        raise ValueError(f"the mqtt notification channel {channel.id!r} needs the gateway's MQTT connection")
    return _MqttSender(publish)


# ------------------------------------------------------------------------ the notifier


@dataclass(frozen=True, slots=True)
class _Queued:
    notice: Notice
    queued_at: datetime  # by the injected clock: the give-up age counts from here


class _Metrics:
    def __init__(self, counters: Counters) -> None:
        r = counters.registry
        self.sent = Counter("facility_notifications_sent", "Notices delivered, by channel", ["channel"], registry=r)
        self.failed = Counter("facility_notifications_failed", "Delivery attempts that failed, by channel",
                              ["channel"], registry=r)
        self.dropped = Counter(
            "facility_notifications_dropped", "Notices never delivered, by channel and reason (queue_full: the "
            "oldest in a full queue; gave_up: still failing after give_up_after_h; refused: refused for good; error: "
            "the gateway could not make or send it, a defect logged with its traceback)",
            ["channel", "reason"], registry=r,
        )
        self.queued = Gauge("facility_notifications_queued", "Notices waiting, by channel", ["channel"], registry=r)


class _ChannelWorker:
    """One channel's queue (bounded; when full, the oldest notice is dropped) and its
    delivery loop, which retries the notice at its head until delivered, refused or stale."""

    def __init__(self, channel: Channel, site: SiteConfig, metrics: _Metrics, clock: Clock) -> None:
        self.channel = channel
        self._site = site
        self._settings = site.notifications
        self._clock = clock
        self._queue: deque[_Queued] = deque()
        self._ready = asyncio.Event()
        self._failing: str | None = None
        self._failed_attempts = 0
        cid = channel.id
        self._sent = metrics.sent.labels(channel=cid)
        self._failed = metrics.failed.labels(channel=cid)
        self._dropped = {why: metrics.dropped.labels(channel=cid, reason=why) for why in DROP_REASONS}
        self._queued = metrics.queued.labels(channel=cid)

    def matches(self, notice: Notice) -> bool:
        c, alert = self.channel, notice.alert
        return (
            alert.severity.rank >= c.min_severity.rank
            and (c.rules is None or alert.rule in c.rules)
            and (c.buildings is None or alert.building_id in c.buildings)
        )

    def put(self, notice: Notice) -> None:
        if len(self._queue) >= self.channel.queue:
            oldest = self._queue.popleft()
            self._dropped["queue_full"].inc()
            _log.debug("notification channel %s: queue full, dropped alert %d %s", self.channel.id,
                       oldest.notice.alert.id, oldest.notice.transition)
        self._queue.append(_Queued(notice, self._clock.now()))
        self._queued.set(len(self._queue))
        self._ready.set()

    def health(self) -> str:
        return "ok" if self._failing is None else f"failing: {self._failing}"

    async def run(self, sender: Sender) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            item = self._queue.popleft()
            self._queued.set(len(self._queue))
            await self._deliver(sender, item)

    async def _deliver(self, sender: Sender, item: _Queued) -> None:
        notice, cid = item.notice, self.channel.id
        give_up_after = timedelta(hours=self._settings.give_up_after_h)
        backoff = Backoff(self._settings.retry_first_s, self._settings.retry_max_s)
        while True:
            try:
                delivered = await attempt(sender, lambda: render(notice, self._site))
            except DeliveryError as exc:
                self._failed.inc()
                if exc.defect and self._failing is None:
                    _log.error("notification channel %s could not send alert %d (%s)", cid, notice.alert.id,
                               notice.transition, exc_info=exc.__cause__)
                self._set_failing(exc.reason)
                if not exc.transient:
                    self._dropped["error" if exc.defect else "refused"].inc()
                    _log.warning("notification channel %s refused alert %d (%s): %s; dropped", cid,
                                 notice.alert.id, notice.transition, exc.reason)
                    return
                age = self._clock.now() - item.queued_at
                if age >= give_up_after:
                    self._dropped["gave_up"].inc()
                    _log.warning("notification channel %s: gave up on alert %d (%s) after %s: %s", cid,
                                 notice.alert.id, notice.transition, age, exc.reason)
                    return
                await backoff.wait()
                continue
            if delivered:
                self._sent.inc()
            else:
                _log.debug("notification channel %s: no addressee for alert %d", cid, notice.alert.id)
            self._set_ok()
            return

    def _set_failing(self, reason: str) -> None:
        if self._failing is None:
            _log.warning("notification channel %s failing: %s", self.channel.id, reason)
        self._failing = reason
        self._failed_attempts += 1

    def _set_ok(self) -> None:
        if self._failing is not None:
            _log.info("notification channel %s recovered after %d failed attempts", self.channel.id,
                         self._failed_attempts)
        self._failing = None
        self._failed_attempts = 0


class Notifier:
    """Routes each notice to the channels whose filters match and delivers it in the
    background, one worker per channel; `submit` never blocks and never fails for a channel."""

    def __init__(self, site: SiteConfig, counters: Counters, clock: Clock, publish: Publish | None = None) -> None:
        settings = site.notifications
        if publish is None and any(isinstance(c, MqttChannel) for c in settings.channels):
            raise ValueError("an mqtt notification channel is configured but no publish function was given")
        self._clock = clock
        self._publish = publish
        metrics = _Metrics(counters)
        self._workers = [_ChannelWorker(c, site, metrics, clock) for c in settings.channels]

    def submit(self, notice: Notice) -> None:
        """Queues the notice for every matching channel. Event-loop thread only."""
        for worker in self._workers:
            if worker.matches(notice):
                worker.put(notice)

    def health(self) -> dict[str, str]:
        """Channel id → "ok" or "failing: <reason>" (of the newest failed attempt)."""
        return {w.channel.id: w.health() for w in self._workers}

    async def run(self) -> None:
        """Delivers until cancelled."""
        timeout = httpx.Timeout(HTTP_TIMEOUT_S)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client, asyncio.TaskGroup() as group:
            for worker in self._workers:
                channel_sender = sender(worker.channel, client, self._clock, self._publish)
                group.create_task(worker.run(channel_sender), name=f"notify-{worker.channel.id}")
            if not self._workers:
                await asyncio.Event().wait()  # nothing to deliver; still "runs until cancelled"
