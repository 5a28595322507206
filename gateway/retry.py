"""One way to wait before trying again, and one way to say that a part is failing.

`Backoff` is capped exponential backoff with jitter: each wait is a random share between a
half and the whole of a ceiling that doubles from `first_s` up to `max_s`. The jitter keeps
the retries of many gateways (or channels, or sinks) from landing in the same second after a
shared outage. Used by the sink writers and the spool's thread, the notification channels and
the MQTT reconnection.
"""

from __future__ import annotations

import asyncio
import logging
import random

log = logging.getLogger(__name__)
# Its own generator: the shared one is for the application (and tests seed it). Jitter only,
# not cryptography.
_jitter = random.Random()


class Backoff:
    """Capped exponential backoff with jitter; `reset` after a success."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._ceiling = min(first_s, max_s)

    def next_s(self) -> float:
        """The next wait, in seconds; the one after may be twice as long, up to the cap."""
        wait = self._ceiling * _jitter.uniform(0.5, 1.0)
        self._ceiling = min(self._ceiling * 2, self._max_s)
        return wait

    async def wait(self) -> None:
        await asyncio.sleep(self.next_s())

    def reset(self) -> None:
        self._ceiling = min(self._first_s, self._max_s)


class Health:
    """Whether a part works, with the last error; logs each change once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = True
        self.last_error = ""

    def failed(self, error: str) -> None:
        if self.ok:
            log.warning("%s is failing: %s", self.name, error)
        self.ok = False
        self.last_error = error

    def recovered(self) -> None:
        if not self.ok:
            log.info("%s is back", self.name)
        self.ok = True
        self.last_error = ""
