"""A disinfection (UV) lamp (紫外线消毒灯): on/off, optional power and cumulative tube hours."""

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from devices.base import (
    HOURS,
    MINUTES,
    ON_OFF,
    ClosingCheck,
    ClosingCondition,
    DeviceKind,
    Label,
    Metric,
    MetricType,
    Recognition,
)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Common practice: a session of at least 30 minutes, a tube replaced after about 1000 h.
    min_session_min: Annotated[float, Label("每次消毒至少", "Shortest disinfection", *MINUTES)] = Field(30, gt=0)
    tube_life_h: Annotated[float, Label("灯管寿命", "Tube life", *HOURS)] = Field(1000, gt=0)


KIND = DeviceKind(
    name="uv_lamp",
    label_zh="紫外线消毒灯",
    label_en="UV disinfection lamp",
    metrics=(
        Metric("on", "", MetricType.STATE, "开关", "On", required=True, words=ON_OFF),
        Metric("power_w", "W", MetricType.GAUGE, "功率", "Power", minimum=0, maximum=10000),
        Metric("lamp_hours", "h", MetricType.COUNTER, "灯管累计时长", "Tube hours", minimum=0),
    ),
    settings=Settings,
    # A lamp on after closing is expected inside its disinfection window, forgotten outside it.
    closing=ClosingCheck("on", ClosingCondition.TRUE_UNLESS_SCHEDULED),
    # A timed disinfection session after the staff have left.
    simulation="uv_session",
    # A switch or a metered plug is one only when its name says so.
    recognised=Recognition(frozenset({"on", "power_w", "energy_kwh"}), rank=5,
                           named=re.compile(r"\buv\b|uv[_-]|紫外|消毒", re.IGNORECASE)),
)
