"""How long `/health` takes to answer while many clients read 30 days of raw readings at once.

Run: `.venv/bin/python -m bench.health_under_load [--readers 200] [--meters 4] [--days 30] [--probes 10]`

1. A site of `--meters` electricity meters, each with a reading a minute (energy_kwh and
   power_w) for the last `--days` days, written straight into the gateway's SQLite store
   before it starts. Reading is public (`auth.public_read`), as in the demo: anonymous
   readers can do all of this.
2. A real Mosquitto and `facility-gateway run` (its own process) on that data.
3. Reference: `--probes` GET /health, one every 0.5 s, with nothing else going on.
4. Load: `--readers` clients, in a process of their own, each reading one meter's raw
   readings over the last `--days` days (no step) again and again, as soon as the previous
   answer is in; after a 429 or 503, once its Retry-After has passed, as an HTTP client
   should. Meanwhile the same probes of /health (each waits for its answer, at most
   PROBE_TIMEOUT_S). Then the readers stop.

Prints the probes' latencies without and under load (median, max), the readers' answers by
status with their latencies, and the gateway's memory (RSS before the load, peak after).
Figures only; nothing here asserts a speed.

A reader's `ReadError` is a kept-alive connection that the server closed (uvicorn's 5 s
keep-alive timeout) just as the reader sent on it: a busy event loop widens that window.
Browsers send such an idempotent request again; these readers count it and go on.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Final

import httpx
import yaml

from devices.base import Sample
from gateway.storage.sqlite import SqliteStore
from tests.services import GatewayProcess, free_port, start_mosquitto

STEP_S: Final = 60
BATCH: Final = 5_000  # readings a write, as `spool.sink_batch`
PROBE_EVERY_S: Final = 0.5
PROBE_TIMEOUT_S: Final = 60.0
READ_TIMEOUT_S: Final = 300.0
MAX_RETRY_AFTER_S: Final = 10.0
RAMP_S: Final = 2.0  # the readers' head start before the first probe under load


def site_file(directory: Path, meters: int, mqtt_port: int, api_port: int) -> Path:
    site = {
        "id": "bench", "name": "压力测试幼儿园", "timezone": "Asia/Shanghai",
        "buildings": [{"id": "main", "name": "教学楼", "rooms": [{"id": "plant", "name": "配电间", "type": "plant"}]}],
        "devices": [{"id": f"em-{i}", "kind": "electricity_meter", "room": "plant", "name": f"电表{i}"}
                    for i in range(meters)],
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "client_id": "bench-gateway"},
        "storage": {"data_dir": str(directory / "data")},
        "api": {"port": api_port},
        "auth": {"public_read": True},
    }
    path = directory / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_history(db: Path, meters: int, days: int) -> tuple[int, float]:
    """A reading a minute of each meter for `days` days up to now; rows written, seconds taken."""
    started = time.perf_counter()
    now_s = int(time.time()) // STEP_S * STEP_S
    times = range(now_s - days * 86_400, now_s, STEP_S)
    store = SqliteStore(db)
    rows = 0
    try:
        for i in range(meters):
            energy = 10_000.0 * (i + 1)
            samples = []
            for t in times:
                power = 2_000.0 + 500.0 * ((t // 3600 + i) % 7)
                energy += power * STEP_S / 3.6e6
                samples.append(Sample(f"em-{i}", t * 1000, {"energy_kwh": round(energy, 3), "power_w": power}))
            for k in range(0, len(samples), BATCH):
                rows += store.write(samples[k:k + BATCH], [])
    finally:
        store.close()
    return rows, time.perf_counter() - started


def rss_mb(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def probe(api: httpx.Client, probes: int) -> list[float]:
    """Milliseconds each /health took, one probe every PROBE_EVERY_S (or as soon as the last
    one answered, if it took longer); a probe that got no answer counts as PROBE_TIMEOUT_S."""
    out = []
    for _ in range(probes):
        start = time.perf_counter()
        try:
            api.get("/health", timeout=PROBE_TIMEOUT_S).raise_for_status()
            took = time.perf_counter() - start
        except httpx.TimeoutException:
            took = PROBE_TIMEOUT_S
        out.append(took * 1000)
        time.sleep(max(0.0, PROBE_EVERY_S - took))
    return out


def fmt(ms: list[float]) -> str:
    return f"median {statistics.median(ms):,.0f} ms, max {max(ms):,.0f} ms"


# ---------------------------------------------------------------------------- the readers


# What a reader got: an HTTP status, or the name of the error that got it none.
Outcome = int | str


async def _read(client: httpx.AsyncClient, path: str, start: str, stop: EventType,
                answers: list[tuple[Outcome, float]]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        retry_after = 0.0
        outcome: Outcome
        try:
            response = await client.get(path, params={"start": start})
            outcome = response.status_code
            if outcome in (429, 503):
                retry_after = min(float(response.headers.get("Retry-After", "1")), MAX_RETRY_AFTER_S)
        except httpx.TransportError as exc:
            outcome = type(exc).__name__
        answers.append((outcome, (time.perf_counter() - began) * 1000))
        await asyncio.sleep(retry_after)


async def _readers(base: str, readers: int, meters: int, days: int, stop: EventType) -> list[tuple[Outcome, float]]:
    start = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    answers: list[tuple[Outcome, float]] = []
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    # Each reader stops after its answer once `stop` is set.
    async with (httpx.AsyncClient(base_url=base, timeout=READ_TIMEOUT_S, limits=limits) as client,
                asyncio.TaskGroup() as group):
        for i in range(readers):
            group.create_task(_read(client, f"/api/v1/devices/em-{i % meters}/readings", start, stop, answers))
    return answers


def reader_process(base: str, readers: int, meters: int, days: int, stop: EventType,
                   out: SimpleQueue[list[tuple[Outcome, float]]]) -> None:
    """The load, in a process of its own so that it does not share a GIL with the probes."""
    out.put(asyncio.run(_readers(base, readers, meters, days, stop)))


# ------------------------------------------------------------------------------------ main


def main() -> None:  # noqa: PLR0915 - one straight run, printed as it goes
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--meters", type=int, default=4)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--probes", type=int, default=10)
    args = parser.parse_args()
    if min(args.readers, args.meters, args.days, args.probes) < 1:
        parser.error("--readers, --meters, --days and --probes must be at least 1")
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C: the services stop, the temp dir goes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    began = time.perf_counter()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work skews absolute "
          f"figures; the ratio to the unloaded probes less)")
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-health-")))
        rows, took = write_history(directory / "data" / "readings.db", args.meters, args.days)
        size = (directory / "data" / "readings.db").stat().st_size
        print(f"history: {args.meters} electricity meters, a reading a minute for {args.days} days: {rows:,} "
              f"readings written straight to SQLite in {took:.1f} s ({size / 1e6:.0f} MB)")
        (directory / "mosquitto").mkdir()
        broker = start_mosquitto(directory / "mosquitto")
        stack.callback(broker.stop)
        api_port = free_port()
        gateway = GatewayProcess(site_file(directory, args.meters, broker.port, api_port), api_port,
                                 directory / "gateway.log")
        gateway.start()
        stack.callback(gateway.stop)
        api = gateway.client
        base = f"http://127.0.0.1:{api_port}"

        sample = api.get("/api/v1/devices/em-0/readings", timeout=READ_TIMEOUT_S, params={
            "start": (datetime.now(UTC) - timedelta(days=args.days)).isoformat()})
        sample.raise_for_status()
        series = sample.json()
        print(f"one read, GET /api/v1/devices/em-0/readings?start=<{args.days} days ago>: {len(sample.content):,} "
              f"bytes, " + ", ".join(f"{s['metric']} {len(s['points']):,} points"
                                     f"{' (truncated)' if s['truncated'] else ''}" for s in series))

        idle = probe(api, args.probes)
        rss_before = rss_mb(gateway.pid, "VmRSS")
        print(f"/health, no load ({args.probes} probes): {fmt(idle)}; gateway RSS {rss_before:.0f} MB")

        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        results: SimpleQueue[list[tuple[Outcome, float]]] = context.SimpleQueue()
        readers = context.Process(target=reader_process, args=(base, args.readers, args.meters, args.days, stop,
                                                               results))
        readers.start()
        try:
            time.sleep(RAMP_S)
            loaded = probe(api, args.probes)
        finally:
            stop.set()
        answers = results.get()
        readers.join()
        peak = rss_mb(gateway.pid, "VmHWM")
        print(f"/health under {args.readers} concurrent {args.days}-day raw reads ({args.probes} probes): "
              f"{fmt(loaded)}; over 1 s: {sum(ms > 1000 for ms in loaded)}, over 10 s: "
              f"{sum(ms > 10_000 for ms in loaded)}")
        print(f"  ratio of medians, loaded / no load: {statistics.median(loaded) / statistics.median(idle):.1f}")
        outcomes = Counter(outcome for outcome, _ in answers)
        print("  the readers' answers: " + ", ".join(f"{n} × {outcome}" for outcome, n in outcomes.most_common()))
        for outcome, _ in outcomes.most_common():
            print(f"    {outcome}: {fmt([ms for o, ms in answers if o == outcome])}")
        print(f"  gateway RSS: {rss_before:.0f} MB before, peak {peak:.0f} MB")
        log = (directory / "gateway.log").read_text(encoding="utf-8", errors="replace").splitlines()
        problems = [line for line in log if "ERROR" in line or "WARNING" in line or "Traceback" in line]
        print(f"  gateway log: {len(problems)} warnings and errors" + "".join(f"\n    {p}" for p in problems[:10]))
    print(f"total wall time {time.perf_counter() - began:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
