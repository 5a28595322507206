"""What is wrong with a site, for people: each problem at its place, in Chinese and English.
(A first form; the wording with what is allowed at each place follows.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

_AT = re.compile(r"^@(?P<loc>[\w.\[\]-]+): (?P<msg>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class Problem:
    path: tuple[str | int, ...]
    line: int | None
    zh: str
    en: str


def problems(exc: ValidationError, data: Mapping[str, Any], lines: dict[Any, int] | None = None) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors():
        loc: tuple[str | int, ...] = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if (at := _AT.match(msg)) is not None:
            msg = at["msg"]
            loc = tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", at["loc"]))
        out.append(Problem(loc, None, f"这一项的值不对：{msg}", msg))
    return out
