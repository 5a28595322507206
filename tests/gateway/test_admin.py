"""The admin area's API on a real gateway and a real Mosquitto: the school's settings changed
while running (a new meter's reading accepted without a restart, a Zigbee2MQTT door subscribed
to at once), validated by the site file's model, audited, kept over a restart; export →
check-config → import is an identity; a device retired keeps its history; a channel tried
with a test message on a real webhook receiver; read-only when managed from the file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway import config
from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config.auth import Role
from tests.receivers import HttpReceiver
from tests.services import Mosquitto, wait_for

pytestmark = pytest.mark.integration

SITE = """\
id: kg
name: 测试幼儿园
kind: kindergarten
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {{id: kitchen, name: 厨房, type: kitchen}}
devices:
  - {{id: fridge, kind: sample_fridge, room: kitchen, name: 留样冰箱}}
mqtt: {{url: "{url}", client_id: "{client_id}"}}
storage: {{data_dir: "{data_dir}"}}
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
{extra}"""
PASSWORD = "后勤-long-enough"
T0 = int(time.time()) - 120


def site_text(url: str, tmp_path: Path, name: str, extra: str = "") -> str:
    return SITE.format(url=url, client_id=f"gw-{name}"[:60], data_dir=tmp_path / "data", extra=extra)


class Admin:
    """A running gateway and an admin's session on it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        auth = client.app.state.auth  # type: ignore[attr-defined]
        existing = {u.name for u in auth.list_users()}
        for login, role in (("head", Role.ADMIN), ("guard", Role.STAFF), ("teacher", Role.VIEWER)):
            if login not in existing:
                auth.add_user(login, role, PASSWORD, "tests", 0)
        self.headers = self.login("head")

    def login(self, name: str) -> dict[str, str]:
        answer = self.client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def config(self) -> dict[str, Any]:
        answer = self.client.get("/api/v1/admin/config", headers=self.headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def put(self, section: str, value: Any, version: int | None = None) -> Any:
        version = self.config()["version"] if version is None else version
        return self.client.put(f"/api/v1/admin/config/{section}", json={"version": version, "value": value},
                               headers=self.headers)

    def add_device(self, device: dict[str, Any]) -> Any:
        return self.client.post("/api/v1/admin/devices", json={"version": self.config()["version"], "device": device},
                                headers=self.headers)

    def devices(self) -> dict[str, Any]:
        return {d["id"]: d for d in self.client.get("/api/v1/devices", headers=self.headers).json()}


@pytest.fixture
def admin(mosquitto: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Admin]:
    site = config.parse(site_text(mosquitto.url, tmp_path, request.node.name), "site.yaml")
    with TestClient(create_app(site, SystemClock())) as client:
        wait_for(lambda: client.get("/health").json()["components"]["mqtt"]["state"] == "ok")
        yield Admin(client)


def test_a_meter_added_in_the_dashboard_is_read_at_once(admin: Admin,
                                                        publisher: Callable[[str, bytes], None]) -> None:
    publisher("facility/kg/tap/telemetry", json.dumps({"ts": T0, "volume_m3": 1.0}).encode())
    wait_for(lambda: any(r["device_id"] == "tap" for r in
                         admin.client.get("/api/v1/rejected", headers=admin.headers).json()))

    buildings = admin.config()["site"]["buildings"]
    buildings.append({"id": "annex", "name": "附楼", "floor_area_m2": 800, "headcount": 60,
                      "rooms": [{"id": "boiler", "name": "锅炉房", "type": "plant"}]})
    changed = admin.put("buildings", buildings)
    assert changed.status_code == 200, changed.text
    assert {"zh": "新增楼宇「附楼」", "en": "Added building 附楼"} in changed.json()["changes"]
    added = admin.add_device({"id": "tap", "kind": "water_meter", "room": "boiler", "name": "附楼总水表",
                              "interval_s": 60})
    assert added.status_code == 201, added.text

    publisher("facility/kg/tap/telemetry", json.dumps({"ts": T0 + 60, "volume_m3": 1.5}).encode())
    wait_for(lambda: admin.devices()["tap"]["last_values"].get("volume_m3") == 1.5, timeout=5)
    assert admin.devices()["tap"]["name"] == "附楼总水表"

    audit = admin.client.get("/api/v1/audit", headers=admin.headers).json()
    entry = next(e for e in audit if e["action"] == "settings.dashboard" and "tap" in json.dumps(e["detail"]))
    assert entry["detail"]["sections"]["devices"]["tap"]["before"] is None
    assert entry["detail"]["sections"]["devices"]["tap"]["after"]["room"] == "boiler"


def test_a_zigbee_door_added_is_subscribed_to_without_a_restart(admin: Admin,
                                                                publisher: Callable[[str, bytes], None]) -> None:
    added = admin.add_device({"id": "kitchen-door", "kind": "door", "room": "kitchen", "name": "厨房后门",
                              "source": {"protocol": "zigbee2mqtt", "name": "kitchen_door"}})
    assert added.status_code == 201, added.text
    # The subscription follows the change at once, but a publish may reach the broker before
    # the gateway's SUBSCRIBE: the door reports again, as a real one does on its next change.
    def reported() -> bool:
        publisher("zigbee2mqtt/kitchen_door", json.dumps({"contact": False, "battery": 90}).encode())
        time.sleep(0.2)
        return admin.devices()["kitchen-door"]["last_values"].get("open") is True

    wait_for(reported, timeout=5)


def test_a_wrong_value_is_refused_at_its_place_and_changes_nothing(admin: Admin) -> None:
    before = admin.config()
    bad = admin.add_device({"id": "tap", "kind": "water_meter", "room": "kitchn"})
    assert bad.status_code == 422
    problem = bad.json()["detail"]["problems"][0]
    assert problem["path"][:3] == ["devices", 1, "room"]
    assert "kitchn" in problem["zh"]
    assert "kitchn" in problem["en"]
    # The same mistake in a site file reads the same.
    text = site_text("mqtt://127.0.0.1:1", Path("data"), "file").replace(
        "  - {id: fridge,", "  - {id: tap, kind: water_meter, room: kitchn}\n  - {id: fridge,")
    with pytest.raises(config.ConfigError) as refused:
        config.parse(text, "site.yaml")
    in_file = next(p for p in refused.value.problems if p.path[:1] == ("devices",))
    assert (in_file.zh, in_file.en) == (problem["zh"], problem["en"])
    assert admin.config()["version"] == before["version"]
    assert admin.config()["site"] == before["site"]


def test_a_change_from_an_old_version_is_refused(admin: Admin) -> None:
    version = admin.config()["version"]
    assert admin.put("school", {"name": "向日葵幼儿园", "kind": "kindergarten"}, version).status_code == 200
    stale = admin.put("school", {"name": "别的名字", "kind": "kindergarten"}, version)
    assert stale.status_code == 409
    assert "刷新" in stale.json()["detail"]["zh"]
    assert admin.config()["site"]["name"] == "向日葵幼儿园"


def test_only_an_admin_reaches_the_settings(admin: Admin) -> None:
    for who in ("guard", "teacher"):
        headers = admin.login(who)
        assert admin.client.get("/api/v1/admin/config", headers=headers).status_code == 403
        version = admin.config()["version"]
        refused = admin.client.put("/api/v1/admin/config/school", headers=headers,
                                   json={"version": version, "value": {"name": "x"}})
        assert refused.status_code == 403
    assert admin.client.get("/api/v1/admin/config").status_code == 401


def test_hours_and_a_holiday_change_the_calendar_at_once(admin: Admin) -> None:
    day = "2027-01-25"  # a Monday
    assert admin.client.get("/api/v1/calendar", params={"date": day}, headers=admin.headers).json()["school_day"]
    calendar = {"term_breaks": [{"start": "2027-01-23", "end": "2027-02-20", "name": "寒假"}],
                "makeup_days": [{"start": "2027-01-09", "end": "2027-01-09", "name": "运动会"}]}
    assert admin.put("calendar", calendar).status_code == 200
    days = {d["date"]: d for d in admin.client.get("/api/v1/calendar/month", params={"month": "2027-01"},
                                                   headers=admin.headers).json()}
    assert (days[day]["kind"], days[day]["name_zh"]) == ("term_break", "寒假")
    assert (days["2027-01-09"]["kind"], days["2027-01-09"]["school_day"]) == ("makeup_day", True)
    assert days["2027-01-09"]["kind_zh"] == "调休开园日"

    hours = {d: [{"start": "07:00", "end": "18:30"}] for d in ("mon", "tue", "wed", "thu", "fri")}
    assert admin.put("opening_hours", hours).status_code == 200
    opened = admin.client.get("/api/v1/calendar", params={"date": "2027-01-08"}, headers=admin.headers).json()
    assert opened["buildings"][0]["open"][0]["start"].endswith("23:00:00Z")  # 07:00 in Shanghai


def test_export_check_config_import_is_an_identity_and_a_restart_keeps_it(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    text = site_text(mosquitto.url, tmp_path, "export")
    with TestClient(create_app(config.parse(text, "site.yaml"), SystemClock())) as client:
        admin = Admin(client)
        assert admin.add_device({"id": "tap", "kind": "water_meter", "room": "kitchen", "name": "厨房水表",
                                 "rules": {"water_leak": {"night_min_flow_lpm": 0.8}}}).status_code == 201
        assert admin.put("duty", {"people": [{"id": "wang", "name": "王师傅", "role": "门卫"}],
                                  "shifts": [{"days": ["mon"], "chain": ["wang"]}]}).status_code == 200
        exported = client.get("/api/v1/admin/config/export", headers=admin.headers)
        assert exported.status_code == 200
        site_file = tmp_path / "exported.yaml"
        site_file.write_text(exported.text, encoding="utf-8")
        checked = subprocess.run([str(Path(sys.executable).parent / "facility-gateway"), "check-config",
                                  str(site_file)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        version = admin.config()["version"]
        preview = client.post("/api/v1/admin/config/import", headers=admin.headers,
                              json={"yaml": exported.text, "apply": False}).json()
        assert preview == {"changes": [], "problems": [], "version": None}
        applied = client.post("/api/v1/admin/config/import", headers=admin.headers,
                              json={"yaml": exported.text, "apply": True, "version": version}).json()
        assert applied["changes"] == []
        assert applied["version"] == version
        settings = admin.config()["site"]

    # Restarted from the same (unchanged) site file: the dashboard's settings stay.
    with TestClient(create_app(config.parse(text, "site.yaml"), SystemClock())) as client:
        again = Admin(client)
        assert again.config()["site"] == settings
        assert again.devices()["tap"]["name"] == "厨房水表"


def test_an_imported_file_shows_its_changes_before_they_apply(admin: Admin) -> None:
    exported = admin.client.get("/api/v1/admin/config/export", headers=admin.headers).text
    edited = exported.replace("name: 留样冰箱", "name: 留样冰箱（新）") + "calendar:\n  closures:\n" \
        "  - {start: 2027-03-01, end: 2027-03-02, name: 停电检修}\n"
    version = admin.config()["version"]
    preview = admin.client.post("/api/v1/admin/config/import", headers=admin.headers,
                                json={"yaml": edited, "apply": False}).json()
    assert [c["zh"] for c in preview["changes"]] == ["修改设备「留样冰箱（新）」", "修改校历"]
    assert admin.config()["version"] == version
    applied = admin.client.post("/api/v1/admin/config/import", headers=admin.headers,
                                json={"yaml": edited, "apply": True, "version": version}).json()
    assert applied["version"] == version + 1
    assert admin.devices()["fridge"]["name"] == "留样冰箱（新）"
    wrong = edited.replace("room: kitchen", "room: attic")
    broken = admin.client.post("/api/v1/admin/config/import", headers=admin.headers,
                               json={"yaml": wrong, "apply": False}).json()
    assert broken["problems"]
    assert "attic" in broken["problems"][0]["zh"]
    assert broken["problems"][0]["line"] == wrong[:wrong.index("room: attic")].count("\n") + 1


def test_an_imported_file_of_yaml_no_site_file_may_use_is_refused_with_its_line(admin: Admin) -> None:
    exported = admin.client.get("/api/v1/admin/config/export", headers=admin.headers).text
    hostile = exported.replace("name: 留样冰箱", "name: !!python/object/apply:os.system [id]", 1)
    answer = admin.client.post("/api/v1/admin/config/import", headers=admin.headers,
                               json={"yaml": hostile, "apply": False})
    assert answer.status_code == 200
    assert answer.json()["changes"] == []
    assert [(p["line"], p["zh"]) for p in answer.json()["problems"]] == [
        (hostile[:hostile.index("!!python")].count("\n") + 1, "站点文件不能用标签 !!python/object/apply:os.system")]


def test_a_retired_device_keeps_its_history_and_its_id(admin: Admin,
                                                       publisher: Callable[[str, bytes], None]) -> None:
    publisher("facility/kg/fridge/telemetry", json.dumps({"ts": T0, "temperature_c": 4.0}).encode())
    wait_for(lambda: admin.devices()["fridge"]["last_values"])
    retired = admin.client.post("/api/v1/admin/devices/fridge/retire", headers=admin.headers,
                                json={"version": admin.config()["version"]})
    assert retired.status_code == 200, retired.text
    assert "fridge" not in admin.devices()
    history = admin.client.get("/api/v1/devices/fridge/readings", headers=admin.headers,
                               params={"start": "2020-01-01T00:00:00Z"}).json()
    assert [p["value"] for s in history for p in s["points"] if s["metric"] == "temperature_c"] == [4.0]
    site = admin.config()["site"]
    assert [(d["id"], d["name"]) for d in site["retired"]] == [("fridge", "留样冰箱")]
    again = admin.add_device({"id": "fridge", "kind": "sample_fridge", "room": "kitchen"})
    assert again.status_code == 422
    assert "fridge" in again.json()["detail"]["problems"][0]["zh"]


def test_a_channel_is_tried_with_a_test_message(admin: Admin) -> None:
    with HttpReceiver() as receiver:
        channel = {"id": "office", "type": "webhook", "url": receiver.url}
        tried = admin.client.post("/api/v1/admin/channels/test", headers=admin.headers, json={"channel": channel})
        assert tried.json()["ok"] is True, tried.text
        got = receiver.wait(1)[0].json()
        assert got["test"] is True
        assert "测试" in got["text"]
        receiver.respond(500)
        failed = admin.client.post("/api/v1/admin/channels/test", headers=admin.headers, json={"channel": channel})
        assert failed.json()["ok"] is False
        assert "500" in failed.json()["zh"]


def test_a_site_managed_from_its_file_is_read_only(mosquitto: Mosquitto, tmp_path: Path) -> None:
    text = site_text(mosquitto.url, tmp_path, "file", "managed_from: file\n")
    with TestClient(create_app(config.parse(text, "site.yaml"), SystemClock())) as client:
        admin = Admin(client)
        assert admin.config()["read_only"] is True
        refused = admin.put("school", {"name": "改名", "kind": "kindergarten"})
        assert refused.status_code == 409
        assert "站点文件" in refused.json()["detail"]["zh"]


def test_the_deployment_part_is_never_changed_from_the_dashboard(admin: Admin) -> None:
    sneaky = admin.put("school", {"name": "x", "storage": {"data_dir": "/tmp/elsewhere"}})
    assert sneaky.status_code == 422
    exported = admin.client.get("/api/v1/admin/config/export", headers=admin.headers).text
    imported = admin.client.post("/api/v1/admin/config/import", headers=admin.headers, json={
        "yaml": exported + "mqtt: {url: 'mqtt://192.0.2.1:1883'}\nmanaged_from: file\n", "apply": True,
        "version": admin.config()["version"]}).json()
    assert imported["changes"] == []  # only the school's part of a file is taken
    assert admin.client.app.state.gateway.site.mqtt.url.startswith("mqtt://127.0.0.1")  # type: ignore[attr-defined]
    assert admin.config()["read_only"] is False
