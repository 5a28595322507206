"""Electricity rules: load left on while the building is closed (长明灯), dorm circuits after
lights-out (拉闸断电), and a step rise that is a high-power appliance (违规用电). Power is the
meter's `power_w` where it reports one, else the energy's rate of change."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from datetime import time
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

from pydantic import Field

from devices.base import MINUTES, Label, Sample
from gateway.alerting.severity import Severity
from gateway.clock import from_ms
from gateway.reports.judging import (
    MIN_MS,
    Judge,
    after_hours,
    disabled,
    longest_of,
    missing,
    record_item,
    verdict,
    whole_run,
)
from gateway.reports.judging import minutes as record_minutes
from gateway.reports.safety_model import (
    Category,
    Item,
    ItemStatus,
    PowerFacts,
)
from gateway.reports.safety_series import total_ms
from gateway.rules.base import Context, Finding, Rule, RuleSpec, minutes, with_metric
from gateway.rules.params import PERCENT, WATTS, RuleParams, SeverityLevel
from gateway.storage.sqlite import increase

if TYPE_CHECKING:
    from gateway.site import Device


class LoadAfterHours(RuleParams):
    """长明灯: load above the base load while the building is closed."""

    base_load_w: Annotated[float | None, Label(
        "关门时的基础用电（不填则按最近几晚自动学习）",
        "Base load while closed (unset: learned from recent nights)",
        *WATTS,
    )] = Field(None, ge=0, description="default: learned from recent closed nights")
    learn_nights: Annotated[int, Label(
        "用最近几晚学习基础用电", "Nights the base load is learned from", "晚", "nights",
    )] = Field(7, ge=1)
    margin_pct: Annotated[float, Label(
        "超出基础用电多少才算", "Counted above the base load by", *PERCENT,
    )] = Field(20, ge=0)
    min_excess_w: Annotated[float, Label(
        "至少多用多少功率才算", "Counted only when the excess is at least", *WATTS,
    )] = Field(300, ge=0)
    duration_min: Annotated[float, Label("持续多久才报警", "Alarm after lasting", *MINUTES)] = Field(30, gt=0)


class LightsOut(RuleParams):
    """拉闸断电: a dorm circuit drawing power after lights-out."""

    severity: SeverityLevel = Severity.MAJOR
    start: Annotated[time, Label("熄灯时间", "Lights-out from")] = time(22, 0)
    end: Annotated[time, Label("熄灯结束时间", "Lights-out until")] = time(6, 0)
    max_w: Annotated[float, Label(
        "熄灯后允许的最大功率", "Most power allowed after lights-out", *WATTS,
    )] = Field(300, ge=0)
    duration_min: Annotated[float, Label("持续多久才报警", "Alarm after lasting", *MINUTES)] = Field(10, gt=0)


class HighPower(RuleParams):
    """大功率用电器: a step rise in power on a dorm or classroom circuit."""

    severity: SeverityLevel = Severity.MAJOR
    step_w: Annotated[float, Label(
        "功率一下子升高多少算大功率电器", "A rise in power counted as a high-power appliance", *WATTS,
    )] = Field(1500, gt=0)



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


def power_words(watts: float) -> str:
    """A power as people read it, in the alerts and the reports alike: W below 1 kW ("850 W"),
    kW with one decimal above ("2.1 kW"), rounded half up as people round (a 2,050 W base
    reads 2.1 kW, where binary 2.05 would print 2.0)."""
    if abs(watts) < 1000:
        return f"{watts:,.0f} W"
    return f"{Decimal(repr(watts / 1000)).quantize(Decimal('0.1'), ROUND_HALF_UP):,} kW"


class Waste:
    """Load left on, one definition for the alert, the daily record and the energy report
    (docs/alerts.md): from the last reading before the load rose above the limit to the
    first reading after it fell (or the newest), the energy the meter counted less the base
    load over that time, each interval at the tariff of when it was drawn."""

    def __init__(self, since_ms: int, before: tuple[int, float], base_w: float,
                 prices: Sequence[tuple[str, float]], tz: ZoneInfo) -> None:
        self.since_ms = since_ms  # the first reading above the limit
        self.base_w = base_w
        self._last_ms, self._last_kwh = before
        self._prices = prices  # by local minute of the day (Tariffs.by_minute)
        self._tz = tz
        self.kwh = 0.0
        self.yuan = 0.0

    def add(self, ts_ms: int, energy_kwh: float) -> None:
        if ts_ms <= self._last_ms:
            return
        wasted = increase(self._last_kwh, energy_kwh) - self.base_w / 1000 * (ts_ms - self._last_ms) / 3_600_000
        local = from_ms(self._last_ms, self._tz)
        self.kwh += wasted
        self.yuan += wasted * self._prices[local.hour * 60 + local.minute][1]
        self._last_ms, self._last_kwh = ts_ms, energy_kwh

    @property
    def until_ms(self) -> int:
        return self._last_ms

    def facts(self) -> dict[str, float | str]:
        return {
            "since_ms": self.since_ms,
            "minutes": minutes(self._last_ms - self.since_ms),
            "base_w": round(self.base_w),
            "waste_kwh": round(max(0.0, self.kwh), 2),
            "cost_yuan": round(max(0.0, self.yuan), 2),
        }


def replayed_waste(samples: Sequence[Sample], span: tuple[int, int], base_w: float,
                   prices: Sequence[tuple[str, float]], tz: ZoneInfo) -> Waste | None:
    """The waste of a run of load left on over `span` (its first reading above the limit to
    the first one below) from stored readings, counted from the last one before the span, or
    from the span's first where the meter had none before (as the rule counts); None without
    any."""
    lo, hi = span
    counts = [(s.ts_ms, v) for s in samples if (v := s.values.get("energy_kwh")) is not None and s.ts_ms <= hi]
    start = [c for c in counts if c[0] < lo][-1:] or counts[:1]
    if not start:
        return None
    waste = Waste(lo, start[0], base_w, prices, tz)
    for ts, kwh in counts:
        if ts >= lo:
            waste.add(ts, kwh)
    return waste


class LoadAfterHoursRule(Rule[LoadAfterHours]):
    """The base load is configured, or the median of the last closed periods' medians; a
    period with an alert does not teach it."""

    name = "load_after_hours"
    evidence = "power_w"

    def __init__(self, ctx: Context, params: LoadAfterHours) -> None:
        super().__init__(ctx, params)
        self._power = Power()
        self._nights: deque[float] = deque(maxlen=params.learn_nights)
        self._tonight = _Thinned()
        self._tainted = False  # tonight had an alert: do not learn from it
        self._prices = ctx.tariffs.by_minute()
        self._counter: tuple[int, float] | None = None  # the newest reading's energy
        self._run: Waste | None = None

    def base_w(self) -> float | None:
        if self.params.base_load_w is not None:
            return self.params.base_load_w
        return statistics.median(self._nights) if self._nights else None

    def resume_base(self, base_w: float) -> None:
        """What was learned before a restart or a takeover (kept in the state store): the base
        load until the nights learned since outweigh it."""
        if not self._nights:
            self._nights.append(base_w)

    def limit_w(self) -> float | None:
        """Power above this, while closed, is load left on."""
        base = self.base_w()
        if base is None:
            return None
        return base + max(base * self.params.margin_pct / 100, self.params.min_excess_w)

    def on_sample(self, sample: Sample) -> Finding | None:
        power = self._power(sample)
        ts = sample.ts_ms
        before, energy = self._counter, sample.values.get("energy_kwh")
        if energy is not None:
            self._counter = (ts, energy)
            if self._run is not None:
                self._run.add(ts, energy)
        if power is None:
            return None
        if self.ctx.is_open(ts):
            if self._tonight.values and not self._tainted:
                self._nights.append(statistics.median(self._tonight.values))
            self._tonight, self._tainted = _Thinned(), False
            return self._end(ts)
        self._tonight.add(power)
        base, limit = self.base_w(), self.limit_w()
        if base is None or limit is None:
            return None
        if power <= limit:
            return self._end(ts)
        if self._run is None:
            self._run = Waste(ts, before or (ts, energy or 0.0), base, self._prices, self.ctx.tz)
            if energy is not None:
                self._run.add(ts, energy)
        if self.raised:
            return self._finding(self._run, power, "update")
        if ts - self._run.since_ms < self.params.duration_min * 60_000:
            return None
        self._tainted = True
        return self._finding(self._run, power, "raise")

    def _finding(self, run: Waste, power: float, what: str) -> Finding:
        facts = run.facts() | {"power_w": round(power)}
        name, since = self.ctx.name, self.ctx.stamp(run.since_ms)
        base, n = power_words(run.base_w), facts["minutes"]
        title = (f"{name} 闭园后负荷偏高 {power_words(power)}", f"{name}: {power_words(power)} drawn while closed")
        detail = (f"自 {since} 起高于基础负荷 {base} 约 {power_words(power - run.base_w)}, 已 {n} 分钟, "
                  f"浪费约 {facts['waste_kwh']} kWh (¥{facts['cost_yuan']}): 长明灯或电器未关",
                  f"{power_words(power - run.base_w)} above the base load of {base} since {since}, {n} min so far: "
                  f"about {facts['waste_kwh']} kWh (¥{facts['cost_yuan']}) wasted: lights or appliances left on")
        if what == "update":
            return self.update(run.since_ms, run.until_ms, title, detail, facts)
        return self.finding(True, run.since_ms, run.until_ms, title, detail, facts)

    def _end(self, ts: int) -> Finding | None:
        run, self._run = self._run, None
        if not self.raised:
            return None
        if run is None:  # raised before a restart: nothing known of its run
            return self.clear(ts)
        facts = run.facts()
        name, span = self.ctx.name, f"{self.ctx.stamp(run.since_ms)}–{self.ctx.clock(ts)}"
        return self.clear(
            ts, facts,
            (f"{span} 高于基础负荷 {power_words(run.base_w)} 共 {facts['minutes']} 分钟, "
             f"浪费约 {facts['waste_kwh']} kWh (¥{facts['cost_yuan']})",
             f"above the base load of {power_words(run.base_w)} {span}, {facts['minutes']} min: "
             f"about {facts['waste_kwh']} kWh (¥{facts['cost_yuan']}) wasted"),
            (f"{name} 闭园后负荷偏高 {facts['minutes']} 分钟, 浪费 {facts['waste_kwh']} kWh",
             f"{name}: load left on after hours for {facts['minutes']} min, {facts['waste_kwh']} kWh wasted"),
        )


def _in(start: time, end: time, now: time) -> bool:
    """Whether `now` is in [start, end), a span that may run past midnight."""
    return start <= now < end if start < end else now >= start or now < end


class LightsOutRule(Rule[LightsOut]):
    name = "lights_out"
    evidence = "power_w"

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
            since, self._since = self._since, None
            if not self.raised:
                return None
            if since is None:  # raised before a restart
                return self.clear(ts)
            n, span = minutes(ts - since), f"{self.ctx.stamp(since)}–{self.ctx.clock(ts)}"
            return self.clear(ts, {"since_ms": since, "minutes": n},
                              (f"熄灯后 {span} 持续高于 {power_words(p.max_w)} 共 {n} 分钟",
                               f"above {power_words(p.max_w)} after lights-out {span}, {n} min"),
                              (f"{self.ctx.name} 熄灯后用电 {n} 分钟",
                               f"{self.ctx.name}: {n} min of power after lights-out"))
        if self._since is None:
            self._since = ts
        if not self.raised and ts - self._since < p.duration_min * 60_000:
            return None
        name, n = self.ctx.name, minutes(ts - self._since)
        title = (f"{name} 熄灯后仍在用电 {power_words(power)}", f"{name}: {power_words(power)} after lights-out")
        detail = (f"熄灯 ({p.start:%H:%M}) 后自 {self.ctx.stamp(self._since)} 起持续高于 {power_words(p.max_w)}, "
                  f"已 {n} 分钟",
                  f"above {power_words(p.max_w)} since {self.ctx.stamp(self._since)}, after lights-out at "
                  f"{p.start:%H:%M}, {n} min so far")
        facts: dict[str, float | str] = {"since_ms": self._since, "power_w": round(power), "minutes": n}
        if self.raised:
            return self.update(self._since, ts, title, detail, facts)
        return self.finding(True, self._since, ts, title, detail, facts)


class HighPowerRule(Rule[HighPower]):
    name = "high_power"
    evidence = "power_w"

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
            (f"{name} 疑似大功率用电器 (+{power_words(power - prev)})",
             f"{name}: high-power appliance (+{power_words(power - prev)})"),
            (f"{self.ctx.stamp(ts)} 功率从 {power_words(prev)} 跃升到 {power_words(power)}, 请检查是否违规使用电器",
             f"power jumped from {power_words(prev)} to {power_words(power)} at {self.ctx.stamp(ts)}: "
             "check for a forbidden appliance"),
            {"since_ms": ts, "step_w": round(power - prev), "before_w": round(prev), "power_w": round(power)},
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
    wastes = [w for r in failed if base is not None and (w := _waste(j, d, base, limit, r)) is not None]
    kwh, yuan = round(sum(w.kwh for w in wastes), 2), round(sum(w.yuan for w in wastes), 2)
    longest = longest_of(c.episodes)
    facts = PowerFacts(base_w=None if base is None else round(base), limit_w=round(limit), duration_min=duration_min,
                       minutes_above=above, waste_kwh=kwh, waste_yuan=yuan,
                       longest=None if longest is None else j.span(longest))
    status = verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = longest_of(failed)
        assert worst is not None
        detail = (f"闭园时段高于基础负荷上限 {power_words(limit)}，连续 {record_minutes(worst[1] - worst[0]):g} 分钟"
                  f"（{j.spans([worst], '、')}），浪费约 {kwh:g} kWh（¥{yuan:g}）；"
                  f"当日闭园时段共 {above:g} 分钟高于上限",
                  f"above the {power_words(limit)} base-load limit for {record_minutes(worst[1] - worst[0]):g} min "
                  f"after hours ({j.spans([worst])}): about {kwh:g} kWh (¥{yuan:g}) wasted; {above:g} min above "
                  "the limit that day")
    elif status is ItemStatus.MANUAL:
        detail = missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段高于 {power_words(limit)} 共 {above:g} 分钟，最长一次不足 {duration_min:g} 分钟",
                  f"above {power_words(limit)} for {above:g} min after hours, none of it {duration_min:g} min long")
    else:
        detail = f"闭园时段未超过 {power_words(limit)}", f"never above {power_words(limit)} after hours"
    return record_item(item_id, Category.POWER, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})


def _waste(j: Judge, d: Device, base_w: float, limit_w: float, run: tuple[int, int]) -> Waste | None:
    """A run's waste from the stored readings, whole, by the one definition of load left on."""
    lo, hi = whole_run(j, d, run, lambda a, b: _powers(j, d, a, b), lambda watts: watts > limit_w)
    samples = j.samples(d.id, ("energy_kwh",), lo - j.hold_ms(d), hi + 1)
    return replayed_waste(samples, (lo, hi), base_w, j.site.tariffs.by_minute(), j.tz)


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
