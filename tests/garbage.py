"""What the garbage collector would have to find: objects left in reference cycles, which
reference counting never frees. Each cycle a message leaves is work for a collection that
holds the GIL for tens of milliseconds while readings and alerts wait (docs/performance.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """Collects first, then holds collections off; once the block is done, the objects that
    became garbage in cycles meanwhile (in the whole process: run nothing else)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    found: list[object] = []
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            found.extend(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            if was_enabled:
                gc.enable()
