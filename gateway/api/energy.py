"""The HTTP API of the monthly energy-saving report (月度节能报告)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from gateway.api.access import Viewer
from gateway.api.deps import AlertsDep, CalendarDep, ClockDep, LearnedDep, SiteDep, StoreDep
from gateway.api.problems import BUSY
from gateway.api.query_limit import HeavyQuery
from gateway.api.reports import RENDERED, FormatQuery, LangQuery, report_response
from gateway.clock import to_ms
from gateway.reports.energy import EnergyReport, Month, bounds_ms, energy_report, leak_alerts, load_alerts
from gateway.reports.energy_doc import energy_document

router = APIRouter(tags=["reports"])


@router.get(
    "/api/v1/reports/energy", response_model=None,
    responses=BUSY | {200: {"model": EnergyReport, "content": RENDERED,
                            "description": "the report's data, or it rendered"}},
)
async def energy(
    site: SiteDep, clock: ClockDep, calendar: CalendarDep, store: StoreDep, alerts: AlertsDep,
    learned: LearnedDep, _: Viewer, _slot: HeavyQuery,
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="e.g. 2026-10")],
    fmt: FormatQuery = "json",
    lang: LangQuery = "zh-CN",
) -> Response:
    """The month's electricity and water per site, building and meter: costs at the tariffs,
    comparisons, after-hours use, waste and leak losses, with recommendations. The month in
    progress is reported to date (`partial`, up to `through_ms`: the end of the last whole
    hour) and compared with the same days of other months."""
    try:
        which = Month.parse(month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    now_ms = to_ms(clock.now())
    if bounds_ms(calendar, which)[0] > now_ms:
        raise HTTPException(422, f"{month} has not begun")
    # The alert store is read on the loop's thread, the learned base loads and readings in a worker.
    leaks, loads = leak_alerts(alerts, calendar, which), load_alerts(alerts, calendar, which)
    base_loads = await asyncio.to_thread(learned.base_loads)
    report = await asyncio.to_thread(energy_report, site, calendar, store, leaks, loads, which, now_ms, base_loads)
    return await report_response(report, fmt, lambda: energy_document(report, site, lang))
