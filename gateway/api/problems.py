"""The error answers the API documents: every refusal is `{"detail": …}`, a sentence, the
list of what failed validation (without the input, see gateway/app.py), or, where a person
in the dashboard is refused something they can act on (a work order already done, a sample
under its minimum weight), the sentence in both languages (`refusal`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel


class Said(BaseModel):
    zh: str
    en: str


class Problem(BaseModel):
    detail: str | Said | list[dict[str, Any]]


def refusal(status: int, zh: str, en: str) -> HTTPException:
    """A refusal a person reads: the dashboard shows the half in its language."""
    return HTTPException(status, {"zh": zh, "en": en})


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or route that may answer with these codes."""
    return {code: {"model": Problem, "description": HTTPStatus(code).phrase} for code in codes}


# Reads and ingest need credentials, name a device, validate their query, and ingest may be
# told to come back later.
GUARDED = problems(401, 403, 404, 422, 503)
# Heavy queries (gateway/api/query_limit.py) may be told to come back later too.
BUSY = GUARDED | {503: GUARDED[503] | {"description": "too many heavy queries at once; see Retry-After"}}
