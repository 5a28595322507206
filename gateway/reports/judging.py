"""The toolkit of the daily safety record's sensor items: the day (`DayState`), the reader
of its readings (`Judge`) and the helpers every judge uses. Each judge lives with its rule
(gateway/rules/, `RuleSpec.judge`) and judges by the same definitions the rule uses (its
parameters, the lamp's window, the learned base load, the flow and power of a reading); how
each status is decided is in docs/reports.md. This module imports no rule module: the rule
modules import it.

Two choices hold for every sensor item. A reading vouches for its value until the next one
for at most the device's offline threshold (gateway/rules/health.py `silent_after_ms`, handed
to the `Judge`); beyond that the time is a gap, and an item whose judged time has a gap is
`manual` unless what the data does show already fails it. And an excursion, an opening or a
run of flow is measured whole, also where it runs past midnight, so one that straddles two
days fails both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

from devices.base import Sample
from gateway.auth.actor import Actor
from gateway.clock import from_ms
from gateway.reports.safety_model import Category, Completion, Item, ItemStatus, Rectification, Signatures, SpanOut
from gateway.reports.safety_series import (
    Held,
    Span,
    clip,
    gaps,
    held,
    intersect,
    minus,
    overlaps,
    runs,
    total_ms,
    where,
)

if TYPE_CHECKING:
    from gateway.alerting.alerts import Alert
    from gateway.config import Device, SiteConfig
    from gateway.schedule.school_calendar import SchoolDay
    from gateway.storage.readings import ReadingStore

MIN_MS: Final = 60_000
def no_school(site: SiteConfig) -> tuple[str, str]:
    """Why a check is not asked for on a day nobody comes in."""
    zh, en = site.day_word(school_day=False)
    return f"{zh}，无需消毒", f"{en[0].upper()}{en[1:]}: no disinfection needed"
# A day of one reading a second fits; past it the rest of the day shows as a gap (manual).
MAX_POINTS: Final = 200_000
WHOLE_MS: Final = 24 * 3_600_000  # how far past the day a run that reaches beyond it is followed


@dataclass(frozen=True)
class DayState:
    """One local day, with what the gateway's live state says about it: read on the event
    loop's thread, where the rules and alerts live; the readings are read later, elsewhere."""

    info: SchoolDay
    start_ms: int
    end_ms: int
    as_of_ms: int  # min(now, end of the day)
    open_spans: dict[str, list[Span]]  # building → open spans from the day before to the day after
    closing_ms: dict[str, int | None]  # building → when it closed that day
    lamps: dict[str, tuple[Span | None, float] | None]  # lamp → (window, minutes required); None: rule off
    limits: dict[str, tuple[float | None, float | None] | None]  # meter → (base W, limit W); None: rule off
    alerts: list[Alert]
    completions: dict[str, Completion]
    registered: list[Item]  # the registers' items (留样, fire patrols, …), judged when the state was read
    rectifications: dict[str, Rectification]  # item → what people wrote of its rectification
    signatures: Signatures
    actors: dict[str, Actor]  # the alerts' acknowledgers, named when the state was read


class Judge:
    """Reads one day's readings from the store and judges sensor items. Runs in a worker
    thread: the store's queries open their own connections."""

    def __init__(self, store: ReadingStore, site: SiteConfig, day: DayState,
                 silent_after_ms: Callable[[Device], float]) -> None:
        self.store = store
        self._silent_after_ms = silent_after_ms
        self.site = site
        self.day = day
        self.tz = site.tz
        self.judged: Span = (day.start_ms, day.as_of_ms)

    def hold_ms(self, device: Device) -> int:
        return round(self._silent_after_ms(device))

    def points(self, device_id: str, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        return [(p.ts_ms, p.value) for p in self.store.points(device_id, metric, lo, hi, MAX_POINTS)]

    def samples(self, device_id: str, metrics: Sequence[str], lo: int, hi: int) -> list[Sample]:
        """The device's readings of `metrics`, joined by time into samples as they arrived."""
        values: dict[int, dict[str, float]] = {}
        for metric in metrics:
            for ts, value in self.points(device_id, metric, lo, hi):
                values.setdefault(ts, {})[metric] = value
        return [Sample(device_id, ts, values[ts]) for ts in sorted(values)]

    def closed(self, building_id: str, lo: int, hi: int) -> list[Span]:
        return minus((lo, hi), self.day.open_spans[building_id])

    def span(self, span: Span) -> SpanOut:
        lo, hi = span
        return SpanOut(start=utc(lo), end=utc(hi), minutes=minutes(hi - lo))

    def clock(self, ms: int) -> str:
        """Local time; with the date when it is not on the record's day."""
        local = from_ms(ms, self.tz)
        return f"{local:%H:%M}" if local.date() == self.day.info.date else f"{local:%m-%d %H:%M}"

    def spans(self, spans: Sequence[Span], sep: str = ", ") -> str:
        """Up to three spans of local times; Chinese sentences pass `sep="、"`."""
        shown = sep.join(f"{self.clock(lo)}–{self.clock(hi)}" for lo, hi in spans[:3])
        return shown + (" …" if len(spans) > 3 else "")


def utc(ms: int) -> datetime:
    return from_ms(ms, UTC)


def minutes(ms: float) -> float:
    return round(ms / MIN_MS, 1)


def record_item(item_id: str, category: Category, device: Device | None, site: SiteConfig, status: ItemStatus,
          detail: tuple[str, str], *, subject: str | None = None, building: str | None = None,
          room: str | None = None) -> Item:
    check_zh, check_en = CHECKS[category]
    if device is not None:
        room = device.room
        building = site.building_of(device.room).id
        subject = device.name or device.id
    return Item(id=item_id, category=category, building=building, room=room,
                device=None if device is None else device.id, subject=subject or "", check_zh=check_zh,
                check_en=check_en, status=status, needs_check=status is ItemStatus.MANUAL,
                detail_zh=detail[0], detail_en=detail[1])


def verdict(failed: bool, holes: Sequence[Span], readings: int) -> ItemStatus:
    """A failure the data shows stands; otherwise missing data needs a person; otherwise pass."""
    if failed:
        return ItemStatus.FAIL
    if holes or readings == 0:
        return ItemStatus.MANUAL
    return ItemStatus.PASS


def missing(j: Judge, holes: Sequence[Span], readings: int) -> tuple[str, str]:
    if readings == 0:
        return "传感器没有读数，无法判断，请人工检查", "no readings from the sensor: check by hand"
    gone = minutes(total_ms(holes))
    return (f"数据中断 {gone:g} 分钟（{j.spans(holes, '、')}），传感器无法判断，请人工检查",
            f"no data for {gone:g} min ({j.spans(holes)}): the sensor cannot tell, check by hand")


def lamp_run(points: Sequence[tuple[int, float]], window: Span, as_of_ms: int, hold_ms: int,
             warmup_ms: float = 0, occupied: Sequence[Span] = ()) -> tuple[float, list[Span]]:
    """The minutes a lamp counts in its window up to `as_of_ms`, and the stretches of the
    window no reading vouches for: one count for the daily record and the dashboard. `points`
    are its `on` readings from `hold_ms` before the window on (each holds until the next, or
    for `hold_ms`, the device's silence). A run counts from `warmup_ms` after it began and
    not while its room was `occupied` (docs/uv.md)."""
    lo, hi = window
    judged = (lo, max(lo, min(hi, as_of_ms)))
    begin = min([lo, *(ts for ts, _ in points[:1])])  # a run begun before the window warms up before it
    lit = [(round(start + warmup_ms), end) for start, end in runs(where(held(list(points), begin, judged[1], hold_ms),
                                                                           bool))]
    counted = [part for span in intersect(lit, [judged]) for part in minus(span, occupied)]
    stretches = held(list(points), *judged, hold_ms)
    return minutes(total_ms(counted)), gaps(stretches, [judged]) if judged[0] < judged[1] else []


@dataclass(frozen=True)
class Closed:
    """A condition (open, flowing, above the limit) during the day's closed hours."""

    hours: list[Span]  # the building's closed hours of the day, up to as_of
    episodes: list[Span]  # runs of the condition that overlap them, whole
    inside: list[Held[float]]  # the condition's stretches within them
    holes: list[Span]
    readings: int  # in the closed hours


def after_hours(j: Judge, d: Device, points: Callable[[int, int], list[tuple[int, float]]], margin_ms: int,
            condition: Callable[[float], bool]) -> Closed:
    """Reads only the closed hours (and `margin_ms` around the day, for runs across midnight):
    on a school day that is about half of it. `points(lo, hi)` is called once per closed span."""
    building = j.site.building_of(d.room).id
    lo, hi = j.day.start_ms - margin_ms, min(j.day.end_ms + margin_ms, j.day.as_of_ms)
    closed_around = j.closed(building, lo, hi)
    hours = intersect(closed_around, [j.judged])
    hold = j.hold_ms(d)
    found = [p for span_lo, span_hi in closed_around for p in points(span_lo - hold, span_hi)]
    stretches = clip(held(found, lo, hi, hold), closed_around)
    within = clip(stretches, hours)
    episodes = [r for r in runs(where(stretches, condition)) if overlaps(r, hours)]
    readings = sum(1 for ts, _ in found if overlaps((ts, ts + 1), hours))
    return Closed(hours, episodes, where(within, condition), gaps(within, hours), readings)


def whole_run(j: Judge, d: Device, run: Span, points: Callable[[int, int], list[tuple[int, float]]],
              condition: Callable[[float], bool]) -> Span:
    """The run of `condition` while the building is closed that contains `run`, whole, as its
    rule sees it: from its first reading to the first that ends it (or the opening). A run
    that reaches past the margin around the day (load left on from 19:00 to 06:00) is followed
    up to `WHOLE_MS` further, so that both days it touches give the figures of the whole."""
    lo, hi = run
    spans = j.day.open_spans[j.site.building_of(d.room).id]

    def still(ts: int, value: float) -> bool:
        return condition(value) and not any(a <= ts < b for a, b in spans)

    found = points(lo - WHOLE_MS, hi + WHOLE_MS)
    start = lo
    for ts, value in reversed([p for p in found if p[0] < lo]):
        if not still(ts, value):
            break
        start = ts
    end = next((ts for ts, value in found if ts >= hi and not still(ts, value)), max(hi, found[-1][0] if found else hi))
    return start, end


def longest_of(episodes: Sequence[Span]) -> Span | None:
    return max(episodes, key=lambda r: r[1] - r[0], default=None)


class Labelled(Protocol):
    """A rule's spec, as far as a sentence names it."""

    @property
    def label_zh(self) -> str: ...
    @property
    def label_en(self) -> str: ...


def disabled(item_id: str, category: Category, d: Device, site: SiteConfig, rule: Labelled) -> Item:
    return record_item(item_id, category, d, site, ItemStatus.NOT_REQUIRED,
                       (f"本设备已关闭「{rule.label_zh}」检查", f"the “{rule.label_en}” check is off for this device"))


CHECKS: Final[dict[Category, tuple[str, str]]] = {
    Category.FRIDGE: ("留样冰箱全天温度合格", "Sample fridge in range all day"),
    Category.UV: ("紫外线消毒灯运行时长达标", "UV lamp ran its minutes"),
    Category.DOOR: ("闭园后门已关好", "Doors closed after hours"),
    Category.WATER: ("夜间无跑水漏水", "No running water at night"),
    Category.POWER: ("闭园后无异常用电", "No unusual load after hours"),
    Category.CANTEEN: ("食堂登记", "Canteen register"),
    Category.GUARD: ("门卫巡查", "Guard's round"),
    Category.FIRE: ("消防巡查", "Fire-safety patrol"),
}
