"""The monthly energy report proved on a simulated month: the demo kindergarten's October 2026
with known faults, fed through the real ingest path in-process (SQLite, rules, alerts, on a
manual clock). Every number of `GET /api/v1/reports/energy` is checked against a reckoning
written independently from the raw readings the simulation sent (tests/month_sim.py, from the
report's definitions, not its code), and every fault must show in the right daily safety
record (`GET /api/v1/reports/safety`) and nowhere else.

Waste and leak losses are the alerts' own figures (`GET /api/v1/alerts`): the report must quote
each alert's final facts, and those must agree with the raw readings of the alert's span.

The month starts a day early (30 September), so October's first readings have a predecessor;
September therefore has one day of data, which the report must not compare with.
"""

from __future__ import annotations

import time as wall
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic_core import from_json

from devices.base import Utility
from gateway.app import create_app
from gateway.cli.demo import demo_site
from gateway.clock import ManualClock
from gateway.config import SiteConfig
from gateway.ingest.broker import embedded_broker
from gateway.reports.document import Figures, Paragraphs, Table
from gateway.reports.energy import AlertFigures, EnergyReport, IntensityMeasure, Totals
from gateway.reports.energy_doc import energy_document
from gateway.reports.safety_model import ItemStatus, SafetyRecord
from gateway.rules.doors import DOOR_AFTER_HOURS
from gateway.rules.fridge import FRIDGE_TEMPERATURE
from gateway.rules.power import LOAD_AFTER_HOURS, LoadAfterHoursRule
from gateway.rules.water import RUNNING_TAP, WATER_LEAK
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
)
from tests.month_sim import (
    FIVE_MIN_MS,
    HOUR_MS,
    METRIC,
    MeterMonth,
    Reading,
    Slot,
    closed_hours,
    episode,
    load_waste,
    meter_month,
    month_slots,
    rise,
    summed,
)
from tests.services import accounting, free_port
from tests.simulated import Sent, simulated

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
LOAD, LEAK_RULES = LOAD_AFTER_HOURS.id, (WATER_LEAK.id, RUNNING_TAP.id)
LEARN_SAVED_WITHIN_S = 10.0
# GB/T 2589-2020: kg of standard coal per kWh of electricity (equivalent value) and per m³ of
# natural gas; water is not energy.
KGCE = {"electricity": 0.1229, "gas": 1.2143}
PRICED = ("electricity", "water")  # what a tariff prices
COMPLETE = 0.9  # data completeness below this is flagged

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
FRIDGE = FridgeTemperature("sample-fridge", at(D[15], "13:00"), at(D[15], "13:40"), celsius=9.5)
FAULTS: list[Fault] = [
    *EXTRA_LOADS,
    *LEAKS,
    FRIDGE,
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
    (D[19], "uv:uv-kitchen"),  # the door held open through the kitchen lamp's session: not counted
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
    alerts: dict[str, list[dict[str, Any]]]  # rule → its alerts as the API gives them
    learned: dict[str, float | None]  # circuit → the base load its rule learned, as saved


def feed(gateway: Gateway, messages: Iterable[Sent], received_ms: int) -> tuple[int, dict[str, list[Reading]]]:
    """Every message into the ingest path, as `gateway.cli.demo._backfill` does; keeps each meter's
    readings, as its payloads tell them, for the reckoning."""
    metric = {d.id: METRIC[d.kind] for d in gateway.site.devices if d.kind in METRIC}
    readings: dict[str, list[Reading]] = {device: [] for device in metric}
    accept = gateway.ingestor.accept
    sent = 0
    for _, device_id, channel, payload in messages:
        if channel == "telemetry" and device_id in metric:
            fields = from_json(payload)
            readings[device_id].append((ms(datetime.fromisoformat(fields["ts"])), float(fields[metric[device_id]])))
        rejected = accept("replay", device_id, channel, payload, received_ms)
        assert rejected is None, rejected
        sent += 1
    return sent, readings


def run_month(tmp_path: Path) -> SimulatedMonth:
    site = month_site(tmp_path)
    check_fault_days(site, SchoolCalendar(site))
    messages = simulated(site, START, END, FAULTS, SEED)
    app = create_app(site, ManualClock(NOW), before=[lambda: embedded_broker("127.0.0.1", site.mqtt.port)])
    with TestClient(app) as client:
        sent, readings = feed(client.app.state.gateway, messages, ms(NOW))  # type: ignore[attr-defined]
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
        learned = saved_base_loads(client.app.state.gateway)  # type: ignore[attr-defined]
        alerts = {rule: client.get("/api/v1/alerts", params={"rule": rule, "limit": 1000}).json()
                  for rule in (LOAD, *LEAK_RULES, DOOR_AFTER_HOURS.id, FRIDGE_TEMPERATURE.id)}
        answer = client.get("/api/v1/reports/energy", params={"month": MONTH})
        assert answer.status_code == 200, answer.text
        report = EnergyReport.model_validate(answer.json())
        records = {}
        for d in OCTOBER:
            got = client.get("/api/v1/reports/safety", params={"date": d.isoformat()})
            assert got.status_code == 200, got.text
            records[d] = SafetyRecord.model_validate(got.json())
    return SimulatedMonth(site, readings, sent, report, records, alerts, learned)


def saved_base_loads(gateway: Gateway) -> dict[str, float | None]:
    """The base loads the rules learned, once the gateway has saved them for readers (it does
    once a second): what the report must name."""
    rules = {d.id: rule for d in gateway.site.devices if (rule := gateway.engine.rule(d.id, LoadAfterHoursRule))}
    deadline = wall.monotonic() + LEARN_SAVED_WITHIN_S
    while True:
        saved = {d: b.base_w for d, b in gateway.learned.base_loads().items()}
        if all(saved.get(d) == rule.base_w() for d, rule in rules.items()):
            return saved
        assert wall.monotonic() < deadline, f"learned base loads not saved: {saved}"
        wall.sleep(0.2)


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


def reckon(m: SimulatedMonth) -> tuple[Mismatches, dict[str, MeterMonth]]:
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
    bad.same("a whole month", (report.partial, report.through_ms, report.hours), (False, end, hours))
    bad.same("school days", (report.school_days, report.school_days_month),
             (sum(cal.day(d).school_day for d in OCTOBER),) * 2)
    bad.same("meters", sorted(u.device_id for u in report.meters), sorted(meters))

    for use in report.meters:
        mm = meters[use.device_id]
        where = f"meter {use.device_id}"
        bad.same(f"{where} main", use.main, mm.main)
        bad.same(f"{where} building", use.building_id, mm.building)
        bad.near(f"{where} total", use.total, mm.total)
        bad.near(f"{where} after_hours", use.after_hours, mm.after_hours)
        bad.near(f"{where} after_hours_share", use.after_hours_share, share(mm.after_hours, mm.total), 4)
        bad.near(f"{where} cost_yuan", use.cost_yuan, mm.cost if mm.utility in PRICED else None, 2)
        bad.near(f"{where} coverage", use.coverage, len(mm.hours_seen) / hours, 4)
        expected = (end - start) / 1000 / mm.device.interval_s
        bad.same(f"{where} records", (use.records, use.expected), (mm.records, round(expected)))
        bad.near(f"{where} completeness", use.completeness, min(1.0, mm.records / expected), 4)
        bad.same(f"{where} complete", use.complete, mm.records / expected >= COMPLETE)
        bad.same(f"{where} subitem", use.subitem, mm.device.subitem)
        if mm.utility == "electricity":
            bad.same(f"{where} base", (use.base_w, use.base_source), base_of(m, mm))
            its = [a for a in m.alerts[LOAD] if a["device_id"] == use.device_id]
            waste = sum(fact(a, "waste_kwh") for a in its)
            bad.near(f"{where} waste_kwh", use.waste_kwh, waste)
            bad.near(f"{where} waste_yuan", use.waste_yuan, sum(fact(a, "cost_yuan") for a in its), 2)
            bad.same(f"{where} waste_episodes", use.waste_episodes, len(its))
            bad.near(f"{where} waste_minutes", use.waste_minutes, sum(fact(a, "minutes") for a in its), 1)
            bad.near(f"{where} after_hours_rest", use.after_hours_rest, max(0.0, mm.after_hours - waste))

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
        bad.near(f"{where} kgce", b.kgce, sum(mm.total * KGCE[mm.utility] for mm in mine if mm.utility in KGCE))
        bad.near(f"{where} cost_yuan", b.cost_yuan, sum(mm.cost for mm in mine), 2)
        bad.near(f"{where} after_hours_share", b.after_hours_share, share(sum(mm.after_hours for mm in power), kwh), 4)
        mine_alerts = [a for a in m.alerts[LOAD] if a["device_id"] in {mm.device.id for mm in power}]
        waste = sum(fact(a, "waste_kwh") for a in mine_alerts)
        after = sum(mm.after_hours for mm in power)
        bad.near(f"{where} waste_kwh", b.waste_kwh, waste)
        bad.near(f"{where} waste_yuan", b.waste_yuan, sum(fact(a, "cost_yuan") for a in mine_alerts), 2)
        bad.near(f"{where} after_hours_kwh", b.after_hours_kwh, after)
        bad.near(f"{where} after_hours_rest", b.after_hours_rest, max(0.0, after - waste))
        bases = [base_of(m, mm) for mm in power]
        watts = [w for w, _ in bases if w is not None]
        sources = {source for _, source in bases}
        base = sum(watts) if len(watts) == len(bases) else None
        bad.same(f"{where} base", (b.base_w, b.base_source),
                 (base, sources.pop() if len(sources) == 1 else "mixed") if base is not None else (None, None))
        standby = next(x.standby_w for x in site.buildings if x.id == b.building_id)
        shut_h, yuan_per_kw = closed_hours(slots, b.building_id)
        bad.same(f"{where} standby_w", b.standby_w, standby)
        bad.near(f"{where} closed_h", b.closed_h, shut_h, 2)
        excess_kw = (base - standby) / 1000 if base is not None and standby is not None else 0.0
        bad.near(f"{where} base_excess_kwh", b.base_excess_kwh, excess_kw * shut_h if excess_kw > 0 else None)
        bad.near(f"{where} base_excess_yuan", b.base_excess_yuan, excess_kw * yuan_per_kw if excess_kw > 0 else None,
                 2)
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

    power_mains = {mm.device.id for mm in meters.values() if mm.main and mm.utility == "electricity"}
    main_alerts = [a for a in m.alerts[LOAD] if a["device_id"] in power_mains]
    bad.near("site waste_kwh", report.waste_kwh, sum(fact(a, "waste_kwh") for a in main_alerts))
    bad.near("site waste_yuan", report.waste_yuan, sum(fact(a, "cost_yuan") for a in main_alerts), 2)
    _loads(bad, m)
    _leaks(bad, m)
    _subitems(bad, m, meters)
    _coal_and_quotas(bad, m, meters, hours)
    return bad, meters


def subitem_totals(site: SiteConfig, meters: dict[str, MeterMonth]) -> dict[tuple[str, str | None], float]:
    """(sub-item, building) → its month from the raw readings: the meters tagged with it, and each
    derived one's main meter less its sub-meters; (sub-item, None) → the site's."""
    out: dict[tuple[str, str | None], float] = defaultdict(float)
    for mm in meters.values():
        if mm.device.subitem is not None:
            out[mm.device.subitem, mm.building] += mm.total
    for derived in site.derived_subitems:
        main = meters[derived.main]
        out[derived.subitem, main.building] += main.total - sum(meters[d].total for d in derived.minus)
    for (code, _), total in list(out.items()):
        out[code, None] += total
    return dict(out)


def _subitems(bad: Mismatches, m: SimulatedMonth, meters: dict[str, MeterMonth]) -> None:
    want = subitem_totals(m.site, meters)
    got = {(u.code, u.building_id): u for u in m.report.subitems}
    bad.same("sub-items", sorted(got, key=str), sorted(want, key=str))
    for key, total in want.items():
        if key in got:
            bad.near(f"sub-item {key} total", got[key].total, total)
            bad.near(f"sub-item {key} kgce", got[key].kgce, total * KGCE["electricity"])


def _coal_and_quotas(bad: Mismatches, m: SimulatedMonth, meters: dict[str, MeterMonth], hours: int) -> None:
    site, report = m.site, m.report
    utilities: tuple[Utility, ...] = ("electricity", "water", "gas")
    mains = {u: sum(mm.total for mm in meters.values() if mm.main and mm.utility == u) for u in utilities}
    got = {c.utility: c for c in report.categories}
    for utility, total in mains.items():
        bad.near(f"{utility} category total", got[utility].total, total)
        bad.near(f"{utility} kgce", got[utility].kgce, total * KGCE[utility] if utility in KGCE else None)
    coal = sum(total * KGCE[u] for u, total in mains.items() if u in KGCE)
    bad.near("total kgce", report.total_kgce, coal)
    area, people, students = site.floor_area_m2(), site.people(), site.students
    assert area is not None
    assert people is not None
    assert students is not None
    q = site.quotas
    share = hours / (365 * 24)
    want: dict[IntensityMeasure, tuple[float, float | None]] = {
            "kgce_per_m2": (coal / area, q.kgce_per_m2), "kgce_per_person": (coal / people, q.kgce_per_person),
            "kgce_per_student": (coal / students, q.kgce_per_student),
            "kwh_per_m2": (mains["electricity"] / area, q.kwh_per_m2),
            "kwh_per_person": (mains["electricity"] / people, q.kwh_per_person),
            "water_m3_per_person": (mains["water"] / people, q.water_m3_per_person)}
    intensity = {i.measure: i for i in report.intensity}
    bad.same("intensity measures", sorted(intensity), sorted(want))
    for measure, (value, quota) in want.items():
        i = intensity[measure]
        bad.near(f"{measure}", i.value, value, 4)
        bad.same(f"{measure} quota", i.quota_year, quota)
        bad.near(f"{measure} quota for the month", i.quota_period, None if quota is None else quota * share, 4)
        bad.same(f"{measure} exceeded", i.exceeded, None if quota is None else value > quota * share)


def fact(alert: dict[str, Any], key: str) -> float:
    value = alert["facts"].get(key)
    assert isinstance(value, int | float), (alert["id"], alert["rule"], key, alert["facts"])
    return float(value)


def base_of(m: SimulatedMonth, mm: MeterMonth) -> tuple[float | None, str | None]:
    """A circuit's base load and where it comes from: configured, or as its rule learned it."""
    configured = LOAD_AFTER_HOURS.params_for(mm.device).base_load_w
    if configured is not None:
        return configured, "configured"
    learned = m.learned.get(mm.device.id)
    return (learned, "learned") if learned is not None else (None, None)


def moment_ms(text: str | None) -> int | None:
    return None if text is None else ms(datetime.fromisoformat(text))


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

    hours = len(slots) // 12
    coverage = min(len(mm.hours_seen) for mm in mains) / hours
    bad.near(f"{utility} coverage", t.coverage, coverage, 4)
    bad.same(f"{utility} enough_data", t.enough_data, coverage >= 0.5)
    previous = _september(m, cal, [mm.device.id for mm in mains])
    bad.same(f"{utility} previous_month span", (t.previous_month.start_ms, t.previous_month.end_ms),
             month_bounds(cal, date(2026, 9, 1), D[1]))
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


Injected = TypeVar("Injected", ExtraLoad, Leak)


def _each_injected(bad: Mismatches, m: SimulatedMonth, rules: Sequence[str], faults: Sequence[Injected],
                   quoted: Sequence[AlertFigures], facts: Sequence[str],
                   what: str) -> Iterator[tuple[dict[str, Any], str, int, int, Injected]]:
    """The alerts of `rules`: one for each injected fault, each quoted by the report with its
    `facts`. Yields each with where to say it, its first and clearing moments and its fault."""
    alerts = sorted((a for rule in rules for a in m.alerts[rule]), key=lambda a: a["first"])
    found = sorted((a["device_id"], datetime.fromisoformat(a["first"]).astimezone(TZ).date()) for a in alerts)
    bad.same(f"{what} alerts (meter, day)", found, sorted((f.device_id, f.start.date()) for f in faults))
    by_id = {x.alert_id: x for x in quoted}
    bad.same(f"{what} alerts quoted", sorted(by_id), sorted(a["id"] for a in alerts))
    for a in alerts:
        first, cleared = moment_ms(a["first"]), moment_ms(a["cleared_at"])
        assert first is not None
        began = datetime.fromtimestamp(first / 1000, TZ)
        where = f"{what} alert {a['id']} {a['device_id']} {began:%m-%d %H:%M}"
        fault = next((f for f in faults if f.device_id == a["device_id"] and f.start.date() == began.date()), None)
        if fault is None or cleared is None:
            bad.append(f"{where}: not an injected {what}, or never cleared")
            continue
        # It begins at the first reading with the fault and clears at the first without.
        bad.same(f"{where} begins with the {what}", 0 <= first - ms(fault.start) <= 120_000, True)
        bad.same(f"{where} cleared when it stopped", 0 <= cleared - ms(fault.end) <= 120_000, True)
        x = by_id.get(a["id"])
        if x is not None:
            got: list[object] = [x.first_ms, x.until_ms, x.cleared]
            want: list[object] = [first, cleared, True]
            for key in facts:
                got.append(getattr(x, key))
                want.append(fact(a, key))
            bad.same(f"{where} quoted", got, want)
        yield a, where, first, cleared, fault


def _loads(bad: Mismatches, m: SimulatedMonth) -> None:
    """Every after-hours load alert is one of the injected loads; the report quotes its final
    facts, which agree with the meter's raw readings over its span."""
    for a, where, first, cleared, load in _each_injected(
            bad, m, [LOAD], EXTRA_LOADS, m.report.load_episodes, ("waste_kwh", "cost_yuan", "minutes", "base_w"),
            "load"):
        span = episode(m.readings[a["device_id"]], first, cleared)
        kwh, yuan = load_waste(m.site, span, fact(a, "base_w"))
        bad.same(f"{where} base in force", fact(a, "base_w"), TEACHING_BASE_W)
        bad.near(f"{where} waste_kwh", fact(a, "waste_kwh"), kwh, 2)
        bad.near(f"{where} cost_yuan", fact(a, "cost_yuan"), yuan, 1)  # a price step may fall inside an interval
        bad.same(f"{where} minutes", abs(fact(a, "minutes") - (cleared - first) / 60_000) <= 1, True)
        left_on = EXTRA_W / 1000 * (load.end - load.start).total_seconds() / 3600
        bad.same(f"{where} waste ≈ the {left_on:.1f} kWh left on", abs(kwh - left_on) <= 0.03 * left_on, True)


def _leaks(bad: Mismatches, m: SimulatedMonth) -> None:
    """Every leak alert is one of the injected leaks; the report quotes its final facts, which
    agree with the meter's raw readings over its span."""
    report = m.report
    for a, where, first, cleared, leak in _each_injected(
            bad, m, LEAK_RULES, LEAKS, report.leaks, ("loss_m3", "cost_yuan", "minutes"), "leak"):
        lost = episode(m.readings[a["device_id"]], first, cleared).counted
        bad.near(f"{where} loss_m3", fact(a, "loss_m3"), lost)
        bad.near(f"{where} cost_yuan", fact(a, "cost_yuan"), lost * m.site.tariffs.water_yuan_per_m3, 2)
        leaked = leak.lpm * (leak.end - leak.start).total_seconds() / 60 / 1000
        bad.same(f"{where} loss ≈ the leak's {leaked:.3f} m³", abs(lost - leaked) <= 0.02 * leaked, True)
    bad.near("leak_m3", report.leak_m3, sum(x.loss_m3 for x in report.leaks))
    bad.near("leak_yuan", report.leak_yuan, sum(x.cost_yuan for x in report.leaks), 2)


def records_agree(m: SimulatedMonth) -> Mismatches:
    """The daily record gives each injected fault's figures as its alert's final ones, and
    both agree with the fault as injected (to a reading's minute)."""
    bad = Mismatches()

    def item(day: date, item_id: str) -> dict[str, Any]:
        [found] = [i for i in m.records[day].items if i.id == item_id]
        return found.facts.model_dump() if found.facts is not None else {}

    def one(rule: str, device: str) -> dict[str, Any]:
        mine = [a for a in m.alerts[rule] if a["device_id"] == device]
        assert len(mine) == 1, (rule, device, mine)
        return mine[0]

    for leak in LEAKS:
        a, facts = one(WATER_LEAK.id, leak.device_id), item(leak.start.date(), f"water:{leak.device_id}")
        bad.same(f"record of the leak at {leak.device_id} loss_m3", facts["loss_m3"], fact(a, "loss_m3"))
        bad.same(f"record of the leak at {leak.device_id} cost_yuan", facts["cost_yuan"], fact(a, "cost_yuan"))
    for load in EXTRA_LOADS:
        [a] = [x for x in m.alerts[LOAD] if datetime.fromisoformat(x["first"]).astimezone(TZ).date() == load.start.date()]
        for day in (load.start.date(), load.end.date()):  # an episode across midnight is judged whole on both days
            facts = item(day, f"power:{load.device_id}")
            bad.near(f"record of {day} {load.device_id} waste_kwh", facts["waste_kwh"], fact(a, "waste_kwh"), 2)
            bad.near(f"record of {day} {load.device_id} waste_yuan", facts["waste_yuan"], fact(a, "cost_yuan"), 2)
    door, facts = one(DOOR_AFTER_HOURS.id, DOOR.device_id), item(DOOR.start.date(), f"door:{DOOR.device_id}")
    held = (DOOR.end - DOOR.start).total_seconds() / 60
    bad.same("the door's alert minutes", abs(fact(door, "minutes") - held) <= 1, True)
    bad.same("the door's record minutes", abs(facts["longest"]["minutes"] - fact(door, "minutes")) <= 0.5, True)
    fridge, facts = one(FRIDGE_TEMPERATURE.id, FRIDGE.device_id), item(FRIDGE.start.date(), f"fridge:{FRIDGE.device_id}")
    warm = (FRIDGE.end - FRIDGE.start).total_seconds() / 60
    bad.same("the fridge's alert minutes", abs(fact(fridge, "minutes") - warm) <= 1, True)
    bad.same("the fridge's record minutes", abs(facts["longest"]["minutes"] - fact(fridge, "minutes")) <= 0.5, True)
    bad.same("the fridge's extreme", (fact(fridge, "worst_c"), facts["highest_c"]), (FRIDGE.celsius, FRIDGE.celsius))
    return bad


# ------------------------------------------------------------------------------- the test


def test_a_simulated_month_reports_what_its_meters_counted_and_each_fault_on_its_day(tmp_path: Path) -> None:
    m = run_month(tmp_path)

    bad, meters = reckon(m)
    assert bad == [], "the report disagrees with the raw readings:\n" + "\n".join(bad)
    disagree = records_agree(m)
    assert disagree == [], "the daily record disagrees with the alerts:\n" + "\n".join(disagree)

    # The base loads: configured for the teaching building, learned by the rule for the others,
    # near their buildings' night loads.
    assert meters["teaching-power"].device.rules["load_after_hours"]["base_load_w"] == TEACHING_BASE_W
    uses = {u.device_id: u for u in m.report.meters}
    assert (uses["teaching-power"].base_w, uses["teaching-power"].base_source) == (TEACHING_BASE_W, "configured")
    for device, night_w in (("service-power", 3100), ("kitchen-power", 1500)):
        base = uses[device].base_w
        assert uses[device].base_source == "learned"
        assert base is not None
        assert abs(base - night_w) < 0.15 * night_w, (device, base)

    # The faults that change what the meters count took effect: the reset shows as a drop, and
    # the silent meter's first reading after its gap carries the kitchen's afternoon water.
    assert any(b < a for (_, a), (_, b) in pairwise(m.readings["kitchen-power"]))
    assert len(meters["service-water"].hours_seen) == 31 * 24 - 5  # silent 15:00–20:00
    resumed = next(t for t, _ in m.readings["service-water"] if t >= ms(SILENCE.end))
    assert meters["service-water"].by_slot[(resumed - ms(OCTOBER_START)) // FIVE_MIN_MS] > 0.3

    # The teaching building's base (2,050 W configured) is above its expected standby (1,200 W):
    # flagged with what the 850 W cost over its closed hours.
    teaching = next(b for b in m.report.buildings if b.building_id == "teaching")
    assert teaching.standby_w == 1200
    assert teaching.base_excess_kwh is not None
    assert teaching.base_excess_kwh == pytest.approx(0.85 * teaching.closed_h, abs=0.01)
    service = next(b for b in m.report.buildings if b.building_id == "service")
    assert service.base_excess_kwh is None  # its learned base is under its 3,200 W standby

    # The demo's sub-items: the kitchen's circuit is 特殊用电·厨房餐厅; the service building's
    # lighting and sockets are its main meter less the kitchen's, the teaching building's its main meter.
    subitems = {(u.code, u.building_id): u.total for u in m.report.subitems}
    kitchen_kwh, service_kwh = meters["kitchen-power"].total, meters["service-power"].total
    assert subitems["01D30", "service"] == pytest.approx(kitchen_kwh, rel=REL)
    assert subitems["01A10", "service"] == pytest.approx(service_kwh - kitchen_kwh, rel=REL)
    assert subitems["01A10", None] == pytest.approx(service_kwh - kitchen_kwh + meters["teaching-power"].total,
                                                    rel=REL)

    doc = energy_document(m.report, m.site, "zh-CN")
    [section] = [s for s in doc.sections if s.title == "分项能耗与定额"]
    [table] = [b for b in section.blocks if isinstance(b, Table) and b.key == "subitems"]
    said = {(row[0], row[1]): row[5] for row in table.rows}
    assert said["01A10 照明插座用电·照明与插座", "综合楼"] == "综合楼总电表 减 厨房电表"
    assert said["01D30 特殊用电·厨房餐厅", "综合楼"] == "厨房电表"
    [advice] = [s for s in doc.sections if s.title == "建议"]
    paragraphs = [text for block in advice.blocks if isinstance(block, Paragraphs) for text in block.items]
    assert any("教学楼总电表" in p and "3 次闭园后负荷偏高" in p for p in paragraphs), paragraphs
    assert any(p.startswith("教学楼：闭园时的基础负荷为 2.1 kW（设定值），高于该楼预期的待机功率 1.2 kW；多出的 850 W")
               for p in paragraphs), paragraphs
    # September had one day of readings: its coverage says so and nothing compares with it.
    for totals in (m.report.electricity, m.report.water):
        assert abs(totals.previous_month.coverage - 1 / 30) < 0.002
    [summary] = [s for s in doc.sections if s.title == "概要"]
    figures = next(block for block in summary.blocks if isinstance(block, Figures))
    assert [f.note for f in figures.items[:2]] == ["比上月：无完整数据"] * 2

    fails = {(d, i.id) for d, r in m.records.items() for i in r.items
             if i.device is not None and i.status is ItemStatus.FAIL}
    manual = {(d, i.id) for d, r in m.records.items() for i in r.items
              if i.device is not None and i.status is ItemStatus.MANUAL and not i.id.startswith("uvcare:")}
    # Nobody recorded a UV tube's wipe or irradiance test this month: every day asks a person.
    assert {i.status for r in m.records.values() for i in r.items if i.id.startswith("uvcare:")} == {
        ItemStatus.MANUAL}
    assert all(r.complete for r in m.records.values())
    assert sorted(fails) == sorted(EXPECTED_FAILS)
    assert sorted(manual) == sorted(EXPECTED_MANUAL)
    [silent] = [i for i in m.records[D[23]].items if i.id == "water:service-water"]
    assert [(g.start.astimezone(TZ).strftime("%H:%M"), g.end.astimezone(TZ).strftime("%H:%M")) for g in silent.gaps] \
        == [("18:00", "20:00")]  # the gap's closed hours
