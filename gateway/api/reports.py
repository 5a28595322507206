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
from typing import Annotated, Final, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.access import PeopleDep, Staff, Viewer
from gateway.api.deps import ReportSourcesDep, SamplesDep
from gateway.api.problems import BUSY, problems, refusal
from gateway.api.query_limit import HeavyQuery
from gateway.canteen.samples import retained
from gateway.clock import from_ms, to_ms
from gateway.config.auth import Role, Scope
from gateway.reports.checks import STAGES, AlreadySigned, SignRole, Stage
from gateway.reports.document import Document
from gateway.reports.judging import DayState
from gateway.reports.safety import (
    FIRST_DAY,
    FutureDay,
    Sources,
    canteen,
    day_states,
    month_days,
    record,
    reported,
    signatures,
    summary,
    week_days,
)
from gateway.reports.safety_layout import STATUS, Lang, canteen_document, daily_document, summary_document
from gateway.reports.safety_model import (
    CanteenRecord,
    Item,
    ItemStatus,
    Rectification,
    SafetyRecord,
    SafetySummary,
    Signatures,
)

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
        one = await _record(sources, day)
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
    """Who did the check is the signed-in account: a body that still names someone (`name`,
    as before) is refused, like any other unknown field."""

    model_config = ConfigDict(extra="forbid")

    result: Literal["ok", "problem"]
    note: str = Field("", max_length=2000, description="what was found; for a problem, the problem (required)")


class RectifyIn(BaseModel):
    """The stages to write; a stage left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    problem: str | None = Field(None, min_length=1, max_length=2000, pattern=r"\S", description="存在问题")
    measure: str | None = Field(None, min_length=1, max_length=2000, pattern=r"\S", description="整改措施")
    outcome: str | None = Field(None, min_length=1, max_length=2000, pattern=r"\S", description="整改结果")


ItemId = Annotated[str, Path(pattern=r"^[a-z]+[:@][A-Za-z0-9_.-]{1,64}$", description="e.g. canteen:tableware")]
# 检查人, 负责人, 园长审核: the names a person reads in a refusal.
ROLE_WORDS: Final[dict[SignRole, tuple[str, str]]] = {
    "inspector": ("检查人", "inspector"), "responsible": ("负责人", "person responsible"),
    "review": ("园长审核", "principal's review"),
}
_STAGE_WORDS: Final[dict[Stage, tuple[str, str]]] = {
    "problem": ("存在问题", "problem"), "measure": ("整改措施", "measure"), "outcome": ("整改结果", "outcome"),
}


async def _record(sources: Sources, day: date) -> SafetyRecord:
    [state] = _states(sources, [day])
    return await asyncio.to_thread(record, sources.store, sources.site, state)


def _item(found: SafetyRecord, item_id: str) -> Item:
    item = next((i for i in found.items if i.id == item_id), None)
    if item is None:
        raise refusal(404, f"{found.day.date} 的记录里没有这一项。",
                      f"The record of {found.day.date} has no such item.")
    return item


def _named(items: list[Item]) -> tuple[str, str]:
    """Items as a person reads them in a sentence: 「闭园后门已关好」（教学楼）、「餐具消毒」."""
    return ("、".join(f"「{i.check_zh}」" + (f"（{i.subject}）" if i.subject else "") for i in items),
            "; ".join(i.check_en + (f" ({i.subject})" if i.subject else "") for i in items))


@router.post("/api/v1/reports/safety/{day}/items/{item_id}", responses=problems(400, 401, 403, 404, 409, 422))
async def complete_check(sources: ReportSourcesDep, who: Staff, day: date, item_id: ItemId, body: CheckIn) -> Item:
    """Records the signed-in person's check of an item that needs one (status `manual`):
    `done`, or `fail` when they found a problem (the note says what). Doing it again replaces
    it, until the inspector has signed the day; the audit trail keeps every one."""
    found = await _record(sources, day)
    item = _item(found, item_id)
    zh, en = _named([item])
    if item.page is not None:
        raise refusal(409, f"{zh}在它自己的页面登记，请从台账里这一项的链接前往。",
                      f"{en} is kept on its own page: follow the item's link in the ledger.")
    if not item.needs_check:
        status_zh, status_en, _ = STATUS[item.status]
        raise refusal(409, f"{zh}由传感器判定为「{status_zh}」，不用人工登记；有问题请在整改中写明。",
                      f"{en} is judged by its sensors ({status_en}): nothing to register by hand; write any "
                      "problem in its rectification.")
    note = body.note.strip()
    if body.result == "problem" and not note:
        raise refusal(422, "发现问题时，请写明存在什么问题。", "When you found a problem, say what it is.")
    if item.completion is not None and found.signatures.inspector is not None:
        raise refusal(409, "检查人已签字，已登记的检查结果不能再改。",
                      "The inspector has signed the day: a check already registered cannot be changed.")
    sources.checks.complete(day, item_id, body.result, note, who.name)
    return _item(await _record(sources, day), item_id)


@router.post("/api/v1/reports/safety/{day}/items/{item_id}/rectification",
             responses=problems(400, 401, 403, 404, 409, 422))
async def rectify(sources: ReportSourcesDep, who: Staff, day: date, item_id: ItemId, body: RectifyIn) -> Item:
    """Writes stages of the rectification (整改) of a failed item, each under the signed-in
    person's name and the time: 存在问题, 整改措施, 整改结果 (after a measure). Once the person
    responsible has signed, the problem and the measure written are kept as signed; a missing
    stage may still be written, and the outcome any time."""
    given = {stage: text.strip() for stage in STAGES if (text := getattr(body, stage)) is not None}
    if not given:
        raise refusal(422, "请填写存在问题、整改措施或整改结果。", "Write the problem, the measure or the outcome.")
    found = await _record(sources, day)
    item = _item(found, item_id)
    zh, en = _named([item])
    if item.status is not ItemStatus.FAIL:
        status_zh, status_en, _ = STATUS[item.status]
        raise refusal(409, f"{zh}现在是「{status_zh}」：只有异常的项目需要整改。",
                      f"{en} is {status_en}: only a failed item is rectified.")
    now = item.rectification or Rectification()
    changed = {stage: text for stage, text in given.items()
               if (was := getattr(now, stage)) is None or was.text != text}
    if "outcome" in changed and now.measure is None and "measure" not in changed:
        raise refusal(409, "请先填写整改措施，再填写整改结果。", "Write the measure before the outcome.")
    signed = [s for s in changed if s != "outcome" and getattr(now, s) is not None]
    if found.signatures.responsible is not None and signed:
        words = "、".join(_STAGE_WORDS[s][0] for s in signed)
        raise refusal(409, f"负责人已签字，已填写的{words}不能再改；整改结果可以随时补填。",
                      "The person responsible has signed: the problem and measure written stay as signed; "
                      "the outcome can be added any time.")
    for stage in STAGES:
        if stage in changed:
            sources.checks.rectify(day, item_id, stage, changed[stage], who.name)
    return _item(await _record(sources, day), item_id)


@router.post("/api/v1/reports/safety/{day}/signatures/{role}", responses=problems(400, 401, 403, 409, 422))
async def sign(sources: ReportSourcesDep, who: Staff, day: date, role: SignRole) -> Signatures:
    """Signs the day's record as the signed-in person: the inspector (检查人, any staff) when
    no item is blank; the person responsible (负责人, an admin) after the inspector, when every
    failed item has a measure; the principal's review (园长审核, an admin) after both. One
    person signs one role of a day. A day not over yet may be signed for what is judged so far."""
    label_zh, label_en = ROLE_WORDS[role]
    if who.kind != "user":
        raise refusal(403, "签字须由本人登录账号办理。", "Only a person's own login can sign.")
    if role != "inspector" and not who.can(Role.ADMIN, Scope.ADMIN):
        raise refusal(403, f"「{label_zh}」须由管理员账号签字。", f"The {label_en} signs with an admin account.")
    found = await _record(sources, day)
    names = sources.people.directory()
    # Read again after the record was built: what others signed meanwhile counts.
    current = {s.role: s for s in sources.checks.signatures(day, day)}
    if (done := current.get(role)) is not None:
        t = from_ms(done.at_ms, sources.site.tz)
        raise refusal(409, f"本日「{label_zh}」已由{names.display(done.by)}于 {t:%m-%d %H:%M} 签字。",
                      f"The {label_en} has signed this day already ({names.display(done.by)}, {t:%m-%d %H:%M}).")
    if (mine := next((s for s in current.values() if s.by == who.name), None)) is not None:
        raise refusal(409, f"您已作为「{ROLE_WORDS[mine.role][0]}」签字：同一天的记录，一人只能签一处。",
                      f"You signed this day as the {ROLE_WORDS[mine.role][1]}: one person signs one role of a day.")
    if role == "inspector":
        blank = [i for i in found.items if i.status is ItemStatus.MANUAL]
        if blank:
            zh, en = _named(blank)
            raise refusal(409, f"还有 {len(blank)} 项没有检查（台账空白），请先检查登记：{zh}。",
                          f"{len(blank)} items are not checked yet (the ledger is blank there): {en}.")
    elif "inspector" not in current:
        raise refusal(409, f"请等检查人签字后再签「{label_zh}」。", f"The inspector signs before the {label_en}.")
    if role == "responsible":
        open_ = [i for i in found.items if i.status is ItemStatus.FAIL
                 and (i.rectification is None or i.rectification.measure is None)]
        if open_:
            zh, en = _named(open_)
            raise refusal(409, f"以下异常项目还没有整改措施，请先填写：{zh}。",
                          f"These failed items have no measure yet: {en}.")
    if role == "review" and "responsible" not in current:
        raise refusal(409, "检查人和负责人都签字后，园长才能审核。",
                      "The principal reviews after the inspector and the person responsible have signed.")
    try:
        sources.checks.sign(day, role, who.name)
    except AlreadySigned:
        raise refusal(409, f"本日「{label_zh}」刚刚已有人签字，请刷新。",
                      f"Someone has just signed as the {label_en}: reload.") from None
    return signatures(sources.checks.signatures(day, day), sources.people.directory())
