"""Work orders (派单): an alert of a chosen rule opens one for a trade, with the room, the
evidence (the readings that triggered it), a due time and a status that technicians move
along (open → assigned → on_site → done)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field


class Trade(StrEnum):
    WATER = "water"  # 水
    ELECTRIC = "electric"  # 电
    CARPENTRY = "carpentry"  # 木
    OTHER = "other"  # 其他


TRADE_ZH: Final = {Trade.WATER: "水", Trade.ELECTRIC: "电", Trade.CARPENTRY: "木", Trade.OTHER: "其他"}


def _default_rules() -> dict[str, Trade]:
    return {
        "water_leak": Trade.WATER,
        "running_tap": Trade.WATER,
        "door_open_too_long": Trade.CARPENTRY,  # a door that does not close: its closer or lock
        "uv_tube_life": Trade.ELECTRIC,
        "device_offline": Trade.OTHER,
    }


class WorkOrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[str, Trade] = Field(default_factory=_default_rules, description="rule → trade that fixes it")
    due_within_h: float | None = Field(None, gt=0, description="default: by the end of the day it was opened")
