"""The Shelly Gen2+ codec: real payloads from `tests/fixtures/vendors/shelly/` (sources in the
README there), the rules the codec adds to them, and Hypothesis probes of its totality."""

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
from devices.vendors.shelly import PARTS, ShellySource
from tests.devices.vendor_json import assert_total, decode_or_error, json_texts, object_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendors" / "shelly"
FIXTURE_FILES = sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md")
PREFIX = "shellyplusplugs-a8032ab12345"
RECEIVED_MS = 1_795_236_000_000
# As in test_decode_properties.py: no example database in the repository, no timing checks.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY = settings(FUZZ, max_examples=50)


def source(**setting: Any) -> ShellySource:
    return ShellySource.model_validate({"protocol": "shelly", "prefix": PREFIX, **setting})


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def part_of(name: str) -> str:
    return name.split("_", 1)[0]  # files are named after the part: status_…, rpc_…, online_…


def refused(part: str, payload: bytes, **setting: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        source(**setting).decode("uv-1", part, payload)
    err = caught.value
    assert (err.device_id, err.preview) == ("uv-1", preview(payload))
    return err


# --- the real payloads -------------------------------------------------------------------------

# Read off each fixture by hand. `aenergy.total` is in Wh, hence the divisions by 1000; the
# internal `temperature.tC` of every status is left out on purpose.
EXPECTED: dict[str, Decoded] = {
    "status_switch_script_example.json": Decoded(
        {"on": False, "power_w": 0.0, "voltage_v": 238.215, "current_a": 0.0, "energy_kwh": 0.134 / 1000}
    ),
    "status_switch_plus_plug_s.json": Decoded(
        {"on": True, "power_w": 0.8, "voltage_v": 231.5, "current_a": 0.014, "energy_kwh": 1.936 / 1000}
    ),
    "rpc_notifystatus_button_docs.json": Decoded({"on": True}, ts_ms=1_631_186_545_040),
    "rpc_notifystatus_cloud_docs.json": Decoded({}, ts_ms=1_624_348_482_250),  # another component only
    "rpc_notifystatus_aenergy_plus_plug_s.json": Decoded({"energy_kwh": 1.924 / 1000}, ts_ms=1_675_542_540_150),
    "rpc_notifyfullstatus_plus_plug_s.json": Decoded(
        {"on": True, "power_w": 0.0, "voltage_v": 229.1, "current_a": 0.0, "energy_kwh": 30473.355 / 1000},
        ts_ms=1_698_999_954_770,
    ),
    "rpc_notifyevent_single_push.json": Decoded(),
    "online_true.txt": Decoded({"online": True}),
    "online_false.txt": Decoded({"online": False}),
}


def test_every_fixture_has_its_expectation() -> None:
    assert set(EXPECTED) == set(FIXTURE_FILES)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture(name: str) -> None:
    expected = EXPECTED[name]  # a new fixture needs its expectation written here
    assert source().decode("uv-1", part_of(name), fixture(name)) == expected


def test_lamp_kind_records_the_status() -> None:
    payload = fixture("status_switch_plus_plug_s.json")
    decoded = source().decode("uv-1", "status", payload)
    sample = kinds()["uv_lamp"].from_values("uv-1", decoded, RECEIVED_MS, payload)
    assert sample.values == {"on": 1.0, "power_w": 0.8}
    assert sample.ts_ms == RECEIVED_MS


def test_meter_kind_records_the_full_status_at_its_time() -> None:
    payload = fixture("rpc_notifyfullstatus_plus_plug_s.json")
    decoded = source().decode("plug-1", "rpc", payload)
    sample = kinds()["electricity_meter"].from_values("plug-1", decoded, RECEIVED_MS, payload)
    assert sample.values == {"energy_kwh": pytest.approx(30.473355), "power_w": 0.0, "voltage_v": 229.1,
                             "current_a": 0.0}
    assert sample.ts_ms == 1_698_999_954_770


# --- the source's settings ---------------------------------------------------------------------


def test_topics() -> None:
    assert source().topics() == {
        f"{PREFIX}/status/switch:0": "status",
        f"{PREFIX}/events/rpc": "rpc",
        f"{PREFIX}/online": "online",
    }
    assert source(prefix="school/kitchen/uv-lamp", switch=1).topics() == {
        "school/kitchen/uv-lamp/status/switch:1": "status",
        "school/kitchen/uv-lamp/events/rpc": "rpc",
        "school/kitchen/uv-lamp/online": "online",
    }


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"prefix": "shellies/+"}, "wildcard"),
        ({"prefix": "shellies/#"}, "wildcard"),
        ({"prefix": ""}, "empty topic level"),
        ({"prefix": "/shelly"}, "empty topic level"),
        ({"prefix": "shelly/"}, "empty topic level"),
        ({"prefix": "a//b"}, "empty topic level"),
        ({"prefix": "shelly\x00"}, "NUL"),
        ({"switch": -1}, "greater than or equal to 0"),
        ({"channel": 0}, "channel"),
    ],
)
def test_unusable_setting_is_refused(setting: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        source(**setting)


def test_unknown_part_is_refused() -> None:
    assert refused("status/sys", b"{}").reason is Reason.BAD_TOPIC


# --- the rules ---------------------------------------------------------------------------------


def test_energy_is_converted_from_watt_hours() -> None:
    decoded = source().decode("d", "status", b'{"id":0,"aenergy":{"total":12345.678,"by_minute":[1,2,3]}}')
    assert decoded.values == {"energy_kwh": pytest.approx(12.345678)}


def test_the_internal_temperature_is_not_read() -> None:
    hot_plug = b'{"id":0,"output":true,"temperature":{"tC":53.3,"tF":127.9}}'
    assert source().decode("d", "status", hot_plug).values == {"on": True}


def test_notification_for_another_switch_carries_nothing_of_ours() -> None:
    second = source(switch=1)
    assert second.decode("d", "rpc", fixture("rpc_notifystatus_button_docs.json")) == Decoded({}, 1_631_186_545_040)
    frame = {"method": "NotifyStatus", "params": {"ts": 1631186545.04, "switch:1": {"id": 1, "output": False}}}
    assert second.decode("d", "rpc", json.dumps(frame).encode()).values == {"on": False}


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [(1631186545.04, 1_631_186_545_040), (1631186545, 1_631_186_545_000), (0, 0), (None, None)],
)
def test_notification_time_is_params_ts(ts: float | None, expected_ms: int | None) -> None:
    frame = {"method": "NotifyStatus", "params": {"ts": ts, "switch:0": {"output": True}}}
    assert source().decode("d", "rpc", json.dumps(frame).encode()) == Decoded({"on": True}, expected_ms)


@pytest.mark.parametrize("method", ["NotifyEvent", "Switch.Set", "NotifyStatusX", ""])
def test_other_methods_carry_nothing(method: str) -> None:
    # Even with a switch status inside: only the status notifications are read.
    frame = {"method": method, "params": {"ts": 1, "switch:0": {"output": True}}}
    assert source().decode("d", "rpc", json.dumps(frame).encode()) == Decoded()


def test_null_is_unknown() -> None:
    # NotifyStatus sends null for a key that disappeared from the status.
    frame = b'{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"apower":null,"output":null,"aenergy":null}}}'
    assert source().decode("d", "rpc", frame) == Decoded({}, 1000)


@pytest.mark.parametrize(
    ("part", "payload", "reason", "says"),
    [
        ("status", b"true", Reason.NOT_OBJECT, "boolean"),
        ("status", b'{"output":', Reason.NOT_JSON, "not JSON"),
        ("rpc", b"\xff\xfe", Reason.NOT_JSON, "not JSON"),
        ("rpc", b"[]", Reason.NOT_OBJECT, "array"),
        ("status", b'{"output":"on"}', Reason.WRONG_TYPE, "output"),
        ("status", b'{"output":1}', Reason.WRONG_TYPE, "output"),
        ("status", b'{"apower":"8.9"}', Reason.WRONG_TYPE, "apower"),
        ("status", b'{"voltage":false}', Reason.WRONG_TYPE, "voltage"),
        ("status", b'{"current":NaN}', Reason.NOT_FINITE, "current"),
        ("status", b'{"aenergy":[6.5]}', Reason.WRONG_TYPE, "aenergy"),
        ("status", b'{"aenergy":{"total":Infinity}}', Reason.NOT_FINITE, "aenergy.total"),
        ("rpc", b'{"src":"shellyplusplugs-1","params":{}}', Reason.MISSING_FIELD, "method"),
        ("rpc", b'{"method":7}', Reason.WRONG_TYPE, "method"),
        ("rpc", b'{"method":"NotifyStatus"}', Reason.MISSING_FIELD, "params"),
        ("rpc", b'{"method":"NotifyStatus","params":[1]}', Reason.WRONG_TYPE, "params"),
        ("rpc", b'{"method":"NotifyStatus","params":{"ts":"1631186545"}}', Reason.WRONG_TYPE, "params.ts"),
        ("rpc", b'{"method":"NotifyStatus","params":{"ts":-1}}', Reason.BAD_TIMESTAMP, "params.ts"),
        ("rpc", b'{"method":"NotifyStatus","params":{"ts":1e306}}', Reason.BAD_TIMESTAMP, "params.ts"),
        ("rpc", b'{"method":"NotifyStatus","params":{"ts":1,"switch:0":true}}', Reason.WRONG_TYPE,
         "params.switch:0"),
        ("rpc", b'{"method":"NotifyFullStatus","params":{"ts":1,"switch:0":{"apower":"x"}}}', Reason.WRONG_TYPE,
         "params.switch:0.apower"),
        ("online", b"1", Reason.WRONG_TYPE, "true or false"),
        ("online", b"TRUE", Reason.WRONG_TYPE, "true or false"),
        ("online", b'"true"', Reason.WRONG_TYPE, "true or false"),
        ("online", b"", Reason.WRONG_TYPE, "true or false"),
    ],
)
def test_bad_payload_is_refused(part: str, payload: bytes, reason: Reason, says: str) -> None:
    err = refused(part, payload)
    assert err.reason is reason
    assert says in err.detail


@pytest.mark.parametrize(
    "payload",
    [b"{}", b'{"id":0,"source":"init","freq":50.0,"ret_aenergy":{"total":5.817},"errors":["overtemp"]}'],
)
def test_nothing_recognised_is_an_empty_decoding(payload: bytes) -> None:
    assert source().decode("d", "status", payload) == Decoded({})


# --- properties --------------------------------------------------------------------------------

# The keys and methods the codec reads, so that generated frames reach past the first check.
KNOWN_KEYS = [
    "method", "params", "ts", "switch:0", "switch:1", "output", "apower", "voltage", "current", "aenergy", "total",
    "temperature", "tC",
]
JSON_SCALARS = st.one_of(
    st.sampled_from(["null", "true", "false", "NaN", "Infinity", "-Infinity", "1e400", "1.7e308", "-0",
                     '"NotifyStatus"', '"NotifyFullStatus"', '"NotifyEvent"']),
    st.integers().map(str),
    st.integers(-(10**400), 10**400).map(str),
    st.floats().map(json.dumps),
    st.text().map(json.dumps),
)
KEYS = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8)

JSON_TEXTS = json_texts(JSON_SCALARS, KEYS)
PAYLOADS = st.one_of(
    st.lists(st.tuples(KEYS, JSON_TEXTS), max_size=8).map(object_text).map(str.encode),
    JSON_TEXTS.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"true", b"false"]),
    st.binary(max_size=64),
)
SOURCES = st.sampled_from([source(), source(switch=1)])


@FUZZ
@given(shelly=SOURCES, part=st.sampled_from(PARTS), payload=PAYLOADS)
def test_decoding_is_total(shelly: ShellySource, part: str, payload: bytes) -> None:
    assert_total(decode_or_error(shelly, "uv-1", part, payload), "uv-1", payload)


@PROPERTY
@given(
    name=st.sampled_from([n for n in FIXTURE_FILES if n.endswith(".json")]),
    extra=st.lists(st.tuples(st.text(max_size=12).filter(lambda key: key not in KNOWN_KEYS), JSON_TEXTS),
                   max_size=6),
)
def test_unknown_fields_change_nothing(name: str, extra: list[tuple[str, str]]) -> None:
    original = json.loads(fixture(name))
    pairs = [(key, json.dumps(value)) for key, value in original.items()] + extra
    payload = object_text(pairs).encode("utf-8", "surrogatepass")
    assert source().decode("d", part_of(name), payload) == EXPECTED[name]
