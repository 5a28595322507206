"""Energy categories (分类能耗) and electricity sub-items (分项能耗) with the codes of the 2008
guideline for public buildings' energy monitoring (住建部《国家机关办公建筑和大型公共建筑能耗监测
系统 分项能耗数据采集技术导则》, appendix on data codes), and the standard-coal factors that put
the categories on one scale (kgce, 千克标准煤). docs/subitems.md says which text was followed and
what could not be checked against it.

A meter's category follows from its kind (`Metric.utility`); its sub-item is tagged in the site
file (`Device.subitem`), or a sub-item is derived from a main meter minus its sub-meters
(`SiteConfig.derived_subitems`). Only electricity has sub-items in the guideline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from devices.base import Utility


@dataclass(frozen=True, slots=True)
class Category:
    """An energy category: its code, its words, and what one unit of it is in standard coal
    (None: not energy, water is counted but not converted)."""

    utility: Utility
    code: str
    zh: str
    en: str
    kgce_per_unit: float | None


@dataclass(frozen=True, slots=True)
class Subitem:
    """A sub-item of a category: a first-level one (照明插座用电) or one under it (`parent`)."""

    code: str
    zh: str
    en: str
    parent: str | None = None


# GB/T 2589-2020 (综合能耗计算通则), appendix values: electricity at its equivalent value
# (当量值, 0.1229 kgce/kWh), natural gas 1.2143 kgce/m³ (the middle of its 1.100–1.330 range as
# the 2008 edition gave it), heat 0.03412 kgce/MJ = 34.12 kgce/GJ.
CATEGORIES: Final[dict[Utility, Category]] = {
    "electricity": Category("electricity", "01000", "电", "Electricity", 0.1229),
    "water": Category("water", "02000", "水", "Water", None),
    "gas": Category("gas", "03000", "燃气", "Gas", 1.2143),
    "heat": Category("heat", "04000", "集中供热量", "District heat", 34.12),
}

_SUBITEMS: Final = (
    Subitem("01A00", "照明插座用电", "Lighting and sockets"),
    Subitem("01A10", "照明与插座", "Rooms' lighting and sockets", "01A00"),
    Subitem("01A20", "走廊与应急照明", "Corridor and emergency lighting", "01A00"),
    Subitem("01A30", "室外景观照明", "Outdoor lighting", "01A00"),
    Subitem("01B00", "空调用电", "Air conditioning"),
    Subitem("01B10", "冷热站", "Cooling and heating plant", "01B00"),
    Subitem("01B20", "空调末端", "Air-conditioning terminals", "01B00"),
    Subitem("01C00", "动力用电", "Power"),
    Subitem("01C10", "电梯", "Lifts", "01C00"),
    Subitem("01C20", "水泵", "Pumps", "01C00"),
    Subitem("01C30", "通风机", "Fans", "01C00"),
    Subitem("01D00", "特殊用电", "Special uses"),
    Subitem("01D10", "信息中心", "IT room", "01D00"),
    Subitem("01D20", "洗衣房", "Laundry", "01D00"),
    Subitem("01D30", "厨房餐厅", "Kitchen and canteen", "01D00"),
    Subitem("01D40", "游泳池", "Swimming pool", "01D00"),
    Subitem("01D50", "健身房", "Gym", "01D00"),
    Subitem("01D60", "其他特殊用电", "Other special uses", "01D00"),
)
SUBITEMS: Final[dict[str, Subitem]] = {s.code: s for s in _SUBITEMS}


def category_of(code: str) -> Category:
    """The category a sub-item belongs to: its code's first two digits are the category's."""
    return next(c for c in CATEGORIES.values() if c.code[:2] == code[:2])


def subitems_for(utility: Utility) -> list[Subitem]:
    """The sub-items a meter of `utility` may be tagged with, in the guideline's order."""
    return [s for s in _SUBITEMS if category_of(s.code).utility == utility]


def check_subitem(code: str, utility: Utility | None) -> None:
    """ValueError unless `code` is a sub-item of the category a meter of `utility` measures."""
    if code not in SUBITEMS:
        raise ValueError(f"unknown sub-item {code!r} (known: {', '.join(SUBITEMS)})")
    if utility is None or category_of(code).utility != utility:
        found = "no meter" if utility is None else f"a {utility} meter"
        raise ValueError(f"sub-item {code} is {category_of(code).en.lower()}; this device is {found}")


def words(code: str) -> tuple[str, str]:
    """How a sub-item reads to people, code first: "01A10 照明插座用电·照明与插座"."""
    item = SUBITEMS[code]
    parent = SUBITEMS[item.parent] if item.parent else None
    if parent is None:
        return f"{code} {item.zh}", f"{code} {item.en}"
    return f"{code} {parent.zh}·{item.zh}", f"{code} {parent.en} · {item.en}"


def kgce(utility: Utility, amount: float | None) -> float | None:
    """`amount` of `utility` in kg of standard coal; None where it is not energy or unknown."""
    factor = CATEGORIES[utility].kgce_per_unit
    return None if factor is None or amount is None else amount * factor
