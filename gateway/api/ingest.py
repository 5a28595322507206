"""The HTTP API of ingest: readings posted over HTTP, and the log of rejected messages
(the dead letters of every transport).

Posting needs the `ingest` scope or a staff login, reading the log a viewer
(gateway/auth/store.py)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from devices.base import Reason
from gateway.api.access import Ingester, Viewer
from gateway.api.deps import BufferDep, ClockDep, HealthCheck, HealthDep, IngestorDep, SpoolDep
from gateway.api.problems import GUARDED
from gateway.clock import Clock, from_ms, to_ms
from gateway.ingest.pipeline import BufferFull, IngestBuffer, Ingestor, json_array_items

router = APIRouter()
HTTP_INGEST_WAIT_S = 2.0
HTTP_DURABLE_WAIT_S = 10.0


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


@router.post(
    "/api/v1/readings",
    tags=["ingest"],
    responses=GUARDED,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "description": "one reading or a list: {device_id, ts?, <the kind's fields>}; any JSON is "
                       "taken, and each item that is not a reading is rejected with its reason",
    }}}}},
)
async def post_readings(
    clock: ClockDep, ingestor: IngestorDep, buffer: BufferDep, health: HealthDep, _: Ingester, request: Request,
) -> IngestResult:
    """HTTP ingest: the same validation as MQTT. Answers, once the items are durable, which
    were rejected and why; 503 when the gateway cannot keep up or cannot write its spool
    (send again later: a reading sent twice is stored once)."""
    body = await request.body()
    return await run_in_threadpool(_ingest_http, clock, ingestor, buffer, health, body)


def _ingest_http(
    clock: Clock, ingestor: Ingestor, buffer: IngestBuffer, health: HealthCheck, body: bytes,
) -> IngestResult:
    received_ms = to_ms(clock.now())
    problems: list[IngestProblem] = []
    accepted = 0
    try:
        try:
            items = json_array_items(body)
        except ValueError as exc:
            _not_json(ingestor, f"the body is a malformed JSON array: {exc}", body, received_ms)
        for i, item in enumerate([body] if items is None else items):
            error = ingestor.accept_named("http", item, received_ms, HTTP_INGEST_WAIT_S)
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
    buffer.after(durable.set)
    if not durable.wait(HTTP_DURABLE_WAIT_S):
        raise HTTPException(503, f"{accepted} items are accepted but not yet durable (spool: "
                                 f"{health()['spool'].get('detail', '')}); send them again later",
                            headers={"Retry-After": "30"})
    return IngestResult(accepted=accepted, rejected=problems)


def _not_json(ingestor: Ingestor, detail: str, body: bytes, received_ms: int) -> NoReturn:
    """A body that is not one reading nor a list of them: rejected whole, as MQTT rejects a
    payload, and answered 422."""
    ingestor.refuse("http", "", Reason.NOT_JSON, detail, body, received_ms, HTTP_INGEST_WAIT_S)
    raise HTTPException(422, detail)


@router.get("/api/v1/rejected", tags=["ingest"], responses=GUARDED)
def list_rejected(
    spool: SpoolDep, _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    reason: Annotated[Reason | None, Query()] = None,
) -> list[RejectedOut]:
    rows = spool.rejections(limit, reason.value if reason else None)
    return [RejectedOut(at=from_ms(r.at_ms), source=r.source, device_id=r.device_id, reason=r.reason,
                        detail=r.detail, preview=r.preview) for r in rows]
