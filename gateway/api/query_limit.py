"""How many heavy queries (readings, events, reports) the API runs at once.

Each one holds a worker thread, a SQLite reader and, for a moment, its answer in memory.
Two hundred 30-day raw reads at once (anyone can send them where reads are public) filled
the thread pool, left /health waiting for seconds behind them and multiplied the gateway's
memory (bench/health_under_load.py). Beyond `api.max_heavy_queries` (4 per CPU core by
default) a query waits up to `api.heavy_wait_s` for a turn, then is refused with 503 and
Retry-After: the client comes back a little later instead of everyone waiting longer and
longer. Routes declare it with one parameter, `_slot: HeavyQuery`, after their access check.

One limiter per gateway process; it counts what it refused at /metrics.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request
from prometheus_client import Counter

from gateway.api.deps import CountersDep, SiteDep
from gateway.config import ApiSettings, SiteConfig
from gateway.counters import Counters

RETRY_AFTER_S: Final = 2
PER_CORE: Final = 4


class QueryLimiter:
    """A bounded number of slots; a query takes one or is refused after a short wait.
    Used on the event loop's thread only."""

    def __init__(self, limit: int, wait_s: float, counters: Counters) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._free = asyncio.Semaphore(limit)
        self._running = 0
        counters.gauge("facility_api_heavy_queries_running",
                       "Heavy API queries (readings, events, reports) running now", lambda: self._running)
        counters.gauge("facility_api_heavy_queries_limit", "How many heavy API queries may run at once",
                       lambda: self.limit)
        self._refused = Counter("facility_api_heavy_queries_refused",
                                "Heavy API queries refused with 503 because the limit was reached",
                                registry=counters.registry)

    @classmethod
    def from_settings(cls, settings: ApiSettings, counters: Counters) -> QueryLimiter:
        limit = settings.max_heavy_queries or PER_CORE * (os.cpu_count() or 1)
        return cls(limit, settings.heavy_wait_s, counters)

    async def acquire(self) -> bool:
        """Takes a slot, waiting at most `wait_s`; False (and counted) if none came free."""
        if self._free.locked() and self.wait_s == 0:
            self._refused.inc()
            return False
        try:
            async with asyncio.timeout(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            self._refused.inc()
            return False
        self._running += 1
        return True

    def release(self) -> None:
        self._running -= 1
        self._free.release()


def query_limiter(request: Request, site: SiteConfig, counters: Counters) -> QueryLimiter:
    """The app's limiter, made on first use from the site's settings. Call it on the
    event loop's thread: two threads could otherwise both make one."""
    state = request.app.state
    limiter: QueryLimiter | None = getattr(state, "query_limiter", None)
    if limiter is None:
        limiter = state.query_limiter = QueryLimiter.from_settings(site.api, counters)
    return limiter


async def _heavy_query(request: Request, site: SiteDep, counters: CountersDep) -> AsyncIterator[None]:
    """Holds a slot while the route computes its answer, or answers 503. Not while the
    answer is sent: a client that stops reading would keep its slot for as long as it
    likes, and a few of them would keep everyone else out."""
    limiter = query_limiter(request, site, counters)
    if not await limiter.acquire():
        raise HTTPException(
            503, f"the gateway is busy: {limiter.limit} heavy queries (readings, events, reports) are running; "
                 f"try again in {RETRY_AFTER_S} s",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        yield
    finally:
        limiter.release()


HeavyQuery = Annotated[None, Depends(_heavy_query, scope="function")]
