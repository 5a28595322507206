"""How severe an alert is: a rule's setting, a channel's routing, an alert's field."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    pass


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for warning: compare with `>=` for "at least"."""
        return _RANKS[self]


_RANKS: Final = {Severity.CRITICAL: 3, Severity.MAJOR: 2, Severity.MINOR: 1, Severity.WARNING: 0}
