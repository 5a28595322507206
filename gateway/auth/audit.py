"""The audit trail: who changed what and when (users, API keys, login lockouts, settings,
alerts, work orders, ledgers), newest first. It lives in the state store, one trail a site;
the time of each entry is passed in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import BigInteger, Column, Index, Table, Text, select

from gateway.storage.state import ID, METADATA, StateDatabase

AUDIT = Table(
    "audit", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),      # Unix milliseconds
    Column("actor", Text, nullable=False),         # a user name, "key:<id>" or "client:<address>"
    Column("action", Text, nullable=False),        # e.g. "user.add", "api_key.revoke", "login.locked"
    Column("target", Text, nullable=False),        # the user name or API key id acted on
    Column("detail", Text, nullable=False),        # a JSON object
    Column("site", Text, nullable=False, server_default=""),
    Index("audit_action", "action", "id"),
    Index("audit_target", "target", "id"),
)


# The trail of the district's own actions (its accounts' logins and changes): never a site's id,
# which begins with a letter or digit.
DISTRICT: Final = "@district"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_ms: int
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]


class AuditTrail:
    """The trail of one site, or with `DISTRICT` the district's."""

    def __init__(self, db: StateDatabase, site: str) -> None:
        self._db = db
        self.site = site
        # Entries from before sites were recorded are a school's: the district never claims them.
        db.create(AUDIT, site=None if site == DISTRICT else site)

    def record(self, at_ms: int, actor: str, action: str, target: str, detail: Mapping[str, object]) -> None:
        """Appends one entry. `detail` must be JSON-serialisable and never hold a secret."""
        text = json.dumps(dict(detail), ensure_ascii=False, sort_keys=True)
        with self._db.write() as conn:
            conn.execute(AUDIT.insert().values(at=at_ms, actor=actor, action=action, target=target, detail=text,
                                               site=self.site))

    def about(self, target: str, limit: int = 1000) -> list[AuditEntry]:
        """The newest entries about one target, e.g. "alert:17"."""
        return self._select(AUDIT.c.target == target, limit)

    def newest(self, limit: int, action: str | None = None) -> list[AuditEntry]:
        return self._select(AUDIT.c.action == action if action is not None else None, limit)

    def _select(self, condition: Any, limit: int) -> list[AuditEntry]:
        query = select(AUDIT.c.id, AUDIT.c.at, AUDIT.c.actor, AUDIT.c.action, AUDIT.c.target, AUDIT.c.detail) \
            .where(AUDIT.c.site == self.site)
        if condition is not None:
            query = query.where(condition)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(AUDIT.c.id.desc()).limit(limit)).all()
        return [_entry(row) for row in rows]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(row.id, row.at, row.actor, row.action, row.target, json.loads(row.detail))
