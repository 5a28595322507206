"""The site file: one YAML document validated by pydantic, unknown keys forbidden.

It describes the site (buildings, rooms, devices, opening hours) and, optionally, the
gateway's connections (MQTT, InfluxDB, storage, API). Every error names the file, the line
and the key. Secrets may also come from the environment (`FACILITY_MQTT__PASSWORD`, …).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    Field,
    FilePath,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from devices import kinds
from devices.vendors import TopicLevels
from gateway.config.auth import AuthSettings
from gateway.config.calendar import CalendarSettings
from gateway.config.duty import DutySettings
from gateway.config.fire_patrol import FirePatrolSettings
from gateway.config.notifications import NotificationSettings
from gateway.config.platform import PlatformSettings
from gateway.config.problems import Problem, document, problems, text_hints
from gateway.config.samples import SampleSettings
from gateway.config.sweep import SweepSettings
from gateway.config.work_orders import WorkOrderSettings
from gateway.reports.subitems import check_subitem
from gateway.rules import registry
from gateway.rules.params import RuleParams
from gateway.site import (
    WEEKDAYS,
    Building,
    DerivedSubitem,
    Device,
    Ident,
    Quotas,
    RetiredDevice,
    Room,
    Span,
    Strict,
    Tariffs,
    TouPeriod,
    TouPeriodName,
    TouSpan,
    every_weekday,
    kept,
    nested,
    utility_of,
)

__all__ = [
    "Building", "ConfigError", "Device", "Room", "SchoolKind", "SiteConfig", "Span", "Tariffs", "TouPeriod",
    "TouPeriodName", "TouSpan", "load", "parse",
]

_PLACEHOLDERS: Final = ("changeme", "change-me", "change_me", "placeholder", "example", "secret", "password",
                        "admin", "default", "todo", "xxx", "123456", "<", ">")
MIN_SECRET_CHARS: Final = 12


def placeholder_problem(secret: str) -> str | None:
    """Why a secret looks like a placeholder rather than a generated one, if it does."""
    lowered = secret.lower()
    if len(secret) < MIN_SECRET_CHARS:
        return f"shorter than {MIN_SECRET_CHARS} characters"
    found = next((p for p in _PLACEHOLDERS if p in lowered), None)
    if found is not None:
        return f"contains {found!r}, a placeholder"
    if len(set(secret)) < 4:
        return "too few distinct characters"
    return None


SchoolKind = Literal["kindergarten", "primary", "secondary", "school"]


class ConfigError(Exception):
    """A config file that cannot be used: its `problems`, each with its line in the file. The
    message gives each as `file:line: key: <zh>`, with the English on an indented line below."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(_describe(source, p) for p in problems))


def _rule_params(name: str, params: dict[str, Any], where: str) -> None:
    try:
        registry.specs()[name].params.model_validate(params)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{where}.{nested(e)}" for e in exc.errors())) from None


def _known_rule(name: str) -> None:
    known = registry.specs()
    if name not in known:
        raise ValueError(f"unknown rule {name!r} (known: {', '.join(known)})")


def _default_hours() -> dict[str, list[Span]]:
    day = [Span(start=time(7, 30), end=time(17, 30))]
    return {d: list(day) for d in WEEKDAYS[:5]} | {"sat": [], "sun": []}


class DiscoverySettings(Strict):
    """Where the gateway listens for devices that announce themselves (the 新设备 inbox,
    docs/discovery.md). Listening never adopts a device: a person adds it to the site file."""

    enabled: bool = True
    zigbee2mqtt_base: TopicLevels = "zigbee2mqtt"  # Zigbee2MQTT's base_topic: <base>/bridge/devices, …/event
    tasmota_prefix: TopicLevels = "tasmota/discovery"  # Tasmota's own discovery: <prefix>/<MAC>/config|sensors
    homeassistant_prefix: TopicLevels = "homeassistant"  # Home Assistant MQTT discovery: <prefix>/…/config
    shelly: bool = True  # shellies/announce


class MqttSettings(Strict):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    # The persistent session's key, unless the broker takes the user name instead (the shipped
    # Mosquitto does, use_username_as_clientid, so that no other login can take the session).
    # None: facility-gateway-<site id>, one session a site, which whichever replica runs the
    # site resumes (docs/district.md).
    client_id: str | None = None
    # 3.1.1 by default: paho parses MQTT 5 properties on every message, which cost a
    # quarter of the ingest rate in bench/ingest.py (7.4k vs 10.6k msg/s). Both keep a
    # persistent session; under 3.1.1 the broker's own setting bounds how long it lives
    # (Mosquitto: persistent_client_expiration), under 5 `session_expiry_s` does.
    protocol: Literal["5", "3.1.1"] = "3.1.1"
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(86_400, ge=0, description="MQTT 5 only: how long the broker keeps our queue")
    # Messages are acknowledged only once spooled, so the broker's window of unacknowledged
    # messages bounds the ingest rate. MQTT 5: sent as Receive Maximum; 3.1.1: set the
    # broker's own limit (Mosquitto: max_inflight_messages).
    max_inflight: int = Field(1000, ge=1, le=65_535)
    # TLS (mqtts:// URLs): the CA that signed the broker's certificate (system CAs if unset),
    # and a client certificate with its key where the broker asks for one.
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{v!r} is not an mqtt://host:port or mqtts://host:port URL")
        return v

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        given = [k for k in ("ca_file", "cert_file", "key_file") if getattr(self, k) is not None]
        if given and not self.tls:
            raise ValueError(f"{', '.join(given)} given but the url is not mqtts://")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: a client certificate needs its key")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class InfluxSettings(Strict):
    url: str
    token: SecretStr
    org: str
    bucket: str
    batch_size: int = Field(5000, ge=1, le=100_000)
    timeout_s: float = Field(10, gt=0)


class ReplicaSettings(Strict):
    """This process among the gateway replicas that share a state store (docs/district.md)."""

    # Unique among the replicas and the same across restarts; None: the host name and the data
    # folder.
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    # A site's lease lasts this long unless renewed (every third of it): a replica that dies
    # has its site run again by a standby within about this time.
    lease_s: float = Field(30, ge=1, le=600)


class StorageSettings(Strict):
    data_dir: Path = Path("data")
    # Where alerts, work orders, ledgers, registers, users, audit and settings live: None is
    # state.db in data_dir (SQLite); a district's replicas share PostgreSQL,
    # postgresql+psycopg://user:password@host:5432/database.
    state_url: str | None = Field(None, pattern=r"^(sqlite|postgresql(\+psycopg)?)://")
    retention_days: int = Field(400, ge=1, description="raw readings older than this are deleted")
    rejected_keep: int = Field(10_000, ge=100, description="dead-letter entries kept")

    @property
    def state_database_url(self) -> str:
        return self.state_url or f"sqlite:///{self.data_dir / 'state.db'}"


class ApiSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # A larger request is refused with 413 before its body is read, so a client cannot make the
    # gateway hold what it sends in memory. HTTP ingest of 5,000 readings takes about 500 kB.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # A request must arrive whole (headers and body) within this time of its first byte: a
    # client that sends half a request and stalls must not hold a connection for ever.
    request_timeout_s: float = Field(30, gt=0)
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (addresses or
    # networks). Empty: the headers are ignored, so a client cannot claim another address
    # (the login lockout counts failures by address).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # A live stream sends a comment this often when quiet (so proxies keep it open), and
    # checks this often that its session or key is still valid.
    live_heartbeat_s: float = Field(15, ge=0.1, le=300)
    # Readings, events and reports at once; more wait up to `heavy_wait_s` for a turn, then
    # get 503 with Retry-After. None: 4 per CPU core.
    max_heavy_queries: int | None = Field(None, ge=1, le=1000)
    heavy_wait_s: float = Field(0.5, ge=0, le=30)


class IngestSettings(Strict):
    max_payload_bytes: int = Field(16_384, ge=64)
    buffer_capacity: int = Field(50_000, ge=100, description="messages (and rejections) waiting for the spool")
    # Clock-skew policy: a reading stamped further ahead of its time of receipt than this is
    # rejected (a device clock that is wrong); one older than storage.retention_days too
    # (retention would delete it at once). Anything in between is kept as stamped.
    max_clock_skew_s: float = Field(300, ge=0)


class SpoolSettings(Strict):
    """Bounds of the durable spool; past either, the oldest messages are dropped for the
    sinks that have not taken them (counted, and /health says so)."""

    max_messages: int = Field(5_000_000, ge=100)
    max_age_h: float = Field(168, gt=0)
    sink_batch: int = Field(5_000, ge=1, le=100_000, description="messages per write to a sink")



class ReportTargets(Strict):
    """Monthly consumption targets for the whole site (the energy report compares with them)."""

    electricity_kwh: float | None = Field(None, gt=0)
    water_m3: float | None = Field(None, gt=0)


class ReportSettings(Strict):
    targets: ReportTargets = Field(default_factory=ReportTargets)
    # Where staff reach the gateway, for links in delivered reports ("http://10.0.0.5:8000").
    public_url: str | None = None
    # Delivery through the notification channels: the daily safety record this long after
    # the site closes on a school day, the monthly report and summary on the 1st at `monthly_at`.
    daily: bool = True
    daily_after_closing_min: float = Field(30, ge=0)
    monthly: bool = True
    monthly_at: time = time(8, 0)
    channels: list[str] | None = Field(None, description="channel ids; None: every email and webhook channel")
    lang: Literal["zh-CN", "en"] = "zh-CN"


_DAY_KINDS: Final[dict[str, tuple[str, str]]] = {
    "weekend": ("周末", "weekend"), "holiday": ("法定节假日", "public holiday"), "term_break": ("假期", "term break"),
    "closure": ("停课", "closure"), "guard_duty": ("护校", "guard duty"),
}


@document
class SiteConfig(BaseSettings):
    """The whole configuration. Keys from the file win over defaults; environment variables
    (`FACILITY_` prefix, `__` between levels) win over the file, for secrets in production."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix="FACILITY_", env_nested_delimiter="__"
    )

    id: Ident
    name: str
    # What sort of school it is: a kindergarten has 开园日 where a school has 上学日.
    kind: SchoolKind = "school"
    timezone: str = "Asia/Shanghai"
    opening_hours: dict[str, list[Span]] = Field(default_factory=_default_hours)
    buildings: list[Building] = Field(min_length=1)
    devices: list[Device] = Field(default_factory=list)
    retired: list[RetiredDevice] = Field(default_factory=list)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influxdb: InfluxSettings | None = None
    platform: PlatformSettings | None = None  # the upload to an energy-monitoring platform
    storage: StorageSettings = Field(default_factory=StorageSettings)
    replica: ReplicaSettings = Field(default_factory=ReplicaSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    # Rule parameters for the whole site, by rule name (each rule's module in gateway/rules/).
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tariffs: Tariffs = Field(default_factory=Tariffs)
    headcount: int | None = Field(None, gt=0, description="children and staff; default: the buildings' sum")
    # Children or students enrolled: the energy report's intensity per student.
    students: int | None = Field(None, gt=0)
    # Sub-items (分项) measured as a main meter less its sub-meters (gateway/reports/subitems.py).
    derived_subitems: list[DerivedSubitem] = Field(default_factory=list)
    quotas: Quotas = Field(default_factory=Quotas)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    duty: DutySettings = Field(default_factory=DutySettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    work_orders: WorkOrderSettings = Field(default_factory=WorkOrderSettings)
    sweep: SweepSettings = Field(default_factory=SweepSettings)
    samples: SampleSettings = Field(default_factory=SampleSettings)  # 留样
    fire_patrol: FirePatrolSettings = Field(default_factory=FirePatrolSettings)
    # Production refuses anonymous MQTT, placeholder secrets and half-configured TLS.
    mode: Literal["development", "production"] = "development"
    # Where the school's settings are kept (docs/admin.md): "dashboard", the state database, which
    # this file seeds and people change in the dashboard's admin area; or "file", this file
    # alone, the admin area read-only.
    managed_from: Literal["dashboard", "file"] = "dashboard"
    _file: Path | None = PrivateAttr(None)  # the site file it was read from (`load`)

    @property
    def file(self) -> Path | None:
        return self._file

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("opening_hours")
    @classmethod
    def _weekdays(cls, v: dict[str, list[Span]]) -> dict[str, list[Span]]:
        return every_weekday(v)

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, params in v.items():
            _known_rule(name)
            _rule_params(name, params, name)
        return v

    @model_validator(mode="after")
    def _references(self) -> Self:
        rooms = [r.id for b in self.buildings for r in b.rooms]
        _unique("buildings", [b.id for b in self.buildings])
        _unique("rooms", rooms)
        _unique("devices", [d.id for d in self.devices])
        _unique("retired", [d.id for d in self.retired])
        retired = {d.id: d for d in self.retired}
        room_ids = set(rooms)
        for i, d in enumerate(self.devices):
            if d.id in retired:
                raise ValueError(f"@devices[{i}].id: {d.id!r} was the id of a retired device "
                                 f"({retired[d.id].name or d.id}); an id is never given twice")
        for i, d in enumerate(self.devices):
            if d.id in ("gateway", "alerts"):  # facility/<site>/gateway/… and …/alerts/… are the gateway's
                raise ValueError(f"@devices[{i}].id: {d.id!r} is reserved for the gateway itself")
            if d.room not in room_ids:
                raise ValueError(f"@devices[{i}].room: no building has a room {d.room!r}")
        self._sources_distinct()
        self._resolve_rules()
        return self

    def _resolve_rules(self) -> None:
        """Every device's parameters of every rule that applies to it, validated once here and
        read typed later (`spec.params_for(device)`). Devices of one kind share what none of them
        sets for itself (10,000 devices held 66,000 copies of a few dozen: 30 MB)."""
        specs = registry.specs()
        by_kind: dict[str, dict[str, RuleParams]] = {}
        complete: set[str] = set()
        for i, d in enumerate(self.devices):
            for name, params in d.rules.items():
                try:
                    _known_rule(name)
                    if not specs[name].applies(d.kind):
                        raise ValueError(f"rule {name!r} does not apply to a {d.kind}")
                    _rule_params(name, params, name)
                except ValueError as exc:
                    raise ValueError(f"@devices[{i}].rules: {exc}") from None
            if not d.rules and d.kind in complete:  # most devices: their kind's, already resolved
                d.use_rule_params(by_kind[d.kind])
                continue
            shared = by_kind.setdefault(d.kind, {})
            own: dict[str, RuleParams] = {}
            for spec in specs.values():
                if spec.id in d.rules:
                    own[spec.id] = spec.resolve(d, self.rules)
                elif spec.id not in shared and spec.applies(d.kind):
                    shared[spec.id] = spec.resolve(d, self.rules)
            d.use_rule_params(shared | own if own else shared)
            if not d.rules:  # every rule of its kind is in `shared` now
                complete.add(d.kind)

    def _sources_distinct(self) -> None:
        """No MQTT topic feeds two devices, none lies under the gateway's own `facility/<site>/`,
        and no meter is polled as two devices."""
        topics: dict[str, str] = {}
        meters: dict[tuple[str, ...], str] = {}
        buses: dict[str, str] = {}
        ours = f"facility/{self.id}/"
        for i, d in enumerate(self.devices):
            if d.source is None:
                continue
            for topic in d.source.topics():
                if topic.startswith(ours):
                    raise ValueError(f"@devices[{i}].source: {topic} lies under {ours}, the native topics")
                if topic in topics:
                    raise ValueError(f"@devices[{i}].source: topic {topic} already feeds device {topics[topic]!r}")
                topics[topic] = d.id
            key = d.source.bus_key()
            if key is not None:
                url, protocol = key[0], d.source.protocol
                if buses.setdefault(url, protocol) != protocol:
                    raise ValueError(f"@devices[{i}].source: {url} is a {buses[url]} bus already; "
                                     f"one bus speaks one protocol")
                if key in meters:
                    raise ValueError(f"@devices[{i}].source: {' '.join(key)} is already device {meters[key]!r}")
                meters[key] = d.id

    @model_validator(mode="after")
    def _alerting_references(self) -> Self:
        people = {p.id for p in self.duty.people}
        _unique("duty.people", [p.id for p in self.duty.people])
        for i, shift in enumerate(self.duty.shifts):
            for who in shift.chain:
                if who not in people:
                    raise ValueError(f"@duty.shifts[{i}].chain: no person {who!r} in duty.people")
        buildings = {b.id for b in self.buildings}
        _unique("notifications.channels", [c.id for c in self.notifications.channels])
        for i, channel in enumerate(self.notifications.channels):
            for b in channel.buildings or []:
                if b not in buildings:
                    raise ValueError(f"@notifications.channels[{i}].buildings: no building {b!r}")
            for r in channel.rules or []:
                if r not in registry.specs():
                    raise ValueError(f"@notifications.channels[{i}].rules: unknown rule {r!r}")
        channel_ids = {c.id for c in self.notifications.channels}
        for c in self.reports.channels or []:
            if c not in channel_ids:
                raise ValueError(f"@reports.channels: no notification channel {c!r}")
        for r in self.work_orders.rules:
            if r not in registry.specs():
                raise ValueError(f"@work_orders.rules.{r}: unknown rule {r!r}")
        return self

    @model_validator(mode="after")
    def _platform_references(self) -> Self:
        for device_id in self.platform.meters if self.platform is not None else ():
            device = self.device(device_id)
            if device is None:
                raise ValueError(f"@platform.meters.{device_id}: no device {device_id!r}")
            if not any(m.utility is not None for m in kinds()[device.kind].metrics):
                raise ValueError(f"@platform.meters.{device_id}: a {device.kind} has no meter reading to upload")
        return self

    @model_validator(mode="after")
    def _derived_subitems(self) -> Self:
        for i, derived in enumerate(self.derived_subitems):
            where = f"@derived_subitems[{i}]"
            main = self.device(derived.main)
            if main is None:
                raise ValueError(f"{where}.main: no device {derived.main!r}")
            if main.subitem is not None:
                raise ValueError(f"{where}.main: {derived.main} is tagged {main.subitem} itself; "
                                 "its use would count twice")
            try:
                check_subitem(derived.subitem, utility_of(main.kind))
            except ValueError as exc:
                raise ValueError(f"{where}.subitem: {exc}") from None
            for j, sub in enumerate(derived.minus):
                device = self.device(sub)
                if device is None:
                    raise ValueError(f"{where}.minus[{j}]: no device {sub!r}")
                if sub == derived.main or derived.minus.index(sub) != j:
                    raise ValueError(f"{where}.minus[{j}]: {sub} is taken off twice or is the main meter")
                if device.kind != main.kind:
                    raise ValueError(f"{where}.minus[{j}]: {sub} is a {device.kind}, the main meter a {main.kind}: "
                                     "one category")
        return self

    @model_validator(mode="after")
    def _sweep_references(self) -> Self:
        for d in self.sweep.standby_w:
            if self.device(d) is None:
                raise ValueError(f"@sweep.standby_w.{d}: no device {d!r}")
        return self

    @model_validator(mode="after")
    def _production(self) -> Self:
        if self.mode != "production":
            return self
        if self.auth.public_read:
            raise ValueError("@auth.public_read: production mode refuses anonymous access to the API")
        if self.mqtt.username is None or self.mqtt.password is None:
            raise ValueError("@mqtt.password: production mode refuses anonymous MQTT: set mqtt.username "
                             "and the password (FACILITY_MQTT__PASSWORD)")
        secrets = {"mqtt.password": self.mqtt.password}
        if self.influxdb is not None:
            secrets["influxdb.token"] = self.influxdb.token
        if self.platform is not None:
            secrets["platform.auth_key"] = self.platform.auth_key
        for where, secret in secrets.items():
            problem = placeholder_problem(secret.get_secret_value())
            if problem:
                raise ValueError(f"@{where}: production mode refuses this secret: {problem}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device(self, device_id: str) -> Device | None:
        return self._index.devices.get(device_id)

    @property
    def _index(self) -> _SiteIndex:
        """Devices, rooms and buildings by id, made once: the rule engine looks up every
        device's room and building, and searching the lists took seconds for 10,000 devices."""
        return kept(self, "_kept_index", (self.devices, self.buildings),
                    lambda: _SiteIndex(self.devices, self.buildings))

    def room(self, room_id: str) -> Room:
        return self._index.rooms[room_id]

    def building_of(self, room_id: str) -> Building:
        return self._index.buildings[room_id]

    def people(self) -> int | None:
        """The site's headcount: given, or the sum of its buildings' where each gives one."""
        counts = [b.headcount for b in self.buildings]
        return self.headcount or (sum(c for c in counts if c) if all(counts) else None)

    def floor_area_m2(self) -> float | None:
        areas = [b.floor_area_m2 for b in self.buildings]
        return sum(a for a in areas if a) if all(areas) else None

    def day_word(self, school_day: bool = True) -> tuple[str, str]:
        """What a day people come in is called, in Chinese and English: a kindergarten's 开园日,
        a school's 上学日 (and the days they do not: 非开园日, 非上学日). Every report and record
        says it from here; the dashboard from the site's `kind` (i18n.js dayWord)."""
        if self.kind == "kindergarten":
            return ("开园日", "open day") if school_day else ("非开园日", "closed day")
        return ("上学日", "school day") if school_day else ("非上学日", "no school")

    def day_kind_words(self, kind: str) -> tuple[str, str]:
        """A kind of day of the school calendar (gateway/schedule/school_calendar.py) in words."""
        if kind == "school_day":
            return self.day_word()
        if kind == "makeup_day":
            zh, en = self.day_word()
            return f"调休{zh}", f"make-up {en}"
        return _DAY_KINDS.get(kind, (kind, kind))

    def main_meters(self, kind: str, building: Building) -> list[Device]:
        """The meters of `kind` that together measure all of `building`: those in its plant
        rooms (a building's main meter), or, where it has none there, every one of its meters.
        Sub-meters behind a main meter are left out, so totals never count a kWh twice."""
        rooms = {r.id: r.type for r in building.rooms}
        meters = [d for d in self.devices if d.kind == kind and d.room in rooms]
        main = [d for d in meters if rooms[d.room] == "plant"]
        return main or meters


class _SiteIndex:
    """A site's devices by id, and its rooms and each room's building by the room's id."""

    def __init__(self, devices: list[Device], buildings: list[Building]) -> None:
        self.devices = {d.id: d for d in devices}
        self.rooms = {r.id: r for b in buildings for r in b.rooms}
        self.buildings = {r.id: b for b in buildings for r in b.rooms}


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for n, i in enumerate(ids):
        if i in seen:
            raise ValueError(f"@{what}[{n}].id: id {i!r} is used twice")
        seen.add(i)



def load(path: Path) -> SiteConfig:
    """Read and validate a site file; any problem raises `ConfigError` naming file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [Problem((), None, f"读不到这个文件：{exc.strerror}",
                                              f"cannot read: {exc.strerror}")]) from None
    site = parse(text, str(path))
    site._file = path.resolve()
    return site


def load_district(folder: Path, state_url: str, data_dir: Path) -> dict[str, SiteConfig]:
    """The schools of a district: every site file in `folder` (*.yaml, *.yml), each on the
    shared state store and with a data folder of its own under `data_dir`. Any file with a
    problem, or two with one site id, raises `ConfigError`: every replica must run the same
    schools, so a replica does not start on part of them."""
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    if not files:
        raise ConfigError(str(folder), [Problem((), None, "这个文件夹里没有站点文件（*.yaml）",
                                                "no site files (*.yaml) in this folder")])
    sites: dict[str, SiteConfig] = {}
    for path in files:
        site = load(path)
        if site.id in sites:
            raise ConfigError(str(path), [Problem(("id",), None, f"站点编号 {site.id} 已被 {sites[site.id].file} 使用",
                                                  f"site id {site.id} is used by {sites[site.id].file} already")])
        storage = site.storage.model_copy(update={"data_dir": data_dir / site.id, "state_url": state_url})
        sites[site.id] = site.model_copy(update={"storage": storage})
    return sites


def parse(text: str, source: str) -> SiteConfig:
    # A tab, a full-width space or colon where YAML wants its own: YAML's message would be
    # cryptic (or the key silently a string), so these are said first, with any other problem.
    hints = text_hints(text)
    data = _data(text, source, hints)
    try:
        return SiteConfig(**data)
    except ValidationError as exc:
        lines: dict[tuple[str | int, ...], int] = {}
        _lines(_compose(text), (), lines)
        raise ConfigError(source, [*hints, *problems(exc, data, lines)]) from None


def _data(text: str, source: str, hints: list[Problem]) -> dict[str, Any]:
    """The file's plain data, or ConfigError where it is not YAML, not a mapping or too big."""
    try:
        try:
            data = _Builder(yaml.CSafeLoader(text)).data()  # libyaml: seven times faster than PyYAML's parser
        except yaml.YAMLError:  # a file libyaml refuses: PyYAML's parser says why (or reads it)
            data = _Builder(yaml.SafeLoader(text)).data()
    except _TooBig:
        raise ConfigError(source, [*hints, Problem(
            (), None, f"嵌套超过 {MAX_DEPTH} 层或展开后超过 {MAX_NODES:,} 个值，不像站点文件",
            f"nested more than {MAX_DEPTH} levels deep or over {MAX_NODES:,} values once its aliases "
            "are expanded: not a site file")]) from None
    except _Refused as refused:
        raise ConfigError(source, [*hints, Problem((), refused.line, refused.zh, refused.en)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        why = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [*hints, Problem((), mark.line + 1 if mark else None,
                                                   f"不是有效的 YAML：{why}", f"not valid YAML: {why}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, [*hints, Problem((), 1, "站点文件应是“键: 值”的映射",
                                                   "the site file must be a mapping of keys to values")])
    return data


_STR: Final = "tag:yaml.org,2002:str"
_COLLECTION_TAGS: Final = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")  # as written, or plain
# Far deeper and larger than any site file (a Modbus register inside a device inside the list
# is 5 levels; 10,000 devices are about 100,000 values).
MAX_DEPTH: Final = 32
MAX_NODES: Final = 1_000_000


class _TooBig(Exception):
    """Deeper than MAX_DEPTH, or more than MAX_NODES values with its aliases expanded."""


class _Refused(Exception):
    """YAML a site file cannot be: a mapping or a list as a key, an alias to no anchor, a tag
    no safe constructor knows, two documents."""

    def __init__(self, zh: str, en: str, mark: Any) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en
        self.line: int | None = mark.line + 1 if mark is not None else None


@dataclass(slots=True)
class _Open:
    """A mapping or list being read: what it holds so far, the key waiting for its value,
    its anchor, and the values in it (itself and keys included) and its height, aliases expanded."""

    value: dict[str, Any] | list[Any]
    anchor: str | None
    mapping: bool
    key: str | None = None
    size: int = 1
    height: int = 1

    def put(self, value: Any, size: int, height: int) -> None:
        self.size += size
        if height >= self.height:
            self.height = height + 1
        if isinstance(self.value, list):
            self.value.append(value)
        elif self.key is None:
            self.key = value
        else:
            self.value[self.key] = value
            self.key = None


class _Builder:
    """Plain data from a YAML parser's events (a key is its text as written), bounded as it
    goes: refused past MAX_DEPTH levels or MAX_NODES values, aliases counted expanded and
    copied only once counted (a hostile file may nest thousands of levels, or alias a list of
    lists into billions of values).

    No node tree: built whole for 10,000 devices it took twice the memory of the site, and
    the site's strings, allocated among its nodes, then kept that memory from the system for
    as long as the gateway ran (45 MB)."""

    def __init__(self, loader: yaml.CSafeLoader | yaml.SafeLoader) -> None:
        self._loader = loader
        self._stack: list[_Open] = []
        self._anchors: dict[str, tuple[Any, str | None, int, int]] = {}  # → value, its text, size, height
        self._count = 0
        self._documents = 0
        self._root: Any = None

    def data(self) -> Any:
        next_event, take = self._loader.get_event, self._take
        try:
            while (event := next_event()) is not None:
                take(event)
        finally:
            self._loader.dispose()
        return self._root

    def _take(self, event: yaml.Event) -> None:
        if type(event) is yaml.ScalarEvent:  # most of them, so first and in as few calls as may be
            self._count += 1
            if self._count > MAX_NODES:
                raise _TooBig
            key = self._wants_key()
            value = event.value if key else self._scalar(event)
            if event.anchor is not None:
                self._anchors[event.anchor] = (self._scalar(event) if key else value, event.value, 1, 0)
            self._put(value, 1, 0)
        elif isinstance(event, yaml.DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                raise _Refused("一个文件里有两份文档（---）：站点文件只能有一份",
                               "two documents (---) in one file: a site file is one", event.start_mark)
        elif isinstance(event, yaml.CollectionStartEvent):
            self._no_key(event)
            if event.tag not in _COLLECTION_TAGS:
                raise _not_a_tag(event.tag, event)
            self._count += 1
            if len(self._stack) >= MAX_DEPTH or self._count > MAX_NODES:
                raise _TooBig
            mapping = isinstance(event, yaml.MappingStartEvent)
            self._stack.append(_Open({} if mapping else [], event.anchor, mapping))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = self._stack.pop()
            if done.anchor is not None:
                self._anchors[done.anchor] = (done.value, None, done.size, done.height)
            self._put(done.value, done.size, done.height)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)

    def _alias(self, event: yaml.AliasEvent) -> None:
        if event.anchor not in self._anchors:
            raise _Refused(f"别名 *{event.anchor} 之前没有锚点 &{event.anchor}",
                          f"the alias *{event.anchor} has no anchor &{event.anchor} before it", event.start_mark)
        value, text, size, height = self._anchors[event.anchor]
        if self._wants_key():
            if text is None:
                raise _not_a_key(event)
            value = text
        self._count += size
        if len(self._stack) + height > MAX_DEPTH or self._count > MAX_NODES:
            raise _TooBig
        self._put(copy.deepcopy(value) if height else value, size, height)  # each use a copy of its own

    def _put(self, value: Any, size: int, height: int) -> None:
        if self._stack:
            self._stack[-1].put(value, size, height)
        else:
            self._root = value

    def _no_key(self, event: yaml.Event) -> None:
        if self._wants_key():
            raise _not_a_key(event)

    def _wants_key(self) -> bool:
        return bool(self._stack) and self._stack[-1].mapping and self._stack[-1].key is None

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        """What YAML's safe constructor gives for its tag (a string as it is, most values),
        the text where its value is impossible (the date 2026-02-30: validation names it, with
        its line)."""
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
        if tag == _STR:
            return event.value
        if tag not in yaml.constructor.SafeConstructor.yaml_constructors:
            raise _not_a_tag(tag, event)
        marks: Any = (event.start_mark, event.end_mark)
        try:
            return yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, event.value, *marks),
                                                                       deep=True)
        except ValueError:
            return event.value


def _not_a_tag(tag: str | None, event: yaml.Event) -> _Refused:
    written = str(tag).replace("tag:yaml.org,2002:", "!!", 1)
    return _Refused(f"站点文件不能用标签 {written}", f"a site file may not use the tag {written}", event.start_mark)


def _not_a_key(event: yaml.Event) -> _Refused:
    return _Refused("键必须是文字，不能是映射或列表", "a key must be text, not a mapping or a list", event.start_mark)


def _compose(text: str) -> yaml.Node | None:
    """The node tree, for the lines of a file's problems: by libyaml, else by PyYAML."""
    try:
        return yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader)


def _lines(node: yaml.Node | None, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> None:
    """The line of every value under `path` in `lines`; of a key, the key's line, not its value's."""
    if node is None:
        return
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _lines(value_node, (*path, key_node.value), lines)
            lines[(*path, key_node.value)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, (*path, i), lines)


def _describe(source: str, problem: Problem) -> str:
    """`file:line: key: <zh>`, then the English indented on the next line."""
    where = f"{source}:{problem.line}" if problem.line is not None else source
    key = f" {problem.key}:" if problem.key else ""
    return f"{where}:{key} {problem.zh}\n    {problem.en}"
