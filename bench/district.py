"""Several gateway replicas on one PostgreSQL state store: ingest with one replica and with
two, in the same run, and the time a standby takes to run a site after its owner is killed.

Run: `.venv/bin/python -m bench.district [--messages N] [--devices D] [--lease-s L]`

1. Starts a real Mosquitto, VictoriaMetrics (the InfluxDB v2 write API) and PostgreSQL on
   free loopback ports.
2. One replica: one `facility-gateway run` process for one school; N messages are published
   (QoS 1, `mosquitto_pub -l` per device) and the clock stops when /metrics shows them all
   stored in SQLite and InfluxDB.
3. Two replicas: two processes, each running a school of its own (a site is the unit of
   ownership); N/2 messages to each at once, until both have stored theirs.
4. Failover: two processes for one school, one running it and one standing by, lease L s. A
   reading is published every 50 ms; the owner is killed (SIGKILL). Printed: from the kill to
   the first reading stored by the standby, and every published reading counted in
   VictoriaMetrics, which both replicas write to (none lost).

Figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.ingest import POLL_S, T0, TIMEOUT_S, publish, write_payloads
from tests.services import (
    GatewayProcess,
    Postgres,
    accounting,
    free_port,
    mqtt_client,
    start_mosquitto,
    start_postgres,
    start_victoria_metrics,
)


def school(directory: Path, site: str, devices: int, mqtt_port: int, vm_url: str, state_url: str,
           replica: str, lease_s: float = 30) -> GatewayProcess:
    port = free_port()
    config: dict[str, Any] = {
        "id": site,
        "name": f"基准测试学校 {site}",
        "buildings": [{"id": "b", "name": "楼", "rooms": [{"id": "r", "name": "房间"}]}],
        "devices": [{"id": f"m{d:03d}", "kind": "electricity_meter", "room": "r"} for d in range(devices)],
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}"},
        "influxdb": {"url": vm_url, "token": "bench", "org": "bench", "bucket": "bench"},
        "storage": {"data_dir": str(directory / f"data-{site}-{replica}"), "state_url": state_url},
        "replica": {"id": replica, "lease_s": lease_s},
        "api": {"port": port},
    }
    path = directory / f"{site}-{replica}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return GatewayProcess(path, port, directory / f"{site}-{replica}.log")


def ingest(replicas: list[GatewayProcess], batches: list[list[Path]], sites: list[str], mqtt_port: int) -> float:
    """Messages a second, from the first publish to the last message stored by every replica."""
    for r in replicas:
        r.start()
    try:
        totals = [sum(sum(1 for _ in f.open()) for f in files) for files in batches]
        start = time.perf_counter()
        publishers = [threading.Thread(target=publish, args=(mqtt_port, files, site))
                      for files, site in zip(batches, sites, strict=True)]
        for p in publishers:
            p.start()
        for p in publishers:
            p.join()
        for r, total in zip(replicas, totals, strict=True):
            while (m := accounting(r.client)).stored("sqlite") < total or m.stored("influxdb") < total:
                if time.perf_counter() - start > TIMEOUT_S:
                    raise RuntimeError(f"not all stored after {TIMEOUT_S} s")
                time.sleep(POLL_S)
        return sum(totals) / (time.perf_counter() - start)
    finally:
        for r in replicas:
            r.stop()
            r.client.close()


def failover(directory: Path, mqtt_port: int, vm_url: str, state_url: str, lease_s: float,
             broker: Any, vm: Any) -> None:
    site = "failover"
    owner = school(directory, site, 1, mqtt_port, vm_url, state_url, "replica-a", lease_s)
    standby = school(directory, site, 1, mqtt_port, vm_url, state_url, "replica-b", lease_s)
    owner.start()
    standby.spawn()
    published = 0
    stop = threading.Event()

    def keep_publishing() -> None:
        nonlocal published
        with mqtt_client(broker, "bench-failover-publisher") as (client, _):
            while not stop.is_set():
                payload = json.dumps({"ts": T0 + published, "energy_kwh": 1000 + published * 0.01})
                client.publish(f"facility/{site}/m000/telemetry", payload, qos=1).wait_for_publish(5)
                published += 1
                time.sleep(0.05)

    publisher = threading.Thread(target=keep_publishing)
    try:
        while "stands by" not in standby.log_path.read_text(encoding="utf-8"):
            time.sleep(POLL_S)
        publisher.start()
        time.sleep(2)
        owner.kill()
        killed = time.perf_counter()
        standby.wait_ready(lease_s * 3 + 30)
        while accounting(standby.client).stored("sqlite") == 0:
            time.sleep(0.02)
        took = time.perf_counter() - killed
        time.sleep(2)
        stop.set()
        publisher.join()
        time.sleep(2)  # the last ones reach InfluxDB
        vm.flush()
        stamps = {v for s in vm.export('{__name__="electricity_meter_energy_kwh", site="failover"}')
                  for v in s["timestamps"]}
        print(f"  failover, lease {lease_s:g} s: the standby stored its first reading {took:.2f} s after the "
              f"owner was killed")
        print(f"  readings published {published}, in VictoriaMetrics {len(stamps)}, lost {published - len(stamps)}")
    finally:
        stop.set()
        if publisher.is_alive():
            publisher.join()
        standby.stop()
        for r in (owner, standby):
            r.client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--lease-s", type=float, default=5.0)
    args = parser.parse_args()
    total = args.messages - args.messages % (2 * args.devices)
    postgres: Postgres = start_postgres()
    with tempfile.TemporaryDirectory(prefix="bench-district-") as tmp:
        directory = Path(tmp)
        for sub in ("mosquitto", "vm", "one", "two-a", "two-b"):
            (directory / sub).mkdir()
        broker = start_mosquitto(directory / "mosquitto")
        vm = start_victoria_metrics(directory / "vm")
        state_url = postgres.new_schema()
        try:
            print(f"{total} messages from {args.devices} devices a school, QoS 1, state in PostgreSQL; "
                  f"{os.cpu_count()} cores for the replicas, the broker, the databases and the publishers")
            one = ingest([school(directory, "one", args.devices, broker.port, vm.url, state_url, "r1")],
                         [write_payloads(directory / "one", args.devices, total)], ["one"], broker.port)
            print(f"  one replica, one school: {one:,.0f} msg/s")
            two = ingest(
                [school(directory, site, args.devices, broker.port, vm.url, state_url, f"r-{site}")
                 for site in ("two-a", "two-b")],
                [write_payloads(directory / site, args.devices, total // 2) for site in ("two-a", "two-b")],
                ["two-a", "two-b"], broker.port)
            print(f"  two replicas, a school each: {two:,.0f} msg/s ({two / one:.2f} × one)")
            failover(directory, broker.port, vm.url, state_url, args.lease_s, broker, vm)
        finally:
            vm.stop()
            broker.stop()
            postgres.stop()


if __name__ == "__main__":
    main()
