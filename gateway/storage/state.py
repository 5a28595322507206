"""The embedded state store (SQLite). For now it holds the dead-letter log: every rejected
input with its reason, its source and a preview of its bytes, newest first, bounded."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from gateway.storage.sqlite import connect

_SCHEMA = """
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


@dataclass(frozen=True, slots=True)
class Rejection:
    at_ms: int
    source: str
    device_id: str
    reason: str
    detail: str
    preview: str


class DeadLetterLog:
    def __init__(self, path: Path, keep: int) -> None:
        self.path = path
        self._keep = keep
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def write(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO rejected (at, source, device_id, reason, detail, preview) VALUES (?, ?, ?, ?, ?, ?)",
                [(r.at_ms, r.source, r.device_id, r.reason, r.detail, r.preview) for r in rejections],
            )
            conn.execute(
                "DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?", (self._keep,)
            )
            conn.execute("COMMIT")

    def newest(self, limit: int, reason: str | None = None) -> list[Rejection]:
        query = "SELECT at, source, device_id, reason, detail, preview FROM rejected"
        args: tuple[object, ...] = ()
        if reason is not None:
            query += " WHERE reason = ?"
            args = (reason,)
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)) as conn:
            rows = conn.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Rejection(*row) for row in rows]
