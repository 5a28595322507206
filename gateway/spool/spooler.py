"""The spooler: decoded messages from the ingest buffer into the spool, one durable
transaction per batch, and their newest readings into the shared state store (for a replica
that takes the site over), then to the rules and the live bus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from devices.base import Event, Sample
from gateway.clock import Clock, to_ms
from gateway.device_state import DeviceStates
from gateway.ingest.pipeline import Batch, IngestBuffer, run_acks
from gateway.sinks.writer import SinkWriter
from gateway.spool.store import Spool
from gateway.spool.thread import SpoolThread
from gateway.storage.latest import LatestReadings

log = logging.getLogger(__name__)




# How often the spool's age bound is applied.
ENFORCE_EVERY_S = 60.0


class Spooler:
    """Takes batches from the buffer into the spool; while the spool cannot be written
    (disk full) the buffer fills and then holds back the transports."""

    def __init__(self, buffer: IngestBuffer, spool: Spool, on_spool: SpoolThread, writers: Sequence[SinkWriter],
                 states: DeviceStates, clock: Clock, latest: LatestReadings,
                 committed: Callable[[Sequence[tuple[int, Sample | Event]]], None]) -> None:
        self.overflowing = ""  # what the bounds last dropped, while they drop
        self._next_enforce_ms = 0
        self._buffer = buffer
        self._spool = spool
        self._on_spool = on_spool
        self._writers = writers
        self._states = states
        self._clock = clock
        self._latest = latest
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
        await self._on_spool.commit(self._append, batch)
        update = self._states.update
        for _, item in batch.items:
            if isinstance(item, Sample):
                update(item.device_id, item.ts_ms, item.values.items())
        # The rules before the acknowledgements: an alert waits for nothing but the commit
        # (acknowledging a large batch takes as long as its rules).
        if batch.items:
            self._committed(batch.items)
        run_acks(batch.acks)
        if batch.items:
            for writer in self._writers:
                writer.wake()
            # The count bound at once; the age bound (a query) only every ENFORCE_EVERY_S,
            # here as well as when idle, since under steady load the idle timer never fires.
            if len(self._spool) > self._spool.max_messages or self._now_ms() >= self._next_enforce_ms:
                await self._enforce()

    def _append(self, batch: Batch) -> None:
        """On the spool's thread, before the messages are acknowledged: what the broker will
        not deliver again is in the spool, and its newest readings are where a standby finds
        them."""
        self._spool.append(batch.items, batch.rejections, batch.received)
        self._latest.record(batch.items)

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

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
