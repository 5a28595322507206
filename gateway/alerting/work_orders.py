"""Work orders (派单): an alert of a chosen rule opens one for a trade, with the room, the
evidence (the readings that triggered it) and a due time; the head of logistics may open one
by hand for any other alert. Someone dispatches it to a person (an account) with a note and a
due time; the technician marks being on site, then completes it with what was done, repaired
or replaced, and optionally a photo (kept beside the state database, in `photos/`). The status
only moves forward (open → assigned → on_site → done). Every step is in the audit trail
(`work_order:<id>`), which is the order's history."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Column, ColumnElement, Index, Table, Text, func, select

from devices import kinds
from gateway.alerting.alerts import ALERTS, Alert
from gateway.auth.audit import AuditEntry, AuditTrail
from gateway.clock import Clock, from_ms, to_ms
from gateway.config.work_orders import Trade
from gateway.storage.state import ID, METADATA, StateDatabase, of_site

if TYPE_CHECKING:
    from gateway.config import SiteConfig
    from gateway.rules.engine import Evidence


class Status(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    ON_SITE = "on_site"
    DONE = "done"

    @property
    def words(self) -> tuple[str, str]:
        """How people say it, in Chinese and English (views/orders.js status.* say the same)."""
        return _STATUS_WORDS[self]


_STATUS_WORDS: Final = {Status.OPEN: ("待派", "Open"), Status.ASSIGNED: ("已派", "Assigned"),
                        Status.ON_SITE: ("已到场", "On site"), Status.DONE: ("已完成", "Done")}


class Repair(StrEnum):
    """How a finished job was done: the words the logistics ledgers use."""

    REPAIR = "repair"  # 修理
    REPLACE = "replace"  # 更换
    SALVAGE = "salvage"  # 修旧利废: mended with old or salvaged parts


_ORDER: Final = (Status.OPEN, Status.ASSIGNED, Status.ON_SITE, Status.DONE)

# A photo's type is what its first bytes say, never its name: (media type, file suffix).
_PHOTO_TYPES: Final = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
_MEDIA_OF_SUFFIX: Final = {suffix: media for media, suffix in _PHOTO_TYPES.items()}

WORK_ORDERS = Table(
    "work_orders", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),  # unique across sites
    Column("alert_id", BigInteger, nullable=False),  # 0: opened by hand, for no alert
    Column("rule", Text, nullable=False),
    Column("trade", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("building_id", Text, nullable=False),
    Column("room_id", Text, nullable=False),
    Column("title_zh", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: {"metric", "unit", "points": [[ms, value], ...]}
    Column("opened_ms", BigInteger, nullable=False),  # the clock's
    Column("due_ms", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("assignee", Text),  # a login
    Column("note", Text, nullable=False, server_default=""),
    Column("updated_ms", BigInteger, nullable=False),
    Column("done_ms", BigInteger),
    # Added after the first release: a database from before gets them on open.
    Column("on_site_ms", BigInteger),
    Column("work_done", Text, nullable=False, server_default=""),
    Column("repair", Text),  # a Repair
    Column("photo", Text),  # its file's name in the photos folder
    Column("site", Text, nullable=False, server_default=""),
    Index("work_orders_due", "due_ms"),
    Index("work_orders_alert", "alert_id"),
)

# An order an alert opened is titled as its alert is now: a leak's order reads the minutes and
# the loss its alert reads (the final figures once it ended), not those of when it was opened.
_COLUMNS: Final = tuple(
    func.coalesce(ALERTS.c[name], WORK_ORDERS.c[name]).label(name) if name.startswith("title_") else WORK_ORDERS.c[name]
    for name in ("id", "alert_id", "rule", "trade", "device_id", "building_id", "room_id", "title_zh", "title_en",
                 "evidence", "opened_ms", "due_ms", "status", "assignee", "note", "updated_ms", "done_ms",
                 "on_site_ms", "work_done", "repair", "photo"))
_WITH_ALERT: Final = WORK_ORDERS.outerjoin(ALERTS, ALERTS.c.id == WORK_ORDERS.c.alert_id)


class WorkOrderError(Exception):
    """A change the order's status does not allow, said for the person who asked."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


class WorkOrderNotFound(WorkOrderError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"没有第 {order_id} 号工单。", f"There is no work order {order_id}.")


class WorkOrderInvalid(WorkOrderError):
    """What was filled in is not allowed (no word on what was done, a file that is no photo)."""


class PhotoTooLarge(WorkOrderInvalid):
    pass


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: int
    alert_id: int
    rule: str
    trade: Trade
    device_id: str
    building_id: str
    room_id: str
    title_zh: str
    title_en: str
    evidence: dict[str, Any]
    opened_ms: int
    due_ms: int
    status: Status
    assignee: str | None
    note: str
    updated_ms: int
    done_ms: int | None
    on_site_ms: int | None = None
    work_done: str = ""
    repair: Repair | None = None
    photo: str | None = None

    def overdue(self, now_ms: int) -> bool:
        """Not done by its due time (or done late)."""
        return (self.done_ms or now_ms) > self.due_ms


def photo_type(data: bytes) -> str | None:
    """The media type of a JPEG, PNG or WebP image by its magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class WorkOrders:
    """The work orders of one site in the state database (their ids are unique across sites),
    their photos in the folder `photos`; called from the event loop's thread."""

    def __init__(self, db: StateDatabase, site: SiteConfig, audit: AuditTrail, clock: Clock, photos: Path) -> None:
        db.create(WORK_ORDERS, site=site.id)
        self._db = db
        self._site_id = site.id
        self.photos = photos
        self._audit = audit
        self._clock = clock
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        self._site = site
        self._settings = site.work_orders

    def now_ms(self) -> int:
        return to_ms(self._clock.now())

    def _mine(self, order_id: int | None = None) -> ColumnElement[bool]:
        return of_site(WORK_ORDERS, self._site_id, order_id)

    def _set(self, order_id: int, **values: object) -> None:
        with self._db.write() as conn:
            conn.execute(WORK_ORDERS.update().where(self._mine(order_id)).values(**values))

    def on_raised(self, alert: Alert, evidence: Evidence) -> WorkOrder | None:
        """Opens an order when the alert's rule is one that needs a trade to fix it."""
        trade = self._settings.rules.get(alert.rule)
        if trade is None:
            return None
        device = self._site.device(alert.device_id)
        metric = kinds()[device.kind].metric(evidence.metric) if device and evidence.metric else None
        proof = {"metric": evidence.metric, "unit": metric.unit if metric else "",
                 "points": [[ts, v] for ts, v in evidence.points]}
        return self._open(alert, trade, proof, f"rule:{alert.rule}")

    def open_for(self, alert: Alert, trade: Trade, who: str, *, assignee: str, note: str | None = None,
                 due_ms: int | None = None) -> WorkOrder:
        """Opens an order by hand for an alert that has none (its rule opens none by itself)
        and dispatches it: two steps of its history. Its evidence is empty: the readings that
        triggered the alert were not kept with it."""
        existing = self.for_alerts([alert.id]).get(alert.id)
        if existing is not None:
            raise WorkOrderError(f"这条告警已有工单（第 {existing} 号）。",
                                 f"This alert already has a work order (number {existing}).")
        if due_ms is not None and due_ms <= self.now_ms():
            raise _due_too_early()
        order = self._open(alert, trade, {"metric": None, "unit": "", "points": []}, who)
        return self.update(order.id, who, assignee=assignee, note=note, due_ms=due_ms)

    def _open(self, alert: Alert, trade: Trade, evidence: Mapping[str, Any], who: str) -> WorkOrder:
        now = self.now_ms()
        return self._insert(who, {"alert": alert.id, "trade": trade}, alert.id, alert.rule, trade, alert.device_id,
                            alert.building_id, alert.room_id, (alert.title_zh, alert.title_en), evidence,
                            self._default_due(now))

    def _insert(self, who: str, audited: Mapping[str, object], alert_id: int, rule: str, trade: Trade,
                device_id: str, building_id: str, room_id: str, title: tuple[str, str], evidence: Mapping[str, Any],
                due_ms: int) -> WorkOrder:
        """The one way an order is opened: stored open, and audited with `audited` as detail."""
        now = self.now_ms()
        with self._db.write() as conn:
            order_id: int = conn.execute(WORK_ORDERS.insert().returning(WORK_ORDERS.c.id).values(
                alert_id=alert_id, rule=rule, trade=trade.value, device_id=device_id, building_id=building_id,
                room_id=room_id, title_zh=title[0], title_en=title[1], evidence=json.dumps(evidence), opened_ms=now,
                due_ms=due_ms, status=Status.OPEN.value, updated_ms=now, site=self._site_id,
            )).scalar_one()
        self._audit.record(now, who, "work_order.open", f"work_order:{order_id}", audited)
        return self.get(order_id)

    def _default_due(self, now_ms: int) -> int:
        if self._settings.due_within_h is not None:
            return now_ms + int(self._settings.due_within_h * 3_600_000)
        local = from_ms(now_ms, self._site.tz).date() + timedelta(days=1)
        return to_ms(datetime.combine(local, time(), tzinfo=self._site.tz))

    def update(self, order_id: int, who: str, *, status: Status | None = None, assignee: str | None = None,
               note: str | None = None, trade: Trade | None = None, due_ms: int | None = None) -> WorkOrder:
        """Dispatches (an assignee, with the trade, note and due time), moves along and
        annotates. Giving an open order an assignee makes it assigned. Done is reached
        through `complete`, which says what was done."""
        order = self.get(order_id)
        new_status = status or order.status
        if order.status is Status.DONE and (new_status is not Status.DONE or assignee is not None
                                            or trade is not None or due_ms is not None):
            raise WorkOrderError("这张工单已经完成，不能再改派或改状态，只能加备注。",
                                 f"Work order {order_id} is done: it can go neither back nor to someone else; "
                                 "only a note can be added.")
        if _ORDER.index(new_status) < _ORDER.index(order.status):
            raise WorkOrderError("工单只能往前推进，不能退回。",
                                 f"Work order {order_id} is {order.status}; it cannot go back to {new_status}.")
        new_assignee = assignee if assignee is not None else order.assignee
        if new_status is not Status.OPEN and not new_assignee:
            raise WorkOrderError("请先把工单派给一位负责人。",
                                 f"Work order {order_id} needs an assignee to be {new_status}.")
        if new_status is Status.DONE and order.status is not Status.DONE:
            raise WorkOrderInvalid("完成工单请点「完成」，写明做了什么。",
                                   "To complete a work order, use “Done” and say what was done.")
        if due_ms is not None and due_ms <= order.opened_ms:
            raise _due_too_early()
        if status is None and assignee is not None and order.status is Status.OPEN:
            new_status = Status.ASSIGNED
        now = self.now_ms()
        on_site = now if new_status is Status.ON_SITE and order.on_site_ms is None else order.on_site_ms
        changed = {"status": new_status, "assignee": new_assignee, "trade": trade or order.trade,
                   "due_ms": order.due_ms if due_ms is None else due_ms,
                   "note": order.note if note is None else note}
        self._set(order_id, **changed, updated_ms=now, on_site_ms=on_site)
        if new_assignee != order.assignee:
            action = "work_order.dispatch"
        elif new_status is Status.ON_SITE and order.status is not Status.ON_SITE:
            action = "work_order.on_site"
        else:
            action = "work_order.update"
        self._audit.record(now, who, action, f"work_order:{order_id}", changed)
        return self.get(order_id)

    def arrive(self, order_id: int, who: str) -> WorkOrder:
        """到场: the assignee (or whoever marks it for them) is on site."""
        order = self.get(order_id)
        if order.status in (Status.ON_SITE, Status.DONE):
            raise WorkOrderError("这张工单已经标记过到场了。", f"Work order {order_id} is already {order.status}.")
        return self.update(order_id, who, status=Status.ON_SITE)

    def complete(self, order_id: int, who: str, work_done: str, repair: Repair, photo: bytes | None = None,
                 ) -> WorkOrder:
        """完成: what was done (required), how, and optionally a photo (JPEG, PNG or WebP, by
        its bytes; at most `work_orders.photo_max_bytes`)."""
        order = self.get(order_id)
        if order.status is Status.DONE:
            raise WorkOrderError("这张工单已经完成了。", f"Work order {order_id} is already done.")
        if not order.assignee:
            raise WorkOrderError("请先把工单派给一位负责人。", f"Work order {order_id} needs an assignee to be done.")
        text = work_done.strip()
        if not text:
            raise WorkOrderInvalid("请写明做了什么。", "Say what was done.")
        name = None if photo is None else self._keep_photo(order_id, photo)
        now = self.now_ms()
        try:
            self._set(order_id, status=Status.DONE.value, work_done=text, repair=repair.value, photo=name,
                      updated_ms=now, done_ms=now)
        except BaseException:
            if name is not None:
                (self.photos / name).unlink(missing_ok=True)
            raise
        self._audit.record(now, who, "work_order.done", f"work_order:{order_id}",
                           {"work_done": text, "repair": repair, "photo": name or ""})
        return self.get(order_id)

    def _keep_photo(self, order_id: int, data: bytes) -> str:
        limit = self._settings.photo_max_bytes
        if len(data) > limit:
            raise PhotoTooLarge(f"照片太大（{_mb(len(data))} MB），不能超过 {_mb(limit)} MB。",
                                f"The photo is too large ({_mb(len(data))} MB): at most {_mb(limit)} MB.")
        media = photo_type(data)
        if media is None:
            raise WorkOrderInvalid("照片只能是 JPEG、PNG 或 WebP 格式的图片。",
                                   "The photo must be a JPEG, PNG or WebP image.")
        self.photos.mkdir(parents=True, exist_ok=True)
        name = f"{order_id}-{secrets.token_hex(8)}{_PHOTO_TYPES[media]}"  # never the sender's file name
        part = self.photos / f".{name}.part"
        part.write_bytes(data)
        part.replace(self.photos / name)
        return name

    def photo(self, order_id: int) -> tuple[Path, str] | None:
        """The order's photo file and its media type; None when it has none."""
        name = self.get(order_id).photo
        if name is None:
            return None
        return self.photos / name, _MEDIA_OF_SUFFIX[Path(name).suffix]

    def history(self, order_id: int) -> list[AuditEntry]:
        """Each step, oldest first: opened, dispatched, on site, done, notes."""
        return list(reversed(self._audit.about(f"work_order:{order_id}")))

    def for_alerts(self, alert_ids: Collection[int]) -> dict[int, int]:
        """The order opened for each of these alerts that has one: alert id → order id."""
        ids = list(alert_ids)
        if not ids:
            return {}
        query = select(WORK_ORDERS.c.alert_id, WORK_ORDERS.c.id).where(self._mine(), WORK_ORDERS.c.alert_id.in_(ids))
        with self._db.read() as conn:
            return {row.alert_id: row.id for row in conn.execute(query)}

    def get(self, order_id: int) -> WorkOrder:
        """The site's order `order_id`; another site's is as unknown as a missing one."""
        with self._db.read() as conn:
            row = conn.execute(select(*_COLUMNS).select_from(_WITH_ALERT).where(self._mine(order_id))).one_or_none()
        if row is None:
            raise WorkOrderNotFound(order_id)
        return _order(row)

    def find(self, *, status: Status | None = None, trade: Trade | None = None, overdue: bool | None = None,
             due_from_ms: int | None = None, due_until_ms: int | None = None, limit: int = 100) -> list[WorkOrder]:
        """Overdue first, then by due time."""
        c = WORK_ORDERS.c
        query = select(*_COLUMNS).select_from(_WITH_ALERT).where(self._mine())
        if status is not None:
            query = query.where(c.status == status.value)
        if trade is not None:
            query = query.where(c.trade == trade.value)
        if due_from_ms is not None:
            query = query.where(c.due_ms >= due_from_ms)
        if due_until_ms is not None:
            query = query.where(c.due_ms < due_until_ms)
        with self._db.read() as conn:
            orders = [_order(r) for r in conn.execute(query.order_by(c.due_ms, c.id))]
        now = self.now_ms()
        if overdue is not None:
            orders = [o for o in orders if o.overdue(now) == overdue]
        orders.sort(key=lambda o: not o.overdue(now))  # stable: by due time within each group
        return orders[:limit]

    # --- opened by a person (a sweep's item turned into a work order) -----------------------

    def open_by_hand(self, who: str, trade: Trade, building_id: str, room_id: str, title: tuple[str, str],
                     due_ms: int, source: str) -> WorkOrder:
        """Opens an order that no alert raised: `alert_id` 0, no device, the rule column naming
        where it came from (`source`, e.g. sweep). `who` is the signed-in login."""
        return self._insert(who, {"source": source, "trade": trade}, 0, source, trade, "", building_id, room_id,
                            title, {"metric": None, "unit": "", "points": []}, max(due_ms, self.now_ms()))


def _due_too_early() -> WorkOrderInvalid:
    return WorkOrderInvalid("期限要晚于开单时间。", "The due time must be after the order was opened.")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


def _order(row: Any) -> WorkOrder:
    (id_, alert_id, rule, trade, device, building, room, tzh, ten, evidence, opened, due, status, assignee, note,
     updated, done, on_site, work_done, repair, photo) = row
    return WorkOrder(id_, alert_id, rule, Trade(trade), device, building, room, tzh, ten, json.loads(evidence),
                     opened, due, Status(status), assignee, note, updated, done, on_site, work_done,
                     None if repair is None else Repair(repair), photo)
