"""The notification channels' settings (`notifications:` in the site file) and their routing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.config.severity import Severity

if TYPE_CHECKING:
    pass


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    # Routing: a notice goes to a channel when every filter given matches.
    min_severity: Severity = Severity.WARNING
    rules: list[str] | None = None  # None: every rule
    buildings: list[str] | None = None  # None: every building
    queue: int = Field(1000, ge=1, description="notices waiting; when full, the oldest is dropped")


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class EmailChannel(_Channel):
    type: Literal["email"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    to: list[str] = Field(default_factory=list, description="always; the person on duty is added")
    to_duty: bool = True


class WecomChannel(_Channel):
    type: Literal["wecom"]
    url: str  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…
    mention_duty: bool = True


class DingtalkChannel(_Channel):
    type: Literal["dingtalk"]
    url: str  # https://oapi.dingtalk.com/robot/send?access_token=…
    secret: SecretStr | None = None  # 加签: signs every request
    mention_duty: bool = True


class MqttChannel(_Channel):
    type: Literal["mqtt"]


Channel = Annotated[
    WebhookChannel | EmailChannel | WecomChannel | DingtalkChannel | MqttChannel, Field(discriminator="type")
]


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Channel] = Field(default_factory=list)
    retry_first_s: float = Field(1, gt=0)
    retry_max_s: float = Field(300, gt=0)
    give_up_after_h: float = Field(24, gt=0, description="a notice still undelivered after this is dropped")
