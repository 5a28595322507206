"""The wall clock, injected. Rules run on event time; only watchdogs and schedules read a
`Clock`, so tests move a `ManualClock` instead of sleeping and simulations run accelerated."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class AcceleratedClock:
    """Starts at `start` and runs `speed` times faster than real time."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start
        self._speed = speed
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when


def to_ms(moment: datetime) -> int:
    """A timezone-aware moment as Unix milliseconds, the unit of every timestamp in the store."""
    return int(moment.timestamp() * 1000)


def from_ms(ms: float, tz: tzinfo = UTC) -> datetime:
    """Unix milliseconds as a moment in `tz` (UTC unless told)."""
    return datetime.fromtimestamp(ms / 1000, tz)
