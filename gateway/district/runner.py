"""One replica of a district deployment: it runs the schools whose lease it holds.

Every replica is given the same schools (a folder of site files) and the same PostgreSQL.
Each turn (a third of the lease's time to live) it renews all its leases in one statement
batch (gateway/district/leases.py), starts a `Gateway` for each site it gained, stops those
it lost, and stops then gives up those beyond its fair share, so that a replica that joins
gets its share and no two replicas ever run a site at once. Each running site is a whole
`Gateway` — its own MQTT session (client id from the site), rules, notices, reminders and
report delivery — on the replica's one state database, and its API and dashboard are served
under `/sites/<id>/`.

If no turn renews the leases in time (the state store out of reach, the replica too busy),
every site stops by itself: a replica that is not sure it owns a site must not act for it. A site whose
gateway fails is stopped and its lease given up, for this or another replica to take again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from fastapi import FastAPI
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from gateway.app import attach, site_app
from gateway.clock import Clock
from gateway.config import SiteConfig
from gateway.district.leases import Leases
from gateway.district.ownership import SiteHold
from gateway.runtime import Gateway, drain
from gateway.storage.state import StateDatabase

log = logging.getLogger(__name__)

# Schools whose gateways start at the same time, at most.
STARTS_AT_ONCE = 2

# How long a school's leftover spool may take to be written at start (a sink away: the rest
# waits for the next start, or for this replica to run the school).
DRAIN_WITHIN_S = 30.0


@dataclass
class Running:
    hold: SiteHold
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    gateway: Gateway | None = None  # once started
    app: FastAPI | None = None


class District:
    def __init__(self, sites: Mapping[str, SiteConfig], db: StateDatabase, leases: Leases, clock: Clock,
                 refused: Counter) -> None:
        """`leases`: this replica's, on connections of their own; `refused`: the server's count of
        refused requests, which each school's API adds to."""
        self.sites = dict(sites)
        self.db = db
        self.clock = clock
        self.replica = leases.replica
        self.lease_s = leases.ttl_ms / 1000
        self._refused = refused
        self.url = leases.url
        self.leases = leases
        self.running: dict[str, Running] = {}
        # The leases' own thread: a turn never waits behind the schools' work in the shared pool.
        self._leasing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leases")
        self._starting = asyncio.Semaphore(STARTS_AT_ONCE)
        self._giving_up: set[str] = set()  # stopping, then releasing
        self._background: set[asyncio.Task[None]] = set()
        self.turns_failed = 0
        self.turns = 0
        self._valid_until = 0.0  # monotonic: every lease held is certainly this replica's until then

    def app(self, site_id: str) -> FastAPI | None:
        """The API of a site this replica runs, once it has started."""
        running = self.running.get(site_id)
        return None if running is None else running.app

    async def run(self, stopping: asyncio.Event) -> None:
        """Turns until `stopping` is set; then stops every site and frees its leases at once."""
        await self._drain()
        loop = asyncio.get_running_loop()
        try:
            while not stopping.is_set():
                await self._turn()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.lease_s / 3):
                        await stopping.wait()
        finally:
            await asyncio.gather(*self._background, *(self._stop(site) for site in list(self.running)),
                                 return_exceptions=True)
            await loop.run_in_executor(self._leasing, self.leases.release_all)
            self._leasing.shutdown(wait=False)

    async def _drain(self) -> None:
        """Before it takes any lease: what this replica acknowledged for a school and had not yet
        written when it last stopped (killed, its machine lost power) is in that school's spool
        here, and is written now, whichever replica runs the school today."""
        for site in self.sites.values():
            await self._write_left(site)

    async def _write_left(self, site: SiteConfig) -> None:
        """Writes what the school's spool in this replica's folder still holds: acknowledged to
        the devices, so nobody else will be sent it again."""
        if (site.storage.data_dir / "spool.db").exists():
            found, left = await drain(site, self.db, self.clock, DRAIN_WITHIN_S)
            if found:
                log.info("site %s: wrote %d messages left in this replica's spool%s", site.id, found - left,
                         f"; {left} still wait for a sink that is away" if left else "")

    async def _turn(self) -> None:
        started = time.monotonic()
        try:
            turn = await asyncio.get_running_loop().run_in_executor(self._leasing, self.leases.turn, list(self.sites))
        except SQLAlchemyError as exc:  # the state store out of reach: the leases run out meanwhile
            # A site whose lease is not renewed in time stops by itself (`SiteHold.keep`).
            self.turns_failed += 1
            log.warning("renewing the leases failed, retrying: %s", exc)
            return
        self._valid_until = started + self.lease_s
        self.turns += 1
        for running in self.running.values():
            running.hold.renewed(self._valid_until)
        for site in turn.lost:
            self._lose(site, "taken over by another replica, or no longer configured")
        # Stopped by themselves (a gateway that failed, a lost lease) or beyond the share: the
        # sites are stopped first, then given up (a no-op for one already another's).
        # Not awaited here: stopping twenty schools takes seconds, and the turns that renew the
        # others' leases must go on meanwhile.
        ended = {site for site, r in self.running.items() if r.task is not None and r.task.done()}
        given_up = (set(turn.excess) | ended) - self._giving_up
        for site in given_up:
            self._giving_up.add(site)
            task = asyncio.create_task(self._give_up(site), name=f"give up {site}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if turn.excess:
            log.info("giving up %s: beyond this replica's share", ", ".join(sorted(turn.excess)))
        # What it gained, and what it holds but does not run yet (a site whose last run was
        # still ending when it came back to this replica).
        for site, epoch in sorted(turn.held.items()):
            if site not in self.running and site not in self._giving_up:
                self._start(site, epoch)
        if turn.gained or given_up:
            log.info("replica %s runs %d of %d sites (share %d, %d replicas)", self.replica, len(self.running),
                     len(self.sites), turn.share, turn.replicas)

    async def _give_up(self, site_id: str) -> None:
        try:
            await self._stop(site_id)
            await asyncio.get_running_loop().run_in_executor(self._leasing, self.leases.release, [site_id])
        except SQLAlchemyError as exc:  # the lease runs out by itself
            log.warning("giving up %s failed: %s", site_id, exc)
        try:
            # A site stopped (given up, or its lease lost) may leave in its spool here what its
            # sinks had not written yet; the next owner is never sent it. Written now, not at
            # this replica's next start; the site is not run here again meanwhile.
            site = self.sites.get(site_id)
            if site is not None:
                await self._write_left(site)
        except Exception:  # written at this replica's next start instead
            log.exception("site %s: what its spool here holds could not be written", site_id)
        finally:
            self._giving_up.discard(site_id)

    def _start(self, site_id: str, epoch: int) -> None:
        hold = SiteHold(site_id, self.replica, epoch, self.lease_s, self._valid_until, lambda: self.turns_failed)
        self.running[site_id] = running = Running(hold)
        running.task = asyncio.create_task(self._run_site(self.sites[site_id], running), name=f"site {site_id}")

    async def _run_site(self, site: SiteConfig, running: Running) -> None:
        try:
            async with AsyncExitStack() as stack:
                # A few at a time: thirty schools started at once held the event loop and the
                # state store for seconds, and the turns that renew their leases waited behind them.
                async with self._starting:
                    if running.stop.is_set():  # stopped or lost while it waited to start
                        return
                    gateway = await stack.enter_async_context(
                        Gateway(site, self.clock, shared=(self.db, running.hold)))
                running.gateway = gateway
                running.app = attach(site_app(site, refused=self._refused), gateway)
                log.info("replica %s runs site %s (lease epoch %s)", self.replica, site.id, running.hold.epoch)
                stop = asyncio.create_task(running.stop.wait())
                failed = asyncio.create_task(gateway.failed.wait())
                await asyncio.wait([stop, failed], return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                failed.cancel()
                if gateway.failure:
                    log.error("site %s stopped: %s", site.id, gateway.failure)
                running.app = None
        except Exception:
            log.exception("site %s could not run", site.id)
        finally:
            running.app = None

    def _lose(self, site_id: str, why: str) -> None:
        """The lease is gone: the site stops at once (its gateway's lease task ends it)."""
        running = self.running.get(site_id)
        if running is not None:
            running.hold.lose(why)
            running.stop.set()

    async def _stop(self, site_id: str) -> None:
        running = self.running.pop(site_id, None)
        if running is None:
            return
        running.stop.set()
        if running.task is not None:
            await asyncio.gather(running.task, return_exceptions=True)

    def health(self) -> dict[str, object]:
        sites = {}
        for site_id in sorted(self.sites):
            running = self.running.get(site_id)
            if running is None:
                sites[site_id] = {"state": "elsewhere", "detail": "run by another replica, or waiting for its lease"}
            elif running.gateway is None:
                sites[site_id] = {"state": "starting", "detail": f"lease epoch {running.hold.epoch}"}
            else:
                parts = running.gateway.health()
                bad = {k: v for k, v in parts.items() if v.get("state") != "ok"}
                sites[site_id] = {"state": "ok" if not bad else "degraded", "detail": "; ".join(
                    f"{k}: {v.get('detail', v.get('state'))}" for k, v in bad.items()) or
                    f"lease epoch {running.hold.epoch}"}
        return {"replica": self.replica, "sites_owned": len(self.running), "sites": len(self.sites),
                "turns_failed": self.turns_failed, "schools": sites}
