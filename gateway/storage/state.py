"""The state store: alerts, work orders, ledgers, registers, users, keys, audit, settings and
deliveries. One set of table definitions and queries (SQLAlchemy Core) for two engines:
SQLite, a file beside the readings (the embedded default), and PostgreSQL, which a
district's replicas share.

Each store module declares its tables on `METADATA` and asks `StateDatabase.create` for
them; a table of an earlier version gets the columns it lacks (declared once, in the table).
A store writes in `db.write()` and reads in `db.read()`: on SQLite a write transaction takes
the file's write lock at its start (BEGIN IMMEDIATE), so two writers wait for each other
(up to 30 s) instead of failing when one of them upgrades a read; on PostgreSQL rows lock as
usual."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.schema import CreateColumn

METADATA: Final = MetaData()
# The advisory lock that creating and upgrading tables takes on PostgreSQL (any number: the project's own).
_CREATE_LOCK: Final = 0x5C400
# How long closing waits for connections still in use by threads (`StateDatabase.close`).
CLOSE_WAIT_S: Final = 5.0

# An autoincrementing key: SQLite counts rows only in a column declared INTEGER PRIMARY KEY.
ID: Final = BigInteger().with_variant(Integer(), "sqlite")

_BUSY_TIMEOUT_S: Final = 30
# A server out of reach or a statement stuck behind a lock fails in bounded time instead of
# holding the thread that asked (the spool's, the event loop's) for ever: a state store's
# statements are small, and the lease's owner stops when it cannot renew in time.
_CONNECT_TIMEOUT_S: Final = 5
STATEMENT_TIMEOUT_S: Final = 10.0
_WRITE: Final = "state_write"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def of_site(table: Table, site: str, row_id: int | None = None) -> ColumnElement[bool]:
    """The site's rows of `table`; with `row_id`, that row if it is the site's (another site's
    row is as missing as one that does not exist)."""
    if row_id is None:
        return table.c.site == site
    return (table.c.site == site) & (table.c.id == row_id)


class StateDatabase:
    """One engine and its pool for every state store of the process. `url`: `sqlite:///<path>`
    or `postgresql+psycopg://user:password@host:port/database`."""

    def __init__(self, url: str, *, statement_timeout_s: float = STATEMENT_TIMEOUT_S, connections: int = 15) -> None:
        """`connections`: at most this many open at once to PostgreSQL (a third kept open)."""
        parsed = make_url(url)
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver would be psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._checked: set[Table] = set()  # tables created or checked by this process (`create`)
        self._claimed: set[tuple[Table, str | None]] = set()  # and the sites their old rows went to
        self._checking = threading.Lock()
        self.dialect: Final[str] = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                parsed, connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_connected)
            event.listen(self.engine, "begin", _sqlite_begin)
        elif self.dialect == "postgresql":
            kept = max(1, connections // 3)
            self.engine = create_engine(parsed, pool_size=kept, max_overflow=connections - kept, pool_pre_ping=True,
                                        connect_args={"connect_timeout": _CONNECT_TIMEOUT_S})
            timeout_ms = round(statement_timeout_s * 1000)

            def connected(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(f"SET statement_timeout = {timeout_ms}")
                dbapi_connection.commit()

            event.listen(self.engine, "connect", connected)
        else:
            raise ValueError(f"a state store is SQLite or PostgreSQL, not {self.dialect!r}")

    @property
    def description(self) -> str:
        """Where the state is, without a password: for logs and /health."""
        return self.engine.url.render_as_string(hide_password=True)

    def create(self, *tables: Table, site: str | None = None) -> None:
        """Creates the tables that are missing and adds to existing ones the columns they lack
        (a nullable column, or one with a server default). With `site`: rows of a state
        database from before sites were recorded (site '') become that site's. Each is done
        once per table (and site) and process: a district's many schools open the same stores."""
        with self._checking:
            todo = [t for t in tables if t not in self._checked]
            claims = [t for t in tables if site is not None and "site" in t.columns and (t, site) not in self._claimed]
        if not todo and not claims:
            return
        with self.write() as conn:  # on SQLite it writes: its lock from the start (BEGIN IMMEDIATE)
            if todo and self.dialect == "postgresql":
                # Replicas starting together on a new database: CREATE TABLE IF NOT EXISTS is not
                # safe against itself there (both see the table missing; one fails on the type).
                conn.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK)))
            METADATA.create_all(conn, tables=todo)
            inspector = inspect(conn)
            for table in todo:
                have = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have:
                        ddl = CreateColumn(column).compile(dialect=conn.dialect)
                        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
            for table in claims:
                conn.execute(table.update().where(table.c.site == "").values(site=site))
        with self._checking:
            self._checked.update(todo)
            self._claimed.update((t, site) for t in claims)

    @contextmanager
    def write(self, *, durable: bool = False) -> Iterator[Connection]:
        """A transaction that writes: committed at the end of the block, rolled back if it
        raises. On SQLite a commit survives a crash of the process; `durable`: a power cut too
        (it waits for the disk: for what people sign or keep, not for every alert's figures).
        PostgreSQL's commits are as durable as its server is configured."""
        options = {_WRITE: "FULL" if durable else "NORMAL"}
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads (one consistent view on both engines)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def lock(self, conn: Connection, table: Table) -> None:
        """Makes the rest of a write transaction the only writer of `table`, for a decision
        that counts rows before writing (a lockout, the next version number): on SQLite the
        write transaction holds the file's write lock already; on PostgreSQL, where two
        transactions would each count without the other's row, this takes the table's lock
        that writers wait for and readers do not."""
        if self.dialect == "postgresql":
            name = conn.dialect.identifier_preparer.format_table(table)
            conn.exec_driver_sql(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")

    def insert(self, table: Table) -> Any:
        """An INSERT that can say ON CONFLICT (`.on_conflict_do_update`/`_do_nothing`), in the
        engine's dialect: both spell it the same way."""
        return (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(table)

    def add(self, conn: Connection, table: Table, values: Mapping[str, object]) -> bool:
        """Inserts the row unless one with its key is there (INSERT OR IGNORE); whether it did.
        RETURNING says so: an INSERT's rowcount is not kept on every driver (SQLAlchemy drops
        psycopg's)."""
        key = next(iter(table.primary_key.columns))
        inserted = conn.execute(self.insert(table).values(dict(values)).on_conflict_do_nothing().returning(key))
        return inserted.first() is not None

    def replace(self, conn: Connection, table: Table, key: Mapping[str, object], values: Mapping[str, object]) -> None:
        """Writes the row of `key` with `values`, over the one there (INSERT OR REPLACE). Its
        ON CONFLICT names no key: a table of an earlier SQLite file keeps its primary key
        (`create` never rebuilds a table), which may lack a column that the declaration's has
        (`site`), and a conflict target must match a key exactly. On PostgreSQL a concurrent
        writer's new row makes the INSERT wait, then do nothing, and the UPDATE wins."""
        if not self.add(conn, table, {**key, **values}):
            conn.execute(table.update().where(*(table.c[k] == v for k, v in key.items())).values(dict(values)))

    def close(self) -> None:
        """Closes the pool's connections, once those in use have come back: a thread may still
        run a statement for a task cancelled at shutdown (a thread cannot be cancelled), and a
        connection dropped by the pool mid-statement is never closed (bounded wait)."""
        pool = self.engine.pool
        deadline = time.monotonic() + CLOSE_WAIT_S
        while isinstance(pool, QueuePool) and pool.checkedout() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.engine.dispose()


def _sqlite_connected(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver's own transaction handling is switched off: the "begin" event below says BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    synchronous = conn.get_execution_options().get(_WRITE)
    if synchronous is None:
        conn.exec_driver_sql("BEGIN")
        return
    conn.exec_driver_sql(f"PRAGMA synchronous={synchronous}")  # for this connection's next commits
    conn.exec_driver_sql("BEGIN IMMEDIATE")
