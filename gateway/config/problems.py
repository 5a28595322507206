"""The site file's mistakes as a person can act on them, in Chinese and in English.

Each pydantic error of the site's model becomes a `Problem`: where it is in the document (its
path and line) and what is wrong, with what is allowed there — the keys of the model at that
place, the rooms or people the document has (with their names), the kinds, protocols and rules
the registries know (with their labels), the values of a choice, a number's bounds with its
unit. Errors that a validator folded into one message (a kind's settings, a source, rule
parameters) are validated again here against their own model, so that they too come out one
by one, labelled. The admin pages show Problems; `check-config` prints them with file and line.

The raw text is also checked before YAML reads it (`text_hints`): a tab or a full-width space
in the indentation and a full-width colon after a key make YAML's own message cryptic.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from devices import kinds
from devices.base import Label
from devices.vendors import sources
from gateway.reports.subitems import subitems_for, words
from gateway.rules import registry
from gateway.site import IDENT_PATTERN, ROOM_TYPE_WORDS, WEEKDAY_WORDS, WEEKDAYS, utility_of

__all__ = ["Problem", "document", "problems", "text_hints"]

Path = tuple[str | int, ...]
M = TypeVar("M", bound=type[BaseModel])


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake: where it is in the document (`path`, e.g. ("devices", 3, "room"), and its
    line in the file where known) and what is wrong, in Chinese and in English."""

    path: Path
    line: int | None
    zh: str
    en: str

    @property
    def key(self) -> str:
        """The path as the site file's reader writes it: `devices[3].room`; empty at the top."""
        return ".".join(f"[{p}]" if isinstance(p, int) else p for p in self.path).replace(".[", "[")


_DOCUMENTS: dict[str, type[BaseModel]] = {}


def document(model: M) -> M:
    """Declares `model` the model of a whole document (the site file's): `problems` finds it
    again by the title of its ValidationError and walks it for what each place allows."""
    _DOCUMENTS[model.__name__] = model
    return model


def problems(exc: ValidationError, data: Mapping[str, Any], lines: dict[Path, int] | None = None) -> list[Problem]:
    """Every error of `exc` (a document's validation of `data`) as a Problem, with the line of
    its key where `lines` (path → line) has it."""
    doc = _Doc(_DOCUMENTS[exc.title], data, lines or {})
    return [p for err in exc.errors() for p in doc.explain(err, ())]


# --- before YAML --------------------------------------------------------------------------

_INDENT: Final = re.compile(r"^[ \t\u3000]*")
# A key written with a full-width colon: a plain key at the start of a line (after any "- "),
# then "：". Not in a comment, a quoted value, or after the key's own ": " (a value's "：").
_KEY_CHAR: Final = r"[^\s:#'\"{}\[\],：]"
_WIDE_COLON_KEY: Final = re.compile(rf"^[ \t\u3000]*(?:-[ \t]+)*(?P<key>{_KEY_CHAR}+)[ \t]*：")


def text_hints(text: str) -> list[Problem]:
    """Indentation with a tab or a full-width space, and a full-width colon after a key, by line."""
    found: list[Problem] = []
    if "\t" not in text and "\u3000" not in text and "：" not in text:
        return found  # most files: nothing to look for line by line
    for n, raw in enumerate(text.splitlines(), start=1):
        indent = _INDENT.match(raw)
        lead = indent[0] if indent else ""
        rest = raw[len(lead):]
        if not rest or rest.startswith("#"):
            continue
        if "\t" in lead:
            found.append(Problem((), n, f"第 {n} 行用了制表符（Tab）缩进；YAML 只认空格，请把 Tab 换成两个空格",
                                 f"line {n} is indented with a tab; YAML takes only spaces: replace the tab with "
                                 f"two spaces"))
        if "\u3000" in lead:
            found.append(Problem((), n, f"第 {n} 行的缩进里有全角空格；YAML 只认半角空格，请换成两个普通空格",
                                 f"line {n} is indented with a full-width space (U+3000); YAML takes only ordinary "
                                 f"spaces"))
        if (m := _WIDE_COLON_KEY.match(raw)) is not None:
            key = m["key"]
            found.append(Problem((), n, f"第 {n} 行的 `{key}：` 用了中文冒号「：」；键后面要用英文冒号加空格 `: `",
                                 f"line {n}: `{key}：` has a full-width colon; a key is followed by an ASCII colon "
                                 f"and a space `: `"))
    return found


# --- the document's model -----------------------------------------------------------------

_NOUNS: Final[dict[str, tuple[str, str]]] = {
    "buildings": ("楼", "building"), "rooms": ("房间", "room"), "devices": ("设备", "device"),
    "people": ("值班人员", "person"), "shifts": ("班次", "shift"), "channels": ("通知渠道", "channel"),
    "term_breaks": ("假期", "term break"), "closures": ("停课", "closure"), "guard_duty": ("护校", "guard duty"),
    "electricity_periods": ("电价时段", "price period"), "meals": ("餐次", "meal"),
}
_AT: Final = re.compile(r"^@(?P<loc>[\w.\[\]-]+): (?P<msg>.*)$", re.S)
_OF_WORDS: Final = ROOM_TYPE_WORDS | WEEKDAY_WORDS  # values of a choice that have words


def _words(value: object) -> tuple[str, str] | None:
    if isinstance(value, Enum) and isinstance(words := getattr(value, "words", None), tuple):
        return (str(words[0]), str(words[1]))
    return _OF_WORDS.get(str(value))


def _listed(items: Sequence[tuple[str, str, str]]) -> tuple[str, str]:
    """`id（名称）, …` and `id (name), …`; an item without a name is its id alone."""
    zh = ", ".join(f"{i}（{z}）" if z and z != i else i for i, z, _ in items)
    en = ", ".join(f"{i} ({e})" if e and e != i else i for i, _, e in items)
    return zh or "（无）", en or "(none)"


def _strip(tp: Any) -> Any:
    """A field's type without Annotated, None and SerializeAsAny around it."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _member(tp: Any, value: Any) -> type[BaseModel] | None:
    """The model of a place: its declared model, or of a union of models (the notification
    channels) the member whose `type` the document's value names."""
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if get_origin(tp) not in (Union, types.UnionType) or not isinstance(value, Mapping):
        return None
    models = [m for m in get_args(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
    return next((m for m in models if "type" in m.model_fields and m.model_fields["type"].default == value.get("type")),
                None)


def _choices(tp: Any) -> list[object]:
    """The values of a Literal or an Enum, inside any list, optional or Annotated."""
    tp = _strip(tp)
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return list(tp)
    if get_origin(tp) in (list, tuple, set, frozenset) and get_args(tp):
        return _choices(get_args(tp)[0])
    return []


@dataclass(frozen=True, slots=True)
class _Doc:
    root: type[BaseModel]
    data: Mapping[str, Any]
    lines: dict[Path, int]

    # Where things are.

    def value(self, path: Path) -> Any:
        here: Any = self.data
        for p in path:
            listed = isinstance(p, int) and isinstance(here, list) and 0 <= p < len(here)
            if not listed and not (isinstance(p, str) and isinstance(here, Mapping) and p in here):
                return None
            here = here[p]
        return here

    def line(self, path: Path) -> int | None:
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def _declared(self, path: Path) -> type[BaseModel] | None:
        """Models chosen by the document's own values: a device's settings by its kind, its
        source by its protocol, rule parameters by the rule's id."""
        match path:
            case ("devices", int(), "settings"):
                found = kinds().get(str(self.value((*path[:-1], "kind"))))
                return found.settings if found else None
            case ("devices", int(), "source"):
                source = self.value(path)
                return sources().get(str(source.get("protocol"))) if isinstance(source, Mapping) else None
            case ("rules", str(name)) | ("devices", int(), "rules", str(name)):
                spec = registry.specs().get(name)
                return spec.params if spec else None
        return None

    def walk(self, path: Path) -> tuple[Any, FieldInfo | None]:
        """The type declared at `path`, and the field it was declared by (None past a list or
        a mapping, or where the document's model does not say)."""
        tp: Any = self.root
        field: FieldInfo | None = None
        for n, step in enumerate(path):
            declared = self._declared(path[:n + 1])
            if declared is not None:
                tp, field = declared, None
                continue
            model = _member(tp, self.value(path[:n]))
            if model is not None and isinstance(step, str):
                field = _field(model, step)
                tp = field.annotation if field else None
            else:
                tp, field = _inner(tp, step), None
        return tp, field

    def label(self, path: Path) -> Label | None:
        if not path:
            return None
        _, field = self.walk(path)
        return next((m for m in field.metadata if isinstance(m, Label)), None) if field else None

    def place(self, path: Path) -> tuple[str, str]:
        """The items the path goes through, in words: 楼 main（教学楼）的房间 kitchen（厨房）."""
        zh: list[str] = []
        en: list[str] = []
        for n, step in enumerate(path):
            parent = path[n - 1] if n else None
            if isinstance(step, int) and isinstance(parent, str) and parent in _NOUNS:
                noun_zh, noun_en = _NOUNS[parent]
                item = self.value(path[:n + 1])
                ident = item.get("id") if isinstance(item, Mapping) else None
                name = item.get("name") if isinstance(item, Mapping) else None
                if isinstance(ident, str):
                    named = f"（{name}）" if isinstance(name, str) and name else ""
                    zh.append(f"{noun_zh} {ident}{named}")
                    en.append(f"{noun_en} {ident}" + (f" ({name})" if named else ""))
                else:
                    zh.append(f"第 {step + 1} 个{noun_zh}")
                    en.append(f"{noun_en} {step + 1}")
            elif parent == "rules" and isinstance(step, str) and (spec := registry.specs().get(step)):
                zh.append(f"规则「{spec.label_zh}」")
                en.append(f"rule “{spec.label_en}”")
        return "的".join(zh), " of ".join(reversed(en))

    def subject(self, path: Path) -> tuple[str, str]:
        """Where the problem is, in words: its place and its label (a key without a label is
        named by the line's key already)."""
        zh, en = self.place(path)
        label = self.label(path)
        if label is not None:
            zh = f"{zh}的「{label.zh}」" if zh else f"「{label.zh}」"
            en = f"“{label.en}” of {en}" if en else f"“{label.en}”"
        return zh, en

    def problem(self, path: Path, zh: str, en: str) -> Problem:
        where_zh, where_en = self.subject(path)
        return Problem(path, self.line(path), f"{where_zh}：{zh}" if where_zh else zh,
                       f"{where_en}: {en}" if where_en else en)

    # What each error says.

    def explain(self, err: Any, prefix: Path) -> list[Problem]:
        loc: Path = self.unwrapped((*prefix, *err["loc"]))
        kind: str = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if (at := _AT.match(msg)) is not None:  # a whole-file check names its key as "@path: message"
            msg = at["msg"]
            loc = (*prefix, *(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", at["loc"])))
        ctx: Mapping[str, Any] = err.get("ctx") or {}
        if kind in ("value_error", "assertion_error"):
            if prefix and not err["loc"]:  # a nested model's own check (min_c below max_c): its message says it
                return [self.fallback(loc, msg)]
            return self.checked(loc) or [self.fallback(loc, msg)]
        if kind == "extra_forbidden":
            return [self.unknown_key(loc)]
        if kind == "missing":
            key = loc[-1] if loc else ""
            return [self.problem(loc, f"缺少必填的键 `{key}`", f"the required key `{key}` is missing")]
        if kind in _BOUNDS:
            return [self.bound(loc, kind, ctx)]
        if kind in _EXPECTED:
            zh, en = _EXPECTED[kind]
            return [self.problem(loc, zh, en)]
        if kind in ("literal_error", "enum"):
            return [self.choice(loc, err.get("input"), ctx)]
        if kind == "string_pattern_mismatch" and ctx.get("pattern") == IDENT_PATTERN:
            return [self.problem(loc, f"`{err.get('input')}` 不能用作 id：只能用英文字母、数字和 _ . -，"
                                      "以字母或数字开头，最多 64 个字符（例如 fridge-2）",
                                 f"`{err.get('input')}` cannot be an id: use only letters, digits and _ . -, starting "
                                 f"with a letter or a digit, at most 64 characters (e.g. fridge-2)")]
        if kind in ("too_short", "too_long"):
            n = ctx.get("min_length" if kind == "too_short" else "max_length")
            if kind == "too_short":
                return [self.problem(loc, f"至少要有 {n} 项", f"needs at least {n} item(s)")]
            return [self.problem(loc, f"最多只能有 {n} 项", f"may have at most {n} item(s)")]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            tags = str(ctx.get("expected_tags", "")).replace("'", "")
            key = str(ctx.get("discriminator", "type")).strip("'")
            return [self.problem(loc, f"{key} 应是以下之一：{tags}", f"{key} must be one of: {tags}")]
        return [self.fallback(loc, msg)]

    def unwrapped(self, loc: Path) -> Path:
        """`loc` without the member tags pydantic puts in a union's path (a channel's `webhook`)."""
        out: list[str | int] = []
        for step in loc:
            here = self.value(tuple(out))
            if isinstance(here, Mapping) and step not in here and here.get("type") == step:
                continue
            out.append(step)
        return tuple(out)

    def fallback(self, loc: Path, msg: str) -> Problem:
        return self.problem(loc, f"这一项的值不对：{msg}", msg)

    def unknown_key(self, loc: Path) -> Problem:
        model = _member(self.walk(loc[:-1])[0], self.value(loc[:-1])) if loc else None
        allowed = list(model.model_fields) if model else []
        labels = {k: self.label((*loc[:-1], k)) for k in allowed}
        zh = ", ".join(f"{k}（{lab.zh}）" if (lab := labels[k]) else k for k in allowed)
        en = ", ".join(f"{k} ({lab.en})" if (lab := labels[k]) else k for k in allowed)
        key = loc[-1] if loc else ""
        if not allowed:
            return self.problem(loc, f"未知的键 `{key}`", f"unknown key `{key}`")
        return self.problem(loc, f"未知的键 `{key}`；这里可用的键：{zh}", f"unknown key `{key}`; the keys here: {en}")

    def bound(self, loc: Path, kind: str, ctx: Mapping[str, Any]) -> Problem:
        zh_word, en_word, key = _BOUNDS[kind]
        label = self.label(loc)
        unit_zh = f" {label.unit_zh}" if label and label.unit_zh else ""
        unit_en = f" {label.unit_en}" if label and label.unit_en else ""
        limit = ctx.get(key)
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
        return self.problem(loc, f"应{zh_word} {shown}{unit_zh}", f"must be {en_word} {shown}{unit_en}")

    def choice(self, loc: Path, given: object, ctx: Mapping[str, Any]) -> Problem:
        values = _choices(self.walk(loc)[0])
        if not values:
            expected = str(ctx.get("expected", ""))
            return self.problem(loc, f"`{given}` 不是可选的值；可选：{expected}",
                                f"`{given}` is not one of the values allowed: {expected}")
        items = []
        for v in values:
            words = _words(v)
            raw = str(v.value if isinstance(v, Enum) else v)
            items.append((raw, *(words or ("", ""))))
        zh, en = _listed(items)
        return self.problem(loc, f"`{given}` 不是可选的值；可选：{zh}",
                            f"`{given}` is not one of the values allowed: {en}")

    # Whole-file checks and validators that fold errors into one message: explained from the document.

    def checked(self, loc: Path) -> list[Problem]:
        value = self.value(loc)
        match loc:
            case ("devices", int(), "kind"):
                known = [(k, v.label_zh, v.label_en) for k, v in sorted(kinds().items())]
                zh, en = _listed(known)
                return [self.problem(loc, f"没有这种设备类型 `{value}`；可用的类型：{zh}",
                                     f"unknown device kind `{value}`; the kinds are: {en}")]
            case ("devices", int(), "settings" | "source"):
                return self.nested(loc, value)
            case ("devices" | "derived_subitems", int(), "subitem"):
                return [self.subitem(loc, value)]
            case ("rules",) | ("devices", int(), "rules"):
                return self.rules(loc, value)
            case ("opening_hours",) | ("buildings", int(), "opening_hours"):
                days = _listed([(d, *WEEKDAY_WORDS[d]) for d in WEEKDAYS])
                return [self.problem((*loc, day), f"不认识的星期 `{day}`；可用：{days[0]}",
                                     f"unknown weekday `{day}`; use: {days[1]}")
                        for day in (value or {}) if day not in WEEKDAYS]
            case (*_, "id") if isinstance(value, str) and self.duplicate(loc, value):
                return [self.problem(loc, f"id `{value}` 用了两次；每个 id 只能用一次",
                                     f"the id `{value}` is used twice; each id may be used once")]
        return self.reference(loc, value)

    def subitem(self, loc: Path, value: Any) -> Problem:
        """A sub-item that is not one of the meter's category, with those that are, in words."""
        owner = self.value(loc[:-1]) or {}
        if loc[0] == "derived_subitems":
            main = owner.get("main")
            owner = next((d for d in self.value(("devices",)) or [] if isinstance(d, Mapping) and d.get("id") == main),
                         {})
        kind = owner.get("kind")
        utility = utility_of(kind) if kind in kinds() else None
        allowed = subitems_for(utility) if utility is not None else []
        if not allowed:
            return self.problem(loc, "这种设备没有能耗分项：只有电表标注分项",
                                "this kind of device has no energy sub-items: only electricity meters are tagged")
        zh = "；".join(words(s.code)[0] for s in allowed)
        en = "; ".join(words(s.code)[1] for s in allowed)
        return self.problem(loc, f"`{value}` 不是这种表计的能耗分项；可用：{zh}",
                            f"`{value}` is not a sub-item of this meter; use one of: {en}")

    def duplicate(self, loc: Path, ident: str) -> bool:
        siblings = self.value(loc[:-2])
        return isinstance(siblings, list) and sum(isinstance(s, Mapping) and s.get("id") == ident
                                                  for s in siblings) > 1

    def nested(self, loc: Path, value: Any) -> list[Problem]:
        """A device's settings or source, validated again by its own model."""
        if loc[-1] == "source":
            known = _listed([(p, "", "") for p in sorted(sources())])
            protocol = value.get("protocol") if isinstance(value, Mapping) else None
            if protocol is None:
                return [self.problem(loc, f"来源要写成带 protocol 的映射；protocol 可用：{known[0]}",
                                     f"a source is a mapping with a protocol, one of: {known[1]}")]
            if protocol not in sources():
                return [self.problem((*loc, "protocol"), f"没有这种协议 `{protocol}`；可用：{known[0]}",
                                     f"unknown protocol `{protocol}`; the protocols are: {known[1]}")]
        model = self._declared(loc)
        if model is None:
            return []
        try:
            model.model_validate(value)
        except ValidationError as exc:
            return [p for err in exc.errors() for p in self.explain(err, loc)]
        return []

    def rules(self, loc: Path, value: Any) -> list[Problem]:
        """Rule parameters, for the site (`rules:`) or one device: unknown rules, rules that do
        not apply to the device's kind, and each parameter's own mistakes, by its label."""
        specs = registry.specs()
        kind = self.value((*loc[:-1], "kind")) if len(loc) > 1 else None
        known = _listed([(s.id, s.label_zh, s.label_en) for s in specs.values()
                         if kind is None or s.applies(str(kind))])
        found: list[Problem] = []
        for name, params in (value or {}).items():
            spec = specs.get(name)
            if spec is None:
                found.append(self.problem((*loc, name), f"没有这条规则 `{name}`；可用的规则：{known[0]}",
                                          f"unknown rule `{name}`; the rules are: {known[1]}"))
                continue
            if kind is not None and not spec.applies(str(kind)):
                device_kind = kinds().get(str(kind))
                kind_zh, kind_en = (device_kind.label_zh, device_kind.label_en) if device_kind else (kind, kind)
                found.append(self.problem((*loc, name), f"这条规则不适用于{kind_zh}",
                                          f"it does not apply to a {kind_en}"))
                continue
            try:
                spec.params.model_validate(params)
            except ValidationError as exc:
                found.extend(p for err in exc.errors() for p in self.explain(err, (*loc, name)))
        return found

    def reference(self, loc: Path, value: Any) -> list[Problem]:
        """An id that names something the document (or a registry) does not have."""
        for pattern, what in _REFERENCES:
            if len(pattern) == len(loc) and all(p == s or (p is str and isinstance(s, str))
                                                or (p is int and isinstance(s, int)) for p, s in zip(pattern, loc,
                                                                                                    strict=True)):
                known = self.known(what)
                ids = {i for i, _, _ in known}
                given = [loc[-1]] if pattern[-1] is str else (value if isinstance(value, list) else [value])
                noun_zh, noun_en, nouns_en = _REFERENCE_NOUNS[what]
                zh, en = _listed(known)
                return [self.problem(loc, f"没有{noun_zh} `{g}`；可选的{noun_zh}：{zh}",
                                     f"there is no {noun_en} `{g}`; the {nouns_en} are: {en}")
                        for g in given if g not in ids]
        return []

    def known(self, what: str) -> list[tuple[str, str, str]]:
        """The ids of `what` with their names: from the document, or the rules' registry."""
        def named(items: Any, name: str = "name") -> list[tuple[str, str, str]]:
            return [(str(i.get("id")), str(i.get(name) or ""), str(i.get(name) or "")) for i in items or []
                    if isinstance(i, Mapping) and i.get("id") is not None]

        buildings = self.value(("buildings",)) or []
        match what:
            case "room":
                return [r for b in buildings if isinstance(b, Mapping) for r in named(b.get("rooms"))]
            case "building":
                return named(buildings)
            case "device":
                return named(self.value(("devices",)))
            case "person":
                return named(self.value(("duty", "people")))
            case "channel":
                return named(self.value(("notifications", "channels")), "type")
        return [(s.id, s.label_zh, s.label_en) for s in registry.specs().values()]


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    found = model.model_fields.get(key)
    return found or next((f for f in model.model_fields.values() if f.alias == key), None)


def _inner(tp: Any, step: str | int) -> Any:
    """A list's item type (by index) or a mapping's value type (by key)."""
    tp = _strip(tp)
    args = get_args(tp)
    origin = get_origin(tp)
    if isinstance(step, int) and origin in (list, tuple, Sequence) and args:
        return args[0]
    if isinstance(step, str) and origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


_BOUNDS: Final[dict[str, tuple[str, str, str]]] = {
    "greater_than": ("大于", "greater than", "gt"), "greater_than_equal": ("大于等于", "at least", "ge"),
    "less_than": ("小于", "less than", "lt"), "less_than_equal": ("小于等于", "at most", "le"),
}
_EXPECTED: Final[dict[str, tuple[str, str]]] = {
    "int_parsing": ("应是整数", "must be a whole number"), "int_type": ("应是整数", "must be a whole number"),
    "int_from_float": ("应是整数（不带小数）", "must be a whole number, without decimals"),
    "float_parsing": ("应是数字", "must be a number"), "float_type": ("应是数字", "must be a number"),
    "bool_parsing": ("应是 true（是）或 false（否）", "must be true or false"),
    "bool_type": ("应是 true（是）或 false（否）", "must be true or false"),
    "time_parsing": ("应是时刻，写成带引号的 \"07:30\"", "must be a time of day, written in quotes: \"07:30\""),
    "time_type": ("应是时刻，写成带引号的 \"07:30\"", "must be a time of day, written in quotes: \"07:30\""),
    "date_parsing": ("应是日期，例如 2026-09-01", "must be a date, e.g. 2026-09-01"),
    "date_from_datetime_parsing": ("应是存在的日期，例如 2026-09-01", "must be a real date, e.g. 2026-09-01"),
    "date_type": ("应是日期，例如 2026-09-01", "must be a date, e.g. 2026-09-01"),
    "string_type": ("应是文字", "must be text"),
    "list_type": ("应是列表（每项一行，以 - 开头）", "must be a list (one item a line, each starting with -)"),
    "dict_type": ("应是键值对（每行 键: 值）", "must be a mapping (key: value on each line)"),
    "model_type": ("应是键值对（每行 键: 值）", "must be a mapping (key: value on each line)"),
    "model_attributes_type": ("应是键值对（每行 键: 值）", "must be a mapping (key: value on each line)"),
}
_REFERENCES: Final[tuple[tuple[tuple[object, ...], str], ...]] = (
    (("devices", int, "room"), "room"),
    (("duty", "shifts", int, "chain"), "person"),
    (("notifications", "channels", int, "buildings"), "building"),
    (("notifications", "channels", int, "rules"), "rule"),
    (("reports", "channels"), "channel"),
    (("work_orders", "rules", str), "rule"),
    (("sweep", "standby_w", str), "device"),
)
_REFERENCE_NOUNS: Final[dict[str, tuple[str, str, str]]] = {
    "room": ("房间", "room", "rooms"), "building": ("楼", "building", "buildings"),
    "device": ("设备", "device", "devices"), "person": ("值班人员", "person", "people on duty"),
    "channel": ("通知渠道", "notification channel", "notification channels"), "rule": ("规则", "rule", "rules"),
}
