"""Device kinds, one module each, discovered by name: a module that exports `KIND` is a kind."""

import importlib
import pkgutil
from functools import cache

from devices.base import DeviceKind, Metric, Utility


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


@cache
def meters() -> dict[Utility, tuple[DeviceKind, Metric]]:
    """For each utility a site buys, the kind that meters it and the counter it reads
    (`Metric.utility`). One kind a utility: a site's totals add up one kind's main meters."""
    found: dict[Utility, tuple[DeviceKind, Metric]] = {}
    for kind in kinds().values():
        for metric in kind.metrics:
            if metric.utility is None:
                continue
            if metric.utility in found:
                other, _ = found[metric.utility]
                raise ValueError(f"kinds {other.name} and {kind.name} both meter {metric.utility}")
            found[metric.utility] = (kind, metric)
    return found
