"""Water rules: a leak while the school is closed (跑水漏水) and a tap left running in the day
(长流水), both from a meter's flow (its `flow_lpm` where it reports one, else the volume's
change); and water seen by a leak sensor (漏水报警)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import time
from typing import TYPE_CHECKING, Annotated, TypeVar

from pydantic import Field

from devices.base import HOURS, MINUTES, Label, Sample
from gateway.alerting.severity import Severity
from gateway.alerting.trade import Trade
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
    WaterFacts,
)
from gateway.reports.safety_series import clip, gaps, held, runs, total_ms, where
from gateway.rules.base import Context, Finding, Rule, RuleSpec, minutes, with_metric
from gateway.rules.params import LITRES_PER_MIN, RuleParams, SeverityLevel
from gateway.storage.sqlite import increase

if TYPE_CHECKING:
    from gateway.site import Device


class FlowParams(RuleParams):
    flow_threshold_lpm: Annotated[float, Label(
        "流量超过多少算在用水", "Flow above this counts as flowing", *LITRES_PER_MIN,
    )] = Field(0, ge=0, description="flow above this counts as flowing")


class WaterLeak(FlowParams):
    """跑水漏水: water flowing in every interval while the building is closed, or a night
    minimum flow above a threshold."""

    severity: SeverityLevel = Severity.MAJOR
    continuous_min: Annotated[float, Label(
        "关门时段连续用水多久算跑水", "Leak when water flows while closed for", *MINUTES,
    )] = Field(60, gt=0)
    night_start: Annotated[time, Label("夜间查最小流量的时段开始", "Night minimum flow checked from")] = time(1, 0)
    night_end: Annotated[time, Label("夜间查最小流量的时段结束", "Night minimum flow checked until")] = time(4, 0)
    night_min_flow_lpm: Annotated[float, Label(
        "夜间最小流量超过多少算漏水", "Leak when the night's minimum flow is above", *LITRES_PER_MIN,
    )] = Field(0.5, ge=0)


class RunningTap(FlowParams):
    """长流水: water flowing without a break for hours while the building is open."""

    continuous_h: Annotated[float, Label(
        "开放时段连续用水多久算长流水", "Running tap when water flows without a break for", *HOURS,
    )] = Field(2, gt=0)


class LeakDetected(RuleParams):
    """漏水报警: a leak sensor reports water, at any hour."""

    severity: SeverityLevel = Severity.MAJOR



class Flow:
    """Flow in L/min from a water meter's reading: its own flow, or the volume's rate. The
    rules and the safety record (gateway/reports) judge flow by this one definition."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def __call__(self, sample: Sample) -> tuple[float, float] | None:
        """(flow L/min, volume m³), or None for the first reading without a flow."""
        volume = sample.values.get("volume_m3")
        if volume is None:
            return None
        last, self._last = self._last, (sample.ts_ms, volume)
        flow = sample.values.get("flow_lpm")
        if flow is not None:
            return flow, volume
        if last is None or sample.ts_ms <= last[0] or volume < last[1]:
            return None
        return (volume - last[1]) * 1000 / ((sample.ts_ms - last[0]) / 60_000), volume


F = TypeVar("F", bound=FlowParams)


class LeakLoss:
    """A leak's loss, one definition for the alert, the daily record and the energy report
    (docs/alerts.md), for a run of flow from the last reading before the flow was seen to the
    newest one: while the building is closed, the volume the meter counted above the rule's
    threshold flow; while it is open, only the run's floor, its lowest flow (the flow of a
    reading, `Flow`), over that time: a tap left running (or a leak that runs on into the day)
    is the flow that never stopped, not the building's normal use on top of it."""

    def __init__(self, since_ms: int, before: tuple[int, float], threshold_lpm: float,
                 water_yuan_per_m3: float) -> None:
        self.since_ms = since_ms  # the first reading that showed the flow
        self._last_ms, self._last_m3 = before
        self._threshold_m3_per_ms = threshold_lpm / 1000 / 60_000
        self._price = water_yuan_per_m3
        self._closed_m3 = 0.0
        self._open_m3 = 0.0
        self._open_ms = 0
        self._floor: float | None = None  # m³ per ms

    def add(self, ts_ms: int, volume_m3: float, flow_lpm: float, building_open: bool) -> None:
        """A reading at `ts_ms` with its flow, the building open or closed then."""
        if ts_ms <= self._last_ms:
            return
        counted, span = increase(self._last_m3, volume_m3), ts_ms - self._last_ms
        self._last_ms, self._last_m3 = ts_ms, volume_m3
        rate = flow_lpm / 1000 / 60_000
        self._floor = rate if self._floor is None else min(self._floor, rate)
        if building_open:
            self._open_m3 += counted
            self._open_ms += span
        else:
            self._closed_m3 += max(0.0, counted - self._threshold_m3_per_ms * span)

    @property
    def until_ms(self) -> int:
        return self._last_ms

    @property
    def loss_m3(self) -> float:
        return self._closed_m3 + min(self._open_m3, (self._floor or 0.0) * self._open_ms)

    def facts(self) -> dict[str, float | str]:
        lost = self.loss_m3
        hours = max(1e-9, (self._last_ms - self.since_ms) / 3_600_000)
        return {
            "since_ms": self.since_ms,
            "minutes": minutes(self._last_ms - self.since_ms),
            "loss_m3": round(lost, 3),
            "rate_m3_per_h": round(lost / hours, 3),
            "cost_yuan": round(lost * self._price, 2),
        }


def replayed_loss(samples: Sequence[Sample], span: tuple[int, int], threshold_lpm: float, water_yuan_per_m3: float,
                  building_open: Callable[[int], bool]) -> LeakLoss | None:
    """The loss of a run of flow over `span` (its first flowing reading to the first reading
    without flow) from stored readings, counted from the last one before the span, or from
    the span's first where the meter had none before (as the rule counts); None without any."""
    lo, hi = span
    flow = Flow()
    readings = [(s.ts_ms, s.values["volume_m3"], got[0]) for s in samples
                if s.ts_ms <= hi and (got := flow(s)) is not None]
    volumes = [(s.ts_ms, s.values["volume_m3"]) for s in samples if s.ts_ms <= hi and "volume_m3" in s.values]
    start = [v for v in volumes if v[0] < lo][-1:] or volumes[:1]
    if not start:
        return None
    loss = LeakLoss(lo, start[0], threshold_lpm, water_yuan_per_m3)
    for ts, volume, lpm in readings:
        if ts >= lo:
            loss.add(ts, volume, lpm, building_open(ts))
    return loss


class _FlowRule(Rule[F]):
    """A rule on runs of uninterrupted flow, each with its loss so far."""

    evidence = "flow_lpm"

    def __init__(self, ctx: Context, params: F) -> None:
        super().__init__(ctx, params)
        self._flow = Flow()
        self._before: tuple[int, float] | None = None  # the newest reading's time and volume
        self._previous: tuple[int, float] | None = None  # and the one before it
        self._run: LeakLoss | None = None

    def _reading(self, sample: Sample) -> tuple[float, float, bool] | None:
        """(flow L/min, volume m³, flowing), or None for a reading that cannot tell. The run
        under way counts this reading, the one that ends it included."""
        got = self._flow(sample)
        volume = sample.values.get("volume_m3")
        if volume is not None:
            self._previous, self._before = self._before, (sample.ts_ms, volume)
        if got is None or volume is None:
            return None
        flow, _ = got
        if self._run is not None:
            self._run.add(sample.ts_ms, volume, flow, self.ctx.is_open(sample.ts_ms))
        return flow, volume, flow > self.params.flow_threshold_lpm

    def _start(self, ts: int, volume: float, flow: float) -> LeakLoss:
        """A run that begins at this reading: its loss counts from the reading before."""
        run = LeakLoss(ts, self._previous or (ts, volume), self.params.flow_threshold_lpm,
                       self.ctx.tariffs.water_yuan_per_m3)
        run.add(ts, volume, flow, self.ctx.is_open(ts))
        return run


class WaterLeakRule(_FlowRule[WaterLeak]):
    name = "water_leak"

    def __init__(self, ctx: Context, params: WaterLeak) -> None:
        super().__init__(ctx, params)
        self._night_min: float | None = None  # lowest flow of tonight's window so far
        self._night_end_ms: int | None = None

    def on_sample(self, sample: Sample) -> Finding | None:
        reading = self._reading(sample)
        if reading is None:
            return None
        flow, volume, flowing = reading
        ts = sample.ts_ms
        night = self._night(ts, flow)
        if not flowing:
            run, self._run = self._run, None
            if self.raised and night is None:
                return self._cleared(run, ts)
            return night
        if night is not None:
            return night
        if self.raised:
            # until the flow stops (in the day a building's own use hides a leak): its figures so far
            return None if self._run is None else self._finding(self._run, ts, "update")
        if self.ctx.is_open(ts):
            self._run = None  # the closed hours are over before the run was long enough
            return night
        if self._run is None:
            self._run = self._start(ts, volume, flow)
        if ts - self._run.since_ms >= self.params.continuous_min * 60_000:
            return self._finding(self._run, ts, "raise")
        return night

    def _night(self, ts: int, flow: float) -> Finding | None:
        """The night minimum: the lowest flow in the night window, judged when it ends. Its
        loss is that flow over the window: no more is known of a building open at night."""
        p = self.params
        day = self.ctx.calendar.local_date(ts)
        start_ms, _ = self.ctx.calendar.day_bounds_ms(day)
        lo = start_ms + (p.night_start.hour * 60 + p.night_start.minute) * 60_000
        hi = start_ms + (p.night_end.hour * 60 + p.night_end.minute) * 60_000
        if lo <= ts < hi:
            self._night_min = flow if self._night_min is None else min(self._night_min, flow)
            self._night_end_ms = hi
            return None
        if self._night_end_ms is not None and ts >= self._night_end_ms:
            lowest, self._night_min, self._night_end_ms = self._night_min, None, None
            # Not while a run is under way while closed: the continuous check has it, with its loss.
            if lowest is not None and lowest > p.night_min_flow_lpm and not self.raised and self._run is None:
                return self.finding(
                    True, lo, ts,
                    (f"{self.ctx.name} 夜间最小流量 {lowest:.1f} L/min", f"{self.ctx.name}: night minimum flow "
                     f"{lowest:.1f} L/min"),
                    (f"{self.ctx.stamp(lo)}–{self.ctx.clock(hi)} 流量从未低于 {lowest:.1f} L/min, 疑似漏水",
                     f"flow never fell below {lowest:.1f} L/min between {self.ctx.stamp(lo)} and "
                     f"{self.ctx.clock(hi)}: a leak is likely"),
                    {"since_ms": lo, "night_min_flow_lpm": round(lowest, 2),
                     "loss_m3": round(lowest * (hi - lo) / 60_000 / 1000, 3),
                     "cost_yuan": round(lowest * (hi - lo) / 60_000 / 1000 * self.ctx.tariffs.water_yuan_per_m3, 2)},
                )
        return None

    def _finding(self, run: LeakLoss, ts: int, what: str) -> Finding:
        facts = run.facts()
        n, since = facts["minutes"], self.ctx.stamp(run.since_ms)
        title = (f"{self.ctx.name} 闭园时段持续用水 {n} 分钟",
                 f"{self.ctx.name}: water running for {n} min while closed")
        detail = (f"自 {since} 起每个周期都有流量, 已流失 {facts['loss_m3']} m³ (约 ¥{facts['cost_yuan']}), "
                  f"约 {facts['rate_m3_per_h']} m³/h: 疑似跑水漏水",
                  f"flow in every interval since {since}: {facts['loss_m3']} m³ lost (≈ ¥{facts['cost_yuan']}), "
                  f"about {facts['rate_m3_per_h']} m³/h: a leak or a running tap")
        if what == "update":
            return self.update(run.since_ms, ts, title, detail, facts)
        return self.finding(True, run.since_ms, ts, title, detail, facts | {"why": "continuous"})

    def _cleared(self, run: LeakLoss | None, ts: int) -> Finding:
        """The flow stopped: the leak's final figures (none known for a run begun before a
        restart, or for the night minimum's)."""
        if run is None:
            return self.clear(ts)
        facts = run.facts()
        span = f"{self.ctx.stamp(run.since_ms)}–{self.ctx.clock(ts)}"
        return self.clear(
            ts, facts,
            (f"{span} 持续流水 {facts['minutes']} 分钟后停止, 共流失 {facts['loss_m3']} m³ (约 ¥{facts['cost_yuan']})",
             f"water ran {span}, {facts['minutes']} min, then stopped: {facts['loss_m3']} m³ lost "
             f"(≈ ¥{facts['cost_yuan']})"),
            (f"{self.ctx.name} 跑水 {facts['minutes']} 分钟, 流失 {facts['loss_m3']} m³",
             f"{self.ctx.name}: water ran {facts['minutes']} min, {facts['loss_m3']} m³ lost"),
        )


class RunningTapRule(_FlowRule[RunningTap]):
    name = "running_tap"

    def on_sample(self, sample: Sample) -> Finding | None:
        reading = self._reading(sample)
        if reading is None:
            return None
        flow, volume, flowing = reading
        ts = sample.ts_ms
        if not flowing:
            run, self._run = self._run, None
            return self._finding(run, ts, "clear") if self.raised else None
        if self._run is None:
            if not self.ctx.is_open(ts):
                return None  # closed hours are the leak rule's
            self._run = self._start(ts, volume, flow)
        if self.raised:
            return self._finding(self._run, ts, "update")
        if ts - self._run.since_ms < self.params.continuous_h * 3_600_000:
            return None
        return self._finding(self._run, ts, "raise")

    def _finding(self, run: LeakLoss | None, ts: int, what: str) -> Finding:
        if run is None:  # a run begun before a restart: nothing known of it
            return self.clear(ts)
        facts = run.facts()
        hours = round((run.until_ms - run.since_ms) / 3_600_000, 1)
        since = self.ctx.stamp(run.since_ms)
        title = (f"{self.ctx.name} 长流水 {hours} 小时",
                 f"{self.ctx.name}: water running without a break for {hours} h")
        detail = (f"自 {since} 起不间断用水, 共 {facts['loss_m3']} m³ (约 ¥{facts['cost_yuan']})",
                  f"water ran without a break since {since}: {facts['loss_m3']} m³ (≈ ¥{facts['cost_yuan']})")
        if what == "clear":
            span = f"{since}–{self.ctx.clock(ts)}"
            return self.clear(ts, facts, (f"{span} 不间断用水 {hours} 小时后停止, 共 {facts['loss_m3']} m³ "
                                          f"(约 ¥{facts['cost_yuan']})",
                                          f"water ran without a break {span}, {hours} h, then stopped: "
                                          f"{facts['loss_m3']} m³ (≈ ¥{facts['cost_yuan']})"), title)
        if what == "update":
            return self.update(run.since_ms, ts, title, detail, facts)
        return self.finding(True, run.since_ms, ts, title, detail, facts)


class LeakDetectedRule(Rule[LeakDetected]):
    """Raised when the sensor turns wet, cleared when it is dry again: the sensor itself
    judges, so there is no threshold or delay to wait for."""

    name = "leak_detected"
    evidence = "leak"

    def __init__(self, ctx: Context, params: LeakDetected) -> None:
        super().__init__(ctx, params)
        self._since: int | None = None  # wet since

    def on_sample(self, sample: Sample) -> Finding | None:
        leak = sample.values.get("leak")
        if leak is None:
            return None
        ts = sample.ts_ms
        if not leak:
            wet, self._since = self._since, None
            if not self.raised:
                return None
            if wet is None:  # raised before a restart
                return self.clear(ts, {"dry_ms": ts})
            n, span = minutes(ts - wet), f"{self.ctx.stamp(wet)}–{self.ctx.clock(ts)}"
            return self.clear(ts, {"since_ms": wet, "minutes": n, "dry_ms": ts},
                              (f"{span} 地面有水 {n} 分钟, 已干", f"water on the floor {span}, {n} min: dry again"),
                              (f"{self.ctx.name} 检测到漏水 {n} 分钟, 已干",
                               f"{self.ctx.name}: water detected for {n} min, dry again"))
        if self._since is None:
            self._since = ts
        name, at, n = self.ctx.name, self.ctx.stamp(self._since), minutes(ts - self._since)
        title = (f"{name} 检测到漏水", f"{name}: water detected")
        detail = (f"{at} 起检测到地面有水{f', 已 {n} 分钟' if n else ''}, 请立即到场查看并关闭阀门",
                  f"water on the floor since {at}{f', {n} min so far' if n else ''}: go and look, and close the valve")
        facts: dict[str, float | str] = {"since_ms": self._since, "minutes": n}
        if self.raised:
            return self.update(self._since, ts, title, detail, facts)
        return self.finding(True, self._since, ts, title, detail, facts)

# ------------------------------------------------------------ the daily record's judge


def water(j: Judge, d: Device) -> Item:
    """No running water at night: fails on flow above the leak rule's threshold in every
    reading of its `continuous_min` or longer while the building is closed; such a run's loss
    is the leak's (`LeakLoss`), as its alert and the energy report give it."""
    params = WATER_LEAK.params_for(d)
    item_id = f"water:{d.id}"
    if not params.enabled:
        return disabled(item_id, Category.WATER, d, j.site, WATER_LEAK)
    run_ms = round(params.continuous_min * MIN_MS)
    c = after_hours(j, d, lambda lo, hi: _flows(j, d, lo, hi), run_ms, lambda lpm: lpm > params.flow_threshold_lpm)
    failed = [r for r in c.episodes if r[1] - r[0] >= run_ms]
    flowing = record_minutes(total_ms([(h.start, h.end) for h in c.inside]))
    losses = [loss for r in failed if (loss := _loss(j, d, params, r)) is not None]
    total = sum(x.loss_m3 for x in losses)
    lost, cost = round(total, 3), round(total * j.site.tariffs.water_yuan_per_m3, 2)
    longest = longest_of(c.episodes)
    facts = WaterFacts(threshold_lpm=params.flow_threshold_lpm, continuous_min=params.continuous_min,
                       minutes_flowing=flowing, loss_m3=lost, cost_yuan=cost,
                       longest=None if longest is None else j.span(longest))
    status = verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = longest_of(failed)
        assert worst is not None
        detail = (f"闭园时段持续流水 {record_minutes(worst[1] - worst[0]):g} 分钟（{j.spans([worst], '、')}），达到 "
                  f"{params.continuous_min:g} 分钟的跑水判定，流失约 {lost:g} m³（约 ¥{cost:g}）；"
                  f"当日闭园时段共流水 {flowing:g} 分钟",
                  f"water ran for {record_minutes(worst[1] - worst[0]):g} min after hours ({j.spans([worst])}), "
                  f"at least the {params.continuous_min:g} min of a leak: about {lost:g} m³ lost (≈ ¥{cost:g}); "
                  f"{flowing:g} min of flow after hours that day")
    elif status is ItemStatus.MANUAL:
        detail = missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段流水 {flowing:g} 分钟，最长一次不足 {params.continuous_min:g} 分钟",
                  f"{flowing:g} min of flow after hours, none of it {params.continuous_min:g} min without a break")
    else:
        detail = "闭园时段无流水", "no flow after hours"
    return record_item(item_id, Category.WATER, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})


def _loss(j: Judge, d: Device, params: WaterLeak, run: tuple[int, int]) -> LeakLoss | None:
    """A run's loss from the stored readings, whole, by the leak's one definition."""
    spans = j.day.open_spans[j.site.building_of(d.room).id]
    lo, hi = whole_run(j, d, run, lambda a, b: _flows(j, d, a, b), lambda lpm: lpm > params.flow_threshold_lpm)
    samples = j.samples(d.id, ("volume_m3", "flow_lpm"), lo - j.hold_ms(d), hi + 1)
    return replayed_loss(samples, (lo, hi), params.flow_threshold_lpm, j.site.tariffs.water_yuan_per_m3,
                         lambda ts: any(a <= ts < b for a, b in spans))


def leak(j: Judge, d: Device) -> Item:
    """No water on the floor: fails when the leak sensor was wet at any time of the day, open
    or closed, as its leak alert would."""
    hold = j.hold_ms(d)
    lo, hi = j.judged
    points = j.points(d.id, "leak", lo - hold, hi)
    today = clip(held(points, lo, hi, hold), [j.judged])
    wet = runs(where(today, bool))
    holes = gaps(today, [j.judged])
    readings = sum(1 for ts, _ in points if lo <= ts < hi)
    status = verdict(bool(wet), holes, readings)
    if status is ItemStatus.FAIL:
        wet_min = record_minutes(total_ms(wet))
        detail = (f"检测到漏水（{j.spans(wet, '、')}），共 {wet_min:g} 分钟，请检查并处理",
                  f"water detected ({j.spans(wet)}), {wet_min:g} min in all: check and deal with it")
    elif status is ItemStatus.MANUAL:
        detail = missing(j, holes, readings)
    else:
        detail = "全天未检测到漏水", "no water detected all day"
    return record_item(f"leak:{d.id}", Category.WATER, d, j.site, status, detail).model_copy(
        update={"gaps": [j.span(g) for g in holes]})

def _flows(j: Judge, d: Device, lo: int, hi: int) -> list[tuple[int, float]]:
    flow = Flow()
    return [(s.ts_ms, got[0]) for s in j.samples(d.id, ("volume_m3", "flow_lpm"), lo, hi)
            if (got := flow(s)) is not None]


WATER_LEAK: RuleSpec[WaterLeak] = RuleSpec(WaterLeakRule, WaterLeak,
    "跑水漏水", "Water leak", with_metric("volume_m3"), trade=Trade.WATER, judge=water)
RUNNING_TAP: RuleSpec[RunningTap] = RuleSpec(RunningTapRule, RunningTap,
    "长流水", "Running tap", with_metric("volume_m3"), trade=Trade.WATER)
LEAK_DETECTED: RuleSpec[LeakDetected] = RuleSpec(LeakDetectedRule, LeakDetected,
    "漏水报警", "Leak detected", with_metric("leak"), trade=Trade.WATER, judge=leak)
RULES = (
    WATER_LEAK,
    RUNNING_TAP,
    LEAK_DETECTED,
)
