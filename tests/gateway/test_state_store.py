"""The state store's engine on SQLite and on PostgreSQL: tables created and upgraded from
their declaration, writers that wait for each other, and one audit trail per site."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Column, MetaData, Table, Text, func, select
from sqlalchemy.exc import OperationalError

from gateway.auth.audit import AUDIT, AuditTrail
from gateway.storage.state import ID, StateDatabase


def test_an_old_table_gets_the_columns_its_declaration_added_and_its_rows_a_site(state_db: StateDatabase) -> None:
    old = Table("things", MetaData(), Column("id", ID, primary_key=True), Column("name", Text, nullable=False))
    old.create(state_db.engine)
    with state_db.write() as conn:
        conn.execute(old.insert().values(name="旧"))
    new = Table("things", MetaData(), Column("id", ID, primary_key=True), Column("name", Text, nullable=False),
                Column("site", Text, nullable=False, server_default=""), Column("note", Text))
    state_db.create(new, site="kg")
    with state_db.read() as conn:
        assert conn.execute(select(new.c.name, new.c.site, new.c.note)).all() == [("旧", "kg", None)]


def test_a_failing_write_leaves_nothing(state_db: StateDatabase) -> None:
    audit = AuditTrail(state_db, "kg")

    def fail() -> None:
        with state_db.write() as conn:
            conn.execute(AUDIT.insert().values(at=1, actor="a", action="x", target="t", detail="{}", site="kg"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert audit.newest(10) == []


def test_writers_in_many_threads_all_land(state_db: StateDatabase) -> None:
    audit = AuditTrail(state_db, "kg")

    def write(n: int) -> None:
        for i in range(20):
            audit.record(i, f"w{n}", "test.write", f"t{n}", {"i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with state_db.read() as conn:
        assert conn.execute(select(func.count()).select_from(AUDIT)).scalar_one() == 160


def test_each_site_reads_its_own_trail(state_db: StateDatabase) -> None:
    a, b = AuditTrail(state_db, "a"), AuditTrail(state_db, "b")
    a.record(1, "李主任", "settings.dashboard", "site", {"version": 2})
    b.record(2, "王主任", "user.add", "黄老师", {})
    assert [(e.actor, e.target) for e in a.newest(10)] == [("李主任", "site")]
    assert [e.actor for e in b.about("黄老师")] == ["王主任"]
    assert a.about("黄老师") == []



def test_a_statement_stuck_on_postgresql_fails_in_bounded_time(postgres_state: str) -> None:
    """Behind another transaction's lock for ever: refused after the statement timeout, not a
    thread held until the server is restarted."""
    holder, waiter = StateDatabase(postgres_state), StateDatabase(postgres_state, statement_timeout_s=1)
    try:
        AuditTrail(holder, "kg")
        with holder.write() as conn:
            holder.lock(conn, AUDIT)
            started = time.monotonic()
            with pytest.raises(OperationalError, match="statement timeout"):
                AuditTrail(waiter, "kg").record(1, "someone", "test.write", "t", {})
            assert 0.9 < time.monotonic() - started < 5
    finally:
        holder.close()
        waiter.close()


def test_processes_starting_together_create_the_same_tables_once(state_db: StateDatabase) -> None:
    """Replicas that start at once on a new database each create every table they use."""
    tables = [Table(f"race_{i}", MetaData(), Column("id", ID, primary_key=True), Column("site", Text)) for i in range(3)]
    barrier = threading.Barrier(4)
    failed: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            state_db.create(*tables, site="kg")
        except Exception as exc:  # noqa: BLE001 - what a start would die of
            failed.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []
