"""Where the school's settings come from at start (the site file or what was changed in the
dashboard), and what a change while running keeps: a device's rules in the middle of a leak."""

from __future__ import annotations

import gc
import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import BaseModel, SecretStr
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text

from devices import kinds
from devices.base import Sample
from devices.vendors import sources
from gateway import config
from gateway.config.stored import SCHOOL_KEYS, WITH_SECRETS, ConfigStore, school_of, with_school
from gateway.rules.base import Finding
from gateway.rules.engine import RuleEngine
from gateway.rules.water import WaterLeakRule
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.state import StateDatabase

SITE = """\
id: kg
name: 测试幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms: [{id: kitchen, name: 厨房, type: kitchen}, {id: plant, name: 水泵房, type: plant}]
devices:
  - {id: tap, kind: water_meter, room: plant, name: 总水表}
"""
NOW_MS = 1_795_219_200_000


def file_site(text: str = SITE) -> config.SiteConfig:
    return config.parse(text, "site.yaml")


def test_a_saved_version_is_not_held_in_memory(state_db: StateDatabase) -> None:
    """Saving a large school's settings keeps none of their text in the process (SQLAlchemy's
    cache of compiled statements kept the first statement, values and all)."""
    store = ConfigStore(state_db, "kg")
    school = {"devices": [{"id": f"meter-{i}", "name": f"第 {i} 号电表", "room": "kitchen"} for i in range(20_000)]}
    size = len(json.dumps(school, ensure_ascii=False).encode())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store.save(school, "file", "file", 0, json.dumps(school, ensure_ascii=False, sort_keys=True))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < size / 10, f"{kept:,} bytes kept of a {size:,}-byte school"
    saved = store.current()
    assert saved is not None
    assert saved.school == school


def test_the_file_seeds_the_store_and_is_taken_again_while_nobody_changed_the_settings(state_db: StateDatabase) -> None:
    store = ConfigStore(state_db, "kg")
    first = store.startup(file_site(), NOW_MS)
    assert (first.version, first.file_pending) == (1, False)
    assert store.startup(file_site(), NOW_MS).version == 1  # the same file: nothing new

    renamed = file_site(SITE.replace("测试幼儿园", "向日葵幼儿园"))
    taken = store.startup(renamed, NOW_MS)
    assert (taken.version, taken.site.name, taken.file_pending) == (2, "向日葵幼儿园", False)


def test_settings_changed_in_the_dashboard_win_over_a_file_edited_since(state_db: StateDatabase) -> None:
    store = ConfigStore(state_db, "kg")
    seeded = store.startup(file_site(), NOW_MS).site
    changed = school_of(seeded) | {"headcount": 150}
    store.save(changed, "dashboard", "head", NOW_MS)

    kept = store.startup(file_site(), NOW_MS)  # the file as it was: no difference to speak of
    assert (kept.version, kept.site.headcount, kept.file_pending) == (2, 150, False)
    edited = store.startup(file_site(SITE.replace("总水表", "主水表")), NOW_MS)
    assert (edited.version, edited.site.headcount, edited.file_pending) == (2, 150, True)
    assert edited.site.devices[0].name == "总水表"


def test_a_file_managed_site_takes_its_file_every_time(state_db: StateDatabase) -> None:
    store = ConfigStore(state_db, "kg")
    seeded = store.startup(file_site(), NOW_MS).site
    store.save(school_of(seeded) | {"headcount": 150}, "dashboard", "head", NOW_MS)
    managed = store.startup(file_site(SITE + "managed_from: file\n"), NOW_MS)
    assert (managed.version, managed.site.headcount) == (3, None)


def test_each_site_has_its_own_versions(state_url: str) -> None:
    first = StateDatabase(state_url)
    try:
        kg = ConfigStore(first, "kg")
        kg.startup(file_site(), NOW_MS)
        kg.save(school_of(file_site()) | {"headcount": 150}, "dashboard", "head", NOW_MS)
        other = ConfigStore(first, "other")
        assert (other.current(), other.last_from_file()) == (None, None)
        started = other.startup(file_site(SITE.replace("测试幼儿园", "向日葵幼儿园")), NOW_MS)
        assert (started.version, started.site.name) == (1, "向日葵幼儿园")  # numbered a site
    finally:
        first.close()
    again = StateDatabase(state_url)  # restarted
    try:
        current = ConfigStore(again, "kg").current()
        assert current is not None
        assert (current.version, current.school["headcount"], current.actor) == (2, 150, "head")
        kept = ConfigStore(again, "other").startup(file_site(SITE.replace("测试幼儿园", "向日葵幼儿园")), NOW_MS)
        assert (kept.version, kept.site.name, kept.file_pending) == (1, "向日葵幼儿园", False)
    finally:
        again.close()


def test_the_versions_of_a_state_database_from_before_sites_are_the_sites(state_db: StateDatabase) -> None:
    old = Table("site_config", MetaData(), Column("version", Integer, primary_key=True),
                *(Column(name, Text, nullable=False) for name in ("school", "origin", "actor")),
                Column("at_ms", BigInteger, nullable=False), Column("file_text", Text))
    old.create(state_db.engine)
    text = json.dumps(school_of(file_site()), ensure_ascii=False, sort_keys=True)
    with state_db.write() as conn:
        conn.execute(old.insert().values(version=1, school=text, origin="file", actor="file", at_ms=NOW_MS,
                                         file_text=text))
    store = ConfigStore(state_db, "kg")
    assert store.startup(file_site(), NOW_MS).version == 1
    assert store.save(school_of(file_site()) | {"headcount": 150}, "dashboard", "head", NOW_MS) == 2


def test_a_change_keeps_the_rules_of_devices_it_does_not_touch() -> None:
    site = file_site()
    calendar = SchoolCalendar(site)
    found: list[Finding] = []
    engine = RuleEngine(site, calendar, lambda f, _: found.append(f))
    rule = engine.rule("tap", WaterLeakRule)
    assert rule is not None
    t0 = int(datetime(2026, 11, 21, 20, 0, tzinfo=UTC).timestamp() * 1000)
    for i in range(5):  # water running at night, a leak being timed
        engine.sample(Sample("tap", t0 + i * 60_000, {"volume_m3": 10 + i * 0.01}), t0 + i * 60_000)

    school = school_of(site)
    school["devices"].append({"id": "fridge", "kind": "sample_fridge", "room": "kitchen"})
    school["headcount"] = 80
    school["buildings"][0]["opening_hours"] = {"mon": [{"start": "06:30", "end": "18:00"}]}  # the calendar's
    gone = engine.reconfigure(with_school(site, school), set())
    assert gone == []
    assert engine.rule("tap", WaterLeakRule) is rule  # the leak's timing goes on
    assert engine.rule("fridge", WaterLeakRule) is None

    school["devices"][0]["rules"] = {"water_leak": {"continuous_min": 30}}
    engine.reconfigure(with_school(site, school), {("water_leak", "tap")})
    renewed = engine.rule("tap", WaterLeakRule)
    assert renewed is not None
    assert renewed is not rule
    assert renewed.raised  # its open alert is known, so it clears it when the water stops

    school["devices"].pop(0)
    assert engine.reconfigure(with_school(site, school), set()) == ["tap"]


def test_a_channel_keeps_its_kind_in_the_stored_settings() -> None:
    """A channel's `type` picks its model: the stored settings, written without defaults, keep it."""
    site = file_site(SITE + "notifications:\n  channels:\n    - {type: webhook, id: office, url: 'http://127.0.0.1:9/hook'}\n")
    assert with_school(site, school_of(site)).notifications.channels[0].type == "webhook"


def _holds_a_secret(annotation: Any, seen: set[type[BaseModel]]) -> bool:
    """Whether a value of `annotation` may hold a `SecretStr`, anywhere inside it."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(_holds_a_secret(f.annotation, seen) for f in annotation.model_fields.values())
    return any(_holds_a_secret(a, seen) for a in get_args(annotation))


def test_no_part_of_the_school_but_its_channels_holds_a_secret() -> None:
    """`school_of` reveals secrets in that part alone: a secret elsewhere would be stored and
    exported masked, and lost."""
    fields = config.SiteConfig.model_fields
    parts = [fields[k].annotation for k in SCHOOL_KEYS if k != WITH_SECRETS]
    models = [*parts, *sources().values(), *(kind.settings for kind in kinds().values())]
    assert [m for m in models if _holds_a_secret(m, set())] == []
    assert _holds_a_secret(fields[WITH_SECRETS].annotation, set())  # found where they are
