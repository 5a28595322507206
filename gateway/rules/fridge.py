"""留样冰箱: the retained food samples' fridge out of its range for longer than its delay
(door openings warm it briefly and must not alarm), cleared with hysteresis. A silent
fridge is the device-offline rule's, with its own severity."""

from __future__ import annotations

from pydantic import Field

from devices import sample_fridge
from devices.base import Sample
from gateway.alerting.severity import Severity
from gateway.rules.base import Context, Finding, Rule, RuleSpec, kind_named, minutes
from gateway.rules.params import RuleParams


class FridgeTemperature(RuleParams):
    """留样冰箱 out of its range (the kind's min_c/max_c) for longer than its alarm delay."""

    severity: Severity = Severity.CRITICAL
    hysteresis_c: float = Field(0.5, ge=0, description="back inside the range by this much to clear")



class FridgeTemperatureRule(Rule[FridgeTemperature]):
    name = "fridge_temperature"

    def __init__(self, ctx: Context, params: FridgeTemperature) -> None:
        super().__init__(ctx, params)
        settings = ctx.device.kind_settings()
        assert isinstance(settings, sample_fridge.Settings)
        self._range = settings
        self._since: int | None = None  # outside the range since
        self._worst = 0.0

    def on_sample(self, sample: Sample) -> Finding | None:
        celsius = sample.values.get("temperature_c")
        if celsius is None:
            return None
        ts, r, h = sample.ts_ms, self._range, self.params.hysteresis_c
        if self.raised:
            self._worst = max(self._worst, celsius) if self._worst > r.max_c else min(self._worst, celsius)
            if r.min_c + h <= celsius <= r.max_c - h:
                began, self._since = self._since or ts, None
                return self.clear(ts, {"worst_c": self._worst, "minutes": minutes(ts - began)})
            return None
        if r.min_c <= celsius <= r.max_c:
            self._since = None
            return None
        if self._since is None:
            self._since, self._worst = ts, celsius
        self._worst = max(self._worst, celsius) if celsius > r.max_c else min(self._worst, celsius)
        out = ts - self._since
        if out < r.alarm_delay_min * 60_000:
            return None
        name, since = self.ctx.name, self.ctx.clock(self._since)
        side_zh, side_en = ("过高", "too warm") if celsius > r.max_c else ("过低", "too cold")
        return self.finding(
            True, self._since, ts,
            (f"{name} 温度{side_zh}: {celsius:.1f} °C", f"{name} {side_en}: {celsius:.1f} °C"),
            (f"自 {since} 起超出 {r.min_c:g}–{r.max_c:g} °C 已 {minutes(out)} 分钟 (极值 {self._worst:.1f} °C), "
             "请检查留样是否安全",
             f"outside {r.min_c:g}–{r.max_c:g} °C since {since}, {minutes(out)} min (extreme {self._worst:.1f} °C): "
             "check the retained samples"),
            {"since_ms": self._since, "temperature_c": celsius, "worst_c": self._worst, "minutes": minutes(out)},
            "temperature_c",
        )


FRIDGE_TEMPERATURE: RuleSpec[FridgeTemperature] = RuleSpec(FridgeTemperatureRule, FridgeTemperature,
    "留样冰箱温度", "Sample fridge temperature",
         kind_named(sample_fridge.KIND.name))
RULES = (
    FRIDGE_TEMPERATURE,
)
