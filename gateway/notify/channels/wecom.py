"""The WeCom (企业微信) group robot: the message's text, mentioning the person on duty by mobile
number; the robot answers HTTP 200 with an `errcode`, and only 0 is a delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx

from gateway.notify.message import ChannelSettings, Context, Message, post_json, robot_errcode, truncate

MAX_BYTES: Final = 2048  # the robot refuses longer text content
# 45009 API rate limit, -1 system busy.
TRANSIENT: Final = frozenset({45009, -1})


class WecomChannel(ChannelSettings):
    type: Literal["wecom"] = "wecom"
    url: str  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…
    mention_duty: bool = True


# Scheduled reports (title, summary and link) only when `reports.channels` names this channel.
REPORTS: Final = "listed"
SETTINGS = WecomChannel


@dataclass
class WecomSender:
    channel: WecomChannel
    client: httpx.AsyncClient

    async def send(self, message: Message) -> bool:
        text: dict[str, Any] = {"content": truncate(message.text, MAX_BYTES)}
        if self.channel.mention_duty and message.mobiles:
            text["mentioned_mobile_list"] = list(message.mobiles)
        response = await post_json(self.client, self.channel.url, {"msgtype": "text", "text": text}, message.key)
        robot_errcode(response, TRANSIENT)
        return True


def make(settings: WecomChannel, context: Context) -> WecomSender:
    return WecomSender(settings, context.client)
