"""The rules, one module per rule family, discovered by name like device kinds: a module of
gateway/rules/ that exports `RULES` (a tuple of `RuleSpec`) declares those rules.

Discovery runs on the first call, not at import: the site file's model (gateway/config/)
imports this module to check rule parameters, and the rule modules import the site's plain
models (gateway/site.py), so nothing here may import a rule module at import time.
"""

from __future__ import annotations

import importlib
import pkgutil
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

import gateway.rules

if TYPE_CHECKING:
    from gateway.rules.base import RuleSpec


@cache
def specs() -> dict[str, RuleSpec[Any]]:
    """Every rule's spec by id, in module order (by name), then in each module's order."""
    from gateway.rules.base import RuleSpec

    found: dict[str, RuleSpec[Any]] = {}
    for info in sorted(pkgutil.iter_modules(gateway.rules.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"gateway.rules.{info.name}")
        for spec in getattr(module, "RULES", ()):
            if not isinstance(spec, RuleSpec):
                raise TypeError(f"gateway.rules.{info.name}.RULES holds a {type(spec).__name__}, not a RuleSpec")
            if spec.id in found:
                raise ValueError(f"rule {spec.id!r} is declared twice")
            spec.param_labels()  # a parameter without a label would reach people by its key
            found[spec.id] = spec
    return found


def ids() -> list[str]:
    return list(specs())


def name_enum() -> type[StrEnum]:
    """Every rule's id as an enum (`RuleName`), for an API parameter that takes one."""
    return StrEnum("RuleName", {spec.id.upper(): spec.id for spec in specs().values()})  # type: ignore[return-value]
