"""The monthly energy-saving report (月度节能报告): electricity and water per site, building
and meter, read from the hourly rollups (5-minute ones only for the hours that a building's
opening or a tariff period splits).

Definitions (docs/reports.md explains them to the reader):
- The period: the whole month, or for the month in progress the month to date (月初至今), from
  its start to the end of the last whole hour before now (`through_ms`). Comparisons are like
  for like: the same days of the previous month and of the same month last year, up to the
  same time of day (the whole month where it is shorter). The monthly target is compared only
  once the month is over. Coverage and school days count the elapsed span.
- Totals of a building come from its main meters (`SiteConfig.main_meters`), so a sub-meter
  is never counted twice; a sub-meter's own figures are in the meter table.
- Consumption is a counter's increase, attributed to the 5-minute bucket of the reading that
  shows it (`gateway.storage.sqlite.increase`).
- After hours: every minute the meter's building is closed by the school calendar.
- Waste (electricity) is quoted from the after-hours load rule's alerts begun in the month
  (gateway/rules/power.py computes `waste_kwh` and `cost_yuan` for each episode); the rest of
  the after-hours energy is the base load and short uses. The base load is the rule's:
  configured `base_load_w`, else what the rule has learned (`LearnedStore.base_loads()`).
- Leak losses are quoted from the leak and running-tap rules' alerts begun in the month
  (gateway/rules/water.py computes `loss_m3` and `cost_yuan`).
- Sub-items (分项, gateway/reports/subitems.py): a tagged meter's period use counts in its
  sub-item in its building; a derived sub-item is its main meter's use less its sub-meters'
  (unknown when any of them has no readings). Standard coal (kgce) by the categories' factors.
- Intensity: the site's main meters per m², per person and per student; a quota is a year's, so
  the period is compared with the quota in proportion to its elapsed hours of the year.
- Completeness of a meter: readings received in the period ÷ those its reporting interval
  (`Device.interval_s`) expects over the elapsed hours; under COMPLETE (90 %) it is flagged.
"""

from __future__ import annotations

import calendar as calendar_module
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel

from devices import meters
from devices.base import Utility
from gateway.alerting.alerts import Alert, AlertFilter, AlertStore
from gateway.clock import from_ms
from gateway.config import Building, Device, SiteConfig, TouPeriodName
from gateway.reports.subitems import CATEGORIES, kgce, words
from gateway.rules.learned import BaseLoad
from gateway.rules.power import LOAD_AFTER_HOURS
from gateway.rules.water import RUNNING_TAP, WATER_LEAK
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.readings import ReadingStore
from gateway.storage.sqlite import FIVE_MIN_MS, HOUR_MS, GroupSum, Rollup

# Utility → (the kind that meters it, its counter, the counter's unit), as the kinds declare them.
METERS: dict[Utility, tuple[str, str, str]] = {u: (k.name, m.key, m.unit) for u, (k, m) in meters().items()}
LEAK_RULES = (WATER_LEAK.id, RUNNING_TAP.id)
SLOTS_PER_HOUR = HOUR_MS // FIVE_MIN_MS
# Buildings read at once: SQLite and PostgreSQL answer without the GIL, so while one building's
# query runs, another's rows are added up (`bench/report.py`).
READERS = 2
HOURS = -1  # `_Slots.groups`: the group of every hourly bucket (hours with readings, readings)
Tariffed = tuple[TouPeriodName, float]  # a time-of-use period and its price
FIRST_YEAR, LAST_YEAR = 1971, 9998
# A period says it has too little data, instead of comparing or calling anything a saving,
# when it is shorter than this or its least covered main meter has readings in fewer of its
# elapsed hours than this share.
MIN_HOURS = 72
MIN_COVERAGE = 0.5
# Data completeness (records received ÷ expected) below this is flagged (GB/T 37947's bar).
COMPLETE = 0.9
# What a tariff prices; the other utilities' costs are not known.
PRICED: tuple[Utility, ...] = ("electricity", "water")

# Where a meter's base load comes from: the site file (`load_after_hours.base_load_w`) or the
# rule's learning; a building whose main meters differ is "mixed".
BaseSource = Literal["configured", "learned", "mixed"]


class Month(BaseModel):
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """"2026-10" → Month; ValueError otherwise. Years 1971–9998: the previous year and the
        next month must exist too."""
        try:
            year, month = (int(part) for part in text.split("-"))
            date(year, month, 1)
        except ValueError:
            year = 0
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"month {text!r} is not YYYY-MM between {FIRST_YEAR} and {LAST_YEAR}")
        return cls(year=year, month=month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def first(self) -> date:
        return date(self.year, self.month, 1)

    def days(self) -> list[date]:
        n = calendar_module.monthrange(self.year, self.month)[1]
        return [date(self.year, self.month, d) for d in range(1, n + 1)]

    def shift(self, months: int) -> Month:
        n = self.year * 12 + self.month - 1 + months
        return Month(year=n // 12, month=n % 12 + 1)


class PeriodUse(BaseModel):
    period: TouPeriodName
    yuan_per_kwh: float
    kwh: float
    cost_yuan: float


class DayUse(BaseModel):
    date: date
    school_day: bool
    total: float | None
    after_hours: float | None


class Comparison(BaseModel):
    """Another month's use over the span that compares with this period: the whole month, or
    for a month to date the same days up to the same time of day. `coverage`: the share of
    the span's hours with readings (of the least covered meter)."""

    start_ms: int
    end_ms: int
    total: float | None
    coverage: float


class Totals(BaseModel):
    """One utility for the whole site (main meters of every building)."""

    unit: str
    total: float | None
    after_hours: float | None
    after_hours_share: float | None
    cost_yuan: float | None
    by_period: list[PeriodUse]  # electricity: time-of-use periods, in the order peak → valley
    coverage: float  # the share of the period's elapsed hours with readings, of the least covered main meter
    enough_data: bool  # at least MIN_HOURS elapsed and MIN_COVERAGE covered: it may be compared
    previous_month: Comparison
    same_month_last_year: Comparison
    target: float | None  # the monthly target; compared only once the month is over
    per_person: float | None
    per_m2: float | None
    daily: list[DayUse]  # the elapsed days
    # Mean consumption per hour of day (columns 0–23) for each weekday (rows Monday–Sunday).
    weekday_hours: list[list[float | None]]


class MeterUse(BaseModel):
    """One meter's period. For electricity, its after-hours energy is the waste its alerts
    counted plus the rest (`after_hours_rest`): the base load and short uses."""

    device_id: str
    name: str
    utility: Utility
    building_id: str
    main: bool  # a main meter (counted in totals) or a sub-meter
    total: float | None
    after_hours: float | None
    after_hours_share: float | None
    cost_yuan: float | None
    coverage: float  # the share of the period's elapsed hours with readings
    # electricity, where the after-hours load rule watches the meter
    base_w: float | None = None  # the rule's base load; None: not learned yet
    base_source: BaseSource | None = None
    waste_kwh: float | None = None  # the sum of its after-hours load alerts begun in the month
    waste_yuan: float | None = None
    waste_episodes: int = 0
    waste_minutes: float = 0.0
    after_hours_rest: float | None = None  # after hours less waste: base load and short uses
    subitem: str | None = None  # its sub-item's code, where it is tagged
    records: int = 0  # readings received in the period
    expected: int = 0  # readings its reporting interval expects over the period's elapsed hours
    completeness: float | None = None  # records ÷ expected, at most 1; None when none are expected
    complete: bool = False  # completeness at least COMPLETE


class SubitemUse(BaseModel):
    """A sub-item's use in a building (or, `building_id` None, in the whole site): the meters
    tagged with it (`plus`), or a main meter less its sub-meters (`minus`)."""

    code: str
    words_zh: str  # as people read it, code first (`subitems.words`)
    words_en: str
    utility: Utility
    building_id: str | None
    unit: str
    total: float | None
    kgce: float | None
    plus: list[str]
    minus: list[str]


class CategoryUse(BaseModel):
    """One energy category (or water) for the whole site, from its main meters."""

    utility: Utility
    code: str
    unit: str
    total: float | None
    kgce: float | None  # None for water, which is not energy
    same_month_last_year: Comparison  # its main meters, like for like (as `Totals.same_month_last_year`)


class Metering(BaseModel):
    """Metering coverage of one category (计量覆盖率, against the 2014 notice's targets): of
    its buildings (用能单位: each building is one) those with a meter of their own (分户), and of
    its main meters' use the share measured again below the building (分区: by sub-meters; in a
    building metered only by several meters each of its own part, all of it) and the share
    counted in a sub-item (分项: tagged meters and derived sub-items)."""

    utility: Utility
    buildings: int
    metered: int  # buildings with a meter of this category of their own
    main: float | None  # the main meters' use
    zoned: float | None  # of it, measured by zone meters
    subitemized: float | None  # of it, counted in a sub-item
    per_unit: float | None  # metered ÷ buildings (分户计量率)
    per_zone: float | None  # zoned ÷ main (分区计量率)
    per_subitem: float | None  # subitemized ÷ main (分项计量率)

    @classmethod
    def of(cls, utility: Utility, buildings: int, metered: int, main: float | None, zoned: float | None,
           subitemized: float | None) -> Metering:
        """The shares from their parts: one computation for a month and for the sum of months."""
        return cls(utility=utility, buildings=buildings, metered=metered, main=_round(main), zoned=_round(zoned),
                   subitemized=_round(subitemized), per_unit=round(metered / buildings, 4) if buildings else None,
                   per_zone=_part(zoned, main), per_subitem=_part(subitemized, main))


IntensityMeasure = Literal["kgce_per_m2", "kgce_per_person", "kgce_per_student", "kwh_per_m2", "kwh_per_person",
                           "water_m3_per_person"]


class Intensity(BaseModel):
    """The period's use per m², person or student, against the site's quota where it has one."""

    measure: IntensityMeasure
    value: float | None
    quota_year: float | None
    quota_period: float | None  # the year's quota in proportion to the period's elapsed hours
    exceeded: bool | None  # None without a value or a quota


class BuildingUse(BaseModel):
    building_id: str
    name: str
    electricity_kwh: float | None
    water_m3: float | None
    cost_yuan: float | None
    coverage: float  # electricity main meters, as `Totals.coverage`
    enough_data: bool
    after_hours_kwh: float | None
    after_hours_share: float | None  # electricity
    waste_kwh: float | None  # its electricity main meters' alerts
    waste_yuan: float | None
    after_hours_rest: float | None  # after hours less waste: base load and short uses
    base_w: float | None  # its electricity main meters' base loads summed; None while one is not learned
    base_source: BaseSource | None
    standby_w: float | None  # what it is expected to draw while closed (`Building.standby_w`)
    closed_h: float  # the hours it was closed in the period
    # Where the base is above the expected standby: what the difference costs over the closed hours.
    base_excess_kwh: float | None
    base_excess_yuan: float | None
    floor_area_m2: float | None
    headcount: int | None
    kwh_per_m2: float | None
    previous_kwh: Comparison
    kgce: float | None  # its main meters' energy in standard coal


class AlertFigures(BaseModel):
    """An alert begun in the month whose figures the report quotes: its rule's, final once it
    cleared, as of its last update (`until_ms`) while it is still active."""

    alert_id: int
    device_id: str
    name: str
    first_ms: int
    until_ms: int  # cleared, or the alert's last update while it is still active
    cleared: bool
    minutes: float
    cost_yuan: float


class LeakLoss(AlertFigures):
    """A leak or running-tap alert: the water it lost above the meter's normal flow."""

    rule: str
    loss_m3: float


class LoadEpisode(AlertFigures):
    """An after-hours load alert: the energy it counted above the base load in force
    (`base_w`), costed at its tariff."""

    base_w: float | None
    waste_kwh: float


class EnergyReport(BaseModel):
    site_id: str
    site_name: str
    month: str
    start_ms: int  # the month's first instant
    end_ms: int  # the month's end
    partial: bool  # the month is in progress: the report is its month to date (月初至今)
    through_ms: int  # the end of what it covers: `end_ms`, or the end of the last whole hour before now
    hours: int  # the period's elapsed hours
    generated_ms: int
    school_days: int  # in the period (days begun by `through_ms`)
    school_days_month: int  # in the whole month
    electricity: Totals
    water: Totals
    buildings: list[BuildingUse]  # ranked: most electricity per m² (or in all) first
    meters: list[MeterUse]
    waste_kwh: float | None  # main meters
    waste_yuan: float | None
    load_episodes: list[LoadEpisode]
    leaks: list[LeakLoss]
    leak_m3: float
    leak_yuan: float
    categories: list[CategoryUse]
    total_kgce: float | None  # every energy category's main meters in standard coal
    subitems: list[SubitemUse]  # by building, then the site's (building_id None), in code order
    intensity: list[Intensity]
    quota_standard: str  # where the quotas come from, as the site file says
    metering: list[Metering]  # each category the site meters


@dataclass
class _Slots:
    """The period in 5-minute slots: for each building whether it is open, and for each slot
    its tariff period and price."""

    start_ms: int
    open: dict[str, list[bool]]
    period: list[Tariffed]
    _uniform: dict[str, list[bool]] = field(default_factory=dict)
    _groups: dict[str, tuple[list[tuple[int, int, int, int]], list[tuple[bool, Tariffed]]]] = field(
        default_factory=dict)

    def index(self, ts_ms: int) -> int:
        return (ts_ms - self.start_ms) // FIVE_MIN_MS

    def uniform(self, building_id: str, hour_ms: int) -> bool:
        """Whether one hour's slots all share opening and tariff (then its hourly rollup suffices)."""
        hours = self._uniform.get(building_id)
        if hours is None:  # once per building: every meter of it asks for every hour
            is_open, period = self.open[building_id], self.period
            hours = self._uniform[building_id] = [
                len(opens := is_open[i:i + SLOTS_PER_HOUR]) == opens.count(opens[0])
                and len(tariffs := period[i:i + SLOTS_PER_HOUR]) == tariffs.count(tariffs[0])
                for i in range(0, len(period), SLOTS_PER_HOUR)]
        return hours[self.index(hour_ms) // SLOTS_PER_HOUR]

    def groups(self, building_id: str) -> tuple[list[tuple[int, int, int, int]], list[tuple[bool, Tariffed]]]:
        """The period as spans of rollups grouped by opening and tariff, for the store to sum
        (`ReadingStore.group_sums`): each group's (open, (period, price)), and spans (group,
        start, end, step) — hourly rollups in uniform hours, 5-minute ones in the others, the
        neighbours of one group joined — and the group `HOURS`: every hourly bucket."""
        if (found := self._groups.get(building_id)) is not None:
            return found
        is_open, period = self.open[building_id], self.period
        classes: dict[tuple[bool, Tariffed], int] = {}
        spans: list[tuple[int, int, int, int]] = [(HOURS, self.start_ms, self.start_ms + len(period) * FIVE_MIN_MS,
                                                   HOUR_MS)]
        for first in range(0, len(period), SLOTS_PER_HOUR):
            step = HOUR_MS if self.uniform(building_id, self.start_ms + first * FIVE_MIN_MS) else FIVE_MIN_MS
            for i in range(first, min(first + SLOTS_PER_HOUR, len(period)), step // FIVE_MIN_MS):
                group = classes.setdefault((is_open[i], period[i]), len(classes))
                start = self.start_ms + i * FIVE_MIN_MS
                last = spans[-1]
                if last[0] == group and last[3] == step and last[2] == start:
                    spans[-1] = (group, last[1], start + step, step)
                else:
                    spans.append((group, start, start + step, step))
        found = self._groups[building_id] = spans, list(classes)
        return found

    def closed(self, building_id: str) -> tuple[float, float]:
        """The building's closed hours in the period, and what one kW drawn through them costs."""
        shut = [price for is_open, (_, price) in zip(self.open[building_id], self.period, strict=True) if not is_open]
        return len(shut) / SLOTS_PER_HOUR, sum(shut) / SLOTS_PER_HOUR


@dataclass
class _Meter:
    """One meter's period, accumulated over its buckets."""

    device: Device
    building_id: str
    total: float = 0.0
    records: int = 0
    after_hours: float = 0.0
    cost: float = 0.0
    hours_seen: int = 0
    by_period: dict[TouPeriodName, float] = field(default_factory=lambda: defaultdict(float))
    by_hour: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # local hour start → use
    closed_by_hour: dict[int, float] = field(default_factory=lambda: defaultdict(float))


@dataclass(frozen=True)
class _Period:
    """What the report covers: [start, through) of the month [start, end)."""

    month: Month
    start_ms: int
    end_ms: int
    through_ms: int

    @property
    def partial(self) -> bool:
        return self.through_ms < self.end_ms

    @property
    def hours(self) -> int:
        return (self.through_ms - self.start_ms) // HOUR_MS


def bounds_ms(cal: SchoolCalendar, month: Month) -> tuple[int, int]:
    """The month's first and last instant, local time."""
    return cal.day_bounds_ms(month.first())[0], cal.day_bounds_ms(month.shift(1).first())[0]


def through_ms(cal: SchoolCalendar, month: Month, now_ms: int) -> int:
    """The end of what a report of `month` made at `now_ms` covers: the month's end once it is
    over, else the end of the last whole hour (hourly rollups of a whole hour compare with
    the same hour of other months)."""
    start, end = bounds_ms(cal, month)
    if now_ms >= end:
        return end
    return max(start, now_ms - (now_ms - start) % HOUR_MS)


def like_for_like(cal: SchoolCalendar, month: Month, other: Month, through: int) -> tuple[int, int]:
    """The span of `other` that compares with `month` up to `through`: the same days up to the
    same time of day, or the whole of `other` (for a whole month, or where `other` is shorter
    than the days elapsed)."""
    other_start, other_end = bounds_ms(cal, other)
    if through >= bounds_ms(cal, month)[1]:
        return other_start, other_end
    day = cal.local_date(through)
    into_day = through - cal.day_bounds_ms(day)[0]
    if day.day > calendar_module.monthrange(other.year, other.month)[1]:
        return other_start, other_end
    return other_start, cal.day_bounds_ms(date(other.year, other.month, day.day))[0] + into_day


def _begun_in(alerts: AlertStore, cal: SchoolCalendar, month: Month, rules: Sequence[str]) -> list[Alert]:
    start_ms, end_ms = bounds_ms(cal, month)
    return [a for rule in rules
            for a in alerts.find(AlertFilter(rule=rule, since_ms=start_ms, until_ms=end_ms, limit=10_000))]


def leak_alerts(alerts: AlertStore, cal: SchoolCalendar, month: Month) -> list[Alert]:
    """The alerts whose losses the report quotes: leaks and running taps begun in `month`."""
    return _begun_in(alerts, cal, month, LEAK_RULES)


def load_alerts(alerts: AlertStore, cal: SchoolCalendar, month: Month) -> list[Alert]:
    """The alerts whose waste the report quotes: loads left on after hours begun in `month`."""
    return _begun_in(alerts, cal, month, (LOAD_AFTER_HOURS.id,))


def energy_report(site: SiteConfig, cal: SchoolCalendar, store: ReadingStore, leaks: Sequence[Alert],
                  loads: Sequence[Alert], month: Month, now_ms: int, learned: Mapping[str, BaseLoad],
                  progress: Callable[[int, int], None] | None = None) -> EnergyReport:
    """Computes the report for `month` (its month to date while it is in progress) with the
    month's `leak_alerts` and `load_alerts` and the base loads the rules have `learned`
    (`LearnedStore.base_loads()`). `progress` hears (meters done, meters) as the meters are
    read. Reads SQLite only: it may run in a worker thread."""
    start_ms, end_ms = bounds_ms(cal, month)
    p = _Period(month, start_ms, end_ms, through_ms(cal, month, now_ms))
    slots = _slots(site, cal, p.start_ms, p.through_ms)
    meters = [d for d in site.devices if d.kind in {kind for kind, _, _ in METERS.values()}]
    main = {d.id for b in site.buildings for kind, _, _ in METERS.values() for d in site.main_meters(kind, b)}
    read: dict[str, _Meter] = {}
    for utility, (kind, metric, _) in METERS.items():
        read |= _read_meters(site, store, slots, [d for d in meters if d.kind == kind], metric, utility, p, main)
        if progress:
            progress(len(read), len(meters))
    episodes = _episodes(site, loads)
    uses = {d.id: _meter_use(read[d.id], d.id in main, p, learned, [e for e in episodes if e.device_id == d.id])
            for d in meters}
    days = [d for d in month.days() if cal.day_bounds_ms(d)[0] < p.through_ms]
    losses = _leaks(site, leaks)
    totals = {u: _totals(site, cal, store, p, u, [read[i] for i in read if i in main and uses[i].utility == u],
                         days) for u in METERS}
    watched = [u for u in uses.values() if u.main and u.waste_kwh is not None]
    categories = [CategoryUse(utility=u, code=CATEGORIES[u].code, unit=t.unit, total=t.total,
                              kgce=_round(kgce(u, t.total)), same_month_last_year=t.same_month_last_year)
                  for u, t in totals.items()]
    total_kgce = sum_kgce(c.kgce for c in categories)
    subitems = _subitems(site, uses)
    return EnergyReport(
        site_id=site.id, site_name=site.name, month=str(month), start_ms=start_ms, end_ms=end_ms,
        partial=p.partial, through_ms=p.through_ms, hours=p.hours, generated_ms=now_ms,
        school_days=sum(cal.day(d).school_day for d in days),
        school_days_month=sum(cal.day(d).school_day for d in month.days()),
        electricity=totals["electricity"], water=totals["water"],
        buildings=_buildings(site, cal, store, uses, slots, p),
        meters=sorted(uses.values(), key=lambda u: (u.utility, -(u.total or 0))),
        waste_kwh=_round(sum(u.waste_kwh or 0 for u in watched)) if watched else None,
        waste_yuan=_round(sum(u.waste_yuan or 0 for u in watched), 2) if watched else None,
        load_episodes=episodes,
        leaks=losses, leak_m3=round(sum(x.loss_m3 for x in losses), 3),
        leak_yuan=round(sum(x.cost_yuan for x in losses), 2),
        categories=categories, total_kgce=total_kgce, subitems=subitems,
        intensity=intensities(site, month.year, p.hours, total_kgce, totals["electricity"].total,
                              totals["water"].total),
        quota_standard=site.quotas.standard, metering=_metering(site, uses, subitems),
    )


def sum_kgce(amounts: Iterable[float | None]) -> float | None:
    """Standard coal summed over what is known; None when nothing is."""
    known = [k for k in amounts if k is not None]
    return _round(sum(known)) if known else None


def _metering(site: SiteConfig, uses: dict[str, MeterUse], subitems: list[SubitemUse]) -> list[Metering]:
    """Each metered category's coverage over the period's use."""
    out = []
    for utility, (kind, _, _) in METERS.items():
        if not any(u.utility == utility for u in uses.values()):
            continue
        metered = 0
        main: list[float | None] = []
        zoned: list[float | None] = []
        for b in site.buildings:
            mains = site.main_meters(kind, b)
            if not mains:
                continue
            metered += 1
            main += [uses[d.id].total for d in mains]
            below = [u.total for u in uses.values()
                     if u.utility == utility and u.building_id == b.id and not u.main]
            # Sub-meters behind the main meters, else several meters each of its own part; a
            # building with one meter and none behind it has none of its use zoned.
            zoned += below if below else [uses[d.id].total for d in mains] if len(mains) > 1 else [0.0]
        parts = [s.total for s in subitems if s.utility == utility and s.building_id is not None]
        out.append(Metering.of(utility, len(site.buildings), metered, _known_sum(main), _known_sum(zoned),
                               _known_sum(parts) if parts else 0.0))
    return out


def _known_sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _subitems(site: SiteConfig, uses: dict[str, MeterUse]) -> list[SubitemUse]:
    """Each sub-item in each building, from the meters' period use, then each for the site."""
    parts: dict[tuple[str, str], list[tuple[MeterUse, list[MeterUse]]]] = defaultdict(list)
    for use in uses.values():
        if use.subitem is not None:
            parts[use.subitem, use.building_id].append((use, []))
    for derived in site.derived_subitems:
        main = uses[derived.main]
        parts[derived.subitem, main.building_id].append((main, [uses[d] for d in derived.minus]))
    out: list[SubitemUse] = []
    for (code, building_id), found in sorted(parts.items()):
        meters = [u for main, subs in found for u in (main, *subs)]
        total = None if any(u.total is None for u in meters) else sum(
            (main.total or 0) - sum(s.total or 0 for s in subs) for main, subs in found)
        out.append(subitem_use(code, building_id, meters[0].utility, total, [main.device_id for main, _ in found],
                            [s.device_id for _, subs in found for s in subs]))
    for code in sorted({u.code for u in out}):
        mine = [u for u in out if u.code == code]
        total = None if any(u.total is None for u in mine) else sum(u.total or 0 for u in mine)
        out.append(subitem_use(code, None, mine[0].utility, total, [d for u in mine for d in u.plus],
                            [d for u in mine for d in u.minus]))
    return out


def subitem_use(code: str, building_id: str | None, utility: Utility, total: float | None, plus: list[str],
             minus: list[str]) -> SubitemUse:
    zh, en = words(code)
    return SubitemUse(code=code, words_zh=zh, words_en=en, utility=utility, building_id=building_id,
                      unit=METERS[utility][2], total=_round(total), kgce=_round(kgce(utility, total)), plus=plus,
                      minus=minus)


def intensities(site: SiteConfig, year: int, hours: int, total_kgce: float | None, kwh: float | None,
                water: float | None) -> list[Intensity]:
    """A period's intensities (`hours` of `year`, the site's main meters' totals), each against
    its quota in proportion to the period's hours of the year."""
    year_hours = (366 if calendar_module.isleap(year) else 365) * 24
    area, people, students = site.floor_area_m2(), site.people(), site.students
    q = site.quotas
    found: list[tuple[IntensityMeasure, float | None, float | None, float | None]] = [
        ("kgce_per_m2", total_kgce, area, q.kgce_per_m2),
        ("kgce_per_person", total_kgce, people, q.kgce_per_person),
        ("kgce_per_student", total_kgce, students, q.kgce_per_student),
        ("kwh_per_m2", kwh, area, q.kwh_per_m2),
        ("kwh_per_person", kwh, people, q.kwh_per_person),
        ("water_m3_per_person", water, people, q.water_m3_per_person),
    ]
    out = []
    for measure, amount, per, quota in found:
        if not per:
            continue
        value = None if amount is None else amount / per
        share = quota * hours / year_hours if quota is not None else None
        out.append(Intensity(measure=measure, value=_round(value, 4), quota_year=quota, quota_period=_round(share, 4),
                             exceeded=None if value is None or share is None else value > share))
    return out


def _slots(site: SiteConfig, cal: SchoolCalendar, start_ms: int, end_ms: int) -> _Slots:
    n = (end_ms - start_ms) // FIVE_MIN_MS
    opened: dict[str, list[bool]] = {}
    first, last = cal.local_date(start_ms), cal.local_date(max(start_ms, end_ms - 1))
    for b in site.buildings:
        flags = [False] * n
        d = first
        while d <= last:
            for lo, hi in cal.open_spans_ms(b.id, d):
                for i in range(max(0, -(-(lo - start_ms) // FIVE_MIN_MS)), min(n, (hi - start_ms) // FIVE_MIN_MS)):
                    flags[i] = True
            d += timedelta(days=1)
        opened[b.id] = flags
    by_minute = site.tariffs.by_minute()
    tz = site.tz
    period = []
    for i in range(n):
        local = from_ms((start_ms + i * FIVE_MIN_MS), tz)
        period.append(by_minute[local.hour * 60 + local.minute])
    return _Slots(start_ms, opened, period)


def _read_meters(site: SiteConfig, store: ReadingStore, slots: _Slots, devices: list[Device], metric: str,
                 utility: Utility, p: _Period, main: set[str]) -> dict[str, _Meter]:
    """The meters of one utility. A main meter hour by hour (its building's and the site's days
    are its hours): one query for their hourly rollups, then one a building for the 5-minute
    rollups of the hours that its opening or a tariff period splits. Any other meter summed by
    the store by opening and tariff (`_Slots.groups`): one query a building. The buildings'
    queries run `READERS` at a time: the database works while Python adds up another's."""
    buildings: dict[str, list[Device]] = defaultdict(list)
    for device in devices:
        buildings[site.building_of(device.room).id].append(device)
    hourly = store.rollups(metric, [d.id for d in devices if d.id in main], [(p.start_ms, p.through_ms)])

    def building_meters(building: str, mine: list[Device]) -> dict[str, _Meter]:
        read: dict[str, _Meter] = {}
        mains = [d for d in mine if d.id in main]
        split = {d.id: {r.ts_ms for r in hourly.get(d.id, []) if r.increase and not slots.uniform(building, r.ts_ms)}
                 for d in mains}
        hours = sorted(set[int]().union(*split.values()))
        fine = store.rollups(metric, [d.id for d in mains if split[d.id]], [(h, h + HOUR_MS) for h in hours],
                             FIVE_MIN_MS) if hours else {}
        for d in mains:
            read[d.id] = _read_meter(site, slots, d, building, utility, p, hourly.get(d.id, []), split[d.id],
                                     fine.get(d.id, []))
        others = [d for d in mine if d.id not in main]
        if others:
            spans, classes = slots.groups(building)
            sums = store.group_sums(metric, [d.id for d in others], spans)
            for d in others:
                read[d.id] = _summed_meter(site, d, building, utility, sums.get(d.id, {}), classes)
        return read

    read: dict[str, _Meter] = {}
    with ThreadPoolExecutor(READERS, thread_name_prefix="report") as pool:
        for meters_read in pool.map(building_meters, buildings.keys(), buildings.values()):
            read.update(meters_read)
    return {d.id: read[d.id] for d in devices}


def _read_meter(site: SiteConfig, slots: _Slots, device: Device, building: str, utility: Utility, p: _Period,
                hourly: list[Rollup], split: set[int], fine: list[Rollup]) -> _Meter:
    """One meter's period from its hourly rollups, and from its 5-minute ones in the hours
    (`split`) that are not uniform: `fine` may hold other hours of its building, not counted."""
    m = _Meter(device, building)
    m.hours_seen = sum(1 for r in hourly if r.count)
    m.records = sum(r.count for r in hourly)
    whole = ((r.ts_ms, r.increase) for r in hourly if r.increase and r.ts_ms not in split)
    parts = ((r.ts_ms, r.increase) for r in fine if r.increase and r.ts_ms - r.ts_ms % HOUR_MS in split)
    is_open = slots.open[building]
    for ts, use in (*whole, *parts):
        i = slots.index(ts)
        if not 0 <= i < len(is_open):
            continue
        hour = ts - (ts - p.start_ms) % HOUR_MS
        _count(site, m, utility, use, is_open[i], slots.period[i])
        m.by_hour[hour] += use
        if not is_open[i]:
            m.closed_by_hour[hour] += use
    return m


def _summed_meter(site: SiteConfig, device: Device, building: str, utility: Utility, sums: Mapping[int, GroupSum],
                  classes: list[tuple[bool, Tariffed]]) -> _Meter:
    """One meter's period from its rollups summed by `_Slots.groups`."""
    m = _Meter(device, building)
    if (every := sums.get(HOURS)) is not None:
        m.hours_seen, m.records = every.buckets, every.readings
    for group, summed in sums.items():
        if group != HOURS and summed.increase:
            _count(site, m, utility, summed.increase, *classes[group])
    return m


def _count(site: SiteConfig, m: _Meter, utility: Utility, use: float, is_open: bool, tariffed: Tariffed) -> None:
    """Adds a part of a meter's use, all of one opening and one time-of-use period."""
    m.total += use
    name, price = tariffed
    if utility == "electricity":
        m.by_period[name] += use
        m.cost += use * price
    elif utility == "water":
        m.cost += use * site.tariffs.water_yuan_per_m3
    if not is_open:
        m.after_hours += use


def base_load(device: Device, learned: Mapping[str, BaseLoad]) -> tuple[float | None, BaseSource | None]:
    """The after-hours load rule's base load of a circuit in W, and where it comes from: the
    site file's `base_load_w`, else what the rule has learned (None before it has)."""
    params = LOAD_AFTER_HOURS.params_for(device)
    if params.base_load_w is not None:
        return params.base_load_w, "configured"
    found = learned.get(device.id)
    if found is None or found.base_w is None:
        return None, None
    return found.base_w, "learned"


def _meter_use(m: _Meter, main: bool, p: _Period, learned: Mapping[str, BaseLoad],
               episodes: list[LoadEpisode]) -> MeterUse:
    utility = next(u for u, (kind, _, _) in METERS.items() if kind == m.device.kind)
    seen = m.hours_seen > 0
    expected = round((p.through_ms - p.start_ms) / 1000 / m.device.interval_s)
    share = completeness(m.records, expected)
    use = MeterUse(
        device_id=m.device.id, name=m.device.name or m.device.id, utility=utility, building_id=m.building_id,
        main=main, total=_round(m.total) if seen else None, after_hours=_round(m.after_hours) if seen else None,
        after_hours_share=_share(m.after_hours, m.total) if seen else None,
        cost_yuan=_round(m.cost, 2) if seen and utility in PRICED else None,
        coverage=_coverage(m.hours_seen, p.hours), subitem=m.device.subitem, records=m.records, expected=expected,
        completeness=share, complete=share is not None and share >= COMPLETE,
    )
    if utility == "electricity" and LOAD_AFTER_HOURS.params_for(m.device).enabled:
        use.base_w, use.base_source = base_load(m.device, learned)
        waste = sum(e.waste_kwh for e in episodes)
        use.waste_kwh = _round(waste)
        use.waste_yuan = _round(sum(e.cost_yuan for e in episodes), 2)
        use.waste_episodes = len(episodes)
        use.waste_minutes = round(sum(e.minutes for e in episodes), 1)
        # An episode counts whole in the month it began, so at the month's edges its waste can
        # reach past the period's after-hours energy: the rest is then nothing, not negative.
        use.after_hours_rest = _round(max(0.0, m.after_hours - waste)) if seen else None
    return use


def completeness(records: int, expected: int) -> float | None:
    """Readings received ÷ expected, at most 1; None when none are expected."""
    return round(min(1.0, records / expected), 4) if expected else None


def _coverage(hours_seen: int, hours: int) -> float:
    return round(min(1.0, hours_seen / hours), 4) if hours else 0.0


def _enough(p: _Period, coverage: float) -> bool:
    return p.hours >= MIN_HOURS and coverage >= MIN_COVERAGE


def _totals(site: SiteConfig, cal: SchoolCalendar, store: ReadingStore, p: _Period, utility: Utility,
            meters: list[_Meter], days: list[date]) -> Totals:
    _, metric, unit = METERS[utility]
    seen = [m for m in meters if m.hours_seen]
    total = sum(m.total for m in seen) if seen else None
    after = sum(m.after_hours for m in seen) if seen else None
    by_period: dict[TouPeriodName, float] = defaultdict(float)
    for m in seen:
        for name, kwh in m.by_period.items():
            by_period[name] += kwh
    prices = dict(site.tariffs.by_minute())
    order: list[TouPeriodName] = ["sharp", "peak", "flat", "valley"]
    daily = []
    by_hour: dict[int, float] = defaultdict(float)
    closed_by_hour: dict[int, float] = defaultdict(float)
    for m in seen:
        for h, u in m.by_hour.items():
            by_hour[h] += u
        for h, u in m.closed_by_hour.items():
            closed_by_hour[h] += u
    weekday_hours: list[list[list[float]]] = [[[] for _ in range(24)] for _ in range(7)]
    for d in days:
        lo, hi = cal.day_bounds_ms(d)
        hours = range(lo, min(hi, p.through_ms), HOUR_MS)
        daily.append(DayUse(date=d, school_day=cal.day(d).school_day,
                            total=_round(sum(by_hour.get(h, 0.0) for h in hours)) if seen else None,
                            after_hours=_round(sum(closed_by_hour.get(h, 0.0) for h in hours)) if seen else None))
        if seen:
            for h in hours:
                local = from_ms(h, site.tz)
                weekday_hours[local.weekday()][local.hour].append(by_hour.get(h, 0.0))
    ids = [m.device.id for m in meters]
    coverage = min((_coverage(m.hours_seen, p.hours) for m in meters), default=0.0)
    people, area = site.people(), site.floor_area_m2()
    targets = site.reports.targets
    target = {"electricity": targets.electricity_kwh, "water": targets.water_m3}.get(utility)
    return Totals(
        unit=unit, total=_round(total), after_hours=_round(after),
        after_hours_share=_share(after, total), cost_yuan=_round(sum(m.cost for m in seen), 2) if seen else None,
        by_period=[PeriodUse(period=name, yuan_per_kwh=prices[name], kwh=_round(by_period[name]) or 0.0,
                             cost_yuan=round(by_period[name] * prices[name], 2))
                   for name in order if name in by_period] if utility == "electricity" else [],
        coverage=coverage, enough_data=_enough(p, coverage),
        previous_month=_compared(cal, store, metric, ids, p, -1),
        same_month_last_year=_compared(cal, store, metric, ids, p, -12),
        target=target,
        per_person=_round(total / people, 4) if total is not None and people else None,
        per_m2=_round(total / area, 4) if total is not None and area else None,
        daily=daily,
        weekday_hours=[[_round(statistics.fmean(v)) if v else None for v in row] for row in weekday_hours],
    )


def _compared(cal: SchoolCalendar, store: ReadingStore, metric: str, ids: list[str], p: _Period,
              months: int) -> Comparison:
    """The sum of `ids`' use over the span of the month `months` away that compares with the
    period; coverage: the least covered meter's share of the span's hours."""
    start, end = like_for_like(cal, p.month, p.month.shift(months), p.through_ms)
    found = store.increases(metric, ids, start, end)
    known = [v for v in found.values() if v is not None]
    hours = (end - start) // HOUR_MS
    return Comparison(start_ms=start, end_ms=end, total=_round(sum(v for v, _ in known)) if known else None,
                      coverage=min((_coverage(v[1] if v else 0, hours) for v in found.values()), default=0.0))


def _buildings(site: SiteConfig, cal: SchoolCalendar, store: ReadingStore, uses: dict[str, MeterUse], slots: _Slots,
               p: _Period) -> list[BuildingUse]:
    out = [_building(site, cal, store, b, uses, slots, p) for b in site.buildings]
    by_area = all(b.kwh_per_m2 is not None for b in out)
    return sorted(out, key=lambda b: -((b.kwh_per_m2 if by_area else b.electricity_kwh) or 0))


def _building(site: SiteConfig, cal: SchoolCalendar, store: ReadingStore, b: Building, uses: dict[str, MeterUse],
              slots: _Slots, p: _Period) -> BuildingUse:
    circuits = [uses[d.id] for d in site.main_meters(METERS["electricity"][0], b)]
    power = [u for u in circuits if u.total is not None]
    water = [uses[d.id] for d in site.main_meters(METERS["water"][0], b) if uses[d.id].total is not None]
    kwh = _round(sum(u.total or 0 for u in power)) if power else None
    after = _round(sum(u.after_hours or 0 for u in power)) if power else None
    costs = [u.cost_yuan for u in power + water if u.cost_yuan is not None]
    watched = [u for u in power if u.waste_kwh is not None]
    bases = [u.base_w for u in circuits]
    sources = {u.base_source for u in circuits}
    base_w = sum(w for w in bases if w is not None) if circuits and None not in bases else None
    source: BaseSource | None = None if base_w is None else sources.pop() if len(sources) == 1 else "mixed"
    closed_h, yuan_per_kw = slots.closed(b.id)
    excess_kw = (base_w - b.standby_w) / 1000 if base_w is not None and b.standby_w is not None else 0.0
    coverage = min((u.coverage for u in circuits), default=0.0)
    return BuildingUse(
        building_id=b.id, name=b.name, electricity_kwh=kwh,
        water_m3=_round(sum(u.total or 0 for u in water)) if water else None,
        cost_yuan=_round(sum(costs), 2) if costs else None,
        coverage=coverage, enough_data=_enough(p, coverage),
        after_hours_kwh=after, after_hours_share=_share(after, kwh),
        waste_kwh=_round(sum(u.waste_kwh or 0 for u in watched)) if watched else None,
        waste_yuan=_round(sum(u.waste_yuan or 0 for u in watched), 2) if watched else None,
        after_hours_rest=_round(sum(u.after_hours_rest or 0 for u in watched)) if watched and after is not None
        else None,
        base_w=base_w, base_source=source, standby_w=b.standby_w, closed_h=round(closed_h, 2),
        base_excess_kwh=_round(excess_kw * closed_h) if excess_kw > 0 else None,
        base_excess_yuan=_round(excess_kw * yuan_per_kw, 2) if excess_kw > 0 else None,
        floor_area_m2=b.floor_area_m2, headcount=b.headcount,
        kwh_per_m2=_round(kwh / b.floor_area_m2, 4) if kwh is not None and b.floor_area_m2 else None,
        previous_kwh=_compared(cal, store, METERS["electricity"][1], [u.device_id for u in circuits], p, -1),
        kgce=_building_kgce(site, b, uses),
    )


def _building_kgce(site: SiteConfig, b: Building, uses: dict[str, MeterUse]) -> float | None:
    """The building's energy (every category with a factor) in standard coal, from its main meters."""
    found = [kgce(u, uses[d.id].total) for u, (kind, _, _) in METERS.items() for d in site.main_meters(kind, b)]
    known = [k for k in found if k is not None]
    return _round(sum(known)) if known else None


def _fact(a: Alert, key: str) -> float:
    """A number of the alert's facts. Alerts from before the rules counted a figure lack it:
    their figure is taken as 0 (the report lists the alert, its loss or waste unknown)."""
    value = a.facts.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _until(a: Alert) -> int:
    return a.cleared_ms if a.cleared_ms is not None else a.last_ms


def _name(site: SiteConfig, device_id: str) -> str:
    device = site.device(device_id)
    return device.name if device and device.name else device_id


def _episodes(site: SiteConfig, alerts: Sequence[Alert]) -> list[LoadEpisode]:
    """Each after-hours load alert with the figures its rule computed."""
    out = [LoadEpisode(
        alert_id=a.id, device_id=a.device_id, name=_name(site, a.device_id), first_ms=a.first_ms,
        until_ms=_until(a), cleared=a.cleared_ms is not None, minutes=_fact(a, "minutes"),
        base_w=_fact(a, "base_w") if "base_w" in a.facts else None,
        waste_kwh=_fact(a, "waste_kwh"), cost_yuan=_fact(a, "cost_yuan"),
    ) for a in alerts]
    return sorted(out, key=lambda x: x.first_ms)


def _leaks(site: SiteConfig, alerts: Sequence[Alert]) -> list[LeakLoss]:
    """Each leak alert with the loss its rule computed: the water above the meter's normal flow
    over the leak's span (gateway/rules/water.py)."""
    out = [LeakLoss(
        alert_id=a.id, rule=a.rule, device_id=a.device_id, name=_name(site, a.device_id), first_ms=a.first_ms,
        until_ms=_until(a), cleared=a.cleared_ms is not None, minutes=_fact(a, "minutes"),
        loss_m3=_fact(a, "loss_m3"), cost_yuan=_fact(a, "cost_yuan"),
    ) for a in alerts]
    return sorted(out, key=lambda x: x.first_ms)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _share(part: float | None, whole: float | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def _part(part: float | None, whole: float | None) -> float | None:
    """A share that cannot pass the whole (a sub-meter's reading a little ahead of its main's)."""
    share = _share(part, whole)
    return None if share is None else min(1.0, share)
