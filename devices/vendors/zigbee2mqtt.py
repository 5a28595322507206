"""Zigbee2MQTT: a Zigbee device as the Zigbee2MQTT bridge publishes it.

The bridge publishes one JSON object per device on `<base_topic>/<friendly name>` holding every
property the device exposes (a property it has not heard of yet is `null`), and the device's
availability on `<base_topic>/<friendly name>/availability`. This codec turns both into our
vocabulary; it reads no other topic of the bridge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import field_validator
from pydantic_core import from_json

from devices.base import DecodeError, Reason
from devices.vendors import ONLINE, Decoded, VendorSource

STATE: Final = "state"
AVAILABILITY: Final = "availability"
_OFFLINE: Final = "offline"

# Zigbee2MQTT properties whose unit is already ours (°C, %, W, kWh, A), by the key they become.
# Zigbee2MQTT defines `battery` as a percentage and `linkquality` as the LQI (0–255) for all devices.
_NUMBERS: Final = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "power": "power_w",
    "energy": "energy_kwh",
    "current": "current_a",
    "battery": "battery_pct",
    "linkquality": "link_quality",
}
# `state` of a switch or plug. TOGGLE is only ever a command sent to `/set`; in a published
# state it means someone wrote to the wrong topic, so it is refused with the other strings.
_SWITCH: Final = {"ON": True, "OFF": False}
# The end of year 9999 UTC in Unix milliseconds: the latest time ISO 8601 can write.
_LAST_MS: Final = 253_402_300_799_999
# For errors: what a JSON value was, in JSON's words rather than Python's.
_JSON_TYPES: Final = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class Zigbee2MqttSource(VendorSource):
    """A device behind Zigbee2MQTT, known by its friendly name (`kitchen_door`,
    `kitchen/fridge_plug`: names may contain `/`, which becomes topic levels)."""

    protocol: Literal["zigbee2mqtt"]
    name: str
    base_topic: str = "zigbee2mqtt"

    @field_validator("name", "base_topic")
    @classmethod
    def _usable_in_a_topic(cls, value: str) -> str:
        # Both become levels of a topic we subscribe to: a wildcard would subscribe to other
        # devices too, an empty level ("a//b", a leading or trailing "/") names a topic the
        # bridge never publishes, and MQTT forbids U+0000 in topic names.
        if "+" in value or "#" in value:
            raise ValueError(f"{value!r} contains an MQTT wildcard (+ or #)")
        if "" in value.split("/"):
            raise ValueError(f"{value!r} has an empty topic level (empty, or a leading, trailing or double /)")
        if "\x00" in value:
            raise ValueError(f"{value!r} contains a NUL character")
        return value

    def topics(self) -> dict[str, str]:
        device = f"{self.base_topic}/{self.name}"
        return {device: STATE, f"{device}/{AVAILABILITY}": AVAILABILITY}

    def decode(self, device_id: str, part: str, payload: bytes) -> Decoded:
        if part == STATE:
            return _decode_state(device_id, payload)
        if part == AVAILABILITY:
            return _decode_availability(device_id, payload)
        raise DecodeError(device_id, Reason.BAD_TOPIC,
                          f"a Zigbee2MQTT device has no part {part!r} (known: {STATE}, {AVAILABILITY})", payload)


@dataclass(frozen=True, slots=True)
class _Message:
    """One parsed state object, with the context every error needs."""

    device_id: str
    payload: bytes
    fields: dict[str, Any]

    def error(self, reason: Reason, detail: str) -> DecodeError:
        return DecodeError(self.device_id, reason, detail, self.payload)

    def boolean(self, key: str) -> bool | None:
        value = self.fields.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(Reason.WRONG_TYPE, f"{key}: expected true or false, got {value!r}")

    def number(self, key: str) -> float | None:
        value = self.fields.get(key)
        if value is None:
            return None
        # bool is a subclass of int in Python, but `"power": true` is no reading.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(Reason.WRONG_TYPE, f"{key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer literal too long for a double
            number = math.inf
        if not math.isfinite(number):
            raise self.error(Reason.NOT_FINITE, f"{key}: {value!r} is not a finite number")
        return number

    def switch(self, key: str) -> bool | None:
        value = self.fields.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.upper() in _SWITCH:
            return _SWITCH[value.upper()]
        raise self.error(Reason.WRONG_TYPE, f"{key}: expected \"ON\" or \"OFF\", got {value!r}")

    def last_seen_ms(self) -> int | None:
        """`last_seen`, present when the bridge's `last_seen` option is on: ISO 8601 with an
        offset (`ISO_8601`, `ISO_8601_local`) or Unix milliseconds (`epoch`)."""
        value = self.fields.get("last_seen")
        if value is None:
            return None
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise self.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} is not ISO 8601") from None
            if moment.tzinfo is None:
                raise self.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} has no UTC offset")
            ms = round(moment.timestamp() * 1000)
        elif isinstance(value, int) and not isinstance(value, bool):
            ms = value
        elif isinstance(value, float) and math.isfinite(value):
            ms = round(value)
        else:
            raise self.error(Reason.BAD_TIMESTAMP,
                             f"last_seen {value!r} is neither ISO 8601 nor Unix milliseconds")
        # The same span as ISO 8601 can write, so that a number cannot name a time that is none.
        if not 0 <= ms <= _LAST_MS:
            raise self.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} is not between 1970 and 9999")
        return ms


def _decode_state(device_id: str, payload: bytes) -> Decoded:
    message = _Message(device_id, payload, _json_object(device_id, payload))
    fields = message.fields
    values: dict[str, float | bool] = {}

    def put(key: str, value: float | bool | None) -> None:
        if value is not None:  # Z2M's null: exposed, but not reported yet
            values[key] = value

    contact = message.boolean("contact")
    put("open", None if contact is None else not contact)  # contact true means the magnet is near: closed
    put("leak", message.boolean("water_leak"))
    put("on", message.switch("state"))
    for z2m_key, our_key in _NUMBERS.items():
        put(our_key, message.number(z2m_key))
    # Battery devices report `voltage` in millivolts of their cell (an Aqara sensor: 3005), plugs
    # in volts of the mains. Z2M publishes every property a device exposes, null until known, so
    # the keys alone tell the two apart: mains only from a device with a power meter and no battery.
    voltage = message.number("voltage")
    if "battery" not in fields and ("power" in fields or "current" in fields):
        put("voltage_v", voltage)
    return Decoded(values, message.last_seen_ms())


def _decode_availability(device_id: str, payload: bytes) -> Decoded:
    # Older bridges and `legacy_availability_payload: true` send the bare word; newer ones a
    # JSON object with the word in `state`.
    for word, online in ((ONLINE, True), (_OFFLINE, False)):
        if payload == word.encode():
            return Decoded({"online": online})
    fields = _json_object(device_id, payload, expected='"online", "offline" or {"state": "online"}')
    state = fields.get("state")
    if state is None:
        raise DecodeError(device_id, Reason.MISSING_FIELD, 'availability has no "state"', payload)
    if state not in (ONLINE, _OFFLINE):
        raise DecodeError(device_id, Reason.WRONG_TYPE,
                          f'state: expected "{ONLINE}" or "{_OFFLINE}", got {state!r}', payload)
    return Decoded({"online": state == ONLINE})


def _json_object(device_id: str, payload: bytes, expected: str = "a JSON object") -> dict[str, Any]:
    try:
        # pydantic's parser, as for native payloads: it bounds nesting depth where `json` would
        # raise RecursionError, and reads NaN and Infinity so that they are refused by name.
        parsed = from_json(payload)
    except ValueError as exc:
        raise DecodeError(device_id, Reason.NOT_JSON, f"not JSON ({exc}); expected {expected}", payload) from None
    if not isinstance(parsed, dict):
        raise DecodeError(device_id, Reason.NOT_OBJECT,
                          f"expected {expected}, got a JSON {_JSON_TYPES[type(parsed)]}", payload)
    return parsed

