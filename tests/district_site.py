"""A district of three schools in ONE SQLite state database, each with its readings in a file
of its own (written through `SqliteStore.write`), alerts raised and work orders opened
through their stores, daily records signed through the checks store; and the district's app
(its router, its accounts, the dashboard's static files) as the district process wires it.

October 2026 is a whole month by then (the clock is on 3 November): every meter draws a
constant load, so any span's use is its hours times the load, and the figures can be worked
out here from what was written, independently of the report's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import dashboards
from devices.base import Sample
from gateway.alerting.alerts import AlertStore, Notice
from gateway.alerting.severity import Severity
from gateway.alerting.trade import Trade
from gateway.alerting.work_orders import WorkOrders
from gateway.api.auth import router as auth_router
from gateway.api.dashboard import asset_version
from gateway.api.district import router as district_router
from gateway.auth.audit import DISTRICT, AuditTrail
from gateway.auth.people import People
from gateway.auth.store import AuthStore
from gateway.clock import Clock, ManualClock, to_ms
from gateway.config import SiteConfig, parse
from gateway.config.auth import AuthSettings, Role
from gateway.reports.checks import ManualChecks
from gateway.rules.base import Finding
from gateway.rules.engine import Evidence
from gateway.rules.power import LOAD_AFTER_HOURS
from gateway.rules.water import WATER_LEAK
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.sqlite import SqliteStore
from gateway.storage.state import StateDatabase, sqlite_url

TZ: Final = ZoneInfo("Asia/Shanghai")
NOW: Final = datetime(2026, 11, 3, 10, 0, tzinfo=TZ)
MONTH: Final = "2026-10"
HOURS: Final = 31 * 24  # October, in China (no clock change)
STEP: Final = timedelta(minutes=15)
PASSWORD: Final = "district-test-pw"
WASTE_KWH: Final = 12.5  # the after-hours load alert of the east school, begun in October


@dataclass(frozen=True)
class School:
    id: str
    name: str
    kind: str
    area_m2: float
    people: int
    kw: float  # October 2026
    kw_last_year: float | None  # October 2025; None: no readings then
    m3_per_h: float
    signed_days: int  # of October's 31, from the 1st


SCHOOLS: Final = (
    School("east", "东城小学", "school", 2000, 400, 10.0, 8.0, 0.5, 31),
    School("west", "西城幼儿园", "kindergarten", 1000, 150, 9.0, None, 0.25, 10),
    School("north", "北城中学", "school", 4000, 900, 12.0, 12.0, 1.0, 30),
)

SITE = """\
id: {id}
name: {name}
kind: {kind}
timezone: Asia/Shanghai
buildings:
  - id: main
    name: 主楼
    floor_area_m2: {area}
    headcount: {people}
    rooms:
      - {{id: plant, name: 配电间, type: plant}}
devices:
  - {{id: em-{id}, kind: electricity_meter, room: plant, name: 总电表, interval_s: 900}}
  - {{id: wm-{id}, kind: water_meter, room: plant, name: 总水表, interval_s: 900}}
storage: {{data_dir: "{data_dir}"}}
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""


def ms(when: datetime) -> int:
    return to_ms(when)


@dataclass
class Sources:
    """`gateway.district.view.DistrictSources` as the district process would give it."""

    db: StateDatabase
    clock: Clock
    configs: list[SiteConfig]
    folder: Path
    stores: dict[str, SqliteStore] = field(default_factory=dict)

    def sites(self) -> list[SiteConfig]:
        return list(self.configs)

    def readings(self, site_id: str) -> SqliteStore:
        if site_id not in self.stores:
            self.stores[site_id] = SqliteStore(self.folder / f"{site_id}-readings.db")
        return self.stores[site_id]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


@dataclass
class District:
    sources: Sources
    clock: ManualClock
    app: FastAPI
    accounts: AuthStore  # the district's

    def site(self, site_id: str) -> SiteConfig:
        return next(s for s in self.sources.configs if s.id == site_id)


def _month_of_readings(store: SqliteStore, school: School, year: int, kw: float) -> None:
    """Readings every 15 minutes whose increases fall in October of `year`: the first at
    30 September 23:45 (its own increase is September's), the last at 31 October 23:45."""
    at = datetime(year, 9, 30, 23, 45, tzinfo=TZ)
    last = datetime(year, 10, 31, 23, 45, tzinfo=TZ)
    kwh, m3 = 1000.0, 100.0
    samples = []
    while at <= last:
        samples.append(Sample(f"em-{school.id}", ms(at), {"energy_kwh": kwh}))
        samples.append(Sample(f"wm-{school.id}", ms(at), {"volume_m3": m3}))
        kwh += kw * 0.25
        m3 += school.m3_per_h * 0.25
        at += STEP
    store.write(samples, [])


def _finding(rule: str, device: str, severity: Severity, since: datetime, facts: dict[str, float | str]) -> Finding:
    return Finding(rule, device, True, severity, ms(since), ms(since + timedelta(hours=2)), "测试告警", "test alert",
                   facts=facts)


def build(folder: Path) -> Iterator[District]:
    """The district, its app, and what each school has in the state database."""
    clock = ManualClock(NOW)
    db = StateDatabase(sqlite_url(folder / "state.db"))
    configs = [parse(SITE.format(id=s.id, name=s.name, kind=s.kind, area=s.area_m2, people=s.people,
                                 data_dir=folder / s.id), f"{s.id}.yaml") for s in SCHOOLS]
    sources = Sources(db, clock, configs, folder)
    notices: list[Notice] = []
    for school, site in zip(SCHOOLS, configs, strict=True):
        store = sources.readings(site.id)
        _month_of_readings(store, school, 2026, school.kw)
        if school.kw_last_year is not None:
            _month_of_readings(store, school, 2025, school.kw_last_year)
        audit = AuditTrail(db, site.id)
        cal = SchoolCalendar(site)
        alerts = AlertStore(db, site, audit, Roster(site, cal), clock, notices.append)
        checks = ManualChecks(db, site.id, audit, clock)
        for day in range(1, school.signed_days + 1):
            checks.sign(date(2026, 10, day), "inspector", f"guard-{site.id}")
        if site.id == "east":
            alerts.apply(_finding(LOAD_AFTER_HOURS.id, "em-east", Severity.MINOR, datetime(2026, 10, 14, 20, tzinfo=TZ),
                                  {"waste_kwh": WASTE_KWH, "cost_yuan": 8.0, "minutes": 120.0}), Evidence())
            alerts.apply(_finding(WATER_LEAK.id, "wm-east", Severity.CRITICAL, datetime(2026, 11, 3, 2, tzinfo=TZ),
                                  {"loss_m3": 0.4, "cost_yuan": 2.0, "minutes": 120.0}), Evidence())
        if site.id == "west":
            orders = WorkOrders(db, site, audit, clock, folder / "photos")
            orders.open_by_hand("li", Trade.WATER, "main", "plant", ("修水管", "Fix the pipe"), ms(NOW) + 3_600_000,
                                "sweep")
    clock.advance(timedelta(hours=2))  # the west school's order is past due now
    accounts = AuthStore(db, AuthSettings(), AuditTrail(db, DISTRICT))
    accounts.add_user("bureau-zhou", Role.VIEWER, PASSWORD, "setup", ms(NOW), "周科长")
    east = AuthStore(db, AuthSettings(), AuditTrail(db, "east"))
    east.add_user("principal-east", Role.ADMIN, PASSWORD, "setup", ms(NOW), "东城校长")

    app = FastAPI()
    app.state.district, app.state.auth, app.state.clock = sources, accounts, clock
    app.state.people = People(accounts, [])
    app.include_router(auth_router)
    app.include_router(district_router)
    app.mount(f"/static/{asset_version()}", StaticFiles(directory=dashboards.STATIC), name="static")
    try:
        yield District(sources, clock, app, accounts)
    finally:
        sources.close()
        db.close()
