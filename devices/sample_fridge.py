"""The fridge that keeps retained food samples (留样冰箱): temperature, optional door state."""

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.base import (
    CELSIUS,
    MINUTES,
    OPEN_CLOSED,
    DeviceKind,
    Label,
    Metric,
    MetricType,
    Recognition,
    SettingsRange,
)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # The usual refrigerated range for retained samples is 0–8 °C.
    min_c: Annotated[float, Label("最低温度", "Lowest temperature", *CELSIUS)] = 0.0
    max_c: Annotated[float, Label("最高温度", "Highest temperature", *CELSIUS)] = 8.0
    # Door openings warm the fridge briefly; a breach counts only after this long.
    alarm_delay_min: Annotated[float, Label("超温多久才报警", "Alarm after out of range for", *MINUTES)] = Field(
        15, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Settings":
        if self.min_c >= self.max_c:
            raise ValueError(f"min_c ({self.min_c}) must be below max_c ({self.max_c})")
        return self


KIND = DeviceKind(
    name="sample_fridge",
    label_zh="留样冰箱",
    label_en="Sample fridge",
    metrics=(
        Metric("temperature_c", "°C", MetricType.GAUGE, "温度", "Temperature", required=True,
               minimum=-50, maximum=60, allowed=SettingsRange("min_c", "max_c")),
        Metric("door_open", "", MetricType.STATE, "柜门", "Door", words=OPEN_CLOSED),
        # From a smart plug the fridge hangs on: a fridge drawing nothing for long is unplugged or broken.
        Metric("power_w", "W", MetricType.GAUGE, "功率", "Power", minimum=0, maximum=10000),
    ),
    settings=Settings,
    closing=None,  # it runs day and night
    # A thermostat's cycle, and the door opened briefly as each meal's samples go in.
    simulation="cold_store",
    keeps_samples=True,
    # A thermometer is one only when its name says so (the gateway has no kind for room temperature).
    recognised=Recognition(frozenset({"temperature_c"}), rank=4,
                           named=re.compile(r"fridge|freezer|refrigerator|冰箱|冷藏|冷柜|留样", re.IGNORECASE)),
)
