"""The readings store on both engines: a SQLite file (`SqliteStore`) and a schema of the
session's PostgreSQL (`PostgresStore`) pass the same tests; on PostgreSQL, sites that share the
database and replicas that share a site."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from devices.base import Event, Sample
from gateway.sinks import TransientSinkError
from gateway.sinks.sqlite import SqliteSink
from gateway.storage import sqlite as sqlite_store
from gateway.storage.postgres import READING_ROLLUPS, PostgresStore
from gateway.storage.readings import ReadingStore
from gateway.storage.sqlite import FIVE_MIN_MS, HOUR_MS, Bucket, Point, Rollup, SqliteStore
from gateway.storage.state import StateDatabase

T0 = 1_795_219_200_000  # 2026-11-21T00:00:00Z
MIN = 60_000

Opener = Callable[..., ReadingStore]


@pytest.fixture
def open_store(state_db: StateDatabase, tmp_path: Path) -> Iterator[Opener]:
    """Opens a site's readings store on the test's engine, `open_store(site="s")`: on SQLite
    the site's own file (opened again, the same file), on PostgreSQL the test's schema. The
    stores opened are closed after the test."""
    opened: list[ReadingStore] = []

    def open_(site: str = "s") -> ReadingStore:
        sqlite = state_db.dialect == "sqlite"
        store: ReadingStore = SqliteStore(tmp_path / f"{site}.db") if sqlite else PostgresStore(state_db, site)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def test_write_is_idempotent_per_device_metric_and_time(open_store: Opener) -> None:
    store = open_store()
    samples = [Sample("m1", T0 + i * MIN, {"energy_kwh": 100.0 + i, "power_w": 2000.0}) for i in range(10)]
    assert store.write(samples, []) == 20
    assert store.write(samples[5:], []) == 0  # a redelivery stores nothing new
    assert store.write([Sample("m1", T0 + 10 * MIN, {"energy_kwh": 110.0})], []) == 1
    card = Event("g", T0, "access", {"credential": "card:1", "granted": True})
    assert store.write(samples[:1], [card, Event("g", T0, "access", {"credential": "card:2", "granted": True})]) == 2
    assert store.write([], [card]) == 0
    points = store.points("m1", "energy_kwh", T0, T0 + 60 * MIN, limit=100)
    assert [p.value for p in points] == [100.0 + i for i in range(11)]
    assert store.metrics_of("m1") == ["energy_kwh", "power_w"]
    store.close()


def test_series_survive_reopening_and_latest_is_per_metric(open_store: Opener) -> None:
    store = open_store()
    store.write([Sample("f", T0, {"temperature_c": 4.0, "door_open": 0.0}),
                 Sample("f", T0 + MIN, {"temperature_c": 5.5})], [])
    store.close()
    again = open_store()
    assert again.latest() == {"f": {"temperature_c": Point(T0 + MIN, 5.5), "door_open": Point(T0, 0.0)}}
    again.write([Sample("f", T0 + 2 * MIN, {"temperature_c": 6.0})], [])
    assert again.latest()["f"]["temperature_c"] == Point(T0 + 2 * MIN, 6.0)
    again.close()


def test_buckets_align_to_local_time(open_store: Opener) -> None:
    store = open_store()
    # one reading a minute for two hours, value = minute index
    store.write([Sample("m", T0 + i * MIN, {"power_w": float(i)}) for i in range(120)], [])
    hourly = store.buckets("m", "power_w", T0, T0 + 120 * MIN, 60 * MIN)
    assert hourly == [Bucket(T0, 29.5, 0.0, 59.0, 60), Bucket(T0 + 60 * MIN, 89.5, 60.0, 119.0, 60)]
    # UTC+8: a day bucket starts at local midnight, 16:00 UTC the day before
    eight_h = 8 * 60 * MIN
    daily = store.buckets("m", "power_w", T0, T0 + 120 * MIN, 24 * 60 * MIN, utc_offset_ms=eight_h)
    assert [b.ts_ms for b in daily] == [T0 - eight_h]
    assert daily[0].count == 120
    store.close()


def test_points_respect_range_and_limit(open_store: Opener) -> None:
    store = open_store()
    store.write([Sample("m", T0 + i * MIN, {"power_w": float(i)}) for i in range(50)], [])
    assert [p.value for p in store.points("m", "power_w", T0 + 10 * MIN, T0 + 20 * MIN, 100)] == [
        float(i) for i in range(10, 20)
    ]
    assert len(store.points("m", "power_w", T0, T0 + 50 * MIN, 7)) == 7
    assert store.points("m", "nothing", T0, T0 + 50 * MIN, 7) == []
    store.close()


def test_retention_deletes_only_old_rows(open_store: Opener) -> None:
    store = open_store()
    store.write(
        [Sample(d, T0 + i * MIN, {"power_w": 1.0}) for d in ("a", "b") for i in range(10)],
        [Event("g", T0, "access", {"credential": "card:1", "granted": True}),
         Event("g", T0 + 9 * MIN, "access", {"credential": "card:2", "granted": False})],
    )
    assert store.delete_before(T0 + 5 * MIN) == 2 * 5 + 1
    assert len(store.points("a", "power_w", 0, T0 + 99 * MIN, 100)) == 5
    assert store.events("g", 0, T0 + 99 * MIN, 10) == [
        Event("g", T0 + 9 * MIN, "access", {"credential": "card:2", "granted": False})
    ]
    store.close()


def expected_rollups(readings: dict[int, float], step: int) -> list[Rollup]:
    """Rollups computed from scratch: all readings in time order."""
    out: dict[int, list[float]] = {}
    previous: float | None = None
    for ts in sorted(readings):
        value = readings[ts]
        b = out.setdefault(ts - ts % step, [0, 0.0, value, value, 0.0])
        b[0] += 1
        b[1] += value
        b[2], b[3] = min(b[2], value), max(b[3], value)
        b[4] += 0.0 if previous is None else value if value < previous else value - previous
        previous = value
    return [Rollup(ts, int(b[0]), b[1], b[2], b[3], b[4]) for ts, b in sorted(out.items())]


def approx(rollups: list[Rollup]) -> list[tuple[int, int, float, float, float, float]]:
    return [(r.ts_ms, r.count, round(r.sum, 6), r.min, r.max, round(r.increase, 6)) for r in rollups]


# A new site per example: on PostgreSQL each has series of its own in the test's schema.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(0, 400), min_size=1, max_size=60), min_size=1, max_size=6),
       st.sampled_from([0, 37]))
def test_rollups_match_a_recomputation_whatever_the_order_of_arrival(
    open_store: Opener, batches: list[list[int]], reset_at: int
) -> None:
    """Batches of minutes arrive in any order, overlapping and repeated: the rollups are
    those of all the readings in order. The counter rises by the minute (a reset at `reset_at`)."""
    def value(minute: int) -> float:
        return minute * 0.25 + 0.1 * (minute % 7) if minute < reset_at or not reset_at else (minute - reset_at) * 0.5

    store = open_store(f"s{uuid.uuid4().hex}")
    seen: dict[int, float] = {}
    for batch in batches:
        store.write([Sample("m", T0 + m * MIN, {"energy_kwh": value(m)}) for m in batch], [])
        seen |= {T0 + m * MIN: value(m) for m in batch}
    for step in (FIVE_MIN_MS, HOUR_MS):
        got = store.rollups("energy_kwh", ["m"], [(0, T0 + 1000 * MIN)], step)["m"]
        assert approx(got) == approx(expected_rollups(seen, step)), step
    store.close()


def test_rollups_stay_exact_when_a_series_goes_on_after_a_reopen_and_retention(open_store: Opener) -> None:
    """In-order readings are added to their buckets from the series' newest reading: one found
    again after the store was opened anew, or after retention deleted every reading before."""
    def value(minute: int) -> float:
        return minute * 0.5 if minute < 50 else (minute - 50) * 0.25  # the meter replaced at 50

    store = open_store()
    store.write([Sample("m", T0 + m * MIN, {"energy_kwh": value(m)}) for m in range(13)], [])
    store.close()
    store = open_store()  # opened anew: the newest reading is read back, not remembered
    store.write([Sample("m", T0 + m * MIN, {"energy_kwh": value(m)}) for m in range(13, 61)], [])
    store.write([Sample("m", T0 + m * MIN, {"energy_kwh": value(m)}) for m in range(61, 70)], [])
    seen = {T0 + m * MIN: value(m) for m in range(70)}
    for step in (FIVE_MIN_MS, HOUR_MS):
        got = store.rollups("energy_kwh", ["m"], [(0, T0 + 1000 * MIN)], step)["m"]
        assert approx(got) == approx(expected_rollups(seen, step)), step
    store.delete_before(T0 + 999 * MIN)  # every reading gone: the next one has nothing to count up from
    store.write([Sample("m", T0 + 1000 * MIN, {"energy_kwh": 500.0})], [])
    got = store.rollups("energy_kwh", ["m"], [(T0 + 1000 * MIN, T0 + 2000 * MIN)], FIVE_MIN_MS)["m"]
    assert approx(got) == approx(expected_rollups({T0 + 1000 * MIN: 500.0}, FIVE_MIN_MS))
    store.close()


def test_rollups_are_rebuilt_for_a_database_from_before_them(open_store: Opener, state_db: StateDatabase) -> None:
    store = open_store()
    store.write([Sample(d, T0 + i * MIN, {"energy_kwh": i * 1.5}) for d in ("a", "b") for i in range(130)], [])
    want = store.rollups("energy_kwh", ["a", "b"], [(0, T0 + 999 * MIN)])
    assert not store.needs_rollups
    if isinstance(store, SqliteStore):  # a file from before rollups: its version says so
        store.close()
        with closing(sqlite3.connect(store.path)) as file, file:
            file.execute("DELETE FROM rollups")
            file.execute("PRAGMA user_version = 0")
        store = open_store()
        assert store.needs_rollups
    else:  # PostgreSQL has had rollups from its first reading; a rebuild works all the same
        with state_db.write() as conn:
            conn.execute(delete(READING_ROLLUPS))
    assert store.rollups("energy_kwh", ["a", "b"], [(0, T0 + 999 * MIN)]) == {"a": [], "b": []}
    progress: list[tuple[int, int]] = []
    assert store.rebuild_rollups(lambda done, total: progress.append((done, total))) == 2 * 26
    assert progress == [(1, 2), (2, 2)]
    assert not store.needs_rollups
    store.close()
    store = open_store()
    assert not store.needs_rollups
    assert store.rollups("energy_kwh", ["a", "b"], [(0, T0 + 999 * MIN)]) == want
    assert store.increases("energy_kwh", ["a", "b", "c"], T0, T0 + HOUR_MS) == {"a": (59 * 1.5, 1), "b": (59 * 1.5, 1), "c": None}
    store.close()


def test_rollups_of_many_devices_over_many_spans_in_one_call_are_each_device_s_spans_in_order(
        open_store: Opener) -> None:
    """A report asks for hundreds of meters and the hours that a building's opening splits:
    one call answers what a call a device and a span would, each device's buckets in time order."""
    store = open_store()
    devices = [f"m{k}" for k in range(5)]
    store.write([Sample(d, T0 + i * MIN, {"energy_kwh": i * (k + 1) * 0.5}) for k, d in enumerate(devices[:4])
                 for i in range(300)], [])
    spans = [(T0 + 10 * MIN, T0 + 40 * MIN), (T0 + HOUR_MS, T0 + 2 * HOUR_MS), (T0 + 4 * HOUR_MS, T0 + 5 * HOUR_MS)]
    asked = [devices[3], devices[0], devices[4], devices[2]]  # m4 has no series; m1 is not asked for
    for step in (FIVE_MIN_MS, HOUR_MS):
        got = store.rollups("energy_kwh", asked, spans, step)
        one_by_one = {d: [r for span in spans for r in store.rollups("energy_kwh", [d], [span], step)[d]]
                      for d in asked if d != devices[4]}
        assert got == one_by_one
        assert list(got) == [devices[3], devices[0], devices[2]]
        assert all(len(rollups) > 1 and [r.ts_ms for r in rollups] == sorted(r.ts_ms for r in rollups)
                   for rollups in got.values())
    assert store.rollups("energy_kwh", asked, []) == {d: [] for d in asked if d != devices[4]}
    assert store.increases("energy_kwh", asked, T0, T0 + 2 * HOUR_MS) == {
        d: store.increases("energy_kwh", [d], T0, T0 + 2 * HOUR_MS)[d] for d in asked}
    store.close()


def test_group_sums_are_the_rollups_of_each_group_s_spans_added_up(open_store: Opener,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A report sums each meter's buckets by time-of-use period and opening: groups of spans,
    hourly and 5-minute, one of them over the whole time; what `rollups` gives, added up."""
    store = open_store()
    devices = [f"m{k}" for k in range(4)]
    store.write([Sample(d, T0 + i * MIN, {"energy_kwh": i * (k + 1) * 0.25}) for k, d in enumerate(devices[:3])
                 for i in range(300) if not (k == 2 and 60 <= i < 180)], [])  # m2 silent two hours
    spans = [(0, T0, T0 + HOUR_MS, HOUR_MS), (1, T0 + HOUR_MS, T0 + HOUR_MS + 25 * MIN, FIVE_MIN_MS),
             (0, T0 + HOUR_MS + 25 * MIN, T0 + 2 * HOUR_MS, FIVE_MIN_MS), (1, T0 + 2 * HOUR_MS, T0 + 5 * HOUR_MS, HOUR_MS),
             (7, T0, T0 + 5 * HOUR_MS, HOUR_MS)]
    got = store.group_sums("energy_kwh", devices, spans)
    assert list(got) == devices[:3]  # m3 has no series
    for d in devices[:3]:
        want: dict[int, tuple[float, int, int]] = {}
        for group, start, end, step in spans:
            for r in store.rollups("energy_kwh", [d], [(start, end)], step)[d]:
                inc, n, buckets = want.get(group, (0.0, 0, 0))
                want[group] = (inc + r.increase, n + r.count, buckets + 1)
        assert set(got[d]) == set(want)
        for group, (inc, n, buckets) in want.items():
            assert got[d][group].increase == pytest.approx(inc)
            assert (got[d][group].readings, got[d][group].buckets) == (n, buckets)
    assert (got["m0"][7].readings, got["m0"][7].buckets) == (300, 5)
    assert got["m2"][7].buckets == 3  # the hours it spoke in
    assert store.group_sums("energy_kwh", devices, []) == {d: {} for d in devices[:3]}
    monkeypatch.setattr(sqlite_store, "SPANS_A_QUERY", 2)  # a SQLite query takes so many spans: several
    chunked = store.group_sums("energy_kwh", devices, spans)
    assert {d: set(groups) for d, groups in chunked.items()} == {d: set(groups) for d, groups in got.items()}
    for d, groups in got.items():
        for g, summed in groups.items():
            assert chunked[d][g].increase == pytest.approx(summed.increase)
            assert chunked[d][g][1:] == summed[1:]
    store.close()


def test_retention_keeps_hourly_rollups(open_store: Opener) -> None:
    store = open_store()
    store.write([Sample("a", T0 + i * MIN, {"energy_kwh": float(i)}) for i in range(120)], [])
    store.delete_before(T0 + 2 * HOUR_MS)
    assert store.rollups("energy_kwh", ["a"], [(0, T0 + 999 * MIN)], FIVE_MIN_MS) == {"a": []}
    assert [r.increase for r in store.rollups("energy_kwh", ["a"], [(0, T0 + 999 * MIN)])["a"]] == [59.0, 60.0]
    store.close()


def test_values_at_times_and_runs_of_a_value(open_store: Opener) -> None:
    store = open_store()
    store.write([Sample("d", T0 + i * MIN, {"door_open": v}) for i, v in enumerate([0.0, 1.0, 1.0, 0.0, 1.0])], [])
    assert store.values_at("door_open", ["d", "x"], [T0 - 1, T0 + MIN + MIN // 2, T0 + 10 * MIN]) == {
        "d": [None, 1.0, 1.0], "x": [None, None, None]}
    at = [("d", T0 + 2 * MIN + 1), ("d", T0 + 3 * MIN), ("d", T0 + 10 * MIN), ("x", T0), ("d", T0 - 1)]
    assert store.runs_since("door_open", 1.0, at) == [T0 + MIN, None, T0 + 4 * MIN, None, None]
    store.close()


def test_a_thread_s_kept_read_connection_sees_every_write_and_holds_no_snapshot(tmp_path: Path) -> None:
    """Each thread reads on a connection of its own kept open (opening one was 250 µs of every
    query): it sees what was written after it opened, and between queries it holds nothing that
    keeps the writer from folding the whole WAL into the database — partly read answers (one row
    of several) included."""
    store = SqliteStore(tmp_path / "readings.db")
    store.write([Sample("d", T0 + i * MIN, {"door_open": float(i % 2)}) for i in range(50)], [])
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            assert list(pool.map(lambda _: len(store.points("d", "door_open", 0, 2**62, 1000)), range(4))) == [50] * 4
        store.write([Sample("d", T0 + 50 * MIN, {"door_open": 1.0})], [])
        assert list(pool.map(lambda _: store.latest()["d"]["door_open"].ts_ms, range(4))) == [T0 + 50 * MIN] * 4
        pool.submit(store.values_at, "door_open", ["d"], [T0 + 3 * MIN, T0 + 4 * MIN]).result()
        pool.submit(store.runs_since, "door_open", 1.0, [("d", T0 + 9 * MIN)]).result()
        with closing(sqlite3.connect(tmp_path / "readings.db")) as writer:
            busy, _, _ = writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
        assert (tmp_path / "readings.db-wal").stat().st_size == 0
    store.close()


def _site_readings(store: ReadingStore, base: float) -> None:
    store.write([Sample("m", T0 + i * MIN, {"energy_kwh": base + i}) for i in range(90)],
                [Event("g", T0, "access", {"credential": f"card:{base:g}", "granted": True})])


def _as_seen(store: ReadingStore) -> tuple[object, ...]:
    """Everything a store answers about device m and gate g."""
    span = [(0, T0 + 999 * MIN)]
    return (store.latest(), store.metrics_of("m"), store.points("m", "energy_kwh", 0, T0 + 999 * MIN, 1000),
            store.buckets("m", "energy_kwh", T0, T0 + 999 * MIN, HOUR_MS),
            store.rollups("energy_kwh", ["m"], span, FIVE_MIN_MS), store.rollups("energy_kwh", ["m"], span),
            store.increases("energy_kwh", ["m"], T0, T0 + 2 * HOUR_MS),
            store.values_at("energy_kwh", ["m"], [T0 + 30 * MIN]),
            store.runs_since("energy_kwh", 1030.0, [("m", T0 + 30 * MIN)]), store.events("g", 0, T0 + 999 * MIN, 10))


@pytest.fixture
def replicas(postgres_state: str) -> Iterator[Callable[[], StateDatabase]]:
    """Opens the test's PostgreSQL schema as another process would, with an engine of its own;
    each is closed after the test."""
    opened: list[StateDatabase] = []

    def open_() -> StateDatabase:
        opened.append(StateDatabase(postgres_state))
        return opened[-1]

    yield open_
    for db in opened:
        db.close()


def test_a_write_held_up_past_the_state_stores_timeout_is_a_transient_sink_error(postgres_state: str) -> None:
    db = StateDatabase(postgres_state, statement_timeout_s=0.2)
    sink = SqliteSink(PostgresStore(db, "s"))
    batch = [Sample("m", T0, {"energy_kwh": 1.0})]
    try:
        with db.write() as holder:  # another transaction holds the readings' table
            holder.exec_driver_sql("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(TransientSinkError):
                asyncio.run(sink.write(batch, []))
        asyncio.run(sink.write(batch, []))  # and it goes once the table is free
    finally:
        sink.close()
        db.close()


def test_sites_sharing_a_database_see_only_their_own_readings(replicas: Callable[[], StateDatabase]) -> None:
    db = replicas()
    a, b = PostgresStore(db, "a"), PostgresStore(db, "b")
    _site_readings(a, 0.0)
    alone = _as_seen(a)
    _site_readings(b, 1000.0)  # the same device and metric ids, other values
    assert _as_seen(a) == alone
    assert _as_seen(b) != alone
    assert b.runs_since("energy_kwh", 1030.0, [("m", T0 + 30 * MIN)]) == [T0 + 30 * MIN]
    assert a.rebuild_rollups() == b.rebuild_rollups() == 18  # each its own series
    assert a.delete_before(T0 + HOUR_MS) == 60 + 1
    assert _as_seen(b)[2] == [Point(T0 + i * MIN, 1000.0 + i) for i in range(90)]
    assert len(b.events("g", 0, T0 + 999 * MIN, 10)) == 1


def test_a_replica_reads_what_another_wrote_and_carries_on_its_series(replicas: Callable[[], StateDatabase]) -> None:
    first, second = PostgresStore(replicas(), "s"), PostgresStore(replicas(), "s")  # two processes
    first.write([Sample("m", T0 + i * MIN, {"energy_kwh": float(i), "power_w": 5.0}) for i in range(60)],
                [Event("g", T0, "access", {"credential": "card:1", "granted": True})])
    assert _as_seen(second) == _as_seen(first)
    assert second.metrics_of("m") == ["energy_kwh", "power_w"]
    assert second.latest()["m"]["energy_kwh"] == Point(T0 + 59 * MIN, 59.0)
    # The second takes the site over: its readings continue the same series, counted on from the first's.
    assert second.write([Sample("m", T0 + i * MIN, {"energy_kwh": float(i)}) for i in range(60, 120)], []) == 60
    assert [r.increase for r in first.rollups("energy_kwh", ["m"], [(0, T0 + 999 * MIN)])["m"]] == [59.0, 60.0]
    assert _as_seen(first) == _as_seen(second)
