"""The readings store on its two engines, on the same generated readings in the same run:
write throughput (readings a second, rollups included, batches of 500 as the spool hands them
over) and a month's `increases` for 100 meters, for `SqliteStore` and `PostgresStore`; then
PostgreSQL's table sizes (`pg_total_relation_size`, indexes included) per row, for sizing a
district (docs/district.md), and the three ways of sending a batch's rows to PostgreSQL that
`PostgresStore` chose among.

The readings: 100 energy meters, one reading every 10 minutes each for 30 days (432,000
readings), in time order, each batch 5 rounds of all meters. SQLite commits as the gateway's
store does (WAL, synchronous=NORMAL); the PostgreSQL server is the tests' (fsync off, on this
machine's loopback), so its figures are the store's and the server's work, not a disk's; it
is vacuumed before the query, as autovacuum will have done to a month's pages long before a
report reads them.

    .venv/bin/python -m bench.readings_store
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects import postgresql

from devices.base import Sample
from gateway.storage.postgres import READING_ROLLUPS, READING_SERIES, READINGS, PostgresStore
from gateway.storage.readings import ReadingStore
from gateway.storage.sqlite import HOUR_MS, SqliteStore
from gateway.storage.state import StateDatabase
from tests.services import Postgres, start_postgres

T0 = 1_796_083_200_000  # 2026-12-01T00:00:00Z
STEP_MS = 600_000
DEVICES = 100
BATCH = 500


def batches(days: int) -> Iterator[list[Sample]]:
    """Rounds of every meter, in time order, `BATCH` readings at a time."""
    rounds_per_batch = BATCH // DEVICES
    rounds = days * 86_400_000 // STEP_MS
    for first in range(0, rounds, rounds_per_batch):
        yield [Sample(f"meter-{d:03}", T0 + r * STEP_MS, {"energy_kwh": r * 0.5 + d})
               for r in range(first, min(first + rounds_per_batch, rounds)) for d in range(DEVICES)]


def write_rate(store: ReadingStore, data: list[list[Sample]]) -> float:
    start = time.perf_counter()
    for batch in data:
        store.write(batch, [])
    return sum(map(len, data)) / (time.perf_counter() - start)


def month_query_ms(store: ReadingStore, days: int, repeat: int = 7) -> float:
    """Median ms of a month's increases of every meter (what the energy report asks per period)."""
    devices = [f"meter-{d:03}" for d in range(DEVICES)]
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        found = store.increases("energy_kwh", devices, T0, T0 + days * 24 * HOUR_MS)
        took.append(time.perf_counter() - start)
        assert all(found.values()), "every meter has its month"
    return statistics.median(took) * 1000


def table_sizes(db: StateDatabase) -> list[tuple[str, int, int]]:
    """Each readings table: its rows and its bytes with indexes and TOAST."""
    with db.read() as conn:
        return [(t.name, conn.execute(select(func.count()).select_from(t)).scalar_one(),
                 conn.execute(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": t.name}).scalar_one())
                for t in (READINGS, READING_ROLLUPS, READING_SERIES)]


def insert_forms(server: Postgres, data: list[list[Sample]]) -> list[tuple[str, float]]:
    """Readings a second of three ways to insert a batch (readings only, ids given), each in a
    schema of its own: SQLAlchemy Core's insert with a list (multi-row VALUES, RETURNING), the
    driver's pipelined executemany (no count of new rows), and three arrays unnested on the
    server (RETURNING counted in SQL: what PostgresStore does)."""
    rows = [[(i % DEVICES + 1, s.ts_ms, s.values["energy_kwh"]) for i, s in enumerate(batch)] for batch in data]

    def core(conn: Connection, batch: list[tuple[int, int, float]]) -> None:
        stmt = postgresql.insert(READINGS).on_conflict_do_nothing().returning(READINGS.c.ts)
        conn.execute(stmt, [{"series_id": s, "ts": t, "value": v} for s, t, v in batch]).all()

    def executemany(conn: Connection, batch: list[tuple[int, int, float]]) -> None:
        conn.exec_driver_sql("INSERT INTO readings VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", batch)

    def unnest(conn: Connection, batch: list[tuple[int, int, float]]) -> None:
        sids, ts, values = zip(*batch, strict=True)
        conn.execute(text(
            "WITH new AS (INSERT INTO readings SELECT * FROM unnest(CAST(:s AS bigint[]), CAST(:t AS bigint[]), "
            "CAST(:v AS float8[])) ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM new"),
            {"s": list(sids), "t": list(ts), "v": list(values)}).scalar_one()

    forms: list[tuple[str, Callable[[Connection, list[tuple[int, int, float]]], None]]] = [
        ("Core insert, a list", core), ("exec_driver_sql, executemany", executemany), ("unnest of arrays", unnest)]
    out = []
    for label, form in forms:
        db = StateDatabase(server.new_schema())
        db.create(READINGS)
        start = time.perf_counter()
        for batch in rows:
            with db.write() as conn:
                form(conn, batch)
        out.append((label, sum(map(len, rows)) / (time.perf_counter() - start)))
        db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    data = list(batches(args.days))
    n = sum(map(len, data))
    server = start_postgres()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = SqliteStore(Path(tmp) / "readings.db")
            db = StateDatabase(server.new_schema(), statement_timeout_s=60)
            postgres = PostgresStore(db, "bench")
            print(f"{n:,} readings of {DEVICES} meters over {args.days} days, batches of {BATCH}")
            print(f"{'':14}{'write, readings/s':>20}{'a month of increases, ms':>28}")
            for label, store in (("SQLite", sqlite), ("PostgreSQL", postgres)):
                rate = write_rate(store, data)
                if store is postgres:  # what autovacuum does to a month's pages long before a report reads them
                    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                        conn.exec_driver_sql("VACUUM ANALYZE")
                print(f"{label:14}{rate:20,.0f}{month_query_ms(store, args.days):28.1f}")
            print("PostgreSQL tables (indexes included):")
            for name, rows, size in table_sizes(db):
                print(f"  {name:16}{rows:>10,} rows {size / 2**20:8.1f} MiB {size / max(rows, 1):6.0f} B/row")
            sqlite.close()
            db.close()
        print("PostgreSQL, inserting the first third of the readings without rollups:")
        for label, rate in insert_forms(server, data[:len(data) // 3]):
            print(f"  {label:32}{rate:12,.0f} readings/s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
