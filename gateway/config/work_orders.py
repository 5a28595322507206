"""Work orders' settings (`work_orders:`): which rules open one, for which trade."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    pass


class Trade(StrEnum):
    WATER = "water"  # 水
    ELECTRIC = "electric"  # 电
    CARPENTRY = "carpentry"  # 木
    OTHER = "other"  # 其他


def _default_rules() -> dict[str, Trade]:
    return {
        "water_leak": Trade.WATER,
        "running_tap": Trade.WATER,
        "leak_detected": Trade.WATER,
        "door_open_too_long": Trade.CARPENTRY,  # a door that does not close: its closer or lock
        "uv_tube_life": Trade.ELECTRIC,
        "device_offline": Trade.OTHER,
    }


class WorkOrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[str, Trade] = Field(default_factory=_default_rules, description="rule → trade that fixes it")
    due_within_h: float | None = Field(None, gt=0, description="default: by the end of the day it was opened")
