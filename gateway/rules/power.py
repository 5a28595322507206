"""Electricity rules: load left on while the building is closed (长明灯), dorm circuits after
lights-out (拉闸断电), and a step rise that is a high-power appliance (违规用电). Power is the
meter's `power_w` where it reports one, else the energy's rate of change."""

from __future__ import annotations

import statistics
from collections import deque
from datetime import time
from typing import TYPE_CHECKING

from pydantic import Field

from devices.base import Sample
from gateway.alerting.severity import Severity
from gateway.reports.judging import (
    MIN_MS,
    Judge,
    after_hours,
    disabled,
    longest_of,
    missing,
    record_item,
    verdict,
)
from gateway.reports.judging import minutes as record_minutes
from gateway.reports.safety_model import (
    Category,
    Item,
    ItemStatus,
    PowerFacts,
)
from gateway.reports.safety_series import Held, integral_min, total_ms
from gateway.rules.base import Context, Finding, Rule, RuleSpec, minutes, with_metric
from gateway.rules.params import RuleParams

if TYPE_CHECKING:
    from gateway.site import Device


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



class Power:
    """Power in W from an electricity meter's reading: its own power, or the energy's rate. The
    rules and the safety record (gateway/reports) judge load by this one definition."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def __call__(self, sample: Sample) -> float | None:
        power = sample.values.get("power_w")
        energy = sample.values.get("energy_kwh")
        last = self._last
        if energy is not None:
            self._last = (sample.ts_ms, energy)
        if power is not None:
            return power
        if energy is None or last is None or sample.ts_ms <= last[0] or energy < last[1]:
            return None
        return (energy - last[1]) * 3.6e9 / (sample.ts_ms - last[0])


class _Thinned:
    """A uniform sample of at most `2 * keep` values of a period of any length: past that,
    every other value is dropped and only every second one taken from then on."""

    def __init__(self, keep: int = 1024) -> None:
        self._keep = keep
        self.values: list[float] = []
        self._stride = 1
        self._seen = 0

    def add(self, value: float) -> None:
        self._seen += 1
        if self._seen % self._stride:
            return
        self.values.append(value)
        if len(self.values) >= 2 * self._keep:
            self.values = self.values[::2]
            self._stride *= 2


class LoadAfterHoursRule(Rule[LoadAfterHours]):
    """The base load is configured, or the median of the last closed periods' medians; a
    period with an alert does not teach it."""

    name = "load_after_hours"

    def __init__(self, ctx: Context, params: LoadAfterHours) -> None:
        super().__init__(ctx, params)
        self._power = Power()
        self._nights: deque[float] = deque(maxlen=params.learn_nights)
        self._tonight = _Thinned()
        self._tainted = False  # tonight had an alert: do not learn from it
        self._since: int | None = None
        self._prev_ms = 0
        self._waste_kwh = 0.0

    def base_w(self) -> float | None:
        if self.params.base_load_w is not None:
            return self.params.base_load_w
        return statistics.median(self._nights) if self._nights else None

    def limit_w(self) -> float | None:
        """Power above this, while closed, is load left on."""
        base = self.base_w()
        if base is None:
            return None
        return base + max(base * self.params.margin_pct / 100, self.params.min_excess_w)

    def on_sample(self, sample: Sample) -> Finding | None:
        power = self._power(sample)
        if power is None:
            return None
        ts = sample.ts_ms
        if self.ctx.is_open(ts):
            if self._tonight.values and not self._tainted:
                self._nights.append(statistics.median(self._tonight.values))
            self._tonight, self._tainted = _Thinned(), False
            return self._end(ts)
        self._tonight.add(power)
        base, limit = self.base_w(), self.limit_w()
        if base is None or limit is None:
            return None
        p = self.params
        if power <= limit:
            return self._end(ts)
        if self._since is None:
            self._since, self._prev_ms, self._waste_kwh = ts, ts, 0.0
        self._waste_kwh += (power - base) / 1000 * (ts - self._prev_ms) / 3_600_000
        self._prev_ms = ts
        if self.raised or ts - self._since < p.duration_min * 60_000:
            return None
        self._tainted = True
        facts = self._facts(ts, base, power)
        name, since = self.ctx.name, self.ctx.clock(self._since)
        return self.finding(
            True, self._since, ts,
            (f"{name} 闭园后负荷偏高 {power / 1000:.1f} kW", f"{name}: {power / 1000:.1f} kW drawn while closed"),
            (f"自 {since} 起高于基础负荷 {base / 1000:.1f} kW 约 {(power - base) / 1000:.1f} kW, "
             f"已 {facts['minutes']} 分钟, "
             f"浪费约 {facts['waste_kwh']} kWh (¥{facts['cost_yuan']}): 长明灯或电器未关",
             f"{(power - base) / 1000:.1f} kW above the base load of {base / 1000:.1f} kW since {since}, "
             f"{facts['minutes']} min: about {facts['waste_kwh']} kWh (¥{facts['cost_yuan']}) wasted: lights or "
             "appliances left on"),
            facts, "power_w",
        )

    def _facts(self, ts: int, base: float, power: float) -> dict[str, float | str]:
        assert self._since is not None
        return {
            "since_ms": self._since,
            "minutes": minutes(ts - self._since),
            "base_w": round(base),
            "power_w": round(power),
            "waste_kwh": round(self._waste_kwh, 2),
            "cost_yuan": round(self._waste_kwh * self.ctx.tariffs.electricity_yuan_per_kwh, 2),
        }

    def _end(self, ts: int) -> Finding | None:
        since, self._since = self._since, None
        if not self.raised:
            return None
        return self.clear(ts, {"waste_kwh": round(self._waste_kwh, 2), "minutes": minutes(ts - (since or ts)),
                               "cost_yuan": round(self._waste_kwh * self.ctx.tariffs.electricity_yuan_per_kwh, 2)})


def _in(start: time, end: time, now: time) -> bool:
    """Whether `now` is in [start, end), a span that may run past midnight."""
    return start <= now < end if start < end else now >= start or now < end


class LightsOutRule(Rule[LightsOut]):
    name = "lights_out"

    def __init__(self, ctx: Context, params: LightsOut) -> None:
        super().__init__(ctx, params)
        self._power = Power()
        self._since: int | None = None

    def on_sample(self, sample: Sample) -> Finding | None:
        power = self._power(sample)
        if power is None:
            return None
        ts, p = sample.ts_ms, self.params
        local = self.ctx.local_time(ts)
        if power <= p.max_w or not _in(p.start, p.end, local):
            self._since = None
            return self.clear(ts) if self.raised else None
        if self._since is None:
            self._since = ts
        if self.raised or ts - self._since < p.duration_min * 60_000:
            return None
        name = self.ctx.name
        return self.finding(
            True, self._since, ts,
            (f"{name} 熄灯后仍在用电 {power:.0f} W", f"{name}: {power:.0f} W after lights-out"),
            (f"熄灯 ({p.start:%H:%M}) 后自 {self.ctx.clock(self._since)} 起持续高于 {p.max_w:g} W",
             f"above {p.max_w:g} W since {self.ctx.clock(self._since)}, after lights-out at {p.start:%H:%M}"),
            {"since_ms": self._since, "power_w": round(power), "minutes": minutes(ts - self._since)}, "power_w",
        )


class HighPowerRule(Rule[HighPower]):
    name = "high_power"

    def __init__(self, ctx: Context, params: HighPower) -> None:
        super().__init__(ctx, params)
        self._power = Power()
        self._prev: float | None = None
        self._before = 0.0

    def on_sample(self, sample: Sample) -> Finding | None:
        power = self._power(sample)
        if power is None:
            return None
        ts, prev, self._prev = sample.ts_ms, self._prev, power
        step = self.params.step_w
        if self.raised:
            return self.clear(ts, {"power_w": round(power)}) if power < self._before + step / 2 else None
        if prev is None or power - prev < step:
            return None
        self._before = prev
        name = self.ctx.name
        return self.finding(
            True, ts, ts,
            (f"{name} 疑似大功率用电器 (+{power - prev:.0f} W)",
             f"{name}: high-power appliance (+{power - prev:.0f} W)"),
            (f"{self.ctx.clock(ts)} 功率从 {prev:.0f} W 跃升到 {power:.0f} W, 请检查是否违规使用电器",
             f"power jumped from {prev:.0f} W to {power:.0f} W at {self.ctx.clock(ts)}: "
             "check for a forbidden appliance"),
            {"since_ms": ts, "step_w": round(power - prev), "before_w": round(prev), "power_w": round(power)},
            "power_w",
        )


# Circuits: kinds that meter energy (a fridge's or a lamp's own power is not a circuit).
_CIRCUIT = with_metric("energy_kwh")

# ------------------------------------------------------------ the daily record's judge


def power(j: Judge, d: Device) -> Item:
    """No load above base after hours: fails on power above the after-hours load rule's
    limit (its configured or learned base load plus margin, as it stands now) for the rule's
    `duration_min` or longer while the building is closed."""
    item_id = f"power:{d.id}"
    found = j.day.limits.get(d.id)
    if found is None:
        return disabled(item_id, Category.POWER, d, j.site, LOAD_AFTER_HOURS)
    base, limit = found
    params = LOAD_AFTER_HOURS.params_for(d)
    duration_min = params.duration_min
    if limit is None:
        return record_item(item_id, Category.POWER, d, j.site, ItemStatus.MANUAL,
                     ("还没学到基础负荷（需要先有一个完整的闭园时段），请人工检查电器电源",
                      "the base load is not learned yet (it needs one whole closed period): check power by hand"))
    run_ms = round(duration_min * MIN_MS)
    c = after_hours(j, d, lambda lo, hi: _powers(j, d, lo, hi), run_ms, lambda watts: watts > limit)
    failed = [r for r in c.episodes if r[1] - r[0] >= run_ms]
    above = record_minutes(total_ms([(h.start, h.end) for h in c.inside]))
    excess = round(integral_min([Held(h.start, h.end, h.value - limit) for h in c.inside]) / 60_000, 2)
    longest = longest_of(c.episodes)
    facts = PowerFacts(base_w=None if base is None else round(base), limit_w=round(limit), duration_min=duration_min,
                       minutes_above=above, kwh_above_limit=excess,
                       longest=None if longest is None else j.span(longest))
    status = verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = longest_of(failed)
        assert worst is not None
        detail = (f"闭园时段高于基础负荷上限 {limit:.0f} W，连续 {record_minutes(worst[1] - worst[0]):g} 分钟"
                  f"（{j.spans([worst], '、')}）；当日闭园时段共 {above:g} 分钟，超出约 {excess:g} kWh",
                  f"above the {limit:.0f} W base-load limit for {record_minutes(worst[1] - worst[0]):g} min "
                  f"after hours ({j.spans([worst])}); {above:g} min and about {excess:g} kWh above it that day")
    elif status is ItemStatus.MANUAL:
        detail = missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段高于 {limit:.0f} W 共 {above:g} 分钟，最长一次不足 {duration_min:g} 分钟",
                  f"above {limit:.0f} W for {above:g} min after hours, none of it {duration_min:g} min long")
    else:
        detail = f"闭园时段未超过 {limit:.0f} W", f"never above {limit:.0f} W after hours"
    return record_item(item_id, Category.POWER, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})

def _powers(j: Judge, d: Device, lo: int, hi: int) -> list[tuple[int, float]]:
    watts = Power()
    return [(s.ts_ms, got) for s in j.samples(d.id, ("energy_kwh", "power_w"), lo, hi)
            if (got := watts(s)) is not None]


LOAD_AFTER_HOURS: RuleSpec[LoadAfterHours] = RuleSpec(LoadAfterHoursRule, LoadAfterHours,
    "闭园后负荷偏高", "Load after hours", _CIRCUIT, judge=power)
RULES = (
    LOAD_AFTER_HOURS,
    RuleSpec(LightsOutRule, LightsOut, "熄灯后用电", "Power after lights-out", _CIRCUIT,
             room_types=frozenset({"dorm"})),
    RuleSpec(HighPowerRule, HighPower, "大功率电器", "High-power appliance", _CIRCUIT,
             room_types=frozenset({"dorm", "classroom"})),
)
