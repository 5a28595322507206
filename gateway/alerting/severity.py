"""How severe an alert is: a rule's setting, a channel's routing, an alert's field."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def words(self) -> tuple[str, str]:
        """How people say it, in Chinese and English: the same in notices, records and the
        dashboard (dashboards/static/i18n.js severity.*)."""
        return _WORDS[self]

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for warning: compare with `>=` for "at least"."""
        return _RANKS[self]


_RANKS: Final = {Severity.CRITICAL: 3, Severity.MAJOR: 2, Severity.MINOR: 1, Severity.WARNING: 0}
_WORDS: Final = {Severity.CRITICAL: ("紧急", "Critical"), Severity.MAJOR: ("重要", "Major"),
                 Severity.MINOR: ("一般", "Minor"), Severity.WARNING: ("提示", "Warning")}
