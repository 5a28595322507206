"""The daily safety record (每日安全检查记录), the canteen record and the weekly (周汇报) and
monthly (月总结) summaries: 「坚持进行日检查、周汇报、月总结」, and a ledger that never goes
blank. Sensors fill the record; what no sensor vouches for is `manual` until a person
completes it (gateway/reports/checks.py). A summary is built from the daily records alone.

The state a record needs (the lamps' windows, the learned base loads, alerts, manual
checks, the calendar) is read on the event loop's thread, where rules and alerts live
(`day_states`); the readings are then read and judged in a worker thread (`record`).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Final, Literal, Protocol

from devices import kinds
from gateway.alerting.alerts import Alert, AlertFilter, AlertStore
from gateway.auth.people import Directory, People
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import Device, SiteConfig
from gateway.reports.checks import ManualCheck, ManualChecks, Signed, Written
from gateway.reports.judging import DayState, Judge, utc
from gateway.reports.safety_items import always_manual, completed, uncovered
from gateway.reports.safety_model import (
    AlertLine,
    CanteenRecord,
    Category,
    Completion,
    Counts,
    DayInfo,
    DayLine,
    Entry,
    FridgeLog,
    HourRow,
    Item,
    ItemRef,
    ItemStatus,
    Rectification,
    SafetyRecord,
    SafetySummary,
    Signature,
    Signatures,
)
from gateway.rules.health import silent_after_ms
from gateway.rules.learned import LearnedStore
from gateway.rules.registry import specs
from gateway.rules.uv import UV_NOT_RUN, lamp_window, required_minutes
from gateway.schedule.school_calendar import SchoolCalendar, SchoolDay
from gateway.storage.readings import ReadingStore

# An alert cleared on a day but raised more than this before it is missed by `day_states`
# (the alert store is indexed by when alerts began); open alerts are never missed.
ALERT_LOOKBACK: Final = timedelta(days=31)
_PAGE: Final = 1000
FIRST_DAY: Final = date(1971, 1, 1)  # like the calendar's API: no Unix time before it
_ORDER: Final = list(Category)


class Register(Protocol):
    """A record kept by people in the dashboard (the 留样 register, the fire patrols, …) whose
    state joins the daily record as items: `items` judges one day from the register's own
    table (read on the event loop's thread, so it must be quick: no readings). Its items are
    kept on its own page (`page`, a dashboard view), not ticked in the ledger."""

    page: str

    def items(self, site: SiteConfig, day: SchoolDay, start_ms: int, end_ms: int, as_of_ms: int) -> list[Item]: ...


class Sources(Protocol):
    """What the records are made from: the running gateway has each of these."""

    @property
    def site(self) -> SiteConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def calendar(self) -> SchoolCalendar: ...
    @property
    def store(self) -> ReadingStore: ...
    @property
    def alerts(self) -> AlertStore: ...
    @property
    def checks(self) -> ManualChecks: ...
    @property
    def learned(self) -> LearnedStore: ...
    @property
    def registers(self) -> Sequence[Register]: ...
    @property
    def people(self) -> People: ...


class FutureDay(ValueError):
    """A record of a day that has not begun."""


def _now_ms(gw: Sources) -> int:
    return to_ms(gw.clock.now())


def today(gw: Sources) -> date:
    return gw.calendar.local_date(_now_ms(gw))


def reported(gw: Sources, days: Sequence[date]) -> list[date]:
    """The days of a period that have begun; raises FutureDay when none has."""
    now = today(gw)
    begun = [d for d in days if d <= now]
    if not begun:
        raise FutureDay(f"date must lie between {FIRST_DAY} and today ({now}), not {days[0]}")
    return begun


def day_states(gw: Sources, days: Sequence[date]) -> list[DayState]:
    """What the gateway's live state says about each of `days` (begun, in order), read on
    the event loop's thread."""
    cal, now = gw.calendar, _now_ms(gw)
    lo, hi = cal.day_bounds_ms(days[0])[0], cal.day_bounds_ms(days[-1])[1]
    alerts = _alerts(gw.alerts, lo, hi)
    checks: dict[tuple[date, str], ManualCheck] = {(c.day, c.item): c for c in gw.checks.between(days[0], days[-1])}
    written: dict[date, list[Written]] = {}
    for w in gw.checks.rectifications(days[0], days[-1]):
        written.setdefault(w.day, []).append(w)
    signed: dict[date, list[Signed]] = {}
    for s in gw.checks.signatures(days[0], days[-1]):
        signed.setdefault(s.day, []).append(s)
    names = gw.people.directory()
    # One answer for every replica: what the rules learned, from the store.
    limits: dict[str, tuple[float | None, float | None] | None] = {
        device_id: (b.base_w, b.limit_w) for device_id, b in gw.learned.base_loads().items()}
    out = []
    for d in days:
        start, end = cal.day_bounds_ms(d)
        lamps: dict[str, tuple[tuple[int, int] | None, float] | None] = {}
        for device in gw.site.devices:
            if UV_NOT_RUN.runs_on(device, gw.site.room(device.room).type) is not None:
                lamps[device.id] = (lamp_window(gw.site, cal, device, d), required_minutes(device))
        out.append(DayState(
            info=cal.day(d), start_ms=start, end_ms=end, as_of_ms=min(now, end),
            open_spans={b.id: [s for k in (-1, 0, 1) for s in cal.open_spans_ms(b.id, d + timedelta(days=k))]
                        for b in gw.site.buildings},
            closing_ms={b.id: cal.closing_ms(b.id, d) for b in gw.site.buildings},
            lamps=lamps, limits=limits,
            alerts=[a for a in alerts if a.first_ms < end and (a.cleared_ms is None or a.cleared_ms >= start)],
            completions={item: completion(c, names) for (on, item), c in checks.items() if on == d},
            registered=[i.model_copy(update={"page": r.page}) for r in gw.registers
                        for i in r.items(gw.site, cal.day(d), start, end, min(now, end))],
            rectifications=rectifications(written.get(d, []), names),
            signatures=signatures(signed.get(d, []), names),
            actors={a.acked_by: names.actor(a.acked_by) for a in alerts if a.acked_by is not None},
        ))
    return out


def _alerts(store: AlertStore, lo: int, hi: int) -> list[Alert]:
    """Alerts active at some time in [lo, hi): raised before `hi` and not cleared before `lo`."""
    found = {a.id: a for a in store.open_alerts() if a.first_ms < hi}
    since = lo - int(ALERT_LOOKBACK.total_seconds() * 1000)
    offset = 0
    while True:
        page = store.find(AlertFilter(since_ms=since, until_ms=hi, limit=_PAGE, offset=offset))
        found.update((a.id, a) for a in page if a.cleared_ms is None or a.cleared_ms >= lo)
        if len(page) < _PAGE:
            return sorted(found.values(), key=lambda a: (a.first_ms, a.id))
        offset += _PAGE


def completion(c: ManualCheck, names: Directory) -> Completion:
    return Completion(result=c.result, note=c.note, by=names.actor(c.by), at=utc(c.at_ms))


def rectifications(written: Sequence[Written], names: Directory) -> dict[str, Rectification]:
    """By item: the stages people wrote of its rectification."""
    out: dict[str, Rectification] = {}
    for w in written:
        entry = Entry(text=w.text, by=names.actor(w.by), at=utc(w.at_ms))
        out[w.item] = out.get(w.item, Rectification()).model_copy(update={w.stage: entry})
    return out


def signatures(signed: Sequence[Signed], names: Directory) -> Signatures:
    return Signatures(**{s.role: Signature(by=names.actor(s.by), at=utc(s.at_ms)) for s in signed})


def _info(state: DayState, site: SiteConfig) -> DayInfo:
    i = state.info
    kind_zh, kind_en = site.day_kind_words(i.kind)
    return DayInfo(date=i.date, kind=i.kind, kind_zh=kind_zh, kind_en=kind_en, school_day=i.school_day,
                   name_zh=i.name_zh, name_en=i.name_en)


def _counts(items: Sequence[Item]) -> Counts:
    counts = dict.fromkeys(ItemStatus, 0)
    for item in items:
        counts[item.status] += 1
    return counts


def judges(kind: str) -> list[Callable[[Judge, Device], Item]]:
    """The judges of a device of `kind` for the daily record: those of the rules that apply
    to the kind, in the registry's order. A judge itself says when its rule is off."""
    return [s.judge for s in specs().values() if s.judge is not None and s.applies(kind)]


def record(store: ReadingStore, site: SiteConfig, state: DayState) -> SafetyRecord:
    """The daily safety record of one day (in a worker thread: it reads the store)."""
    j = Judge(store, site, state, silent_after_ms)
    sensed: list[Item] = [judge(j, d) for d in site.devices for judge in judges(d.kind)]
    items = sorted(sensed + uncovered(site, state.info), key=lambda i: _ORDER.index(i.category))
    items = [completed(i, state.completions.get(i.id), state.rectifications.get(i.id))
             for i in items + always_manual(site, state.info) + state.registered]
    return SafetyRecord(
        site=site.id, site_name=site.name, day=_info(state, site), start=utc(state.start_ms), end=utc(state.end_ms),
        as_of=utc(state.as_of_ms), complete=state.as_of_ms >= state.end_ms, counts=_counts(items), items=items,
        alerts=[_alert(a, state) for a in state.alerts], signatures=state.signatures,
    )


def _alert(a: Alert, state: DayState) -> AlertLine:
    return AlertLine(
        id=a.id, rule=a.rule, device=a.device_id, building=a.building_id, room=a.room_id, severity=a.severity,
        state=a.state, title_zh=a.title_zh, title_en=a.title_en, first=utc(a.first_ms), last=utc(a.last_ms),
        cleared=None if a.cleared_ms is None else utc(a.cleared_ms), acked_by=a.acked_by,
        acked_by_actor=None if a.acked_by is None else state.actors.get(a.acked_by),
        acked_at=None if a.acked_ms is None else utc(a.acked_ms), ack_comment=a.ack_comment,
    )


# ------------------------------------------------------------------------------- canteen


def canteen(store: ReadingStore, site: SiteConfig, state: DayState) -> CanteenRecord:
    """The canteen manager's page of the day: each sample fridge's hourly temperatures, the
    kitchens' fridge, UV and door items and the canteen's manual checks (same items, same
    ids as the daily record, so completing one completes it in both)."""
    kitchens = {r.id for b in site.buildings for r in b.rooms if r.type == "kitchen"}
    items = [i for i in record(store, site, state).items
             if i.category is Category.CANTEEN
             or (i.room in kitchens and i.category in (Category.FRIDGE, Category.UV, Category.DOOR))]
    fridges = [i for i in items if i.category is Category.FRIDGE]
    good = (ItemStatus.PASS, ItemStatus.DONE)
    compliant = (None if not fridges or any(i.status not in (*good, ItemStatus.FAIL) for i in fridges)
                 else all(i.status in good for i in fridges))
    logs = []
    # The kitchens' cold stores: a gauge that the device's settings keep within a range.
    for d in (d for d in site.devices if d.room in kitchens):
        for m in kinds()[d.kind].metrics:
            if m.allowed is None:
                continue
            low, high = m.allowed.of(d.kind_settings())
            logs.append(FridgeLog(device=d.id, name=d.name or d.id, range_min_c=low,
                                  range_max_c=high, hours=_hours(store, site, state, d.id, m.key)))
    return CanteenRecord(site=site.id, site_name=site.name, day=_info(state, site), as_of=utc(state.as_of_ms),
                         complete=state.as_of_ms >= state.end_ms, compliant=compliant, fridges=logs,
                         counts=_counts(items), items=items)


def _hours(store: ReadingStore, site: SiteConfig, state: DayState, device_id: str, metric: str) -> list[HourRow]:
    """Min, max and mean of the readings by local hour of the day: 24 rows, empty hours too."""
    by_hour: list[list[float]] = [[] for _ in range(24)]
    for p in store.points(device_id, metric, state.start_ms, state.as_of_ms, 200_000):
        by_hour[from_ms(p.ts_ms, site.tz).hour].append(p.value)
    return [HourRow(hour=h, min_c=min(v, default=None), max_c=max(v, default=None),
                    mean_c=round(sum(v) / len(v), 2) if v else None, readings=len(v))
            for h, v in enumerate(by_hour)]


# ----------------------------------------------------------------------------- summaries


def week_days(week: str) -> list[date]:
    """The days of ISO week `2026-W42`. Raises ValueError for a week the year does not have."""
    year, number = int(week[:4]), int(week[6:])
    monday = date.fromisocalendar(year, number, 1)
    return [monday + timedelta(days=k) for k in range(7)]


def month_days(month: str) -> list[date]:
    """The days of month `2026-10`. Raises ValueError for a month the calendar does not have."""
    year, number = int(month[:4]), int(month[5:7])
    return [date(year, number, d) for d in range(1, calendar.monthrange(year, number)[1] + 1)]


def summary(store: ReadingStore, site: SiteConfig, states: Sequence[DayState], period: str,
            kind: Literal["week", "month"], first: date) -> SafetySummary:
    """A week or a month from the daily records of its `states` (the days that have begun)."""
    records = [record(store, site, s) for s in states]
    totals = dict.fromkeys(ItemStatus, 0)
    for r in records:
        for status, n in r.counts.items():
            totals[status] += n

    def refs(status: ItemStatus) -> list[ItemRef]:
        return [ItemRef(date=r.day.date, id=i.id, category=i.category, subject=i.subject, check_zh=i.check_zh,
                        check_en=i.check_en, status=i.status, detail_zh=i.detail_zh, detail_en=i.detail_en,
                        completion=i.completion, rectification=i.rectification)
                for r in records for i in r.items if i.status is status]

    return SafetySummary(
        site=site.id, site_name=site.name, period=period, kind=kind, first=first, last=records[-1].day.date,
        as_of=records[-1].as_of,
        days=[DayLine(day=r.day, counts=r.counts, alerts=len(r.alerts), signatures=r.signatures) for r in records],
        totals=totals, open_manual=refs(ItemStatus.MANUAL), fails=refs(ItemStatus.FAIL),
        alerts=len({a.id for r in records for a in r.alerts}),
    )
