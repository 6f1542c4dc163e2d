"""Browser fixtures: Debian's Chromium driven by Playwright against the real server (`api`).

The server serves the built SPA (`make frontend`); Chromium comes from `apt-get install
chromium` (the Makefile's test target installs it). Nothing is downloaded by Playwright.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
FAILURES = ROOT / "test-output" / "failures"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (make test does it)")
    if not (ROOT / "frontend" / "dist" / "index.html").is_file():
        pytest.fail("the SPA is not built: run `make frontend`")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def new_context(browser: Browser, api: str, request: pytest.FixtureRequest) -> AsyncIterator:
    """Factory: a fresh browser profile (its own cookies) pointed at the server. When the test
    fails, every open page is saved to test-output/failures/ to see what the browser showed."""
    contexts: list[BrowserContext] = []

    async def make(**options) -> BrowserContext:
        context = await browser.new_context(base_url=api, **options)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    if request.node.stash.get(FAILED, False):
        FAILURES.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                await page.screenshot(path=FAILURES / f"{request.node.name}-{i}-{j}.png", full_page=True)
    for context in contexts:
        await context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
