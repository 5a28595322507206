"""留样冰箱: the retained food samples' fridge out of its range for longer than its delay
(door openings warm it briefly and must not alarm), cleared with hysteresis. A silent
fridge is the device-offline rule's, with its own severity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from devices import sample_fridge
from devices.base import CELSIUS, Label, Sample
from gateway.alerting.severity import Severity
from gateway.reports.judging import (
    MIN_MS,
    Judge,
    missing,
    record_item,
    verdict,
)
from gateway.reports.judging import minutes as record_minutes
from gateway.reports.safety_model import (
    Category,
    FridgeFacts,
    Item,
    ItemStatus,
)
from gateway.reports.safety_series import clip, gaps, held, mean, overlaps, runs, total_ms, where
from gateway.rules.base import Context, Finding, Rule, RuleSpec, kind_named, minutes
from gateway.rules.params import RuleParams, SeverityLevel

if TYPE_CHECKING:
    from gateway.site import Device


class FridgeTemperature(RuleParams):
    """留样冰箱 out of its range (the kind's min_c/max_c) for longer than its alarm delay."""

    severity: SeverityLevel = Severity.CRITICAL
    hysteresis_c: Annotated[float, Label(
        "回到范围内多少度才算恢复", "Cleared when back inside the range by", *CELSIUS,
    )] = Field(0.5, ge=0, description="back inside the range by this much to clear")



class FridgeTemperatureRule(Rule[FridgeTemperature]):
    name = "fridge_temperature"
    evidence = "temperature_c"

    def __init__(self, ctx: Context, params: FridgeTemperature) -> None:
        super().__init__(ctx, params)
        settings = ctx.device.kind_settings()
        assert isinstance(settings, sample_fridge.Settings)
        self._range = settings
        self._since: int | None = None  # outside the range since
        self._back: int | None = None  # back inside the range since (not yet by the hysteresis)
        self._worst = 0.0

    def on_sample(self, sample: Sample) -> Finding | None:
        celsius = sample.values.get("temperature_c")
        if celsius is None:
            return None
        ts, r, h = sample.ts_ms, self._range, self.params.hysteresis_c
        inside = r.min_c <= celsius <= r.max_c
        if self.raised:
            if self._since is not None:
                self._worst = max(self._worst, celsius) if self._worst > r.max_c else min(self._worst, celsius)
                self._back = (self._back or ts) if inside else None
            if r.min_c + h <= celsius <= r.max_c - h:
                return self._cleared(ts)
            return None if self._since is None else self._finding(celsius, ts, update=True)
        if inside:
            self._since = None
            return None
        if self._since is None:
            self._since, self._worst, self._back = ts, celsius, None
        self._worst = max(self._worst, celsius) if celsius > r.max_c else min(self._worst, celsius)
        if ts - self._since < r.alarm_delay_min * 60_000:
            return None
        return self._finding(celsius, ts, update=False)

    def _finding(self, celsius: float, ts: int, *, update: bool) -> Finding:
        """Out of range so far: minutes from the first reading outside to this one (or to the
        first back inside, where it is on its way back)."""
        assert self._since is not None
        r = self._range
        n = minutes((self._back or ts) - self._since)
        name, since = self.ctx.name, self.ctx.stamp(self._since)
        side_zh, side_en = ("过高", "too warm") if self._worst > r.max_c else ("过低", "too cold")
        title = f"{name} 温度{side_zh}: {celsius:.1f} °C", f"{name} {side_en}: {celsius:.1f} °C"
        detail = (f"自 {since} 起超出 {r.min_c:g}–{r.max_c:g} °C 已 {n} 分钟 (极值 {self._worst:.1f} °C), "
                  "请检查留样是否安全",
                  f"outside {r.min_c:g}–{r.max_c:g} °C since {since}, {n} min (extreme {self._worst:.1f} °C): "
                  "check the retained samples")
        facts: dict[str, float | str] = {"since_ms": self._since, "temperature_c": celsius, "worst_c": self._worst,
                                         "minutes": n}
        if update:
            return self.update(self._since, ts, title, detail, facts)
        return self.finding(True, self._since, ts, title, detail, facts)

    def _cleared(self, ts: int) -> Finding:
        """Back inside the range by the hysteresis: the excursion's final figures, its minutes
        out of range up to the first reading back inside it."""
        began, self._since = self._since, None
        if began is None:  # raised before a restart: nothing known of the excursion
            return self.clear(ts)
        r, back = self._range, self._back or ts
        n, span = minutes(back - began), f"{self.ctx.stamp(began)}–{self.ctx.clock(back)}"
        side_zh, side_en = ("过高", "too warm") if self._worst > r.max_c else ("过低", "too cold")
        return self.clear(
            ts, {"since_ms": began, "worst_c": self._worst, "minutes": n, "back_ms": back},
            (f"{span} 超出 {r.min_c:g}–{r.max_c:g} °C 共 {n} 分钟 (极值 {self._worst:.1f} °C), 已恢复正常",
             f"outside {r.min_c:g}–{r.max_c:g} °C {span}, {n} min (extreme {self._worst:.1f} °C), back in range"),
            (f"{self.ctx.name} 温度{side_zh} {n} 分钟, 已恢复",
             f"{self.ctx.name} was {side_en} for {n} min, back in range"),
        )

# ------------------------------------------------------------ the daily record's judge


def fridge(j: Judge, d: Device) -> Item:
    """In range all day: fails on an excursion that lasted the fridge's alarm delay or longer;
    shorter ones (the door opened for the samples) are counted and named, not failed."""
    s = d.kind_settings()
    assert isinstance(s, sample_fridge.Settings)
    delay_ms = round(s.alarm_delay_min * MIN_MS)
    hold = j.hold_ms(d)
    lo, hi = j.day.start_ms - delay_ms, min(j.day.end_ms + delay_ms, j.day.as_of_ms)
    points = j.points(d.id, "temperature_c", lo - hold, hi)
    stretches = held(points, lo, hi, hold)
    today = clip(stretches, [j.judged])

    def out(celsius: float) -> bool:
        return celsius < s.min_c or celsius > s.max_c

    excursions = [r for r in runs(where(stretches, out)) if overlaps(r, [j.judged])]
    failed = [r for r in excursions if r[1] - r[0] >= delay_ms]
    holes = gaps(today, [j.judged])
    readings = [v for ts, v in points if j.judged[0] <= ts < j.judged[1]]
    longest = max(excursions, key=lambda r: r[1] - r[0], default=None)
    out_min = record_minutes(total_ms([(h.start, h.end) for h in where(today, out)]))
    facts = FridgeFacts(
        range_min_c=s.min_c, range_max_c=s.max_c, alarm_delay_min=s.alarm_delay_min,
        lowest_c=min(readings, default=None), highest_c=max(readings, default=None),
        mean_c=None if (m := mean(today)) is None else round(m, 1), minutes_out=out_min,
        excursions=len(excursions), short_excursions=len(excursions) - len(failed),
        longest=None if longest is None else j.span(longest),
    )
    status = verdict(bool(failed), holes, len(readings))
    band = f"{s.min_c:g}–{s.max_c:g} °C"
    if status is ItemStatus.FAIL:
        worst = max(failed, key=lambda r: r[1] - r[0])
        detail = (f"{j.spans([worst], '、')} 超出 {band} {record_minutes(worst[1] - worst[0]):g} 分钟，达到报警延时 "
                  f"{s.alarm_delay_min:g} 分钟（全天最低 {facts.lowest_c} °C，最高 {facts.highest_c} °C），请检查留样",
                  f"outside {band} for {record_minutes(worst[1] - worst[0]):g} min ({j.spans([worst])}), at least the "
                  f"{s.alarm_delay_min:g}-min alarm delay (lowest {facts.lowest_c} °C, highest {facts.highest_c} °C): "
                  "check the retained samples")
    elif status is ItemStatus.MANUAL:
        detail = missing(j, holes, len(readings))
    else:
        detail = (f"全天在 {band} 内（最低 {facts.lowest_c} °C，最高 {facts.highest_c} °C，平均 {facts.mean_c} °C）",
                  f"within {band} all day (lowest {facts.lowest_c}, highest {facts.highest_c}, "
                  f"mean {facts.mean_c} °C)")
        if excursions:
            detail = (detail[0] + f"；开门等短时超出 {len(excursions)} 次，共 {out_min:g} 分钟，均短于 "
                      f"{s.alarm_delay_min:g} 分钟的报警延时，不算不合格",
                      detail[1] + f"; {len(excursions)} short excursions (door openings), {out_min:g} min in "
                      f"all, each under the {s.alarm_delay_min:g}-min alarm delay: not failures")
    item = record_item(f"fridge:{d.id}", Category.FRIDGE, d, j.site, status, detail)
    return item.model_copy(update={"facts": facts, "gaps": [j.span(g) for g in holes]})


FRIDGE_TEMPERATURE: RuleSpec[FridgeTemperature] = RuleSpec(FridgeTemperatureRule, FridgeTemperature,
    "留样冰箱温度", "Sample fridge temperature",
         kind_named(sample_fridge.KIND.name), judge=fridge)
RULES = (
    FRIDGE_TEMPERATURE,
)
