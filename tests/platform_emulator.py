"""An energy-monitoring platform (能耗监测平台) as the 2008 transmission guideline describes it,
written from the guideline and docs/platform.md, sharing no code with gateway/sinks/platform.py:
its own framing, XML and crypto calls. A TCP server on a free loopback port that runs the login
(a random sequence, the MD5 identity check, a wrong key refused), answers heartbeats, takes the
data, acknowledges it, and records and checks what it got: well-formed, each meter's periods in
order, none twice. It can be taken down and brought back on the same port (an outage), and told
to misbehave (answer garbage, say nothing, hang up).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import Literal
from xml.dom import minidom
from xml.parsers.expat import ExpatError

from cryptography.hazmat.primitives import padding as pad
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

START = bytes.fromhex("55AA55AA")
END = bytes.fromhex("68166816")


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def modbus_crc(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


@dataclass(frozen=True)
class Reading:
    """One meter's value as the platform received it."""

    building: str
    gateway: str
    operation: str  # report or continuous
    parser: str  # no: a reading; yes: use over the period
    time: str  # YYYYMMDDHHMMSS, local
    period_min: int
    meter: str
    function: str
    coding: str
    value: float


Misbehaviour = Literal["none", "garbage", "silent", "hang_up"]


@dataclass
class PlatformEmulator:
    auth_key: str
    aes_key: str
    building_id: str
    gateway_id: str
    aes_iv: str | None = None
    mode: Literal["cbc", "ecb"] = "cbc"
    padding: Literal["pkcs7", "zero"] = "pkcs7"
    misbehave: Misbehaviour = "none"
    # A provincial variant: the guideline's words as it says them (id_validate → Login, …), and
    # the byte order of a frame's length and checksum.
    names: dict[str, str] = field(default_factory=dict)
    byte_order: Literal[">", "<"] = ">"
    port: int = 0
    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # every check that failed, said plainly
    logins: int = 0
    refused: int = 0
    heartbeats: int = 0
    _server: asyncio.Server | None = None
    _clients: set[asyncio.StreamWriter] = field(default_factory=set)

    # ---------------------------------------------------------------- running

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """The platform goes away: no new connections, the open ones cut."""
        assert self._server is not None
        self._server.close()
        for w in list(self._clients):
            w.transport.abort()
        await self._server.wait_closed()
        self._server = None

    # ---------------------------------------------------------------- crypto and frames

    def _cipher(self) -> Cipher[modes.CBC] | Cipher[modes.ECB]:
        key = algorithms.AES128(self.aes_key.encode("ascii"))
        if self.mode == "ecb":
            return Cipher(key, modes.ECB())
        return Cipher(key, modes.CBC((self.aes_iv or self.aes_key).encode("ascii")))

    def _seal(self, xml: str) -> bytes:
        raw = xml.encode("utf-8")
        if self.padding == "pkcs7":
            p = pad.PKCS7(128).padder()
            raw = p.update(raw) + p.finalize()
        else:
            raw = raw.ljust(-(-len(raw) // 16) * 16, b"\x00")
        e = self._cipher().encryptor()
        body = e.update(raw) + e.finalize()
        o = self.byte_order
        return START + struct.pack(f"{o}I", len(body)) + body + struct.pack(f"{o}H", modbus_crc(body)) + END

    def _open(self, body: bytes) -> str:
        d = self._cipher().decryptor()
        raw = d.update(body) + d.finalize()
        if self.padding == "pkcs7":
            u = pad.PKCS7(128).unpadder()
            raw = u.update(raw) + u.finalize()
        else:
            raw = raw.rstrip(b"\x00")
        return raw.decode("utf-8")

    async def _read(self, reader: asyncio.StreamReader) -> minidom.Document:
        start = await reader.readexactly(4)
        if start != START:
            raise ValueError(f"frame starts with {start.hex()}")
        (length,) = struct.unpack(f"{self.byte_order}I", await reader.readexactly(4))
        body = await reader.readexactly(length)
        (crc,) = struct.unpack(f"{self.byte_order}H", await reader.readexactly(2))
        if crc != modbus_crc(body):
            raise ValueError("checksum")
        if await reader.readexactly(4) != END:
            raise ValueError("frame end")
        return minidom.parseString(self._open(body))

    def _reply(self, element: str, operation: str, children: dict[str, str]) -> str:
        element, operation = self._say(element), self._say(operation)
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in children.items())
        return (f'<?xml version="1.0" encoding="UTF-8"?><root><common><building_id>{self.building_id}</building_id>'
                f"<gateway_id>{self.gateway_id}</gateway_id><type>{operation}</type></common>"
                f'<{element} operation="{operation}">{inner}</{element}></root>')

    # ---------------------------------------------------------------- the conversation

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            await self._conversation(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the gateway hung up, or the outage cut it
        except (ValueError, ExpatError) as exc:
            self.problems.append(f"malformed message: {exc}")
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sequence = None
        logged_in = False
        while True:
            doc = await self._read(reader)
            common = _text(doc, "building_id"), _text(doc, "gateway_id")
            if common != (self.building_id, self.gateway_id):
                self.problems.append(f"unknown building or gateway {common}")
                return
            root = doc.documentElement
            if root is None:
                raise ValueError("an empty document")
            (body,) = [n for n in root.childNodes if isinstance(n, minidom.Element) and n.tagName != "common"]
            tag, op = self._word(body.tagName), self._word(body.getAttribute("operation"))
            if tag == "id_validate" and op == "request":
                sequence = secrets.token_hex(8)
                writer.write(self._seal(self._reply("id_validate", "sequence", {self._say("sequence"): sequence})))
            elif tag == "id_validate" and op == "md5" and sequence is not None:
                expected = hashlib.md5((sequence + self.auth_key).encode()).hexdigest()
                logged_in = _text(doc, self._say("md5")) == expected
                self.logins += logged_in
                self.refused += not logged_in
                result = self._say("pass") if logged_in else "fail"
                writer.write(self._seal(self._reply("id_validate", "result", {self._say("result"): result})))
                if not logged_in:
                    await writer.drain()
                    return
            elif not logged_in:
                self.problems.append(f"{tag} {op} before the login")
                return
            elif tag == "heart_beat" and op == "notify":
                self.heartbeats += 1
                writer.write(self._seal(self._reply("heart_beat", "time", {"time": "20261203080000"})))
            elif tag == "data" and op in ("report", "continuous"):
                if await self._misbehave(reader, writer):
                    return
                self._take(doc, op)
                sequence_tag = self._say("sequence")
                writer.write(self._seal(self._reply("data", f"{op}_ack", {
                    sequence_tag: _text(doc, sequence_tag), "time": _text(doc, "time"), "ack": "OK"})))
            else:
                self.problems.append(f"unexpected {tag} {op}")
            await writer.drain()

    def _say(self, word: str) -> str:
        """The guideline's word as this platform's variant says it."""
        return self.names.get(word, word)

    def _word(self, said: str) -> str:
        """The variant's word as the guideline says it; the guideline's own word, where the
        variant says another, is not understood."""
        word = next((word for word, as_said in self.names.items() if as_said == said), said)
        return f"not understood: {said}" if word == said and said in self.names else word

    async def _misbehave(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """True when the data is not to be taken."""
        if self.misbehave == "garbage":
            writer.write(START + b"\x00\x00\x00\x05garbage and more")
        elif self.misbehave == "hang_up":
            writer.transport.abort()
        elif self.misbehave == "silent":  # takes everything, answers nothing, until the gateway gives up
            while await reader.read(4096):
                pass
        return self.misbehave != "none"

    def _take(self, doc: minidom.Document, op: str) -> None:
        parser, time, period = _text(doc, "parser"), _text(doc, "time"), _text(doc, "period")
        if parser not in ("yes", "no") or len(time) != 14 or not time.isdigit() or not period.isdigit():
            self.problems.append(f"bad data header: parser={parser!r} time={time!r} period={period!r}")
            return
        meters = doc.getElementsByTagName("meter")
        if not meters:
            self.problems.append(f"data at {time} without meters")
        for m in meters:
            for f in m.getElementsByTagName("function"):
                r = Reading(self.building_id, self.gateway_id, op, parser, time, int(period), m.getAttribute("id"),
                            f.getAttribute("id"), f.getAttribute("coding"), float(_inner(f)))
                same = [x for x in self.readings if (x.meter, x.parser) == (r.meter, r.parser)]
                if any(x.time == r.time for x in same):
                    self.problems.append(f"meter {r.meter} parser={parser} at {time} received twice")
                elif same and same[-1].time > r.time:
                    self.problems.append(f"meter {r.meter} parser={parser}: {time} after {same[-1].time}")
                self.readings.append(r)


def _text(doc: minidom.Document, tag: str) -> str:
    found = doc.getElementsByTagName(tag)
    return _inner(found[0]) if found else ""


def _inner(node: minidom.Element) -> str:
    child = node.firstChild
    return "" if child is None else child.nodeValue or ""
