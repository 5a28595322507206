"""The district's view of its schools: the league table (JSON), the district's monthly report
(PDF or CSV), every school's quarterly disclosure, and the page that shows them (`/district`).
Only the district's accounts read them (`access.District`); a school's account is refused in
words.

Wiring, by the process that runs the district: `app.state.district` holds the
`gateway.district.view.DistrictSources`, `app.state.auth` an `AuthStore` on the district's audit
trail (`AuthStore(db, settings, AuditTrail(db, DISTRICT))`), `app.state.clock` the clock, and the
dashboard's static files are mounted as gateway/app.py mounts them. Each school's dashboard is
served under `sites/{site_id}/`, next to this page: its rows link there.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse

from gateway.api.access import District
from gateway.api.dashboard import asset_version, templates
from gateway.api.energy import PeriodQuery
from gateway.api.problems import problems
from gateway.api.reports import RENDERED, LangQuery, report_response
from gateway.district.report import disclosures_document, district_document
from gateway.district.view import Disclosures, DistrictSources, League, disclosures, league
from gateway.reports.energy import Month
from gateway.reports.energy_period import Period

router = APIRouter(tags=["district"])

MonthQuery = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="e.g. 2026-10")]
# The page's own files besides the shared modules it imports.
PAGE_STYLES = ("app.css", "views/reports.css", "views/settings.css", "district.css")


async def _sources(request: Request) -> DistrictSources:
    sources: DistrictSources = request.app.state.district
    return sources


SourcesDep = Annotated[DistrictSources, Depends(_sources)]


async def _league(sources: DistrictSources, month: str) -> League:
    try:
        which = Month.parse(month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        # Every school's report: seconds for many schools, never on the event loop.
        return await asyncio.to_thread(league, sources, which)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/api/v1/district/schools", responses=problems(401, 403, 422))
async def schools(sources: SourcesDep, _: District, month: MonthQuery) -> League:
    """Every school's month (month to date while it is in progress): electricity and water with
    their intensities (the figures of the school's own energy report), after-hours share, waste,
    the change against last year; open alerts, work orders past due and the daily records
    signed; ranked by electricity per m², with the district's totals and median."""
    return await _league(sources, month)


@router.get("/api/v1/district/report", response_model=None,
            responses=problems(401, 403, 422) | {200: {"content": RENDERED, "description": "the report rendered"}})
async def report(
    sources: SourcesDep, _: District, month: MonthQuery,
    fmt: Annotated[Literal["pdf", "csv"], Query(alias="format", description="pdf or csv")] = "pdf",
    lang: LangQuery = "zh-CN",
) -> Response:
    """The district's monthly report (全区月报): key figures, the schools that need a look and
    why, the league table; CSV has every school's row."""
    found = await _league(sources, month)
    return await report_response(found, fmt, lambda: district_document(found, lang))


@router.get("/api/v1/district/disclosure", response_model=None,
            responses=problems(401, 403, 422) | {200: {"model": Disclosures, "content": RENDERED,
                                                        "description": "every school's sheet, or them rendered"}})
async def disclosure(
    sources: SourcesDep, _: District, period: PeriodQuery,
    fmt: Annotated[Literal["json", "pdf", "csv"], Query(alias="format", description="json, pdf or csv")] = "json",
    lang: LangQuery = "zh-CN",
) -> Response:
    """Every school's quarterly public disclosure (全区能耗公示): each school's figures as its own
    sheet has them, year on year, and its explanation."""
    try:
        found = await asyncio.to_thread(disclosures, sources, Period.parse(period))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return await report_response(found, fmt, lambda: disclosures_document(found, lang))


@router.get("/district", include_in_schema=False, response_class=HTMLResponse)
def page(request: Request, lang: Annotated[Literal["zh-CN", "en"] | None, Query()] = None) -> HTMLResponse:
    """The district's page: the league table with its month, downloads and drill-down links; for
    the district's administrators, its accounts (`#accounts`)."""
    return templates.TemplateResponse(request, "district.html", {
        "lang": lang or "zh-CN", "version": asset_version(), "styles": PAGE_STYLES,
    })
