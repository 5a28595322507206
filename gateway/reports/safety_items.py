"""The items of the daily safety record that no sensor judges: a check by hand for each
building (or kitchen) without a sensor of its kind, the checks only a person can vouch for,
and a person's completion of an item. The sensor items are judged by the rules' judges
(`RuleSpec.judge`, with the toolkit of gateway/reports/judging.py); how each status is decided
is in docs/reports.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gateway.reports.judging import no_school, record_item
from gateway.reports.safety_model import Category, Completion, Entry, Item, ItemStatus, Rectification

if TYPE_CHECKING:
    from gateway.config import SiteConfig
    from gateway.schedule.school_calendar import SchoolDay

# Rooms where children or food are: a building with one of them and no UV lamp needs its
# disinfection registered by hand.
UV_ROOMS: Final = frozenset({"classroom", "nap_room", "dorm", "kitchen"})


@dataclass(frozen=True)
class ManualCheck:
    """A check no sensor in this product covers: always a person's."""

    id: str
    category: Category
    check_zh: str  # what it is, short: it names the item in lists
    check_en: str
    how_zh: str  # what the person checks
    how_en: str
    school_days_only: bool


# The short list of what only a person can vouch for. Canteen items count where the site has a kitchen.
ALWAYS_MANUAL: Final = (
    ManualCheck("canteen:tableware", Category.CANTEEN, "餐具消毒", "Tableware disinfection",
                "餐用具每餐后消毒并登记", "tableware disinfected after every meal and registered", True),
    ManualCheck("canteen:goods", Category.CANTEEN, "食品验收", "Goods acceptance",
                "食品原料到货时验收并登记", "deliveries checked on arrival and registered", True),
    ManualCheck("guard:walkround", Category.GUARD, "下班前安全检查", "Check before leaving",
                "门卫下班前检查电器、电源、门窗",
                "the guard checks appliances, power, doors and windows before leaving", False),
)

# A building without a sensor of a kind gets the check by hand: (category, kind, what to do).
_BY_HAND: Final = (
    (Category.DOOR, "door", ("本楼没有门磁，请人工检查门窗是否关好锁好",
                             "no door sensor here: check by hand that doors and windows are locked")),
    (Category.WATER, "water_meter", ("本楼没有水表，请人工检查有无长流水、跑冒滴漏",
                                     "no water meter here: check by hand for running taps and leaks")),
    (Category.POWER, "electricity_meter", ("本楼没有电表，请人工检查电器电源是否关闭",
                                           "no electricity meter here: check by hand that appliances are off")),
    (Category.UV, "uv_lamp", ("本楼的紫外线灯没有传感器，请人工检查消毒并登记",
                              "no sensor on this building's UV lamps: check the disinfection and register it")),
)


def uncovered(site: SiteConfig, day: SchoolDay) -> list[Item]:
    """Manual items for each check a building (or kitchen) has no sensor for."""
    out: list[Item] = []
    for b in site.buildings:
        rooms = {r.id for r in b.rooms}
        kinds = {d.kind for d in site.devices if d.room in rooms}
        for category, kind, todo in _BY_HAND:
            if kind in kinds or (category is Category.UV and not any(r.type in UV_ROOMS for r in b.rooms)):
                continue
            status, detail = ItemStatus.MANUAL, todo
            if category is Category.UV and not day.school_day:
                status, detail = ItemStatus.NOT_REQUIRED, no_school(site)
            out.append(record_item(f"{category}@{b.id}", category, None, site, status, detail, subject=b.name,
                             building=b.id))
        for r in b.rooms:
            if r.type == "kitchen" and not any(d.kind == "sample_fridge" and d.room == r.id for d in site.devices):
                out.append(record_item(f"fridge@{r.id}", Category.FRIDGE, None, site, ItemStatus.MANUAL,
                                 ("留样冰箱没有温度传感器，请人工记录冰箱温度",
                                  "no sensor in the sample fridge: log its temperature by hand"),
                                 subject=r.name, building=b.id, room=r.id))
    return out


def always_manual(site: SiteConfig, day: SchoolDay) -> list[Item]:
    kitchen = any(r.type == "kitchen" for b in site.buildings for r in b.rooms)
    out = []
    for check in ALWAYS_MANUAL:
        if check.category is Category.CANTEEN and not kitchen:
            continue
        if check.school_days_only and not day.school_day:
            closed_zh, closed_en = site.day_word(school_day=False)
            status, detail = ItemStatus.NOT_REQUIRED, (f"{closed_zh}，食堂不开餐",
                                                       f"{closed_en}: the canteen is closed")
        else:
            status, detail = ItemStatus.MANUAL, (f"无传感器监测，请人工检查：{check.how_zh}",
                                                 f"no sensor watches this, check by hand: {check.how_en}")
        item = record_item(check.id, check.category, None, site, status, detail)
        out.append(item.model_copy(update={"check_zh": check.check_zh, "check_en": check.check_en}))
    return out


def completed(item: Item, completion: Completion | None, rectification: Rectification | None = None) -> Item:
    """What people wrote of an item: a check applies to an item that needs one (done, or fail
    for a problem, whose note is the problem until someone writes one); a rectification
    stays with its item."""
    update: dict[str, object] = {}
    if completion is not None:
        update["completion"] = completion
        if item.needs_check:
            update["status"] = ItemStatus.DONE if completion.result == "ok" else ItemStatus.FAIL
            if completion.result == "problem" and (rectification is None or rectification.problem is None):
                found = Entry(text=completion.note, by=completion.by, at=completion.at)
                rectification = (rectification or Rectification()).model_copy(update={"problem": found})
    if rectification is not None:
        update["rectification"] = rectification
    return item.model_copy(update=update) if update else item
