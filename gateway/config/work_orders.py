"""Work orders' settings (`work_orders:`): which rules open one, for which trade, when it is
due, and how large a photo of the finished repair may be."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.alerting.trade import Trade
from gateway.rules import registry

__all__ = ["Trade", "WorkOrderSettings"]

MB = 1024 * 1024


def _default_rules() -> dict[str, Trade]:
    """The trades the rules declare (a leak for the plumber, a door that does not close for
    the carpenter, a silent device for whoever looks after it)."""
    return {spec.id: spec.trade for spec in registry.specs().values() if spec.trade is not None}


class WorkOrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[str, Trade] = Field(default_factory=_default_rules, description="rule → trade that fixes it")
    due_within_h: float | None = Field(None, gt=0, description="default: by the end of the day it was opened")
    photo_max_bytes: int = Field(5 * MB, ge=64 * 1024, le=50 * MB,
                                 description="the largest photo of a finished repair (JPEG, PNG or WebP)")
