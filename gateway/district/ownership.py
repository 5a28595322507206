"""A gateway process runs its site only while it holds the site's lease.

At start it takes the lease, or waits as a standby for as long as another replica holds it
(the log says which). While running it renews the lease every third of its time to live. If
the lease is lost — another replica took it after this one failed to renew in time (a long
pause, the state store out of reach) — or cannot be renewed before it would expire, the
process stops at once with an error: its supervisor starts it again, as a standby. A replica
that is not sure it owns its site must not raise alerts or send notices for it. A clean stop
gives the lease up, so that a standby takes the site at its next turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gateway.counters import Counters
from gateway.district.leases import Leases
from gateway.storage.state import StateDatabase

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    pass


class StoppedStandingBy(RuntimeError):
    pass


def replica_id(configured: str | None, data_dir: Path) -> str:
    """This replica among those sharing the state store: as configured, or its host name and
    data folder. It stays the same when the process is started again, so a gateway restarted
    after a crash renews its own lease at once instead of waiting for it to expire."""
    return configured or f"{socket.gethostname()}:{data_dir.resolve()}"


class Hold(Protocol):
    """What a running site knows of its lease: `Ownership` for a process that runs one site,
    `SiteHold` for one of the sites a district replica runs."""

    epoch: int | None

    @property
    def renewals_failed(self) -> int: ...

    async def keep(self) -> None:
        """Returns never; raises `LeaseLost` when the site is no longer this replica's."""

    def release(self) -> None: ...

    def health(self) -> dict[str, str]: ...


def lease_gauges(counters: Counters, hold: Hold) -> None:
    """A running site's lease, in its metrics."""
    counters.gauge("facility_site_leases_held", "Sites this replica holds the lease of, and runs",
                   lambda: 0 if hold.epoch is None else 1)
    counters.gauge("facility_site_lease_epoch", "How many times the site has changed hands, this replica's "
                   "turn included (0: not held)", lambda: hold.epoch or 0)
    counters.gauge("facility_site_lease_renewals_failed", "Lease renewals that failed and were retried",
                   lambda: hold.renewals_failed)


class Ownership:
    def __init__(self, db: StateDatabase, site: str, replica: str, ttl_s: float) -> None:
        self.site = site
        self.replica = replica
        self.ttl_s = ttl_s
        self._leases = Leases(db, replica, ttl_s)
        self.epoch: int | None = None  # of the lease this replica holds; None: standing by
        self._valid_until = 0.0  # monotonic: the lease is certainly ours until then
        self.renewals_failed = 0

    async def acquire(self, stopping: asyncio.Event) -> int | None:
        """Takes the site's lease, waiting (a turn every third of the lease) while another
        replica holds it; its epoch, or None if asked to stop meanwhile."""
        said = False
        while not stopping.is_set():
            started = time.monotonic()
            turn = await asyncio.to_thread(self._leases.turn, [self.site])
            if self.site in turn.held:
                self._valid_until = started + self.ttl_s
                self.epoch = turn.held[self.site]
                log.info("replica %s runs site %s (lease epoch %d)", self.replica, self.site, self.epoch)
                return self.epoch
            if not said:
                owner = next((lease.owner for lease in self._leases.leases() if lease.site == self.site), "?")
                log.warning("site %s is run by replica %s: this replica (%s) stands by and takes it over if "
                            "that one stops renewing its lease (%g s)", self.site, owner, self.replica, self.ttl_s)
                said = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ttl_s / 3):
                    await stopping.wait()
        return None

    async def keep(self) -> None:
        """Renews the lease until cancelled; raises `LeaseLost` when it is gone or may be."""
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            started = time.monotonic()
            try:
                turn = await asyncio.to_thread(self._leases.turn, [self.site])
            except Exception as exc:  # the state store out of reach: the lease runs out meanwhile
                self.renewals_failed += 1
                if time.monotonic() >= self._valid_until - self.ttl_s / 6:
                    raise LeaseLost(f"the lease of site {self.site} could not be renewed before it expired "
                                    f"({exc})") from exc
                log.warning("renewing the lease of site %s failed, retrying: %s", self.site, exc)
                continue
            if self.site not in turn.held:
                raise LeaseLost(f"site {self.site} was taken over by another replica")
            self._valid_until = started + self.ttl_s

    def release(self) -> None:
        if self.epoch is not None:
            self._leases.release_all()
            self.epoch = None

    def health(self) -> dict[str, str]:
        if self.epoch is None:
            return {"state": "standby", "detail": f"site {self.site} not held by {self.replica}"}
        left = max(0.0, self._valid_until - time.monotonic())
        return {"state": "ok", "detail": f"site {self.site} held by {self.replica}, epoch {self.epoch}, "
                                          f"renewed {self.ttl_s - left:.0f} s ago"}


class SiteHold:
    """One of the sites a district replica runs. The replica's runner renews every lease it
    holds in one turn (gateway/district/runner.py); it tells the site when its lease is gone
    (`lose`), and gives the lease up itself once the site has stopped."""

    def __init__(self, site: str, replica: str, epoch: int, ttl_s: float, valid_until: float,
                 renewals_failed: Callable[[], int]) -> None:
        self.site = site
        self.replica = replica
        self.epoch: int | None = epoch
        self.ttl_s = ttl_s
        self._valid_until = valid_until  # monotonic: the lease is certainly ours until then
        self._lost = asyncio.Event()
        self._why = ""
        self._renewals_failed = renewals_failed

    @property
    def renewals_failed(self) -> int:
        return self._renewals_failed()

    def renewed(self, valid_until: float) -> None:
        """The runner's turn renewed the lease: it is certainly ours until then (monotonic)."""
        self._valid_until = valid_until

    def lose(self, why: str) -> None:
        self._why = why
        self._lost.set()

    async def keep(self) -> None:
        """Ends the site when the runner says the lease is gone, or by itself when no turn has
        renewed it in time (a replica too busy to take its turns must not go on beside the one
        that takes the site over)."""
        while not self._lost.is_set():
            left = self._valid_until - self.ttl_s / 6 - time.monotonic()
            if left <= 0:
                raise LeaseLost(f"site {self.site}: its lease was not renewed in time")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._lost.wait()
        raise LeaseLost(f"site {self.site}: {self._why}")

    def release(self) -> None:
        self.epoch = None

    def health(self) -> dict[str, str]:
        if self.epoch is None or self._lost.is_set():
            return {"state": "standby", "detail": f"site {self.site} not held by {self.replica}"}
        return {"state": "ok", "detail": f"site {self.site} held by {self.replica}, epoch {self.epoch}"}
