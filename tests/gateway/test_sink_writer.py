"""A sink's writer: a sink that has caught up writes what arrived meanwhile in one batch."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from devices.base import Event, Sample
from gateway.clock import ManualClock
from gateway.counters import Counters
from gateway.sinks.writer import LINGER_S, SinkWriter
from gateway.spool.store import Spool
from gateway.spool.thread import SpoolThread
from tests.services import until

T0 = 1_795_219_200_000


class Written:
    """A sink that keeps every batch it is given."""

    name = "kept"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.at: list[float] = []  # when each batch was written, monotonic seconds

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        self.batches.append([s.ts_ms for s in samples])
        self.at.append(time.monotonic())


async def test_a_sink_that_caught_up_takes_the_next_commits_in_one_batch(tmp_path: Path) -> None:
    counters = Counters()
    sink = Written()
    spool = Spool(tmp_path / "spool.db", [sink.name], max_messages=1000, max_age_ms=86_400_000, rejected_keep=10)
    on_spool = SpoolThread(counters)
    writer = SinkWriter(sink, spool, on_spool, 100, counters, ManualClock(datetime.now(UTC)))
    running = asyncio.create_task(writer.run())

    async def commit(i: int) -> None:
        await on_spool.commit(spool.append, [(T0, Sample("m", T0 + i, {"power_w": 1.0}))], [], {"mqtt": 1})
        writer.wake()

    try:
        await commit(0)
        await until(lambda: sink.batches == [[T0]])
        for i in (1, 2, 3):  # three commits of the spooler while the sink waits for more
            await commit(i)
        await until(lambda: len(spool) == 0)
        assert [ts for batch in sink.batches for ts in batch] == [T0, T0 + 1, T0 + 2, T0 + 3]
        assert len(sink.batches) < 4
        gaps = [b - a for a, b in itertools.pairwise(sink.at)]
        assert min(gaps) >= LINGER_S * 0.9, gaps
    finally:
        running.cancel()
        on_spool.close()
        spool.close()
