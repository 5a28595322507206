"""Device health: silent for several of its intervals (offline), a low battery, and a meter
counter that went back to zero (replaced, reset or rolled over: the pipeline accepts it as a
new start, so it never counts as consumption; this tells a person it happened)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from devices import kinds, sample_fridge
from devices.base import Label, MetricType, Sample
from gateway.alerting.severity import Severity
from gateway.alerting.trade import Trade
from gateway.rules.base import Context, Finding, Rule, RuleSpec, every_kind, minutes, with_counter, with_metric
from gateway.rules.params import PERCENT, RuleParams, SeverityLevel

if TYPE_CHECKING:
    from gateway.site import Device


class DeviceOffline(RuleParams):
    """No data for this many of the device's expected intervals: the one definition of
    offline (see `silent_after_ms`)."""

    intervals: Annotated[float, Label(
        "连续几个上报周期没有数据算离线",
        "Offline after this many reporting intervals without data",
        "个周期",
        "intervals",
    )] = Field(3, ge=1)


def silent_after_ms(device: Device) -> float:
    """How long `device` may be silent before it is offline: `device_offline`'s `intervals`
    of its `interval_s`. The one definition, read by the rule, the dashboard's online flag
    (gateway/device_state.py) and the daily record (how long a reading vouches for its value).

    Silence is judged on the time of receipt (the gateway's injected clock), not on readings'
    event time: the watchdog (gateway/runtime.py `_watch`) compares the wall clock with when
    the gateway last heard the device, and readings' timestamps may be backfilled (a device
    that sends an hour of history on reconnecting is back now, not an hour ago; one whose
    clock runs slow is not silent). The daily record judges history, so there the same length
    bounds how long a reading, by its event time, vouches for its value."""
    return OFFLINE.params_for(device).intervals * device.interval_s * 1000


class LowBattery(RuleParams):
    severity: SeverityLevel = Severity.WARNING
    below_pct: Annotated[float, Label(
        "电量低于多少时提醒", "Warn when the battery is below", *PERCENT,
    )] = Field(20, gt=0, le=100)


class CounterReset(RuleParams):
    """A meter counter that went back to (near) zero: replaced, reset or rolled over."""

    severity: SeverityLevel = Severity.WARNING



class DeviceOfflineRule(Rule[DeviceOffline]):
    """Judged by the watchdog on the injected clock against when the gateway last received
    something from the device (not its event time: history sent late is not silence).
    Before its first message it counts from the watchdog's first look. Where a bridge or the
    device reports its availability (Zigbee2MQTT, a Tasmota LWT, Shelly), "offline" raises the
    alert at once, and only data or "online" clears it."""

    name = "device_offline"

    def __init__(self, ctx: Context, params: DeviceOffline) -> None:
        super().__init__(ctx, params)
        self._after_ms = silent_after_ms(ctx.device)
        self._last_ms: int | None = None
        self._reported_offline = False
        self._shown = -1  # the silent minutes the alert shows

    def on_sample(self, sample: Sample) -> Finding | None:
        online = sample.values.get("online")
        self._reported_offline = online == 0.0
        if not self._reported_offline or self.raised:
            return None
        name, since = self.ctx.name, self.ctx.stamp(sample.ts_ms)
        return self.finding(
            True, sample.ts_ms, sample.ts_ms,
            (f"{name} 离线", f"{name} is offline"),
            (f"{since} 起报告离线 (网关/桥接上报){self._cold()[0]}",
             f"reported offline at {since} (by its bridge or itself){self._cold()[1]}"),
            {"since_ms": sample.ts_ms, "reported": "offline"},
        )

    def heard(self, received_ms: int) -> Finding | None:
        if self._reported_offline:  # the message was the offline report itself
            return None
        silent_since = self._last_ms
        self._last_ms = received_ms if self._last_ms is None else max(self._last_ms, received_ms)
        if not self.raised:
            return None
        if silent_since is None or received_ms < silent_since:  # raised before a restart, or reported offline
            return self.clear(received_ms)
        n, span = minutes(received_ms - silent_since), f"{self.ctx.stamp(silent_since)}–{self.ctx.clock(received_ms)}"
        return self.clear(received_ms, {"minutes": n},
                          (f"{span} 无数据 {n} 分钟, 已恢复", f"no data {span}, {n} min: back again"),
                          (f"{self.ctx.name} 离线 {n} 分钟后恢复", f"{self.ctx.name} was offline {n} min, back again"))

    def _cold(self) -> tuple[str, str]:
        if self.ctx.device.kind == sample_fridge.KIND.name:
            return "; 留样冷链状态未知", "; the cold chain is unknown"
        return "", ""

    def on_clock(self, now_ms: int) -> Finding | None:
        if self._last_ms is None:
            self._last_ms = now_ms
        silent = now_ms - self._last_ms
        if silent <= self._after_ms or (self.raised and (self._reported_offline or minutes(silent) == self._shown)):
            return None
        self._shown = minutes(silent)
        name, since = self.ctx.name, self.ctx.stamp(self._last_ms)
        cold_zh, cold_en = self._cold()
        title = (f"{name} 离线", f"{name} is offline")
        detail = (f"自 {since} 起无数据 ({self._shown} 分钟){cold_zh}",
                  f"no data since {since} ({self._shown} min){cold_en}")
        facts: dict[str, float | str] = {"since_ms": self._last_ms, "minutes": self._shown}
        if self.raised:  # the silence goes on: its minutes so far (the last data stays where it was)
            return self.update(self._last_ms, self._last_ms, title, detail, facts)
        return self.finding(True, self._last_ms, now_ms, title, detail, facts)


class LowBatteryRule(Rule[LowBattery]):
    name = "low_battery"
    _CLEAR_ABOVE_PCT = 5  # hysteresis: a reading that wobbles around the threshold alerts once

    def on_sample(self, sample: Sample) -> Finding | None:
        pct = sample.values.get("battery_pct")
        if pct is None:
            return None
        ts, below = sample.ts_ms, self.params.below_pct
        if self.raised:
            return self.clear(ts, {"battery_pct": pct}) if pct >= below + self._CLEAR_ABOVE_PCT else None
        if pct >= below:
            return None
        name = self.ctx.name
        return self.finding(
            True, ts, ts,
            (f"{name} 电池电量低 ({pct:.0f}%)", f"{name}: battery low ({pct:.0f}%)"),
            (f"电量低于 {below:g}%, 请更换电池", f"below {below:g}%: replace the battery"),
            {"battery_pct": pct},
        )


class CounterResetRule(Rule[CounterReset]):
    name = "counter_reset"

    def __init__(self, ctx: Context, params: CounterReset) -> None:
        super().__init__(ctx, params)
        kind = kinds()[ctx.device.kind]
        self._counters = {m.key: m for m in kind.metrics if m.type is MetricType.COUNTER}
        self._last: dict[str, float] = {}

    def on_sample(self, sample: Sample) -> Finding | None:
        ts = sample.ts_ms
        found = self.clear(ts) if self.raised else None
        for key, metric in self._counters.items():
            value = sample.values.get(key)
            if value is None:
                continue
            before = self._last.get(key)
            self._last[key] = value
            if before is not None and value < before:
                name = self.ctx.name
                return self.finding(
                    True, ts, ts,
                    (f"{name} 计数器归零", f"{name}: counter reset"),
                    (f"{metric.label_zh}从 {before:g} {metric.unit} 回到 {value:g} {metric.unit}: "
                     "表计更换、复位或翻转; 之后的用量从新读数起算",
                     f"{metric.label_en} went from {before:g} {metric.unit} back to {value:g} {metric.unit}: "
                     "meter replaced, reset or rolled over; consumption counts from the new reading"),
                    {"metric": key, "before": before, "after": value},
                )
        return found


OFFLINE: RuleSpec[DeviceOffline] = RuleSpec(
    DeviceOfflineRule, DeviceOffline, "设备离线", "Device offline", every_kind, trade=Trade.OTHER,
    # A silent fridge sensor means the cold chain is unknown.
    kind_defaults={sample_fridge.KIND.name: {"severity": Severity.MAJOR}},
)
RULES = (
    # Every kind: a kind added later is watched for silence without a word here.
    OFFLINE,
    RuleSpec(LowBatteryRule, LowBattery, "电池电量低", "Low battery", with_metric("battery_pct")),
    RuleSpec(CounterResetRule, CounterReset, "计数器复位", "Counter reset", with_counter),
)
