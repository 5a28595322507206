"""The HTTP API of reports: the daily safety record with its weekly and monthly summaries,
the canteen record, and manual completion of the record's checks.

A report is computed as data (its pydantic model, the JSON format) and laid out as a
`Document` only when HTML, PDF or CSV is asked for; `report_response` does that part for
every report. Reading needs a viewer; completing a check a staff login (or the `ack` scope).
Handlers are `async`: what they read of the rules and alerts is read on the event loop's
thread, the readings in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.access import PeopleDep, Staff, Viewer
from gateway.api.deps import ReportSourcesDep, SamplesDep
from gateway.api.problems import BUSY, problems
from gateway.api.query_limit import HeavyQuery
from gateway.canteen.samples import retained
from gateway.clock import to_ms
from gateway.reports.document import Document
from gateway.reports.judging import DayState
from gateway.reports.safety import (
    FIRST_DAY,
    FutureDay,
    Sources,
    canteen,
    completion,
    day_states,
    month_days,
    record,
    reported,
    summary,
    week_days,
)
from gateway.reports.safety_items import completed
from gateway.reports.safety_layout import Lang, canteen_document, daily_document, summary_document
from gateway.reports.safety_model import CanteenRecord, Item, SafetyRecord, SafetySummary

router = APIRouter(tags=["reports"])

Format = Literal["json", "html", "pdf", "csv"]
FormatQuery = Annotated[Format, Query(alias="format", description="json (the data), html, pdf or csv")]
LangQuery = Annotated[Lang, Query(description="the language of html, pdf and csv; json has both")]
DayQuery = Annotated[date | None, Query(alias="date", description="a local date, e.g. 2026-10-12")]
_DOWNLOADS = ("pdf", "csv")
RENDERED: dict[str, dict[str, object]] = {"text/html": {}, "application/pdf": {}, "text/csv": {}}


async def report_response(data: BaseModel, fmt: Format, document: Callable[[], Document]) -> Response:
    """A report in the asked format: its data as JSON, or its `document()` rendered (in a
    worker thread: PDF takes a while). PDF and CSV come as attachments."""
    if fmt == "json":
        return Response(data.model_dump_json(), media_type="application/json")
    from gateway.reports.render import render  # here: weasyprint loads only when a report is rendered

    body, media_type, filename = await run_in_threadpool(lambda: render(document(), fmt))
    headers = {}
    if fmt in _DOWNLOADS:
        ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
        headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return Response(body, media_type=media_type, headers=headers)


def _period(week: str | None, month: str | None) -> tuple[list[date], str, Literal["week", "month"]]:
    try:
        if week is not None:
            return week_days(week), week, "week"
        assert month is not None
        return month_days(month), month, "month"
    except (ValueError, OverflowError) as exc:
        raise HTTPException(422, f"{week or month} is not in the calendar: {exc}") from None


def _states(sources: Sources, days: list[date]) -> list[DayState]:
    try:
        return day_states(sources, reported(sources, [_check_date(d) for d in days]))
    except FutureDay as exc:
        raise HTTPException(422, str(exc)) from None


def _check_date(day: date) -> date:
    if day < FIRST_DAY:
        raise HTTPException(422, f"date must lie between {FIRST_DAY} and today, not {day}")
    return day


@router.get(
    "/api/v1/reports/safety", response_model=None,
    responses=BUSY | {200: {"model": SafetyRecord | SafetySummary, "content": RENDERED,
                            "description": "the record (date) or the summary (week, month), or it rendered"}},
)
async def safety(
    sources: ReportSourcesDep, _: Viewer, _slot: HeavyQuery,
    day: DayQuery = None,
    week: Annotated[str | None, Query(pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$", description="ISO week, e.g. "
                                      "2026-W42")] = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="e.g. 2026-10")] = None,
    fmt: FormatQuery = "json",
    lang: LangQuery = "zh-CN",
) -> Response:
    """每日安全检查记录 for `date`; the 周汇报 of `week` or the 月总结 of `month`, built from
    the daily records of its days up to today. Exactly one of the three."""
    given = [name for name, value in (("date", day), ("week", week), ("month", month)) if value is not None]
    if len(given) != 1:
        raise HTTPException(422, f"give exactly one of date, week and month (given: {', '.join(given) or 'none'})")
    tz = sources.site.tz
    if day is not None:
        [state] = _states(sources, [day])
        one = await asyncio.to_thread(record, sources.store, sources.site, state)
        return await report_response(one, fmt, lambda: daily_document(one, lang, tz))
    days, period, kind = _period(week, month)
    states = _states(sources, days)
    many = await asyncio.to_thread(summary, sources.store, sources.site, states, period, kind, days[0])
    return await report_response(many, fmt, lambda: summary_document(many, lang, tz))


@router.get(
    "/api/v1/reports/canteen", response_model=None,
    responses=BUSY | {200: {"model": CanteenRecord, "content": RENDERED,
                            "description": "the canteen record, or it rendered"}},
)
async def canteen_record(
    sources: ReportSourcesDep, register: SamplesDep, people: PeopleDep, _: Viewer, _slot: HeavyQuery,
    day: Annotated[date, Query(alias="date", description="a local date, e.g. 2026-10-12")],
    fmt: FormatQuery = "json",
    lang: LangQuery = "zh-CN",
) -> Response:
    """食堂每日记录: the sample fridges' hourly temperatures and compliance, the kitchens' UV
    lamps and doors, the canteen's manual checks (the same items as the daily record) and the
    day's 留样 register with each sample's fridge temperature while kept."""
    [state] = _states(sources, [day])
    data = await asyncio.to_thread(canteen, sources.store, sources.site, state)
    samples = await asyncio.to_thread(retained, sources.store, sources.site, register.on_day(day),
                                      people.directory(), to_ms(sources.clock.now()))
    data = data.model_copy(update={"samples": samples})
    tz = sources.site.tz
    return await report_response(data, fmt, lambda: canteen_document(data, lang, tz))


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Until the ledger's change lands (the signed-in account is who signed): default, their name.
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"\S",
                             description="who did the check, e.g. 王师傅; default: the signed-in person")
    result: Literal["ok", "problem"]
    note: str = Field("", max_length=2000)


ItemId = Annotated[str, Path(pattern=r"^[a-z]+[:@][A-Za-z0-9_.-]{1,64}$", description="e.g. canteen:tableware")]


@router.post("/api/v1/reports/safety/{day}/items/{item_id}",
             responses=problems(400, 401, 403, 404, 409, 422))
async def complete_check(sources: ReportSourcesDep, people: PeopleDep, who: Staff, day: date, item_id: ItemId,
                         body: CheckIn) -> Item:
    """Records a person's check of an item that needs one (status `manual`): `done`, or
    `fail` when they found a problem. Doing it again replaces it; the audit trail keeps both."""
    [state] = _states(sources, [day])
    found = await asyncio.to_thread(record, sources.store, sources.site, state)
    item = next((i for i in found.items if i.id == item_id), None)
    if item is None:
        raise HTTPException(404, f"the record of {day} has no item {item_id!r}")
    if not item.needs_check:
        raise HTTPException(409, f"{item_id} is {item.status} on {day}, not a manual check: only an item that "
                                 "no sensor vouches for can be completed by hand")
    name = people.directory().display(who.name) if body.name is None else body.name.strip()
    check = sources.checks.complete(day, item_id, name, body.result, body.note, who.name)
    return completed(item, completion(check))
