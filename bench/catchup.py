"""How fast a sink that was down catches up from the spool, next to the live ingest rate.

Run: `.venv/bin/python -m bench.catchup [--messages N] [--devices D]`

1. Starts a real Mosquitto, a real VictoriaMetrics (InfluxDB v2 write API) and the gateway
   (`facility-gateway run`, its own process), then stops VictoriaMetrics: the InfluxDB sink
   is down.
2. Live: N messages are published at QoS 1 as fast as `mosquitto_pub` goes; the clock stops
   when all are in SQLite and in the spool. That is the gateway's *maximum* live rate, an
   upper bound on any school's live rate.
3. Catch-up: VictoriaMetrics starts again; the clock stops when the spool holds nothing for
   it any more (`facility_messages_pending{sink="influxdb"}` 0).
4. Nothing lost: the points read back from VictoriaMetrics are counted.

Prints the catch-up rate against that maximum live rate, and against the live rate of the
demo kindergarten (its devices' reporting intervals). Figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.ingest import POLL_S, TIMEOUT_S, publish, services, site_file, write_payloads
from gateway import config
from simulators import DEMO_SITE
from tests.services import GatewayProcess, accounting, free_port


def wait(check: Callable[[], bool], what: str) -> float:
    """Seconds until `check()` is true."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > TIMEOUT_S:
            raise RuntimeError(f"{what}: not done after {TIMEOUT_S} s")
        time.sleep(POLL_S)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args()
    total = args.messages - args.messages % args.devices
    with services("bench-catchup-") as (directory, broker, vm):
        api_port = free_port()
        gateway = GatewayProcess(site_file(directory, args.devices, broker.port, vm.url, api_port), api_port,
                                 directory / "gateway.log")
        try:
            gateway.start()
            api = gateway.client
            files = write_payloads(directory, args.devices, total)
            vm.stop()
            print(f"{total} messages from {args.devices} devices, QoS 1; the InfluxDB sink is down")
            start = time.perf_counter()
            publish(broker.port, files)
            wait(lambda: accounting(api).stored("sqlite") >= total, "live ingest")
            live = total / (time.perf_counter() - start)
            backlog = accounting(api).pending("influxdb")
            print(f"  live, Mosquitto → gateway → spool + SQLite: {live:,.0f} msg/s; "
                  f"{backlog:,.0f} waiting for InfluxDB")

            vm.start()
            took = wait(lambda: accounting(api).pending("influxdb") == 0, "catch-up")
            catchup = backlog / took
            m = accounting(api)
            m.check()
            points = sum(len(s["values"]) for s in vm.export('{__name__="electricity_meter_energy_kwh"}'))
            print(f"  catch-up, spool → InfluxDB API once it is back: {catchup:,.0f} msg/s ({took:.1f} s)")
            print(f"  ratio catch-up / maximum live rate: {catchup / live:.2f}")
            school = sum(1 / d.interval_s for d in config.load(DEMO_SITE).devices)
            print(f"  ratio catch-up / the demo kindergarten's live rate ({school:.2f} msg/s): {catchup / school:,.0f}")
            print(f"  VictoriaMetrics holds {points:,} energy points (expected {total:,}); lost: {total - points}")
        finally:
            gateway.stop()
            gateway.client.close()


if __name__ == "__main__":
    main()
