"""MQTT: the message's document retained on its topic (each alert's state on
`facility/<site>/alerts/<rule>/<device_id>`), on the gateway's own connection, counted as
sent once the broker acknowledged it. Phone numbers and e-mail addresses stay off the broker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, Literal

from gateway.notify.message import ChannelSettings, Context, DeliveryError, Message, Publish


class MqttChannel(ChannelSettings):
    type: Literal["mqtt"] = "mqtt"


# No reports: a retained alert state per topic is all this channel carries.
REPORTS: Final = "never"
SETTINGS = MqttChannel


@dataclass
class MqttSender:
    publish: Publish

    async def send(self, message: Message) -> bool:
        if message.topic is None:
            return False
        document = {k: v for k, v in message.document.items() if k != "recipients"}
        try:
            await self.publish(message.topic, json.dumps(document, ensure_ascii=False).encode())
        except PermissionError as exc:  # e.g. not authorized by the broker's ACL (MQTT 5)
            raise DeliveryError(f"publish refused: {exc}"[:200], transient=False) from None
        except OSError as exc:
            raise DeliveryError(f"publish: {exc}"[:200], transient=True) from None
        return True


def make(settings: MqttChannel, context: Context) -> MqttSender:
    if context.publish is None:
        raise ValueError(f"the mqtt notification channel {settings.id!r} has no publish function: it needs the "
                         "gateway's MQTT connection")
    return MqttSender(context.publish)
