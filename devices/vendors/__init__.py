"""Vendor codecs: where a device's data comes from when it is not our native JSON.

A device in the site file may name a `source:` (Zigbee2MQTT, Tasmota, Shelly, a Modbus or a
DL/T 645 meter). Each source model here is both the site file's settings and the codec: it
says which MQTT topics carry the device (`topics()`), and turns one payload into `Decoded`
values in our own vocabulary (the metric keys of `devices/<kind>.py`: `energy_kwh`, `power_w`,
`open`, `leak`, `temperature_c`, `on`, `online`, …). The device's kind then keeps the values it
records and checks their bounds (`DeviceKind.from_values`), so the kinds stay ours and the
adapters only translate.

Decoding is pure, as for native payloads: no I/O, no clock. A bad payload raises
`devices.base.DecodeError` with a reason code. Transports (`gateway/ingest/`) only move bytes.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Final, get_args
from urllib.parse import parse_qs, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

# Our vocabulary for availability: a bridge's or a device's own "online"/"offline" message.
ONLINE: Final = "online"


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one vendor message says, in our vocabulary. `values` holds booleans for states
    (`open`, `on`, `leak`, `online`) and numbers in our units (kWh, W, V, A, °C, %) for the
    rest; `ts_ms` is the event time when the payload carries one, else None (time of receipt)."""

    values: dict[str, float | bool] = field(default_factory=dict)
    ts_ms: int | None = None


def _topic_levels(value: str) -> str:
    # Levels of a topic we subscribe to: a wildcard would subscribe to other devices too, an
    # empty level ("a//b", a leading or trailing "/") names a topic no device publishes (a slip
    # when copying it), and MQTT forbids U+0000 in topic names.
    if "+" in value or "#" in value:
        raise ValueError(f"{value!r} contains an MQTT wildcard (+ or #)")
    if "" in value.split("/"):
        raise ValueError(f"{value!r} has an empty topic level (empty, or a leading, trailing or double /)")
    if "\x00" in value:
        raise ValueError(f"{value!r} contains a NUL character")
    return value


# One or more levels of an MQTT topic name, as a source's settings give them.
TopicLevels = Annotated[str, AfterValidator(_topic_levels)]


class VendorSource(BaseModel):
    """Base of every source model: the `protocol` key tells them apart in the site file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: str

    def topics(self) -> dict[str, str]:
        """The MQTT topics that carry this device, each with the part of the device it is
        (passed back to `decode`). Empty for polled sources."""
        return {}

    def decode(self, device_id: str, part: str, payload: bytes) -> Decoded:
        raise NotImplementedError

    def keys(self) -> frozenset[str] | None:
        """The values this source can give, where the site file fixes them (a register map,
        a meter's quantities), so that the site file is checked against the device's kind;
        None where the device decides (a Zigbee sensor sends what it has)."""
        return None

    def where(self) -> str:
        """Where the data comes from, for people: the meter on its bus, or the main topic."""
        key = self.bus_key()
        return " ".join(key) if key is not None else next(iter(self.topics()), "")

    def bus_key(self) -> tuple[str, ...] | None:
        """For polled sources: what identifies the meter on its bus (the bus URL and its unit
        or address); two devices with the same key would be one meter read twice."""
        return None


# How each source's protocol is called, for people (zh, en).
PROTOCOL_WORDS: Final[dict[str, tuple[str, str]]] = {
    "zigbee2mqtt": ("Zigbee 设备（经 Zigbee2MQTT）", "Zigbee device (through Zigbee2MQTT)"),
    "tasmota": ("Tasmota 设备", "Tasmota device"), "shelly": ("Shelly 设备", "Shelly device"),
    "modbus": ("Modbus 仪表", "Modbus meter"), "dlt645": ("DL/T 645 电表", "DL/T 645 meter"),
}

@cache
def sources() -> dict[str, type[VendorSource]]:
    """Every source model, by its `protocol`: the modules of this package are discovered, as
    device kinds are."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return {get_args(cls.model_fields["protocol"].annotation)[0]: cls for cls in VendorSource.__subclasses__()}


@dataclass(frozen=True, slots=True)
class BusUrl:
    """Where a polled meter is reached: `tcp://host:port` (Modbus TCP, or a transparent serial
    server for DL/T 645), `rtu-over-tcp://host:port` (Modbus RTU frames through a serial
    server), or `serial:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&bytesize=8`.
    Meters that share a URL share a bus: the gateway polls them one at a time."""

    scheme: str
    host: str = ""
    port: int = 0
    device: str = ""  # serial only
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def serial(self) -> bool:
        return self.scheme == "serial"


BUS_SCHEMES: Final = ("tcp", "rtu-over-tcp", "serial")
_SERIAL_KEYS: Final = {"baudrate", "parity", "stopbits", "bytesize"}


def parse_bus_url(url: str, default_port: int, default_baudrate: int, default_parity: str) -> BusUrl:
    """Parses a bus URL; raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in BUS_SCHEMES:
        raise ValueError(f"{url!r}: the scheme must be one of {', '.join(s + '://' for s in BUS_SCHEMES)}")
    if parts.scheme != "serial":
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: expected {parts.scheme}://host:port")
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
        return BusUrl(parts.scheme, parts.hostname, port)
    if parts.netloc or not parts.path.startswith("/"):
        raise ValueError(f"{url!r}: expected serial:///dev/<port>?baudrate=…")
    query = parse_qs(parts.query, strict_parsing=False)
    unknown = set(query) - _SERIAL_KEYS
    if unknown:
        known = ", ".join(sorted(_SERIAL_KEYS))
        raise ValueError(f"{url!r}: unknown serial setting {sorted(unknown)[0]!r} (known: {known})")
    one = {k: v[-1] for k, v in query.items()}
    parity = one.get("parity", default_parity).upper()
    if parity not in ("N", "E", "O"):
        raise ValueError(f"{url!r}: parity must be N, E or O")
    try:
        numbers = {k: int(one[k]) for k in ("baudrate", "stopbits", "bytesize") if k in one}
    except ValueError:
        raise ValueError(f"{url!r}: baudrate, stopbits and bytesize are whole numbers") from None
    bus = BusUrl("serial", device=parts.path, baudrate=numbers.get("baudrate", default_baudrate), parity=parity,
                 stopbits=numbers.get("stopbits", 1), bytesize=numbers.get("bytesize", 8))
    if bus.stopbits not in (1, 2) or bus.bytesize not in (7, 8) or bus.baudrate <= 0:
        raise ValueError(f"{url!r}: stopbits must be 1 or 2, bytesize 7 or 8, baudrate positive")
    return bus
