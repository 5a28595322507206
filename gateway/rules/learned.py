"""What the rules have learned that others read, kept in the state store: each circuit's base
load (the median of its recent nights) and the limit above which load left on is waste.

The rules learn in the memory of the process that runs them; the daily record and the closing
board read it here instead, so that another replica, or this process after a restart, answers
the same. The gateway saves what changed once a second (`Gateway._watch`); a base load moves
once a night, so that is a handful of rows a day.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.storage.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS learned_base_loads (
    device_id TEXT PRIMARY KEY,
    base_w REAL,               -- NULL: not learned yet
    limit_w REAL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class BaseLoad:
    base_w: float | None  # None: not enough nights heard yet
    limit_w: float | None


class LearnedStore:
    def __init__(self, path: Path) -> None:
        self._conn = connect(path, _SCHEMA)
        self._lock = threading.Lock()  # one connection, used by one thread at a time
        self._saved = self.base_loads()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def save_base_loads(self, loads: Mapping[str, BaseLoad], now_ms: int) -> None:
        """Keeps the loads that changed since the last save. A rule that has not learned yet
        (just restarted: its nights are in the memory of the process that stopped) does not
        wipe out what was learned before."""
        changed = [(d, b) for d, b in loads.items()
                   if self._saved.get(d) != b and not (b.base_w is None and d in self._saved)]
        if not changed:
            return
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO learned_base_loads VALUES (?, ?, ?, ?)",
                [(d, b.base_w, b.limit_w, now_ms) for d, b in changed],
            )
        self._saved.update(changed)

    def base_loads(self) -> dict[str, BaseLoad]:
        with self._lock:
            rows = self._conn.execute("SELECT device_id, base_w, limit_w FROM learned_base_loads").fetchall()
        return {d: BaseLoad(base, limit) for d, base, limit in rows}
