"""The school calendar: which days are school days and when each building is open.

One function answers "is this building open at time t?" (`SchoolCalendar.is_open`). A day
is a school day when its weekday has opening hours, unless it is a statutory holiday, in a
term break, a closure or a holiday guard duty (护校) period of the site file; a statutory
make-up working day (调休) is a school day even on a weekend, with the hours of a weekday.
China's statutory holidays and make-up days come from `chinesecalendar`; for a year the
library has no data for, only weekends and the site file count, with one warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Literal

import chinese_calendar

if TYPE_CHECKING:
    from collections.abc import Collection
    from zoneinfo import ZoneInfo

    # Only for types: gateway.config imports this module for CalendarSettings.
    from gateway.config import SiteConfig, Span

log = logging.getLogger(__name__)






class DayKind(StrEnum):
    SCHOOL_DAY = "school_day"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"  # statutory
    MAKEUP_DAY = "makeup_day"  # 调休: a statutory working day on a weekend, so a school day
    TERM_BREAK = "term_break"
    CLOSURE = "closure"
    GUARD_DUTY = "guard_duty"  # 护校


# What decided a day: "site" the site file (a period, or weekday hours with the library
# turned off), "chinesecalendar" the library's data for that year, "fallback" weekday hours
# alone because the library has no data for the year (holidays and 调休 unknown).
Source = Literal["chinesecalendar", "fallback", "site"]


@dataclass(frozen=True, slots=True)
class SchoolDay:
    date: date
    kind: DayKind
    school_day: bool
    name_zh: str  # 国庆节, or the site period's name; "" when none
    name_en: str  # National Day, or the site period's name; "" when none
    guard_duty: bool
    source: Source


# Python's weekday() order, which is also the order of the site file's weekday keys.
_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A year without library data is warned about once per process, not once per calendar: the
# site file may be reloaded and calendars rebuilt, and a repeat says nothing new.
_warned_years: set[int] = set()
# Bounds the per-date caches should lookups wander over many dates (replays, reports);
# clearing is cheap, the next lookup recomputes one day.
_CACHE_DAYS: Final = 4096

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

_Spans = tuple[tuple[int, int], ...]


def _statutory(d: date) -> tuple[bool, str | None] | None:
    """(is a rest day, holiday name) from the library; None when it has no data for the year."""
    try:
        rest, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        return None
    return bool(rest), None if name is None else str(name)


def _zh(name_en: str) -> str:
    try:
        return str(chinese_calendar.Holiday(name_en).chinese)
    except ValueError:  # a name only a newer library knows: English beats nothing
        return name_en


class SchoolCalendar:
    """School days and opening hours of one site, and the local-time arithmetic of its zone.

    Everything derives from the frozen site config, so results are cached for the life of the
    object; build a new one when the site file is reloaded.
    """

    def __init__(self, site: SiteConfig) -> None:
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        """Takes the site's calendar and hours as they are now (changed in the dashboard):
        every day is decided anew."""
        self._site = site
        self._tz = site.tz
        self._settings = site.calendar
        self._hours: dict[str, dict[str, list[Span]]] = {
            b.id: site.opening_hours if b.opening_hours is None else b.opening_hours for b in site.buildings
        }
        self._days: dict[date, SchoolDay] = {}
        self._spans: dict[tuple[str, date], _Spans] = {}
        # is_open's fast path: per building, the local day it was last asked about as
        # (day start ms, day end ms, open spans ms), so most calls only compare integers.
        self._last: dict[str, tuple[int, int, _Spans]] = {}

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    # --- days -------------------------------------------------------------------------------

    def day(self, d: date) -> SchoolDay:
        """What kind of day `d` is at this site, and who decided it."""
        found = self._days.get(d)
        if found is None:
            if len(self._days) >= _CACHE_DAYS:
                self._days.clear()
            found = self._days[d] = self._decide(d)
        return found

    def _decide(self, d: date) -> SchoolDay:
        s = self._settings
        # The site file knows its own school best: a 护校 day in the summer break is a guard
        # duty day, a closure inside a term break is named as the closure.
        for kind, periods in (
            (DayKind.GUARD_DUTY, s.guard_duty),
            (DayKind.CLOSURE, s.closures),
            (DayKind.TERM_BREAK, s.term_breaks),
        ):
            period = next((p for p in periods if p.start <= d <= p.end), None)
            if period is not None:
                return SchoolDay(d, kind, False, period.name, period.name, kind is DayKind.GUARD_DUTY, "site")
        extra = next((p for p in s.makeup_days if p.start <= d <= p.end), None)
        if extra is not None:
            return SchoolDay(d, DayKind.MAKEUP_DAY, True, extra.name, extra.name, False, "site")
        source: Source = "site"
        if s.statutory_holidays:
            statutory = _statutory(d)
            if statutory is None:
                self._warn_unknown_year(d.year)
                source = "fallback"
            else:
                source = "chinesecalendar"
                rest, name = statutory
                if name is not None and rest:
                    return SchoolDay(d, DayKind.HOLIDAY, False, _zh(name), name, False, source)
                if name is not None and d.weekday() >= 5:
                    return SchoolDay(d, DayKind.MAKEUP_DAY, True, _zh(name), name, False, source)
        if self._site.opening_hours[_WEEKDAYS[d.weekday()]]:
            return SchoolDay(d, DayKind.SCHOOL_DAY, True, "", "", False, source)
        return SchoolDay(d, DayKind.WEEKEND, False, "", "", False, source)

    def is_one_of(self, d: date, keys: Collection[str]) -> bool:
        """Whether `d` is one of the days `keys` names (the duty roster's and the fire patrol's
        day keys): its weekday (`mon` … `sun`, whatever kind of day it is), or its kind
        (`school_day`, `closed_day`, `guard_duty`)."""
        day = self.day(d)
        return (
            _WEEKDAYS[d.weekday()] in keys
            or ("school_day" in keys and day.school_day)
            or ("closed_day" in keys and not day.school_day)
            or ("guard_duty" in keys and day.guard_duty)
        )

    @staticmethod
    def _warn_unknown_year(year: int) -> None:
        if year in _warned_years:
            return
        _warned_years.add(year)
        log.warning(
            "chinesecalendar has no data for %d: statutory holidays and make-up days (调休) of %d are "
            "unknown, so only weekdays and the site file's calendar decide school days; update chinesecalendar",
            year,
            year,
        )

    # --- hours ------------------------------------------------------------------------------

    def hours(self, building_id: str, d: date) -> list[Span]:
        """The building's opening spans on `d` (local times); [] unless it is a school day.

        A make-up day (调休) keeps Monday's hours, or those of the first weekday with any:
        it stands in for a weekday, and a weekend's own hours (usually none) would close it.
        Raises KeyError for an unknown building.
        """
        week = self._hours[building_id]
        kind = self.day(d).kind
        if kind is DayKind.SCHOOL_DAY:
            return list(week[_WEEKDAYS[d.weekday()]])
        if kind is DayKind.MAKEUP_DAY:
            return list(next((week[w] for w in _WEEKDAYS if week[w]), []))
        return []

    def open_spans_ms(self, building_id: str, d: date) -> list[tuple[int, int]]:
        """`hours` as [start, end) Unix milliseconds."""
        return list(self._open_spans(building_id, d))

    def _open_spans(self, building_id: str, d: date) -> _Spans:
        key = (building_id, d)
        found = self._spans.get(key)
        if found is None:
            if len(self._spans) >= _CACHE_DAYS:
                self._spans.clear()
            found = self._spans[key] = tuple(
                (self.local_ms(d, span.start), self.local_ms(d, span.end)) for span in self.hours(building_id, d)
            )
        return found

    def closing_ms(self, building_id: str, d: date) -> int | None:
        """When the building's last opening span on `d` ends; None if it is closed all day."""
        spans = self._open_spans(building_id, d)
        return max(end for _, end in spans) if spans else None

    def is_open(self, building_id: str, ts_ms: int) -> bool:
        """Whether the building is open at instant `ts_ms` (start of a span included, end not).

        Called for every reading, so the common case (same local day as the building's last
        call) touches no datetime at all. Raises KeyError for an unknown building.
        """
        last = self._last.get(building_id)
        if last is None or not last[0] <= ts_ms < last[1]:
            d = self.local_date(ts_ms)
            if building_id not in self._hours:
                raise KeyError(building_id)
            last = self._last[building_id] = (*self.day_bounds_ms(d), self._open_spans(building_id, d))
        # A plain loop: any() over a generator costs a frame per call on this path.
        for start, end in last[2]:  # noqa: SIM110
            if start <= ts_ms < end:
                return True
        return False

    # --- local time -------------------------------------------------------------------------

    def local_date(self, ts_ms: int) -> date:
        """The site's local date at instant `ts_ms`."""
        # Whole seconds, floored, give the same date as the exact instant.
        return datetime.fromtimestamp(ts_ms // 1000, self._tz).date()

    def local_ms(self, d: date, t: time) -> int:
        """Local time `t` on `d` as Unix ms. A time skipped by a DST change counts with the
        offset before it (02:30 on spring-forward day is 03:30 new time); a repeated one is
        its first occurrence."""
        return (datetime.combine(d, t, tzinfo=self._tz) - _EPOCH) // _MS

    def day_bounds_ms(self, d: date) -> tuple[int, int]:
        """[local midnight of `d`, local midnight of the next day) as Unix ms: 23 or 25 h on
        DST change days."""
        return self.local_ms(d, time()), self.local_ms(d + timedelta(days=1), time())
