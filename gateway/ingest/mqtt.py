"""MQTT ingest over paho-mqtt directly, on paho's own network thread.

Why paho and not aiomqtt here: on this hardware bare paho receives ~60k msg/s and aiomqtt
~26k, because aiomqtt hands every message through an asyncio queue and a task switch; ingest
is the one hot path where that matters. Decoding happens right in paho's callback, and the
bounded ingest buffer blocks that thread when the sinks fall behind, so the broker holds the
backlog instead of our memory. aiomqtt is used where an async API is worth more than raw
rate (the simulators).

The session is persistent (fixed client id, no clean start, a session expiry under MQTT 5)
and the subscription is QoS 1, so what arrives while the gateway is away waits on the broker.
Acknowledgement is manual: a message's PUBACK goes out only once the spool has committed it
(or its rejection), so a gateway killed at any moment loses nothing the broker delivered —
the broker sends the unacknowledged messages again, and the store keeps each reading once.
paho's own reconnect backoff doubles without jitter, so each wait is set here, jittered, so
that a school's gateways do not all reconnect in the same second after a broker restart.
The gateway's status is published retained on `facility/<site>/gateway/status`: `online` on
connect, `offline` on a clean stop and, as the will, when the connection drops.
"""

from __future__ import annotations

import logging
import random
from functools import partial

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.clock import Clock
from gateway.config import MqttSettings
from gateway.pipeline import Ingestor

log = logging.getLogger(__name__)
# Its own generator: the shared one is for the application (and tests seed it).
_jitter = random.Random()

RECONNECT_MAX_S = 60


class MqttIngest:
    def __init__(self, settings: MqttSettings, site_id: str, ingestor: Ingestor, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._ingestor = ingestor
        self.status_topic = f"facility/{site_id}/gateway/status"
        # Our native topics, and those of the site's Zigbee2MQTT, Tasmota and Shelly devices.
        self._subscriptions = [(f"facility/{site_id}/#", 1), *((topic, 1) for topic in ingestor.vendor_topics)]
        self.connected = False
        self._stopping = False
        self.last_error = "not connected yet"
        self._failures = 0  # connection attempts failed since the last good one
        v5 = settings.protocol == "5"
        self._v5 = v5
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
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
        self._client = client

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

    def publish(self, topic: str, payload: bytes) -> None:
        """Publishes retained at QoS 1 on the gateway's own connection (alert states); paho
        queues it while the broker is away."""
        self._client.publish(topic, payload, qos=1, retain=True)

    def stop(self) -> None:
        self._stopping = True
        if self.connected:
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
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
        log.info("MQTT connected to %s (session present: %s)", self._settings.url, flags.session_present)
        client.subscribe(self._subscriptions)
        client.publish(self.status_topic, b"online", qos=1, retain=True)

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
        self._next_retry()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        if self._failures == 0:
            log.warning("cannot reach the MQTT broker at %s; retrying with backoff", self._settings.url)
        self.last_error = f"cannot reach {self._settings.host}:{self._settings.port}"
        self._next_retry()

    def _next_retry(self) -> None:
        """Sets paho's wait before its next connection attempt: capped exponential, jittered.
        paho waits whole seconds at least one: 1–2 s, 2–4 s, … up to 30–60 s."""
        ceiling = min(2 ** (self._failures + 1), RECONNECT_MAX_S)
        delay = max(1, round(ceiling * _jitter.uniform(0.5, 1.0)))
        self._failures += 1
        self._client.reconnect_delay_set(delay, delay)

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        received_ms = int(self._clock.now().timestamp() * 1000)
        ack = partial(client.ack, message.mid, message.qos) if message.qos else None
        self._ingestor.accept_mqtt(message.topic, bytes(message.payload), received_ms, ack)
