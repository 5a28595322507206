"""The notification channels, one module each, discovered: a module here declares its
settings model (a `ChannelSettings` with a `type` literal) as `SETTINGS` and makes its sender
with `make(settings, context)`. The site file's `notifications.channels`, the alerts'
notifier and report delivery all take the channels from `channels()`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from gateway.notify.message import ChannelSettings, Context, Sender


@cache
def channels() -> dict[str, ModuleType]:
    """Channel type (`webhook`, `email`, …) → its module."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        settings: type[ChannelSettings] = module.SETTINGS
        found[settings.model_fields["type"].default] = module
    return found


def sender(settings: ChannelSettings, context: Context) -> Sender:
    """The sender of a configured channel."""
    made: Sender = channels()[settings.type].make(settings, context)
    return made
