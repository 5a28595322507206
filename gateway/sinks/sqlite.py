"""The readings store as a sink (named `sqlite` in the spool and the metrics: its first store)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy.exc

from devices.base import Event, Sample
from gateway.sinks import TransientSinkError
from gateway.storage.readings import ReadingStore


class SqliteSink:
    """The readings store as a sink: its writes run on their own thread."""

    name = "sqlite"

    def __init__(self, store: ReadingStore) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        # Transient: on SQLite a full disk, an I/O error, the file locked; on PostgreSQL the
        # server out of reach, or a statement that waited past the state store's timeout.
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.write, samples, events)
        except (sqlite3.OperationalError, sqlalchemy.exc.OperationalError) as exc:
            raise TransientSinkError(str(exc)) from exc

    def close(self) -> None:
        self._executor.shutdown(wait=True)
