"""The embedded time-series store: raw readings in SQLite (WAL), with retention and
downsampled history queries, and rollups maintained as readings arrive.

A reading's identity is (device, metric, timestamp): the primary key, so writing the same
reading twice stores it once. Series (device, metric) get small integer ids so each raw row is
three numbers in a WITHOUT ROWID B-tree ordered by series and time, which is also the order
every history query reads.

Rollups summarise each series per 5-minute and per hourly bucket (count, sum, min, max and
a counter's increase), so that a report over a month of hundreds of devices reads thousands of
rows, not millions. They are written in the same transaction as the readings. A series' readings
that all come after its newest stored one, in order (what a device sends, nearly always), are
summed up in memory and added to their buckets; otherwise every bucket the write touches is
recomputed from the raw readings. Either way late, duplicate and out-of-order readings leave them
exactly as if everything had arrived in order. Retention deletes the 5-minute ones with the raw
readings and keeps the hourly ones.

One writer thread owns the write connection; queries open their own read connections, which
WAL lets run beside the writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from devices.base import Event, Sample

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (device_id, metric)
);
CREATE TABLE IF NOT EXISTS readings (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,          -- Unix milliseconds, event time
    value REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    device_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    -- two cards can pass one gate in the same second: an event's identity is all of it
    PRIMARY KEY (device_id, ts, type, data)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    series_id INTEGER NOT NULL,
    step INTEGER NOT NULL,        -- bucket length in ms: 300000 or 3600000
    ts INTEGER NOT NULL,          -- bucket start, a multiple of the step (UTC)
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    increase REAL NOT NULL,       -- see `increase()`: what a counter counted up to readings in this bucket
    PRIMARY KEY (series_id, step, ts)
) WITHOUT ROWID;
"""

FIVE_MIN_MS: Final = 300_000
SPANS_A_QUERY: Final = 5_000  # `group_sums`: 4 variables a span, SQLite allows 32,766
HOUR_MS: Final = 3_600_000
READER_CACHE_KIB: Final = 512  # a reader's page cache: a thread each


def increase(start: float | None, end: float) -> float:
    """A counter's increase from one reading to the next. A counter that went back was reset
    (a new meter, a wrapped register): what it counted since the reset is all that is known."""
    if start is None:
        return 0.0
    return end if end < start else end - start


@dataclass(frozen=True, slots=True)
class Point:
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Bucket:
    ts_ms: int  # start of the bucket
    mean: float
    min: float
    max: float
    count: int


class GroupSum(NamedTuple):
    """Rollups summed over a group of spans (`group_sums`)."""

    increase: float
    readings: int
    buckets: int


@dataclass(slots=True)
class Rollup:
    """One bucket of a series. `increase`: what a counter counted, attributed to the bucket of
    the reading that shows it (a meter that was silent for an hour reports that hour's use
    in the bucket where it speaks again). Not frozen: a month's report makes hundreds of
    thousands, and a frozen dataclass takes several times as long to make."""

    ts_ms: int
    count: int
    sum: float
    min: float
    max: float
    increase: float


def where(conditions: Iterable[tuple[str, object]]) -> tuple[str, list[object]]:
    """A WHERE clause of the `(expression with one ?, value)` pairs whose value is not None,
    and its arguments; "" when there are none."""
    given = [(expression, value) for expression, value in conditions if value is not None]
    clause = " WHERE " + " AND ".join(expression for expression, _ in given) if given else ""
    return clause, [value for _, value in given]


def connect(path: Path, schema: str, *, durable: bool = False) -> sqlite3.Connection:
    """A write connection in autocommit mode (callers BEGIN and COMMIT themselves), WAL, with
    the schema created. `durable`: every commit is fsync'd, so it survives a power cut; by
    default (NORMAL) a commit survives a crash of the process only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    conn.executescript(schema)
    return conn


def add_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Adds to `table` the columns (name → declaration) that a state database from an earlier
    version lacks."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns.items():
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, _SCHEMA)
        self._series: dict[tuple[str, str], int] = {
            (d, m): i for i, d, m in self._conn.execute("SELECT id, device_id, metric FROM series")
        }
        self._lock = threading.Lock()  # the write connection is used by one thread at a time
        # Each thread's read connection (`_reader`): closed when its thread ends or the store closes.
        self._readers = threading.local()
        # Each series' newest stored reading, as far as known: (time, value), None for none.
        self._newest: dict[int, tuple[int, float] | None] = {}
        # user_version 1: every reading has its rollups. A database from before them has
        # readings and version 0 until `rebuild_rollups` has run.
        if self._conn.execute("SELECT 1 FROM readings LIMIT 1").fetchone() is None:
            self._conn.execute("PRAGMA user_version = 1")
        self.needs_rollups = self._conn.execute("PRAGMA user_version").fetchone()[0] < 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._readers = threading.local()  # the old one's connections go with it

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection, kept while the store is open: opening one (and
        reading the schema) takes 250 µs, a query of a series 4 µs, and the UV register reads
        2,600 lamps' readings a minute at a large site. A reader never waits for the writer
        (WAL), and holds no snapshot between queries: in autocommit mode only a statement not yet
        done would hold one, and every query's cursor is read to its end or dropped (and so
        reset) before its method returns."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, check_same_thread=False,
                                   isolation_level=None)
            conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")  # the OS keeps the file's pages too
            self._readers.conn = conn
        return conn

    def write(self, samples: Iterable[Sample], events: Iterable[Event]) -> int:
        """Stores samples and events in one transaction; returns how many rows were new."""
        with self._lock:
            conn = self._conn
            series = self._series
            rows: list[tuple[int, int, float]] = []
            written: dict[int, list[tuple[int, float]]] = {}  # series → its readings in this write
            conn.execute("BEGIN")
            try:
                for s in samples:
                    for metric, value in s.values.items():
                        sid = series.get((s.device_id, metric))
                        if sid is None:
                            sid = self._new_series(s.device_id, metric)
                        rows.append((sid, s.ts_ms, value))
                        written.setdefault(sid, []).append((s.ts_ms, value))
                newest = {sid: self._newest_of(sid) for sid in written}  # before these are in
                before = conn.total_changes
                conn.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?)", rows)
                conn.executemany(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                    [(e.device_id, e.ts_ms, e.type, json.dumps(e.data, ensure_ascii=False, sort_keys=True))
                     for e in events],
                )
                new = conn.total_changes - before
                now_newest = _roll_up_written(conn, written, newest)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._series = {
                    (d, m): i for i, d, m in conn.execute("SELECT id, device_id, metric FROM series")
                }
                self._newest = {}
                raise
            for sid in written:
                self._newest.pop(sid, None)
            self._newest.update(now_newest)
            return new

    def _newest_of(self, sid: int) -> tuple[int, float] | None:
        if sid in self._newest:
            return self._newest[sid]
        row = self._conn.execute("SELECT ts, value FROM readings WHERE series_id = ? ORDER BY ts DESC LIMIT 1",
                                 (sid,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _new_series(self, device_id: str, metric: str) -> int:
        cur = self._conn.execute("INSERT INTO series (device_id, metric) VALUES (?, ?)", (device_id, metric))
        sid = cur.lastrowid
        assert sid is not None
        self._series[(device_id, metric)] = sid
        return sid

    def rebuild_rollups(self, series_done: Callable[[int, int], None] | None = None) -> int:
        """Recomputes every series' rollups from its raw readings (a database from before
        rollups existed); reports `(done, total)` series after each. Returns the buckets written."""
        written = 0
        sids = list(self._series.values())
        for done, sid in enumerate(sids, 1):
            with self._lock:
                conn = self._conn
                span = conn.execute("SELECT min(ts), max(ts) FROM readings WHERE series_id = ?", (sid,)).fetchone()
                if span[0] is not None:
                    conn.execute("BEGIN")
                    try:
                        written += _roll_up(conn, {sid: span})
                        conn.execute("COMMIT")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
            if series_done:
                series_done(done, len(sids))
        with self._lock:
            self._conn.execute("PRAGMA user_version = 1")
        self.needs_rollups = False
        return written

    def delete_before(self, cutoff_ms: int) -> int:
        """Retention: drops raw readings and 5-minute rollups older than the cutoff, series by
        series (the keys are ordered by series first: SQLite seeks each series' range, for the
        series the subquery gives it). Hourly rollups stay: year-on-year comparisons need them.
        One statement a table: a statement a series took 0.3 s of Python for 19,400 series,
        holding the writer's lock, at every start; the same seeks in one take 8 ms."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM readings WHERE series_id IN (SELECT id FROM series) AND ts < ?",
                                     (cutoff_ms,))
            deleted = cur.rowcount
            self._conn.execute("DELETE FROM rollups WHERE series_id IN (SELECT id FROM series) AND step = ? AND ts < ?",
                               (FIVE_MIN_MS, cutoff_ms))
            cur = self._conn.execute("DELETE FROM events WHERE ts < ?", (cutoff_ms,))
            deleted += cur.rowcount
            self._newest = {}  # a series' newest reading may be among those deleted
        return deleted

    # Queries: on the thread's read connection (`_reader`), so that they never wait for the writer.

    def latest(self) -> dict[str, dict[str, Point]]:
        """The newest reading of every series: device → metric → point."""
        out: dict[str, dict[str, Point]] = {}
        conn = self._reader()
        for device_id, metric, ts, value in conn.execute(
            "SELECT s.device_id, s.metric, r.ts, r.value FROM series s "
            "JOIN readings r ON r.series_id = s.id "
            "AND r.ts = (SELECT max(ts) FROM readings WHERE series_id = s.id)"
        ):
            out.setdefault(device_id, {})[metric] = Point(ts, value)
        return out

    def values_at(
        self, metric: str, device_ids: Iterable[str], times_ms: Sequence[int]
    ) -> dict[str, list[float | None]]:
        """Each device's newest value of `metric` at or before each of `times_ms` (None where
        it has none): a counter's reading at given moments, one index lookup each."""
        out: dict[str, list[float | None]] = {}
        conn = self._reader()
        for device_id in device_ids:
            sid = self._series.get((device_id, metric))
            row: list[float | None] = []
            for t in times_ms:
                found = None if sid is None else conn.execute(
                    "SELECT value FROM readings WHERE series_id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1", (sid, t)
                ).fetchone()
                row.append(None if found is None else found[0])
            out[device_id] = row
        return out

    def runs_since(self, metric: str, value: float, at: Sequence[tuple[str, int]]) -> list[int | None]:
        """For each (device, time): when the run of `value` that holds then began, i.e. the
        first reading after the last one that differed (None if none at or before has it)."""
        out: list[int | None] = []
        conn = self._reader()
        for device_id, at_ms in at:
            sid = self._series.get((device_id, metric))
            if sid is None:
                out.append(None)
                continue
            before = conn.execute(
                "SELECT ts FROM readings WHERE series_id = ? AND ts <= ? AND value != ? ORDER BY ts DESC LIMIT 1",
                (sid, at_ms, value),
            ).fetchone()
            found = conn.execute(
                "SELECT ts FROM readings WHERE series_id = ? AND ts > ? AND ts <= ? AND value = ? "
                "ORDER BY ts LIMIT 1",
                (sid, -1 if before is None else before[0], at_ms, value),
            ).fetchone()
            out.append(None if found is None else int(found[0]))
        return out

    def metrics_of(self, device_id: str) -> list[str]:
        return sorted(m for (d, m) in self._series if d == device_id)

    def points(self, device_id: str, metric: str, start_ms: int, end_ms: int, limit: int) -> list[Point]:
        sid = self._series.get((device_id, metric))
        if sid is None:
            return []
        conn = self._reader()
        return [
            Point(ts, v)
            for ts, v in conn.execute(
                "SELECT ts, value FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts LIMIT ?",
                (sid, start_ms, end_ms, limit),
            )
        ]

    def buckets(
        self, device_id: str, metric: str, start_ms: int, end_ms: int, step_ms: int, utc_offset_ms: int = 0
    ) -> list[Bucket]:
        """Mean, min, max and count per bucket. Buckets are aligned to multiples of the step
        in local time (`utc_offset_ms`), so daily buckets start at local midnight."""
        sid = self._series.get((device_id, metric))
        if sid is None:
            return []
        conn = self._reader()
        return [
            Bucket(b, mean, lo, hi, n)
            for b, mean, lo, hi, n in conn.execute(
                "SELECT ((ts + :off) / :step) * :step - :off AS b, avg(value), min(value), max(value), "
                "count(*) FROM readings WHERE series_id = :sid AND ts >= :start AND ts < :end "
                "GROUP BY b ORDER BY b",
                {"off": utc_offset_ms, "step": step_ms, "sid": sid, "start": start_ms, "end": end_ms},
            )
        ]

    def rollups(self, metric: str, device_ids: Iterable[str], spans: Sequence[tuple[int, int]],
                step_ms: int = HOUR_MS) -> dict[str, list[Rollup]]:
        """Each device's rollups of `metric` with buckets starting in any of the [start, end)
        `spans` (in order, not overlapping), in time order; devices without the series are left out.
        One query for all of them: a report asks for hundreds of meters and hundreds of hours."""
        devices = {sid: d for d in device_ids if (sid := self._series.get((d, metric))) is not None}
        out: dict[str, list[Rollup]] = {d: [] for d in devices.values()}
        if not devices or not spans:
            return out
        conn = self._reader()
        for row in conn.execute(
            "SELECT r.ts, r.count, r.sum, r.min, r.max, r.increase, r.series_id "
            # CROSS JOIN keeps this loop order: each span's rows come by the primary key's range.
            "FROM json_each(?) AS s CROSS JOIN json_each(?) AS span CROSS JOIN rollups AS r "
            "WHERE r.series_id = s.value AND r.step = ? AND r.ts >= span.value ->> 0 AND r.ts < span.value ->> 1 "
            "ORDER BY s.key, span.key, r.ts",
            (json.dumps(list(devices)), json.dumps(spans), step_ms),
        ):
            out[devices[row[6]]].append(Rollup(*row[:6]))
        return out

    def group_sums(self, metric: str, device_ids: Iterable[str],
                   spans: Sequence[tuple[int, int, int, int]]) -> dict[str, dict[int, GroupSum]]:
        """Each device's rollups of `metric` summed by group: a span (group, start, end, step)
        takes the buckets of `step` starting in [start, end); a bucket in two spans counts in
        each. Devices without the series are left out; a group without buckets is absent. A
        report asks each meter's use by time-of-use period and opening (a few groups of hours
        and of 5-minute buckets), so that hundreds of thousands of buckets are summed here."""
        devices = {sid: d for d in device_ids if (sid := self._series.get((d, metric))) is not None}
        out: dict[str, dict[int, GroupSum]] = {d: {} for d in devices.values()}
        conn = self._reader()
        # The spans as bound values, not JSON (whose text each of the loop's turns would parse
        # again: twice the time), a number of them a query within SQLite's limit of variables.
        for at in range(0, len(spans), SPANS_A_QUERY):
            chunk = spans[at:at + SPANS_A_QUERY]
            for sid, group, increase_, readings, buckets in conn.execute(
                f"WITH span(g, start, stop, step) AS MATERIALIZED (VALUES {_placeholders(len(chunk), 4)}) "  # noqa: S608
                "SELECT r.series_id, span.g, sum(r.increase), sum(r.count), count(*) "
                # CROSS JOIN keeps this loop order: each span's rows come by the primary key's range.
                "FROM json_each(?) AS s CROSS JOIN span CROSS JOIN rollups AS r "
                "WHERE r.series_id = s.value AND r.step = span.step AND r.ts >= span.start AND r.ts < span.stop "
                "GROUP BY r.series_id, span.g",
                (*[v for span in chunk for v in span], json.dumps(list(devices))),
            ):
                mine = out[devices[sid]]
                before = mine.get(group)
                mine[group] = GroupSum(increase_, readings, buckets) if before is None else GroupSum(
                    before.increase + increase_, before.readings + readings, before.buckets + buckets)
        return out

    def increases(self, metric: str, device_ids: Iterable[str], start_ms: int,
                  end_ms: int) -> dict[str, tuple[float, int] | None]:
        """What each device's counter `metric` counted in [start, end) (whole hours), and in how
        many hours it had readings; None: no readings at all."""
        out: dict[str, tuple[float, int] | None] = dict.fromkeys(device_ids)
        devices = {sid: d for d in out if (sid := self._series.get((d, metric))) is not None}
        conn = self._reader()
        for sid, total, hours in conn.execute(
            "SELECT series_id, sum(increase), count(*) FROM rollups WHERE series_id IN "
            "(SELECT value FROM json_each(?)) AND step = ? AND ts >= ? AND ts < ? GROUP BY series_id",
            (json.dumps(list(devices)), HOUR_MS, start_ms, end_ms),
        ):
            out[devices[sid]] = (total, hours)
        return out

    def events(self, device_id: str, start_ms: int, end_ms: int, limit: int) -> list[Event]:
        conn = self._reader()
        return [
            Event(device_id, ts, type_, json.loads(data))
            for ts, type_, data in conn.execute(
                "SELECT ts, type, data FROM events WHERE device_id = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts DESC LIMIT ?",
                (device_id, start_ms, end_ms, limit),
            )
        ]


def _placeholders(rows: int, columns: int) -> str:
    """`(?,?),(?,?)…`: the placeholders of `rows` rows of `columns` values."""
    return ",".join([f"({','.join('?' * columns)})"] * rows)


def _roll_up_written(conn: sqlite3.Connection, written: dict[int, list[tuple[int, float]]],
                     newest: dict[int, tuple[int, float] | None]) -> dict[int, tuple[int, float]]:
    """The rollups of readings just written (series → its readings, as they came), given each
    series' newest reading before them. A series whose readings all follow its newest, in
    order, has them summed up here and added to its buckets (one upsert for all); any other
    has its buckets recomputed (`_roll_up`). Returns the newest reading of the series of the first kind."""
    added: list[tuple[int, int, int, int, float, float, float, float]] = []
    spans: dict[int, tuple[int, int]] = {}
    now_newest: dict[int, tuple[int, float]] = {}
    for sid, points in written.items():
        last = newest[sid]
        previous_ts = -1 if last is None else last[0]
        in_order = True
        for ts, _ in points:
            if ts <= previous_ts:
                in_order = False
                break
            previous_ts = ts
        if not in_order:
            times = [ts for ts, _ in points]
            spans[sid] = (min(times), max(times))
            continue
        previous = None if last is None else last[1]
        for step in (FIVE_MIN_MS, HOUR_MS):
            buckets: dict[int, list[float]] = {}
            before = previous
            for ts, value in points:
                acc = buckets.get(ts - ts % step)
                if acc is None:
                    buckets[ts - ts % step] = [1, value, value, value, increase(before, value)]
                else:
                    acc[0] += 1
                    acc[1] += value
                    acc[2] = min(acc[2], value)
                    acc[3] = max(acc[3], value)
                    acc[4] += increase(before, value)
                before = value
            added.extend((sid, step, b, int(a[0]), a[1], a[2], a[3], a[4]) for b, a in buckets.items())
        now_newest[sid] = points[-1]
    conn.executemany(
        "INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, step, ts) DO UPDATE SET "
        "count = count + excluded.count, sum = sum + excluded.sum, min = min(min, excluded.min), "
        "max = max(max, excluded.max), increase = increase + excluded.increase", added)
    _roll_up(conn, spans)
    return now_newest


def _roll_up(conn: sqlite3.Connection, spans: dict[int, tuple[int, int]]) -> int:
    """Recomputes the rollups of every bucket that readings written in `spans` (series →
    first and last time) fall into, plus the bucket of the next reading after them (its
    increase is now counted from a different reading). Returns the buckets written."""
    five: list[tuple[int, int, int, int, float, float, float, float]] = []
    hours: list[tuple[int, int, int]] = []
    for sid, (lo, hi) in spans.items():
        start = lo - lo % FIVE_MIN_MS
        after = conn.execute("SELECT ts FROM readings WHERE series_id = ? AND ts > ? ORDER BY ts LIMIT 1",
                             (sid, hi)).fetchone()
        last = after[0] if after else hi
        end = last - last % FIVE_MIN_MS + FIVE_MIN_MS
        before = conn.execute("SELECT value FROM readings WHERE series_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
                              (sid, start)).fetchone()
        previous: float | None = before[0] if before else None
        bucket = -1
        acc: list[float] = []
        for ts, value in conn.execute("SELECT ts, value FROM readings WHERE series_id = ? AND ts >= ? AND ts < ?",
                                      (sid, start, end)):
            b = ts - ts % FIVE_MIN_MS
            if b != bucket:
                if acc:
                    five.append((sid, FIVE_MIN_MS, bucket, int(acc[0]), acc[1], acc[2], acc[3], acc[4]))
                bucket, acc = b, [0, 0.0, value, value, 0.0]
            acc[0] += 1
            acc[1] += value
            acc[2] = min(acc[2], value)
            acc[3] = max(acc[3], value)
            acc[4] += increase(previous, value)
            previous = value
        if acc:
            five.append((sid, FIVE_MIN_MS, bucket, int(acc[0]), acc[1], acc[2], acc[3], acc[4]))
        hours.append((sid, start - start % HOUR_MS, end + (-end) % HOUR_MS))  # whole hours
    conn.executemany("INSERT OR REPLACE INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?)", five)
    for sid, start, end in hours:
        conn.execute(
            "INSERT OR REPLACE INTO rollups SELECT series_id, :hour, ts - ts % :hour, sum(count), sum(sum), min(min), "
            "max(max), sum(increase) FROM rollups WHERE series_id = :sid AND step = :five AND ts >= :start "
            "AND ts < :end GROUP BY ts - ts % :hour",
            {"hour": HOUR_MS, "five": FIVE_MIN_MS, "sid": sid, "start": start, "end": end})
    return len(five)


