"""Takes batches from the ingest buffer and writes them to every sink, then updates the live
device state and the counters.

Each batch goes to the embedded store (on its own writer thread) and to InfluxDB (async)
at the same time. A failed write is retried with capped exponential backoff and jitter
while the buffer holds what arrives meanwhile; when the buffer is full, ingest waits.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from gateway.clock import Clock
from gateway.counters import Counters
from gateway.device_state import DeviceStates
from gateway.pipeline import Batch, IngestBuffer
from gateway.sinks import PermanentSinkError, TransientSinkError
from gateway.sinks.influx import InfluxSink
from gateway.storage.sqlite import SqliteStore
from gateway.storage.state import DeadLetterLog

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


class SinkHealth:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = True
        self.last_error = ""

    def failed(self, error: str) -> None:
        if self.ok:
            log.warning("sink %s is failing: %s", self.name, error)
        self.ok = False
        self.last_error = error

    def recovered(self) -> None:
        if not self.ok:
            log.info("sink %s is back", self.name)
        self.ok = True
        self.last_error = ""


class Writer:
    def __init__(
        self,
        buffer: IngestBuffer,
        store: SqliteStore,
        dead_letters: DeadLetterLog,
        influx: InfluxSink | None,
        states: DeviceStates,
        counters: Counters,
        clock: Clock,
    ) -> None:
        self._buffer = buffer
        self._store = store
        self._dead_letters = dead_letters
        self._influx = influx
        self._states = states
        self._counters = counters
        self._clock = clock  # receipt times come from it, so latency must too
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self.health = {"sqlite": SinkHealth("sqlite")}
        if influx is not None:
            self.health["influxdb"] = SinkHealth("influxdb")

    def wake(self) -> None:
        """Called from any thread when the buffer goes from empty to non-empty."""
        self._loop.call_soon_threadsafe(self._ready.set)

    async def run(self) -> None:
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                batch = self._buffer.take()
                if not batch.empty:
                    await self._write(batch)
                    self._ready.set()  # more may have arrived while writing
        finally:
            await self.flush()
            self._executor.shutdown(wait=True)

    async def flush(self) -> None:
        """Writes whatever is still buffered, at shutdown."""
        batch = self._buffer.take()
        if not batch.empty:
            await self._write(batch)

    async def _write(self, batch: Batch) -> None:
        jobs = [self._retrying("sqlite", lambda: self._in_thread(self._write_embedded, batch))]
        sinks = ["sqlite"]
        if self._influx is not None and batch:
            influx = self._influx
            jobs.append(self._retrying("influxdb", lambda: influx.write(batch.samples, batch.events)))
            sinks.append("influxdb")
        stored = await asyncio.gather(*jobs)
        update = self._states.update
        for s in batch.samples:
            update(s.device_id, s.ts_ms, s.values.items())
        n = len(batch)
        if n:
            for name, ok in zip(sinks, stored, strict=True):
                if ok:
                    self._counters.stored.labels(name).inc(n)
            now = self._clock.now().timestamp() * 1000
            observe = self._counters.latency.observe
            for received in batch.received_ms:
                observe((now - received) / 1000)

    def _write_embedded(self, batch: Batch) -> None:
        self._store.write(batch.samples, batch.events)
        self._dead_letters.write(batch.rejections)

    async def _in_thread(self, fn: Callable[[Batch], None], batch: Batch) -> None:
        await self._loop.run_in_executor(self._executor, fn, batch)

    async def _retrying(self, sink: str, attempt: Callable[[], Awaitable[None]]) -> bool:
        """True once the sink has the batch; False if it refused it for good."""
        health = self.health[sink]
        delay = BACKOFF_MIN_S
        while True:
            try:
                await attempt()
            except PermanentSinkError as exc:
                log.error("sink %s refused a batch for good, dropped for it: %s", sink, exc)
                self._counters.sink_dropped.labels(sink).inc()
                return False
            except (TransientSinkError, sqlite3.OperationalError) as exc:
                # sqlite3.OperationalError: disk full, I/O error, database locked.
                self._counters.sink_errors.labels(sink).inc()
                health.failed(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, BACKOFF_MAX_S)
            else:
                health.recovered()
                return True
