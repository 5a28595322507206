"""The readings store in PostgreSQL: what `SqliteStore` keeps, in the state store that a
district's replicas share, so any replica answers any site's charts and reports from the same
rows (docs/district.md, "Readings in PostgreSQL").

The tables are those of sqlite.py, with the site on each series and each event: several
schools share one database, and a store reads and writes only its own site's rows. Rollups are
recomputed on the server for every bucket a write touches, in the write's transaction, with the
same rules as `_roll_up` (a counter's increase by `lag`, the bucket of the next reading after the
batch's span included), so both engines keep the same figures. Every query joins the series
table: a replica that never wrote a series reads it as well as the one that did; the ids of the
series this process writes are kept to spare a lookup per batch."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from devices.base import Event, Sample
from gateway.storage.sqlite import FIVE_MIN_MS, HOUR_MS, Bucket, GroupSum, Point, Rollup
from gateway.storage.state import ID, METADATA, StateDatabase

READING_SERIES: Final = Table(
    "reading_series", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("site", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    UniqueConstraint("site", "device_id", "metric"),
)
READINGS: Final = Table(
    "readings", METADATA,
    Column("series_id", BigInteger, primary_key=True),
    Column("ts", BigInteger, primary_key=True),  # Unix milliseconds, event time
    Column("value", Float, nullable=False),
)
READING_EVENTS: Final = Table(
    "reading_events", METADATA,
    Column("site", Text, primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("type", Text, primary_key=True),
    Column("data", Text, primary_key=True),  # two cards can pass one gate in the same second
)
READING_ROLLUPS: Final = Table(
    "reading_rollups", METADATA,
    Column("series_id", BigInteger, nullable=False),
    Column("step", Integer, nullable=False),  # bucket length in ms: 300000 or 3600000
    Column("ts", BigInteger, nullable=False),  # bucket start, a multiple of the step (UTC)
    Column("count", Integer, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("increase", Float, nullable=False),
    # The figures in the key's index too: a report reads a series' buckets from the index alone
    # (vacuumed pages), in key order, instead of one table page per bucket (rows of every series
    # are written side by side as time passes).
    PrimaryKeyConstraint("series_id", "step", "ts",
                         postgresql_include=["count", "sum", "min", "max", "increase"]),
)
# One statement for a batch's readings: three arrays, unnested on the server. RETURNING says
# how many were new (psycopg's rowcount is not kept through SQLAlchemy for many rows).
_INSERT_READINGS: Final = text(
    "WITH new AS (INSERT INTO readings (series_id, ts, value) "
    "SELECT * FROM unnest(CAST(:sids AS bigint[]), CAST(:ts AS bigint[]), CAST(:values AS float8[])) "
    "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM new")
_INSERT_EVENTS: Final = text(
    "WITH new AS (INSERT INTO reading_events (site, device_id, ts, type, data) "
    "SELECT :site, * FROM unnest(CAST(:devices AS text[]), CAST(:ts AS bigint[]), CAST(:types AS text[]), "
    "CAST(:data AS text[])) ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM new")

# The 5-minute buckets of each series' span [lo, hi] (arrays): from the bucket of `lo` to the
# bucket of the first reading after `hi`, each reading's increase counted from the one before
# it, the reading before the first bucket included. Returns each series' first and last bucket
# (the hours to recompute) and how many buckets it wrote. Here and below each series' rows are
# read by a LATERAL subquery that holds the window function (the aggregate), which the planner
# cannot fold into a join: a range of the index per series, whatever it guesses of the arrays'
# length (as a join, it scanned the whole table to hash it).
_FIVE_MINUTES: Final = text("""
WITH span AS (
    SELECT t.sid, t.lo - t.lo % :five AS start, t.hi
    FROM unnest(CAST(:sids AS bigint[]), CAST(:los AS bigint[]), CAST(:his AS bigint[])) AS t(sid, lo, hi)
), bounds AS (
    SELECT s.sid, s.start, n.last - n.last % :five + :five AS stop,
           coalesce((SELECT r.ts FROM readings r WHERE r.series_id = s.sid AND r.ts < s.start
                     ORDER BY r.ts DESC LIMIT 1), s.start) AS since
    FROM span s, LATERAL (SELECT coalesce((SELECT r.ts FROM readings r WHERE r.series_id = s.sid AND r.ts > s.hi
                                           ORDER BY r.ts LIMIT 1), s.hi) AS last) n
), stepped AS (
    SELECT b.sid, b.start, r.ts, r.value, r.previous
    FROM bounds b, LATERAL (SELECT ts, value, lag(value) OVER (ORDER BY ts) AS previous FROM readings
                            WHERE series_id = b.sid AND ts >= b.since AND ts < b.stop) r
), written AS (
    INSERT INTO reading_rollups (series_id, step, ts, count, sum, min, max, increase)
    SELECT sid, :five, ts - ts % :five, count(*), sum(value), min(value), max(value),
           sum(CASE WHEN previous IS NULL THEN 0 WHEN value < previous THEN value ELSE value - previous END)
    FROM stepped WHERE ts >= start GROUP BY sid, ts - ts % :five
    ON CONFLICT (series_id, step, ts) DO UPDATE SET count = excluded.count, sum = excluded.sum,
        min = excluded.min, max = excluded.max, increase = excluded.increase
    RETURNING 1
)
SELECT sid, start, stop, (SELECT count(*) FROM written) FROM bounds
""")
# The hours around each series' 5-minute buckets, from those buckets (whole hours).
_HOURS: Final = text("""
INSERT INTO reading_rollups (series_id, step, ts, count, sum, min, max, increase)
SELECT h.sid, :hour, r.*
FROM unnest(CAST(:sids AS bigint[]), CAST(:starts AS bigint[]), CAST(:stops AS bigint[])) AS h(sid, start, stop),
     LATERAL (SELECT ts - ts % :hour, sum(count), sum(sum), min(min), max(max), sum(increase) FROM reading_rollups
              WHERE series_id = h.sid AND step = :five AND ts >= h.start AND ts < h.stop GROUP BY 1) r
ON CONFLICT (series_id, step, ts) DO UPDATE SET count = excluded.count, sum = excluded.sum,
    min = excluded.min, max = excluded.max, increase = excluded.increase
""")


class PostgresStore:
    """The readings of one site in PostgreSQL; `db` is the process's state store."""

    needs_rollups = False  # rollups were kept from the first reading written here

    def __init__(self, db: StateDatabase, site: str) -> None:
        self._db = db
        self.site = site
        self._series: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()  # the ids above, for the writer
        db.create(READING_SERIES, READINGS, READING_EVENTS, READING_ROLLUPS)

    def close(self) -> None:
        """The state store stays open: its owner closes it."""

    def write(self, samples: Iterable[Sample], events: Iterable[Event]) -> int:
        """Stores samples and events in one transaction; returns how many rows were new."""
        samples = list(samples)
        events = list(events)
        with self._lock:
            try:
                with self._db.write() as conn:
                    return self._write(conn, samples, events)
            except BaseException:
                self._series = {}  # it may hold ids made in the transaction that was rolled back
                raise

    def _write(self, conn: Connection, samples: list[Sample], events: list[Event]) -> int:
        series = self._ids(conn, {(s.device_id, m) for s in samples for m in s.values})
        sids: list[int] = []
        ts: list[int] = []
        values: list[float] = []
        spans: dict[int, tuple[int, int]] = {}  # series → first and last time written
        for s in samples:
            for metric, value in s.values.items():
                sid = series[(s.device_id, metric)]
                sids.append(sid)
                ts.append(s.ts_ms)
                values.append(value)
                lo, hi = spans.get(sid, (s.ts_ms, s.ts_ms))
                spans[sid] = (min(lo, s.ts_ms), max(hi, s.ts_ms))
        new = 0
        if sids:
            new += conn.execute(_INSERT_READINGS, {"sids": sids, "ts": ts, "values": values}).scalar_one()
        if events:
            new += conn.execute(_INSERT_EVENTS, {
                "site": self.site, "devices": [e.device_id for e in events], "ts": [e.ts_ms for e in events],
                "types": [e.type for e in events],
                "data": [json.dumps(e.data, ensure_ascii=False, sort_keys=True) for e in events],
            }).scalar_one()
        _roll_up(conn, spans)
        return int(new)

    def _ids(self, conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The series ids of `keys` (device, metric), made where missing. Another replica may
        make one at the same time: its insert waits for ours or ours for its, and both read the
        one row."""
        missing = keys - self._series.keys()
        if missing:
            s = READING_SERIES.c
            rows = [{"site": self.site, "device_id": d, "metric": m} for d, m in sorted(missing)]
            conn.execute(self._db.insert(READING_SERIES).on_conflict_do_nothing(), rows)
            self._series |= {(d, m): i for i, d, m in conn.execute(
                READING_SERIES.select().with_only_columns(s.id, s.device_id, s.metric).where(s.site == self.site))}
        return self._series

    def rebuild_rollups(self, series_done: Callable[[int, int], None] | None = None) -> int:
        """Recomputes every series' rollups from its raw readings; reports `(done, total)`
        series after each. Returns the 5-minute buckets written."""
        with self._db.read() as conn:
            spans = conn.execute(text(
                "SELECT * FROM (SELECT s.id, (SELECT min(ts) FROM readings WHERE series_id = s.id) AS lo, "
                "(SELECT max(ts) FROM readings WHERE series_id = s.id) AS hi FROM reading_series s "
                "WHERE s.site = :site) r WHERE lo IS NOT NULL ORDER BY id"), {"site": self.site}).all()
        written = 0
        for done, (sid, lo, hi) in enumerate(spans, 1):
            with self._db.write() as conn:
                written += _roll_up(conn, {sid: (lo, hi)})
            if series_done:
                series_done(done, len(spans))
        return written

    def delete_before(self, cutoff_ms: int) -> int:
        """Retention, as `SqliteStore.delete_before`: raw readings, 5-minute rollups and events
        older than the cutoff; hourly rollups stay. Series by series, a transaction each: the
        first run after `retention_days` was shortened deletes much, and no statement may take
        longer than the state store's timeout."""
        with self._db.read() as conn:
            sids = conn.execute(text("SELECT id FROM reading_series WHERE site = :site ORDER BY id"),
                                {"site": self.site}).scalars().all()
        deleted = 0
        for sid in sids:
            params = {"sid": sid, "cutoff": cutoff_ms, "five": FIVE_MIN_MS}
            with self._db.write() as conn:
                deleted += conn.execute(text("DELETE FROM readings WHERE series_id = :sid AND ts < :cutoff"),
                                        params).rowcount
                conn.execute(text("DELETE FROM reading_rollups WHERE series_id = :sid AND step = :five "
                                  "AND ts < :cutoff"), params)
        with self._db.write() as conn:
            deleted += conn.execute(text("DELETE FROM reading_events WHERE site = :site AND ts < :cutoff"),
                                    {"site": self.site, "cutoff": cutoff_ms}).rowcount
        return deleted

    def _query(self, sql: str, **params: Any) -> list[Any]:
        with self._db.read() as conn:
            return list(conn.execute(text(sql), {"site": self.site, **params}))

    def latest(self) -> dict[str, dict[str, Point]]:
        """The newest reading of every series: device → metric → point."""
        out: dict[str, dict[str, Point]] = {}
        for device_id, metric, ts, value in self._query(
            "SELECT s.device_id, s.metric, r.ts, r.value FROM reading_series s, LATERAL "
            "(SELECT ts, value FROM readings WHERE series_id = s.id ORDER BY ts DESC LIMIT 1) r "
            "WHERE s.site = :site"
        ):
            out.setdefault(device_id, {})[metric] = Point(ts, value)
        return out

    def values_at(
        self, metric: str, device_ids: Iterable[str], times_ms: Sequence[int]
    ) -> dict[str, list[float | None]]:
        """Each device's newest value of `metric` at or before each of `times_ms` (None where
        it has none)."""
        out: dict[str, list[float | None]] = {d: [None] * len(times_ms) for d in device_ids}
        for device_id, i, value in self._query(
            "SELECT s.device_id, t.i, (SELECT value FROM readings WHERE series_id = s.id AND ts <= t.at "
            "ORDER BY ts DESC LIMIT 1) FROM reading_series s, unnest(CAST(:times AS bigint[])) "
            "WITH ORDINALITY AS t(at, i) WHERE s.site = :site AND s.metric = :metric "
            "AND s.device_id = ANY(CAST(:devices AS text[]))",
            metric=metric, devices=list(out), times=list(times_ms),
        ):
            out[device_id][i - 1] = value
        return out

    def runs_since(self, metric: str, value: float, at: Sequence[tuple[str, int]]) -> list[int | None]:
        """For each (device, time): when the run of `value` that holds then began, i.e. the
        first reading after the last one that differed (None if none at or before has it)."""
        out: list[int | None] = [None] * len(at)
        for i, began in self._query(
            "SELECT q.i, (SELECT r.ts FROM readings r WHERE r.series_id = s.id AND r.value = :value "
            "AND r.ts <= q.at AND r.ts > coalesce((SELECT b.ts FROM readings b WHERE b.series_id = s.id "
            "AND b.ts <= q.at AND b.value != :value ORDER BY b.ts DESC LIMIT 1), -1) ORDER BY r.ts LIMIT 1) "
            "FROM unnest(CAST(:devices AS text[]), CAST(:times AS bigint[])) WITH ORDINALITY AS q(device_id, at, i) "
            "JOIN reading_series s ON s.site = :site AND s.device_id = q.device_id AND s.metric = :metric",
            metric=metric, value=value, devices=[d for d, _ in at], times=[t for _, t in at],
        ):
            out[i - 1] = None if began is None else int(began)
        return out

    def metrics_of(self, device_id: str) -> list[str]:
        return sorted(m for (m,) in self._query(
            "SELECT metric FROM reading_series WHERE site = :site AND device_id = :device", device=device_id))

    def points(self, device_id: str, metric: str, start_ms: int, end_ms: int, limit: int) -> list[Point]:
        return [Point(ts, v) for ts, v in self._query(
            "SELECT r.ts, r.value FROM reading_series s JOIN readings r ON r.series_id = s.id "
            "WHERE s.site = :site AND s.device_id = :device AND s.metric = :metric AND r.ts >= :start AND r.ts < :end "
            "ORDER BY r.ts LIMIT :limit",
            device=device_id, metric=metric, start=start_ms, end=end_ms, limit=limit)]

    def buckets(
        self, device_id: str, metric: str, start_ms: int, end_ms: int, step_ms: int, utc_offset_ms: int = 0
    ) -> list[Bucket]:
        """Mean, min, max and count per bucket, aligned to multiples of the step in local time
        (`utc_offset_ms`), as `SqliteStore.buckets`."""
        return [Bucket(b, mean, lo, hi, n) for b, mean, lo, hi, n in self._query(
            "SELECT ((r.ts + :off) / :step) * :step - :off AS b, avg(r.value), min(r.value), max(r.value), count(*) "
            "FROM reading_series s JOIN readings r ON r.series_id = s.id "
            "WHERE s.site = :site AND s.device_id = :device AND s.metric = :metric AND r.ts >= :start AND r.ts < :end "
            "GROUP BY b ORDER BY b",
            off=utc_offset_ms, step=step_ms, device=device_id, metric=metric, start=start_ms, end=end_ms)]

    def rollups(self, metric: str, device_ids: Iterable[str], spans: Sequence[tuple[int, int]],
                step_ms: int = HOUR_MS) -> dict[str, list[Rollup]]:
        """Each device's rollups of `metric` with buckets starting in any of the [start, end)
        `spans`, in time order; devices without the series are left out."""
        device_ids = list(device_ids)
        with self._db.read() as conn:
            have = self._having(conn, metric, device_ids)
            out: dict[str, list[Rollup]] = {d: [] for d in device_ids if d in have}
            for device_id, *row in conn.execute(text(
                "SELECT s.device_id, r.ts, r.count, r.sum, r.min, r.max, r.increase FROM reading_series s "
                "CROSS JOIN unnest(CAST(:starts AS bigint[]), CAST(:ends AS bigint[])) AS span(start, stop) "
                "JOIN reading_rollups r ON r.series_id = s.id AND r.step = :step AND r.ts >= span.start "
                "AND r.ts < span.stop WHERE s.site = :site AND s.metric = :metric "
                "AND s.device_id = ANY(CAST(:devices AS text[])) ORDER BY s.device_id, r.ts"),
                {"site": self.site, "metric": metric, "devices": list(out), "step": step_ms,
                 "starts": [a for a, _ in spans], "ends": [b for _, b in spans]},
            ):
                out[device_id].append(Rollup(*row))
        return out

    def _having(self, conn: Connection, metric: str, device_ids: list[str]) -> set[str]:
        """Those of `device_ids` that have a series of `metric`."""
        return set(conn.execute(text(
            "SELECT device_id FROM reading_series WHERE site = :site AND metric = :metric "
            "AND device_id = ANY(CAST(:devices AS text[]))"),
            {"site": self.site, "metric": metric, "devices": device_ids}).scalars())

    def group_sums(self, metric: str, device_ids: Iterable[str],
                   spans: Sequence[tuple[int, int, int, int]]) -> dict[str, dict[int, GroupSum]]:
        """Each device's rollups of `metric` summed by group of spans, as `SqliteStore.group_sums`."""
        device_ids = list(device_ids)
        with self._db.read() as conn:
            have = self._having(conn, metric, device_ids)
            out: dict[str, dict[int, GroupSum]] = {d: {} for d in device_ids if d in have}
            if not out or not spans:
                return out
            for device_id, group, increase_, readings, buckets in conn.execute(text(
                "SELECT s.device_id, span.g, sum(r.increase), sum(r.count), count(*) FROM reading_series s "
                "CROSS JOIN unnest(CAST(:groups AS int[]), CAST(:starts AS bigint[]), CAST(:ends AS bigint[]), "
                "CAST(:steps AS bigint[])) AS span(g, start, stop, step) "
                "JOIN reading_rollups r ON r.series_id = s.id AND r.step = span.step AND r.ts >= span.start "
                "AND r.ts < span.stop WHERE s.site = :site AND s.metric = :metric "
                "AND s.device_id = ANY(CAST(:devices AS text[])) GROUP BY s.device_id, span.g"),
                {"site": self.site, "metric": metric, "devices": list(out), "groups": [g for g, _, _, _ in spans],
                 "starts": [a for _, a, _, _ in spans], "ends": [b for _, _, b, _ in spans],
                 "steps": [st for _, _, _, st in spans]},
            ):
                out[device_id][group] = GroupSum(increase_, int(readings), buckets)
        return out

    def increases(self, metric: str, device_ids: Iterable[str], start_ms: int,
                  end_ms: int) -> dict[str, tuple[float, int] | None]:
        """What each device's counter `metric` counted in [start, end) (whole hours), and in how
        many hours it had readings; None: no readings at all."""
        out: dict[str, tuple[float, int] | None] = dict.fromkeys(device_ids)
        for device_id, total, hours in self._query(
            "SELECT s.device_id, r.total, r.hours FROM reading_series s, LATERAL (SELECT sum(increase) AS total, "
            "count(*) AS hours FROM reading_rollups WHERE series_id = s.id AND step = :hour AND ts >= :start "
            "AND ts < :end) r WHERE s.site = :site AND s.metric = :metric "
            "AND s.device_id = ANY(CAST(:devices AS text[]))",
            metric=metric, devices=list(out), hour=HOUR_MS, start=start_ms, end=end_ms,
        ):
            out[device_id] = None if total is None else (total, hours)
        return out

    def events(self, device_id: str, start_ms: int, end_ms: int, limit: int) -> list[Event]:
        return [Event(device_id, ts, type_, json.loads(data)) for ts, type_, data in self._query(
            "SELECT ts, type, data FROM reading_events WHERE site = :site AND device_id = :device "
            "AND ts >= :start AND ts < :end ORDER BY ts DESC LIMIT :limit",
            device=device_id, start=start_ms, end=end_ms, limit=limit)]


def _roll_up(conn: Connection, spans: dict[int, tuple[int, int]]) -> int:
    """Recomputes on the server the rollups of every bucket that readings written in `spans`
    (series → first and last time) fall into, plus the bucket of the next reading after them,
    as `gateway.storage.sqlite._roll_up`. Returns the 5-minute buckets written."""
    if not spans:
        return 0
    # Two writers of one site (an owner and one deposed a moment ago) may deadlock on its rows:
    # PostgreSQL aborts one, an OperationalError, which the sink retries as transient.
    order = sorted(spans)
    bounds = conn.execute(_FIVE_MINUTES, {
        "five": FIVE_MIN_MS, "sids": order, "los": [spans[s][0] for s in order],
        "his": [spans[s][1] for s in order]}).all()
    conn.execute(_HOURS, {"five": FIVE_MIN_MS, "hour": HOUR_MS, "sids": [sid for sid, *_ in bounds],
                          "starts": [start - start % HOUR_MS for _, start, _, _ in bounds],
                          "stops": [stop + (-stop) % HOUR_MS for _, _, stop, _ in bounds]})
    return int(bounds[0][3])
