"""A real headless Chromium (Debian's `chromium` package) driven by Playwright.

Playwright's own browser download cannot run here, so the browser is the system one. Without
it the browser tests skip locally and fail in CI (`CI=true`), where .ci/run installs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

from casefolio.config import Settings
from tests.servers import Server, init_token, running_server, server_env

# Root in a container, no network: no sandbox, GPU, background or update traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    # The `browser` marker (tests/conftest.py) has skipped or failed the test without it.
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    return executable


@dataclass
class Served:
    """A real `casefolio serve` with a first operator's token."""

    server: Server
    token: str

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture
def served(chromium_path: str, settings: Settings, tmp_path: Path) -> Iterator[Served]:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    with running_server(env) as server:
        yield Served(server, token)


@dataclass
class Offline:
    """A browser context that reaches only the server; `outside` lists what it tried."""

    context: BrowserContext
    outside: list[str] = field(default_factory=list)


@pytest.fixture
def offline(chromium_path: str, served: Served) -> Iterator[Offline]:
    # Per test and after the server: Playwright's sync API leaves its event loop marked as
    # running, so the database fixtures' anyio.run must not happen while it is open.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield from _offline_context(browser, served)
        finally:
            browser.close()


def _offline_context(browser: Browser, served: Served) -> Iterator[Offline]:
    context = browser.new_context()
    offline = Offline(context)

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(served.base_url + "/"):
            route.continue_()
        else:
            offline.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    yield offline
    context.close()
