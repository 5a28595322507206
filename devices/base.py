"""What every device kind is made of: metric descriptions, a payload model built from them,
per-device settings, and one pure decoder shared by all kinds.

A decoder takes bytes and the time of receipt and returns a `Sample` (one telemetry message)
or an `Event`; anything wrong raises `DecodeError` with a reason code that the gateway counts.
No I/O and no clock in here.

A kind also declares, as data, how it is shown and what the rest of the system does with it,
so that nothing outside `devices/` needs to know a kind by name:

- each metric: the words for a state's two values (`StateWords`), whether it shows on a live
  tile, the utility its counter measures (`Utility`: the site's totals and the energy report
  add these up), the per-device settings that bound its allowed range (`SettingsRange`);
- the kind: what "left on" means at closing (`ClosingCheck`, evaluated by the closing board)
  and the behaviour the simulator gives it (`simulation`, a name the simulator maps to a model;
  this package imports neither the gateway nor the simulator).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticCustomError

from devices.vendors import Decoded

PREVIEW_BYTES: Final = 120
# Numbers above this are taken as Unix milliseconds rather than seconds (year 5138 in seconds).
_MS_THRESHOLD: Final = 1e11
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"  # cumulative, never decreasing (meter totals, lamp hours)
    STATE = "state"  # a boolean, stored as 1.0 / 0.0


class Reason(StrEnum):
    """Why an input was rejected; the label of the rejection counter."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    BAD_TEXT = "bad_text"  # a text field with control characters (a line break, say)
    NO_READINGS = "no_readings"  # a vendor message with nothing the device's kind records
    BAD_FRAME = "bad_frame"  # a binary frame (DL/T 645) that is cut short, garbled or fails its checksum
    DEVICE_ERROR = "device_error"  # the meter answered, but with an error (DL/T 645 error frame)
    # Checked by the gateway against what it already holds and its clock, not by decoders:
    COUNTER_DECREASED = "counter_decreased"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"


class DecodeError(ValueError):
    """A payload that cannot become readings. Carries the device, a reason code, a human
    readable detail and a short preview of the bytes."""

    def __init__(self, device_id: str, reason: Reason, detail: str, payload: bytes) -> None:
        self.device_id = device_id
        self.reason = reason
        self.detail = detail
        self.preview = preview(payload)
        super().__init__(f"{device_id}: {reason}: {detail} (payload: {self.preview})")


def preview(payload: bytes) -> str:
    text = payload[:PREVIEW_BYTES].decode("utf-8", errors="backslashreplace")
    return text + ("…" if len(payload) > PREVIEW_BYTES else "")


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_one_line(value: str) -> str:
    if _CONTROL.search(value):
        raise PydanticCustomError("control_characters", "must not contain control characters (a line break, say)")
    return value


Text = Annotated[str, AfterValidator(check_one_line)]
"""A text a device sends (a card's credential): one line, no control characters. It may end
up in an alert's title and from there in an e-mail's Subject, where a line break is refused."""


@dataclass(frozen=True, slots=True)
class StateWords:
    """How a state's two values read to people, in both languages: no raw true/false ever
    reaches a person."""

    true_zh: str
    false_zh: str
    true_en: str
    false_en: str


ON_OFF: Final = StateWords("开", "关", "On", "Off")
OPEN_CLOSED: Final = StateWords("开着", "已关", "Open", "Closed")

@dataclass(frozen=True, slots=True)
class Label:
    """How a setting or an event (or one of an event's fields) reads to people, in both
    languages, with its unit's words; a yes/no field has words for its two values. Declared in
    the field's annotation (`min_c: Annotated[float, Label("最低温度", "Lowest temperature", "°C", "°C")]`),
    so that no setting's key or raw value ever reaches a person."""

    zh: str
    en: str
    unit_zh: str = ""
    unit_en: str = ""
    words: StateWords | None = None


MINUTES: Final = ("分钟", "min")
HOURS: Final = ("小时", "h")
CELSIUS: Final = ("°C", "°C")


def labels(model: type[BaseModel], skip: tuple[str, ...] = ()) -> dict[str, Label]:
    """Each field's `Label`, by field name; raises ValueError for a field without one."""
    out: dict[str, Label] = {}
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        found = next((m for m in info.metadata if isinstance(m, Label)), None)
        if found is None:
            raise ValueError(f"{model.__name__}.{name} has no Label: say how it reads to people")
        out[name] = found
    return out


Utility = Literal["electricity", "water", "gas", "heat"]
"""What a site buys and pays for by the meter: the energy categories of public buildings' monitoring
(分类能耗; gateway/reports/subitems.py has their codes) and water."""


@dataclass(frozen=True, slots=True)
class SettingsRange:
    """A range a gauge must stay within, set per device: the names of the two settings of
    the kind that bound it (a fridge's `min_c` and `max_c`)."""

    low: str
    high: str

    def of(self, settings: BaseModel) -> tuple[float, float]:
        return float(getattr(settings, self.low)), float(getattr(settings, self.high))


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity of a device kind. `key` is both the JSON field of the native
    payload and the field name in storage (SQLite metric, line protocol field)."""

    key: str
    unit: str
    type: MetricType
    label_zh: str
    label_en: str
    required: bool = False
    minimum: float | None = None  # plausibility bounds: outside them a reading is rejected
    maximum: float | None = None
    words: StateWords | None = None  # a state's two values; every state has them, nothing else does
    tile: bool = True  # shown on the device's live tile (link health is not: the tile's dot says it)
    utility: Utility | None = None  # a counter of what the site buys: totals and the energy report add it up
    allowed: SettingsRange | None = None  # a gauge kept within a range that each device's settings set

    def __post_init__(self) -> None:
        if (self.type is MetricType.STATE) != (self.words is not None):
            raise ValueError(f"metric {self.key}: a state, and only a state, has words for its two values")
        if self.utility is not None and self.type is not MetricType.COUNTER:
            raise ValueError(f"metric {self.key}: only a counter measures a utility")
        if self.allowed is not None and self.type is not MetricType.GAUGE:
            raise ValueError(f"metric {self.key}: only a gauge has an allowed range")


COMMON_METRICS: Final = (
    Metric("battery_pct", "%", MetricType.GAUGE, "电池电量", "Battery", minimum=0, maximum=100),
    Metric("rssi_dbm", "dBm", MetricType.GAUGE, "信号强度", "Signal strength", minimum=-150, maximum=20, tile=False),
    # Zigbee's link quality indicator (LQI), 0–255.
    Metric("link_quality", "LQI", MetricType.GAUGE, "信号质量", "Link quality", minimum=0, maximum=255, tile=False),
    # Availability as a bridge or the device itself reports it (Zigbee2MQTT, Tasmota LWT, Shelly).
    Metric("online", "", MetricType.STATE, "连接状态", "Connection",
           words=StateWords("在线", "离线", "Online", "Offline"),
           tile=False),
)


class ClosingCondition(StrEnum):
    """When a device counts as left on at closing (闭园检查), judged on its check's metric. The
    closing board has one evaluation for each; the thresholds are the rules' own, so the board
    and the alerts agree."""

    TRUE = "true"  # a state that reads true (a door left open)
    # A state that reads true; inside the device's scheduled window (the UV rule's)
    # it is listed as scheduled and does not keep the building open (a UV lamp on its timer).
    TRUE_UNLESS_SCHEDULED = "true_unless_scheduled"
    ABOVE_FLOW_THRESHOLD = "above_flow_threshold"  # above the device's flow threshold (the leak rule's)
    ABOVE_BASE_LOAD = "above_base_load"  # above the learned base load plus margin (the after-hours load rule's)


_STATE_CONDITIONS: Final = (ClosingCondition.TRUE, ClosingCondition.TRUE_UNLESS_SCHEDULED)


@dataclass(frozen=True, slots=True)
class ClosingCheck:
    """What needs attention at closing for a kind: its `metric` meets `condition`."""

    metric: str
    condition: ClosingCondition


@dataclass(frozen=True, slots=True)
class Sample:
    """One telemetry message after decoding: every metric it carried, at one event time."""

    device_id: str
    ts_ms: int
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class Event:
    device_id: str
    ts_ms: int
    type: str
    data: dict[str, Any]


class _Payload(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore", frozen=True)
    ts: float | str | None = None


class EventPayload(_Payload):
    """Base of a kind's event models; `type` tells them apart, `LABEL` says what it is to
    people (刷卡) and each field's `Label` how it reads."""

    LABEL: ClassVar[Label]
    type: str

    @classmethod
    def field_labels(cls) -> dict[str, Label]:
        return labels(cls, skip=("ts", "type"))


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def payload_model(name: str, metrics: tuple[Metric, ...]) -> type[_Payload]:
    """The telemetry payload model of a kind, derived from its metric descriptions."""
    fields: dict[str, Any] = {}
    for m in metrics:
        py_type: Any = bool if m.type is MetricType.STATE else float
        constraint = Field(ge=m.minimum, le=m.maximum) if m.type is not MetricType.STATE else Field()
        if m.required:
            fields[m.key] = (py_type, constraint)
        else:
            fields[m.key] = (py_type | None, Field(None, ge=m.minimum, le=m.maximum) if py_type is float else None)
    return create_model(name, __base__=_Payload, **fields)


@dataclass(frozen=True, slots=True)
class Recognition:
    """How a device that announces itself (gateway/discovery/) is taken for this kind: by a
    reading it reports (`by`, metric keys as the vendor codecs make them) and, where `named` is
    given, only when its name also says so (a thermometer is a sample fridge only when it is
    called one). Kinds are tried by `rank`, lowest first."""

    by: frozenset[str]
    rank: int
    named: re.Pattern[str] | None = None

    def matches(self, keys: frozenset[str], name: str) -> bool:
        return bool(self.by & keys) and (self.named is None or self.named.search(name) is not None)


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """Everything the gateway knows of a kind; each `devices/<kind>.py` exports one as `KIND`.

    `closing` and `simulation` have no default: every kind says what it means at closing
    (None: nothing) and how the simulator drives it."""

    name: str
    label_zh: str
    label_en: str
    metrics: tuple[Metric, ...]
    settings: type[BaseModel] = NoSettings
    events: tuple[type[EventPayload], ...] = ()
    closing: ClosingCheck | None = field(kw_only=True)
    # The simulator's behaviour for the kind (`simulators.model.BEHAVIOURS`): "metered_water", …
    simulation: str = field(kw_only=True)
    # Keeps the canteen's retained food samples (留样): the 留样 register's fridges are of such kinds.
    keeps_samples: bool = field(default=False, kw_only=True)
    # How a discovered device is recognised as one of this kind; None: never suggested.
    recognised: Recognition | None = field(default=None, kw_only=True)
    payload: type[_Payload] = field(init=False)
    _by_key: dict[str, Metric] = field(init=False)
    _event_types: dict[str, type[EventPayload]] = field(init=False)

    def __post_init__(self) -> None:
        all_metrics = self.metrics + COMMON_METRICS
        object.__setattr__(self, "metrics", all_metrics)
        object.__setattr__(self, "_by_key", {m.key: m for m in all_metrics})
        if self.closing is not None:
            checked = self._by_key.get(self.closing.metric)
            if checked is None:
                raise ValueError(f"kind {self.name}: its closing check reads {self.closing.metric!r}, not a metric")
            if (self.closing.condition in _STATE_CONDITIONS) != (checked.type is MetricType.STATE):
                raise ValueError(f"kind {self.name}: closing condition {self.closing.condition} does not fit "
                                 f"{checked.key}, a {checked.type}")
        for m in all_metrics:
            if m.allowed is not None and not {m.allowed.low, m.allowed.high} <= self.settings.model_fields.keys():
                raise ValueError(f"kind {self.name}: {m.key}'s allowed range names settings it does not have")
        model_name = "".join(p.title() for p in self.name.split("_")) + "Payload"
        object.__setattr__(self, "payload", payload_model(model_name, all_metrics))
        types = {e.model_fields["type"].default: e for e in self.events}
        object.__setattr__(self, "_event_types", types)
        # Every setting and every event reads as words: checked when the kind is made.
        labels(self.settings)
        for e in self.events:
            if not isinstance(getattr(e, "LABEL", None), Label):
                raise TypeError(f"kind {self.name}: event {e.__name__} has no LABEL")
            e.field_labels()

    def metric(self, key: str) -> Metric | None:
        return self._by_key.get(key)

    def setting_labels(self) -> dict[str, Label]:
        """Each of its per-device settings as people read it, in the settings' order."""
        return labels(self.settings)

    def event_labels(self) -> dict[str, tuple[Label, dict[str, Label]]]:
        """Each event type: what it is, and how each of its fields reads."""
        return {name: (e.LABEL, e.field_labels()) for name, e in self._event_types.items()}

    @property
    def event_types(self) -> list[str]:
        """The `type` of each event its devices send (a door's card reader: "access")."""
        return list(self._event_types)

    def decode(self, device_id: str, payload: bytes, received_ms: int) -> Sample:
        try:
            model = self.payload.model_validate_json(payload)
        except ValidationError as exc:
            raise _from_validation(device_id, exc, payload) from None
        ts_ms = _event_time(device_id, model.ts, received_ms, payload)
        values: dict[str, float] = {}
        for key, value in model.__dict__.items():  # iterating the model itself is slower
            if value is not None and key != "ts":
                values[key] = float(value)
        return Sample(device_id, ts_ms, values)

    def from_values(self, device_id: str, decoded: Decoded, received_ms: int, payload: bytes) -> Sample:
        """A vendor message's values as a sample of this kind: values the kind does not record
        are left out, the rest must be finite and inside the kind's bounds. Unlike a native
        payload, no metric is required: vendors send state and energy in separate messages."""
        values: dict[str, float] = {}
        for key, raw in decoded.values.items():
            metric = self._by_key.get(key)
            if metric is None:
                continue
            value = float(raw)
            if metric.type is MetricType.STATE and math.isfinite(value):
                value = 1.0 if value else 0.0
            if not math.isfinite(value):
                raise DecodeError(device_id, Reason.NOT_FINITE, f"{key}: {value} is not a finite number", payload)
            if metric.minimum is not None and value < metric.minimum:
                raise DecodeError(device_id, Reason.OUT_OF_RANGE,
                                  f"{key}: {value:g} is below {metric.minimum:g} {metric.unit}".rstrip(), payload)
            if metric.maximum is not None and value > metric.maximum:
                raise DecodeError(device_id, Reason.OUT_OF_RANGE,
                                  f"{key}: {value:g} is above {metric.maximum:g} {metric.unit}".rstrip(), payload)
            values[key] = value
        if not values:
            found = ", ".join(sorted(decoded.values)) or "none"
            raise DecodeError(device_id, Reason.NO_READINGS,
                              f"nothing a {self.name} records in this message (it carries: {found})", payload)
        return Sample(device_id, received_ms if decoded.ts_ms is None else decoded.ts_ms, values)

    def decode_event(self, device_id: str, payload: bytes, received_ms: int) -> Event:
        try:
            head = EventPayload.model_validate_json(payload)
        except ValidationError as exc:
            raise _from_validation(device_id, exc, payload) from None
        model_type = self._event_types.get(head.type)
        if model_type is None:
            known = ", ".join(self._event_types) or "none"
            raise DecodeError(
                device_id, Reason.UNKNOWN_EVENT,
                f"a {self.name} has no event of type {head.type!r} (known: {known})", payload,
            )
        try:
            event = model_type.model_validate_json(payload)
        except ValidationError as exc:
            raise _from_validation(device_id, exc, payload) from None
        ts_ms = _event_time(device_id, event.ts, received_ms, payload)
        return Event(device_id, ts_ms, event.type, event.model_dump(exclude={"ts", "type"}))


def _event_time(device_id: str, ts: float | str | None, received_ms: int, payload: bytes) -> int:
    """`ts` as Unix milliseconds: absent → time of receipt; a number → Unix seconds (or
    milliseconds when above 1e11); a string → ISO 8601 that must carry its UTC offset."""
    if ts is None:
        return received_ms
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            raise DecodeError(device_id, Reason.BAD_TIMESTAMP, f"ts {ts!r} is not ISO 8601", payload) from None
        if parsed.tzinfo is None:
            raise DecodeError(device_id, Reason.BAD_TIMESTAMP, f"ts {ts!r} has no UTC offset", payload)
        # Whole microseconds, not a float of seconds: far from 1970 that float is coarser than 1 ms.
        micros = (parsed - _EPOCH) // timedelta(microseconds=1)
        return (micros + 500) // 1000
    if ts < 0 or not math.isfinite(ts):
        raise DecodeError(device_id, Reason.BAD_TIMESTAMP, f"ts {ts!r} is not a Unix time", payload)
    return round(ts if ts > _MS_THRESHOLD else ts * 1000)


_REASONS: Final = {
    "json_invalid": Reason.NOT_JSON,
    "json_type": Reason.NOT_JSON,
    "model_type": Reason.NOT_OBJECT,
    "model_attributes_type": Reason.NOT_OBJECT,
    "missing": Reason.MISSING_FIELD,
    "finite_number": Reason.NOT_FINITE,
    "greater_than_equal": Reason.OUT_OF_RANGE,
    "less_than_equal": Reason.OUT_OF_RANGE,
    "literal_error": Reason.UNKNOWN_EVENT,
    "control_characters": Reason.BAD_TEXT,
}


def _from_validation(device_id: str, exc: ValidationError, payload: bytes) -> DecodeError:
    first = exc.errors(include_url=False)[0]
    reason = _REASONS.get(first["type"], Reason.WRONG_TYPE)
    where = ".".join(str(p) for p in first["loc"])
    detail = f"{where}: {first['msg']}" if where else first["msg"]
    return DecodeError(device_id, reason, detail, payload)
