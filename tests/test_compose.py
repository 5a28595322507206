"""The production stack (docker-compose.yml, the Dockerfile and what they mount) checked
without Docker: that each profile (one school's gateway, or a district's replicas running a
folder of school files on a shared PostgreSQL) starts what it should, that the pieces name each
other consistently, that every site file loads as its gateway's command loads it, with the
environment compose gives it, and that Mosquitto accepts the broker config and enforces its ACL,
each school of the district on a login of its own."""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import threading
import typing
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from devices import kinds
from devices.base import Event, EventPayload, MetricType, Sample
from gateway.cli import _parser as cli_parser
from gateway.config import ConfigError, SiteConfig, load, load_district
from gateway.ingest.mqtt import session_client_id
from gateway.sinks.influx import LineProtocol
from tests.services import (
    MQTT_TIMEOUT_S,
    mqtt_client,
    start_shipped_mosquitto,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# The services that run the gateway: built from the Dockerfile.
GATEWAYS = [name for name, service in SERVICES.items() if "build" in service]
SHARED = {"mosquitto", "influxdb", "grafana"}

# What an operator's .env holds: the secrets only (the rest has defaults), or everything.
# Generated, as deploy/env.example asks: the site file runs in production mode, which
# refuses placeholders such as "mqtt-password".
SECRETS = {
    "INFLUXDB_ADMIN_PASSWORD": "4c1d9e0b7a2f48e6",
    "INFLUXDB_TOKEN": "0d5b8f3e9a1c47d2b6e0f9a8c3d71e54",
    "MQTT_GATEWAY_PASSWORD": "b7e2a9c04f1d86e3",
    "GRAFANA_ADMIN_PASSWORD": "e81f0c6a3d9b2754",
    "POSTGRES_PASSWORD": "9a0e3c7f51d2b846",
}
DOTENVS = {
    "secrets-only": SECRETS,
    "everything": SECRETS
    | {"INFLUXDB_ADMIN_USER": "root", "INFLUXDB_ORG": "district-7", "INFLUXDB_BUCKET": "school-12",
       "GRAFANA_ADMIN_USER": "root", "POSTGRES_USER": "gateways", "POSTGRES_DB": "district-7"},
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


def profiles() -> set[str]:
    return {p for service in SERVICES.values() for p in service.get("profiles", [])}


def started(*active: str) -> set[str]:
    """The services that `docker compose up` starts with these profiles active: those of no
    profile, and those of an active one."""
    return {name for name, s in SERVICES.items() if not s.get("profiles") or set(active) & set(s["profiles"])}


def dotenv_example() -> dict[str, str]:
    lines = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8").splitlines()
    return dict(line.partition("=")[::2] for line in lines if line.strip() and not line.startswith("#"))


def command(service: str, dotenv: dict[str, str]) -> argparse.Namespace:
    """What a gateway service runs, as the gateway's command line reads it: the service's own
    command, or the image's."""
    argv = SERVICES[service].get("command") or json.loads(dockerfile_instruction("CMD"))
    assert argv[0] == "facility-gateway", argv
    return cli_parser().parse_args([interpolate(str(arg), dotenv) for arg in argv[1:]])


def sites_of(service: str, dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, SiteConfig]:
    """The sites a gateway service runs, loaded as its command loads them, with the environment
    compose gives it: `run`'s one site file, or every school file of `district`'s folder."""
    for name, value in environment(service, dotenv).items():
        monkeypatch.setenv(name, value)
    args = command(service, dotenv)
    if args.command == "run":
        site = load(host_path(service, str(args.config)))
        return {site.id: site}
    assert args.command == "district", args.command
    return load_district(host_path(service, str(args.sites)), args.state_url, args.data_dir)


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


def site_files(service: str) -> list[Path]:
    """The site files a gateway service reads: `run`'s one, or every one of `district`'s folder."""
    args = command(service, SECRETS)
    if args.command == "run":
        return [host_path(service, str(args.config))]
    folder = host_path(service, str(args.sites))
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


SITE_FILES = sorted({path for gateway in GATEWAYS for path in site_files(gateway)})


@pytest.fixture
def no_facility_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without settings of the tester's own."""
    for name in list(os.environ):
        if name.upper().startswith("FACILITY_"):
            monkeypatch.delenv(name)
    return monkeypatch


# ------------------------------------------------------------------------- the compose file


def test_one_school_or_a_district_each_starts_its_gateways_beside_the_shared_services() -> None:
    assert profiles() == {"school", "district"}
    assert started("school") == SHARED | {"gateway"}
    assert started("district") == SHARED | {"postgres", "replica-a", "replica-b"}


def test_without_a_profile_compose_stops_rather_than_start_no_gateway() -> None:
    assert not started() & set(GATEWAYS)
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    with pytest.raises(KeyError, match="COMPOSE_PROFILES"):
        interpolate(text, SECRETS)
    for profile in profiles():
        interpolate(text, SECRETS | {"COMPOSE_PROFILES": profile})


def test_the_example_env_starts_one_school_and_names_every_variable() -> None:
    example = dotenv_example()
    assert started(*example["COMPOSE_PROFILES"].split(",")) == SHARED | {"gateway"}
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert {m["name"] for m in _VARIABLE.finditer(text)} <= set(example)
    # each installation generates its own
    assert {name: example[name] for name in SECRETS} == dict.fromkeys(SECRETS, "")


@pytest.mark.parametrize("profile", sorted(profiles()))
def test_every_host_port_is_published_once_per_profile(profile: str) -> None:
    host_ports = [spec.split(":")[-2] for s in started(profile) for spec in SERVICES[s].get("ports", [])]
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


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_the_gateway_starts_after_the_broker_and_the_database(gateway: str) -> None:
    assert {"mosquitto", "influxdb"} <= set(SERVICES[gateway]["depends_on"])


def test_secrets_have_no_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    secrets = [m for m in _VARIABLE.finditer(text) if re.search("PASSWORD|TOKEN|SECRET", m["name"])]
    assert {m["name"] for m in secrets} == set(SECRETS)
    assert [m[0] for m in secrets if m["op"] != ":?"] == []


def test_the_gateway_image_runs_unprivileged() -> None:
    assert dockerfile_instruction("USER") not in ("root", "0")


def test_the_school_gateway_runs_the_mounted_site_file() -> None:
    [gateway] = started("school") & set(GATEWAYS)
    args = command(gateway, SECRETS)
    assert args.command == "run"
    assert host_path(gateway, str(args.config)) == ROOT / "deploy" / "site.yaml"


# ------------------------------------------------------------------ the gateway's settings


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_the_gateway_environment_names_only_real_settings(gateway: str) -> None:
    config = SiteConfig.model_config
    delimiter = config.get("env_nested_delimiter")
    assert delimiter
    allowed = settings_env_names(SiteConfig, config.get("env_prefix", ""), delimiter)
    names = {name.upper() for name in SERVICES[gateway]["environment"]}
    assert names
    assert names - allowed == set()


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize("dotenv", DOTENVS.values(), ids=DOTENVS.keys())
def test_every_site_file_loads_with_the_secrets_from_the_environment(
    no_facility_env: pytest.MonkeyPatch, dotenv: dict[str, str], gateway: str
) -> None:
    sites = sites_of(gateway, dotenv, no_facility_env)
    assert sites
    for site in sites.values():
        assert site.influxdb is not None
        assert site.influxdb.token.get_secret_value() == SECRETS["INFLUXDB_TOKEN"]
        assert site.mqtt.password is not None
        assert site.mqtt.password.get_secret_value() == SECRETS["MQTT_GATEWAY_PASSWORD"]
        # the file's other keys of the same sections are kept
        assert site.file is not None
        written = yaml.safe_load(site.file.read_text(encoding="utf-8"))
        assert (site.mqtt.username, site.influxdb.url) == (written["mqtt"]["username"], written["influxdb"]["url"])
        influx = environment("influxdb", dotenv)
        assert (site.influxdb.org, site.influxdb.bucket) == (
            influx["DOCKER_INFLUXDB_INIT_ORG"], influx["DOCKER_INFLUXDB_INIT_BUCKET"],
        )


@pytest.mark.parametrize("site_file", SITE_FILES, ids=lambda path: path.name)
def test_the_site_file_itself_holds_no_secrets(no_facility_env: pytest.MonkeyPatch, site_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"influxdb\.token: 缺少必填的键 `token`"):
        load(site_file)


@pytest.mark.parametrize("site_file", SITE_FILES, ids=lambda path: path.name)
def test_the_site_file_runs_in_production_mode_and_refuses_placeholders(
    no_facility_env: pytest.MonkeyPatch, site_file: Path
) -> None:
    no_facility_env.setenv("FACILITY_INFLUXDB__TOKEN", SECRETS["INFLUXDB_TOKEN"])
    no_facility_env.setenv("FACILITY_MQTT__PASSWORD", "mqtt-password")
    with pytest.raises(ConfigError, match=r"mqtt\.password: .*production mode refuses this secret"):
        load(site_file)
    no_facility_env.setenv("FACILITY_MQTT__PASSWORD", SECRETS["MQTT_GATEWAY_PASSWORD"])
    site = load(site_file)
    assert site.mode == "production"
    assert site.storage.state_url is None  # the district's comes from its command line, never a file


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_every_site_file_points_at_the_services_of_the_stack(
    no_facility_env: pytest.MonkeyPatch, gateway: str
) -> None:
    args = command(gateway, SECRETS)
    volume_targets = [PurePosixPath(spec.split(":")[1]) for spec in SERVICES[gateway]["volumes"]]
    published = [spec.split(":")[-1] for spec in SERVICES[gateway]["ports"]]
    for site in sites_of(gateway, SECRETS, no_facility_env).values():
        assert site.influxdb is not None
        influx = urlsplit(site.influxdb.url)
        assert (site.mqtt.host, site.mqtt.port) == ("mosquitto", 1883), site.id
        assert (influx.hostname, influx.port) == ("influxdb", 8086), site.id
        # the school's own server, or the district's, which serves every school it runs
        host, port = (args.host, args.port) if args.command == "district" else (site.api.host, site.api.port)
        assert f"{port}" in published, site.id
        assert host == "0.0.0.0", site.id  # reachable through the published port
        data_dir = PurePosixPath(site.storage.data_dir)
        assert any(data_dir == target or target in data_dir.parents for target in volume_targets), site.id


def test_the_school_gateway_keeps_its_state_in_its_data_volume(no_facility_env: pytest.MonkeyPatch) -> None:
    [gateway] = started("school") & set(GATEWAYS)
    [site] = sites_of(gateway, SECRETS, no_facility_env).values()
    assert site.storage.state_url is None


# ----------------------------------------------------------------------------- the district


def district_replicas() -> list[str]:
    return sorted(started("district") & set(GATEWAYS))


def test_the_replicas_run_the_same_district_from_the_sites_folder_mounted_read_only() -> None:
    replicas = district_replicas()
    assert len(replicas) >= 2
    runs = {replica: command(replica, SECRETS) for replica in replicas}
    for replica, args in runs.items():
        assert args.command == "district", replica
        assert host_path(replica, str(args.sites)) == ROOT / "deploy" / "sites", replica
        [mount] = [spec for spec in SERVICES[replica]["volumes"] if spec.split(":")[1] == str(args.sites)]
        assert mount.split(":")[2:] == ["ro"], replica
    # the same schools, state store, folders and port: only the replica's id differs
    shared = [{k: v for k, v in vars(args).items() if k != "replica_id"} for args in runs.values()]
    assert all(each == shared[0] for each in shared), shared


def test_every_file_of_the_sites_folder_is_a_school_of_its_own(no_facility_env: pytest.MonkeyPatch) -> None:
    [replica, *_] = district_replicas()
    sites = sites_of(replica, SECRETS, no_facility_env)
    files = [path for path in SITE_FILES if path.parent == ROOT / "deploy" / "sites"]
    assert len(files) >= 2
    # one school a file: no two files share a site id (load_district refuses that too)
    assert sorted(site.file for site in sites.values() if site.file) == [path.resolve() for path in files]
    assert len(sites) == len(files)


def test_each_school_of_the_district_has_a_broker_login_and_device_logins_of_its_own(
    no_facility_env: pytest.MonkeyPatch,
) -> None:
    """With the shipped broker a login is one session and one connection (use_username_as_clientid),
    and devices log in with their ids: two schools on one login would close each other's
    connection, two devices with one id each other's."""
    [replica, *_] = district_replicas()
    sites = sites_of(replica, SECRETS, no_facility_env).values()
    logins = [site.mqtt.username for site in sites]
    devices = [device.id for site in sites for device in site.devices]
    assert None not in logins
    assert len(set(logins)) == len(logins)
    assert len(set(devices)) == len(devices)
    assert not set(logins) & {*devices, "gateway", "alerts", "zigbee2mqtt"}


@pytest.mark.parametrize("dotenv", DOTENVS.values(), ids=DOTENVS.keys())
def test_the_replicas_share_the_postgres_service_as_their_state_store(
    no_facility_env: pytest.MonkeyPatch, dotenv: dict[str, str]
) -> None:
    postgres = environment("postgres", dotenv)
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert "PGPORT" not in postgres  # so the official image listens on PostgreSQL's port, 5432
    for replica in district_replicas():
        for site in sites_of(replica, dotenv, no_facility_env).values():
            url = make_url(site.storage.state_database_url)
            assert url.drivername == "postgresql+psycopg", replica
            assert (url.host, url.port) == ("postgres", 5432), replica
            assert (url.username, url.password, url.database) == (
                postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"],
            ), replica


def test_the_replicas_start_once_postgres_accepts_connections() -> None:
    assert SERVICES["postgres"]["healthcheck"]["test"][1].startswith("pg_isready ")
    for replica in district_replicas():
        assert SERVICES[replica]["depends_on"]["postgres"] == {"condition": "service_healthy"}, replica


def test_each_replica_has_its_own_id_and_data_volume(no_facility_env: pytest.MonkeyPatch) -> None:
    ids, data_volumes = set(), set()
    for replica in district_replicas():
        args = command(replica, SECRETS)
        assert args.replica_id, f"{replica}: no replica id, so one from the container's host name"
        ids.add(args.replica_id)
        [volume] = [spec.split(":")[0] for spec in SERVICES[replica]["volumes"]
                    if spec.split(":")[1] == str(args.data_dir)]
        assert volume in (COMPOSE.get("volumes") or {}), replica
        data_volumes.add(volume)
        # each school's spool and photos in a folder of its own in the replica's volume
        for site in sites_of(replica, SECRETS, no_facility_env).values():
            assert site.storage.data_dir == args.data_dir / site.id, replica
    assert len(ids) == len(data_volumes) == len(district_replicas())


# ------------------------------------------------------------------------------ Grafana


@pytest.mark.parametrize("dotenv", DOTENVS.values(), ids=DOTENVS.keys())
def test_grafana_reads_the_org_and_bucket_the_gateway_writes(dotenv: dict[str, str]) -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    text = (provisioning / "datasources" / "influxdb.yaml").read_text(encoding="utf-8")
    [source] = yaml.safe_load(interpolate(text, environment("grafana", dotenv)))["datasources"]
    influx = environment("influxdb", dotenv)

    assert (source["type"], source["jsonData"]["version"]) == ("influxdb", "Flux")
    assert source["jsonData"]["organization"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert source["jsonData"]["defaultBucket"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    for gateway in GATEWAYS:
        assert source["jsonData"]["organization"] == environment(gateway, dotenv)["FACILITY_INFLUXDB__ORG"]
        assert source["jsonData"]["defaultBucket"] == environment(gateway, dotenv)["FACILITY_INFLUXDB__BUCKET"]
    assert source["secureJsonData"]["token"] == influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


# Each subject of the dashboards and the kind of device it is about.
SUBJECTS = {"energy": "electricity_meter", "water": "water_meter", "temperatures": "sample_fridge", "doors": "door"}
_MEASUREMENT = re.compile(r'r\._measurement == "(\w+)"')
_FIELD = re.compile(r'r\._field == "(\w+)"')
_TAG_VALUES = re.compile(r'schema\.tagValues\(.*\btag: "(\w+)"', re.DOTALL)
_TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LOCATION = re.compile(r'timezone\.location\(name: "([^"]*)"\)')


def datasource_uids() -> set[str]:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    datasources = yaml.safe_load((provisioning / "datasources" / "influxdb.yaml").read_text(encoding="utf-8"))
    return {s["uid"] for s in datasources["datasources"]}


def provisioned_dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard, of the folder Grafana's dashboard provider reads."""
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    [provider] = yaml.safe_load((provisioning / "dashboards" / "facility.yaml").read_text(encoding="utf-8"))[
        "providers"
    ]
    paths = sorted(host_path("grafana", provider["options"]["path"]).glob("*.json"))
    assert paths
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in paths}


def panels(dashboard: dict[str, Any], *, rows: bool = False) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, those inside (collapsed) rows too; the rows only if asked."""

    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            if panel.get("type") == "row":
                if rows:
                    yield panel
                yield from walk(panel.get("panels", []))
            else:
                yield panel

    return walk(dashboard.get("panels", []))


def variable_query(variable: dict[str, Any]) -> str:
    """A template variable's query: a string, or (Grafana 10+) an object holding it."""
    query = variable.get("query", "")
    return str(query["query"] if isinstance(query, dict) else query)


def written_schema() -> tuple[set[str], dict[str, set[str]]]:
    """The tag keys, and the field keys per measurement, that the InfluxDB sink writes: its own
    line protocol for a device of every kind, with every metric of the kind and every field of
    the kind's event models (an event's data is its model without `ts` and `type`), and an
    event without data."""
    site = SiteConfig.model_validate({
        "id": "site", "name": "site",
        "buildings": [{"id": "building", "name": "building", "rooms": [{"id": "room", "name": "room"}]}],
        "devices": [{"id": name, "kind": name, "room": "room"} for name in kinds()],
    })
    protocol = LineProtocol(site)
    lines = []
    for name, kind in kinds().items():
        lines.append(protocol.sample(Sample(name, 0, {m.key: 1.0 for m in kind.metrics})))
        for model in kind.events:
            data = {f: "x" for f in model.model_fields if f not in EventPayload.model_fields}
            lines.append(protocol.event(Event(name, 0, model.model_fields["type"].default, data)))
        if kind.events:
            lines.append(protocol.event(Event(name, 0, "empty", {})))
    tags: set[str] = set()
    fields: dict[str, set[str]] = {}
    for line in lines:
        head, values, _ = line.split(" ")
        measurement, *tag_pairs = head.split(",")
        tags |= {pair.partition("=")[0] for pair in tag_pairs}
        fields.setdefault(measurement, set()).update(pair.partition("=")[0] for pair in values.split(","))
    return tags, fields


def check_flux(query: str, fields: dict[str, set[str]], where: str) -> list[str]:
    """Asserts that a Flux query filters on measurements and fields the gateway writes;
    returns the measurements."""
    measurements = _MEASUREMENT.findall(query)
    named = _FIELD.findall(query)
    assert measurements, f'{where}: no r._measurement == "…" filter'
    assert len(re.findall(r'r\._measurement\b|r\["_measurement"\]', query)) == len(measurements), (
        f"{where}: a measurement filter other than r._measurement == \"…\", which this test cannot check"
    )
    assert named, f'{where}: no r._field == "…" filter'
    assert len(re.findall(r'r\._field\b|r\["_field"\]', query)) == len(named), (
        f"{where}: a field filter other than r._field == \"…\", which this test cannot check"
    )
    for measurement in measurements:
        assert measurement in fields, f"{where}: the gateway writes no measurement {measurement!r}"
    for field in named:
        assert any(field in fields[m] for m in measurements), f"{where}: {measurements} have no field {field!r}"
    return measurements


def test_the_sink_writes_what_the_dashboards_are_checked_against(no_facility_env: pytest.MonkeyPatch) -> None:
    tags, fields = written_schema()
    assert tags == {"site", "building", "room", "device", "type"}
    for name, kind in kinds().items():
        assert fields[name] == {m.key for m in kind.metrics}
        # events only of kinds that have some; an event without data is counted
        assert ("count" in fields[f"{name}_event"]) if kind.events else f"{name}_event" not in fields


def test_every_dashboard_has_its_own_uid_and_panel_ids() -> None:
    dashboards = provisioned_dashboards()
    uids = [dashboard.get("uid") for dashboard in dashboards.values()]
    assert all(uids), uids
    assert len(uids) == len(set(uids)), uids
    for name, dashboard in dashboards.items():
        ids = [panel.get("id") for panel in panels(dashboard, rows=True)]
        assert all(ids), name
        assert len(ids) == len(set(ids)), f"{name}: {ids}"


def test_the_dashboards_chart_real_metrics_from_the_provisioned_datasource(
    no_facility_env: pytest.MonkeyPatch,
) -> None:
    uids = datasource_uids()
    _, fields = written_schema()
    for name, dashboard in provisioned_dashboards().items():
        charted = list(panels(dashboard))
        assert charted, f"{name} has no panels"
        for panel in charted:
            where = f"{name}: {panel.get('title')}"
            assert panel["datasource"]["uid"] in uids, where
            assert panel.get("targets"), f"{where} has no queries"
            for target in panel["targets"]:
                assert target.get("datasource", panel["datasource"])["uid"] in uids, where
                query = target["query"]
                for measurement in check_flux(query, fields, where):
                    kind = kinds().get(measurement)
                    for field in _FIELD.findall(query):
                        metric = kind.metric(field) if kind else None
                        if metric is not None and metric.type is MetricType.COUNTER:
                            assert re.search(r"\b(difference|increase)\(", query), (
                                f"{where}: {field} is a cumulative counter: chart its increase"
                            )
                        if metric is not None and metric.type is MetricType.STATE:
                            assert not re.search(r"fn: (mean|max|min|sum|median)\b", query) or re.search(
                                r"\bto(Int|Float)\(\)", query
                            ), f"{where}: {field} is a boolean: convert it before aggregating"


def test_the_queries_read_the_datasource_bucket_in_the_dashboard_time_range() -> None:
    # one Grafana for every site of the stack: one time zone
    [site_zone] = {yaml.safe_load(path.read_text(encoding="utf-8"))["timezone"] for path in SITE_FILES}
    for name, dashboard in provisioned_dashboards().items():
        defined: list[str] = []
        for variable in dashboard.get("templating", {}).get("list", []):
            used = {a or b for a, b in _TEMPLATE_VARIABLE.findall(variable_query(variable))}
            assert used <= set(defined), f"{name}: ${variable['name']} uses variables defined after it"
            defined.append(variable["name"])
        for panel in panels(dashboard):
            where = f"{name}: {panel.get('title')}"
            for target in panel.get("targets", []):
                query = target["query"]
                assert "from(bucket: v.defaultBucket)" in query, where
                assert "range(start: v.timeRangeStart, stop: v.timeRangeStop)" in query, where
                used = {a or b for a, b in _TEMPLATE_VARIABLE.findall(query)}
                assert used <= set(defined), f"{where}: undefined variables {used - set(defined)}"
                # days and nights in the site's time zone, as the gateway's rules count them
                assert set(_LOCATION.findall(query)) <= {site_zone}, where


def test_template_variables_list_tags_the_sink_writes(no_facility_env: pytest.MonkeyPatch) -> None:
    uids = datasource_uids()
    tags, fields = written_schema()
    for name, dashboard in provisioned_dashboards().items():
        variables = dashboard.get("templating", {}).get("list", [])
        assert "building" in {v["name"] for v in variables if v["type"] == "query"}, name
        for variable in variables:
            if variable["type"] != "query":
                continue
            where = f"{name}: ${variable['name']}"
            assert variable["datasource"]["uid"] in uids, where
            query = variable_query(variable)
            assert "bucket: v.defaultBucket" in query, where
            tag = _TAG_VALUES.search(query)
            assert tag, f"{where}: not a schema.tagValues(…, tag: \"…\") query"
            assert tag[1] in tags, f"{where}: the gateway writes no tag {tag[1]!r}"
            for measurement in _MEASUREMENT.findall(query):
                assert measurement in fields, f"{where}: the gateway writes no measurement {measurement!r}"


def test_the_dashboards_cover_energy_water_temperatures_and_doors() -> None:
    """Each subject has a dashboard of its own: one that charts its kind (measurements or
    events) and no other subject's."""
    charted: dict[str, set[str]] = {}
    for name, dashboard in provisioned_dashboards().items():
        queries = [t["query"] for p in panels(dashboard) for t in p.get("targets", [])]
        charted[name] = {m.removesuffix("_event") for q in queries for m in _MEASUREMENT.findall(q)}
    for subject, kind in SUBJECTS.items():
        assert kind in kinds(), subject
        own = [name for name, kinds_charted in charted.items() if kinds_charted & set(SUBJECTS.values()) == {kind}]
        assert own, f"no dashboard of its own charts {subject} ({kind}): {charted}"


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
    broker = start_shipped_mosquitto(tmp_path, {"gateway": "gateway-pw", "em-main": "em-pw"})
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


@pytest.mark.integration
def test_on_the_shipped_broker_each_school_of_the_district_reads_its_own_topics_only(
    tmp_path: Path, no_facility_env: pytest.MonkeyPatch
) -> None:
    """Every school of the district logs in as its site file says, with the password compose
    gives it, all at once on the shipped config and ACL: each stays connected, receives what its
    own devices publish and nothing of another school's, and writes only its own status."""
    [replica, *_] = district_replicas()
    sites = list(sites_of(replica, SECRETS, no_facility_env).values())
    logins = {}
    for site in sites:
        assert site.mqtt.username is not None
        assert site.mqtt.password is not None
        logins[site.id] = (site.mqtt.username, site.mqtt.password.get_secret_value())
    devices = {site.id: site.devices[0].id for site in sites}
    broker = start_shipped_mosquitto(
        tmp_path, dict(logins.values()) | {device: f"{device}-pw" for device in devices.values()}
    )
    try:
        with ExitStack() as stack:
            schools: dict[str, mqtt.Client] = {}
            received: dict[str, queue.Queue[str]] = {}
            for site in sites:
                username, password = logins[site.id]
                client, reason = stack.enter_context(
                    mqtt_client(broker, session_client_id(site.mqtt, site.id), username, password))
                assert not reason.is_failure, f"{username}: {reason}"
                subscribed = threading.Event()
                inbox = received[site.id] = queue.Queue()
                client.on_subscribe = lambda *_, done=subscribed: done.set()
                client.on_message = lambda _client, _userdata, message, inbox=inbox: inbox.put(message.topic)
                client.subscribe([(f"facility/{other.id}/#", 1) for other in sites])
                assert subscribed.wait(MQTT_TIMEOUT_S), username
                schools[site.id] = client
            things: dict[str, mqtt.Client] = {}
            for site_id, device in devices.items():
                client, reason = stack.enter_context(mqtt_client(broker, device, device, f"{device}-pw"))
                assert not reason.is_failure, f"{device}: {reason}"
                things[site_id] = client
            # Refused or not for the school, in this order: another school's status, written by
            # a school; a device of another school. Then its own device, which ends its inbox.
            for site_id, school in schools.items():
                for other in schools.keys() - {site_id}:
                    school.publish(f"facility/{other}/gateway/status", b"online", qos=1).wait_for_publish(
                        MQTT_TIMEOUT_S)
            for site_id, thing in things.items():
                thing.publish(f"facility/{site_id}/{devices[site_id]}/telemetry", b"{}", qos=1).wait_for_publish(
                    MQTT_TIMEOUT_S)
            for site_id, inbox in received.items():
                own = f"facility/{site_id}/{devices[site_id]}/telemetry"
                topics = [inbox.get(timeout=MQTT_TIMEOUT_S)]
                while topics[-1] != own:
                    topics.append(inbox.get(timeout=MQTT_TIMEOUT_S))
                assert topics == [own], site_id
            assert all(school.is_connected() for school in schools.values())
    finally:
        broker.stop()
