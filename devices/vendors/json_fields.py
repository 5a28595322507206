"""Reading a vendor's JSON message: one parse, then typed reads whose errors name the field.

Vendor payloads are read by hand rather than through a pydantic model because their shape
varies with the firmware and the device (a number here, a list per channel there, keys that
come and go), and because most of what they carry is of no interest to us. What these helpers
keep uniform is the failure: a value of the wrong type raises `DecodeError` with the reason
code and the dotted name of the field (`ENERGY.Power`, `params.switch:0.apower`), never a
`KeyError` or `TypeError` from deep inside a codec.

    fields = JsonFields(device_id, payload)
    message = fields.parse()
    energy = fields.json_object(message.get("ENERGY"), "ENERGY")
    power = fields.number(energy.get("Power"), "ENERGY.Power") if energy else None

Every reader takes the value already looked up and returns None for an absent key or a JSON
null: vendors send null for "not known yet" (Shelly, Zigbee2MQTT), which is no error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from pydantic_core import from_json

from devices.base import DecodeError, Reason

# What a parsed JSON value was, in JSON's words rather than Python's.
_JSON_TYPES: Final = {dict: "object", list: "array", str: "string", int: "number", float: "number",
                      bool: "boolean", type(None): "null"}
_SHOWN_CHARS: Final = 40
_ON_OFF: Final = {"ON": True, "OFF": False}


@dataclass(frozen=True, slots=True)
class JsonFields:
    """One JSON message of one device: the context every error needs."""

    device_id: str
    payload: bytes

    def error(self, reason: Reason, detail: str) -> DecodeError:
        return DecodeError(self.device_id, reason, detail, self.payload)

    def parse(self, expected: str = "a JSON object") -> dict[str, Any]:
        """The payload as a JSON object; NOT_JSON or NOT_OBJECT otherwise. `expected` tells the
        error's reader what the topic carries, where that is more than any JSON object."""
        try:
            # pydantic's parser, as for native payloads: it bounds the nesting depth where `json`
            # would raise RecursionError, and reads NaN and Infinity so that `number` refuses
            # them by name (NOT_FINITE) instead of failing the whole message as NOT_JSON.
            parsed = from_json(self.payload)
        except ValueError as exc:
            raise self.error(Reason.NOT_JSON, f"not JSON ({exc}); expected {expected}") from None
        if not isinstance(parsed, dict):
            raise self.error(Reason.NOT_OBJECT, f"expected {expected}, got a JSON {_json_type(parsed)}")
        return parsed

    def number(self, value: object, name: str) -> float | None:
        """A finite number. Booleans are refused although Python counts them as integers:
        `"apower": true` is a broken firmware, not 1 W."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(Reason.WRONG_TYPE, f"{name}: expected a number, got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer literal too long for a double
            number = math.inf
        if not math.isfinite(number):
            raise self.error(Reason.NOT_FINITE, f"{name}: {_show(value)} is not a finite number")
        return number

    def boolean(self, value: object, name: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise self.error(Reason.WRONG_TYPE, f"{name}: expected true or false, got {_show(value)}")

    def string(self, value: object, name: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise self.error(Reason.WRONG_TYPE, f"{name}: expected a string, got {_show(value)}")

    def json_object(self, value: object, name: str) -> dict[str, Any] | None:
        if value is None or isinstance(value, dict):
            return value
        raise self.error(Reason.WRONG_TYPE, f"{name}: expected a JSON object, got {_show(value)}")

    def on_off(self, value: object, name: str) -> bool | None:
        """A relay state written as the strings "ON" / "OFF" (Tasmota, Zigbee2MQTT), in any case."""
        if value is None:
            return None
        if isinstance(value, str) and value.upper() in _ON_OFF:
            return _ON_OFF[value.upper()]
        raise self.error(Reason.WRONG_TYPE, f'{name}: expected "ON" or "OFF", got {_show(value)}')


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    """A value for an error message: its JSON type and a bounded rendering (a firmware may put a
    whole document where a number belongs)."""
    text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "…"
    return f"{_json_type(value)} {text}"
