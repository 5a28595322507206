"""Manual checks of the safety record: what a person vouched for where no sensor could (餐具消毒,
a door without a sensor, a fridge whose data has a gap). One row per (day, item): the last
completion wins; every completion is also an audit-trail entry, so none is ever lost.
In the state database, each commit fsync'd: this is the ledger that must never go blank."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, to_ms
from gateway.storage.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manual_checks (
    day TEXT NOT NULL,          -- the record's local date, ISO 8601
    item TEXT NOT NULL,         -- the item's id, e.g. canteen:tableware
    name TEXT NOT NULL,         -- who did the check, as they signed
    result TEXT NOT NULL,       -- ok | problem
    note TEXT NOT NULL,
    recorded_by TEXT NOT NULL,  -- the login that recorded it
    at_ms INTEGER NOT NULL,     -- the clock's
    PRIMARY KEY (day, item)
) WITHOUT ROWID;
"""

CheckResult = Literal["ok", "problem"]


@dataclass(frozen=True, slots=True)
class ManualCheck:
    day: date
    item: str
    name: str
    result: CheckResult
    note: str
    by: str
    at_ms: int


class ManualChecks:
    def __init__(self, path: Path, audit: AuditTrail, clock: Clock) -> None:
        self._conn = connect(path, _SCHEMA, durable=True)
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def complete(self, day: date, item: str, name: str, result: CheckResult, note: str, by: str) -> ManualCheck:
        """Records a person's check of `item` on `day`, replacing an earlier one."""
        check = ManualCheck(day, item, name, result, note, by, to_ms(self._clock.now()))
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO manual_checks (day, item, name, result, note, recorded_by, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (day.isoformat(), item, name, result, note, by, check.at_ms),
            )
        self._audit.record(check.at_ms, by, "safety_check.completed", f"safety:{day.isoformat()}:{item}",
                           {"name": name, "result": result, "note": note})
        return check

    def between(self, first: date, last: date) -> list[ManualCheck]:
        """The checks of the days `first` to `last`, both included."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT day, item, name, result, note, recorded_by, at_ms FROM manual_checks WHERE day BETWEEN ? AND ? "
                "ORDER BY day, item", (first.isoformat(), last.isoformat())).fetchall()
        return [ManualCheck(date.fromisoformat(d), i, n, r, note, by, at) for d, i, n, r, note, by, at in rows]
