"""The Tasmota codec: real payloads from `tests/fixtures/vendors/tasmota/` (sources in the README
there), the rules the codec adds to them, and Hypothesis probes of its totality."""

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
from devices.vendors.tasmota import PARTS, TasmotaSource
from tests.devices.vendor_json import assert_total, decode_or_error, json_texts, object_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendors" / "tasmota"
FIXTURE_FILES = sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md")
TOPIC = "tasmota_8A3F1C"
RECEIVED_MS = 1_795_236_000_000
# As in test_decode_properties.py: no example database in the repository, no timing checks.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY = settings(FUZZ, max_examples=50)


def source(**setting: Any) -> TasmotaSource:
    return TasmotaSource.model_validate({"protocol": "tasmota", "topic": TOPIC, **setting})


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def part_of(name: str) -> str:
    return name.split("_", 1)[0]  # files are named after the part: sensor_…, state_…, lwt_…


def refused(part: str, payload: bytes, **setting: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        source(**setting).decode("fridge-1", part, payload)
    err = caught.value
    assert (err.device_id, err.preview) == ("fridge-1", preview(payload))
    return err


# --- the real payloads -------------------------------------------------------------------------

# Read off each fixture by hand: the settings the device needs, and what it decodes to (numbers
# to six significant digits, for the °F conversion). None of them carries a time with an offset,
# so ts_ms is None except where `Epoch` is present.
EXPECTED: dict[str, tuple[dict[str, Any], Decoded]] = {
    "sensor_energy_local_bytes_plug.json": (
        {}, Decoded({"energy_kwh": 3.705, "power_w": 5.0, "voltage_v": 233.0, "current_a": 0.021})
    ),
    # Relay 1's entry of each list; the BL09XX chip temperature inside ENERGY is not a probe.
    "sensor_energy_two_channels.json": (
        {}, Decoded({"energy_kwh": 2.813, "power_w": 52.0, "voltage_v": 235.0, "current_a": 0.278})
    ),
    "sensor_ds18b20_docs.json": ({}, Decoded({"temperature_c": 49.7})),
    "sensor_ds18b20_mqtt_docs_no_tempunit.json": ({}, Decoded({"temperature_c": 20.6})),
    "sensor_am2301_docs.json": ({}, Decoded({"temperature_c": 24.6, "humidity_pct": 58.2})),
    "sensor_ds18b20_bme280.json": ({"sensor": "BME280"}, Decoded({"temperature_c": 27.8, "humidity_pct": 54.5})),
    "sensor_two_ds18b20_fahrenheit.json": ({"sensor": "DS18B20-1"}, Decoded({"temperature_c": 6.833333})),  # 44.3 °F
    # ANALOG holds a current clamp here, not a temperature: the DHT11 is the only probe.
    "sensor_dht11_ct_clamp.json": ({}, Decoded({"temperature_c": 23.0, "humidity_pct": 37.0})),
    # Time says 13:08:48 and Epoch 11:08:48 UTC: the device's zone was UTC+2, which Time alone hides.
    "sensor_epoch_deepsleep_docs.json": ({}, Decoded({}, ts_ms=1_567_595_328_000)),
    "state_weather_station.json": ({}, Decoded({"on": True, "rssi_dbm": -86.0})),
    "state_ct_clamp_board.json": ({}, Decoded({"on": True, "rssi_dbm": -85.0})),
    "state_power_off.json": ({}, Decoded({"on": False, "rssi_dbm": -78.0})),
    "state_two_relays_2019.json": ({"relay": 2}, Decoded({"on": False})),  # RSSI only: a percentage
    "state_epoch_deepsleep_docs.json": ({}, Decoded({}, ts_ms=1_567_595_328_000)),
    "result_power_on_docs.json": ({}, Decoded({"on": True})),
    "result_power2_on.json": ({"relay": 2}, Decoded({"on": True})),
    "result_setoption19.json": ({}, Decoded({})),
    "result_state_command.json": ({}, Decoded({"on": False, "rssi_dbm": -50.0})),
    "power_on_docs.txt": ({}, Decoded({"on": True})),
    "power_off_docs.txt": ({}, Decoded({"on": False})),
    "lwt_online.txt": ({}, Decoded({"online": True})),
    "lwt_offline_docs.txt": ({}, Decoded({"online": False})),
}


def test_every_fixture_has_its_expectation() -> None:
    assert set(EXPECTED) == set(FIXTURE_FILES)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture(name: str) -> None:
    setting, expected = EXPECTED[name]  # a new fixture needs its expectation written here
    decoded = source(**setting).decode("fridge-1", part_of(name), fixture(name))
    assert decoded.values == pytest.approx(expected.values)
    assert decoded.ts_ms == expected.ts_ms


def test_lamp_kind_records_the_relay_and_the_signal() -> None:
    payload = fixture("state_weather_station.json")
    decoded = source().decode("uv-1", "state", payload)
    sample = kinds()["uv_lamp"].from_values("uv-1", decoded, RECEIVED_MS, payload)
    assert sample.values == {"on": 1.0, "rssi_dbm": -86.0}
    assert sample.ts_ms == RECEIVED_MS


def test_fridge_kind_records_the_chosen_probe_in_celsius() -> None:
    payload = fixture("sensor_two_ds18b20_fahrenheit.json")
    decoded = source(sensor="DS18B20-1").decode("fridge-1", "sensor", payload)
    sample = kinds()["sample_fridge"].from_values("fridge-1", decoded, RECEIVED_MS, payload)
    assert sample.values == {"temperature_c": pytest.approx(6.83, abs=0.01)}


def test_meter_kind_records_the_energy() -> None:
    payload = fixture("sensor_energy_local_bytes_plug.json")
    decoded = source().decode("plug-1", "sensor", payload)
    sample = kinds()["electricity_meter"].from_values("plug-1", decoded, RECEIVED_MS, payload)
    assert sample.values == {"energy_kwh": 3.705, "power_w": 5.0, "voltage_v": 233.0, "current_a": 0.021}


# --- the source's settings ---------------------------------------------------------------------


def test_topics_of_a_default_device() -> None:
    assert source().topics() == {
        f"tele/{TOPIC}/SENSOR": "sensor",
        f"tele/{TOPIC}/STATE": "state",
        f"tele/{TOPIC}/LWT": "lwt",
        f"stat/{TOPIC}/RESULT": "result",
        f"stat/{TOPIC}/POWER": "power",
        f"stat/{TOPIC}/POWER1": "power",  # relay 1 of a device that has several
    }


def test_topics_of_a_second_relay_under_a_custom_full_topic() -> None:
    # Tasmota adds the missing final "/" of a FullTopic itself.
    custom = source(full_topic="school/%topic%/%prefix%", relay=2)
    assert custom.topics() == {
        f"school/{TOPIC}/tele/SENSOR": "sensor",
        f"school/{TOPIC}/tele/STATE": "state",
        f"school/{TOPIC}/tele/LWT": "lwt",
        f"school/{TOPIC}/stat/RESULT": "result",
        f"school/{TOPIC}/stat/POWER2": "power",
    }


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"topic": ""}, "empty"),
        ({"topic": "kitchen/plug"}, "separator"),
        ({"topic": "plug+"}, "wildcard"),
        ({"topic": "plug#"}, "wildcard"),
        ({"topic": "tasmota_%06X"}, "template"),
        ({"topic": "plug\x00"}, "NUL"),
        ({"full_topic": "%prefix%/plugs/"}, "%topic%"),
        ({"full_topic": "plugs/%topic%/"}, "%prefix%"),
        ({"full_topic": "%prefix%/%hostname%/%topic%/"}, "%hostname%"),
        ({"full_topic": "%prefix%/%topic%/+/"}, "wildcard"),
        ({"relay": 0}, "greater than or equal to 1"),
        ({"relay": 33}, "less than or equal to 32"),
        ({"sensor": ""}, "at least 1 character"),
        ({"fulltopic": "%prefix%/%topic%/"}, "fulltopic"),
    ],
)
def test_unusable_setting_is_refused(setting: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        source(**setting)


def test_unknown_part_is_refused() -> None:
    assert refused("INFO1", b"{}").reason is Reason.BAD_TOPIC


# --- the rules ---------------------------------------------------------------------------------


def test_fahrenheit_is_converted() -> None:
    freezer = source(sensor="DS18B20-2").decode("d", "sensor", fixture("sensor_two_ds18b20_fahrenheit.json"))
    assert freezer.values == {"temperature_c": pytest.approx(-16.44, abs=0.01)}  # 2.4 °F
    body_heat = b'{"DS18B20":{"Temperature":98.6},"TempUnit":"F"}'
    assert source().decode("d", "sensor", body_heat).values == {"temperature_c": pytest.approx(37.0)}


def test_second_relay_takes_its_channel_of_each_list() -> None:
    decoded = source(relay=2).decode("d", "sensor", fixture("sensor_energy_two_channels.json"))
    # Voltage is one number for both channels.
    assert decoded.values == {"energy_kwh": 0.254, "power_w": 5.0, "voltage_v": 235.0, "current_a": 0.044}


def test_relay_without_a_channel_is_refused() -> None:
    err = refused("sensor", fixture("sensor_energy_two_channels.json"), relay=3)
    assert err.reason is Reason.MISSING_FIELD
    assert "ENERGY.Total has 2 channels, none for relay 3" in err.detail


def test_several_probes_need_the_sensor_setting() -> None:
    err = refused("sensor", fixture("sensor_two_ds18b20_fahrenheit.json"))
    assert err.reason is Reason.MISSING_FIELD
    assert "DS18B20-1, DS18B20-2" in err.detail
    assert "source.sensor" in err.detail


def test_configured_probe_missing_from_the_message_is_refused() -> None:
    # A probe that stopped answering disappears from the message; the others are still there.
    err = refused("sensor", fixture("sensor_two_ds18b20_fahrenheit.json"), sensor="DS18B20-3")
    assert err.reason is Reason.MISSING_FIELD
    assert "'DS18B20-3'" in err.detail
    assert "DS18B20-1, DS18B20-2" in err.detail


def test_configured_probe_is_not_needed_in_a_message_without_probes() -> None:
    switch_event = b'{"Time":"2021-01-01T00:00:00","Switch1":"ON"}'
    assert source(sensor="DS18B20-1").decode("d", "sensor", switch_event) == Decoded({})


def test_configured_sensor_without_a_temperature_is_refused() -> None:
    err = refused("sensor", fixture("sensor_ds18b20_bme280.json"), sensor="BH1750")
    assert err.reason is Reason.MISSING_FIELD
    assert "BH1750 has no Temperature" in err.detail


@pytest.mark.parametrize("internal", ["ESP32", "ANALOG"])
def test_the_device_own_temperature_is_no_probe(internal: str) -> None:
    # The ESP32's chip sensor; the ADC thermistor a Shelly relay running Tasmota has on its relay.
    own = f'"{internal}":{{"Temperature":53.3}}'
    with_probe = f'{{{own},"DS18B20":{{"Temperature":4.5}},"TempUnit":"C"}}'.encode()
    assert source().decode("d", "sensor", with_probe).values == {"temperature_c": 4.5}
    assert source().decode("d", "sensor", f"{{{own}}}".encode()) == Decoded({})
    # Named explicitly, it is what the owner asked for (a thermistor wired to a probe).
    assert source(sensor=internal).decode("d", "sensor", with_probe).values == {"temperature_c": 53.3}


@pytest.mark.parametrize(
    ("time", "expected_ms"),
    [
        ("2018-09-05T14:29:00+01:00", 1_536_154_140_000),  # SetOption52, as in Tasmota pull request 3711
        ("2018-09-05T06:29:00-07:00", 1_536_154_140_000),
        ("2018-09-05T13:29:00Z", 1_536_154_140_000),
        ("2018-09-05T14:29:00.250+01:00", 1_536_154_140_250),
        ("2018-09-05T14:29:00", None),  # local time of a zone we do not know: time of receipt
        ("1970-01-01T00:00:12", None),  # not synchronised yet
    ],
)
def test_time_counts_only_with_its_offset(time: str, expected_ms: int | None) -> None:
    for part in ("sensor", "state", "result"):
        payload = json.dumps({"Time": time, "POWER": "ON"}).encode()
        assert source().decode("d", part, payload).ts_ms == expected_ms


@pytest.mark.parametrize(
    ("epoch", "expected_ms"), [(1_567_595_328, 1_567_595_328_000), (1_567_595_328.5, 1_567_595_328_500),
                               (1_567_595_328_123, 1_567_595_328_123)],
)
def test_epoch_is_unix_time_and_wins_over_time(epoch: float, expected_ms: int) -> None:
    payload = json.dumps({"Time": "2019-09-04T14:08:48+01:00", "Epoch": epoch}).encode()
    assert source().decode("d", "sensor", payload).ts_ms == expected_ms


@pytest.mark.parametrize(
    ("part", "payload", "reason", "says"),
    [
        ("sensor", b"ON", Reason.NOT_JSON, "not JSON"),
        ("sensor", b'{"ENERGY":', Reason.NOT_JSON, "not JSON"),
        ("state", b"\xff\xfe", Reason.NOT_JSON, "not JSON"),
        ("sensor", b"[1, 2]", Reason.NOT_OBJECT, "array"),
        ("result", b'"ON"', Reason.NOT_OBJECT, "string"),
        ("sensor", b'{"ENERGY":[1,2]}', Reason.WRONG_TYPE, "ENERGY"),
        ("sensor", b'{"ENERGY":{"Power":"5"}}', Reason.WRONG_TYPE, "ENERGY.Power"),
        ("sensor", b'{"ENERGY":{"Total":true}}', Reason.WRONG_TYPE, "ENERGY.Total"),
        ("sensor", b'{"ENERGY":{"Current":["x",0.1]}}', Reason.WRONG_TYPE, "ENERGY.Current[0]"),
        ("sensor", b'{"ENERGY":{"Voltage":NaN}}', Reason.NOT_FINITE, "ENERGY.Voltage"),
        ("sensor", b'{"ENERGY":{"Total":1e400}}', Reason.NOT_FINITE, "ENERGY.Total"),
        ("sensor", b'{"DS18B20":{"Temperature":"4.5"}}', Reason.WRONG_TYPE, "DS18B20.Temperature"),
        ("sensor", b'{"AM2301":{"Temperature":4,"Humidity":Infinity}}', Reason.NOT_FINITE, "AM2301.Humidity"),
        ("sensor", b'{"DS18B20":{"Temperature":4},"TempUnit":"K"}', Reason.WRONG_TYPE, "TempUnit"),
        ("sensor", b'{"Time":"yesterday"}', Reason.BAD_TIMESTAMP, "Time"),
        ("state", b'{"Time":20180905}', Reason.WRONG_TYPE, "Time"),
        ("state", b'{"Epoch":-1}', Reason.BAD_TIMESTAMP, "Epoch"),
        ("state", b'{"Epoch":"1567595328"}', Reason.WRONG_TYPE, "Epoch"),
        ("state", b'{"POWER":true}', Reason.WRONG_TYPE, "POWER"),
        ("state", b'{"Wifi":{"Signal":"-70"}}', Reason.WRONG_TYPE, "Wifi.Signal"),
        ("result", b'{"POWER":"BLINK"}', Reason.WRONG_TYPE, "POWER"),
        ("power", b"TOGGLE", Reason.WRONG_TYPE, "ON or OFF"),
        ("power", b"", Reason.WRONG_TYPE, "ON or OFF"),
        ("power", b"\xff", Reason.WRONG_TYPE, "ON or OFF"),
        ("lwt", b"online?", Reason.WRONG_TYPE, "Online or Offline"),
    ],
)
def test_bad_payload_is_refused(part: str, payload: bytes, reason: Reason, says: str) -> None:
    err = refused(part, payload)
    assert err.reason is reason
    assert says in err.detail


@pytest.mark.parametrize(
    ("part", "payload"),
    [
        ("sensor", b"{}"),
        ("sensor", b'{"Time":"2021-01-01T00:00:00","Switch1":"ON","ANALOG":{"A0":8},"BH1750":{"Illuminance":9}}'),
        ("state", b'{"Uptime":"0T00:00:14","Wifi":{"RSSI":100}}'),
        ("result", b'{"Wifi":"ON"}'),  # the answer to the `Wifi` command: no Wifi object
        ("result", b'{"PowerOnState":3,"POWER3":"BLINK"}'),  # another relay's business
    ],
)
def test_nothing_recognised_is_an_empty_decoding(part: str, payload: bytes) -> None:
    assert source().decode("d", part, payload) == Decoded({})


@pytest.mark.parametrize(("payload", "on"), [(b"on", True), (b"Off", False), (b"ON\n", True)])
def test_power_word_in_any_case(payload: bytes, on: bool) -> None:
    assert source().decode("d", "power", payload) == Decoded({"on": on})


# --- properties --------------------------------------------------------------------------------

# The keys the codec reads, so that generated objects reach past the first check.
KNOWN_KEYS = [
    "ENERGY", "Total", "Power", "Voltage", "Current", "Time", "Epoch", "TempUnit", "DS18B20", "DS18B20-1", "AM2301",
    "ESP32", "Temperature", "Humidity", "POWER", "POWER1", "POWER2", "Wifi", "Signal", "RSSI",
]
JSON_SCALARS = st.one_of(
    st.sampled_from(["null", "true", "false", "NaN", "Infinity", "-Infinity", "1e400", "-1e308", "1.7e308", "-0",
                     '"ON"', '"off"', '"C"', '"F"', '"2018-09-05T14:29:00+01:00"', '"2018-09-05T14:29:00"',
                     '"0001-01-01T00:00:00+23:59"', '"9999-12-31T23:59:59-23:59"']),
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
    st.sampled_from([b"ON", b"OFF", b"Online", b"Offline"]),
    st.binary(max_size=64),
)
SOURCES = st.sampled_from([source(), source(relay=2), source(sensor="DS18B20-1"), source(sensor="ESP32")])


@FUZZ
@given(tasmota=SOURCES, part=st.sampled_from(PARTS), payload=PAYLOADS)
def test_decoding_is_total(tasmota: TasmotaSource, part: str, payload: bytes) -> None:
    assert_total(decode_or_error(tasmota, "fridge-1", part, payload), "fridge-1", payload)


@PROPERTY
@given(
    name=st.sampled_from([n for n in FIXTURE_FILES if n.endswith(".json")]),
    extra=st.lists(st.tuples(st.text(max_size=12).filter(lambda key: key not in KNOWN_KEYS), JSON_TEXTS),
                   max_size=6),
)
def test_unknown_fields_change_nothing(name: str, extra: list[tuple[str, str]]) -> None:
    setting, expected = EXPECTED[name]
    original = json.loads(fixture(name))
    # A new top-level object with a Temperature would be another probe: not unknown to us.
    extra = [(key, value) for key, value in extra if "Temperature" not in value]
    pairs = [(key, json.dumps(value)) for key, value in original.items()] + extra
    payload = object_text(pairs).encode("utf-8", "surrogatepass")
    decoded = source(**setting).decode("d", part_of(name), payload)
    assert decoded.values == pytest.approx(expected.values)
    assert decoded.ts_ms == expected.ts_ms
