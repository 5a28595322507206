"""The live bus: what changed, fanned out to open dashboards (server-sent events).

Each subscriber holds at most one pending update per key: a device's newest values, the
newest state of an alert. A browser that reads slowly therefore costs memory bounded by the
number of devices and open alerts, never a queue that grows, and what it gets next is
always the newest state (overflow policy: coalesce, newest wins). Publishing costs nothing
while nobody watches. Called from the event loop's thread only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from devices import kinds
from devices.base import Event, MetricType, Sample
from gateway.config import SiteConfig
from gateway.counters import Counters


class Subscription:
    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, dict[str, Any]]] = {}
        self._ready = asyncio.Event()
        self.closed = False

    def put(self, key: str, kind: str, data: dict[str, Any]) -> None:
        self._pending[key] = (kind, data)
        self._ready.set()

    def merge(self, key: str, kind: str, data: dict[str, Any], values: dict[str, Any]) -> None:
        """Like `put`, but values not yet sent stay unless newer ones replace them."""
        pending = self._pending.get(key)
        if pending is not None:
            data["values"] = pending[1]["values"] | values
        self.put(key, kind, data)

    async def next(self, timeout_s: float) -> list[tuple[str, dict[str, Any]]]:
        """Everything pending, oldest key first; empty after `timeout_s` of quiet or on close."""
        if not self._pending and not self.closed:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return []
        self._ready.clear()
        out, self._pending = list(self._pending.values()), {}
        return out

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class LiveBus:
    def __init__(self, site: SiteConfig, counters: Counters) -> None:
        self._subscribers: set[Subscription] = set()
        self._states: dict[str, frozenset[str]] = {}
        self.reconfigure(site)
        counters.gauge("facility_live_subscribers", "Dashboards connected to the live stream",
                       lambda: len(self._subscribers))

    def reconfigure(self, site: SiteConfig) -> None:
        by_kind = {name: frozenset(m.key for m in kind.metrics if m.type is MetricType.STATE)
                   for name, kind in kinds().items()}
        self._states = {d.id: by_kind[d.kind] for d in site.devices}

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        sub = Subscription()
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def committed(self, items: Sequence[tuple[int, Sample | Event]]) -> None:
        """Readings and events as the spool commits them."""
        if not self._subscribers:
            return
        for _, item in items:
            if isinstance(item, Sample):
                states = self._states.get(item.device_id, frozenset())
                values = {k: bool(v) if k in states else v for k, v in item.values.items()}
                for sub in self._subscribers:
                    data = {"device": item.device_id, "ts": item.ts_ms, "values": values}
                    sub.merge(f"reading:{item.device_id}", "reading", data, values)
            else:
                data = {"device": item.device_id, "ts": item.ts_ms, "type": item.type, "data": item.data}
                for sub in self._subscribers:
                    sub.put(f"event:{item.device_id}", "event", data)

    def publish(self, key: str, kind: str, data: dict[str, Any]) -> None:
        """Anything else that changed (an alert, a work order), newest state per key."""
        for sub in self._subscribers:
            sub.put(key, kind, data)

    def close(self) -> None:
        for sub in self._subscribers:
            sub.close()
