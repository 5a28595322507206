"""The energy-monitoring platform's settings (`platform:`): where the school's meter data is
uploaded under the 2008 transmission guideline (docs/platform.md), and the provincial variant
that platform speaks — cipher, padding, message names — as settings, not as code."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class PlatformMeter(BaseModel):
    """How the platform knows one of the site's meters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="the meter's number on the platform")
    # The sub-item code of what it measures (分类分项编码, e.g. 01A00 lighting and sockets).
    coding: str = Field(pattern=r"^[0-9A-Z]{1,16}$")
    function: str = Field("1", pattern=r"^[A-Za-z0-9_.-]{1,16}$",
                          description="the function number its cumulative reading is sent under")


class PlatformNames(BaseModel):
    """The element and operation names a platform uses. The defaults are the guideline's; a
    provincial variant renames them (Ningbo: GetUUID, Login, SendHeartBeat, SendMeterData)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id_validate: str = "id_validate"
    request: str = "request"
    sequence: str = "sequence"
    md5: str = "md5"
    result: str = "result"
    passed: str = Field("pass", description="the result that lets the gateway in")
    heart_beat: str = "heart_beat"
    notify: str = "notify"
    time: str = "time"
    data: str = "data"
    report: str = "report"
    continuous: str = "continuous"  # data re-sent after an outage (断点续传)
    report_ack: str = "report_ack"
    continuous_ack: str = "continuous_ack"


class PlatformSettings(BaseModel):
    """The upload to a provincial or municipal energy-monitoring platform over TCP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)
    building_id: str = Field(min_length=1, max_length=32, description="the building's number on the platform")
    gateway_id: str = Field(min_length=1, max_length=32, description="this gateway's (采集器) number")
    # The identity check's key (MD5 of the platform's sequence and this) and the AES key:
    # from the environment in production, FACILITY_PLATFORM__AUTH_KEY and …__AES_KEY.
    auth_key: SecretStr
    aes_key: SecretStr = Field(description="16 characters (AES-128)")
    aes_iv: SecretStr | None = Field(None, description="16 characters; CBC only; default the key")
    cipher: Literal["cbc", "ecb"] = "cbc"
    padding: Literal["pkcs7", "zero"] = "pkcs7"
    names: PlatformNames = Field(default_factory=PlatformNames)
    length_order: Literal["big", "little"] = Field("big", description="byte order of a frame's length field")
    meters: dict[str, PlatformMeter] = Field(min_length=1, description="device id → the platform's meter")
    raw_every_min: int = Field(15, ge=1, le=1440, description="the meters' readings, every this many minutes")
    statistics_every_min: int = Field(60, ge=1, le=1440, description="use over each such period")
    heartbeat_s: float = Field(60, gt=0)
    answer_timeout_s: float = Field(10, gt=0, description="how long an answer of the platform is awaited")
    # A period older than this many periods when it is sent goes as re-sent data (continuous).
    late_periods: int = Field(2, ge=1)

    @field_validator("aes_key", "aes_iv")
    @classmethod
    def _sixteen(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().encode()) != 16:
            raise ValueError("AES-128 takes 16 bytes")
        return v

    @model_validator(mode="after")
    def _whole_raw_periods(self) -> Self:
        if self.statistics_every_min % self.raw_every_min:
            raise ValueError("statistics_every_min: a whole number of raw periods (raw_every_min)")
        return self
