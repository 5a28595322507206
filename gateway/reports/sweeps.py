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
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final, Literal

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, Row, Table, Text, select, text, update

from gateway.auth.audit import AuditTrail
from gateway.auth.people import People
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import SiteConfig
from gateway.reports.checks import CheckResult
from gateway.reports.judging import record_item
from gateway.reports.safety_model import Category, Completion, Item, ItemStatus
from gateway.schedule.school_calendar import DayKind, SchoolCalendar, SchoolDay
from gateway.storage.state import ID, METADATA, StateDatabase

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


SWEEPS = Table(
    "sweeps", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("day", Text, nullable=False),            # local date, ISO 8601
    Column("kind", Text, nullable=False),           # before_break | before_term | on_demand
    Column("title_zh", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("started_by", Text, nullable=False),     # the login that opened it
    Column("started_ms", BigInteger, nullable=False),
    Column("site", Text, nullable=False, server_default=""),
    # One sweep the calendar asks for a site and day; the head's own, any number.
    Index("sweeps_due", "site", "day", "kind", unique=True, sqlite_where=text("kind != 'on_demand'"),
          postgresql_where=text("kind != 'on_demand'")),
    sqlite_autoincrement=True,  # a sweep's id is never reused
)
MARKS = Table(
    "sweep_marks", METADATA,
    Column("sweep_id", BigInteger, nullable=False),
    Column("building", Text, nullable=False),
    Column("item", Text, nullable=False),           # a manual item's id (gas) or a sensor's (sensor:<device>)
    Column("result", Text, nullable=False),         # ok | problem
    Column("note", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("order_id", BigInteger),                 # the work order it was turned into
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("sweep_id", "building", "item"),  # a sweep's id is of one site
    sqlite_with_rowid=False,
)
SIGNATURES = Table(
    "sweep_signatures", METADATA,
    Column("sweep_id", BigInteger, nullable=False),
    Column("building", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    Column("problems", Integer, nullable=False),    # items found with a problem when it was signed
    Column("items", Text, nullable=False),          # JSON: the checklist as signed
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("sweep_id", "building"),
    sqlite_with_rowid=False,
)
_SWEEP: Final = tuple(c for c in SWEEPS.c if c.name != "site")


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
    """The sweeps of one site."""

    def __init__(self, db: StateDatabase, site_id: str, audit: AuditTrail, clock: Clock) -> None:
        self._db = db
        self._site_id = site_id
        self._audit = audit
        self._clock = clock
        db.create(SWEEPS, MARKS, SIGNATURES, site=site_id)

    def _now(self) -> int:
        return to_ms(self._clock.now())

    def start(self, day: date, kind: SweepKind, title: tuple[str, str], who: str) -> Sweep:
        """Opens a sweep; one the calendar asks for is opened once, whoever comes first."""
        now = self._now()
        with self._db.write(durable=True) as conn:
            created: int | None = conn.execute(
                self._db.insert(SWEEPS).values(day=day.isoformat(), kind=kind, title_zh=title[0], title_en=title[1],
                                               started_by=who, started_ms=now, site=self._site_id)
                .on_conflict_do_nothing().returning(SWEEPS.c.id)).scalar_one_or_none()
            sweep_id = created if created is not None else conn.execute(
                select(SWEEPS.c.id).where(SWEEPS.c.site == self._site_id, SWEEPS.c.day == day.isoformat(),
                                          SWEEPS.c.kind == kind)).scalar_one()
        sweep = self.get(sweep_id)
        if created is not None:
            self._audit.record(now, who, "sweep.start", f"sweep:{sweep.id}",
                               {"day": day.isoformat(), "kind": kind, "title": title[0]})
        return sweep

    def get(self, sweep_id: int) -> Sweep:
        with self._db.read() as conn:
            row = conn.execute(select(*_SWEEP).where(SWEEPS.c.site == self._site_id, SWEEPS.c.id == sweep_id)
                               ).one_or_none()
        if row is None:
            raise SweepNotFound(f"no sweep {sweep_id}")
        return _sweep(row)

    def between(self, first: date, last: date) -> list[Sweep]:
        """The sweeps of the days `first` to `last`, both included, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(select(*_SWEEP).where(
                SWEEPS.c.site == self._site_id, SWEEPS.c.day.between(first.isoformat(), last.isoformat()))
                .order_by(SWEEPS.c.day, SWEEPS.c.id)).all()
        return [_sweep(r) for r in rows]

    def mark(self, sweep_id: int, building: str, item: str, result: CheckResult, note: str, who: str) -> Mark:
        """A person's 正常 / 有问题 for one item, replacing their or another's earlier mark."""
        self._unsigned(sweep_id, building)
        now = self._now()
        insert = self._db.insert(MARKS).values(sweep_id=sweep_id, building=building, item=item, result=result,
                                               note=note, by=who, at_ms=now, site=self._site_id)
        with self._db.write(durable=True) as conn:
            conn.execute(insert.on_conflict_do_update(
                index_elements=[MARKS.c.sweep_id, MARKS.c.building, MARKS.c.item],
                set_={"result": insert.excluded.result, "note": insert.excluded.note, "by": insert.excluded.by,
                      "at_ms": insert.excluded.at_ms}))
        self._audit.record(now, who, "sweep.mark", f"sweep:{sweep_id}:{building}:{item}",
                           {"result": result, "note": note})
        return self.marks(sweep_id)[(building, item)]

    def ordered(self, sweep_id: int, building: str, item: str, order_id: int, who: str) -> None:
        """Notes the work order an item with a problem was turned into."""
        now = self._now()
        with self._db.write(durable=True) as conn:
            conn.execute(update(MARKS).where(MARKS.c.site == self._site_id, MARKS.c.sweep_id == sweep_id,
                                             MARKS.c.building == building, MARKS.c.item == item)
                         .values(order_id=order_id))
        self._audit.record(now, who, "sweep.work_order", f"sweep:{sweep_id}:{building}:{item}",
                           {"work_order": order_id})

    def marks(self, sweep_id: int) -> dict[tuple[str, str], Mark]:
        c = MARKS.c
        with self._db.read() as conn:
            rows = conn.execute(select(c.building, c.item, c.result, c.note, c.by, c.at_ms, c.order_id)
                                .where(c.site == self._site_id, c.sweep_id == sweep_id)).all()
        return {(b, i): Mark(b, i, r, n, by, at, o) for b, i, r, n, by, at, o in rows}

    def sign(self, sweep_id: int, building: str, who: str, note: str, items: list[dict[str, Any]],
             problems: int) -> Signature:
        self._unsigned(sweep_id, building)
        now = self._now()
        with self._db.write(durable=True) as conn:
            conn.execute(SIGNATURES.insert().values(
                sweep_id=sweep_id, building=building, by=who, at_ms=now, note=note, problems=problems,
                items=json.dumps(items, ensure_ascii=False), site=self._site_id))
        self._audit.record(now, who, "sweep.sign", f"sweep:{sweep_id}:{building}",
                           {"problems": problems, "note": note})
        return self.signatures([sweep_id])[(sweep_id, building)]

    def signatures(self, sweep_ids: list[int]) -> dict[tuple[int, str], Signature]:
        c = SIGNATURES.c
        with self._db.read() as conn:
            rows = conn.execute(select(c.sweep_id, c.building, c.by, c.at_ms, c.note, c.problems, c["items"])
                                .where(c.site == self._site_id, c.sweep_id.in_(sweep_ids))).all()
        return {(s, b): Signature(b, by, at, n, p, json.loads(items)) for s, b, by, at, n, p, items in rows}

    def _unsigned(self, sweep_id: int, building: str) -> None:
        self.get(sweep_id)
        if (sweep_id, building) in self.signatures([sweep_id]):
            raise SweepError(f"sweep {sweep_id} is signed for {building}")


def _sweep(row: Row[Any]) -> Sweep:
    return Sweep(row.id, date.fromisoformat(row.day), row.kind, row.title_zh, row.title_en, row.started_by,
                 row.started_ms)


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
