"""Who did something, as people read it.

The records keep an actor as an id: a login (`guard-wang`), a rule (`rule:<rule id>`), an
API key (`key:<id>`), a client address whose logins were refused (`client:<address>`) or the
gateway itself (`system`). Nobody should ever read those: wherever an actor is shown (an
acknowledgement, a work order, the ledger, the audit trail) the API gives its `Actor`, with the
person's display name (王师傅) or a sentence for a machine (系统（…规则）), from here only.

A user's display name is the one set on their account; a login that is also a person on the
duty roster (the same id) falls back to the roster's name; otherwise the login id is all there is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.auth.actor import Actor
from gateway.rules.registry import specs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.auth.store import AuthStore
    from gateway.config.duty import Person

__all__ = ["SYSTEM", "Actor", "Directory", "People"]

SYSTEM = "system"


class People:
    """Names every actor of one site; reads the accounts anew on each `directory()`, so a
    renamed user reads renamed at once, on every replica."""

    def __init__(self, auth: AuthStore, roster: Sequence[Person]) -> None:
        self._auth = auth
        self.reconfigure(roster)

    def reconfigure(self, roster: Sequence[Person]) -> None:
        self._roster = {p.id: p for p in roster}

    def directory(self) -> Directory:
        users = {u.name: u.display_name for u in self._auth.list_users() if u.display_name}
        keys = {k.id: k.name for k in self._auth.list_api_keys()}
        return Directory(users, {i: p.name for i, p in self._roster.items()}, keys)

    def name(self, actor: str) -> Actor:
        return self.directory().actor(actor)

    def roster(self) -> dict[str, Person]:
        """The duty roster's people by id (a login, where the person has an account)."""
        return dict(self._roster)


class Directory:
    """A snapshot of the names, for one answer that names many actors."""

    def __init__(self, users: dict[str, str], roster: dict[str, str], keys: dict[str, str]) -> None:
        self._users = users
        self._roster = roster
        self._keys = keys

    def display(self, login: str) -> str:
        """A person's name: their account's display name, the roster's, else the login."""
        return self._users.get(login) or self._roster.get(login) or login

    def actor(self, actor: str) -> Actor:
        kind, _, rest = actor.partition(":")
        if kind == "rule" and rest:
            spec = specs().get(rest)
            zh, en = (spec.label_zh, spec.label_en) if spec else (rest, rest)
            return Actor(id=actor, name_zh=f"系统（{zh}）", name_en=f"System ({en})", person=False)
        if kind == "key" and rest:
            name = self._keys.get(rest, rest)
            return Actor(id=actor, name_zh=f"接口密钥「{name}」", name_en=f"API key “{name}”", person=False)
        if kind == "client" and rest:
            return Actor(id=actor, name_zh=f"来自 {rest} 的登录", name_en=f"logins from {rest}", person=False)
        if actor == SYSTEM:
            return Actor(id=actor, name_zh="系统", name_en="System", person=False)
        if actor == "anonymous":
            return Actor(id=actor, name_zh="未登录的访客", name_en="a visitor who has not logged in", person=False)
        name = self.display(actor)
        return Actor(id=actor, name_zh=name, name_en=name, person=True)

    def maybe(self, actor: str | None) -> Actor | None:
        return None if actor is None else self.actor(actor)
