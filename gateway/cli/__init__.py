"""`facility-gateway`: check-config, run, district, demo, user, api-key, simulate, report, rollups."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import getpass
import logging
import os
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Final

import uvicorn
from fastapi import FastAPI

from gateway import config
from gateway.api.guard import timed_h11
from gateway.app import create_app
from gateway.auth.audit import DISTRICT, AuditTrail
from gateway.auth.store import AuthError, AuthStore
from gateway.cli import reports as cli_reports
from gateway.clock import SystemClock, to_ms
from gateway.config.auth import AuthSettings, Role, Scope
from gateway.live import LiveBus
from gateway.storage.state import StateDatabase, sqlite_url


def _log(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO; the WeCom and DingTalk robot URLs carry their keys.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facility-gateway", description=__doc__)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate a site file and exit (non-zero on errors)")
    p.add_argument("file", type=Path)

    p = sub.add_parser("run", help="run against an external broker (and InfluxDB if configured)")
    p.add_argument("--config", type=Path, required=True)

    p = sub.add_parser("district", help="one replica of a district: runs the schools whose lease it holds, among "
                                         "those of a folder of site files, on a shared PostgreSQL")
    p.add_argument("--sites", type=Path, required=True, help="a folder of site files (*.yaml), one per school")
    p.add_argument("--state-url", required=True, help="the shared PostgreSQL, postgresql://user:password@host/db")
    p.add_argument("--data-dir", type=Path, default=Path("data"),
                   help="this replica's own folder: each school's spool, in a folder of its id")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--replica-id", default=None, help="unique among the replicas and the same across restarts "
                                                      "(default: the host name and the data folder)")
    p.add_argument("--lease-s", type=float, default=30.0, help="a lease's time to live: the bound of a takeover")
    p.add_argument("--advertise", default=None, help="where the other replicas reach this one, http://host:port "
                                                    "(default: this host's name and --port)")

    p = sub.add_parser("demo", help="everything in one process: embedded broker, SQLite, a simulated kindergarten")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--mqtt-port", type=int, default=1883, help="port of the embedded MQTT broker")
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"))
    p.add_argument("--backfill-days", type=float, default=35, help="simulated history written on first start")
    p.add_argument("--config", type=Path, default=None,
                   help="a site file to simulate instead of the demo kindergarten (e.g. your own, to try it)")

    p = sub.add_parser("user", help="add a user (the first admin, say); the password is asked for")
    _state_of(p)
    p.add_argument("name", help="the login id: a-z, 0-9 and . _ @ -, e.g. logistics-li")
    p.add_argument("--display-name", default="", help="how people read it, in any script, e.g. 李主任")
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    p.add_argument("--district", action="store_true",
                   help="an account of the district, which may sign in at every school of the state store")

    p = sub.add_parser("api-key", help="create an API key for a machine; it is shown once")
    _state_of(p)
    p.add_argument("name")
    p.add_argument("--scope", action="append", choices=[s.value for s in Scope], required=True)

    p = sub.add_parser("simulate", help="publish a simulated site over MQTT, each device in its own format, and "
                                        "serve its Modbus and DL/T 645 meters at the site file's URLs")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--broker", required=True, help="mqtt://host:port")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--username")
    p.add_argument("--password")

    cli_reports.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log(args.log_level)
    if args.command in ("run", "district", "demo"):
        # Until the server has started (_Server.startup): what is built to start lives as long as
        # the process, and the collector scanning it again and again while it grew took half of
        # the start of a site of 10,000 devices.
        gc.disable()
        _few_malloc_arenas()

    try:
        if args.command == "check-config":
            site = config.load(args.file)
            print(f"{args.file}: OK — site {site.id} ({site.name}), {len(site.devices)} devices")
            return 0
        if args.command == "run":
            site = config.load(args.config)
            app = create_app(site, SystemClock())
            return _serve(app, site.api, args.log_level)
        if args.command == "district":
            return _district(args)
        if args.command == "demo":
            from gateway.cli.demo import banner, demo_app
            from simulators import DEMO_SITE

            site_file = args.config or DEMO_SITE
            app = demo_app(args.data_dir, args.mqtt_port, args.backfill_days, site_file=site_file)
            print(banner(args.host, args.port, args.mqtt_port, site_file, args.data_dir,
                         config.load(site_file).id), flush=True)
            return _serve(app, config.ApiSettings(host=args.host, port=args.port), args.log_level)
        if args.command in ("user", "api-key"):
            return _accounts(args)
        if args.command == "report":
            return cli_reports.report(args)
        if args.command == "rollups":
            return cli_reports.rollups(args)
        if args.command == "simulate":
            from simulators.publish import run as publish

            site = config.load(args.config)
            asyncio.run(publish(site, args.broker, speed=args.speed, seed=args.seed,
                                username=args.username, password=args.password))
            return 0
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


M_ARENA_MAX: Final = -8  # glibc's malloc.h
MALLOC_ARENAS: Final = 2


def _few_malloc_arenas() -> None:
    """glibc's malloc gives threads that allocate at once arenas of their own, up to eight a
    core, and an arena keeps what was freed in it: the gateway's threads (MQTT, the spool, the
    sinks' workers) all allocate while a burst is stored, and a site of 10,000 devices kept
    about 15 MB more after one (docs/performance.md). Its threads take the GIL to allocate
    Python's objects anyway, so two arenas cost them no waiting. Not glibc (musl, macOS):
    left as it is."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def _district(args: argparse.Namespace) -> int:
    from gateway.district.app import district_app
    from gateway.district.ownership import replica_id

    sites = config.load_district(args.sites, args.state_url, args.data_dir)
    me = replica_id(args.replica_id, args.data_dir)
    host = args.host if args.host not in ("0.0.0.0", "::") else socket.gethostname()
    url = args.advertise or f"http://{host}:{args.port}"
    app = district_app(sites, args.state_url, SystemClock(), me, args.lease_s, url)
    print(f"replica {me}: {len(sites)} schools from {args.sites}, leases of {args.lease_s:g} s", flush=True)
    return _serve(app, config.ApiSettings(host=args.host, port=args.port), args.log_level)


def _state_of(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the site file, whose storage.data_dir holds the accounts")
    where.add_argument("--data-dir", type=Path, help="the data folder itself (the demo's: demo-data)")
    where.add_argument("--state-url", help="a district's shared PostgreSQL (with --district: a district account)")


def _accounts(args: argparse.Namespace) -> int:
    """`user` and `api-key`: straight into the state store, with or without a running gateway."""
    if args.config is not None:
        site = config.load(args.config)
        data_dir, settings = site.storage.data_dir, site.auth
        data_dir.mkdir(parents=True, exist_ok=True)
        url, site_id = site.storage.state_database_url, site.id
    elif args.state_url is not None:
        # The district's own accounts; a school's are added at that school's site file.
        if args.command == "user" and not args.district:
            print("refused: on the district's state store, add district accounts (--district); a school's "
                  "accounts are added in that school's dashboard (设置 → 用户), by a district admin", file=sys.stderr)
            return 1
        settings, url, site_id = AuthSettings(), args.state_url, DISTRICT
    else:
        # A folder named by hand that is not there is a typo, not a new site.
        data_dir, settings = args.data_dir, AuthSettings()
        if not data_dir.is_dir():
            print(f"refused: no data folder {data_dir} (start the demo once, or name the right one)",
                  file=sys.stderr)
            return 1
        # The site is not known here: its entries are the site's that next opens the folder.
        url, site_id = sqlite_url(data_dir / "state.db"), ""
    now_ms = to_ms(SystemClock().now())
    actor = f"cli:{getpass.getuser()}"
    db = StateDatabase(url)
    audit = AuditTrail(db, site_id)
    store = AuthStore(db, settings, audit)
    try:
        if args.command == "user":
            password = os.environ.get("FACILITY_NEW_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
            user = store.add_user(args.name, Role(args.role), password, actor, now_ms, display_name=args.display_name,
                                  district=args.district)
            print(f"user {user.name} added with the role {user.role}")
        else:
            key = store.create_api_key(args.name, [Scope(s) for s in args.scope], actor, now_ms)
            print(key)
    except (AuthError, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


# paho's network thread gives up the GIL at every socket call and then waits up to the
# switch interval (5 ms by default) to get it back from the event loop thread: with 1 ms the
# measured end-to-end ingest rate rose from 8.3k to 10.6k msg/s (bench/ingest.py).
GIL_SWITCH_INTERVAL_S = 0.001


class _Server(uvicorn.Server):
    """Ends the dashboards' live streams as soon as a stop is asked for. uvicorn waits for
    open responses to finish before it shuts the app down, and a live stream never finishes
    by itself: without this, SIGTERM hung for as long as a dashboard was open.

    Stops when the gateway has failed (a core task died), so that the process exits non-zero
    and its supervisor (systemd, Docker's restart policy) starts it again: it must not go on
    answering HTTP with ingest dead. So does a gateway that could not start."""

    def __init__(self, app: FastAPI, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app
        self.gateway_failed = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What was built to start (modules, models, routes, the site) lives as long as the
        # process: moved out of the collector's sight, a full collection scans only what the
        # work allocates. Under heavy reads its pauses stalled every thread for 0.1-0.33 s, six
        # times in a run of tests/gateway/test_query_limit.py; once, and for 0.1 s, after.
        # Not collected first: the start leaves almost no cycles (about 500 objects of 350,000
        # at 10,000 devices), and a collection to free them took 0.3 s of that site's start.
        gc.freeze()
        gc.enable()
        gateway = getattr(self._app.state, "gateway", None)
        if gateway is not None:
            self._exit_on_failure = asyncio.create_task(self._stop_when_failed(gateway.failed, gateway.live))
        runner = getattr(self._app.state, "runner", None)  # a district replica's
        if runner is not None:
            runner.add_done_callback(self._stop_when_ended)

    def _stop_when_ended(self, runner: asyncio.Task[None]) -> None:
        if not self.should_exit:  # it ended by itself: it failed
            self.gateway_failed = True
            self.should_exit = True

    async def _stop_when_failed(self, failed: asyncio.Event, live: LiveBus) -> None:
        await failed.wait()
        self.gateway_failed = True
        self.should_exit = True
        live.close()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        gateway = getattr(self._app.state, "gateway", None)
        if gateway is not None:
            self._loop.call_soon_threadsafe(gateway.live.close)
        else:  # still starting: a standby waiting for its site's lease stops waiting
            self._loop.call_soon_threadsafe(self._app.state.stopping.set)


def _serve(app: FastAPI, settings: config.ApiSettings, log_level: str) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    trusted = [str(network) for network in settings.trusted_proxies]
    server = _Server(app, uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level,
        # h11 explicitly, whatever else is installed: the request deadline is built on it.
        http=timed_h11(settings.request_timeout_s, app.state.http_refused),
        ws="none",  # no WebSocket routes: no second protocol to bound
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: only the
        # configured proxies are believed, and with none the headers are not read at all.
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted,
    ))
    asyncio.run(server.serve())
    return 0 if server.started and not server.gateway_failed else 1


if __name__ == "__main__":
    sys.exit(main())
