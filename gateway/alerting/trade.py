"""Who fixes what: the trade a work order goes to. A rule may declare the trade its alerts
open work orders for (gateway/rules/); a site may choose others (`work_orders.rules`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Trade(StrEnum):
    WATER = "water"
    ELECTRIC = "electric"
    CARPENTRY = "carpentry"
    OTHER = "other"

    @property
    def words(self) -> tuple[str, str]:
        """How people say it, in Chinese and English, wherever an order's trade is shown (the
        dashboard's own labels, views/orders.js trade.*, say the same)."""
        return _WORDS[self]


_WORDS: Final = {Trade.WATER: ("水工", "Plumbing"), Trade.ELECTRIC: ("电工", "Electrical"),
                 Trade.CARPENTRY: ("木工", "Carpentry"), Trade.OTHER: ("其他", "Other")}
