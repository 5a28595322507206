"""What every rule's parameters share. Each rule's own parameters are declared in its module
(gateway/rules/), with its spec; a site file sets them under `rules:` (for the whole site) and
under a device's `rules:` (for that device alone)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gateway.alerting.severity import Severity


class RuleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = Severity.MINOR
