"""MQTT ingest over paho-mqtt directly, on paho's own network thread.

Why paho and not aiomqtt here: on this hardware bare paho receives ~60k msg/s and aiomqtt
~26k, because aiomqtt hands every message through an asyncio queue and a task switch; ingest
is the one hot path where that matters. Decoding happens right in paho's callback, and the
bounded ingest buffer blocks that thread when the sinks fall behind, so the broker holds the
backlog instead of our memory. aiomqtt is used where an async API is worth more than raw
rate (the simulators).

The session is persistent (fixed client id, no clean start, a session expiry under MQTT 5;
the shipped Mosquitto keys it by the `gateway` login instead, so no other login can take it)
and the subscription is QoS 1, so what arrives while the gateway is away waits on the broker.
Acknowledgement is manual: a message's PUBACK goes out only once the spool has committed it
(or its rejection), so a gateway killed at any moment loses nothing the broker delivered —
the broker sends the unacknowledged messages again, and the store keeps each reading once.
paho's own reconnect backoff doubles without jitter, so each wait is set here, jittered, so
that a school's gateways do not all reconnect in the same second after a broker restart.
The gateway's status is published retained on `facility/<site>/gateway/status`: `online` on
connect, `offline` on a clean stop and, as the will, when the connection drops.

A retained message comes again whenever the gateway subscribes, i.e. at every reconnection
(MQTT 3.1.1 has no way to ask otherwise). A copy flagged retained whose payload is the one
last received on its topic is nothing new: it is acknowledged and not counted, so a retained
malformed payload is not rejected and dead-lettered again, and a retained reading without
`ts` is not stored again at the time of receipt. A retained payload that differs (a QoS 0
publish the broker did not queue while the gateway was away) is taken. The memory of payloads
is this process's, so after a gateway restart a retained message counts once more under 3.1.1.
Under MQTT 5 the subscription asks the broker not to send retained messages again for a
subscription the session already has, which covers restarts too (and leaves out a retained
QoS 0 publish made while the gateway was away, as QoS 0 leaves out any: at most once).

paho sends each PUBACK as one wake-up of its thread and one `send`: a committed batch's PUBACKs
are queued as one write instead (`MqttClient.ack_many`, through a private method of paho, which
is pinned to 2.2.x for it), about a fifth of receiving's CPU (docs/performance.md).

`publish` (the alert states of the `mqtt` notification channel) waits for the broker's PUBACK:
paho's `on_publish`, on its network thread, settles an asyncio future on the caller's loop.
MQTT 5 brokers answer a publish they refuse with a failure reason code (not authorized by the
ACL); MQTT 3.1.1 acknowledges it like any other, so only MQTT 5 can tell a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.clock import Clock, to_ms
from gateway.config import MqttSettings
from gateway.discovery.listener import Discovery
from gateway.ingest.pipeline import GroupAck, Ingestor
from gateway.retry import Backoff

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 60
PUBACK_TIMEOUT_S: Final = 10.0
# MQTT 5 reason codes with which a broker refuses a publish for good: the same message sent
# again gets the same answer. Other failures (quota exceeded, unspecified) may pass later.
REFUSED_FOR_GOOD: Final = frozenset({0x87, 0x90, 0x99})  # not authorized, bad topic name, bad payload format

# Topics whose last payload is remembered: a few per device (a large school has a few thousand);
# beyond this the least recently heard are forgotten, and their retained copies count again.
SEEN_TOPICS_MAX: Final = 20_000

_Waiter = asyncio.Future[ReasonCode] | None  # None: nobody waits for this acknowledgement (any more)
READ_AHEAD_BYTES: Final = 65_536  # what `MqttClient` reads of the socket at once (a burst of packets)
_PUBACK: Final = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id (MQTT 5 too)


class _TopicCallbacks(MQTTMatcher):
    """paho's table of the callbacks added per topic filter (`message_callback_add`), which
    paho asks of every message received. Its `iter_match` builds a recursive closure each time:
    a reference cycle of six objects that only the garbage collector frees. This gateway adds
    no such callback, and with none there is nothing to match."""

    def iter_match(self, topic: str) -> Iterator[Any]:
        return super().iter_match(topic) if self._root._children else iter(())  # type: ignore[no-untyped-call]


class MqttClient(paho.Client):
    """paho's client, sending a batch's PUBACKs as one write (`ack_many`, through paho's
    private `_packet_queue`, 2.2.x), reading the socket ahead (`_sock_recv`, `loop_read`),
    with Nagle's algorithm off (`_create_socket_connection`) and leaving no garbage a message
    (`_TopicCallbacks`, paho's private `_on_message_filtered`).

    paho reads a packet with three or four `recv` calls and waits in `select` before each; every
    one of those system calls gives up the GIL, and getting it back from a busy thread takes up
    to the switch interval. Read ahead, a burst of messages costs one `recv` and no `select`
    between its packets: under load, a message reaches the rules without waiting behind the
    GIL several times over (docs/performance.md)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message_filtered = _TopicCallbacks()  # type: ignore[no-untyped-call]
        self._inbox = b""  # read from the socket, not yet taken by paho
        self._inbox_at = 0
        self._inbox_socket: object = None  # the socket it was read from: a new connection starts empty

    def _create_socket_connection(self) -> socket.socket:
        """paho's TCP connection, with TCP_NODELAY: a write (a batch's PUBACKs, the gateway's
        status, an alert published to the broker) goes at once, rather than waiting for the
        broker's machine to acknowledge the previous one, which it may put off by up to 40 ms."""
        sock = super()._create_socket_connection()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _buffered(self) -> bool:
        return self._inbox_at < len(self._inbox) and self._inbox_socket is self._sock

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._buffered():
            data = super()._sock_recv(READ_AHEAD_BYTES)  # raises as paho's does: would block, lost
            if len(data) <= bufsize:
                self._inbox = b""
                return data
            self._inbox, self._inbox_at, self._inbox_socket = data, 0, self._sock
        start = self._inbox_at
        self._inbox_at = end = min(start + bufsize, len(self._inbox))
        return self._inbox[start:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho's, then again while read-ahead bytes wait: its `select` cannot see them."""
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffered():
            rc = super().loop_read(max_packets)
        return rc

    def ack_many(self, mids: list[int]) -> None:
        """QoS 1 acknowledgements of `mids`, in order, as one packet write: one wake-up of
        paho's thread and one `send` instead of one each. Lost with the connection, as paho's
        own are: the broker sends those messages again."""
        self._packet_queue(paho.PUBACK, b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids]), 0, 0)


def session_client_id(settings: MqttSettings, site_id: str) -> str:
    """The client id of the site's persistent session: as configured, or one derived from the
    site, which whichever replica runs the site uses (docs/district.md)."""
    return settings.client_id or f"facility-gateway-{site_id}"


class MqttIngest:
    def __init__(self, settings: MqttSettings, site_id: str, ingestor: Ingestor, clock: Clock,
                 discovery: Discovery) -> None:
        self._settings = settings
        self._clock = clock
        self._ingestor = ingestor
        self._discovery = discovery
        self.status_topic = f"facility/{site_id}/gateway/status"
        self._native = f"facility/{site_id}/#"
        self._v5 = v5 = settings.protocol == "5"
        self._subscriptions: list[tuple[str, int]] | list[tuple[str, SubscribeOptions]] = []
        self._topics: list[str] = []
        self._topics_lock = threading.Lock()
        # Topic → hash of the payload last received on it, least recently heard first (an
        # OrderedDict: a plain dict's oldest entry gets slow to find after many deletions, which
        # a device publishing on ever new topics would cause). Python's hash of bytes is SipHash
        # with a per-process random key: no one can aim a collision. About 0.1 µs a message.
        self._seen: OrderedDict[str, int] = OrderedDict()
        self.connected = False
        self._stopping = False
        self.last_error = "not connected yet"
        self._failures = 0  # connection attempts failed since the last good one
        self._backoff = Backoff(2, RECONNECT_MAX_S)
        # PUBACKs awaited, by message id; and those that came before their publisher could say
        # it waits for them (paho sends at once, on its own thread, before `publish` returns the
        # id). Every QoS 1 publish of ours registers its id, so an early entry is always claimed.
        self._acks_lock = threading.Lock()
        self._awaited: dict[int, _Waiter] = {}
        self._early: dict[int, ReasonCode] = {}
        client = MqttClient(
            CallbackAPIVersion.VERSION2,
            client_id=session_client_id(settings, site_id),
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                certfile=str(settings.cert_file) if settings.cert_file else None,
                keyfile=str(settings.key_file) if settings.key_file else None,
            )
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client
        self.resubscribe()

    def resubscribe(self) -> None:
        """Our native topics, those of the site's Zigbee2MQTT, Tasmota and Shelly devices as the
        ingestor routes them now, and where devices announce themselves (gateway/discovery/):
        the connection subscribes to new ones and leaves old ones at once, and every
        reconnection subscribes to the whole list. None of them overlap, so that no broker
        sends a message twice for two of our subscriptions."""
        topics = [self._native, *self._ingestor.vendor_topics, *self._discovery.topics]
        with self._topics_lock:
            added = [t for t in topics if t not in self._topics]
            gone = [t for t in self._topics if t not in topics]
            self._topics = topics
            self._subscriptions = self._options(topics)
            if self.connected and added:
                self._client.subscribe(self._options(added))
            if self.connected and gone:
                self._client.unsubscribe(gone)

    def _options(self, topics: list[str]) -> list[tuple[str, int]] | list[tuple[str, SubscribeOptions]]:
        # MQTT 5: retained messages only for a subscription the session does not have yet.
        if self._v5:
            return [(t, SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB))
                    for t in topics]
        return [(t, 1) for t in topics]

    def start(self) -> None:
        """Connects in the background; paho's thread keeps reconnecting until `stop()`."""
        s = self._settings
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.max_inflight
            self._client.connect_async(s.host, s.port, s.keepalive_s, clean_start=False, properties=props)
        else:
            self._client.connect_async(s.host, s.port, s.keepalive_s)
        self._client.loop_start()

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publishes retained at QoS 1 on the gateway's own connection (alert states) and returns
        once the broker has acknowledged it. Raises `PermissionError` when the broker refuses it
        for good (MQTT 5 reason codes in `REFUSED_FOR_GOOD`), and another `OSError` when it was
        not taken or it cannot tell: not connected, disconnected before the acknowledgement,
        none within `PUBACK_TIMEOUT_S`, another failure reason code."""
        if not self.connected:
            # paho would queue it for the next connection, and a caller's retries would pile up there.
            raise ConnectionError(f"not connected to the MQTT broker ({self.last_error})")
        waiter: asyncio.Future[ReasonCode] = asyncio.get_running_loop().create_future()
        info = self._client.publish(topic, payload, qos=1, retain=True)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise OSError(f"publish: {paho.error_string(info.rc)}")  # not queued: no PUBACK will come
        early = self._await_puback(info.mid, waiter)
        try:
            if info.rc == paho.MQTT_ERR_NO_CONN:  # the connection dropped since the check above
                raise ConnectionError("disconnected from the MQTT broker before sending")
            if early is not None:
                reason = early
            else:
                async with asyncio.timeout(PUBACK_TIMEOUT_S):  # not wait_for: in 3.11 it can swallow a cancel
                    reason = await waiter
        except TimeoutError:
            raise TimeoutError(f"no PUBACK from the MQTT broker within {PUBACK_TIMEOUT_S:g} s") from None
        finally:
            self._forget_puback(info.mid, waiter)
        if reason.is_failure:
            if reason.value in REFUSED_FOR_GOOD:
                raise PermissionError(f"the MQTT broker refused {topic}: {reason}")
            raise OSError(f"the MQTT broker did not take {topic}: {reason}")

    def _publish_unawaited(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        """Publishes the gateway's status, retained at QoS 1, without waiting for the PUBACK."""
        info = self._client.publish(topic, payload, qos=1, retain=True)
        if info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            self._await_puback(info.mid, None)
        return info

    def _await_puback(self, mid: int, waiter: _Waiter) -> ReasonCode | None:
        """Registers a publish's waiter; the PUBACK's reason if it has come already."""
        with self._acks_lock:
            early = self._early.pop(mid, None)
            if early is None:
                self._awaited[mid] = waiter
        return early

    def _forget_puback(self, mid: int, waiter: asyncio.Future[ReasonCode]) -> None:
        """The publisher no longer waits (acknowledged, timed out, cancelled, disconnected): a
        PUBACK still to come for this id is dropped. paho gives the id to no other message
        until that PUBACK has come, so it cannot be taken for another's."""
        with self._acks_lock:
            if self._awaited.get(mid) is waiter:
                self._awaited[mid] = None

    def _on_publish(
        self, client: paho.Client, userdata: object, mid: int, reason: ReasonCode, properties: Properties | None,
    ) -> None:
        with self._acks_lock:
            if mid not in self._awaited:
                self._early[mid] = reason
                return
            waiter = self._awaited.pop(mid)
        if waiter is not None:
            _settle_threadsafe(waiter, reason)

    def stop(self) -> None:
        self._stopping = True
        if self.connected:
            info = self._publish_unawaited(self.status_topic, b"offline")
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            if not self.last_error.startswith("connect refused"):
                log.warning("MQTT broker %s refused the connection: %s", self._settings.url, reason)
            self.last_error = f"connect refused: {reason}"
            return
        self.connected = True
        self.last_error = ""
        self._failures = 0
        self._backoff.reset()
        log.info("MQTT connected to %s (session present: %s)", self._settings.url, flags.session_present)
        with self._topics_lock:
            client.subscribe(self._subscriptions)
        self._publish_unawaited(self.status_topic, b"online")

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._stopping:
            log.info("MQTT disconnected from %s", self._settings.url)
        elif self.connected:
            log.warning("MQTT connection to %s lost: %s; reconnecting", self._settings.url, reason)
        self.connected = False
        self.last_error = f"disconnected: {reason}"
        # paho sends unacknowledged messages again after reconnecting, but their publishers
        # learn now that it is not known whether they arrived; the later PUBACKs are dropped.
        with self._acks_lock:
            waiting = [w for w in self._awaited.values() if w is not None]
            self._awaited = dict.fromkeys(self._awaited)
        for waiter in waiting:
            _settle_threadsafe(waiter, ConnectionError(f"disconnected from the MQTT broker: {reason}"))
        self._next_retry()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        if self._failures == 0:
            log.warning("cannot reach the MQTT broker at %s; retrying with backoff", self._settings.url)
        self.last_error = f"cannot reach {self._settings.host}:{self._settings.port}"
        self._next_retry()

    def _next_retry(self) -> None:
        """Sets paho's wait before its next connection attempt: capped exponential, jittered.
        paho waits whole seconds at least one: 1–2 s, 2–4 s, … up to 30–60 s."""
        delay = max(1, round(self._backoff.next_s()))
        self._failures += 1
        self._client.reconnect_delay_set(delay, delay)

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        topic, payload = message.topic, bytes(message.payload)
        digest = hash(payload)
        seen = self._seen
        last = seen.get(topic)
        if last is not None:
            seen.move_to_end(topic)  # the least recently heard are forgotten first
        seen[topic] = digest
        if len(seen) > SEEN_TOPICS_MAX:
            seen.popitem(last=False)
        # A resend (dup) may be of a delivery that never reached the spool: only a fresh copy
        # of the retained message, sent because we subscribed again, is known to be old.
        if message.retain and not message.dup and last == digest:
            log.debug("retained message on %s delivered again on subscribing: already received", topic)
            if message.qos:
                client.ack(message.mid, message.qos)  # nothing to make durable first
            return
        received_ms = to_ms(self._clock.now())
        if self._discovery.observe(topic, payload, received_ms):
            if message.qos:
                client.ack(message.mid, message.qos)  # the inbox is kept best effort: nothing to spool
            return
        ack = GroupAck(self._client.ack_many, message.mid) if message.qos == 1 else None
        self._ingestor.accept_mqtt(topic, payload, received_ms, ack)


def _settle_threadsafe(waiter: asyncio.Future[ReasonCode], outcome: ReasonCode | OSError) -> None:
    """Settles a publisher's future from paho's thread, on the future's own loop."""
    with contextlib.suppress(RuntimeError):  # its loop is closed: the application ended, nobody waits
        waiter.get_loop().call_soon_threadsafe(_settle, waiter, outcome)


def _settle(waiter: asyncio.Future[ReasonCode], outcome: ReasonCode | OSError) -> None:
    if waiter.done():
        return  # timed out or cancelled meanwhile
    if isinstance(outcome, OSError):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)
