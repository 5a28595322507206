"""What every rule's parameters share. Each rule's own parameters are declared in its module
(gateway/rules/), with its spec; a site file sets them under `rules:` (for the whole site) and
under a device's `rules:` (for that device alone).

Every parameter carries a `devices.base.Label` in its annotation, as a kind's settings do: the
admin pages and the site file's error messages show it by its label and unit, never its key.
A rule whose parameters lack one does not load (gateway/rules/registry.py)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict

from devices.base import Label, StateWords
from gateway.alerting.severity import Severity

SEVERITY: Final = Label("报警级别", "Severity")
# A rule that sets its own default severity declares `severity: SeverityLevel = Severity.MAJOR`:
# a field redeclared in a subclass keeps only what its new annotation says.
SeverityLevel = Annotated[Severity, SEVERITY]
WATTS: Final = ("瓦", "W")
PERCENT: Final = ("%", "%")
LITRES_PER_MIN: Final = ("升/分钟", "L/min")


class RuleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: Annotated[bool, Label("启用这条规则", "Rule on", words=StateWords("启用", "停用", "On", "Off"))] = True
    severity: SeverityLevel = Severity.MINOR
