"""The spool's thread: one call at a time, the spooler's commits before the sinks' calls."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.counters import Counters
from gateway.spool.thread import SpoolThread


async def test_a_commit_goes_before_the_sinks_calls_waiting_meanwhile() -> None:
    """A reading that raises an alert waits for the call under way, not for a sink's backlog."""
    thread = SpoolThread(Counters())
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def under_way() -> None:
        started.set()
        release.wait()
        order.append("under way")

    busy = asyncio.create_task(thread(under_way))
    await asyncio.to_thread(started.wait)
    reads = [asyncio.create_task(thread(order.append, f"read {i}")) for i in range(3)]
    await asyncio.sleep(0)  # the reads are queued first
    commit = asyncio.create_task(thread.commit(order.append, "commit"))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(busy, *reads, commit)
    thread.close()
    assert order == ["under way", "commit", "read 0", "read 1", "read 2"]


async def test_close_runs_what_was_submitted_and_errors_reach_the_caller() -> None:
    thread = SpoolThread(Counters())
    done: list[int] = []
    calls = [asyncio.create_task(thread(done.append, i)) for i in range(5)]
    failing = asyncio.create_task(thread(int, "not a number"))
    await asyncio.sleep(0)  # all submitted, none awaited yet
    await asyncio.to_thread(thread.close)
    assert done == [0, 1, 2, 3, 4]
    await asyncio.gather(*calls)
    with pytest.raises(ValueError, match="not a number"):
        await failing
