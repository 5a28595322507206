"""Sub-items (分项): the catalog's words, a meter's tag and a derived sub-item checked in the site
file with their problems in words, and the admin form's choices."""

from __future__ import annotations

import pytest

from gateway import config
from gateway.api.admin import catalog
from gateway.reports.subitems import SUBITEMS, category_of, kgce, words

SITE = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {id: plant, name: 配电间, type: plant}
      - {id: kitchen, name: 厨房, type: kitchen}
devices:
  - {id: main-power, kind: electricity_meter, room: plant}
  - {id: kitchen-power, kind: electricity_meter, room: kitchen, subitem: 01D30}
  - {id: main-water, kind: water_meter, room: plant}
  - {id: kitchen-gas, kind: gas_meter, room: kitchen}
derived_subitems:
  - {subitem: 01A10, main: main-power, minus: [kitchen-power]}
"""


def problems(text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text, "site.yaml")
    return [(p.key, p.zh, p.en) for p in caught.value.problems]


def test_a_tagged_meter_and_a_derived_sub_item_load() -> None:
    site = config.parse(SITE, "site.yaml")
    kitchen = site.device("kitchen-power")
    assert kitchen is not None
    assert kitchen.subitem == "01D30"
    [derived] = site.derived_subitems
    assert (derived.subitem, derived.main, derived.minus) == ("01A10", "main-power", ["kitchen-power"])


def test_sub_items_read_code_first_with_their_parent_and_belong_to_electricity() -> None:
    assert words("01A10") == ("01A10 照明插座用电·照明与插座", "01A10 Lighting and sockets · Rooms' lighting and sockets")
    assert words("01B00") == ("01B00 空调用电", "01B00 Air conditioning")
    assert {category_of(code).utility for code in SUBITEMS} == {"electricity"}
    # Every second-level item lies under a first-level one of its own letter.
    for code, item in SUBITEMS.items():
        if item.parent is not None:
            assert (item.parent[:3], SUBITEMS[item.parent].parent) == (code[:3], None)


def test_standard_coal_by_category() -> None:
    assert kgce("electricity", 1000) == pytest.approx(122.9)
    assert kgce("gas", 100) == pytest.approx(121.43)
    assert kgce("heat", 1) == pytest.approx(34.12)  # 1 GJ at 0.03412 kgce/MJ
    assert kgce("water", 100) is None


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    [
        ("subitem: 01D30}", "subitem: 01Z99}", "devices[1].subitem", "`01Z99` 不是这种表计的能耗分项；可用：01A00 照明插座用电；"),
        ("room: plant}\n  - {id: kitchen-gas", "room: plant, subitem: 01A10}\n  - {id: kitchen-gas",
         "devices[2].subitem", "这种设备没有能耗分项：只有电表标注分项"),
        ("main: main-power", "main: main-pwr", "derived_subitems[0].main", "no device 'main-pwr'"),
        ("minus: [kitchen-power]", "minus: [main-water]", "derived_subitems[0].minus[0]", "one category"),
        ("minus: [kitchen-power]", "minus: [kitchen-power, kitchen-power]", "derived_subitems[0].minus[1]",
         "taken off twice"),
        ("subitem: 01A10, main", "subitem: 01D30, main: kitchen-power, minus: [main-power]}\n  - {subitem: 01A10, main",
         "derived_subitems[0].main", "would count twice"),
        ("main: main-power", "main: main-water", "derived_subitems[0].subitem", "这种设备没有能耗分项"),
    ],
)
def test_a_wrong_tag_or_declaration_is_named_with_its_key(old: str, new: str, key: str, says: str) -> None:
    assert old in SITE
    found = problems(SITE.replace(old, new, 1))
    assert [k for k, _, _ in found] == [key], found
    assert says in found[0][1] + found[0][2], found


def test_the_device_form_offers_a_meters_sub_items_in_words() -> None:
    kinds = {k.id: k for k in catalog(config.parse(SITE, "site.yaml")).kinds}
    offered = [(c.id, c.zh) for c in kinds["electricity_meter"].subitems]
    assert offered[:2] == [("01A00", "01A00 照明插座用电"), ("01A10", "01A10 照明插座用电·照明与插座")]
    assert [c for c, _ in offered] == list(SUBITEMS)
    assert kinds["water_meter"].subitems == []
    assert kinds["gas_meter"].subitems == []
    assert kinds["door"].subitems == []
