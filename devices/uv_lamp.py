"""A disinfection (UV) lamp (紫外线消毒灯): on/off, optional power and the fixture's own running
hours. That counter goes on across tube changes, so it is not the tube's hours: those are the
care register's (gateway/reports/uv_care.py, docs/uv.md)."""

import re
from typing import Annotated, Final

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

DAYS: Final = ("天", "days")
IRRADIANCE: Final = ("微瓦/平方厘米", "µW/cm²")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # WS/T 367-2012 (docs/uv.md): a session of at least 30 minutes; a tube replaced after about
    # 1000 h (some kindergartens: 800 h) or when its irradiance at 1 m falls below 70 µW/cm²
    # (a new 30 W tube: 90); the tube wiped with alcohol weekly; the irradiance tested every half year.
    min_session_min: Annotated[float, Label("每次消毒至少", "Shortest disinfection", *MINUTES)] = Field(30, gt=0)
    tube_life_h: Annotated[float, Label("灯管寿命", "Tube life", *HOURS)] = Field(1000, gt=0)
    clean_every_days: Annotated[float, Label("灯管擦拭周期", "Wipe the tube every", *DAYS)] = Field(7, gt=0)
    test_every_days: Annotated[float, Label("强度检测周期", "Test the irradiance every", *DAYS)] = Field(182, gt=0)
    min_uw_cm2: Annotated[float, Label("在用灯管强度不低于", "In-use tube at least", *IRRADIANCE)] = Field(70, gt=0)
    new_tube_min_uw_cm2: Annotated[float, Label("新灯管强度不低于", "New tube at least", *IRRADIANCE)] = Field(90, gt=0)


KIND = DeviceKind(
    name="uv_lamp",
    label_zh="紫外线消毒灯",
    label_en="UV disinfection lamp",
    metrics=(
        Metric("on", "", MetricType.STATE, "开关", "On", required=True, words=ON_OFF),
        Metric("power_w", "W", MetricType.GAUGE, "功率", "Power", minimum=0, maximum=10000),
        # Not a tile's headline: people would take it for the tube's hours.
        Metric("lamp_hours", "h", MetricType.COUNTER, "灯具累计时长（换管不清零）", "Fixture hours (all tubes)",
               minimum=0, tile=False),
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
