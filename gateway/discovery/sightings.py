"""What a device says about itself when it announces itself, read from the vendors' own
discovery messages (docs/discovery.md) into one shape: `Sighting`.

Pure and total like the codecs: no I/O, no clock. A payload that is not what its topic
promises raises `Unusable` with a reason (counted by the listener, never stored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from pydantic_core import from_json, to_json

from devices.vendors.tasmota import ENERGY_FIELDS
from devices.vendors.zigbee2mqtt import NUMBERS, WATER_LEAK

# Longest name, model or identity kept: what a person reads, not a payload.
MAX_TEXT: Final = 128
# A sighting's own part of the message kept as its sample (a device's object in the bridge's list).
SAMPLE_BYTES: Final = 2048
# How deep Zigbee2MQTT's exposes nest (a composite's features): two levels in practice.
MAX_EXPOSE_DEPTH: Final = 4
# Zigbee2MQTT's default base topic and Tasmota's default FullTopic: not written in a suggested source.
Z2M_DEFAULT_BASE: Final = "zigbee2mqtt"
TASMOTA_DEFAULT_FULL_TOPIC: Final = "%prefix%/%topic%/"

# Zigbee2MQTT's exposed properties, by the value the codec makes of them (devices/vendors/zigbee2mqtt.py).
Z2M_PROPERTIES: Final = {"contact": "open", WATER_LEAK: "leak", "state": "on", **NUMBERS}
# Home Assistant's device classes, by the value a device of that class reports; a switch reports `on`.
HA_CLASSES: Final = {
    "door": "open", "window": "open", "opening": "open", "garage_door": "open",
    "moisture": "leak", "temperature": "temperature_c", "humidity": "humidity_pct",
    "power": "power_w", "energy": "energy_kwh", "voltage": "voltage_v", "current": "current_a",
    "battery": "battery_pct", "water": "volume_m3",
}
HA_SWITCHES: Final = frozenset({"switch"})
# Shelly ids (and Gen1 models) of devices that meter their load: plugs, PM relays, energy meters.
_SHELLY_METERED: Final = re.compile(r"plug|pm|em", re.IGNORECASE)
_MAC: Final = re.compile(r"^[0-9A-Fa-f]{12}$")
_IEEE: Final = re.compile(r"^0x[0-9a-fA-F]{16}$")


class Unusable(Exception):
    """A discovery message that says nothing usable; `reason` labels the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Sighting:
    """One device as one message describes it."""

    key: str  # protocol:identity, e.g. zigbee2mqtt:0x00158d0001a2b3c4
    protocol: str  # zigbee2mqtt | tasmota | shelly | homeassistant | native
    said: str = ""  # the name it gave itself (friendly name, dn, HA name, …)
    model: str = ""  # vendor and model, for people
    keys: frozenset[str] = frozenset()  # what it would report, in our metric vocabulary
    source: dict[str, Any] | None = None  # the site file's `source:` that would read it
    note: str = ""  # why no source can be suggested, a code (gateway/discovery/suggest.py)
    sample: bytes = b""  # its own part of the message


def parse_json(payload: bytes) -> Any:
    try:
        return from_json(payload)
    except ValueError:  # not JSON, nested deeper than the parser's limit, not UTF-8
        raise Unusable("not_json") from None


def _text(value: object) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _identity(value: object, pattern: re.Pattern[str] | None = None) -> str:
    """An identity part of a key: a non-empty string without `/`, short, else Unusable."""
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT or (pattern and not pattern.match(value)):
        raise Unusable("wrong_shape")
    return value


def _compact(value: object) -> bytes:
    return to_json(value)[:SAMPLE_BYTES]


# Zigbee2MQTT


def z2m_devices(payload: bytes, base: str) -> list[Sighting]:
    """`<base>/bridge/devices`: the bridge's whole device list, retained."""
    devices = parse_json(payload)
    if not isinstance(devices, list):
        raise Unusable("wrong_shape")
    return [_z2m_device(d, base) for d in devices if isinstance(d, dict) and d.get("type") != "Coordinator"]


def z2m_event(payload: bytes, base: str) -> list[Sighting]:
    """`<base>/bridge/event`: a device joined, was interviewed or announced itself."""
    event = parse_json(payload)
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise Unusable("wrong_shape")
    if event.get("type") not in ("device_joined", "device_interview", "device_announce"):
        return []  # device_leave, device_renamed…: nothing new to add
    return [_z2m_device(event["data"], base)]


def _z2m_device(device: dict[str, Any], base: str) -> Sighting:
    ieee = _identity(device.get("ieee_address"), _IEEE).lower()
    name = _text(device.get("friendly_name")) or ieee
    definition = device.get("definition")
    model, keys = "", frozenset[str]()
    if isinstance(definition, dict):
        model = " ".join(t for t in (_text(definition.get("vendor")), _text(definition.get("model"))) if t)
        keys = frozenset(Z2M_PROPERTIES[p] for p in _exposed(definition.get("exposes"), 0) if p in Z2M_PROPERTIES)
    source: dict[str, Any] = {"protocol": "zigbee2mqtt", "name": name}
    if base != Z2M_DEFAULT_BASE:
        source["base_topic"] = base
    return Sighting(f"zigbee2mqtt:{ieee}", "zigbee2mqtt", name, model, keys, source, sample=_compact(device))


def _exposed(exposes: object, depth: int) -> set[str]:
    """The properties a definition exposes, those inside composites (a switch's `state`) too."""
    found: set[str] = set()
    if not isinstance(exposes, list) or depth > MAX_EXPOSE_DEPTH:
        return found
    for expose in exposes:
        if isinstance(expose, dict):
            prop = expose.get("property")
            if isinstance(prop, str):
                found.add(prop)
            found |= _exposed(expose.get("features"), depth + 1)
    return found


# Tasmota


def tasmota(payload: bytes, mac: str, leaf: str) -> list[Sighting]:
    """`<prefix>/<MAC>/config` (what the device is, its topic) or `…/sensors` (what it measures)."""
    message = parse_json(payload)
    if not isinstance(message, dict):
        raise Unusable("wrong_shape")
    key = f"tasmota:{_identity(mac, _MAC).upper()}"
    if leaf == "sensors":
        return [Sighting(key, "tasmota", keys=_tasmota_sensors(message.get("sn")), sample=payload[:SAMPLE_BYTES])]
    topic = _identity(message.get("t"))
    source: dict[str, Any] = {"protocol": "tasmota", "topic": topic}
    full_topic = message.get("ft")
    if isinstance(full_topic, str) and full_topic != TASMOTA_DEFAULT_FULL_TOPIC:
        source["full_topic"] = full_topic
    relays = message.get("rl")
    has_relay = isinstance(relays, list) and any(r == 1 for r in relays)
    return [Sighting(key, "tasmota", _text(message.get("dn")) or topic, _text(message.get("md")),
                     frozenset({"on"}) if has_relay else frozenset(), source, sample=payload[:SAMPLE_BYTES])]


def _tasmota_sensors(sensors: object) -> frozenset[str]:
    if not isinstance(sensors, dict):
        raise Unusable("wrong_shape")
    keys: set[str] = set()
    energy = sensors.get("ENERGY")
    if isinstance(energy, dict):
        keys |= {ours for field, ours in ENERGY_FIELDS.items() if field in energy}
    for value in sensors.values():
        if isinstance(value, dict):
            if "Temperature" in value:
                keys.add("temperature_c")
            if "Humidity" in value:
                keys.add("humidity_pct")
    return frozenset(keys)


# Shelly


def shelly_announce(payload: bytes) -> list[Sighting]:
    """`shellies/announce`: a Gen1 device's announcement, or a Gen2+ device's `Shelly.GetDeviceInfo`
    published there (Shelly's announce script)."""
    message = parse_json(payload)
    if not isinstance(message, dict):
        raise Unusable("wrong_shape")
    device_id = _identity(message.get("id"))
    if "/" in device_id or "+" in device_id or "#" in device_id:
        raise Unusable("wrong_shape")
    gen = message.get("gen")
    model = _text(message.get("model"))
    keys = {"on"}
    if _SHELLY_METERED.search(device_id) or _SHELLY_METERED.search(_text(message.get("app"))):
        keys |= {"power_w", "energy_kwh"}
    said = _text(message.get("name")) or device_id
    if isinstance(gen, int) and not isinstance(gen, bool) and gen >= 2:
        return [Sighting(f"shelly:{device_id}", "shelly", said, model, frozenset(keys),
                         {"protocol": "shelly", "prefix": device_id}, sample=payload[:SAMPLE_BYTES])]
    return [Sighting(f"shelly:{device_id}", "shelly", said, model, frozenset(keys), None, "shelly_gen1",
                     payload[:SAMPLE_BYTES])]


# Home Assistant MQTT discovery

# The abbreviations Home Assistant accepts for the keys read here.
_HA_ABBREVIATIONS: Final = {"dev_cla": "device_class", "stat_t": "state_topic", "dev": "device",
                            "uniq_id": "unique_id", "ids": "identifiers", "mdl": "model", "mf": "manufacturer"}


def homeassistant(payload: bytes, component: str, node_object: list[str], z2m_base: str) -> list[Sighting]:
    """`<prefix>/<component>/[<node_id>/]<object_id>/config`: one entity of a device. The entities
    of one device (its `device.identifiers`) make one entry."""
    config = _expanded(parse_json(payload))
    device = _expanded(config.get("device", {}))
    identifiers = device.get("identifiers")
    if isinstance(identifiers, list):
        identifiers = identifiers[0] if identifiers else None
    identity = _identity(identifiers) if identifiers is not None else ":".join(node_object)
    device_class = config.get("device_class")
    keys = frozenset({"on"}) if component in HA_SWITCHES else frozenset(
        {HA_CLASSES[device_class]} if isinstance(device_class, str) and device_class in HA_CLASSES else ())
    said = _text(device.get("name")) or _text(config.get("name")) or identity
    model = " ".join(t for t in (_text(device.get("manufacturer")), _text(device.get("model"))) if t)
    sample = payload[:SAMPLE_BYTES]
    # Zigbee2MQTT's own Home Assistant integration: the same device as its bridge's list names.
    ieee = identity.removeprefix("zigbee2mqtt_")
    if ieee != identity and _IEEE.match(ieee):
        state_topic = config.get("state_topic")
        name = state_topic.removeprefix(f"{z2m_base}/") if isinstance(state_topic, str) else ""
        source: dict[str, Any] | None = None
        if name and name != state_topic:
            source = {"protocol": "zigbee2mqtt", "name": name}
            if z2m_base != Z2M_DEFAULT_BASE:
                source["base_topic"] = z2m_base
        return [Sighting(f"zigbee2mqtt:{ieee.lower()}", "zigbee2mqtt", name or said, model, keys, source,
                         "" if source else "ha_foreign", sample)]
    return [Sighting(f"homeassistant:{identity}", "homeassistant", said, model, keys, None, "ha_foreign", sample)]


def _expanded(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Unusable("wrong_shape")
    fields: dict[str, Any] = value  # a JSON object's keys are strings
    return {_HA_ABBREVIATIONS.get(k, k): v for k, v in fields.items()}


# Native


def native(payload: bytes, device_id: str, metric_keys: frozenset[str]) -> list[Sighting]:
    """A reading on `facility/<site>/<device_id>/…` from a device the site file lacks: what it
    reports is what its payload's keys name, of the keys our kinds know. Its payload's faults
    are the ingest's to reject and count: here it is still a device that is not in the site file."""
    try:
        message = parse_json(payload)
    except Unusable:
        message = None
    keys = frozenset(k for k in message if k in metric_keys) if isinstance(message, dict) else frozenset[str]()
    return [Sighting(f"native:{device_id}", "native", device_id, "", keys, None, "native", payload[:SAMPLE_BYTES])]
