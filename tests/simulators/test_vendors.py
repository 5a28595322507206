"""The simulator's vendor formats (simulators/vendors.py) read back by the gateway's own codecs:
a day of telemetry of each device with a Zigbee2MQTT, Tasmota or Shelly source decodes, through
`source.decode` on the topics the gateway subscribes to and the device's kind, to the values of
the native message, within the resolution of the vendor's format; what a format cannot carry
is lost, and nothing else. Each device's availability message says it is online."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

import simulators
from devices import kinds
from devices.base import MetricType
from devices.vendors import VendorSource, sources
from gateway.config import SiteConfig, load
from simulators import vendors
from simulators.faults import FloorWet, inject
from simulators.model import SimMessage, SiteSimulation
from simulators.vendors import MQTT_SOURCES

SITE: SiteConfig = load(simulators.DEMO_SITE)
MONDAY = datetime(2026, 11, 23, tzinfo=SITE.tz)  # an open day: doors open, lamps run, samples go in
WET = FloorWet("kitchen-leak", MONDAY + timedelta(hours=2), MONDAY + timedelta(hours=3))
RECEIVED_MS = 1_795_000_000_000
PARTS = {"zigbee2mqtt": {"state"}, "tasmota": {"sensor", "state"}, "shelly": {"status"}}


@dataclass(frozen=True)
class Case:
    """A device on a vendor source: what its messages lose of the native ones, what they
    translate (Zigbee's link quality for the signal in dBm), and where the format rounds."""

    device_id: str
    source: VendorSource
    lost: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    tolerance: dict[str, float] = field(default_factory=dict)
    parts: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return f"{self.device_id}@{self.source.protocol}"


def source_of(device_id: str) -> VendorSource:
    device = SITE.device(device_id)
    assert device is not None
    assert device.source is not None
    return device.source


def other(**fields: Any) -> VendorSource:
    return sources()[fields["protocol"]].model_validate(fields)


# Tasmota writes whole watts and volts.
TASMOTA_ROUNDING = {"power_w": 0.5, "voltage_v": 0.5}
DEMO = [
    Case("kitchen-door", source_of("kitchen-door"), frozenset({"rssi_dbm"}), frozenset({"link_quality"})),
    Case("kitchen-leak", source_of("kitchen-leak"), frozenset({"rssi_dbm"}), frozenset({"link_quality"})),
    Case("sample-fridge", source_of("sample-fridge"), frozenset({"door_open", "battery_pct"}),
         tolerance=TASMOTA_ROUNDING),
    Case("uv-kitchen", source_of("uv-kitchen"), frozenset({"lamp_hours"})),
]
# The same kinds on the other vendors, and a meter on a metering plug.
OTHERS = [
    Case("uv-kitchen", other(protocol="tasmota", topic="tasmota_uv"), frozenset({"lamp_hours"}),
         tolerance=TASMOTA_ROUNDING, parts=frozenset({"sensor", "state"})),
    Case("uv-kitchen", other(protocol="zigbee2mqtt", name="uv_plug"), frozenset({"lamp_hours"})),
    Case("sample-fridge", other(protocol="zigbee2mqtt", name="fridge_sensor"), frozenset({"door_open", "rssi_dbm"}),
         frozenset({"link_quality"})),
    Case("sample-fridge", other(protocol="shelly", prefix="shellyplusplugs-fridge"),
         frozenset({"temperature_c", "door_open", "battery_pct", "rssi_dbm"})),
    Case("teaching-power", other(protocol="tasmota", topic="tasmota_meter"), tolerance=TASMOTA_ROUNDING,
         parts=frozenset({"sensor"})),
    Case("teaching-power", other(protocol="shelly", prefix="shellypro1pm-meter")),
    # A Zigbee plug's voltage is left out: Zigbee2MQTT's `voltage` of a battery sensor is its cell's.
    Case("teaching-power", other(protocol="zigbee2mqtt", name="meter_plug"), frozenset({"voltage_v"})),
]


@pytest.fixture(scope="module")
def day() -> list[SimMessage]:
    """Monday's telemetry, with an hour of water on the kitchen floor."""
    stream = inject(SiteSimulation(SITE).messages(MONDAY, MONDAY + timedelta(days=1)), [WET], SITE)
    return [m for m in stream if m.channel == "telemetry"]


def test_the_demo_site_has_devices_of_every_mqtt_vendor() -> None:
    vendor_devices = {d.id for d in SITE.devices if isinstance(d.source, MQTT_SOURCES)}
    assert vendor_devices == {case.device_id for case in DEMO}
    assert {case.source.protocol for case in DEMO} == set(PARTS)


@pytest.mark.parametrize("case", DEMO + OTHERS, ids=str)
def test_every_message_decodes_to_the_native_values(case: Case, day: list[SimMessage]) -> None:
    device = SITE.device(case.device_id)
    assert device is not None
    kind = kinds()[device.kind]
    source, protocol = case.source, case.source.protocol
    routes = source.topics()
    parts: set[str] = set()
    states: dict[str, set[float]] = {}
    messages = [m for m in day if m.device_id == case.device_id]
    assert len(messages) == 24 * 60
    for message in messages:
        native = kind.decode(case.device_id, json.dumps(message.payload).encode(), RECEIVED_MS).values
        got: dict[str, float] = {}
        for topic, payload in vendors.telemetry(source, message):
            part = routes[topic]  # a topic the gateway subscribes to for this device
            parts.add(part)
            sample = kind.from_values(case.device_id, source.decode(case.device_id, part, payload), RECEIVED_MS,
                                      payload)
            assert sample.ts_ms == RECEIVED_MS  # no event time: the gateway stamps it on receipt
            got |= sample.values
        assert set(native) - set(got) == case.lost & set(native), message.ts
        assert set(got) - set(native) == case.added, message.ts
        for key in set(got) & set(native):
            assert got[key] == pytest.approx(native[key], abs=case.tolerance.get(key, 1e-9)), (message.ts, key)
            metric = kind.metric(key)
            assert metric is not None
            if metric.type is MetricType.STATE:
                states.setdefault(key, set()).add(got[key])
    assert parts == (case.parts or PARTS[protocol])
    assert all(seen == {0.0, 1.0} for seen in states.values()), states  # both states went through


@pytest.mark.parametrize("case", DEMO, ids=str)
def test_availability_says_online(case: Case) -> None:
    device = SITE.device(case.device_id)
    assert device is not None
    topic, payload = vendors.availability(case.source)
    decoded = case.source.decode(case.device_id, case.source.topics()[topic], payload)
    assert kinds()[device.kind].from_values(case.device_id, decoded, RECEIVED_MS, payload).values == {"online": 1.0}


def test_a_polled_meter_has_no_mqtt_format(day: list[SimMessage]) -> None:
    meter = source_of("kitchen-power")
    message = next(m for m in day if m.device_id == "kitchen-power")
    with pytest.raises(ValueError, match="polled"):
        vendors.telemetry(meter, message)
    with pytest.raises(ValueError, match="polled"):
        vendors.availability(meter)
