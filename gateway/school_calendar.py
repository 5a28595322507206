"""The school calendar: which days are school days and when each building is open.

One function answers "is this building open at time t?" (`SchoolCalendar.is_open`). A day
is a school day when its weekday has opening hours, unless it is a statutory holiday, in a
term break, a closure or a holiday guard duty (护校) period of the site file; a statutory
make-up working day (调休) is a school day even on a weekend, with the hours of a weekday.
China's statutory holidays and make-up days come from `chinesecalendar`; for a year the
library has no data for, only weekends and the site file count, with one warning.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Period(BaseModel):
    """Days from `start` to `end`, both included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date
    end: date
    name: str = Field("", description="shown in the calendar, e.g. 寒假")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class CalendarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    statutory_holidays: bool = Field(True, description="China's holidays and make-up days (调休)")
    term_breaks: list[Period] = Field(default_factory=list, description="寒假, 暑假: closed")
    closures: list[Period] = Field(default_factory=list, description="any other closed days")
    # 护校: the school is closed and guarded; alerts go to the guard-duty rota of the roster.
    guard_duty: list[Period] = Field(default_factory=list)
