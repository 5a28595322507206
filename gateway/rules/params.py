"""The parameters of every rule, with their defaults: what a site file may set under
`rules:` (for the whole site) and under a device's `rules:` (for that device alone).

A rule's name is the key; the kinds it applies to are listed in `APPLIES_TO`. Thresholds
that belong to a device kind (a fridge's range, a lamp's session length and tube life) are
the kind's settings, not repeated here.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from gateway.severity import Severity


class RuleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = Severity.MINOR


class FlowParams(RuleParams):
    flow_threshold_lpm: float = Field(0, ge=0, description="flow above this counts as flowing")


class WaterLeak(FlowParams):
    """跑水漏水: water flowing in every interval while the building is closed, or a night
    minimum flow above a threshold."""

    severity: Severity = Severity.MAJOR
    continuous_min: float = Field(60, gt=0)
    night_start: time = time(1, 0)
    night_end: time = time(4, 0)
    night_min_flow_lpm: float = Field(0.5, ge=0)


class LeakDetected(RuleParams):
    """漏水报警: a leak sensor reports water, at any hour."""

    severity: Severity = Severity.MAJOR


class RunningTap(FlowParams):
    """长流水: water flowing without a break for hours while the building is open."""

    continuous_h: float = Field(2, gt=0)


class DoorAfterHours(RuleParams):
    """按时关锁大门: a door open while its building is closed, past a grace period."""

    severity: Severity = Severity.MAJOR
    grace_min: float = Field(5, ge=0)


class DoorOpenTooLong(RuleParams):
    """A door (kitchen, stores) open longer than this while the building is open; off unless set."""

    max_open_min: float | None = Field(None, gt=0)


class AfterHoursAccess(RuleParams):
    """A card used while the building is closed by a credential not allowed then."""

    severity: Severity = Severity.MAJOR
    allowed: list[str] = Field(default_factory=list, description="credentials allowed after hours")


class FridgeTemperature(RuleParams):
    """留样冰箱 out of its range (the kind's min_c/max_c) for longer than its alarm delay."""

    severity: Severity = Severity.CRITICAL
    hysteresis_c: float = Field(0.5, ge=0, description="back inside the range by this much to clear")


class UvNotRun(RuleParams):
    """消毒灯: on a school day a lamp must run its minutes (the kind's min_session_min) in a window."""

    severity: Severity = Severity.MAJOR
    window_start: time | None = Field(None, description="default: when the lamp's building closes")
    window_end: time = time(20, 0)


class UvOnWhileOpen(RuleParams):
    """A UV lamp on while its room is in use: people must not be exposed."""

    severity: Severity = Severity.WARNING


class UvTubeLife(RuleParams):
    """A tube near the end of its rated life (the kind's tube_life_h)."""

    severity: Severity = Severity.WARNING
    warn_at_pct: float = Field(90, gt=0, le=100)


class LoadAfterHours(RuleParams):
    """长明灯: load above the base load while the building is closed."""

    base_load_w: float | None = Field(None, ge=0, description="default: learned from recent closed nights")
    learn_nights: int = Field(7, ge=1)
    margin_pct: float = Field(20, ge=0)
    min_excess_w: float = Field(300, ge=0)
    duration_min: float = Field(30, gt=0)


class LightsOut(RuleParams):
    """拉闸断电: a dorm circuit drawing power after lights-out."""

    severity: Severity = Severity.MAJOR
    start: time = time(22, 0)
    end: time = time(6, 0)
    max_w: float = Field(300, ge=0)
    duration_min: float = Field(10, gt=0)


class HighPower(RuleParams):
    """大功率用电器: a step rise in power on a dorm or classroom circuit."""

    severity: Severity = Severity.MAJOR
    step_w: float = Field(1500, gt=0)


class DeviceOffline(RuleParams):
    """No data for this many of the device's expected intervals."""

    intervals: float = Field(3, ge=1)


class LowBattery(RuleParams):
    severity: Severity = Severity.WARNING
    below_pct: float = Field(20, gt=0, le=100)


class CounterReset(RuleParams):
    """A meter counter that went back to (near) zero: replaced, reset or rolled over."""

    severity: Severity = Severity.WARNING


class RuleName(StrEnum):
    """Every rule's name: the key of its parameters and of its alerts."""

    WATER_LEAK = "water_leak"
    RUNNING_TAP = "running_tap"
    LEAK_DETECTED = "leak_detected"
    DOOR_AFTER_HOURS = "door_after_hours"
    DOOR_OPEN_TOO_LONG = "door_open_too_long"
    AFTER_HOURS_ACCESS = "after_hours_access"
    FRIDGE_TEMPERATURE = "fridge_temperature"
    UV_NOT_RUN = "uv_not_run"
    UV_ON_WHILE_OPEN = "uv_on_while_open"
    UV_TUBE_LIFE = "uv_tube_life"
    LOAD_AFTER_HOURS = "load_after_hours"
    LIGHTS_OUT = "lights_out"
    HIGH_POWER = "high_power"
    DEVICE_OFFLINE = "device_offline"
    LOW_BATTERY = "low_battery"
    COUNTER_RESET = "counter_reset"


PARAMS: Final[dict[str, type[RuleParams]]] = {
    "water_leak": WaterLeak,
    "running_tap": RunningTap,
    "leak_detected": LeakDetected,
    "door_after_hours": DoorAfterHours,
    "door_open_too_long": DoorOpenTooLong,
    "after_hours_access": AfterHoursAccess,
    "fridge_temperature": FridgeTemperature,
    "uv_not_run": UvNotRun,
    "uv_on_while_open": UvOnWhileOpen,
    "uv_tube_life": UvTubeLife,
    "load_after_hours": LoadAfterHours,
    "lights_out": LightsOut,
    "high_power": HighPower,
    "device_offline": DeviceOffline,
    "low_battery": LowBattery,
    "counter_reset": CounterReset,
}
assert set(PARAMS) == set(RuleName), "every rule has a name and parameters"

_EVERY_KIND: Final = ("electricity_meter", "water_meter", "uv_lamp", "sample_fridge", "door", "leak_sensor")
APPLIES_TO: Final[dict[str, tuple[str, ...]]] = {
    "water_leak": ("water_meter",),
    "running_tap": ("water_meter",),
    "leak_detected": ("leak_sensor",),
    "door_after_hours": ("door",),
    "door_open_too_long": ("door",),
    "after_hours_access": ("door",),
    "fridge_temperature": ("sample_fridge",),
    "uv_not_run": ("uv_lamp",),
    "uv_on_while_open": ("uv_lamp",),
    "uv_tube_life": ("uv_lamp",),
    "load_after_hours": ("electricity_meter",),
    "lights_out": ("electricity_meter",),  # on meters in dorm rooms
    "high_power": ("electricity_meter",),  # on meters in dorm and classroom rooms
    "device_offline": _EVERY_KIND,
    "low_battery": _EVERY_KIND,
    "counter_reset": ("electricity_meter", "water_meter", "uv_lamp"),
}

# Defaults that differ by kind: a silent fridge sensor means the cold chain is unknown.
KIND_DEFAULTS: Final[dict[tuple[str, str], dict[str, object]]] = {
    ("device_offline", "sample_fridge"): {"severity": Severity.MAJOR},
}
