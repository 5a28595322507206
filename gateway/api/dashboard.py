"""The web dashboard: the page at `/`, its static files, the views' summaries and the live
stream (server-sent events).

The page is one template and plain ES modules (dashboards/), no build step and no CDN. The
summaries are computed here, from what the gateway holds in memory (devices' newest values,
the rules' state, open alerts) plus a few index lookups in the store, so the browser gets
one small answer per view instead of every device's history.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from functools import cache
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

import dashboards
from devices import kinds, meters
from devices.base import ClosingCondition, Utility
from gateway.alerting.severity import Severity
from gateway.api.access import Grant, Viewer, ViewerGrant
from gateway.api.alerts import utc
from gateway.api.deps import (
    AlertsDep,
    CalendarDep,
    ClockDep,
    LiveDep,
    SiteDep,
    StatesDep,
    StoreDep,
)
from gateway.api.devices import MetricOut
from gateway.api.problems import GUARDED
from gateway.clock import to_ms
from gateway.config import SiteConfig
from gateway.device_state import DeviceStates
from gateway.live import LiveBus
from gateway.reports.judging import MAX_POINTS, lamp_run
from gateway.rules.health import silent_after_ms
from gateway.rules.registry import specs
from gateway.rules.uv import UV_NOT_RUN, disinfection_window, required_minutes
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.site import Device
from gateway.storage.sqlite import SqliteStore, increase

router = APIRouter()
templates = Jinja2Templates(directory=dashboards.TEMPLATES)
# The live stream's heartbeat is `api.live_heartbeat_s`: a comment line that often keeps
# proxies from closing a quiet stream and lets the server notice a browser that went away.
# What the browser waits before reconnecting after the stream broke (the SSE `retry:` field).
RECONNECT_MS = 1000


# --------------------------------------------------------------------------------- the site


class RoomOut(BaseModel):
    id: str
    name: str
    type: str


class BuildingOut(BaseModel):
    id: str
    name: str
    rooms: list[RoomOut]


class KindOut(BaseModel):
    label_zh: str
    label_en: str
    metrics: list[MetricOut]
    events: list[str]  # the types of event its devices send (a door's card reader: access)


class RuleOut(BaseModel):
    label_zh: str
    label_en: str


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    buildings: list[BuildingOut]
    kinds: dict[str, KindOut]
    rules: dict[str, RuleOut]  # every rule by id, in the registry's order, with its labels


def _site(site: SiteConfig) -> SiteOut:
    used = {d.kind for d in site.devices}
    return SiteOut(
        id=site.id, name=site.name, timezone=site.timezone,
        buildings=[BuildingOut(id=b.id, name=b.name, rooms=[RoomOut(id=r.id, name=r.name, type=r.type)
                                                               for r in b.rooms]) for b in site.buildings],
        kinds={
            k.name: KindOut(label_zh=k.label_zh, label_en=k.label_en, metrics=[MetricOut.of(m) for m in k.metrics],
                            events=k.event_types)
            for k in kinds().values() if k.name in used
        },
        rules={spec.id: RuleOut(label_zh=spec.label_zh, label_en=spec.label_en) for spec in specs().values()},
    )


@router.get("/api/v1/site", tags=["dashboard"], responses=GUARDED)
def get_site(site: SiteDep, _: Viewer) -> SiteOut:
    """Buildings, rooms and the kinds of device at this site, with their metrics' labels; the
    rules, with theirs."""
    return _site(site)


# ----------------------------------------------------------------------------- the overview


class DayOut(BaseModel):
    date: str
    kind: str
    school_day: bool
    name_zh: str
    name_en: str


class Comparison(BaseModel):
    """A site's consumption today so far, against the same span of yesterday and of the same
    weekday last week (midnight to the same time of day), from its buildings' main meters."""

    unit: str
    today: float | None
    yesterday: float | None
    last_week: float | None
    yesterday_total: float | None


class DeviceRef(BaseModel):
    device: str
    name: str
    room: str
    building: str
    online: bool


class FridgeOut(DeviceRef):
    metric: str  # the gauge kept within range; the kind says which
    temperature_c: float | None
    at: datetime | None
    min_c: float
    max_c: float
    in_range: bool | None


class DoorOut(DeviceRef):
    open_since: datetime | None


# unknown: the gateway started after the window began, and the lamp has not run its minutes since
LampStatus = Literal["running", "ran", "due", "missed", "unknown", "none"]


class LampOut(DeviceRef):
    on: bool | None
    status: LampStatus
    minutes_run: float
    minutes_required: float
    window_start: datetime | None
    window_end: datetime | None


class OfflineOut(DeviceRef):
    last_seen: datetime | None


class OverviewOut(BaseModel):
    at: datetime
    day: DayOut
    open_alerts: dict[Severity, int]
    unacknowledged: int
    electricity: Comparison
    water: Comparison
    fridges: list[FridgeOut]
    doors_open: list[DoorOut]
    lamps: list[LampOut]
    offline: list[OfflineOut]


def _ref(site: SiteConfig, states: DeviceStates, d: Device) -> DeviceRef:
    return DeviceRef(device=d.id, name=d.name or d.id, room=d.room, building=site.building_of(d.room).id,
                     online=states.online(d.id))


def _latest(states: DeviceStates, device_id: str, metric: str) -> float | None:
    point = states.get(device_id).latest.get(metric)
    return None if point is None else point.value


def _checked(devices: list[Device], condition: ClosingCondition) -> list[tuple[Device, str]]:
    """The devices whose kind's closing check has `condition`, each with the metric it reads."""
    return [(d, check.metric) for d in devices
            if (check := kinds()[d.kind].closing) is not None and check.condition is condition]


def _consumption(start: float | None, end: float | None) -> float | None:
    """A counter's increase between two readings; None when either is unknown."""
    return None if start is None or end is None else increase(start, end)


async def _comparison(site: SiteConfig, cal: SchoolCalendar, store: SqliteStore, utility: Utility,
                      now_ms: int) -> Comparison:
    today = cal.local_date(now_ms)
    midnight, _ = cal.day_bounds_ms(today)
    day_ms, week_ms = 86_400_000, 7 * 86_400_000
    # (start, end) of: today so far, yesterday to this time, last week's same day to this time, all yesterday
    spans = [(midnight, now_ms), (midnight - day_ms, now_ms - day_ms), (midnight - week_ms, now_ms - week_ms),
             (midnight - day_ms, midnight)]
    times = sorted({t for span in spans for t in span})
    kind, counter = meters()[utility]
    metric, unit = counter.key, counter.unit
    main = [d.id for b in site.buildings for d in site.main_meters(kind.name, b)]
    if not main:
        return Comparison(unit=unit, today=None, yesterday=None, last_week=None, yesterday_total=None)
    values = await asyncio.to_thread(store.values_at, metric, main, times)
    totals: list[float | None] = []
    for start, end in spans:
        parts = [_consumption(values[m][times.index(start)], values[m][times.index(end)]) for m in main]
        known = [p for p in parts if p is not None]
        totals.append(round(sum(known), 3) if known else None)
    return Comparison(unit=unit, today=totals[0], yesterday=totals[1], last_week=totals[2],
                      yesterday_total=totals[3])


def _fridges(site: SiteConfig, states: DeviceStates) -> list[FridgeOut]:
    """Every gauge its kind keeps within a range that the device's settings set."""
    out = []
    for d in site.devices:
        for m in kinds()[d.kind].metrics:
            if m.allowed is None:
                continue
            low, high = m.allowed.of(d.kind_settings())
            point = states.get(d.id).latest.get(m.key)
            temp = None if point is None else point.value
            out.append(FridgeOut(
                **_ref(site, states, d).model_dump(), metric=m.key, temperature_c=temp,
                at=None if point is None else utc(point.ts_ms), min_c=low, max_c=high,
                in_range=None if temp is None else low <= temp <= high,
            ))
    return out


async def _doors_open(site: SiteConfig, states: DeviceStates, store: SqliteStore,
                      checked: list[tuple[Device, str]]) -> list[DoorOut]:
    """The devices whose state `metric` reads true now, and since when."""
    open_now = [(d, metric, point.ts_ms) for d, metric in checked
                if (point := states.get(d.id).latest.get(metric)) is not None and point.value]

    def since() -> list[int | None]:
        found: dict[str, int | None] = {}
        for metric in dict.fromkeys(m for _, m, _ in open_now):
            at = [(d.id, ts) for d, m, ts in open_now if m == metric]
            found.update(zip([i for i, _ in at], store.runs_since(metric, 1.0, at), strict=True))
        return [found[d.id] for d, _, _ in open_now]

    began = await asyncio.to_thread(since)
    return [DoorOut(**_ref(site, states, d).model_dump(), open_since=utc(s))
            for (d, _, _), s in zip(open_now, began, strict=True)]


def _window(site: SiteConfig, calendar: SchoolCalendar, d: Device, now_ms: int) -> tuple[int, int] | None:
    """Today's disinfection window of a lamp, None without one (or where the rule is off)."""
    room = site.room(d.room)
    params = UV_NOT_RUN.runs_on(d, room.type)
    if params is None:
        return None
    return disinfection_window(params, calendar, site.building_of(room.id).id, calendar.local_date(now_ms))


async def _lamps(site: SiteConfig, states: DeviceStates, store: SqliteStore, calendar: SchoolCalendar,
                 checked: list[tuple[Device, str]], now_ms: int) -> list[LampOut]:
    """Each lamp's disinfection today, counted from its stored readings as the daily record
    counts it (`lamp_run`): every replica, and a restarted gateway, shows the same minutes."""
    windows = [(d, metric, _window(site, calendar, d, now_ms)) for d, metric in checked]

    def runs() -> list[tuple[float, bool]]:
        out = []
        for d, metric, window in windows:
            if window is None:
                out.append((0.0, True))
                continue
            hold = round(silent_after_ms(d))
            points = store.points(d.id, metric, window[0] - hold, max(window[0], min(window[1], now_ms)),
                                  MAX_POINTS)
            ran, holes = lamp_run([(p.ts_ms, p.value) for p in points], window, now_ms, hold)
            out.append((ran, not holes))
        return out

    lamps = []
    for (d, metric, window), (ran, complete) in zip(windows, await asyncio.to_thread(runs), strict=True):
        on = _latest(states, d.id, metric)
        required = required_minutes(d)
        status: LampStatus
        if window is None:
            status = "none"
        elif on and window[0] <= now_ms < window[1]:
            status = "running"
        elif ran >= required:
            status = "ran"
        elif not complete:
            status = "unknown"
        else:
            status = "due" if now_ms < window[1] else "missed"
        lamps.append(LampOut(
            **_ref(site, states, d).model_dump(), on=None if on is None else bool(on), status=status,
            minutes_run=ran, minutes_required=required, window_start=None if window is None else utc(window[0]),
            window_end=None if window is None else utc(window[1]),
        ))
    return lamps


@router.get("/api/v1/dashboard/overview", tags=["dashboard"], responses=GUARDED)
async def overview(
    site: SiteDep, clock: ClockDep, calendar: CalendarDep, states: StatesDep, store: StoreDep, alerts: AlertsDep,
    _: Viewer,
) -> OverviewOut:
    """Everything that needs attention today, on one screen."""
    now_ms = to_ms(clock.now())
    day = calendar.day(calendar.local_date(now_ms))
    open_alerts = await asyncio.to_thread(alerts.open_alerts)
    counts = dict.fromkeys(Severity, 0)
    for a in open_alerts:
        counts[a.severity] += 1
    return OverviewOut(
        at=utc(now_ms),
        day=DayOut(date=day.date.isoformat(), kind=day.kind, school_day=day.school_day, name_zh=day.name_zh,
                   name_en=day.name_en),
        open_alerts=counts,
        unacknowledged=sum(1 for a in open_alerts if a.acked_by is None),
        electricity=await _comparison(site, calendar, store, "electricity", now_ms),
        water=await _comparison(site, calendar, store, "water", now_ms),
        fridges=_fridges(site, states),
        doors_open=await _doors_open(site, states, store, _checked(site.devices, ClosingCondition.TRUE)),
        lamps=await _lamps(site, states, store, calendar,
                           _checked(site.devices, ClosingCondition.TRUE_UNLESS_SCHEDULED), now_ms),
        offline=[OfflineOut(**_ref(site, states, d).model_dump(), last_seen=states.last_seen(d.id))
                 for d in site.devices if not states.online(d.id)],
    )


# ------------------------------------------------------------------------- the live stream


async def _events(live: LiveBus, heartbeat_s: float, grant: Grant) -> AsyncIterator[str]:
    """The stream, until the gateway stops or the caller's access ends: checked once a
    heartbeat, busy or quiet, before anything more is sent. The browser then reconnects
    and is told 401."""
    loop = asyncio.get_running_loop()
    yield f"retry: {RECONNECT_MS}\n\n"
    with live.subscribe() as sub:
        yield "event: hello\ndata: {}\n\n"
        check_at = loop.time() + heartbeat_s
        while not sub.closed:
            batch = await sub.next(max(0.0, check_at - loop.time()))
            if loop.time() >= check_at:
                # A primary-key lookup, in a worker thread: the auth store's lock may be
                # held by a login's transaction, which must not stall the event loop.
                if not await asyncio.to_thread(grant.holds):
                    return
                check_at = loop.time() + heartbeat_s
            if not batch:
                if not sub.closed:
                    yield ": ping\n\n"
                continue
            yield "".join(f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
                          for kind, data in batch)


@router.get(
    "/api/v1/live", tags=["dashboard"], response_class=StreamingResponse,
    responses=GUARDED | {200: {"content": {"text/event-stream": {}},
                               "description": "server-sent events: `reading`, `event`, `alert`, `work_order`"}},
)
async def live(site: SiteDep, bus: LiveDep, grant: ViewerGrant) -> StreamingResponse:
    """What changes, as it happens: each device's newest values (`reading`), door and card
    events (`event`), alert and work-order changes. A slow reader gets the newest state of
    each thing, never a backlog. The stream ends within `api.live_heartbeat_s` of its
    session or key no longer being valid (logout, expiry, a disabled user, a revoked key)."""
    return StreamingResponse(_events(bus, site.api.live_heartbeat_s, grant), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# ---------------------------------------------------------------------------------- the page


@cache
def asset_version() -> str:
    """Changes whenever a static file does, so browsers never mix old and new scripts."""
    digest = hashlib.sha256()
    for path in sorted(dashboards.STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _own(suffix: str) -> list[str]:
    static = dashboards.STATIC
    return sorted(str(p.relative_to(static)) for p in static.rglob(f"*{suffix}")
                  if "vendor" not in p.relative_to(static).parts)


@cache
def page_modules() -> list[str]:
    """The dashboard's own script modules besides app.js (not the vendored libraries)."""
    return [m for m in _own(".js") if m != "app.js"]


@cache
def page_styles() -> list[str]:
    """app.css, then each view's own style sheet (views/<view>.css)."""
    return sorted(_own(".css"), key=lambda name: name != "app.css")


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def page(request: Request, site: SiteDep,
         lang: Annotated[Literal["zh-CN", "en"] | None, Query()] = None) -> HTMLResponse:
    """The dashboard. It asks for a login only if reading needs one (auth.public_read)."""
    return templates.TemplateResponse(request, "index.html", {
        "lang": lang or "zh-CN", "title": site.name, "version": asset_version(), "modules": page_modules(),
        "styles": page_styles(),
    })
