"""The upload to an energy-monitoring platform, against an emulator written from the guideline
(tests/platform_emulator.py): login, heartbeat, data and acknowledgement; hours of readings
through an outage, delivered once and in order from the spool; a wrong key; a platform that
answers garbage, nothing, or hangs up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from devices.base import Event, Sample
from gateway.clock import ManualClock, to_ms
from gateway.config import ConfigError, SiteConfig, parse
from gateway.counters import Counters
from gateway.runtime import Gateway
from gateway.sinks import TransientSinkError
from gateway.sinks.platform import PlatformSink
from gateway.sinks.writer import SinkWriter
from gateway.spool.store import Spool
from gateway.spool.thread import SpoolThread
from tests.platform_emulator import PlatformEmulator
from tests.services import until

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 1, 0, 0, tzinfo=TZ)
MINUTE = 60_000
AUTH, AES, IV = "school-auth-key1", "0123456789abcdef", "fedcba9876543210"
METERS = {"em-main": ("E01", "01A00", "energy_kwh"), "wm-main": ("W01", "02000", "volume_m3")}


def site(data_dir: Path, port: int, spool: dict[str, float] | None = None, **platform: object) -> SiteConfig:
    data: dict[str, object] = {
        "id": "kg", "name": "测试幼儿园", "timezone": "Asia/Shanghai",
        "buildings": [{"id": "main", "name": "综合楼", "rooms": [{"id": "plant", "name": "配电房", "type": "plant"}]}],
        "devices": [
            {"id": "em-main", "kind": "electricity_meter", "room": "plant", "name": "总电表"},
            {"id": "wm-main", "kind": "water_meter", "room": "plant", "name": "总水表"},
        ],
        "storage": {"data_dir": str(data_dir)},
        "platform": {
            "host": "127.0.0.1", "port": port, "building_id": "330201A001", "gateway_id": "01",
            "auth_key": AUTH, "aes_key": AES, "aes_iv": IV, "answer_timeout_s": 0.5,
            "meters": {d: {"id": m, "coding": c} for d, (m, c, _) in METERS.items()},
            **platform,
        },
    }
    if spool is not None:
        data["spool"] = spool
    return parse(yaml.safe_dump(data, allow_unicode=True), "site.yaml")


def readings(first_min: int, last_min: int) -> list[Sample]:
    """Each meter every 5 minutes, a minute past the 5 (so a period's reading is not at its
    start); cumulative, growing faster by day."""
    out = []
    for m in range(first_min, last_min, 5):
        ts = to_ms(START) + (m + 1) * MINUTE
        out.append(Sample("em-main", ts, {"energy_kwh": 1000 + 0.5 * m + (m // 60) ** 2 * 0.01, "power_w": 1.0}))
        out.append(Sample("wm-main", ts, {"volume_m3": 20 + 0.01 * m}))
    return out


def expected(samples: list[Sample], every_min: int, statistic: bool) -> dict[tuple[str, str], float]:
    """What the platform should get, computed here from the readings: for each period the
    first reading at or after its start; for statistics, the difference of two such readings."""
    at: dict[tuple[str, int], float] = {}
    for s in sorted(samples, key=lambda s: s.ts_ms):
        meter, _, metric = METERS[s.device_id]
        start = (s.ts_ms - to_ms(START)) // (every_min * MINUTE)
        at.setdefault((meter, start), s.values[metric])
    out = {}
    for (meter, n), value in at.items():
        if statistic:
            if (meter, n + 1) in at:
                out[(meter, stamp(n * every_min))] = round(at[(meter, n + 1)] - value, 3)
        else:
            out[(meter, stamp(n * every_min))] = round(value, 3)
    return out


def stamp(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y%m%d%H%M%S")


def received(emulator: PlatformEmulator, statistic: bool) -> dict[tuple[str, str], float]:
    return {(r.meter, r.time): r.value for r in emulator.readings if (r.parser == "yes") == statistic}


def operations(emulator: PlatformEmulator, since: str, before: str) -> set[str]:
    """How the readings of these periods went: on schedule (report) or late (continuous)."""
    return {r.operation for r in emulator.readings if r.parser == "no" and since <= r.time < before}


@pytest.fixture
async def emulator() -> AsyncIterator[PlatformEmulator]:
    platform = PlatformEmulator(AUTH, AES, "330201A001", "01", aes_iv=IV)
    await platform.start()
    yield platform
    if platform._server is not None:
        await platform.stop()


def counter(counters: Counters, name: str, **labels: str) -> float:
    return counters.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("cipher", "padding"), [("cbc", "pkcs7"), ("cbc", "zero"), ("ecb", "pkcs7")])
async def test_login_heartbeat_and_data_acknowledged(tmp_path: Path, emulator: PlatformEmulator,
                                                     cipher: str, padding: str) -> None:
    emulator.mode, emulator.padding = cipher, padding  # type: ignore[assignment]
    clock = ManualClock(START + timedelta(hours=2))
    counters = Counters()
    config = site(tmp_path, emulator.port, cipher=cipher, padding=padding, heartbeat_s=0.05)
    assert config.platform is not None
    sink = PlatformSink(config.platform, config, counters, clock)
    beating = asyncio.create_task(sink.heartbeat())
    try:
        samples = readings(0, 125)
        await sink.write(samples[:30], [Event("em-main", 0, "x", {})])
        await sink.write(samples[30:], [])
        await until(lambda: emulator.heartbeats >= 2)
    finally:
        beating.cancel()
        await sink.close()
    assert emulator.problems == []
    assert emulator.logins == 1
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)
    assert received(emulator, statistic=True) == expected(samples, 60, statistic=True)
    assert len(received(emulator, statistic=True)) == 2 * 2  # two whole hours, two meters
    # At two o'clock, midnight's readings are late (re-sent data); a quarter to two's are not.
    assert operations(emulator, stamp(0), stamp(15)) == {"continuous"}
    assert operations(emulator, stamp(105), stamp(120)) == {"report"}
    assert counter(counters, "facility_platform_messages_total", kind="report") > 0


async def test_a_provincial_variant_is_settings(tmp_path: Path, emulator: PlatformEmulator) -> None:
    """Renamed messages (after Ningbo's), zero padding, lengths little-endian: the same sink."""
    words = {"id_validate": "Login", "request": "GetUUID", "heart_beat": "SendHeartBeat", "data": "SendMeterData",
             "report": "Send", "report_ack": "SendAck", "pass": "OK"}
    emulator.names, emulator.padding, emulator.byte_order = words, "zero", "<"
    config = site(tmp_path, emulator.port, padding="zero", length_order="little", heartbeat_s=0.05,
                  names={"passed" if k == "pass" else k: v for k, v in words.items()})
    assert config.platform is not None
    sink = PlatformSink(config.platform, config, Counters(), ManualClock(START + timedelta(minutes=30)))
    beating = asyncio.create_task(sink.heartbeat())
    samples = readings(0, 30)
    try:
        await sink.write(samples, [])
        await until(lambda: emulator.heartbeats >= 1)
    finally:
        beating.cancel()
        await sink.close()
    assert emulator.problems == []
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)


async def test_an_outage_of_hours_is_delivered_after_once_and_in_order(tmp_path: Path,
                                                                       emulator: PlatformEmulator) -> None:
    """Readings of seven hours of event time (the clock moves with them): the platform is away
    for six of them; the spool keeps what it did not acknowledge and the writer sends it, in
    order, when it is back; nothing is sent twice, even the batch it failed in."""
    clock = ManualClock(START)
    counters = Counters()
    config = site(tmp_path, emulator.port)
    assert config.platform is not None
    sink = PlatformSink(config.platform, config, counters, clock)
    spool = Spool(tmp_path / "spool.db", [sink.name], max_messages=100_000, max_age_ms=31 * 86_400_000,
                  rejected_keep=100)
    on_spool = SpoolThread(counters)
    writer = SinkWriter(sink, spool, on_spool, 40, counters, clock)
    running = asyncio.create_task(writer.run())
    samples = readings(0, 7 * 60 + 5)

    async def feed(first: int, last: int) -> None:
        batch = [s for s in samples if first <= (s.ts_ms - to_ms(START)) // MINUTE < last]
        clock.set(START + timedelta(minutes=last))
        await on_spool.write(spool.append, [(s.ts_ms, s) for s in batch], [], {"mqtt": len(batch)})
        writer.wake()

    try:
        await feed(0, 61)
        await until(lambda: len(spool) == 0)
        await emulator.stop()
        for hour in range(1, 7):  # six hours away, an hour of readings at a time
            await feed(hour * 60 + 1, hour * 60 + 61)
        await until(lambda: "unreachable" in writer.health.last_error)
        assert len(spool) > 0
        await emulator.start()  # back, on the same port
        await feed(7 * 60 + 1, 7 * 60 + 10)
        await until(lambda: len(spool) == 0, within_s=20)
    finally:
        running.cancel()
        await sink.close()
        on_spool.close()
        spool.close()
    assert emulator.problems == []
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)
    assert received(emulator, statistic=True) == expected(samples, 60, statistic=True)
    assert len(received(emulator, statistic=False)) == 2 * (7 * 4 + 1)
    assert operations(emulator, stamp(75), stamp(6 * 60)) == {"continuous"}
    assert operations(emulator, stamp(7 * 60), stamp(7 * 60 + 15)) == {"report"}
    assert counter(counters, "facility_platform_failures_total", reason="unreachable") > 0
    assert writer.health.ok


async def test_a_restarted_gateway_sends_nothing_twice(tmp_path: Path, emulator: PlatformEmulator) -> None:
    clock = ManualClock(START + timedelta(hours=1))
    config = site(tmp_path, emulator.port)
    assert config.platform is not None
    samples = readings(0, 61)
    first = PlatformSink(config.platform, config, Counters(), clock)
    await first.write(samples[:10], [])
    await first.close()
    again = PlatformSink(config.platform, config, Counters(), clock)  # what it sent, read from the data folder
    await again.write(samples, [])  # offered again from the start, as a spool whose cursor did not move does
    await again.close()
    assert emulator.problems == []
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)


@pytest.mark.parametrize("damage", ["{not json", '{"raw": {"em-main": "x"}}', "[]"])
async def test_an_unreadable_record_of_what_was_sent_does_not_stop_the_sink(
        tmp_path: Path, emulator: PlatformEmulator, damage: str) -> None:
    (tmp_path / "platform.json").write_text(damage)
    config = site(tmp_path, emulator.port)
    assert config.platform is not None
    sink = PlatformSink(config.platform, config, Counters(), ManualClock(START + timedelta(minutes=30)))
    samples = readings(0, 30)
    await sink.write(samples, [])
    await sink.close()
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)


async def test_a_wrong_key_is_refused_with_a_clear_error_and_counted(tmp_path: Path,
                                                                     emulator: PlatformEmulator) -> None:
    config = site(tmp_path, emulator.port, auth_key="not-the-right-key")
    assert config.platform is not None
    counters = Counters()
    sink = PlatformSink(config.platform, config, counters, ManualClock(START))
    for _ in range(2):
        with pytest.raises(TransientSinkError, match=r"refused the login of gateway 01.*auth_key"):
            await sink.write(readings(0, 20), [])
    await sink.close()
    assert emulator.refused == 2
    assert emulator.readings == []
    assert counter(counters, "facility_platform_logins_refused_total") == 2


@pytest.mark.parametrize(("misbehave", "reason"), [("garbage", "garbage"), ("silent", "timeout"),
                                                   ("hang_up", "closed")])
async def test_nothing_the_platform_sends_stops_the_gateway(tmp_path: Path, emulator: PlatformEmulator,
                                                            misbehave: str, reason: str) -> None:
    config = site(tmp_path, emulator.port, answer_timeout_s=0.3)
    assert config.platform is not None
    counters = Counters()
    sink = PlatformSink(config.platform, config, counters, ManualClock(START + timedelta(hours=1)))
    samples = readings(0, 40)
    emulator.misbehave = misbehave  # type: ignore[assignment]
    with pytest.raises(TransientSinkError, match=f"platform {reason}"):
        await sink.write(samples, [])
    assert counter(counters, "facility_platform_failures_total", reason=reason) == 1
    emulator.misbehave = "none"
    await sink.write(samples, [])  # the same batch again, as the spool offers it
    await sink.close()
    assert emulator.problems == []
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)


def test_the_site_file_names_a_meter_the_site_has(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"platform\.meters\.tap: .*no device 'tap'"):
        site(tmp_path, 1, meters={"tap": {"id": "W9", "coding": "02000"}})
    with pytest.raises(ConfigError, match="16 bytes"):
        site(tmp_path, 1, aes_key="short")
    with pytest.raises(ConfigError, match="whole number of raw periods"):
        site(tmp_path, 1, raw_every_min=15, statistics_every_min=50)


async def test_the_gateway_uploads_what_it_takes_in(tmp_path: Path, emulator: PlatformEmulator) -> None:
    """The whole path: readings taken in over HTTP, spooled, sent by the gateway's writer for the
    platform, its heartbeat running as one of the gateway's tasks."""
    clock = ManualClock(START + timedelta(minutes=95))
    samples = readings(0, 95)
    async with Gateway(site(tmp_path, emulator.port, heartbeat_s=0.05), clock, mqtt=False) as gw:
        for s in samples:
            payload = json.dumps({"device_id": s.device_id, "ts": s.ts_ms / 1000, **s.values}).encode()
            assert gw.ingestor.accept_named("http", payload, to_ms(clock.now())) is None
        await until(lambda: len(received(emulator, statistic=False)) == len(expected(samples, 15, statistic=False)))
        await until(lambda: emulator.heartbeats >= 2)
        assert gw.health()["platform"] == {"state": "ok"}
    assert emulator.problems == []
    assert received(emulator, statistic=False) == expected(samples, 15, statistic=False)
    assert received(emulator, statistic=True) == expected(samples, 60, statistic=True)


def test_a_spool_that_keeps_less_than_30_days_is_warned_of(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def warnings(spool: dict[str, float]) -> list[str]:
        caplog.clear()
        config = site(tmp_path, 1, spool=spool)
        assert config.platform is not None
        PlatformSink(config.platform, config, Counters(), ManualClock(START))
        return [r.getMessage() for r in caplog.records if "spool.max_age_h" in r.getMessage()]

    [warning] = warnings({})  # the default: a week
    assert "168 hours" in warning
    assert warnings({"max_age_h": 720}) == []
