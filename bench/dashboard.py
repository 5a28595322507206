"""How long the dashboard's overview (`/#/overview`) takes to load in a browser for a large
site, and how fast a live reading reaches it.

Run: `.venv/bin/python -m bench.dashboard [--devices 500] [--days 8] [--runs 20] [--live 20] [--open-doors 10]`

1. A site of `--devices` devices, built from the demo kindergarten (its time zone, opening
   hours, tariffs and duty roster): 50 devices a building, each building with a plant room
   (its electricity and water main meters) and rooms in a fixed mix: a kitchen (sample
   fridge, meters, UV lamp, door), classrooms (meter, UV lamp, door), nap rooms, washrooms,
   offices. Reading is public (`auth.public_read`).
2. History of `--days` days before today and today so far, at a 5-minute step, written
   straight into the gateway's SQLite store (not through MQTT) before the gateway starts: the
   overview compares today with yesterday and with the same weekday last week. A 1-minute
   step would only make the index deeper; the overview's lookups are index seeks.
3. A real Mosquitto and `facility-gateway run` (its own process) on that data. Every device
   publishes one reading, then one every 60 s (its interval) while the benchmark runs, so
   all are online; `--open-doors` percent of the doors stay open (the overview lists each
   open door, with when it opened: two queries a door), whatever the time of day.
4. Headless Chromium (Debian's, through Playwright) loads `/#/overview` until its alert
   counters are in the DOM (rendered after the overview's API answer): `--runs` times in a
   fresh context (cold cache) and `--runs` reloads in one context (warm cache), split with the
   Navigation and Resource Timing APIs. Reference in the same run: `/health` (a small JSON)
   loaded by the same browser from the same server. The API alone is timed with httpx.
5. Live: with the overview open, `--live` new temperatures of one sample fridge are published
   over MQTT; a MutationObserver in the page notes when each shows in the DOM (Date.now(),
   the same clock as time.time() here). Reference: the broker's own round trip.

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from devices import kinds
from devices.base import MetricType, Sample
from gateway.rules.water import RUNNING_TAP
from gateway.storage.sqlite import SqliteStore
from simulators import DEMO_SITE
from tests.services import free_port, gateway_process, start_mosquitto

CHROMIUM: Final = "/usr/bin/chromium"
RENDERED: Final = ".severities a[data-severity]"  # the overview's alert counters, built from its API answer
STEP_S: Final = 300  # history step
INTERVAL_S: Final = 60  # every device's reporting interval
PER_BUILDING: Final = 50
PAGE_TIMEOUT_MS: Final = 30_000
LIVE_TIMEOUT_MS: Final = 5_000
TARGET_MS: Final = 1000.0
SEED: Final = 1

# Rooms of a building after its plant room, in order, then repeated: (type, name, kinds).
KITCHEN: Final = ("kitchen", "厨房", ("sample_fridge", "electricity_meter", "water_meter", "uv_lamp", "door"))
ROOMS: Final = (
    ("classroom", "教室", ("electricity_meter", "uv_lamp", "door")),
    ("classroom", "教室", ("electricity_meter", "uv_lamp", "door")),
    ("classroom", "教室", ("electricity_meter", "uv_lamp", "door")),
    ("nap_room", "午睡室", ("uv_lamp", "door")),
    ("other", "卫生间", ("water_meter",)),
    ("office", "办公室", ("electricity_meter", "door")),
)
# Electricity (W) and water (L/min) while open and while closed, by room type; assumptions.
POWER_W: Final = {"plant": (15_000, 3_000), "kitchen": (6_000, 800), "classroom": (2_000, 150),
                  "office": (1_200, 100), "nap_room": (800, 100)}
FLOW_LPM: Final = {"plant": (12.0, 0.3), "kitchen": (6.0, 0.0), "other": (3.0, 0.0)}


# ------------------------------------------------------------------------------- the site


@dataclass
class SimDevice:
    """One device's readings: counters carried from the history into the live readings."""

    id: str
    kind: str
    room_type: str
    rng: random.Random
    counter: float = 0.0
    last_s: float | None = None
    states: frozenset[str] = field(default_factory=frozenset)
    held_open: bool = False  # a door that stays open in the live readings

    def read(self, t_s: float, hour: float, open_day: bool) -> dict[str, float]:
        dt = STEP_S if self.last_s is None else t_s - self.last_s
        self.last_s = t_s
        open_now = open_day and 7.5 <= hour < 17.5
        rng = self.rng
        if self.kind == "electricity_meter":
            day, night = POWER_W.get(self.room_type, (500, 80))
            power = (day if open_now else night) * rng.uniform(0.9, 1.1)
            self.counter += power * dt / 3.6e6
            return {"energy_kwh": round(self.counter, 3), "power_w": round(power, 1)}
        if self.kind == "water_meter":
            day_f, night_f = FLOW_LPM.get(self.room_type, (3.0, 0.0))
            flow = (day_f if open_now else night_f) * rng.uniform(0.8, 1.2)
            self.counter += flow * dt / 60_000
            return {"volume_m3": round(self.counter, 4), "flow_lpm": round(flow, 2)}
        if self.kind == "uv_lamp":
            on = open_day and 12.0 <= hour < 12.75  # a session at nap time
            self.counter += dt / 3600 if on else 0.0
            return {"on": float(on), "power_w": 36.0 if on else 0.0, "lamp_hours": round(self.counter, 3)}
        if self.kind == "sample_fridge":
            temp = 4.0 + 1.2 * math.sin(2 * math.pi * t_s / 2400) + rng.gauss(0, 0.2)
            return {"temperature_c": round(temp, 1), "door_open": 0.0}
        # a door: open while people come and go
        return {"open": float(open_day and (7.5 <= hour < 8.5 or 16.0 <= hour < 17.0))}

    def payload(self, t_s: float, hour: float, open_day: bool) -> dict[str, object]:
        payload: dict[str, object] = {"ts": t_s}
        for k, v in self.read(t_s, hour, open_day).items():
            payload[k] = bool(v) if k in self.states else v
        if self.held_open:
            payload["open"] = True
        return payload


def build_site(devices: int, open_doors_pct: float) -> tuple[dict[str, Any], list[SimDevice]]:
    """The site's buildings and devices (a dict for the site file) and their simulations;
    `open_doors_pct` of the doors (spread over the site) stay open in the live readings."""
    demo = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    n_buildings = max(1, math.ceil(devices / PER_BUILDING))
    rng = random.Random(SEED)
    buildings: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    sims: list[SimDevice] = []
    labels = {k.name: k.label_zh for k in kinds().values()}
    states = {k.name: frozenset(m.key for m in k.metrics if m.type is MetricType.STATE) for k in kinds().values()}

    def add(kind: str, room: dict[str, Any], building: str) -> None:
        n = sum(1 for e in entries if e["room"] == room["id"] and e["kind"] == kind)
        device_id = f"{room['id']}-{kind.replace('_', '-')}" + (f"-{n + 1}" if n else "")
        entry: dict[str, Any] = {"id": device_id, "kind": kind, "room": room["id"],
                                 "name": f"{building}{room['name']}{labels[kind]}", "interval_s": INTERVAL_S}
        if kind == "sample_fridge":
            entry["settings"] = {"min_c": 0, "max_c": 8, "alarm_delay_min": 15}
        if kind == "water_meter" and room["type"] == "plant":
            entry["rules"] = {RUNNING_TAP.id: {"enabled": False}}
        entries.append(entry)
        base = rng.uniform(10_000, 50_000) if kind == "electricity_meter" else (
            rng.uniform(1_000, 5_000) if kind == "water_meter" else rng.uniform(10, 900))
        sims.append(SimDevice(device_id, kind, room["type"], random.Random(f"{SEED}:{device_id}"), base,
                              states=states[kind]))

    for b in range(n_buildings):
        quota = devices // n_buildings + (1 if b < devices % n_buildings else 0)
        name = f"{b + 1}号楼"
        plant = {"id": f"b{b + 1:02d}-plant", "name": f"{name}配电间", "type": "plant"}
        rooms = [plant]
        mains = ("electricity_meter", "water_meter")[:quota]
        for kind in mains:
            add(kind, plant, name)
        left = quota - len(mains)
        counts: dict[str, int] = {}
        i = 0
        while left > 0:
            room_type, room_name, room_kinds = KITCHEN if i == 0 else ROOMS[(i - 1) % len(ROOMS)]
            i += 1
            counts[room_type] = counts.get(room_type, 0) + 1
            room = {"id": f"b{b + 1:02d}-{room_type.replace('_', '-')}-{counts[room_type]}",
                    "name": f"{room_name}{counts[room_type]}", "type": room_type}
            rooms.append(room)
            for kind in room_kinds[:left]:
                add(kind, room, name)
            left -= min(left, len(room_kinds))
        buildings.append({"id": f"b{b + 1:02d}", "name": name, "rooms": rooms})
    doors = [sim for sim in sims if sim.kind == "door"]
    for i, sim in enumerate(doors):
        sim.held_open = math.floor((i + 1) * open_doors_pct / 100) > math.floor(i * open_doors_pct / 100)
    site = {k: demo[k] for k in ("timezone", "opening_hours", "tariffs", "duty") if k in demo}
    return site | {"id": demo["id"], "name": f"{demo['name']}（{devices} 台设备）", "buildings": buildings,
                   "devices": entries}, sims


def site_file(directory: Path, site: dict[str, Any], mqtt_port: int, api_port: int) -> Path:
    full = site | {
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "client_id": "bench-gateway"},
        "storage": {"data_dir": str(directory / "data")},
        "api": {"port": api_port},
        "auth": {"public_read": True},
    }
    path = directory / "site.yaml"
    path.write_text(yaml.safe_dump(full, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class LocalTime:
    """Hour of day and whether the site is open that day (Monday to Friday), in its zone."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def __call__(self, t_s: float) -> tuple[float, bool]:
        local = datetime.fromtimestamp(t_s, self.tz)
        return local.hour + local.minute / 60, local.weekday() < 5


def write_history(db: Path, sims: list[SimDevice], days: int, local: LocalTime) -> tuple[int, float]:
    """`days` days before today and today so far, every STEP_S; rows written, seconds taken."""
    started = time.perf_counter()
    now = time.time()
    midnight = datetime.fromtimestamp(now, local.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    first = (midnight - timedelta(days=days)).timestamp()
    times = [float(t) for t in range(int(first), int(now), STEP_S)]
    clock = [local(t) for t in times]
    store = SqliteStore(db)
    rows = 0
    try:
        for sim in sims:
            samples = [Sample(sim.id, int(t * 1000), sim.read(t, hour, open_day))
                       for t, (hour, open_day) in zip(times, clock, strict=True)]
            rows += store.write(samples, [])
    finally:
        store.close()
    return rows, time.perf_counter() - started


# ------------------------------------------------------------------------------- live data


class Publisher:
    """Every device's reading once now, then once every INTERVAL_S, spread evenly over the
    interval; devices in `paused` are left out."""

    def __init__(self, client: mqtt.Client, site_id: str, sims: list[SimDevice], local: LocalTime) -> None:
        self._client, self._site, self._sims, self._local = client, site_id, sims, local
        self.paused: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def publish(self, sim: SimDevice, payload: dict[str, object]) -> mqtt.MQTTMessageInfo:
        return self._client.publish(f"facility/{self._site}/{sim.id}/telemetry", encode(payload), qos=1)

    def once(self) -> None:
        for sim in self._sims:
            now = time.time()
            self.publish(sim, sim.payload(now, *self._local(now))).wait_for_publish(10)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        gap = INTERVAL_S / len(self._sims)
        while not self._stop.is_set():
            for sim in self._sims:
                if self._stop.wait(gap):
                    return
                if sim.id not in self.paused:
                    now = time.time()
                    self.publish(sim, sim.payload(now, *self._local(now)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def encode(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@contextmanager
def mqtt_connection(port: int, client_id: str) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {timeout_s:g} s")
        time.sleep(0.2)


# ---------------------------------------------------------------------------- measurements


def stats(ms: list[float]) -> tuple[float, float, float]:
    """Median, p90 and max."""
    if len(ms) < 2:
        return ms[0], ms[0], ms[0]
    return statistics.median(ms), statistics.quantiles(ms, n=10, method="inclusive")[8], max(ms)


def fmt(ms: list[float]) -> str:
    median, p90, top = stats(ms)
    return f"median {median:.0f} ms, p90 {p90:.0f} ms, max {top:.0f} ms"


def met(value: float) -> str:
    return "met" if value <= TARGET_MS else "not met"


# Notes when the overview's alert counters enter the DOM (performance.now(), from navigation start).
MARK_RENDERED: Final = """(() => {
  const observer = new MutationObserver(() => {
    if (document.querySelector(SELECTOR)) {
      window.__rendered = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, { childList: true, subtree: true });
})();""".replace("SELECTOR", json.dumps(RENDERED))

TIMINGS: Final = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const span = (part) => {
    const e = res.find((r) => new URL(r.name).pathname === part);
    return e ? [e.startTime, e.responseEnd] : null;
  };
  const scripts = res.filter((r) => r.name.endsWith(".js"));
  return {
    origin: performance.timeOrigin, html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd,
    scripts: Math.max(0, ...scripts.map((r) => r.responseEnd)),
    scriptsCached: scripts.filter((r) => r.transferSize === 0).length, scriptsTotal: scripts.length,
    site: span("/api/v1/site"), devices: span("/api/v1/devices"), overview: span("/api/v1/dashboard/overview"),
    rendered: window.__rendered ?? null,
  };
}"""


@dataclass
class Loads:
    wall_ms: list[float] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)

    def add(self, started_s: float, wall_ms: float, page: Page) -> None:
        """A load that began (time.time()) at `started_s` and took `wall_ms`."""
        self.wall_ms.append(wall_ms)
        timings: dict[str, Any] = page.evaluate(TIMINGS)
        timings["before"] = timings["origin"] - started_s * 1000  # asking → navigation start
        self.timings.append(timings)

    def median(self, pick: Callable[[dict[str, Any]], float | None]) -> float:
        values = [v for t in self.timings if (v := pick(t)) is not None]
        return statistics.median(values) if values else math.nan

    def timeline(self) -> str:
        def span(key: str) -> str:
            return f"{self.median(lambda t: t[key][0] if t[key] else None):.0f}–" \
                   f"{self.median(lambda t: t[key][1] if t[key] else None):.0f}"

        return (f"navigation starts {self.median(lambda t: t['before']):.0f} after asking; "
                f"then HTML {self.median(lambda t: t['html']):.0f}, "
                f"scripts loaded {self.median(lambda t: t['scripts']):.0f}, "
                f"DOMContentLoaded {self.median(lambda t: t['dcl']):.0f}, /api/v1/site {span('site')}, "
                f"/api/v1/devices {span('devices')}, overview API {span('overview')}, "
                f"rendered {self.median(lambda t: t['rendered']):.0f}")

    def cached(self) -> str:
        cached = sum(t["scriptsCached"] for t in self.timings)
        total = sum(t["scriptsTotal"] for t in self.timings)
        return f"{cached}/{total}"


def load(page: Page, url: str, reload: bool = False) -> tuple[float, float]:
    """When (time.time()) the overview was asked for, and the milliseconds from then to its
    alert counters in the DOM."""
    started = time.time()
    start = time.perf_counter()
    if reload:
        page.reload(wait_until="commit", timeout=PAGE_TIMEOUT_MS)
    else:
        page.goto(url, wait_until="commit", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector(RENDERED, state="attached", timeout=PAGE_TIMEOUT_MS)
    return started, (time.perf_counter() - start) * 1000


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context()
    context.add_init_script(MARK_RENDERED)
    return context


def page_loads(browser: Browser, base: str, runs: int) -> tuple[Loads, Loads, list[float]]:
    cold, warm, reference = Loads(), Loads(), []
    url = f"{base}/#/overview"
    for run in range(runs + 1):  # the first of each is not counted: the browser's own first start
        context = new_context(browser)
        try:
            page = context.new_page()
            started, ms = load(page, url)
            if run:
                cold.add(started, ms, page)
        finally:
            context.close()
        context = new_context(browser)
        try:
            page = context.new_page()
            start = time.perf_counter()
            page.goto(f"{base}/health", wait_until="load", timeout=PAGE_TIMEOUT_MS)
            if run:
                reference.append((time.perf_counter() - start) * 1000)
        finally:
            context.close()
    context = new_context(browser)
    try:
        page = context.new_page()
        load(page, url)  # fills the cache
        for _ in range(runs):
            warm.add(*load(page, url, reload=True), page)
    finally:
        context.close()
    return cold, warm, reference


def api_calls(api: httpx.Client, path: str, runs: int) -> tuple[list[float], int]:
    for _ in range(2):
        api.get(path).raise_for_status()
    ms, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = api.get(path)
        ms.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return ms, size


WATCH_LIVE: Final = """(key) => {
  window.__seen = {};
  const check = () => {
    const el = document.querySelector(`[data-live="${key}"]`);
    const v = el?.dataset.value;
    if (v !== undefined && !(v in window.__seen)) window.__seen[v] = Date.now();
  };
  new MutationObserver(check).observe(document.getElementById("view"),
    { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["data-value"] });
}"""


def live_latency(browser: Browser, base: str, publisher: Publisher, fridge: SimDevice,
                 runs: int) -> tuple[list[float], int]:
    """Milliseconds from publishing a fridge's temperature to its value in the overview's
    DOM, and how many never showed within LIVE_TIMEOUT_MS."""
    context = new_context(browser)
    latencies: list[float] = []
    missed = 0
    publisher.paused.add(fridge.id)
    try:
        page = context.new_page()
        load(page, f"{base}/#/overview")
        page.wait_for_selector('#live[data-state="connected"]', state="attached", timeout=PAGE_TIMEOUT_MS)
        page.evaluate(WATCH_LIVE, f"{fridge.id}:temperature_c")
        for i in range(runs):
            value = round(2.0005 + 0.001 * i, 4)  # distinct, in range, never an integer (JS writes 5.0 as "5")
            sent = time.time()
            publisher.publish(fridge, {"ts": sent, "temperature_c": value, "door_open": False})
            try:
                page.wait_for_function("(k) => window.__seen[k] !== undefined", arg=repr(value),
                                       timeout=LIVE_TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError: counted, not fatal
                missed += 1
                continue
            latencies.append(page.evaluate("(k) => window.__seen[k]", repr(value)) - sent * 1000)
            time.sleep(0.25)
    finally:
        publisher.paused.discard(fridge.id)
        context.close()
    return latencies, missed


def broker_round_trip(port: int, runs: int) -> list[float]:
    echoes: queue.Queue[float] = queue.Queue()
    with mqtt_connection(port, "bench-echo") as client:
        client.on_message = lambda c, u, m: echoes.put(time.time())
        client.subscribe("bench/echo", qos=1)
        time.sleep(0.5)
        out = []
        for _ in range(runs):
            sent = time.time()
            client.publish("bench/echo", b"x", qos=1)
            out.append((echoes.get(timeout=10) - sent) * 1000)
    return out


# ------------------------------------------------------------------------------------ main


def describe(site: dict[str, Any]) -> str:
    mix: dict[str, int] = {}
    for d in site["devices"]:
        mix[d["kind"]] = mix.get(d["kind"], 0) + 1
    rooms = sum(len(b["rooms"]) for b in site["buildings"])
    return (f"{len(site['devices'])} devices in {len(site['buildings'])} buildings, {rooms} rooms: "
            + ", ".join(f"{n} {k}" for k, n in sorted(mix.items())))


def main() -> None:  # noqa: PLR0915 - one straight run, printed as it goes
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--days", type=int, default=8, help="days of history before today (≥ 8 for last week)")
    parser.add_argument("--runs", type=int, default=20, help="page loads of each kind, and API calls")
    parser.add_argument("--live", type=int, default=20, help="live readings timed")
    parser.add_argument("--open-doors", type=float, default=10, metavar="PCT",
                        help="percentage of doors that stay open (each one an overview entry and two queries)")
    args = parser.parse_args()
    if args.devices < 3 or args.runs < 1 or args.live < 1 or args.days < 1:
        parser.error("--devices must be at least 3, --runs, --live and --days at least 1")
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C: the services stop, the temp dir goes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    began = time.perf_counter()
    site, sims = build_site(args.devices, args.open_doors)
    local = LocalTime(ZoneInfo(site["timezone"]))
    fridge = next(s for s in sims if s.kind == "sample_fridge")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work skews absolute "
          f"figures; the ratios against the references less)")
    print(f"site: {describe(site)}")
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dashboard-")))
        rows, took = write_history(directory / "data" / "readings.db", sims, args.days, local)
        size = (directory / "data" / "readings.db").stat().st_size
        print(f"history: {args.days} days before today and today so far at a {STEP_S // 60}-minute step "
              f"(1-minute data would only deepen the index; the overview's lookups are index seeks): "
              f"{rows:,} readings written straight to SQLite in {took:.1f} s ({size / 1e6:.0f} MB)")

        (directory / "mosquitto").mkdir()
        broker = start_mosquitto(directory / "mosquitto")
        stack.callback(broker.stop)
        api_port = free_port()
        config = site_file(directory, site, broker.port, api_port)
        start = time.perf_counter()
        api = stack.enter_context(gateway_process(config, api_port, directory / "gateway.log"))
        api.timeout = httpx.Timeout(30)
        print(f"gateway up in {time.perf_counter() - start:.1f} s on :{api_port}, Mosquitto on :{broker.port}")

        client = stack.enter_context(mqtt_connection(broker.port, "bench-devices"))
        publisher = Publisher(client, site["id"], sims, local)
        publisher.once()
        stack.callback(publisher.stop)
        publisher.start()
        held = sum(sim.held_open for sim in sims)
        wait_until(lambda: not (o := api.get("/api/v1/dashboard/overview").json())["offline"]
                   and len(o["doors_open"]) >= held, "all devices online")
        o = api.get("/api/v1/dashboard/overview").json()
        print(f"  all {len(sims)} devices online; each publishes every {INTERVAL_S} s "
              f"({len(sims) / INTERVAL_S:.1f} msg/s) while the benchmark runs")
        e, w = o["electricity"], o["water"]
        print(f"  overview: {o['day']['date']} ({'school day' if o['day']['school_day'] else 'closed'}), "
              f"electricity today {e['today']} kWh / yesterday {e['yesterday']} / last week {e['last_week']}, "
              f"water {w['today']} / {w['yesterday']} / {w['last_week']} m³; {len(o['doors_open'])} doors open, "
              f"{len(o['lamps'])} lamps, {len(o['fridges'])} fridges, open alerts {o['open_alerts']}")

        overview_ms, overview_size = api_calls(api, "/api/v1/dashboard/overview", args.runs)
        devices_ms, devices_size = api_calls(api, "/api/v1/devices", args.runs)
        site_ms, site_size = api_calls(api, "/api/v1/site", args.runs)
        health_ms, _ = api_calls(api, "/health", args.runs)
        print(f"API alone (httpx, {args.runs} calls each):")
        print(f"  GET /api/v1/dashboard/overview: {fmt(overview_ms)}; {overview_size:,} bytes")
        print(f"  also fetched by the page: /api/v1/devices {fmt(devices_ms)}, {devices_size:,} bytes; "
              f"/api/v1/site {fmt(site_ms)}, {site_size:,} bytes")
        print(f"  reference GET /health: {fmt(health_ms)}; ratio overview/health "
              f"{statistics.median(overview_ms) / statistics.median(health_ms):.1f}")

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                base = f"http://127.0.0.1:{api_port}"
                cold, warm, reference = page_loads(browser, base, args.runs)
                print(f"page load, {base}/#/overview until its alert counters are in the DOM "
                      f"(headless Chromium {browser.version}):")
                print(f"  cold cache ({args.runs} fresh contexts, after one not counted): {fmt(cold.wall_ms)}")
                print(f"  warm cache ({args.runs} reloads, scripts from cache {warm.cached()}): {fmt(warm.wall_ms)}")
                print(f"  reference, /health (JSON) in a fresh context: {fmt(reference)}")
                ref = statistics.median(reference)
                print(f"  ratio overview/reference: cold {statistics.median(cold.wall_ms) / ref:.1f}, "
                      f"warm {statistics.median(warm.wall_ms) / ref:.1f}")
                print(f"  cold, medians in ms from navigation start: {cold.timeline()}")
                print(f"  warm, medians in ms from navigation start: {warm.timeline()}")
                median, p90, _ = stats(cold.wall_ms)
                print(f"target ≤ 1000 ms (cold cache): median {median:.0f} ms {met(median)}, "
                      f"p90 {p90:.0f} ms {met(p90)}")

                echo = broker_round_trip(broker.port, args.live)
                latencies, missed = live_latency(browser, base, publisher, fridge, args.live)
            finally:
                browser.close()
        print(f"live, publish → {fridge.id} temperature in the overview's DOM ({args.live} readings, "
              f"{len(sims) / INTERVAL_S:.1f} msg/s background):")
        if latencies:
            median, p90, top = stats(latencies)
            print(f"  p50 {median:.0f} ms, p90 {p90:.0f} ms, max {top:.0f} ms; not shown within "
                  f"{LIVE_TIMEOUT_MS} ms: {missed}")
            print(f"  reference, broker round trip (publish → subscriber): {fmt(echo)}")
            print(f"target ≤ 1000 ms (live): p90 {met(p90)}, max {met(top)}")
        else:
            print(f"  none shown within {LIVE_TIMEOUT_MS} ms")
        with closing(sqlite3.connect(directory / "data" / "readings.db")) as conn:
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        print(f"readings in SQLite at the end: {stored:,}")
    print(f"total wall time {time.perf_counter() - began:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
