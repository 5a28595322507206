"""The school's settings as people change them in the dashboard, kept in the state database.

A site file has two parts. The **school** (`SCHOOL_KEYS`: buildings, rooms, devices, hours,
calendar, roster, channels, tariffs, rule parameters …) is what the head of logistics sets up;
the **deployment** (MQTT, InfluxDB, storage, API, spool, auth, mode) is the IT side's and
always comes from the file and the environment. The school part is stored here, one version
per change, with who made it and when, and the running gateway is reconfigured from it
(gateway/runtime.py `Gateway.reconfigure`).

Where the file and the store meet (at start, `ConfigStore.startup`), docs/admin.md:
- `managed_from: file`: the file is the truth; the store only keeps its versions (for the
  history and the export) and the dashboard shows the settings read-only;
- `managed_from: dashboard` (default): the file seeds the store once; later the store wins. A
  file edited since it last seeded is taken too, unless someone changed the settings in the
  dashboard meanwhile: then the stored settings stay and the admin area says so (import the
  file there to see and apply its differences). Nobody's work is overwritten silently.

The stored document is the school part in JSON without default values (`school_of`), secrets
included: it is what `export` writes as a site file, and importing that file gives it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import SecretStr
from pydantic_core import to_jsonable_python
from sqlalchemy import BigInteger, Column, Integer, PrimaryKeyConstraint, Table, Text, func, select

from gateway.config import SiteConfig
from gateway.storage.state import METADATA, StateDatabase

# The sections of the site file that describe the school, in the file's order.
SCHOOL_KEYS: Final = (
    "id", "name", "kind", "timezone", "headcount", "opening_hours", "buildings", "devices", "retired",
    "calendar", "duty", "notifications", "tariffs", "reports", "rules", "work_orders", "samples",
    "fire_patrol", "sweep",
)
# What a secret reads as outside the store: the API's answers and the audit trail.
MASK: Final = "**********"
# The only part of the school with secrets: its channels' passwords and signing secrets
# (tests/gateway/test_settings_store.py checks that no other part has one).
WITH_SECRETS: Final = "notifications"

Origin = Literal["file", "dashboard", "import"]

SITE_CONFIG = Table(
    "site_config", METADATA,
    Column("site", Text, nullable=False, server_default=""),
    Column("version", Integer, nullable=False),    # 1, 2, … a site
    Column("school", Text, nullable=False),        # the school part, JSON (school_of)
    Column("origin", Text, nullable=False),        # file | dashboard | import
    Column("actor", Text, nullable=False),         # the login, or "file"
    Column("at_ms", BigInteger, nullable=False),   # wall clock
    Column("file_text", Text),                     # origin file: the school part as the file had it (its fingerprint)
    # A state.db from before sites keeps its key, the version alone: it holds one site.
    PrimaryKeyConstraint("site", "version"),
)


def reveal(value: Any) -> Any:
    """A dumped model with its secrets as their text."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


def school_of(site: SiteConfig, *, defaults: bool = False) -> dict[str, Any]:
    """The school part of a site as plain JSON data, secrets readable; defaults left out
    unless `defaults` (a form shows every value). All but the part with secrets is dumped as
    JSON by pydantic at once: walking a site of 10,000 devices in Python for its secrets took
    0.1-0.2 s of every start and every change in the dashboard."""
    data = site.model_dump(mode="json", include=set(SCHOOL_KEYS) - {WITH_SECRETS}, exclude_defaults=not defaults)
    data |= to_jsonable_python(reveal(_with_secrets(site, defaults)))
    return {k: data[k] for k in SCHOOL_KEYS if k in data}


def _with_secrets(site: SiteConfig, defaults: bool) -> dict[str, Any]:
    """The school's part that holds secrets, dumped with them as `SecretStr`."""
    data = site.model_dump(include={WITH_SECRETS}, exclude_defaults=not defaults)
    # A channel's `type` picks its model (and is its default): without it the settings no longer load.
    dumped_channels = data.get(WITH_SECRETS, {}).get("channels", [])
    for channel, dumped in zip(site.notifications.channels, dumped_channels, strict=True):
        dumped["type"] = channel.type
    return data


def _masked(value: Any, secrets: Any) -> Any:
    """`value` with every secret that `secrets` (the same shape, from `school_of`'s model) holds
    replaced by `MASK`: `value` and `secrets` come from one model, walked together."""
    if isinstance(secrets, SecretStr):
        return MASK if value else value
    if isinstance(value, dict) and isinstance(secrets, dict):
        return {k: _masked(v, secrets.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(secrets, list):
        return [_masked(v, s) for v, s in zip(value, secrets, strict=False)]
    return value


def masked_school(site: SiteConfig, *, defaults: bool = True) -> dict[str, Any]:
    """`school_of` with the secrets (a channel's password, a DingTalk signing secret) masked:
    with every value for the dashboard's forms, without defaults for the audit trail."""
    return dict(_masked(school_of(site, defaults=defaults), _with_secrets(site, defaults)))


def unmasked(new: Any, old: Any) -> Any:
    """A section sent back by the dashboard with `MASK` where a secret was: the stored secret
    there again (a secret is written, never read back)."""
    if new == MASK and isinstance(old, str):
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: unmasked(v, old.get(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        by_id = {o.get("id"): o for o in old if isinstance(o, dict) and "id" in o}
        return [unmasked(v, by_id.get(v.get("id")) if isinstance(v, dict) and "id" in v else None)
                for v in new]
    return new


def deployment_of(site: SiteConfig) -> dict[str, Any]:
    """The deployment part of a site (connections, storage, mode), as python values."""
    return site.model_dump(exclude=set(SCHOOL_KEYS), exclude_defaults=True)


def with_school(site: SiteConfig, school: Mapping[str, Any]) -> SiteConfig:
    """The site with another school part: validated by the site file's own model, so every
    check of a site file applies (raises pydantic's ValidationError)."""
    return SiteConfig(**{**deployment_of(site), **school})


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    school: dict[str, Any]
    origin: Origin
    actor: str
    at_ms: int


class ConfigStore:
    """The versions of one site's school part, newest last."""

    def __init__(self, db: StateDatabase, site_id: str) -> None:
        self._db = db
        self._site = site_id
        db.create(SITE_CONFIG, site=site_id)

    def current(self) -> Version | None:
        c = SITE_CONFIG.c
        with self._db.read() as conn:
            row = conn.execute(select(c.version, c.school, c.origin, c.actor, c.at_ms)
                               .where(c.site == self._site).order_by(c.version.desc()).limit(1)).first()
        return None if row is None else Version(row.version, json.loads(row.school), row.origin, row.actor,
                                                row.at_ms)

    def save(self, school: Mapping[str, Any], origin: Origin, actor: str, at_ms: int,
             file_text: str | None = None) -> int:
        """Stores a new version; returns its number. `file_text`: the school as the site file
        had it, as JSON (keys sorted), when the version comes from the file — the same JSON, so
        it is stored as the school too (a school of 10,000 devices is megabytes to write out)."""
        c = SITE_CONFIG.c
        text = file_text if file_text is not None else json.dumps(school, ensure_ascii=False)
        with self._db.write(durable=True) as conn:
            self._db.lock(conn, SITE_CONFIG)  # two saves at once get two numbers
            version: int = conn.execute(select(func.coalesce(func.max(c.version), 0) + 1)
                                        .where(c.site == self._site)).scalar_one()
            # The values as parameters, not in the statement: SQLAlchemy's cache of compiled
            # statements keeps the first statement of each form, with any values in it (a large
            # school's settings twice over, megabytes, for as long as the process runs).
            conn.execute(SITE_CONFIG.insert(), {
                "site": self._site, "version": version, "school": text, "origin": origin, "actor": actor,
                "at_ms": at_ms, "file_text": file_text})
        return version

    def last_from_file(self) -> tuple[int, str] | None:
        """The version last taken from the site file and the file's school part then."""
        c = SITE_CONFIG.c
        with self._db.read() as conn:
            row = conn.execute(select(c.version, c.file_text).where(c.site == self._site, c.origin == "file")
                               .order_by(c.version.desc()).limit(1)).first()
        return None if row is None else (row.version, row.file_text)

    def startup(self, file_site: SiteConfig, at_ms: int) -> Startup:
        """The site the gateway starts with, from the site file and what is stored (the module's
        docstring says which wins)."""
        school = school_of(file_site)
        text = json.dumps(school, ensure_ascii=False, sort_keys=True)
        current = self.current()
        seeded = self.last_from_file()
        if current is not None and current.school == school:
            return Startup(file_site, current.version, file_pending=False)
        if file_site.managed_from == "file" or current is None or (
            seeded is not None and seeded[0] == current.version and seeded[1] != text
        ):
            return Startup(file_site, self.save(school, "file", "file", at_ms, text), file_pending=False)
        # Changed in the dashboard since the file last seeded the store: the store wins.
        stored = with_school(file_site, current.school)
        return Startup(stored, current.version, file_pending=seeded is None or seeded[1] != text)


@dataclass(frozen=True, slots=True)
class Startup:
    site: SiteConfig
    version: int
    file_pending: bool  # the site file differs from the settings in use and was not taken
