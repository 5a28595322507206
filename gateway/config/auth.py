"""Roles, API key scopes and the login settings (`auth:`)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Role(StrEnum):
    VIEWER = "viewer"
    STAFF = "staff"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.STAFF: 1, Role.ADMIN: 2}


def allows(have: Role, need: Role) -> bool:
    """Whether a user with role `have` may do what needs role `need`."""
    return _RANK[have] >= _RANK[need]


class Scope(StrEnum):
    """What an API key may do. `admin` includes all the others."""

    READ = "read"
    INGEST = "ingest"
    ACK = "ack"
    ADMIN = "admin"


class AuthSettings(BaseModel):
    """Failed logins are counted over a sliding window of `login_lockout_min`. A user name is
    never locked for everyone: that would let anyone outside lock the head of logistics out.
    What is locked is a client address, for one user name (`login_max_failures`) or for all
    of them (`login_max_failures_per_client`, a client guessing across names). Failures
    against one name from many addresses slow that name's logins down instead: each answer
    waits `login_slow_delay_s`, doubled for every further `login_max_failures` failures, at
    most `login_slow_max_delay_s`; the right password still gets in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_ttl_h: float = Field(12, gt=0)
    login_max_failures: int = Field(5, ge=1, description="per user name and client address")
    login_max_failures_per_client: int = Field(20, ge=1, description="per client address, over all user names")
    login_lockout_min: float = Field(15, gt=0)
    login_slow_after_failures: int = Field(10, ge=2, description="per user name, from all addresses")
    login_slow_delay_s: float = Field(1.0, ge=0)
    login_slow_max_delay_s: float = Field(8.0, ge=0)
    # Reads without login, e.g. a wall display on the intranet. Writes always need a login.
    public_read: bool = False

    @model_validator(mode="after")
    def _limits_in_order(self) -> Self:
        # One address can add at most `login_max_failures` failures to a name within the
        # window (it is locked after): above that, only many addresses slow a name down.
        if self.login_slow_after_failures <= self.login_max_failures:
            raise ValueError(f"login_slow_after_failures ({self.login_slow_after_failures}) must be more than "
                             f"login_max_failures ({self.login_max_failures}): one address alone must not slow "
                             "a user's logins down for everyone")
        if self.login_max_failures_per_client < self.login_max_failures:
            raise ValueError(f"login_max_failures_per_client ({self.login_max_failures_per_client}) must be at "
                             f"least login_max_failures ({self.login_max_failures})")
        if self.login_slow_max_delay_s < self.login_slow_delay_s:
            raise ValueError("login_slow_max_delay_s must be at least login_slow_delay_s")
        return self

    def slow_delay_s(self, failures: int) -> float:
        """How long a login for a name waits, given the name's failures in the window."""
        if failures < self.login_slow_after_failures:
            return 0.0
        doublings = min(32, (failures - self.login_slow_after_failures) // self.login_max_failures)
        return min(self.login_slow_max_delay_s, math.ldexp(self.login_slow_delay_s, doublings))
