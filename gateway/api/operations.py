"""The HTTP API of operations: /health for the load balancer and the supervisor, /metrics
for Prometheus. Both stay open: they name no readings."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from gateway.api.deps import CountersDep, HealthDep, SiteDep
from gateway.api.query_limit import query_limiter

router = APIRouter()


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    site: str
    components: dict[str, dict[str, str]]


# /health and /metrics must answer however busy the API is. They are `async`, and so are
# their dependencies (gateway/api/deps.py): a sync route or dependency waits for a slot in
# the thread pool that API work (readings, reports) may fill. What they read is in memory,
# but behind locks that a spool commit (an fsync) can hold for a while, too long to block the
# event loop: so they run in threads of their own, which nothing else uses.
_OPERATIONS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="operations")


@router.get("/health", tags=["operations"])
async def health(site: SiteDep, check: HealthDep) -> HealthOut:
    parts = await asyncio.get_running_loop().run_in_executor(_OPERATIONS, check)
    ok = all(p["state"] == "ok" for p in parts.values())
    return HealthOut(status="ok" if ok else "degraded", site=site.id, components=parts)


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(site: SiteDep, counters: CountersDep, request: Request) -> Response:
    query_limiter(request, site, counters)  # so that its counters show before the first heavy query
    body = await asyncio.get_running_loop().run_in_executor(_OPERATIONS, counters.exposition)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
