"""DL/T 645-2007 (多功能电能表通信协议), the protocol of Chinese electricity meters on RS-485:
its frames, the few data identifiers we read, and the source model of such a meter.

A meter is polled: the transport (`gateway/ingest/`) writes `Dlt645Source.requests()` to the bus
one at a time, cuts each answer out of the byte stream with `frame_length`, and passes the
answers, concatenated in request order, to `Dlt645Source.decode`. Everything here is pure.

A frame on the wire, after an optional wake-up preamble of 0xFE bytes:

    68 A0..A5 68 C L DATA CS 16

A0..A5 is the meter's address, 12 BCD digits lowest byte first; every DATA byte travels with
0x33 added; CS is the sum of all bytes from the first 68 to the last data byte, modulo 256.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from devices.base import DecodeError, Reason
from devices.vendors import BusUrl, Decoded, VendorSource, parse_bus_url

WAKE_UP: Final = 0xFE
# Wake-up bytes before a frame let a sleeping meter's receiver settle; masters send four, and
# answers carry any number of them, or none, depending on the vendor.
PREAMBLE: Final = bytes([WAKE_UP] * 4)
START: Final = 0x68
END: Final = 0x16
OFFSET: Final = 0x33
HEADER_SIZE: Final = 10  # 68, six address bytes, 68, C, L
MIN_FRAME_SIZE: Final = HEADER_SIZE + 2  # a frame without data: CS and 16 follow the header
MAX_DATA_SIZE: Final = 0xFF  # L is one byte
DI_SIZE: Final = 4
BROADCAST: Final = "999999999999"

# Control code bits (standard, 7.1): D7 set on answers, D6 set when the meter reports an
# error, D5 set when follow-up frames exist, D4..D0 the function.
READ_DATA: Final = 0x11
FROM_METER: Final = 0x80
ABNORMAL: Final = 0x40
FUNCTION_MASK: Final = 0x1F
READ_ANSWER: Final = FROM_METER | READ_DATA  # 0x91
READ_ERROR: Final = FROM_METER | ABNORMAL | READ_DATA  # 0xD1

# The error information word of an error answer (standard, appendix C, 错误信息字), by bit.
ERROR_BITS: Final = (
    (0x01, "other error", "其他错误"),
    (0x02, "no such data", "无请求数据"),
    (0x04, "wrong password or not authorised", "密码错/未授权"),
    (0x08, "communication rate cannot be changed", "通信速率不能更改"),
    (0x10, "too many year time zones", "年时区数超"),
    (0x20, "too many daily time slots", "日时段数超"),
    (0x40, "too many tariffs", "费率数超"),
    (0x80, "reserved bit", "保留"),
)
NO_SUCH_DATA: Final = 0x02

DEFAULT_BAUDRATE: Final = 2400  # the standard's default rate, 8 data bits, even parity, 1 stop bit
DEFAULT_PARITY: Final = "E"
NO_DEFAULT_PORT: Final = 0  # transparent serial servers have no standard port
MAX_TIMEOUT_S: Final = 30.0  # meters answer within a second; a longer timeout is likely milliseconds

_ADDRESS: Final = re.compile(r"[0-9]{12}")
_HEX_ADDRESS: Final = re.compile(r"[0-9A-Fa-f]{12}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame, preamble dropped. `address` is the 12 digits as on the nameplate (as hex
    digits, so a wildcard AA byte shows as "AA"); `data` has the 0x33 already removed."""

    address: str
    control: int
    data: bytes


def encode_frame(address: str, control: int, data: bytes) -> bytes:
    """A frame ready for the wire, wake-up preamble included. `address` is 12 hex digits
    (decimal ones for a meter, "AA" bytes as wildcards); raises ValueError otherwise."""
    if not _HEX_ADDRESS.fullmatch(address):
        raise ValueError(f"address {address!r}: expected 12 digits")
    if not 0 <= control <= 0xFF:
        raise ValueError(f"control code {control}: expected one byte")
    if len(data) > MAX_DATA_SIZE:
        raise ValueError(f"{len(data)} data bytes: a frame carries at most {MAX_DATA_SIZE}")
    body = (
        bytes([START])
        + bytes.fromhex(address)[::-1]
        + bytes([START, control, len(data)])
        + bytes((byte + OFFSET) & 0xFF for byte in data)
    )
    return PREAMBLE + body + bytes([sum(body) & 0xFF, END])


def read_request(address: str, di: int) -> bytes:
    """The frame that asks meter `address` for data identifier `di` (DI3 DI2 DI1 DI0 as one
    number, e.g. 0x02010100; it travels DI0 first)."""
    if not 0 <= di <= 0xFFFFFFFF:
        raise ValueError(f"data identifier {di:#x}: expected four bytes")
    return encode_frame(address, READ_DATA, di.to_bytes(DI_SIZE, "little"))


def _preamble_size(buf: bytes) -> int:
    return len(buf) - len(buf.lstrip(bytes([WAKE_UP])))


def frame_length(device_id: str, buf: bytes) -> int | None:
    """How many bytes from the start of `buf` (a byte stream from the bus) make up its first
    complete frame, leading 0xFE bytes included; None if more bytes are needed. Raises
    DecodeError(BAD_FRAME) when `buf` cannot be the start of a frame, so that a transport
    stops waiting for bytes that will never make sense."""
    start = _preamble_size(buf)
    if start == len(buf):
        return None
    if buf[start] != START:
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          f"byte {start} is 0x{buf[start]:02X}, where a frame starts with 0x68", buf)
    second = start + 7
    if len(buf) > second and buf[second] != START:
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          f"byte {second} is 0x{buf[second]:02X}, where the address ends with 0x68", buf)
    if len(buf) < start + HEADER_SIZE:
        return None
    size = start + MIN_FRAME_SIZE + buf[start + HEADER_SIZE - 1]
    return size if len(buf) >= size else None


def parse_frame(device_id: str, frame: bytes) -> Frame:
    """One whole frame, with or without preamble, checked: start bytes, length, checksum and
    end byte. Anything wrong raises DecodeError(BAD_FRAME) saying what."""
    body = frame[_preamble_size(frame):]
    if len(body) < MIN_FRAME_SIZE:
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          f"cut short: {len(body)} bytes after the preamble, a frame has at least "
                          f"{MIN_FRAME_SIZE}", frame)
    if body[0] != START or body[7] != START:
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          "not a frame: it must start with 0x68, six address bytes and 0x68 again", frame)
    data_size = body[HEADER_SIZE - 1]
    expected = MIN_FRAME_SIZE + data_size
    if len(body) != expected:
        how = "cut short" if len(body) < expected else "too long"
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          f"{how}: the length byte announces {data_size} data bytes, a frame of {expected} "
                          f"bytes, but there are {len(body)}", frame)
    if body[-1] != END:
        raise DecodeError(device_id, Reason.BAD_FRAME, f"the last byte is 0x{body[-1]:02X}, not 0x16", frame)
    checksum = sum(body[:-2]) & 0xFF
    if body[-2] != checksum:
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          f"checksum 0x{body[-2]:02X}, but the bytes add up to 0x{checksum:02X}", frame)
    return Frame(
        address=body[6:0:-1].hex().upper(),
        control=body[8],
        data=bytes((byte - OFFSET) & 0xFF for byte in body[HEADER_SIZE:-2]),
    )


def error_text(error: int) -> str:
    """The bits of an error information word, in words."""
    names = [f"{english} ({chinese})" for bit, english, chinese in ERROR_BITS if error & bit]
    return f"{', '.join(names) or 'no error bit set'} (error byte 0x{error:02X})"


QuantityKey = Literal["energy_kwh", "voltage_v", "current_a", "power_w"]


@dataclass(frozen=True, slots=True)
class Quantity:
    """One value a meter is read for: its data identifier and its BCD format (standard,
    appendix A). `decimals` counts the decimals in our unit. `signed`: the top bit of the
    highest byte is the sign, 1 for negative, as the standard's notes say for current, power
    and combined energy (power and current then run backwards: energy exported)."""

    key: QuantityKey
    di: int
    name: str
    size: int
    decimals: int
    signed: bool

    def value(self, device_id: str, raw: bytes, payload: bytes) -> float:
        """The number in `raw`, the value bytes of an answer (lowest byte first, 0x33 removed)."""
        if len(raw) != self.size:
            raise DecodeError(device_id, Reason.BAD_FRAME,
                              f"{self.key}: {self.size} value bytes expected, the answer has {len(raw)}", payload)
        digits = bytearray(raw)
        negative = self.signed and bool(digits[-1] & 0x80)
        if self.signed:
            digits[-1] &= 0x7F
        number = 0
        for byte in reversed(digits):
            high, low = byte >> 4, byte & 0x0F
            if high > 9 or low > 9:
                raise DecodeError(device_id, Reason.BAD_FRAME,
                                  f"{self.key}: {raw[::-1].hex(' ').upper()} is not a BCD number", payload)
            number = number * 100 + high * 10 + low
        return float((-number if negative else number) / 10**self.decimals)


# Forward active energy only grows, like the counter that `energy_kwh` is. Combined active
# energy is what many meters display, but depending on the meter's combination word it may be
# forward minus reverse, which can fall and go negative.
FORWARD_ENERGY: Final = Quantity("energy_kwh", 0x00010000, "forward active total energy (正向有功总电能)", 4, 2, False)
COMBINED_ENERGY: Final = Quantity("energy_kwh", 0x00000000, "combined active total energy (组合有功总电能)", 4, 2, True)
# Power comes in kW with four decimals (XX.XXXX); the same digits are W with one decimal.
QUANTITIES: Final[dict[QuantityKey, Quantity]] = {
    "energy_kwh": FORWARD_ENERGY,
    "voltage_v": Quantity("voltage_v", 0x02010100, "phase A voltage (A相电压)", 2, 1, False),
    "current_a": Quantity("current_a", 0x02020100, "phase A current (A相电流)", 3, 3, True),
    "power_w": Quantity("power_w", 0x02030000, "total active power (瞬时总有功功率)", 3, 1, True),
}
ALL_QUANTITIES: Final[tuple[QuantityKey, ...]] = ("energy_kwh", "voltage_v", "current_a", "power_w")


def _read_answer(device_id: str, address: str, quantity: Quantity, frame: Frame, payload: bytes) -> float:
    if frame.address != address:
        raise DecodeError(device_id, Reason.BAD_FRAME, f"the answer comes from meter {frame.address}, not {address}",
                          payload)
    if not frame.control & FROM_METER or frame.control & FUNCTION_MASK != READ_DATA:
        raise DecodeError(device_id, Reason.BAD_FRAME,
                          f"control code 0x{frame.control:02X} is not an answer to a read "
                          f"(0x{READ_ANSWER:02X}, or 0x{READ_ERROR:02X} for an error)", payload)
    if frame.control & ABNORMAL:
        if len(frame.data) != 1:
            raise DecodeError(device_id, Reason.BAD_FRAME,
                              f"an error answer carries one error byte, this one {len(frame.data)}", payload)
        no_data = frame.data[0] & NO_SUCH_DATA
        hint = "; leave it out of `quantities` if this meter does not measure it" if no_data else ""
        raise DecodeError(device_id, Reason.DEVICE_ERROR,
                          f"the meter answered with an error: {error_text(frame.data[0])}{hint}", payload)
    # D5 (0xB1: follow-up frames exist) is accepted: every value we read has a fixed size,
    # checked by `Quantity.value`, so a follow-up frame could not hold any part of it.
    if len(frame.data) < DI_SIZE:
        raise DecodeError(device_id, Reason.BAD_FRAME, "the answer carries no data identifier", payload)
    di = int.from_bytes(frame.data[:DI_SIZE], "little")
    if di != quantity.di:
        raise DecodeError(device_id, Reason.BAD_FRAME, f"the answer is for data identifier {di:08X}", payload)
    return quantity.value(device_id, frame.data[DI_SIZE:], payload)


class Dlt645Source(VendorSource):
    """A DL/T 645-2007 meter on an RS-485 bus, reached through a transparent TCP serial server
    (`tcp://host:port`; the server is set to the meter's line settings, 2400 baud 8E1 by default).
    Voltage and current are those of phase A: the whole meter for a
    single-phase one, one phase of three otherwise."""

    protocol: Literal["dlt645"]
    url: str
    address: str  # the 12 digits on the nameplate, quoted in YAML
    quantities: tuple[QuantityKey, ...] = Field(ALL_QUANTITIES, min_length=1)
    energy: Literal["forward", "combined"] = "forward"  # which total `energy_kwh` is read from
    timeout_s: float = Field(2.0, gt=0, le=MAX_TIMEOUT_S)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if urlsplit(url).scheme == "rtu-over-tcp":
            raise ValueError(f"{url!r}: rtu-over-tcp:// carries Modbus RTU; a DL/T 645 meter behind a "
                             "transparent serial server is tcp://host:port")
        bus = _parse_url(url)
        if bus.serial:  # the gateway's transport for it reads a TCP stream only, so far
            raise ValueError(f"{url!r}: a DL/T 645 meter on a local serial port is not supported yet; reach it "
                             "through a transparent TCP serial server, tcp://host:port")
        if bus.port == NO_DEFAULT_PORT:
            raise ValueError(f"{url!r}: give the serial server's port, as in tcp://{bus.host}:<port>; "
                             "DL/T 645 has no standard one")
        return url

    @field_validator("address", mode="before")
    @classmethod
    def _check_address(cls, address: object) -> object:
        # Unquoted, YAML reads 123456789012 as a number and 000000000161 as the octal number 113.
        if not isinstance(address, str):
            raise ValueError(  # noqa: TRY004 - pydantic reports only ValueError as a config error
                f"the address must be a quoted string of 12 digits, as on the nameplate, not {address!r} "
                "(unquoted, YAML reads digits as a number and drops the leading zeros)"
            )
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"{address!r}: a meter address is 12 decimal digits, as on the nameplate")
        if address == BROADCAST:
            raise ValueError(f"{address} is the broadcast address; meters do not answer reads sent to it")
        return address

    @field_validator("quantities")
    @classmethod
    def _check_quantities(cls, quantities: tuple[QuantityKey, ...]) -> tuple[QuantityKey, ...]:
        repeated = sorted({key for key in quantities if quantities.count(key) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return quantities

    def bus(self) -> BusUrl:
        return _parse_url(self.url)

    def keys(self) -> frozenset[str]:
        return frozenset(self.quantities)

    def bus_key(self) -> tuple[str, ...]:
        return (self.url, f"address {self.address}")

    def read_plan(self) -> tuple[Quantity, ...]:
        """What is read, in request order."""
        plan = (QUANTITIES[key] for key in self.quantities)
        return tuple(COMBINED_ENERGY if q is FORWARD_ENERGY and self.energy == "combined" else q for q in plan)

    def requests(self) -> list[bytes]:
        """One read request per quantity, in order; `decode` expects the answers in that order."""
        return [read_request(self.address, quantity.di) for quantity in self.read_plan()]

    def decode(self, device_id: str, part: str, payload: bytes) -> Decoded:
        """`payload` is the answers to `requests()`, concatenated in order, each with or without
        preamble. Every answer must come from this meter and answer its request."""
        if part != "frames":
            raise DecodeError(device_id, Reason.BAD_TOPIC, f"a DL/T 645 meter has only the part 'frames', not {part!r}",
                              payload)
        values: dict[str, float | bool] = {}
        rest = payload
        for quantity in self.read_plan():
            try:
                size = frame_length(device_id, rest)
                if size is None:
                    raise DecodeError(device_id, Reason.BAD_FRAME, f"cut short after {len(rest)} bytes", rest)
                frame = parse_frame(device_id, rest[:size])
                values[quantity.key] = _read_answer(device_id, self.address, quantity, frame, rest[:size])
            except DecodeError as err:
                raise DecodeError(device_id, err.reason,
                                  f"answer for {quantity.name}, data identifier {quantity.di:08X}: {err.detail}",
                                  payload) from None
            rest = rest[size:]
        if rest:
            raise DecodeError(device_id, Reason.BAD_FRAME, f"{len(rest)} bytes after the last expected answer",
                              payload)
        return Decoded(values=values)


def _parse_url(url: str) -> BusUrl:
    return parse_bus_url(url, default_port=NO_DEFAULT_PORT, default_baudrate=DEFAULT_BAUDRATE,
                         default_parity=DEFAULT_PARITY)
