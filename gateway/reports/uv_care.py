"""The UV lamps' care register (紫外线灯管理登记, WS/T 367-2012; docs/uv.md): a tube changed, a
tube wiped with alcohol, the irradiance tested at 1 m and its µW/cm², each with who did it
and when.

One row per action in the state database, site-scoped, each commit fsync'd and audited, as
the other registers are. From the rows and each lamp's settings (devices/uv_lamp.py) it
judges, on the watchdog's clock, the lamp's reminders: a wipe due (weekly by default), an
irradiance test due (half-yearly), a test below the limit (70 µW/cm²; the first test of a new
tube against 90), which opens a work order for a new tube. Its items join the daily record.

A tube's hours are its lamp's lit time since the tube was fitted (since the lamp's first
reading while no change is recorded): the one figure of the lamp's page, its daily record
item and the tube-life rule. Counting a tube's life of minute readings each time would read up
to a million of them, so the register keeps its count at each local midnight (`uv_tube_days`,
in the state store: every replica and a restarted process read the same) and adds the
readings after the last one. Counting reads the readings: off the event loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import BigInteger, Column, Float, Index, Table, Text, and_, func, select

from devices import uv_lamp
from gateway.alerting.alerts import Alert, AlertStore
from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import Device, SiteConfig
from gateway.refused import Refused
from gateway.reports.judging import MAX_POINTS, record_item
from gateway.reports.safety_model import Category, Item, ItemStatus
from gateway.reports.safety_series import held, total_ms, where
from gateway.rules.base import Finding, RuleSpec
from gateway.rules.engine import Evidence
from gateway.rules.health import silent_after_ms
from gateway.rules.uv import UV_CLEAN_DUE, UV_INTENSITY_LOW, UV_TEST_DUE, UV_TUBE_LIFE, lamp_settings
from gateway.schedule.school_calendar import SchoolDay
from gateway.storage.readings import ReadingStore
from gateway.storage.state import ID, METADATA, StateDatabase

DAY_MS: Final = 86_400_000
AHEAD_MS: Final = 5 * 60_000
HOUR_MS: Final = 3_600_000
JUDGE_EVERY_MS: Final = 60_000
# A midnight's count is kept once the readings before it are in: a reading an hour late (a
# spool flushed after a broker's outage) still counts; one later than that only in a recount.
SETTLE_MS: Final = HOUR_MS


class Care(StrEnum):
    TUBE = "tube"  # a new tube fitted: its hours start again
    CLEAN = "clean"  # the tube wiped with alcohol
    TEST = "test"  # the irradiance measured at 1 m after the warm-up

    @property
    def words(self) -> tuple[str, str]:
        return _WORDS[self]


_WORDS: Final = {Care.TUBE: ("更换灯管", "tube changed"), Care.CLEAN: ("擦拭灯管", "tube wiped"),
                 Care.TEST: ("强度检测", "irradiance tested")}

UV_CARE = Table(
    "uv_care", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("device", Text, nullable=False),     # a uv_lamp device
    Column("action", Text, nullable=False),     # a `Care`
    Column("at_ms", BigInteger, nullable=False),
    Column("by", Text, nullable=False),         # the login that recorded it
    Column("uw_cm2", Float),                    # a test's irradiance
    Column("site", Text, nullable=False, server_default=""),
    Index("uv_care_device", "device", "at_ms"),
    sqlite_autoincrement=True,
)

UV_TUBE_DAYS = Table(
    "uv_tube_days", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("device", Text, nullable=False),
    Column("since_ms", BigInteger, nullable=False),  # the tube's fitting; 0: no change recorded
    Column("to_ms", BigInteger, nullable=False),     # a local midnight
    Column("lit_ms", BigInteger, nullable=False),    # lit from the fitting (or the first reading) to then
    Column("site", Text, nullable=False, server_default=""),
    Index("uv_tube_days_key", "site", "device", "since_ms", "to_ms", unique=True),
    sqlite_autoincrement=True,
)


@dataclass(frozen=True, slots=True)
class TubeHours:
    """A tube's lit time at `at_ms` since its fitting (`since_ms`; 0: no change recorded, so
    since its lamp's first reading), against its rated life."""

    since_ms: int
    at_ms: int
    lit_ms: int
    life_h: float

    @property
    def hours(self) -> float:
        return round(self.lit_ms / HOUR_MS, 1)

    @property
    def life_pct(self) -> int:
        return round(100 * self.lit_ms / HOUR_MS / self.life_h)


@dataclass(frozen=True, slots=True)
class CareEntry:
    id: int
    device: str
    action: Care
    at_ms: int
    by: str
    uw_cm2: float | None


@dataclass(frozen=True, slots=True)
class TestVerdict:
    at_ms: int
    uw_cm2: float
    limit_uw_cm2: float  # the new tube's limit for the first test after a change, else the in-use one
    passed: bool


@dataclass(frozen=True, slots=True)
class LampCare:
    """Where one lamp's care stands at `now_ms`."""

    device: str
    tube_since_ms: int | None  # the newest tube change recorded
    cleaned_ms: int | None
    clean_due_ms: int | None  # None: never wiped, so no reminder yet (the record asks a person)
    test: TestVerdict | None  # the newest test of the tube in use
    test_due_ms: int | None  # None: never tested and no tube change recorded

    def clean_overdue(self, now_ms: int) -> bool:
        return self.clean_due_ms is not None and now_ms >= self.clean_due_ms

    def test_overdue(self, now_ms: int) -> bool:
        return self.test_due_ms is not None and now_ms >= self.test_due_ms


def judge_care(entries: list[CareEntry], settings: uv_lamp.Settings, device_id: str) -> LampCare:
    """One lamp's care from its entries (in time order) and its settings. A new tube is tested
    on fitting, against the new tube's limit; a test of the tube before says nothing of it."""
    tube = max((e.at_ms for e in entries if e.action is Care.TUBE), default=None)
    cleaned = max((e.at_ms for e in entries if e.action is Care.CLEAN), default=None)
    tests = [e for e in entries if e.action is Care.TEST and e.uw_cm2 is not None
             and (tube is None or e.at_ms >= tube)]
    verdict, test_due = None, tube  # a new tube untested: due now
    if tests:
        last, uw = tests[-1], tests[-1].uw_cm2 or 0.0
        limit = settings.new_tube_min_uw_cm2 if tube is not None and len(tests) == 1 else settings.min_uw_cm2
        verdict = TestVerdict(last.at_ms, uw, limit, uw >= limit)
        test_due = last.at_ms + round(settings.test_every_days * DAY_MS)
    clean_due = None if cleaned is None else cleaned + round(settings.clean_every_days * DAY_MS)
    return LampCare(device_id, tube, cleaned, clean_due, verdict, test_due)


def lit_ms(points: Sequence[tuple[int, float]], lo: int, hi: int, hold_ms: int) -> int:
    """The lamp's lit time in [lo, hi) from its `on` readings (from `lo - hold_ms`: the one
    before `lo` holds into it), its warm-up included: a tube ages whenever it is lit. The
    time of [a, c) is that of [a, b) plus that of [b, c), so a count may go on from any point."""
    return total_ms([(h.start, h.end) for h in where(held(points, lo, hi, hold_ms), bool)])


class UvCare:
    """The register of one site; writes and judgements on the event loop's thread."""

    page = "device"  # kept on each lamp's device page (the ledger links to it)

    def __init__(self, db: StateDatabase, site: SiteConfig, audit: AuditTrail, clock: Clock,
                 alerts: AlertStore, readings: ReadingStore) -> None:
        self._db = db
        self._site_id = site.id
        db.create(UV_CARE, UV_TUBE_DAYS, site=site.id)
        self._readings = readings
        self._audit = audit
        self._clock = clock
        self._alerts = alerts
        self._judged_ms = -JUDGE_EVERY_MS  # when the watchdog last judged (a pace, not an answer)
        # Each tube's newest midnight count, (lamp, fitted since) → (to_ms, lit_ms): read once,
        # then kept as this register writes them (a pass asked 2,600 lamps' one by one, 1 s).
        self._newest: dict[tuple[str, int], tuple[int, int]] | None = None
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        self._site = site
        self.lamps: list[Device] = [d for d in site.devices if d.kind == uv_lamp.KIND.name]

    def lamp(self, device_id: str) -> Device:
        found = next((d for d in self.lamps if d.id == device_id), None)
        if found is None:
            raise Refused(404, "没有这盏紫外线灯。", "There is no such UV lamp.")
        return found

    def record(self, device_id: str, action: Care, by: str, uw_cm2: float | None = None,
               at_ms: int | None = None) -> CareEntry:
        """Records that `by` did `action` on the lamp at `at_ms` (default now: a wipe done
        yesterday may be recorded today); a test needs its irradiance."""
        lamp = self.lamp(device_id)
        if (action is Care.TEST) != (uw_cm2 is not None):
            raise Refused(409, "强度检测须填写测得的强度（微瓦/平方厘米），其他登记不填。",
                          "A test needs the irradiance measured (µW/cm²); the other entries take none.")
        now = to_ms(self._clock.now())
        done = now if at_ms is None else at_ms
        if done > now + AHEAD_MS:
            raise Refused(409, "登记时间不能晚于现在。", "The time done cannot be later than now.")
        with self._db.write(durable=True) as conn:
            entry_id: int = conn.execute(UV_CARE.insert().values(
                device=lamp.id, action=action.value, at_ms=done, by=by, uw_cm2=uw_cm2, site=self._site_id,
            ).returning(UV_CARE.c.id)).scalar_one()
        self._audit.record(now, by, f"uv.{action.value}", f"uv_care:{entry_id}",
                           {"device": lamp.id, "at_ms": done, **({} if uw_cm2 is None else {"uw_cm2": uw_cm2})})
        self.judge(now)
        return CareEntry(entry_id, lamp.id, action, done, by, uw_cm2)

    def entries(self, device_id: str | None = None) -> list[CareEntry]:
        """A lamp's entries (every lamp's without `device_id`), oldest first."""
        c = UV_CARE.c
        query = select(c.id, c.device, c.action, c.at_ms, c.by, c.uw_cm2).where(c.site == self._site_id)
        if device_id is not None:
            query = query.where(c.device == device_id)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(c.at_ms, c.id)).all()
        return [CareEntry(i, d, Care(a), at, by, uw) for i, d, a, at, by, uw in rows]

    def by_lamp(self) -> dict[str, list[CareEntry]]:
        """Every lamp's entries, oldest first, by lamp: one read for a pass over all lamps, and
        each lamp finds its own without going through the others' (a district's school has
        thousands of lamps, each with years of entries)."""
        out: dict[str, list[CareEntry]] = defaultdict(list)
        for entry in self.entries():
            out[entry.device].append(entry)
        return out

    def care(self, device: Device, as_of_ms: int, entries: Mapping[str, list[CareEntry]] | None = None) -> LampCare:
        """Where the lamp's care stands at `as_of_ms`, from `entries` (`by_lamp`) if read already."""
        mine = [e for e in (self.entries(device.id) if entries is None else entries.get(device.id, []))
                if e.at_ms <= as_of_ms]
        return judge_care(mine, lamp_settings(device), device.id)

    # --- the tube's hours ------------------------------------------------------------------

    def count(self, now_ms: int) -> dict[str, TubeHours]:
        """Every lamp's tube hours at `now_ms` (reads the readings: off the event loop)."""
        entries = self.by_lamp()
        return {lamp.id: self.tube_hours(lamp, now_ms, entries) for lamp in self.lamps}

    def tube_hours(self, lamp: Device, now_ms: int, entries: Mapping[str, list[CareEntry]] | None = None) -> TubeHours:
        """The lamp's tube hours at `now_ms`: its newest midnight's count and the readings
        after it, keeping each midnight's count that has settled (reads the readings: off the
        event loop)."""
        since = self.care(lamp, now_ms, entries).tube_since_ms or 0
        hold, life = round(silent_after_ms(lamp)), lamp_settings(lamp).tube_life_h
        if self._newest is None:
            self._newest = self._kept(now_ms)
        newest = kept = self._newest.get((lamp.id, since))
        if kept is not None and kept[0] > now_ms:  # asked of a time before the newest: from the store
            kept = self._kept(now_ms, lamp.id).get((lamp.id, since))
        if kept is not None:
            to, lit = kept
            begin = to
        else:  # counted from the first reading: no midnight before it to go through
            first = self._readings.points(lamp.id, "on", since, now_ms, 1)
            to, lit, begin = since, 0, first[0].ts_ms if first else now_ms
        rows = []
        for midnight in self._midnights(begin, now_ms - SETTLE_MS):
            lit += self._lit(lamp.id, to, midnight, hold)
            to = midnight
            rows.append({"device": lamp.id, "since_ms": since, "to_ms": to, "lit_ms": lit, "site": self._site_id})
        if rows:
            with self._db.write() as conn:
                for row in rows:
                    self._db.add(conn, UV_TUBE_DAYS, row)
            if newest is None or newest[0] < to:
                self._newest[lamp.id, since] = (to, lit)
        return TubeHours(since, now_ms, lit + self._lit(lamp.id, to, now_ms, hold), life)

    def _lit(self, device_id: str, lo: int, hi: int, hold_ms: int) -> int:
        if hi <= lo:
            return 0
        points = self._readings.points(device_id, "on", lo - hold_ms, hi, MAX_POINTS)
        return lit_ms([(p.ts_ms, p.value) for p in points], lo, hi, hold_ms)

    def _midnights(self, after_ms: int, until_ms: int) -> list[int]:
        """The local midnights in (after_ms, until_ms]."""
        out = []
        day = from_ms(after_ms, self._site.tz).date()
        while (midnight := to_ms(datetime.combine(day + timedelta(days=1), time(), self._site.tz))) <= until_ms:
            out.append(midnight)
            day += timedelta(days=1)
        return out

    def _kept(self, as_of_ms: int, device_id: str | None = None) -> dict[tuple[str, int], tuple[int, int]]:
        """Each tube's newest midnight count kept at or before `as_of_ms`, in one read: (lamp,
        fitted since) → (to_ms, lit_ms); every lamp's, or `device_id`'s."""
        c = UV_TUBE_DAYS.c
        mine = [c.site == self._site_id, c.to_ms <= as_of_ms, *([c.device == device_id] if device_id else [])]
        newest = select(c.device, c.since_ms, func.max(c.to_ms).label("to_ms")).where(*mine).group_by(
            c.device, c.since_ms).subquery()
        query = select(c.device, c.since_ms, c.to_ms, c.lit_ms).join(newest, and_(
            c.device == newest.c.device, c.since_ms == newest.c.since_ms, c.to_ms == newest.c.to_ms,
        )).where(c.site == self._site_id)
        with self._db.read() as conn:
            return {(device, since): (to, lit) for device, since, to, lit in conn.execute(query)}

    # --- the daily record ------------------------------------------------------------------

    def items(self, site: SiteConfig, day: SchoolDay, start_ms: int, end_ms: int, as_of_ms: int) -> list[Item]:
        """One item per lamp: its wipe and its irradiance test up to date, the test passed, and
        its tube's hours as counted at the newest midnight, or at its fitting since (no
        readings: the event loop's thread)."""
        out = []
        entries = self.by_lamp()
        kept = self._kept(as_of_ms)
        for lamp in self.lamps:
            care = self.care(lamp, as_of_ms, entries)
            since = care.tube_since_ms or 0
            counted = kept.get((lamp.id, since))
            tube = None if counted is None else TubeHours(since, *counted, lamp_settings(lamp).tube_life_h)
            if tube is None and since and not self._midnights(since, as_of_ms):  # fitted since the last midnight
                tube = TubeHours(since, since, 0, lamp_settings(lamp).tube_life_h)
            status, detail = _item(care, tube, as_of_ms, self._stamp, self._minute)
            item = record_item(f"uvcare:{lamp.id}", Category.UV, lamp, site, status, detail)
            out.append(item.model_copy(update={"check_zh": "紫外线灯管擦拭、强度检测与使用时长",
                                               "check_en": "UV tube wiped, irradiance tested, hours within its life"}))
        return out

    def _stamp(self, ms: int) -> str:
        return f"{from_ms(ms, self._site.tz):%Y-%m-%d}"

    def _minute(self, ms: int) -> str:
        return f"{from_ms(ms, self._site.tz):%Y-%m-%d %H:%M}"

    # --- reminders, the failed test and the tube's life -------------------------------------

    def due(self, now_ms: int) -> bool:
        """Whether the watchdog's pass at `now_ms` judges: once a minute, as things fall due by
        days and a tube's hours by minutes."""
        return not 0 <= now_ms - self._judged_ms < JUDGE_EVERY_MS

    def judge(self, now_ms: int, tubes: Mapping[str, TubeHours] | None = None) -> None:
        """Raises and clears each lamp's reminders, its failed-test alert and, where `tubes`
        (`count`) says its hours, its tube-life alert: on the watchdog's passes (injected
        clock) and right after an entry, when a tube change recorded after the life alert
        clears it."""
        self._judged_ms = now_ms
        entries = self.by_lamp()
        # One read of the open alerts for every lamp (a school of thousands of lamps judged a minute).
        opened = {(a.rule, a.device_id): a for a in self._alerts.open_alerts()}
        for lamp in self.lamps:
            care = self.care(lamp, now_ms, entries)
            settings = lamp_settings(lamp)
            name = lamp.name or lamp.id
            clean = None
            if care.clean_overdue(now_ms):
                since = care.clean_due_ms or now_ms
                clean = Found((f"{name} 灯管该擦拭了", f"{name}: wipe the tube"),
                              (f"每 {settings.clean_every_days:g} 天用酒精擦拭一次灯管，擦拭后请登记",
                               f"wipe the tube with alcohol every {settings.clean_every_days:g} days and record it"),
                              since)
            self._settle(UV_CLEAN_DUE, lamp, clean, now_ms, opened)
            test = None
            if care.test_overdue(now_ms):
                since = care.test_due_ms or now_ms
                test = Found((f"{name} 该做强度检测了", f"{name}: test the irradiance"),
                             (f"每 {settings.test_every_days:g} 天检测一次照射强度"
                              "（开灯 5 分钟后、距灯管 1 米处），并登记结果",
                              f"test the irradiance every {settings.test_every_days:g} days (1 m away, after the "
                              "warm-up) and record the result"), since)
            self._settle(UV_TEST_DUE, lamp, test, now_ms, opened)
            low = None
            if care.test is not None and not care.test.passed:
                t = care.test
                low = Found((f"{name} 照射强度不合格，需更换灯管", f"{name}: irradiance too low, replace the tube"),
                            (f"{self._stamp(t.at_ms)} 测得 {t.uw_cm2:g} 微瓦/平方厘米，低于 {t.limit_uw_cm2:g}",
                             f"{t.uw_cm2:g} µW/cm² measured on {self._stamp(t.at_ms)}, below {t.limit_uw_cm2:g}"),
                            t.at_ms)
            self._settle(UV_INTENSITY_LOW, lamp, low, now_ms, opened)
            self._life(lamp, care, None if tubes is None else tubes.get(lamp.id), now_ms, opened)

    def _life(self, lamp: Device, care: LampCare, tube: TubeHours | None, now_ms: int,
              opened: Mapping[tuple[str, str], Alert]) -> None:
        """The tube-life alert from the tube's hours; without a count of the tube now fitted,
        cleared where a tube change was recorded after it was raised."""
        params = UV_TUBE_LIFE.runs_on(lamp, self._site.room(lamp.room).type)
        if params is None:
            return
        if tube is None or tube.since_ms != (care.tube_since_ms or 0):
            current = opened.get((UV_TUBE_LIFE.id, lamp.id))
            if current is not None and care.tube_since_ms is not None and care.tube_since_ms >= current.first_ms:
                self._settle(UV_TUBE_LIFE, lamp, None, now_ms, opened)
            return
        found = None
        if tube.lit_ms >= tube.life_h * params.warn_at_pct / 100 * HOUR_MS:
            name, h, life, pct = lamp.name or lamp.id, f"{tube.hours:g}", f"{tube.life_h:g}", tube.life_pct
            if tube.since_ms:
                fitted = self._stamp(tube.since_ms)
                since_zh, since_en = f"本灯管自 {fitted} 更换以来", f"since it was fitted on {fitted}"
            else:
                since_zh = "未登记过更换灯管，自有读数以来"
                since_en = "since the lamp's first reading (no tube change recorded)"
            found = Found((f"{name} 灯管已用到额定寿命的 {pct}%", f"{name}: tube at {pct}% of its rated life"),
                          (f"{since_zh}已点亮 {h} 小时，额定寿命 {life} 小时：请准备新灯管，换上后在灯管管理中登记",
                           f"lit {h} h {since_en}, of {life} h rated: get a new tube and record the change "
                           "under tube care"),
                          tube.at_ms, {"tube_hours": tube.hours, "tube_life_h": tube.life_h, "life_pct": pct})
        self._settle(UV_TUBE_LIFE, lamp, found, now_ms, opened)

    def _settle(self, spec: RuleSpec[Any], lamp: Device, found: Found | None, now_ms: int,
                opened: Mapping[tuple[str, str], Alert]) -> None:
        """Raises the lamp's alert of `spec` where `found` and none is open (`opened`: the open
        alerts by rule and device); clears it where not."""
        params = spec.runs_on(lamp, self._site.room(lamp.room).type)
        if params is None:
            return
        rule = spec.id
        current = opened.get((rule, lamp.id))
        if found is None:
            if current is not None:
                self._alerts.apply(Finding(rule, lamp.id, False, params.severity, now_ms, now_ms, "", ""), Evidence())
            return
        if current is not None:
            return
        (title_zh, title_en), (detail_zh, detail_en) = found.title, found.detail
        self._alerts.apply(Finding(rule, lamp.id, True, params.severity, found.since_ms, now_ms, title_zh, title_en,
                                   detail_zh, detail_en, {"since_ms": found.since_ms, **found.facts}), Evidence())


@dataclass(frozen=True, slots=True)
class Found:
    """An alert the register raises: its title and detail (Chinese, English), since when, its figures."""

    title: tuple[str, str]
    detail: tuple[str, str]
    since_ms: int
    facts: Mapping[str, float] = field(default_factory=dict)


def _item(care: LampCare, tube: TubeHours | None, as_of_ms: int, stamp: Callable[[int], str],
          minute: Callable[[int], str]) -> tuple[ItemStatus, tuple[str, str]]:
    """The lamp's care in the daily record: failed where a test failed, a task is overdue or
    the tube is past its rated life; for a person to check where nothing is recorded yet. The
    tube's hours and life, where counted, close the sentence."""
    zh: list[str] = []
    en: list[str] = []
    if care.test is not None and not care.test.passed:
        zh.append(f"强度检测 {care.test.uw_cm2:g} 微瓦/平方厘米，低于 {care.test.limit_uw_cm2:g}，需更换灯管")
        en.append(f"irradiance {care.test.uw_cm2:g} µW/cm², below {care.test.limit_uw_cm2:g}: replace the tube")
    if care.test_overdue(as_of_ms):
        zh.append("新灯管未做强度检测" if care.test is None else f"强度检测已过期（上次 {stamp(care.test.at_ms)}）")
        en.append("the new tube's irradiance is not tested" if care.test is None else
                  f"irradiance test overdue (last on {stamp(care.test.at_ms)})")
    if care.clean_overdue(as_of_ms) and care.cleaned_ms is not None:
        zh.append(f"灯管擦拭已过期（上次 {stamp(care.cleaned_ms)}）")
        en.append(f"tube wipe overdue (last on {stamp(care.cleaned_ms)})")
    if tube is not None and tube.lit_ms >= tube.life_h * HOUR_MS:
        zh.append("灯管已超过额定寿命，需更换")
        en.append("the tube is past its rated life: replace it")
    status, (body_zh, body_en) = _verdict(care, zh, en, stamp)
    if tube is None:
        return status, (body_zh, body_en)
    h, life, pct, counted = f"{tube.hours:g}", f"{tube.life_h:g}", tube.life_pct, minute(tube.at_ms)
    return status, (f"{body_zh}；本灯管截至 {counted} 已点亮 {h} 小时，额定寿命 {life} 小时（已用 {pct}%）",
                    f"{body_en}; this tube lit {h} h as of {counted}, of {life} h rated ({pct}%)")


def _verdict(care: LampCare, zh: list[str], en: list[str],
             stamp: Callable[[int], str]) -> tuple[ItemStatus, tuple[str, str]]:
    if zh:
        return ItemStatus.FAIL, ("；".join(zh), "; ".join(en))
    if care.test is None or care.cleaned_ms is None:
        return ItemStatus.MANUAL, ("还没有灯管擦拭或强度检测的登记，请检查并登记",
                                   "no tube wipe or irradiance test recorded yet: check them and record them")
    wiped, tested, uw = stamp(care.cleaned_ms), stamp(care.test.at_ms), f"{care.test.uw_cm2:g}"
    return ItemStatus.PASS, (f"上次擦拭 {wiped}；上次强度检测 {tested}，{uw} 微瓦/平方厘米，合格",
                             f"last wiped {wiped}; irradiance {uw} µW/cm² on {tested}, passed")
