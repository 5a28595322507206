"""Tasmota: an ESP8266/ESP32 plug, relay or sensor board running the Tasmota firmware.

Tasmota publishes on topics built from its `FullTopic` setting (`%prefix%/%topic%/` unless
changed) with three prefixes: `tele` for periodic telemetry (`SENSOR`, `STATE`) and the
availability (`LWT`), `stat` for state changes and answers to commands (`POWER<n>`, `RESULT`),
and `cmnd` for commands, which we never read. See https://tasmota.github.io/docs/MQTT/.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from devices.base import DecodeError, Reason
from devices.vendors import Decoded, VendorSource
from devices.vendors.json_fields import JsonFields

SENSOR: Final = "sensor"
STATE: Final = "state"
LWT: Final = "lwt"
POWER: Final = "power"
RESULT: Final = "result"
PARTS: Final = (SENSOR, STATE, LWT, POWER, RESULT)

# Tasmota counts at most 32 relays (ESP32; an ESP8266 has 8).
MAX_RELAYS: Final = 32
# Numbers above this are Unix milliseconds rather than seconds, as for native payloads.
_MS_THRESHOLD: Final = 1e11
# The `ENERGY` fields we read, by the key they become. Tasmota's units are ours (kWh, W, V, A);
# Today, Yesterday, Period, ApparentPower, ReactivePower and Factor are of no use to the kinds.
ENERGY_FIELDS: Final = {"Total": "energy_kwh", "Power": "power_w", "Voltage": "voltage_v", "Current": "current_a"}
# Objects of a SENSOR message whose `Temperature` is usually the device's own, not the air's or
# the fridge's: `ESP32` is the chip's internal sensor (Tasmota32), `ANALOG` the thermistor on the
# ADC, which Shelly relays and plugs running Tasmota use to watch their own relay. Never chosen
# on their own; a board with a thermistor wired to a probe names it (`sensor: ANALOG`).
_INTERNAL_SENSORS: Final = frozenset({"ESP32", "ANALOG"})
_TOKENS: Final = re.compile(r"%[^%/]*%")
_FULL_TOPIC_TOKENS: Final = frozenset({"%prefix%", "%topic%"})
_POWER_WORDS: Final = {"ON": True, "OFF": False}
_LWT_WORDS: Final = {"ONLINE": True, "OFFLINE": False}


class TasmotaSource(VendorSource):
    """A Tasmota device, known by its `Topic` (`tasmota_8A3F1C` by default, from its MAC)."""

    protocol: Literal["tasmota"]
    topic: str
    full_topic: str = "%prefix%/%topic%/"
    # Which relay is the device: Tasmota writes `POWER` for a single relay, `POWER1`… with several.
    relay: int = Field(1, ge=1, le=MAX_RELAYS)
    # The object of the SENSOR message that carries the temperature (`DS18B20-1`, `AM2301`) when
    # the message has more than one; each sensor is an object named after its driver.
    sensor: str | None = Field(None, min_length=1)

    @field_validator("topic")
    @classmethod
    def _one_topic_level(cls, value: str) -> str:
        # The topic is one level of every topic we subscribe to. A wildcard would subscribe to
        # other devices too; a `%` is Tasmota's own template (`tasmota_%06X`), which the device
        # expands from its MAC: the site file needs the expanded name the device shows.
        if not value:
            raise ValueError("the Topic is empty")
        for char, why in (("/", "a topic level separator"), ("+", "an MQTT wildcard"), ("#", "an MQTT wildcard"),
                          ("%", "a Tasmota template: write the expanded Topic the device shows"),
                          ("\x00", "a NUL character")):
            if char in value:
                raise ValueError(f"{value!r} contains {char!r}, {why}")
        return value

    @field_validator("full_topic")
    @classmethod
    def _known_tokens(cls, value: str) -> str:
        tokens = set(_TOKENS.findall(value))
        missing = sorted(_FULL_TOPIC_TOKENS - tokens)
        if missing:
            raise ValueError(f"{value!r} lacks {' and '.join(missing)}: "
                             "without both, the device's topics cannot be told from others")
        # %hostname% and %id% are valid in Tasmota, but their values live on the device only.
        unknown = sorted(tokens - _FULL_TOPIC_TOKENS)
        if unknown:
            raise ValueError(f"{value!r} uses {', '.join(unknown)}, which only the device can expand; "
                             "write its value instead")
        if "+" in value or "#" in value or "\x00" in value:
            raise ValueError(f"{value!r} contains an MQTT wildcard (+ or #) or a NUL character")
        return value

    def topics(self) -> dict[str, str]:
        # The prefixes are Tasmota's defaults; Prefix2/Prefix3 can rename them, which nobody does.
        found = {
            self._topic("tele", "SENSOR"): SENSOR,
            self._topic("tele", "STATE"): STATE,
            self._topic("tele", "LWT"): LWT,
            self._topic("stat", "RESULT"): RESULT,
        }
        # A single relay is `POWER`; a device with several writes `POWER1` for the first.
        for key in self._power_keys():
            found[self._topic("stat", key)] = POWER
        return found

    def decode(self, device_id: str, part: str, payload: bytes) -> Decoded:
        if part == POWER:
            return Decoded({"on": _word(device_id, payload, _POWER_WORDS, "ON or OFF")})
        if part == LWT:
            return Decoded({"online": _word(device_id, payload, _LWT_WORDS, "Online or Offline")})
        fields = JsonFields(device_id, payload)
        if part == SENSOR:
            return self._sensor(fields)
        if part in (STATE, RESULT):
            return self._state(fields)
        raise DecodeError(device_id, Reason.BAD_TOPIC,
                          f"a Tasmota device has no part {part!r} (known: {', '.join(PARTS)})", payload)

    def _topic(self, prefix: str, leaf: str) -> str:
        base = self.full_topic.replace("%prefix%", prefix).replace("%topic%", self.topic)
        # Tasmota appends the missing final "/" itself.
        return f"{base}{leaf}" if base.endswith("/") else f"{base}/{leaf}"

    def _power_keys(self) -> tuple[str, ...]:
        return ("POWER", "POWER1") if self.relay == 1 else (f"POWER{self.relay}",)

    def _state(self, fields: JsonFields) -> Decoded:
        """STATE (every TelePeriod), and RESULT: the answer to a command, which is the relay's
        new state (`{"POWER":"ON"}`) after a switch, the whole state after `State`, and
        something else entirely (`{"SetOption19":"ON"}`) after other commands."""
        message = fields.parse()
        values: dict[str, float | bool] = {}
        for key in self._power_keys():
            on = fields.on_off(message.get(key), key)
            if on is not None:
                values["on"] = on
        wifi = message.get("Wifi")
        if isinstance(wifi, dict):  # the `Wifi` command answers `{"Wifi":"ON"}` on RESULT
            # `RSSI` is Tasmota's 0–100 quality percentage; `Signal` (since 8.x) is the dBm.
            signal = fields.number(wifi.get("Signal"), "Wifi.Signal")
            if signal is not None:
                values["rssi_dbm"] = signal
        return Decoded(values, _event_time(fields, message))

    def _sensor(self, fields: JsonFields) -> Decoded:
        message = fields.parse()
        values: dict[str, float | bool] = {}
        energy = fields.json_object(message.get("ENERGY"), "ENERGY")
        if energy is not None:
            for key, ours in ENERGY_FIELDS.items():
                value = self._channel(fields, energy.get(key), f"ENERGY.{key}")
                if value is not None:
                    values[ours] = value
        probe = self._probe(fields, message)
        if probe is not None:
            name, readings = probe
            celsius = _is_celsius(fields, message)
            temperature = fields.number(readings.get("Temperature"), f"{name}.Temperature")
            if temperature is not None:
                # Dividing first: (t - 32) * 5 would overflow for a finite t near the largest double.
                values["temperature_c"] = temperature if celsius else (temperature - 32) / 9 * 5
            humidity = fields.number(readings.get("Humidity"), f"{name}.Humidity")
            if humidity is not None:
                values["humidity_pct"] = humidity
        return Decoded(values, _event_time(fields, message))

    def _channel(self, fields: JsonFields, value: object, name: str) -> float | None:
        """An ENERGY field: one number, or a list with one per channel on a device that meters
        each relay (Sonoff Dual R3, Shelly 2.5), of which the relay's entry is ours."""
        if not isinstance(value, list):
            return fields.number(value, name)
        index = self.relay - 1
        if index >= len(value):
            raise fields.error(Reason.MISSING_FIELD,
                               f"{name} has {len(value)} channels, none for relay {self.relay}")
        return fields.number(value[index], f"{name}[{index}]")

    def _probe(self, fields: JsonFields, message: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The sensor object that carries the temperature (and humidity): the configured one,
        else the only one there is. Every sensor is a top-level object named after its driver,
        with a suffix when there are several (`DS18B20-1`, `DS18B20-2`)."""
        candidates = sorted(name for name, value in message.items()
                            if isinstance(value, dict) and "Temperature" in value and name not in _INTERNAL_SENSORS)
        if self.sensor is None:
            if len(candidates) > 1:
                raise fields.error(Reason.MISSING_FIELD,
                                   f"several temperature sensors ({', '.join(candidates)}): "
                                   "set source.sensor to the one this device is")
            return (candidates[0], message[candidates[0]]) if candidates else None
        readings = fields.json_object(message.get(self.sensor), self.sensor)
        if readings is None:
            # A SENSOR message without any temperature (a switch event) is no error; one with
            # other sensors but not ours is a probe that stopped answering, or a wrong name.
            if candidates:
                raise fields.error(Reason.MISSING_FIELD,
                                   f"no sensor {self.sensor!r} in this message (it has: {', '.join(candidates)})")
            return None
        if "Temperature" not in readings:
            raise fields.error(Reason.MISSING_FIELD, f"{self.sensor} has no Temperature")
        return self.sensor, readings


def _is_celsius(fields: JsonFields, message: dict[str, Any]) -> bool:
    # SetOption8 switches every temperature of the device to °F and says so in TempUnit;
    # firmwares older than TempUnit report °C only.
    unit = fields.string(message.get("TempUnit"), "TempUnit")
    if unit is None or unit == "C":
        return True
    if unit == "F":
        return False
    raise fields.error(Reason.WRONG_TYPE, f'TempUnit: expected "C" or "F", got {unit!r}')


def _event_time(fields: JsonFields, message: dict[str, Any]) -> int | None:
    """The message's event time, or None for the time of receipt.

    `Time` is the device's local time, written without an offset: Tasmota keeps a timezone
    setting of its own, which we cannot see and which is often left at its default (Central
    European time, with its DST rules). Reading it as our zone, or as UTC, would shift readings
    by hours without anyone noticing, so such a time is not used at all.
    With SetOption52 it carries its offset and means one instant; `Epoch` (present with the
    `Time 2` and `Time 3` formats) is Unix time and always does.
    """
    epoch = fields.number(message.get("Epoch"), "Epoch")
    if epoch is not None:
        if epoch < 0:
            raise fields.error(Reason.BAD_TIMESTAMP, f"Epoch {epoch:g} is before 1970")
        return round(epoch if epoch > _MS_THRESHOLD else epoch * 1000)
    text = fields.string(message.get("Time"), "Time")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fields.error(Reason.BAD_TIMESTAMP, f"Time {text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        return None
    return round(moment.timestamp() * 1000)


def _word(device_id: str, payload: bytes, words: dict[str, bool], expected: str) -> bool:
    """A plain-text payload (not JSON): `ON` on stat/POWER, `Online` on LWT."""
    word = payload.strip().decode("utf-8", errors="replace").upper()
    if word in words:
        return words[word]
    raise DecodeError(device_id, Reason.WRONG_TYPE, f"expected {expected}", payload)
