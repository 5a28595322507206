"""What people read is in their language, in words: every view of the menu (read from
views/index.js at test time, so a view added later is covered too) and a device's page, in
Chromium, and every zh-CN PDF report (through pdftotext).

In zh-CN nothing visible may be a raw id (a device's, room's or building's from the site file,
a rule's from the registry, a setting's key), a boolean or null as code writes it, or an
English word outside `ALLOWED`; in English no Chinese character may show outside the names
the site file gives (buildings, rooms, devices, people). Names are taken out of the text
before it is scanned: a school may call its rooms what it likes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Final

import pytest
from playwright.sync_api import Browser

from devices import kinds
from gateway.cli.demo import DEMO_NAMES
from gateway.config import SiteConfig, load
from gateway.reports.subitems import SUBITEMS
from gateway.rules.registry import specs
from simulators import DEMO_SITE
from tests.browser import open_page
from tests.dashboard_site import Site, log_in, running_site, use_language
from tests.services import Mosquitto, require_binary
from tests.test_admin_browser import ADMIN, SETTINGS_PAGES
from tests.test_dashboard_browser import MORE_PAGES, every_page, show_any

pytestmark = pytest.mark.integration

# English that a Chinese page may show, each for a reason: units people read in Chinese
# documents too (kWh, kgce, LQI, dBm), protocols, products and formats by their own names (MQTT,
# Zigbee, Zigbee2MQTT, Tasmota, Shelly, Modbus, DL/T 645, HTTP, Webhook, PDF, CSV, HTML, API)
# and UV, as 紫外线 lamps are labelled on the box; GB, the prefix of a national standard's
# number (GB/T 2589).
ALLOWED: Final = frozenset({"kWh", "kW", "kgce", "LQI", "dBm", "MQTT", "Zigbee", "Zigbee2MQTT", "Tasmota", "Shelly", "Modbus",
                            "DL", "HTTP", "Webhook", "PDF", "CSV", "HTML", "UV", "API", "GB"})
BOOLEANS: Final = re.compile(r"\b(true|false|null|undefined|NaN)\b")
WORD: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*")
HAN: Final = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+")
def site_file() -> SiteConfig:
    return load(DEMO_SITE)


def names(site: SiteConfig) -> list[str]:
    """Every name the site file (and the demo's accounts) gives, longest first."""
    found = {site.name} | {b.name for b in site.buildings} | {r.name for b in site.buildings for r in b.rooms}
    found |= {d.name for d in site.devices if d.name} | {p.name for p in site.duty.people} | set(DEMO_NAMES.values())
    found |= {p.role for p in site.duty.people if p.role}
    found |= {site.quotas.standard} | {d.name for d in site.derived_subitems}  # where its quotas come from
    # The energy guideline's codes, shown beside their words ("01D30 特殊用电·厨房餐厅").
    found |= set(SUBITEMS)
    return sorted((n for n in found if n), key=len, reverse=True)


def raw_ids(site: SiteConfig) -> set[str]:
    ids = {site.id} | {b.id for b in site.buildings} | {r.id for b in site.buildings for r in b.rooms}
    ids |= {d.id for d in site.devices} | set(specs())
    ids |= {key for k in kinds().values() for key in k.settings.model_fields}
    return ids


def without_names(text: str, site: SiteConfig) -> str:
    for name in names(site):
        text = text.replace(name, " ")
    return text


def _ids_and_booleans(text: str, site: SiteConfig) -> tuple[list[str], str]:
    """Raw ids and booleans found, and the text without them (so an id is not also an English word)."""
    found = []
    for i in sorted(raw_ids(site), key=len, reverse=True):
        pattern = rf"(?<![\w-]){re.escape(i)}(?![\w-])"
        if re.search(pattern, text):
            found.append(f"id {i!r}")
            text = re.sub(pattern, " ", text)
    found += [f"boolean {m!r}" for m in sorted(set(BOOLEANS.findall(text)))]
    return found, BOOLEANS.sub(" ", text)


def problems_zh(text: str, site: SiteConfig) -> list[str]:
    """Raw ids, booleans and English words in a Chinese text."""
    found, rest = _ids_and_booleans(text, site)
    rest = without_names(rest, site)
    return found + [f"English {w!r}" for w in sorted({w for w in WORD.findall(rest) if len(w) > 1 and w not in ALLOWED})]


def problems_en(text: str, site: SiteConfig) -> list[str]:
    """Raw ids, booleans and Chinese in an English text."""
    found, rest = _ids_and_booleans(text, site)
    return found + [f"Chinese {w!r}" for w in sorted(set(HAN.findall(without_names(rest, site))))]


def test_the_scan_finds_what_it_looks_for() -> None:
    site = site_file()
    device = site.devices[0]
    assert problems_zh(f"{device.name} 温度 4.2 °C · 12.5 kWh · {site.buildings[0].name}", site) == []
    assert sorted(problems_zh(f"编号 {device.id} · 已开门 true · min_session_min 30 · Door open", site)) == sorted([
        f"id {device.id!r}", "id 'min_session_min'", "boolean 'true'", "English 'Door'", "English 'open'"])
    assert problems_en(f"{device.name}: 4.2 °C", site) == []
    assert problems_en("Closed up 已关好", site) == ["Chinese '已关好'"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Site]:
    with running_site(tmp_path_factory, mosquitto, "language") as s:
        yield s


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_view_reads_in_its_language(browser: Browser, site: Site, lang: str) -> None:
    config = site_file()
    scan = problems_zh if lang == "zh-CN" else problems_en
    found = {}
    with open_page(browser) as (page, console):
        use_language(page, site.url, lang)
        log_in(page, ADMIN)  # an admin sees every page, the settings' too
        for route in every_page() + MORE_PAGES + SETTINGS_PAGES:
            show_any(page, site.url, route)
            # The language button names the other language in its own script (中文, EN).
            text = page.evaluate("() => [...document.querySelectorAll('.brand, #menu, #nav, #live, #user, #view')]"
                                 ".map((el) => el.innerText).join('\\n')")
            if problems := scan(text, config):
                found[route] = problems
        assert console.problems() == []
    assert found == {}


def pdf_text(site: Site, path: str, params: dict[str, str], directory: Path) -> str:
    answer = site.api.get(path, params={**params, "format": "pdf", "lang": "zh-CN"}, timeout=120)
    assert answer.status_code == 200, answer.text
    pdf = directory / "report.pdf"
    pdf.write_bytes(answer.content)
    out = subprocess.run([require_binary("pdftotext", "poppler-utils"), "-layout", str(pdf), "-"],
                         capture_output=True, check=True, timeout=60)
    return out.stdout.decode()


def _today() -> date:
    """Today at the site (the running gateway's clock is the wall clock)."""
    return datetime.now(site_file().tz).date()


REPORTS: Final = [
    pytest.param("/api/v1/reports/energy", lambda d: {"month": d.strftime("%Y-%m")}, id="energy"),
    pytest.param("/api/v1/reports/canteen", lambda d: {"date": d.isoformat()}, id="canteen"),
    pytest.param("/api/v1/reports/safety", lambda d: {"date": d.isoformat()}, id="safety-day"),
    pytest.param("/api/v1/reports/safety", lambda d: {"week": f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"},
                 id="safety-week"),
    pytest.param("/api/v1/reports/safety", lambda d: {"month": d.strftime("%Y-%m")}, id="safety-month"),
    pytest.param("/api/v1/reports/energy/period", lambda d: {"period": f"{d.year}-Q{(d.month - 1) // 3 + 1}"},
                 id="energy-quarter"),
    pytest.param("/api/v1/reports/disclosure", lambda d: {"period": f"{d.year}-Q{(d.month - 1) // 3 + 1}"},
                 id="disclosure"),
]


@pytest.mark.parametrize(("path", "params"), REPORTS)
def test_every_chinese_pdf_reads_in_chinese(site: Site, path: str, params: Callable[[date], dict[str, str]],
                                           tmp_path: Path) -> None:
    text = pdf_text(site, path, params(_today()), tmp_path)
    assert HAN.search(text), "the PDF has Chinese text"
    assert problems_zh(text, site_file()) == []
