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
from pydantic import BaseModel, Field

import dashboards
from devices import kinds
from devices.base import ClosingCondition, Label, StateWords
from gateway.api.access import Grant, Viewer, ViewerGrant
from gateway.api.alerts import utc
from gateway.api.deps import (
    LiveDep,
    SiteDep,
)
from gateway.api.devices import MetricOut
from gateway.api.problems import GUARDED
from gateway.config import SchoolKind, SiteConfig
from gateway.device_state import DeviceStates
from gateway.live import LiveBus
from gateway.rules.registry import specs
from gateway.rules.uv import lamp_window
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.site import Device
from gateway.storage.readings import ReadingStore

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


class LabelOut(BaseModel):
    """A setting, an event or an event's field as people read it (`devices.base.Label`)."""

    key: str
    label_zh: str
    label_en: str
    unit_zh: str
    unit_en: str
    words: StateWords | None = Field(description="a yes/no value's two words")

    @classmethod
    def of(cls, key: str, label: Label) -> LabelOut:
        return cls(key=key, label_zh=label.zh, label_en=label.en, unit_zh=label.unit_zh, unit_en=label.unit_en,
                   words=label.words)


class EventTypeOut(LabelOut):
    fields: list[LabelOut]


class KindOut(BaseModel):
    label_zh: str
    label_en: str
    metrics: list[MetricOut]
    events: list[str]  # the types of event its devices send (a door's card reader: access)
    event_labels: dict[str, EventTypeOut] = Field(description="each event type and its fields as people read them")
    settings: list[LabelOut] = Field(description="the per-device settings, with their labels and units")


class RuleOut(BaseModel):
    label_zh: str
    label_en: str


class SiteOut(BaseModel):
    id: str
    name: str
    kind: SchoolKind = Field(description="kindergarten, primary, secondary or school: a kindergarten's days are 开园日")
    timezone: str
    buildings: list[BuildingOut]
    kinds: dict[str, KindOut]
    rules: dict[str, RuleOut]  # every rule by id, in the registry's order, with its labels


def _site(site: SiteConfig) -> SiteOut:
    used = {d.kind for d in site.devices}
    return SiteOut(
        id=site.id, name=site.name, kind=site.kind, timezone=site.timezone,
        buildings=[BuildingOut(id=b.id, name=b.name, rooms=[RoomOut(id=r.id, name=r.name, type=r.type)
                                                               for r in b.rooms]) for b in site.buildings],
        kinds={
            k.name: KindOut(label_zh=k.label_zh, label_en=k.label_en, metrics=[MetricOut.of(m) for m in k.metrics],
                            events=k.event_types,
                            event_labels={t: EventTypeOut(**LabelOut.of(t, label).model_dump(),
                                                          fields=[LabelOut.of(f, x) for f, x in fields.items()])
                                          for t, (label, fields) in k.event_labels().items()},
                            settings=[LabelOut.of(key, x) for key, x in k.setting_labels().items()])
            for k in kinds().values() if k.name in used
        },
        rules={spec.id: RuleOut(label_zh=spec.label_zh, label_en=spec.label_en) for spec in specs().values()},
    )


@router.get("/api/v1/site", tags=["dashboard"], responses=GUARDED)
def get_site(site: SiteDep, _: Viewer) -> SiteOut:
    """Buildings, rooms and the kinds of device at this site, with their metrics' labels; the
    rules, with theirs."""
    return _site(site)


# ------------------------------------------- what the overview and the closing board share


class DeviceRef(BaseModel):
    device: str
    name: str
    room: str
    building: str
    online: bool


class DoorOut(DeviceRef):
    open_since: datetime | None


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


async def _doors_open(site: SiteConfig, states: DeviceStates, store: ReadingStore,
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
    return lamp_window(site, calendar, d, calendar.local_date(now_ms))


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


# The district's page (gateway/api/district.py): its own script and style, not the school's.
DISTRICT_PAGE = ("district.js", "district.css")


def _own(suffix: str) -> list[str]:
    static = dashboards.STATIC
    return sorted(str(p.relative_to(static)) for p in static.rglob(f"*{suffix}")
                  if "vendor" not in p.relative_to(static).parts and p.name not in DISTRICT_PAGE)


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
        # "" on a school's own gateway; the prefix a district replica serves this school under.
        "base": request.scope.get("root_path", ""),
    })
