"""The durable spool: where a message is kept from the moment it is accepted until every
sink has it. See docs/spool.md for the semantics.

One SQLite file (WAL, `synchronous=FULL`: a commit survives power loss, not only a crash)
holds:

- `spool`: decoded messages in arrival order, numbered by `seq` (contiguous, never reused);
- `cursors`: per sink, the last `seq` it has (stored, or counted as dropped for it);
- `rejected`: the dead-letter log, bounded, newest kept;
- `totals`: the accounting counters, updated in the same transaction as what they count,
  so after any crash `received = stored + rejected + dropped + pending` holds per sink.

A message is acknowledged to its source (MQTT PUBACK, HTTP answer) only after `append` has
committed it. The newest messages committed are also kept in memory, as they came (`TAIL`), so
that a sink keeping up reads them from there instead of reading and decoding them again; a sink
further behind reads from the file. Rows every sink has passed are deleted at once. The spool is bounded by
message count and by age; past either bound it drops the oldest rows for the sinks that have
not taken them yet, and counts them as dropped for those sinks.

All methods run on one thread (the caller's executor); a lock guards the connection anyway.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Final

from pydantic_core import from_json, to_json

from devices.base import Event, Sample
from gateway.storage.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    item TEXT NOT NULL              -- JSON, see _encode
);
CREATE TABLE IF NOT EXISTS cursors (
    sink TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,          -- Unix milliseconds, time of receipt
    source TEXT NOT NULL,         -- e.g. "mqtt:facility/kg/f1/telemetry" or "http"
    device_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    preview TEXT NOT NULL
);
"""

# Why a sink did not get a message.
DROP_REFUSED: Final = "refused"  # the sink rejected it for good (e.g. HTTP 400 from InfluxDB)
DROP_SPOOL_FULL: Final = "spool_full"
DROP_SPOOL_AGE: Final = "spool_age"
DROP_BEFORE_SINK: Final = "before_sink"  # received before this sink was configured
DROP_REASONS: Final = (DROP_REFUSED, DROP_SPOOL_FULL, DROP_SPOOL_AGE, DROP_BEFORE_SINK)

# The newest messages kept in memory as well, at most: four of the sinks' batches (5,000 by
# default), a few MB. Decoding a message read back from the file cost a sink as much as the
# whole of its checks on the way in (docs/performance.md).
TAIL: Final = 20_000


@dataclass(frozen=True, slots=True)
class Rejection:
    at_ms: int
    source: str
    device_id: str
    reason: str
    detail: str
    preview: str


@dataclass(frozen=True, slots=True)
class Spooled:
    seq: int
    received_ms: int
    item: Sample | Event


@dataclass(frozen=True, slots=True)
class Totals:
    """A consistent snapshot of the accounting counters."""

    received: Mapping[str, int]  # by transport
    rejected: Mapping[str, int]  # by reason
    stored: Mapping[str, int]  # by sink
    dropped: Mapping[tuple[str, str], int]  # by (sink, reason)
    pending: Mapping[str, int]  # by sink

    def unaccounted(self, sink: str) -> int:
        """received − (stored + rejected + dropped + pending) for one sink: always 0."""
        dropped = sum(n for (s, _), n in self.dropped.items() if s == sink)
        return (sum(self.received.values()) - self.stored.get(sink, 0) - sum(self.rejected.values())
                - dropped - self.pending.get(sink, 0))


@dataclass(frozen=True, slots=True)
class Overflow:
    """What one enforcement of the bounds dropped: per sink, how many messages."""

    reason: str
    dropped: Mapping[str, int]


# Every message is encoded once on its way in and decoded once per sink on its way out: the
# compiled codec, not the json module, which took a sixth of the pipeline's time. Values that are
# not finite are written as JSON's NaN and Infinity, as the json module wrote them.
def _encode(item: Sample | Event) -> str:
    row = (["s", item.device_id, item.ts_ms, item.values] if isinstance(item, Sample)
           else ["e", item.device_id, item.ts_ms, item.type, item.data])
    return to_json(row, inf_nan_mode="constants").decode()


def _decode(text: str) -> Sample | Event:
    row = from_json(text)
    if row[0] == "s":
        return Sample(row[1], row[2], row[3])
    return Event(row[1], row[2], row[3], row[4])


class Spool:
    def __init__(self, path: Path, sinks: Sequence[str], *, max_messages: int, max_age_ms: int,
                 rejected_keep: int, tail: int = TAIL) -> None:
        self.path = path
        self.max_messages = max_messages
        self.max_age_ms = max_age_ms
        self._rejected_keep = rejected_keep
        self._lock = threading.Lock()
        self._conn = conn = connect(path, _SCHEMA, durable=True)
        self._totals: Counter[tuple[str, str]] = Counter(
            {(name, label): value for name, label, value in conn.execute("SELECT name, label, value FROM totals")}
        )
        self._cursors: dict[str, int] = dict(conn.execute("SELECT sink, seq FROM cursors").fetchall())
        (top,) = conn.execute("SELECT max(seq) FROM spool").fetchone()
        self._head = max([top or 0, *self._cursors.values()])  # seq of the newest message
        # The newest committed messages, contiguous up to the head (only `append` moves the head,
        # and it extends these): what a sink reads from memory. Their items and times of receipt
        # in two deques, not a `Spooled` each: every object kept here is one more for each full
        # collection of the garbage collector to scan, and they are most of what a busy gateway
        # keeps (docs/performance.md).
        self._tail_items: deque[Sample | Event] = deque(maxlen=tail)
        self._tail_received: deque[int] = deque(maxlen=tail)
        for sink in sinks:
            if sink not in self._cursors:
                self._join(sink)
        for sink in set(self._cursors) - set(sinks):  # a sink removed from the site file
            with self._transaction():
                conn.execute("DELETE FROM cursors WHERE sink = ?", (sink,))
            del self._cursors[sink]

    def _join(self, sink: str) -> None:
        """A sink seen for the first time starts at the head: what came before is counted as
        dropped for it, so its accounting balances from the start."""
        received = sum(v for (name, _), v in self._totals.items() if name == "received")
        rejected = sum(v for (name, _), v in self._totals.items() if name == "rejected")
        with self._transaction() as changes:
            self._conn.execute("INSERT INTO cursors VALUES (?, ?)", (sink, self._head))
            changes[("dropped", f"{sink}\t{DROP_BEFORE_SINK}")] += received - rejected
        self._cursors[sink] = self._head

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def sinks(self) -> list[str]:
        return list(self._cursors)

    def __len__(self) -> int:
        """Messages held: those at least one sink still needs."""
        with self._lock:
            return self._head - min(self._cursors.values(), default=self._head)

    # ------------------------------------------------------------------ writing

    def append(self, items: Sequence[tuple[int, Sample | Event]], rejections: Sequence[Rejection],
               received: Mapping[str, int]) -> None:
        """Commits accepted messages (with their time of receipt), dead letters and the count
        of received messages per transport, in one durable transaction."""
        encoded = [(received_ms, _encode(item)) for received_ms, item in items]
        with self._transaction() as changes:
            conn = self._conn
            first = self._head + 1
            rows = [(first + i, received_ms, item) for i, (received_ms, item) in enumerate(encoded)]
            conn.executemany("INSERT INTO spool VALUES (?, ?, ?)", rows)
            if rejections:
                conn.executemany(
                    "INSERT INTO rejected (at, source, device_id, reason, detail, preview) VALUES (?, ?, ?, ?, ?, ?)",
                    [(r.at_ms, r.source, r.device_id, r.reason, r.detail, r.preview) for r in rejections],
                )
                conn.execute("DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?",
                             (self._rejected_keep,))
            for transport, n in received.items():
                changes[("received", transport)] += n
            for r in rejections:
                changes[("rejected", r.reason)] += 1
            self._head += len(rows)
        # Committed: from now on a sink may read them, from memory.
        self._tail_items.extend(item for _, item in items)
        self._tail_received.extend(received_ms for received_ms, _ in items)

    def read(self, sink: str, limit: int) -> list[Spooled]:
        """The oldest messages this sink does not have yet."""
        with self._lock:
            after = self._cursors[sink]
            first = self._head - len(self._tail_items) + 1  # the seq of the oldest kept in memory
            if self._tail_items and first <= after + 1:
                start, end = after + 1 - first, after + 1 - first + limit
                return [Spooled(after + 1 + i, received_ms, item) for i, (received_ms, item) in enumerate(
                    zip(islice(self._tail_received, start, end), islice(self._tail_items, start, end), strict=True))]
            rows = self._conn.execute(
                "SELECT seq, received_ms, item FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [Spooled(seq, received_ms, _decode(item)) for seq, received_ms, item in rows]

    def advance(self, sink: str, first: int, last: int, refused: int = 0) -> int:
        """The sink has taken messages `first`..`last`, of which it refused `refused` for
        good. Rows the bounds dropped meanwhile were already counted; returns how many of
        these are newly counted as stored."""
        with self._transaction(durable=False) as changes:
            cursor = self._cursors[sink]
            taken = last - max(cursor, first - 1)
            if taken <= 0:
                return 0
            refused = min(refused, taken)
            self._move(sink, last)
            changes[("stored", sink)] += taken - refused
            if refused:
                changes[("dropped", f"{sink}\t{DROP_REFUSED}")] += refused
            self._trim()
        return taken - refused

    def enforce(self, now_ms: int) -> list[Overflow]:
        """Applies the bounds: drops the oldest messages beyond `max_messages`, then those
        received longer than `max_age_ms` ago, for every sink that still needs them."""
        overflows = []
        with self._transaction() as changes:
            floor = min(self._cursors.values(), default=self._head)
            if self._head - floor > self.max_messages:
                overflows.append(self._drop_through(self._head - self.max_messages, DROP_SPOOL_FULL, changes))
            # Rows are in arrival order: the scan stops at the first fresh one.
            fresh = self._conn.execute(
                "SELECT seq FROM spool WHERE received_ms >= ? ORDER BY seq LIMIT 1", (now_ms - self.max_age_ms,)
            ).fetchone()
            through = (fresh[0] - 1) if fresh is not None else self._head
            if through > min(self._cursors.values(), default=self._head):
                overflows.append(self._drop_through(through, DROP_SPOOL_AGE, changes))
            self._trim()
        return [o for o in overflows if o.dropped]

    def _drop_through(self, seq: int, reason: str, changes: Counter[tuple[str, str]]) -> Overflow:
        dropped: dict[str, int] = {}
        for sink, cursor in list(self._cursors.items()):
            if cursor < seq:
                dropped[sink] = seq - cursor
                changes[("dropped", f"{sink}\t{reason}")] += seq - cursor
                self._move(sink, seq)
        return Overflow(reason, dropped)

    def _move(self, sink: str, seq: int) -> None:
        self._conn.execute("UPDATE cursors SET seq = ? WHERE sink = ?", (seq, sink))
        self._cursors[sink] = seq

    def _trim(self) -> None:
        self._conn.execute("DELETE FROM spool WHERE seq <= ?", (min(self._cursors.values(), default=self._head),))

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[Counter[tuple[str, str]]]:
        """BEGIN … COMMIT under the lock. The caller records counter changes in the yielded
        Counter: they are written in the same transaction and reach the in-memory totals
        only once it has committed; the head and cursors moved in memory roll back with it.

        Not `durable`: the commit does not wait for the disk (a sink's cursor moving on). A
        power cut may undo it, never a durable commit after it: the log is synced in order, and
        a sink given those messages again stores them once, its counters undone with its cursor."""
        changes: Counter[tuple[str, str]] = Counter()
        with self._lock:
            head, cursors = self._head, dict(self._cursors)
            conn = self._conn
            if not durable:
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield changes
                _upsert(conn, changes.items())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._head, self._cursors = head, cursors
                raise
            finally:
                if not durable:
                    conn.execute("PRAGMA synchronous=FULL")
            self._totals.update({k: n for k, n in changes.items() if n})

    # ------------------------------------------------------------------ reading

    def totals(self) -> Totals:
        with self._lock:
            t = self._totals
            pending = {sink: self._head - cursor for sink, cursor in self._cursors.items()}
        by: dict[str, dict[str, int]] = {"received": {}, "rejected": {}, "stored": {}}
        dropped: dict[tuple[str, str], int] = {}
        for (name, label), value in t.items():
            if name == "dropped":
                sink, _, reason = label.partition("\t")
                dropped[(sink, reason)] = value
            else:
                by[name][label] = value
        return Totals(by["received"], by["rejected"], by["stored"], dropped, pending)

    def rejections(self, limit: int, reason: str | None = None) -> list[Rejection]:
        """The dead-letter log, newest first."""
        query = "SELECT at, source, device_id, reason, detail, preview FROM rejected"
        args: tuple[object, ...] = ()
        if reason is not None:
            query += " WHERE reason = ?"
            args = (reason,)
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)) as conn:
            rows = conn.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Rejection(*row) for row in rows]


def _upsert(conn: sqlite3.Connection, changes: Iterable[tuple[tuple[str, str], int]]) -> None:
    conn.executemany(
        "INSERT INTO totals VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
        [(name, label, n) for (name, label), n in changes if n],
    )
