"""How long the monthly energy-saving report (月度节能报告) takes for a large site, read from
the incremental rollups, next to the naive way the rollups exist to avoid.

Run: `.venv/bin/python -m bench.report [--devices 500] [--month 2026-10] [--runs 5] [--rebuild] [--profile]`

1. A site of `--devices` devices (20 a building) with the demo kindergarten's time zone,
   opening hours, time-of-use tariff and duty roster. Each building has a plant room with
   its main electricity and water meters, a kitchen (electricity and water meters and a
   sample fridge), classrooms and an office (electricity sub-meters) and a washroom (a
   water sub-meter): 19 of every 20 devices are meters. Only meters get readings (the
   report reads nothing else).
2. One reading a minute of each meter's counter (`energy_kwh`, `volume_m3`) from the last
   day of the month before through the end of `--month`, rising by a day/night load profile
   that follows each building's opening hours in the school calendar (holidays closed),
   with some evenings' load left on. Written in time order through `SqliteStore.write`,
   5,000 readings a call as the gateway's sink batches them, so the 5-minute and hourly
   rollups are built the real way; the time spent inside `write` gives the ingest rate
   including rollups. Reference in the same build: the same batches inserted into a bare
   readings table (the same schema and pragmas, no rollups). The database is cached in
   `bench/.cache/` (git-ignored) with the build's figures; `--rebuild` builds it again.
3. The whole report: `leak_alerts` and `load_alerts` (an empty alert store) + `energy_report` +
   `energy_document` + `render` to HTML and to PDF. Cold: the first run after opening the
   store, with the database file evicted from the OS page cache (fsync, then
   posix_fadvise DONTNEED); warm: the median of `--runs` runs.
4. Reference in the same run: each meter's monthly total straight from the raw readings,
   one query per meter (its rows in time order, increases summed in Python, inlined), cold
   and warm; also the cheapest look at the raw rows, `count(*), min, max` per meter in SQL.
   The report's meter totals are checked against the first.
5. With `--profile`, or when the whole warm report misses the target, one more warm run
   under cProfile: the functions that take the most time.

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import re
import sqlite3
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from devices import kinds
from devices.base import Sample
from gateway.alerting.alerts import AlertStore
from gateway.auth.audit import AuditTrail
from gateway.clock import SystemClock
from gateway.config import SiteConfig
from gateway.reports.document import Document
from gateway.reports.energy import EnergyReport, Month, bounds_ms, energy_report, leak_alerts, load_alerts
from gateway.reports.energy_doc import energy_document
from gateway.rules.water import RUNNING_TAP
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.sqlite import SqliteStore, connect
from gateway.storage.state import StateDatabase, sqlite_url
from simulators import DEMO_SITE

CACHE: Final = Path(__file__).with_name(".cache")
VERSION: Final = 1  # of the data this file writes: bump it when the site or the profile changes
SEED: Final = 1
PER_BUILDING: Final = 20
BATCH: Final = 5_000  # readings a write, as `spool.sink_batch`
MINUTE_MS: Final = 60_000
TARGET_S: Final = 3.0  # the whole report, PDF included (issue 21)
METRICS: Final = {"electricity_meter": ("energy_kwh", 3), "water_meter": ("volume_m3", 4)}  # metric, decimals

# Rooms of a building after its plant room and kitchen, in order, then repeated: (type, name, kinds).
PLANT: Final = ("plant", "配电间", ("electricity_meter", "water_meter"))
KITCHEN: Final = ("kitchen", "厨房", ("electricity_meter", "water_meter", "sample_fridge"))
ROOMS: Final = (
    ("classroom", "教室", ("electricity_meter",)),
    ("classroom", "教室", ("electricity_meter",)),
    ("classroom", "教室", ("electricity_meter",)),
    ("other", "卫生间", ("water_meter",)),
    ("office", "办公室", ("electricity_meter",)),
)
# Electricity (kW) and water (L/min) while open and while closed, by room type; assumptions.
POWER_KW: Final = {"plant": (15.0, 3.0), "kitchen": (6.0, 0.8), "classroom": (2.0, 0.15), "office": (1.2, 0.1)}
FLOW_LPM: Final = {"plant": (12.0, 0.3), "kitchen": (6.0, 0.0), "other": (3.0, 0.0)}
# Some evenings a meter's load is left on (air conditioning, a tap) from closing to 23:00.
LEFT_ON_SHARE: Final = {"electricity_meter": 0.06, "water_meter": 0.02}
LEFT_ON_UNTIL_H: Final = 23
# Monthly targets a building (the site's are the sum), about what the profile above uses; assumptions.
TARGETS_PER_BUILDING: Final = {"electricity_kwh": 5_000, "water_m3": 130}


# ------------------------------------------------------------------------------- the site


def build_site(devices: int) -> dict[str, Any]:
    """The site file's content: buildings of PER_BUILDING devices, the demo's hours and tariffs."""
    demo = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    labels = {k.name: k.label_zh for k in kinds().values()}
    n_buildings = max(1, math.ceil(devices / PER_BUILDING))
    buildings: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for b in range(n_buildings):
        quota = devices // n_buildings + (1 if b < devices % n_buildings else 0)
        name = f"{b + 1}号楼"
        rooms: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        i = 0
        while quota > 0:
            room_type, room_name, room_kinds = (PLANT, KITCHEN)[i] if i < 2 else ROOMS[(i - 2) % len(ROOMS)]
            i += 1
            counts[room_type] = n = counts.get(room_type, 0) + 1
            room = {"id": f"b{b + 1:02d}-{room_type.replace('_', '-')}-{n}",
                    "name": room_name if room_type in ("plant", "kitchen") else f"{room_name}{n}",
                    "type": room_type}
            rooms.append(room)
            for kind in room_kinds[:quota]:
                entry: dict[str, Any] = {"id": f"{room['id']}-{kind.replace('_', '-')}", "kind": kind,
                                         "room": room["id"], "name": f"{name}{room['name']}{labels[kind]}",
                                         "interval_s": 60}
                if kind == "sample_fridge":
                    entry["settings"] = {"min_c": 0, "max_c": 8, "alarm_delay_min": 15}
                if kind == "water_meter" and room_type == "plant":
                    entry["rules"] = {RUNNING_TAP.id: {"enabled": False}}
                entries.append(entry)
            quota -= min(quota, len(room_kinds))
        buildings.append({"id": f"b{b + 1:02d}", "name": name, "floor_area_m2": 1200, "headcount": 150,
                          "rooms": rooms})
    return {k: demo[k] for k in ("timezone", "opening_hours", "tariffs", "duty")} | {
        "id": demo["id"], "name": f"{demo['name']}（{devices} 台设备）", "buildings": buildings,
        "devices": entries,
        "reports": {"targets": {k: v * n_buildings for k, v in TARGETS_PER_BUILDING.items()}},
    }


def describe(site: SiteConfig) -> tuple[str, int]:
    """A line about the site's devices, and how many are meters."""
    mix: dict[str, int] = {}
    for d in site.devices:
        mix[d.kind] = mix.get(d.kind, 0) + 1
    meters = sum(n for k, n in mix.items() if k in METRICS)
    rooms = sum(len(b.rooms) for b in site.buildings)
    return (f"devices {len(site.devices)} (meters {meters}) in {len(site.buildings)} buildings, {rooms} rooms: "
            + ", ".join(f"{n} {k}" for k, n in sorted(mix.items()))), meters


# ------------------------------------------------------------------------------- the data


@dataclass
class SimMeter:
    """One meter's counter: what it counts a minute while its building is open, while it is
    closed, and on top of that on an evening its load is left on."""

    id: str
    metric: str
    digits: int
    opened: bytearray  # its building's opening, a flag a minute
    open_rate: float
    closed_rate: float
    left_rate: float
    left_on: bytearray  # a flag a local day: load left on that evening
    phase_ms: int  # when in the minute it reports
    counter: float


@dataclass
class Timeline:
    """The minutes written: [start, end) in ms, and for each minute its local day (an index
    from the first) and whether it is in the evening window for load left on."""

    start_ms: int
    minutes: int
    day: list[int]
    evening: bytearray


def timeline(cal: SchoolCalendar, first: date, last: date) -> Timeline:
    start = cal.day_bounds_ms(first)[0]
    end = cal.day_bounds_ms(last)[1]
    n = (end - start) // MINUTE_MS
    day, evening = [0] * n, bytearray(n)
    for k in range(n):
        local = datetime.fromtimestamp((start + k * MINUTE_MS) / 1000, cal.tz)
        day[k] = (local.date() - first).days
        evening[k] = 17 <= local.hour < LEFT_ON_UNTIL_H
    return Timeline(start, n, day, evening)


def sim_meters(site: SiteConfig, cal: SchoolCalendar, line: Timeline, first: date) -> list[SimMeter]:
    opened: dict[str, bytearray] = {}
    days = line.day[-1] + 1
    for b in site.buildings:
        flags = bytearray(line.minutes)
        for i in range(days):
            for lo, hi in cal.open_spans_ms(b.id, first + timedelta(days=i)):
                for k in range(max(0, (lo - line.start_ms) // MINUTE_MS), min(line.minutes,
                                                                               (hi - line.start_ms) // MINUTE_MS)):
                    flags[k] = 1
        opened[b.id] = flags
    rng = random.Random(SEED)
    meters = [d for d in site.devices if d.kind in METRICS]
    out = []
    for n, d in enumerate(meters):
        room = site.room(d.room)
        metric, digits = METRICS[d.kind]
        if d.kind == "electricity_meter":
            day_kw, night_kw = POWER_KW.get(room.type, (0.5, 0.08))
            rates = (day_kw / 60, night_kw / 60, max(day_kw * 0.5 - night_kw, 0.0) / 60)  # kWh a minute
            counter = rng.uniform(10_000, 50_000)
        else:
            day_lpm, night_lpm = FLOW_LPM.get(room.type, (3.0, 0.0))
            rates = (day_lpm / 1000, night_lpm / 1000, 2.0 / 1000)  # m³ a minute; a tap left running: 2 L/min
            counter = rng.uniform(1_000, 5_000)
        left = bytearray(rng.random() < LEFT_ON_SHARE[d.kind] for _ in range(days))
        out.append(SimMeter(d.id, metric, digits, opened[site.building_of(d.room).id], *rates, left,
                            n * MINUTE_MS // len(meters), counter))
    return out


def batches(meters: list[SimMeter], line: Timeline, rng: random.Random) -> Iterator[tuple[int, list[Sample]]]:
    """(day index, readings) in time order, BATCH readings at a time."""
    batch: list[Sample] = []
    rand = rng.random
    for k in range(line.minutes):
        t = line.start_ms + k * MINUTE_MS
        day, evening = line.day[k], line.evening[k]
        for m in meters:
            left = m.left_rate if evening and m.left_on[day] else 0.0
            rate = m.open_rate if m.opened[k] else m.closed_rate + left
            m.counter += rate * (0.85 + 0.3 * rand())
            batch.append(Sample(m.id, t + m.phase_ms, {m.metric: round(m.counter, m.digits)}))
            if len(batch) == BATCH:
                yield day, batch
                batch = []
    if batch:
        yield line.day[-1], batch


_BARE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS readings (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
"""


def bare_write(conn: sqlite3.Connection, series: dict[tuple[str, str], int], samples: list[Sample]) -> None:
    """The reference: `SqliteStore.write` without its rollups (one transaction, INSERT OR IGNORE)."""
    rows = []
    conn.execute("BEGIN")
    for s in samples:
        for metric, value in s.values.items():
            sid = series.get((s.device_id, metric))
            if sid is None:
                sid = series[(s.device_id, metric)] = len(series) + 1
            rows.append((sid, s.ts_ms, value))
    conn.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")


def build(db: Path, site: SiteConfig, cal: SchoolCalendar, month: Month) -> dict[str, Any]:
    """Writes the readings into a new database at `db`; the build's figures."""
    first, last = month.first() - timedelta(days=1), month.days()[-1]
    line = timeline(cal, first, last)
    meters = sim_meters(site, cal, line, first)
    total = line.minutes * len(meters)
    days = line.day[-1] + 1
    print(f"building {db.name}: {len(meters)} meters × {line.minutes:,} minutes ({first} to {last}) = "
          f"{total / 1e6:.1f} M readings, {BATCH:,} a write; reference: the same batches into a bare table")
    partial = db.with_name(db.name + ".partial")
    for p in (partial, db):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)
    began = time.perf_counter()
    store_s = bare_s = store_cpu = bare_cpu = 0.0  # wall and CPU seconds in the writes
    written = 0
    shown = -1
    with tempfile.TemporaryDirectory(prefix="bench-report-", dir=CACHE) as tmp:
        store = SqliteStore(partial)
        bare = connect(Path(tmp) / "bare.db", _BARE_SCHEMA)
        series: dict[tuple[str, str], int] = {}
        try:
            for day, samples in batches(meters, line, random.Random(SEED)):
                t0, c0 = time.perf_counter(), time.process_time()
                store.write(samples, [])
                t1, c1 = time.perf_counter(), time.process_time()
                bare_write(bare, series, samples)
                store_s += t1 - t0
                bare_s += time.perf_counter() - t1
                store_cpu += c1 - c0
                bare_cpu += time.process_time() - c1
                written += len(samples)
                if day != shown and (day % 4 == 0 or day == days - 1):
                    shown = day
                    wall = time.perf_counter() - began
                    print(f"  day {day + 1:2d}/{days}: {written / 1e6:5.1f} M readings, {wall:4.0f} s; "
                          f"store {written / store_s / 1e3:4.0f} k/s, bare {written / bare_s / 1e3:4.0f} k/s; "
                          f"about {wall * (total - written) / written:3.0f} s left", flush=True)
        finally:
            store.close()
            bare.close()
    partial.rename(db)
    figures = {"version": VERSION, "built": datetime.now().astimezone().isoformat(timespec="seconds"),
               "readings": written, "meters": len(meters), "wall_s": time.perf_counter() - began,
               "store_s": store_s, "bare_s": bare_s, "store_cpu_s": store_cpu, "bare_cpu_s": bare_cpu,
               "bytes": db.stat().st_size, "load_average": os.getloadavg()[0]}
    db.with_suffix(".json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return figures


# ---------------------------------------------------------------------------- measurements


def evict(path: Path) -> None:
    """Drops the file's pages from the OS page cache (written back first), for a cold read."""
    for p in (path, Path(f"{path}-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@dataclass
class Run:
    """One whole report: seconds of each stage, and what it made."""

    data_s: float
    doc_s: float
    html_s: float
    pdf_s: float
    cpu_s: float  # the process's CPU time over the four: wall time less waiting (for I/O, for other work)
    report: EnergyReport
    html: bytes
    pdf: bytes

    @property
    def whole_s(self) -> float:
        return self.data_s + self.doc_s + self.html_s + self.pdf_s


def whole_report(site: SiteConfig, cal: SchoolCalendar, store: SqliteStore, alerts: AlertStore, month: Month,
                 render: Callable[[Document, str], tuple[bytes, str, str]]) -> Run:
    now_ms = bounds_ms(cal, month)[1] + 8 * 3_600_000  # the 1st of the next month, 08:00: monthly delivery
    t0, c0 = time.perf_counter(), time.process_time()
    report = energy_report(site, cal, store, leak_alerts(alerts, cal, month), load_alerts(alerts, cal, month),
                           month, now_ms, {})
    t1 = time.perf_counter()
    doc = energy_document(report, site, "zh-CN")
    t2 = time.perf_counter()
    html, _, _ = render(doc, "html")
    t3 = time.perf_counter()
    pdf, _, _ = render(doc, "pdf")
    t4 = time.perf_counter()
    return Run(t1 - t0, t2 - t1, t3 - t2, t4 - t3, time.process_time() - c0, report, html, pdf)


def raw_totals(db: Path, metrics: dict[str, str], start_ms: int, end_ms: int) -> tuple[dict[str, float], float]:
    """Reference: each meter's increase over [start, end) from its raw readings, one query a
    meter, summed in Python (`increase` inlined); the totals and the seconds taken."""
    t0 = time.perf_counter()
    out: dict[str, float] = {}
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        series = {(d, m): i for i, d, m in conn.execute("SELECT id, device_id, metric FROM series")}
        for device_id, metric in metrics.items():
            sid = series[(device_id, metric)]
            before = conn.execute("SELECT value FROM readings WHERE series_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
                                  (sid, start_ms)).fetchone()
            previous = before[0] if before else None
            total = 0.0
            for (value,) in conn.execute("SELECT value FROM readings WHERE series_id = ? AND ts >= ? AND ts < ? "
                                         "ORDER BY ts", (sid, start_ms, end_ms)):
                if previous is not None:
                    total += value if value < previous else value - previous
                previous = value
            out[device_id] = total
    return out, time.perf_counter() - t0


def raw_aggregates(db: Path, metrics: dict[str, str], start_ms: int, end_ms: int) -> tuple[int, float]:
    """Reference, the cheapest look at the raw rows: count(*), min and max per meter in SQL;
    the rows counted and the seconds taken."""
    t0 = time.perf_counter()
    rows = 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        series = {(d, m): i for i, d, m in conn.execute("SELECT id, device_id, metric FROM series")}
        for device_id, metric in metrics.items():
            n, _, _ = conn.execute("SELECT count(*), min(value), max(value) FROM readings WHERE series_id = ? "
                                   "AND ts >= ? AND ts < ?", (series[(device_id, metric)], start_ms, end_ms)).fetchone()
            rows += n
    return rows, time.perf_counter() - t0


def pdf_pages(body: bytes) -> int:
    """Page objects in a PDF, in its compressed object streams too."""
    page = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
    n = len(page.findall(body))
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S):
        with suppress(zlib.error):  # not a Flate stream
            n += len(page.findall(zlib.decompress(stream[1])))
    return n


def profile(call: Callable[[], object], top: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(call)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    # Keep the tables, not pstats' preamble; paths relative to the repository.
    text = out.getvalue().replace(str(Path(__file__).resolve().parent.parent) + "/", "")
    return "\n".join(line for line in text.splitlines() if line.strip() and "Ordered by" not in line)


def med(values: list[float]) -> float:
    return statistics.median(values)


def met(seconds: float) -> str:
    return "met" if seconds <= TARGET_S else "not met"


# ------------------------------------------------------------------------------------ main


def main() -> None:  # noqa: PLR0915 - one straight run, printed as it goes
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--month", default="2026-10", help="the month reported (YYYY-MM)")
    parser.add_argument("--runs", type=int, default=5, help="warm runs of the whole report (median)")
    parser.add_argument("--rebuild", action="store_true", help="build the cached database again")
    parser.add_argument("--profile", action="store_true", help="profile a warm run even if the target is met")
    args = parser.parse_args()
    if args.devices < 2 or args.runs < 1:
        parser.error("--devices must be at least 2, --runs at least 1")
    try:
        month = Month.parse(args.month)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work skews absolute "
          f"figures; the ratios against the references less)")
    site = SiteConfig(**build_site(args.devices))
    cal = SchoolCalendar(site)
    line, n_meters = describe(site)
    print(f"site: {line}")
    CACHE.mkdir(exist_ok=True)
    db = CACHE / f"report-v{VERSION}-d{args.devices}-{month}.db"
    meta = db.with_suffix(".json")
    if args.rebuild or not db.exists() or not meta.exists():
        built = build(db, site, cal, month)
        cached = ""
    else:
        built = json.loads(meta.read_text(encoding="utf-8"))
        cached = f" (cached build of {built['built']}; --rebuild to build it again)"
    print(f"devices {len(site.devices)} (meters {n_meters}), readings {built['readings'] / 1e6:.1f} M, "
          f"build {built['wall_s']:.0f} s, {built['bytes'] / 1e6:.0f} MB{cached}")
    n, store_s, bare_s = built["readings"], built["store_s"], built["bare_s"]
    cpu = (f"; CPU {n / built['store_cpu_s'] / 1e3:.0f} k/s vs {n / built['bare_cpu_s'] / 1e3:.0f} k/s, "
           f"{built['store_cpu_s'] / built['bare_cpu_s']:.1f}×; load average at the end {built['load_average']:.1f}"
           ) if "store_cpu_s" in built else ""
    print(f"ingest: SqliteStore.write {n / store_s / 1e3:.0f} k readings/s incl. rollups ({store_s:.0f} s in write); "
          f"reference, the same batches into a bare table {n / bare_s / 1e3:.0f} k readings/s → rollups make "
          f"ingest {store_s / bare_s:.1f}× slower (wall time{cpu})")

    t0 = time.perf_counter()
    from gateway.reports.render import render  # as the API does: weasyprint loads at the first rendered report

    import_s = time.perf_counter() - t0
    start_ms, end_ms = bounds_ms(cal, month)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        state = StateDatabase(sqlite_url(Path(tmp) / "state.db"))
        alerts = AlertStore(state, site, AuditTrail(state, site.id), Roster(site, cal), SystemClock(), lambda _n: None)
        evict(db)
        store = SqliteStore(db)
        try:
            cold = whole_report(site, cal, store, alerts, month, render)
            warm = [whole_report(site, cal, store, alerts, month, render) for _ in range(args.runs)]
            r = warm[-1].report
            e, w = r.electricity, r.water
            print(f"report {r.month}: {len(r.meters)} meters, {r.school_days} school days; electricity "
                  f"{e.total or 0:,.0f} kWh (after hours {(e.after_hours_share or 0) * 100:.0f}%, "
                  f"¥{e.cost_yuan or 0:,.0f}), water {w.total or 0:,.0f} m³; waste {r.waste_kwh or 0:,.0f} kWh; "
                  f"html {len(warm[-1].html) / 1e3:,.0f} kB, pdf {len(warm[-1].pdf) / 1e3:,.0f} kB, "
                  f"{pdf_pages(warm[-1].pdf)} pages")
            data = med([x.data_s for x in warm])
            whole = med([x.whole_s for x in warm])
            print(f"report data: cold {cold.data_s:.2f} s, warm median {data:.2f} s; "
                  f"document {med([x.doc_s for x in warm]):.2f} s; html {med([x.html_s for x in warm]):.2f} s; "
                  f"pdf {med([x.pdf_s for x in warm]):.2f} s (cold {cold.pdf_s:.2f} s, +{import_s:.1f} s to import "
                  f"weasyprint once)")
            print(f"whole report (data + document + html + pdf): cold {cold.whole_s:.2f} s, warm median {whole:.2f} s "
                  f"over {args.runs} runs (min {min(x.whole_s for x in warm):.2f}, max "
                  f"{max(x.whole_s for x in warm):.2f}; CPU median {med([x.cpu_s for x in warm]):.2f} s); "
                  f"target ≤ {TARGET_S:g} s: {met(whole)} warm, {met(cold.whole_s)} cold; "
                  f"load average {os.getloadavg()[0]:.1f}")
            download = med([x.data_s + x.doc_s + x.pdf_s for x in warm])
            print(f"one PDF download as the API serves it (data + document + pdf): warm median {download:.2f} s; "
                  f"one HTML page (data + document + html): {med([x.data_s + x.doc_s + x.html_s for x in warm]):.2f} s")

            metrics = {d.id: METRICS[d.kind][0] for d in site.devices if d.kind in METRICS}
            evict(db)
            _, ref_cold = raw_totals(db, metrics, start_ms, end_ms)
            totals, ref_warm = raw_totals(db, metrics, start_ms, end_ms)
            rows, agg = raw_aggregates(db, metrics, start_ms, end_ms)
            print(f"reference: raw totals only (one query a meter, {rows / 1e6:.1f} M rows summed in Python): "
                  f"cold {ref_cold:.1f} s, warm {ref_warm:.1f} s → the whole report takes "
                  f"{cold.whole_s / ref_cold:.2f}× of it cold, {whole / ref_warm:.2f}× warm; "
                  f"its data alone {data / ref_warm:.3f}× warm")
            print(f"reference: SQL count/min/max per meter over the raw rows, warm {agg:.1f} s → "
                  f"the whole report takes {whole / agg:.2f}× of it, its data alone {data / agg:.3f}×")
            off = [(abs((m.total or 0.0) - totals[m.device_id]), m.device_id) for m in r.meters]
            worst, who = max(off)
            print(f"check: the report's meter totals against the raw readings: largest difference {worst:.4f} "
                  f"({who}; totals are rounded to 0.001)")

            if args.profile or whole > TARGET_S:
                missed = ", the target is missed" if whole > TARGET_S else ""
                print(f"profile of one warm whole report (cProfile{missed}; its overhead inflates the times):")
                print(profile(lambda: whole_report(site, cal, store, alerts, month, render), 20))
        finally:
            store.close()
            state.close()


if __name__ == "__main__":
    main()
