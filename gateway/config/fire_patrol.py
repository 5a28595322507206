"""The fire-safety patrol's settings (`fire_patrol:`, 防火巡查): what each round checks, when
the rounds are and how late a round may be before the person on duty is reminded.

公安部令第61号 art. 25 asks for a daily patrol of the use of fire and electricity, exits and
evacuation routes, signs and emergency lighting, fire equipment and the staff at key posts,
with night patrols strengthened at boarding schools, nurseries and kindergartens; the
childcare fire standard asks for at least two rounds a day (docs/fire-patrol.md).
"""

from __future__ import annotations

from datetime import time
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.config.duty import DayKey

EVERY_DAY: list[DayKey] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class PatrolItem(BaseModel):
    """One thing every round looks at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    zh: str = Field(min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=100)


class PatrolRound(BaseModel):
    """A round at `at` local time on the days named (weekdays, or kinds of day of the school
    calendar, as the duty roster's shifts name them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: time
    days: list[DayKey] = Field(min_length=1)
    night: bool = Field(False, description="a night round: only where night rounds are on")

    @property
    def id(self) -> str:
        """The round's id within its day: its time, e.g. 0800."""
        return f"{self.at:%H%M}"


def _default_items() -> list[PatrolItem]:
    return [
        PatrolItem(id="exits", zh="疏散通道与安全出口畅通", en="Evacuation routes and exits clear"),
        PatrolItem(id="extinguishers", zh="灭火器材完好有效", en="Extinguishers in place and in date"),
        PatrolItem(id="lighting", zh="应急照明与疏散指示标志完好", en="Emergency lighting and exit signs working"),
        PatrolItem(id="facilities", zh="消防设施（消火栓、火灾报警器）完好",
                   en="Fire equipment (hydrants, fire alarms) intact"),
        PatrolItem(id="electricity", zh="用火用电与电气线路安全", en="Use of fire and electricity, wiring safe"),
        PatrolItem(id="control_room", zh="消防控制室有人值班", en="Fire control room staffed"),
    ]


def _default_rounds() -> list[PatrolRound]:
    return [
        PatrolRound(at=time(8, 0), days=["school_day"]),
        PatrolRound(at=time(16, 30), days=["school_day"]),
        PatrolRound(at=time(21, 0), days=list(EVERY_DAY), night=True),
        PatrolRound(at=time(2, 0), days=list(EVERY_DAY), night=True),
    ]


class FirePatrolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[PatrolItem] = Field(default_factory=_default_items, min_length=1)
    rounds: list[PatrolRound] = Field(default_factory=_default_rounds)
    # None: on where children sleep (a room of type nap_room or dorm: a kindergarten, a
    # boarding school), off elsewhere.
    night_rounds: bool | None = None
    grace_min: float = Field(60, gt=0, le=720, description="a round not done this long after its time is missed")

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        for what, ids in (("items", [i.id for i in self.items]), ("rounds", [r.id for r in self.rounds])):
            seen: set[str] = set()
            for n, i in enumerate(ids):
                if i in seen:
                    key = "id" if what == "items" else "at"
                    raise ValueError(f"@fire_patrol.{what}[{n}].{key}: {i} is there twice")
                seen.add(i)
        return self
