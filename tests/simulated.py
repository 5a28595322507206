"""The simulated site's messages as its devices send them, for tests that feed them to the
gateway or the rules: in the test's own process, or, for a month of them, generated in a
process of its own, so that simulating and encoding take the other core while the test feeds."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from multiprocessing.connection import Connection

from gateway.config import SiteConfig
from simulators.faults import Fault, inject
from simulators.model import SimMessage, SiteSimulation
from simulators.publish import encode

Sent = tuple[int, str, str, bytes]  # (event time in Unix ms, device, channel, payload as sent)
CHUNK = 5_000  # messages per piece from the simulating process


def encoded(messages: Iterable[SimMessage]) -> Iterator[Sent]:
    """Each message with its event time, its payload as compact UTF-8 JSON, as a native device sends it."""
    for m in messages:
        yield int(m.ts.timestamp() * 1000), m.device_id, m.channel, encode(m.payload)


def simulated(site: SiteConfig, start: datetime, end: datetime, faults: Sequence[Fault] = (),
              seed: int = 1) -> Iterator[Sent]:
    """The simulation's messages from `start` to `end` with `faults` injected, encoded, in time
    order; generated in a process of its own."""
    processes = multiprocessing.get_context("spawn")  # not fork: the test process has threads
    pieces, out = processes.Pipe(duplex=False)
    simulator = processes.Process(target=_simulate, args=(site, start, end, faults, seed, out), daemon=True)
    simulator.start()
    out.close()  # the simulator's end: receiving fails at once if it dies
    try:
        with pieces:
            while piece := pieces.recv():
                yield from piece
        simulator.join()
        assert simulator.exitcode == 0, f"the simulating process ended with {simulator.exitcode}"
    finally:
        if simulator.is_alive():  # the caller stopped early
            simulator.terminate()
            simulator.join()


def _simulate(site: SiteConfig, start: datetime, end: datetime, faults: Sequence[Fault], seed: int,
              out: Connection) -> None:
    """In the simulating process: the messages in pieces, then an empty piece."""
    piece: list[Sent] = []
    with out:
        for sent in encoded(inject(SiteSimulation(site, seed).messages(start, end), faults, site)):
            piece.append(sent)
            if len(piece) == CHUNK:
                out.send(piece)
                piece = []
        if piece:
            out.send(piece)
        out.send([])
