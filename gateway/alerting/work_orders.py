"""Work orders (派单): an alert of a chosen rule opens one for a trade, with the room, the
evidence (the readings that triggered it), a due time and a status that technicians move
along (open → assigned → on_site → done)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from devices import kinds
from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, from_ms, to_ms
from gateway.config.work_orders import Trade
from gateway.storage.sqlite import connect, where

if TYPE_CHECKING:
    from gateway.alerting.alerts import Alert
    from gateway.config import SiteConfig
    from gateway.rules.engine import Evidence








class Status(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    ON_SITE = "on_site"
    DONE = "done"


_ORDER: Final = (Status.OPEN, Status.ASSIGNED, Status.ON_SITE, Status.DONE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS work_orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    rule TEXT NOT NULL,
    trade TEXT NOT NULL,
    device_id TEXT NOT NULL,
    building_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    title_zh TEXT NOT NULL, title_en TEXT NOT NULL,
    evidence TEXT NOT NULL,         -- JSON: {"metric", "unit", "points": [[ms, value], ...]}
    opened_ms INTEGER NOT NULL,     -- the clock's
    due_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    note TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL,
    done_ms INTEGER
);
CREATE INDEX IF NOT EXISTS work_orders_due ON work_orders (due_ms);
"""

_COLUMNS: Final = ("id, alert_id, rule, trade, device_id, building_id, room_id, title_zh, title_en, evidence, "
                   "opened_ms, due_ms, status, assignee, note, updated_ms, done_ms")


class WorkOrderError(Exception):
    """A change the order's status does not allow."""


class WorkOrderNotFound(WorkOrderError):
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

    def overdue(self, now_ms: int) -> bool:
        """Not done by its due time (or done late)."""
        return (self.done_ms or now_ms) > self.due_ms


class WorkOrders:
    """Work orders in the state database; called from the event loop's thread."""

    def __init__(self, path: Path, site: SiteConfig, audit: AuditTrail, clock: Clock) -> None:
        self._conn = connect(path, _SCHEMA)
        self._site = site
        self._settings = site.work_orders
        self._audit = audit
        self._clock = clock

    def close(self) -> None:
        self._conn.close()

    def now_ms(self) -> int:
        return to_ms(self._clock.now())

    def on_raised(self, alert: Alert, evidence: Evidence) -> WorkOrder | None:
        """Opens an order when the alert's rule is one that needs a trade to fix it."""
        trade = self._settings.rules.get(alert.rule)
        if trade is None:
            return None
        device = self._site.device(alert.device_id)
        metric = kinds()[device.kind].metric(evidence.metric) if device and evidence.metric else None
        now = self.now_ms()
        if self._settings.due_within_h is not None:
            due = now + int(self._settings.due_within_h * 3_600_000)
        else:
            local = from_ms(now, self._site.tz).date() + timedelta(days=1)
            due = to_ms(datetime.combine(local, time(), tzinfo=self._site.tz))
        proof = {"metric": evidence.metric, "unit": metric.unit if metric else "",
                 "points": [[ts, v] for ts, v in evidence.points]}
        cur = self._conn.execute(
            "INSERT INTO work_orders (alert_id, rule, trade, device_id, building_id, room_id, title_zh, title_en, "
            "evidence, opened_ms, due_ms, status, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            (alert.id, alert.rule, trade, alert.device_id, alert.building_id, alert.room_id, alert.title_zh,
             alert.title_en, json.dumps(proof), now, due, now),
        )
        order_id = cur.lastrowid
        assert order_id is not None
        self._audit.record(now, f"rule:{alert.rule}", "work_order.open", f"work_order:{order_id}",
                           {"alert": alert.id, "trade": trade})
        return self.get(order_id)

    def update(self, order_id: int, who: str, *, status: Status | None = None, assignee: str | None = None,
               note: str | None = None) -> WorkOrder:
        order = self.get(order_id)
        now = self.now_ms()
        new_status = status or order.status
        if _ORDER.index(new_status) < _ORDER.index(order.status):
            raise WorkOrderError(f"work order {order_id} is {order.status}; it cannot go back to {new_status}")
        new_assignee = assignee if assignee is not None else order.assignee
        if new_status is not Status.OPEN and not new_assignee:
            raise WorkOrderError(f"work order {order_id} needs an assignee to be {new_status}")
        if status is None and assignee is not None and order.status is Status.OPEN:
            new_status = Status.ASSIGNED
        done_ms = now if new_status is Status.DONE and order.done_ms is None else order.done_ms
        new_note = note if note is not None else order.note
        self._conn.execute(
            "UPDATE work_orders SET status = ?, assignee = ?, note = ?, updated_ms = ?, done_ms = ? WHERE id = ?",
            (new_status, new_assignee, new_note, now, done_ms, order_id),
        )
        self._audit.record(now, who, "work_order.update", f"work_order:{order_id}",
                           {"status": new_status, "assignee": new_assignee, "note": new_note})
        return self.get(order_id)

    def get(self, order_id: int) -> WorkOrder:
        query = f"SELECT {_COLUMNS} FROM work_orders WHERE id = ?"  # noqa: S608 (constant columns)
        row = self._conn.execute(query, (order_id,)).fetchone()
        if row is None:
            raise WorkOrderNotFound(f"no work order {order_id}")
        return _order(row)

    def find(self, *, status: Status | None = None, trade: Trade | None = None, overdue: bool | None = None,
             due_from_ms: int | None = None, due_until_ms: int | None = None, limit: int = 100) -> list[WorkOrder]:
        """Overdue first, then by due time."""
        clause, args = where((("status = ?", status), ("trade = ?", trade), ("due_ms >= ?", due_from_ms),
                              ("due_ms < ?", due_until_ms)))
        query = f"SELECT {_COLUMNS} FROM work_orders{clause} ORDER BY due_ms, id"  # noqa: S608 (bound values)
        orders = [_order(r) for r in self._conn.execute(query, args)]
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
        now = self.now_ms()
        proof: dict[str, Any] = {"metric": None, "unit": "", "points": []}
        cur = self._conn.execute(
            "INSERT INTO work_orders (alert_id, rule, trade, device_id, building_id, room_id, title_zh, title_en, "
            "evidence, opened_ms, due_ms, status, updated_ms) VALUES (0, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            (source, trade, building_id, room_id, title[0], title[1], json.dumps(proof), now, max(due_ms, now), now),
        )
        order_id = cur.lastrowid
        assert order_id is not None
        self._audit.record(now, who, "work_order.open", f"work_order:{order_id}", {"source": source, "trade": trade})
        return self.get(order_id)


def _order(row: Any) -> WorkOrder:
    (id_, alert_id, rule, trade, device, building, room, tzh, ten, evidence, opened, due, status, assignee, note,
     updated, done) = row
    return WorkOrder(id_, alert_id, rule, Trade(trade), device, building, room, tzh, ten, json.loads(evidence),
                     opened, due, Status(status), assignee, note, updated, done)
