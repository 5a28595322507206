"""The readings store: raw readings, events and their rollups, as the API's charts, the
reports and the rules read them. One interface, two implementations: `SqliteStore`, a file in
the data folder (one school on one machine, the default), and `PostgresStore`, in the state
store's PostgreSQL, where every replica of a district answers any site from the same rows.
Which one a site gets follows its state store (`open_readings`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from devices.base import Event, Sample
from gateway.config import SiteConfig
from gateway.storage.postgres import PostgresStore
from gateway.storage.sqlite import Bucket, GroupSum, Point, Rollup, SqliteStore
from gateway.storage.state import StateDatabase


class ReadingStore(Protocol):
    """What `SqliteStore` documents, method by method; `PostgresStore` answers the same."""

    needs_rollups: bool  # readings from before rollups were kept: `rebuild_rollups` first

    def write(self, samples: Iterable[Sample], events: Iterable[Event]) -> int: ...

    def rebuild_rollups(self, series_done: Callable[[int, int], None] | None = None) -> int: ...

    def delete_before(self, cutoff_ms: int) -> int: ...

    def latest(self) -> dict[str, dict[str, Point]]: ...

    def values_at(self, metric: str, device_ids: Iterable[str],
                  times_ms: Sequence[int]) -> dict[str, list[float | None]]: ...

    def runs_since(self, metric: str, value: float, at: Sequence[tuple[str, int]]) -> list[int | None]: ...

    def metrics_of(self, device_id: str) -> list[str]: ...

    def points(self, device_id: str, metric: str, start_ms: int, end_ms: int, limit: int) -> list[Point]: ...

    def buckets(self, device_id: str, metric: str, start_ms: int, end_ms: int, step_ms: int,
                utc_offset_ms: int = 0) -> list[Bucket]: ...

    def rollups(self, metric: str, device_ids: Iterable[str], spans: Sequence[tuple[int, int]],
                step_ms: int = ...) -> dict[str, list[Rollup]]: ...

    def group_sums(self, metric: str, device_ids: Iterable[str],
                   spans: Sequence[tuple[int, int, int, int]]) -> dict[str, dict[int, GroupSum]]: ...

    def increases(self, metric: str, device_ids: Iterable[str], start_ms: int,
                  end_ms: int) -> dict[str, tuple[float, int] | None]: ...

    def events(self, device_id: str, start_ms: int, end_ms: int, limit: int) -> list[Event]: ...

    def close(self) -> None: ...


def open_readings(site: SiteConfig, db: StateDatabase) -> ReadingStore:
    """The site's readings store: beside its state. A SQLite state store means one machine,
    and the readings stay in `readings.db` in its data folder; a PostgreSQL one means replicas
    that share it, and the readings go there too."""
    if db.dialect == "sqlite":
        return SqliteStore(site.storage.data_dir / "readings.db")
    return PostgresStore(db, site.id)
