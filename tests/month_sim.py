"""An independent reckoning of the monthly energy report (gateway/reports/energy.py) from the
raw readings a simulated site sent, for tests/test_reports_month.py.

It follows the report's *definitions* (its module docstring) and is written from them, not
from its code: no rollups, no report helpers. Only the site file (buildings, main meters,
tariffs, rule parameters) and the school calendar (open spans, local days) are shared.

- A meter's use is its counter's rise from one reading to the next, counted in the 5-minute
  slot of the later reading; a counter that went down was reset and counted its new value.
- A slot is open when it lies within one of its building's open spans that day; every other
  slot is after hours. Its tariff is that of its first minute.
- An alert's episode runs from the last reading before its first reading to its clearing
  reading. Waste of a load left on: what the meter counted over the episode less the base
  load times its length, costed interval by interval at the price of the interval's end.
  Leak loss: what the meter counted over the episode (the test's leaks are all while closed).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from gateway.config import Device, SiteConfig
from gateway.schedule.school_calendar import SchoolCalendar

FIVE_MIN_MS = 300_000
HOUR_MS = 3_600_000
SLOTS_PER_HOUR = HOUR_MS // FIVE_MIN_MS
METRIC = {"electricity_meter": "energy_kwh", "water_meter": "volume_m3", "gas_meter": "gas_m3"}
UTILITY = {"electricity_meter": "electricity", "water_meter": "water", "gas_meter": "gas"}

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


@dataclass
class MeterMonth:
    device: Device
    building: str
    utility: str  # "electricity", "water" or "gas"
    main: bool
    by_slot: dict[int, float]  # slot index → use counted there
    hours_seen: set[int]  # hours of the month (index) with at least one reading
    records: int  # readings in the month
    total: float = 0.0
    after_hours: float = 0.0
    cost: float = 0.0
    by_period: dict[str, float] = field(default_factory=dict)


def meter_month(site: SiteConfig, device: Device, readings: Sequence[Reading], slots: Sequence[Slot],
                start_ms: int, end_ms: int, main: bool) -> MeterMonth:
    """One meter's month from its raw readings (in time order)."""
    utility = UTILITY[device.kind]
    building = site.building_of(device.room).id
    by_slot: dict[int, float] = defaultdict(float)
    for (_, before), (t, after) in pairwise(readings):
        if start_ms <= t < end_ms:
            by_slot[(t - start_ms) // FIVE_MIN_MS] += rise(before, after)
    seen = {(t - start_ms) // HOUR_MS for t, _ in readings if start_ms <= t < end_ms}
    records = sum(1 for t, _ in readings if start_ms <= t < end_ms)
    m = MeterMonth(device, building, utility, main, dict(by_slot), seen, records)
    by_period: dict[str, float] = defaultdict(float)
    for i, use in m.by_slot.items():
        s = slots[i]
        m.total += use
        if not s.open[building]:
            m.after_hours += use
        if utility == "electricity":
            m.cost += use * s.price
            by_period[s.period] += use
        elif utility == "water":
            m.cost += use * site.tariffs.water_yuan_per_m3
    m.by_period = dict(by_period)
    return m


@dataclass(frozen=True)
class Episode:
    """An alert's span in the raw readings: from the last reading before its first reading to
    its clearing reading."""

    start_ms: int
    end_ms: int
    counted: float  # what the meter counted over it
    intervals: list[tuple[int, int, float]]  # (from ms, to ms, counted) between consecutive readings

    @property
    def hours(self) -> float:
        return (self.end_ms - self.start_ms) / HOUR_MS


def episode(readings: Sequence[Reading], first_ms: int, cleared_ms: int) -> Episode:
    """The readings of an alert that began (its first reading) at `first_ms` and cleared at
    `cleared_ms` (its clearing reading, or the newest before it)."""
    times = [t for t, _ in readings]
    lo = bisect_left(times, first_ms) - 1
    hi = bisect_right(times, cleared_ms) - 1
    assert 0 <= lo < hi, (first_ms, cleared_ms)
    intervals = [(a[0], b[0], rise(a[1], b[1])) for a, b in pairwise(readings[lo:hi + 1])]
    return Episode(times[lo], times[hi], sum(c for _, _, c in intervals), intervals)


def load_waste(site: SiteConfig, e: Episode, base_w: float) -> tuple[float, float]:
    """(kWh above the base load, its cost): what the episode counted less the base over its
    length, each interval at the time-of-use price of its end."""
    tariff = site.tariffs.by_minute()
    kwh = yuan = 0.0
    for lo, hi, counted in e.intervals:
        above = counted - base_w / 1000 * (hi - lo) / HOUR_MS
        local = datetime.fromtimestamp((hi - 1) / 1000, site.tz)
        kwh += above
        yuan += above * tariff[local.hour * 60 + local.minute][1]
    return kwh, yuan


def closed_hours(slots: Sequence[Slot], building: str) -> tuple[float, float]:
    """The building's closed hours in the slots, and what one kW through them costs."""
    shut = [s.price for s in slots if not s.open[building]]
    return len(shut) / SLOTS_PER_HOUR, sum(shut) / SLOTS_PER_HOUR


def summed(meters: Iterable[MeterMonth]) -> dict[int, float]:
    """Slot → use, over meters."""
    out: dict[int, float] = defaultdict(float)
    for m in meters:
        for i, use in m.by_slot.items():
            out[i] += use
    return dict(out)
