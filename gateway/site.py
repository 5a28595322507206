"""The site's plain models: buildings, rooms, devices, opening spans and prices.

They hold no rule registry: the rules (gateway/rules/) read them, and the site file's whole
model (gateway/config/__init__.py: `SiteConfig`) checks rule parameters against the rules'
registry. Keeping them here is what lets the rules import them without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import time
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from devices import kinds
from devices.base import Utility
from devices.vendors import VendorSource, sources
from gateway.reports.subitems import check_subitem

if TYPE_CHECKING:
    from gateway.rules.params import RuleParams

IDENT_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, Field(pattern=IDENT_PATTERN)]
T = TypeVar("T")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_WORDS: Final[dict[str, tuple[str, str]]] = dict(zip(WEEKDAYS, (
    ("周一", "Monday"), ("周二", "Tuesday"), ("周三", "Wednesday"), ("周四", "Thursday"), ("周五", "Friday"),
    ("周六", "Saturday"), ("周日", "Sunday")), strict=True))
RoomType = Literal["classroom", "nap_room", "dorm", "kitchen", "office", "gate", "plant", "other"]
# How each room type reads to people, in Chinese and English (the site file's error messages list them).
ROOM_TYPE_WORDS: Final[dict[str, tuple[str, str]]] = {
    "classroom": ("教室", "Classroom"), "nap_room": ("午睡室", "Nap room"), "dorm": ("宿舍", "Dormitory"),
    "kitchen": ("厨房", "Kitchen"), "office": ("办公室", "Office"), "gate": ("门卫室", "Gatehouse"),
    "plant": ("设备间", "Plant room"), "other": ("其他", "Other"),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Room(Strict):
    id: Ident
    name: str
    type: RoomType = "other"


class Building(Strict):
    id: Ident
    name: str
    rooms: list[Room] = Field(min_length=1)
    # For the energy report's intensity (kWh and m³ per m² and per person).
    floor_area_m2: float | None = Field(None, gt=0)
    headcount: int | None = Field(None, gt=0, description="children and staff who use the building")
    # What the building should draw while closed (network, CCTV, the fridges that must stay
    # on): the energy report flags a base load above it as a saving to look at.
    standby_w: float | None = Field(None, ge=0, description="expected standby power while closed, in W")
    # Where a building keeps other hours than the site (a kitchen that starts at 06:00).
    opening_hours: dict[str, list[Span]] | None = None

    @field_validator("opening_hours")
    @classmethod
    def _weekdays(cls, v: dict[str, list[Span]] | None) -> dict[str, list[Span]] | None:
        return None if v is None else every_weekday(v)


class Device(Strict):
    id: Ident
    kind: str
    room: Ident
    name: str = ""
    interval_s: float = Field(60, gt=0, description="expected reporting interval in seconds")
    settings: dict[str, Any] = Field(default_factory=dict)
    # Rule parameters for this device alone, over the site's `rules:` (each rule's module in gateway/rules/).
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Where the data comes from when not as our native JSON on facility/<site>/<device>/…: a
    # Zigbee2MQTT, Tasmota or Shelly device, a Modbus or DL/T 645 meter (see devices/vendors/).
    source: SerializeAsAny[VendorSource] | None = None
    # The sub-item (分项) of the guideline's catalog that this meter measures, by its code
    # ("01D30": 特殊用电·厨房餐厅); its category follows from its kind. gateway/reports/subitems.py.
    subitem: str | None = None
    _rule_params: Mapping[str, RuleParams] = PrivateAttr(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in kinds():
            raise ValueError(f"unknown device kind {v!r} (known: {', '.join(sorted(kinds()))})")
        return v

    @field_validator("settings")
    @classmethod
    def _kind_settings(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return v  # the kind itself was wrong; that error is reported already
        try:
            kinds()[kind].settings.model_validate(v)
        except ValidationError as exc:
            raise ValueError("; ".join(nested(e) for e in exc.errors())) from None
        return v

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: object, info: ValidationInfo) -> object:
        if v is None or isinstance(v, VendorSource):
            return v
        known = ", ".join(sorted(sources()))
        if not isinstance(v, dict) or "protocol" not in v:
            raise ValueError(f"a source is a mapping with a protocol: one of {known}")
        model = sources().get(v["protocol"])
        if model is None:
            raise ValueError(f"unknown protocol {v['protocol']!r} (known: {known})")
        try:
            source = model.model_validate(v)
        except ValidationError as exc:
            raise ValueError("; ".join(nested(e) for e in exc.errors())) from None
        kind = info.data.get("kind")
        given = source.keys()
        if kind is not None and given is not None:
            kind_keys = {m.key for m in kinds()[kind].metrics}
            stray = sorted(given - kind_keys)
            if stray:
                raise ValueError(f"a {kind} records no {', '.join(stray)} "
                                 f"(it records: {', '.join(sorted(kind_keys))})")
        return source

    @field_validator("subitem")
    @classmethod
    def _subitem(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if v is not None and kind is not None:
            check_subitem(v, utility_of(kind))
        return v

    def kind_settings(self) -> BaseModel:
        return kinds()[self.kind].settings.model_validate(self.settings)

    @property
    def utility(self) -> Utility | None:
        """What it meters, where it is a meter (its kind's counter of a utility)."""
        return utility_of(self.kind)


    @property
    def rule_params(self) -> Mapping[str, RuleParams]:
        """Every rule's parameters for this device, by rule id, validated once with the site
        (its own over the site's over the kind's over the defaults); empty outside a site.
        Read them typed through the rule's spec: `spec.params_for(device)`."""
        # Pydantic keeps private attributes in `__pydantic_private__`; read there directly, not
        # through the model's `__getattr__` (a tenth of the time: the rules of 10,000 devices ask 82,000 times).
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        params: Mapping[str, RuleParams] = private["_rule_params"]
        return params

    def use_rule_params(self, params: Mapping[str, RuleParams]) -> None:
        """Its parameters as its site resolved them (gateway/config: `SiteConfig`), maybe
        shared with the other devices of its kind: never changed in place."""
        self._rule_params = params


def utility_of(kind: str) -> Utility | None:
    return next((m.utility for m in kinds()[kind].metrics if m.utility is not None), None)


class DerivedSubitem(Strict):
    """A sub-item no meter measures alone: a main meter less the sub-meters behind it (the
    service building's lighting and sockets: its main meter less the kitchen's)."""

    subitem: str
    main: Ident
    minus: list[Ident] = Field(min_length=1)
    name: str = ""


class Quotas(Strict):
    """A year's energy quota (能耗定额) as the provincial standard gives it, for the energy
    report's intensity; each None unless entered. `standard` names where the values come from."""

    standard: str = ""
    kgce_per_m2: float | None = Field(None, gt=0, description="kgce per m² and year")
    kgce_per_person: float | None = Field(None, gt=0, description="kgce per person and year")
    kgce_per_student: float | None = Field(None, gt=0, description="kgce per student and year")
    kwh_per_m2: float | None = Field(None, gt=0, description="kWh per m² and year")
    kwh_per_person: float | None = Field(None, gt=0, description="kWh per person and year")
    water_m3_per_person: float | None = Field(None, gt=0, description="m³ of water per person and year")


class RetiredDevice(Strict):
    """A device taken out of service in the dashboard: it reports no more and no rule watches
    it, but its readings, alerts and records stay, under its id and name (never given again)."""

    id: Ident
    kind: str
    room: str  # where it was; the room itself may have gone since
    name: str = ""
    retired_at_ms: int = Field(ge=0, description="when it was retired (Unix ms)")


class Span(Strict):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


def every_weekday(v: dict[str, list[Span]]) -> dict[str, list[Span]]:
    unknown = set(v) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
    return {d: v.get(d, []) for d in WEEKDAYS}


TouPeriodName = Literal["sharp", "peak", "flat", "valley"]  # 尖峰, 峰, 平, 谷


class TouSpan(Strict):
    """Local times; an end at or before the start runs past midnight ("22:00"–"06:00")."""

    start: time
    end: time

    def minutes(self) -> range | tuple[range, range]:
        a, b = self.start.hour * 60 + self.start.minute, self.end.hour * 60 + self.end.minute
        return range(a, b) if a < b else (range(a, 1440), range(b))


class TouPeriod(Strict):
    name: TouPeriodName
    yuan_per_kwh: float = Field(ge=0)
    hours: list[TouSpan] = Field(min_length=1)


class Tariffs(Strict):
    """Prices for costs in reports and alerts. Electricity: time-of-use periods (分时电价),
    with `electricity_yuan_per_kwh` as the flat price for any minute no period covers.
    Assumption: typical Shanghai non-residential prices; set the school's own."""

    electricity_yuan_per_kwh: float = Field(0.75, ge=0)
    electricity_periods: list[TouPeriod] = Field(default_factory=list)
    water_yuan_per_m3: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _no_overlap(self) -> Self:
        self.by_minute()
        return self

    def by_minute(self) -> tuple[tuple[TouPeriodName, float], ...]:
        """The period and price of each minute of the day (0 = 00:00), made once (every
        circuit's after-hours rule holds it). ValueError when two periods claim one minute."""
        return kept(self, "_kept_by_minute", (self.electricity_periods, self.electricity_yuan_per_kwh), self._by_minute)

    def _by_minute(self) -> tuple[tuple[TouPeriodName, float], ...]:
        out: list[tuple[TouPeriodName, float] | None] = [None] * 1440
        for period in self.electricity_periods:
            for span in period.hours:
                ranges = span.minutes()
                for minute in (m for r in (ranges if isinstance(ranges, tuple) else (ranges,)) for m in r):
                    if (taken := out[minute]) is not None:
                        raise ValueError(f"electricity periods {taken[0]!r} and {period.name!r} both cover "
                                         f"{minute // 60:02d}:{minute % 60:02d}")
                    out[minute] = (period.name, period.yuan_per_kwh)
        return tuple(m or ("flat", self.electricity_yuan_per_kwh) for m in out)

    def electricity_price(self, minute_of_day: int) -> float:
        return self.by_minute()[minute_of_day][1]


def kept(model: BaseModel, key: str, inputs: tuple[object, ...], make: Callable[[], T]) -> T:
    """What `make` gives, kept on the frozen `model` under `key` for as long as its `inputs` are
    the same objects: a `model_copy` keeps it, and one with other inputs makes it anew."""
    held: tuple[tuple[object, ...], T] | None = model.__dict__.get(key)
    if held is None or any(a is not b for a, b in zip(held[0], inputs, strict=True)):
        held = (inputs, make())
        model.__dict__[key] = held
    return held[1]


def nested(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg

