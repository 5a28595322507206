"""The sweep before a break (拉网式检查): 「新学期开学前、节假日前、重大活动前、学期放假前…拉网式检查」.

When one is due comes from the school calendar (`due_sweeps`): the last school day before a
closed stretch of at least `sweep.min_break_days` days, and the last day before school starts
again after one; the head may start one on any day (运动会前检查). Each building's checklist
is ticked item by item (正常 / 有问题, with a note) and signed by the signed-in person; what
the sensors said when it was signed is kept with the signature. The sweeps join the daily
record as one item per building (`sweep@<building>`, `SweepRegister`).

In the state database, each commit fsync'd, like the ledger's manual checks; every change is
also an audit-trail entry.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from gateway.auth.audit import AuditTrail
from gateway.auth.people import People
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import SiteConfig
from gateway.reports.checks import CheckResult
from gateway.reports.judging import record_item
from gateway.reports.safety_model import Category, Completion, Item, ItemStatus
from gateway.schedule.school_calendar import DayKind, SchoolCalendar, SchoolDay
from gateway.storage.sqlite import connect

SweepKind = Literal["before_break", "before_term", "on_demand"]
# A break longer than this (a summer) is not walked day by day to find its ends.
_LONGEST_BREAK: Final = 200


# ------------------------------------------------------------------------------- when


@dataclass(frozen=True, slots=True)
class Break:
    """Closed days in a row, both ends included, named after its first named day (国庆节)."""

    first: date
    last: date
    name_zh: str
    name_en: str
    term: bool  # a term break (寒假, 暑假) of the site file, not a holiday


@dataclass(frozen=True, slots=True)
class DueSweep:
    day: date
    kind: Literal["before_break", "before_term"]
    closed: Break

    @property
    def title(self) -> tuple[str, str]:
        zh, en = self.closed.name_zh, self.closed.name_en
        if self.kind == "before_break":
            return (f"{zh}放假前检查", f"Check before the {en} break") if zh else (
                "放假前检查", "Check before the break")
        if self.closed.term or not zh:
            return "新学期开学前检查", "Check before the new term"
        return f"{zh}假期结束前检查", f"Check before school resumes after {en}"


def _closed_from(cal: SchoolCalendar, first: date, step: int) -> list[SchoolDay]:
    """The closed days from `first` on (step 1) or back (step -1), until a school day."""
    out: list[SchoolDay] = []
    d = first
    while len(out) < _LONGEST_BREAK and not (day := cal.day(d)).school_day:
        out.append(day)
        d += timedelta(days=step)
    return out


def _break(days: list[SchoolDay]) -> Break:
    ordered = sorted(days, key=lambda d: d.date)
    named = next((d for d in ordered if d.name_zh), None)
    return Break(ordered[0].date, ordered[-1].date, named.name_zh if named else "", named.name_en if named else "",
                 any(d.kind is DayKind.TERM_BREAK for d in ordered))


def due_sweeps(cal: SchoolCalendar, min_break_days: int, first: date, last: date) -> list[DueSweep]:
    """The sweeps the calendar asks for on the days `first` to `last`, in order: before a
    break on its eve (the last school day), before school starts on the break's last day."""
    out = []
    d = first
    while d <= last:
        if cal.day(d).school_day:
            after = _closed_from(cal, d + timedelta(days=1), 1)
            if len(after) >= min_break_days:
                out.append(DueSweep(d, "before_break", _break(after)))
        elif cal.day(d + timedelta(days=1)).school_day:
            before = _closed_from(cal, d, -1)
            if len(before) >= min_break_days:
                out.append(DueSweep(d, "before_term", _break(before)))
        d += timedelta(days=1)
    return out


# ------------------------------------------------------------------------------ the store


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL,              -- local date, ISO 8601
    kind TEXT NOT NULL,             -- before_break | before_term | on_demand
    title_zh TEXT NOT NULL, title_en TEXT NOT NULL,
    started_by TEXT NOT NULL,       -- the login that opened it
    started_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sweeps_due ON sweeps (day, kind) WHERE kind != 'on_demand';
CREATE TABLE IF NOT EXISTS sweep_marks (
    sweep_id INTEGER NOT NULL,
    building TEXT NOT NULL,
    item TEXT NOT NULL,             -- a manual item's id (gas) or a sensor's (sensor:<device>)
    result TEXT NOT NULL,           -- ok | problem
    note TEXT NOT NULL,
    by TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    order_id INTEGER,               -- the work order it was turned into
    PRIMARY KEY (sweep_id, building, item)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweep_signatures (
    sweep_id INTEGER NOT NULL,
    building TEXT NOT NULL,
    by TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    note TEXT NOT NULL,
    problems INTEGER NOT NULL,      -- items found with a problem when it was signed
    items TEXT NOT NULL,            -- JSON: the checklist as signed
    PRIMARY KEY (sweep_id, building)
) WITHOUT ROWID;
"""


class SweepError(Exception):
    """A change the sweep's state does not allow (a building already signed)."""


class SweepNotFound(SweepError):
    pass


@dataclass(frozen=True, slots=True)
class Sweep:
    id: int
    day: date
    kind: SweepKind
    title_zh: str
    title_en: str
    started_by: str
    started_ms: int


@dataclass(frozen=True, slots=True)
class Mark:
    building: str
    item: str
    result: CheckResult
    note: str
    by: str
    at_ms: int
    order_id: int | None


@dataclass(frozen=True, slots=True)
class Signature:
    building: str
    by: str
    at_ms: int
    note: str
    problems: int
    items: list[dict[str, Any]]


class SweepStore:
    def __init__(self, path: Path, audit: AuditTrail, clock: Clock) -> None:
        self._conn = connect(path, _SCHEMA, durable=True)
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _now(self) -> int:
        return to_ms(self._clock.now())

    def start(self, day: date, kind: SweepKind, title: tuple[str, str], who: str) -> Sweep:
        """Opens a sweep; one the calendar asks for is opened once, whoever comes first."""
        now = self._now()
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO sweeps (day, kind, title_zh, title_en, started_by, started_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)", (day.isoformat(), kind, title[0], title[1], who, now))
            created = cur.rowcount == 1
            row = self._conn.execute(
                "SELECT id FROM sweeps WHERE id = ?" if kind == "on_demand" else
                "SELECT id FROM sweeps WHERE day = ? AND kind = ?",
                (cur.lastrowid,) if kind == "on_demand" else (day.isoformat(), kind)).fetchone()
        sweep = self.get(row[0])
        if created:
            self._audit.record(now, who, "sweep.start", f"sweep:{sweep.id}",
                               {"day": day.isoformat(), "kind": kind, "title": title[0]})
        return sweep

    def get(self, sweep_id: int) -> Sweep:
        with self._lock:
            row = self._conn.execute("SELECT id, day, kind, title_zh, title_en, started_by, started_ms FROM sweeps "
                                     "WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise SweepNotFound(f"no sweep {sweep_id}")
        return _sweep(row)

    def between(self, first: date, last: date) -> list[Sweep]:
        """The sweeps of the days `first` to `last`, both included, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, day, kind, title_zh, title_en, started_by, started_ms FROM sweeps "
                "WHERE day BETWEEN ? AND ? ORDER BY day, id", (first.isoformat(), last.isoformat())).fetchall()
        return [_sweep(r) for r in rows]

    def mark(self, sweep_id: int, building: str, item: str, result: CheckResult, note: str, who: str) -> Mark:
        """A person's 正常 / 有问题 for one item, replacing their or another's earlier mark."""
        self._unsigned(sweep_id, building)
        now = self._now()
        with self._lock:
            self._conn.execute(
                "INSERT INTO sweep_marks (sweep_id, building, item, result, note, by, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sweep_id, building, item) DO UPDATE SET result = excluded.result, note = excluded.note, "
                "by = excluded.by, at_ms = excluded.at_ms",
                (sweep_id, building, item, result, note, who, now))
        self._audit.record(now, who, "sweep.mark", f"sweep:{sweep_id}:{building}:{item}",
                           {"result": result, "note": note})
        return self.marks(sweep_id)[(building, item)]

    def ordered(self, sweep_id: int, building: str, item: str, order_id: int, who: str) -> None:
        """Notes the work order an item with a problem was turned into."""
        now = self._now()
        with self._lock:
            self._conn.execute("UPDATE sweep_marks SET order_id = ? WHERE sweep_id = ? AND building = ? AND item = ?",
                               (order_id, sweep_id, building, item))
        self._audit.record(now, who, "sweep.work_order", f"sweep:{sweep_id}:{building}:{item}",
                           {"work_order": order_id})

    def marks(self, sweep_id: int) -> dict[tuple[str, str], Mark]:
        with self._lock:
            rows = self._conn.execute("SELECT building, item, result, note, by, at_ms, order_id FROM sweep_marks "
                                      "WHERE sweep_id = ?", (sweep_id,)).fetchall()
        return {(b, i): Mark(b, i, r, n, by, at, o) for b, i, r, n, by, at, o in rows}

    def sign(self, sweep_id: int, building: str, who: str, note: str, items: list[dict[str, Any]],
             problems: int) -> Signature:
        self._unsigned(sweep_id, building)
        now = self._now()
        with self._lock:
            self._conn.execute("INSERT INTO sweep_signatures VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (sweep_id, building, who, now, note, problems, json.dumps(items, ensure_ascii=False)))
        self._audit.record(now, who, "sweep.sign", f"sweep:{sweep_id}:{building}",
                           {"problems": problems, "note": note})
        return self.signatures([sweep_id])[(sweep_id, building)]

    def signatures(self, sweep_ids: list[int]) -> dict[tuple[int, str], Signature]:
        marks = ",".join("?" * len(sweep_ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT sweep_id, building, by, at_ms, note, problems, items FROM sweep_signatures "  # noqa: S608
                f"WHERE sweep_id IN ({marks})", sweep_ids).fetchall()
        return {(s, b): Signature(b, by, at, n, p, json.loads(items)) for s, b, by, at, n, p, items in rows}

    def _unsigned(self, sweep_id: int, building: str) -> None:
        self.get(sweep_id)
        if (sweep_id, building) in self.signatures([sweep_id]):
            raise SweepError(f"sweep {sweep_id} is signed for {building}")


def _sweep(row: Any) -> Sweep:
    id_, day, kind, tzh, ten, by, at = row
    return Sweep(id_, date.fromisoformat(day), kind, tzh, ten, by, at)


# ---------------------------------------------------------------------- the daily record


class SweepRegister:
    """The sweeps of a day in the daily record: one item per building, done when every sweep
    of the day is signed there without a problem, fail when one was signed with problems,
    manual while one is unsigned (signed on the sweep's page, not in the record)."""

    page = "sweep"  # the dashboard's view where it is kept

    def __init__(self, store: SweepStore, calendar: SchoolCalendar, people: People) -> None:
        self._store = store
        self._calendar = calendar
        self._people = people

    def items(self, site: SiteConfig, day: SchoolDay, start_ms: int, end_ms: int, as_of_ms: int) -> list[Item]:
        stored = self._store.between(day.date, day.date)
        due = [d for d in due_sweeps(self._calendar, site.sweep.min_break_days, day.date, day.date)
               if not any(s.kind == d.kind for s in stored)]
        titles = [(s.title_zh, s.title_en) for s in stored] + [d.title for d in due]
        if not titles:
            return []
        signed = self._store.signatures([s.id for s in stored])
        names = self._people.directory()
        check = ("拉网式检查：" + "、".join(zh for zh, _ in titles), "Sweep: " + "; ".join(en for _, en in titles))
        out = []
        for b in site.buildings:
            signatures = [signed[(s.id, b.id)] for s in stored if (s.id, b.id) in signed]
            status, detail, completion = ItemStatus.MANUAL, ("还没有签字：请在「放假前检查」页逐项检查并签字",
                                                             "not signed yet: check and sign on the Pre-break check "
                                                             "page"), None
            if signatures and len(signatures) == len(titles):
                last = max(signatures, key=lambda sig: sig.at_ms)
                problems = sum(sig.problems for sig in signatures)
                who = names.display(last.by)
                at = f"{from_ms(last.at_ms, site.tz):%H:%M}"
                status = ItemStatus.FAIL if problems else ItemStatus.DONE
                detail = ((f"{who} {at} 签字：{problems} 项有问题", f"signed by {who} at {at}: {problems} problem(s)")
                          if problems else (f"{who} {at} 签字：全部正常", f"signed by {who} at {at}: all in order"))
                completion = Completion(result="problem" if problems else "ok", note=last.note,
                                        by=names.actor(last.by), at=from_ms(last.at_ms, site.tz))
            item = record_item(f"sweep@{b.id}", Category.GUARD, None, site, status, detail, subject=b.name,
                               building=b.id)
            out.append(item.model_copy(update={"check_zh": check[0], "check_en": check[1], "needs_check": False,
                                               "completion": completion}))
        return out
