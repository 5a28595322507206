"""The Zigbee2MQTT codec: real payloads from `tests/fixtures/vendors/zigbee2mqtt/` (sources in
the README there), the rules the codec adds to them, and Hypothesis probes of its totality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devices import kinds
from devices.base import DecodeError, Reason, preview
from devices.vendors import Decoded
from devices.vendors.zigbee2mqtt import Zigbee2MqttSource
from tests.devices.vendor_json import assert_total, decode_or_error, json_texts, object_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendors" / "zigbee2mqtt"
SOURCE = Zigbee2MqttSource(protocol="zigbee2mqtt", name="kitchen_door")
RECEIVED_MS = 1_795_236_000_000
# As in test_decode_properties.py: no example database in the repository, no timing checks.
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY = settings(FUZZ, max_examples=100)

# The Zigbee2MQTT properties the codec reads; every other key is ignored.
KNOWN_KEYS = [
    "contact", "water_leak", "state", "temperature", "humidity", "power", "energy", "voltage", "current",
    "battery", "linkquality", "last_seen",
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def part_of(name: str) -> str:
    return "availability" if name.startswith("availability_") else "state"


def outcome(part: str, payload: bytes) -> Decoded | DecodeError:
    """What the codec made of a payload; anything but a DecodeError propagates and fails the test."""
    return decode_or_error(SOURCE, "kitchen_door", part, payload)


def refused(part: str, payload: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        SOURCE.decode("kitchen_door", part, payload)
    return caught.value


# --- the real payloads -------------------------------------------------------------------------

# Read off each fixture by hand. A fixture is either decoded to these values or refused with a
# reason and the field the error names.
EXPECTED: dict[str, Decoded | tuple[Reason, str]] = {
    "mccgq11lm_closed.json": Decoded({"open": False, "link_quality": 144.0}, ts_ms=1_712_611_296_794),
    "mccgq11lm_open.json": Decoded({"open": True, "link_quality": 0.0}),
    # 3019 is the cell's millivolts: no mains voltage, although there is no `battery` key.
    "mccgq14lm_voltage_without_battery.json": Decoded(
        {"open": False, "on": False, "temperature_c": 25.0, "link_quality": 87.0}
    ),
    "mccgq14lm_after_pairing.json": Decoded({"link_quality": 255.0}, ts_ms=1_759_576_455_679),
    "sjcgq11lm_dry.json": Decoded(
        {"leak": False, "temperature_c": 26.0, "battery_pct": 100.0, "link_quality": 83.0}, ts_ms=1_656_118_444_933
    ),
    "sjcgq11lm_2018_battery_string.json": (Reason.WRONG_TYPE, "battery"),
    "sjcgq12lm_nulls.json": Decoded({"leak": False, "link_quality": 160.0}),
    "wsdcgq11lm.json": Decoded({"temperature_c": 22.4, "humidity_pct": 58.5, "battery_pct": 97.0, "link_quality": 72.0}),
    "snzb-02.json": Decoded({"temperature_c": 27.2, "humidity_pct": 34.34, "battery_pct": 100.0, "link_quality": 232.0}),
    # last_seen 2026-07-27T09:41:41+02:00 is 07:41:41 UTC.
    "ts011f_off.json": Decoded(
        {"on": False, "power_w": 0.0, "energy_kwh": 12.05, "current_a": 0.0, "voltage_v": 243.0, "link_quality": 43.0},
        ts_ms=1_785_138_101_000,
    ),
    "ts0121_on.json": Decoded(
        {"on": True, "power_w": 0.0, "energy_kwh": 1.54, "current_a": 0.07, "voltage_v": 239.0, "link_quality": 63.0}
    ),
    "zncz04lm_on.json": Decoded({"on": True, "power_w": 112.7, "link_quality": 132.0}),
    "availability_legacy_online.txt": Decoded({"online": True}),
    "availability_legacy_offline.txt": Decoded({"online": False}),
    "availability_online.json": Decoded({"online": True}),
    "availability_offline.json": Decoded({"online": False}),
}

FIXTURE_FILES = sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md")


def test_every_expectation_has_its_fixture() -> None:
    assert set(EXPECTED) == set(FIXTURE_FILES)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture(name: str) -> None:
    expected = EXPECTED[name]  # a new fixture needs its expectation written here
    payload = fixture(name)
    if isinstance(expected, Decoded):
        assert SOURCE.decode("kitchen_door", part_of(name), payload) == expected
    else:
        reason, field = expected
        err = refused(part_of(name), payload)
        assert (err.reason, err.device_id, err.preview) == (reason, "kitchen_door", preview(payload))
        assert field in err.detail


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("mccgq11lm_")))
def test_door_kind_records_the_contact(name: str) -> None:
    payload = fixture(name)
    decoded = SOURCE.decode("kitchen_door", "state", payload)
    sample = kinds()["door"].from_values("kitchen_door", decoded, RECEIVED_MS, payload)
    closed = name == "mccgq11lm_closed.json"
    assert sample.values["open"] == (0.0 if closed else 1.0)
    assert sample.ts_ms == (decoded.ts_ms if decoded.ts_ms is not None else RECEIVED_MS)


def test_door_kind_records_availability() -> None:
    payload = fixture("availability_offline.json")
    decoded = SOURCE.decode("kitchen_door", "availability", payload)
    assert kinds()["door"].from_values("kitchen_door", decoded, RECEIVED_MS, payload).values == {"online": 0.0}


def test_meter_kind_keeps_the_plug_readings_it_records() -> None:
    payload = fixture("ts011f_off.json")
    sample = kinds()["electricity_meter"].from_values(
        "plug", SOURCE.decode("plug", "state", payload), RECEIVED_MS, payload
    )
    # `on` is not a meter's metric and is left out by the kind, not by the codec.
    assert sample.values == {
        "energy_kwh": 12.05, "power_w": 0.0, "voltage_v": 243.0, "current_a": 0.0, "link_quality": 43.0
    }


# --- the source's settings ---------------------------------------------------------------------


def test_topics() -> None:
    source = Zigbee2MqttSource(protocol="zigbee2mqtt", name="ground_floor/kitchen door", base_topic="z2m/site-1")
    assert source.topics() == {
        "z2m/site-1/ground_floor/kitchen door": "state",
        "z2m/site-1/ground_floor/kitchen door/availability": "availability",
    }
    assert SOURCE.topics() == {"zigbee2mqtt/kitchen_door": "state", "zigbee2mqtt/kitchen_door/availability": "availability"}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("name", "kitchen/+", "wildcard"),
        ("name", "kitchen/#", "wildcard"),
        ("name", "door#1", "wildcard"),
        ("name", "", "empty topic level"),
        ("name", "/kitchen_door", "empty topic level"),
        ("name", "kitchen_door/", "empty topic level"),
        ("name", "kitchen//door", "empty topic level"),
        ("name", "kitchen\x00door", "NUL"),
        ("base_topic", "zigbee2mqtt/+", "wildcard"),
        ("base_topic", "zigbee2mqtt/", "empty topic level"),
    ],
)
def test_unusable_topic_level_is_refused(field: str, value: str, says: str) -> None:
    settings_: dict[str, Any] = {"protocol": "zigbee2mqtt", "name": "kitchen_door", field: value}
    with pytest.raises(ValidationError, match=says):
        Zigbee2MqttSource.model_validate(settings_)


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="friendly_name"):
        Zigbee2MqttSource.model_validate({"protocol": "zigbee2mqtt", "name": "x", "friendly_name": "x"})


def test_unknown_part_is_refused() -> None:
    assert refused("set", b"{}").reason is Reason.BAD_TOPIC


# --- the rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("contact", "is_open"), [(True, False), (False, True)])
def test_contact_true_means_closed(contact: bool, is_open: bool) -> None:
    decoded = SOURCE.decode("d", "state", json.dumps({"contact": contact}).encode())
    assert decoded.values == {"open": is_open}


def test_null_means_not_reported_yet() -> None:
    every_key_null = json.dumps(dict.fromkeys(KNOWN_KEYS)).encode()
    assert SOURCE.decode("d", "state", every_key_null) == Decoded({})
    after_pairing = b'{"temperature": null, "humidity": 48.5, "battery": null, "linkquality": 120}'
    assert SOURCE.decode("d", "state", after_pairing) == Decoded({"humidity_pct": 48.5, "link_quality": 120.0})


@pytest.mark.parametrize(
    "payload",
    [b"{}", b'{"illuminance": 12, "tamper": false, "battery_low": true, "update": {"state": "idle"}}',
     b'{"device_temperature": 26, "action": "single", "occupancy": true}'],
)
def test_nothing_recognised_is_an_empty_decoding(payload: bytes) -> None:
    assert SOURCE.decode("d", "state", payload) == Decoded({})


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"voltage": 3005, "battery": 100, "contact": True}, None),  # an Aqara cell, in mV
        ({"voltage": 3019, "contact": True}, None),  # no battery key, but no meter either
        ({"voltage": 3000, "battery": None, "power": 1}, None),  # a battery device, whatever it measures
        ({"voltage": 230}, None),  # nothing says it is mains
        ({"voltage": 230.5, "power": 5}, 230.5),
        ({"voltage": 229, "current": 0.1}, 229.0),
        ({"voltage": 231, "power": None}, 231.0),  # a meter that has not reported its power yet
        ({"voltage": None, "power": 5}, None),
    ],
)
def test_voltage_is_mains_only_from_a_plug(state: dict[str, Any], expected: float | None) -> None:
    values = SOURCE.decode("d", "state", json.dumps(state).encode()).values
    assert values.get("voltage_v") == expected


@pytest.mark.parametrize(
    ("state", "on"), [("ON", True), ("OFF", False), ("on", True), ("off", False)]
)
def test_switch_state(state: str, on: bool) -> None:
    assert SOURCE.decode("d", "state", json.dumps({"state": state}).encode()).values == {"on": on}


@pytest.mark.parametrize(
    ("last_seen", "expected_ms"),
    [
        ("2024-04-08T21:21:36.794Z", 1_712_611_296_794),  # ISO_8601
        ("2024-04-08T23:21:36.794+02:00", 1_712_611_296_794),  # ISO_8601_local
        ("2024-04-08T21:21:36Z", 1_712_611_296_000),
        (1_656_118_444_933, 1_656_118_444_933),  # epoch: milliseconds
        (1_656_118_444_933.4, 1_656_118_444_933),
        (None, None),
    ],
)
def test_last_seen_is_the_event_time(last_seen: str | float | None, expected_ms: int | None) -> None:
    decoded = SOURCE.decode("d", "state", json.dumps({"contact": True, "last_seen": last_seen}).encode())
    assert decoded.ts_ms == expected_ms


@pytest.mark.parametrize(
    ("payload", "reason", "says"),
    [
        (b'{"contact": "yes"}', Reason.WRONG_TYPE, "contact"),
        (b'{"contact": 1}', Reason.WRONG_TYPE, "contact"),
        (b'{"water_leak": "false"}', Reason.WRONG_TYPE, "water_leak"),
        (b'{"power": "12"}', Reason.WRONG_TYPE, "power"),
        (b'{"temperature": true}', Reason.WRONG_TYPE, "temperature"),
        (b'{"humidity": [48]}', Reason.WRONG_TYPE, "humidity"),
        (b'{"linkquality": {"value": 3}}', Reason.WRONG_TYPE, "linkquality"),
        (b'{"voltage": "230", "power": 4}', Reason.WRONG_TYPE, "voltage"),
        (b'{"state": "TOGGLE"}', Reason.WRONG_TYPE, "state"),
        (b'{"state": true}', Reason.WRONG_TYPE, "state"),
        (b'{"temperature": NaN}', Reason.NOT_FINITE, "temperature"),
        (b'{"power": Infinity}', Reason.NOT_FINITE, "power"),
        (b'{"energy": 1e400}', Reason.NOT_FINITE, "energy"),
        (b'{"energy": 1' + b"0" * 400 + b"}", Reason.NOT_FINITE, "energy"),
        (b'{"contact": true, "last_seen": "yesterday"}', Reason.BAD_TIMESTAMP, "ISO 8601"),
        (b'{"contact": true, "last_seen": "2024-04-08T21:21:36"}', Reason.BAD_TIMESTAMP, "UTC offset"),
        (b'{"contact": true, "last_seen": "2024-04-08"}', Reason.BAD_TIMESTAMP, "UTC offset"),
        (b'{"contact": true, "last_seen": -5}', Reason.BAD_TIMESTAMP, "1970"),
        (b'{"contact": true, "last_seen": 1e20}', Reason.BAD_TIMESTAMP, "9999"),
        (b'{"contact": true, "last_seen": 1' + b"0" * 400 + b"}", Reason.BAD_TIMESTAMP, "9999"),
        (b'{"contact": true, "last_seen": NaN}', Reason.BAD_TIMESTAMP, "last_seen"),
        (b'{"contact": true, "last_seen": true}', Reason.BAD_TIMESTAMP, "last_seen"),
        (b'{"contact": true', Reason.NOT_JSON, "not JSON"),
        (b"ON", Reason.NOT_JSON, "not JSON"),
        (b"\xff\xfe", Reason.NOT_JSON, "not JSON"),
        (b"[1, 2]", Reason.NOT_OBJECT, "array"),
        (b'"ON"', Reason.NOT_OBJECT, "string"),
        (b"null", Reason.NOT_OBJECT, "null"),
    ],
)
def test_bad_state_is_refused(payload: bytes, reason: Reason, says: str) -> None:
    err = refused("state", payload)
    assert (err.reason, err.device_id, err.preview) == (reason, "kitchen_door", preview(payload))
    assert says in err.detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"Online", Reason.NOT_JSON),
        (b"online\n", Reason.NOT_JSON),
        (b"", Reason.NOT_JSON),
        (b'"online"', Reason.NOT_OBJECT),
        (b'["online"]', Reason.NOT_OBJECT),
        (b"{}", Reason.MISSING_FIELD),
        (b'{"state": null}', Reason.MISSING_FIELD),
        (b'{"state": "unknown"}', Reason.WRONG_TYPE),
        (b'{"state": true}', Reason.WRONG_TYPE),
    ],
)
def test_bad_availability_is_refused(payload: bytes, reason: Reason) -> None:
    err = refused("availability", payload)
    assert err.reason is reason
    assert "online" in err.detail or "state" in err.detail


# --- properties --------------------------------------------------------------------------------

# Numbers Python's `json` never writes but a broken bridge or hand-written publisher might:
# pydantic's parser reads NaN and Infinity, and a literal too big for a double is infinite.
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400, "-" + "9" * 400, "-0", "1e-400"]
WORDS = ["null", "true", "false", '"ON"', '"off"', '"TOGGLE"', '"online"', '"2024-04-08T21:21:36.794Z"',
         '"2024-04-08T21:21:36"']
JSON_SCALARS = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from(WORDS),
    st.integers().map(str),
    st.floats().map(json.dumps),
    st.text().map(json.dumps),
)
KEYS = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8)

JSON_TEXTS = json_texts(JSON_SCALARS, KEYS)
# Mostly objects, as the bridge sends, but any JSON value and any bytes at all too. The first
# kind holds only the properties the codec reads, each with any scalar: where the rare values
# (a 400-digit integer as `last_seen`) are found.
PAYLOADS = st.one_of(
    st.lists(st.tuples(st.sampled_from(KNOWN_KEYS), JSON_SCALARS), max_size=6).map(object_text).map(str.encode),
    st.lists(st.tuples(KEYS, JSON_TEXTS), max_size=8).map(object_text).map(str.encode),
    JSON_TEXTS.map(str.encode),
    st.binary(max_size=64),
)


@FUZZ
@given(part=st.sampled_from(["state", "availability"]), payload=PAYLOADS)
def test_decoding_is_total(part: str, payload: bytes) -> None:
    assert_total(outcome(part, payload), "kitchen_door", payload)


@pytest.mark.parametrize("key", KNOWN_KEYS)
@PROPERTY
@given(value=JSON_SCALARS | JSON_TEXTS)
def test_any_value_of_a_known_field_is_read_or_refused_by_name(key: str, value: str) -> None:
    # `power` makes the message a plug's, so that `voltage` is read too.
    payload = object_text([("power", "1"), (key, value)]).encode()
    result = outcome("state", payload)
    if isinstance(result, DecodeError):
        assert key in result.detail


UNKNOWN_KEYS = st.text(max_size=12).filter(lambda key: key not in KNOWN_KEYS)


@PROPERTY
@given(
    name=st.sampled_from([n for n in FIXTURE_FILES if n.endswith(".json") and not n.startswith("availability_")]),
    extra=st.lists(st.tuples(UNKNOWN_KEYS, JSON_TEXTS), max_size=6),
)
def test_unknown_fields_change_nothing(name: str, extra: list[tuple[str, str]]) -> None:
    original = json.loads(fixture(name))
    pairs = [(key, json.dumps(value)) for key, value in original.items()] + extra
    payload = object_text(pairs).encode()
    expected = EXPECTED[name]
    if isinstance(expected, Decoded):
        assert SOURCE.decode("d", "state", payload) == expected
    else:
        assert refused("state", payload).reason is expected[0]
