"""Every rule declares itself in one module (STYLE.md rule 15): its spec names its id,
parameters, kinds, labels and severity, and the rest of the code reads the registry instead
of listing rules by hand. Measured from the code: a rule's id is written in its own module
and in at most one other first-party file."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from devices import kinds
from gateway.alerting.severity import Severity
from gateway.config.work_orders import WorkOrderSettings
from gateway.reports.safety import judges
from gateway.rules.base import Rule, RuleSpec, no_device
from gateway.rules.health import OFFLINE
from gateway.rules.params import RuleParams
from gateway.rules.registry import name_enum, specs

ROOT: Final = Path(__file__).resolve().parents[2]
FIRST_PARTY: Final = ("gateway", "devices", "dashboards", "simulators", "bench", "scripts")
SUFFIXES: Final = frozenset({".py", ".js", ".html"})
# Not the rule's id but a vendor's field of the same name: Zigbee2MQTT's `water_leak`, decoded
# by its codec and sent by the simulated Zigbee sensor; counted as that rule's one other file.
VENDOR_FIELDS: Final = {"water_leak": frozenset({"devices/vendors/zigbee2mqtt.py", "simulators/vendors.py"})}


def _sources() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for top in FIRST_PARTY if (ROOT / top).is_dir()
        for path in (ROOT / top).rglob("*") if path.suffix in SUFFIXES and path.parent.name != "vendor"
    }


@pytest.mark.parametrize("spec", list(specs().values()), ids=lambda s: s.id)
def test_every_rule_declares_everything(spec: RuleSpec[RuleParams]) -> None:
    assert issubclass(spec.detector, Rule)
    assert issubclass(spec.params, RuleParams)
    assert spec.id
    assert spec.id == spec.detector.name
    assert spec.label_zh
    assert spec.label_en
    assert spec.label_zh != spec.label_en
    assert isinstance(spec.severity, Severity)
    assert spec.applies_to is no_device or any(spec.applies(k) for k in kinds()), f"{spec.id} applies to no kind"
    module = ROOT / Path(*spec.detector.__module__.split(".")).with_suffix(".py")
    assert f'"{spec.id}"' in module.read_text(encoding="utf-8"), "the id is written in the rule's own module"
    assert spec.params.__module__ == spec.detector.__module__, "parameters live with their rule"


def test_each_rule_id_is_written_in_its_module_and_at_most_one_other_file() -> None:
    sources = _sources()
    for spec in specs().values():
        own = Path(*spec.detector.__module__.split(".")).with_suffix(".py").as_posix()
        others = {name for name, text in sources.items() if spec.id in text and name != own}
        vendor = VENDOR_FIELDS.get(spec.id, frozenset())
        counted = len(others - vendor) + (1 if others & vendor else 0)
        assert counted <= 1, f"{spec.id} is written by hand in {sorted(others)}"


def test_every_device_kind_is_covered_by_the_offline_rule() -> None:
    assert all(OFFLINE.applies(name) for name in kinds())


# The rules whose module judges the daily record's item for a kind (STYLE.md rule 15): one each.
JUDGED: Final = {"sample_fridge": "fridge_temperature", "uv_lamp": "uv_not_run", "door": "door_after_hours",
                 "water_meter": "water_leak", "leak_sensor": "leak_detected", "electricity_meter": "load_after_hours"}


def test_the_daily_record_judges_come_from_their_rules() -> None:
    judged = {s.id for s in specs().values() if s.judge is not None}
    assert judged == set(JUDGED.values())
    for s in specs().values():
        if s.judge is not None:
            assert s.judge.__module__ == s.detector.__module__, f"{s.id}'s judge lives with its rule"
    for kind in kinds():
        found = [s.id for s in specs().values() if s.judge is not None and s.applies(kind)]
        assert found == ([JUDGED[kind]] if kind in JUDGED else []), kind
    assert [kind for kind in kinds() if judges(kind)] == [kind for kind in kinds() if kind in JUDGED]


def test_the_api_enum_and_work_order_defaults_come_from_the_registry() -> None:
    assert [m.value for m in name_enum()] == list(specs())
    trades = WorkOrderSettings().rules
    assert trades == {s.id: s.trade for s in specs().values() if s.trade is not None}
    assert set(trades) <= set(specs())
