"""The gateway: its parts wired together, started and stopped in one place."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import Self

from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from devices.base import Event, Sample
from gateway.alerting.alerts import AlertStore, Notice, Transition
from gateway.alerting.work_orders import WorkOrders
from gateway.auth.audit import AuditTrail
from gateway.auth.people import People
from gateway.auth.store import AuthStore
from gateway.canteen.samples import SampleRegister
from gateway.clock import Clock, to_ms
from gateway.config import SiteConfig
from gateway.config.editor import SettingsEditor
from gateway.config.stored import ConfigStore
from gateway.counters import Counters
from gateway.device_state import DeviceStates
from gateway.discovery.inbox import DiscoveryInbox
from gateway.discovery.listener import Discovery
from gateway.district.ownership import Hold, Ownership, StoppedStandingBy, lease_gauges, replica_id
from gateway.ingest.mqtt import MqttIngest
from gateway.ingest.pipeline import IngestBuffer, Ingestor
from gateway.ingest.poll import BusPoller, pollers
from gateway.live import LiveBus
from gateway.notify.notifier import Notifier
from gateway.reports.checks import ManualChecks
from gateway.reports.delivery import ReportDelivery
from gateway.reports.disclosure import DisclosureNotes
from gateway.reports.fire_patrol import PatrolRegister
from gateway.reports.safety import Register
from gateway.reports.sweeps import SweepRegister, SweepStore
from gateway.reports.uv_care import UvCare
from gateway.rules.engine import RuleEngine
from gateway.rules.learned import BaseLoad, LearnedStore
from gateway.rules.power import LoadAfterHoursRule
from gateway.schedule.patrols import FirePatrols
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.sinks.influx import InfluxSink
from gateway.sinks.platform import PlatformSink
from gateway.sinks.sqlite import SqliteSink
from gateway.sinks.writer import Sink, SinkWriter
from gateway.spool.spooler import Spooler
from gateway.spool.store import Spool
from gateway.spool.thread import SpoolThread
from gateway.storage.latest import LatestReadings, as_samples, newer
from gateway.storage.readings import ReadingStore, open_readings
from gateway.storage.state import StateDatabase

log = logging.getLogger(__name__)

Task = Callable[[], Coroutine[None, None, None]]  # a core task of the gateway, started by `_supervised`

RETENTION_EVERY = timedelta(hours=1)
# How often (real time) the watchdog judges silence and deadlines and sends reminders.
WATCH_EVERY_S = 1.0


class Gateway:
    # Made once the event loop runs (`__aenter__`).
    store: ReadingStore
    spool: Spool
    audit: AuditTrail
    auth: AuthStore
    people: People
    work_orders: WorkOrders
    alerts: AlertStore
    checks: ManualChecks
    learned: LearnedStore
    disclosures: DisclosureNotes  # the school's explanations of its quarterly disclosure
    patrols: FirePatrols
    registers: list[Register]  # what people keep in the dashboard that joins the daily record
    sweeps: SweepStore
    samples: SampleRegister  # 留样
    uv_care: UvCare  # UV tubes changed, wiped and tested
    deliveries: ReportDelivery
    discovered: DiscoveryInbox  # the 新设备 inbox
    engine: RuleEngine
    on_spool: SpoolThread
    writers: list[SinkWriter]
    spooler: Spooler
    settings: SettingsEditor  # changes to the school's settings, applied while running
    ownership: Hold  # this replica's lease on the site
    latest: LatestReadings  # the site's newest readings, for a replica that takes it over

    def __init__(self, site: SiteConfig, clock: Clock, *, mqtt: bool = True,
                 stopping: asyncio.Event | None = None, shared: tuple[StateDatabase, Hold] | None = None) -> None:
        """`shared`: one of a district replica's sites, with the replica's state database and
        the lease its runner took; otherwise the gateway opens its own and takes the lease."""
        self._stack = AsyncExitStack()
        self._stopping = stopping or asyncio.Event()  # set by a stop asked for while standing by
        if shared is None:
            self.state = StateDatabase(site.storage.state_database_url)
            self._stack.callback(self.state.close)
            self._hold: Hold | None = None
        else:
            self.state, self._hold = shared
        # The school's settings as kept in the state database (changed in the dashboard), or the
        # file's: gateway/config/stored.py says which wins.
        self.config = ConfigStore(self.state, site.id)
        self._site_file = site.file
        self._start_config = start = self.config.startup(site, to_ms(clock.now()))
        site = start.site
        if start.file_pending:
            log.warning("the site file's school settings differ from those changed in the dashboard since the file "
                        "last seeded them; the dashboard's (version %d) are used. To take the file's, import it in "
                        "the dashboard (设置 → 配置文件), which shows the differences first", start.version)
        self.site = site
        self.clock = clock
        self.counters = Counters()
        self.states = DeviceStates(site, clock)
        # The spooler exists only once the event loop runs (__aenter__), hence the late-bound lambda.
        self.buffer = IngestBuffer(site.ingest.buffer_capacity, on_ready=lambda: self.spooler.wake())  # noqa: PLW0108
        self.ingestor = Ingestor(site, self.buffer)
        self.discovery = Discovery(site, self.counters.registry)
        self.mqtt = MqttIngest(site.mqtt, site.id, self.ingestor, clock, self.discovery) if mqtt else None
        self.influx = InfluxSink(site.influxdb, site) if site.influxdb else None
        self.platform = PlatformSink(site.platform, site, self.counters, clock) if site.platform else None
        self.calendar = SchoolCalendar(site)
        self.roster = Roster(site, self.calendar)
        self.notifier = Notifier(site, self.counters, clock, self.state, self.mqtt.publish if self.mqtt else None)
        self.live = LiveBus(site, self.counters)
        self.counters.gauge("facility_buffer_depth", "Decoded messages waiting for the spool",
                            lambda: len(self.buffer))
        self.counters.gauge("facility_buffer_capacity", "Capacity of the ingest buffer",
                            lambda: self.buffer.capacity)
        self.counters.gauge("facility_spool_messages", "Messages in the spool that some sink still needs",
                            lambda: len(self.spool))
        self.counters.gauge("facility_spool_capacity", "Bound of the spool, in messages",
                            lambda: site.spool.max_messages)
        registry = self.counters.registry
        self._report_counters = (
            Counter("facility_reports_sent", "Scheduled reports delivered, by channel", ["channel"], registry=registry),
            Counter("facility_reports_failed", "Scheduled report deliveries that failed, by channel", ["channel"],
                    registry=registry),
        )
        poll_errors = Counter("facility_poll_errors", "Polls of a meter that got no usable answer, by device and "
                              "reason (connection, timeout, exception)", ["device", "reason"], registry=registry)
        self._poll_errors = poll_errors
        self.pollers = pollers(site, self.ingestor, clock, poll_errors)
        self._poller_tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.failure: str | None = None  # set when a core task died: what died, and why
        self.failed = asyncio.Event()

    async def __aenter__(self) -> Self:
        data_dir = self.site.storage.data_dir
        stack = self._stack
        await self._hold_site()
        self.store = open_readings(self.site, self.state)
        stack.callback(self.store.close)
        self.spool, self.on_spool, self.writers = await outlets(self.site, self.store, self.influx, self.platform,
                                                                self.counters, self.clock, stack)
        self.audit = AuditTrail(self.state, self.site.id)
        self.settings = SettingsEditor(self.config, self.audit, self.clock, lambda: self.site, self.reconfigure,
                                       self._start_config.version, self._start_config.file_pending,
                                       self._site_file)
        self.auth = AuthStore(self.state, self.site.auth, self.audit)
        self.people = People(self.auth, self.site.duty.people)
        self.work_orders = WorkOrders(self.state, self.site, self.audit, self.clock, data_dir / "photos")
        self.alerts = AlertStore(self.state, self.site, self.audit, self.roster, self.clock, self._alerted,
                                 self.work_orders.on_raised)
        self.checks = ManualChecks(self.state, self.site.id, self.audit, self.clock)
        self.learned = LearnedStore(self.state, self.site.id)
        self.disclosures = DisclosureNotes(self.state, self.site.id, self.audit)
        self.discovered = DiscoveryInbox(self.state, self.site.id, self.discovery, self.audit, self.clock)
        self.registers = self._registers()
        self.deliveries = ReportDelivery(self, self.state, self._report_counters)
        self.engine = RuleEngine(self.site, self.calendar, self.alerts.apply)
        self.engine.resume({(a.rule, a.device_id) for a in self.alerts.open_alerts()})
        self._load_rules = self._learning()
        self.counters.accounting(self.spool.totals)
        self.latest = LatestReadings(self.state, self.site.id)
        latest = newer(*await asyncio.gather(asyncio.to_thread(self.store.latest),
                                             asyncio.to_thread(self.latest.read)))
        self.states.seed(latest)
        self.ingestor.seed(latest)
        for sample in as_samples(latest):  # before any live message: see RuleEngine.prime
            self.engine.prime(sample)
        self.spooler = Spooler(self.buffer, self.spool, self.on_spool, self.writers, self.states, self.clock,
                               self.latest, self._committed)
        group = await stack.enter_async_context(asyncio.TaskGroup())
        core: list[tuple[str, Task]] = [
            ("spooler", self.spooler.run), ("retention", self._retention), ("notifier", self.notifier.run),
            ("watchdog", self._watch), ("report delivery", self.deliveries.run),
            ("discovery inbox", self.discovered.run), ("lease", self.ownership.keep),
            *((f"writer {w.sink.name}", w.run) for w in self.writers),
        ]
        if self.store.needs_rollups:
            core.append(("rollups rebuild", self._rebuild_rollups))
        if self.platform is not None:
            core.append(("platform heartbeat", self.platform.heartbeat))
        if (version := self.settings.catch_up()) is not None:  # before any message is taken
            log.info("applied the school's settings of version %d, stored while this replica stood by", version)
        self._start(group, core)
        stack.push_async_callback(self._cancel_tasks)
        stack.callback(self.live.close)
        if self.mqtt is not None:
            self.mqtt.start()
            stack.push_async_callback(asyncio.to_thread, self.mqtt.stop)
        return self

    async def _hold_site(self) -> None:
        """Nothing of the site runs before this replica holds its lease: a standby waits here."""
        if self._hold is not None:
            self.ownership = self._hold
        else:
            replica = self.site.replica
            me = replica_id(replica.id, self.site.storage.data_dir)
            self.ownership = ownership = Ownership(self.state, self.site.id, me, replica.lease_s)
            if await ownership.acquire(self._stopping) is None:
                await self._stack.aclose()
                raise StoppedStandingBy(f"asked to stop while standing by for site {self.site.id}")
        self._stack.callback(self.ownership.release)
        lease_gauges(self.counters, self.ownership)

    def _registers(self) -> list[Register]:
        """What people keep in the dashboard that joins the daily record: each register's
        store, in the state database."""
        self.sweeps = SweepStore(self.state, self.site.id, self.audit, self.clock)
        self.samples = SampleRegister(self.state, self.site, self.calendar, self.audit, self.clock, self.alerts)
        self.uv_care = UvCare(self.state, self.site, self.audit, self.clock, self.alerts, self.store)
        self.patrols = FirePatrols(self.state, self.site, self.calendar, self.audit, self.clock, self.alerts.apply)
        return [SweepRegister(self.sweeps, self.calendar, self.people), self.samples,
                PatrolRegister(self.patrols, self.people), self.uv_care]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def _supervised(self, name: str, run: Task) -> None:
        """Runs a core task; if it dies, the gateway has failed: `/health` says what died and
        `failed` is set, on which the process exits (non-zero) so that its supervisor starts
        it again. The exception is kept here, not left to the task group: that would cancel
        the application's lifespan and leave the API serving with ingest dead. The task's
        coroutine is made here: one made before and cancelled before its first step (a gateway
        stopped at once) would be left never awaited."""
        try:
            await run()
        except Exception as exc:  # the one top-level supervisor of the gateway's tasks
            log.critical("the gateway's %s died; the gateway stops", name, exc_info=exc)
            if self.failure is None:
                self.failure = f"{name}: {type(exc).__name__}: {exc}"[:300]
            self.failed.set()

    async def _cancel_tasks(self) -> None:
        self._group = None
        for task in (*self._tasks, *self._poller_tasks.values()):
            task.cancel()

    def _start(self, group: asyncio.TaskGroup, core: list[tuple[str, Task]]) -> None:
        self._tasks = [group.create_task(self._supervised(name, run), name=name) for name, run in core]
        self._group = group
        self._start_pollers(self.pollers)

    def _start_pollers(self, started: Sequence[BusPoller]) -> None:
        assert self._group is not None
        for p in started:
            self._poller_tasks[p.url] = self._group.create_task(self._supervised(f"poller {p.url}", p.run),
                                                                name=f"poller {p.url}")

    def _learning(self) -> list[tuple[str, LoadAfterHoursRule]]:
        """The circuits whose base load is learned (and saved for every replica's readers). A
        rule that has learned nothing yet — the process started again, or took the site over —
        starts from what was learned before, not from a week of nights without alerts."""
        saved = self.learned.base_loads()
        rules = [(d.id, rule) for d in self.site.devices
                 if (rule := self.engine.rule(d.id, LoadAfterHoursRule)) is not None]
        for device_id, rule in rules:
            if (learned := saved.get(device_id)) is not None and learned.base_w is not None:
                rule.resume_base(learned.base_w)
        return rules

    def reconfigure(self, site: SiteConfig) -> None:
        """Applies the school's changed settings at once, on the event loop's thread: every part
        takes the site as it is now. What is unchanged keeps its state (a device's rules in the
        middle of timing a leak, a channel's queue, a bus being polled); a retired device's open
        alerts end; readings already on their way are stored whatever changed."""
        self.site = site
        self.states.reconfigure(site)
        self.ingestor.reconfigure(site)
        self.discovery.reconfigure(site)
        if self.mqtt is not None:
            self.mqtt.resubscribe()
        if self.influx is not None:
            self.influx.reconfigure(site)
        self.calendar.reconfigure(site)
        self.roster.reconfigure(site)
        self.people.reconfigure(site.duty.people)
        self.notifier.reconfigure(site)
        self.live.reconfigure(site)
        self.alerts.reconfigure(site)
        self.work_orders.reconfigure(site)
        self.samples.reconfigure(site)
        self.uv_care.reconfigure(site)
        self.patrols.reconfigure(site)
        gone = self.engine.reconfigure(site, {(a.rule, a.device_id) for a in self.alerts.open_alerts()})
        now_ms = to_ms(self.clock.now())
        for device_id in gone:
            self.alerts.retire(device_id, now_ms)
        self._load_rules = self._learning()
        self._reconfigure_pollers(site)
        self.live.publish("settings", "settings", {})  # open dashboards fetch the site's names anew

    def _reconfigure_pollers(self, site: SiteConfig) -> None:
        """A bus whose meters changed is polled anew; the others go on."""
        wanted = {p.url: p for p in pollers(site, self.ingestor, self.clock, self._poll_errors)}
        running = {p.url: p for p in self.pollers}
        changed = [url for url, p in running.items() if url not in wanted or not p.same_meters(wanted[url])]
        for url in changed:
            task = self._poller_tasks.pop(url, None)
            if task is not None:
                task.cancel()
        self.pollers = [running[url] if url in running and url not in changed else p for url, p in wanted.items()]
        if self._group is not None:
            self._start_pollers([p for p in self.pollers if p.url not in self._poller_tasks])

    def _committed(self, items: Sequence[tuple[int, Sample | Event]]) -> None:
        """The rules and the dashboards see what the spool holds, in the order it was committed."""
        engine = self.engine
        for received_ms, item in items:
            if isinstance(item, Sample):
                engine.sample(item, received_ms)
            else:
                engine.event(item, received_ms)
        self.live.committed(items)

    def _alerted(self, notice: Notice) -> None:
        if notice.transition is not Transition.UPDATED:  # new figures are for live views, not for people's phones
            self.notifier.submit(notice)
        a = notice.alert
        self.live.publish(f"alert:{a.id}", "alert", {
            "id": a.id, "rule": a.rule, "device": a.device_id, "severity": a.severity, "state": a.state,
            "transition": notice.transition,
        })

    async def _watch(self) -> None:
        """Silence, the 留样 deadlines and the UV lamps' care on the injected clock; reminders and
        escalation; what the rules learned, saved for the readers of every replica."""
        while True:
            now_ms = to_ms(self.clock.now())
            self.engine.tick(now_ms)
            self.patrols.tick()
            self.alerts.tick()
            self.samples.judge(now_ms)
            if self.uv_care.due(now_ms):  # the tubes' hours are read from the readings
                self.uv_care.judge(now_ms, await asyncio.to_thread(self.uv_care.count, now_ms))
            self.learned.save_base_loads(self._base_loads(), now_ms)
            await asyncio.sleep(WATCH_EVERY_S)

    def _base_loads(self) -> dict[str, BaseLoad]:
        return {device_id: BaseLoad(rule.base_w(), rule.limit_w()) for device_id, rule in self._load_rules}

    async def _rebuild_rollups(self) -> None:
        """A database from before rollups gets them in the background, series by series
        beside the writer (`facility-gateway rollups rebuild` does it offline)."""
        log.warning("rollups: the readings have none yet (a database from an older version); building them")

        def done(n: int, total: int) -> None:
            if n == total or n % max(1, total // 10) == 0:
                log.info("rollups: %d of %d series", n, total)

        written = await asyncio.to_thread(self.store.rebuild_rollups, done)
        log.info("rollups: built, %d five-minute buckets", written)

    async def _retention(self) -> None:
        keep = timedelta(days=self.site.storage.retention_days)
        while True:
            cutoff = self.clock.now() - keep
            try:
                deleted = await asyncio.to_thread(self.store.delete_before, to_ms(cutoff))
            except (sqlite3.OperationalError, SQLAlchemyError) as exc:  # the store away, or busy: next time
                log.warning("retention: could not delete readings older than %s: %s", cutoff.isoformat(), exc)
                deleted = 0
            if deleted:
                log.info("retention: deleted %d readings older than %s", deleted, cutoff.isoformat())
            await asyncio.sleep(RETENTION_EVERY.total_seconds())

    def health(self) -> dict[str, dict[str, str]]:
        """Each part's state: `ok`, or what is wrong with it and why."""
        parts: dict[str, dict[str, str]] = {"lease": self.ownership.health()}
        if self.failure is not None:
            parts["gateway"] = {"state": "down", "detail": f"stopping: {self.failure}"}
        if self.mqtt is not None:
            parts["mqtt"] = (
                {"state": "ok"} if self.mqtt.connected else {"state": "down", "detail": self.mqtt.last_error}
            )
        if not self.on_spool.health.ok:
            parts["spool"] = {"state": "down", "detail": self.on_spool.health.last_error}
        elif self.spooler.overflowing:
            parts["spool"] = {"state": "dropping", "detail": self.spooler.overflowing}
        else:
            parts["spool"] = {"state": "ok", "detail": f"{len(self.spool)}/{self.spool.max_messages}"}
        for writer in self.writers:
            h = writer.health
            parts[writer.sink.name] = {"state": "ok"} if h.ok else {"state": "down", "detail": h.last_error}
        depth = len(self.buffer)
        full = depth >= self.buffer.capacity
        parts["buffer"] = {"state": "full" if full else "ok", "detail": f"{depth}/{self.buffer.capacity}"}
        for poller in self.pollers:
            parts[f"{poller.protocol}:{poller.url}"] = poller.health()
        for channel, state in self.notifier.health().items():
            parts[f"notify:{channel}"] = {"state": "ok"} if state == "ok" else {"state": "down", "detail": state}
        return parts


async def outlets(site: SiteConfig, store: ReadingStore, influx: InfluxSink | None, platform: PlatformSink | None,
                  counters: Counters, clock: Clock,
                  stack: AsyncExitStack) -> tuple[Spool, SpoolThread, list[SinkWriter]]:
    """The site's spool and a writer from it to each sink (the readings store, InfluxDB and the
    energy platform where configured), closed with `stack`."""
    sqlite_sink = SqliteSink(store)
    sinks: list[Sink] = [sqlite_sink, *(s for s in (influx, platform) if s is not None)]
    settings = site.spool
    spool = Spool(site.storage.data_dir / "spool.db", [s.name for s in sinks], max_messages=settings.max_messages,
                  max_age_ms=int(settings.max_age_h * 3_600_000), rejected_keep=site.storage.rejected_keep)
    stack.callback(spool.close)
    on_spool = SpoolThread(counters)
    stack.callback(on_spool.close)
    stack.callback(sqlite_sink.close)
    if influx is not None:
        await influx.start()
        stack.push_async_callback(influx.close)
    if platform is not None:
        stack.push_async_callback(platform.close)
    return spool, on_spool, [SinkWriter(sink, spool, on_spool, settings.sink_batch, counters, clock) for sink in sinks]


async def drain(site: SiteConfig, db: StateDatabase, clock: Clock, within_s: float) -> tuple[int, int]:
    """Writes to the sinks what a site's spool in this data folder still holds, without running
    the site: what a replica took and acknowledged for a site before it died, for a site that
    another replica runs now. Returns the messages found and those still left after `within_s`
    (a sink away)."""
    async with AsyncExitStack() as stack:
        store = open_readings(site, db)
        stack.callback(store.close)
        influx = InfluxSink(site.influxdb, site) if site.influxdb else None
        counters = Counters()
        platform = PlatformSink(site.platform, site, counters, clock) if site.platform else None
        spool, _, writers = await outlets(site, store, influx, platform, counters, clock, stack)
        found = len(spool)
        if found:
            tasks = [asyncio.create_task(w.run(), name=f"drain {site.id} {w.sink.name}") for w in writers]
            deadline = time.monotonic() + within_s
            # The spool's count has no event to wait on.
            while len(spool) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return found, len(spool)
