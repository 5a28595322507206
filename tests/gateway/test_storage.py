"""The embedded stores on real SQLite files."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.base import Event, Sample
from gateway.storage.sqlite import FIVE_MIN_MS, HOUR_MS, Bucket, Point, Rollup, SqliteStore

T0 = 1_795_219_200_000  # 2026-11-21T00:00:00Z
MIN = 60_000


def test_write_is_idempotent_per_device_metric_and_time(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    samples = [Sample("m1", T0 + i * MIN, {"energy_kwh": 100.0 + i, "power_w": 2000.0}) for i in range(10)]
    assert store.write(samples, []) == 20
    assert store.write(samples[5:], []) == 0  # a redelivery stores nothing new
    assert store.write([Sample("m1", T0 + 10 * MIN, {"energy_kwh": 110.0})], []) == 1
    points = store.points("m1", "energy_kwh", T0, T0 + 60 * MIN, limit=100)
    assert [p.value for p in points] == [100.0 + i for i in range(11)]
    assert store.metrics_of("m1") == ["energy_kwh", "power_w"]
    store.close()


def test_series_survive_reopening_and_latest_is_per_metric(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    store.write([Sample("f", T0, {"temperature_c": 4.0, "door_open": 0.0}),
                 Sample("f", T0 + MIN, {"temperature_c": 5.5})], [])
    store.close()
    again = SqliteStore(tmp_path / "r.db")
    assert again.latest() == {"f": {"temperature_c": Point(T0 + MIN, 5.5), "door_open": Point(T0, 0.0)}}
    again.write([Sample("f", T0 + 2 * MIN, {"temperature_c": 6.0})], [])
    assert again.latest()["f"]["temperature_c"] == Point(T0 + 2 * MIN, 6.0)
    again.close()


def test_buckets_align_to_local_time(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
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


def test_points_respect_range_and_limit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    store.write([Sample("m", T0 + i * MIN, {"power_w": float(i)}) for i in range(50)], [])
    assert [p.value for p in store.points("m", "power_w", T0 + 10 * MIN, T0 + 20 * MIN, 100)] == [
        float(i) for i in range(10, 20)
    ]
    assert len(store.points("m", "power_w", T0, T0 + 50 * MIN, 7)) == 7
    assert store.points("m", "nothing", T0, T0 + 50 * MIN, 7) == []
    store.close()


def test_retention_deletes_only_old_rows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
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


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 400), min_size=1, max_size=60), min_size=1, max_size=6),
       st.sampled_from([0, 37]))
def test_rollups_match_a_recomputation_whatever_the_order_of_arrival(batches: list[list[int]], reset_at: int) -> None:
    """Batches of minutes arrive in any order, overlapping and repeated: the rollups are
    those of all the readings in order. The counter rises by the minute (a reset at `reset_at`)."""
    def value(minute: int) -> float:
        return minute * 0.25 + 0.1 * (minute % 7) if minute < reset_at or not reset_at else (minute - reset_at) * 0.5

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "r.db")
        seen: dict[int, float] = {}
        for batch in batches:
            store.write([Sample("m", T0 + m * MIN, {"energy_kwh": value(m)}) for m in batch], [])
            seen |= {T0 + m * MIN: value(m) for m in batch}
        for step in (FIVE_MIN_MS, HOUR_MS):
            got = store.rollups("energy_kwh", ["m"], [(0, T0 + 1000 * MIN)], step)["m"]
            assert approx(got) == approx(expected_rollups(seen, step)), step
        store.close()


def test_rollups_are_rebuilt_for_a_database_from_before_them(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    store.write([Sample(d, T0 + i * MIN, {"energy_kwh": i * 1.5}) for d in ("a", "b") for i in range(130)], [])
    want = store.rollups("energy_kwh", ["a", "b"], [(0, T0 + 999 * MIN)])
    assert not store.needs_rollups
    store.close()
    with closing(sqlite3.connect(tmp_path / "r.db")) as conn, conn:
        conn.execute("DELETE FROM rollups")
        conn.execute("PRAGMA user_version = 0")
    store = SqliteStore(tmp_path / "r.db")
    assert store.needs_rollups
    progress: list[tuple[int, int]] = []
    assert store.rebuild_rollups(lambda done, total: progress.append((done, total))) == 2 * 26
    assert progress == [(1, 2), (2, 2)]
    assert not store.needs_rollups
    store.close()
    store = SqliteStore(tmp_path / "r.db")
    assert not store.needs_rollups
    assert store.rollups("energy_kwh", ["a", "b"], [(0, T0 + 999 * MIN)]) == want
    assert store.increases("energy_kwh", ["a", "b", "c"], T0, T0 + HOUR_MS) == {"a": (59 * 1.5, 1), "b": (59 * 1.5, 1), "c": None}
    store.close()


def test_retention_keeps_hourly_rollups(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    store.write([Sample("a", T0 + i * MIN, {"energy_kwh": float(i)}) for i in range(120)], [])
    store.delete_before(T0 + 2 * HOUR_MS)
    assert store.rollups("energy_kwh", ["a"], [(0, T0 + 999 * MIN)], FIVE_MIN_MS) == {"a": []}
    assert [r.increase for r in store.rollups("energy_kwh", ["a"], [(0, T0 + 999 * MIN)])["a"]] == [59.0, 60.0]
    store.close()
