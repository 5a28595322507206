"""The HTTP API of work orders (派单): the list and one order with its history, dispatching
(to an enabled account, with trade, note and due time), 到场, 完成 with what was done and a
photo, the photo itself, and opening an order by hand for an alert that has none.

Reading needs a viewer; every change needs a staff login or an API key with the `ack` scope,
and is recorded in the audit trail under the signed-in account. Refusals a person can act on
come in both languages (`refusal`). Handlers are `async` so that they run on the event loop's
thread, like the rules that open orders in the same table.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, Field

from gateway.alerting.alerts import AlertNotFound
from gateway.alerting.work_orders import (
    PhotoTooLarge,
    Repair,
    Status,
    WorkOrder,
    WorkOrderError,
    WorkOrderInvalid,
    WorkOrderNotFound,
    WorkOrders,
)
from gateway.api.access import AuthStoreDep, PeopleDep, Staff, Viewer
from gateway.api.alerts import CHANGES, Id, utc
from gateway.api.deps import AlertsDep, LiveDep, SiteDep, WorkOrdersDep
from gateway.api.guard import Allowance
from gateway.api.problems import GUARDED, problems, refusal
from gateway.auth.audit import AuditEntry
from gateway.auth.people import Actor, Directory
from gateway.auth.store import AuthStore, NotFound
from gateway.clock import to_ms
from gateway.config import SiteConfig
from gateway.config.work_orders import Trade
from gateway.live import LiveBus

router = APIRouter(tags=["work orders"])

# Room in an upload's body for the form's text and the multipart framing, beside the photo.
FORM_MARGIN: Final = 64 * 1024
_DONE_PATH: Final = re.compile(r"/api/v1/work-orders/[0-9]+/done")


def photo_allowance(site: SiteConfig) -> Allowance:
    """A completion carries a photo up to `work_orders.photo_max_bytes`, with its form."""
    return Allowance(_DONE_PATH, site.work_orders.photo_max_bytes + FORM_MARGIN, "work_orders.photo_max_bytes")


class WorkOrderOut(BaseModel):
    id: int
    alert_id: int
    rule: str
    trade: Trade
    device_id: str
    building: str
    room: str
    title_zh: str
    title_en: str
    evidence: dict[str, Any] = Field(description="the readings that triggered it: metric, unit, [[ms, value], …]")
    opened: datetime
    due: datetime
    status: Status
    assignee: str | None = Field(description="the login id; assignee_actor is how people read it")
    assignee_actor: Actor | None
    note: str
    updated: datetime
    on_site_at: datetime | None
    done_at: datetime | None
    work_done: str = Field(description="what was done, said when it was completed")
    repair: Repair | None
    photo_url: str | None = Field(description="where the photo of the finished job is, if there is one")
    overdue: bool

    @classmethod
    def of(cls, o: WorkOrder, now_ms: int, names: Directory) -> WorkOrderOut:
        return cls(
            id=o.id, alert_id=o.alert_id, rule=o.rule, trade=o.trade, device_id=o.device_id, building=o.building_id,
            room=o.room_id, title_zh=o.title_zh, title_en=o.title_en, evidence=o.evidence, opened=utc(o.opened_ms),
            due=utc(o.due_ms), status=o.status, assignee=o.assignee, assignee_actor=names.maybe(o.assignee),
            note=o.note, updated=utc(o.updated_ms), on_site_at=utc(o.on_site_ms), done_at=utc(o.done_ms),
            work_done=o.work_done, repair=o.repair,
            photo_url=f"/api/v1/work-orders/{o.id}/photo" if o.photo else None, overdue=o.overdue(now_ms),
        )


class StepOut(BaseModel):
    """One step of an order's history, from the audit trail."""

    at: datetime
    who: Actor
    action: str = Field(description="work_order.open, .dispatch, .on_site, .done or .update (a note)")
    assignee: Actor | None = None
    trade: Trade | None = None
    due: datetime | None = None
    note: str | None = None
    work_done: str | None = None
    repair: Repair | None = None

    @classmethod
    def of(cls, e: AuditEntry, names: Directory) -> StepOut:
        d = e.detail
        said: dict[str, Any] = {"trade": d.get("trade")}
        if e.action == "work_order.dispatch":
            said |= {"assignee": names.maybe(d.get("assignee")), "due": utc(d.get("due_ms")),
                     "note": d.get("note") or None}
        elif e.action == "work_order.update":
            said |= {"note": d.get("note") or None}
        elif e.action == "work_order.done":
            said |= {"work_done": d.get("work_done"), "repair": d.get("repair")}
        return cls.model_validate({"at": utc(e.at_ms), "who": names.actor(e.actor), "action": e.action, **said})


class WorkOrderDetail(WorkOrderOut):
    history: list[StepOut]
    photo_max_bytes: int = Field(description="the largest photo a completion may carry")


class WorkOrderPatch(BaseModel):
    status: Status | None = None
    assignee: str | None = Field(None, min_length=1, max_length=100, description="a login")
    note: str | None = Field(None, max_length=2000)


class _Assignment(BaseModel):
    assignee: str = Field(min_length=1, max_length=100, description="the login of an enabled account")
    note: str | None = Field(None, max_length=2000)
    due: AwareDatetime | None = Field(None, description="default: the order's (the end of the day it was opened)")


class DispatchIn(_Assignment):
    trade: Trade | None = Field(None, description="default: the order's")


class OpenIn(_Assignment):
    trade: Trade = Field(description="who fixes it")


def _assignee(store: AuthStore, login: str) -> str:
    """An enabled account's login, or a refusal."""
    try:
        user = store.user(login)
    except NotFound:
        raise refusal(422, "没有这个账号，请从名单里选一位负责人。",
                      "There is no such account: choose the assignee from the list.") from None
    if user.disabled:
        raise refusal(422, "这个账号已停用，请另选一位负责人。",
                      "That account is disabled: choose someone else.")
    return user.name


def _due_ms(due: datetime | None) -> int | None:
    if due is None:
        return None
    if not datetime(1971, 1, 1, tzinfo=UTC) <= due <= datetime(9998, 12, 31, tzinfo=UTC):
        raise refusal(422, "期限不对，请重新选择。", "The due time is out of range: choose it again.")
    return to_ms(due)


def _refused(exc: WorkOrderError) -> HTTPException:
    code = (404 if isinstance(exc, WorkOrderNotFound) else 413 if isinstance(exc, PhotoTooLarge)
            else 422 if isinstance(exc, WorkOrderInvalid) else 409)
    return refusal(code, exc.zh, exc.en)


def _changed(order: WorkOrder, work_orders: WorkOrders, people: PeopleDep, live: LiveBus) -> WorkOrderOut:
    """The order as it is now; open dashboards hear of the change."""
    live.publish(f"work_order:{order.id}", "work_order", {"id": order.id, "status": order.status})
    return WorkOrderOut.of(order, work_orders.now_ms(), people.directory())


@router.get("/api/v1/work-orders", responses=GUARDED)
async def list_work_orders(
    site: SiteDep, work_orders: WorkOrdersDep, people: PeopleDep, _: Viewer,
    status: Status | None = None,
    trade: Trade | None = None,
    overdue: bool | None = None,
    week: Annotated[str | None, Query(pattern=r"^2\d{3}-W(0[1-9]|[1-4]\d|5[0-3])$",
                                      description="ISO week of the due date, e.g. 2026-W47")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WorkOrderOut]:
    """Overdue first, then by due time. `overdue=true&week=…` is the weekly list of overdue orders."""
    due_from = due_until = None
    if week is not None:
        year, number = int(week[:4]), int(week[6:])
        # W53 of a year that has 52 weeks is the week after W52, W01 of the next year.
        monday = date.fromisocalendar(year, min(number, 52), 1) + timedelta(weeks=max(0, number - 52))
        tz = site.tz
        due_from = to_ms(datetime.combine(monday, datetime.min.time(), tzinfo=tz))
        due_until = to_ms(datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=tz))
    orders = work_orders.find(status=status, trade=trade, overdue=overdue, due_from_ms=due_from,
                              due_until_ms=due_until, limit=limit)
    now = work_orders.now_ms()
    names = people.directory()
    return [WorkOrderOut.of(o, now, names) for o in orders]


@router.get("/api/v1/work-orders/{order_id}", responses=GUARDED)
async def get_work_order(site: SiteDep, work_orders: WorkOrdersDep, people: PeopleDep, _: Viewer,
                         order_id: Id) -> WorkOrderDetail:
    """One order with its history (who did what, when) and the photo size it accepts."""
    try:
        order = work_orders.get(order_id)
    except WorkOrderNotFound as exc:
        raise _refused(exc) from None
    names = people.directory()
    return WorkOrderDetail(**WorkOrderOut.of(order, work_orders.now_ms(), names).model_dump(),
                           history=[StepOut.of(e, names) for e in work_orders.history(order_id)],
                           photo_max_bytes=site.work_orders.photo_max_bytes)


@router.patch("/api/v1/work-orders/{order_id}", responses=CHANGES)
async def update_work_order(work_orders: WorkOrdersDep, people: PeopleDep, store: AuthStoreDep, live: LiveDep,
                            who: Staff, order_id: Id, body: WorkOrderPatch) -> WorkOrderOut:
    """Assign, move along (open → assigned → on_site, never back) and annotate; done is
    `POST …/done`, which says what was done."""
    assignee = None if body.assignee is None else _assignee(store, body.assignee)
    try:
        order = work_orders.update(order_id, who.name, status=body.status, assignee=assignee, note=body.note)
    except WorkOrderError as exc:
        raise _refused(exc) from None
    return _changed(order, work_orders, people, live)


@router.post("/api/v1/work-orders/{order_id}/dispatch", responses=CHANGES)
async def dispatch(work_orders: WorkOrdersDep, people: PeopleDep, store: AuthStoreDep, live: LiveDep, who: Staff,
                   order_id: Id, body: DispatchIn) -> WorkOrderOut:
    """派单: to an enabled account, with the trade, a note and the due time (or reassigned)."""
    assignee = _assignee(store, body.assignee)
    try:
        order = work_orders.update(order_id, who.name, assignee=assignee, trade=body.trade, note=body.note,
                                   due_ms=_due_ms(body.due))
    except WorkOrderError as exc:
        raise _refused(exc) from None
    return _changed(order, work_orders, people, live)


@router.post("/api/v1/work-orders/{order_id}/on-site", responses=CHANGES)
async def on_site(work_orders: WorkOrdersDep, people: PeopleDep, live: LiveDep, who: Staff,
                  order_id: Id) -> WorkOrderOut:
    """到场: whoever marks it is recorded."""
    try:
        order = work_orders.arrive(order_id, who.name)
    except WorkOrderError as exc:
        raise _refused(exc) from None
    return _changed(order, work_orders, people, live)


@router.post("/api/v1/work-orders/{order_id}/done", responses=CHANGES | problems(413))
async def complete(
    site: SiteDep, work_orders: WorkOrdersDep, people: PeopleDep, live: LiveDep, who: Staff, order_id: Id,
    repair: Annotated[Repair, Form(description="repaired, replaced or mended with old parts")],
    work_done: Annotated[str, Form(max_length=2000, description="what was done (required)")] = "",
    photo: Annotated[UploadFile | None, File(description="JPEG, PNG or WebP, at most work_orders.photo_max_bytes; "
                                                          "its name and declared type are ignored")] = None,
) -> WorkOrderOut:
    """完成: multipart form with what was done, how, and optionally a photo."""
    data = None
    if photo is not None:
        data = await photo.read(site.work_orders.photo_max_bytes + 1)  # one byte more tells it is too large
        if not data and not photo.filename:
            data = None  # a form's empty file field: no photo
    try:
        order = work_orders.complete(order_id, who.name, work_done, repair, data)
    except WorkOrderError as exc:
        raise _refused(exc) from None
    return _changed(order, work_orders, people, live)


@router.get("/api/v1/work-orders/{order_id}/photo", response_class=FileResponse,
            responses=GUARDED | {200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
async def work_order_photo(work_orders: WorkOrdersDep, _: Viewer, order_id: Id) -> FileResponse:
    """The photo of the finished job, with its type as its bytes said when it was kept."""
    try:
        found = work_orders.photo(order_id)
    except WorkOrderNotFound as exc:
        raise _refused(exc) from None
    if found is None:
        raise refusal(404, "这张工单没有照片。", "This work order has no photo.")
    path, media = found
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


@router.post("/api/v1/alerts/{alert_id}/work-order", status_code=201, responses=CHANGES)
async def open_for_alert(alerts: AlertsDep, work_orders: WorkOrdersDep, people: PeopleDep, store: AuthStoreDep,
                         live: LiveDep, who: Staff, alert_id: Id, body: OpenIn) -> WorkOrderOut:
    """派单 from an alert whose rule opens no order itself: opens one for the trade and
    dispatches it at once (two steps in its history)."""
    assignee = _assignee(store, body.assignee)
    try:
        alert = alerts.get(alert_id)
    except AlertNotFound:
        raise refusal(404, "没有这条告警。", "There is no such alert.") from None
    try:
        order = work_orders.open_for(alert, body.trade, who.name, assignee=assignee, note=body.note,
                                     due_ms=_due_ms(body.due))
    except WorkOrderError as exc:
        raise _refused(exc) from None
    return _changed(order, work_orders, people, live)
