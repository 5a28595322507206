"""What one set of queries for two engines costs: the state store's typical write and read,
hand-written for each driver (sqlite3, psycopg 3) against SQLAlchemy Core on the same
engines, in the same run.

The write is an alert's life in one transaction each: raised (an insert and an audit entry),
then acknowledged (an update and an audit entry); the read is a site's newest 100 alerts.
SQLite commits as the state store's alerts do (WAL, synchronous=NORMAL); the PostgreSQL server
is the tests' (fsync off), so its figures are the drivers' and the library's cost, not a disk's. The
hand-written side is what the stores were before (one connection, BEGIN IMMEDIATE on SQLite);
the other is `gateway.storage.state.StateDatabase` with tables declared on its metadata.

    .venv/bin/python -m bench.state_store --alerts 2000
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import BigInteger, Column, Index, Table, Text, and_, select

from gateway.storage.state import ID, METADATA, StateDatabase, sqlite_url
from tests.services import start_postgres

BENCH_ALERTS = Table(
    "bench_alerts", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("site", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("first", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),
    Index("bench_alerts_open", "site", "state"),
)
BENCH_AUDIT = Table(
    "bench_audit", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("site", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
)

_DDL = {
    "sqlite": """
        CREATE TABLE bench_alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL, rule TEXT NOT NULL,
            device_id TEXT NOT NULL, state TEXT NOT NULL, first BIGINT NOT NULL, detail TEXT NOT NULL);
        CREATE INDEX bench_alerts_open ON bench_alerts (site, state);
        CREATE TABLE bench_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL, at BIGINT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL);""",
    "postgresql": """
        CREATE TABLE bench_alerts (id BIGSERIAL PRIMARY KEY, site TEXT NOT NULL, rule TEXT NOT NULL,
            device_id TEXT NOT NULL, state TEXT NOT NULL, first BIGINT NOT NULL, detail TEXT NOT NULL);
        CREATE INDEX bench_alerts_open ON bench_alerts (site, state);
        CREATE TABLE bench_audit (id BIGSERIAL PRIMARY KEY, site TEXT NOT NULL, at BIGINT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL);""",
}


class Core:
    """The alert's life through SQLAlchemy Core."""

    def __init__(self, db: StateDatabase) -> None:
        self.db = db
        db.create(BENCH_ALERTS, BENCH_AUDIT)

    def life(self, i: int) -> None:
        with self.db.write() as conn:
            alert = conn.execute(BENCH_ALERTS.insert().values(
                site="kg", rule="leak", device_id=f"wm-{i % 50}", state="active", first=i, detail="{}",
            ).returning(BENCH_ALERTS.c.id)).scalar_one()
            conn.execute(BENCH_AUDIT.insert().values(site="kg", at=i, action="alert.raised", target=f"alert:{alert}"))
        with self.db.write() as conn:
            conn.execute(BENCH_ALERTS.update().where(and_(BENCH_ALERTS.c.id == alert, BENCH_ALERTS.c.site == "kg"))
                         .values(state="acknowledged"))
            conn.execute(BENCH_AUDIT.insert().values(site="kg", at=i, action="alert.ack", target=f"alert:{alert}"))

    def read(self) -> int:
        with self.db.read() as conn:
            return len(conn.execute(select(BENCH_ALERTS).where(BENCH_ALERTS.c.site == "kg")
                                    .order_by(BENCH_ALERTS.c.id.desc()).limit(100)).all())


class SqliteByHand:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_DDL["sqlite"])

    def life(self, i: int) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        alert = c.execute("INSERT INTO bench_alerts (site, rule, device_id, state, first, detail) "
                          "VALUES (?, ?, ?, ?, ?, ?) RETURNING id", ("kg", "leak", f"wm-{i % 50}", "active", i, "{}"),
                          ).fetchone()[0]
        c.execute("INSERT INTO bench_audit (site, at, action, target) VALUES (?, ?, ?, ?)",
                  ("kg", i, "alert.raised", f"alert:{alert}"))
        c.execute("COMMIT")
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE bench_alerts SET state = ? WHERE id = ? AND site = ?", ("acknowledged", alert, "kg"))
        c.execute("INSERT INTO bench_audit (site, at, action, target) VALUES (?, ?, ?, ?)",
                  ("kg", i, "alert.ack", f"alert:{alert}"))
        c.execute("COMMIT")

    def read(self) -> int:
        return len(self.conn.execute("SELECT * FROM bench_alerts WHERE site = ? ORDER BY id DESC LIMIT 100",
                                     ("kg",)).fetchall())


class PsycopgByHand:
    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo)
        with self.conn.transaction():
            self.conn.execute(_DDL["postgresql"].encode())

    def life(self, i: int) -> None:
        c = self.conn
        with c.transaction():
            row = c.execute("INSERT INTO bench_alerts (site, rule, device_id, state, first, detail) "
                            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                            ("kg", "leak", f"wm-{i % 50}", "active", i, "{}")).fetchone()
            assert row is not None
            c.execute("INSERT INTO bench_audit (site, at, action, target) VALUES (%s, %s, %s, %s)",
                      ("kg", i, "alert.raised", f"alert:{row[0]}"))
        with c.transaction():
            c.execute("UPDATE bench_alerts SET state = %s WHERE id = %s AND site = %s", ("acknowledged", row[0], "kg"))
            c.execute("INSERT INTO bench_audit (site, at, action, target) VALUES (%s, %s, %s, %s)",
                      ("kg", i, "alert.ack", f"alert:{row[0]}"))

    def read(self) -> int:
        with self.conn.transaction():
            return len(self.conn.execute("SELECT * FROM bench_alerts WHERE site = %s ORDER BY id DESC LIMIT 100",
                                         ("kg",)).fetchall())


def timed(what: Callable[[int], object], n: int) -> float:
    """Median µs of `n` calls (after a warm-up tenth)."""
    for i in range(n // 10):
        what(-i)
    took = []
    for i in range(n):
        start = time.perf_counter()
        what(i)
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=2000, help="alert lives (and as many reads) per variant")
    args = parser.parse_args()
    server = start_postgres()
    try:
        for name in ("byhand", "core"):
            server.execute(f"CREATE SCHEMA {name}")
        with tempfile.TemporaryDirectory() as tmp:
            variants: list[tuple[str, SqliteByHand | PsycopgByHand | Core]] = [
                ("SQLite, sqlite3 by hand", SqliteByHand(Path(tmp) / "byhand.db")),
                ("SQLite, SQLAlchemy Core", Core(StateDatabase(sqlite_url(Path(tmp) / "core.db")))),
                ("PostgreSQL, psycopg 3 by hand", PsycopgByHand(
                    f"host={server.host} port={server.port} user={server.user} dbname=postgres "
                    "options=-csearch_path=byhand")),
                ("PostgreSQL, SQLAlchemy Core", Core(StateDatabase(server.url(schema="core")))),
            ]
            print(f"{args.alerts} alert lives (2 transactions, 4 statements) and reads of the newest 100 alerts,"
                  " medians")
            print(f"{'':32}{'a life, µs':>14}{'a read, µs':>14}")
            for label, variant in variants:
                life = timed(variant.life, args.alerts)
                read = timed(lambda _i, v=variant: v.read(), args.alerts)  # type: ignore[misc]
                print(f"{label:32}{life:14.0f}{read:14.0f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
