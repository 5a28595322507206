"""The HTTP API of devices: the site's devices, their readings and their events. OpenAPI
at /docs.

Reading needs a viewer (or an API key with the `read` scope, gateway/auth/store.py). HTTP
ingest is in gateway/api/ingest.py, /health and /metrics in gateway/api/operations.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter

from devices import kinds
from devices.base import Metric, MetricType, SettingsRange, StateWords
from gateway.api.access import Viewer
from gateway.api.deps import ClockDep, SiteDep, StatesDep, StoreDep
from gateway.api.problems import BUSY, GUARDED
from gateway.api.query_limit import HeavyQuery
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import SiteConfig
from gateway.device_state import DeviceStates

router = APIRouter()
Start = Annotated[AwareDatetime | None,
                  Query(description="ISO 8601 with an offset (or Unix seconds); default: 24 h before end")]
End = Annotated[AwareDatetime | None, Query(description="ISO 8601 with an offset (or Unix seconds); default: now")]
MAX_STEP_S = 366 * 86_400

MAX_RAW_POINTS = 10_000
MAX_BUCKETS = 5_000


class MetricOut(BaseModel):
    key: str
    unit: str
    type: MetricType
    label_zh: str
    label_en: str
    words: StateWords | None = Field(description="a state's two values as people read them")
    tile: bool = Field(description="shown on the device's live tile")
    allowed: SettingsRange | None = Field(None, description="the two settings of the device that bound its "
                                                            "allowed range (a fridge's min_c and max_c)")

    @classmethod
    def of(cls, m: Metric) -> MetricOut:
        return cls(key=m.key, unit=m.unit, type=m.type, label_zh=m.label_zh, label_en=m.label_en, words=m.words,
                   tile=m.tile, allowed=m.allowed)


class DeviceOut(BaseModel):
    id: str
    kind: str
    name: str
    room: str
    building: str
    interval_s: float
    last_values: dict[str, float | bool]
    last_seen: datetime | None
    online: bool


class SourceOut(BaseModel):
    protocol: str = Field(description="zigbee2mqtt, tasmota, shelly, modbus or dlt645")
    where: str = Field(description="the meter on its bus, or the device's main MQTT topic")


class DeviceDetail(DeviceOut):
    metrics: list[MetricOut]
    settings: dict[str, Any]
    source: SourceOut | None = Field(None, description="where the data comes from; none: native JSON")


class PointOut(BaseModel):
    ts: datetime
    value: float


class BucketOut(BaseModel):
    ts: datetime
    mean: float
    min: float
    max: float
    count: int


class SeriesOut(BaseModel):
    device_id: str
    metric: str
    unit: str
    start: datetime
    end: datetime
    step_s: int | None
    truncated: bool = Field(description=f"raw points only: the window holds more than {MAX_RAW_POINTS:,}; these "
                                        "are the oldest")
    next: datetime | None = Field(None, description="where a truncated series goes on: ask again with this as "
                                                    "`start` (and the metric), or ask for buckets with `step`")
    points: list[PointOut] | list[BucketOut]


def _device_out(site: SiteConfig, states: DeviceStates, device_id: str) -> DeviceOut:
    d = site.device(device_id)
    assert d is not None
    kind = kinds()[d.kind]
    state = states.get(device_id)
    values: dict[str, float | bool] = {}
    for key, point in state.latest.items():
        metric = kind.metric(key)
        values[key] = bool(point.value) if metric and metric.type is MetricType.STATE else point.value
    return DeviceOut(
        id=d.id, kind=d.kind, name=d.name, room=d.room, building=site.building_of(d.room).id,
        interval_s=d.interval_s, last_values=values, last_seen=states.last_seen(device_id),
        online=states.online(device_id),
    )


def _window(site: SiteConfig, clock: Clock, start: datetime | None,
            end: datetime | None) -> tuple[datetime, datetime]:
    """A query's time range: `end` defaults to now, `start` to 24 h before `end`."""
    end = end or clock.now()
    try:
        start = start or end - timedelta(days=1)
        start.astimezone(site.tz)  # local-time buckets need this too
    except OverflowError:
        raise HTTPException(422, "start and end must lie between the years 1 and 9999 (site time)") from None
    if start >= end:
        raise HTTPException(422, "start must be before end")
    return start, end


def _known(site: SiteConfig, device_id: str) -> None:
    if site.device(device_id) is None:
        raise HTTPException(404, f"no device {device_id!r} in site {site.id!r}")


def _kind_of(site: SiteConfig, device_id: str) -> str:
    """The kind of a device, in service or retired: a retired one's readings and events stay."""
    device = site.device(device_id) or next((d for d in site.retired if d.id == device_id), None)
    if device is None:
        raise HTTPException(404, f"no device {device_id!r} in site {site.id!r}")
    return device.kind


@router.get("/api/v1/devices", tags=["devices"], responses=GUARDED)
def list_devices(site: SiteDep, states: StatesDep, _: Viewer) -> list[DeviceOut]:
    return [_device_out(site, states, d.id) for d in site.devices]


@router.get("/api/v1/devices/{device_id}", tags=["devices"], responses=GUARDED)
def get_device(site: SiteDep, states: StatesDep, _: Viewer, device_id: str) -> DeviceDetail:
    _known(site, device_id)
    d = site.device(device_id)
    assert d is not None
    kind = kinds()[d.kind]
    return DeviceDetail(
        **_device_out(site, states, device_id).model_dump(),
        metrics=[MetricOut.of(m) for m in kind.metrics],
        settings=d.kind_settings().model_dump(),
        source=None if d.source is None else SourceOut(protocol=d.source.protocol, where=d.source.where()),
    )


# Nine digits hold every step up to a year in seconds; the bound also keeps int() from
# converting an endless number (Python refuses more than 4300 digits with a ValueError).
_STEP_DIGITS = 9
_DURATION = re.compile(rf"^([0-9]{{1,{_STEP_DIGITS}}})([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _step_seconds(step: str) -> int:
    m = _DURATION.match(step.strip())
    if m is None or int(m[1]) == 0:
        shown = step if len(step) <= _STEP_DIGITS + 3 else f"{step[:_STEP_DIGITS]}…"
        raise HTTPException(422, f"step {shown!r} is not a duration like 300, 5m, 1h or 1d")
    seconds = int(m[1]) * _UNIT_S[m[2]]
    if seconds > MAX_STEP_S:
        raise HTTPException(422, f"step {step!r} is longer than a year")
    return seconds


# Large answers are serialised to JSON here, in the route's worker thread. Left to FastAPI,
# that happens on the event loop: about 17 ms for two series of 10,000 points, so a second
# of a stalled loop (and of waiting /health probes) for 60 such answers at once.
_SERIES = TypeAdapter(list[SeriesOut])


def _json(adapter: TypeAdapter[Any], value: object) -> Response:
    return Response(adapter.dump_json(value), media_type="application/json")


@router.get("/api/v1/devices/{device_id}/readings", tags=["devices"], responses=BUSY,
            response_model=list[SeriesOut])
def get_readings(
    site: SiteDep, clock: ClockDep, store: StoreDep, _: Viewer, _slot: HeavyQuery,
    device_id: str,
    metric: Annotated[str | None, Query(description="a metric key; all of the device's when omitted")] = None,
    start: Start = None,
    end: End = None,
    step: Annotated[str | None, Query(description="bucket width (300, 5m, 1h, 1d): raw points if omitted",
                                      pattern=rf"^\s*[0-9]{{1,{_STEP_DIGITS}}}[smhd]?\s*$")] = None,
) -> Response:
    """A device's readings in a time window, per metric: raw points (at most MAX_RAW_POINTS
    a series, the oldest first; `next` says where to go on) or buckets of `step`."""
    kind_name = _kind_of(site, device_id)
    kind = kinds()[kind_name]
    start, end = _window(site, clock, start, end)
    if metric is not None and kind.metric(metric) is None:
        known = ", ".join(m.key for m in kind.metrics)
        raise HTTPException(422, f"a {kind_name} has no metric {metric!r} (known: {known})")
    step_s = _step_seconds(step) if step is not None else None
    if step_s is not None and (end - start).total_seconds() / step_s > MAX_BUCKETS:
        raise HTTPException(422, f"more than {MAX_BUCKETS} buckets: use a larger step")
    keys = [metric] if metric else store.metrics_of(device_id)
    offset = start.astimezone(site.tz).utcoffset()
    offset_ms = int(offset.total_seconds() * 1000) if offset else 0
    out: list[SeriesOut] = []
    for key in keys:
        m = kind.metric(key)
        unit = m.unit if m else ""
        points: list[PointOut] | list[BucketOut]
        truncated, next_start = False, None
        if step_s is None:
            raw = store.points(device_id, key, to_ms(start), to_ms(end), MAX_RAW_POINTS + 1)
            if len(raw) > MAX_RAW_POINTS:
                truncated, next_start = True, from_ms(raw[MAX_RAW_POINTS].ts_ms)
            points = [PointOut(ts=from_ms(p.ts_ms), value=p.value) for p in raw[:MAX_RAW_POINTS]]
        else:
            points = [
                BucketOut(ts=from_ms(b.ts_ms), mean=b.mean, min=b.min, max=b.max, count=b.count)
                for b in store.buckets(device_id, key, to_ms(start), to_ms(end), step_s * 1000, offset_ms)
            ]
        out.append(SeriesOut(device_id=device_id, metric=key, unit=unit, start=start, end=end,
                             step_s=step_s, truncated=truncated, next=next_start, points=points))
    return _json(_SERIES, out)


class EventOut(BaseModel):
    ts: datetime
    type: str
    data: dict[str, Any]


_EVENTS = TypeAdapter(list[EventOut])


@router.get("/api/v1/devices/{device_id}/events", tags=["devices"], responses=BUSY, response_model=list[EventOut])
def get_events(
    site: SiteDep, clock: ClockDep, store: StoreDep, _: Viewer, _slot: HeavyQuery,
    device_id: str,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """A device's events (door access), newest first."""
    _kind_of(site, device_id)
    start, end = _window(site, clock, start, end)
    return _json(_EVENTS, [EventOut(ts=from_ms(e.ts_ms), type=e.type, data=e.data)
                           for e in store.events(device_id, to_ms(start), to_ms(end), limit)])
