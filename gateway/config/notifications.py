"""The notifications' settings (`notifications:` in the site file): the channels, each as
its own module declares it (gateway/notify/channels/), and the retry policy."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.notify.channels import channels
from gateway.notify.message import ChannelSettings

if TYPE_CHECKING:
    Channel = ChannelSettings
else:  # a discriminated union of the discovered channels' settings: `type` picks the model
    Channel = Annotated[functools.reduce(operator.or_, (m.SETTINGS for m in channels().values())),
                        Field(discriminator="type")]


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Channel] = Field(default_factory=list)
    retry_first_s: float = Field(1, gt=0)
    retry_max_s: float = Field(300, gt=0)
    give_up_after_h: float = Field(24, gt=0, description="a notice still undelivered after this is dropped")
