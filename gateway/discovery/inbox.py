"""The 新设备 inbox: every device heard announcing itself, one row each a site, in the state
database.

The listener's notes are written once a second in one transaction (`flush`), never one per
message: one commit (and on SQLite one fsync) a second at most. What a crash loses of them,
the devices say again (retained lists, periodic announcements, every reading of a native
device). At most `MAX_ENTRIES` rows a site are kept; the longest unheard go first. A person's
dismissal (hidden until restored) is kept and audited; adoption is not state at all: an
entry is adopted while the site file has a device that reads it (gateway/discovery/suggest.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import BigInteger, Column, Connection, Index, PrimaryKeyConstraint, Table, Text, select

from gateway.auth.audit import AuditTrail
from gateway.auth.store import NotFound
from gateway.clock import Clock, to_ms
from gateway.discovery.listener import SAMPLES_KEPT, Discovery, Seen, merged
from gateway.discovery.sightings import Sighting
from gateway.storage.state import METADATA, StateDatabase

MAX_ENTRIES: Final = 500
FLUSH_EVERY_S: Final = 1.0

DISCOVERED = Table(
    "discovered", METADATA,
    Column("site", Text, nullable=False, server_default=""),
    Column("key", Text, nullable=False),             # protocol:identity, e.g. zigbee2mqtt:0x00158d0001a2b3c4
    Column("protocol", Text, nullable=False),
    Column("said", Text, nullable=False),            # the name it gave itself
    Column("model", Text, nullable=False),
    Column("keys", Text, nullable=False),            # JSON list: what it reports, in our metric keys
    Column("source", Text),                          # JSON: the site file's source that would read it
    Column("note", Text, nullable=False),            # why there is no source, a code
    Column("first_ms", BigInteger, nullable=False),  # wall clock of receipt
    Column("first_topic", Text, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("last_topic", Text, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("samples", Text, nullable=False),         # JSON list of {topic, payload, at}, the newest last
    Column("state", Text, nullable=False),           # new | dismissed
    # A state.db from before sites keeps its key, the device's alone: it holds one site.
    PrimaryKeyConstraint("site", "key"),
    Index("discovered_last", "site", "last_ms"),
)
_ENTRY_COLUMNS = [c for c in DISCOVERED.c if c.name != "site"]

State = Literal["new", "dismissed"]


@dataclass(frozen=True, slots=True)
class Entry:
    facts: Sighting
    first_ms: int
    first_topic: str
    last_ms: int
    last_topic: str
    messages: int
    samples: list[dict[str, Any]]  # {topic, payload (text), at}
    state: State


class DiscoveryInbox:
    """One site's inbox."""

    def __init__(self, db: StateDatabase, site_id: str, listener: Discovery, audit: AuditTrail,
                 clock: Clock) -> None:
        self._db = db
        self._site = site_id
        self._listener = listener
        self._audit = audit
        self._clock = clock
        self._flushing = threading.Lock()  # what the listener heard is written in the order it was taken
        db.create(DISCOVERED, site=site_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await asyncio.to_thread(self.flush)

    def flush(self) -> None:
        """Writes what the listener heard since the last flush, in one transaction."""
        with self._flushing:
            heard = self._listener.take()
            if not heard:
                return
            d = DISCOVERED.c
            with self._db.write() as conn:
                for seen in heard:
                    self._write(conn, seen)
                kept = (select(d.key).where(d.site == self._site).order_by(d.last_ms.desc(), d.key)
                        .limit(MAX_ENTRIES))
                conn.execute(DISCOVERED.delete().where(d.site == self._site, d.key.not_in(kept.scalar_subquery())))

    def _write(self, conn: Connection, seen: Seen) -> None:
        d = DISCOVERED.c
        samples = [{"topic": s.topic, "payload": s.payload.decode("utf-8", errors="replace"), "at": s.at_ms}
                   for s in seen.samples]
        row = conn.execute(select(*_ENTRY_COLUMNS).where(d.site == self._site, d.key == seen.facts.key)).first()
        if row is None:
            facts, first_ms, first_topic, messages, state = seen.facts, seen.first_ms, seen.first_topic, 0, "new"
        else:
            old = _entry(row)
            facts, first_ms, first_topic = merged(old.facts, seen.facts), old.first_ms, old.first_topic
            messages, state, samples = old.messages, old.state, [*old.samples, *samples]
        values = {
            "protocol": facts.protocol, "said": facts.said, "model": facts.model,
            "keys": json.dumps(sorted(facts.keys)),
            "source": None if facts.source is None else json.dumps(facts.source, ensure_ascii=False),
            "note": facts.note, "first_ms": first_ms, "first_topic": first_topic, "last_ms": seen.last_ms,
            "last_topic": seen.last_topic, "messages": messages + seen.messages,
            "samples": json.dumps(samples[-SAMPLES_KEPT:], ensure_ascii=False), "state": state,
        }
        if row is None:
            conn.execute(DISCOVERED.insert().values(site=self._site, key=facts.key, **values))
        else:
            conn.execute(DISCOVERED.update().where(d.site == self._site, d.key == facts.key).values(**values))

    def entries(self) -> list[Entry]:
        """Every device heard, the most recently heard first."""
        self.flush()
        d = DISCOVERED.c
        with self._db.read() as conn:
            rows = conn.execute(select(*_ENTRY_COLUMNS).where(d.site == self._site)
                                .order_by(d.last_ms.desc(), d.key)).all()
        return [_entry(r) for r in rows]

    def dismiss(self, key: str, by: str) -> None:
        self._set_state(key, "dismissed", by)

    def restore(self, key: str, by: str) -> None:
        self._set_state(key, "new", by)

    def _set_state(self, key: str, state: State, by: str) -> None:
        self.flush()
        d = DISCOVERED.c
        with self._db.write() as conn:
            changed = conn.execute(DISCOVERED.update().where(d.site == self._site, d.key == key)
                                   .values(state=state)).rowcount
        if not changed:
            raise NotFound(f"no discovered device {key!r}")
        action = "discovery.dismissed" if state == "dismissed" else "discovery.restored"
        self._audit.record(to_ms(self._clock.now()), by, action, f"discovered:{key}", {"state": state})


def _entry(row: Any) -> Entry:
    facts = Sighting(row.key, row.protocol, row.said, row.model, frozenset(json.loads(row.keys)),
                     None if row.source is None else json.loads(row.source), row.note)
    return Entry(facts, row.first_ms, row.first_topic, row.last_ms, row.last_topic, row.messages,
                 json.loads(row.samples), row.state)
