"""Zigbee2MQTT, Tasmota and Shelly devices in a running gateway on a real Mosquitto: the vendors'
own payloads (the fixtures) on the vendors' own topics become readings of our device kinds; a
wet leak sensor raises its alert; a bridge's "offline" raises `device_offline` at once; bad
vendor payloads are rejected with their reason and topic while the rest goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gateway import config
from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config.auth import Scope
from tests.services import Mosquitto, accounting, wait_for

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "vendors"
# Names of our own, so that nothing else on the shared broker publishes on these topics.
SITE = """\
id: vendor-kg
name: 测试幼儿园
buildings:
  - id: main
    name: 综合楼
    rooms: [{{id: kitchen, name: 厨房, type: kitchen}}]
devices:
  - {{id: door, kind: door, room: kitchen, source: {{protocol: zigbee2mqtt, name: vt/kitchen_door, base_topic: z2m-vt}}}}
  - {{id: leak, kind: leak_sensor, room: kitchen, source: {{protocol: zigbee2mqtt, name: vt_leak, base_topic: z2m-vt}}}}
  - {{id: plug, kind: electricity_meter, room: kitchen, source: {{protocol: zigbee2mqtt, name: vt_plug, base_topic: z2m-vt}}}}
  - {{id: fridge, kind: sample_fridge, room: kitchen, source: {{protocol: tasmota, topic: vt_fridge}}}}
  - {{id: uv, kind: uv_lamp, room: kitchen, source: {{protocol: shelly, prefix: shellyplusplugs-vt0001}}}}
  - {{id: native, kind: water_meter, room: kitchen}}
mqtt: {{url: "{url}", client_id: "gw-vendor-mqtt"}}
storage: {{data_dir: "{data_dir}"}}
# On the real clock: nobody keeps the 留样 register or patrols here, at whatever hour the test runs.
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


@pytest.fixture
def api(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[TestClient]:
    site = config.parse(SITE.format(url=mosquitto.url, data_dir=tmp_path / "data"), "site.yaml")
    with TestClient(create_app(site, SystemClock())) as client:
        wait_for(lambda: client.get("/health").json()["components"]["mqtt"]["state"] == "ok")
        key = client.app.state.auth.create_api_key("tests", [Scope.READ], "test", 0)  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def device(api: TestClient, device_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/api/v1/devices/{device_id}").json()
    return body


def open_alerts(api: TestClient, device_id: str) -> list[str]:
    return [a["rule"] for a in api.get("/api/v1/alerts", params={"device": device_id, "open": True}).json()]


def test_vendor_payloads_become_readings_of_our_kinds(api: TestClient, publisher: Callable[[str, bytes], None]) -> None:
    publisher("z2m-vt/vt/kitchen_door", fixture("zigbee2mqtt/mccgq11lm_open.json"))
    publisher("z2m-vt/vt_plug", fixture("zigbee2mqtt/ts0121_on.json"))
    publisher("tele/vt_fridge/SENSOR", fixture("tasmota/sensor_ds18b20_docs.json"))
    publisher("tele/vt_fridge/SENSOR", fixture("tasmota/sensor_energy_local_bytes_plug.json"))
    publisher("shellyplusplugs-vt0001/status/switch:0", fixture("shelly/status_switch_plus_plug_s.json"))
    publisher("facility/vendor-kg/native/telemetry", b'{"volume_m3": 12.5}')  # native topics go on as before
    wait_for(lambda: all(device(api, d)["last_values"] for d in ("door", "plug", "fridge", "uv", "native")))
    wait_for(lambda: "power_w" in device(api, "fridge")["last_values"])
    assert device(api, "door")["last_values"] == {"open": True, "link_quality": 0}  # contact false: open
    assert device(api, "plug")["last_values"] == {"energy_kwh": 1.54, "power_w": 0, "voltage_v": 239,
                                                  "current_a": 0.07, "link_quality": 63}
    assert device(api, "fridge")["last_values"] == {"temperature_c": 49.7, "power_w": 5}  # the probe; the plug
    assert device(api, "uv")["last_values"] == {"on": True, "power_w": 0.8}  # a lamp keeps no energy total
    assert device(api, "native")["last_values"] == {"volume_m3": 12.5}
    assert device(api, "door")["source"] == {"protocol": "zigbee2mqtt", "where": "z2m-vt/vt/kitchen_door"}
    assert device(api, "fridge")["source"] == {"protocol": "tasmota", "where": "tele/vt_fridge/SENSOR"}
    assert device(api, "native")["source"] is None
    assert api.get("/api/v1/rejected").json() == []
    accounting(api).check()


def test_a_wet_leak_sensor_raises_its_alert_and_a_dry_one_clears_it(
    api: TestClient, publisher: Callable[[str, bytes], None],
) -> None:
    publisher("z2m-vt/vt_leak", b'{"battery":97,"linkquality":120,"water_leak":true}')
    wait_for(lambda: open_alerts(api, "leak") == ["leak_detected"])
    alert = api.get("/api/v1/alerts", params={"device": "leak"}).json()[0]
    assert alert["severity"] == "major"
    assert "检测到漏水" in alert["title_zh"]
    publisher("z2m-vt/vt_leak", b'{"battery":97,"linkquality":120,"water_leak":false}')
    wait_for(lambda: open_alerts(api, "leak") == [])
    assert device(api, "leak")["last_values"] == {"leak": False, "battery_pct": 97, "link_quality": 120}
    # Today's safety record: the floor was wet, so its water item fails and says when.
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    record = api.get("/api/v1/reports/safety", params={"date": today}).json()
    item = next(i for i in record["items"] if i["id"] == "leak:leak")
    assert (item["category"], item["status"]) == ("water", "fail")
    assert item["detail_zh"].startswith("检测到漏水")


def test_availability_from_the_bridge_takes_a_device_offline_at_once(
    api: TestClient, publisher: Callable[[str, bytes], None],
) -> None:
    publisher("z2m-vt/vt/kitchen_door", fixture("zigbee2mqtt/mccgq11lm_open.json"))
    publisher("tele/vt_fridge/LWT", fixture("tasmota/lwt_online.txt"))
    wait_for(lambda: device(api, "door")["online"] and device(api, "fridge")["online"])
    publisher("z2m-vt/vt/kitchen_door/availability", fixture("zigbee2mqtt/availability_offline.json"))
    publisher("tele/vt_fridge/LWT", fixture("tasmota/lwt_offline_docs.txt"))
    wait_for(lambda: open_alerts(api, "door") == ["device_offline"] and open_alerts(api, "fridge") == ["device_offline"])
    assert not device(api, "door")["online"]
    fridge_alert = api.get("/api/v1/alerts", params={"device": "fridge", "open": True}).json()[0]
    assert "the cold chain is unknown" in fridge_alert["detail_en"]
    # Data from the device again: online, and the alert clears.
    publisher("z2m-vt/vt/kitchen_door", fixture("zigbee2mqtt/mccgq11lm_open.json"))
    wait_for(lambda: open_alerts(api, "door") == [])
    assert device(api, "door")["online"]
    publisher("tele/vt_fridge/LWT", fixture("tasmota/lwt_online.txt"))
    wait_for(lambda: open_alerts(api, "fridge") == [])


def test_bad_vendor_payloads_are_rejected_with_their_reason_and_topic(
    api: TestClient, publisher: Callable[[str, bytes], None],
) -> None:
    publisher("tele/vt_fridge/SENSOR", b'{"ENERGY":{"Power":"lots"}}')
    publisher("shellyplusplugs-vt0001/status/switch:0", b"\xff\xfe not json")
    publisher("z2m-vt/vt/kitchen_door", b'{"temperature": 21.5}')  # a door records no temperature
    # Zigbee2MQTT's last_seen is the event time: one from 2022 lies beyond retention.
    publisher("z2m-vt/vt_leak", fixture("zigbee2mqtt/sjcgq11lm_dry.json"))
    publisher("z2m-vt/vt_leak", b'{"water_leak":false}')  # and the next good message is taken
    wait_for(lambda: len(api.get("/api/v1/rejected").json()) == 4)
    wait_for(lambda: device(api, "leak")["last_values"] == {"leak": False})
    rejected = {(r["source"], r["device_id"], r["reason"]) for r in api.get("/api/v1/rejected").json()}
    assert rejected == {
        ("mqtt:tele/vt_fridge/SENSOR", "fridge", "wrong_type"),
        ("mqtt:shellyplusplugs-vt0001/status/switch:0", "uv", "not_json"),
        ("mqtt:z2m-vt/vt/kitchen_door", "door", "no_readings"),
        ("mqtt:z2m-vt/vt_leak", "leak", "stale_timestamp"),
    }
    details = {r["device_id"]: r["detail"] for r in api.get("/api/v1/rejected").json()}
    assert "ENERGY.Power" in details["fridge"]
    assert details["door"] == "nothing a door records in this message (it carries: temperature_c)"
    m = accounting(api)
    assert m.total("facility_messages_rejected_total", reason="no_readings") == 1
    m.check()
