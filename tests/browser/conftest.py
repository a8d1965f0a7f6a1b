"""A real headless Chromium (Debian's `chromium` package) driven by Playwright.

Playwright's own browser download cannot run here, so the browser is the system one. Without
it the browser tests skip locally and fail in CI (`CI=true`), where .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from casefolio.config import Settings
from tests.servers import Server, cli, init_token, running_server, server_env

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
    # The webhook page's test registers a receiver on this machine: loopback is allowed.
    env = server_env(
        settings.data_dir, settings.effective_database_url, webhook_allowed_networks="127.0.0.0/8"
    )
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


PASSWORD = "a browser password"
SERIOUS = ("serious", "critical")


@dataclass
class Site:
    served: Served
    env: dict[str, str]
    shots: Path

    @property
    def url(self) -> str:
        return self.served.base_url

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"X-API-Token": self.served.token}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def user(self, email: str, name: str) -> int:
        made = self.api("POST", "/api/v1/users", json={"email": email, "name": name})
        assert made.status_code == 201, made.text
        self.password(email)
        return int(made.json()["id"])

    def password(self, email: str) -> None:
        cli(self.env, "users", "set-password", email, "--password-stdin", input=PASSWORD + "\n")

    def project(self, name: str, **grants: str) -> int:
        made = self.api(
            "POST", "/api/v1/projects", json={"name": name, "settings": {"downloadViaApi": True}}
        )
        assert made.status_code == 201, made.text
        project = int(made.json()["id"])
        for email, role in grants.items():
            granted = self.api(
                "PUT", f"/api/v1/projects/{project}/users/{email}", json={"role": role}
            )
            assert granted.status_code == 200, granted.text
        return project


@pytest.fixture
def site(served: Served, settings: Settings, tmp_path: Path) -> Site:
    env = server_env(settings.data_dir, settings.effective_database_url)
    # Where screenshots go: the test's folder, or (to refresh the README's) the folder named
    # by CASEFOLIO_SCREENSHOTS, e.g. docs/screenshots.
    shots = Path(os.environ.get("CASEFOLIO_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    site = Site(served, env, shots)
    site.password("op@example.com")
    return site


def accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert not bad, f"{page.url}:\n" + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in bad
    )


def sign_in(context: BrowserContext, site: Site, email: str, password: str = PASSWORD) -> Page:
    page = context.new_page()
    page.goto(f"{site.url}/signin")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


@pytest.fixture
def one_window(offline: Offline) -> Iterator[None]:
    """The web page tests' browser waits at most 15 s for anything."""
    offline.context.set_default_timeout(15_000)
    yield
