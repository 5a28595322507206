"""The HTTP API of the energy reports: the monthly energy-saving report (月度节能报告), a
quarter's or a year's figures year on year, and the quarterly public disclosure (能耗公示)
with the school's explanation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from gateway.api.access import Admin, PeopleDep, Viewer
from gateway.api.deps import AlertsDep, CalendarDep, ClockDep, DisclosuresDep, LearnedDep, SiteDep, StoreDep
from gateway.api.problems import BUSY, GUARDED, problems, refusal
from gateway.api.query_limit import HeavyQuery
from gateway.api.reports import RENDERED, FormatQuery, LangQuery, report_response
from gateway.auth.actor import Actor
from gateway.clock import from_ms, to_ms
from gateway.refused import Refused
from gateway.reports.disclosure import (
    EXPLAIN_ABOVE,
    MAX_TEXT,
    SheetRow,
    disclosure_document,
    figures,
    rows_of,
    to_explain,
)
from gateway.reports.energy import EnergyReport, Month, bounds_ms, energy_report, leak_alerts, load_alerts
from gateway.reports.energy_doc import energy_document
from gateway.reports.energy_period import Period, PeriodReport, YearOnYear, period_report
from gateway.reports.energy_period_doc import period_document

router = APIRouter(tags=["reports"])

PERIOD = r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$"
PeriodQuery = Annotated[str, Query(pattern=PERIOD, description="a month (2026-10), a quarter (2026-Q3) or a year "
                                                               "(2026)")]
PeriodPath = Annotated[str, Path(pattern=PERIOD, description="a month, a quarter or a year, as `period`")]


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
    now_ms = to_ms(clock.now())
    report, = await _months(site, calendar, store, alerts, learned, _period(month, calendar, now_ms), now_ms)
    return await report_response(report, fmt, lambda: energy_document(report, site, lang))


@router.get(
    "/api/v1/reports/energy/period", response_model=None,
    responses=BUSY | {200: {"model": PeriodReport, "content": RENDERED,
                            "description": "the period's data, or it rendered"}},
)
async def energy_period(
    site: SiteDep, clock: ClockDep, calendar: CalendarDep, store: StoreDep, alerts: AlertsDep,
    learned: LearnedDep, _: Viewer, _slot: HeavyQuery, period: PeriodQuery,
    fmt: FormatQuery = "json", lang: LangQuery = "zh-CN",
) -> Response:
    """A month's, quarter's or year's energy by category, sub-item and building, in standard
    coal, per m² and per person against the quotas, with metering coverage and each meter's
    data completeness, each use year on year (like for like while the period is in progress).
    Every figure is the sum of its months' reports."""
    report = await _period_report(site, clock, calendar, store, alerts, learned, period)
    return await report_response(report, fmt, lambda: period_document(report, site, lang))


class Explained(BaseModel):
    text: str
    by: Actor
    at: datetime


class DisclosureOut(BaseModel):
    """The sheet's figures (as the period's report has them), the rows whose change year on
    year is beyond `explain_above` and the school's explanation."""

    period: str
    partial: bool
    through_ms: int  # the end of what it covers (to the hour while the quarter is in progress)
    people: int | None
    floor_area_m2: float | None
    rows: list[SheetRow]  # the sheet's rows in order, with their words and units
    figures: dict[str, YearOnYear]
    to_explain: list[str]
    explain_above: float
    explanation: Explained | None


class ExplanationIn(BaseModel):
    text: str = Field(max_length=MAX_TEXT, description="the school's words; empty removes the explanation")


@router.get(
    "/api/v1/reports/disclosure", response_model=None,
    responses=BUSY | {200: {"model": DisclosureOut, "content": RENDERED,
                            "description": "the sheet's data, or it rendered"}},
)
async def disclosure(
    site: SiteDep, clock: ClockDep, calendar: CalendarDep, store: StoreDep, alerts: AlertsDep,
    learned: LearnedDep, notes: DisclosuresDep, people: PeopleDep, _: Viewer, _slot: HeavyQuery,
    period: PeriodQuery, fmt: FormatQuery = "json", lang: LangQuery = "zh-CN",
) -> Response:
    """The public disclosure sheet of a quarter (or a month or a year): electricity and water
    used, the energy users, energy per m² and per person, water per person, year on year, and
    the school's explanation. PDF and CSV to post."""
    report = await _period_report(site, clock, calendar, store, alerts, learned, period)
    said = notes.get(report.period)
    found = figures(report)
    out = DisclosureOut(
        period=report.period, partial=report.partial, through_ms=report.through_ms, people=report.people,
        floor_area_m2=report.floor_area_m2, rows=rows_of(found), figures=found, to_explain=to_explain(report),
        explain_above=EXPLAIN_ABOVE,
        explanation=None if said is None else Explained(text=said.text, by=people.name(said.by),
                                                        at=from_ms(said.at_ms, UTC)))
    return await report_response(out, fmt, lambda: disclosure_document(report, site, said, lang))


@router.put("/api/v1/reports/disclosure/{period}/explanation", responses=GUARDED | problems(400))  # 400: not JSON
async def explain(notes: DisclosuresDep, clock: ClockDep, people: PeopleDep, who: Admin, period: PeriodPath,
                  body: Annotated[ExplanationIn, Body()]) -> Explained | None:
    """Keeps the school's explanation of the period's change year on year (an empty text
    removes it); the audit trail keeps every version."""
    try:
        said = notes.put(str(_parsed(period)), body.text, who.name, to_ms(clock.now()))
    except Refused as exc:
        raise refusal(exc.status, exc.zh, exc.en) from None
    return Explained(text=said.text, by=people.name(said.by), at=from_ms(said.at_ms, UTC)) if said.text else None


def _period(text: str, calendar: CalendarDep, now_ms: int) -> list[Month]:
    """The months of `text` begun by now; 422 for a period not begun."""
    months = [m for m in _parsed(text).months() if bounds_ms(calendar, m)[0] <= now_ms]
    if not months:
        raise HTTPException(422, f"{text} has not begun")
    return months


def _parsed(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


async def _months(site: SiteDep, calendar: CalendarDep, store: StoreDep, alerts: AlertsDep, learned: LearnedDep,
                  months: list[Month], now_ms: int) -> list[EnergyReport]:
    """Each month's report as of `now_ms`. The alert store is read on the loop's thread, the
    learned base loads and the readings in a worker."""
    quoted = [(leak_alerts(alerts, calendar, m), load_alerts(alerts, calendar, m)) for m in months]
    base_loads = await asyncio.to_thread(learned.base_loads)
    return await asyncio.to_thread(lambda: [energy_report(site, calendar, store, leaks, loads, m, now_ms, base_loads)
                                            for m, (leaks, loads) in zip(months, quoted, strict=True)])


async def _period_report(site: SiteDep, clock: ClockDep, calendar: CalendarDep, store: StoreDep, alerts: AlertsDep,
                         learned: LearnedDep, text: str) -> PeriodReport:
    now_ms = to_ms(clock.now())
    reports = await _months(site, calendar, store, alerts, learned, _period(text, calendar, now_ms), now_ms)
    return period_report(site, calendar, _parsed(text), reports, now_ms)
