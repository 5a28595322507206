"""Moves messages from the ingest buffer into the spool, and from the spool into each sink.

`Spooler` commits what the transports put in the buffer to the spool in batches, then
acknowledges it to its sources (MQTT PUBACK, waiting HTTP requests) and updates the live
device state. One `SinkWriter` per sink reads the spool from its own cursor, oldest first,
writes to its sink and moves the cursor; once it has caught up it lets the next batch gather
for `LINGER_S`. A sink that is down is retried with capped,
jittered exponential backoff while the spool holds what arrives meanwhile; when it returns
it catches up, oldest first, in full batches. A batch the sink refuses for good is split until the
refused messages are found; only those are dropped, and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from devices.base import Event, Sample
from gateway.clock import Clock
from gateway.counters import Counters
from gateway.retry import Backoff, Health
from gateway.sinks import PermanentSinkError, TransientSinkError
from gateway.spool.store import Spool, Spooled
from gateway.spool.thread import SpoolThread

log = logging.getLogger(__name__)

# A sink that has caught up waits this long before it reads again, so that it writes what
# arrived meanwhile in one batch, not a batch per commit of the spooler: every write costs the
# event loop and the spool's thread a fixed share, and the rules do not wait for sinks.
LINGER_S = 0.1


class Sink(Protocol):
    name: str

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        """Stores the messages, or raises TransientSinkError / PermanentSinkError."""


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
            if len(rows) < self._batch:  # caught up: let the next batch gather
                await asyncio.sleep(LINGER_S)

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


