"""Modbus register maps (`devices.vendors.modbus`): the presets against Eastron's tables, values in
every type and byte/word order, the requests of a poll, config validation, properties checked
with Hypothesis, and polls of pymodbus's own server over Modbus TCP and RTU framing on TCP."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from itertools import pairwise, permutations
from typing import Any, Literal, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.datastore import ModbusDeviceContext
from pymodbus.framer import FramerType

from devices import kinds
from devices.base import DecodeError, Reason
from devices.vendors import Decoded
from devices.vendors.modbus import PART, PRESETS, ModbusSource, Preset, Read, Register
from gateway.ingest.modbus import ModbusBus
from tests.modbus_server import block, modbus_server
from tests.services import HOST

# As in test_decode_properties.py: no example database in the repository, no deadline on a
# shared runner. The example counts keep the file at a few seconds.
PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

Order = Literal["big", "little"]
ORDERS: tuple[Order, ...] = ("big", "little")
# Each register type as a big-endian struct format, written out here rather than taken from
# the module, so that the encoder below is independent of the decoder it checks.
FORMATS = {"uint16": "H", "int16": "h", "uint32": "I", "int32": "i", "float32": "f", "uint64": "Q", "float64": "d"}
TYPES = sorted(FORMATS)
VALUES: dict[str, st.SearchStrategy[int] | st.SearchStrategy[float]] = {
    "uint16": st.integers(0, 2**16 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "float32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "float64": st.floats(allow_nan=False, allow_infinity=False),
}
METRIC_KEYS = sorted({m.key for kind in kinds().values() for m in kind.metrics})
DEVICE = "meter-1"


def encode(type_: str, value: float, byte_order: Order, word_order: Order) -> list[int]:
    """A value as the register words a device would send: big-endian bytes cut into words, low
    word first for word order "little", the two bytes of each word swapped for byte order "little"."""
    data = struct.pack(">" + FORMATS[type_], value)
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [word[::-1] for word in words]
    return [int.from_bytes(word, "big") for word in words]


def wire(words: Sequence[int]) -> bytes:
    """Register words packed the way the transport hands them to `decode`."""
    return b"".join(struct.pack(">H", word) for word in words)


def source(**fields: Any) -> ModbusSource:
    """A source validated from plain data, as from the site file."""
    return ModbusSource.model_validate({"protocol": "modbus", "url": "tcp://meter.local", **fields})


def one_register(byte_order: Order = "big", word_order: Order = "big", **register: Any) -> ModbusSource:
    return source(registers=[{"key": "power_w", "address": 0, **register}],
                  byte_order=byte_order, word_order=word_order)


# --- presets ------------------------------------------------------------------------------------

# Written out from Eastron's input register tables: (register number, "Modbus Protocol Start
# Address Hex"). SDM120: SDM120-Modbus protocol V2.4 / SDM120-M user manual V1.0, single-phase table
# (30001 voltage, 30007 current, 30013 active power, 30073 import active energy). SDM630:
# "SDM630Modbus Smart Meter Modbus Protocol Implementation" V1.8 (30043 average line to neutral
# volts, 30049 sum of line currents, 30053 total system power, 30073 total import kWh).
EASTRON: dict[str, dict[str, tuple[int, int]]] = {
    "sdm120": {
        "voltage_v": (30001, 0x0000),
        "current_a": (30007, 0x0006),
        "power_w": (30013, 0x000C),
        "energy_kwh": (30073, 0x0048),
    },
    "sdm630": {
        "voltage_v": (30043, 0x002A),
        "current_a": (30049, 0x0030),
        "power_w": (30053, 0x0034),
        "energy_kwh": (30073, 0x0048),
    },
}


def test_every_preset_is_checked_here() -> None:
    assert set(PRESETS) == set(EASTRON) == set(get_args(Preset))


@pytest.mark.parametrize("name", sorted(EASTRON))
def test_preset_matches_the_eastron_table(name: str) -> None:
    preset = {r.key: r for r in PRESETS[name]}
    assert preset.keys() == EASTRON[name].keys()
    for key, (number, address) in EASTRON[name].items():
        register = preset[key]
        assert number - 30001 == address, "the table's two columns agree"
        assert register.address == address, key
        assert (register.function, register.type, register.scale, register.offset) == ("input", "float32", 1, 0)
    meter = source(preset=name)
    assert (meter.byte_order, meter.word_order) == ("big", "big")


def test_preset_plans() -> None:
    assert source(preset="sdm120").plan() == [Read(4, 0x0000, 14), Read(4, 0x0048, 2)]
    assert source(preset="sdm630").plan() == [Read(4, 0x002A, 12), Read(4, 0x0048, 2)]


def test_sdm120_preset_decodes_a_poll() -> None:
    meter = source(preset="sdm120")
    first = [0] * 14
    first[0:2], first[6:8], first[12:14] = [0x4366, 0x8000], [0x4164, 0x0000], [0x4548, 0x0000]
    payload = wire([*first, 0x449A, 0x5000])  # 230.5 V, 14.25 A, 3200 W, 1234.5 kWh
    assert meter.decode(DEVICE, PART, payload) == Decoded(
        {"voltage_v": 230.5, "current_a": 14.25, "power_w": 3200.0, "energy_kwh": 1234.5})


def test_own_registers_replace_and_add_to_the_preset() -> None:
    meter = source(preset="sdm120", registers=[
        {"key": "energy_kwh", "address": 0x0156},  # total instead of import
        {"key": "temperature_c", "address": 0x0010, "function": "holding", "type": "int16", "scale": 0.1},
    ])
    assert meter.plan() == [Read(3, 0x0010, 1), Read(4, 0x0000, 14), Read(4, 0x0156, 2)]


# --- values -------------------------------------------------------------------------------------


def test_230_5_is_0x43668000() -> None:
    assert struct.pack(">f", 230.5) == bytes.fromhex("43668000")


@pytest.mark.parametrize(("byte_order", "word_order", "words"), [
    ("big", "big", (0x4366, 0x8000)),  # ABCD, Eastron's order
    ("little", "big", (0x6643, 0x0080)),  # BADC: the bytes of each register swapped
    ("big", "little", (0x8000, 0x4366)),  # CDAB: low word first
    ("little", "little", (0x0080, 0x6643)),  # DCBA
])
def test_float32_in_every_order(byte_order: Order, word_order: Order, words: tuple[int, int]) -> None:
    meter = one_register(byte_order, word_order, key="voltage_v")
    assert meter.decode(DEVICE, PART, wire(words)) == Decoded({"voltage_v": 230.5})
    assert encode("float32", 230.5, byte_order, word_order) == list(words), "the test's encoder agrees"


@pytest.mark.parametrize(("type_", "byte_order", "word_order", "words", "value"), [
    ("uint16", "big", "big", (0xFFFF,), 65535),
    ("int16", "big", "big", (0xFFFF,), -1),
    ("int16", "big", "big", (0x8000,), -32768),
    ("int16", "little", "big", (0x0080,), -32768),
    ("int16", "big", "little", (0x7FFF,), 32767),  # word order means nothing in one register
    ("uint32", "big", "big", (0x0001, 0x0000), 65536),
    ("uint32", "big", "little", (0x0001, 0x0000), 1),
    ("uint32", "big", "big", (0xFFFF, 0xFFFE), 4294967294),
    ("int32", "big", "big", (0xFFFF, 0xFFFE), -2),
    ("int32", "big", "little", (0xFFFE, 0xFFFF), -2),
    ("int32", "little", "little", (0xFEFF, 0xFFFF), -2),
    ("uint64", "big", "big", (0x0001, 0x0002, 0x0003, 0x0004), 0x0001_0002_0003_0004),
    ("uint64", "big", "little", (0x0001, 0x0002, 0x0003, 0x0004), 0x0004_0003_0002_0001),
    ("uint64", "little", "big", (0x0100, 0x0200, 0x0300, 0x0400), 0x0001_0002_0003_0004),
    ("uint64", "big", "big", (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF), 2**64 - 1),
    ("float64", "big", "big", (0x3FF8, 0x0000, 0x0000, 0x0000), 1.5),
    ("float64", "big", "little", (0x0000, 0x0000, 0x0000, 0x3FF8), 1.5),
    ("float64", "little", "big", (0xF83F, 0x0000, 0x0000, 0x0000), 1.5),
    ("float64", "little", "little", (0x0000, 0x0000, 0x0000, 0xF83F), 1.5),
    ("float64", "big", "big", (0xC05E, 0xDD2F, 0x1A9F, 0xBE77), -123.456),
])
def test_types(type_: str, byte_order: Order, word_order: Order, words: tuple[int, ...], value: float) -> None:
    meter = one_register(byte_order, word_order, type=type_)
    assert meter.decode(DEVICE, PART, wire(words)) == Decoded({"power_w": float(value)})


def test_scale_and_offset() -> None:
    # A meter that counts 0.01 kWh in a uint32: 123456 → 1234.56 kWh.
    energy = one_register(key="energy_kwh", type="uint32", scale=0.01)
    assert energy.decode(DEVICE, PART, wire([0x0001, 0xE240])).values["energy_kwh"] == pytest.approx(1234.56)
    # A sensor that sends tenths of a degree above -40 °C: 500 → 10.0 °C, 0 → -40 °C.
    temperature = one_register(key="temperature_c", type="int16", scale=0.1, offset=-40)
    assert temperature.decode(DEVICE, PART, wire([500])).values["temperature_c"] == pytest.approx(10.0)
    assert temperature.decode(DEVICE, PART, wire([0])).values["temperature_c"] == -40.0
    # A negative scale: a meter mounted the other way round.
    power = one_register(type="int32", scale=-1)
    assert power.decode(DEVICE, PART, wire([0x0000, 0x0064])).values["power_w"] == -100.0


def test_values_are_floats_and_carry_no_time() -> None:
    decoded = one_register(type="uint16").decode(DEVICE, PART, wire([7]))
    assert decoded.ts_ms is None
    assert type(decoded.values["power_w"]) is float


# --- bad payloads -------------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "shown"), [
    ((0x7FC0, 0x0000), "nan"),
    ((0x7F80, 0x0000), "inf"),
    ((0xFF80, 0x0000), "-inf"),
])
def test_float32_that_is_not_finite(words: tuple[int, int], shown: str) -> None:
    meter = source(registers=[{"key": "voltage_v", "address": 0}, {"key": "current_a", "address": 0x0006}])
    payload = wire([0x4366, 0x8000, 0, 0, 0, 0, *words])
    with pytest.raises(DecodeError) as caught:
        meter.decode(DEVICE, PART, payload)
    error = caught.value
    assert (error.device_id, error.reason) == (DEVICE, Reason.NOT_FINITE)
    assert "input register 0x0006 (current_a)" in error.detail
    assert f"{shown} is not a finite number" in error.detail


def test_scaled_value_that_overflows() -> None:
    meter = one_register(type="float64", scale=10)
    with pytest.raises(DecodeError) as caught:
        meter.decode(DEVICE, PART, wire(encode("float64", 1.7e308, "big", "big")))
    assert caught.value.reason is Reason.NOT_FINITE
    assert "input register 0x0000 (power_w)" in caught.value.detail
    assert "overflows" in caught.value.detail


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_wrong_payload_length(length: int) -> None:
    with pytest.raises(DecodeError) as caught:
        source(preset="sdm120").decode(DEVICE, PART, bytes(length))
    assert caught.value.reason is Reason.BAD_FRAME
    assert caught.value.detail == f"expected 32 bytes (16 registers in 2 reads), got {length}"


def test_unknown_part() -> None:
    with pytest.raises(DecodeError) as caught:
        source(preset="sdm120").decode(DEVICE, "coils", bytes(32))
    assert caught.value.reason is Reason.BAD_TOPIC
    assert "'coils'" in caught.value.detail


# --- plan ---------------------------------------------------------------------------------------


def test_gaps_up_to_max_gap_are_read_in_one_request() -> None:
    registers = [
        {"key": "voltage_v", "address": 0},
        {"key": "current_a", "address": 12},  # 10 unused registers after the first: joins it
        {"key": "power_w", "address": 25},  # 11 unused registers: a request of its own
    ]
    assert source(registers=registers).plan() == [Read(4, 0, 14), Read(4, 25, 2)]
    assert source(registers=registers, max_gap=11).plan() == [Read(4, 0, 27)]
    assert source(registers=registers, max_gap=9).plan() == [Read(4, 0, 2), Read(4, 12, 2), Read(4, 25, 2)]


def test_max_gap_0_merges_only_adjacent_registers() -> None:
    registers = [
        {"key": "voltage_v", "address": 0},
        {"key": "current_a", "address": 2},
        {"key": "power_w", "address": 5, "type": "uint16"},
    ]
    assert source(registers=registers, max_gap=0).plan() == [Read(4, 0, 4), Read(4, 5, 1)]


def test_a_request_never_exceeds_125_registers() -> None:
    fits = [{"key": "voltage_v", "address": 0, "type": "uint16"}, {"key": "current_a", "address": 124, "type": "uint16"}]
    assert source(registers=fits, max_gap=1000).plan() == [Read(4, 0, 125)]
    too_long = [{"key": "voltage_v", "address": 0, "type": "uint16"}, {"key": "current_a", "address": 124}]
    assert source(registers=too_long, max_gap=1000).plan() == [Read(4, 0, 1), Read(4, 124, 2)]


def test_function_codes_are_kept_apart() -> None:
    registers = [
        {"key": "voltage_v", "address": 0, "function": "input"},
        {"key": "current_a", "address": 2, "function": "holding"},
        {"key": "power_w", "address": 0, "function": "holding"},  # the same address in another table
    ]
    meter = source(registers=registers)
    assert meter.plan() == [Read(3, 0, 4), Read(4, 0, 2)]
    payload = wire([*encode("float32", 3200, "big", "big"), *encode("float32", 14.25, "big", "big"),
                    *encode("float32", 230.5, "big", "big")])
    assert meter.decode(DEVICE, PART, payload) == Decoded({"power_w": 3200, "current_a": 14.25, "voltage_v": 230.5})


def test_the_plan_does_not_depend_on_the_order_of_the_list() -> None:
    registers = [
        {"key": "voltage_v", "address": 40},
        {"key": "current_a", "address": 0, "function": "holding", "type": "uint16"},
        {"key": "power_w", "address": 3, "type": "int32"},
        {"key": "energy_kwh", "address": 300, "type": "uint64"},
    ]
    plans = {tuple(source(registers=list(order)).plan()) for order in permutations(registers)}
    assert plans == {(Read(3, 0, 1), Read(4, 3, 2), Read(4, 40, 2), Read(4, 300, 4))}


def test_plan_is_a_copy() -> None:
    meter = source(preset="sdm630")
    meter.plan().clear()
    assert len(meter.plan()) == 2


# --- bus ----------------------------------------------------------------------------------------


def test_bus_defaults() -> None:
    tcp = source(url="tcp://10.0.0.5", preset="sdm120").bus()
    assert (tcp.scheme, tcp.host, tcp.port) == ("tcp", "10.0.0.5", 502)
    rtu = source(url="rtu-over-tcp://10.0.0.6:4001", preset="sdm120").bus()
    assert (rtu.scheme, rtu.host, rtu.port) == ("rtu-over-tcp", "10.0.0.6", 4001)
    serial = source(url="serial:///dev/ttyUSB0", preset="sdm120").bus()
    assert (serial.serial, serial.device, serial.baudrate, serial.parity) == (True, "/dev/ttyUSB0", 9600, "N")


# --- config validation --------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"registers": []}, "no registers to read: name a preset or list at least one register"),
    ({"preset": "sdm999"}, "Input should be 'sdm120' or 'sdm630'"),
    ({"registers": [{"key": "enrgy_kwh", "address": 0}]}, "'enrgy_kwh' is not a metric of any device kind"),
    ({"registers": [{"key": "power_w", "address": 0}, {"key": "power_w", "address": 10}]},
     "registers: 'power_w' is listed twice"),
    ({"registers": [{"key": "power_w", "address": 0}, {"key": "voltage_v", "address": 1, "type": "uint16"}]},
     "input register 0x0001 (voltage_v) overlaps input register 0x0000 (power_w), a float32 that takes 2 registers"),
    ({"registers": [{"key": "power_w", "address": 0, "type": "float64"}, {"key": "voltage_v", "address": 3}]},
     "overlaps input register 0x0000 (power_w), a float64 that takes 4 registers"),
    ({"preset": "sdm120", "registers": [{"key": "energy_kwh", "address": 0x000D}]},
     "input register 0x000d (energy_kwh) overlaps input register 0x000c (power_w)"),
    ({"registers": [{"key": "power_w", "address": 0xFFFF}]}, "a float32 at 0xffff runs past the last address, 0xffff"),
    ({"registers": [{"key": "power_w", "address": 0x10000, "type": "uint16"}]}, "less than or equal to 65535"),
    ({"registers": [{"key": "power_w", "address": -1}]}, "greater than or equal to 0"),
    ({"registers": [{"key": "power_w", "address": 0, "type": "float16"}]}, "Input should be 'uint16', 'int16'"),
    ({"registers": [{"key": "power_w", "address": 0, "function": "coil"}]}, "Input should be 'input' or 'holding'"),
    ({"registers": [{"key": "power_w", "address": 0, "scale": 0}]}, "scale 0 would turn every reading into the offset"),
    ({"registers": [{"key": "power_w", "address": 0, "scale": math.nan}]}, "Input should be a finite number"),
    ({"registers": [{"key": "power_w", "address": 0, "offset": math.inf}]}, "Input should be a finite number"),
    ({"registers": [{"key": "power_w", "address": 0, "adress": 2}]}, "registers.0.adress\n  Extra inputs are not permitted"),
    ({"preset": "sdm120", "unit": 0}, "greater than or equal to 1"),
    ({"preset": "sdm120", "unit": 248}, "less than or equal to 247"),
    ({"preset": "sdm120", "byte_order": "middle"}, "Input should be 'big' or 'little'"),
    ({"preset": "sdm120", "word_order": "swapped"}, "Input should be 'big' or 'little'"),
    ({"preset": "sdm120", "timeout_s": 0}, "greater than 0"),
    ({"preset": "sdm120", "max_gap": -1}, "greater than or equal to 0"),
    ({"preset": "sdm120", "baudrate": 2400}, "baudrate\n  Extra inputs are not permitted"),
    ({"preset": "sdm120", "url": "http://meter.local"}, "the scheme must be one of tcp://, rtu-over-tcp://, serial://"),
    ({"preset": "sdm120", "url": "tcp://meter.local:70000"}, "the port is not a number from 1 to 65535"),
    ({"preset": "sdm120", "url": "serial:///dev/ttyUSB0?baud=9600"}, "unknown serial setting 'baud'"),
    ({"preset": "sdm120", "protocol": "dlt645"}, "Input should be 'modbus'"),
])
def test_invalid_config(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        source(**fields)
    assert message in str(caught.value)


def test_the_source_is_frozen() -> None:
    meter = source(preset="sdm120")
    with pytest.raises(ValidationError, match="frozen"):
        meter.unit = 2  # type: ignore[misc]


# --- properties ---------------------------------------------------------------------------------


@st.composite
def sources(draw: st.DrawFn) -> tuple[ModbusSource, list[tuple[Register, float]]]:
    """A valid source of one to six registers of any type in either table, listed in any order,
    and a value each register can hold."""
    count = draw(st.integers(1, 6))
    keys = draw(st.lists(st.sampled_from(METRIC_KEYS), min_size=count, max_size=count, unique=True))
    address = draw(st.integers(0, 300) | st.just(0xFFFF - 6 * 40))
    registers: list[dict[str, Any]] = []
    for key in keys:
        type_ = draw(st.sampled_from(TYPES))
        function = draw(st.sampled_from(["input", "holding"]))
        registers.append({"key": key, "address": address, "function": function, "type": type_})
        address += struct.calcsize(FORMATS[type_]) // 2 + draw(st.integers(0, 30))
    meter = source(registers=draw(st.permutations(registers)), byte_order=draw(st.sampled_from(ORDERS)),
                   word_order=draw(st.sampled_from(ORDERS)), max_gap=draw(st.integers(0, 40)))
    values = [(r, draw(VALUES[r.type])) for r in meter.registers]
    return meter, values


def check_decode_error(error: DecodeError) -> None:
    assert error.reason in {Reason.BAD_FRAME, Reason.NOT_FINITE}
    assert error.device_id == DEVICE


@PROPERTY
@given(st.data())
def test_any_payload_decodes_or_raises_decode_error(data: st.DataObject) -> None:
    meter, _ = data.draw(sources())
    size = 2 * sum(read.count for read in meter.plan())
    payload = data.draw(st.binary(min_size=size, max_size=size) | st.binary(max_size=2 * size + 4))
    try:
        decoded = meter.decode(DEVICE, PART, payload)
    except DecodeError as error:
        check_decode_error(error)
    else:
        assert len(payload) == size
        assert decoded.values.keys() == {r.key for r in meter.registers}
        assert all(math.isfinite(value) for value in decoded.values.values())


@PROPERTY
@given(sources(), st.integers(0, 0xFFFF))
def test_encoded_values_decode_back(drawn: tuple[ModbusSource, list[tuple[Register, float]]], filler: int) -> None:
    meter, values = drawn
    image: dict[tuple[int, int], int] = {}  # (function code, address) → word
    for register, value in values:
        words = encode(register.type, value, meter.byte_order, meter.word_order)
        code = 4 if register.function == "input" else 3
        image.update({(code, register.address + i): word for i, word in enumerate(words)})
    # What the transport does: follow the plan; unused registers in a request hold anything.
    payload = wire([image.get((read.function, a), filler) for read in meter.plan() for a in range(read.address, read.end)])
    assert meter.decode(DEVICE, PART, payload) == Decoded({r.key: float(value) for r, value in values})


@PROPERTY
@given(sources())
def test_plan_reads_every_register_once(drawn: tuple[ModbusSource, list[tuple[Register, float]]]) -> None:
    meter, _ = drawn
    plan = meter.plan()
    assert all(1 <= read.count <= 125 for read in plan)
    assert plan == sorted(plan, key=lambda read: (read.function, read.address)), "a fixed order"
    starts = {(4 if r.function == "input" else 3, r.address): r for r in meter.registers}
    for before, after in pairwise(plan):
        first = starts[(after.function, after.address)]  # a request starts at a register
        could_join = after.address - before.end <= meter.max_gap and first.end - before.address <= 125
        assert before.function != after.function or not could_join, "requests that could be one are one"
    for register in meter.registers:
        code = 4 if register.function == "input" else 3
        covering = [r for r in plan if r.function == code and r.address <= register.address and register.end <= r.end]
        assert len(covering) == 1, register


# --- against pymodbus's own server --------------------------------------------------------------

# An SDM120 at unit 7 with exactly representable readings, as pymodbus encodes them (an encoder
# independent of ours). Every other register holds the words of a float32 NaN: a decoder that
# read a register outside its map would fail.
SDM120_UNIT = 7
SDM120_READING = {"voltage_v": 230.5, "current_a": 14.25, "power_w": 3200.0, "energy_kwh": 1234.5}
NAN_WORDS = (0x7FC0, 0x0000)


def sdm120_image() -> list[int]:
    """Input registers 0x0000–0x00FF, indexed by protocol address."""
    image = list(NAN_WORDS) * 128
    float32 = AsyncModbusTcpClient.DATATYPE.FLOAT32
    for register in PRESETS["sdm120"]:
        words = AsyncModbusTcpClient.convert_to_registers(SDM120_READING[register.key], float32)
        image[register.address:register.address + 2] = words
    return image


async def poll(meter: ModbusSource) -> bytes:
    """One poll by the gateway's own transport."""
    bus = ModbusBus(meter.bus(), meter.url, meter.timeout_s)
    try:
        return await bus.read(DEVICE, meter)
    finally:
        await bus.close()


async def test_pymodbus_datastore_addresses_are_one_above_protocol_addresses() -> None:
    # `ModbusDeviceContext` adds 1 to the protocol address before it looks into a block, so a
    # block created at address 0 answers a read of protocol address 0 with its second value.
    values = [0x1000 + i for i in range(8)]
    devices = {
        1: ModbusDeviceContext(ir=block(0, values)),
        2: ModbusDeviceContext(ir=block(1, values)),
    }
    async with modbus_server(devices, FramerType.SOCKET) as port:
        client = AsyncModbusTcpClient(HOST, port=port, timeout=2, retries=0)
        assert await client.connect()
        try:
            at_0 = await client.read_input_registers(0, count=2, device_id=1)
            at_1 = await client.read_input_registers(0, count=2, device_id=2)
            past_end = await client.read_input_registers(7, count=1, device_id=1)
        finally:
            client.close()
    assert at_0.registers == [0x1001, 0x1002]
    assert at_1.registers == [0x1000, 0x1001]
    assert past_end.isError(), "the last value of a block at 0 is out of reach"


@pytest.mark.parametrize(("scheme", "framer"), [("tcp", FramerType.SOCKET), ("rtu-over-tcp", FramerType.RTU)])
async def test_sdm120_polled_from_pymodbus_server(scheme: str, framer: FramerType) -> None:
    # The block starts at 1 so that its index is the protocol address (see the test above).
    devices = {SDM120_UNIT: ModbusDeviceContext(ir=block(1, sdm120_image()))}
    async with modbus_server(devices, framer) as port:
        meter = source(url=f"{scheme}://{HOST}:{port}", unit=SDM120_UNIT, preset="sdm120")
        payload = await poll(meter)
    assert meter.decode(DEVICE, PART, payload) == Decoded(SDM120_READING)


async def test_holding_and_input_registers_from_pymodbus_server() -> None:
    # A generic map over both tables, in word order "little" and with a scale, on the RTU framing.
    input_image = [0] * 64
    input_image[0x20:0x22] = AsyncModbusTcpClient.convert_to_registers(
        123456, AsyncModbusTcpClient.DATATYPE.UINT32, word_order="little")
    holding_image = [0] * 64
    holding_image[0x10] = 0xFF9C  # -100 as an int16
    devices = {1: ModbusDeviceContext(ir=block(1, input_image),
                                      hr=block(1, holding_image))}
    async with modbus_server(devices, FramerType.RTU) as port:
        meter = source(url=f"rtu-over-tcp://{HOST}:{port}", word_order="little", registers=[
            {"key": "energy_kwh", "address": 0x20, "type": "uint32", "scale": 0.01},
            {"key": "temperature_c", "address": 0x10, "function": "holding", "type": "int16", "scale": 0.1},
        ])
        assert meter.plan() == [Read(3, 0x10, 1), Read(4, 0x20, 2)]
        payload = await poll(meter)
    decoded = meter.decode(DEVICE, PART, payload)
    assert decoded.values == {"energy_kwh": pytest.approx(1234.56), "temperature_c": pytest.approx(-10.0)}
