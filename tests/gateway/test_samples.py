"""The 留样 register (gateway/canteen/samples.py) on real stores with a ManualClock: refusals,
the daily record's items per meal, the deadline and early-discard alerts (the clock is moved
past the deadline, nothing sleeps), the fridge's temperature while a sample is kept, and the
canteen record's JSON through the API. The people-facing sentences are compared with
`test_samples.txt` next to this file, so a change of wording is a visible diff."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from fastapi.testclient import TestClient

from devices.base import Sample
from gateway import config
from gateway.alerting.alerts import AlertFilter, AlertStore
from gateway.app import create_app
from gateway.auth.audit import AuditTrail
from gateway.canteen.samples import SampleRegister, temperature
from gateway.clock import ManualClock, to_ms
from gateway.config.auth import Role
from gateway.refused import Refused
from gateway.reports.safety_model import ItemStatus
from gateway.runtime import Gateway
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.sqlite import SqliteStore
from gateway.storage.state import StateDatabase
from simulators import DEMO_SITE
from tests.services import Mosquitto

MONDAY: Final = date(2026, 3, 16)  # a school day
SATURDAY: Final = date(2026, 3, 21)
TZ: Final = config.load(DEMO_SITE).tz
SNAPSHOT: Final = Path(__file__).with_name("test_samples.txt")
PASSWORD: Final = "a long test password 1"


def at(day: date, hh_mm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), TZ)


def site_for(data_dir: Path, **extra: Any) -> config.SiteConfig:
    data = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    for device in data["devices"]:
        device.pop("source", None)
    data["storage"] = {"data_dir": str(data_dir)}
    return config.parse(yaml.safe_dump(data | extra, allow_unicode=True), "site.yaml")


@dataclass
class Kitchen:
    clock: ManualClock
    register: SampleRegister
    alerts: AlertStore
    audit: AuditTrail
    site: config.SiteConfig
    calendar: SchoolCalendar

    def now(self) -> int:
        return to_ms(self.clock.now())

    def judge_at(self, when: datetime) -> None:
        self.clock.set(when)
        self.register.judge(self.now())

    def open_alerts(self, rule: str) -> list[Any]:
        return self.alerts.find(AlertFilter(rule=rule, open_only=True))

    def items(self, day: date) -> dict[str, Any]:
        start, end = self.calendar.day_bounds_ms(day)
        found = self.register.items(self.site, self.calendar.day(day), start, end, min(self.now(), end))
        return {i.id: i for i in found}


@pytest.fixture
def kitchen(tmp_path: Path, state_db: StateDatabase) -> Kitchen:
    site = site_for(tmp_path)
    clock = ManualClock(at(MONDAY, "07:00"))
    calendar = SchoolCalendar(site)
    audit = AuditTrail(state_db, site.id)
    alerts = AlertStore(state_db, site, audit, Roster(site, calendar), clock, lambda notice: None)
    register = SampleRegister(state_db, site, calendar, audit, clock, alerts)
    return Kitchen(clock, register, alerts, audit, site, calendar)


def refused(call: Any, *args: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args)
    return caught.value


# ------------------------------------------------------------------------------- refusals


def test_a_sample_is_refused_when_light_in_an_unknown_fridge_or_for_a_meal_not_served(kitchen: Kitchen) -> None:
    r = kitchen.register
    light = refused(r.register, MONDAY, "lunch", "番茄炒蛋", 100.0, "sample-fridge", None, "canteen-chen")
    assert (light.status, light.zh) == (409, "留样重量不足：每样至少 125 克，本次只有 100 克。请补足后再登记。")
    assert refused(r.register, MONDAY, "lunch", "番茄炒蛋", 130.0, "uv-kitchen", None, "canteen-chen").status == 409
    weekend = refused(r.register, SATURDAY, "lunch", "番茄炒蛋", 130.0, "sample-fridge", None, "canteen-chen")
    assert (weekend.status, weekend.zh) == (409, "03月21日不是开园日，不供应午餐，无需留样。")
    assert refused(r.register, MONDAY, "supper", "粥", 130.0, "sample-fridge", None, "canteen-chen").status == 409
    assert r.on_day(MONDAY) == []


def test_discarding_needs_a_reason_before_the_retention_ends_and_happens_once(kitchen: Kitchen) -> None:
    r = kitchen.register
    kitchen.clock.set(at(MONDAY, "12:05"))
    sample = r.register(MONDAY, "lunch", "红烧鸡块", 130.0, "sample-fridge", None, "canteen-chen")
    assert sample.discard_after_ms == to_ms(at(MONDAY + timedelta(days=2), "12:05"))
    kitchen.clock.set(at(MONDAY, "15:00"))
    early = refused(r.discard, sample.id, "canteen-chen", None)
    assert (early.status, early.zh) == (409, "未到可处理时间（03-18 12:05）：提前处理须写明原因。")
    kitchen.clock.set(at(MONDAY + timedelta(days=2), "12:06"))
    done = r.discard(sample.id, "canteen-chen", None)
    assert (done.discarded_by, done.early_reason) == ("canteen-chen", None)
    twice = refused(r.discard, sample.id, "canteen-chen", None)
    assert (twice.status, twice.zh) == (409, "这份留样已于 03-18 12:06 处理，不能重复处理。")
    assert kitchen.open_alerts("sample_discarded_early") == []
    actions = [(e.action, e.actor) for e in reversed(kitchen.audit.about(f"sample:{sample.id}"))]
    assert actions == [("sample.registered", "canteen-chen"), ("sample.discarded", "canteen-chen")]


def test_two_sites_on_one_database_see_only_their_own_samples(kitchen: Kitchen, tmp_path: Path,
                                                               state_db: StateDatabase) -> None:
    site = site_for(tmp_path / "other", id="other-kg")
    # Its alerts are not judged here: the kitchen's store stands in for its own.
    other = SampleRegister(state_db, site, SchoolCalendar(site), AuditTrail(state_db, site.id), kitchen.clock,
                           kitchen.alerts)
    kitchen.clock.set(at(MONDAY, "12:05"))
    mine = kitchen.register.register(MONDAY, "lunch", "番茄炒蛋", 130.0, "sample-fridge", None, "canteen-chen")
    theirs = other.register(MONDAY, "lunch", "清蒸鲈鱼", 140.0, "sample-fridge", None, "canteen-li")
    assert [x.id for x in kitchen.register.on_day(MONDAY)] == [x.id for x in kitchen.register.kept()] == [mine.id]
    assert [x.id for x in other.on_day(MONDAY)] == [x.id for x in other.kept()] == [theirs.id]
    assert refused(kitchen.register.get, theirs.id).status == 404
    kitchen.clock.set(at(MONDAY + timedelta(days=2), "12:06"))
    assert refused(kitchen.register.discard, theirs.id, "canteen-chen", None).status == 404
    assert other.get(theirs.id).discarded_ms is None
    assert [e.actor for e in kitchen.audit.about(f"sample:{theirs.id}")] == []


# ------------------------------------------------------------- the record and the alerts


def test_a_meal_without_samples_by_its_deadline_raises_an_alert_that_a_late_sample_clears(kitchen: Kitchen) -> None:
    r = kitchen.register
    kitchen.clock.set(at(MONDAY, "08:00"))
    r.register(MONDAY, "breakfast", "小米粥", 150.0, "sample-fridge", None, "canteen-chen")
    kitchen.judge_at(at(MONDAY, "12:29"))
    assert kitchen.open_alerts("sample_missing") == []
    items = kitchen.items(MONDAY)
    assert [items[f"sample:{m}"].status for m in ("breakfast", "lunch", "snack")] == [
        ItemStatus.PASS, ItemStatus.PENDING, ItemStatus.PENDING]

    kitchen.judge_at(at(MONDAY, "12:31"))
    [alert] = kitchen.open_alerts("sample_missing")
    assert (alert.device_id, alert.severity, alert.first_ms) == ("sample-fridge", "major", to_ms(at(MONDAY, "12:30")))
    kitchen.judge_at(at(MONDAY, "12:32"))  # nothing new: no repeat
    assert kitchen.alerts.get(alert.id).count == 1
    assert kitchen.items(MONDAY)["sample:lunch"].status is ItemStatus.FAIL

    kitchen.clock.set(at(MONDAY, "12:40"))
    r.register(MONDAY, "lunch", "红烧鸡块", 130.0, "sample-fridge", to_ms(at(MONDAY, "12:10")), "canteen-chen")
    kitchen.judge_at(at(MONDAY, "12:40"))
    assert kitchen.open_alerts("sample_missing") == []
    assert kitchen.alerts.get(alert.id).state == "cleared"
    assert kitchen.items(MONDAY)["sample:lunch"].status is ItemStatus.PASS

    kitchen.judge_at(at(MONDAY, "15:31"))
    [snack] = kitchen.open_alerts("sample_missing")
    assert snack.facts["meals"] == "snack"
    kitchen.judge_at(at(MONDAY + timedelta(days=1), "00:01"))  # the day it was about has ended
    assert kitchen.open_alerts("sample_missing") == []
    saturday = kitchen.items(SATURDAY)
    assert {i.status for i in saturday.values()} == {ItemStatus.NOT_REQUIRED}
    snapshot_lines = [alert.title_zh, alert.detail_zh, alert.title_en, alert.detail_en,
                      *(f"{i.id} {i.status}: {i.check_zh} | {i.detail_zh} | {i.check_en} | {i.detail_en}"
                        for i in [*kitchen.items(MONDAY).values(), saturday["sample:lunch"]])]
    _snapshot("missing", snapshot_lines)


def test_an_early_discard_raises_an_alert_with_its_reason(kitchen: Kitchen) -> None:
    r = kitchen.register
    kitchen.clock.set(at(MONDAY, "12:05"))
    sample = r.register(MONDAY, "lunch", "清蒸鲈鱼", 140.0, "sample-fridge", None, "canteen-chen")
    kitchen.clock.set(at(MONDAY, "16:00"))
    r.discard(sample.id, "canteen-chen", "冰箱断电，留样已变质")
    kitchen.judge_at(at(MONDAY, "16:00"))
    [alert] = kitchen.open_alerts("sample_discarded_early")
    assert (alert.device_id, alert.facts["samples"]) == ("sample-fridge", str(sample.id))
    actions = [(e.action, e.actor, dict(e.detail)) for e in kitchen.audit.about(f"sample:{sample.id}")]
    assert actions[0] == ("sample.discarded", "canteen-chen", {"early": True, "reason": "冰箱断电，留样已变质"})
    _snapshot("early", [alert.title_zh, alert.detail_zh, alert.title_en, alert.detail_en])


def test_each_fridge_s_early_discards_are_its_own_alert_judged_in_one_pass(tmp_path: Path,
                                                                           state_db: StateDatabase) -> None:
    """Two sample fridges: each one's early discards raise, repeat and end its own alert, however
    the pass over all of them reads the register and the open alerts."""
    devices = [{k: v for k, v in d.items() if k != "source"}
               for d in yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))["devices"]]
    second = next(d for d in devices if d["id"] == "sample-fridge") | {"id": "sample-fridge-2", "name": "留样冰箱二"}
    site = site_for(tmp_path, devices=[*devices, second])
    clock = ManualClock(at(MONDAY, "12:00"))
    calendar = SchoolCalendar(site)
    audit = AuditTrail(state_db, site.id)
    alerts = AlertStore(state_db, site, audit, Roster(site, calendar), clock, lambda notice: None)
    kitchen = Kitchen(clock, SampleRegister(state_db, site, calendar, audit, clock, alerts), alerts, audit, site,
                      calendar)
    r = kitchen.register
    first = r.register(MONDAY, "lunch", "清蒸鲈鱼", 140.0, "sample-fridge", None, "canteen-chen")
    kept = r.register(MONDAY, "lunch", "番茄炒蛋", 130.0, "sample-fridge-2", None, "canteen-chen")
    later = r.register(MONDAY, "lunch", "红烧鸡块", 130.0, "sample-fridge-2", None, "canteen-chen")

    def open_early() -> dict[str, tuple[str, int]]:
        return {a.device_id: (str(a.facts["samples"]), a.count) for a in kitchen.open_alerts("sample_discarded_early")}

    kitchen.clock.set(at(MONDAY, "15:00"))
    r.discard(first.id, "canteen-chen", "冰箱断电")
    kitchen.judge_at(at(MONDAY, "15:01"))
    assert open_early() == {"sample-fridge": (str(first.id), 1)}
    kitchen.judge_at(at(MONDAY, "15:02"))  # nothing new: no repeat
    assert open_early() == {"sample-fridge": (str(first.id), 1)}
    kitchen.clock.set(at(MONDAY, "16:00"))
    r.discard(later.id, "canteen-chen", "打翻了")
    kitchen.judge_at(at(MONDAY, "16:01"))
    assert open_early() == {"sample-fridge": (str(first.id), 1), "sample-fridge-2": (str(later.id), 1)}
    assert kept.discarded_ms is None
    kitchen.judge_at(at(MONDAY + timedelta(days=1), "07:00"))  # their day is over
    assert open_early() == {}


def test_the_fridge_temperature_over_a_retention(tmp_path: Path) -> None:
    site = site_for(tmp_path)
    fridge = site.device("sample-fridge")
    assert fridge is not None
    store = SqliteStore(tmp_path / "readings.db")
    start = to_ms(at(MONDAY, "12:00"))
    minute = 60_000
    # 4 °C every minute, but 9.5 °C from 12:30 to 12:50 and silence from 13:00 to 14:00.
    values = [(start + k * minute, 9.5 if 30 <= k < 50 else 4.0) for k in range(-5, 180) if not 60 <= k < 120]
    store.write([Sample("sample-fridge", ts, {"temperature_c": v}) for ts, v in values], [])
    try:
        t = temperature(store, fridge, start + 10 * minute, start + 180 * minute)
    finally:
        store.close()
    assert t is not None
    assert (t.range_min_c, t.range_max_c, t.lowest_c, t.highest_c) == (0.0, 8.0, 4.0, 9.5)
    assert t.minutes_out == 20
    # Readings hold for the fridge's offline threshold, then the silence is a gap.
    assert 0 < t.minutes_no_data < 60
    assert t.readings == 170 - 60


def _snapshot(name: str, lines: list[str]) -> None:
    """Compares the sentences with the snapshot file's section `name` (`UPDATE_SNAPSHOTS=1` rewrites it)."""
    sections: dict[str, list[str]] = {}
    if SNAPSHOT.exists():
        current = ""
        for line in SNAPSHOT.read_text(encoding="utf-8").splitlines():
            if line.startswith("## "):
                current = line[3:]
                sections[current] = []
            elif current and line:
                sections[current].append(line)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        sections[name] = lines
        SNAPSHOT.write_text("".join(f"## {k}\n" + "".join(f"{x}\n" for x in v) + "\n"
                                    for k, v in sorted(sections.items())), encoding="utf-8")
        return
    assert sections.get(name) == lines


# ------------------------------------------------------------------------- through the API


@pytest.fixture
def gateway_api(mosquitto: Mosquitto, tmp_path: Path, state_url: str) -> Iterator[tuple[TestClient, Gateway, ManualClock]]:
    site = site_for(tmp_path / "data", mqtt={"url": mosquitto.url, "client_id": "gw-samples"},
                    storage={"data_dir": str(tmp_path / "data"), "state_url": state_url})
    clock = ManualClock(at(MONDAY, "12:00"))
    with TestClient(create_app(site, clock)) as client:
        gw: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
        yield client, gw, clock


def _login(client: TestClient, gw: Gateway, name: str, role: Role) -> dict[str, str]:
    gw.auth.add_user(name, role, PASSWORD, "test", to_ms(at(MONDAY, "07:00")))
    token = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_canteen_record_holds_the_register_with_the_fridge_temperature(
        gateway_api: tuple[TestClient, Gateway, ManualClock]) -> None:
    client, gw, clock = gateway_api
    staff = _login(client, gw, "canteen-chen", Role.STAFF)
    viewer = _login(client, gw, "teacher-sun", Role.VIEWER)
    start = to_ms(at(MONDAY, "11:00"))
    gw.store.write([Sample("sample-fridge", start + k * 60_000, {"temperature_c": 3.0 + (k % 3)})
                    for k in range(180)], [])
    body = {"day": MONDAY.isoformat(), "meal": "lunch", "dish": "番茄炒蛋", "weight_g": 130, "fridge": "sample-fridge",
            "taken_at": at(MONDAY, "11:50").isoformat()}
    assert client.post("/api/v1/samples", json=body, headers=viewer).status_code == 403
    light = client.post("/api/v1/samples", json=body | {"weight_g": 100}, headers=staff)
    assert light.status_code == 409
    assert light.json()["detail"]["zh"].startswith("留样重量不足")
    made = client.post("/api/v1/samples", json=body, headers=staff)
    assert made.status_code == 201, made.text
    clock.set(at(MONDAY, "13:00"))
    record = client.get("/api/v1/reports/canteen", params={"date": MONDAY.isoformat()}, headers=viewer)
    assert record.status_code == 200, record.text
    [line] = record.json()["samples"]
    assert (line["dish"], line["weight_g"], line["meal_zh"], line["fridge_name"]) == ("番茄炒蛋", 130, "午餐", "留样冰箱")
    assert line["taken_by"]["id"] == "canteen-chen"
    temp = line["temperature"]
    assert (temp["lowest_c"], temp["highest_c"], temp["minutes_out"], temp["range_max_c"]) == (3.0, 5.0, 0, 8.0)
    assert temp["readings"] == 70  # 11:50 to 13:00
    items = {i["id"]: i["status"] for i in record.json()["items"]}
    assert items["sample:lunch"] == "pass"
    html = client.get("/api/v1/reports/canteen", params={"date": MONDAY.isoformat(), "format": "html"},
                      headers=viewer).text
    assert "留样记录" in html
    assert "番茄炒蛋" in html
    assert "全程在 0–8 °C 内" in html
    day = client.get("/api/v1/samples", params={"date": MONDAY.isoformat()}, headers=viewer).json()
    lunch = next(m for m in day["meals"] if m["id"] == "lunch")
    assert (lunch["status"], [s["dish"] for s in lunch["samples"]]) == ("pass", ["番茄炒蛋"])
    assert [s["dish"] for s in day["kept"]] == ["番茄炒蛋"]
    sample_id = made.json()["id"]
    assert client.post(f"/api/v1/samples/{sample_id}/discard", json={}, headers=viewer).status_code == 403
    early = client.post(f"/api/v1/samples/{sample_id}/discard", json={}, headers=staff)
    assert (early.status_code, early.json()["detail"]["en"]) == (
        409, "Not due until 03-18 11:50: discarding it early needs a reason.")
