"""The UV lamps' care register (紫外线灯管理登记, WS/T 367-2012; docs/uv.md): a tube changed, a
tube wiped with alcohol, the irradiance tested at 1 m and its µW/cm², each with who did it
and when.

One row per action in the state database, site-scoped, each commit fsync'd and audited, as
the other registers are. From the rows and each lamp's settings (devices/uv_lamp.py) it
judges, on the watchdog's clock, the lamp's reminders: a wipe due (weekly by default), an
irradiance test due (half-yearly), a test below the limit (70 µW/cm²; the first test of a new
tube against 90), which opens a work order for a new tube. Its items join the daily record.
A tube's hours are its lamp's lit time since the tube was fitted (`tube_hours`), read from
the readings: outside the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import BigInteger, Column, Float, Index, Table, Text, select

from devices import uv_lamp
from gateway.alerting.alerts import AlertFilter, AlertStore
from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import Device, SiteConfig
from gateway.refused import Refused
from gateway.reports.judging import record_item
from gateway.reports.safety_model import Category, Item, ItemStatus
from gateway.reports.safety_series import held, total_ms, where
from gateway.rules.base import Finding, RuleSpec
from gateway.rules.engine import Evidence
from gateway.rules.uv import UV_CLEAN_DUE, UV_INTENSITY_LOW, UV_TEST_DUE, lamp_settings
from gateway.schedule.school_calendar import SchoolDay
from gateway.storage.state import ID, METADATA, StateDatabase

DAY_MS: Final = 86_400_000
AHEAD_MS: Final = 5 * 60_000
JUDGE_EVERY_MS: Final = 60_000  # a phone's clock may be a little ahead of the gateway's
MAX_POINTS: Final = 500_000  # a tube's life of readings at one a minute, lit or not, is about 1.4 million


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


Read = Callable[[str, str, int, int], list[tuple[int, float]]]


def tube_hours(read: Read, device: Device, since_ms: int, now_ms: int, hold_ms: int) -> float:
    """The tube's lit hours from `since_ms` (its fitting) to `now_ms`: every minute the lamp
    was on, its warm-up included (a tube ages whenever it is lit)."""
    lit = where(held(read(device.id, "on", since_ms, now_ms), since_ms, now_ms, hold_ms), bool)
    return round(total_ms([(h.start, h.end) for h in lit]) / 3_600_000, 1)


class UvCare:
    """The register of one site; writes and judgements on the event loop's thread."""

    page = "device"  # kept on each lamp's device page (the ledger links to it)

    def __init__(self, db: StateDatabase, site: SiteConfig, audit: AuditTrail, clock: Clock,
                 alerts: AlertStore) -> None:
        self._db = db
        self._site_id = site.id
        db.create(UV_CARE, site=site.id)
        self._audit = audit
        self._clock = clock
        self._alerts = alerts
        self._judged_ms = -JUDGE_EVERY_MS  # when the watchdog last judged (a pace, not an answer)
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
        self.judge(now, now=True)
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

    def care(self, device: Device, as_of_ms: int, entries: list[CareEntry] | None = None) -> LampCare:
        """Where the lamp's care stands at `as_of_ms`, from `entries` (of every lamp) if read already."""
        mine = [e for e in (self.entries(device.id) if entries is None else entries)
                if e.device == device.id and e.at_ms <= as_of_ms]
        return judge_care(mine, lamp_settings(device), device.id)

    # --- the daily record ------------------------------------------------------------------

    def items(self, site: SiteConfig, day: SchoolDay, start_ms: int, end_ms: int, as_of_ms: int) -> list[Item]:
        """One item per lamp: its wipe and its irradiance test up to date, and the test passed."""
        out = []
        entries = self.entries()
        for lamp in self.lamps:
            status, detail = _item(self.care(lamp, as_of_ms, entries), as_of_ms, self._stamp)
            item = record_item(f"uvcare:{lamp.id}", Category.UV, lamp, site, status, detail)
            out.append(item.model_copy(update={"check_zh": "紫外线灯管擦拭与强度检测",
                                               "check_en": "UV tube wiped and irradiance tested"}))
        return out

    def _stamp(self, ms: int) -> str:
        return f"{from_ms(ms, self._site.tz):%Y-%m-%d}"

    # --- reminders and the failed test ------------------------------------------------------

    def judge(self, now_ms: int, *, now: bool = False) -> None:
        """Raises and clears each lamp's reminders and its failed-test alert: on the watchdog's
        ticks (injected clock) at most once a minute, as they fall due by days; `now` right
        after an entry."""
        if not now and 0 <= now_ms - self._judged_ms < JUDGE_EVERY_MS:
            return
        self._judged_ms = now_ms
        entries = self.entries()
        for lamp in self.lamps:
            care = self.care(lamp, now_ms, entries)
            settings = lamp_settings(lamp)
            name = lamp.name or lamp.id
            clean = None
            if care.clean_overdue(now_ms):
                since = care.clean_due_ms or now_ms
                clean = ((f"{name} 灯管该擦拭了", f"{name}: wipe the tube"),
                         (f"每 {settings.clean_every_days:g} 天用酒精擦拭一次灯管，擦拭后请登记",
                          f"wipe the tube with alcohol every {settings.clean_every_days:g} days and record it"), since)
            self._settle(UV_CLEAN_DUE, lamp, clean, now_ms)
            test = None
            if care.test_overdue(now_ms):
                since = care.test_due_ms or now_ms
                test = ((f"{name} 该做强度检测了", f"{name}: test the irradiance"),
                        (f"每 {settings.test_every_days:g} 天检测一次照射强度"
                         "（开灯 5 分钟后、距灯管 1 米处），并登记结果",
                         f"test the irradiance every {settings.test_every_days:g} days (1 m away, after the warm-up) "
                         "and record the result"), since)
            self._settle(UV_TEST_DUE, lamp, test, now_ms)
            low = None
            if care.test is not None and not care.test.passed:
                t = care.test
                low = ((f"{name} 照射强度不合格，需更换灯管", f"{name}: irradiance too low, replace the tube"),
                       (f"{self._stamp(t.at_ms)} 测得 {t.uw_cm2:g} 微瓦/平方厘米，低于 {t.limit_uw_cm2:g}",
                        f"{t.uw_cm2:g} µW/cm² measured on {self._stamp(t.at_ms)}, below {t.limit_uw_cm2:g}"), t.at_ms)
            self._settle(UV_INTENSITY_LOW, lamp, low, now_ms)

    def _settle(self, spec: RuleSpec[Any], lamp: Device, found: tuple[tuple[str, str], tuple[str, str], int] | None,
                now_ms: int) -> None:
        """Raises the lamp's alert of `spec` where `found` and none is open; clears it where not."""
        params = spec.runs_on(lamp, self._site.room(lamp.room).type)
        if params is None:
            return
        rule = spec.id
        current = next(iter(self._alerts.find(AlertFilter(rule=rule, device_id=lamp.id, open_only=True, limit=1))),
                       None)
        if found is None:
            if current is not None:
                self._alerts.apply(Finding(rule, lamp.id, False, params.severity, now_ms, now_ms, "", ""), Evidence())
            return
        if current is not None:
            return
        (title_zh, title_en), (detail_zh, detail_en), since = found
        self._alerts.apply(Finding(rule, lamp.id, True, params.severity, since, now_ms, title_zh, title_en,
                                   detail_zh, detail_en, {"since_ms": since}), Evidence())


def _item(care: LampCare, as_of_ms: int, stamp: Callable[[int], str]) -> tuple[ItemStatus, tuple[str, str]]:
    """The lamp's care in the daily record: failed where a test failed or a task is overdue;
    for a person to check where nothing is recorded yet."""
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
    if zh:
        return ItemStatus.FAIL, ("；".join(zh), "; ".join(en))
    if care.test is None or care.cleaned_ms is None:
        return ItemStatus.MANUAL, ("还没有灯管擦拭或强度检测的登记，请检查并登记",
                                   "no tube wipe or irradiance test recorded yet: check them and record them")
    wiped, tested, uw = stamp(care.cleaned_ms), stamp(care.test.at_ms), f"{care.test.uw_cm2:g}"
    return ItemStatus.PASS, (f"上次擦拭 {wiped}；上次强度检测 {tested}，{uw} 微瓦/平方厘米，合格",
                             f"last wiped {wiped}; irradiance {uw} µW/cm² on {tested}, passed")
