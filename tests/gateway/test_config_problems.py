"""The site file's mistakes as Problems: the key, its line, both languages, and what is allowed
there — taken from the document, the models and the registries, never written twice."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import ValidationError

from devices import kinds
from gateway import config
from gateway.alerting.severity import Severity
from gateway.cli import main
from gateway.config.problems import Problem, problems
from gateway.rules import registry
from gateway.rules.base import Rule, RuleSpec, every_kind
from gateway.rules.params import RuleParams
from gateway.site import ROOM_TYPE_WORDS, WEEKDAY_WORDS, Building, RoomType

SITE = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {id: class-1, name: 小一班, type: classroom}
      - {id: kitchen, name: 厨房, type: kitchen}
devices:
  - id: fridge-1
    name: 留样冰箱
    kind: sample_fridge
    room: kitchen
    settings: {max_c: 6}
  - {id: meter-1, kind: water_meter, room: kitchen}
duty:
  people:
    - {id: li, name: 李主任}
  shifts:
    - {days: [mon], chain: [li]}
"""


def _problems(text: str) -> list[Problem]:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text, "site.yaml")
    return caught.value.problems


def _one(text: str, key: str) -> Problem:
    found = [p for p in _problems(text) if p.key == key]
    assert len(found) == 1, _problems(text)
    return found[0]


def _line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_the_site_loads() -> None:
    assert config.parse(SITE, "site.yaml").id == "kg-1"


def test_an_unknown_key_lists_the_keys_of_its_model() -> None:
    text = SITE.replace("    name: 教学楼\n", "    name: 教学楼\n    flor: 2\n")
    p = _one(text, "buildings[0].flor")
    assert p.line == _line_of(text, "flor:")
    assert "未知的键 `flor`；这里可用的键：" in p.zh
    assert p.zh.startswith("楼 main（教学楼）")
    assert p.en.startswith("building main (教学楼): unknown key `flor`; the keys here: ")
    assert p.en.endswith(", ".join(Building.model_fields))


def test_an_unknown_key_of_a_kinds_settings_lists_them_with_their_labels() -> None:
    text = SITE.replace("settings: {max_c: 6}", "settings: {max_celsius: 6}")
    p = _one(text, "devices[0].settings.max_celsius")
    assert p.line == _line_of(text, "max_celsius")
    labels = kinds()["sample_fridge"].setting_labels()
    assert p.zh.endswith(", ".join(f"{k}（{label.zh}）" for k, label in labels.items()))
    assert p.en.endswith(", ".join(f"{k} ({label.en})" for k, label in labels.items()))


def test_an_unknown_key_of_a_sources_protocol_lists_that_protocols_keys() -> None:
    text = SITE.replace("room: kitchen}", "room: kitchen, source: {protocol: zigbee2mqtt, name: m1, topik: x}}")
    p = _one(text, "devices[1].source.topik")
    assert "base_topic" in p.en
    assert "未知的键 `topik`" in p.zh


def test_an_unknown_rule_parameter_is_named_with_the_rules_and_the_parameters_labels() -> None:
    text = SITE.replace("settings: {max_c: 6}", "settings: {max_c: 6}\n    rules: {fridge_temperature: {hysteresis: 1}}")
    p = _one(text, "devices[0].rules.fridge_temperature.hysteresis")
    spec = registry.specs()["fridge_temperature"]
    assert p.line == _line_of(text, "hysteresis")
    assert f"规则「{spec.label_zh}」" in p.zh
    assert p.zh.endswith(", ".join(f"{k}（{label.zh}）" for k, label in spec.param_labels().items()))


def test_a_room_that_does_not_exist_lists_the_documents_rooms_with_their_names() -> None:
    text = SITE.replace("room: kitchen\n", "room: nap-1\n")
    p = _one(text, "devices[0].room")
    assert p.line == _line_of(text, "room: nap-1")
    assert p.zh == "设备 fridge-1（留样冰箱）：没有房间 `nap-1`；可选的房间：class-1（小一班）, kitchen（厨房）"
    # A room added to the document is listed: the list is the document's, not a fixed one.
    with_nap = text.replace("      - {id: kitchen,", "      - {id: nap-2, name: 午睡室, type: nap_room}\n      - {id: kitchen,")
    assert "nap-2（午睡室）" in _one(with_nap, "devices[0].room").zh
    assert "nap-2 (午睡室)" in _one(with_nap, "devices[0].room").en


@pytest.mark.parametrize(("old", "new", "key", "listed"), [
    ("chain: [li]", "chain: [li, wang]", "duty.shifts[0].chain", "li（李主任）"),
    ("duty:\n", "sweep: {standby_w: {fridge-9: 50}}\nduty:\n", "sweep.standby_w.fridge-9", "fridge-1（留样冰箱）, meter-1"),
    ("duty:\n", "notifications: {channels: [{type: webhook, id: hook, url: 'http://127.0.0.1/x', "
                "buildings: [annex]}]}\nduty:\n", "notifications.channels[0].buildings", "main（教学楼）"),
    ("duty:\n", "notifications: {channels: [{type: webhook, id: hook, url: 'http://127.0.0.1/x'}]}\n"
                "reports: {channels: [mail]}\nduty:\n", "reports.channels", "hook（webhook）"),
])
def test_references_list_what_the_document_has(old: str, new: str, key: str, listed: str) -> None:
    p = _one(SITE.replace(old, new), key)
    assert p.zh.endswith(f"：{listed}")
    assert p.line is not None


def test_an_unknown_rule_lists_the_rules_with_their_labels() -> None:
    text = SITE.replace("duty:\n", "work_orders: {rules: {water_leek: water}}\nduty:\n")
    p = _one(text, "work_orders.rules.water_leek")
    for spec in registry.specs().values():
        assert f"{spec.id}（{spec.label_zh}）" in p.zh
        assert f"{spec.id} ({spec.label_en})" in p.en


def test_a_devices_unknown_rule_lists_only_the_rules_for_its_kind() -> None:
    text = SITE.replace("settings: {max_c: 6}", "settings: {max_c: 6}\n    rules: {fridge_temp: {}, water_leak: {}}")
    unknown = _one(text, "devices[0].rules.fridge_temp")
    applies = [s for s in registry.specs().values() if s.applies("sample_fridge")]
    assert unknown.zh.endswith(", ".join(f"{s.id}（{s.label_zh}）" for s in applies))
    assert "water_leak" not in unknown.zh
    elsewhere = _one(text, "devices[0].rules.water_leak")
    assert elsewhere.zh.endswith("这条规则不适用于留样冰箱")


def test_an_unknown_kind_lists_the_kinds_with_their_labels() -> None:
    p = _one(SITE.replace("kind: water_meter", "kind: water_metre"), "devices[1].kind")
    assert "没有这种设备类型 `water_metre`" in p.zh
    for name, kind in kinds().items():
        assert f"{name}（{kind.label_zh}）" in p.zh
        assert f"{name} ({kind.label_en})" in p.en


def test_an_unknown_protocol_lists_the_protocols() -> None:
    from devices.vendors import sources

    p = _one(SITE.replace("room: kitchen}", "room: kitchen, source: {protocol: zigbee}}"), "devices[1].source.protocol")
    assert p.zh.endswith("：" + ", ".join(sorted(sources())))


def test_an_id_in_the_wrong_form_says_what_an_id_may_hold() -> None:
    p = _one(SITE.replace("id: fridge-1", "id: 冰箱 1"), "devices[0].id")
    assert "只能用英文字母、数字和 _ . -，以字母或数字开头，最多 64 个字符（例如 fridge-2）" in p.zh
    assert "use only letters, digits and _ . -" in p.en


def test_a_choice_lists_its_values_with_their_words() -> None:
    p = _one(SITE.replace("type: kitchen}", "type: kitchn}"), "buildings[0].rooms[1].type")
    assert p.zh.startswith("楼 main（教学楼）的房间 kitchen（厨房）：`kitchn` 不是可选的值；可选：")
    assert p.zh.endswith(", ".join(f"{t}（{ROOM_TYPE_WORDS[t][0]}）" for t in get_args(RoomType)))
    days = _one(SITE.replace("days: [mon]", "days: [monday]"), "duty.shifts[0].days[0]")
    assert f"mon（{WEEKDAY_WORDS['mon'][0]}）" in days.zh
    severity = _one(SITE.replace("duty:\n", "rules: {water_leak: {severity: urgent}}\nduty:\n"),
                    "rules.water_leak.severity")
    assert all(f"{s.value}（{s.words[0]}）" in severity.zh for s in Severity)
    assert severity.zh.startswith("规则「跑水漏水」的「报警级别」")


@pytest.mark.parametrize(("old", "new", "key", "zh", "en"), [
    ("settings: {max_c: 6}", "settings: {max_c: 6, alarm_delay_min: -5}", "devices[0].settings.alarm_delay_min",
     "「超温多久才报警」：应大于等于 0 分钟", "must be at least 0 min"),
    ("duty:\n", "rules: {water_leak: {continuous_min: 0}}\nduty:\n", "rules.water_leak.continuous_min",
     "「关门时段连续用水多久算跑水」：应大于 0 分钟", "must be greater than 0 min"),
    ("duty:\n", "rules: {low_battery: {below_pct: 120}}\nduty:\n", "rules.low_battery.below_pct",
     "应小于等于 100 %", "must be at most 100 %"),
    ("duty:\n", "rules: {load_after_hours: {learn_nights: seven}}\nduty:\n", "rules.load_after_hours.learn_nights",
     "应是整数", "must be a whole number"),
    ("settings: {max_c: 6}", "settings: {max_c: six}", "devices[0].settings.max_c", "应是数字", "must be a number"),
    ("duty:\n", "rules: {lights_out: {enabled: maybe}}\nduty:\n", "rules.lights_out.enabled",
     "应是 true（是）或 false（否）", "must be true or false"),
    ("duty:\n", "rules: {lights_out: {start: '25:00'}}\nduty:\n", "rules.lights_out.start",
     "「熄灯时间」：应是时刻", "must be a time of day"),
    ("duty:\n", "calendar: {closures: [{start: 2026-02-30, end: 2026-03-02}]}\nduty:\n",
     "calendar.closures[0].start", "应是", "date"),
    ("    name: 教学楼\n", "", "buildings[0].name", "缺少必填的键 `name`", "the required key `name` is missing"),
    ("    rooms:\n      - {id: class-1, name: 小一班, type: classroom}\n      - {id: kitchen, name: 厨房, type: kitchen}\n",
     "    rooms: []\n", "buildings[0].rooms", "至少要有 1 项", "needs at least 1 item"),
])
def test_values_out_of_range_or_of_the_wrong_type(old: str, new: str, key: str, zh: str, en: str) -> None:
    assert old in SITE
    p = _one(SITE.replace(old, new), key)
    assert zh in p.zh
    assert en in p.en
    assert p.line is not None


def test_anything_else_says_pydantics_message_in_both() -> None:
    p = _one(SITE.replace("name: 向日葵幼儿园\n", "name: 向日葵幼儿园\ntimezone: Mars/Olympus\n"), "timezone")
    assert p.zh == "这一项的值不对：unknown time zone 'Mars/Olympus'"
    assert p.en == "unknown time zone 'Mars/Olympus'"
    assert p.line == 3


def test_problems_without_lines() -> None:
    data = yaml.safe_load(SITE.replace("room: kitchen\n", "room: attic\n"))
    with pytest.raises(ValidationError) as caught:
        config.SiteConfig(**data)
    found = problems(caught.value, data)
    assert [(p.path, p.line) for p in found] == [(("devices", 0, "room"), None)]


# --- before YAML ----------------------------------------------------------------------------


def test_a_tab_in_the_indentation_is_named_with_its_line_even_when_yaml_fails() -> None:
    text = SITE.replace("    name: 教学楼\n", "\tname: 教学楼\n")
    found = _problems(text)
    assert found[0] == Problem((), 5, "第 5 行用了制表符（Tab）缩进；YAML 只认空格，请把 Tab 换成两个空格",
                               "line 5 is indented with a tab; YAML takes only spaces: replace the tab with two spaces")
    assert found[-1].en.startswith("not valid YAML")


def test_a_full_width_colon_after_a_key_is_named() -> None:
    text = SITE.replace("    name: 教学楼\n", "    name：教学楼\n")
    found = _problems(text)
    assert found[0].line == 5
    assert found[0].zh == "第 5 行的 `name：` 用了中文冒号「：」；键后面要用英文冒号加空格 `: `"
    assert len(found) > 1  # and what it broke
    listed = _problems(SITE.replace("      - {id: class-1,", "      - 名称：小二班\n      - {id: class-1,"))
    assert listed[0].zh.startswith("第 7 行的 `名称：`")


def test_a_full_width_space_in_the_indentation_is_named() -> None:
    found = _problems(SITE.replace("    name: 教学楼\n", "\u3000\u3000name: 教学楼\n"))
    assert found[0].line == 5
    assert "全角空格" in found[0].zh
    assert "full-width space" in found[0].en


def test_a_full_width_colon_in_a_value_or_a_comment_is_not_a_key() -> None:
    text = (SITE.replace("name: 留样冰箱", "name: 厨房：冰箱").replace("name: 李主任", "name: '后勤：李主任'")
            + "# 注意：冰箱\n")
    assert config.parse(text, "site.yaml").device("fridge-1") is not None
    broken = text.replace("kind: water_meter", "kind: water_metre")
    assert [p.key for p in _problems(broken)] == ["devices[1].kind"]


# --- check-config ---------------------------------------------------------------------------


def test_check_config_prints_chinese_then_english(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "site.yaml"
    text = SITE.replace("room: kitchen\n", "room: attic\n")
    bad.write_text(text, encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    first, second = capsys.readouterr().err.splitlines()
    line = _line_of(text, "room: attic")
    assert first == f"{bad}:{line}: devices[0].room: 设备 fridge-1（留样冰箱）：没有房间 `attic`；可选的房间：class-1（小一班）, kitchen（厨房）"
    assert second == "    device fridge-1 (留样冰箱): there is no room `attic`; the rooms are: class-1 (小一班), kitchen (厨房)"


# --- rule parameters' labels ----------------------------------------------------------------


def test_every_rule_parameter_has_a_label_in_both_languages() -> None:
    for spec in registry.specs().values():
        labels = spec.param_labels()
        assert list(labels) == list(spec.params.model_fields), spec.id
        assert all(label.zh and label.en for label in labels.values()), spec.id


def test_a_rule_parameter_without_a_label_is_refused() -> None:
    class Unlabelled(RuleParams):
        minutes: float = 5

    class UnlabelledRule(Rule[Unlabelled]):
        name = "unlabelled"

    spec = RuleSpec(UnlabelledRule, Unlabelled, "无标签", "Unlabelled", every_kind)
    with pytest.raises(ValueError, match=r"Unlabelled\.minutes has no Label"):
        spec.param_labels()


@pytest.mark.parametrize("text", [
    "a:\n  " + "- " * 3000 + "x\n",  # thousands of levels
    "a:\n" + "".join(f"{'  ' * n}- b{n}:\n" for n in range(40)) + "  " * 40 + "x: 1\n",  # deeper than a site file
    # aliases that would expand into 10^10 values
    "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefghi", "bcdefghij", strict=True)),
    # an alias whose anchor is 20 levels deep, used 15 levels down
    "a: &a " + "[" * 20 + "]" * 20 + "\nb: " + "[" * 15 + "*a" + "]" * 15 + "\n",
])
def test_a_file_nested_too_deep_or_too_large_is_refused_quickly(text: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.parse(text, "site.yaml")
    assert [p.en for p in refused.value.problems][-1].startswith("nested more than 32 levels deep")


def test_a_file_of_more_values_than_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_NODES", 1_000)  # the bound's own 1,000,000 take seconds to read
    flat = SITE + "x: [" + "1, " * 1_000 + "]\n"
    assert _problems(flat)[-1].en.startswith("nested more than 32 levels deep or over 1,000 values")


@pytest.mark.parametrize(("fragment", "at", "en"), [
    ("name: !!python/name:os.system 向日葵幼儿园", "name:", "a site file may not use the tag !!python/name:os.system"),
    ("name: !school 向日葵幼儿园", "name:", "a site file may not use the tag !school"),
    ("name: !!python/object/apply:os.system [id]", "name:", "a site file may not use the tag !!python/object/apply:os.system"),
    ("name: !!set {向日葵幼儿园: null}", "name:", "a site file may not use the tag !!set"),
    ("? [name]\n: 向日葵幼儿园", "? [name]", "a key must be text, not a mapping or a list"),
    ("name: *kindergarten", "name:", "the alias *kindergarten has no anchor &kindergarten before it"),
    ("name: 向日葵幼儿园\n---\nname: 第二份", "---", "two documents (---) in one file: a site file is one"),
])
def test_yaml_a_site_file_cannot_use_is_refused_at_its_line(fragment: str, at: str, en: str) -> None:
    """An administrator's import (POST /api/v1/admin/config/import) or a file on disk: refused
    with the reason and the line, never an error of the parser's escaping."""
    text = SITE.replace("name: 向日葵幼儿园", fragment)
    problem = _problems(text)[-1]
    assert (problem.en, problem.line) == (en, _line_of(text, at))
    assert problem.zh not in ("", problem.en)


def test_an_alias_gives_each_of_its_uses_the_anchor_s_values() -> None:
    text = (SITE.replace("settings: {max_c: 6}", "settings: &cold {max_c: 6}")
            .replace("  - {id: meter-1, kind: water_meter, room: kitchen}",
                     "  - {id: fridge-2, kind: sample_fridge, room: kitchen, settings: *cold}"))
    site = config.parse(text, "site.yaml")
    settings = [d.kind_settings().model_dump() for d in site.devices]
    assert settings[0] == settings[1]
    assert settings[1]["max_c"] == 6
    assert site.devices[0].settings is not site.devices[1].settings
