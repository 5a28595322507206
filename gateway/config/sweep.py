"""The sweep before a break's settings (`sweep:`): 拉网式检查 before each holiday and term
break and before term starts — when one is due, what a person checks by hand, and what
counts as a circuit down to standby."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.alerting.trade import Trade
from gateway.site import RoomType

# What the sensors check at closing (gateway/api/closing.py): a door left open, power above
# standby, water running, a UV lamp on.
Sensed = Literal["door", "power", "water", "uv"]


class SweepItem(BaseModel):
    """A check only a person can do, asked in each building it applies to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="stable, e.g. gas")
    zh: str = Field(min_length=1, description="as the checklist says it, e.g. 燃气阀门已关闭")
    en: str = Field(min_length=1)
    trade: Trade = Field(Trade.OTHER, description="who fixes it when it is turned into a work order")
    room_types: list[RoomType] | None = Field(
        None, description="asked only in buildings with a room of these types (gas: kitchen); default every building")
    unless_sensed: Sensed | None = Field(
        None, description="not asked in a building where a sensor already checks this (doors: a door sensor)")


def _default_items() -> list[SweepItem]:
    return [
        SweepItem(id="gas", zh="燃气阀门已关闭", en="Gas valves shut", room_types=["kitchen"]),
        SweepItem(id="valuables", zh="贵重物品已锁好", en="Valuables locked away"),
        SweepItem(id="computers", zh="教师办公电脑及电源已关闭", en="Office computers and their power switched off",
                  trade=Trade.ELECTRIC, room_types=["office", "classroom"], unless_sensed="power"),
        SweepItem(id="dispensers", zh="饮水机已断电", en="Water dispensers unplugged", trade=Trade.ELECTRIC),
        SweepItem(id="doors-windows", zh="门窗已关好", en="Doors and windows shut", trade=Trade.CARPENTRY,
                  unless_sensed="door"),
    ]


class SweepSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_break_days: int = Field(3, ge=2, le=60, description="closed days in a row that make a break (a weekend is 2)")
    days_ahead: int = Field(14, ge=1, le=60, description="how far ahead the page lists the sweeps due")
    standby_w: dict[str, float] = Field(
        default_factory=dict,
        description="device → standby power (W) at or below which its circuit counts as down; default: "
                    "its learned base load (with the after-hours rule's margin)")
    items: list[SweepItem] = Field(default_factory=_default_items)

    @field_validator("items")
    @classmethod
    def _distinct(cls, v: list[SweepItem]) -> list[SweepItem]:
        ids = [i.id for i in v]
        if len(ids) != len(set(ids)):
            raise ValueError(f"item ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        return v
