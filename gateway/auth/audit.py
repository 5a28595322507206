"""The audit trail: who changed what and when (users, API keys, login lockouts), newest
first. It lives in the shared state database; the time of each entry is passed in."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.storage.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,          -- Unix milliseconds
    actor TEXT NOT NULL,          -- a user name, "key:<id>" or "client:<address>"
    action TEXT NOT NULL,         -- e.g. "user.add", "api_key.revoke", "login.locked"
    target TEXT NOT NULL,         -- the user name or API key id acted on
    detail TEXT NOT NULL          -- a JSON object
);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, id);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, id);
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_ms: int
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]


class AuditTrail:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, _SCHEMA)
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(self, at_ms: int, actor: str, action: str, target: str, detail: Mapping[str, object]) -> None:
        """Appends one entry. `detail` must be JSON-serialisable and never hold a secret."""
        text = json.dumps(dict(detail), ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._conn.execute(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (at_ms, actor, action, target, text),
            )

    def about(self, target: str, limit: int = 1000) -> list[AuditEntry]:
        """The newest entries about one target, e.g. "alert:17"."""
        with self._lock:
            rows = self._conn.execute("SELECT id, at, actor, action, target, detail FROM audit WHERE target = ? "
                                      "ORDER BY id DESC LIMIT ?", (target, limit)).fetchall()
        return [_entry(row) for row in rows]

    def newest(self, limit: int, action: str | None = None) -> list[AuditEntry]:
        query = "SELECT id, at, actor, action, target, detail FROM audit"
        args: tuple[object, ...] = ()
        if action is not None:
            query += " WHERE action = ?"
            args = (action,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_entry(row) for row in rows]


def _entry(row: tuple[int, int, str, str, str, str]) -> AuditEntry:
    id_, at, actor, action, target, detail = row
    return AuditEntry(id_, at, actor, action, target, json.loads(detail))
