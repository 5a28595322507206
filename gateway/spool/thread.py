"""The spool's own thread: every spool call runs there, one at a time, and a write that fails for
want of disk is retried with backoff until it succeeds.

Calls run in order, except that the spooler's commits of what just arrived go before the sinks'
reads and cursor moves waiting meanwhile: a reading that raises an alert waits for at most the
one call under way, never for a sink catching up (docs/performance.md)."""

from __future__ import annotations

import asyncio
import itertools
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Final, ParamSpec, TypeVar

from gateway.counters import Counters
from gateway.retry import Backoff, Health

P = ParamSpec("P")
T = TypeVar("T")

_FIRST: Final = 0  # the spooler's commits of new messages
_THEN: Final = 1  # everything else, in order
_STOP: Final = 2  # after all that was submitted before it

_Call = tuple[int, int, Callable[[], None] | None]


class SpoolThread:
    """Every spool call runs on this one thread. Writes that fail for want of disk (or on an
    I/O error) are retried with backoff until they succeed, and the spool's health says why
    meanwhile: the transports wait, nothing crashes."""

    def __init__(self, counters: Counters) -> None:
        self._calls: queue.PriorityQueue[_Call] = queue.PriorityQueue()
        self._order = itertools.count()  # in order within a priority
        self._thread = threading.Thread(target=self._run, name="spool", daemon=True)
        self._thread.start()
        self.health = Health("spool")
        self._errors = counters.sink_errors.labels("spool")

    def _run(self) -> None:
        while True:
            _, _, call = self._calls.get()
            if call is None:
                return
            call()

    def _submit(self, priority: int, fn: Callable[[], T]) -> asyncio.Future[T]:
        done: Future[T] = Future()

        def call() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 — handed to the awaiting coroutine, as an executor does
                    done.set_exception(exc)

        self._calls.put((priority, next(self._order), call))
        return asyncio.wrap_future(done)

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._submit(_THEN, lambda: fn(*args, **kwargs))

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._retried(_THEN, lambda: fn(*args, **kwargs))

    async def commit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A write of what just arrived: before any call of the sinks waiting meanwhile."""
        return await self._retried(_FIRST, lambda: fn(*args, **kwargs))

    async def _retried(self, priority: int, fn: Callable[[], T]) -> T:
        backoff = Backoff()
        while True:
            try:
                result = await self._submit(priority, fn)
            except sqlite3.OperationalError as exc:  # disk full, I/O error
                self._errors.inc()
                self.health.failed(f"cannot write the spool: {exc}")
                await backoff.wait()
            else:
                self.health.recovered()
                return result

    def close(self) -> None:
        """Runs what was submitted, then ends the thread."""
        self._calls.put((_STOP, next(self._order), None))
        self._thread.join()
