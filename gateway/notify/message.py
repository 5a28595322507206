"""What every notification channel shares: the message it sends (an alert's notice or a
report alike), the error a send raises, the interface a channel implements and the settings
every channel has. A channel is one module in `gateway/notify/channels/`."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from gateway.alerting.severity import Severity
from gateway.clock import Clock

HTTP_TIMEOUT_S: Final = 10.0


class ChannelSettings(BaseModel):
    """What every channel's settings have: its id, its routing and its queue."""

    type: str  # each channel's module narrows it to its own literal

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    # Routing: a notice goes to a channel when every filter given matches.
    min_severity: Severity = Severity.WARNING
    rules: list[str] | None = None  # None: every rule
    buildings: list[str] | None = None  # None: every building
    queue: int = Field(1000, ge=1, description="notices waiting; when full, the oldest is dropped")


class DeliveryError(Exception):
    """A send that failed: `transient` ones are retried with backoff, the others dropped. A
    `defect` is the gateway's own failure to make or send the message (its cause has the
    traceback), never retried."""

    def __init__(self, reason: str, *, transient: bool, defect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.defect = defect


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel sends, an alert's notice or a report alike, in every channel's terms:
    e-mail takes the headline as its subject and the text as its body, the robots the text,
    the webhook and MQTT the JSON document."""

    headline: str  # 【紧急】厨房门 在闭园时段开着 (one line: it becomes an e-mail Subject)
    text: str  # the headline, then the details, one per line
    document: dict[str, Any]
    topic: str | None = None  # where MQTT keeps it retained; None: not for MQTT
    emails: tuple[str, ...] = ()  # addressees beside the channel's own (the person on duty)
    mobiles: tuple[str, ...] = ()  # whom the robots mention
    attachment: Attachment | None = None
    # What a receiver can tell a message sent again by (at least once: a send the gateway did
    # not live to record is sent again): an alert notice's outbox row. None: a test message, a report.
    key: str | None = None


IDEMPOTENCY_KEY: Final = "Idempotency-Key"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with every run of control characters (line breaks included) as one space: what
    goes into a title or a header never breaks it, whatever a device or a site file said."""
    return _CONTROL.sub(" ", text).strip()


def truncate(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - len("…".encode())].decode(errors="ignore") + "…"


Publish = Callable[[str, bytes], Awaitable[None]]
"""Publishes retained at QoS 1 on the gateway's MQTT connection and returns once the broker
has taken it; raises `PermissionError` when the broker refuses it for good (then the notice
is dropped) and another `OSError` when it was not taken or it cannot tell (then it is retried)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a channel's sender may use: the HTTP client, the clock and the gateway's MQTT
    connection (None where there is none, e.g. report delivery)."""

    client: httpx.AsyncClient
    clock: Clock
    publish: Publish | None


class Sender(Protocol):
    """One channel's way of sending, used by alert notices and report delivery alike."""

    async def send(self, message: Message) -> bool:
        """Delivers a message once the receiver acknowledged it (False: there was no one to
        deliver it to); raises `DeliveryError` when it could not."""
        ...


async def attempt(channel: Sender, make: Callable[[], Message]) -> bool:
    """One delivery attempt of the message `make` builds, for alerts and reports alike:
    `send`'s answer, or `DeliveryError`, a defect in making or sending the message included
    (a text, a library's refusal: the channel's failure, never its caller's)."""
    try:
        return await channel.send(make())
    except DeliveryError:
        raise
    except Exception as exc:  # whatever goes wrong in one channel stays that channel's
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:200], transient=False, defect=True) from exc


async def post_json(client: httpx.AsyncClient, url: str, body: dict[str, Any], key: str | None,
                    headers: dict[str, str] | None = None) -> httpx.Response:
    """POSTs `body` as JSON with the message's `key` as its Idempotency-Key header (when it has one)."""
    content = json.dumps(body, ensure_ascii=False).encode()
    sent = {"content-type": "application/json; charset=utf-8", **(headers or {})}
    if key is not None:
        sent[IDEMPOTENCY_KEY] = key
    try:
        response = await client.post(url, content=content, headers=sent)
    except httpx.TimeoutException:
        raise DeliveryError("timeout", transient=True) from None
    except httpx.TransportError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:200], transient=True) from None
    status = response.status_code
    if status in (408, 429) or status >= 500:
        raise DeliveryError(f"HTTP {status}", transient=True)
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}", transient=False)
    return response


def robot_errcode(response: httpx.Response, transient_codes: frozenset[int]) -> None:
    """Checks a WeCom or DingTalk robot's answer, `{"errcode": 0, "errmsg": "ok"}`: only that
    is a delivery (the robots answer HTTP 200 to a refused message too)."""
    try:
        answer = response.json()
        code = int(answer["errcode"])
    except (ValueError, KeyError, TypeError):
        raise DeliveryError(f"unexpected answer: {response.text[:80]!r}", transient=False) from None
    if code != 0:
        message = str(answer.get("errmsg", ""))[:80]
        raise DeliveryError(f"errcode {code} {message}".strip(), transient=code in transient_codes)
