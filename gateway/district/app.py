"""A district replica's HTTP server: its operations endpoints, the district's page, and every
school under `/sites/<id>/` (the school's own API and dashboard, exactly as a school's gateway
serves them at `/`).

Any replica answers for any school: one it runs itself, from that school's running gateway;
one another replica runs, by passing the request on to that replica (its address is in the
state store beside its heartbeat) and streaming the answer back, the live stream included. A
school's requests are thus all answered by the one process that runs it, which holds its live
state (device states, the live stream, the rules) and is its only writer. While a school is
being taken over nobody runs it: 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import Receive, Scope, Send

import dashboards
from gateway.api.auth import router as auth_router
from gateway.api.dashboard import asset_version
from gateway.api.district import router as district_router
from gateway.api.guard import SecurityHeaders, refusal_counter
from gateway.auth.audit import DISTRICT, AuditTrail
from gateway.auth.people import People
from gateway.auth.store import AuthStore
from gateway.clock import Clock
from gateway.config import SiteConfig
from gateway.config.auth import AuthSettings
from gateway.config.stored import ConfigStore, with_school
from gateway.district.leases import Leases
from gateway.district.runner import District
from gateway.storage.readings import ReadingStore, open_readings
from gateway.storage.state import StateDatabase

log = logging.getLogger(__name__)

# Marks a request one replica passed on to another, which answers it or refuses (never a loop).
FORWARDED_BY = "x-facility-forwarded-by"
# Headers of one connection, never passed on (RFC 9110 7.6.1), and the Host, which is the target's.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host"})


def district_app(sites: dict[str, SiteConfig], state_url: str, clock: Clock, replica: str,
                 lease_s: float, url: str | None) -> FastAPI:
    """`url`: where the other replicas reach this one (`http://host:port`), to pass requests on."""
    db = StateDatabase(state_url)
    # The leases' own connections: a turn that renews them never waits for one behind the schools'
    # work (thirty schools starting at once held the shared pool past a lease's time to live).
    leases = Leases(StateDatabase(state_url, connections=4), replica, lease_s, url)
    refused = refusal_counter()  # requests refused by the server or any school's API
    district = District(sites, db, leases, clock, refused)
    schools = _SchoolDispatch(district)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = asyncio.create_task(district.run(app.state.stopping), name="district")
        app.state.runner = runner
        try:
            yield
        finally:
            app.state.stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await schools.close()
            db.close()
            leases.db.close()

    app = FastAPI(title="Facility gateway — district replica", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, redirect_slashes=False)
    # The district's own page and API (gateway/api/district.py): its accounts, every school's figures.
    auth = AuthStore(db, AuthSettings(), AuditTrail(db, DISTRICT))
    app.state.district = _Sources(db, clock, sites)
    app.state.auth = auth
    app.state.people = People(auth, [])
    app.state.clock = clock
    app.state.stopping = asyncio.Event()
    app.state.http_refused = refused
    app.add_middleware(SecurityHeaders)
    app.include_router(auth_router)
    app.include_router(district_router)
    app.mount(f"/static/{asset_version()}", StaticFiles(directory=dashboards.STATIC), name="static")
    registry = CollectorRegistry(auto_describe=True)
    registry.register(refused)
    Gauge("facility_district_sites", "Sites of the deployment", registry=registry).set_function(
        lambda: len(district.sites))
    Gauge("facility_district_sites_owned", "Sites this replica holds the lease of, and runs",
          registry=registry).set_function(lambda: len(district.running))
    Gauge("facility_district_lease_turns_failed", "Lease turns (renewing every lease held) that failed",
          registry=registry).set_function(lambda: district.turns_failed)
    registry.register(_SitesMetrics(district))

    @app.get("/health", tags=["operations"])
    async def health() -> JSONResponse:
        """200 while the replica takes its turns; the schools it runs and how each is."""
        out = district.health()
        runner = getattr(app.state, "runner", None)
        alive = runner is not None and not runner.done()
        return JSONResponse({"status": "ok" if alive else "stopped", **out}, status_code=200 if alive else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/sites/{site_id}", include_in_schema=False)
    async def school_root(site_id: str) -> Response:
        if site_id not in district.sites:
            return _no_such_school()
        return RedirectResponse(f"/sites/{site_id}/", status_code=308)

    app.mount("/sites/{site_id}", schools)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/district", status_code=307)

    return app


class _Sources:
    """The schools as the district view reads them: each with its settings as stored now (a
    head of logistics may have changed them in the dashboard), its readings from the shared store."""

    def __init__(self, db: StateDatabase, clock: Clock, files: dict[str, SiteConfig]) -> None:
        self.db = db
        self.clock = clock
        self._files = files
        self._configs = {site_id: ConfigStore(db, site_id) for site_id in files}
        self._readings: dict[str, ReadingStore] = {}

    def sites(self) -> list[SiteConfig]:
        out = []
        for site_id, site in self._files.items():
            stored = self._configs[site_id].current()
            out.append(site if stored is None else with_school(site, stored.school))
        return out

    def readings(self, site_id: str) -> ReadingStore:
        store = self._readings.get(site_id)
        if store is None:
            store = self._readings[site_id] = open_readings(self._files[site_id], self.db)
        return store


def _no_such_school() -> JSONResponse:
    return JSONResponse({"detail": {"zh": "没有这所学校", "en": "no such school"}}, status_code=404)


class _SchoolDispatch:
    """Hands a request under `/sites/<id>/` to that school's API, if this replica runs it."""

    def __init__(self, district: District) -> None:
        self._district = district
        # No read timeout: the live stream stays open for as long as the page does.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5, read=None), follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        site_id = scope["path_params"]["site_id"]
        app = self._district.app(site_id)
        if app is not None:
            await app(scope, receive, send)
            return
        if site_id not in self._district.sites:
            await _no_such_school()(scope, receive, send)
            return
        request = Request(scope, receive)
        url = None
        if FORWARDED_BY not in request.headers:  # passed on once at most
            url = await asyncio.to_thread(self._district.leases.runner_url, site_id)
        if url is None or url == self._district.url:
            await self._being_taken_over()(scope, receive, send)
            return
        await self._pass_on(request, url, send, scope)

    async def _pass_on(self, request: Request, base: str, send: Send, scope: Scope) -> None:
        headers = [(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP]
        headers.append((FORWARDED_BY, self._district.replica))
        target = base.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = request.stream() if request.method not in ("GET", "HEAD") else None
        try:
            answer = await self._client.send(
                self._client.build_request(request.method, target, headers=headers, content=body), stream=True)
        except httpx.TransportError as exc:
            log.warning("the replica running %s at %s did not answer: %s", scope["path_params"]["site_id"], base, exc)
            await self._being_taken_over()(scope, request.receive, send)
            return
        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:  # the browser gone too (a live stream closed): the upstream connection with it
                await answer.aclose()

        response = StreamingResponse(relay(), status_code=answer.status_code,
                                     headers={k: v for k, v in answer.headers.items() if k not in HOP_BY_HOP})
        await response(scope, request.receive, send)

    def _being_taken_over(self) -> Response:
        return JSONResponse(
            {"detail": {"zh": "这所学校正在由另一个副本接管，请稍后再试",
                        "en": "this school is being taken over by another replica: try again shortly"}},
            status_code=503, headers={"Retry-After": str(max(1, round(self._district.lease_s / 3)))})


class _SitesMetrics(Collector):
    """Each running school's metrics, labelled with its site: one family per name."""

    def __init__(self, district: District) -> None:
        self._district = district

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for site_id, running in sorted(self._district.running.items()):
            if running.gateway is None:
                continue
            for metric in running.gateway.counters.registry.collect():
                family = families.get(metric.name)
                if family is None:
                    family = families[metric.name] = Metric(metric.name, metric.documentation, metric.type,
                                                            metric.unit)
                for s in metric.samples:
                    family.add_sample(s.name, {"site": site_id, **s.labels}, s.value, s.timestamp, s.exemplar)
        yield from families.values()
