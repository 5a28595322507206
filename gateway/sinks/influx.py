"""InfluxDB sink: batched line protocol through influxdb-client's v2 write API (async).

Measurement = device kind; tags site, building, room, device; fields = the metric keys
(booleans for state metrics). Events go to `<kind>_event` with a `type` tag. Timestamps in
milliseconds. Any server that speaks the v2 write API works (InfluxDB 2.x/3.x,
VictoriaMetrics).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from devices import kinds
from devices.base import Event, MetricType, Sample
from gateway.config import InfluxSettings, SiteConfig
from gateway.sinks import PermanentSinkError, TransientSinkError

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

log = logging.getLogger(__name__)


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class LineProtocol:
    """Turns samples and events into line protocol; per-device prefixes are computed once."""

    def __init__(self, site: SiteConfig) -> None:
        self._prefix: dict[str, str] = {}
        self._kind: dict[str, str] = {}
        self._states: dict[str, frozenset[str]] = {}
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        """New and moved devices' tags. A retired device's stay: the spool may still hold
        its readings, written with the tags it had."""
        for d in site.devices:
            building = site.building_of(d.room)
            tags = ",".join(
                f"{k}={_escape_tag(v)}"
                for k, v in (("site", site.id), ("building", building.id), ("room", d.room), ("device", d.id))
            )
            self._prefix[d.id] = tags
            self._kind[d.id] = d.kind
            self._states[d.kind] = frozenset(
                m.key for m in kinds()[d.kind].metrics if m.type is MetricType.STATE
            )

    def sample(self, s: Sample) -> str:
        states = self._states[self._kind[s.device_id]]
        fields = ",".join(
            f"{k}={'true' if v else 'false'}" if k in states else f"{k}={v!r}" for k, v in s.values.items()
        )
        return f"{self._kind[s.device_id]},{self._prefix[s.device_id]} {fields} {s.ts_ms}"

    def event(self, e: Event) -> str:
        fields = ",".join(f"{k}={_field_value(v)}" for k, v in e.data.items()) or "count=1.0"
        return (
            f"{self._kind[e.device_id]}_event,{self._prefix[e.device_id]},type={_escape_tag(e.type)} "
            f"{fields} {e.ts_ms}"
        )


class InfluxSink:
    name = "influxdb"

    def __init__(self, settings: InfluxSettings, site: SiteConfig) -> None:
        self._settings = settings
        self._lines = LineProtocol(site)
        self._client: InfluxDBClientAsync | None = None

    def reconfigure(self, site: SiteConfig) -> None:
        self._lines.reconfigure(site)

    async def start(self) -> None:
        # The client (and aiohttp under it) is imported by a site that has an InfluxDB, here:
        # at the top of the module it was a fifth of a second of every gateway's start.
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        s = self._settings
        self._client = InfluxDBClientAsync(
            url=s.url, token=s.token.get_secret_value(), org=s.org, timeout=int(s.timeout_s * 1000)
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        """Writes everything or raises a sink error; on a transient one the caller retries the
        whole batch (points are idempotent: same series and timestamp, same value)."""
        assert self._client is not None, "start() first"
        from aiohttp import ClientError  # imported by start() already: see there
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        lines = [self._lines.sample(s) for s in samples]
        lines.extend(self._lines.event(e) for e in events)
        api = self._client.write_api()
        size = self._settings.batch_size
        try:
            for i in range(0, len(lines), size):
                await api.write(
                    bucket=self._settings.bucket,
                    record="\n".join(lines[i : i + size]),
                    write_precision=WritePrecision.MS,  # type: ignore[arg-type]
                )
        except ApiException as exc:
            if exc.status in _PERMANENT_STATUS:
                raise PermanentSinkError(f"HTTP {exc.status}: {exc.reason}") from exc
            raise TransientSinkError(f"HTTP {exc.status}: {exc.reason}") from exc
        except (ClientError, OSError, TimeoutError) as exc:
            raise TransientSinkError(f"{type(exc).__name__}: {exc}") from exc


# Bad request, payload too large, unprocessable: the same points would fail again.
_PERMANENT_STATUS = frozenset({400, 413, 422})
