"""`facility-gateway demo`: the whole system in one process with no external services.

The embedded amqtt broker starts first, then the gateway (SQLite in the data folder) and the
API. The simulated kindergarten (simulators/kindergarten.yaml) then backfills about five
weeks of history straight into the ingest path (same decoding and validation as MQTT, but
without the broker's per-message cost), in the background with progress in the log, and
finally runs live in real time: each device in its own format, over MQTT to the embedded
broker (native JSON, Zigbee2MQTT, Tasmota, Shelly) or as a simulated Modbus or DL/T 645 meter
that the gateway polls. The history goes in as native JSON whatever the device's format: the
vendor formats carry no event time, and history is history.

The simulated meters listen on free ports, which the demo's copy of the site file names, so
that two demos, or a stale one, never collide. They answer once the simulation runs live: a
reading polled during the backfill would be stamped with the time of the poll and reach the
rules before the history that precedes it. Until then the gateway logs them as unreachable.

The simulation is deterministic from an anchor time kept in the data folder, so a restart
regenerates the same history, skips what is stored already and carries meter totals on.

A normal kindergarten raises no alerts, which would leave half of the dashboard empty, so
the demo's history has a few things go wrong in its last days (`demo_faults`), and one leak
is still running when the demo goes live.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from datetime import date, datetime, time, timedelta
from itertools import chain
from pathlib import Path

from fastapi import FastAPI

from gateway import config
from gateway.app import create_app
from gateway.auth.store import AuthStore
from gateway.cli import demo_records
from gateway.clock import Clock, SystemClock, to_ms
from gateway.config.auth import Role
from gateway.device_state import DeviceStates
from gateway.ingest.broker import embedded_broker
from gateway.ingest.pipeline import Ingestor
from gateway.runtime import Gateway
from gateway.schedule.school_calendar import SchoolCalendar
from simulators import DEMO_SITE
from simulators.faults import DoorHeldOpen, ExtraLoad, Fault, FloorWet, FridgeTemperature, LampSkipped, Leak, inject
from simulators.meters import on_free_ports
from simulators.model import SimMessage, SiteSimulation
from simulators.publish import run as publish
from simulators.publish import timeline

log = logging.getLogger(__name__)

SEED = 1
# The demo's ready accounts, one for each of the school's people on its duty roster (their
# display names are the roster's), and a teacher who may only look. One password for all: a
# demo on a laptop, never a school's.
DEMO_PASSWORD = "sunflower-demo"  # noqa: S105 (printed in the banner on purpose)
DEMO_ACCOUNTS: dict[str, tuple[Role, str]] = {
    "logistics-li": (Role.ADMIN, "后勤主任 head of logistics"),
    "principal-zhao": (Role.ADMIN, "园长 principal"),
    "guard-wang": (Role.STAFF, "门卫 gate guard"),
    "canteen-chen": (Role.STAFF, "食堂负责人 canteen manager"),
    "doctor-zhou": (Role.STAFF, "保健医生 health doctor"),
    "plumber-liu": (Role.STAFF, "水电工 plumber and electrician"),
    "carpenter-zhang": (Role.STAFF, "木工 carpenter"),
    "teacher-sun": (Role.VIEWER, "教师 a teacher, who may only look"),
}
DEMO_NAMES = {"teacher-sun": "孙老师"}
PROGRESS_EVERY = 0.05  # log progress every 5 % of the backfill


def demo_site(data_dir: Path, mqtt_port: int, site_file: Path = DEMO_SITE) -> config.SiteConfig:
    """The site file (the demo kindergarten's by default) on the demo's broker and folder, its
    simulated meters on free ports, readable without a login."""
    site = on_free_ports(config.load(site_file))
    return site.model_copy(
        update={
            "mqtt": site.mqtt.model_copy(
                update={"url": f"mqtt://127.0.0.1:{mqtt_port}", "client_id": "facility-gateway-demo"}
            ),
            "storage": site.storage.model_copy(update={"data_dir": data_dir}),
            # A demo is for looking around: reading needs no login (writing still does).
            "auth": site.auth.model_copy(update={"public_read": True}),
        }
    )


def demo_app(data_dir: Path, mqtt_port: int, backfill_days: float, clock: Clock | None = None,
             site_file: Path = DEMO_SITE) -> FastAPI:
    # amqtt logs every session state transition at INFO
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    site = demo_site(data_dir, mqtt_port, site_file)
    clock = clock or SystemClock()

    @asynccontextmanager
    async def simulation(gateway: Gateway) -> AsyncIterator[None]:  # a `Companion` (gateway/app.py)
        await asyncio.to_thread(demo_accounts, gateway.auth, site, to_ms(clock.now()))
        # Said before the gateway's first poll, which it precedes (nothing is awaited in between).
        polled = [d.id for d in site.devices if d.source is not None and d.source.bus_key() is not None]
        if polled:
            log.info("demo: the simulated meters (%s) answer once the history is written; until then the "
                     "gateway cannot reach them", ", ".join(polled))
        task = asyncio.create_task(_simulate(site, gateway.calendar, gateway.states, gateway.ingestor, clock,
                                             mqtt_port, backfill_days, lambda first: demo_records.fill(gateway, first)))
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return create_app(site, clock, before=[lambda: embedded_broker("127.0.0.1", mqtt_port)], after=[simulation])


def demo_accounts(auth: AuthStore, site: config.SiteConfig, now_ms: int) -> None:
    """Adds the accounts of `DEMO_ACCOUNTS` that the data folder does not have yet."""
    roster = {p.id: p.name for p in site.duty.people}
    have = {u.name for u in auth.list_users()}
    for login, (role, _) in DEMO_ACCOUNTS.items():
        if login not in have:
            auth.add_user(login, role, DEMO_PASSWORD, "system", now_ms,
                          display_name=roster.get(login) or DEMO_NAMES.get(login, ""))


def banner(host: str, port: int, mqtt_port: int, site_file: Path, data_dir: Path, site_id: str) -> str:
    """What the demo prints when it starts: where to look, who to log in as, and which site
    file and data folder it uses."""
    url = f"http://{host}:{port}/"
    accounts = "\n".join(f"    {login:<16} {what}" for login, (_, what) in DEMO_ACCOUNTS.items())
    return (
        f"\n  园区设施监测网关 演示 / Facility gateway demo\n"
        f"  仪表盘 / Dashboard:    {url}\n"
        f"  API 文档 / API docs:   {url}docs\n"
        f"  健康 / Health:         {url}health\n"
        f"  MQTT:                  mqtt://127.0.0.1:{mqtt_port} (facility/{site_id}/#)\n"
        f"  站点文件 / Site file:  {site_file.resolve()}\n"
        f"  数据目录 / Data:       {data_dir.resolve()}\n"
        f"  (设置在仪表盘「设置」中修改后保存在数据目录；站点文件只在第一次启动时导入。\n"
        f"   Settings changed in the dashboard are kept in the data folder; the site file seeds them once.)\n\n"
        f"  演示账号 / Demo accounts (密码 / password: {DEMO_PASSWORD}):\n{accounts}\n"
    )


def _anchor(data_dir: Path, now: datetime, backfill_days: float) -> datetime:
    """The simulation's start, fixed on first run so restarts replay the same history."""
    marker = data_dir / "demo.json"
    if marker.exists():
        return datetime.fromisoformat(json.loads(marker.read_text())["anchor"])
    anchor = now - timedelta(days=backfill_days)
    marker.write_text(json.dumps({"anchor": anchor.isoformat()}))
    return anchor


def demo_faults(site: config.SiteConfig, calendar: SchoolCalendar, today: date) -> list[Fault]:
    """What goes wrong in the days before `today` (the demo's first start), local times:
    a kitchen leak two nights ago (a plumbing work order, overdue by now) that wets the floor
    under the leak sensor until the cooks mop up, lights left on in the teaching building last
    night, the kitchen door held open after closing and the sample fridge warm for 40 minutes
    yesterday, the nap room's UV lamp skipped on the last school day, and a leak at the service
    building's main meter since midnight that is still on when the demo goes live (the closing
    board's water check)."""
    tz = site.tz

    def at(day: date, hh_mm: str) -> datetime:
        return datetime.combine(day, time.fromisoformat(hh_mm), tz)

    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    school_day = next(today - timedelta(days=n) for n in range(1, 15)
                      if calendar.day(today - timedelta(days=n)).school_day)
    return [
        Leak("kitchen-water", at(before, "01:00"), at(before, "04:30"), lpm=1.5),
        FloorWet("kitchen-leak", at(before, "01:20"), at(before, "06:40")),
        ExtraLoad("teaching-power", at(yesterday, "19:00"), at(today, "06:30"), watts=1200),
        DoorHeldOpen("kitchen-door", at(yesterday, "18:20"), at(yesterday, "19:05")),
        FridgeTemperature("sample-fridge", at(yesterday, "13:00"), at(yesterday, "13:40"), celsius=9.5),
        LampSkipped("uv-nap", school_day),
        Leak("service-water", at(today, "00:00"), at(today + timedelta(days=2), "00:00"), lpm=0.8),
    ]


async def _simulate(site: config.SiteConfig, calendar: SchoolCalendar, states: DeviceStates, ingestor: Ingestor,
                    clock: Clock, mqtt_port: int, backfill_days: float,
                    then: Callable[[date], Awaitable[None]]) -> None:
    """The history, then (`then`, from its first whole day) the people's records, then live."""
    anchor = _anchor(site.storage.data_dir, clock.now(), backfill_days)
    first_start = calendar.local_date(to_ms(anchor + timedelta(days=backfill_days)))
    # One stream from the anchor, history and live alike: a fault that carries a counter
    # correction on (a skipped lamp's tube hours) sees its device from before it begins, so the
    # counters never jump back where the history ends or the gateway restarts.
    stream = inject(timeline(SiteSimulation(site, seed=SEED), anchor, None),
                    demo_faults(site, calendar, first_start), site)
    stored = [states.get(d.id).last_seen_ms or 0 for d in site.devices]
    resume_ms = max(stored, default=0)
    until, rest = await asyncio.to_thread(_backfill, ingestor, stream, anchor, resume_ms, clock)
    log.info("demo: history complete up to %s; the simulated kindergarten now runs live", until.isoformat())
    await then(calendar.local_date(to_ms(anchor)) + timedelta(days=1))
    await publish(site, f"mqtt://127.0.0.1:{mqtt_port}", start=until, messages=rest)


def _backfill(ingestor: Ingestor, stream: Iterator[SimMessage], start: datetime, resume_ms: int,
              clock: Clock) -> tuple[datetime, Iterator[SimMessage]]:
    """Feeds the stream to the ingest path until it has caught up with the clock; returns
    when that was and the rest of the stream. Messages already stored (before `resume_ms`)
    are generated, to keep totals running, but not ingested again. Runs on a worker thread:
    the ingest buffer may make it wait."""
    accept = ingestor.accept
    total_s = max((clock.now() - start).total_seconds(), 1.0)
    next_report = PROGRESS_EVERY
    sent = 0
    for msg in stream:
        now = clock.now()
        if msg.ts > now:
            return now, chain([msg], stream)
        ts_ms = to_ms(msg.ts)
        if ts_ms <= resume_ms:
            continue
        payload = json.dumps(msg.payload, ensure_ascii=False).encode()
        accept("replay", msg.device_id, msg.channel, payload, to_ms(now))
        sent += 1
        done = (msg.ts - start).total_seconds() / total_s
        if done >= next_report:
            log.info("demo: backfilling history %3.0f%% (%d messages, at %s)", done * 100, sent,
                     msg.ts.isoformat(timespec="minutes"))
            next_report += PROGRESS_EVERY
    return clock.now(), iter(())
