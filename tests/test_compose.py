"""The production stack (docker-compose.yml, the Dockerfile and what they mount) checked
without Docker: that the pieces name each other consistently, that the site file loads with
the environment compose gives the gateway, and that Mosquitto accepts the broker config and
enforces its ACL."""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import typing
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import yaml
from pydantic import BaseModel

from devices import kinds
from gateway.config import ConfigError, SiteConfig, load
from tests.services import (
    HOST,
    MQTT_TIMEOUT_S,
    Mosquitto,
    broker_user,
    free_port,
    mosquitto_passwd,
    mqtt_client,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

# What an operator's .env holds: the secrets only (the rest has defaults), or everything.
# Generated, as deploy/env.example asks: the site file runs in production mode, which
# refuses placeholders such as "mqtt-password".
SECRETS = {
    "INFLUXDB_ADMIN_PASSWORD": "4c1d9e0b7a2f48e6",
    "INFLUXDB_TOKEN": "0d5b8f3e9a1c47d2b6e0f9a8c3d71e54",
    "MQTT_GATEWAY_PASSWORD": "b7e2a9c04f1d86e3",
    "GRAFANA_ADMIN_PASSWORD": "e81f0c6a3d9b2754",
}
DOTENVS = {
    "secrets-only": SECRETS,
    "everything": SECRETS
    | {"INFLUXDB_ADMIN_USER": "root", "INFLUXDB_ORG": "district-7", "INFLUXDB_BUCKET": "school-12",
       "GRAFANA_ADMIN_USER": "root"},
}
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """`${NAME}`, `${NAME:-default}` and `${NAME:?message}`, as docker compose and Grafana
    provisioning read them."""

    def value(m: re.Match[str]) -> str:
        given = variables.get(m["name"], "")
        if m["op"] == ":?" and not given:
            raise KeyError(f"{m['name']}: {m['arg']}")
        return given or (m["arg"] if m["op"] == ":-" else "")

    return _VARIABLE.sub(value, text)


def environment(service: str, dotenv: dict[str, str]) -> dict[str, str]:
    return {k: interpolate(str(v), dotenv) for k, v in SERVICES[service].get("environment", {}).items()}


def bind_mounts(service: str) -> dict[PurePosixPath, Path]:
    """Container path → host path of a service's bind mounts (short syntax)."""
    mounts = {}
    for spec in SERVICES[service].get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[PurePosixPath(target)] = ROOT / source
    return mounts


def host_path(service: str, container_path: str) -> Path:
    """Where a file that a service sees at `container_path` is in the repository."""
    path = PurePosixPath(container_path)
    for target, source in bind_mounts(service).items():
        if path == target or target in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{service} has no bind mount that holds {container_path}")


def mosquitto_options(text: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


def settings_env_names(model: type[BaseModel], prefix: str, delimiter: str) -> set[str]:
    """Every environment variable pydantic-settings reads for `model`, nested ones too."""
    names = set()
    for name, info in model.model_fields.items():
        env = f"{prefix}{name}".upper()
        names.add(env)
        for part in typing.get_args(info.annotation) or (info.annotation,):
            if isinstance(part, type) and issubclass(part, BaseModel):
                names |= settings_env_names(part, env + delimiter, delimiter)
    return names


def dockerfile_instruction(name: str) -> str:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    found = [line.split(maxsplit=1)[1] for line in lines if line.startswith(f"{name} ")]
    assert len(found) == 1, f"the Dockerfile should have one {name}, has {found}"
    return found[0]


def site_file_in_container() -> str:
    command: list[str] = json.loads(dockerfile_instruction("CMD"))
    return command[command.index("--config") + 1]


@pytest.fixture
def no_facility_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without settings of the tester's own."""
    for name in list(os.environ):
        if name.upper().startswith("FACILITY_"):
            monkeypatch.delenv(name)
    return monkeypatch


# ------------------------------------------------------------------------- the compose file


def test_the_stack_has_the_broker_the_database_grafana_and_the_gateway() -> None:
    assert set(SERVICES) == {"mosquitto", "influxdb", "grafana", "gateway"}


def test_every_host_port_is_published_once() -> None:
    host_ports = [spec.split(":")[-2] for s in SERVICES.values() for spec in s.get("ports", [])]
    assert host_ports
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_every_bind_mounted_path_is_in_the_repository() -> None:
    missing = [str(p) for s in SERVICES for p in bind_mounts(s).values() if not p.exists()]
    assert not missing


def test_every_named_volume_is_declared() -> None:
    used = {
        spec.split(":")[0]
        for s in SERVICES.values()
        for spec in s.get("volumes", [])
        if not spec.startswith((".", "/"))
    }
    assert used
    assert used == set(COMPOSE.get("volumes") or {})


def test_the_gateway_starts_after_the_broker_and_the_database() -> None:
    assert {"mosquitto", "influxdb"} <= set(SERVICES["gateway"]["depends_on"])


def test_secrets_have_no_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    secrets = [m for m in _VARIABLE.finditer(text) if re.search("PASSWORD|TOKEN|SECRET", m["name"])]
    assert {m["name"] for m in secrets} == set(SECRETS)
    assert [m[0] for m in secrets if m["op"] != ":?"] == []


def test_the_gateway_image_runs_unprivileged_with_the_mounted_site_file() -> None:
    assert dockerfile_instruction("USER") not in ("root", "0")
    assert host_path("gateway", site_file_in_container()) == ROOT / "deploy" / "site.yaml"


# ------------------------------------------------------------------ the gateway's settings


def test_the_gateway_environment_names_only_real_settings() -> None:
    config = SiteConfig.model_config
    delimiter = config.get("env_nested_delimiter")
    assert delimiter
    allowed = settings_env_names(SiteConfig, config.get("env_prefix", ""), delimiter)
    names = {name.upper() for name in SERVICES["gateway"]["environment"]}
    assert names
    assert names - allowed == set()


@pytest.mark.parametrize("dotenv", DOTENVS.values(), ids=DOTENVS.keys())
def test_the_site_file_loads_with_the_secrets_from_the_environment(
    no_facility_env: pytest.MonkeyPatch, dotenv: dict[str, str]
) -> None:
    env = environment("gateway", dotenv)
    for name, value in env.items():
        no_facility_env.setenv(name, value)

    site = load(host_path("gateway", site_file_in_container()))

    assert site.influxdb is not None
    assert site.influxdb.token.get_secret_value() == SECRETS["INFLUXDB_TOKEN"]
    assert site.mqtt.password is not None
    assert site.mqtt.password.get_secret_value() == SECRETS["MQTT_GATEWAY_PASSWORD"]
    # the file's other keys of the same sections are kept
    assert (site.mqtt.username, site.influxdb.url) == ("gateway", "http://influxdb:8086")
    influx = environment("influxdb", dotenv)
    assert (site.influxdb.org, site.influxdb.bucket) == (
        influx["DOCKER_INFLUXDB_INIT_ORG"], influx["DOCKER_INFLUXDB_INIT_BUCKET"],
    )


def test_the_site_file_itself_holds_no_secrets(no_facility_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"influxdb\.token: Field required"):
        load(ROOT / "deploy" / "site.yaml")


def test_the_site_file_runs_in_production_mode_and_refuses_placeholders(
    no_facility_env: pytest.MonkeyPatch,
) -> None:
    no_facility_env.setenv("FACILITY_INFLUXDB__TOKEN", SECRETS["INFLUXDB_TOKEN"])
    no_facility_env.setenv("FACILITY_MQTT__PASSWORD", "mqtt-password")
    with pytest.raises(ConfigError, match=r"mqtt\.password: production mode refuses this secret"):
        load(ROOT / "deploy" / "site.yaml")
    no_facility_env.setenv("FACILITY_MQTT__PASSWORD", SECRETS["MQTT_GATEWAY_PASSWORD"])
    assert load(ROOT / "deploy" / "site.yaml").mode == "production"


def test_the_site_file_points_at_the_services_of_the_stack(no_facility_env: pytest.MonkeyPatch) -> None:
    no_facility_env.setenv("FACILITY_INFLUXDB__TOKEN", SECRETS["INFLUXDB_TOKEN"])
    no_facility_env.setenv("FACILITY_MQTT__PASSWORD", SECRETS["MQTT_GATEWAY_PASSWORD"])
    site = load(ROOT / "deploy" / "site.yaml")
    assert site.influxdb is not None
    influx = urlsplit(site.influxdb.url)
    assert (site.mqtt.host, site.mqtt.port) == ("mosquitto", 1883)
    assert (influx.hostname, influx.port) == ("influxdb", 8086)
    assert f"{site.api.port}" in [spec.split(":")[-1] for spec in SERVICES["gateway"]["ports"]]
    assert site.api.host == "0.0.0.0"  # reachable through the published port
    volume_targets = [spec.split(":")[1] for spec in SERVICES["gateway"]["volumes"]]
    assert str(site.storage.data_dir) in volume_targets


# ------------------------------------------------------------------------------ Grafana


@pytest.mark.parametrize("dotenv", DOTENVS.values(), ids=DOTENVS.keys())
def test_grafana_reads_the_org_and_bucket_the_gateway_writes(dotenv: dict[str, str]) -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    text = (provisioning / "datasources" / "influxdb.yaml").read_text(encoding="utf-8")
    [source] = yaml.safe_load(interpolate(text, environment("grafana", dotenv)))["datasources"]
    influx = environment("influxdb", dotenv)
    gateway = environment("gateway", dotenv)

    assert (source["type"], source["jsonData"]["version"]) == ("influxdb", "Flux")
    assert source["jsonData"]["organization"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert source["jsonData"]["organization"] == gateway["FACILITY_INFLUXDB__ORG"]
    assert source["jsonData"]["defaultBucket"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert source["jsonData"]["defaultBucket"] == gateway["FACILITY_INFLUXDB__BUCKET"]
    assert source["secureJsonData"]["token"] == influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_the_dashboards_chart_real_metrics_from_the_provisioned_datasource() -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    datasources = yaml.safe_load((provisioning / "datasources" / "influxdb.yaml").read_text(encoding="utf-8"))
    uids = {s["uid"] for s in datasources["datasources"]}
    [provider] = yaml.safe_load((provisioning / "dashboards" / "facility.yaml").read_text(encoding="utf-8"))[
        "providers"
    ]
    dashboards = sorted(host_path("grafana", provider["options"]["path"]).glob("*.json"))
    assert dashboards
    for path in dashboards:
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
            for target in panel["targets"]:
                measurement = re.search(r'r\._measurement == "(\w+)"', target["query"])
                field = re.search(r'r\._field == "(\w+)"', target["query"])
                assert measurement, f"{path.name}: {panel['title']}"
                assert field, f"{path.name}: {panel['title']}"
                kind = kinds()[measurement[1]]
                assert kind.metric(field[1]) is not None, f"{path.name}: {panel['title']}"


# ---------------------------------------------------------------------------- Mosquitto


def test_the_broker_refuses_anonymous_clients() -> None:
    conf = host_path("mosquitto", "/mosquitto/config/mosquitto.conf")
    options = mosquitto_options(conf.read_text(encoding="utf-8"))
    assert options["allow_anonymous"] == ["false"]
    assert len(options["password_file"]) == 1
    assert host_path("mosquitto", options["acl_file"][0]).is_file()


@pytest.mark.integration
def test_mosquitto_runs_the_broker_config_and_enforces_the_acl(tmp_path: Path) -> None:
    """The production config, with only the listener and file locations changed, on a real
    broker: devices publish only under their own id, the gateway reads them all."""
    conf = host_path("mosquitto", "/mosquitto/config/mosquitto.conf")
    options = mosquitto_options(conf.read_text(encoding="utf-8"))
    password_file = tmp_path / "passwd"
    mosquitto_passwd(password_file, {"gateway": "gateway-pw", "em-main": "em-pw"})
    port = free_port()
    log_path = tmp_path / "mosquitto.log"
    changes = {
        "listener": f"{port} {HOST}",
        "password_file": str(password_file),
        "acl_file": str(host_path("mosquitto", options["acl_file"][0])),
        "persistence_location": f"{tmp_path}/",
        "log_dest": f"file {log_path}",
        "user": broker_user(),
    }
    assert set(changes) - set(options) == {"user"}, "the broker config changed shape; update this test"
    original = conf.read_text(encoding="utf-8").splitlines()
    lines = [line for line in original if line.partition(" ")[0] not in changes]
    lines += [f"{k} {v}" for k, v in changes.items()]
    test_conf = tmp_path / "mosquitto.conf"
    test_conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broker = Mosquitto(port, test_conf, log_path)
    broker.start()
    try:
        with mqtt_client(broker, "anonymous") as (_, reason):
            assert reason == "Not authorized"
        received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        with mqtt_client(broker, "facility-gateway", "gateway", "gateway-pw") as (gateway, gateway_login):
            assert not gateway_login.is_failure
            gateway.on_subscribe = lambda *_: subscribed.set()
            gateway.on_message = lambda _client, _userdata, message: received.put(message)
            gateway.subscribe("facility/demo/#", qos=1)
            assert subscribed.wait(MQTT_TIMEOUT_S)
            with mqtt_client(broker, "em-main", "em-main", "em-pw") as (device, device_login):
                assert not device_login.is_failure
                for topic in ("facility/demo/wm-main/telemetry", "facility/demo/em-main/telemetry"):
                    device.publish(topic, b"{}", qos=1).wait_for_publish(MQTT_TIMEOUT_S)
            for topic in ("facility/demo/em-main/telemetry", "facility/demo/gateway/status"):
                gateway.publish(topic, b"online", qos=1).wait_for_publish(MQTT_TIMEOUT_S)
            # In order: a device's own topic and the gateway's status pass; a device writing
            # another's topic, or the gateway writing a device's, was refused.
            topics = [received.get(timeout=MQTT_TIMEOUT_S).topic for _ in range(2)]
        assert topics == ["facility/demo/em-main/telemetry", "facility/demo/gateway/status"]
    finally:
        broker.stop()
