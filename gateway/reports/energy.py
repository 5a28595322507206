"""The monthly energy-saving report (月度节能报告): electricity and water per site, building
and meter, read from the hourly rollups (5-minute ones only for the hours that a building's
opening or a tariff period splits).

Definitions (docs/reports.md explains them to the reader):
- Totals of a building come from its main meters (`SiteConfig.main_meters`), so a sub-meter
  is never counted twice; a sub-meter's own figures are in the meter table.
- Consumption is a counter's increase, attributed to the 5-minute bucket of the reading that
  shows it (`gateway.storage.sqlite.increase`).
- After hours: every minute the meter's building is closed by the school calendar.
- Base load of an electricity meter: the after-hours load rule's `base_load_w` where
  configured (gateway/rules/power.py), else the 10th percentile of the month's power in whole
  closed hours. Waste: in every closed hour (or closed part of an hour) whose power was above
  that rule's limit (base plus margin), the energy above the base load; costed at the tariff
  of when it was drawn.
- Leak losses: for each alert of the leak and running-tap rules (gateway/rules/water.py)
  begun in the month, what its meter counted from the start of the flow until the alert cleared.
"""

from __future__ import annotations

import calendar as calendar_module
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydantic import BaseModel

from devices import meters
from devices.base import Utility
from gateway.alerting.alerts import Alert, AlertFilter, AlertStore
from gateway.clock import from_ms
from gateway.config import Device, SiteConfig, TouPeriodName
from gateway.rules.power import LOAD_AFTER_HOURS, LoadAfterHours
from gateway.rules.water import RUNNING_TAP, WATER_LEAK
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.sqlite import FIVE_MIN_MS, HOUR_MS, SqliteStore, increase

# Utility → (the kind that meters it, its counter, the counter's unit), as the kinds declare them.
METERS: dict[Utility, tuple[str, str, str]] = {u: (k.name, m.key, m.unit) for u, (k, m) in meters().items()}
LEAK_RULES = (WATER_LEAK.id, RUNNING_TAP.id)
BASE_PERCENTILE = 10  # the base load, where not configured: this percentile of closed-hour power
SLOTS_PER_HOUR = HOUR_MS // FIVE_MIN_MS
FIRST_YEAR, LAST_YEAR = 1971, 9998


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
    """Another month's total, with the share of its hours that have readings (a month the
    gateway ran for half of compares only as far as its coverage says)."""

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
    previous_month: Comparison
    same_month_last_year: Comparison
    target: float | None
    per_person: float | None
    per_m2: float | None
    daily: list[DayUse]
    # Mean consumption per hour of day (columns 0–23) for each weekday (rows Monday–Sunday).
    weekday_hours: list[list[float | None]]


class MeterUse(BaseModel):
    device_id: str
    name: str
    utility: Utility
    building_id: str
    main: bool  # a main meter (counted in totals) or a sub-meter
    total: float | None
    after_hours: float | None
    after_hours_share: float | None
    cost_yuan: float | None
    coverage: float  # the share of the month's hours with readings
    base_kw: float | None = None  # electricity
    base_configured: bool = False
    waste_kwh: float | None = None
    waste_yuan: float | None = None
    waste_hours: int = 0  # closed hours (or 5-minute slots of split hours) with load left on
    waste_duration_h: float = 0.0  # their length
    waste_nights: int = 0  # closed periods (calendar days) with load left on


class BuildingUse(BaseModel):
    building_id: str
    name: str
    electricity_kwh: float | None
    water_m3: float | None
    cost_yuan: float | None
    after_hours_share: float | None  # electricity
    waste_kwh: float | None
    waste_yuan: float | None
    floor_area_m2: float | None
    headcount: int | None
    kwh_per_m2: float | None
    previous_kwh: Comparison


class LeakLoss(BaseModel):
    alert_id: int
    rule: str
    device_id: str
    name: str
    first_ms: int
    until_ms: int  # cleared, or the end of the month
    cleared: bool
    loss_m3: float
    cost_yuan: float


class EnergyReport(BaseModel):
    site_id: str
    site_name: str
    month: str
    start_ms: int
    end_ms: int
    generated_ms: int
    school_days: int
    electricity: Totals
    water: Totals
    buildings: list[BuildingUse]  # ranked: most electricity per m² (or in all) first
    meters: list[MeterUse]
    waste_kwh: float | None  # main meters
    waste_yuan: float | None
    leaks: list[LeakLoss]
    leak_m3: float
    leak_yuan: float


@dataclass
class _Slots:
    """The month in 5-minute slots: for each building whether it is open, and for each slot
    its tariff period and price."""

    start_ms: int
    open: dict[str, list[bool]]
    period: list[tuple[TouPeriodName, float]]
    _uniform: dict[str, list[bool]] = field(default_factory=dict)

    def index(self, ts_ms: int) -> int:
        return (ts_ms - self.start_ms) // FIVE_MIN_MS

    def uniform(self, building_id: str, hour_ms: int) -> bool:
        """Whether one hour's slots all share opening and tariff (then its hourly rollup suffices)."""
        hours = self._uniform.get(building_id)
        if hours is None:  # once per building: every meter of it asks for every hour
            is_open, period = self.open[building_id], self.period
            hours = self._uniform[building_id] = [
                all(is_open[j] == is_open[i] and period[j] == period[i] for j in range(i, i + SLOTS_PER_HOUR))
                for i in range(0, len(period), SLOTS_PER_HOUR)]
        return hours[self.index(hour_ms) // SLOTS_PER_HOUR]


@dataclass
class _Meter:
    """One meter's month, accumulated over its buckets."""

    device: Device
    building_id: str
    total: float = 0.0
    after_hours: float = 0.0
    cost: float = 0.0
    hours_seen: int = 0
    by_period: dict[TouPeriodName, float] = field(default_factory=lambda: defaultdict(float))
    by_hour: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # local hour start → use
    closed_by_hour: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    # (use, length in hours, slot of its start) of every closed stretch of an hour
    closed_parts: list[tuple[float, float, int]] = field(default_factory=list)


def bounds_ms(cal: SchoolCalendar, month: Month) -> tuple[int, int]:
    """The month's first and last instant, local time."""
    return cal.day_bounds_ms(month.first())[0], cal.day_bounds_ms(month.shift(1).first())[0]


def leak_alerts(alerts: AlertStore, cal: SchoolCalendar, month: Month) -> list[Alert]:
    """The alerts whose losses the report counts: leaks and running taps begun in `month`."""
    start_ms, end_ms = bounds_ms(cal, month)
    return [a for rule in LEAK_RULES
            for a in alerts.find(AlertFilter(rule=rule, since_ms=start_ms, until_ms=end_ms, limit=10_000))]


def energy_report(site: SiteConfig, cal: SchoolCalendar, store: SqliteStore, leaks: list[Alert],
                  month: Month, now_ms: int, progress: Callable[[int, int], None] | None = None) -> EnergyReport:
    """Computes the report for `month` (up to `now_ms` for the current one) with the month's
    `leak_alerts`. `progress` hears (meters done, meters) as the meters are read. Reads SQLite
    only: it may run in a worker thread."""
    start_ms, end_ms = bounds_ms(cal, month)
    slots = _slots(site, cal, start_ms, end_ms)
    meters = [d for d in site.devices if d.kind in {kind for kind, _, _ in METERS.values()}]
    main = {d.id for b in site.buildings for kind, _, _ in METERS.values() for d in site.main_meters(kind, b)}
    done = 0
    read: dict[str, _Meter] = {}
    for utility, (kind, metric, _) in METERS.items():
        for device in (d for d in meters if d.kind == kind):
            read[device.id] = _read_meter(site, store, slots, device, metric, utility, start_ms, end_ms)
            done += 1
            if progress:
                progress(done, len(meters))
    uses = {d.id: _meter_use(site, cal, read[d.id], d.id in main, slots, start_ms, end_ms) for d in meters}
    days = month.days()
    losses = _leaks(site, store, leaks, end_ms)
    totals = {u: _totals(site, cal, store, month, u, [read[i] for i in read if i in main and uses[i].utility == u],
                         days) for u in METERS}
    main_uses = [u for u in uses.values() if u.main and u.waste_kwh is not None]
    return EnergyReport(
        site_id=site.id, site_name=site.name, month=str(month), start_ms=start_ms, end_ms=end_ms,
        generated_ms=now_ms, school_days=sum(cal.day(d).school_day for d in days),
        electricity=totals["electricity"], water=totals["water"],
        buildings=_buildings(site, store, uses, month, cal),
        meters=sorted(uses.values(), key=lambda u: (u.utility, -(u.total or 0))),
        waste_kwh=_round(sum(u.waste_kwh or 0 for u in main_uses)) if main_uses else None,
        waste_yuan=_round(sum(u.waste_yuan or 0 for u in main_uses), 2) if main_uses else None,
        leaks=losses, leak_m3=round(sum(x.loss_m3 for x in losses), 3),
        leak_yuan=round(sum(x.cost_yuan for x in losses), 2),
    )


def _slots(site: SiteConfig, cal: SchoolCalendar, start_ms: int, end_ms: int) -> _Slots:
    n = (end_ms - start_ms) // FIVE_MIN_MS
    opened: dict[str, list[bool]] = {}
    first, last = cal.local_date(start_ms), cal.local_date(end_ms - 1)
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


def _read_meter(site: SiteConfig, store: SqliteStore, slots: _Slots, device: Device, metric: str,
                utility: Utility, start_ms: int, end_ms: int) -> _Meter:
    building = site.building_of(device.room).id
    m = _Meter(device, building)
    hourly = store.rollups(metric, [device.id], [(start_ms, end_ms)]).get(device.id, [])
    m.hours_seen = sum(1 for r in hourly if r.count)
    split = [(r.ts_ms, r.ts_ms + HOUR_MS) for r in hourly if r.increase and not slots.uniform(building, r.ts_ms)]
    fine = store.rollups(metric, [device.id], split, FIVE_MIN_MS).get(device.id, []) if split else []
    whole = ((r.ts_ms, r.increase, SLOTS_PER_HOUR) for r in hourly if r.increase and slots.uniform(building, r.ts_ms))
    parts = ((r.ts_ms, r.increase, 1) for r in fine if r.increase)
    is_open = slots.open[building]
    for ts, use, n_slots in (*whole, *parts):
        i = slots.index(ts)
        if not 0 <= i < len(is_open):
            continue
        hour = ts - (ts - start_ms) % HOUR_MS
        m.total += use
        m.by_hour[hour] += use
        name, price = slots.period[i]
        if utility == "electricity":
            m.by_period[name] += use
            m.cost += use * price
        else:
            m.cost += use * site.tariffs.water_yuan_per_m3
        if not is_open[i]:
            m.after_hours += use
            m.closed_by_hour[hour] += use
            m.closed_parts.append((use, n_slots / SLOTS_PER_HOUR, i))
    return m


def _meter_use(site: SiteConfig, cal: SchoolCalendar, m: _Meter, main: bool, slots: _Slots, start_ms: int,
               end_ms: int) -> MeterUse:
    utility = next(u for u, (kind, _, _) in METERS.items() if kind == m.device.kind)
    hours = (end_ms - start_ms) // HOUR_MS
    seen = m.hours_seen > 0
    use = MeterUse(
        device_id=m.device.id, name=m.device.name or m.device.id, utility=utility, building_id=m.building_id,
        main=main, total=_round(m.total) if seen else None, after_hours=_round(m.after_hours) if seen else None,
        after_hours_share=_share(m.after_hours, m.total) if seen else None,
        cost_yuan=_round(m.cost, 2) if seen else None, coverage=round(m.hours_seen / hours, 4),
    )
    if utility == "electricity" and seen:
        params = LOAD_AFTER_HOURS.params_for(m.device)
        base_kw, configured = _base_kw(m, params)
        if base_kw is not None:
            limit_kw = base_kw + max(base_kw * params.margin_pct / 100, params.min_excess_w / 1000)
            waste = [(u - base_kw * h, h, i) for u, h, i in m.closed_parts if u / h > limit_kw]
            use.base_kw = round(base_kw, 3)
            use.waste_kwh = _round(sum(w for w, _, _ in waste))
            use.waste_yuan = _round(sum(w * slots.period[i][1] for w, _, i in waste), 2)
            use.waste_hours = len(waste)
            use.waste_duration_h = round(sum(h for _, h, _ in waste), 3)
            # a night is the closed stretch from one evening to the next morning: count it by its evening
            evenings = {cal.local_date(slots.start_ms + i * FIVE_MIN_MS - 12 * HOUR_MS) for _, _, i in waste}
            use.waste_nights = len(evenings)
        use.base_configured = configured
    return use


def _base_kw(m: _Meter, params: LoadAfterHours) -> tuple[float | None, bool]:
    if params.base_load_w is not None:
        return params.base_load_w / 1000, True
    whole = sorted(u for u, h, _ in m.closed_parts if h == 1)
    if not whole:
        return None, False
    return statistics.quantiles(whole, n=100, method="inclusive")[BASE_PERCENTILE - 1] if len(whole) > 1 \
        else whole[0], False


def _totals(site: SiteConfig, cal: SchoolCalendar, store: SqliteStore, month: Month, utility: Utility,
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
        hours = range(lo, hi, HOUR_MS)
        daily.append(DayUse(date=d, school_day=cal.day(d).school_day,
                            total=_round(sum(by_hour.get(h, 0.0) for h in hours)) if seen else None,
                            after_hours=_round(sum(closed_by_hour.get(h, 0.0) for h in hours)) if seen else None))
        if seen:
            for h in hours:
                local = from_ms(h, site.tz)
                weekday_hours[local.weekday()][local.hour].append(by_hour.get(h, 0.0))
    ids = [m.device.id for m in meters]
    people, area = site.people(), site.floor_area_m2()
    target = site.reports.targets.electricity_kwh if utility == "electricity" else site.reports.targets.water_m3
    return Totals(
        unit=unit, total=_round(total), after_hours=_round(after),
        after_hours_share=_share(after, total), cost_yuan=_round(sum(m.cost for m in seen), 2) if seen else None,
        by_period=[PeriodUse(period=name, yuan_per_kwh=prices[name], kwh=_round(by_period[name]) or 0.0,
                             cost_yuan=round(by_period[name] * prices[name], 2))
                   for name in order if name in by_period] if utility == "electricity" else [],
        previous_month=_month_total(cal, store, metric, ids, month.shift(-1)),
        same_month_last_year=_month_total(cal, store, metric, ids, month.shift(-12)),
        target=target,
        per_person=_round(total / people, 4) if total is not None and people else None,
        per_m2=_round(total / area, 4) if total is not None and area else None,
        daily=daily,
        weekday_hours=[[_round(statistics.fmean(v)) if v else None for v in row] for row in weekday_hours],
    )


def _month_total(cal: SchoolCalendar, store: SqliteStore, metric: str, ids: list[str], month: Month) -> Comparison:
    """The sum of `ids`' use in `month`; coverage: the least covered meter's share of hours."""
    start, end = bounds_ms(cal, month)
    found = store.increases(metric, ids, start, end)
    known = [v for v in found.values() if v is not None]
    hours = (end - start) // HOUR_MS
    return Comparison(total=_round(sum(v for v, _ in known)) if known else None,
                      coverage=round(min((v[1] if v else 0) for v in found.values()) / hours, 4) if ids else 0.0)


def _buildings(site: SiteConfig, store: SqliteStore, uses: dict[str, MeterUse], month: Month,
               cal: SchoolCalendar) -> list[BuildingUse]:
    out = []
    for b in site.buildings:
        def main(kind: str) -> list[MeterUse]:
            return [uses[d.id] for d in site.main_meters(kind, b) if uses[d.id].total is not None]  # noqa: B023

        power, water = main(METERS["electricity"][0]), main(METERS["water"][0])
        kwh = _round(sum(u.total or 0 for u in power)) if power else None
        after = sum(u.after_hours or 0 for u in power)
        costs = [u.cost_yuan for u in power + water if u.cost_yuan is not None]
        wasted = [u for u in power if u.waste_kwh is not None]
        out.append(BuildingUse(
            building_id=b.id, name=b.name, electricity_kwh=kwh,
            water_m3=_round(sum(u.total or 0 for u in water)) if water else None,
            cost_yuan=_round(sum(costs), 2) if costs else None,
            after_hours_share=_share(after, kwh),
            waste_kwh=_round(sum(u.waste_kwh or 0 for u in wasted)) if wasted else None,
            waste_yuan=_round(sum(u.waste_yuan or 0 for u in wasted), 2) if wasted else None,
            floor_area_m2=b.floor_area_m2, headcount=b.headcount,
            kwh_per_m2=_round(kwh / b.floor_area_m2, 4) if kwh is not None and b.floor_area_m2 else None,
            previous_kwh=_month_total(cal, store, METERS["electricity"][1],
                                      [d.id for d in site.main_meters(METERS["electricity"][0], b)], month.shift(-1)),
        ))
    by_area = all(b.kwh_per_m2 is not None for b in out)
    return sorted(out, key=lambda b: -((b.kwh_per_m2 if by_area else b.electricity_kwh) or 0))


def _leaks(site: SiteConfig, store: SqliteStore, alerts: list[Alert], end_ms: int) -> list[LeakLoss]:
    """Each leak alert with what its meter counted from the start of the flow until the
    alert cleared (or the month ended): the water the leak cost."""
    out = []
    metric = METERS["water"][1]
    for a in alerts:
        device = site.device(a.device_id)
        until = min(a.cleared_ms or end_ms, end_ms)
        first, last = store.values_at(metric, [a.device_id], [a.first_ms, until])[a.device_id]
        lost = 0.0 if first is None or last is None else increase(first, last)
        out.append(LeakLoss(
            alert_id=a.id, rule=a.rule, device_id=a.device_id,
            name=device.name if device and device.name else a.device_id, first_ms=a.first_ms,
            until_ms=until, cleared=a.cleared_ms is not None,
            loss_m3=round(lost, 3), cost_yuan=round(lost * site.tariffs.water_yuan_per_m3, 2),
        ))
    return sorted(out, key=lambda x: x.first_ms)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _share(part: float | None, whole: float | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None
