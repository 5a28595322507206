"""Time arithmetic of the safety record: readings held over time, gaps, runs, and spans.

A reading says what held from its time until the next reading, but for at most `hold_ms`
(a few reporting intervals): past that the device was silent and nothing vouches for the
state, so the time is a gap, counted neither in nor out of range. Spans are half-open
[start, end) Unix milliseconds, sorted and disjoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Held(Generic[V]):
    """A stretch of time over which one reading's value held."""

    start: int
    end: int
    value: V


def held(points: Sequence[tuple[int, V]], lo: int, hi: int, hold_ms: int) -> list[Held[V]]:
    """Each reading (time order) holds until the next one, at most `hold_ms`, clipped to [lo, hi).
    Pass the last reading before `lo` too: it holds into the period."""
    out: list[Held[V]] = []
    for i, (ts, value) in enumerate(points):
        following = points[i + 1][0] if i + 1 < len(points) else hi
        start, end = max(ts, lo), min(following, ts + hold_ms, hi)
        if start < end:
            out.append(Held(start, end, value))
    return out


def clip(stretches: Sequence[Held[V]], spans: Sequence[Span]) -> list[Held[V]]:
    """The parts of `stretches` (in time order, as `held` makes them) inside `spans`."""
    out: list[Held[V]] = []
    first = 0
    for h in stretches:
        while first < len(spans) and spans[first][1] <= h.start:
            first += 1
        k = first
        while k < len(spans) and spans[k][0] < h.end:
            start, end = max(h.start, spans[k][0]), min(h.end, spans[k][1])
            if start < end:
                out.append(Held(start, end, h.value))
            k += 1
    return out


def where(stretches: Sequence[Held[V]], keep: Callable[[V], bool]) -> list[Held[V]]:
    return [h for h in stretches if keep(h.value)]


def runs(stretches: Sequence[Held[V]]) -> list[Span]:
    """Stretches that touch, merged: an excursion, an opening, a run of flow. A gap ends a run."""
    out: list[Span] = []
    for h in stretches:
        if out and h.start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], h.end))
        else:
            out.append((h.start, h.end))
    return out


def normalised(spans: Sequence[Span]) -> list[Span]:
    """Sorted, with overlapping and touching spans merged, empty ones dropped."""
    out: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[0] < s[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def minus(span: Span, remove: Sequence[Span]) -> list[Span]:
    """`span` without the `remove` spans."""
    out: list[Span] = []
    cursor, hi = span
    for lo_r, hi_r in normalised(remove):
        if hi_r <= cursor:
            continue
        if lo_r >= hi:
            break
        if lo_r > cursor:
            out.append((cursor, lo_r))
        cursor = max(cursor, hi_r)
    if cursor < hi:
        out.append((cursor, hi))
    return out


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    return normalised([(max(x[0], y[0]), min(x[1], y[1])) for x in a for y in b])


def gaps(stretches: Sequence[Held[V]], spans: Sequence[Span]) -> list[Span]:
    """The parts of `spans` that no reading covers."""
    covered = [(h.start, h.end) for h in stretches]
    return [g for span in spans for g in minus(span, covered)]


def total_ms(spans: Sequence[Span]) -> int:
    return sum(hi - lo for lo, hi in spans)


def overlaps(span: Span, spans: Sequence[Span]) -> bool:
    return any(span[0] < hi and lo < span[1] for lo, hi in spans)


def mean(stretches: Sequence[Held[float]]) -> float | None:
    """Time-weighted mean of the held values."""
    weight = sum(h.end - h.start for h in stretches)
    return None if weight == 0 else sum(h.value * (h.end - h.start) for h in stretches) / weight


def integral_min(stretches: Sequence[Held[float]]) -> float:
    """Σ value × minutes held: litres from L/min, or W·min from W."""
    return sum(h.value * (h.end - h.start) / 60_000 for h in stretches)
