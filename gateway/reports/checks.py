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

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, Row, Table, Text, inspect, select

from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, to_ms
from gateway.storage.state import METADATA, StateDatabase

MANUAL_CHECKS = Table(
    "manual_checks", METADATA,
    Column("day", Text, nullable=False),            # the record's local date, ISO 8601
    Column("item", Text, nullable=False),           # the item's id, e.g. canteen:tableware
    Column("result", Text, nullable=False),         # ok | problem
    Column("note", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),    # the login that did the check
    Column("at_ms", BigInteger, nullable=False),    # the clock's
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("site", "day", "item"),
    sqlite_with_rowid=False,
)
RECTIFICATIONS = Table(
    "rectifications", METADATA,
    Column("day", Text, nullable=False),
    Column("item", Text, nullable=False),
    Column("stage", Text, nullable=False),          # problem | measure | outcome
    Column("text", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("site", "day", "item", "stage"),
    sqlite_with_rowid=False,
)
LEDGER_SIGNATURES = Table(
    "ledger_signatures", METADATA,
    Column("day", Text, nullable=False),
    Column("role", Text, nullable=False),           # inspector | responsible | review
    Column("signed_by", Text, nullable=False),      # the login
    Column("at_ms", BigInteger, nullable=False),
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("site", "day", "role"),
    sqlite_with_rowid=False,
)

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
    """The daily record's checks, rectifications and signatures of one site."""

    def __init__(self, db: StateDatabase, site_id: str, audit: AuditTrail, clock: Clock) -> None:
        self._db = db
        self._site_id = site_id
        self._audit = audit
        self._clock = clock
        db.create(MANUAL_CHECKS, RECTIFICATIONS, LEDGER_SIGNATURES, site=site_id)
        with db.write() as conn:
            # Before checks were signed by the login, a typed name was kept too: the audit trail has it.
            if "name" in {c["name"] for c in inspect(conn).get_columns(MANUAL_CHECKS.name)}:
                conn.exec_driver_sql(f"ALTER TABLE {MANUAL_CHECKS.name} DROP COLUMN name")

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    def complete(self, day: date, item: str, result: CheckResult, note: str, by: str) -> ManualCheck:
        """Records `by`'s check of `item` on `day`, replacing an earlier one."""
        check = ManualCheck(day, item, result, note, by, self._now_ms())
        with self._db.write(durable=True) as conn:
            self._db.replace(conn, MANUAL_CHECKS, {"site": self._site_id, "day": day.isoformat(), "item": item},
                             {"result": result, "note": note, "recorded_by": by, "at_ms": check.at_ms})
        self._audit.record(check.at_ms, by, "safety_check.completed", f"safety:{day.isoformat()}:{item}",
                           {"result": result, "note": note})
        return check

    def rectify(self, day: date, item: str, stage: Stage, text: str, by: str) -> Written:
        """Records `by`'s text for one stage of the rectification of `item`, replacing an earlier one."""
        written = Written(day, item, stage, text, by, self._now_ms())
        with self._db.write(durable=True) as conn:
            self._db.replace(conn, RECTIFICATIONS,
                             {"site": self._site_id, "day": day.isoformat(), "item": item, "stage": stage},
                             {"text": text, "recorded_by": by, "at_ms": written.at_ms})
        self._audit.record(written.at_ms, by, "safety_check.rectified", f"safety:{day.isoformat()}:{item}",
                           {"stage": stage, "text": text})
        return written

    def sign(self, day: date, role: SignRole, by: str) -> Signed:
        """Signs the day's record in `role`; raises AlreadySigned if someone has."""
        signed = Signed(day, role, by, self._now_ms())
        with self._db.write(durable=True) as conn:
            new = self._db.add(conn, LEDGER_SIGNATURES, {"day": day.isoformat(), "role": role, "signed_by": by,
                                                         "at_ms": signed.at_ms, "site": self._site_id})
        if not new:
            raise AlreadySigned(f"{day} is signed as {role} already")
        self._audit.record(signed.at_ms, by, "safety_record.signed", f"safety:{day.isoformat()}", {"role": role})
        return signed

    def between(self, first: date, last: date) -> list[ManualCheck]:
        """The checks of the days `first` to `last`, both included."""
        c = MANUAL_CHECKS.c
        rows = self._rows(MANUAL_CHECKS, first, last, c.day, c.item, c.result, c.note, c.recorded_by, c.at_ms,
                          order=(c.day, c.item))
        return [ManualCheck(date.fromisoformat(r.day), r.item, r.result, r.note, r.recorded_by, r.at_ms) for r in rows]

    def rectifications(self, first: date, last: date) -> list[Written]:
        c = RECTIFICATIONS.c
        rows = self._rows(RECTIFICATIONS, first, last, c.day, c.item, c.stage, c.text, c.recorded_by, c.at_ms,
                          order=(c.day, c.item, c.stage))
        return [Written(date.fromisoformat(r.day), r.item, r.stage, r.text, r.recorded_by, r.at_ms) for r in rows]

    def signatures(self, first: date, last: date) -> list[Signed]:
        c = LEDGER_SIGNATURES.c
        rows = self._rows(LEDGER_SIGNATURES, first, last, c.day, c.role, c.signed_by, c.at_ms,
                          order=(c.day, c.at_ms, c.role))
        return [Signed(date.fromisoformat(r.day), r.role, r.signed_by, r.at_ms) for r in rows]

    def _rows(self, table: Table, first: date, last: date, *columns: Any, order: tuple[Any, ...]) -> list[Row[Any]]:
        """The site's rows of `table` of the days `first` to `last`, both included."""
        query = select(*columns).where(table.c.site == self._site_id,
                                       table.c.day.between(first.isoformat(), last.isoformat()))
        with self._db.read() as conn:
            return list(conn.execute(query.order_by(*order)).all())
