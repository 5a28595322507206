"""`facility-gateway report …`: reports fetched from a running gateway's API (the one place
they are computed, with the rules' live state the safety record needs), one file per period,
with a progress bar over many periods; and `facility-gateway rollups rebuild` for a database
from before rollups, straight on its file."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from gateway import config
from gateway.reports.energy import Month
from gateway.storage.readings import open_readings
from gateway.storage.state import StateDatabase

REPORT_TIMEOUT_S = 300.0  # a PDF of a long month on a small machine
KINDS = ("energy", "safety", "canteen")


def add_parsers(sub: Any) -> None:  # argparse's _SubParsersAction is not public
    p = sub.add_parser("report", help="fetch a report from the gateway: energy, safety or canteen")
    p.add_argument("kind", choices=KINDS)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the site file: the gateway's address comes from api:")
    where.add_argument("--url", help="the gateway's address, e.g. http://10.0.0.5:8000")
    period = p.add_mutually_exclusive_group(required=True)
    period.add_argument("--month", help="YYYY-MM: the energy report, or the safety record's monthly summary")
    period.add_argument("--week", help="YYYY-Www: the safety record's weekly summary")
    period.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD: a daily safety or canteen record")
    p.add_argument("--to", help="the last month or date of a range: one file per month or day")
    p.add_argument("--format", choices=["json", "html", "pdf", "csv"], default="pdf")
    p.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN")
    p.add_argument("-o", "--output", type=Path,
                   help="the file (a folder for a range); default: the report's own name in this folder")
    p.add_argument("--token", help="a token or API key (default: $FACILITY_TOKEN); not needed with public_read")

    p = sub.add_parser("rollups", help="rebuild the rollups from the raw readings (a database from before them)")
    p.add_argument("action", choices=["rebuild"])
    p.add_argument("--config", type=Path, required=True)


def periods(args: argparse.Namespace) -> list[dict[str, str]]:
    """The query of each period asked for; ValueError for a period that does not fit the kind."""
    if args.kind == "energy" and args.month is None:
        raise ValueError("the energy report is monthly: give --month")
    if args.kind == "canteen" and args.date is None:
        raise ValueError("the canteen record is daily: give --date")
    if args.month is not None:
        first, last = Month.parse(args.month), Month.parse(args.to or args.month)
        months = [first.shift(n) for n in range((last.year - first.year) * 12 + last.month - first.month + 1)]
        return [{"month": str(m)} for m in months]
    if args.week is not None:
        if args.to:
            raise ValueError("--to takes a month or a date, not a week")
        return [{"week": args.week}]
    start: date = args.date
    end = date.fromisoformat(args.to) if args.to else start
    return [{"date": (start + timedelta(days=n)).isoformat()} for n in range((end - start).days + 1)]


def report(args: argparse.Namespace) -> int:
    try:
        queries = periods(args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not queries:
        print("--to lies before the start", file=sys.stderr)
        return 2
    if args.config:
        site = config.load(args.config)
        url = f"http://{site.api.host}:{site.api.port}"
    else:
        url = args.url.rstrip("/")
    token = args.token or os.environ.get("FACILITY_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    folder = len(queries) > 1
    if folder and args.output:
        args.output.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=url, headers=headers, timeout=REPORT_TIMEOUT_S) as client, \
            tqdm(total=len(queries), unit="report", disable=not folder, file=sys.stderr) as bar:
        for query in queries:
            bar.set_description(next(iter(query.values())))
            try:
                answer = client.get(f"/api/v1/reports/{args.kind}",
                                    params=query | {"format": args.format, "lang": args.lang})
            except httpx.HTTPError as exc:
                print(f"cannot reach the gateway at {url}: {exc}", file=sys.stderr)
                return 1
            if answer.status_code != 200:
                print(f"{answer.status_code} for {query}: {_detail(answer)}", file=sys.stderr)
                return 1
            name = f"{args.kind}-{next(iter(query.values()))}.{args.format}"
            target = (args.output or Path()) / name if folder or not args.output else args.output
            target.write_bytes(answer.content)
            bar.update()
            if not folder:
                print(target)
    if folder:
        print(f"{len(queries)} reports in {args.output or Path()}")
    return 0


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", answer.text))
    except ValueError:
        return answer.text[:200]


def rollups(args: argparse.Namespace) -> int:
    site = config.load(args.config)
    db = StateDatabase(site.storage.state_database_url)
    store = open_readings(site, db)
    try:
        with tqdm(unit="series", file=sys.stderr) as bar:
            def done(n: int, total: int) -> None:
                bar.total = total
                bar.update(n - bar.n)

            written = store.rebuild_rollups(done)
    finally:
        store.close()
        db.close()
    print(f"rollups rebuilt: {written} five-minute buckets")
    return 0
