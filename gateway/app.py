"""The gateway: its parts wired together, started and stopped in one place.

`Gateway` is an async context manager that owns every long-lived task in one TaskGroup:
the spooler, one writer per sink, retention, one poller per Modbus or DL/T 645 bus, and the
MQTT transport (on paho's thread). `create_app` puts it in
FastAPI's lifespan, with optional companions started before it (the embedded broker) and
after it (simulators).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import Counter

import dashboards
from gateway.api.auth import router as auth_router
from gateway.api.docs import install_docs
from gateway.api.guard import BodyLimit, SecurityHeaders, refusal_counter
from gateway.clock import Clock
from gateway.config import SiteConfig
from gateway.district.ownership import StoppedStandingBy
from gateway.runtime import Gateway

log = logging.getLogger(__name__)

Companion = Callable[[Gateway], AbstractAsyncContextManager[None]]


def create_app(
    site: SiteConfig,
    clock: Clock,
    *,
    before: Sequence[Callable[[], AbstractAsyncContextManager[None]]] = (),
    after: Sequence[Companion] = (),
) -> FastAPI:
    """One school's gateway and its API, in one process (`facility-gateway run`, the demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for start in before:
                await stack.enter_async_context(start())
            try:
                gateway = await stack.enter_async_context(Gateway(site, clock, stopping=app.state.stopping))
            except StoppedStandingBy as stopped:
                log.info("%s: it never ran the site", stopped)
                yield  # the stop was asked for already: uvicorn stops at once
                return
            gateway.counters.registry.register(app.state.http_refused)
            attach(app, gateway)
            for companion in after:
                await stack.enter_async_context(companion(gateway))
            yield

    app = site_app(site, lifespan)
    app.state.stopping = asyncio.Event()  # a stop asked for before the gateway runs (a standby's)
    return app


def site_app(site: SiteConfig, lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
             refused: Counter | None = None) -> FastAPI:
    """A school's API and dashboard, answered by the gateway that `attach` gives it.
    `refused`: the count of refused requests it adds to (the server's; a new one by default)."""
    from gateway.api.admin import router as admin_router
    from gateway.api.alerts import router as alerts_router
    from gateway.api.closing import router as closing_router
    from gateway.api.dashboard import asset_version
    from gateway.api.dashboard import router as dashboard_router
    from gateway.api.devices import router as devices_router
    from gateway.api.discovered import router as discovered_router
    from gateway.api.energy import router as energy_router
    from gateway.api.ingest import router as ingest_router
    from gateway.api.operations import router as operations_router
    from gateway.api.overview import router as overview_router
    from gateway.api.patrols import router as patrols_router
    from gateway.api.reports import router as reports_router
    from gateway.api.samples import router as samples_router
    from gateway.api.sweeps import router as sweeps_router
    from gateway.api.uv import router as uv_router
    from gateway.api.work_orders import photo_allowance
    from gateway.api.work_orders import router as work_orders_router

    app = FastAPI(
        title="Facility gateway",
        summary=f"{site.name}: meters, UV lamps, sample fridges and doors",
        version="0.1.0",
        lifespan=lifespan,
        # /docs is served from the package (install_docs), never from a CDN.
        docs_url=None,
        redoc_url=None,
        # Starlette's slash redirect writes the request's Host header into Location.
        redirect_slashes=False,
    )
    # Outermost last: the 413 answer gets the security headers too.
    refused = refused or refusal_counter()
    app.state.http_refused = refused
    app.add_middleware(BodyLimit, max_bytes=site.api.max_body_bytes, refused=refused,
                       allowances=[photo_allowance(site)])
    app.add_middleware(SecurityHeaders)
    install_docs(app)
    for router in (devices_router, ingest_router, operations_router, alerts_router, work_orders_router, auth_router,
                   dashboard_router, closing_router, sweeps_router, overview_router, reports_router, energy_router,
                   samples_router, patrols_router, admin_router, discovered_router, uv_router):
        app.include_router(router)
    # The path names the files' version, so a browser never runs old and new scripts together.
    app.mount(f"/static/{asset_version()}", StaticFiles(directory=dashboards.STATIC), name="static")
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app


def attach(app: FastAPI, gateway: Gateway) -> FastAPI:
    """Gives a school's API (`site_app`) the running gateway it answers from."""
    app.state.gateway = gateway
    app.state.auth = gateway.auth
    app.state.people = gateway.people
    app.state.clock = gateway.clock
    return app


async def invalid_request(request: Request, exc: Exception) -> Response:
    """422 without FastAPI's echo of the rejected input: that would send a password back,
    and a lone surrogate in it (valid JSON, not UTF-8) broke rendering the answer (a 500).
    ASCII-escaped JSON renders whatever the location holds."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
    return Response(json.dumps({"detail": errors}, ensure_ascii=True), 422, media_type="application/json")
