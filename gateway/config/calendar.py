"""The school calendar's settings (`calendar:`): term breaks, closures, 护校 and make-up days."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:

    # Only for types: gateway.config imports this module for CalendarSettings.
    pass


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
    # The school's own make-up days (调休上课): days it opens though they would be closed (a
    # Saturday of a sports day, a day traded for a holiday); the statutory ones need no entry.
    makeup_days: list[Period] = Field(default_factory=list, description="extra days the school opens")
