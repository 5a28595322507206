"""A district replica's HTTP server: its operations endpoints, and each school it runs under
`/sites/<id>/` (the school's own API and dashboard, exactly as a school's gateway serves them
at `/`).

A school run by another replica answers 503 with `Retry-After` here: a load balancer in front
of the replicas retries it on another (docs/district.md says how to route by site).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, RedirectResponse
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
from gateway.district.runner import District
from gateway.storage.readings import ReadingStore, open_readings
from gateway.storage.state import StateDatabase


def district_app(sites: dict[str, SiteConfig], db: StateDatabase, clock: Clock, replica: str,
                 lease_s: float) -> FastAPI:
    refused = refusal_counter()  # requests refused by the server or any school's API
    district = District(sites, db, clock, replica, lease_s, refused)

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
            db.close()

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

    app.mount("/sites/{site_id}", _SchoolDispatch(district))

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        site_id = scope["path_params"]["site_id"]
        app = self._district.app(site_id)
        if app is not None:
            await app(scope, receive, send)
            return
        if site_id not in self._district.sites:
            response = _no_such_school()
        else:
            response = JSONResponse(
                {"detail": {"zh": "这所学校由另一个副本运行,或正在接管中,请稍后再试",
                            "en": "this school is run by another replica, or being taken over: try again shortly"}},
                status_code=503, headers={"Retry-After": str(max(1, round(self._district.lease_s / 3)))})
        await response(scope, receive, send)


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
