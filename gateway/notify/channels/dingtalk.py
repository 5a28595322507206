"""The DingTalk (钉钉) group robot: the message's text, mentioning the person on duty, signed
with the robot's secret (加签) when it has one; the robot answers HTTP 200 with an `errcode`,
and only 0 is a delivery (a wrong signature is 310000)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from dataclasses import dataclass
from typing import Final, Literal

import httpx
from pydantic import SecretStr

from gateway.clock import Clock, to_ms
from gateway.notify.message import ChannelSettings, Context, Message, post_json, robot_errcode, truncate

MAX_BYTES: Final = 20_000
# 130101 sending too fast, -1 busy.
TRANSIENT: Final = frozenset({130101, -1})


class DingtalkChannel(ChannelSettings):
    type: Literal["dingtalk"] = "dingtalk"
    url: str  # https://oapi.dingtalk.com/robot/send?access_token=…
    secret: SecretStr | None = None  # 加签: signs every request
    mention_duty: bool = True


# Scheduled reports (title, summary and link) only when `reports.channels` names this channel.
REPORTS: Final = "listed"
SETTINGS = DingtalkChannel


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with DingTalk's 加签 parameters appended."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign}"


@dataclass
class DingtalkSender:
    channel: DingtalkChannel
    client: httpx.AsyncClient
    clock: Clock

    async def send(self, message: Message) -> bool:
        mobiles = list(message.mobiles) if self.channel.mention_duty else []
        content = message.text
        if mobiles:  # the robot only mentions whom the text also names
            content += "\n" + " ".join(f"@{m}" for m in mobiles)
        body = {
            "msgtype": "text",
            "text": {"content": truncate(content, MAX_BYTES)},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }
        url = self.channel.url
        if self.channel.secret is not None:
            url = signed_url(url, self.channel.secret.get_secret_value(), to_ms(self.clock.now()))
        response = await post_json(self.client, url, body, message.key)
        robot_errcode(response, TRANSIENT)
        return True


def make(settings: DingtalkChannel, context: Context) -> DingtalkSender:
    return DingtalkSender(settings, context.client, context.clock)
