"""What the inbox proposes for a discovered device: its kind, an id, a name and the site
file's `source:` (checked with the real source model), or why nothing fits; the Mosquitto
ACL lines and the dynamic-security commands that let the gateway read it (docs/discovery.md).

Everything here is derived from the entry and the site file as it is now, so an entry the
site file has taken up (same source topics, or the same native device id) is `adopted`
without any state of its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from devices import kinds
from devices.vendors import PROTOCOL_WORDS, VendorSource, sources
from gateway.config import SiteConfig
from gateway.discovery.inbox import Entry
from gateway.discovery.sightings import Sighting
from gateway.site import nested

# How each protocol is called, for people (zh, en).
PROTOCOLS: Final = {
    **PROTOCOL_WORDS,
    "homeassistant": ("Home Assistant 自动发现", "Home Assistant discovery"),
    "native": ("本网关协议（JSON）", "the gateway's own JSON"),
}
STATES: Final = {"new": ("新发现", "new"), "dismissed": ("已忽略", "dismissed")}
# Why no suggestion, by code (zh, en).
WHY: Final = {
    "shelly_gen1": ("第一代 Shelly 设备：网关只读取第二代及以后（Plus、Pro）的 Shelly；刷成 Tasmota 固件后可以接入",
                    "a first-generation Shelly: the gateway reads Shelly Gen2 and later (Plus, Pro) only; "
                    "flashed with Tasmota it can be added"),
    "ha_foreign": ("只在 Home Assistant 自动发现中出现，它的数据主题不是网关能读取的来源"
                   "（Zigbee2MQTT、Tasmota、Shelly 或本网关协议）",
                   "announced only through Home Assistant discovery, on topics the gateway cannot read "
                   "(it reads Zigbee2MQTT, Tasmota, Shelly and its own JSON)"),
    "no_config": ("还没有收到它的 Tasmota 发现配置，不知道它的主题",
                  "its Tasmota discovery config has not been heard yet, so its topic is unknown"),
    "nothing_known": ("它报告的内容里没有网关任何设备类型记录的读数",
                      "it reports nothing that any of the gateway's device kinds records"),
}
_CJK: Final = re.compile(r"[\u4e00-\u9fff]")
# A name that is only an address (a Zigbee device not renamed yet): no name for people.
_ADDRESS: Final = re.compile(r"^(0x)?[0-9a-fA-F]{12,16}$")
_NOT_IDENT: Final = re.compile(r"[^A-Za-z0-9_.-]+")
_IDENT: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The gateway's login and its role under the dynamic security plugin (docs/discovery.md).
GATEWAY_LOGIN: Final = "gateway"


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: str
    name: str
    kind: str
    source: dict[str, Any] | None  # None: native JSON on facility/<site>/<id>/…


def adopted(entry: Entry, site: SiteConfig) -> bool:
    """Whether a device of the site file reads what this entry is."""
    facts = entry.facts
    if facts.protocol == "native":
        return any(d.id == facts.said for d in site.devices)
    model = _source_model(facts.source)
    if isinstance(model, str) or model is None:
        return False
    configured = {t for d in site.devices if d.source is not None for t in d.source.topics()}
    return not configured.isdisjoint(model.topics())


def suggest(facts: Sighting, site: SiteConfig) -> Suggestion | str:
    """A suggestion, or the code of why there is none (`WHY`), or an invalid source's detail."""
    source = facts.source
    if facts.protocol != "native" and source is None:
        return facts.note or "no_config"
    kind, why = _kind(facts)
    if kind is None:
        return why
    if source is None:  # the gateway's own JSON: its id is the one its topic names
        return Suggestion(facts.said, _name(facts.said, kind), kind, None)
    model = _source_model(source)
    if isinstance(model, str) or model is None:
        return model or "no_config"
    candidate = str(source.get("name") or source.get("topic") or source.get("prefix") or "")
    return Suggestion(_unique_id(candidate.rsplit("/", 1)[-1], kind, site), _name(facts.said, kind), kind, source)


def why_text(code: str) -> tuple[str, str]:
    if code in WHY:
        return WHY[code]
    if code.startswith("unnamed:"):
        kind = kinds()[code.removeprefix("unnamed:")]
        return (f"它报告的读数像{kind.label_zh}，但名称看不出是{kind.label_zh}；若是，请按{kind.label_zh}添加",
                f"what it reports fits a {kind.label_en.lower()}, but its name does not say it is one; "
                f"if it is, add it as one")
    return f"建议的数据来源无效：{code}", f"the suggested source is invalid: {code}"


def _kind(facts: Sighting) -> tuple[str | None, str]:
    """The kind that recognises what the device reports (each kind says how: `Recognition`),
    or why none: a kind that would but for its name (a thermometer not called a fridge)."""
    ranked = sorted((k for k in kinds().values() if k.recognised is not None),
                    key=lambda k: k.recognised.rank if k.recognised else 0)
    found = next((k for k in ranked if k.recognised and k.recognised.matches(facts.keys, facts.said)), None)
    if found is not None:
        return found.name, ""
    unnamed = next((k for k in ranked if k.recognised and k.recognised.by & facts.keys), None)
    return None, ("nothing_known" if unnamed is None else f"unnamed:{unnamed.name}")


def _source_model(source: dict[str, Any] | None) -> VendorSource | str | None:
    """The source as the site file would validate it, or what is wrong with it."""
    if source is None:
        return None
    try:
        return sources()[source["protocol"]].model_validate(source)
    except ValidationError as exc:
        return "; ".join(nested(e) for e in exc.errors())


def _name(said: str, kind: str) -> str:
    label = kinds()[kind].label_zh
    if _CJK.search(said):
        return said
    return label if _ADDRESS.match(said) else f"{label}（{said}）"


def _unique_id(text: str, kind: str, site: SiteConfig) -> str:
    base = _NOT_IDENT.sub("_", text).strip("_.-")[:60]
    if not _IDENT.match(base):
        base = kind
    taken = {d.id for d in site.devices}
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def acl_lines(facts: Sighting) -> list[str]:
    """The lines of Mosquitto's ACL file that let the gateway read this device."""
    if facts.protocol == "native":
        return [f"# 设备以 {facts.said} 登录时，已由 pattern write facility/+/%u/# 覆盖，无需添加",
                f"# (covered by pattern write facility/+/%u/# when the device logs in as {facts.said})"]
    model = _source_model(facts.source)
    if isinstance(model, str) or model is None:
        return []
    return [f"user {GATEWAY_LOGIN}", *(f"topic read {t}" for t in model.topics())]


def dynsec_commands(facts: Sighting, site: SiteConfig) -> list[str]:
    """The same grants under Mosquitto's dynamic security plugin (`mosquitto_ctrl dynsec`)."""
    if facts.protocol == "native":
        login, role = facts.said, f"device-{facts.said}"
        return [f"mosquitto_ctrl dynsec createClient {shlex.quote(login)}",
                f"mosquitto_ctrl dynsec createRole {shlex.quote(role)}",
                f"mosquitto_ctrl dynsec addRoleACL {shlex.quote(role)} publishClientSend "
                f"{shlex.quote(f'facility/{site.id}/{login}/#')} allow",
                f"mosquitto_ctrl dynsec addClientRole {shlex.quote(login)} {shlex.quote(role)}"]
    model = _source_model(facts.source)
    if isinstance(model, str) or model is None:
        return []
    return [f"mosquitto_ctrl dynsec addRoleACL {GATEWAY_LOGIN} subscribeLiteral {shlex.quote(t)} allow"
            for t in model.topics()]
