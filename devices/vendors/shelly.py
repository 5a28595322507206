"""Shelly Gen2 and later (Plus, Pro, Gen3, Gen4): a plug or relay with its Switch component.

Over MQTT such a device publishes, under its topic prefix (its id, `shellyplusplugs-<mac>`, by
default): the whole status of each component on `<prefix>/status/<component>:<id>` when it
changes (the MQTT setting "generic status update over MQTT"), RPC notifications on
`<prefix>/events/rpc` (NotifyStatus with what changed, NotifyFullStatus with everything,
NotifyEvent for button presses and the like), and `true`/`false` on `<prefix>/online`, the
latter being its last will. See https://shelly-api-docs.shelly.cloud/gen2/.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

from pydantic import Field

from devices.base import DecodeError, Reason
from devices.vendors import Decoded, TopicLevels, VendorSource
from devices.vendors.json_fields import JsonFields

STATUS: Final = "status"
RPC: Final = "rpc"
ONLINE_PART: Final = "online"
PARTS: Final = (STATUS, RPC, ONLINE_PART)

# The notifications that carry component status; NotifyEvent and others carry none.
_STATUS_METHODS: Final = frozenset({"NotifyStatus", "NotifyFullStatus"})
# Switch status fields whose unit is already ours, by the key they become.
_NUMBERS: Final = {"apower": "power_w", "voltage": "voltage_v", "current": "current_a"}
_ONLINE: Final = {b"true": True, b"false": False}


class ShellySource(VendorSource):
    """A Gen2+ Shelly device, known by its MQTT topic prefix, and which of its Switch
    components (relays) is the device."""

    protocol: Literal["shelly"]
    prefix: TopicLevels  # starts every topic of the device; by default its id
    switch: int = Field(0, ge=0)

    def topics(self) -> dict[str, str]:
        return {
            f"{self.prefix}/status/{self._component}": STATUS,
            f"{self.prefix}/events/rpc": RPC,
            f"{self.prefix}/online": ONLINE_PART,
        }

    def decode(self, device_id: str, part: str, payload: bytes) -> Decoded:
        if part == ONLINE_PART:
            online = _ONLINE.get(payload.strip())
            if online is None:
                raise DecodeError(device_id, Reason.WRONG_TYPE, "expected true or false", payload)
            return Decoded({"online": online})
        fields = JsonFields(device_id, payload)
        if part == STATUS:
            return Decoded(_switch_status(fields, fields.parse(), ""))
        if part == RPC:
            return self._notification(fields)
        raise DecodeError(device_id, Reason.BAD_TOPIC,
                          f"a Shelly device has no part {part!r} (known: {', '.join(PARTS)})", payload)

    @property
    def _component(self) -> str:
        return f"switch:{self.switch}"

    def _notification(self, fields: JsonFields) -> Decoded:
        frame = fields.parse()
        method = fields.string(frame.get("method"), "method")
        if method is None:
            raise fields.error(Reason.MISSING_FIELD, "no method: not an RPC notification")
        if method not in _STATUS_METHODS:
            return Decoded()
        params = fields.json_object(frame.get("params"), "params")
        if params is None:
            raise fields.error(Reason.MISSING_FIELD, f"{method} without params")
        ts_ms = _unix_ms(fields, params.get("ts"), "params.ts")
        # NotifyStatus carries only the components that changed (a cloud reconnect, another
        # relay), and of ours only the fields that changed: anything absent is simply unknown.
        name = f"params.{self._component}"
        status = fields.json_object(params.get(self._component), name)
        return Decoded({} if status is None else _switch_status(fields, status, f"{name}."), ts_ms)


def _switch_status(fields: JsonFields, status: dict[str, Any], path: str) -> dict[str, float | bool]:
    """Our values from a Switch component status, whole or partial. `path` prefixes field names
    in errors. Shelly writes null for a key that disappeared (a timer that ended): unknown."""
    values: dict[str, float | bool] = {}
    output = fields.boolean(status.get("output"), f"{path}output")
    if output is not None:
        values["on"] = output
    for key, ours in _NUMBERS.items():
        number = fields.number(status.get(key), f"{path}{key}")
        if number is not None:
            values[ours] = number
    aenergy = fields.json_object(status.get("aenergy"), f"{path}aenergy")
    if aenergy is not None:
        total_wh = fields.number(aenergy.get("total"), f"{path}aenergy.total")
        if total_wh is not None:
            values["energy_kwh"] = total_wh / 1000  # Shelly counts watt-hours
    # `temperature.tC` is deliberately not read: it is the relay's own internal temperature
    # (the plug warming under load), not the air or the fridge the plug powers, and would be
    # recorded as a sample fridge's temperature_c if a plug were bound to that kind.
    return values


def _unix_ms(fields: JsonFields, value: object, name: str) -> int | None:
    """Shelly's timestamps: Unix seconds, with hundredths (`1631186545.04`)."""
    seconds = fields.number(value, name)
    if seconds is None:
        return None
    ms = seconds * 1000
    if not 0 <= ms < math.inf:  # a finite number of seconds can still overflow in milliseconds
        raise fields.error(Reason.BAD_TIMESTAMP, f"{name} {seconds:g} is not a Unix time")
    return round(ms)
