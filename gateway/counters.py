"""The gateway's counters, exposed at /metrics in Prometheus text format. One registry per
gateway instance (no process-wide singletons), so tests and replicas never share counts."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from devices.base import Reason

# The `_created` timestamps double the exposition and nobody here graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Counters:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "facility_messages_received", "Messages received, by transport", ["transport"], registry=r
        )
        self.rejected = Counter(
            "facility_messages_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        self.stored = Counter(
            "facility_messages_stored", "Messages (telemetry and events) stored, by sink", ["sink"], registry=r
        )
        self.sink_errors = Counter(
            "facility_sink_errors", "Failed writes to a sink (retried)", ["sink"], registry=r
        )
        self.sink_dropped = Counter(
            "facility_sink_batches_dropped", "Batches a sink refused for good", ["sink"], registry=r
        )
        self.latency = Histogram(
            "facility_ingest_latency_seconds",
            "From receipt to stored in every sink",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        for reason in Reason:  # every reason shows, at zero, before it first happens
            self.rejected.labels(reason.value)

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        Gauge(name, doc, registry=self.registry).set_function(read)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
