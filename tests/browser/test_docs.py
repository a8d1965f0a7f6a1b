"""/docs in a real browser with no network beyond the server: it loads (with its headers
against framing), Authorize takes a token, and "Try it out" gets a 200. The landing page
passes axe-core's checks."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Request, expect

from tests.browser.conftest import Offline, Served

pytestmark = pytest.mark.browser


def test_docs_authorize_and_try_it_out_offline(offline: Offline, served: Served) -> None:
    page = offline.context.new_page()
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if "/api/v1/users" in r.url else None)
    loaded = page.goto(f"{served.base_url}/docs")
    # Swagger UI works under these (its inline scripts are not restricted by them).
    assert loaded is not None and loaded.headers["x-frame-options"] == "DENY"
    assert loaded.headers["content-security-policy"] == "frame-ancestors 'none'"

    page.locator("button.authorize").first.click()
    scheme = page.locator(".auth-container").filter(has_text="X-API-Token")
    scheme.locator("input").fill(served.token)
    scheme.get_by_role("button", name="Apply credentials").click()
    expect(scheme.locator("button", has_text="Logout")).to_be_visible()
    page.locator(".modal-ux .close-modal").click()

    operation = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/api/v1/users"])')
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table .microlight").first).to_contain_text(
        "op@example.com"
    )

    assert [(r.url, r.headers.get("x-api-token")) for r in sent] == [
        (f"{served.base_url}/api/v1/users?limit=100", served.token)
    ]
    assert offline.outside == [], "the docs tried to reach beyond the server"


def test_landing_page_has_no_accessibility_violations(offline: Offline, served: Served) -> None:
    page = offline.context.new_page()
    page.goto(f"{served.base_url}/")
    expect(page.get_by_role("link", name="Interactive API documentation")).to_be_visible()
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    assert offline.outside == []
