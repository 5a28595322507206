"""Simulated devices in their vendors' MQTT formats: what a device whose source is Zigbee2MQTT,
Tasmota or Shelly publishes for one native telemetry message of the simulation.

Pure functions of the device's source and the message, no I/O and no clock: each gives the
(topic, payload bytes) pairs the real device would publish, on the topics its source model
subscribes to (`source.topics()`), checked against the gateway's own codecs in
tests/simulators/test_vendors.py.

- Zigbee2MQTT: one state object per device on `<base_topic>/<name>`, with Zigbee's link
  quality (LQI) instead of a signal in dBm.
- Tasmota (`TelePeriod 60`): `tele/<topic>/SENSOR` with the energy monitor's `ENERGY` and the
  temperature probe, `tele/<topic>/STATE` with the relay and the Wi-Fi signal. Numbers at
  Tasmota's default resolutions: whole watts and volts, °C with one decimal.
- Shelly (Gen2+): the Switch component's status on `<prefix>/status/switch:<n>`, energy in Wh.

A format carries what the device knows and loses the rest, as the real device does: a Zigbee
sensor reports no dBm, a Tasmota plug with a probe knows nothing of the fridge's door or of a
battery, and a Shelly plug powering a UV lamp counts watt-hours, not tube hours. Readings in
these formats carry no event time (Tasmota's `Time` has no UTC offset), so the gateway stamps
them when they arrive: they are for live publishing only.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, time
from typing import Final

from devices.vendors import VendorSource
from devices.vendors import shelly as shelly_codec
from devices.vendors import tasmota as tasmota_codec
from devices.vendors import zigbee2mqtt as z2m_codec
from devices.vendors.shelly import ShellySource
from devices.vendors.tasmota import TasmotaSource
from devices.vendors.zigbee2mqtt import Zigbee2MqttSource
from simulators.model import COMPRESSOR_W, COOLING_SHARE, EPOCH, FRIDGE_IDLE_W, UV_LAMP_W, SimMessage, number

Publication = tuple[str, bytes]  # (topic, payload) of one MQTT message

# The sources whose devices publish over MQTT; the others (Modbus, DL/T 645) are polled.
MQTT_SOURCES: Final = (Zigbee2MqttSource, TasmotaSource, ShellySource)

# Zigbee2MQTT's names of the numbers we simulate, by our key; their units are ours.
_Z2M_NUMBERS: Final = {
    "battery_pct": "battery",
    "temperature_c": "temperature",
    "power_w": "power",
    "energy_kwh": "energy",
    "current_a": "current",
}
# Assumption: the LQI a coordinator reports rises linearly from 0 at -100 dBm to 255 at -30 dBm.
_LQI_FLOOR_DBM: Final = -100.0
_LQI_SPAN_DBM: Final = 70.0
_PROBE: Final = "DS18B20"  # the object of Tasmota's SENSOR message that a lone DS18B20 probe fills
_EPOCH_START: Final = datetime.combine(EPOCH, time(), UTC)
_FRIDGE_MEAN_W: Final = COMPRESSOR_W * COOLING_SHARE + FRIDGE_IDLE_W * (1 - COOLING_SHARE)


def telemetry(source: VendorSource, message: SimMessage) -> list[Publication]:
    """What the device behind `source` publishes for the native telemetry `message`."""
    if message.channel != "telemetry":
        raise ValueError(f"{message.device_id}: only telemetry has a vendor format, not {message.channel}")
    payload = message.payload
    match source:
        case Zigbee2MqttSource():
            return [(_topic(source, z2m_codec.STATE), _json(_zigbee2mqtt_state(payload)))]
        case TasmotaSource():
            return _tasmota(source, message)
        case ShellySource():
            status = {"id": source.switch, "output": payload.get("on", True), **_shelly_meter(message)}
            return [(_topic(source, shelly_codec.STATUS), _json(status))]
    raise ValueError(f"{message.device_id}: a {source.protocol} meter is polled; it publishes nothing")


def availability(source: VendorSource) -> Publication:
    """The device's own "online" message, which the broker keeps (retained) for subscribers
    that come later: Zigbee2MQTT's availability, Tasmota's LWT, Shelly's `online`."""
    match source:
        case Zigbee2MqttSource():
            return _topic(source, z2m_codec.AVAILABILITY), _json({"state": "online"})
        case TasmotaSource():
            return _topic(source, tasmota_codec.LWT), b"Online"
        case ShellySource():
            return _topic(source, shelly_codec.ONLINE_PART), b"true"
    raise ValueError(f"a {source.protocol} meter is polled; it has no availability topic")


def _topic(source: VendorSource, part: str) -> str:
    return next(topic for topic, its_part in source.topics().items() if its_part == part)


def _json(value: dict[str, object]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _zigbee2mqtt_state(payload: dict[str, object]) -> dict[str, object]:
    state = {theirs: payload[ours] for ours, theirs in _Z2M_NUMBERS.items() if ours in payload}
    if "open" in payload:
        state["contact"] = not payload["open"]  # the magnet is near: closed
    if "leak" in payload:
        state[z2m_codec.WATER_LEAK] = payload["leak"]
    if "on" in payload:
        state["state"] = "ON" if payload["on"] else "OFF"
    if "rssi_dbm" in payload:
        share = (number(payload, "rssi_dbm") - _LQI_FLOOR_DBM) / _LQI_SPAN_DBM
        state["linkquality"] = max(0, min(255, round(255 * share)))
    return state


def _tasmota(source: TasmotaSource, message: SimMessage) -> list[Publication]:
    payload = message.payload
    # Tasmota writes its local time without an offset (the codec ignores such a time).
    local = datetime.fromisoformat(str(payload["ts"])).replace(tzinfo=None).isoformat(timespec="seconds")
    sensor: dict[str, object] = {"Time": local}
    if "power_w" in payload:
        energy: dict[str, object] = {
            "TotalStartTime": f"{EPOCH.isoformat()}T00:00:00",
            "Total": round(_plug_energy_kwh(message), 3),
            "Power": round(number(payload, "power_w")),
        }
        if "voltage_v" in payload:
            energy["Voltage"] = round(number(payload, "voltage_v"))
        if "current_a" in payload:
            energy["Current"] = round(number(payload, "current_a"), 3)
        sensor["ENERGY"] = energy
    if "temperature_c" in payload:
        probe_id = hashlib.blake2b(message.device_id.encode(), digest_size=6).hexdigest().upper()
        sensor[source.sensor or _PROBE] = {"Id": probe_id, "Temperature": round(number(payload, "temperature_c"), 1)}
        sensor["TempUnit"] = "C"
    out = [(_topic(source, tasmota_codec.SENSOR), _json(sensor))]
    # STATE carries the relay (on, for a fridge's plug, unless the simulation says otherwise)
    # and the Wi-Fi signal; without either from the simulation it would tell the gateway nothing.
    if "on" in payload or "rssi_dbm" in payload:
        relay = "POWER" if source.relay == 1 else f"POWER{source.relay}"
        state: dict[str, object] = {"Time": local, relay: "ON" if payload.get("on", True) else "OFF"}
        if "rssi_dbm" in payload:
            dbm = round(number(payload, "rssi_dbm"))
            # Tasmota's RSSI is a quality in %, twice the dBm above -100; Signal is the dBm.
            state["Wifi"] = {"AP": 1, "RSSI": max(0, min(100, 2 * (dbm + 100))), "Signal": dbm}
        out.append((_topic(source, tasmota_codec.STATE), _json(state)))
    return out


def _shelly_meter(message: SimMessage) -> dict[str, object]:
    """The metering fields of a Switch status, at Shelly's resolutions."""
    payload = message.payload
    fields: dict[str, object] = {}
    if "power_w" in payload:
        fields["apower"] = round(number(payload, "power_w"), 1)
    if "voltage_v" in payload:
        fields["voltage"] = round(number(payload, "voltage_v"), 1)
    if "current_a" in payload:
        fields["current"] = round(number(payload, "current_a"), 3)
    fields["aenergy"] = {"total": round(1000 * _plug_energy_kwh(message), 3)}
    return fields


def _plug_energy_kwh(message: SimMessage) -> float:
    """The energy a smart plug has counted. A meter's own total where the device is one; the
    kinds that hang on plugs record no energy, so for them the count need only be plausible and
    never run back: a UV lamp's tube hours at its rating, or a fridge's mean draw since EPOCH."""
    payload = message.payload
    if "energy_kwh" in payload:
        return number(payload, "energy_kwh")
    if "lamp_hours" in payload:
        return number(payload, "lamp_hours") * UV_LAMP_W / 1000
    hours = (message.ts - _EPOCH_START).total_seconds() / 3600
    return hours * _FRIDGE_MEAN_W / 1000
