"""The notifications' outbox, in the state store: each notice for each channel is one row,
pending until the channel took it (sent) or it was given up (dropped, with the reason). A
restart, or a standby taking the site over, sends what was left pending, once; a send that
the process did not live to record is sent again (at least once), under the same row id.
Rows done are kept for `KEEP_MS`, for the record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    Table,
    Text,
    func,
    literal_column,
    select,
)

from gateway.alerting.alerts import Notice, notice_json
from gateway.storage.state import ID, METADATA, StateDatabase, of_site

KEEP_MS: Final = 30 * 86_400_000

PENDING: Final = "pending"
SENT: Final = "sent"  # the channel took it (an e-mail channel with no addressee too: nothing is left to send)
DROPPED: Final = "dropped"

OUTBOX = Table(
    "notification_outbox", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),  # unique across sites: the messages' stable id
    Column("site", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("notice", Text, nullable=False),  # gateway.alerting.alerts.notice_json
    Column("queued_ms", BigInteger, nullable=False),  # the clock's: the give-up age counts from here
    Column("state", Text, nullable=False),  # PENDING, SENT or DROPPED
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("done_ms", BigInteger),  # the clock's, once sent or dropped
    Column("reason", Text),  # why it was dropped: one of the notifier's DROP_REASONS
    Index("notification_outbox_done", "site", "done_ms"),
)
# Written as a literal: an engine uses the partial index below only for a query that says the
# same condition, not `state = ?`.
_PENDING: Final = OUTBOX.c.state == literal_column(f"'{PENDING}'")
# A channel's oldest pending notice, and how many wait.
Index("notification_outbox_pending", OUTBOX.c.site, OUTBOX.c.channel, OUTBOX.c.id, sqlite_where=_PENDING,
      postgresql_where=_PENDING)


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    notice: str  # as `notice_json` wrote it
    queued_ms: int


@dataclass(frozen=True, slots=True)
class Bound:
    """A channel's queue as `Outbox.add` keeps it: at most `queue` pending notices besides the
    one being delivered (`busy`, a row id)."""

    queue: int
    busy: int | None


@dataclass(frozen=True, slots=True)
class Added:
    waiting: int  # pending notices besides the one being delivered
    dropped: int  # the oldest ones dropped to keep the bound (queue_full)


class Outbox:
    """The outbox of one site."""

    def __init__(self, db: StateDatabase, site: str) -> None:
        db.create(OUTBOX)
        self._db = db
        self.site = site

    def add(self, notice: Notice, channels: Mapping[str, Bound], now_ms: int) -> dict[str, Added]:
        """Queues the notice for each channel, in one transaction; beyond a channel's bound its
        oldest pending notices (not the one being delivered) are dropped as `queue_full`."""
        text = notice_json(notice)
        added = {}
        with self._db.write() as conn:
            conn.execute(OUTBOX.insert(), [
                {"site": self.site, "channel": channel, "notice": text, "queued_ms": now_ms, "state": PENDING,
                 "attempts": 0}
                for channel in channels
            ])
            busy = [bound.busy for bound in channels.values() if bound.busy is not None]
            counted = select(OUTBOX.c.channel, func.count()).where(
                of_site(OUTBOX, self.site), OUTBOX.c.channel.in_(list(channels)), _PENDING, OUTBOX.c.id.not_in(busy),
            ).group_by(OUTBOX.c.channel)
            waiting: dict[str, int] = dict(conn.execute(counted).all())
            for channel, bound in channels.items():
                excess = max(0, waiting[channel] - bound.queue)
                if excess:
                    oldest = select(OUTBOX.c.id).where(*self._waiting_rows(channel, bound.busy)) \
                        .order_by(OUTBOX.c.id).limit(excess).scalar_subquery()
                    conn.execute(OUTBOX.update().where(OUTBOX.c.id.in_(oldest)).values(
                        state=DROPPED, reason="queue_full", done_ms=now_ms))
                added[channel] = Added(waiting[channel] - excess, excess)
        return added

    def next(self, channel: str) -> Pending | None:
        """The channel's oldest pending notice."""
        query = select(OUTBOX.c.id, OUTBOX.c.notice, OUTBOX.c.queued_ms) \
            .where(*self._waiting_rows(channel, None)).order_by(OUTBOX.c.id).limit(1)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else Pending(row.id, row.notice, row.queued_ms)

    def waiting(self, channel: str, busy: int | None) -> int:
        """How many of the channel's notices are pending, besides the one being delivered."""
        with self._db.read() as conn:
            return self._waiting(conn, channel, busy)

    def failed(self, row_id: int, error: str) -> None:
        self._update(row_id, attempts=OUTBOX.c.attempts + 1, last_error=error)

    def sent(self, row_id: int, now_ms: int) -> None:
        self._update(row_id, attempts=OUTBOX.c.attempts + 1, state=SENT, done_ms=now_ms)

    def drop(self, row_id: int, now_ms: int, reason: str) -> None:
        self._update(row_id, state=DROPPED, reason=reason, done_ms=now_ms)

    def drop_unconfigured(self, channels: Collection[str], now_ms: int) -> Counter[str]:
        """Drops, as `removed`, what channels not among `channels` had still to send: how many
        each."""
        with self._db.write() as conn:
            dropped = conn.execute(
                OUTBOX.update().where(of_site(OUTBOX, self.site), _PENDING, OUTBOX.c.channel.not_in(list(channels)))
                .values(state=DROPPED, reason="removed", done_ms=now_ms).returning(OUTBOX.c.channel)
            ).scalars().all()
        return Counter(dropped)

    def prune(self, before_ms: int) -> None:
        """Forgets the notices sent or dropped before `before_ms`."""
        with self._db.write() as conn:
            conn.execute(OUTBOX.delete().where(of_site(OUTBOX, self.site), OUTBOX.c.done_ms < before_ms))

    def _update(self, row_id: int, **values: object) -> None:
        # Only a pending row: one dropped meanwhile (its channel removed) stays so.
        with self._db.write() as conn:
            conn.execute(OUTBOX.update().where(of_site(OUTBOX, self.site, row_id), _PENDING)
                         .values(**values))

    def _waiting_rows(self, channel: str, busy: int | None) -> list[ColumnElement[bool]]:
        where = [of_site(OUTBOX, self.site), OUTBOX.c.channel == channel, _PENDING]
        if busy is not None:
            where.append(OUTBOX.c.id != busy)
        return where

    def _waiting(self, conn: Connection, channel: str, busy: int | None) -> int:
        counted: int = conn.execute(select(func.count()).select_from(OUTBOX)
                                    .where(*self._waiting_rows(channel, busy))).scalar_one()
        return counted
