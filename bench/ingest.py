"""Sustained end-to-end ingest rate, next to what the broker itself delivers.

Run: `.venv/bin/python -m bench.ingest [--messages N] [--devices D]`

1. Starts a real Mosquitto and a real VictoriaMetrics (InfluxDB v2 write API) on free
   loopback ports.
2. Reference: N uniquely numbered telemetry messages are published at QoS 1 by one
   `mosquitto_pub -l` per device (C, so the publisher is not the bottleneck) while
   `mosquitto_sub -C N` receives them: the broker's own delivery rate on this machine.
3. The gateway (`facility-gateway run`, a separate process) subscribes instead, with the
   SQLite store and the InfluxDB sink on; the same messages are published and the clock
   stops when /metrics shows all N stored in both sinks.
4. Nothing lost: the SQLite rows and the points read back from VictoriaMetrics are counted.
5. The CPU each process used per message in both runs (this bench's processes only): what a
   rate would need of this machine's cores, whoever is the bottleneck.

Prints both rates and their ratio. Figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import psutil
import yaml

from tests.services import (
    Mosquitto,
    VictoriaMetrics,
    accounting,
    free_port,
    gateway_process,
    require_binary,
    start_mosquitto,
    start_victoria_metrics,
)

SITE = "bench"
T0 = 1_795_219_200  # 2026-11-21T00:00:00Z: event times are one second apart per device
POLL_S = 0.1
TIMEOUT_S = 600.0
PROFILE = os.environ.get("BENCH_PROFILE")  # a path: record the gateway with py-spy (raw stacks)


def write_payloads(directory: Path, devices: int, messages: int) -> list[Path]:
    files = []
    per_device = messages // devices
    for d in range(devices):
        path = directory / f"m{d:03d}.jsonl"
        with path.open("w") as f:
            for i in range(per_device):
                f.write(json.dumps({"ts": T0 + i, "energy_kwh": 1000 + i * 0.01, "power_w": 1500.0 + d}) + "\n")
        files.append(path)
    return files


def publish(port: int, files: list[Path], site: str = SITE) -> None:
    pub = require_binary("mosquitto_pub", "mosquitto-clients")
    procs = []
    for path in files:
        device = path.stem
        with path.open("rb") as stdin:
            procs.append(subprocess.Popen(
                [pub, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l", "-i", f"pub-{site}-{device}",
                 "-t", f"facility/{site}/{device}/telemetry"],
                stdin=stdin,
            ))
    for p in procs:
        if p.wait(timeout=TIMEOUT_S) != 0:
            raise RuntimeError(f"mosquitto_pub exited with {p.returncode}")


class CpuUse:
    """CPU seconds (user and system) of this bench's processes from now on, by role: the broker,
    VictoriaMetrics, the gateway, the clients (publishers and subscriber, counted as they exit)
    and the bench itself."""

    def __init__(self) -> None:
        self._start = self._sample()
        self._wall = time.perf_counter()

    def _sample(self) -> defaultdict[str, float]:
        use: defaultdict[str, float] = defaultdict(float)
        for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
            try:
                name, times = process.name(), process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            use[_role(process.pid, name)] += times.user + times.system
        exited = resource.getrusage(resource.RUSAGE_CHILDREN)
        use["clients"] += exited.ru_utime + exited.ru_stime
        return use

    def per_message(self, messages: int) -> str:
        """µs of CPU per message by role, and the cores they kept busy."""
        now = self._sample()
        used = {role: now[role] - self._start[role] for role in now}
        wall = time.perf_counter() - self._wall
        parts = ", ".join(f"{role} {seconds / messages * 1e6:.0f}"
                          for role, seconds in sorted(used.items(), key=lambda u: -u[1]) if seconds > 0)
        return f"{parts}; in all {sum(used.values()) / messages * 1e6:.0f} µs, {sum(used.values()) / wall:.2f} cores"


def _role(pid: int, name: str) -> str:
    if pid == os.getpid():
        return "bench"
    if name == "mosquitto":
        return "broker"
    if name.startswith("victoria-metrics"):
        return "VictoriaMetrics"
    if name == "postgres":
        return "PostgreSQL"
    return "gateway" if name.startswith(("python", "facility")) else "clients"


def reference_rate(port: int, files: list[Path], total: int) -> float:
    sub = subprocess.Popen(
        [require_binary("mosquitto_sub", "mosquitto-clients"), "-h", "127.0.0.1", "-p", str(port),
         "-q", "1", "-C", str(total), "-i", "bench-reference", "-t", f"facility/{SITE}/+/telemetry"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it subscribe
    start = time.perf_counter()
    cpu = CpuUse()
    publish(port, files)
    sub.wait(timeout=TIMEOUT_S)
    rate = total / (time.perf_counter() - start)
    print(f"  CPU per message, reference (µs): {cpu.per_message(total)}")
    return rate


def site_file(directory: Path, devices: int, mqtt_port: int, vm_url: str, api_port: int) -> Path:
    site = {
        "id": SITE,
        "name": "基准测试 / benchmark",
        "buildings": [{"id": "b", "name": "楼", "rooms": [{"id": "r", "name": "房间"}]}],
        "devices": [{"id": f"m{d:03d}", "kind": "electricity_meter", "room": "r"} for d in range(devices)],
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "client_id": "bench-gateway"},
        "influxdb": {"url": vm_url, "token": "bench", "org": "bench", "bucket": "bench"},
        "storage": {"data_dir": str(directory / "data")},
        "api": {"port": api_port},
    }
    path = directory / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True))
    return path


def gateway_rate(directory: Path, files: list[Path], total: int, mqtt_port: int, vm_url: str) -> float:
    api_port = free_port()
    config = site_file(directory, len(files), mqtt_port, vm_url, api_port)
    wrap = [str(Path(sys.executable).parent / "py-spy"), "record", "--threads", "--format", "raw",
            "-o", PROFILE, "--"] if PROFILE else []
    with gateway_process(config, api_port, directory / "gateway.log", wrap) as api:
        rate = stored_rate(api, mqtt_port, files, total)
        text = api.get("/metrics").text
    rejected = sum(float(v) for v in re.findall(r"^facility_messages_rejected_total\{.*\} (\S+)$", text, re.M))
    print(f"  rejected {rejected:.0f}; {os.cpu_count()} cores")
    return rate


def stored_rate(api: httpx.Client, mqtt_port: int, files: list[Path], total: int) -> float:
    """Publishes `files` to a running gateway and waits until both sinks hold `total` more
    messages: the rate at which it stored them, and the CPU it took."""
    before = accounting(api)
    sqlite_goal, influx_goal = before.stored("sqlite") + total, before.stored("influxdb") + total
    start = time.perf_counter()
    cpu = CpuUse()
    publish(mqtt_port, files)
    published = time.perf_counter() - start
    while (m := accounting(api)).stored("sqlite") < sqlite_goal or m.stored("influxdb") < influx_goal:
        if time.perf_counter() - start > TIMEOUT_S:
            raise RuntimeError(f"not all stored after {TIMEOUT_S} s")
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - start
    print(f"  CPU per message, end to end (µs): {cpu.per_message(total)}; publishing took {published:.2f} s")
    return total / elapsed


def count_sqlite(directory: Path) -> int:
    with closing(sqlite3.connect(directory / "data" / "readings.db")) as conn:
        n: int = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        return n


@contextmanager
def services(prefix: str) -> Iterator[tuple[Path, Mosquitto, VictoriaMetrics]]:
    """A temporary directory with a Mosquitto and a VictoriaMetrics started in it."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        directory = Path(tmp)
        for sub in ("mosquitto", "vm"):
            (directory / sub).mkdir()
        broker = start_mosquitto(directory / "mosquitto")
        vm = start_victoria_metrics(directory / "vm")
        try:
            yield directory, broker, vm
        finally:
            vm.stop()
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args()
    total = args.messages - args.messages % args.devices
    with services("bench-ingest-") as (directory, broker, vm):
        files = write_payloads(directory, args.devices, total)
        print(f"{total} messages from {args.devices} devices, QoS 1, Mosquitto on :{broker.port}")
        ref = reference_rate(broker.port, files, total)
        print(f"  reference, Mosquitto → mosquitto_sub: {ref:,.0f} msg/s")
        e2e = gateway_rate(directory, files, total, broker.port, vm.url)
        rows = count_sqlite(directory)
        vm.flush()
        points = sum(len(s["values"]) for s in vm.export('{__name__="electricity_meter_energy_kwh"}'))
        print(f"  end to end, Mosquitto → gateway → SQLite + InfluxDB API: {e2e:,.0f} msg/s")
        print(f"  ratio end-to-end / reference: {e2e / ref:.2f}")
        print(f"  stored: SQLite {rows:,} rows (expected {2 * total:,}), "
              f"VictoriaMetrics {points:,} energy points (expected {total:,})")
        lost = 2 * total - rows + total - points
        print(f"  lost: {lost}")


if __name__ == "__main__":
    main()
