"""The spool's own thread: every spool call runs there, in order, and a write that fails for
want of disk is retried with backoff until it succeeds."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from gateway.counters import Counters
from gateway.retry import Backoff, Health

P = ParamSpec("P")
T = TypeVar("T")


class SpoolThread:
    """Every spool call runs on this one thread, in order. Writes that fail for want of
    disk (or on an I/O error) are retried with backoff until they succeed, and the spool's
    health says why meanwhile: the transports wait, nothing crashes."""

    def __init__(self, counters: Counters) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self.health = Health("spool")
        self._errors = counters.sink_errors.labels("spool")

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        backoff = Backoff()
        while True:
            try:
                result = await self(fn, *args, **kwargs)
            except sqlite3.OperationalError as exc:  # disk full, I/O error
                self._errors.inc()
                self.health.failed(f"cannot write the spool: {exc}")
                await backoff.wait()
            else:
                self.health.recovered()
                return result

    def close(self) -> None:
        self._executor.shutdown(wait=True)
