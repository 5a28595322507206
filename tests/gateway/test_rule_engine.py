"""The rule engine's evidence: the newest readings of the metric a rule cites, in order, and
nothing else kept of a device's readings."""

from __future__ import annotations

import tracemalloc
from datetime import datetime
from typing import Final

from devices import kinds
from devices.base import Sample
from gateway.rules.base import Finding
from gateway.rules.engine import EVIDENCE_KEEP, Evidence, RuleEngine
from gateway.schedule.school_calendar import SchoolCalendar
from tests.rule_scenarios import site_with

SITE: Final = site_with({})
FRIDGE: Final = next(d.id for d in SITE.devices if d.kind == "sample_fridge")
MINUTE: Final = 60_000
START_MS: Final = int(datetime(2026, 10, 13, 0, 0, tzinfo=SITE.tz).timestamp() * 1000)


def _fridge(ts_ms: int, celsius: float) -> Sample:
    return Sample(FRIDGE, ts_ms, {"temperature_c": celsius, "door_open": 0.0, "power_w": 80.0,
                                  "battery_pct": 90.0, "rssi_dbm": -60.0, "link_quality": 200.0, "online": 1.0})


def test_a_finding_s_evidence_is_its_metric_s_newest_readings_oldest_first() -> None:
    found: list[tuple[Finding, Evidence]] = []
    engine = RuleEngine(SITE, SchoolCalendar(SITE), lambda f, e: found.append((f, e)))
    warm_from = EVIDENCE_KEEP + 100  # the kept readings went round more than once
    readings = [(START_MS + n * MINUTE, 3.0 + n % 7 / 10 if n < warm_from else 12.0) for n in range(warm_from + 30)]
    for ts_ms, celsius in readings:
        engine.sample(_fridge(ts_ms, celsius), ts_ms)
        engine.tick(ts_ms)
    raised, evidence = next((f, e) for f, e in found if f.rule == "fridge_temperature" and f.active and not f.update)
    assert evidence.metric == "temperature_c"
    assert evidence.points == [(ts, c) for ts, c in readings if raised.since_ms - 10 * MINUTE <= ts <= raised.at_ms]
    assert evidence.points[0][1] < 12.0 <= evidence.points[-1][1]  # the minutes before it, then the excursion


def test_a_device_s_readings_are_kept_only_for_the_metric_its_rules_cite() -> None:
    """Sixteen bytes a reading of the cited metric, next to what the rules themselves learn:
    every reading of every metric, kept as it came, was 75 KB a device once full, 750 MB for
    a site of 10,000 devices."""
    meters = [d for d in SITE.devices if d.kind in ("electricity_meter", "water_meter")]
    engine = RuleEngine(SITE, SchoolCalendar(SITE), lambda f, e: None)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(EVIDENCE_KEEP + 20):
            for device in meters:
                values = {m.key: float(n) for m in kinds()[device.kind].metrics}
                engine.sample(Sample(device.id, START_MS + n * MINUTE, values), START_MS + n * MINUTE)
        kept = tracemalloc.get_traced_memory()[0] - before
        readings = [{m.key: float(n) for m in kinds()[d.kind].metrics} for d in meters for n in range(EVIDENCE_KEEP)]
        as_they_came = tracemalloc.get_traced_memory()[0] - before - kept
    finally:
        tracemalloc.stop()
    assert len(readings) == len(meters) * EVIDENCE_KEEP
    assert kept < as_they_came / 4, (kept, as_they_came)
