"""The 新设备 inbox: devices heard announcing themselves that the site file lacks, each with
a suggestion for adding it (docs/discovery.md). Admins only; nothing here adds a device."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from devices import kinds
from gateway.api.access import Admin, _http_errors
from gateway.api.deps import DiscoveryDep, SiteDep
from gateway.config import SiteConfig
from gateway.discovery.inbox import Entry
from gateway.discovery.suggest import (
    PROTOCOLS,
    STATES,
    Suggestion,
    acl_lines,
    adopted,
    dynsec_commands,
    suggest,
    why_text,
)

router = APIRouter(tags=["discovery"])


class SampleOut(BaseModel):
    topic: str
    payload: str  # as text, at most about 2 kB
    at: int  # Unix milliseconds


class SuggestionOut(BaseModel):
    id: str
    name: str
    kind: str
    kind_zh: str
    kind_en: str
    source: dict[str, Any] | None  # the site file's `source:`; null for the gateway's own JSON


class DiscoveredOut(BaseModel):
    key: str
    protocol: str
    protocol_zh: str
    protocol_en: str
    title_zh: str
    title_en: str
    first_seen: int  # Unix milliseconds
    first_topic: str
    last_seen: int
    last_topic: str
    messages: int
    samples: list[SampleOut]
    suggestion: SuggestionOut | None
    why_zh: str | None  # when there is no suggestion
    why_en: str | None
    acl: list[str]
    dynsec: list[str]
    state: Literal["new", "dismissed"]
    state_zh: str
    state_en: str


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such discovered device"}}


@router.get("/api/v1/admin/discovered")
def list_discovered(_admin: Admin, inbox: DiscoveryDep, site: SiteDep) -> list[DiscoveredOut]:
    """Devices heard that the site file does not read yet, the most recently heard first;
    dismissed ones too, marked so."""
    return [_out(e, site) for e in inbox.entries() if not adopted(e, site)]


@router.post("/api/v1/admin/discovered/{key}/dismiss", status_code=204, responses=_NOT_FOUND)
def dismiss(key: str, admin: Admin, inbox: DiscoveryDep) -> None:
    with _http_errors():
        inbox.dismiss(key, admin.name)


@router.post("/api/v1/admin/discovered/{key}/restore", status_code=204, responses=_NOT_FOUND)
def restore(key: str, admin: Admin, inbox: DiscoveryDep) -> None:
    with _http_errors():
        inbox.restore(key, admin.name)


def _out(entry: Entry, site: SiteConfig) -> DiscoveredOut:
    facts = entry.facts
    protocol_zh, protocol_en = PROTOCOLS[facts.protocol]
    title = " · ".join(t for t in (facts.said, facts.model) if t)
    proposal = suggest(facts, site)
    why_zh, why_en = why_text(proposal) if isinstance(proposal, str) else (None, None)
    state_zh, state_en = STATES[entry.state]
    return DiscoveredOut(
        key=facts.key, protocol=facts.protocol, protocol_zh=protocol_zh, protocol_en=protocol_en,
        title_zh=f"{protocol_zh}：{title}", title_en=f"{protocol_en}: {title}",
        first_seen=entry.first_ms, first_topic=entry.first_topic, last_seen=entry.last_ms,
        last_topic=entry.last_topic, messages=entry.messages,
        samples=[SampleOut.model_validate(s) for s in entry.samples],
        suggestion=_suggestion_out(proposal) if isinstance(proposal, Suggestion) else None,
        why_zh=why_zh, why_en=why_en, acl=acl_lines(facts), dynsec=dynsec_commands(facts, site),
        state=entry.state, state_zh=state_zh, state_en=state_en,
    )


def _suggestion_out(s: Suggestion) -> SuggestionOut:
    kind = kinds()[s.kind]
    return SuggestionOut(id=s.id, name=s.name, kind=s.kind, kind_zh=kind.label_zh, kind_en=kind.label_en,
                         source=s.source)
