"""Scheduled delivery of reports through the notification channels: each school day's safety
record once the site has closed (`reports.daily_after_closing_min` after the last building's
closing time), and on the 1st the past month's energy report and safety summary (at
`reports.monthly_at`). E-mail gets the PDF attached, a webhook a JSON document with the link,
WeCom and DingTalk robots the title and the link.

What was delivered to which channel is kept in the state database, so a restart neither
sends twice nor forgets: a channel that failed is tried again every minute until
`notifications.give_up_after_h` after the report was due. Only reports due since delivery
first ran are sent (a new installation does not mail its history), and none older than two
days (after a long outage). Runs on the injected clock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

import httpx
from prometheus_client import Counter
from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, Table, Text, select

from gateway.clock import to_ms
from gateway.notify.channels import channels, sender
from gateway.notify.message import HTTP_TIMEOUT_S, Attachment, ChannelSettings, Context, DeliveryError, Message, attempt
from gateway.reports.document import Document, Paragraphs
from gateway.reports.energy import Month, energy_report, leak_alerts, load_alerts
from gateway.reports.energy_doc import energy_document
from gateway.reports.safety import Sources, day_states, month_days, record, summary
from gateway.reports.safety_layout import STATUS, daily_document, summary_document
from gateway.reports.safety_model import ItemStatus
from gateway.storage.state import METADATA, StateDatabase

log = logging.getLogger(__name__)

CHECK_EVERY_S: Final = 60.0
LOOKBACK: Final = timedelta(days=2)
Kind = Literal["safety", "energy"]
REPORT_DELIVERIES = Table(
    "report_deliveries", METADATA,
    Column("kind", Text, nullable=False),  # safety (a day or a month) or energy (a month); '': when delivery began
    Column("period", Text, nullable=False),         # 2026-10-12 or 2026-10
    Column("channel", Text, nullable=False),
    Column("delivered_ms", BigInteger, nullable=False),  # by the gateway's clock
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("site", "kind", "period", "channel"),
    sqlite_with_rowid=False,
)


@dataclass(frozen=True)
class Due:
    kind: Kind
    period: str  # the API's query value: a date or a month
    query: str  # "date" or "month"
    due_ms: int


@dataclass(frozen=True)
class Rendered:
    title: str
    summary: str  # a few lines of plain text for the message body
    pdf: bytes
    filename: str
    path: str  # the API path of the PDF


class ReportDelivery:
    """What the site's reports were delivered to, and delivering the ones due."""

    def __init__(self, gw: Sources, db: StateDatabase, registry_counters: tuple[Counter, Counter]) -> None:
        self._gw = gw
        self._db = db
        self._site_id = gw.site.id  # the rows' site: a site's id does not change with its settings
        db.create(REPORT_DELIVERIES, site=self._site_id)
        self._sent, self._failed = registry_counters
        self._round = asyncio.Lock()  # one round at a time: a report goes to a channel once
        settings = gw.site.reports
        wanted = set(settings.channels) if settings.channels is not None else None
        # Each channel's module says whether it takes reports by default, only when listed in
        # `reports.channels`, or never.
        self.channels: list[ChannelSettings] = [
            c for c in gw.site.notifications.channels
            if (takes := channels()[c.type].REPORTS) != "never"
            and (c.id in wanted if wanted is not None else takes == "default")
        ]

    def due(self, now_ms: int) -> list[Due]:
        """Reports due by `now_ms` within the lookback, oldest first."""
        gw, settings = self._gw, self._gw.site.reports
        cal = gw.calendar
        today = cal.local_date(now_ms)
        out: list[Due] = []
        for back in range(LOOKBACK.days, -1, -1):
            d = today - timedelta(days=back)
            if settings.daily and cal.day(d).school_day:
                closing = [c for b in gw.site.buildings if (c := cal.closing_ms(b.id, d)) is not None]
                if closing:
                    out.append(Due("safety", d.isoformat(), "date",
                                   max(closing) + int(settings.daily_after_closing_min * 60_000)))
            if settings.monthly and d.day == 1:
                at = cal.local_ms(d, settings.monthly_at)
                month = str(Month(year=d.year, month=d.month).shift(-1))
                out += [Due("energy", month, "month", at), Due("safety", month, "month", at)]
        since = max(now_ms - int(LOOKBACK.total_seconds() * 1000), self._started_ms(now_ms))
        return sorted((x for x in out if since <= x.due_ms <= now_ms), key=lambda x: x.due_ms)

    def _started_ms(self, now_ms: int) -> int:
        """When delivery first ran on this database (now, if this is the first time)."""
        t = REPORT_DELIVERIES
        with self._db.write() as conn:
            self._db.add(conn, t, {"kind": "", "period": "", "channel": "", "delivered_ms": now_ms,
                                   "site": self._site_id})
            started: int = conn.execute(select(t.c.delivered_ms).where(t.c.site == self._site_id, t.c.kind == "")
                                        ).scalar_one()
        return started

    def delivered(self, due: Due) -> set[str]:
        t = REPORT_DELIVERIES
        with self._db.read() as conn:
            return set(conn.execute(select(t.c.channel).where(t.c.site == self._site_id, t.c.kind == due.kind,
                                                              t.c.period == due.period)).scalars())

    async def run(self) -> None:
        if not self.channels:
            return
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            while True:
                await self.deliver_due(client)
                await asyncio.sleep(CHECK_EVERY_S)

    async def deliver_due(self, client: httpx.AsyncClient) -> None:
        async with self._round:
            await self._deliver_due(client)

    async def _deliver_due(self, client: httpx.AsyncClient) -> None:
        gw = self._gw
        now = gw.clock.now()
        now_ms = to_ms(now)
        give_up_ms = int(gw.site.notifications.give_up_after_h * 3_600_000)
        for due in self.due(now_ms):
            pending = [c for c in self.channels if c.id not in self.delivered(due)]
            if not pending or now_ms - due.due_ms > give_up_ms:
                continue
            try:
                rendered = await self.render(due)
            except Exception:  # a report that cannot be built must not stop the others
                log.exception("report %s %s could not be built", due.kind, due.period)
                continue
            message = functools.partial(self._message, rendered)
            for channel in pending:
                try:
                    delivered = await attempt(sender(channel, Context(client, gw.clock, None)), message)
                except DeliveryError as exc:
                    self._failed.labels(channel.id).inc()
                    log.warning("report %s %s to %s failed (%s); trying again", due.kind, due.period, channel.id,
                                exc.reason)
                    continue
                if delivered:
                    self._sent.labels(channel.id).inc()
                    log.info("report %s %s delivered to %s", due.kind, due.period, channel.id)
                else:  # kept as done, not counted as sent: it would be no better a minute later
                    log.warning("report %s %s: channel %s has no one to send it to (an e-mail channel "
                                "without `to`?)", due.kind, due.period, channel.id)
                with self._db.write() as conn:
                    self._db.replace(conn, REPORT_DELIVERIES, {"site": self._site_id, "kind": due.kind,
                                                               "period": due.period, "channel": channel.id},
                                     {"delivered_ms": now_ms})

    async def render(self, due: Due) -> Rendered:
        """The report as the API would serve it in PDF, with a short text for the message."""
        from gateway.reports.render import render  # weasyprint loads only when a report is rendered

        gw = self._gw
        site, lang, tz = gw.site, gw.site.reports.lang, gw.site.tz
        build: Callable[[], tuple[Document, str]]
        if due.kind == "energy":
            month = Month.parse(due.period)
            leaks, loads = leak_alerts(gw.alerts, gw.calendar, month), load_alerts(gw.alerts, gw.calendar, month)
            now_ms = to_ms(gw.clock.now())

            def build() -> tuple[Document, str]:
                report = energy_report(site, gw.calendar, gw.store, leaks, loads, month, now_ms,
                                       gw.learned.base_loads())
                doc = energy_document(report, site, lang)
                return doc, "\n".join(_paragraphs(doc))
        elif due.query == "date":
            [state] = day_states(gw, [date.fromisoformat(due.period)])

            def build() -> tuple[Document, str]:
                one = record(gw.store, site, state)
                return daily_document(one, lang, tz), _counts(one.counts, lang)
        else:
            days = month_days(due.period)
            states = day_states(gw, days)

            def build() -> tuple[Document, str]:
                many = summary(gw.store, site, states, due.period, "month", days[0])
                return summary_document(many, lang, tz), _counts(many.totals, lang)

        def rendered() -> Rendered:
            doc, text = build()
            pdf, _, filename = render(doc, "pdf")
            title = doc.title if due.period in doc.title else f"{site.name} {doc.title} {due.period}"
            return Rendered(title, text, pdf, filename,
                            f"/api/v1/reports/{due.kind}?{due.query}={due.period}&format=pdf&lang={lang}")

        return await asyncio.to_thread(rendered)

    def _message(self, r: Rendered) -> Message:
        """The report as the channels send it: e-mail with the PDF attached, the webhook a JSON
        document with the link, the robots the title, the summary and the link."""
        base = self._gw.site.reports.public_url
        link = f"{base.rstrip('/')}{r.path}" if base else None
        text = "\n".join([r.title, r.summary, *([link] if link else [])])
        document = {"site": self._gw.site.id, "type": "report", "title": r.title, "summary": r.summary,
                    "path": r.path, "url": link}
        return Message(r.title, text, document, attachment=Attachment(r.filename, r.pdf))


def _paragraphs(doc: Document) -> list[str]:
    """The summary section's sentences."""
    return [p for block in doc.sections[0].blocks if isinstance(block, Paragraphs) for p in block.items]


def _counts(counts: Mapping[ItemStatus, int], lang: str) -> str:
    return ", ".join(f"{STATUS[k][0 if lang == 'zh-CN' else 1]}: {v}" for k, v in counts.items())
