"""The 新设备 inbox: every device heard announcing itself, one row each, in the state database.

The listener's notes are written once a second in one transaction (`flush`), never one per
message, and without an fsync of their own (synchronous=NORMAL): what a power cut loses of it,
the devices say again (retained lists, periodic announcements, every reading of a native
device). At most `MAX_ENTRIES` rows are kept; the longest unheard go first. A person's
dismissal (hidden until restored) is kept and audited; adoption is not state at all: an
entry is adopted while the site file has a device that reads it (gateway/discovery/suggest.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from gateway.auth.audit import AuditTrail
from gateway.auth.store import NotFound
from gateway.clock import Clock, to_ms
from gateway.discovery.listener import SAMPLES_KEPT, Discovery, Seen, merged
from gateway.discovery.sightings import Sighting
from gateway.storage.sqlite import connect

MAX_ENTRIES: Final = 500
FLUSH_EVERY_S: Final = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS discovered (
    key TEXT PRIMARY KEY,        -- protocol:identity, e.g. zigbee2mqtt:0x00158d0001a2b3c4
    protocol TEXT NOT NULL,
    said TEXT NOT NULL,          -- the name it gave itself
    model TEXT NOT NULL,
    keys TEXT NOT NULL,          -- JSON list: what it reports, in our metric keys
    source TEXT,                 -- JSON: the site file's source that would read it
    note TEXT NOT NULL,          -- why there is no source, a code
    first_ms INTEGER NOT NULL,   -- wall clock of receipt
    first_topic TEXT NOT NULL,
    last_ms INTEGER NOT NULL,
    last_topic TEXT NOT NULL,
    messages INTEGER NOT NULL,
    samples TEXT NOT NULL,       -- JSON list of {topic, payload, at}, the newest last
    state TEXT NOT NULL          -- new | dismissed
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS discovered_last ON discovered (last_ms);
"""

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
    def __init__(self, path: Path, listener: Discovery, audit: AuditTrail, clock: Clock) -> None:
        self._conn = connect(path, _SCHEMA)
        self._listener = listener
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await asyncio.to_thread(self.flush)

    def flush(self) -> None:
        """Writes what the listener heard since the last flush, in one transaction."""
        with self._lock:  # taken and written together, so that two flushes keep their order
            heard = self._listener.take()
            if not heard:
                return
            conn = self._conn
            conn.execute("BEGIN")
            try:
                for seen in heard:
                    self._write(seen)
                conn.execute("DELETE FROM discovered WHERE key NOT IN "
                             "(SELECT key FROM discovered ORDER BY last_ms DESC LIMIT ?)", (MAX_ENTRIES,))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _write(self, seen: Seen) -> None:
        samples = [{"topic": s.topic, "payload": s.payload.decode("utf-8", errors="replace"), "at": s.at_ms}
                   for s in seen.samples]
        row = self._conn.execute("SELECT * FROM discovered WHERE key = ?", (seen.facts.key,)).fetchone()
        if row is None:
            facts, first_ms, first_topic, messages, state = seen.facts, seen.first_ms, seen.first_topic, 0, "new"
        else:
            old = _entry(row)
            facts, first_ms, first_topic = merged(old.facts, seen.facts), old.first_ms, old.first_topic
            messages, state, samples = old.messages, old.state, [*old.samples, *samples]
        self._conn.execute(
            "INSERT OR REPLACE INTO discovered VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (facts.key, facts.protocol, facts.said, facts.model, json.dumps(sorted(facts.keys)),
             None if facts.source is None else json.dumps(facts.source, ensure_ascii=False), facts.note,
             first_ms, first_topic, seen.last_ms, seen.last_topic, messages + seen.messages,
             json.dumps(samples[-SAMPLES_KEPT:], ensure_ascii=False), state))

    def entries(self) -> list[Entry]:
        """Every device heard, the most recently heard first."""
        self.flush()
        with self._lock:
            rows = self._conn.execute("SELECT * FROM discovered ORDER BY last_ms DESC").fetchall()
        return [_entry(r) for r in rows]

    def dismiss(self, key: str, by: str) -> None:
        self._set_state(key, "dismissed", by)

    def restore(self, key: str, by: str) -> None:
        self._set_state(key, "new", by)

    def _set_state(self, key: str, state: State, by: str) -> None:
        self.flush()
        with self._lock:
            changed = self._conn.execute("UPDATE discovered SET state = ? WHERE key = ?", (state, key)).rowcount
        if not changed:
            raise NotFound(f"no discovered device {key!r}")
        action = "discovery.dismissed" if state == "dismissed" else "discovery.restored"
        self._audit.record(to_ms(self._clock.now()), by, action, f"discovered:{key}", {"state": state})


def _entry(row: tuple[Any, ...]) -> Entry:
    (key, protocol, said, model, keys, source, note, first_ms, first_topic, last_ms, last_topic, messages,
     samples, state) = row
    facts = Sighting(key, protocol, said, model, frozenset(json.loads(keys)),
                     None if source is None else json.loads(source), note)
    return Entry(facts, first_ms, first_topic, last_ms, last_topic, messages, json.loads(samples), state)
