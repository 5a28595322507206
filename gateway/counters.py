"""The gateway's counters, exposed at /metrics in Prometheus text format. One registry per
gateway instance (no process-wide singletons), so tests and replicas never share counts.

The accounting counters (received, rejected, stored, dropped, pending) are not kept here:
the spool persists them in the same transactions as what they count, and `accounting`
exposes its snapshot, so they survive restarts and always balance:
received = stored + rejected + dropped + pending, for every sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from devices.base import Reason
from gateway.spool.store import DROP_REASONS, Totals

# The `_created` timestamps double the exposition and nobody here graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Counters:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sink_errors = Counter(
            "facility_sink_errors", "Failed writes to a sink or the spool (retried)", ["sink"], registry=r
        )
        self.latency = Histogram(
            "facility_ingest_latency_seconds",
            "From receipt to stored in the sink",
            ["sink"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=r,
        )

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        Gauge(name, doc, registry=self.registry).set_function(read)

    def accounting(self, read: Callable[[], Totals]) -> None:
        self.registry.register(_Accounting(read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Accounting(Collector):
    def __init__(self, read: Callable[[], Totals]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        t = self._read()
        sinks = sorted(t.pending)
        received = CounterMetricFamily("facility_messages_received", "Messages received, by transport",
                                       labels=["transport"])
        for transport, n in sorted(t.received.items()):
            received.add_metric([transport], n)
        rejected = CounterMetricFamily("facility_messages_rejected", "Messages rejected, by reason",
                                       labels=["reason"])
        for reason in Reason:  # every reason shows, at zero, before it first happens
            rejected.add_metric([reason.value], t.rejected.get(reason.value, 0))
        stored = CounterMetricFamily("facility_messages_stored", "Messages (telemetry and events) stored, by sink",
                                     labels=["sink"])
        dropped = CounterMetricFamily(
            "facility_messages_dropped", "Messages a sink will never get, by sink and reason "
            "(refused: the sink rejected them for good; spool_full / spool_age: the spool's bounds)",
            labels=["sink", "reason"],
        )
        pending = GaugeMetricFamily("facility_messages_pending", "Messages in the spool a sink does not have yet",
                                    labels=["sink"])
        unaccounted = GaugeMetricFamily(
            "facility_messages_unaccounted",
            "received - (stored + rejected + dropped + pending), per sink: 0 unless messages went missing",
            labels=["sink"],
        )
        for sink in sinks:
            stored.add_metric([sink], t.stored.get(sink, 0))
            for why in DROP_REASONS:
                dropped.add_metric([sink, why], t.dropped.get((sink, why), 0))
            pending.add_metric([sink], t.pending[sink])
            unaccounted.add_metric([sink], t.unaccounted(sink))
        yield from (received, rejected, stored, dropped, pending, unaccounted)
