"""The duty roster's settings (`duty:`, 值班表): people, shifts, reminders and escalation."""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.config.work_orders import Trade

# A shift's days: weekdays, or a kind of day from the school calendar.
DayKey = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "school_day", "closed_day", "guard_duty"]


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    role: str = ""  # e.g. 门卫, 后勤主任
    trades: list[Trade] = Field(default_factory=list, description="the work-order trades they repair")
    email: str | None = None
    mobile: str | None = Field(None, description="for @-mentions in WeCom and DingTalk group robots")


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[DayKey] = Field(min_length=1)
    start: time = time(0, 0)
    end: time = time(0, 0)  # at or before start: past midnight; 00:00–00:00 is the whole day
    chain: list[str] = Field(min_length=1, description="person ids: on duty first, then who is next")


class DutySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    people: list[Person] = Field(default_factory=list)
    shifts: list[Shift] = Field(default_factory=list)
    remind_every_min: float = Field(10, gt=0, description="reminders while an alert is unacknowledged")
    escalate_after_min: float = Field(15, gt=0, description="unacknowledged this long: the next in the chain")
