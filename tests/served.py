"""An ASGI app served by uvicorn on a free loopback port, in a thread of the test's process:
real HTTP over a real socket (streaming, concurrent connections, client addresses), while
the test can still reach into the app, e.g. to move its `ManualClock`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import uvicorn
from fastapi import FastAPI

from tests.services import HOST, free_port, wait_for

# Open responses (a live stream) get this long to finish when the server stops.
GRACEFUL_S: Final = 2


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Starts the app (its lifespan included) and yields its base URL; stops it after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning",
                                           timeout_graceful_shutdown=GRACEFUL_S))
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive())
        if not server.started:
            raise RuntimeError("uvicorn did not start: see the log above")
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_S + 10)
