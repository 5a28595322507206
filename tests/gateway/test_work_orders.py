"""Work orders (派单): opened by alerts of the rules that need a trade, with the room, the
evidence and a due time; moved forward by technicians; overdue when not done in time. On a
real SQLite state database, fed by a real AlertStore, on a ManualClock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.alerting.alerts import AlertStore, Notice
from gateway.alerting.severity import Severity
from gateway.alerting.work_orders import Status, WorkOrder, WorkOrderError, WorkOrderNotFound, WorkOrders
from gateway.auth.audit import AuditTrail
from gateway.clock import ManualClock
from gateway.config import SiteConfig, parse
from gateway.config.work_orders import Trade
from gateway.rules.base import Finding
from gateway.rules.engine import Evidence
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from tests.rule_scenarios import DEMO, demo_site

SHANGHAI = ZoneInfo("Asia/Shanghai")
THURSDAY_NIGHT = datetime(2026, 10, 15, 22, 0, tzinfo=SHANGHAI)  # a school day
HOUR = timedelta(hours=1)


def _local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _variant(**changes: Any) -> SiteConfig:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data.update(changes)
    return parse(yaml.safe_dump(data, allow_unicode=True), "t.yaml")


@dataclass
class Harness:
    clock: ManualClock
    audit: AuditTrail
    orders: WorkOrders
    alerts: AlertStore
    opened: list[WorkOrder | None] = field(default_factory=list)  # what on_raised returned, per raise
    notices: list[Notice] = field(default_factory=list)

    def now_ms(self) -> int:
        return _ms(self.clock.now())

    def close(self) -> None:
        self.alerts.close()
        self.orders.close()
        self.audit.close()


def _harness(tmp_path: Path, site: SiteConfig, start: datetime = THURSDAY_NIGHT) -> Harness:
    """Wired as the gateway wires them: the alert store hands each raise to the work orders."""
    path = tmp_path / "state.db"
    clock = ManualClock(start)
    audit = AuditTrail(path)
    orders = WorkOrders(path, site, audit, clock)
    opened: list[WorkOrder | None] = []
    notices: list[Notice] = []
    alerts = AlertStore(path, site, audit, Roster(site, SchoolCalendar(site)), clock, notices.append,
                        lambda alert, evidence: opened.append(orders.on_raised(alert, evidence)))
    return Harness(clock, audit, orders, alerts, opened, notices)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = _harness(tmp_path, demo_site())
    yield harness
    harness.close()


def _finding(h: Harness, rule: str, device: str, *, active: bool = True, metric: str | None = None) -> Finding:
    now = h.now_ms()
    return Finding(rule, device, active, Severity.MAJOR, now - 600_000, now, "厨房水表 夜间有流量",
                   "Kitchen water meter: flow at night", evidence=metric)


def _evidence(h: Harness, metric: str | None) -> Evidence:
    if metric is None:
        return Evidence()
    now = h.now_ms()
    return Evidence(metric, [(now - 120_000, 1.5), (now - 60_000, 2.0), (now, 1.25)])


def _open(h: Harness, rule: str = "water_leak", device: str = "kitchen-water", metric: str | None = "flow_lpm",
          ) -> WorkOrder | None:
    """Raises an alert (and clears it, so the next raise is a new alert); what it opened, if anything."""
    before = len(h.opened)
    h.alerts.apply(_finding(h, rule, device, metric=metric), _evidence(h, metric))
    h.alerts.apply(_finding(h, rule, device, active=False), Evidence())
    assert len(h.opened) == before + 1
    return h.opened[-1]


def _order(h: Harness, **kw: Any) -> WorkOrder:
    order = _open(h, **kw)
    assert order is not None
    return order


# --- opening ----------------------------------------------------------------------------------------


def test_a_water_leak_opens_a_water_order_with_its_place_and_evidence(h: Harness) -> None:
    now = h.now_ms()
    alert = h.alerts.apply(_finding(h, "water_leak", "kitchen-water", metric="flow_lpm"), _evidence(h, "flow_lpm"))
    assert alert is not None

    assert len(h.opened) == 1
    order = h.opened[0]
    assert order is not None
    assert order == WorkOrder(
        id=order.id, alert_id=alert.id, rule="water_leak", trade=Trade.WATER, device_id="kitchen-water",
        building_id="service", room_id="kitchen", title_zh=alert.title_zh, title_en=alert.title_en,
        evidence={"metric": "flow_lpm", "unit": "L/min",
                  "points": [[now - 120_000, 1.5], [now - 60_000, 2.0], [now, 1.25]]},
        opened_ms=now, due_ms=_ms(_local(2026, 10, 16)), status=Status.OPEN,
        assignee=None, note="", updated_ms=now, done_ms=None,
    )
    assert h.orders.get(order.id) == order
    assert h.orders.find() == [order]
    assert not order.overdue(now)
    # A repeat of the alert opens no second order.
    h.alerts.apply(_finding(h, "water_leak", "kitchen-water", metric="flow_lpm"), _evidence(h, "flow_lpm"))
    assert h.orders.find() == [order]


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        (_local(2026, 10, 15, 22, 0), _local(2026, 10, 16)),
        (_local(2026, 10, 15, 7, 59), _local(2026, 10, 16)),  # 23:59 UTC the day before
        (_local(2026, 10, 16, 0, 30), _local(2026, 10, 17)),  # still the 15th in UTC
        (_local(2026, 10, 16), _local(2026, 10, 17)),  # midnight belongs to the new day
        (_local(2026, 10, 15, 23, 59, 59), _local(2026, 10, 16)),
    ],
)
def test_an_order_is_due_at_the_end_of_the_local_day_it_was_opened(
        tmp_path: Path, opened: datetime, due: datetime) -> None:
    h = _harness(tmp_path, demo_site(), opened)
    try:
        order = _order(h)
        assert order.opened_ms == _ms(opened)
        assert order.due_ms == _ms(due)
    finally:
        h.close()


@pytest.mark.parametrize(
    ("rule", "device", "metric", "unit", "trade"),
    [
        ("water_leak", "kitchen-water", "flow_lpm", "L/min", Trade.WATER),
        ("running_tap", "kitchen-water", "flow_lpm", "L/min", Trade.WATER),
        ("door_open_too_long", "kitchen-door", "open", "", Trade.CARPENTRY),
        ("uv_tube_life", "uv-kitchen", "lamp_hours", "h", Trade.ELECTRIC),
        ("device_offline", "main-gate", None, "", Trade.OTHER),
    ],
)
def test_the_default_rules_open_orders_for_their_trade(
        h: Harness, rule: str, device: str, metric: str | None, unit: str, trade: Trade) -> None:
    order = _order(h, rule=rule, device=device, metric=metric)
    assert (order.rule, order.trade, order.device_id, order.status) == (rule, trade, device, Status.OPEN)
    assert (order.evidence["metric"], order.evidence["unit"]) == (metric, unit)
    assert len(order.evidence["points"]) == (0 if metric is None else 3)


@pytest.mark.parametrize(
    ("rule", "device", "metric"),
    [("low_battery", "main-gate", "battery_pct"), ("fridge_temperature", "sample-fridge", "temperature_c"),
     ("door_after_hours", "kitchen-door", "open")],
)
def test_a_rule_without_a_trade_opens_no_order(h: Harness, rule: str, device: str, metric: str) -> None:
    assert _open(h, rule=rule, device=device, metric=metric) is None
    assert h.orders.find() == []
    assert h.audit.newest(10, action="work_order.open") == []


def test_due_within_h_and_the_rules_come_from_the_site_file(tmp_path: Path) -> None:
    site = _variant(work_orders={"due_within_h": 4.5, "rules": {"low_battery": "electric"}})
    h = _harness(tmp_path, site)
    try:
        order = _order(h, rule="low_battery", device="main-gate", metric="battery_pct")
        assert (order.trade, order.evidence["unit"]) == (Trade.ELECTRIC, "%")  # a metric common to all kinds
        assert order.due_ms == order.opened_ms + 4 * 3_600_000 + 30 * 60_000
        # The site's rules replace the defaults.
        assert _open(h, rule="water_leak", device="kitchen-water") is None
    finally:
        h.close()


# --- updates ----------------------------------------------------------------------------------------


def test_an_order_moves_forward_to_done(h: Harness) -> None:
    order = _order(h)

    h.clock.advance(HOUR)
    assigned = h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    assert (assigned.status, assigned.assignee, assigned.updated_ms, assigned.done_ms) == (
        Status.ASSIGNED, "plumber-liu", h.now_ms(), None)

    h.clock.advance(HOUR)
    on_site = h.orders.update(order.id, "plumber-liu", status=Status.ON_SITE, note="已到厨房")
    assert (on_site.status, on_site.assignee, on_site.note, on_site.updated_ms) == (
        Status.ON_SITE, "plumber-liu", "已到厨房", h.now_ms())

    h.clock.advance(HOUR)
    done = h.orders.update(order.id, "plumber-liu", status=Status.DONE, note="更换水龙头阀芯")
    done_at = h.now_ms()
    assert (done.status, done.assignee, done.note, done.done_ms) == (
        Status.DONE, "plumber-liu", "更换水龙头阀芯", done_at)
    assert h.orders.get(order.id) == done
    # The unchanged fields stay as opened.
    assert (done.alert_id, done.evidence, done.opened_ms, done.due_ms) == (
        order.alert_id, order.evidence, order.opened_ms, order.due_ms)

    # A later note on a done order keeps when it was done.
    h.clock.advance(HOUR)
    noted = h.orders.update(order.id, "logistics-li", note="已验收")
    assert (noted.status, noted.done_ms, noted.note) == (Status.DONE, done_at, "已验收")


def test_history_of_an_order_is_in_the_audit_trail(h: Harness) -> None:
    order = _order(h)
    opened_at = h.now_ms()
    h.clock.advance(HOUR)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    with pytest.raises(WorkOrderError):
        h.orders.update(order.id, "logistics-li", status=Status.OPEN)  # refused: not recorded
    h.clock.advance(HOUR)
    h.orders.update(order.id, "plumber-liu", status=Status.DONE, note="修好了")

    entries = list(reversed(h.audit.about(f"work_order:{order.id}")))

    assert [(e.action, e.actor, e.at_ms) for e in entries] == [
        ("work_order.open", "rule:water_leak", opened_at),
        ("work_order.update", "logistics-li", opened_at + 3_600_000),
        ("work_order.update", "plumber-liu", opened_at + 7_200_000),
    ]
    assert dict(entries[0].detail) == {"alert": order.alert_id, "trade": "water"}
    assert dict(entries[1].detail) == {"status": "assigned", "assignee": "plumber-liu", "note": ""}
    assert dict(entries[2].detail) == {"status": "done", "assignee": "plumber-liu", "note": "修好了"}


def test_an_order_can_skip_ahead_but_not_go_back(h: Harness) -> None:
    order = _order(h)
    done = h.orders.update(order.id, "logistics-li", status=Status.DONE, assignee="plumber-liu")
    assert (done.status, done.done_ms) == (Status.DONE, h.now_ms())

    for back in (Status.ON_SITE, Status.ASSIGNED, Status.OPEN):
        with pytest.raises(WorkOrderError, match="back") as caught:
            h.orders.update(order.id, "logistics-li", status=back)
        assert not isinstance(caught.value, WorkOrderNotFound)
    assert h.orders.get(order.id) == done


@pytest.mark.parametrize("status", [Status.ASSIGNED, Status.ON_SITE, Status.DONE])
def test_leaving_open_needs_an_assignee(h: Harness, status: Status) -> None:
    order = _order(h)
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.update(order.id, "logistics-li", status=status)
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.update(order.id, "logistics-li", status=status, assignee="")
    assert h.orders.get(order.id) == order
    assert len(h.audit.about(f"work_order:{order.id}")) == 1  # only the opening


def test_an_assigned_order_cannot_lose_its_assignee(h: Harness) -> None:
    order = _order(h)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.update(order.id, "logistics-li", assignee="")
    reassigned = h.orders.update(order.id, "logistics-li", assignee="plumber-sun")
    assert (reassigned.status, reassigned.assignee) == (Status.ASSIGNED, "plumber-sun")


def test_an_unknown_order_is_not_found(h: Harness) -> None:
    with pytest.raises(WorkOrderNotFound):
        h.orders.get(4711)
    with pytest.raises(WorkOrderNotFound):
        h.orders.update(4711, "logistics-li", assignee="plumber-liu")
    assert h.audit.newest(10) == []


# --- overdue ----------------------------------------------------------------------------------------


def test_overdue_is_not_done_by_the_due_time_or_done_late(h: Harness) -> None:
    order = _order(h)
    assert not order.overdue(order.due_ms)  # due at midnight: still in time at midnight
    assert order.overdue(order.due_ms + 1)

    h.clock.set(_local(2026, 10, 16, 9))
    assert h.orders.find(overdue=True) == [order]
    late = h.orders.update(order.id, "plumber-liu", status=Status.DONE, assignee="plumber-liu")
    assert late.overdue(h.now_ms())
    assert late.overdue(late.due_ms - 1)  # it stays late, whenever asked
    assert h.orders.find(overdue=True) == [late]

    in_time = _order(h)  # opened 09:00 on the 16th, due at midnight
    h.clock.advance(HOUR)
    in_time = h.orders.update(in_time.id, "plumber-liu", status=Status.DONE, assignee="plumber-liu")
    h.clock.set(_local(2026, 10, 20, 9))
    assert not in_time.overdue(h.now_ms())
    assert h.orders.find(overdue=False) == [in_time]


@dataclass(frozen=True)
class Week:
    """Orders around the week of Monday 2026-10-12, seen on Thursday 10-15 at noon."""

    last_week: WorkOrder  # due Sat 10-10, never done
    monday: WorkOrder  # due 10-13, open
    tuesday: WorkOrder  # due 10-14, done late
    wednesday: WorkOrder  # due 10-15, done in time
    thursday: WorkOrder  # due 10-16, open
    start_ms: int = _ms(_local(2026, 10, 12))
    end_ms: int = _ms(_local(2026, 10, 19))


def _week(h: Harness) -> Week:
    def opened_at(when: datetime, rule: str = "water_leak", device: str = "kitchen-water") -> WorkOrder:
        h.clock.set(when)
        return _order(h, rule=rule, device=device)

    last_week = opened_at(_local(2026, 10, 9, 10))
    monday = opened_at(_local(2026, 10, 12, 10), "door_open_too_long", "kitchen-door")
    tuesday = opened_at(_local(2026, 10, 13, 9))
    h.clock.set(_local(2026, 10, 14, 8))
    tuesday = h.orders.update(tuesday.id, "plumber-liu", status=Status.DONE, assignee="plumber-liu")
    wednesday = opened_at(_local(2026, 10, 14, 9), "uv_tube_life", "uv-kitchen")
    h.clock.set(_local(2026, 10, 14, 15))
    wednesday = h.orders.update(wednesday.id, "electrician-wu", status=Status.DONE, assignee="electrician-wu")
    thursday = opened_at(_local(2026, 10, 15, 9), "device_offline", "main-gate")
    h.clock.set(_local(2026, 10, 15, 12))
    return Week(last_week, monday, tuesday, wednesday, thursday)


def _ids(orders: list[WorkOrder]) -> list[int]:
    return [o.id for o in orders]


def test_find_lists_overdue_orders_first_then_by_due_time(h: Harness) -> None:
    w = _week(h)
    assert _ids(h.orders.find()) == [w.last_week.id, w.monday.id, w.tuesday.id, w.wednesday.id, w.thursday.id]
    assert _ids(h.orders.find(overdue=True)) == [w.last_week.id, w.monday.id, w.tuesday.id]
    assert _ids(h.orders.find(overdue=False)) == [w.wednesday.id, w.thursday.id]
    assert _ids(h.orders.find(limit=2)) == [w.last_week.id, w.monday.id]
    # After Thursday's midnight its order is late too, and goes before the one done in time.
    h.clock.set(_local(2026, 10, 16, 0, 0, 1))
    assert _ids(h.orders.find()) == [w.last_week.id, w.monday.id, w.tuesday.id, w.thursday.id, w.wednesday.id]


def test_the_weekly_list_of_overdue_orders(h: Harness) -> None:
    w = _week(h)
    assert _ids(h.orders.find(overdue=True, due_from_ms=w.start_ms, due_until_ms=w.end_ms)) == [
        w.monday.id, w.tuesday.id]
    assert _ids(h.orders.find(due_from_ms=w.start_ms, due_until_ms=w.end_ms)) == [
        w.monday.id, w.tuesday.id, w.wednesday.id, w.thursday.id]
    assert _ids(h.orders.find(due_until_ms=w.start_ms)) == [w.last_week.id]
    h.clock.set(_local(2026, 10, 16, 0, 0, 1))
    assert _ids(h.orders.find(overdue=True, due_from_ms=w.start_ms, due_until_ms=w.end_ms)) == [
        w.monday.id, w.tuesday.id, w.thursday.id]


def test_find_by_status_and_trade(h: Harness) -> None:
    w = _week(h)
    assert _ids(h.orders.find(status=Status.DONE)) == [w.tuesday.id, w.wednesday.id]
    assert _ids(h.orders.find(status=Status.OPEN, overdue=True)) == [w.last_week.id, w.monday.id]
    assert _ids(h.orders.find(trade=Trade.WATER)) == [w.last_week.id, w.tuesday.id]
    assert _ids(h.orders.find(trade=Trade.CARPENTRY, overdue=False)) == []
    assert _ids(h.orders.find(status=Status.DONE, trade=Trade.ELECTRIC)) == [w.wednesday.id]
