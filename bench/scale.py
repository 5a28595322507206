"""What a large site costs the gateway: its start and its memory, idle and while streaming.

Run: `PYTHONPATH=$PWD .venv/bin/python -m bench.scale [--devices 10000] [--messages 30000] [--fresh 4]`

1. A site of `--devices` devices of the usual kinds across buildings (bench/dashboard.py's:
   50 devices a building; meters, UV lamps, sample fridges and doors in their rooms), on a
   real Mosquitto; reference in the same run: the same site with 10 devices, so that the
   difference is the cost of the devices.
2. `facility-gateway run` as a process of its own on an empty data folder: the time from
   spawning it to /health saying it is connected to the broker. The gateway's modules are
   compiled to bytecode first, as an installation has them (pip compiles what it installs);
   a checkout run with PYTHONDONTWRITEBYTECODE set, as on the development machine, would
   otherwise compile its ~300 modules again at every start (about 0.5 s of it). A checkout
   on PYTHONPATH (the code before a change, to compare with) is compiled too.
3. Its resident memory (VmRSS in /proc/<pid>/status) once idle, then while `--messages`
   readings (every device in turn, a few each) are published at QoS 1 and stored: the largest
   seen while streaming and the figure once all are stored (after a collection).
4. Stopped and started again on that data: the start with every device's newest readings in
   the store (the rules are primed with them).
5. Started `--fresh` more times, each on an empty data folder of its own: one start varies
   by a second on this machine, so the sites' start is compared by the median of these.

`BENCH_PROFILE=path` records the large site's gateway with py-spy (its RSS is then py-spy's).

Prints figures only; nothing here asserts a speed or a size.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import httpx

from bench.dashboard import LocalTime, SimDevice, build_site, encode, site_file
from tests.services import GatewayProcess, Mosquitto, accounting, free_port, mqtt_client, start_mosquitto

REFERENCE_DEVICES: Final = 10
SETTLE_S: Final = 3.0  # after /health says ok: the first watchdog rounds, the spool's first look
POLL_S: Final = 0.25  # /metrics and VmRSS
REJECTED: Final = "facility_messages_rejected_total"
READY_TIMEOUT_S: Final = 120.0
STORED_TIMEOUT_S: Final = 180.0
ROOT: Final = Path(__file__).resolve().parents[1]
PROFILE = os.environ.get("BENCH_PROFILE")  # a path: record the large site's gateway with py-spy (raw stacks)


@dataclass
class Figures:
    devices: int
    starts_s: list[float]  # on an empty data folder, then on the data of the previous runs
    fresh_s: list[float]  # more starts, each on an empty data folder of its own
    idle_mb: float
    streaming_peak_mb: float
    streamed_mb: float
    stream_s: float
    slowest_s: float  # the longest /metrics took to answer while streaming: the event loop held up
    stored: int
    rejected: int


def rss_mb(pid: int) -> float:
    """The process's resident memory now, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def started(gateway: GatewayProcess) -> float:
    """Spawns it; seconds until its /health says it is connected to the broker."""
    begin = time.perf_counter()
    gateway.spawn()
    gateway.wait_ready(READY_TIMEOUT_S)
    return time.perf_counter() - begin


def publish(broker: Mosquitto, site_id: str, sims: list[SimDevice], messages: int, tz: ZoneInfo) -> None:
    """`messages` readings, every device in turn, stamped one second apart per device and
    ending now (within the gateway's clock-skew allowance however many a device sends)."""
    local = LocalTime(tz)
    rounds = -(-messages // len(sims))
    end_s = time.time()
    with mqtt_client(broker, "bench-scale-publisher") as (client, _):
        sent = []
        for r in range(rounds):
            t_s = end_s - (rounds - r)
            hour, open_day = local(t_s)
            for sim in sims[:messages - r * len(sims)]:
                sent.append(client.publish(f"facility/{site_id}/{sim.id}/telemetry",
                                           encode(sim.payload(t_s, hour, open_day)), qos=1))
        for info in sent:
            info.wait_for_publish(60)


def measure(directory: Path, broker: Mosquitto, devices: int, messages: int, starts: int, fresh: int) -> Figures:
    site, sims = build_site(devices, 0)
    api_port = free_port()
    config = site_file(directory, site, broker.port, api_port)
    wrap = [str(Path(sys.executable).parent / "py-spy"), "record", "--threads", "--format", "raw",
            "-o", PROFILE, "--"] if PROFILE and devices != REFERENCE_DEVICES else []
    gateway = GatewayProcess(config, api_port, directory / "gateway.log", wrap)
    starts_s = [started(gateway)]
    try:
        time.sleep(SETTLE_S)
        idle = rss_mb(gateway.pid)
        begin = time.perf_counter()
        slowest = 0.0
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=str(gateway.client.base_url),
                                                         timeout=STORED_TIMEOUT_S) as api:
            published = pool.submit(publish, broker, site["id"], sims, messages, ZoneInfo(site["timezone"]))
            peak = idle
            while True:
                asked = time.perf_counter()
                m = accounting(api)
                slowest = max(slowest, time.perf_counter() - asked)
                if m.stored("sqlite") + m.total(REJECTED) >= messages:
                    break
                if published.done():
                    published.result()  # raises what stopped the publisher
                if time.perf_counter() - begin > STORED_TIMEOUT_S:
                    raise RuntimeError(f"not all stored after {STORED_TIMEOUT_S:g} s")
                peak = max(peak, rss_mb(gateway.pid))
                time.sleep(POLL_S)
            stream_s = time.perf_counter() - begin
            published.result()
        peak = max(peak, rss_mb(gateway.pid))
        time.sleep(SETTLE_S)
        streamed = rss_mb(gateway.pid)
        stored, rejected = int(m.stored("sqlite")), int(m.total(REJECTED))
    finally:
        gateway.stop()
    for _ in range(starts - 1):
        starts_s.append(started(gateway))
        gateway.stop()
    fresh_s = []
    for n in range(fresh):
        (empty := directory / f"fresh-{n}").mkdir()
        again = GatewayProcess(site_file(empty, site, broker.port, api_port), api_port, empty / "gateway.log")
        fresh_s.append(started(again))
        again.stop()
    return Figures(devices, starts_s, fresh_s, idle, peak, streamed, stream_s, slowest, stored, rejected)


def show(f: Figures) -> None:
    again = f", again on its data {', '.join(f'{s:.2f}' for s in f.starts_s[1:])} s" if f.starts_s[1:] else ""
    print(f"  {f.devices:>6,} devices: start {f.starts_s[0]:.2f} s{again}")
    if f.fresh_s:
        print(f"          on empty folders again {', '.join(f'{s:.2f}' for s in f.fresh_s)} s "
              f"(median of all {statistics.median(_empty(f)):.2f} s)")
    print(f"          RSS idle {f.idle_mb:.0f} MB, streaming peak {f.streaming_peak_mb:.0f} MB, "
          f"after {f.streamed_mb:.0f} MB; {f.stored:,} stored, {f.rejected:,} rejected in {f.stream_s:.1f} s")
    print(f"          /metrics answered within {f.slowest_s:.2f} s while streaming")


def _empty(f: Figures) -> list[float]:
    """Its starts on an empty data folder."""
    return [f.starts_s[0], *f.fresh_s]


def _checkouts() -> set[Path]:
    """This checkout and those on PYTHONPATH: the gateway runs the first of these that it
    finds there, so a comparison with another checkout (`PYTHONPATH=<it>`) compiles that one too."""
    return {ROOT, *(Path(p).resolve() for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                    if p and (Path(p) / "gateway").is_dir())}


def load_average() -> str:
    """The machine's load (1, 5 and 15 minutes): these figures are worth little on a busy one."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--starts", type=int, default=3, help="starts of each site: the first on an empty folder")
    parser.add_argument("--fresh", type=int, default=4, help="more starts of each site, each on an empty folder")
    args = parser.parse_args()
    for root in _checkouts():
        for package in ("gateway", "devices"):
            compileall.compile_dir(root / package, quiet=1)
    print(f"load average before: {load_average()}")
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for devices in (REFERENCE_DEVICES, args.devices):
            directory = Path(tmp) / str(devices)
            (directory / "mosquitto").mkdir(parents=True)
            broker = start_mosquitto(directory / "mosquitto")  # its own: the sites share their id
            try:
                figures.append(f := measure(directory, broker, devices, args.messages, args.starts, args.fresh))
            finally:
                broker.stop()
            show(f)
    ref, big = figures
    start_s = statistics.median(_empty(big)) - statistics.median(_empty(ref))
    print(f"cost of {big.devices - ref.devices:,} devices over the reference: start +{start_s:.2f} s "
          f"(medians on empty folders), "
          f"RSS idle +{big.idle_mb - ref.idle_mb:.0f} MB, "
          f"streaming peak +{big.streaming_peak_mb - ref.streaming_peak_mb:.0f} MB")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
