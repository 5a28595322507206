"""What people write into the daily safety record (安全台账), in the state database, each
commit fsync'd: this is the ledger that must never go blank.

- **Checks**: what a person vouched for where no sensor could (餐具消毒, a door without a
  sensor, a fridge whose data has a gap). One row per (day, item): the last check wins.
- **Rectification** (整改) of a failed item: the problem found (存在问题), the measure taken
  (整改措施) and its outcome (整改结果), each by whoever wrote it, when. One row per (day,
  item, stage): the last text of a stage wins.
- **Signatures** of the day: the inspector (检查人), the person responsible (负责人) and the
  principal's review (园长审核). One row per (day, role), never replaced.

Who is always the signed-in login; every write is also an audit-trail entry, so nothing
replaced is ever lost. The rules of what may be written when are the API's
(gateway/api/reports.py); this module only keeps the rows.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, to_ms
from gateway.storage.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manual_checks (
    day TEXT NOT NULL,          -- the record's local date, ISO 8601
    item TEXT NOT NULL,         -- the item's id, e.g. canteen:tableware
    result TEXT NOT NULL,       -- ok | problem
    note TEXT NOT NULL,
    recorded_by TEXT NOT NULL,  -- the login that did the check
    at_ms INTEGER NOT NULL,     -- the clock's
    PRIMARY KEY (day, item)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rectifications (
    day TEXT NOT NULL,
    item TEXT NOT NULL,
    stage TEXT NOT NULL,        -- problem | measure | outcome
    text TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (day, item, stage)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_signatures (
    day TEXT NOT NULL,
    role TEXT NOT NULL,         -- inspector | responsible | review
    signed_by TEXT NOT NULL,    -- the login
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (day, role)
) WITHOUT ROWID;
"""

CheckResult = Literal["ok", "problem"]
Stage = Literal["problem", "measure", "outcome"]
SignRole = Literal["inspector", "responsible", "review"]
STAGES: tuple[Stage, ...] = ("problem", "measure", "outcome")
SIGN_ROLES: tuple[SignRole, ...] = ("inspector", "responsible", "review")


@dataclass(frozen=True, slots=True)
class ManualCheck:
    day: date
    item: str
    result: CheckResult
    note: str
    by: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Written:
    """One stage of a rectification."""

    day: date
    item: str
    stage: Stage
    text: str
    by: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Signed:
    day: date
    role: SignRole
    by: str
    at_ms: int


class AlreadySigned(Exception):
    """The day already has a signature in that role."""


class ManualChecks:
    def __init__(self, path: Path, audit: AuditTrail, clock: Clock) -> None:
        self._conn = connect(path, _SCHEMA, durable=True)
        # Before checks were signed by the login, a typed name was kept too: the audit trail has it.
        if "name" in {row[1] for row in self._conn.execute("PRAGMA table_info(manual_checks)")}:
            self._conn.execute("ALTER TABLE manual_checks DROP COLUMN name")
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    def complete(self, day: date, item: str, result: CheckResult, note: str, by: str) -> ManualCheck:
        """Records `by`'s check of `item` on `day`, replacing an earlier one."""
        check = ManualCheck(day, item, result, note, by, self._now_ms())
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO manual_checks (day, item, result, note, recorded_by, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)", (day.isoformat(), item, result, note, by, check.at_ms))
        self._audit.record(check.at_ms, by, "safety_check.completed", f"safety:{day.isoformat()}:{item}",
                           {"result": result, "note": note})
        return check

    def rectify(self, day: date, item: str, stage: Stage, text: str, by: str) -> Written:
        """Records `by`'s text for one stage of the rectification of `item`, replacing an earlier one."""
        written = Written(day, item, stage, text, by, self._now_ms())
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO rectifications (day, item, stage, text, recorded_by, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)", (day.isoformat(), item, stage, text, by, written.at_ms))
        self._audit.record(written.at_ms, by, "safety_check.rectified", f"safety:{day.isoformat()}:{item}",
                           {"stage": stage, "text": text})
        return written

    def sign(self, day: date, role: SignRole, by: str) -> Signed:
        """Signs the day's record in `role`; raises AlreadySigned if someone has."""
        signed = Signed(day, role, by, self._now_ms())
        try:
            with self._lock:
                self._conn.execute("INSERT INTO ledger_signatures (day, role, signed_by, at_ms) VALUES (?, ?, ?, ?)",
                                   (day.isoformat(), role, by, signed.at_ms))
        except sqlite3.IntegrityError:
            raise AlreadySigned(f"{day} is signed as {role} already") from None
        self._audit.record(signed.at_ms, by, "safety_record.signed", f"safety:{day.isoformat()}", {"role": role})
        return signed

    def between(self, first: date, last: date) -> list[ManualCheck]:
        """The checks of the days `first` to `last`, both included."""
        rows = self._rows("SELECT day, item, result, note, recorded_by, at_ms FROM manual_checks "
                          "WHERE day BETWEEN ? AND ? ORDER BY day, item", first, last)
        return [ManualCheck(date.fromisoformat(d), i, r, note, by, at) for d, i, r, note, by, at in rows]

    def rectifications(self, first: date, last: date) -> list[Written]:
        rows = self._rows("SELECT day, item, stage, text, recorded_by, at_ms FROM rectifications "
                          "WHERE day BETWEEN ? AND ? ORDER BY day, item", first, last)
        return [Written(date.fromisoformat(d), i, s, text, by, at) for d, i, s, text, by, at in rows]

    def signatures(self, first: date, last: date) -> list[Signed]:
        rows = self._rows("SELECT day, role, signed_by, at_ms FROM ledger_signatures WHERE day BETWEEN ? AND ? "
                          "ORDER BY day, at_ms", first, last)
        return [Signed(date.fromisoformat(d), role, by, at) for d, role, by, at in rows]

    def _rows(self, query: str, first: date, last: date) -> list[Any]:
        with self._lock:
            rows: list[Any] = self._conn.execute(query, (first.isoformat(), last.isoformat())).fetchall()
        return rows
