"""Moves messages from the ingest buffer into the spool, and from the spool into each sink.

`Spooler` commits what the transports put in the buffer to the spool in batches, then
acknowledges it to its sources (MQTT PUBACK, waiting HTTP requests) and updates the live
device state. One `SinkWriter` per sink reads the spool from its own cursor, oldest first,
writes to its sink and moves the cursor. A sink that is down is retried with capped,
jittered exponential backoff while the spool holds what arrives meanwhile; when it returns
it catches up, oldest first, in full batches. A batch the sink refuses for good is split until the
refused messages are found; only those are dropped, and counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, Protocol, TypeVar

from devices.base import Event, Sample
from gateway.clock import Clock
from gateway.counters import Counters
from gateway.device_state import DeviceStates
from gateway.pipeline import Batch, IngestBuffer
from gateway.sinks import PermanentSinkError, TransientSinkError
from gateway.spool import Spool, Spooled
from gateway.storage.sqlite import SqliteStore

log = logging.getLogger(__name__)
# Its own generator: the shared one is for the application (and tests seed it).
_jitter = random.Random()

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
# How often the spool's age bound is applied.
ENFORCE_EVERY_S = 60.0

P = ParamSpec("P")
T = TypeVar("T")


class Sink(Protocol):
    name: str

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        """Stores the messages, or raises TransientSinkError / PermanentSinkError."""


class Health:
    """Whether a part works, with the last error; logs each change once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = True
        self.last_error = ""

    def failed(self, error: str) -> None:
        if self.ok:
            log.warning("%s is failing: %s", self.name, error)
        self.ok = False
        self.last_error = error

    def recovered(self) -> None:
        if not self.ok:
            log.info("%s is back", self.name)
        self.ok = True
        self.last_error = ""


class Backoff:
    """Capped exponential backoff with jitter."""

    def __init__(self) -> None:
        self._delay = BACKOFF_MIN_S

    async def wait(self) -> None:
        await asyncio.sleep(self._delay * _jitter.uniform(0.5, 1.0))
        self._delay = min(self._delay * 2, BACKOFF_MAX_S)


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


class SqliteSink:
    """The embedded store as a sink: its writes run on their own thread."""

    name = "sqlite"

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.write, samples, events)
        except sqlite3.OperationalError as exc:  # disk full, I/O error, database locked
            raise TransientSinkError(str(exc)) from exc

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class SinkWriter:
    def __init__(self, sink: Sink, spool: Spool, on_spool: SpoolThread, batch: int, counters: Counters,
                 clock: Clock) -> None:
        self.sink = sink
        self.health = Health(f"sink {sink.name}")
        self._spool = spool
        self._on_spool = on_spool
        self._batch = batch
        self._counters = counters
        self._clock = clock  # receipt times come from it, so latency must too
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        name = self.sink.name
        backoff = Backoff()
        while True:
            self._wake.clear()  # before reading, so an append meanwhile is not missed
            # Read again after every failure: while the sink was down the spool's bounds may
            # have dropped the rows of the failed attempt, and what is left comes first now.
            rows = await self._on_spool(self._spool.read, name, self._batch)
            if not rows:
                await self._wake.wait()
                continue
            try:
                refused = await self._deliver(rows)
            except TransientSinkError as exc:
                self._counters.sink_errors.labels(name).inc()
                self.health.failed(f"{type(exc).__name__}: {exc}")
                await backoff.wait()
                continue
            backoff = Backoff()
            self.health.recovered()
            await self._on_spool.write(self._spool.advance, name, rows[0].seq, rows[-1].seq, refused)
            now = self._clock.now().timestamp() * 1000
            observe = self._counters.latency.labels(name).observe
            for row in rows:
                observe((now - row.received_ms) / 1000)

    async def _deliver(self, rows: Sequence[Spooled]) -> int:
        """Writes the rows; returns how many the sink refused for good (found by splitting
        the batch, so one bad message costs only itself)."""
        samples = [r.item for r in rows if isinstance(r.item, Sample)]
        events = [r.item for r in rows if isinstance(r.item, Event)]
        try:
            await self.sink.write(samples, events)
        except PermanentSinkError as exc:
            if len(rows) == 1:
                log.error("sink %s refused a message for good, dropped for it: %s (%s)",
                          self.sink.name, exc, rows[0].item)
                return 1
            half = len(rows) // 2
            return await self._deliver(rows[:half]) + await self._deliver(rows[half:])
        return 0


class Spooler:
    """Takes batches from the buffer into the spool; while the spool cannot be written
    (disk full) the buffer fills and then holds back the transports."""

    def __init__(self, buffer: IngestBuffer, spool: Spool, on_spool: SpoolThread, writers: Sequence[SinkWriter],
                 states: DeviceStates, clock: Clock,
                 committed: Callable[[Sequence[tuple[int, Sample | Event]]], None]) -> None:
        self.overflowing = ""  # what the bounds last dropped, while they drop
        self._next_enforce_ms = 0
        self._buffer = buffer
        self._spool = spool
        self._on_spool = on_spool
        self._writers = writers
        self._states = states
        self._clock = clock
        self._committed = committed
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def wake(self) -> None:
        """Called from any thread when the buffer goes from empty to non-empty."""
        self._loop.call_soon_threadsafe(self._ready.set)

    async def run(self) -> None:
        try:
            while True:
                try:
                    # Not asyncio.wait_for: on 3.11 it can swallow a cancellation that meets
                    # the event being set (the shutdown hung on it).
                    async with asyncio.timeout(ENFORCE_EVERY_S):
                        await self._ready.wait()
                except TimeoutError:
                    await self._enforce()
                    continue
                self._ready.clear()
                batch = self._buffer.take()
                if not batch.empty:
                    await self._commit(batch)
                    self._ready.set()  # more may have arrived while committing
        finally:
            await self.flush()

    async def flush(self) -> None:
        """Commits whatever is still buffered, at shutdown."""
        batch = self._buffer.take()
        if not batch.empty:
            await self._commit(batch)

    async def _commit(self, batch: Batch) -> None:
        await self._on_spool.write(self._spool.append, batch.items, batch.rejections, batch.received)
        for ack in batch.acks:
            ack()
        update = self._states.update
        for _, item in batch.items:
            if isinstance(item, Sample):
                update(item.device_id, item.ts_ms, item.values.items())
        if batch.items:
            self._committed(batch.items)
            for writer in self._writers:
                writer.wake()
            # The count bound at once; the age bound (a query) only every ENFORCE_EVERY_S,
            # here as well as when idle, since under steady load the idle timer never fires.
            if len(self._spool) > self._spool.max_messages or self._now_ms() >= self._next_enforce_ms:
                await self._enforce()

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    async def _enforce(self) -> None:
        now_ms = self._now_ms()
        self._next_enforce_ms = now_ms + int(ENFORCE_EVERY_S * 1000)
        overflows = await self._on_spool.write(self._spool.enforce, now_ms)
        if overflows:
            detail = "; ".join(
                f"{o.reason}: dropped " + ", ".join(f"{n} for {sink}" for sink, n in o.dropped.items())
                for o in overflows
            )
            if not self.overflowing:
                log.error("spool bound reached, oldest messages dropped: %s", detail)
            self.overflowing = detail
        elif self.overflowing and len(self._spool) < self._spool.max_messages:
            log.info("spool is within its bounds again")
            self.overflowing = ""
