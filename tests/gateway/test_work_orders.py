"""Work orders (派单): opened by alerts of the rules that need a trade, with the room, the
evidence and a due time; moved forward by technicians; overdue when not done in time. On a
real state database (SQLite and PostgreSQL), fed by a real AlertStore, on a ManualClock."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import BigInteger, Column, MetaData, Table, Text

from gateway.alerting.alerts import AlertStore, Notice
from gateway.alerting.severity import Severity
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
from gateway.app import create_app
from gateway.auth.audit import AuditTrail
from gateway.cli.demo import DEMO_PASSWORD, demo_accounts
from gateway.clock import ManualClock
from gateway.config import SiteConfig, parse
from gateway.config.auth import Scope
from gateway.config.work_orders import Trade
from gateway.rules.base import Finding
from gateway.rules.engine import Evidence
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.state import ID, StateDatabase
from tests.dashboard_site import wait_until, write_site
from tests.rule_scenarios import DEMO, another_school, demo_site
from tests.served import serve
from tests.services import Mosquitto

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


def _harness(db: StateDatabase, photos: Path, site: SiteConfig, start: datetime = THURSDAY_NIGHT) -> Harness:
    """Wired as the gateway wires them: the alert store hands each raise to the work orders."""
    clock = ManualClock(start)
    audit = AuditTrail(db, site.id)
    orders = WorkOrders(db, site, audit, clock, photos)
    opened: list[WorkOrder | None] = []
    notices: list[Notice] = []
    alerts = AlertStore(db, site, audit, Roster(site, SchoolCalendar(site)), clock, notices.append,
                        lambda alert, evidence: opened.append(orders.on_raised(alert, evidence)))
    return Harness(clock, audit, orders, alerts, opened, notices)


@pytest.fixture
def h(state_db: StateDatabase, tmp_path: Path) -> Harness:
    return _harness(state_db, tmp_path / "photos", demo_site())


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


def test_an_order_reads_the_figures_its_alert_reads_now(h: Harness) -> None:
    """One leak, one story: the order is titled as its alert is, as the minutes and the loss
    go on and once the water stopped; an order no alert opened keeps its own title."""

    def leak(title: str, *, active: bool = True, update: bool = False) -> Finding:
        now = h.now_ms()
        return Finding("water_leak", "kitchen-water", active, Severity.MAJOR, now - 3_600_000, now, title,
                       f"en: {title}", evidence="flow_lpm", update=update)

    alert = h.alerts.apply(leak("厨房水表 闭园时段持续用水 60 分钟"), _evidence(h, "flow_lpm"))
    assert alert is not None
    order = h.opened[0]
    assert order is not None
    assert order.title_zh == "厨房水表 闭园时段持续用水 60 分钟"
    h.clock.advance(timedelta(minutes=85))
    h.alerts.apply(leak("厨房水表 闭园时段持续用水 145 分钟", update=True), Evidence())
    assert [(o.title_zh, o.title_en) for o in (h.orders.get(order.id), *h.orders.find())] == [
        ("厨房水表 闭园时段持续用水 145 分钟", "en: 厨房水表 闭园时段持续用水 145 分钟")] * 2
    h.alerts.apply(leak("厨房水表 跑水 145 分钟, 流失 0.216 m³", active=False), Evidence())
    assert h.orders.get(order.id).title_zh == h.alerts.get(alert.id).title_zh == "厨房水表 跑水 145 分钟, 流失 0.216 m³"

    by_hand = h.orders.open_by_hand("logistics-li", Trade.WATER, "service", "kitchen", ("厨房水槽下渗水", "Seepage"),
                                    h.now_ms() + 3_600_000, "sweep")
    assert h.orders.get(by_hand.id).title_zh == "厨房水槽下渗水"


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
        state_db: StateDatabase, tmp_path: Path, opened: datetime, due: datetime) -> None:
    h = _harness(state_db, tmp_path / "photos", demo_site(), opened)
    order = _order(h)
    assert order.opened_ms == _ms(opened)
    assert order.due_ms == _ms(due)


@pytest.mark.parametrize(
    ("rule", "device", "metric", "unit", "trade"),
    [
        ("water_leak", "kitchen-water", "flow_lpm", "L/min", Trade.WATER),
        ("running_tap", "kitchen-water", "flow_lpm", "L/min", Trade.WATER),
        ("door_open_too_long", "kitchen-door", "open", "", Trade.CARPENTRY),
        ("uv_tube_life", "uv-kitchen", None, "", Trade.ELECTRIC),  # judged by the care register: no series
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


def test_due_within_h_and_the_rules_come_from_the_site_file(state_db: StateDatabase, tmp_path: Path) -> None:
    site = _variant(work_orders={"due_within_h": 4.5, "rules": {"low_battery": "electric"}})
    h = _harness(state_db, tmp_path / "photos", site)
    order = _order(h, rule="low_battery", device="main-gate", metric="battery_pct")
    assert (order.trade, order.evidence["unit"]) == (Trade.ELECTRIC, "%")  # a metric common to all kinds
    assert order.due_ms == order.opened_ms + 4 * 3_600_000 + 30 * 60_000
    # The site's rules replace the defaults.
    assert _open(h, rule="water_leak", device="kitchen-water") is None


# --- updates ----------------------------------------------------------------------------------------


def _done(h: Harness, order_id: int, who: str) -> WorkOrder:
    """Dispatched to `who`, who completes it at once."""
    h.orders.update(order_id, "logistics-li", assignee=who)
    return h.orders.complete(order_id, who, "更换水龙头阀芯", Repair.REPLACE)


def test_an_order_moves_forward_to_done(h: Harness) -> None:
    order = _order(h)

    h.clock.advance(HOUR)
    due = _ms(_local(2026, 10, 16, 12))
    assigned = h.orders.update(order.id, "logistics-li", assignee="plumber-liu", note="先关总阀", due_ms=due)
    assert (assigned.status, assigned.assignee, assigned.note, assigned.due_ms, assigned.updated_ms,
            assigned.done_ms) == (Status.ASSIGNED, "plumber-liu", "先关总阀", due, h.now_ms(), None)

    h.clock.advance(HOUR)
    on_site = h.orders.arrive(order.id, "plumber-liu")
    assert (on_site.status, on_site.assignee, on_site.on_site_ms, on_site.updated_ms) == (
        Status.ON_SITE, "plumber-liu", h.now_ms(), h.now_ms())
    with pytest.raises(WorkOrderError, match="already on_site"):
        h.orders.arrive(order.id, "plumber-liu")

    h.clock.advance(HOUR)
    done = h.orders.complete(order.id, "plumber-liu", "  更换水龙头阀芯  ", Repair.REPLACE)
    done_at = h.now_ms()
    assert (done.status, done.assignee, done.work_done, done.repair, done.photo, done.done_ms) == (
        Status.DONE, "plumber-liu", "更换水龙头阀芯", Repair.REPLACE, None, done_at)
    assert h.orders.get(order.id) == done
    # The unchanged fields stay as opened.
    assert (done.alert_id, done.evidence, done.opened_ms, done.on_site_ms) == (
        order.alert_id, order.evidence, order.opened_ms, on_site.on_site_ms)

    # A later note on a done order keeps when it was done; nothing else changes any more.
    h.clock.advance(HOUR)
    noted = h.orders.update(order.id, "logistics-li", note="已验收")
    assert (noted.status, noted.done_ms, noted.note) == (Status.DONE, done_at, "已验收")
    for change in ({"assignee": "carpenter-zhang"}, {"trade": Trade.OTHER}, {"due_ms": due + 1}):
        with pytest.raises(WorkOrderError, match="done"):
            h.orders.update(order.id, "logistics-li", **change)
    with pytest.raises(WorkOrderError, match="already done"):
        h.orders.complete(order.id, "plumber-liu", "again", Repair.REPAIR)


def test_history_of_an_order_is_in_the_audit_trail(h: Harness) -> None:
    order = _order(h)
    opened_at = h.now_ms()
    h.clock.advance(HOUR)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu", note="带上阀芯")
    with pytest.raises(WorkOrderError):
        h.orders.update(order.id, "logistics-li", status=Status.OPEN)  # refused: not recorded
    h.clock.advance(HOUR)
    h.orders.arrive(order.id, "plumber-liu")
    h.clock.advance(HOUR)
    h.orders.complete(order.id, "plumber-liu", "修好了", Repair.REPAIR)
    h.orders.update(order.id, "logistics-li", note="已验收")

    entries = h.orders.history(order.id)

    assert [(e.action, e.actor, e.at_ms) for e in entries] == [
        ("work_order.open", "rule:water_leak", opened_at),
        ("work_order.dispatch", "logistics-li", opened_at + 3_600_000),
        ("work_order.on_site", "plumber-liu", opened_at + 7_200_000),
        ("work_order.done", "plumber-liu", opened_at + 10_800_000),
        ("work_order.update", "logistics-li", opened_at + 10_800_000),
    ]
    assert dict(entries[0].detail) == {"alert": order.alert_id, "trade": "water"}
    assert dict(entries[1].detail) == {"status": "assigned", "assignee": "plumber-liu", "trade": "water",
                                       "due_ms": order.due_ms, "note": "带上阀芯"}
    assert dict(entries[3].detail) == {"work_done": "修好了", "repair": "repair", "photo": ""}


def test_an_order_can_skip_ahead_but_not_go_back(h: Harness) -> None:
    order = _order(h)
    done = _done(h, order.id, "plumber-liu")  # assigned, then done without 到场
    assert (done.status, done.on_site_ms, done.done_ms) == (Status.DONE, None, h.now_ms())

    for back in (Status.ON_SITE, Status.ASSIGNED, Status.OPEN):
        with pytest.raises(WorkOrderError, match="back") as caught:
            h.orders.update(order.id, "logistics-li", status=back)
        assert not isinstance(caught.value, WorkOrderNotFound)
    assert h.orders.get(order.id) == done

    other = _order(h)
    h.orders.update(other.id, "logistics-li", assignee="plumber-liu")
    h.orders.arrive(other.id, "plumber-liu")
    with pytest.raises(WorkOrderError, match="back") as refused:
        h.orders.update(other.id, "logistics-li", status=Status.ASSIGNED)
    assert refused.value.zh == "工单只能往前推进，不能退回。"


def test_done_is_reached_only_by_saying_what_was_done(h: Harness) -> None:
    order = _order(h)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    with pytest.raises(WorkOrderInvalid, match="Done") as caught:
        h.orders.update(order.id, "plumber-liu", status=Status.DONE)
    assert caught.value.zh == "完成工单请点「完成」，写明做了什么。"
    for blank in ("", "  \n "):
        with pytest.raises(WorkOrderInvalid, match="Say what was done") as said:
            h.orders.complete(order.id, "plumber-liu", blank, Repair.REPAIR)
        assert said.value.zh == "请写明做了什么。"
    assert h.orders.get(order.id).status is Status.ASSIGNED
    assert [e.action for e in h.orders.history(order.id)] == ["work_order.open", "work_order.dispatch"]


@pytest.mark.parametrize("status", [Status.ASSIGNED, Status.ON_SITE, Status.DONE])
def test_leaving_open_needs_an_assignee(h: Harness, status: Status) -> None:
    order = _order(h)
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.update(order.id, "logistics-li", status=status)
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.update(order.id, "logistics-li", status=status, assignee="")
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.complete(order.id, "logistics-li", "修好了", Repair.REPAIR)
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.arrive(order.id, "logistics-li")
    assert h.orders.get(order.id) == order
    assert len(h.audit.about(f"work_order:{order.id}")) == 1  # only the opening


def test_an_assigned_order_cannot_lose_its_assignee(h: Harness) -> None:
    order = _order(h)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    with pytest.raises(WorkOrderError, match="assignee"):
        h.orders.update(order.id, "logistics-li", assignee="")
    reassigned = h.orders.update(order.id, "logistics-li", assignee="plumber-sun", trade=Trade.ELECTRIC)
    assert (reassigned.status, reassigned.assignee, reassigned.trade) == (
        Status.ASSIGNED, "plumber-sun", Trade.ELECTRIC)


def test_the_due_time_is_after_the_order_was_opened(h: Harness) -> None:
    order = _order(h)
    with pytest.raises(WorkOrderInvalid, match="due time") as caught:
        h.orders.update(order.id, "logistics-li", assignee="plumber-liu", due_ms=order.opened_ms)
    assert caught.value.zh == "期限要晚于开单时间。"
    assert h.orders.get(order.id) == order


# --- photos -----------------------------------------------------------------------------------------


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG (a green rectangle), made with the standard library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x1a\x7f\x5a" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PHOTOS = {
    "image/png": tiny_png(),
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32) + b"\xff\xd9",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24),
}


@pytest.mark.parametrize("media", sorted(PHOTOS))
def test_a_photo_is_kept_under_a_name_of_its_own_by_its_bytes(h: Harness, media: str) -> None:
    order = _order(h)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    done = h.orders.complete(order.id, "plumber-liu", "更换水龙头", Repair.REPLACE, PHOTOS[media])
    assert done.photo is not None
    assert re.fullmatch(rf"{order.id}-[0-9a-f]{{16}}\.(jpg|png|webp)", done.photo)
    found = h.orders.photo(order.id)
    assert found is not None
    path, served_as = found
    assert (served_as, path.parent, path.read_bytes()) == (media, h.orders.photos, PHOTOS[media])
    assert [p.name for p in h.orders.photos.iterdir()] == [done.photo]  # nothing half-written left
    assert h.orders.history(order.id)[-1].detail["photo"] == done.photo


@pytest.mark.parametrize("data", [
    b"GIF89a" + bytes(20),  # a GIF
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    b"%PDF-1.7\n",
    b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF, but sound
    b"",
])
def test_a_file_that_is_no_photo_is_refused(h: Harness, data: bytes) -> None:
    order = _order(h)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    with pytest.raises(WorkOrderInvalid) as caught:
        h.orders.complete(order.id, "plumber-liu", "更换水龙头", Repair.REPLACE, data)
    assert (caught.value.zh, caught.value.en) == ("照片只能是 JPEG、PNG 或 WebP 格式的图片。",
                                                  "The photo must be a JPEG, PNG or WebP image.")
    assert h.orders.get(order.id).status is Status.ASSIGNED
    assert not h.orders.photos.exists() or list(h.orders.photos.iterdir()) == []


def test_a_photo_over_the_limit_is_refused(state_db: StateDatabase, tmp_path: Path) -> None:
    h = _harness(state_db, tmp_path / "photos", _variant(work_orders={"photo_max_bytes": 65_536}))
    order = _order(h)
    h.orders.update(order.id, "logistics-li", assignee="plumber-liu")
    at_limit = PHOTOS["image/jpeg"] + bytes(65_536 - len(PHOTOS["image/jpeg"]))
    with pytest.raises(PhotoTooLarge) as caught:
        h.orders.complete(order.id, "plumber-liu", "更换", Repair.REPLACE, at_limit + b"\x00")
    assert caught.value.zh == "照片太大（0.1 MB），不能超过 0.1 MB。"
    assert h.orders.complete(order.id, "plumber-liu", "更换", Repair.REPLACE, at_limit).photo


# --- by hand ----------------------------------------------------------------------------------------


def test_an_alert_without_an_order_is_dispatched_by_hand(h: Harness) -> None:
    alert = h.alerts.apply(_finding(h, "door_after_hours", "kitchen-door", metric="open"), _evidence(h, "open"))
    assert alert is not None
    assert h.opened == [None]
    assert h.orders.for_alerts([alert.id]) == {}
    due = h.now_ms() + 3 * 3_600_000

    order = h.orders.open_for(alert, Trade.CARPENTRY, "logistics-li", assignee="carpenter-zhang", note="门吸坏了",
                              due_ms=due)

    assert (order.alert_id, order.trade, order.status, order.assignee, order.note, order.due_ms, order.evidence) == (
        alert.id, Trade.CARPENTRY, Status.ASSIGNED, "carpenter-zhang", "门吸坏了", due,
        {"metric": None, "unit": "", "points": []})
    assert [(e.action, e.actor) for e in h.orders.history(order.id)] == [
        ("work_order.open", "logistics-li"), ("work_order.dispatch", "logistics-li")]
    assert h.orders.for_alerts([alert.id, alert.id + 100]) == {alert.id: order.id}
    with pytest.raises(WorkOrderError, match="already has a work order") as caught:
        h.orders.open_for(alert, Trade.OTHER, "logistics-li", assignee="plumber-liu")
    assert caught.value.zh == f"这条告警已有工单（第 {order.id} 号）。"
    other = h.alerts.apply(_finding(h, "fridge_temperature", "sample-fridge"), Evidence())
    assert other is not None
    with pytest.raises(WorkOrderInvalid, match="due time"):
        h.orders.open_for(other, Trade.ELECTRIC, "logistics-li", assignee="plumber-liu", due_ms=h.now_ms())
    assert len(h.orders.find()) == 1


def test_an_older_database_gets_the_new_columns(state_db: StateDatabase, tmp_path: Path) -> None:
    """The first release's table, without what was done, the photo and the site."""
    old = Table("work_orders", MetaData(), Column("id", ID, primary_key=True), Column("alert_id", BigInteger,
                nullable=False),
                *(Column(name, Text, nullable=False) for name in (
                    "rule", "trade", "device_id", "building_id", "room_id", "title_zh", "title_en", "evidence")),
                Column("opened_ms", BigInteger, nullable=False), Column("due_ms", BigInteger, nullable=False),
                Column("status", Text, nullable=False), Column("assignee", Text),
                Column("note", Text, nullable=False, server_default=""),
                Column("updated_ms", BigInteger, nullable=False), Column("done_ms", BigInteger))
    old.create(state_db.engine)
    with state_db.write() as conn:
        order_id = conn.execute(old.insert().returning(old.c.id).values(
            alert_id=7, rule="water_leak", trade="water", device_id="kitchen-water", building_id="service",
            room_id="kitchen", title_zh="漏水", title_en="Leak", evidence="{}", opened_ms=1000, due_ms=2000,
            status="assigned", assignee="plumber-liu", note="", updated_ms=1000)).scalar_one()
    h = _harness(state_db, tmp_path / "photos", demo_site())
    old_order = h.orders.get(order_id)
    assert (old_order.status, old_order.assignee, old_order.work_done, old_order.repair, old_order.photo,
            old_order.on_site_ms) == (Status.ASSIGNED, "plumber-liu", "", None, None, None)
    assert h.orders.complete(order_id, "plumber-liu", "修好了", Repair.SALVAGE).repair is Repair.SALVAGE
    assert h.orders.find(status=Status.DONE) == [h.orders.get(order_id)]  # the school's now


def test_an_unknown_order_is_not_found(h: Harness) -> None:
    with pytest.raises(WorkOrderNotFound):
        h.orders.get(4711)
    with pytest.raises(WorkOrderNotFound):
        h.orders.update(4711, "logistics-li", assignee="plumber-liu")
    assert h.audit.newest(10) == []


def test_each_school_sees_only_its_own_orders(h: Harness, state_db: StateDatabase, tmp_path: Path) -> None:
    """Schools of a district share one database: neither reaches the other's order, not even
    by its id or its alert's."""
    other = _harness(state_db, tmp_path / "lotus-photos", another_school())
    mine, theirs = _order(h), _order(other)
    assert mine.id != theirs.id
    assert (_ids(h.orders.find()), _ids(other.orders.find())) == ([mine.id], [theirs.id])
    assert h.orders.for_alerts([mine.alert_id, theirs.alert_id]) == {mine.alert_id: mine.id}
    for school, foreign in ((h, theirs), (other, mine)):
        with pytest.raises(WorkOrderNotFound):
            school.orders.get(foreign.id)
        with pytest.raises(WorkOrderNotFound):
            school.orders.update(foreign.id, "logistics-li", assignee="plumber-liu")
        with pytest.raises(WorkOrderNotFound):
            school.orders.arrive(foreign.id, "plumber-liu")
        with pytest.raises(WorkOrderNotFound):
            school.orders.complete(foreign.id, "plumber-liu", "修好了", Repair.REPAIR)
        with pytest.raises(WorkOrderNotFound):
            school.orders.photo(foreign.id)
        assert school.orders.history(foreign.id) == []
    assert (h.orders.get(mine.id), other.orders.get(theirs.id)) == (mine, theirs)


# --- overdue ----------------------------------------------------------------------------------------


def test_overdue_is_not_done_by_the_due_time_or_done_late(h: Harness) -> None:
    order = _order(h)
    assert not order.overdue(order.due_ms)  # due at midnight: still in time at midnight
    assert order.overdue(order.due_ms + 1)

    h.clock.set(_local(2026, 10, 16, 9))
    assert h.orders.find(overdue=True) == [order]
    late = _done(h, order.id, "plumber-liu")
    assert late.overdue(h.now_ms())
    assert late.overdue(late.due_ms - 1)  # it stays late, whenever asked
    assert h.orders.find(overdue=True) == [late]

    in_time = _order(h)  # opened 09:00 on the 16th, due at midnight
    h.clock.advance(HOUR)
    in_time = _done(h, in_time.id, "plumber-liu")
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
    tuesday = _done(h, tuesday.id, "plumber-liu")
    wednesday = opened_at(_local(2026, 10, 14, 9), "uv_tube_life", "uv-kitchen")
    h.clock.set(_local(2026, 10, 14, 15))
    wednesday = _done(h, wednesday.id, "electrician-wu")
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


# --- the API ----------------------------------------------------------------------------------------
# The gateway of the demo kindergarten (closed all day) under uvicorn on a free port, on a
# ManualClock: a real socket, so the body limit in front of the routes is the real one.

PHOTO_LIMIT = 65_536


@dataclass
class Served:
    app: FastAPI
    clock: ManualClock
    http: httpx.Client

    def as_(self, login: str) -> dict[str, str]:
        answer = self.http.post("/api/v1/auth/login", json={"username": login, "password": DEMO_PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def ingest(self, readings: list[dict[str, Any]]) -> None:
        key = self.app.state.auth.create_api_key("sensors", [Scope.INGEST], "test", 0)
        answer = self.http.post("/api/v1/readings", json=readings, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["rejected"] == []


@pytest.fixture
def served(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Served]:
    path, _ = write_site(tmp_path, mosquitto, f"wo-{tmp_path.name}"[:60])
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["work_orders"] = {"photo_max_bytes": PHOTO_LIMIT}
    site = parse(yaml.safe_dump(data, allow_unicode=True), str(path))
    clock = ManualClock(THURSDAY_NIGHT)
    app = create_app(site, clock)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        demo_accounts(app.state.auth, site, _ms(THURSDAY_NIGHT))
        yield Served(app, clock, http)


def _leak_order(s: Served) -> dict[str, Any]:
    """A kitchen tap running for an hour and five minutes at night: the leak's work order."""
    start = THURSDAY_NIGHT - timedelta(minutes=65)
    s.ingest([{"device_id": "kitchen-water", "ts": (start + timedelta(minutes=m)).isoformat(),
               "volume_m3": 1000 + 0.002 * m, "flow_lpm": 2.0} for m in range(66)])
    viewer = s.as_("teacher-sun")
    orders: list[dict[str, Any]] = wait_until("the leak's work order",
                                              lambda: s.http.get("/api/v1/work-orders", headers=viewer).json())
    return orders[0]


def _done_form(work_done: str = "更换水龙头阀芯", repair: str = "replace") -> dict[str, str]:
    return {"work_done": work_done, "repair": repair}


@pytest.mark.integration
def test_an_order_is_dispatched_worked_and_done_through_the_api(served: Served) -> None:
    s = served
    order = _leak_order(s)
    head, plumber, viewer = s.as_("logistics-li"), s.as_("plumber-liu"), s.as_("teacher-sun")
    url = f"/api/v1/work-orders/{order['id']}"
    assert (order["status"], order["trade"], order["assignee_actor"], order["photo_url"]) == (
        "open", "water", None, None)
    assert order["evidence"]["unit"] == "L/min"
    assert len(order["evidence"]["points"]) >= 60
    alerts = s.http.get("/api/v1/alerts", headers=viewer).json()
    assert [a["work_order_id"] for a in alerts if a["rule"] == "water_leak"] == [order["id"]]

    # A viewer may read but do nothing.
    alert_url = f"/api/v1/alerts/{order['alert_id']}/work-order"
    for refused in [
        s.http.post(f"{url}/dispatch", json={"assignee": "plumber-liu"}, headers=viewer),
        s.http.post(f"{url}/on-site", headers=viewer),
        s.http.post(f"{url}/done", data=_done_form(), headers=viewer),
        s.http.patch(url, json={"note": "看看"}, headers=viewer),
        s.http.post(alert_url, json={"assignee": "plumber-liu", "trade": "water"}, headers=viewer),
    ]:
        assert refused.status_code == 403, refused.request.url

    # The assignee is an enabled account.
    s.app.state.auth.disable_user("carpenter-zhang", "test", _ms(THURSDAY_NIGHT))
    for who, zh in (("刘师傅", "没有这个账号，请从名单里选一位负责人。"), ("carpenter-zhang", "这个账号已停用，请另选一位负责人。")):
        refused = s.http.post(f"{url}/dispatch", json={"assignee": who}, headers=head)
        assert (refused.status_code, refused.json()["detail"]["zh"]) == (422, zh)
        assert s.http.patch(url, json={"assignee": who}, headers=head).status_code == 422
    # Not yet dispatched: neither on site nor done.
    early = s.http.post(f"{url}/on-site", headers=plumber)
    assert (early.status_code, early.json()["detail"]["zh"]) == (409, "请先把工单派给一位负责人。")

    s.clock.advance(timedelta(minutes=10))
    due = "2026-10-16T10:00:00+08:00"
    dispatched = s.http.post(f"{url}/dispatch", headers=head, json={
        "assignee": "plumber-liu", "trade": "water", "note": "先关厨房总阀", "due": due})
    assert dispatched.status_code == 200, dispatched.text
    out = dispatched.json()
    assert (out["status"], out["assignee"], out["assignee_actor"]["name_zh"], out["note"], out["due"]) == (
        "assigned", "plumber-liu", "刘师傅", "先关厨房总阀", "2026-10-16T02:00:00Z")
    too_early = s.http.post(f"{url}/dispatch", headers=head, json={"assignee": "plumber-liu",
                                                                    "due": "2026-10-01T10:00:00+08:00"})
    assert (too_early.status_code, too_early.json()["detail"]["zh"]) == (422, "期限要晚于开单时间。")

    s.clock.advance(timedelta(minutes=30))
    assert s.http.post(f"{url}/on-site", headers=plumber).json()["status"] == "on_site"
    again = s.http.post(f"{url}/on-site", headers=plumber)
    assert (again.status_code, again.json()["detail"]["zh"]) == (409, "这张工单已经标记过到场了。")

    # Completing says what was done, how, and the photo is one.
    for form, files, code, zh in [
        (_done_form(" "), None, 422, "请写明做了什么。"),
        (_done_form(), {"photo": ("leak.png", b"GIF89a" + bytes(40), "image/png")}, 422,
         "照片只能是 JPEG、PNG 或 WebP 格式的图片。"),
        (_done_form(), {"photo": ("big.png", PHOTOS["image/png"] + bytes(PHOTO_LIMIT), "image/png")}, 413,
         "照片太大（0.1 MB），不能超过 0.1 MB。"),
    ]:
        refused = s.http.post(f"{url}/done", data=form, files=files, headers=plumber)
        assert (refused.status_code, refused.json()["detail"]["zh"]) == (code, zh)
    assert s.http.post(f"{url}/done", data={"work_done": "换了"}, headers=plumber).status_code == 422  # how?
    # Past the larger of the body limit and the photo's, the guard refuses before reading it.
    huge = s.http.post(f"{url}/done", data=_done_form(), headers=plumber,
                       files={"photo": ("huge.jpg", bytes(1_100_000), "image/jpeg")})
    assert huge.status_code == 413
    assert "work_orders.photo_max_bytes" in huge.json()["detail"]
    assert s.http.get(url, headers=viewer).json()["status"] == "on_site"

    s.clock.advance(timedelta(minutes=20))
    done = s.http.post(f"{url}/done", data=_done_form(), headers=plumber,
                       files={"photo": ("../../etc/passwd.jpg", PHOTOS["image/png"], "image/jpeg")})
    assert done.status_code == 200, done.text
    out = done.json()
    assert (out["status"], out["work_done"], out["repair"], out["photo_url"]) == (
        "done", "更换水龙头阀芯", "replace", f"{url}/photo")
    photo = s.http.get(out["photo_url"], headers=viewer)
    assert (photo.status_code, photo.headers["content-type"], photo.content) == (200, "image/png", PHOTOS["image/png"])
    assert s.http.post(f"{url}/done", data=_done_form(), headers=plumber).status_code == 409

    detail = s.http.get(url, headers=viewer).json()
    assert detail["photo_max_bytes"] == PHOTO_LIMIT
    assert [(e["action"], e["who"]["name_zh"]) for e in detail["history"]] == [
        ("work_order.open", "系统（跑水漏水）"),
        ("work_order.dispatch", "李主任"),
        ("work_order.on_site", "刘师傅"),
        ("work_order.done", "刘师傅"),
    ]
    dispatch_step, done_step = detail["history"][1], detail["history"][3]
    assert (dispatch_step["assignee"]["name_zh"], dispatch_step["note"], dispatch_step["due"],
            dispatch_step["trade"]) == ("刘师傅", "先关厨房总阀", "2026-10-16T02:00:00Z", "water")
    assert (done_step["work_done"], done_step["repair"]) == ("更换水龙头阀芯", "replace")

    audit = s.http.get("/api/v1/audit", params={"limit": 50}, headers=head).json()
    steps = [(e["action"], e["actor"]) for e in reversed(audit) if e["target"] == f"work_order:{order['id']}"]
    assert steps == [("work_order.open", "rule:water_leak"), ("work_order.dispatch", "logistics-li"),
                     ("work_order.on_site", "plumber-liu"), ("work_order.done", "plumber-liu")]


@pytest.mark.integration
def test_an_alert_without_an_order_is_dispatched_by_hand_through_the_api(served: Served) -> None:
    s = served
    s.ingest([{"device_id": "kitchen-door", "ts": THURSDAY_NIGHT.isoformat(), "open": True}])
    head = s.as_("logistics-li")

    def door_alert() -> dict[str, Any] | None:
        alerts: list[dict[str, Any]] = s.http.get("/api/v1/alerts", headers=head).json()
        return next((a for a in alerts if a["rule"] == "door_after_hours"), None)

    alert = wait_until("the door's alert", door_alert)
    assert alert is not None
    assert alert["work_order_id"] is None
    body = {"assignee": "carpenter-zhang", "trade": "carpentry", "note": "门关不上"}

    opened = s.http.post(f"/api/v1/alerts/{alert['id']}/work-order", json=body, headers=head)

    assert opened.status_code == 201, opened.text
    order = opened.json()
    assert (order["alert_id"], order["trade"], order["status"], order["assignee_actor"]["name_zh"]) == (
        alert["id"], "carpentry", "assigned", "张师傅")
    assert s.http.get(f"/api/v1/alerts/{alert['id']}", headers=head).json()["work_order_id"] == order["id"]
    twice = s.http.post(f"/api/v1/alerts/{alert['id']}/work-order", json=body, headers=head)
    assert (twice.status_code, twice.json()["detail"]["zh"]) == (409, f"这条告警已有工单（第 {order['id']} 号）。")
    missing = s.http.post("/api/v1/alerts/4711/work-order", json=body, headers=head)
    assert (missing.status_code, missing.json()["detail"]["zh"]) == (404, "没有这条告警。")
    assert s.http.get(f"/api/v1/work-orders/{order['id']}/photo", headers=head).status_code == 404
