"""Zigbee2MQTT: a Zigbee device as the Zigbee2MQTT bridge publishes it.

The bridge publishes one JSON object per device on `<base_topic>/<friendly name>` holding every
property the device exposes (a property it has not heard of yet is `null`), and the device's
availability on `<base_topic>/<friendly name>/availability`. This codec turns both into our
vocabulary; it reads no other topic of the bridge.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final, Literal

from devices.base import DecodeError, Reason
from devices.vendors import ONLINE, Decoded, TopicLevels, VendorSource
from devices.vendors.json_fields import JsonFields

STATE: Final = "state"
AVAILABILITY: Final = "availability"
_OFFLINE: Final = "offline"

# Zigbee2MQTT properties whose unit is already ours (°C, %, W, kWh, A), by the key they become.
# Zigbee2MQTT defines `battery` as a percentage and `linkquality` as the LQI (0–255) for all devices.
# A leak sensor's exposed property (the gateway's own leak rules have other names).
WATER_LEAK: Final = "water_leak"

NUMBERS: Final = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "power": "power_w",
    "energy": "energy_kwh",
    "current": "current_a",
    "battery": "battery_pct",
    "linkquality": "link_quality",
}
# The end of year 9999 UTC in Unix milliseconds: the latest time ISO 8601 can write.
_LAST_MS: Final = 253_402_300_799_999


class Zigbee2MqttSource(VendorSource):
    """A device behind Zigbee2MQTT, known by its friendly name (`kitchen_door`,
    `kitchen/fridge_plug`: names may contain `/`, which becomes topic levels)."""

    protocol: Literal["zigbee2mqtt"]
    name: TopicLevels
    base_topic: TopicLevels = "zigbee2mqtt"

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


def _decode_state(device_id: str, payload: bytes) -> Decoded:
    fields = JsonFields(device_id, payload)
    message = fields.parse()
    values: dict[str, float | bool] = {}

    def put(key: str, value: float | bool | None) -> None:
        if value is not None:  # Z2M's null: exposed, but not reported yet
            values[key] = value

    contact = fields.boolean(message.get("contact"), "contact")
    put("open", None if contact is None else not contact)  # contact true means the magnet is near: closed
    put("leak", fields.boolean(message.get(WATER_LEAK), WATER_LEAK))
    # `state` of a switch or plug. TOGGLE is only ever a command sent to `/set`; in a published
    # state it means someone wrote to the wrong topic, so it is refused with the other strings.
    put("on", fields.on_off(message.get("state"), "state"))
    for z2m_key, our_key in NUMBERS.items():
        put(our_key, fields.number(message.get(z2m_key), z2m_key))
    # Battery devices report `voltage` in millivolts of their cell (an Aqara sensor: 3005), plugs
    # in volts of the mains. Z2M publishes every property a device exposes, null until known, so
    # the keys alone tell the two apart: mains only from a device with a power meter and no battery.
    voltage = fields.number(message.get("voltage"), "voltage")
    if "battery" not in message and ("power" in message or "current" in message):
        put("voltage_v", voltage)
    return Decoded(values, _last_seen_ms(fields, message.get("last_seen")))


def _last_seen_ms(fields: JsonFields, value: object) -> int | None:
    """`last_seen`, present when the bridge's `last_seen` option is on: ISO 8601 with an
    offset (`ISO_8601`, `ISO_8601_local`) or Unix milliseconds (`epoch`)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise fields.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} is not ISO 8601") from None
        if moment.tzinfo is None:
            raise fields.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} has no UTC offset")
        ms = round(moment.timestamp() * 1000)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, float) and math.isfinite(value):
        ms = round(value)
    else:
        raise fields.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} is neither ISO 8601 nor Unix milliseconds")
    # The same span as ISO 8601 can write, so that a number cannot name a time that is none.
    if not 0 <= ms <= _LAST_MS:
        raise fields.error(Reason.BAD_TIMESTAMP, f"last_seen {value!r} is not between 1970 and 9999")
    return ms


def _decode_availability(device_id: str, payload: bytes) -> Decoded:
    # Older bridges and `legacy_availability_payload: true` send the bare word; newer ones a
    # JSON object with the word in `state`.
    for word, online in ((ONLINE, True), (_OFFLINE, False)):
        if payload == word.encode():
            return Decoded({"online": online})
    fields = JsonFields(device_id, payload)
    state = fields.parse(expected='"online", "offline" or {"state": "online"}').get("state")
    if state is None:
        raise fields.error(Reason.MISSING_FIELD, 'availability has no "state"')
    if state not in (ONLINE, _OFFLINE):
        raise fields.error(Reason.WRONG_TYPE, f'state: expected "{ONLINE}" or "{_OFFLINE}", got {state!r}')
    return Decoded({"online": state == ONLINE})
