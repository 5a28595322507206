"""The 新设备 inbox on a real Mosquitto: real discovery payloads of Zigbee2MQTT, Tasmota, Shelly and
Home Assistant (tests/fixtures/discovery/), and a native reading from an unknown id, each appear
once with the suggestion their payloads support; configured devices never appear; hostile
payloads are ignored and counted while ingest goes on; dismissal is audited and admins only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devices import kinds
from devices.vendors import sources
from gateway import config
from gateway.app import create_app
from gateway.auth.audit import AuditTrail
from gateway.auth.store import NotFound
from gateway.clock import SystemClock
from gateway.config.auth import Role
from gateway.discovery import inbox as inbox_module
from gateway.discovery import listener as listener_module
from gateway.discovery.inbox import DiscoveryInbox
from gateway.discovery.listener import Discovery
from gateway.discovery.sightings import SAMPLE_BYTES, Sighting
from gateway.discovery.suggest import Suggestion, suggest
from gateway.storage.state import StateDatabase
from tests.services import Mosquitto, mqtt_client, wait_for

FIXTURES = Path(__file__).parent.parent / "fixtures" / "discovery"
# Prefixes of our own for Tasmota's and Home Assistant's discovery, so that nothing else on the
# session's broker publishes there; Zigbee2MQTT keeps its default base, which the Home Assistant
# payload of its integration names.
SITE = """\
id: disc-kg
name: 测试幼儿园
buildings:
  - id: main
    name: 综合楼
    rooms: [{{id: kitchen, name: 厨房, type: kitchen}}]
devices:
  - {{id: door, kind: door, room: kitchen, source: {{protocol: zigbee2mqtt, name: Door Sensor}}}}
  - {{id: water, kind: water_meter, room: kitchen}}
mqtt:
  url: "{url}"
  client_id: {client_id}
  discovery: {{tasmota_prefix: tdisc-dt, homeassistant_prefix: ha-dt}}
storage: {{data_dir: "{data_dir}"}}
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""
PASSWORD = "a-long-enough-passphrase"
TASMOTA_ENERGY_MAC = "CC50E3000001"  # made up: both captures masked theirs (README)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def publish(broker: Mosquitto, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
    with mqtt_client(broker, "disc-publisher") as (client, _):
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=5)


def login(api: TestClient, name: str, role: Role) -> dict[str, str]:
    api.app.state.auth.add_user(name, role, PASSWORD, "setup", 0)  # type: ignore[attr-defined]
    token = api.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[TestClient]:
    # Retained before the gateway is there, as a bridge that has run for months has it.
    publish(mosquitto, [("zigbee2mqtt/bridge/devices", fixture("z2m_bridge_devices_1.33.json"))], retain=True)
    site = config.parse(SITE.format(url=mosquitto.url, client_id=f"gw-{tmp_path.name}", data_dir=tmp_path / "data"),
                        "site.yaml")
    with TestClient(create_app(site, SystemClock())) as client:
        wait_for(lambda: client.get("/health").json()["components"]["mqtt"]["state"] == "ok")
        yield client
    publish(mosquitto, [("zigbee2mqtt/bridge/devices", b"")], retain=True)  # clears the retained list


def inbox(api: TestClient, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = api.get("/api/v1/admin/discovered", headers=admin)
    assert response.status_code == 200
    entries = response.json()
    keys = [e["key"] for e in entries]
    assert len(keys) == len(set(keys))  # each device once
    return {e["key"]: e for e in entries}


def ignored(api: TestClient, admin: dict[str, str]) -> dict[str, float]:
    lines = api.get("/metrics", headers=admin).text.splitlines()
    prefix = 'facility_discovery_ignored_total{reason="'
    return {line[len(prefix):].split('"')[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix)}


def assert_suggests(entry: dict[str, Any], kind: str, source: dict[str, Any] | None) -> None:
    suggestion = entry["suggestion"]
    assert suggestion is not None, entry["why_en"]
    assert suggestion["kind"] == kind
    assert (suggestion["kind_zh"], suggestion["kind_en"]) == (kinds()[kind].label_zh, kinds()[kind].label_en)
    assert suggestion["source"] == source
    if source is not None:  # the site file would take it as it stands
        sources()[source["protocol"]].model_validate(source)
    assert entry["why_zh"] is None
    assert entry["why_en"] is None
    assert config.Device.model_validate({"id": suggestion["id"], "kind": kind, "room": "kitchen"}).id


def assert_no_suggestion(entry: dict[str, Any], why_en: str) -> None:
    assert entry["suggestion"] is None
    assert why_en in entry["why_en"]
    assert entry["why_zh"]


def test_announced_devices_land_once_each_with_their_suggestion(api: TestClient, mosquitto: Mosquitto) -> None:
    admin = login(api, "head", Role.ADMIN)
    publish(mosquitto, [
        ("zigbee2mqtt/bridge/event", fixture("z2m_event_device_joined_docs.json")),
        ("zigbee2mqtt/bridge/event", fixture("z2m_event_device_interview_docs.json")),
        ("tdisc-dt/DC4F220756C6/config", fixture("tasmota_config_cv_ruimte.json")),
        ("tdisc-dt/DC4F220756C6/sensors", fixture("tasmota_sensors_cv_ruimte_ds18b20.json")),
        (f"tdisc-dt/{TASMOTA_ENERGY_MAC}/config", fixture("tasmota_config_sonoff_4ch_pro.json")),
        (f"tdisc-dt/{TASMOTA_ENERGY_MAC}/sensors", fixture("tasmota_sensors_energy.json")),
        ("shellies/announce", fixture("shelly_announce_gen1_shelly1.json")),
        ("shellies/announce", fixture("shelly_device_info_plug_s_g3.json")),
        ("ha-dt/binary_sensor/0x00158d0006d3ad73/water_leak/config", fixture("ha_z2m_sjcgq11lm_water_leak_config.json")),
        ("ha-dt/sensor/04504D_ENERGY_Today/config", fixture("ha_tasmota_legacy_energy_today_config.json")),
        ("facility/disc-kg/new-meter/telemetry", b'{"volume_m3": 3.25, "flow_lpm": 0}'),
        ("facility/disc-kg/water/telemetry", b'{"volume_m3": 12.5}'),  # configured: never in the inbox
    ])
    expected = {
        "zigbee2mqtt:0x00158d000405cfee", "zigbee2mqtt:0x00158d0001db18f9", "zigbee2mqtt:0x00158d000204a3e1",
        "zigbee2mqtt:0x90fd9ffffe6494fc", "zigbee2mqtt:0x00158d0006d3ad73", "tasmota:DC4F220756C6",
        f"tasmota:{TASMOTA_ENERGY_MAC}", "shelly:shelly1", "shelly:shellyplugsg3-543204663204",
        "homeassistant:04504D", "native:new-meter",
    }
    wait_for(lambda: expected <= inbox(api, admin).keys())
    found = inbox(api, admin)
    assert found.keys() == expected  # the configured door and water meter are not there

    leak = found["zigbee2mqtt:0x00158d000405cfee"]
    assert_suggests(leak, "leak_sensor", {"protocol": "zigbee2mqtt", "name": "Bathroom leak sensor"})
    assert "Bathroom leak sensor" in leak["suggestion"]["name"]
    assert "Xiaomi SJCGQ11LM" in leak["title_zh"]
    assert leak["first_topic"] == "zigbee2mqtt/bridge/devices"
    assert leak["messages"] == 1
    assert leak["acl"] == ["user gateway", "topic read zigbee2mqtt/Bathroom leak sensor",
                           "topic read zigbee2mqtt/Bathroom leak sensor/availability"]
    assert leak["dynsec"][0] == "mosquitto_ctrl dynsec addRoleACL gateway subscribeLiteral " \
                                "'zigbee2mqtt/Bathroom leak sensor' allow"
    assert_suggests(found["zigbee2mqtt:0x00158d0001db18f9"], "electricity_meter",
                    {"protocol": "zigbee2mqtt", "name": "Plug"})
    assert_no_suggestion(found["zigbee2mqtt:0x00158d000204a3e1"], "nothing that any")  # a button
    joined = found["zigbee2mqtt:0x90fd9ffffe6494fc"]
    assert joined["messages"] == 2
    assert "IKEA LED1624G9" in joined["title_en"]
    assert [s["topic"] for s in joined["samples"]] == ["zigbee2mqtt/bridge/event"] * 2
    assert_suggests(found["zigbee2mqtt:0x00158d0006d3ad73"], "leak_sensor",
                    {"protocol": "zigbee2mqtt", "name": "leak_kitchen"})  # from Home Assistant's config

    assert_no_suggestion(found["tasmota:DC4F220756C6"], "its name does not say")  # a boiler room's probes
    energy = found[f"tasmota:{TASMOTA_ENERGY_MAC}"]
    assert_suggests(energy, "electricity_meter", {"protocol": "tasmota", "topic": "tasmota_xxxxxx"})
    assert energy["messages"] == 2
    assert energy["title_en"] == "Tasmota device: Sonoff4CHProR2 · Sonoff 4CH Pro"

    assert_no_suggestion(found["shelly:shelly1"], "Gen2 and later")
    plug = found["shelly:shellyplugsg3-543204663204"]
    assert_suggests(plug, "electricity_meter", {"protocol": "shelly", "prefix": "shellyplugsg3-543204663204"})
    assert "topic read shellyplugsg3-543204663204/online" in plug["acl"]
    assert_no_suggestion(found["homeassistant:04504D"], "Home Assistant discovery")

    native = found["native:new-meter"]
    assert_suggests(native, "water_meter", None)
    assert native["suggestion"]["id"] == "new-meter"
    assert native["suggestion"]["name"] == f"{kinds()['water_meter'].label_zh}（new-meter）"
    assert native["samples"][0]["payload"] == '{"volume_m3": 3.25, "flow_lpm": 0}'
    assert "pattern write facility/+/%u/#" in native["acl"][0]
    assert "publishClientSend 'facility/disc-kg/new-meter/#' allow" in native["dynsec"][2]
    # The unknown device's reading is still rejected as before, not stored.
    assert api.get("/api/v1/devices/new-meter", headers=admin).status_code == 404


def test_hostile_payloads_are_counted_and_ingest_goes_on(api: TestClient, mosquitto: Mosquitto) -> None:
    admin = login(api, "head", Role.ADMIN)
    wait_for(lambda: "zigbee2mqtt:0x00158d000405cfee" in inbox(api, admin))
    before, entries = ignored(api, admin), inbox(api, admin).keys()
    publish(mosquitto, [
        ("zigbee2mqtt/bridge/devices", b"\xff\xfe not json"),
        ("zigbee2mqtt/bridge/event", b'{"type": "device_joined", "data": "0x00158d0001a2b3c4"}'),
        ("tdisc-dt/DC4F22075600/config", b"[" * 5000 + b"]" * 5000),  # nested too deep
        ("tdisc-dt/DC4F22075601/config", b'{"t": 5, "dn": ["not", "a", "name"]}'),
        ("tdisc-dt/DC4F22075602/config", b" " * (listener_module.MAX_DISCOVERY_BYTES + 1)),
        ("shellies/announce", b'[{"id": "shelly1"}]'),
        ("ha-dt/sensor/x/config", b'"just a string"'),
        ("facility/disc-kg/water/telemetry", b'{"volume_m3": 13.5}'),
    ])
    wait_for(lambda: api.get("/api/v1/devices/water", headers=admin).json()["last_values"].get("volume_m3") == 13.5)
    after = ignored(api, admin)
    grew = {reason: after[reason] - before.get(reason, 0) for reason in after}
    assert grew == {"not_json": 2, "wrong_shape": 4, "too_large": 1}
    assert inbox(api, admin).keys() == entries


def test_dismissal_is_audited_and_only_for_admins(api: TestClient) -> None:
    admin = login(api, "head", Role.ADMIN)
    staff = login(api, "guard", Role.STAFF)
    key = "zigbee2mqtt:0x00158d000405cfee"
    wait_for(lambda: key in inbox(api, admin))
    assert api.get("/api/v1/admin/discovered").status_code == 401
    assert api.get("/api/v1/admin/discovered", headers=staff).status_code == 403
    assert api.post(f"/api/v1/admin/discovered/{key}/dismiss", headers=staff).status_code == 403

    assert api.post(f"/api/v1/admin/discovered/{key}/dismiss", headers=admin).status_code == 204
    dismissed = inbox(api, admin)[key]
    assert (dismissed["state"], dismissed["state_zh"]) == ("dismissed", "已忽略")
    assert api.post(f"/api/v1/admin/discovered/{key}/restore", headers=admin).status_code == 204
    assert inbox(api, admin)[key]["state"] == "new"
    assert api.post("/api/v1/admin/discovered/zigbee2mqtt:0x0000000000000000/dismiss",
                    headers=admin).status_code == 404

    audit = api.get("/api/v1/audit", params={"action": "discovery.dismissed"}, headers=admin).json()
    assert [(e["target"], e["actor"]) for e in audit] == [(f"discovered:{key}", "head")]
    restored = api.get("/api/v1/audit", params={"action": "discovery.restored"}, headers=admin).json()
    assert [e["target"] for e in restored] == [f"discovered:{key}"]


def inbox_of(site_id: str, db: StateDatabase, data_dir: Path) -> tuple[Discovery, DiscoveryInbox]:
    """A listener, not connected, and its inbox for the site `site_id` (a site of SITE's shape)."""
    text = SITE.replace("disc-kg", site_id).format(url="mqtt://127.0.0.1:1", client_id="unused", data_dir=data_dir)
    listener = Discovery(config.parse(text, "site.yaml"), CollectorRegistry())
    return listener, DiscoveryInbox(db, site_id, listener, AuditTrail(db, site_id), SystemClock())


def test_the_listener_and_the_inbox_are_bounded(state_db: StateDatabase, tmp_path: Path) -> None:
    listener, store = inbox_of("disc-kg", state_db, tmp_path)
    other_listener, other = inbox_of("other-kg", state_db, tmp_path)
    other_listener.observe("facility/other-kg/flood-1/telemetry", b"{}", 1)  # a key that disc-kg's bound drops
    other.flush()
    extra = 7
    for i in range(listener_module.MAX_PENDING + extra):  # a flood of new ids between two flushes
        listener.observe(f"facility/disc-kg/flood-{i}/telemetry", b"{}", i)
    assert listener.ignored.labels("too_many_devices")._value.get() == extra
    big = b'{"volume_m3": 1, "note": "' + b"x" * (2 * SAMPLE_BYTES) + b'"}'
    for at in range(5):
        listener.observe("facility/disc-kg/flood-0/event", big, 10_000 + at)
    store.flush()
    first = next(e for e in store.entries() if e.facts.key == "native:flood-0")
    assert first.messages == 6
    assert len(first.samples) == listener_module.SAMPLES_KEPT
    assert all(len(s["payload"].encode()) <= SAMPLE_BYTES for s in first.samples)
    assert first.first_topic == "facility/disc-kg/flood-0/telemetry"

    for i in range(extra):  # more devices than the inbox keeps: the longest unheard go
        listener.observe(f"facility/disc-kg/late-{i}/telemetry", b"{}", 20_000 + i)
    store.flush()
    keys = {e.facts.key for e in store.entries()}
    assert len(keys) == inbox_module.MAX_ENTRIES
    assert {f"native:late-{i}" for i in range(extra)} <= keys
    assert "native:flood-1" not in keys
    assert "native:flood-0" in keys
    assert [e.facts.key for e in other.entries()] == ["native:flood-1"]  # another site's inbox is its own


def test_each_site_sees_and_dismisses_only_what_it_heard(state_db: StateDatabase, tmp_path: Path) -> None:
    kg_listener, kg = inbox_of("disc-kg", state_db, tmp_path)
    other_listener, other = inbox_of("other-kg", state_db, tmp_path)
    kg_listener.observe("facility/disc-kg/pump/telemetry", b'{"volume_m3": 1}', 1_000)
    other_listener.observe("facility/other-kg/pump/telemetry", b'{"volume_m3": 2}', 2_000)
    other_listener.observe("facility/other-kg/gate/telemetry", b"{}", 3_000)
    kg.flush()
    other.flush()
    [pump] = kg.entries()
    assert (pump.facts.key, pump.first_topic, pump.messages) == ("native:pump", "facility/disc-kg/pump/telemetry", 1)
    assert [e.facts.key for e in other.entries()] == ["native:gate", "native:pump"]

    other.dismiss("native:pump", "head")
    assert kg.entries()[0].state == "new"  # the same key at another site
    with pytest.raises(NotFound):
        kg.dismiss("native:gate", "head")  # another site's device is none of this one's
    assert {e.facts.key: e.state for e in other.entries()} == {"native:gate": "new", "native:pump": "dismissed"}
    assert [e.target for e in AuditTrail(state_db, "other-kg").newest(10)] == ["discovered:native:pump"]
    assert AuditTrail(state_db, "disc-kg").newest(10) == []


def test_a_suggested_id_is_unique_and_an_address_is_no_name(tmp_path: Path) -> None:
    site = config.parse(SITE.format(url="mqtt://127.0.0.1:1", client_id="unused", data_dir=tmp_path), "site.yaml")
    label = kinds()["door"].label_zh
    taken = suggest(Sighting("zigbee2mqtt:0x00158d000122fcd2", "zigbee2mqtt", "door", "", frozenset({"open"}),
                             {"protocol": "zigbee2mqtt", "name": "door"}), site)
    assert isinstance(taken, Suggestion)
    assert (taken.id, taken.name) == ("door-2", f"{label}（door）")  # the site has a device `door`
    unnamed = suggest(Sighting("zigbee2mqtt:0x00158d000122fcd3", "zigbee2mqtt", "0x00158d000122fcd3", "",
                               frozenset({"open"}), {"protocol": "zigbee2mqtt", "name": "0x00158d000122fcd3"}), site)
    assert isinstance(unnamed, Suggestion)
    assert (unnamed.id, unnamed.name) == ("0x00158d000122fcd3", label)
    chinese = suggest(Sighting("zigbee2mqtt:0x00158d000122fcd4", "zigbee2mqtt", "厨房门", "", frozenset({"open"}),
                               {"protocol": "zigbee2mqtt", "name": "厨房门"}), site)
    assert isinstance(chinese, Suggestion)
    assert (chinese.id, chinese.name) == ("door-2", "厨房门")  # no id in Chinese: the kind's, made unique
