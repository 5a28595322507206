"""The site's newest readings in the shared state store, and what a replica that takes the site
over makes of them: its seeds (a counter's last value) and its rules, primed before live
messages (a door left open after hours); and the settings changed while it stood by. Each test
runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
import yaml

from devices.base import Event, Reason, Sample
from gateway.alerting.alerts import AlertFilter
from gateway.clock import ManualClock, to_ms
from gateway.config import SiteConfig, parse
from gateway.runtime import Gateway
from gateway.storage.latest import LATEST_READINGS, LatestReadings
from gateway.storage.sqlite import Point
from gateway.storage.state import StateDatabase
from tests.garbage import cyclic_garbage
from tests.rule_scenarios import DEMO
from tests.services import until

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
THU: Final = date(2026, 10, 15)  # a school day: the teaching building closes at 17:30
DOOR: Final = "large-1-door"
TAP: Final = "teaching-water"


def at(hh_mm: str) -> datetime:
    return datetime.combine(THU, time_of_day.fromisoformat(hh_mm), SHANGHAI)


def ms(hh_mm: str) -> int:
    return to_ms(at(hh_mm))


def batch(*samples: Sample | Event) -> list[tuple[int, Sample | Event]]:
    return [(s.ts_ms, s) for s in samples]


def test_the_newer_reading_wins_and_sites_are_apart(state_db: StateDatabase) -> None:
    kg, other = LatestReadings(state_db, "kg"), LatestReadings(state_db, "other")
    kg.record(batch(Sample("door", 2_000, {"open": 1.0, "battery_pct": 80.0}), Sample("door", 1_000, {"open": 0.0}),
                    Event("door", 3_000, "access", {"credential": "A1", "granted": True})))
    other.record(batch(Sample("door", 9_000, {"open": 0.0})))
    assert kg.read() == {"door": {"open": Point(2_000, 1.0), "battery_pct": Point(2_000, 80.0)}}
    kg.record(batch(Sample("door", 1_500, {"open": 0.0, "battery_pct": 10.0})))  # older: ignored
    kg.record(batch(Sample("door", 2_500, {"battery_pct": 79.0})))
    assert kg.read() == {"door": {"open": Point(2_000, 1.0), "battery_pct": Point(2_500, 79.0)}}
    assert other.read() == {"door": {"open": Point(9_000, 0.0)}}


def test_writing_a_batch_s_newest_readings_leaves_no_garbage_in_cycles(state_db: StateDatabase) -> None:
    """One write a spool batch, hundreds a second: the statement was built anew each time, and
    with it the table's `excluded` alias, about 60 objects in cycles that only the garbage
    collector frees, in collections that hold the GIL for tens of milliseconds."""
    kg = LatestReadings(state_db, "kg")
    kg.record(batch(Sample("meter", 0, {"energy_kwh": 0.0})))  # the first write: the statement compiled
    with cyclic_garbage() as garbage:
        for n in range(1, 101):
            kg.record(batch(Sample("meter", n * 1_000, {"energy_kwh": float(n), "power_w": 500.0})))
    assert kg.read() == {"meter": {"energy_kwh": Point(100_000, 100.0), "power_w": Point(100_000, 500.0)}}
    assert len(garbage) < 100, sorted({type(o).__name__ for o in garbage})


def test_readings_the_store_refused_go_with_the_next_batch(state_db: StateDatabase) -> None:
    latest = LatestReadings(state_db, "kg")
    LATEST_READINGS.drop(state_db.engine)  # the store refuses the write: gone, as if out of reach
    latest.record(batch(Sample("door", 1_000, {"open": 1.0})))
    LATEST_READINGS.create(state_db.engine)  # back
    latest.record(batch(Sample("tap", 2_000, {"volume_m3": 3.5})))
    assert latest.read() == {"door": {"open": Point(1_000, 1.0)}, "tap": {"volume_m3": Point(2_000, 3.5)}}


def site(data_dir: Path, state_url: str) -> SiteConfig:
    """The demo site with a classroom door and a water meter, both silent for long without
    being offline, whose state store is `state_url`."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["storage"] = {"data_dir": str(data_dir), "state_url": state_url}
    data["replica"] = {"id": data_dir.name, "lease_s": 3}
    data.pop("derived_subitems")  # declared of the demo's meters, which are not here
    data["devices"] = [
        {"id": DOOR, "kind": "door", "room": "large-1", "name": "大一班门", "interval_s": 3600},
        {"id": TAP, "kind": "water_meter", "room": "teaching-plant", "name": "教学楼水表", "interval_s": 3600},
    ]
    return parse(yaml.safe_dump(data, allow_unicode=True), "site.yaml")


def send(gw: Gateway, device_id: str, hh_mm: str, **values: float | bool) -> None:
    payload = json.dumps({"device_id": device_id, "ts": ms(hh_mm) / 1000, **values}).encode()
    refused = gw.ingestor.accept_named("http", payload, to_ms(gw.clock.now()))
    assert refused is None, refused


def stored(gw: Gateway, device_id: str, metric: str, hh_mm: str) -> Callable[[], bool]:
    def check() -> bool:
        point = gw.latest.read().get(device_id, {}).get(metric)
        return point is not None and point.ts_ms == ms(hh_mm)
    return check


def door_alerts(gw: Gateway) -> list[tuple[int | None, int, str]]:
    """The door's after-hours alerts: (raised at, open since, state)."""
    return [(a.raised_ms, a.first_ms, a.state) for a in gw.alerts.find(AlertFilter(rule="door_after_hours"))]


@pytest.mark.parametrize("raised_before", [False, True], ids=["due-after-the-takeover", "raised-before-it"])
async def test_a_door_left_open_before_a_takeover_is_raised_once_from_when_it_opened(
        tmp_path: Path, state_url: str, raised_before: bool) -> None:
    clock = ManualClock(at("17:41"))
    async with Gateway(site(tmp_path / "a", state_url), clock, mqtt=False) as first:
        send(first, DOOR, "17:40", open=True)
        await until(stored(first, DOOR, "open", "17:40"))
        if raised_before:
            clock.set(at("17:46"))
            await until(lambda: door_alerts(first) != [])
    clock.set(at("17:43"))
    # The next owner: its own readings.db is empty, and no door message comes.
    async with Gateway(site(tmp_path / "b", state_url), clock, mqtt=False) as second:
        await asyncio.sleep(1.5)  # watchdog ticks before the grace has passed
        if not raised_before:
            assert door_alerts(second) == []
        clock.set(at("17:47"))
        await until(lambda: door_alerts(second) != [])
        await asyncio.sleep(1.5)  # more ticks: nothing more
        assert door_alerts(second) == [(ms("17:45"), ms("17:40"), "active")]
        [alert] = second.alerts.find(AlertFilter(rule="door_after_hours"))
        assert "自 10-15 17:40 起开着" in alert.detail_zh
        raises = [e for e in second.audit.newest(100, "alert.raised") if e.target == f"alert:{alert.id}"]
        assert len(raises) == 1


async def test_a_door_that_closed_while_no_gateway_ran_is_not_raised_from_its_stored_reading(
        tmp_path: Path, state_url: str) -> None:
    """The gateway was away for two hours; the door had closed two minutes after it was last
    heard open. The broker held that message for the site's session and delivers it once the
    next gateway is connected, after the watchdog's first look: no alert."""
    clock = ManualClock(at("17:41"))
    async with Gateway(site(tmp_path / "a", state_url), clock, mqtt=False) as first:
        send(first, DOOR, "17:40", open=True)
        await until(stored(first, DOOR, "open", "17:40"))
    clock.set(at("19:40"))
    async with Gateway(site(tmp_path / "b", state_url), clock, mqtt=False) as second:
        await asyncio.sleep(1.5)  # the watchdog looks: the door is open since 17:40 as far as it knows
        send(second, DOOR, "17:42", open=False)  # what the broker held
        await until(stored(second, DOOR, "open", "17:42"))
        clock.set(at("19:45"))
        await asyncio.sleep(1.5)
        assert door_alerts(second) == []


async def test_a_replica_that_takes_over_runs_with_the_settings_changed_while_it_stood_by(
        tmp_path: Path, state_url: str) -> None:
    clock = ManualClock(at("17:41"))

    def renamed(school: dict[str, Any]) -> dict[str, Any]:
        for device in school["devices"]:
            if device["id"] == TAP:
                device["name"] = "厨房新水表"
        return school

    async with Gateway(site(tmp_path / "a", state_url), clock, mqtt=False) as first:
        standby = Gateway(site(tmp_path / "b", state_url), clock, mqtt=False)  # reads the settings now
        taking_over = asyncio.create_task(standby.__aenter__())
        await asyncio.sleep(1.5)
        assert not taking_over.done()  # it stands by
        changed = first.settings.change(first.settings.version, renamed, "logistics-li")
    second = await asyncio.wait_for(taking_over, 15)  # the first stopped and gave its lease up
    try:
        assert second.settings.version == changed.version
        assert next(d.name for d in second.site.devices if d.id == TAP) == "厨房新水表"
    finally:
        await second.__aexit__(None, None, None)


async def test_a_counter_seeded_from_the_shared_store_catches_a_decrease_and_a_reset(
        tmp_path: Path, state_url: str) -> None:
    clock = ManualClock(at("17:41"))
    async with Gateway(site(tmp_path / "a", state_url), clock, mqtt=False) as first:
        send(first, TAP, "17:40", volume_m3=120.5)
        await until(stored(first, TAP, "volume_m3", "17:40"))
    clock.set(at("17:52"))
    async with Gateway(site(tmp_path / "b", state_url), clock, mqtt=False) as second:
        payload = json.dumps({"device_id": TAP, "ts": ms("17:50") / 1000, "volume_m3": 120.0}).encode()
        refused = second.ingestor.accept_named("http", payload, to_ms(clock.now()))
        assert refused is not None
        assert refused.reason is Reason.COUNTER_DECREASED
        send(second, TAP, "17:51", volume_m3=0.5)  # a new meter: far below, taken as a reset
        await until(lambda: second.alerts.find(AlertFilter(rule="counter_reset", open_only=True)) != [])
        [reset] = second.alerts.find(AlertFilter(rule="counter_reset"))
        assert (reset.facts["before"], reset.facts["after"]) == (120.5, 0.5)
