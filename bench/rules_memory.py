"""What the rules hold of a large site's readings once they have run for hours: the rule
engine's memory when each device's evidence is full (`EVIDENCE_KEEP` readings).
bench/scale.py streams a few readings a device and cannot show it.

Run: `PYTHONPATH=$PWD .venv/bin/python -m bench.rules_memory [--devices 2000] [--readings 250]`

1. bench/dashboard.py's site of `--devices` devices, read as the gateway reads a site file,
   and a `RuleEngine` on it.
2. `--readings` readings a device, a minute apart and ending now (bench/dashboard.py's
   simulation: meters by day and night, fridges, UV lamps at nap time, doors), fed to the
   engine in event time as the gateway decodes them, the watchdog ticked every minute.
3. How much more the engine holds after (Python's allocations, tracemalloc), per device and in
   all. Reference in the same run: the same readings' values as they came (a dict of floats
   each), what keeping every reading whole costs.

Prints figures only; nothing here asserts a size.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.dashboard import LocalTime, build_site, site_file
from devices.base import Sample
from gateway import config
from gateway.rules.engine import EVIDENCE_KEEP, RuleEngine
from gateway.schedule.school_calendar import SchoolCalendar

MINUTE_S = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--readings", type=int, default=EVIDENCE_KEEP + 10, help="a device's, a minute apart")
    args = parser.parse_args()
    raw, sims = build_site(args.devices, 0)
    with tempfile.TemporaryDirectory(prefix="bench-rules-memory-") as tmp:
        site = config.load(site_file(Path(tmp), raw, 1883, 8000))
    local = LocalTime(ZoneInfo(site.timezone))
    engine = RuleEngine(site, SchoolCalendar(site), lambda finding, evidence: None)
    end_s = int(time.time()) // MINUTE_S * MINUTE_S
    gc.collect()
    tracemalloc.start()
    began = time.perf_counter()
    for r in range(args.readings):
        t_s = end_s - (args.readings - r) * MINUTE_S
        hour, open_day = local(t_s)
        for sim in sims:
            engine.sample(Sample(sim.id, t_s * 1000, sim.read(t_s, hour, open_day)), t_s * 1000)
        engine.tick(t_s * 1000)
    fed_s = time.perf_counter() - began
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    whole = [sim.read(t_s, 12.0, True) for sim in sims for t_s in range(EVIDENCE_KEEP)]
    as_they_came = tracemalloc.get_traced_memory()[0] - held
    tracemalloc.stop()
    n = len(sims)
    print(f"{n:,} devices, {args.readings} readings each ({n * args.readings:,} fed in {fed_s:.0f} s, traced)")
    print(f"  the rule engine grew by {held / 1e6:.1f} MB: {held / n / 1024:.1f} KB a device")
    print(f"  reference: {len(whole):,} readings kept whole ({EVIDENCE_KEEP} a device) would be "
          f"{as_they_came / 1e6:.1f} MB: {as_they_came / n / 1024:.1f} KB a device")


if __name__ == "__main__":
    main()
