"""An independent reckoning of the monthly energy report (gateway/reports/energy.py) from the
raw readings a simulated site sent, for tests/test_reports_month.py.

It follows the report's *definitions* (its module docstring) and is written from them, not
from its code: no rollups, no report helpers. Only the site file (buildings, main meters,
tariffs, rule parameters) and the school calendar (open spans, local days) are shared.

- A meter's use is its counter's rise from one reading to the next, counted in the 5-minute
  slot of the later reading; a counter that went down was reset and counted its new value.
- A slot is open when it lies within one of its building's open spans that day; every other
  slot is after hours. Its tariff is that of its first minute.
- Waste: each hour is one part when its slots all share the building's opening and the tariff
  period, else twelve 5-minute parts. A closed part of use u and length h hours wastes
  u − base × h when u / h is above the limit, base + max(base × margin %, min excess).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from gateway.config import Device, SiteConfig
from gateway.rules.power import LOAD_AFTER_HOURS
from gateway.schedule.school_calendar import SchoolCalendar

FIVE_MIN_MS = 300_000
HOUR_MS = 3_600_000
SLOTS_PER_HOUR = HOUR_MS // FIVE_MIN_MS
METRIC = {"electricity_meter": "energy_kwh", "water_meter": "volume_m3"}

Reading = tuple[int, float]  # (Unix ms, counter value)


def rise(before: float, after: float) -> float:
    """What a counter counted between two readings: a drop is a reset, after which the new
    value is all it counted."""
    return after if after < before else after - before


@dataclass(frozen=True)
class Slot:
    """Five minutes of the month."""

    start_ms: int
    local: datetime  # its start, local time
    period: str
    price: float  # yuan per kWh
    open: dict[str, bool]  # building → open throughout the slot


def month_slots(site: SiteConfig, cal: SchoolCalendar, start_ms: int, end_ms: int) -> list[Slot]:
    tariff = site.tariffs.by_minute()
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    day = cal.local_date(start_ms) - timedelta(days=1)
    while day <= cal.local_date(end_ms) + timedelta(days=1):
        for b in site.buildings:
            spans[b.id] += cal.open_spans_ms(b.id, day)
        day += timedelta(days=1)
    out = []
    for t in range(start_ms, end_ms, FIVE_MIN_MS):
        local = datetime.fromtimestamp(t / 1000, site.tz)
        period, price = tariff[local.hour * 60 + local.minute]
        out.append(Slot(
            start_ms=t, local=local, period=period, price=price,
            open={b.id: any(lo <= t and t + FIVE_MIN_MS <= hi for lo, hi in spans[b.id]) for b in site.buildings},
        ))
    return out


@dataclass(frozen=True)
class Part:
    """A closed stretch of one hour: the whole hour, or one of its 5-minute slots."""

    slot: int  # index of its first slot
    hours: float
    use: float


@dataclass
class MeterMonth:
    device: Device
    building: str
    utility: str  # "electricity" or "water"
    main: bool
    by_slot: dict[int, float]  # slot index → use counted there
    hours_seen: set[int]  # hours of the month (index) with at least one reading
    total: float = 0.0
    after_hours: float = 0.0
    cost: float = 0.0
    by_period: dict[str, float] = field(default_factory=dict)
    # electricity
    base_kw: float | None = None
    limit_kw: float | None = None
    waste: list[tuple[Part, float]] = field(default_factory=list)  # (part, kWh above base)


def meter_month(site: SiteConfig, device: Device, readings: Sequence[Reading], slots: Sequence[Slot],
                start_ms: int, end_ms: int, main: bool) -> MeterMonth:
    """One meter's month from its raw readings (in time order)."""
    utility = "electricity" if device.kind == "electricity_meter" else "water"
    building = site.building_of(device.room).id
    by_slot: dict[int, float] = defaultdict(float)
    for (_, before), (t, after) in pairwise(readings):
        if start_ms <= t < end_ms:
            by_slot[(t - start_ms) // FIVE_MIN_MS] += rise(before, after)
    seen = {(t - start_ms) // HOUR_MS for t, _ in readings if start_ms <= t < end_ms}
    m = MeterMonth(device, building, utility, main, dict(by_slot), seen)
    by_period: dict[str, float] = defaultdict(float)
    for i, use in m.by_slot.items():
        s = slots[i]
        m.total += use
        if not s.open[building]:
            m.after_hours += use
        if utility == "electricity":
            m.cost += use * s.price
            by_period[s.period] += use
        else:
            m.cost += use * site.tariffs.water_yuan_per_m3
    m.by_period = dict(by_period)
    if utility == "electricity":
        _waste(site, m, slots)
    return m


def closed_parts(m: MeterMonth, slots: Sequence[Slot]) -> list[Part]:
    """The meter's closed parts of every hour with readings or use."""
    b = m.building
    hours = set(m.hours_seen) | {i // SLOTS_PER_HOUR for i in m.by_slot}
    out = []
    for h in sorted(hours):
        first = h * SLOTS_PER_HOUR
        mine = range(first, first + SLOTS_PER_HOUR)
        whole = all(slots[i].open[b] == slots[first].open[b] and slots[i].period == slots[first].period
                    for i in mine)
        if whole:
            if not slots[first].open[b]:
                out.append(Part(first, 1.0, sum(m.by_slot.get(i, 0.0) for i in mine)))
        else:
            out += [Part(i, 1 / SLOTS_PER_HOUR, m.by_slot.get(i, 0.0)) for i in mine if not slots[i].open[b]]
    return out


def _waste(site: SiteConfig, m: MeterMonth, slots: Sequence[Slot]) -> None:
    params = LOAD_AFTER_HOURS.params_for(m.device)
    parts = closed_parts(m, slots)
    if params.base_load_w is not None:
        base = params.base_load_w / 1000
    else:
        whole = sorted(p.use for p in parts if p.hours == 1 and p.slot // SLOTS_PER_HOUR in m.hours_seen)
        if not whole:
            return
        base = statistics.quantiles(whole, n=100, method="inclusive")[9] if len(whole) > 1 else whole[0]
    limit = base + max(base * params.margin_pct / 100, params.min_excess_w / 1000)
    m.base_kw, m.limit_kw = base, limit
    m.waste = [(p, p.use - base * p.hours) for p in parts if p.use / p.hours > limit]


def waste_yuan(m: MeterMonth, slots: Sequence[Slot]) -> float:
    return sum(kwh * slots[p.slot].price for p, kwh in m.waste)


def waste_nights(m: MeterMonth, slots: Sequence[Slot]) -> int:
    """Closed periods (evening to next morning) with waste: the local dates twelve hours
    before the wasting parts."""
    return len({(slots[p.slot].local - timedelta(hours=12)).date() for p, _ in m.waste})


def counted_between(readings: Sequence[Reading], first_ms: int, until_ms: int) -> float | None:
    """The counter's rise from its newest reading at or before `first_ms` to its newest at or
    before `until_ms` (None without one)."""
    before = [v for t, v in readings if t <= first_ms]
    after = [v for t, v in readings if t <= until_ms]
    if not before or not after:
        return None
    return rise(before[-1], after[-1])


def summed(meters: Iterable[MeterMonth]) -> dict[int, float]:
    """Slot → use, over meters."""
    out: dict[int, float] = defaultdict(float)
    for m in meters:
        for i, use in m.by_slot.items():
            out[i] += use
    return dict(out)
