"""The newest reading of every series of a site, in the shared state store: what a replica
that takes the site over starts from (its own readings.db knows nothing of what the replica
before it stored). The site's owner writes it on the spool's thread, once per committed batch:
one row per (device, metric), kept only where it is newer than the row there. Events are not
kept: no rule carries anything from one event to the next (docs/district.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from sqlalchemy import BigInteger, Column, Float, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from devices.base import Event, Sample
from gateway.storage.sqlite import Point
from gateway.storage.state import METADATA, StateDatabase

log = logging.getLogger(__name__)

LATEST_READINGS = Table(
    "latest_readings", METADATA,
    Column("site", Text, primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("ts", BigInteger, nullable=False),  # the reading's own time, Unix milliseconds
    Column("value", Float, nullable=False),
)

Latest = dict[str, dict[str, Point]]  # device → metric → its newest point


class LatestReadings:
    """The newest readings of one site. `record` runs on the spool's thread; a write the state
    store refused (out of reach) is kept and goes with the next batch's, so the table catches
    up as soon as it can be written again."""

    def __init__(self, db: StateDatabase, site: str) -> None:
        self._db = db
        self.site = site
        self._pending: dict[tuple[str, str], Point] = {}
        self._failing = False
        db.create(LATEST_READINGS)
        # Built once: each build makes the `excluded` alias of the table anew, a web of about 60
        # objects in reference cycles that only the garbage collector frees — one a batch.
        insert = db.insert(LATEST_READINGS)
        self._upsert = insert.on_conflict_do_update(
            index_elements=[LATEST_READINGS.c.site, LATEST_READINGS.c.device_id, LATEST_READINGS.c.metric],
            set_={"ts": insert.excluded.ts, "value": insert.excluded.value},
            where=insert.excluded.ts > LATEST_READINGS.c.ts,
        )

    def record(self, items: Iterable[tuple[int, Sample | Event]]) -> None:
        """Keeps the newest point of each series of these committed messages."""
        newest = self._pending
        for _, item in items:
            if isinstance(item, Sample):
                for metric, value in item.values.items():
                    held = newest.get((item.device_id, metric))
                    if held is None or held.ts_ms < item.ts_ms:
                        newest[(item.device_id, metric)] = Point(item.ts_ms, value)
        if not newest:
            return
        try:
            self._write(newest)
        except SQLAlchemyError as exc:  # the state store out of reach: kept for the next batch
            if not self._failing:
                log.warning("the newest readings cannot be written to the state store, kept until it can: %s", exc)
                self._failing = True
            return
        if self._failing:
            log.info("the newest readings are written to the state store again")
            self._failing = False
        self._pending = {}

    def _write(self, newest: Mapping[tuple[str, str], Point]) -> None:
        # In key order: two writers (an owner and one deposed a moment ago) lock rows alike.
        rows = [{"site": self.site, "device_id": d, "metric": m, "ts": p.ts_ms, "value": p.value}
                for (d, m), p in sorted(newest.items())]
        with self._db.write() as conn:
            conn.execute(self._upsert, rows)

    def read(self) -> Latest:
        out: Latest = {}
        query = select(LATEST_READINGS.c.device_id, LATEST_READINGS.c.metric, LATEST_READINGS.c.ts,
                       LATEST_READINGS.c.value).where(LATEST_READINGS.c.site == self.site)
        with self._db.read() as conn:
            for device_id, metric, ts, value in conn.execute(query):
                out.setdefault(device_id, {})[metric] = Point(ts, value)
        return out


def newer(*sources: Latest) -> Latest:
    """Per series, the newest point of any of `sources`."""
    out: Latest = {}
    for source in sources:
        for device_id, points in source.items():
            mine = out.setdefault(device_id, {})
            for metric, point in points.items():
                held = mine.get(metric)
                if held is None or held.ts_ms < point.ts_ms:
                    mine[metric] = point
    return out


def as_samples(latest: Latest) -> list[Sample]:
    """Each device's newest values as readings at their own times: one sample per device and
    time, oldest first per device."""
    samples: list[Sample] = []
    for device_id, points in latest.items():
        at: dict[int, dict[str, float]] = {}
        for metric, point in points.items():
            at.setdefault(point.ts_ms, {})[metric] = point.value
        samples.extend(Sample(device_id, ts, values) for ts, values in sorted(at.items()))
    return samples

