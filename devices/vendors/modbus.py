"""Modbus register maps: which registers one poll of a meter reads, and how their words become
values in our vocabulary.

A pure codec like every vendor source: no I/O and no clock. The polling transport asks `plan()`
for the requests of one poll, sends them in that order, packs every register word it gets back
as it came off the wire (`struct.pack(">H", word)`) into one byte string and hands that to
`decode()`, which checks its length against the plan before reading any value.

Addresses are the 0-based addresses that travel in the request (the "Modbus Protocol Start
Address Hex" column of Eastron's tables), not the 1-based 30001/40001 register numbers that
many manuals list beside them: input register 30073 is address 0x0048.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from devices import kinds
from devices.base import DecodeError, Reason
from devices.vendors import BusUrl, Decoded, VendorSource, parse_bus_url

# The only part of a Modbus device: the registers of one poll (see the module docstring).
PART: Final = "registers"
# Modbus Application Protocol V1.1b3, 6.3 and 6.4: a read asks for 1 to 125 registers.
MAX_READ_COUNT: Final = 125
DEFAULT_PORT: Final = 502
DEFAULT_BAUDRATE: Final = 9600
DEFAULT_PARITY: Final = "N"

RegisterType = Literal["uint16", "int16", "uint32", "int32", "float32", "uint64", "float64"]
Order = Literal["big", "little"]
Preset = Literal["sdm120", "sdm630"]

# Each type as a big-endian struct and the number of 16-bit registers it takes.
_STRUCTS: Final[Mapping[str, struct.Struct]] = MappingProxyType({
    "uint16": struct.Struct(">H"),
    "int16": struct.Struct(">h"),
    "uint32": struct.Struct(">I"),
    "int32": struct.Struct(">i"),
    "float32": struct.Struct(">f"),
    "uint64": struct.Struct(">Q"),
    "float64": struct.Struct(">d"),
})
_FUNCTION_CODES: Final[Mapping[str, Literal[3, 4]]] = MappingProxyType({"holding": 3, "input": 4})


def _metric_keys() -> frozenset[str]:
    """Every metric key some device kind records. A source does not know its device's kind, but a
    key outside all of them is a typo that would otherwise drop the value without a word."""
    return frozenset(m.key for kind in kinds().values() for m in kind.metrics)


class Register(BaseModel):
    """One value of a meter's register map: where it is, how it is encoded and what it means.
    The value is `raw × scale + offset`, e.g. scale 0.01 for a meter that counts 0.01 kWh."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    key: str
    address: int = Field(ge=0, le=0xFFFF)
    function: Literal["input", "holding"] = "input"  # function code 04 or 03
    type: RegisterType = "float32"
    scale: float = 1
    offset: float = 0

    @field_validator("key")
    @classmethod
    def _known_key(cls, key: str) -> str:
        known = _metric_keys()
        if key not in known:
            raise ValueError(f"{key!r} is not a metric of any device kind (known: {', '.join(sorted(known))})")
        return key

    @model_validator(mode="after")
    def _fits(self) -> Register:
        if self.end > 0x10000:
            raise ValueError(f"a {self.type} at {self.address:#06x} runs past the last address, 0xffff")
        if self.scale == 0:
            raise ValueError("scale 0 would turn every reading into the offset")
        return self

    @property
    def words(self) -> int:
        """How many 16-bit registers the value takes."""
        return _STRUCTS[self.type].size // 2

    @property
    def end(self) -> int:
        """The address after the value's last register."""
        return self.address + self.words

    @property
    def function_code(self) -> Literal[3, 4]:
        return _FUNCTION_CODES[self.function]

    def describe(self) -> str:
        return f"{self.function} register {self.address:#06x} ({self.key})"


@dataclass(frozen=True, slots=True)
class Read:
    """One request of a poll: function code 3 (read holding registers) or 4 (read input
    registers), the first address and how many registers."""

    function: Literal[3, 4]
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


# Eastron meters keep every measurement as a float32 in two input registers (function 04), high
# byte and high word first: the defaults of `Register` and `ModbusSource`.
#
# Checked against Eastron's input register tables (the "Modbus Protocol Start Address Hex" column
# beside the 3xxxx register numbers); the PDFs themselves were read through transcriptions:
# - SDM120: the register map of the SDM120-Modbus protocol (V2.4) and the SDM120-M user manual
#   (V1.0), and Eastron's "SDM230-LoRa Protocol" V1.0 (06-2018), whose single-phase table is the
#   same: 30001 voltage 00 00, 30007 current 00 06, 30013 active power 00 0C, 30073 import
#   active energy 00 48, 30343 total active energy 01 56.
# - SDM630: "Eastron SDM630Modbus Smart Meter Modbus Protocol Implementation" V1.8 and the
#   SDM630-Modbus MID V2 user manual (B+G e-tech), table 1.2.1: 30043 average line to neutral
#   volts 00 2A, 30049 sum of line currents 00 30, 30053 total system power 00 34, 30073 total
#   import kWh 00 48.
#
# Energy is the import register (0x0048), not "total active energy" (0x0156): Eastron's tables
# note that the total is import + export, so energy fed back (solar panels on a school roof, or a
# meter wired the wrong way round) would be counted as consumption. Import is the energy drawn
# from the grid, the consumption we report, and sits at 0x0048 on both meters.
PRESETS: Final[Mapping[str, tuple[Register, ...]]] = MappingProxyType({
    "sdm120": (
        Register(key="voltage_v", address=0x0000),
        Register(key="current_a", address=0x0006),
        Register(key="power_w", address=0x000C),
        Register(key="energy_kwh", address=0x0048),
    ),
    "sdm630": (
        Register(key="voltage_v", address=0x002A),  # average of the three line-to-neutral voltages
        Register(key="current_a", address=0x0030),  # sum of the three line currents
        Register(key="power_w", address=0x0034),  # total system power
        Register(key="energy_kwh", address=0x0048),  # total import kWh
    ),
})


class ModbusSource(VendorSource):
    """A meter polled over Modbus: where it is (`url`, `unit`) and its register map, a preset
    and/or a list of registers (an entry here replaces the preset's entry for the same key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    protocol: Literal["modbus"]
    url: str
    unit: int = Field(1, ge=1, le=247)
    preset: Preset | None = None
    registers: list[Register] = Field(default_factory=list)
    byte_order: Order = "big"  # inside each 16-bit register: "little" swaps its two bytes
    word_order: Order = "big"  # "big": the first register of a 32/64-bit value holds its high word
    timeout_s: float = Field(1.0, gt=0)
    # Registers of one function at most this many registers apart are read in one request: reading
    # a few unused registers costs less than another round trip on a 9600 baud bus.
    max_gap: int = Field(10, ge=0)

    # Derived once from the fields: the requests of a poll, and each register with the byte
    # offset of its value in the concatenated answers.
    _plan: tuple[Read, ...] = PrivateAttr()
    _layout: tuple[tuple[Register, int], ...] = PrivateAttr()
    _size: int = PrivateAttr()

    @field_validator("url")
    @classmethod
    def _bus_url(cls, url: str) -> str:
        parse_bus_url(url, DEFAULT_PORT, DEFAULT_BAUDRATE, DEFAULT_PARITY)
        return url

    @model_validator(mode="after")
    def _register_map(self) -> ModbusSource:
        by_key = {r.key: r for r in PRESETS[self.preset]} if self.preset else {}
        own: set[str] = set()
        for register in self.registers:
            if register.key in own:
                raise ValueError(f"registers: {register.key!r} is listed twice")
            own.add(register.key)
            by_key[register.key] = register
        if not by_key:
            raise ValueError("no registers to read: name a preset or list at least one register")
        ordered = sorted(by_key.values(), key=lambda r: (r.function_code, r.address))
        for before, after in pairwise(ordered):
            if after.function == before.function and after.address < before.end:
                raise ValueError(f"{after.describe()} overlaps {before.describe()}, a {before.type} "
                                 f"that takes {before.words} registers")
        groups = _group(ordered, self.max_gap)
        layout: list[tuple[Register, int]] = []
        words_before = 0
        for read, members in groups:
            layout.extend((r, 2 * (words_before + r.address - read.address)) for r in members)
            words_before += read.count
        self._plan = tuple(read for read, _ in groups)
        self._layout = tuple(layout)
        self._size = 2 * words_before
        return self

    def bus(self) -> BusUrl:
        return parse_bus_url(self.url, DEFAULT_PORT, DEFAULT_BAUDRATE, DEFAULT_PARITY)

    def keys(self) -> frozenset[str]:
        return frozenset(register.key for register, _ in self._layout)

    def bus_key(self) -> tuple[str, ...]:
        return (self.url, f"unit {self.unit}")

    def plan(self) -> list[Read]:
        """The requests of one poll, always in the same order: holding registers (03) before input
        registers (04), each by address."""
        return list(self._plan)

    def decode(self, device_id: str, part: str, payload: bytes) -> Decoded:
        if part != PART:  # BAD_TOPIC, as for the other sources: the part names where bytes came from
            raise DecodeError(device_id, Reason.BAD_TOPIC, f"a Modbus meter has only the part {PART!r}, not {part!r}",
                              payload)
        if len(payload) != self._size:
            raise DecodeError(device_id, Reason.BAD_FRAME,
                              f"expected {self._size} bytes ({self._size // 2} registers in {len(self._plan)} "
                              f"reads), got {len(payload)}", payload)
        values: dict[str, float | bool] = {}
        for register, start in self._layout:
            raw = self._unpack(register, payload[start:start + 2 * register.words])
            if not math.isfinite(raw):
                raise DecodeError(device_id, Reason.NOT_FINITE,
                                  f"{register.describe()}: {raw} is not a finite number", payload)
            value = raw * register.scale + register.offset
            if not math.isfinite(value):
                raise DecodeError(device_id, Reason.NOT_FINITE,
                                  f"{register.describe()}: {raw:g} × {register.scale:g} + {register.offset:g} "
                                  "overflows", payload)
            values[register.key] = value
        return Decoded(values=values)

    def _unpack(self, register: Register, data: bytes) -> float:
        """One value from its registers as they came off the wire. 64-bit integers above 2**53
        lose their last digits in the float, far beyond any meter total we store."""
        words = [data[i:i + 2] for i in range(0, len(data), 2)]
        if self.byte_order == "little":
            words = [word[::-1] for word in words]
        if self.word_order == "little":
            words.reverse()
        (raw,) = _STRUCTS[register.type].unpack(b"".join(words))
        return float(raw)


def _group(ordered: Sequence[Register], max_gap: int) -> list[tuple[Read, list[Register]]]:
    """The fewest requests that cover the registers (sorted by function code, then address):
    a register joins the current request when it has the same function code, at most `max_gap`
    unused registers lie in between and the request stays within 125 registers."""
    groups: list[tuple[Read, list[Register]]] = []
    for register in ordered:
        if groups:
            read, members = groups[-1]
            if (read.function == register.function_code and register.address - read.end <= max_gap
                    and register.end - read.address <= MAX_READ_COUNT):
                members.append(register)
                groups[-1] = (Read(read.function, read.address, register.end - read.address), members)
                continue
        groups.append((Read(register.function_code, register.address, register.words), [register]))
    return groups
