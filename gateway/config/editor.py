"""Changing the school's settings while the gateway runs: one way for every change, from the
dashboard's admin area, an imported site file or the adoption of a discovered device.

A change takes the stored school part (gateway/config/stored.py), changes a copy, validates the
whole site with the site file's own model (every check a site file gets, the same words:
gateway/config/problems.py), stores it as a new version, writes the audit trail (who, when,
each changed section before and after, secrets masked) and applies it to the running gateway.
Changes are serialised by the version they were made from: a change made from an older version
than the current one is refused (someone else changed the settings meanwhile).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, to_ms
from gateway.config import SiteConfig
from gateway.config.problems import Problem, problems
from gateway.config.stored import (
    SCHOOL_KEYS,
    ConfigStore,
    Origin,
    Version,
    masked_school,
    school_of,
    with_school,
)

Words = tuple[str, str]

# How people call each section of the school's settings.
SECTIONS: Final[dict[str, Words]] = {
    "id": ("学校编号", "school id"), "name": ("学校名称", "school name"), "kind": ("学校类型", "kind of school"),
    "timezone": ("时区", "time zone"), "headcount": ("全校人数", "headcount"),
    "opening_hours": ("开放时间", "opening hours"), "buildings": ("楼宇和房间", "buildings and rooms"),
    "devices": ("设备", "devices"), "retired": ("停用的设备", "retired devices"), "calendar": ("校历", "calendar"),
    "duty": ("值班", "duty roster"), "notifications": ("通知渠道", "notification channels"),
    "tariffs": ("电价和水价", "tariffs"), "reports": ("报表和目标", "reports and targets"),
    "rules": ("告警规则", "alert rules"), "work_orders": ("工单", "work orders"), "samples": ("留样", "food samples"),
    "fire_patrol": ("消防巡查", "fire patrols"), "sweep": ("假前检查", "pre-break sweep"),
}
# Lists whose items have ids: a change names the items added, changed and removed.
_ITEMS: Final[dict[tuple[str, ...], Words]] = {
    ("buildings",): ("楼宇", "building"), ("devices",): ("设备", "device"),
    ("duty", "people"): ("值班人员", "person on the roster"),
    ("notifications", "channels"): ("通知渠道", "notification channel"),
}


class SettingsError(Exception):
    def __init__(self, status: int, zh: str, en: str, found: list[Problem] | None = None) -> None:
        super().__init__(en)
        self.status = status
        self.zh = zh
        self.en = en
        self.problems = found or []


@dataclass(frozen=True, slots=True)
class Changed:
    version: int
    changes: list[Words]


class SettingsEditor:
    """Every change to the school's settings of one running gateway. Event-loop thread only."""

    def __init__(self, store: ConfigStore, audit: AuditTrail, clock: Clock, site: Callable[[], SiteConfig],
                 apply: Callable[[SiteConfig], None], version: int, file_pending: bool, file: Path | None) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self._site = site
        self._apply = apply
        self.version = version
        self.file_pending = file_pending
        self.file = file  # the site file the gateway started with

    def current(self) -> Version:
        """The version in use: when, by whom and from where it was made."""
        made = self._store.current()
        assert made is not None  # the store is seeded at start
        return made

    @property
    def read_only(self) -> bool:
        return self._site().managed_from == "file"

    def catch_up(self) -> int | None:
        """Applies, as a change is applied, the settings another replica stored since this one
        read them (people changed them in the dashboard while it stood by); their version, or
        None when there were none."""
        made = self._store.current()
        if made is None or made.version == self.version:
            return None
        self.version = made.version
        self._apply(with_school(self._site(), made.school))
        return made.version

    def preview(self, school: Mapping[str, Any]) -> tuple[SiteConfig, list[Words]]:
        """The site `school` would make and what it changes, without changing anything; raises
        SettingsError (422) with the problems at their places."""
        site = self._site()
        outside = [k for k in school if k not in SCHOOL_KEYS]
        if outside:  # the deployment's part (connections, storage, mode) is the site file's alone
            raise SettingsError(422, "这些不是学校的设置，只能在站点文件里改：" + "、".join(outside),
                                "These are not the school's settings; only the site file sets them: "
                                + ", ".join(outside),
                                [Problem((k,), None, f"「{k}」不是学校的设置，只能在站点文件里改。",
                                         f"{k} is not one of the school's settings; only the site file sets it.")
                                 for k in outside])
        if school.get("id", site.id) != site.id:
            other = school.get("id")
            raise SettingsError(422, f"这份配置属于另一所学校（编号 {other}），不是{site.name}（编号 {site.id}）。",
                                f"These settings are another school's (id {other}), not {site.name}'s "
                                f"(id {site.id}).")
        try:
            new = with_school(site, school)
        except ValidationError as exc:
            found = problems(exc, school)
            raise SettingsError(422, "有几处填得不对，请看各项下面的说明。",
                                "Some values are not right: see the note under each.", found) from None
        return new, describe(school_of(site), school_of(new))

    def change(self, base_version: int, edit: Callable[[dict[str, Any]], dict[str, Any]], actor: str,
               origin: Origin = "dashboard") -> Changed:
        """Applies `edit` (the school part in, the changed school part out) to the settings of
        version `base_version`."""
        site = self._site()
        if self.read_only:
            raise SettingsError(409, "这所学校的设置由站点文件管理，只能在文件中修改。",
                                "This school's settings are managed from the site file; change them there.")
        if base_version != self.version:
            raise SettingsError(409, "设置刚被别人改过，请刷新后再改。",
                                "Someone changed the settings meanwhile; reload and change them again.")
        before = school_of(site)
        new, changes = self.preview(edit(copy.deepcopy(before)))
        after = school_of(new)
        if after == before:
            return Changed(self.version, [])
        now_ms = to_ms(self._clock.now())
        self.version = self._store.save(after, origin, actor, now_ms)
        self.file_pending = False if origin == "import" else self.file_pending
        self._audit.record(now_ms, actor, f"settings.{origin}", "site", {
            "version": self.version, "changes": [zh for zh, _ in changes],
            "sections": sections_diff(masked_school(site, defaults=False), masked_school(new, defaults=False)),
        })
        self._apply(new)
        return Changed(self.version, changes)


def sections_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Each changed section's value before and after; for a list of items with ids, only the
    items that changed (so adding one device does not copy every other into the trail)."""
    out: dict[str, Any] = {}
    for key in SCHOOL_KEYS:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if _by_id(old) is not None and _by_id(new) is not None:
            olds, news = _by_id(old) or {}, _by_id(new) or {}
            out[key] = {i: {"before": olds.get(i), "after": news.get(i)}
                        for i in dict.fromkeys([*olds, *news]) if olds.get(i) != news.get(i)}
        else:
            out[key] = {"before": old, "after": new}
    return out


def _by_id(value: Any) -> dict[str, Any] | None:
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(v, dict) and "id" in v for v in value):
        return {v["id"]: v for v in value}
    return None


def _at(data: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def describe(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Words]:
    """What a change does, in words, one line per item added, changed or removed (buildings,
    rooms, devices, people, channels) or per other section changed."""
    lines: list[Words] = []
    for path, (zh, en) in _ITEMS.items():
        olds, news = _by_id(_at(before, path)) or {}, _by_id(_at(after, path)) or {}
        for i in dict.fromkeys([*olds, *news]):
            old, new = olds.get(i), news.get(i)
            name = (new or old or {}).get("name") or i
            if old is None:
                lines.append((f"新增{zh}「{name}」", f"Added {en} {name}"))
            elif new is None:
                lines.append((f"删除{zh}「{name}」", f"Removed {en} {name}"))
            elif old != new:
                lines.append((f"修改{zh}「{name}」", f"Changed {en} {name}"))
            if path == ("buildings",) and old is not None and new is not None:
                lines.extend(_rooms(old, new))
    for key in SCHOOL_KEYS:
        if (key,) in _ITEMS or (key == "duty" and _rest(before, after, key, "people")) \
                or (key == "notifications" and _rest(before, after, key, "channels")):
            continue
        if before.get(key) != after.get(key):
            zh, en = SECTIONS[key]
            lines.append((f"修改{zh}", f"Changed the {en}"))
    return lines


def _rest(before: Mapping[str, Any], after: Mapping[str, Any], key: str, items: str) -> bool:
    """Whether a section changed only in its list of items (already named one by one)."""
    old, new = dict(before.get(key) or {}), dict(after.get(key) or {})
    old.pop(items, None)
    new.pop(items, None)
    return old == new


def _rooms(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Words]:
    olds, news = _by_id(old.get("rooms")) or {}, _by_id(new.get("rooms")) or {}
    lines: list[Words] = []
    for i in dict.fromkeys([*olds, *news]):
        room = news.get(i) or olds[i]
        where = f"{new.get('name')}的房间「{room.get('name') or i}」"
        where_en = f"room {room.get('name') or i} of {new.get('name')}"
        if i not in olds:
            lines.append((f"新增{where}", f"Added {where_en}"))
        elif i not in news:
            lines.append((f"删除{where}", f"Removed {where_en}"))
        elif olds[i] != news[i]:
            lines.append((f"修改{where}", f"Changed {where_en}"))
    return lines
