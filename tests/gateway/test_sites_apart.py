"""Two schools' gateways on one PostgreSQL state store: an account of one school is no one at
the other — on every route of the API, its token gets exactly what no credentials get — while
the district's account is signed in at both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.auth.audit import AuditTrail
from gateway.auth.store import AuthStore
from gateway.config.auth import AuthSettings, Role
from gateway.storage.state import StateDatabase
from tests.services import GatewayProcess, Mosquitto, free_port

pytestmark = pytest.mark.integration

PASSWORD = "a-long-enough-passphrase"


def start_school(directory: Path, site: str, mosquitto: Mosquitto, state_url: str) -> GatewayProcess:
    port = free_port()
    config: dict[str, Any] = {
        "id": site, "name": f"{site} 幼儿园",
        "buildings": [{"id": "main", "name": "教学楼", "rooms": [{"id": "kitchen", "name": "厨房", "type": "kitchen"}]}],
        "devices": [{"id": "tap", "kind": "water_meter", "room": "kitchen"}],
        "mqtt": {"url": mosquitto.url},
        "storage": {"data_dir": str(directory / f"data-{site}"), "state_url": state_url},
        "api": {"port": port},
    }
    path = directory / f"{site}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    gateway = GatewayProcess(path, port, directory / f"{site}.log")
    gateway.start()
    return gateway


def login(client: httpx.Client, name: str) -> str | None:
    answer = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    return str(answer.json()["token"]) if answer.status_code == 200 else None


def every_operation(client: httpx.Client) -> list[tuple[str, str]]:
    """(method, path) of each operation the gateway's OpenAPI document lists, path parameters
    filled with a plausible value."""
    spec = client.get("/openapi.json").json()
    return [(method.upper(), re.sub(r"\{[^}]+\}", "1", path))
            for path, item in spec["paths"].items() for method in item if method in ("get", "post", "put", "delete")]


def test_another_schools_account_is_no_one_here_on_every_route(
        tmp_path: Path, mosquitto: Mosquitto, postgres_state: str) -> None:
    db = StateDatabase(postgres_state)
    try:
        b_accounts = AuthStore(db, AuthSettings(), AuditTrail(db, "school-b"))
        b_accounts.add_user("li-b", Role.ADMIN, PASSWORD, "setup", 0)
        b_accounts.add_user("zhou-district", Role.ADMIN, PASSWORD, "setup", 0, district=True)
    finally:
        db.close()
    a, b = (start_school(tmp_path, site, mosquitto, postgres_state) for site in ("school-a", "school-b"))
    try:
        assert login(a.client, "li-b") is None  # refused as an unknown name
        foreign = login(b.client, "li-b")
        district = login(a.client, "zhou-district")
        assert foreign is not None
        assert district is not None
        operations = every_operation(a.client)
        assert len(operations) > 50
        protected = 0
        for method, path in operations:
            if path in ("/api/v1/auth/logout",):
                continue  # ending a session that is not one is no error, whoever asks
            nobody = a.client.request(method, path, json={})
            stranger = a.client.request(method, path, json={}, headers={"Authorization": f"Bearer {foreign}"})
            assert stranger.status_code == nobody.status_code, (method, path, stranger.status_code, stranger.text)
            if nobody.status_code == 401:
                protected += 1
                # a stream (/api/v1/live) never ends: the status line is enough
                with a.client.stream(method, path, json={}, headers={"Authorization": f"Bearer {district}"}) as chief:
                    assert chief.status_code != 401, (method, path)
        assert protected > 50
    finally:
        for gateway in (a, b):
            gateway.stop()
            gateway.client.close()
