"""Who fixes what: the trade a work order goes to. A rule may declare the trade its alerts
open work orders for (gateway/rules/); a site may choose others (`work_orders.rules`)."""

from __future__ import annotations

from enum import StrEnum


class Trade(StrEnum):
    WATER = "water"  # 水
    ELECTRIC = "electric"  # 电
    CARPENTRY = "carpentry"  # 木
    OTHER = "other"  # 其他
