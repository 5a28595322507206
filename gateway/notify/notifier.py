"""The alerts' notifier: routes each notice to the channels whose filters match and delivers
it in the background. Each channel has its own bounded queue and worker: a slow or failing
channel retries with capped, jittered backoff and, when its queue is full, drops its oldest
notice (counted), so it never slows ingest or another channel."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from prometheus_client import Counter, Gauge

from gateway.alerting.alerts import Alert, Notice, Transition
from gateway.clock import Clock, from_ms
from gateway.config import SiteConfig
from gateway.counters import Counters
from gateway.notify.channels import sender
from gateway.notify.message import (
    HTTP_TIMEOUT_S,
    ChannelSettings,
    Context,
    DeliveryError,
    Message,
    Publish,
    Sender,
    attempt,
    one_line,
)
from gateway.retry import Backoff

_log = logging.getLogger(__name__)
DROP_REASONS: Final = ("queue_full", "gave_up", "refused", "error")

TRANSITION_ZH: Final = {
    Transition.RAISED: "告警",
    Transition.UPDATED: "数据更新",
    Transition.REPEATED: "再次发生",
    Transition.REMINDER: "提醒(未确认)",
    Transition.ESCALATED: "升级",
    Transition.ACKNOWLEDGED: "已确认",
    Transition.CLEARED: "已恢复",
}

def _headline_and_text(notice: Notice, site: SiteConfig) -> tuple[str, str]:
    """The Chinese text of a notice, as every text channel sends it."""
    alert = notice.alert
    severity = alert.severity.words[0]
    tag = severity if notice.transition is Transition.RAISED else f"{severity}·{TRANSITION_ZH[notice.transition]}"
    headline = one_line(f"【{tag}】{alert.title_zh}")
    event = TRANSITION_ZH[notice.transition]
    if notice.transition is Transition.ACKNOWLEDGED:
        people = {p.id: p.name for p in site.duty.people}
        who = people.get(alert.acked_by, alert.acked_by) if alert.acked_by else "?"
        event += f" ({who}: {alert.ack_comment})" if alert.ack_comment else f" ({who})"
    building = next((b for b in site.buildings if b.id == alert.building_id), None)
    room = next((r for b in site.buildings for r in b.rooms if r.id == alert.room_id), None)
    place = (f"{building.name if building else alert.building_id} {room.name if room else alert.room_id}"
             if alert.building_id else site.name)  # a finding about no device is the whole site's
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


def test_message(site: SiteConfig, channel: ChannelSettings) -> Message:
    """What "send a test message" sends: it says where it comes from and that nothing is wrong.
    For MQTT it is kept on `facility/<site>/alerts/test`, beside the alert states (which are
    `…/alerts/<rule>/<device>`), where the broker's ACL lets the gateway write."""
    headline = f"【测试】{site.name}的通知渠道「{channel.id}」可以收到消息"
    text = f"{headline}\n这是一条测试消息，不是告警，无需处理。\nA test message from {site.name}: nothing is wrong."
    document = {"site": site.id, "test": True, "channel": channel.id, "text": text}
    return Message(headline, text, document, topic=f"facility/{site.id}/alerts/test")


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


def _local(ms: int, tz: ZoneInfo) -> str:
    return from_ms(ms, tz).strftime("%Y-%m-%d %H:%M")


def _iso(ms: int, tz: ZoneInfo) -> str:
    return from_ms(ms, tz).isoformat(timespec="milliseconds")


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

    def __init__(self, channel: ChannelSettings, site: SiteConfig, metrics: _Metrics, clock: Clock) -> None:
        self.channel = channel
        self._site = site
        self._settings = site.notifications
        self._clock = clock
        self._queue: deque[_Queued] = deque()
        self._current: _Queued | None = None  # the notice being delivered (retried)
        self._ready = asyncio.Event()
        self._failing: str | None = None
        self._failed_attempts = 0
        cid = channel.id
        self._sent = metrics.sent.labels(channel=cid)
        self._failed = metrics.failed.labels(channel=cid)
        self._dropped = {why: metrics.dropped.labels(channel=cid, reason=why) for why in DROP_REASONS}
        self._queued = metrics.queued.labels(channel=cid)

    def reconfigure(self, site: SiteConfig) -> None:
        """The site's names and retry policy as they are now (the channel itself unchanged)."""
        self._site = site
        self._settings = site.notifications

    def take_queue(self, old: _ChannelWorker) -> None:
        """What a channel's previous settings had still to send, the notice it was trying
        included, sent with the new ones (the old worker stops)."""
        if old._current is not None:
            self._queue.append(old._current)
            old._current = None
        self._queue.extend(old._queue)
        old._queue.clear()
        self._queued.set(len(self._queue))
        if self._queue:
            self._ready.set()

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
            item = self._current = self._queue.popleft()
            self._queued.set(len(self._queue))
            await self._deliver(sender, item)
            self._current = None

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
        # One HTTP client for every channel; it binds to the event loop only when first used.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(HTTP_TIMEOUT_S), follow_redirects=False)
        self._context = Context(self._client, clock, publish)
        self._metrics = _Metrics(counters)
        self._clock = clock
        self._site = site
        self._workers: list[tuple[_ChannelWorker, Sender]] = []
        self._tasks: dict[_ChannelWorker, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        """The channels as configured now. A channel whose settings did not change keeps its
        queue and its delivery in progress; a changed one starts afresh with what the old one had
        queued, a removed one stops. Senders are made here, so that a channel that
        cannot work (MQTT without a connection) fails at once, before anything changes."""
        kept = {w.channel.id: (w, s) for w, s in self._workers}
        workers: list[tuple[_ChannelWorker, Sender]] = []
        for c in site.notifications.channels:
            old = kept.get(c.id)
            if old is not None and old[0].channel == c:
                old[0].reconfigure(site)
                workers.append(old)
                continue
            worker = _ChannelWorker(c, site, self._metrics, self._clock)
            if old is not None:
                worker.take_queue(old[0])
            workers.append((worker, sender(c, self._context)))
        self._site, self._workers = site, workers
        if self._group is not None:
            self._start_workers(self._group)

    def _start_workers(self, group: asyncio.TaskGroup) -> None:
        live = {w for w, _ in self._workers}
        for worker, task in list(self._tasks.items()):
            if worker not in live:
                task.cancel()
                del self._tasks[worker]
        for worker, channel_sender in self._workers:
            if worker not in self._tasks:
                self._tasks[worker] = group.create_task(worker.run(channel_sender), name=f"notify-{worker.channel.id}")

    async def test(self, channel: ChannelSettings) -> str | None:
        """Sends one test message through `channel` (saved or not) at once, without retrying:
        None when it was delivered, else why not."""
        try:
            await attempt(sender(channel, self._context), lambda: test_message(self._site, channel))
        except DeliveryError as exc:
            return exc.reason
        return None

    def submit(self, notice: Notice) -> None:
        """Queues the notice for every matching channel. Event-loop thread only."""
        for worker, _ in self._workers:
            if worker.matches(notice):
                worker.put(notice)

    def health(self) -> dict[str, str]:
        """Channel id → "ok" or "failing: <reason>" (of the newest failed attempt)."""
        return {w.channel.id: w.health() for w, _ in self._workers}

    async def run(self) -> None:
        """Delivers until cancelled."""
        async with self._client, asyncio.TaskGroup() as group:
            self._group = group
            try:
                self._start_workers(group)
                await asyncio.Event().wait()  # channels come and go (reconfigure); runs until cancelled
            finally:
                self._group = None
