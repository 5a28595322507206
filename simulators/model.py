"""A deterministic model of a kindergarten's day, one model per behaviour of a device kind.

Every reading is a function of the seed, the device and the time alone, not of where a call
to `SiteSimulation.messages` started: any window can be generated on its own, consecutive
windows join seamlessly, and a live publisher started after generated history continues the
meter totals where the history left them. To keep that cheap:

- random draws come from streams seeded by a hash of (seed, device or room, year or day), so
  the draws of a day do not depend on which days were generated before;
- rooms consume and meters sum the rooms they measure. A room's load is piecewise constant
  (a base plus timetable blocks), so a day's total is known in closed form and a counter at
  any time is its running total since `EPOCH` plus the integral of today's load so far;
- the fridge's compressor cycle and sensor batteries are periodic in absolute time.

The timetable is the kindergarten's of DOMAIN.md (entry 07:45–08:20, dismissal by grade
15:50–16:10, last pick-up 16:50, snacks at 10:00 and 16:00). Every other number is marked
"assumption". A day is an open day when the site file gives it opening hours; open days all
follow the same timetable. Which days are open days is the school calendar's
(gateway/schedule/school_calendar.py): weekends, statutory holidays and make-up days (调休), breaks.

Which model drives a device is the device kind's choice: a kind names a behaviour
(`DeviceKind.simulation`, e.g. "metered_water") and `BEHAVIOURS` maps behaviours to the
models here. Chosen over the alternatives because the physics of a behaviour needs what only
the simulation holds (the calendar, the rooms' loads that several meters share, the people
who swipe cards), and `devices/` imports neither the simulator nor the gateway, so a kind
cannot carry its model itself; and over a second registry keyed by kind name, because a new
kind that behaves like an existing one then touches only its own module, its test and its
fixtures. A kind with a new behaviour adds its model and one entry here, which is where its
physics has to live anyway. The convention test (tests/devices/test_kinds.py) checks that
every kind names a behaviour this module knows.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Final, Literal

from devices import kinds, sample_fridge, uv_lamp
from gateway.config import Device, Room, SiteConfig
from gateway.schedule.school_calendar import SchoolCalendar

Channel = Literal["telemetry", "event"]
Fields = dict[str, object]
Item = tuple[int, Channel, Fields]  # (Unix ms, channel, payload without ts)

EPOCH: Final = date(2024, 1, 1)  # assumption: the simulated meters and lamp hours count from here
UV_LAMP_W: Final = 30.0  # assumption: one 30 W ceiling tube per lamp
# Assumption: a small sample fridge's compressor draws about 85 W while it runs and its
# thermostat about 1.5 W otherwise.
COMPRESSOR_W: Final = 85.0
FRIDGE_IDLE_W: Final = 1.5
COOLING_SHARE: Final = 0.35  # assumption: the compressor runs a third of each cycle
_UNIX: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_H: Final = 3600.0
_MIN: Final = 60.0


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message a device would publish: telemetry or an event, with its native JSON payload.
    `ts` is in UTC, so that comparing and subtracting times is safe across DST changes; the
    payload's `ts` carries the site's UTC offset, as a device would send it."""

    ts: datetime
    device_id: str
    channel: Channel
    payload: dict[str, object]


def number(payload: dict[str, object], key: str) -> float:
    """A numeric field of a payload, for code that rewrites or translates payloads."""
    value = payload[key]
    if not isinstance(value, int | float):
        raise TypeError(f"{key} should be a number, not {value!r}")
    return float(value)


# --- Room loads ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Block:
    """A timetable block of a room's load on open days: kW for electricity, L/min for water."""

    start_h: float  # local time of day, hours
    end_h: float
    level: float
    seasonal: bool = False  # air conditioning: scaled by the seasonal factor of the day
    heating: bool = False  # district heating: scaled by the heating factor of the day

    def __post_init__(self) -> None:
        # Blocks shift by up to ±_JITTER_S a day and must stay inside the day.
        if not 0.5 <= self.start_h < self.end_h <= 23.5:
            raise ValueError(f"block {self.start_h}–{self.end_h} h must lie within 00:30–23:30")


@dataclass(frozen=True, slots=True)
class _Profile:
    base: float  # around the clock, every day
    open_day: tuple[_Block, ...] = ()
    closed_day: tuple[_Block, ...] = ()


_JITTER_S: Final = 10 * _MIN  # assumption: the timetable slips by up to ten minutes a day
_DAY_SPREAD: Final = 0.10  # assumption: a room uses up to ±10 % more or less than usual on a day

# Assumptions, in kW. Night base loads: drinking-water heaters, cup sterilisers and air purifiers
# in classrooms; fridges and freezers in the kitchen; CCTV, network and pumps in plant rooms;
# the 24-hour gate house. Air conditioning follows the seasonal factor.
_ELECTRICITY: Final[dict[str, _Profile]] = {
    "classroom": _Profile(0.3, (
        _Block(7.5, 17.5, 0.6),  # lights, TV, piano
        _Block(8.0, 12.25, 1.5, seasonal=True),
        _Block(14.5, 17.0, 1.5, seasonal=True),
        _Block(12.5, 13.5, 0.6),  # cup steriliser after lunch
    )),
    "nap_room": _Profile(0.05, (
        _Block(12.0, 14.75, 0.1),
        _Block(12.0, 14.75, 2.0, seasonal=True),
    )),
    "kitchen": _Profile(1.5, (
        _Block(6.0, 17.25, 1.0),  # lights and extraction
        _Block(6.5, 8.0, 6.0),  # breakfast: steamers
        _Block(10.5, 12.0, 12.0),  # lunch: steamers, rice cabinet, ovens
        _Block(12.25, 13.25, 4.0),  # dishwasher and disinfection cabinets
        _Block(15.5, 16.5, 4.0),  # afternoon snack
    )),
    "office": _Profile(0.1, (
        _Block(7.5, 17.75, 0.8),
        _Block(8.0, 17.5, 1.2, seasonal=True),
    )),
    "dorm": _Profile(0.1, (
        _Block(6.5, 7.5, 1.0),
        _Block(19.0, 22.0, 1.5),
        _Block(19.0, 22.0, 1.5, seasonal=True),
    )),
    "gate": _Profile(0.5),
    "plant": _Profile(0.8),
    "other": _Profile(0.1, (
        _Block(8.0, 17.0, 0.5),
        _Block(8.0, 17.0, 0.8, seasonal=True),
    )),
}

# Assumptions, in L/min: about 0.7 m³ per class (handwashing, toilets, cleaning) and 3 m³ in the
# kitchen per open day; nothing runs at night, so any night flow is a leak.
_WATER: Final[dict[str, _Profile]] = {
    "classroom": _Profile(0.0, (
        _Block(7.75, 8.75, 2.0),  # arrival and breakfast handwashing
        _Block(8.75, 17.0, 0.3),  # toilets
        _Block(10.0, 10.33, 3.0),  # snack
        _Block(11.25, 12.25, 2.5),  # lunch, toilets before the nap
        _Block(14.5, 15.0, 2.0),  # after the nap
        _Block(15.83, 16.17, 3.0),  # snack
        _Block(17.0, 17.67, 3.0),  # cleaning
    )),
    "nap_room": _Profile(0.0),
    "kitchen": _Profile(0.0, (
        _Block(6.0, 7.75, 6.0),  # breakfast preparation
        _Block(9.5, 11.25, 8.0),  # washing vegetables, cooking
        _Block(12.25, 13.25, 10.0),  # washing up
        _Block(15.0, 16.0, 6.0),  # snack
        _Block(16.5, 17.25, 8.0),  # cleaning
    )),
    "office": _Profile(0.0, (_Block(8.0, 17.5, 0.2),)),
    "dorm": _Profile(0.0, (_Block(6.5, 7.5, 5.0), _Block(20.0, 22.0, 5.0))),
    "gate": _Profile(0.0, (_Block(7.0, 19.0, 0.1),), (_Block(8.0, 18.0, 0.05),)),
    "plant": _Profile(0.0),
    "other": _Profile(0.0, (_Block(8.0, 17.0, 0.2),)),
}

# Assumptions, in m³/h of natural gas: the kitchen's stoves and steamers where it cooks with gas;
# nothing else burns gas.
_GAS: Final[dict[str, _Profile]] = {
    **{room: _Profile(0.0) for room in ("classroom", "nap_room", "office", "dorm", "gate", "plant", "other")},
    "kitchen": _Profile(0.0, (
        _Block(6.25, 7.75, 3.0),  # breakfast
        _Block(10.25, 12.0, 5.0),  # lunch
        _Block(15.25, 16.25, 2.0),  # snack
    )),
}

# Assumptions, in kW of district heat: radiators by the heating factor while a room is used, a
# quarter of it on closed days so the building does not freeze.
_HEAT: Final[dict[str, _Profile]] = {
    room: _Profile(0.0, (_Block(6.5, 17.5, kw, heating=True),), (_Block(6.5, 17.5, kw / 4, heating=True),))
    for room, kw in (("classroom", 6.0), ("nap_room", 4.0), ("kitchen", 3.0), ("office", 3.0), ("dorm", 5.0),
                     ("gate", 1.0), ("plant", 0.5), ("other", 2.0))
}


def _heating(day: date) -> float:
    """District-heating factor: 1 in mid-January, nothing from April to mid-October (assumption:
    the heating season of northern China, 15 November to 15 March, with its shoulders)."""
    return max(0.0, math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25) - 0.2) / 0.8


def _seasonal(day: date) -> float:
    """Air-conditioning factor: 1 in late July, 0.6 in midwinter (heat-pump heating), near 0 in
    April and October. Assumption, for the climate of the Yangtze delta."""
    c = math.cos(2 * math.pi * (day.timetuple().tm_yday - 200) / 365.25)
    return c if c > 0 else -0.6 * c


# --- Deterministic randomness ----------------------------------------------------------------


def _digest(key: tuple[object, ...]) -> bytes:
    return hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=64).digest()


def _uniforms(*key: object) -> tuple[float, float]:
    """Two numbers in [0, 1) that depend on `key` alone (not on Python's `hash`)."""
    a, b = struct.unpack("<2I", _digest(key)[:8])
    return a / 4294967296.0, b / 4294967296.0


def _rng(*key: object) -> random.Random:
    return random.Random(int.from_bytes(_digest(key)[:16]))


class _Daily:
    """`n` numbers in [0, 1) for every day, drawn a year at a time from a stream seeded by
    `key`: cheap to sum over years of days, and the same whichever days were asked for first."""

    def __init__(self, n: int, *key: object) -> None:
        self._n = n
        self._key = key
        self._years: dict[int, list[float]] = {}

    def on(self, ordinal: int) -> list[float]:
        year = date.fromordinal(ordinal).year
        draws = self._years.get(year)
        if draws is None:
            rng = _rng(*self._key, year)
            draws = self._years[year] = [rng.random() for _ in range(366 * self._n)]
        k = (ordinal - date(year, 1, 1).toordinal()) * self._n
        return draws[k:k + self._n]


# --- Calendar --------------------------------------------------------------------------------


def _ms(when: datetime) -> int:
    return (when - _UNIX) // _MS


@dataclass(frozen=True, slots=True)
class _Day:
    """A local day of the site."""

    ordinal: int
    start_ms: int
    end_ms: int
    open: bool
    seasonal: float
    heating: float

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000


class _Calendar:
    def __init__(self, site: SiteConfig) -> None:
        self.tz = site.tz
        self._school = SchoolCalendar(site)
        self._days: dict[int, _Day] = {}

    def day(self, ordinal: int) -> _Day:
        found = self._days.get(ordinal)
        if found is None:
            d = date.fromordinal(ordinal)
            start = _ms(datetime.combine(d, time(), tzinfo=self.tz))
            end = _ms(datetime.combine(d + timedelta(days=1), time(), tzinfo=self.tz))
            found = _Day(ordinal, start, end, self._school.day(d).school_day, _seasonal(d), _heating(d))
            self._days[ordinal] = found
        return found

    def day_of(self, ms: int) -> _Day:
        local = (_UNIX + ms * _MS).astimezone(self.tz).date()
        return self.day(local.toordinal())


class _RunningTotal:
    """A per-day quantity summed from `EPOCH`, extended on demand and kept."""

    def __init__(self, calendar: _Calendar, per_day: _PerDay) -> None:
        self._calendar = calendar
        self._per_day = per_day
        self._sums = [0.0]  # _sums[k]: the total before day EPOCH + k

    def before(self, ordinal: int) -> float:
        k = ordinal - EPOCH.toordinal()
        while len(self._sums) <= k:
            day = self._calendar.day(EPOCH.toordinal() + len(self._sums) - 1)
            self._sums.append(self._sums[-1] + self._per_day.day_total(day))
        return self._sums[k]


class _PerDay(ABC):
    @abstractmethod
    def day_total(self, day: _Day) -> float: ...


class _RoomLoad(_PerDay):
    """What one room draws of one quantity (electricity or water), in level × seconds."""

    def __init__(self, seed: int, room: Room, quantity: str, profile: _Profile, calendar: _Calendar) -> None:
        self._profile = profile
        # Per day: the room's multiplier, then a shift for each block.
        self._draws = _Daily(1 + max(len(profile.open_day), len(profile.closed_day)), seed, room.id, quantity)
        self.total = _RunningTotal(calendar, self)

    def _blocks(self, day: _Day) -> tuple[_Block, ...]:
        return self._profile.open_day if day.open else self._profile.closed_day

    def _level(self, day: _Day, block: _Block) -> float:
        return block.level * (day.seasonal if block.seasonal else 1.0) * (day.heating if block.heating else 1.0)

    def day_total(self, day: _Day) -> float:
        multiplier = 1 + _DAY_SPREAD * (2 * self._draws.on(day.ordinal)[0] - 1)
        blocks = sum(self._level(day, b) * (b.end_h - b.start_h) * _H for b in self._blocks(day))
        return multiplier * (self._profile.base * day.seconds + blocks)

    def steps(self, day: _Day) -> list[tuple[float, float]]:
        """Today's load as (seconds since midnight, change of level), the base at 0 s."""
        u, *shifts = self._draws.on(day.ordinal)
        multiplier = 1 + _DAY_SPREAD * (2 * u - 1)
        out = [(0.0, multiplier * self._profile.base)]
        for block, shift in zip(self._blocks(day), shifts, strict=False):
            at = _JITTER_S * (2 * shift - 1)
            level = multiplier * self._level(day, block)
            out.append((block.start_h * _H + at, level))
            out.append((block.end_h * _H + at, -level))
        return out


# --- Device models ---------------------------------------------------------------------------


class _Model(ABC):
    """What one device reports on a local day, from midnight up to `hi_ms`."""

    def __init__(self, seed: int, device: Device) -> None:
        self.device_id = device.id
        self._seed = seed
        self._interval_ms = max(1, round(device.interval_s * 1000))
        # Devices fire at different whole seconds of their interval.
        u = _uniforms(seed, device.id, "offset")[0]
        self._offset_ms = int(u * max(1, self._interval_ms // 1000)) * 1000

    def _ticks(self, day: _Day, hi_ms: int) -> range:
        first = day.start_ms + (self._offset_ms - day.start_ms) % self._interval_ms
        return range(first, min(hi_ms, day.end_ms), self._interval_ms)

    def _day_rng(self, day: _Day) -> random.Random:
        return _rng(self._seed, self.device_id, day.ordinal)

    @abstractmethod
    def day(self, day: _Day, hi_ms: int) -> list[Item]: ...


class _Meter(_Model):
    """A meter sums the loads of the rooms it measures; its counter is their running integral."""

    def __init__(self, seed: int, device: Device, rooms: list[_RoomLoad], base_reading: float) -> None:
        super().__init__(seed, device)
        self._rooms = rooms
        self._base_reading = base_reading

    def day(self, day: _Day, hi_ms: int) -> list[Item]:
        steps = sorted(s for room in self._rooms for s in room.steps(day))
        times: list[float] = []
        levels: list[float] = []
        integrals: list[float] = []
        level = integral = 0.0
        for at, change in steps:
            if times:
                integral += level * (at - times[-1])
            level += change
            level = level if level > 1e-9 else 0.0  # no negative crumbs from float sums
            times.append(at)
            levels.append(level)
            integrals.append(integral)
        before = sum(room.total.before(day.ordinal) for room in self._rooms)
        after = sum(room.total.before(day.ordinal + 1) for room in self._rooms)
        rng = self._day_rng(day)
        out: list[Item] = []
        i, last = 0, len(times) - 1
        for t in self._ticks(day, hi_ms):
            s = (t - day.start_ms) / 1000
            while i < last and times[i + 1] <= s:
                i += 1
            # Float sums of the day may overshoot tomorrow's opening total by a crumb: clamp, so
            # the counter never runs backwards at midnight.
            so_far = min(before + integrals[i] + levels[i] * (s - times[i]), after)
            out.append((t, "telemetry", self._fields(levels[i], so_far, rng)))
        return out

    @abstractmethod
    def _fields(self, level: float, so_far: float, rng: random.Random) -> Fields: ...


class _ElectricityMeter(_Meter):
    _VOLTS: Final = 231.0  # assumption: a little above the 220/230 V nominal, sagging under load
    _POWER_FACTOR: Final = 0.95  # assumption; three balanced phases

    def _fields(self, level: float, so_far: float, rng: random.Random) -> Fields:
        power_w = level * 1000 * (1 + 0.06 * (rng.random() - 0.5))
        volts = self._VOLTS - 0.08 * level + 2 * (rng.random() - 0.5)
        return {
            "energy_kwh": round(self._base_reading + so_far / _H, 3),
            "power_w": round(power_w, 1),
            "voltage_v": round(volts, 1),
            "current_a": round(power_w / (3 * volts * self._POWER_FACTOR), 2),
        }


class _WaterMeter(_Meter):
    def _fields(self, level: float, so_far: float, rng: random.Random) -> Fields:
        burst = 0.2 + 1.6 * rng.random()  # assumption: taps come and go; flow averages out
        return {
            "volume_m3": round(self._base_reading + so_far / _MIN / 1000, 3),
            "flow_lpm": round(level * burst, 1),
        }


class _GasMeter(_Meter):
    def _fields(self, level: float, so_far: float, rng: random.Random) -> Fields:
        return {"gas_m3": round(self._base_reading + so_far / _H, 3),
                "gas_flow_m3h": round(level * (1 + 0.1 * (rng.random() - 0.5)), 2)}


class _HeatMeter(_Meter):
    _GJ_PER_KWH: Final = 0.0036
    _SUPPLY_C: Final = 70.0  # assumption: a district-heating secondary loop

    def _fields(self, level: float, so_far: float, rng: random.Random) -> Fields:
        drop = 5 + 10 * min(1.0, level / 50)  # assumption: a larger draw cools the return further
        return {"heat_gj": round(self._base_reading + so_far / _H * self._GJ_PER_KWH, 4),
                "heat_kw": round(level * (1 + 0.04 * (rng.random() - 0.5)), 1),
                "supply_c": round(self._SUPPLY_C + rng.random(), 1), "return_c": round(self._SUPPLY_C - drop, 1)}


class _Radio:
    """Battery and signal of a battery-powered sensor."""

    _LIFE_MS: Final = 2 * 365 * 86_400_000  # assumption: a battery lasts two years, replaced at 10 %

    def __init__(self, seed: int, device_id: str) -> None:
        u = _uniforms(seed, device_id, "radio")
        self._phase_ms = int(u[0] * self._LIFE_MS)
        self._rssi = -85 + 30 * u[1]  # assumption: -85 to -55 dBm where the sensor is mounted

    def fields(self, t_ms: int, rng: random.Random) -> Fields:
        used = ((t_ms + self._phase_ms) % self._LIFE_MS) / self._LIFE_MS
        rssi = self._rssi + 6 * (rng.random() - 0.5)
        return {"battery_pct": round(100 - 90 * used), "rssi_dbm": round(rssi)}


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _inside(spans: list[tuple[float, float]], i: int, s: float) -> tuple[int, bool]:
    """Whether `s` falls in one of the merged, sorted `spans`, scanning on from span `i`."""
    while i < len(spans) and spans[i][1] <= s:
        i += 1
    return i, i < len(spans) and spans[i][0] <= s


class _UvLamp(_Model, _PerDay):
    # Assumption: every lamp runs on a timer once the staff have left (the buildings close by
    # 18:00): nobody may be in a room under UV light.
    _STARTS: Final = (18.25 * _H,)

    def __init__(self, seed: int, device: Device, calendar: _Calendar) -> None:
        super().__init__(seed, device)
        settings = uv_lamp.Settings.model_validate(device.settings)
        self._min_session_s = settings.min_session_min * _MIN
        self._starts = self._STARTS
        self._initial_h = 250 * _uniforms(seed, device.id, "tube")[0]  # assumption: tubes of mixed age
        self._draws = _Daily(2 * len(self._starts), seed, device.id, "sessions")
        self._on_seconds = _RunningTotal(calendar, self)

    def _sessions(self, day: _Day) -> list[tuple[float, float]]:
        if not day.open:
            return []
        u = self._draws.on(day.ordinal)
        out = []
        for n, start in enumerate(self._starts):
            begin = start + (15 * u[2 * n] - 5) * _MIN  # assumption: switched on 5 min early to 10 min late
            # Assumption: left on 8–18 min longer than the required session.
            out.append((begin, begin + self._min_session_s + (8 + 10 * u[2 * n + 1]) * _MIN))
        return out

    def day_total(self, day: _Day) -> float:
        return sum(end - start for start, end in self._sessions(day))

    def day(self, day: _Day, hi_ms: int) -> list[Item]:
        sessions = self._sessions(day)
        before = self._on_seconds.before(day.ordinal)
        rng = self._day_rng(day)
        out: list[Item] = []
        i = 0
        for t in self._ticks(day, hi_ms):
            s = (t - day.start_ms) / 1000
            i, on = _inside(sessions, i, s)
            watts = UV_LAMP_W * (1 + 0.04 * (rng.random() - 0.5))
            so_far = before + sum(max(0.0, min(end, s) - start) for start, end in sessions)
            out.append((t, "telemetry", {
                "on": on,
                "power_w": round(watts, 1) if on else 0.0,
                "lamp_hours": round(self._initial_h + so_far / _H, 3),
            }))
        return out


class _SampleFridge(_Model):
    """The compressor holds a band around the middle of the allowed range; each time a meal's
    samples go in, the door opens briefly and the air warms, then recovers. The fridge hangs on
    a plug that meters it: it draws the compressor's power while the air cools."""

    _BAND_C: Final = 1.0  # assumption: thermostat hysteresis ±1 °C
    _RISE_C_PER_S: Final = 2.0 / _MIN  # assumption: air warms 2 °C a minute with the door open
    _RECOVERY_S: Final = 8 * _MIN  # assumption: time constant of cooling back after closing
    _SAMPLES_AT: Final = (8.5 * _H, 11.5 * _H, 16.0 * _H)  # after breakfast, lunch and snack

    def __init__(self, seed: int, device: Device) -> None:
        super().__init__(seed, device)
        settings = sample_fridge.Settings.model_validate(device.settings)
        middle = (settings.min_c + settings.max_c) / 2
        self._low, self._high = middle - self._BAND_C, middle + self._BAND_C
        u = _uniforms(seed, device.id, "compressor")
        self._cycle_ms = round((20 + 20 * u[0]) * 60_000)  # assumption: a 20–40 min cycle
        self._phase_ms = round(u[1] * self._cycle_ms)
        self._radio = _Radio(seed, device.id)

    def _cycle(self, t_ms: int) -> tuple[float, bool]:
        """The air's temperature from the thermostat's cycle, and whether the compressor runs."""
        x = ((t_ms + self._phase_ms) % self._cycle_ms) / self._cycle_ms
        span = self._high - self._low
        if x < COOLING_SHARE:
            return self._high - span * x / COOLING_SHARE, True
        return self._low + span * (x - COOLING_SHARE) / (1 - COOLING_SHARE), False

    def day(self, day: _Day, hi_ms: int) -> list[Item]:
        rng = self._day_rng(day)
        openings: list[tuple[float, float]] = []
        if day.open:
            for at in self._SAMPLES_AT:
                start = at + rng.uniform(-10, 10) * _MIN
                openings.append((start, start + rng.uniform(40, 120)))  # assumption: 40–120 s
        out: list[Item] = []
        i = 0
        for t in self._ticks(day, hi_ms):
            s = (t - day.start_ms) / 1000
            i, door_open = _inside(openings, i, s)
            warming = 0.0
            for start, end in openings[:i + 1]:
                if s >= end:
                    warming += self._RISE_C_PER_S * (end - start) * math.exp((end - s) / self._RECOVERY_S)
                elif s >= start:
                    warming += self._RISE_C_PER_S * (s - start)
            cycle_c, running = self._cycle(t)
            celsius = cycle_c + warming + 0.2 * (rng.random() - 0.5)
            watts = COMPRESSOR_W * (1 + 0.1 * (rng.random() - 0.5)) if running else FRIDGE_IDLE_W
            out.append((t, "telemetry", {
                "temperature_c": round(celsius, 1),
                "door_open": door_open,
                "power_w": round(watts, 1),
                **self._radio.fields(t, rng),
            }))
        return out


# --- People and doors ------------------------------------------------------------------------

_CHILDREN_PER_CLASS: Final = 30  # assumption
_STAFF_PER_CLASS: Final = 3  # two teachers and a nursery assistant (两教一保)
_KITCHEN_STAFF: Final = 3  # assumption
_OTHER_STAFF: Final = 4  # assumption: principal, doctor, accountant, clerk
_ABSENT: Final = 0.08  # assumption: share of children absent on a day
_DENIED: Final = 0.02  # assumption: share of swipes refused (expired or unregistered card)
_PICKUP_WAIT_S: Final = 10 * _MIN  # assumption: mean wait between a class's dismissal and pick-up


@dataclass(frozen=True, slots=True)
class _People:
    children: tuple[tuple[str, float], ...]  # card, dismissal (s since midnight) of the child's class
    kitchen: tuple[str, ...]
    staff: tuple[str, ...]  # everyone else

    @classmethod
    def of(cls, site: SiteConfig) -> _People:
        classes = [r for b in site.buildings for r in b.rooms if r.type == "classroom"]
        children = []
        for n in range(len(classes)):
            # Dismissal by grade between 15:50 and 16:10, in the order of the site file.
            dismissal = (15 + 50 / 60) * _H + 20 * _MIN * n / max(1, len(classes) - 1)
            for c in range(_CHILDREN_PER_CLASS):
                children.append((f"card:{n * _CHILDREN_PER_CLASS + c + 1:04d}", dismissal))
        headcount = _KITCHEN_STAFF + _OTHER_STAFF + _STAFF_PER_CLASS * len(classes)
        staff = [f"card:{9001 + n:04d}" for n in range(headcount)]
        return cls(tuple(children), tuple(staff[:_KITCHEN_STAFF]), tuple(staff[_KITCHEN_STAFF:]))


Swipe = tuple[float, str]  # seconds since midnight, credential


class _Door(_Model):
    """The main gate (a door in a gate room), the kitchen door, or any other staff door."""

    _BRIEF_S: Final = (15.0, 40.0)  # assumption: the door stays open this long after a swipe

    def __init__(self, seed: int, device: Device, room: Room, people: _People) -> None:
        super().__init__(seed, device)
        self._role = room.type if room.type in ("gate", "kitchen") else "other"
        self._people = people
        self._radio = _Radio(seed, device.id)

    def _gate(self, rng: random.Random) -> tuple[list[tuple[float, float]], list[Swipe]]:
        p = self._people
        swipes = [(rng.uniform(6.0 * _H, 6.33 * _H), card) for card in p.kitchen]
        swipes += [(rng.uniform(6.83 * _H, 7.42 * _H), card) for card in p.staff]
        last_pickup = (16 + 50 / 60) * _H
        for card, dismissal in p.children:
            if rng.random() < _ABSENT:
                continue
            swipes.append((rng.triangular(7.75 * _H, 8.33 * _H, 8.0 * _H), card))
            swipes.append((min(dismissal + rng.expovariate(1 / _PICKUP_WAIT_S), last_pickup), card))
        swipes += [(rng.uniform(17.25 * _H, 17.83 * _H), card) for card in p.kitchen + p.staff]
        # Open throughout arrival (07:45–08:20) and pick-up (15:50–16:50), give or take 5 min.
        held = [
            (7.75 * _H - rng.uniform(0, 5 * _MIN), 8.33 * _H + rng.uniform(0, 5 * _MIN)),
            (15.83 * _H - rng.uniform(0, 5 * _MIN), last_pickup + rng.uniform(0, 5 * _MIN)),
        ]
        return held, swipes

    def _kitchen(self, rng: random.Random) -> tuple[list[tuple[float, float]], list[Swipe]]:
        cooks = self._people.kitchen
        swipes = [(rng.uniform(6.08 * _H, 6.42 * _H), card) for card in cooks]
        held = []
        # Deliveries around 07:00 and 10:00, let in by a cook. Assumption: 5–15 and 5–10 min.
        for around, longest in ((7.0 * _H, 15 * _MIN), (10.0 * _H, 10 * _MIN)):
            start = around + rng.uniform(-10, 10) * _MIN
            held.append((start, start + rng.uniform(5 * _MIN, longest)))
            swipes.append((start, rng.choice(cooks)))
        # The cooks leave around 17:30 through the door, which opens from inside without a swipe.
        for _ in cooks:
            start = rng.uniform(17.25 * _H, 17.58 * _H)
            held.append((start, start + rng.uniform(*self._BRIEF_S)))
        return held, swipes

    def _other(self, rng: random.Random) -> tuple[list[tuple[float, float]], list[Swipe]]:
        swipes = [(rng.uniform(7.25 * _H, 7.58 * _H), rng.choice(self._people.staff))]
        start = rng.uniform(17.5 * _H, 17.83 * _H)
        return [(start, start + rng.uniform(*self._BRIEF_S))], swipes

    def day(self, day: _Day, hi_ms: int) -> list[Item]:
        rng = self._day_rng(day)
        held: list[tuple[float, float]] = []
        out: list[Item] = []
        if day.open:
            schedule = {"gate": self._gate, "kitchen": self._kitchen, "other": self._other}[self._role]
            held, swipes = schedule(rng)
            for at, card in sorted(swipes):
                s = float(int(at))  # readers stamp whole seconds
                granted = rng.random() >= _DENIED
                if granted and not any(start <= s < end for start, end in held):
                    held.append((s, s + rng.uniform(*self._BRIEF_S)))
                t = day.start_ms + int(s * 1000)
                if t < hi_ms:
                    out.append((t, "event", {"type": "access", "credential": card, "granted": granted}))
            held = _merged(held)
        i = 0
        for t in self._ticks(day, hi_ms):
            i, is_open = _inside(held, i, (t - day.start_ms) / 1000)
            out.append((t, "telemetry", {"open": is_open, **self._radio.fields(t, rng)}))
        return out


class _LeakSensor(_Model):
    """A leak sensor on the floor: dry, as a floor nearly always is. Water on the floor comes
    from a fault scenario (`simulators.faults.FloorWet`), not from a normal day."""

    def __init__(self, seed: int, device: Device) -> None:
        super().__init__(seed, device)
        self._radio = _Radio(seed, device.id)

    def day(self, day: _Day, hi_ms: int) -> list[Item]:
        rng = self._day_rng(day)
        return [(t, "telemetry", {"leak": False, **self._radio.fields(t, rng)}) for t in self._ticks(day, hi_ms)]


# --- Behaviours ------------------------------------------------------------------------------


@dataclass
class _World:
    """What the models of a site are built from besides their device: the seed, the site's
    calendar, rooms and people, and the rooms' loads (shared by the meters that measure them)."""

    seed: int
    site: SiteConfig
    calendar: _Calendar
    people: _People
    rooms: dict[str, Room]
    _loads: dict[tuple[str, str], _RoomLoad] = field(default_factory=dict)

    def metered(self, device: Device, quantity: str, profiles: dict[str, _Profile]) -> list[_RoomLoad]:
        """The loads a meter measures: in a plant room its whole building's, anywhere else its own room's."""
        room = self.rooms[device.room]
        scope = self.site.building_of(room.id).rooms if room.type == "plant" else [room]
        for r in scope:
            if (r.id, quantity) not in self._loads:
                self._loads[r.id, quantity] = _RoomLoad(self.seed, r, quantity, profiles[r.type], self.calendar)
        return [self._loads[r.id, quantity] for r in scope]

    def first_reading(self, device: Device) -> float:
        """A number in [0, 1) for the meter's reading when counting began (assumption)."""
        return _uniforms(self.seed, device.id, "reading")[0]


def _metered_electricity(world: _World, device: Device) -> _Model:
    loads = world.metered(device, "electricity", _ELECTRICITY)
    return _ElectricityMeter(world.seed, device, loads, 10_000 + 50_000 * world.first_reading(device))


def _metered_water(world: _World, device: Device) -> _Model:
    loads = world.metered(device, "water", _WATER)
    return _WaterMeter(world.seed, device, loads, 1_000 + 7_000 * world.first_reading(device))


def _metered_gas(world: _World, device: Device) -> _Model:
    loads = world.metered(device, "gas", _GAS)
    return _GasMeter(world.seed, device, loads, 100 + 2_000 * world.first_reading(device))


def _metered_heat(world: _World, device: Device) -> _Model:
    loads = world.metered(device, "heat", _HEAT)
    return _HeatMeter(world.seed, device, loads, 50 + 500 * world.first_reading(device))


def _uv_session(world: _World, device: Device) -> _Model:
    return _UvLamp(world.seed, device, world.calendar)


def _cold_store(world: _World, device: Device) -> _Model:
    return _SampleFridge(world.seed, device)


def _door_traffic(world: _World, device: Device) -> _Model:
    return _Door(world.seed, device, world.rooms[device.room], world.people)


def _dry_floor(world: _World, device: Device) -> _Model:
    return _LeakSensor(world.seed, device)


BEHAVIOURS: Final[Mapping[str, Callable[[_World, Device], _Model]]] = {
    "metered_electricity": _metered_electricity,
    "metered_water": _metered_water,
    "metered_gas": _metered_gas,
    "metered_heat": _metered_heat,
    "uv_session": _uv_session,
    "cold_store": _cold_store,
    "door_traffic": _door_traffic,
    "dry_floor": _dry_floor,
}
"""The simulator's behaviours, by the name a kind gives in `DeviceKind.simulation`."""


# --- The site --------------------------------------------------------------------------------


class SiteSimulation:
    """Every device of a site, on a seeded model of a kindergarten day.

    `messages(start, end)` yields what the devices publish in [start, end), in time order.
    The result depends only on the site, the seed and the window: windows may be asked for in
    any order, and [a, b) followed by [b, c) equals [a, c).
    """

    def __init__(self, site: SiteConfig, seed: int = 1) -> None:
        self._calendar = _Calendar(site)
        rooms = {r.id: r for b in site.buildings for r in b.rooms}
        world = _World(seed, site, self._calendar, _People.of(site), rooms)
        self._models: list[_Model] = []
        for device in site.devices:
            behaviour = kinds()[device.kind].simulation
            build = BEHAVIOURS.get(behaviour)
            if build is None:
                raise ValueError(f"{device.id}: no simulation model for behaviour {behaviour!r} "
                                 f"of device kind {device.kind!r}")
            self._models.append(build(world, device))

    def messages(self, start: datetime, end: datetime) -> Iterator[SimMessage]:
        """What the devices publish in [start, end), in nondecreasing time order."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        epoch = self._calendar.day(EPOCH.toordinal())
        lo_ms, hi_ms = _ms(start), _ms(end)
        if lo_ms < epoch.start_ms:
            raise ValueError(f"the simulation begins on {EPOCH.isoformat()}; {start.isoformat()} is earlier")
        return self._generate(lo_ms, hi_ms)

    def _generate(self, lo_ms: int, hi_ms: int) -> Iterator[SimMessage]:
        if lo_ms >= hi_ms:
            return
        tz = self._calendar.tz
        day = self._calendar.day_of(lo_ms)
        while day.start_ms < hi_ms:
            items: list[tuple[int, int, Channel, Fields]] = [
                (t, n, channel, fields)
                for n, model in enumerate(self._models)
                for t, channel, fields in model.day(day, hi_ms)
                if t >= lo_ms
            ]
            items.sort(key=itemgetter(0, 1))  # stable: a device's own order is kept on ties
            for t, n, channel, fields in items:
                local = datetime.fromtimestamp(t / 1000, tz).isoformat()
                yield SimMessage(
                    datetime.fromtimestamp(t / 1000, UTC), self._models[n].device_id, channel, {"ts": local, **fields}
                )
            day = self._calendar.day(day.ordinal + 1)
