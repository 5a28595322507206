"""The embedded store as a sink."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from devices.base import Event, Sample
from gateway.sinks import TransientSinkError
from gateway.storage.sqlite import SqliteStore


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
