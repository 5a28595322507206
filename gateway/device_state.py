"""What the gateway knows of each device right now: its newest value per metric and when it
was last heard from. Kept in memory, seeded from the store at start.

Online is the offline rule's definition (gateway/rules/health.py `silent_after_ms`): silent
for its missed intervals by the time of receipt, or last reported offline by its bridge. A
backfilled reading (an old event time) still proves the device is there now."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.clock import Clock, from_ms, to_ms
from gateway.config import SiteConfig
from gateway.rules.health import silent_after_ms
from gateway.storage.sqlite import Point


@dataclass(slots=True)
class DeviceState:
    latest: dict[str, Point] = field(default_factory=dict)
    last_seen_ms: int | None = None  # the newest reading's event time
    heard_ms: int | None = None  # when the gateway last received something (its clock)


class DeviceStates:
    def __init__(self, site: SiteConfig, clock: Clock) -> None:
        self._clock = clock
        self._states: dict[str, DeviceState] = {}
        self._grace_ms: dict[str, float] = {}
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        """A new device starts unheard; a device kept keeps what it reported; a retired one
        is forgotten (what is still on its way is stored and then ignored here)."""
        self._states = {d.id: self._states.get(d.id) or DeviceState() for d in site.devices}
        self._grace_ms = {d.id: silent_after_ms(d) for d in site.devices}

    def seed(self, latest: dict[str, dict[str, Point]]) -> None:
        for device_id, points in latest.items():
            state = self._states.get(device_id)
            if state is not None:
                state.latest.update(points)
                state.last_seen_ms = max(p.ts_ms for p in points.values())
                # Received at or after its event time: the best lower bound a restart knows.
                state.heard_ms = state.last_seen_ms

    def update(self, device_id: str, ts_ms: int, values: Iterable[tuple[str, float]]) -> None:
        state = self._states.get(device_id)
        if state is None:  # retired while its reading was on its way
            return
        latest = state.latest
        for metric, value in values:
            old = latest.get(metric)
            if old is None or old.ts_ms <= ts_ms:  # a late, older reading does not overwrite
                latest[metric] = Point(ts_ms, value)
        if state.last_seen_ms is None or ts_ms > state.last_seen_ms:
            state.last_seen_ms = ts_ms
        state.heard_ms = to_ms(self._clock.now())

    def get(self, device_id: str) -> DeviceState:
        return self._states[device_id]

    def last_seen(self, device_id: str) -> datetime | None:
        ms = self._states[device_id].last_seen_ms
        return None if ms is None else from_ms(ms, UTC)

    def online(self, device_id: str) -> bool:
        """Received from within the offline rule's silence, and not last reported offline by
        its bridge."""
        state = self._states[device_id]
        if state.heard_ms is None or state.last_seen_ms is None:
            return False
        reported = state.latest.get("online")
        if reported is not None and not reported.value and reported.ts_ms >= state.last_seen_ms:
            return False
        return to_ms(self._clock.now()) - state.heard_ms <= self._grace_ms[device_id]
