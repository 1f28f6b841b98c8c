"""Fixtures of the playground tests: the server's app builders and its tiny-weights ``lipsync serve``
(shared with ``tests/server``), and a headless Chromium (Playwright).

The browser is the system's Chromium (Debian's ``chromium`` package, ``.ci/run`` installs it): Playwright
drives it through ``executable_path``, no browser download. Without it (or without Playwright) the browser
tests skip locally with the reason and fail under ``CI=true``, like the tests that need ../shared.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import harness_factory
from tests.server.test_tiny_engine_e2e import tiny_server

__all__ = ["BrowserPage", "browser", "harness_factory", "page", "screenshot", "tiny_server"]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _chromium_path() -> str | None:
    configured = os.environ.get("LIPSYNC_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; the browser comes from the system)")
    executable = _chromium_path()
    if executable is None:
        _missing("no Chromium found (apt-get install chromium, or set LIPSYNC_CHROMIUM)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class BrowserPage:
    """A fresh page plus what it did: every request URL, and console errors and uncaught exceptions."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Any) -> Iterator[BrowserPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    recorded = BrowserPage(context.new_page())
    recorded.page.on("request", lambda request: recorded.requests.append(request.url))
    recorded.page.on("pageerror", lambda exc: recorded.errors.append(str(exc)))
    recorded.page.set_default_timeout(30_000)
    yield recorded
    context.close()


def screenshot(page: BrowserPage, name: str) -> None:
    """Saves a screenshot for the docs when ``LIPSYNC_SCREENSHOTS`` names a directory (see docs/playground.md)."""
    target = os.environ.get("LIPSYNC_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(Path(target) / f"playground-{name}.png"), full_page=True)
