"""Device kinds, one module each, discovered by name: a module that exports `KIND` is a kind."""

import importlib
import pkgutil
from functools import cache

from devices.base import DeviceKind


@cache
def kinds() -> dict[str, DeviceKind]:
    found: dict[str, DeviceKind] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, DeviceKind):
            found[kind.name] = kind
    return found
