"""A district as deployed: `facility-gateway district` replicas sharing K schools on one
PostgreSQL. Ingest with one replica and with two, in the same run and with the same messages,
and the time a school takes to run again after the replica running it is killed.

Run: `.venv/bin/python -m bench.district [--messages N] [--schools K] [--devices D] [--lease-s L]`

1. Starts a real Mosquitto, VictoriaMetrics (the InfluxDB v2 write API) and PostgreSQL on
   free loopback ports, and writes N/K messages for each of a school's D meters' files.
2. One replica: one `facility-gateway district` process runs K schools; once it runs them all,
   the same message files are published to every school at once (QoS 1, `mosquitto_pub -l` per
   device) and the clock stops when its /metrics show all N stored in the readings store
   (PostgreSQL) and in VictoriaMetrics. Then every message is counted in both, none lost.
3. Two replicas: the same, with K other schools and two processes, once each runs its share.
4. Failover, on the two replicas: each school's first meter publishes a reading every 50 ms;
   the replica running a school is killed (SIGKILL). Printed: from the kill to the first reading
   of its schools stored by the other replica; the readings missing meanwhile (what the killed
   one had taken and not yet written, in its spool); and, once it is started again and has
   written its spool, the readings lost in PostgreSQL and in VictoriaMetrics.

Each phase is a district of its own (its schools, its schema of the state store); any wait is
bounded, and a message missing at the end fails the bench. Figures only; nothing here asserts a
speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml

from bench.ingest import T0, CpuUse, publish, write_payloads
from gateway import config
from gateway.storage.readings import open_readings
from gateway.storage.state import StateDatabase
from tests.services import (
    DistrictReplica,
    Mosquitto,
    Steady,
    VictoriaMetrics,
    accounting,
    free_port,
    start_mosquitto,
    start_postgres,
    start_victoria_metrics,
    wait_for,
)

# The readings store's sink is named `sqlite` in the metrics whichever engine it is on.
SINKS: Final = ("sqlite", "influxdb")
WITHIN_S: Final = 120.0  # the bound of any one wait: the bench stops by itself
EVERY_S: Final = 0.05  # failover: a reading from each school this often
METRIC: Final = "energy_kwh"  # one per message: what is counted


def school_files(folder: Path, schools: list[str], devices: int, broker: Mosquitto, vm: VictoriaMetrics) -> None:
    folder.mkdir()
    for school in schools:
        site: dict[str, Any] = {
            "id": school,
            "name": f"基准测试学校 {school}",
            "buildings": [{"id": "b", "name": "楼", "rooms": [{"id": "r", "name": "房间"}]}],
            "devices": [{"id": f"m{d:03d}", "kind": "electricity_meter", "room": "r"} for d in range(devices)],
            "mqtt": {"url": broker.url},
            "influxdb": {"url": vm.url, "token": "bench", "org": "bench", "bucket": "bench"},
        }
        (folder / f"{school}.yaml").write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")


class District:
    """K schools' site files, their own schema of the state store, and replicas that run them."""

    def __init__(self, directory: Path, name: str, schools: int, devices: int, state_url: str, broker: Mosquitto,
                 vm: VictoriaMetrics) -> None:
        self.name = name
        self.folder = directory / name
        self.schools = [f"{name}-{i}" for i in range(schools)]
        self.devices = [f"m{d:03d}" for d in range(devices)]
        self.state_url = state_url
        self.vm = vm
        school_files(self.folder, self.schools, devices, broker, vm)

    def replica(self, directory: Path, name: str, lease_s: float) -> DistrictReplica:
        return DistrictReplica(directory / f"data-{name}", free_port(), directory / f"{name}.log", sites=self.folder,
                               state_url=self.state_url, name=name, lease_s=lease_s)

    def shared(self, replicas: list[DistrictReplica]) -> bool:
        """Every school run, by one replica, and each replica runs its fair share."""
        owned = [r.owned() for r in replicas]
        sizes = [len(o) for o in owned]
        return Counter(s for o in owned for s in o) == Counter(self.schools) and max(sizes) - min(sizes) <= 1

    def counted(self, devices: list[str], first_s: int, seconds: int) -> tuple[dict[str, int], dict[str, int]]:
        """Each school's readings of `devices` stamped in [first_s, first_s + seconds), in the
        readings store (PostgreSQL) and in VictoriaMetrics."""
        start_ms, end_ms = first_s * 1000, (first_s + seconds) * 1000
        db = StateDatabase(self.state_url)
        try:
            stored = {}
            for school in self.schools:
                store = open_readings(config.load(self.folder / f"{school}.yaml"), db)  # as the replicas open it
                stored[school] = sum(len(store.points(d, METRIC, start_ms, end_ms, seconds + 1)) for d in devices)
        finally:
            db.close()
        exported = Counter[str]()
        for series in self.vm.export(f'electricity_meter_{METRIC}{{site=~"{self.name}-.*"}}'):
            if series["metric"]["device"] in devices:
                exported[series["metric"]["site"]] += sum(start_ms <= t < end_ms for t in series["timestamps"])
        return stored, {school: exported[school] for school in self.schools}


def stored(replicas: list[DistrictReplica], total: int) -> tuple[bool, float]:
    """Whether all `total` messages are stored in both sinks, by all the replicas together, and
    how many more than that were received. Nothing may still wait in a sink: a site stopped and
    run again (its lease not renewed in time under the burst) is sent again what it had not
    acknowledged, and those stored twice would make the count whole before the last is written."""
    counts = [accounting(r.client) for r in replicas]
    done = (min(sum(c.stored(sink) for c in counts) for sink in SINKS) >= total
            and sum(c.pending(sink) for c in counts for sink in SINKS) == 0)
    return done, sum(c.total("facility_messages_received_total") for c in counts) - total


def ingest(district: District, replicas: list[DistrictReplica], files: list[Path],
           broker: Mosquitto) -> tuple[float, str]:
    """Messages a second, from the first publish to the last message stored in both sinks, and
    the CPU each role used a message meanwhile; then every message is counted in PostgreSQL and
    VictoriaMetrics."""
    for r in replicas:
        r.spawn()
    for r in replicas:
        r.wait_ready(WITHIN_S)
    wait_for(lambda: district.shared(replicas), timeout=WITHIN_S)
    per_device = sum(1 for _ in files[0].open())
    total = per_device * len(files) * len(district.schools)
    start = time.perf_counter()
    cpu = CpuUse()
    publishers = [threading.Thread(target=publish, args=(broker.port, files, school)) for school in district.schools]
    for p in publishers:
        p.start()
    for p in publishers:
        p.join()
    wait_for(lambda: stored(replicas, total)[0], timeout=WITHIN_S)
    rate = total / (time.perf_counter() - start)
    used = cpu.per_message(total)
    again = stored(replicas, total)[1]
    if again:
        used += f"; {again:,.0f} messages received twice (a site run again: its lease ran out under the burst)"
    expected = dict.fromkeys(district.schools, per_device * len(files))
    in_store, in_vm = district.counted(district.devices, T0, per_device)
    if in_store != expected or in_vm != expected:
        raise SystemExit(f"messages lost: expected {expected}, PostgreSQL {in_store}, VictoriaMetrics {in_vm}")
    return rate, used


def readings(schools: list[str], first_s: int) -> Callable[[int], list[tuple[str, str]]]:
    """Each school's first meter: its n-th reading, stamped n seconds after `first_s`."""
    def nth(n: int) -> list[tuple[str, str]]:
        ts = first_s + n
        payload = json.dumps({"ts": ts, METRIC: 1000 + (ts - T0) * 0.01, "power_w": 1500.0})
        return [(f"facility/{school}/m000/telemetry", payload) for school in schools]
    return nth


def failover(district: District, replicas: list[DistrictReplica], broker: Mosquitto, first_s: int,
             lease_s: float) -> None:
    """Kills the replica running the most schools while readings keep coming; its schools' first
    readings stored by the other, and the readings lost once it is started again."""
    victim = max(replicas, key=lambda r: len(r.owned()))
    survivor = next(r for r in replicas if r is not victim)
    doomed = sorted(victim.owned())

    def taken_over() -> bool:
        m = accounting(survivor.client)
        return all(m.total("facility_messages_stored_total", sink="sqlite", site=s) > 0 for s in doomed)

    with Steady(broker, "bench-failover-publisher", readings(district.schools, first_s), EVERY_S) as publisher:
        wait_for(lambda: publisher.sent >= 1 / EVERY_S, timeout=30)  # a second of readings
        victim.kill()
        killed = time.perf_counter()
        wait_for(taken_over, timeout=lease_s * 4 + 30)
        took = time.perf_counter() - killed
        until = publisher.sent + 2 / EVERY_S
        wait_for(lambda: publisher.sent >= until, timeout=30)  # two seconds more under the new owner
    sent = publisher.sent
    wait_for(lambda: sum(accounting(survivor.client).pending(sink) for sink in SINKS) == 0, timeout=WITHIN_S)
    spooled, _ = district.counted(["m000"], first_s, sent)
    # Started again, it writes what its spool still holds, then takes its share back.
    victim.spawn()
    victim.wait_ready(WITHIN_S)
    expected = dict.fromkeys(district.schools, sent)
    with contextlib.suppress(AssertionError):  # the figures below say what is missing
        wait_for(lambda: district.counted(["m000"], first_s, sent) == (expected, expected), timeout=30)
    in_store, in_vm = district.counted(["m000"], first_s, sent)
    print(f"  failover, lease {lease_s:g} s: {', '.join(doomed)} run by the other replica, its first reading "
          f"stored {took:.2f} s after the replica running {'them' if len(doomed) > 1 else 'it'} was killed")
    print(f"  readings published {sent} a school; until the killed replica started again "
          f"{sum(expected.values()) - sum(spooled.values())} were in its spool; then lost: "
          f"PostgreSQL {sum(expected.values()) - sum(in_store.values())}, "
          f"VictoriaMetrics {sum(expected.values()) - sum(in_vm.values())}")
    if in_store != expected or in_vm != expected:
        raise SystemExit(f"readings lost: expected {expected}, PostgreSQL {in_store}, VictoriaMetrics {in_vm}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--schools", type=int, default=2)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--lease-s", type=float, default=5.0)
    args = parser.parse_args()
    per_device = args.messages // (args.schools * args.devices)
    total = per_device * args.schools * args.devices
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        postgres = start_postgres()
        stack.callback(postgres.stop)
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-district-")))
        for sub in ("mosquitto", "vm", "payloads"):
            (directory / sub).mkdir()
        broker = start_mosquitto(directory / "mosquitto")
        stack.callback(broker.stop)
        vm = start_victoria_metrics(directory / "vm")
        stack.callback(vm.stop)
        files = write_payloads(directory / "payloads", args.devices, per_device * args.devices)

        def replicas(district: District, names: list[str]) -> list[DistrictReplica]:
            out = [district.replica(directory, name, args.lease_s) for name in names]
            for r in out:  # each is stopped, whatever another's stop raises
                stack.callback(r.client.close)
                stack.callback(r.stop)
            return out

        print(f"{total:,} messages to {args.schools} schools of {args.devices} devices, QoS 1, readings in "
              f"PostgreSQL and VictoriaMetrics; {os.cpu_count()} cores for the replicas, the broker, the databases "
              f"and the publishers; load average {os.getloadavg()[0]:.1f} (other work skews the figures)")
        one_district = District(directory, "one", args.schools, args.devices, postgres.new_schema(), broker, vm)
        one_replica = replicas(one_district, ["r1"])
        one, used = ingest(one_district, one_replica, files, broker)
        print(f"  one replica, {args.schools} schools: {one:,.0f} msg/s, all stored in both")
        print(f"    CPU per message (µs): {used}")
        one_replica[0].stop()
        two_district = District(directory, "two", args.schools, args.devices, postgres.new_schema(), broker, vm)
        two_replicas = replicas(two_district, ["r2a", "r2b"])
        two, used = ingest(two_district, two_replicas, files, broker)
        print(f"  two replicas sharing them: {two:,.0f} msg/s ({two / one:.2f} × one), all stored in both")
        print(f"    CPU per message (µs): {used}")
        failover(two_district, two_replicas, broker, T0 + per_device, args.lease_s)
    print(f"total wall time {time.perf_counter() - began:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
