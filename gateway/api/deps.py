"""The parts of the running gateway that routes use, one typed dependency each.

A route names what it reads or changes (`store: StoreDep`, `alerts: AlertsDep`), never the
whole `Gateway`: this module is the only one in the API that knows the application object
(`request.app.state.gateway`, put there by `create_app`'s lifespan). The dependencies are
`async`: a sync one would wait for a thread-pool slot on every request, for an attribute read.

The auth store and the clock of the access checks come from gateway/api/access.py
(`AuthStoreDep`, `NowMs`), which also serves apps without a gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from gateway.alerting.alerts import AlertStore
from gateway.alerting.work_orders import WorkOrders
from gateway.canteen.samples import SampleRegister
from gateway.clock import Clock
from gateway.config import SiteConfig
from gateway.config.editor import SettingsEditor
from gateway.counters import Counters
from gateway.device_state import DeviceStates
from gateway.discovery.inbox import DiscoveryInbox
from gateway.ingest.pipeline import IngestBuffer, Ingestor
from gateway.live import LiveBus
from gateway.notify.notifier import Notifier
from gateway.reports.checks import ManualChecks
from gateway.reports.disclosure import DisclosureNotes
from gateway.reports.safety import Sources
from gateway.reports.sweeps import SweepStore
from gateway.reports.uv_care import UvCare
from gateway.rules.learned import LearnedStore
from gateway.runtime import Gateway
from gateway.schedule.patrols import FirePatrols
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.spool.store import Spool
from gateway.storage.readings import ReadingStore

# Each part's state, `ok` or what is wrong with it (`Gateway.health`).
HealthCheck = Callable[[], dict[str, dict[str, str]]]


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _site(request: Request) -> SiteConfig:
    return _gateway(request).site


async def _clock(request: Request) -> Clock:
    return _gateway(request).clock


async def _store(request: Request) -> ReadingStore:
    return _gateway(request).store


async def _states(request: Request) -> DeviceStates:
    return _gateway(request).states


async def _alerts(request: Request) -> AlertStore:
    return _gateway(request).alerts


async def _work_orders(request: Request) -> WorkOrders:
    return _gateway(request).work_orders


async def _calendar(request: Request) -> SchoolCalendar:
    return _gateway(request).calendar


async def _roster(request: Request) -> Roster:
    return _gateway(request).roster


async def _settings(request: Request) -> SettingsEditor:
    return _gateway(request).settings


async def _notifier(request: Request) -> Notifier:
    return _gateway(request).notifier


async def _learned(request: Request) -> LearnedStore:
    return _gateway(request).learned


async def _checks(request: Request) -> ManualChecks:
    return _gateway(request).checks


async def _sweeps(request: Request) -> SweepStore:
    return _gateway(request).sweeps


async def _samples(request: Request) -> SampleRegister:
    return _gateway(request).samples


async def _uv_care(request: Request) -> UvCare:
    return _gateway(request).uv_care


async def _disclosures(request: Request) -> DisclosureNotes:
    return _gateway(request).disclosures


async def _patrols(request: Request) -> FirePatrols:
    return _gateway(request).patrols


async def _live(request: Request) -> LiveBus:
    return _gateway(request).live


async def _discovery(request: Request) -> DiscoveryInbox:
    return _gateway(request).discovered


async def _ingestor(request: Request) -> Ingestor:
    return _gateway(request).ingestor


async def _buffer(request: Request) -> IngestBuffer:
    return _gateway(request).buffer


async def _spool(request: Request) -> Spool:
    return _gateway(request).spool


async def _counters(request: Request) -> Counters:
    return _gateway(request).counters


async def _health(request: Request) -> HealthCheck:
    return _gateway(request).health


async def _report_sources(request: Request) -> Sources:
    return _gateway(request)


def _local_day(day: Annotated[date | None, Query(alias="date", description="a local date; default today")] = None,
               ) -> date | None:
    """A day of the site's calendar asked for in a query: between 1971 and 9998, as the calendar's."""
    if day is not None and not date(1971, 1, 1) <= day <= date(9998, 12, 31):
        raise HTTPException(422, "date must lie between 1971 and 9998")
    return day


LocalDayDep = Annotated[date | None, Depends(_local_day)]
SiteDep = Annotated[SiteConfig, Depends(_site)]
ClockDep = Annotated[Clock, Depends(_clock)]
# The readings and events (SQLite); the auth store is `access.AuthStoreDep`.
StoreDep = Annotated[ReadingStore, Depends(_store)]
StatesDep = Annotated[DeviceStates, Depends(_states)]
AlertsDep = Annotated[AlertStore, Depends(_alerts)]
WorkOrdersDep = Annotated[WorkOrders, Depends(_work_orders)]
CalendarDep = Annotated[SchoolCalendar, Depends(_calendar)]
RosterDep = Annotated[Roster, Depends(_roster)]
SettingsDep = Annotated[SettingsEditor, Depends(_settings)]
NotifierDep = Annotated[Notifier, Depends(_notifier)]
# What the rules know of each device (a lamp's minutes run today, a circuit's base load).
ChecksDep = Annotated[ManualChecks, Depends(_checks)]
LearnedDep = Annotated[LearnedStore, Depends(_learned)]
SweepsDep = Annotated[SweepStore, Depends(_sweeps)]
# The 留样 register.
SamplesDep = Annotated[SampleRegister, Depends(_samples)]
UvCareDep = Annotated[UvCare, Depends(_uv_care)]
DisclosuresDep = Annotated[DisclosureNotes, Depends(_disclosures)]
# The fire patrols' records (消防巡查).
PatrolsDep = Annotated[FirePatrols, Depends(_patrols)]
LiveDep = Annotated[LiveBus, Depends(_live)]
# The 新设备 inbox: devices heard announcing themselves.
DiscoveryDep = Annotated[DiscoveryInbox, Depends(_discovery)]
IngestorDep = Annotated[Ingestor, Depends(_ingestor)]
# The ingest buffer, to wait for what was accepted to be durable.
BufferDep = Annotated[IngestBuffer, Depends(_buffer)]
# The spool, with its log of rejected messages.
SpoolDep = Annotated[Spool, Depends(_spool)]
CountersDep = Annotated[Counters, Depends(_counters)]
HealthDep = Annotated[HealthCheck, Depends(_health)]
# For the safety record's routes, which read most of these (gateway/reports/safety.py).
ReportSourcesDep = Annotated[Sources, Depends(_report_sources)]
