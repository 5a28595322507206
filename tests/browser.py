"""A real browser for tests: Debian's Chromium (`apt-get install chromium`) driven by
Playwright's sync API, without `playwright install`. A missing Chromium skips the test, or
fails it when `CI=true`, as a missing service does (see `services.py`).

Each page gets a fresh browser context (its own storage: logins and settings kept in
`localStorage` do not leak from one test into another) and records what a test usually
wants to check: console messages and uncaught errors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, ViewportSize, sync_playwright

from tests.services import require_binary

# Tests run as root in CI containers, where Chromium's sandbox cannot start.
CHROMIUM_ARGS: Final = ("--no-sandbox",)
# Playwright's actions and waits give up after this long unless told otherwise.
DEFAULT_TIMEOUT_MS: Final = 10_000
DESKTOP: Final[ViewportSize] = {"width": 1280, "height": 900}
# A phone-sized viewport, deliberately without Playwright's `is_mobile` emulation: with it
# Chromium widens the layout viewport to fit content that overflows, so `innerWidth` could
# never show an overflow.
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}
ROOT: Final = Path(__file__).resolve().parent.parent


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed afterwards."""
    executable = require_binary("chromium", "chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """What a page reported: console messages as `type: text (url:line)` and uncaught
    errors (exceptions, unhandled promise rejections)."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def _message(self, message: ConsoleMessage) -> None:
        where = message.location
        self.messages.append((message.type, f"{message.text} ({where['url']}:{where['lineNumber']})"))

    def _page_error(self, error: Error) -> None:
        self.page_errors.append(error.stack or f"{error.name}: {error.message}")

    def problems(self, *allowed: str) -> list[str]:
        """Errors and warnings, console or uncaught, except console messages containing
        one of `allowed` (an expected failed request, say)."""
        found = [f"{kind}: {text}" for kind, text in self.messages
                 if kind in ("error", "warning") and not any(a in text for a in allowed)]
        return found + [f"uncaught: {e}" for e in self.page_errors]


@contextmanager
def open_page(browser: Browser, viewport: ViewportSize = DESKTOP, **context: Any) -> Iterator[tuple[Page, Console]]:
    """A page in a context of its own (`context`: `new_context` options), with its console."""
    ctx = browser.new_context(viewport=viewport, **context)
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        page = ctx.new_page()
        console = Console()
        page.on("console", console._message)
        page.on("pageerror", console._page_error)
        yield page, console
    finally:
        ctx.close()


def settle(page: Page) -> None:
    """Returns after the page has painted twice: what the last change scheduled has run."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())))")


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its window (0 if it fits, ±1 px rounding)."""
    overflow: int = page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
    return overflow


def stamp_when(page: Page, condition: str, arg: object = None) -> str:
    """Watches the page's DOM: the first time the JS function `condition(arg)` is true after a
    change (or right away), the page's `Date.now()` is kept under the key returned, for
    `stamped_at`. Compared with Python's `time.time()`, it measures how long something took
    to show: both read the same clock."""
    key = f"stamp-{time.monotonic_ns()}"
    page.evaluate(
        """([key, condition, arg]) => {
          const test = new Function(`return (${condition})`)();
          window.__stamps ??= {};
          const check = () => {
            if (window.__stamps[key] === undefined && test(arg)) {
              window.__stamps[key] = Date.now();
              observer.disconnect();
            }
          };
          const observer = new MutationObserver(check);
          observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
          check();
        }""",
        [key, condition, arg],
    )
    return key


def stamped_at(page: Page, key: str, timeout_ms: float = DEFAULT_TIMEOUT_MS) -> float:
    """The page's `Date.now()` when the condition of `stamp_when` became true; waits for it."""
    page.wait_for_function("(key) => window.__stamps?.[key] !== undefined", arg=key, timeout=timeout_ms)
    at: float = page.evaluate("(key) => window.__stamps[key]", key)
    return at


def artifacts_dir(name: str) -> Path:
    """Where a test leaves files for people to look at (screenshots): `$<NAME>_ARTIFACTS`, or
    `test-artifacts/<name>/` at the repository's root; created if missing."""
    directory = Path(os.environ.get(f"{name.upper()}_ARTIFACTS") or ROOT / "test-artifacts" / name)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(page: Page, directory: Path, name: str) -> Path:
    """A full-page PNG `<directory>/<name>.png`."""
    path = directory / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
