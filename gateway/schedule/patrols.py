"""The fire-safety patrols (防火巡查记录): each round of a day, as the patroller recorded it item
by item (正常, or 有问题 with what), and the supervisor's signature under it (公安部令第61号
art. 25: each record signed by the patroller and their supervisor).

Who patrolled and who signed are the signed-in accounts. Every record and signature is also an
entry in the audit trail. A round nobody recorded `fire_patrol.grace_min` after its time
raises `fire_patrol_missed` (gateway/rules/fire_patrol.py) once, on the watchdog's clock; the
alerts' machinery tells the person on duty and reminds and escalates until someone
acknowledges it; recording the round late clears it. What was reminded is kept in the store,
so a restarted or second gateway does not remind again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlalchemy import BigInteger, Column, Connection, PrimaryKeyConstraint, Row, Table, Text, select, update

from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, from_ms, to_ms
from gateway.config.fire_patrol import PatrolRound
from gateway.rules import fire_patrol
from gateway.rules.engine import Evidence, Report
from gateway.storage.state import METADATA, StateDatabase

if TYPE_CHECKING:
    from gateway.config import SiteConfig
    from gateway.schedule.school_calendar import SchoolCalendar

FIRE_PATROLS = Table(
    "fire_patrols", METADATA,
    Column("day", Text, nullable=False),            # the round's local date, ISO 8601
    Column("round", Text, nullable=False),          # its local time, HHMM
    Column("items", Text, nullable=False),          # a JSON list: {id, zh, en, result, note} as patrolled
    Column("patroller", Text, nullable=False),      # the login that recorded it
    Column("patrolled_ms", BigInteger, nullable=False),
    Column("supervisor", Text),                     # the login that signed it
    Column("supervised_ms", BigInteger),
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("site", "day", "round"),
    sqlite_with_rowid=False,
)
REMINDERS = Table(
    "fire_patrol_reminders", METADATA,
    Column("day", Text, nullable=False),
    Column("round", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),    # when the person on duty was told the round was missed
    Column("site", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("site", "day", "round"),
    sqlite_with_rowid=False,
)
_COLUMNS: Final = tuple(c for c in FIRE_PATROLS.c if c.name != "site")

ItemResult = Literal["ok", "problem"]
# A round may be recorded from this long before its time: the guard starts walking early.
EARLY: Final = timedelta(minutes=30)
# A round missed longer ago than this is not reminded of (by a gateway that was down, or newly
# installed): by then a reminder helps nobody, and the daily record shows the round missed.
LOOKBACK: Final = timedelta(hours=12)
# Rooms where children sleep: there, night rounds are on unless the site file says otherwise.
SLEEPING_ROOMS: Final = frozenset({"nap_room", "dorm"})


class PatrolRefused(Exception):
    """A request a person made that the patrols refuse, with the reason in both languages."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status = status
        self.zh = zh
        self.en = en


@dataclass(frozen=True, slots=True)
class Round:
    """One round on one day."""

    day: date
    round: PatrolRound
    due_ms: int

    @property
    def id(self) -> str:
        return self.round.id

    @property
    def label(self) -> str:
        return f"{self.round.at:%H:%M}"

    @property
    def subject(self) -> str:
        """What the round's alert is about (an alert's device id): the day and the round."""
        return f"fire-patrol-{self.day.isoformat()}-{self.id}"


@dataclass(frozen=True, slots=True)
class Checked:
    """One item as the patroller found it; its labels as they were on the day."""

    id: str
    zh: str
    en: str
    result: ItemResult
    note: str


@dataclass(frozen=True, slots=True)
class Patrol:
    day: date
    round: str
    items: tuple[Checked, ...]
    patroller: str
    patrolled_ms: int
    supervisor: str | None
    supervised_ms: int | None

    @property
    def problems(self) -> list[Checked]:
        return [i for i in self.items if i.result == "problem"]


class FirePatrols:
    """The patrol records of one site in the state database; `tick` is the watchdog's."""

    def __init__(self, db: StateDatabase, site: SiteConfig, calendar: SchoolCalendar, audit: AuditTrail,
                 clock: Clock, report: Report) -> None:
        self._db = db
        self._site_id = site.id  # the rows' site: a site's id does not change with its settings
        db.create(FIRE_PATROLS, REMINDERS, site=site.id)
        self._calendar = calendar
        self._audit = audit
        self._clock = clock
        self._report = report
        self.reconfigure(site)
        self._settled: set[tuple[date, str]] = set()  # patrolled or reminded: the watchdog's cache of the store

    def reconfigure(self, site: SiteConfig) -> None:
        self._settings = site.fire_patrol
        self._rule = fire_patrol.settings(site.rules)
        night = self._settings.night_rounds
        if night is None:
            night = any(r.type in SLEEPING_ROOMS for b in site.buildings for r in b.rooms)
        self._rounds = sorted((r for r in self._settings.rounds if night or not r.night), key=lambda r: r.at)

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    # --- the rounds -------------------------------------------------------------------------

    def configured(self, day: date) -> list[Round]:
        """Every round the site has (night rounds where they are on), whether or not it runs on `day`."""
        return [Round(day, r, self._calendar.local_ms(day, r.at)) for r in self._rounds]

    def rounds(self, day: date) -> list[Round]:
        """The rounds of `day`, in time order."""
        return [r for r in self.configured(day) if self._calendar.is_one_of(day, r.round.days)]

    def round(self, day: date, round_id: str) -> Round:
        found = next((r for r in self.rounds(day) if r.id == round_id), None)
        if found is None:
            shown = f"{round_id[:2]}:{round_id[2:]}" if len(round_id) == 4 else round_id
            raise PatrolRefused(404, f"{day:%Y-%m-%d} 没有 {shown} 的消防巡查。",
                                f"There is no {shown} fire patrol on {day:%Y-%m-%d}.")
        return found

    @staticmethod
    def recordable(r: Round, now_ms: int) -> bool:
        """Whether round `r` may be recorded at `now_ms`: from a little before its time on."""
        return now_ms >= r.due_ms - EARLY.total_seconds() * 1000

    # --- people's records --------------------------------------------------------------------

    def submit(self, day: date, round_id: str, results: Mapping[str, tuple[ItemResult, str]], by: str) -> Patrol:
        """Records round `round_id` of `day` as patrolled by `by`: every item's result, and what
        the problem is where there is one."""
        found = self.round(day, round_id)
        now = self._now_ms()
        if not self.recordable(found, now):
            raise PatrolRefused(409, f"{found.label} 的巡查还没到时间，不能提前登记。",
                                f"The {found.label} patrol is not due yet: it cannot be recorded in advance.")
        items = self._settings.items
        if set(results) != {i.id for i in items}:
            raise PatrolRefused(422, "请逐项填写每一项巡查结果。", "Please give a result for every item of the patrol.")
        checked = tuple(Checked(i.id, i.zh, i.en, results[i.id][0],
                                results[i.id][1].strip() if results[i.id][0] == "problem" else "") for i in items)
        blank = next((c for c in checked if c.result == "problem" and not c.note), None)
        if blank is not None:
            raise PatrolRefused(422, f"「{blank.zh}」有问题：请写明是什么问题。",
                                f"“{blank.en}” has a problem: please say what it is.")
        patrol = Patrol(day, round_id, checked, by, now, None, None)
        with self._db.write(durable=True) as conn:
            if not self._db.add(conn, FIRE_PATROLS, {
                    "day": day.isoformat(), "round": round_id, "items": _items_json(checked), "patroller": by,
                    "patrolled_ms": now, "site": self._site_id}):
                earlier = self._get(conn, day, round_id)
                at = self._clock_at(earlier.patrolled_ms if earlier else now)
                raise PatrolRefused(409, f"{found.label} 的巡查已于 {at} 登记过了。",
                                    f"The {found.label} patrol was recorded already, at {at}.")
        self._settled.add((day, round_id))
        self._audit.record(now, by, "fire_patrol.patrolled", _target(day, round_id),
                           {"problems": [{"item": c.id, "note": c.note} for c in patrol.problems]})
        self._report(fire_patrol.recorded(self._rule, found.subject, now), Evidence())
        return patrol

    def sign(self, day: date, round_id: str, by: str) -> Patrol:
        """The supervisor's signature under the round's record: another account than the patroller's."""
        found = self.round(day, round_id)
        now = self._now_ms()
        with self._db.write(durable=True) as conn:
            patrol = self._get(conn, day, round_id)
            if patrol is None:
                raise PatrolRefused(409, f"{found.label} 的巡查还没有登记，不能审核签字。",
                                    f"The {found.label} patrol has not been recorded yet: there is nothing to sign.")
            if patrol.patroller == by:
                raise PatrolRefused(409, "不能审核签字自己的巡查，请由另一位负责人签字。",
                                    "You cannot sign your own patrol: another person in charge signs it.")
            signed = patrol.supervisor is None and conn.execute(
                update(FIRE_PATROLS).where(*self._key(day, round_id),
                                           FIRE_PATROLS.c.supervisor.is_(None))
                .values(supervisor=by, supervised_ms=now)).rowcount == 1
            if not signed:
                at = self._clock_at((self._get(conn, day, round_id) or patrol).supervised_ms or now)
                raise PatrolRefused(409, f"{found.label} 的巡查已于 {at} 审核签字。",
                                    f"The {found.label} patrol was signed already, at {at}.")
        self._audit.record(now, by, "fire_patrol.supervised", _target(day, round_id), {"patroller": patrol.patroller})
        return Patrol(day, round_id, patrol.items, patrol.patroller, patrol.patrolled_ms, by, now)

    def _clock_at(self, ms: int) -> str:
        return f"{from_ms(ms, self._calendar.tz):%H:%M}"

    # --- reading ----------------------------------------------------------------------------

    def of_day(self, day: date) -> dict[str, Patrol]:
        """The day's records by round id."""
        with self._db.read() as conn:
            rows = conn.execute(select(*_COLUMNS).where(FIRE_PATROLS.c.site == self._site_id,
                                                        FIRE_PATROLS.c.day == day.isoformat())).all()
        return {row.round: _patrol(row) for row in rows}

    def _get(self, conn: Connection, day: date, round_id: str) -> Patrol | None:
        row = conn.execute(select(*_COLUMNS).where(*self._key(day, round_id))).one_or_none()
        return None if row is None else _patrol(row)

    def _key(self, day: date, round_id: str) -> tuple[Any, ...]:
        """The conditions that pick the site's record of round `round_id` of `day`."""
        c = FIRE_PATROLS.c
        return c.site == self._site_id, c.day == day.isoformat(), c.round == round_id

    # --- the watchdog -----------------------------------------------------------------------

    def tick(self) -> None:
        """Raises `fire_patrol_missed` once for each round that nobody recorded `grace_min`
        after its time (on the injected clock), within the `LOOKBACK`."""
        if not self._rule.enabled:
            return
        now = self._now_ms()
        grace_ms = self._settings.grace_min * 60_000
        today = self._calendar.local_date(now)
        for day in (today - timedelta(days=1), today):
            for r in self.rounds(day):
                key = (day, r.id)
                deadline = r.due_ms + grace_ms
                overdue = now - LOOKBACK.total_seconds() * 1000 < deadline <= now
                if not overdue or key in self._settled:
                    continue
                self._settled.add(key)
                if self._remind(day, r.id, now):
                    self._report(fire_patrol.missed(self._rule, r.subject, f"{day:%m-%d} {r.label}", r.due_ms,
                                                    self._settings.grace_min), Evidence())

    def _remind(self, day: date, round_id: str, now: int) -> bool:
        """Notes that round `round_id` of `day` was reminded of; False where it was patrolled or
        reminded of already (by this process before a restart, or another)."""
        with self._db.write(durable=True) as conn:
            if self._get(conn, day, round_id) is not None:
                return False
            return self._db.add(conn, REMINDERS, {"day": day.isoformat(), "round": round_id, "at_ms": now,
                                                  "site": self._site_id})


def _target(day: date, round_id: str) -> str:
    return f"fire_patrol:{day.isoformat()}:{round_id}"


def _items_json(items: tuple[Checked, ...]) -> str:
    return json.dumps([{"id": c.id, "zh": c.zh, "en": c.en, "result": c.result, "note": c.note} for c in items],
                      ensure_ascii=False)


def _patrol(row: Row[Any]) -> Patrol:
    checked = tuple(Checked(i["id"], i["zh"], i["en"], i["result"], i["note"]) for i in json.loads(row.items))
    return Patrol(date.fromisoformat(row.day), row.round, checked, row.patroller, row.patrolled_ms, row.supervisor,
                  row.supervised_ms)
