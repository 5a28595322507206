"""Runs the simulator (with faults injected) through the real decoders and the rule engine,
in event time: the watchdog ticks once a simulated minute, as it would on a clock that
follows the simulation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from devices import kinds
from gateway.config import SiteConfig, load, parse
from gateway.rules.base import Finding
from gateway.rules.engine import Evidence, RuleEngine
from gateway.schedule.school_calendar import SchoolCalendar
from simulators.faults import Fault, inject
from simulators.model import SimMessage, SiteSimulation
from tests.simulated import Sent

DEMO = Path(__file__).parents[1] / "simulators" / "kindergarten.yaml"
TICK_MS = 60_000


def demo_site() -> SiteConfig:
    return load(DEMO)


def another_school() -> SiteConfig:
    """The demo site under another id: a second school of the district, with the same
    buildings and devices, for the stores that keep schools apart in one state database."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["id"] = "lotus-kg"
    return parse(yaml.safe_dump(data, allow_unicode=True), "lotus.yaml")


def site_with(change: dict[str, Any]) -> SiteConfig:
    """The demo site with `change`: `buildings`/`devices` entries are appended, `rules` and
    per-device rule overrides (`device_rules: {id: {...}}`, `device_settings`) merged."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["buildings"] += change.get("buildings", [])
    data["devices"] += change.get("devices", [])
    for device in data["devices"]:  # copies: YAML anchors share one dict between devices
        device["rules"] = device.get("rules", {}) | change.get("device_rules", {}).get(device["id"], {})
        device["settings"] = device.get("settings", {}) | change.get("device_settings", {}).get(device["id"], {})
    return parse(yaml.safe_dump(data, allow_unicode=True), "scenario.yaml")


@dataclass
class Run:
    findings: list[tuple[Finding, Evidence]] = field(default_factory=list)
    messages: int = 0

    def raised(self, rule: str, device_id: str) -> list[Finding]:
        return [f for f, _ in self.findings if f.active and not f.update and f.rule == rule and f.device_id == device_id]

    def updates(self, rule: str, device_id: str) -> list[Finding]:
        """The figures of an open condition as they went up."""
        return [f for f, _ in self.findings if f.update and f.rule == rule and f.device_id == device_id]

    def raised_all(self) -> list[Finding]:
        return [f for f, _ in self.findings if f.active and not f.update]

    def cleared(self, rule: str, device_id: str) -> list[Finding]:
        return [f for f, _ in self.findings if not f.active and f.rule == rule and f.device_id == device_id]

    def evidence(self, finding: Finding) -> Evidence:
        return next(e for f, e in self.findings if f is finding)


def stream(site: SiteConfig, start: datetime, end: datetime, faults: Sequence[Fault] = (),
           seed: int = 1) -> list[SimMessage]:
    return list(inject(SiteSimulation(site, seed).messages(start, end), faults, site))


def run(site: SiteConfig, messages: Iterable[Sent]) -> Run:
    result = Run()
    engine = RuleEngine(site, SchoolCalendar(site), lambda f, e: result.findings.append((f, e)))
    kind_of = {d.id: kinds()[d.kind] for d in site.devices}
    next_tick = 0
    for ts_ms, device_id, channel, payload in messages:
        while ts_ms >= next_tick:
            if next_tick:
                engine.tick(next_tick)
            next_tick = (ts_ms // TICK_MS + 1) * TICK_MS if not next_tick else next_tick + TICK_MS
        kind = kind_of[device_id]
        if channel == "telemetry":
            engine.sample(kind.decode(device_id, payload, ts_ms), ts_ms)
        else:
            engine.event(kind.decode_event(device_id, payload, ts_ms), ts_ms)
        result.messages += 1
    return result
