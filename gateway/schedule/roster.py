"""The duty roster (值班表): who is on duty when, and who is next if they do not answer.

A shift covers some days from `start` to `end` local time (an `end` at or before `start`
runs past midnight, and belongs to the day it starts on). Its `chain` names the person on
duty first, then who an unacknowledged alert escalates to, in order.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

from gateway.config.duty import Person, Shift

if TYPE_CHECKING:
    # Only for types: gateway.config imports this module for DutySettings.
    from gateway.config import SiteConfig
    from gateway.schedule.school_calendar import SchoolCalendar









# Bounds the per-date cache of shift instants (see SchoolCalendar for the same policy).
_CACHE_DAYS: Final = 4096


class Roster:
    """Who is on duty at an instant, by the site's shifts and its school calendar.

    Weekday keys (`mon` … `sun`) ignore the calendar: a `mon` shift runs on a holiday Monday
    too. Calendar keys decide by the day a shift starts on, so a night shift starting on a
    school day still covers the small hours of a Saturday.
    """

    def __init__(self, site: SiteConfig, calendar: SchoolCalendar) -> None:
        self._calendar = calendar
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        self._shifts = site.duty.shifts
        self._people = {p.id: p for p in site.duty.people}
        # The config checks every id in a chain exists, so chains resolve once, here.
        self._chains = [tuple(self._people[who] for who in shift.chain) for shift in self._shifts]
        self._starting: dict[date, tuple[tuple[int, int, int], ...]] = {}

    def person(self, person_id: str) -> Person:
        """Raises KeyError for an id not in `duty.people`."""
        return self._people[person_id]

    def chain(self, ts_ms: int) -> tuple[Person, ...]:
        """The escalation chain of the first shift (file order) covering `ts_ms`; () if none."""
        today = self._calendar.local_date(ts_ms)
        # A shift lasts at most a day, so only one starting today or yesterday can cover t.
        covering = [
            index
            for d in (today, today - timedelta(days=1))
            for index, start, end in self._shifts_starting(d)
            if start <= ts_ms < end
        ]
        return self._chains[min(covering)] if covering else ()

    def _shifts_starting(self, d: date) -> tuple[tuple[int, int, int], ...]:
        """(shift index, start ms, end ms) of the shifts that start on local day `d`."""
        found = self._starting.get(d)
        if found is None:
            if len(self._starting) >= _CACHE_DAYS:
                self._starting.clear()
            found = self._starting[d] = tuple(
                (i, *self._instants(d, shift)) for i, shift in enumerate(self._shifts) if self._runs_on(d, shift)
            )
        return found

    def _runs_on(self, d: date, shift: Shift) -> bool:
        return self._calendar.is_one_of(d, shift.days)

    def _instants(self, d: date, shift: Shift) -> tuple[int, int]:
        end_day = d if shift.end > shift.start else d + timedelta(days=1)
        return self._calendar.local_ms(d, shift.start), self._calendar.local_ms(end_day, shift.end)
