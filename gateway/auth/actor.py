"""`Actor`: who did something, as the API gives it (the directory that names actors is
gateway/auth/people.py). A module of its own, importing nothing of the gateway, so that
records which carry actors (the daily safety record's items, gateway/reports/safety_model.py,
which the rules import) can hold one without importing the rule registry."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Actor(BaseModel):
    id: str = Field(description="as recorded: a login, rule:<rule id>, key:<id>, client:<address> or system")
    name_zh: str
    name_en: str
    person: bool = Field(description="a person's account (or a roster entry), not a machine")
