"""The alerts' notifier: routes each notice to the channels whose filters match and delivers
it in the background. Each channel has its own bounded queue, in the outbox of the state store
(`outbox.py`: a restart or a standby taking the site over sends what was left), and its own
worker: a slow or failing channel retries with capped, jittered backoff and, when its queue is
full, drops its oldest notice (counted), so it never slows ingest or another channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from prometheus_client import Counter, Gauge

from gateway.alerting.alerts import Alert, Notice, Transition, notice_from_json
from gateway.clock import Clock, from_ms, to_ms
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
from gateway.notify.outbox import KEEP_MS, Bound, Outbox, Pending
from gateway.retry import Backoff
from gateway.storage.state import StateDatabase

_log = logging.getLogger(__name__)
DROP_REASONS: Final = ("queue_full", "gave_up", "refused", "error", "removed")
PRUNE_EVERY_MS: Final = 3_600_000
# A stop lets an attempt on the wire finish, so a notice the addressee got is recorded as sent
# and not sent again by the next process (bounded: a hanging channel does not hold the stop).
STOP_GRACE_S: Final = 2.0

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


class _Metrics:
    def __init__(self, counters: Counters) -> None:
        r = counters.registry
        self.sent = Counter("facility_notifications_sent", "Notices delivered, by channel", ["channel"], registry=r)
        self.failed = Counter("facility_notifications_failed", "Delivery attempts that failed, by channel",
                              ["channel"], registry=r)
        self.dropped = Counter(
            "facility_notifications_dropped", "Notices never delivered, by channel and reason (queue_full: the "
            "oldest in a full queue; gave_up: still failing after give_up_after_h; refused: refused for good; error: "
            "the gateway could not make or send it, a defect logged with its traceback; removed: its channel was "
            "removed before it was sent)",
            ["channel", "reason"], registry=r,
        )
        self.queued = Gauge("facility_notifications_queued", "Notices waiting, by channel (besides the one being "
                            "delivered)", ["channel"], registry=r)


class _ChannelWorker:
    """One channel's delivery loop: it takes the channel's oldest pending notice from the
    outbox and retries it until delivered, refused or stale."""

    def __init__(self, channel: ChannelSettings, site: SiteConfig, metrics: _Metrics, clock: Clock,
                 outbox: Outbox, housekeeping: Callable[[], None]) -> None:
        self.channel = channel
        self._site = site
        self._settings = site.notifications
        self._clock = clock
        self._outbox = outbox
        self._housekeeping = housekeeping
        self.busy: int | None = None  # the outbox row being delivered (retried)
        self._ready = asyncio.Event()
        self._failing: str | None = None
        self._failed_attempts = 0
        cid = channel.id
        self._sent = metrics.sent.labels(channel=cid)
        self._failed = metrics.failed.labels(channel=cid)
        self._dropped = {why: metrics.dropped.labels(channel=cid, reason=why) for why in DROP_REASONS}
        self._queued = metrics.queued.labels(channel=cid)
        self._queued.set(outbox.waiting(cid, None))

    def reconfigure(self, site: SiteConfig) -> None:
        """The site's names and retry policy as they are now (the channel itself unchanged)."""
        self._site = site
        self._settings = site.notifications

    def matches(self, notice: Notice) -> bool:
        c, alert = self.channel, notice.alert
        return (
            alert.severity.rank >= c.min_severity.rank
            and (c.rules is None or alert.rule in c.rules)
            and (c.buildings is None or alert.building_id in c.buildings)
        )

    def added(self, notice: Notice, waiting: int, dropped: int) -> None:
        """The notice is in the outbox for this channel, and `dropped` of the oldest are not."""
        if dropped:
            self._dropped["queue_full"].inc(dropped)
            _log.debug("notification channel %s: queue full, dropped the oldest %d before alert %d %s",
                       self.channel.id, dropped, notice.alert.id, notice.transition)
        self._queued.set(waiting)
        self._ready.set()

    def health(self) -> str:
        return "ok" if self._failing is None else f"failing: {self._failing}"

    async def run(self, sender: Sender) -> None:
        cid = self.channel.id
        while True:
            self._housekeeping()
            self._ready.clear()  # set again by any notice added from here on
            pending = self._outbox.next(cid)
            if pending is None:
                self._queued.set(0)
                await self._ready.wait()
                continue
            self.busy = pending.id
            self._queued.set(self._outbox.waiting(cid, pending.id))
            try:
                await self._deliver(sender, pending)
            finally:
                self.busy = None

    async def _deliver(self, sender: Sender, pending: Pending) -> None:
        cid = self.channel.id
        try:
            notice = notice_from_json(pending.notice)
        except ValueError:
            self._drop(pending, "error")
            _log.exception("notification channel %s could not read notice %d; dropped", cid, pending.id)
            return
        key = f"{self._site.id}.notice.{pending.id}"  # the same for every attempt, before and after a restart
        give_up_after_ms = self._settings.give_up_after_h * 3_600_000
        backoff = Backoff(self._settings.retry_first_s, self._settings.retry_max_s)
        while True:
            trying = asyncio.ensure_future(attempt(sender, lambda: replace(render(notice, self._site), key=key)))
            try:
                delivered = await asyncio.shield(trying)
            except asyncio.CancelledError:
                await self._finish_on_stop(trying, pending)
                raise
            except DeliveryError as exc:
                self._failed.inc()
                self._outbox.failed(pending.id, exc.reason)
                if exc.defect and self._failing is None:
                    _log.error("notification channel %s could not send alert %d (%s)", cid, notice.alert.id,
                               notice.transition, exc_info=exc.__cause__)
                self._set_failing(exc.reason)
                if not exc.transient:
                    self._drop(pending, "error" if exc.defect else "refused")
                    _log.warning("notification channel %s refused alert %d (%s): %s; dropped", cid,
                                 notice.alert.id, notice.transition, exc.reason)
                    return
                age_ms = to_ms(self._clock.now()) - pending.queued_ms
                if age_ms >= give_up_after_ms:
                    self._drop(pending, "gave_up")
                    _log.warning("notification channel %s: gave up on alert %d (%s) after %s: %s", cid,
                                 notice.alert.id, notice.transition, timedelta(milliseconds=age_ms), exc.reason)
                    return
                await backoff.wait()
                continue
            self._outbox.sent(pending.id, to_ms(self._clock.now()))
            if delivered:
                self._sent.inc()
            else:
                _log.debug("notification channel %s: no addressee for alert %d", cid, notice.alert.id)
            self._set_ok()
            return

    async def _finish_on_stop(self, trying: asyncio.Future[bool], pending: Pending) -> None:
        """Stopping: the attempt under way gets `STOP_GRACE_S` to finish; delivered, it is recorded."""
        await asyncio.wait({trying}, timeout=STOP_GRACE_S)
        if not trying.done():
            trying.cancel()
        elif not trying.cancelled() and trying.exception() is None:
            self._outbox.sent(pending.id, to_ms(self._clock.now()))
            self._sent.inc()

    def _drop(self, pending: Pending, reason: str) -> None:
        self._outbox.drop(pending.id, to_ms(self._clock.now()), reason)
        self._dropped[reason].inc()

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
    background, one worker per channel, through the site's outbox in the state store `db`:
    what is pending when the notifier starts (left by a restart, or by the replica whose site
    this one took over) is sent then. `submit` never waits for a channel and never fails for one."""

    def __init__(self, site: SiteConfig, counters: Counters, clock: Clock, db: StateDatabase,
                 publish: Publish | None = None) -> None:
        # One HTTP client for every channel; it binds to the event loop only when first used.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(HTTP_TIMEOUT_S), follow_redirects=False)
        self._context = Context(self._client, clock, publish)
        self._metrics = _Metrics(counters)
        self._clock = clock
        self._outbox = Outbox(db, site.id)
        self._pruned_ms: int | None = None
        self._site = site
        self._workers: list[tuple[_ChannelWorker, Sender]] = []
        self._tasks: dict[_ChannelWorker, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        """The channels as configured now. A channel whose settings did not change keeps its
        delivery in progress; a changed one delivers what it had pending with its new settings;
        what a removed one had pending is dropped (`removed`). Senders are made here, so that a
        channel that cannot work (MQTT without a connection) fails at once, before anything
        changes."""
        kept = {w.channel.id: (w, s) for w, s in self._workers}
        workers: list[tuple[_ChannelWorker, Sender]] = []
        for c in site.notifications.channels:
            old = kept.get(c.id)
            if old is not None and old[0].channel == c:
                old[0].reconfigure(site)
                workers.append(old)
                continue
            worker = _ChannelWorker(c, site, self._metrics, self._clock, self._outbox, self._housekeeping)
            workers.append((worker, sender(c, self._context)))
        self._site, self._workers = site, workers
        if self._group is not None:
            self._start_workers(self._group)

    def _start_workers(self, group: asyncio.TaskGroup) -> None:
        """Stops the workers of channels changed or removed, drops what the removed ones had
        pending and starts the new ones."""
        live = {w for w, _ in self._workers}
        for worker, task in list(self._tasks.items()):
            if worker not in live:
                task.cancel()
                del self._tasks[worker]
        removed = self._outbox.drop_unconfigured([w.channel.id for w in live], to_ms(self._clock.now()))
        for cid, n in removed.items():
            self._metrics.dropped.labels(channel=cid, reason="removed").inc(n)
            self._metrics.queued.labels(channel=cid).set(0)
            _log.warning("notification channel %s was removed: %d notices it had still to send are dropped", cid, n)
        for worker, channel_sender in self._workers:
            if worker not in self._tasks:
                self._tasks[worker] = group.create_task(worker.run(channel_sender), name=f"notify-{worker.channel.id}")

    def _housekeeping(self) -> None:
        """Forgets notices done more than `KEEP_MS` ago, at most once every `PRUNE_EVERY_MS`."""
        now_ms = to_ms(self._clock.now())
        if self._pruned_ms is None or now_ms - self._pruned_ms >= PRUNE_EVERY_MS:
            self._pruned_ms = now_ms
            self._outbox.prune(now_ms - KEEP_MS)

    async def test(self, channel: ChannelSettings) -> str | None:
        """Sends one test message through `channel` (saved or not) at once, without retrying:
        None when it was delivered, else why not."""
        try:
            await attempt(sender(channel, self._context), lambda: test_message(self._site, channel))
        except DeliveryError as exc:
            return exc.reason
        return None

    def submit(self, notice: Notice) -> None:
        """Queues the notice for every matching channel, in one transaction. Event-loop thread only."""
        workers = [w for w, _ in self._workers if w.matches(notice)]
        if not workers:
            return
        bounds = {w.channel.id: Bound(w.channel.queue, w.busy) for w in workers}
        added = self._outbox.add(notice, bounds, to_ms(self._clock.now()))
        for worker in workers:
            outcome = added[worker.channel.id]
            worker.added(notice, outcome.waiting, outcome.dropped)

    def health(self) -> dict[str, str]:
        """Channel id → "ok" or "failing: <reason>" (of the newest failed attempt)."""
        return {w.channel.id: w.health() for w, _ in self._workers}

    async def run(self) -> None:
        """Delivers until cancelled, beginning with what the outbox holds."""
        async with self._client, asyncio.TaskGroup() as group:
            self._group = group
            try:
                self._start_workers(group)
                await asyncio.Event().wait()  # channels come and go (reconfigure); runs until cancelled
            finally:
                self._group = None
