"""The HTTP API (FastAPI): devices, readings, HTTP ingest, the dead-letter log, health and
metrics. OpenAPI at /docs.

Reading needs a viewer (or an API key with the `read` scope), HTTP ingest the `ingest`
scope or a staff login (gateway/auth/store.py). /health and /metrics stay open: they are for the
load balancer and Prometheus, and name no readings."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter

from devices import kinds
from devices.base import Metric, MetricType, Reason, StateWords
from gateway.api.access import Ingester, Viewer
from gateway.api.problems import problems
from gateway.api.query_limit import HeavyQuery, query_limiter
from gateway.clock import from_ms, to_ms
from gateway.ingest.pipeline import BufferFull, json_array_items
from gateway.runtime import Gateway

router = APIRouter()
# Reads and ingest need credentials, name a device, validate their query, and ingest may be
# told to come back later.
GUARDED = problems(401, 403, 404, 422, 503)
# Heavy queries (gateway/api/query_limit.py) may be told to come back later too.
BUSY = GUARDED | {503: GUARDED[503] | {"description": "too many heavy queries at once; see Retry-After"}}
Start = Annotated[AwareDatetime | None,
                  Query(description="ISO 8601 with an offset (or Unix seconds); default: 24 h before end")]
End = Annotated[AwareDatetime | None, Query(description="ISO 8601 with an offset (or Unix seconds); default: now")]
MAX_STEP_S = 366 * 86_400

MAX_RAW_POINTS = 10_000
MAX_BUCKETS = 5_000
HTTP_INGEST_WAIT_S = 2.0
HTTP_DURABLE_WAIT_S = 10.0


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


class MetricOut(BaseModel):
    key: str
    unit: str
    type: MetricType
    label_zh: str
    label_en: str
    words: StateWords | None = Field(description="a state's two values as people read them")
    tile: bool = Field(description="shown on the device's live tile")

    @classmethod
    def of(cls, m: Metric) -> MetricOut:
        return cls(key=m.key, unit=m.unit, type=m.type, label_zh=m.label_zh, label_en=m.label_en, words=m.words,
                   tile=m.tile)


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


class RejectedOut(BaseModel):
    at: datetime
    source: str
    device_id: str
    reason: str
    detail: str
    preview: str


class IngestProblem(BaseModel):
    index: int
    device_id: str
    reason: str
    detail: str


class IngestResult(BaseModel):
    accepted: int
    rejected: list[IngestProblem]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    site: str
    components: dict[str, dict[str, str]]






def _device_out(gw: Gateway, device_id: str) -> DeviceOut:
    d = gw.site.device(device_id)
    assert d is not None
    kind = kinds()[d.kind]
    state = gw.states.get(device_id)
    values: dict[str, float | bool] = {}
    for key, point in state.latest.items():
        metric = kind.metric(key)
        values[key] = bool(point.value) if metric and metric.type is MetricType.STATE else point.value
    return DeviceOut(
        id=d.id, kind=d.kind, name=d.name, room=d.room, building=gw.site.building_of(d.room).id,
        interval_s=d.interval_s, last_values=values, last_seen=gw.states.last_seen(device_id),
        online=gw.states.online(device_id),
    )


def _window(gw: Gateway, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """A query's time range: `end` defaults to now, `start` to 24 h before `end`."""
    end = end or gw.clock.now()
    try:
        start = start or end - timedelta(days=1)
        start.astimezone(gw.site.tz)  # local-time buckets need this too
    except OverflowError:
        raise HTTPException(422, "start and end must lie between the years 1 and 9999 (site time)") from None
    if start >= end:
        raise HTTPException(422, "start must be before end")
    return start, end


def _known(gw: Gateway, device_id: str) -> None:
    if gw.site.device(device_id) is None:
        raise HTTPException(404, f"no device {device_id!r} in site {gw.site.id!r}")


@router.get("/api/v1/devices", tags=["devices"], responses=GUARDED)
def list_devices(gw: GatewayDep, _: Viewer) -> list[DeviceOut]:
    return [_device_out(gw, d.id) for d in gw.site.devices]


@router.get("/api/v1/devices/{device_id}", tags=["devices"], responses=GUARDED)
def get_device(gw: GatewayDep, _: Viewer, device_id: str) -> DeviceDetail:
    _known(gw, device_id)
    d = gw.site.device(device_id)
    assert d is not None
    kind = kinds()[d.kind]
    return DeviceDetail(
        **_device_out(gw, device_id).model_dump(),
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
    gw: GatewayDep, _: Viewer, _slot: HeavyQuery,
    device_id: str,
    metric: Annotated[str | None, Query(description="a metric key; all of the device's when omitted")] = None,
    start: Start = None,
    end: End = None,
    step: Annotated[str | None, Query(description="bucket width (300, 5m, 1h, 1d): raw points if omitted",
                                      pattern=rf"^\s*[0-9]{{1,{_STEP_DIGITS}}}[smhd]?\s*$")] = None,
) -> Response:
    """A device's readings in a time window, per metric: raw points (at most MAX_RAW_POINTS
    a series, the oldest first; `next` says where to go on) or buckets of `step`."""
    _known(gw, device_id)
    d = gw.site.device(device_id)
    assert d is not None
    kind = kinds()[d.kind]
    start, end = _window(gw, start, end)
    if metric is not None and kind.metric(metric) is None:
        known = ", ".join(m.key for m in kind.metrics)
        raise HTTPException(422, f"a {d.kind} has no metric {metric!r} (known: {known})")
    step_s = _step_seconds(step) if step is not None else None
    if step_s is not None and (end - start).total_seconds() / step_s > MAX_BUCKETS:
        raise HTTPException(422, f"more than {MAX_BUCKETS} buckets: use a larger step")
    keys = [metric] if metric else gw.store.metrics_of(device_id)
    offset = start.astimezone(gw.site.tz).utcoffset()
    offset_ms = int(offset.total_seconds() * 1000) if offset else 0
    out: list[SeriesOut] = []
    for key in keys:
        m = kind.metric(key)
        unit = m.unit if m else ""
        points: list[PointOut] | list[BucketOut]
        truncated, next_start = False, None
        if step_s is None:
            raw = gw.store.points(device_id, key, to_ms(start), to_ms(end), MAX_RAW_POINTS + 1)
            if len(raw) > MAX_RAW_POINTS:
                truncated, next_start = True, from_ms(raw[MAX_RAW_POINTS].ts_ms)
            points = [PointOut(ts=from_ms(p.ts_ms), value=p.value) for p in raw[:MAX_RAW_POINTS]]
        else:
            points = [
                BucketOut(ts=from_ms(b.ts_ms), mean=b.mean, min=b.min, max=b.max, count=b.count)
                for b in gw.store.buckets(device_id, key, to_ms(start), to_ms(end), step_s * 1000, offset_ms)
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
    gw: GatewayDep, _: Viewer, _slot: HeavyQuery,
    device_id: str,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """A device's events (door access), newest first."""
    _known(gw, device_id)
    start, end = _window(gw, start, end)
    return _json(_EVENTS, [EventOut(ts=from_ms(e.ts_ms), type=e.type, data=e.data)
                           for e in gw.store.events(device_id, to_ms(start), to_ms(end), limit)])


@router.post(
    "/api/v1/readings",
    tags=["ingest"],
    responses=GUARDED,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "description": "one reading or a list: {device_id, ts?, <the kind's fields>}; any JSON is "
                       "taken, and each item that is not a reading is rejected with its reason",
    }}}}},
)
async def post_readings(gw: GatewayDep, _: Ingester, request: Request) -> IngestResult:
    """HTTP ingest: the same validation as MQTT. Answers, once the items are durable, which
    were rejected and why; 503 when the gateway cannot keep up or cannot write its spool
    (send again later: a reading sent twice is stored once)."""
    body = await request.body()
    return await run_in_threadpool(_ingest_http, gw, body)


def _ingest_http(gw: Gateway, body: bytes) -> IngestResult:
    received_ms = to_ms(gw.clock.now())
    problems: list[IngestProblem] = []
    accepted = 0
    try:
        try:
            items = json_array_items(body)
        except ValueError as exc:
            _not_json(gw, f"the body is a malformed JSON array: {exc}", body, received_ms)
        for i, item in enumerate([body] if items is None else items):
            error = gw.ingestor.accept_named("http", item, received_ms, HTTP_INGEST_WAIT_S)
            if error is None:
                accepted += 1
            elif items is None and error.reason is Reason.NOT_JSON:
                raise HTTPException(422, f"the body is {error.detail}")  # recorded by accept_named
            else:
                problems.append(IngestProblem(index=i, device_id=error.device_id, reason=error.reason.value,
                                              detail=error.detail))
    except BufferFull as exc:
        raise HTTPException(503, f"{exc}; the first {accepted + len(problems)} items were taken",
                            headers={"Retry-After": "5"}) from None
    # Answer only once the items are durable: a client that gets 200 may forget them.
    durable = threading.Event()
    gw.buffer.after(durable.set)
    if not durable.wait(HTTP_DURABLE_WAIT_S):
        raise HTTPException(503, f"{accepted} items are accepted but not yet durable (spool: "
                                 f"{gw.health()['spool'].get('detail', '')}); send them again later",
                            headers={"Retry-After": "30"})
    return IngestResult(accepted=accepted, rejected=problems)


def _not_json(gw: Gateway, detail: str, body: bytes, received_ms: int) -> NoReturn:
    """A body that is not one reading nor a list of them: rejected whole, as MQTT rejects a
    payload, and answered 422."""
    gw.ingestor.refuse("http", "", Reason.NOT_JSON, detail, body, received_ms, HTTP_INGEST_WAIT_S)
    raise HTTPException(422, detail)


@router.get("/api/v1/rejected", tags=["ingest"], responses=GUARDED)
def list_rejected(
    gw: GatewayDep, _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    reason: Annotated[Reason | None, Query()] = None,
) -> list[RejectedOut]:
    rows = gw.spool.rejections(limit, reason.value if reason else None)
    return [RejectedOut(at=from_ms(r.at_ms), source=r.source, device_id=r.device_id, reason=r.reason,
                        detail=r.detail, preview=r.preview) for r in rows]


# /health and /metrics must answer however busy the API is. They are `async` and take the
# gateway from the request, not from `GatewayDep`: a sync route or dependency waits for a slot
# in the thread pool that API work (readings, reports) may fill. What they read is in memory,
# but behind locks that a spool commit (an fsync) can hold for a while, too long to block the
# event loop: so they run in threads of their own, which nothing else uses.
_OPERATIONS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="operations")


@router.get("/health", tags=["operations"])
async def health(request: Request) -> HealthOut:
    gw: Gateway = request.app.state.gateway
    parts = await asyncio.get_running_loop().run_in_executor(_OPERATIONS, gw.health)
    ok = all(p["state"] == "ok" for p in parts.values())
    return HealthOut(status="ok" if ok else "degraded", site=gw.site.id, components=parts)


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    query_limiter(request)  # so that its counters show before the first heavy query
    body = await asyncio.get_running_loop().run_in_executor(_OPERATIONS, gw.counters.exposition)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
