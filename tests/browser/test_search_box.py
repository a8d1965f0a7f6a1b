"""The header's search box in a real Chromium against a real `casefolio serve`, whose own
worker extracts the uploaded text: typed by keyboard, a hit with its highlighted snippet, the
"this project only" choice; axe-core on the way."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Offline, Site, accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_window")]


def _indexed(site: Site, q: str, seconds: float = 30) -> None:
    """Wait for the server's worker to have extracted the text (not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not site.api("GET", "/api/v1/search", params={"q": q}).json():
        assert time.monotonic() < deadline, f"still waiting for {q!r} to be searchable"
        time.sleep(0.05)


def test_a_query_typed_in_the_header_box_finds_a_document_with_a_snippet(
    offline: Offline, site: Site
) -> None:
    ours = site.project("Smith v Jones")
    other = site.project("Acme v Widget")
    for project, name, text in (
        (ours, "letter.txt", "We accept the indemnity cap of ten million pounds."),
        (other, "memo.txt", "A memo on the indemnity clause."),
    ):
        made = httpx.post(
            f"{site.url}/api/v1/projects/{project}/documents",
            params={"fileName": name},
            content=text.encode(),
            headers={"X-API-Token": site.served.token, "Content-Type": "text/plain"},
            timeout=30,
        )
        assert made.status_code == 201, made.text
    _indexed(site, "indemnity cap")
    _indexed(site, "memo")

    page = sign_in(offline.context, site, "op@example.com")
    expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()
    page.locator("body").focus()
    for _ in range(40):  # the box is reached by the keyboard
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "site-search":
            break
    else:
        raise AssertionError("the search box was not reached by Tab")
    page.keyboard.type("indemnity")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_visible()
    results = page.locator("ol.hits > li")
    expect(results).to_have_count(2)
    hit = results.filter(has=page.get_by_role("link", name="letter.txt"))
    expect(hit.locator(".snippet mark")).to_have_text("indemnity")
    expect(hit).to_contain_text("Smith v Jones")
    expect(page.get_by_label("Search documents")).to_have_value("indemnity")
    accessible(page)
    page.screenshot(path=site.shots / "search.png", full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=site.shots / "search-360.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    hit.get_by_role("link", name="letter.txt").click()
    expect(page.get_by_role("heading", name="letter.txt")).to_be_visible()
    page.get_by_label("Search documents").fill("indemnity")
    page.get_by_label("Only Smith v Jones").check()
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(results).to_have_count(1)
    expect(results.get_by_role("link", name="letter.txt")).to_be_visible()
    expect(page.get_by_label("Only Smith v Jones")).to_be_checked()
    accessible(page)

    page.get_by_label("Search documents").fill("a*")
    page.get_by_label("Search documents").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("at least 2 characters")
    expect(page.get_by_label("Search documents")).to_have_value("a*")  # left to mend
    accessible(page)
    assert offline.outside == []
