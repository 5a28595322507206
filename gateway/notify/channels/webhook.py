"""A generic JSON webhook: the message's document, POSTed as JSON with the channel's headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import httpx
from pydantic import Field

from gateway.notify.message import ChannelSettings, Context, Message, post_json


class WebhookChannel(ChannelSettings):
    type: Literal["webhook"] = "webhook"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


# Scheduled reports come here unless `reports.channels` names others.
REPORTS: Final = "default"
SETTINGS = WebhookChannel


@dataclass
class WebhookSender:
    channel: WebhookChannel
    client: httpx.AsyncClient

    async def send(self, message: Message) -> bool:
        await post_json(self.client, self.channel.url, message.document, message.key, self.channel.headers)
        return True


def make(settings: WebhookChannel, context: Context) -> WebhookSender:
    return WebhookSender(settings, context.client)
