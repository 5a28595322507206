"""The site file: good files load; every mistake is named with file, line and key."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from gateway import config
from gateway.cli import main

GOOD = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {id: class-1, name: 小一班, type: classroom}
      - {id: kitchen, name: 厨房, type: kitchen}
devices:
  - id: fridge-1
    kind: sample_fridge
    room: kitchen
    interval_s: 30
    settings: {max_c: 6}
  - {id: gate, kind: door, room: class-1}
opening_hours:
  mon: [{start: "07:30", end: "17:30"}]
"""


def test_good_file_loads_with_defaults() -> None:
    site = config.parse(GOOD, "site.yaml")
    assert site.id == "kg-1"
    assert site.timezone == "Asia/Shanghai"
    assert [d.id for d in site.devices] == ["fridge-1", "gate"]
    fridge = site.device("fridge-1")
    assert fridge is not None
    assert fridge.kind_settings().model_dump() == {"min_c": 0.0, "max_c": 6.0, "alarm_delay_min": 15.0}
    assert site.opening_hours["tue"] == []
    assert site.building_of("kitchen").id == "main"
    assert site.mqtt.port == 1883
    assert site.influxdb is None


def _errors(text: str) -> list[str]:
    """Each problem as `file:line: key: English`."""
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text, "site.yaml")
    return [f"site.yaml:{p.line}: {p.key}: {p.en}".replace(": : ", ": ") for p in caught.value.problems]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    interval_s: 30\n", "    interval_s: 30\n    colour: red\n", "site.yaml:14: devices[0].colour: device fridge-1: unknown key `colour`; "
         "the keys here: id, kind, room"),
        ("kind: sample_fridge", "kind: sample_fridgе", "site.yaml:11: devices[0].kind: device fridge-1: unknown device kind `sample_fridgе`; "
         "the kinds are: door (Door)"),
        ("settings: {max_c: 6}", "settings: {max_c: -3}", "site.yaml:14: devices[0].settings: device fridge-1: min_c (0.0) must be below"),
        ("settings: {max_c: 6}", "settings: {max_celsius: 6}", "site.yaml:14: devices[0].settings.max_celsius: device fridge-1: unknown key `max_celsius`; "
         "the keys here: min_c (Lowest temperature)"),
        ("room: kitchen", "room: attic", "site.yaml:12: devices[0].room: device fridge-1: there is no room `attic`; "
         "the rooms are: class-1 (小一班), kitchen (厨房)"),
        ("{id: gate,", "{id: fridge-1,", "site.yaml:15: devices[1].id: device fridge-1: the id `fridge-1` is used twice"),
        ("name: 向日葵幼儿园\n", "name: 向日葵幼儿园\ntimezone: Mars/Olympus\n", "site.yaml:3: timezone: unknown time zone"),
        ("interval_s: 30", "interval_s: -1", "site.yaml:13: devices[0].interval_s: device fridge-1: must be greater than 0"),
        ('mon: [{start: "07:30", end: "17:30"}]', 'mon: [{start: "17:30", end: "07:30"}]',
         "site.yaml:17: opening_hours.mon[0]: start 17:30:00 must be before end"),
        ("opening_hours:\n  mon:", "opening_hours:\n  monday:", "site.yaml:17: opening_hours.monday: unknown weekday `monday`; "
         "use: mon (Monday)"),
    ],
)
def test_mistakes_are_named_with_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    errors = _errors(GOOD.replace(old, new))
    assert any(e.startswith(expected) for e in errors), errors


def test_several_mistakes_are_all_reported() -> None:
    text = GOOD.replace("interval_s: 30", "interval_s: 30\n    colour: red").replace("kind: door", "kind: dor")
    errors = _errors(text)
    assert len(errors) == 2
    assert "colour: device fridge-1: unknown key" in errors[0]
    assert "devices[1].kind" in errors[1]


def test_not_yaml_and_not_a_mapping() -> None:
    assert _errors("id: [unclosed\n")[0].startswith("site.yaml:")
    assert _errors("- a\n- b\n") == ["site.yaml:1: the site file must be a mapping of keys to values"]


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOOD + "mqtt:\n  url: mqtts://broker.school.lan\n  username: gateway\n"
    monkeypatch.setenv("FACILITY_MQTT__PASSWORD", "s3cret")
    site = config.parse(text, "site.yaml")
    assert site.mqtt.password is not None
    assert site.mqtt.password.get_secret_value() == "s3cret"
    assert site.mqtt.username == "gateway"
    assert (site.mqtt.tls, site.mqtt.port) == (True, 8883)
    assert "s3cret" not in repr(site)


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("room: kitchen", "room: attic"), encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    assert f"{bad}:12: devices[0].room" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


PRODUCTION = GOOD + """\
mode: production
mqtt: {url: "mqtt://broker:1883", username: gateway}
"""
GENERATED = "9f2c71d0e84a4b6fa3c5d8e1b7a60f24"  # what `openssl rand -hex 16` gives


def test_production_runs_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACILITY_MQTT__PASSWORD", GENERATED)
    assert config.parse(PRODUCTION, "site.yaml").mode == "production"


@pytest.mark.parametrize(("password", "why"), [
    (None, "refuses anonymous MQTT"),
    ("changeme-changeme", "contains 'changeme'"),
    ("<fill in here>", "contains '<'"),
    ("short", "shorter than 12 characters"),
    ("aaaaaaaaaaaaaaaa", "too few distinct characters"),
])
def test_production_refuses_anonymous_mqtt_and_placeholder_secrets(
    monkeypatch: pytest.MonkeyPatch, password: str | None, why: str
) -> None:
    if password is not None:
        monkeypatch.setenv("FACILITY_MQTT__PASSWORD", password)
    with pytest.raises(config.ConfigError, match=why):
        config.parse(PRODUCTION, "site.yaml")
    config.parse(PRODUCTION.replace("mode: production", "mode: development"), "site.yaml")  # allowed there


def test_production_refuses_a_placeholder_influxdb_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACILITY_MQTT__PASSWORD", GENERATED)
    text = PRODUCTION + 'influxdb: {url: "http://influx:8086", token: "my-token-example", org: o, bucket: b}\n'
    with pytest.raises(config.ConfigError, match=r"influxdb\.token: .*production mode refuses this secret"):
        config.parse(text, "site.yaml")


def test_production_refuses_reads_without_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACILITY_MQTT__PASSWORD", GENERATED)
    with pytest.raises(config.ConfigError, match="anonymous access to the API"):
        config.parse(PRODUCTION + "auth: {public_read: true}\n", "site.yaml")


def test_tls_settings_must_be_complete(tmp_path: Path) -> None:
    cert = tmp_path / "client.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(config.ConfigError, match="cert_file and key_file go together"):
        config.parse(GOOD + f'mqtt: {{url: "mqtts://broker:8883", cert_file: "{cert}"}}\n', "site.yaml")
    with pytest.raises(config.ConfigError, match="url is not mqtts://"):
        config.parse(GOOD + f'mqtt: {{url: "mqtt://broker:1883", ca_file: "{cert}"}}\n', "site.yaml")
    with pytest.raises(config.ConfigError, match="ca_file"):
        config.parse(GOOD + f'mqtt: {{url: "mqtts://broker:8883", ca_file: "{tmp_path / "missing.pem"}"}}\n',
                     "site.yaml")


def test_a_large_site_file_is_read_without_holding_a_tree_of_it() -> None:
    """What a site file costs to read beyond the site it gives: a tree of YAML nodes for
    10,000 devices took twice the site's memory, and what the site kept of it (its strings,
    among the nodes) held the rest from the system for as long as the gateway ran."""
    head, tail = GOOD.split("opening_hours:")
    text = head + "".join(f"  - {{id: meter-{n}, name: 水表 {n} 号, kind: water_meter, room: kitchen}}\n"
                          for n in range(2_000)) + "opening_hours:" + tail
    config.parse(text, "site.yaml")  # the modules' first use allocates for good: not the file's
    tracemalloc.start()
    try:
        site = config.parse(text, "site.yaml")
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(site.devices) == 2_002
    assert peak < 1.6 * kept, (peak, kept)
