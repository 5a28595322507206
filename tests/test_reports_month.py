"""The monthly energy report proved on a simulated month: the demo kindergarten's October 2026
with known faults, fed through the real ingest path in-process (SQLite, rules, alerts, on a
manual clock). Every number of `GET /api/v1/reports/energy` is checked against a reckoning
written independently from the raw readings the simulation sent (tests/month_sim.py, from the
report's definitions, not its code), and every fault must show in the right daily safety
record (`GET /api/v1/reports/safety`) and nowhere else.

The month starts a day early (30 September), so October's first readings have a predecessor;
September therefore has one day of data, which the report must not compare with.
"""

from __future__ import annotations

import json
import time as wall
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.cli.demo import demo_site
from gateway.clock import ManualClock
from gateway.config import SiteConfig
from gateway.ingest.broker import embedded_broker
from gateway.reports.document import Figures, Paragraphs
from gateway.reports.energy import EnergyReport, Totals
from gateway.reports.energy_doc import energy_document
from gateway.reports.safety_model import ItemStatus, SafetyRecord
from gateway.rules.power import LOAD_AFTER_HOURS
from gateway.runtime import Gateway
from gateway.schedule.school_calendar import SchoolCalendar
from simulators.faults import (
    CounterReset,
    DoorHeldOpen,
    ExtraLoad,
    Fault,
    FridgeTemperature,
    LampSkipped,
    Leak,
    Silence,
    inject,
)
from simulators.model import SimMessage, SiteSimulation
from simulators.publish import timeline
from tests.month_sim import (
    FIVE_MIN_MS,
    HOUR_MS,
    METRIC,
    MeterMonth,
    Reading,
    Slot,
    counted_between,
    meter_month,
    month_slots,
    rise,
    summed,
    waste_nights,
    waste_yuan,
)
from tests.services import accounting, free_port

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
SEED = 7
MONTH = "2026-10"
OCTOBER = [date(2026, 10, d) for d in range(1, 32)]
START = datetime(2026, 9, 30, tzinfo=TZ)  # a day early: the first readings of October have a predecessor
END = datetime(2026, 11, 1, tzinfo=TZ)
NOW = datetime(2026, 11, 1, 8, 0, tzinfo=TZ)  # the report is made the morning after: nothing is in the future
OCTOBER_START = datetime(2026, 10, 1, tzinfo=TZ)
STORED_WITHIN_S = 180.0
# The report rounds (kWh and m³ to 3 decimals, yuan to 2, shares to 4); beyond that it must
# agree to this share.
REL = 1e-3

# The teaching building's night load is about 2.05 kW (four classrooms, the nap room and the
# plant room); configuring it makes its waste deterministic. The other meters learn theirs.
TEACHING_BASE_W = 2050.0
EXTRA_W = 3000.0
D = {n: date(2026, 10, n) for n in range(1, 32)}


def at(day: date, hh_mm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), TZ)


# Lights left on in the teaching building for three nights, 19:00 to 06:00; the first runs into
# Saturday 10 October, a make-up working day (调休) after the National Day week.
NIGHTS = (D[9], D[13], D[27])
EXTRA_LOADS = [ExtraLoad("teaching-power", at(n, "19:00"), at(n + timedelta(days=1), "06:00"), watts=EXTRA_W)
               for n in NIGHTS]
LEAKS = [
    Leak("kitchen-water", at(D[16], "01:00"), at(D[16], "04:30"), lpm=1.5),  # a sub-meter, in the night
    Leak("teaching-water", at(D[22], "19:30"), at(D[22], "23:00"), lpm=2.0),  # a main meter, in the evening
]
# The service building's main water meter is silent from 15:00 to 20:00: the kitchen's snack and
# cleaning water arrive with its first reading after the gap, after hours (the building closes at
# 18:00), and the two closed hours of the gap leave its night-water check to a person.
SILENCE = Silence("service-water", at(D[23], "15:00"), at(D[23], "20:00"))
DOOR = DoorHeldOpen("kitchen-door", at(D[19], "18:20"), at(D[19], "19:05"))  # after the 18:00 closing
FAULTS: list[Fault] = [
    *EXTRA_LOADS,
    *LEAKS,
    FridgeTemperature("sample-fridge", at(D[15], "13:00"), at(D[15], "13:40"), celsius=9.5),
    DOOR,
    LampSkipped("uv-nap", D[21]),
    SILENCE,
    CounterReset("kitchen-power", at(D[26], "12:00")),  # a meter replaced at noon: counts from 0 again
]
# (day, item) of the daily safety record that each fault must fail. A load left on overnight
# fails the evening's record and the next morning's: an episode is judged whole on both days.
EXPECTED_FAILS = {
    *((n + timedelta(days=k), "power:teaching-power") for n in NIGHTS for k in (0, 1)),
    (D[16], "water:kitchen-water"),
    (D[22], "water:teaching-water"),
    (D[15], "fridge:sample-fridge"),
    (D[19], "door:kitchen-door"),
    (D[21], "uv:uv-nap"),
}
EXPECTED_MANUAL = {(D[23], "water:service-water")}


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def month_site(tmp_path: Path) -> SiteConfig:
    """The demo site, with the teaching building's base load configured. Every device without
    its source: the month goes straight into the ingestor as native payloads, and a gateway
    polling meters that nobody serves would only log that it cannot reach them."""
    site = demo_site(tmp_path / "data", free_port())
    base_load = {"load_after_hours": {"base_load_w": TEACHING_BASE_W}}
    devices = [d.model_copy(update={"source": None, "rules": d.rules | (base_load if d.id == "teaching-power" else {})})
               for d in site.devices]
    # Validated again, as a site file would be: rule parameters are resolved at validation.
    site = SiteConfig(**(dict(site) | {"devices": devices}))
    teaching = site.device("teaching-power")
    assert teaching is not None
    assert LOAD_AFTER_HOURS.params_for(teaching).base_load_w == TEACHING_BASE_W
    return site


def check_fault_days(site: SiteConfig, cal: SchoolCalendar) -> None:
    """The faults fall where the test means them to: night loads and leaks while closed, the
    fridge and the lamp on school days, the silence across closing."""
    # National Day week (国庆节) and its make-up working day (调休), as chinesecalendar has them.
    assert [cal.day(d).kind for d in (D[1], D[7], D[8], D[10], D[11])] == [
        "holiday", "holiday", "school_day", "makeup_day", "weekend"]
    rooms = {d.id: d.room for d in site.devices}
    for fault in (*EXTRA_LOADS, *LEAKS, DOOR):
        building = site.building_of(rooms[fault.device_id]).id
        assert not any(cal.is_open(building, t) for t in range(ms(fault.start), ms(fault.end), 60_000)), fault
    assert all(cal.day(d).school_day for d in (*NIGHTS, D[10], D[15], D[19], D[21], D[23], D[26]))
    assert cal.is_open("service", ms(SILENCE.start))
    assert not cal.is_open("service", ms(SILENCE.end) - 1)


# ----------------------------------------------------------------------------------- the run


@dataclass
class SimulatedMonth:
    """What the running gateway produced, and the raw readings it was fed."""

    site: SiteConfig
    readings: dict[str, list[Reading]]  # meter → (ms, counter) as sent, in time order
    sent: int
    report: EnergyReport
    records: dict[date, SafetyRecord]


def feed(gateway: Gateway, stream: Iterator[SimMessage], received_ms: int) -> tuple[int, dict[str, list[Reading]]]:
    """Every message into the ingest path, as `gateway.cli.demo._backfill` does; keeps each meter's
    readings for the reckoning."""
    metric = {d.id: METRIC[d.kind] for d in gateway.site.devices if d.kind in METRIC}
    readings: dict[str, list[Reading]] = {device: [] for device in metric}
    accept = gateway.ingestor.accept
    sent = 0
    for msg in stream:
        payload = msg.payload
        if msg.channel == "telemetry" and msg.device_id in metric:
            stamp = datetime.fromisoformat(str(payload["ts"]))
            value = payload[metric[msg.device_id]]
            assert isinstance(value, float | int)
            readings[msg.device_id].append((ms(stamp), float(value)))
        rejected = accept("replay", msg.device_id, msg.channel, json.dumps(payload, ensure_ascii=False).encode(),
                          received_ms)
        assert rejected is None, rejected
        sent += 1
    return sent, readings


def run_month(tmp_path: Path) -> SimulatedMonth:
    site = month_site(tmp_path)
    check_fault_days(site, SchoolCalendar(site))
    app = create_app(site, ManualClock(NOW), before=[lambda: embedded_broker("127.0.0.1", site.mqtt.port)])
    with TestClient(app) as client:
        stream = inject(timeline(SiteSimulation(site, seed=SEED), START, END), FAULTS, site)
        sent, readings = feed(client.app.state.gateway, stream, ms(NOW))  # type: ignore[attr-defined]
        deadline = wall.monotonic() + STORED_WITHIN_S
        while True:
            counts = accounting(client)
            if counts.pending("sqlite") == 0 and counts.stored("sqlite") >= sent:
                break
            assert wall.monotonic() < deadline, f"only {counts.stored('sqlite')} of {sent} stored in time"
            wall.sleep(0.2)
        counts.check()
        assert counts.stored("sqlite") == sent
        assert client.get("/api/v1/rejected").json() == []
        answer = client.get("/api/v1/reports/energy", params={"month": MONTH})
        assert answer.status_code == 200, answer.text
        report = EnergyReport.model_validate(answer.json())
        records = {}
        for d in OCTOBER:
            got = client.get("/api/v1/reports/safety", params={"date": d.isoformat()})
            assert got.status_code == 200, got.text
            records[d] = SafetyRecord.model_validate(got.json())
    return SimulatedMonth(site, readings, sent, report, records)


# ----------------------------------------------------------------------------- reckoning


class Mismatches(list[str]):
    """Every number that disagrees, so one run shows them all."""

    def near(self, what: str, got: float | None, want: float | None, digits: int = 3) -> None:
        """`got` (from the report, rounded to `digits`) agrees with `want` to REL, or to its rounding."""
        if got is None or want is None:
            if got is not want:
                self.append(f"{what}: report {got}, reckoned {want}")
            return
        if abs(got - want) > max(REL * abs(want), 0.5 * 10 ** -digits + 1e-9):
            self.append(f"{what}: report {got}, reckoned {want:.6f} ({(got - want) / (abs(want) or 1):+.2%})")

    def same(self, what: str, got: object, want: object) -> None:
        if got != want:
            self.append(f"{what}: report {got!r}, reckoned {want!r}")


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def month_bounds(cal: SchoolCalendar, first: date, following: date) -> tuple[int, int]:
    return cal.day_bounds_ms(first)[0], cal.day_bounds_ms(following)[0]


def reckon(m: SimulatedMonth) -> tuple[Mismatches, dict[str, MeterMonth], list[Slot]]:
    """Compares every number of the report with the reckoning from the raw readings."""
    site, report = m.site, m.report
    cal = SchoolCalendar(site)
    start, end = month_bounds(cal, D[1], date(2026, 11, 1))
    hours = (end - start) // HOUR_MS
    slots = month_slots(site, cal, start, end)
    main = {d.id for b in site.buildings for kind in METRIC for d in site.main_meters(kind, b)}
    meters = {d.id: meter_month(site, d, m.readings[d.id], slots, start, end, d.id in main)
              for d in site.devices if d.kind in METRIC}
    bad = Mismatches()
    bad.same("month bounds", (report.start_ms, report.end_ms), (start, end))
    bad.same("school days", report.school_days, sum(cal.day(d).school_day for d in OCTOBER))
    bad.same("meters", sorted(u.device_id for u in report.meters), sorted(meters))

    for use in report.meters:
        mm = meters[use.device_id]
        where = f"meter {use.device_id}"
        bad.same(f"{where} main", use.main, mm.main)
        bad.same(f"{where} building", use.building_id, mm.building)
        bad.near(f"{where} total", use.total, mm.total)
        bad.near(f"{where} after_hours", use.after_hours, mm.after_hours)
        bad.near(f"{where} after_hours_share", use.after_hours_share, share(mm.after_hours, mm.total), 4)
        bad.near(f"{where} cost_yuan", use.cost_yuan, mm.cost, 2)
        bad.near(f"{where} coverage", use.coverage, len(mm.hours_seen) / hours, 4)
        if mm.utility == "electricity":
            configured = LOAD_AFTER_HOURS.params_for(mm.device).base_load_w is not None
            bad.same(f"{where} base_configured", use.base_configured, configured)
            bad.near(f"{where} base_kw", use.base_kw, mm.base_kw)
            bad.near(f"{where} waste_kwh", use.waste_kwh, sum(w for _, w in mm.waste))
            bad.near(f"{where} waste_yuan", use.waste_yuan, waste_yuan(mm, slots), 2)
            bad.same(f"{where} waste_hours", use.waste_hours, len(mm.waste))
            bad.same(f"{where} waste_nights", use.waste_nights, waste_nights(mm, slots))

    for utility, totals in (("electricity", report.electricity), ("water", report.water)):
        mains = [mm for mm in meters.values() if mm.main and mm.utility == utility]
        _totals(bad, m, cal, utility, totals, mains, slots)

    area = {b.id: b.floor_area_m2 for b in site.buildings}
    ranked = []
    for b in report.buildings:
        mine = [mm for mm in meters.values() if mm.main and mm.building == b.building_id]
        power = [mm for mm in mine if mm.utility == "electricity"]
        kwh = sum(mm.total for mm in power)
        where = f"building {b.building_id}"
        bad.near(f"{where} electricity_kwh", b.electricity_kwh, kwh)
        bad.near(f"{where} water_m3", b.water_m3, sum(mm.total for mm in mine if mm.utility == "water"))
        bad.near(f"{where} cost_yuan", b.cost_yuan, sum(mm.cost for mm in mine), 2)
        bad.near(f"{where} after_hours_share", b.after_hours_share, share(sum(mm.after_hours for mm in power), kwh), 4)
        bad.near(f"{where} waste_kwh", b.waste_kwh, sum(w for mm in power for _, w in mm.waste))
        bad.near(f"{where} waste_yuan", b.waste_yuan, sum(waste_yuan(mm, slots) for mm in power), 2)
        bad.same(f"{where} floor_area_m2", b.floor_area_m2, area[b.building_id])
        bad.same(f"{where} headcount", b.headcount, next(x.headcount for x in site.buildings if x.id == b.building_id))
        floor = area[b.building_id]
        assert floor is not None
        bad.near(f"{where} kwh_per_m2", b.kwh_per_m2, kwh / floor, 4)
        previous = _september(m, cal, [mm.device.id for mm in power])
        bad.near(f"{where} previous_kwh total", b.previous_kwh.total, previous[0])
        bad.near(f"{where} previous_kwh coverage", b.previous_kwh.coverage, previous[1], 4)
        ranked.append((kwh / floor, b.building_id))
    bad.same("buildings ranked by kWh/m²", [b.building_id for b in report.buildings],
             [b for _, b in sorted(ranked, reverse=True)])

    power_mains = [mm for mm in meters.values() if mm.main and mm.utility == "electricity"]
    bad.near("site waste_kwh", report.waste_kwh, sum(w for mm in power_mains for _, w in mm.waste))
    bad.near("site waste_yuan", report.waste_yuan, sum(waste_yuan(mm, slots) for mm in power_mains), 2)
    _leaks(bad, m)
    return bad, meters, slots


def _totals(bad: Mismatches, m: SimulatedMonth, cal: SchoolCalendar, utility: str, t: Totals,
            mains: Sequence[MeterMonth], slots: Sequence[Slot]) -> None:
    site = m.site
    total = sum(mm.total for mm in mains)
    after = sum(mm.after_hours for mm in mains)
    bad.near(f"{utility} total", t.total, total)
    bad.near(f"{utility} after_hours", t.after_hours, after)
    bad.near(f"{utility} after_hours_share", t.after_hours_share, share(after, total), 4)
    bad.near(f"{utility} cost_yuan", t.cost_yuan, sum(mm.cost for mm in mains), 2)
    people, area = site.people(), site.floor_area_m2()
    assert people is not None
    assert area is not None
    bad.near(f"{utility} per_person", t.per_person, total / people, 4)
    bad.near(f"{utility} per_m2", t.per_m2, total / area, 4)
    targets = site.reports.targets
    bad.same(f"{utility} target", t.target, targets.electricity_kwh if utility == "electricity" else targets.water_m3)
    if utility == "electricity":
        by_period: dict[str, float] = defaultdict(float)
        for mm in mains:
            for period, kwh in mm.by_period.items():
                by_period[period] += kwh
        price = dict(site.tariffs.by_minute())
        order = [p for p in ("sharp", "peak", "flat", "valley") if p in by_period]
        bad.same(f"{utility} periods", [p.period for p in t.by_period], order)
        for p in t.by_period:
            bad.same(f"{utility} {p.period} price", p.yuan_per_kwh, price[p.period])
            bad.near(f"{utility} {p.period} kWh", p.kwh, by_period[p.period])
            bad.near(f"{utility} {p.period} cost", p.cost_yuan, by_period[p.period] * price[p.period], 2)
    else:
        bad.same(f"{utility} periods", t.by_period, [])

    use = summed(mains)
    after_use = _after_by_slot(mains, slots)
    daily: dict[date, list[float]] = {d: [0.0, 0.0] for d in OCTOBER}
    hourly: dict[tuple[date, int], float] = defaultdict(float)
    for i, u in use.items():
        daily[slots[i].local.date()][0] += u
        hourly[slots[i].local.date(), slots[i].local.hour] += u
    for i, u in after_use.items():
        daily[slots[i].local.date()][1] += u
    bad.same(f"{utility} daily dates", [x.date for x in t.daily], OCTOBER)
    for x in t.daily:
        bad.same(f"{utility} {x.date} school_day", x.school_day, cal.day(x.date).school_day)
        bad.near(f"{utility} {x.date} total", x.total, daily[x.date][0])
        bad.near(f"{utility} {x.date} after_hours", x.after_hours, daily[x.date][1])
    for weekday, row in enumerate(t.weekday_hours):
        days = [d for d in OCTOBER if d.weekday() == weekday]
        for hour, mean in enumerate(row):
            want = sum(hourly.get((d, hour), 0.0) for d in days) / len(days)
            bad.near(f"{utility} weekday {weekday} hour {hour} mean", mean, want)

    previous = _september(m, cal, [mm.device.id for mm in mains])
    bad.near(f"{utility} previous_month total", t.previous_month.total, previous[0])
    bad.near(f"{utility} previous_month coverage", t.previous_month.coverage, previous[1], 4)
    bad.same(f"{utility} same_month_last_year", (t.same_month_last_year.total, t.same_month_last_year.coverage),
             (None, 0.0))


def _after_by_slot(mains: Sequence[MeterMonth], slots: Sequence[Slot]) -> dict[int, float]:
    out: dict[int, float] = defaultdict(float)
    for mm in mains:
        for i, u in mm.by_slot.items():
            if not slots[i].open[mm.building]:
                out[i] += u
    return out


def _september(m: SimulatedMonth, cal: SchoolCalendar, devices: Sequence[str]) -> tuple[float, float]:
    """The meters' use in September (one day of readings) and the least covered one's share of its hours."""
    start, end = month_bounds(cal, date(2026, 9, 1), D[1])
    total = 0.0
    covered = []
    for device in devices:
        readings = m.readings[device]
        total += sum(rise(a, b) for (_, a), (t, b) in pairwise(readings) if start <= t < end)
        covered.append(len({(t - start) // HOUR_MS for t, _ in readings if start <= t < end}))
    return total, min(covered) / ((end - start) // HOUR_MS)


def _leaks(bad: Mismatches, m: SimulatedMonth) -> None:
    report = m.report
    found = sorted((x.device_id, datetime.fromtimestamp(x.first_ms / 1000, TZ).date()) for x in report.leaks)
    bad.same("leak alerts (meter, day)", found, sorted((leak.device_id, leak.start.date()) for leak in LEAKS))
    for x in report.leaks:
        leak = next((f for f in LEAKS if f.device_id == x.device_id), None)
        if leak is None:
            continue
        where = f"leak {x.device_id} {datetime.fromtimestamp(x.first_ms / 1000, TZ):%m-%d %H:%M}"
        # The run begins at the first reading with the leak's flow and clears at the first without.
        bad.same(f"{where} begins with the leak", 0 <= x.first_ms - ms(leak.start) <= 120_000, True)
        bad.same(f"{where} cleared when it stopped", x.cleared and 0 <= x.until_ms - ms(leak.end) <= 120_000, True)
        lost = counted_between(m.readings[x.device_id], x.first_ms, x.until_ms)
        bad.near(f"{where} loss_m3", x.loss_m3, lost)
        bad.near(f"{where} cost_yuan", x.cost_yuan, None if lost is None else lost * m.site.tariffs.water_yuan_per_m3,
                 2)
        leaked = leak.lpm * (leak.end - leak.start).total_seconds() / 60 / 1000
        bad.same(f"{where} loss ≈ the leak's {leaked:.3f} m³", abs(x.loss_m3 - leaked) <= 0.02 * leaked, True)
    bad.near("leak_m3", report.leak_m3, sum(x.loss_m3 for x in report.leaks))
    bad.near("leak_yuan", report.leak_yuan, sum(x.cost_yuan for x in report.leaks), 2)


# ------------------------------------------------------------------------------- the test


def test_a_simulated_month_reports_what_its_meters_counted_and_each_fault_on_its_day(tmp_path: Path) -> None:
    m = run_month(tmp_path)

    bad, meters, slots = reckon(m)
    assert bad == [], "the report disagrees with the raw readings:\n" + "\n".join(bad)

    # The base loads: configured for the teaching building, learned (10th percentile of whole
    # closed hours) for the others; the learned ones near their buildings' night loads.
    teaching = meters["teaching-power"]
    assert teaching.base_kw == TEACHING_BASE_W / 1000
    for device, night_kw in (("service-power", 3.1), ("kitchen-power", 1.5)):
        base = meters[device].base_kw
        assert base is not None
        assert abs(base - night_kw) < 0.15 * night_kw, (device, base)

    # The faults that change what the meters count took effect: the reset shows as a drop, and
    # the silent meter's first reading after its gap carries the kitchen's afternoon water.
    assert any(b < a for (_, a), (_, b) in pairwise(m.readings["kitchen-power"]))
    assert len(meters["service-water"].hours_seen) == 31 * 24 - 5  # silent 15:00–20:00
    resumed = next(t for t, _ in m.readings["service-water"] if t >= ms(SILENCE.end))
    assert meters["service-water"].by_slot[(resumed - ms(OCTOBER_START)) // FIVE_MIN_MS] > 0.3

    # The lights left on: three nights of 11 h at 3 kW above a configured base.
    in_windows = sum(w for p, w in teaching.waste
                     if any(ms(f.start) <= slots[p.slot].start_ms < ms(f.end) for f in EXTRA_LOADS))
    left_on = len(NIGHTS) * 11 * EXTRA_W / 1000
    assert abs(in_windows - left_on) < 0.05 * left_on, (in_windows, left_on)

    doc = energy_document(m.report, m.site, "zh-CN")
    [advice] = [s for s in doc.sections if s.title == "建议"]
    paragraphs = [text for block in advice.blocks if isinstance(block, Paragraphs) for text in block.items]
    assert any("教学楼总电表" in p for p in paragraphs), paragraphs
    # September had one day of readings: its coverage says so and nothing compares with it.
    for totals in (m.report.electricity, m.report.water):
        assert abs(totals.previous_month.coverage - 1 / 30) < 0.002
    [summary] = [s for s in doc.sections if s.title == "概要"]
    figures = next(block for block in summary.blocks if isinstance(block, Figures))
    assert [f.note for f in figures.items[:2]] == ["比上月：无完整数据"] * 2

    fails = {(d, i.id) for d, r in m.records.items() for i in r.items
             if i.device is not None and i.status is ItemStatus.FAIL}
    manual = {(d, i.id) for d, r in m.records.items() for i in r.items
              if i.device is not None and i.status is ItemStatus.MANUAL}
    assert all(r.complete for r in m.records.values())
    assert sorted(fails) == sorted(EXPECTED_FAILS)
    assert sorted(manual) == sorted(EXPECTED_MANUAL)
    [silent] = [i for i in m.records[D[23]].items if i.id == "water:service-water"]
    assert [(g.start.astimezone(TZ).strftime("%H:%M"), g.end.astimezone(TZ).strftime("%H:%M")) for g in silent.gaps] \
        == [("18:00", "20:00")]  # the gap's closed hours
