"""The admin area's API: the school's settings read, changed section by section, exported and
imported as a site file; devices added, edited, moved and retired; a channel tried with a test
message. Admins only. Every change goes through `SettingsEditor` (gateway/config/editor.py):
validated by the site file's model, stored, audited and applied at once."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from datetime import date, time
from enum import Enum
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, Lt
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, TypeAdapter
from pydantic_core import to_jsonable_python

from devices import kinds
from devices.base import Label
from devices.vendors import PROTOCOL_WORDS, sources
from gateway.alerting.severity import Severity
from gateway.alerting.trade import Trade
from gateway.api.access import Admin, PeopleDep, Viewer
from gateway.api.deps import CalendarDep, ClockDep, NotifierDep, SettingsDep, SiteDep
from gateway.api.problems import GUARDED, problems, refusal
from gateway.auth.actor import Actor
from gateway.auth.people import People
from gateway.config import ConfigError, SiteConfig, parse
from gateway.config.editor import Changed, SettingsError, Words
from gateway.config.notifications import Channel, NotificationSettings
from gateway.config.problems import Problem
from gateway.config.stored import masked_school, reveal, school_of, unmasked
from gateway.notify.channels import channels
from gateway.notify.message import ChannelSettings
from gateway.reports.subitems import subitems_for, words
from gateway.rules.registry import specs
from gateway.site import ROOM_TYPE_WORDS, WEEKDAY_WORDS, utility_of

router = APIRouter(tags=["admin"])

# The sections changed as a whole by `PUT /api/v1/admin/config/{section}`; `school` is the
# school's own fields. Devices have their own routes (added, edited, retired one by one).
SCHOOL_FIELDS: Final = ("name", "kind", "timezone", "headcount")
Section = Literal["school", "opening_hours", "buildings", "calendar", "duty", "notifications", "tariffs",
                  "reports", "rules", "work_orders", "samples", "fire_patrol", "sweep"]

SCHOOL_KINDS: Final[dict[str, Words]] = {
    "kindergarten": ("幼儿园", "kindergarten"), "primary": ("小学", "primary school"),
    "secondary": ("中学", "secondary school"), "school": ("学校", "school"),
}
CHANNEL_TYPES: Final[dict[str, Words]] = {
    "wecom": ("企业微信群机器人", "WeCom group robot"), "dingtalk": ("钉钉群机器人", "DingTalk group robot"),
    "email": ("电子邮件", "E-mail"), "webhook": ("Webhook（HTTP 接口）", "Webhook (HTTP)"),
    "mqtt": ("MQTT 告警主题", "MQTT alert topics"),
}


# The words of the channels' and the sources' own settings (their models carry no labels).
FIELD_WORDS: Final[dict[str, Words]] = {
    "url": ("地址", "Address (URL)"), "secret": ("加签密钥", "Signing secret"),
    "mention_duty": ("@值班的人", "Mention the person on duty"), "host": ("邮件服务器", "Mail server"),
    "port": ("端口", "Port"), "starttls": ("使用 STARTTLS 加密", "Use STARTTLS"), "username": ("登录名", "Login"),
    "password": ("密码", "Password"), "sender": ("发件人", "Sender"), "to": ("收件人", "Recipients"),
    "to_duty": ("同时发给值班的人", "Also to the person on duty"),
    "name": ("在 Zigbee2MQTT 中的名称", "Its name in Zigbee2MQTT"),
    "base_topic": ("Zigbee2MQTT 的主题前缀", "Zigbee2MQTT's base topic"), "topic": ("Tasmota 主题", "Tasmota topic"),
    "full_topic": ("Tasmota 完整主题格式", "Tasmota full topic"), "relay": ("继电器序号", "Relay number"),
    "sensor": ("传感器名称", "Sensor name"), "prefix": ("Shelly 主题前缀", "Shelly topic prefix"),
    "switch": ("开关序号", "Switch number"), "unit": ("从站地址", "Unit id"), "preset": ("电表型号", "Meter model"),
    "byte_order": ("字节顺序", "Byte order"), "word_order": ("字顺序", "Word order"),
    "timeout_s": ("超时", "Timeout"),
    "max_gap": ("合并读取的最大间隔（寄存器数）", "Largest gap read together (registers)"),
    "address": ("电表地址（12 位数字）", "Meter address (12 digits)"), "energy": ("电能读数", "Energy reading"),
}
# The words of the choices among them (a meter's model, e.g. sdm120, is its own name).
CHOICE_WORDS: Final[dict[str, Words]] = {
    "forward": ("正向有功电能", "forward active energy"), "combined": ("组合有功电能", "combined active energy"),
    "big": ("高位在前", "most significant first"), "little": ("低位在前", "least significant first"),
}
# A channel's routing (every channel has it) is set in its own controls, not with its settings.
_ROUTING: Final = frozenset(ChannelSettings.model_fields)


class Choice(BaseModel):
    id: str
    zh: str
    en: str


class FieldOut(BaseModel):
    """One value a person sets (a kind's setting, a rule's parameter), as a form shows it."""

    key: str
    zh: str
    en: str
    unit_zh: str
    unit_en: str
    type: Literal["number", "integer", "boolean", "text", "choice", "time", "list"]
    default: Any = Field(description="the value when none is given")
    required: bool
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    choices: list[Choice] | None = None
    secret: bool = Field(False, description="written, never read back: shown as ********** once set")


class WithFields(Choice):
    fields: list[FieldOut] = Field(description="its own settings, as a form shows them")


class KindOut(Choice):
    settings: list[FieldOut]
    subitems: list[Choice] = Field(description="the sub-items (分项) a meter of this kind may be tagged with")
    rules: list[str] = Field(description="the rules that watch a device of this kind")


class RuleOut(Choice):
    params: list[FieldOut]


class Catalog(BaseModel):
    kinds: list[KindOut]
    rules: list[RuleOut]
    room_types: list[Choice]
    protocols: list[WithFields]
    school_kinds: list[Choice]
    channel_types: list[WithFields]
    weekdays: list[Choice]
    day_keys: list[Choice]
    trades: list[Choice]
    severities: list[Choice]


class ConfigOut(BaseModel):
    version: int = Field(description="the settings' version; send it back with a change")
    read_only: bool = Field(description="managed from the site file: shown, never changed here")
    source: Literal["file", "dashboard"]
    file_pending: bool = Field(description="the site file changed since it seeded these settings and was not "
                                           "taken (someone changed them here): import it to see its differences")
    file: str | None = Field(description="the site file the gateway was started with")
    changed_at: int | None = Field(description="when this version was made (Unix ms)")
    changed_by: Actor | None = Field(description="who made it; none: taken from the site file")
    changed_from: Literal["file", "dashboard", "import"] | None
    site: dict[str, Any] = Field(description="the school's part of the site file as JSON, secrets masked")
    catalog: Catalog


def _integral(value: object) -> object:
    """A JSON number without a fraction, as an integer: JSON Schema has 5.0 an integer (a
    client in JavaScript may well send it so), which the strict models below refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# The settings' version a change was made from (409 if another came in between).
Version = Annotated[int, BeforeValidator(_integral)]


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Version
    # The section as a whole (a mapping; the buildings a list), null to remove it.
    value: dict[str, Any] | list[Any] | None


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Version
    device: dict[str, Any]


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Version


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    yaml: str = Field(max_length=2_000_000)
    apply: bool = False
    version: Version | None = Field(None, description="needed to apply")


class WordsOut(BaseModel):
    zh: str
    en: str


class ChangedOut(BaseModel):
    version: int
    changes: list[WordsOut]


class ProblemOut(BaseModel):
    path: list[str | int]
    zh: str
    en: str
    line: int | None = Field(None, description="the line of an imported file it is on")


class PreviewOut(BaseModel):
    changes: list[WordsOut]
    problems: list[ProblemOut]
    version: int | None = Field(None, description="the new version, when applied")


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    channel: Channel = Field(description="a channel as in the site file; a secret sent as the mask "
                                         "(**********) is the saved channel's")


class TestOut(BaseModel):
    ok: bool
    zh: str
    en: str


class MonthDay(BaseModel):
    date: date
    kind: str
    kind_zh: str
    kind_en: str
    school_day: bool
    name_zh: str
    name_en: str
    guard_duty: bool


# --- the catalog ------------------------------------------------------------------------------


def _words_fields(model: type[BaseModel], skip: frozenset[str]) -> list[FieldOut]:
    """A channel's or a source's own settings that a form can show (not lists of models or maps)."""
    labels = {k: Label(*FIELD_WORDS[k]) for k in model.model_fields if k in FIELD_WORDS and k not in skip}
    return _label_fields(model, labels)


def _label_fields(model: type[BaseModel], labels: dict[str, Label]) -> list[FieldOut]:
    out = []
    for key, label in labels.items():
        info = model.model_fields[key]
        kind, choices = _form_type(info.annotation)
        bounds: dict[str, Any] = {}
        for m in info.metadata:
            if isinstance(m, Gt | Ge):
                low: Any = m.gt if isinstance(m, Gt) else m.ge
                bounds |= {"min": float(low), "exclusive_min": isinstance(m, Gt)}
            if isinstance(m, Lt | Le):
                high: Any = m.lt if isinstance(m, Lt) else m.le
                bounds |= {"max": float(high), "exclusive_max": isinstance(m, Lt)}
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append(FieldOut(key=key, zh=label.zh, en=label.en, unit_zh=label.unit_zh, unit_en=label.unit_en,
                            type=kind, default=TypeAdapter(Any).dump_python(default, mode="json"),
                            required=info.is_required(), choices=choices, secret=_secret(info.annotation),
                            **bounds))
    return out


def _secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _form_type(annotation: Any) -> tuple[Any, list[Choice] | None]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _form_type(args[0]) if len(args) == 1 else ("text", None)
    if origin is Literal:
        return "choice", [Choice(id=str(v), zh=CHOICE_WORDS.get(str(v), (str(v),) * 2)[0],
                                 en=CHOICE_WORDS.get(str(v), (str(v),) * 2)[1]) for v in get_args(annotation)]
    if origin is Annotated:
        return _form_type(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, Severity):
        return "choice", [Choice(id=s.value, zh=s.words[0], en=s.words[1]) for s in Severity]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice", [Choice(id=str(e.value), zh=str(e.value), en=str(e.value)) for e in annotation]
    simple = {bool: "boolean", int: "integer", float: "number", str: "text", time: "time"}
    if annotation in simple:
        return simple[annotation], None
    return ("list" if origin in (list, tuple, set, frozenset) else "text"), None


def _subitems(kind: str) -> list[Choice]:
    utility = utility_of(kind)
    return [] if utility is None else [Choice(id=s.code, zh=words(s.code)[0], en=words(s.code)[1])
                                      for s in subitems_for(utility)]


def catalog(site: SiteConfig) -> Catalog:
    """What each value may be, in words; a kindergarten's days are 开园日."""
    rules = specs()
    return Catalog(
        kinds=[KindOut(id=k.name, zh=k.label_zh, en=k.label_en, settings=_label_fields(k.settings, k.setting_labels()),
                       subitems=_subitems(k.name), rules=[r.id for r in rules.values() if r.applies(k.name)])
               for k in kinds().values()],
        rules=[RuleOut(id=r.id, zh=r.label_zh, en=r.label_en, params=_label_fields(r.params, r.param_labels()))
               for r in rules.values()],
        room_types=_choices(ROOM_TYPE_WORDS),
        protocols=[WithFields(id=p, zh=PROTOCOL_WORDS[p][0], en=PROTOCOL_WORDS[p][1],
                              fields=_words_fields(model, frozenset({"protocol"}))) for p, model in sources().items()],
        school_kinds=_choices(SCHOOL_KINDS),
        channel_types=[WithFields(id=c, zh=CHANNEL_TYPES[c][0], en=CHANNEL_TYPES[c][1],
                                  fields=_words_fields(module.SETTINGS, _ROUTING)) for c, module in channels().items()],
        weekdays=_choices(WEEKDAY_WORDS),
        day_keys=_choices(WEEKDAY_WORDS | {"school_day": site.day_word(), "closed_day": site.day_word(False),
                                           "guard_duty": ("护校日", "guard duty day")}),
        trades=_choices({t.value: t.words for t in Trade}),
        severities=_choices({s.value: s.words for s in Severity}),
    )


def _choices(words: dict[str, Words]) -> list[Choice]:
    return [Choice(id=i, zh=zh, en=en) for i, (zh, en) in words.items()]


# --- reading and changing -----------------------------------------------------------------------


def _config(site: SiteConfig, settings: SettingsDep, people: People) -> ConfigOut:
    made = settings.current()
    return ConfigOut(version=settings.version, read_only=settings.read_only, source=site.managed_from,
                     file_pending=settings.file_pending, file=None if settings.file is None else str(settings.file),
                     changed_at=made.at_ms, changed_by=None if made.origin == "file" else people.name(made.actor),
                     changed_from=made.origin, site=masked_school(site), catalog=catalog(site))


def _changed(settings: SettingsDep, version: int, edit: Callable[[dict[str, Any]], dict[str, Any]],
             admin: Admin) -> ChangedOut:
    try:
        changed: Changed = settings.change(version, edit, admin.name)
    except SettingsError as exc:
        raise _refused(exc) from None
    return ChangedOut(version=changed.version, changes=_words_out(changed.changes))


def _words_out(words: list[Words]) -> list[WordsOut]:
    return [WordsOut(zh=zh, en=en) for zh, en in words]


def _problems_out(found: list[Problem]) -> list[ProblemOut]:
    return [ProblemOut(path=list(p.path), zh=p.zh, en=p.en, line=p.line) for p in found]


def _refused(exc: SettingsError) -> HTTPException:
    if not exc.problems:
        return refusal(exc.status, exc.zh, exc.en)
    return HTTPException(exc.status, {"zh": exc.zh, "en": exc.en,
                                      "problems": [p.model_dump() for p in _problems_out(exc.problems)]})


# Refusals: `{"detail": {"zh", "en"}}`; a wrong value's (422) also has `problems`, each at its place.
CHANGE_ANSWERS: Final = problems(400, 401, 403, 409, 422)


@router.get("/api/v1/admin/config", responses=CHANGE_ANSWERS)
def get_config(site: SiteDep, settings: SettingsDep, people: PeopleDep, _: Admin) -> ConfigOut:
    """The school's settings as they are now, with what each value may be."""
    return _config(site, settings, people)


@router.put("/api/v1/admin/config/{section}", responses=CHANGE_ANSWERS)
async def put_section(section: Section, body: ChangeIn, settings: SettingsDep, admin: Admin) -> ChangedOut:
    """Changes one section as a whole (the school's name and kind: `school`)."""

    def edit(school: dict[str, Any]) -> dict[str, Any]:
        if section == "school":
            if not isinstance(body.value, dict) or not set(body.value) <= set(SCHOOL_FIELDS):
                raise SettingsError(422, "学校信息只有名称、类型、时区和人数。",
                                    "The school's fields are its name, kind, time zone and headcount.")
            for key in SCHOOL_FIELDS:
                school.pop(key, None)
            school.update({k: v for k, v in body.value.items() if v is not None})
            return school
        value = unmasked(body.value, school.get(section)) if section == "notifications" else body.value
        if value is None:
            school.pop(section, None)
        else:
            school[section] = value
        return school

    return _changed(settings, body.version, edit, admin)


def _device(school: dict[str, Any], device_id: str) -> int:
    index = next((i for i, d in enumerate(school.get("devices", [])) if d.get("id") == device_id), None)
    if index is None:
        raise SettingsError(404, f"没有编号为 {device_id} 的设备。", f"There is no device {device_id}.")
    return index


@router.post("/api/v1/admin/devices", status_code=201, responses=CHANGE_ANSWERS)
async def add_device(body: DeviceIn, settings: SettingsDep, admin: Admin) -> ChangedOut:
    """Adds a device (also how a discovered one is adopted): it is watched from its first reading."""

    def edit(school: dict[str, Any]) -> dict[str, Any]:
        school.setdefault("devices", []).append(body.device)
        return school

    return _changed(settings, body.version, edit, admin)


@router.put("/api/v1/admin/devices/{device_id}", responses=CHANGE_ANSWERS | problems(404))
async def edit_device(device_id: Annotated[str, Path(max_length=64)], body: DeviceIn, settings: SettingsDep,
                      admin: Admin) -> ChangedOut:
    """Edits or moves a device; its id stays (its readings and alerts are kept under it)."""

    def edit(school: dict[str, Any]) -> dict[str, Any]:
        school["devices"][_device(school, device_id)] = {**body.device, "id": device_id}
        return school

    return _changed(settings, body.version, edit, admin)


@router.post("/api/v1/admin/devices/{device_id}/retire",
             responses=CHANGE_ANSWERS | problems(404))
async def retire_device(device_id: Annotated[str, Path(max_length=64)], body: VersionIn, settings: SettingsDep,
                        clock: ClockDep, admin: Admin) -> ChangedOut:
    """Takes a device out of service: no rule watches it and it reports no more; its readings,
    alerts and records stay (its open alerts end). Its id is never given again."""

    def edit(school: dict[str, Any]) -> dict[str, Any]:
        device = school["devices"].pop(_device(school, device_id))
        school.setdefault("retired", []).append({
            "id": device_id, "kind": device["kind"], "room": device["room"], "name": device.get("name", ""),
            "retired_at_ms": int(clock.now().timestamp() * 1000)})
        return school

    return _changed(settings, body.version, edit, admin)


@router.get("/api/v1/admin/config/export", response_class=Response,
            responses={200: {"content": {"application/yaml": {}}, "description": "the site file"}})
async def export_config(site: SiteDep, settings: SettingsDep, clock: ClockDep, _: Admin) -> Response:
    """The school's settings as a site file (`check-config` accepts it; importing it changes
    nothing). It holds the channels' secrets: keep it as safe as the site file."""
    header = (f"# {site.name}: the school's settings, version {settings.version}, exported "
              f"{clock.now().astimezone(site.tz):%Y-%m-%d %H:%M}.\n"
              "# The deployment's part (mqtt, storage, api, …) is not included: add it, or keep it in its own file.\n")
    text = header + yaml.safe_dump(school_of(site), allow_unicode=True, sort_keys=False, width=120)
    return Response(text, media_type="application/yaml; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="site-{site.id}-v{settings.version}.yaml"'})


@router.post("/api/v1/admin/config/import", responses=CHANGE_ANSWERS)
async def import_config(body: ImportIn, settings: SettingsDep, admin: Admin) -> PreviewOut:
    """A site file: what it would change (`apply: false`), or applied. Only its school part is
    taken; the deployment's part of a running gateway stays as it is."""
    try:  # beside the event loop: a file of 2 MB takes seconds to read, and ingest goes on meanwhile
        school = school_of(await asyncio.to_thread(parse, body.yaml, "site file"))
    except ConfigError as exc:
        return PreviewOut(changes=[], problems=_problems_out(exc.problems))
    try:
        if not body.apply:
            return PreviewOut(changes=_words_out(settings.preview(school)[1]), problems=[])
        if body.version is None:
            raise SettingsError(422, "应用前请先预览。", "Preview before applying: send the version you saw.")
        changed = settings.change(body.version, lambda _: school, admin.name, "import")
    except SettingsError as exc:
        if exc.status != 422:
            raise _refused(exc) from None
        return PreviewOut(changes=[], problems=_problems_out(exc.problems) or [ProblemOut(path=[], zh=exc.zh,
                                                                                         en=exc.en)])
    return PreviewOut(changes=_words_out(changed.changes), problems=[], version=changed.version)


_CHANNELS: Final = TypeAdapter(NotificationSettings)


@router.post("/api/v1/admin/channels/test", responses=CHANGE_ANSWERS)
async def try_channel(body: TestIn, site: SiteDep, notifier: NotifierDep, _: Admin) -> TestOut:
    """Sends one test message through a channel, saved or not yet, and says whether it arrived."""
    sent = to_jsonable_python(reveal(body.channel.model_dump()))
    stored = next((c for c in school_of(site).get("notifications", {}).get("channels", [])
                   if c.get("id") == sent["id"]), None)
    channel: ChannelSettings = _CHANNELS.validate_python({"channels": [unmasked(sent, stored)]}).channels[0]
    failed = await notifier.test(channel)
    if failed is None:
        return TestOut(ok=True, zh="测试消息已送达。", en="The test message was delivered.")
    return TestOut(ok=False, zh=f"没有送达：{failed}", en=f"Not delivered: {failed}")


@router.get("/api/v1/calendar/month", tags=["calendar"], responses=GUARDED)
async def calendar_month(site: SiteDep, calendar: CalendarDep, _: Viewer,
                         month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                                     description="YYYY-MM")]) -> list[MonthDay]:
    """Each day of a month with its kind (上学日, 周末, 法定节假日, 寒假 …), for the calendar's month view."""
    if not 1971 <= int(month[:4]) <= 9998:
        raise HTTPException(422, "the month's date must lie between 1971 and 9998")
    first = date.fromisoformat(f"{month}-01")
    days = []
    d = first
    while d.month == first.month:
        info = calendar.day(d)
        zh, en = site.day_kind_words(info.kind)
        days.append(MonthDay(date=d, kind=info.kind, kind_zh=zh, kind_en=en, school_day=info.school_day,
                             name_zh=info.name_zh, name_en=info.name_en, guard_duty=info.guard_duty))
        d = date.fromordinal(d.toordinal() + 1)
    return days

