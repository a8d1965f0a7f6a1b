"""The webhook and audit pages in a real Chromium against a real `casefolio serve`, whose own
worker delivers to a real receiver on 127.0.0.1: the secret shown once, a test event in the
delivery log, redelivery, deletion; the audit trail's filters and pages; a project admin's
view. axe-core on every page, keyboard reachability, 360 px; screenshots on the way."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook as Verifier

from tests.browser.conftest import Offline, Site, accessible, sign_in
from tests.outbound.receiver import Receiver, receiver

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_window")]


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with receiver() as made:
        yield made


def _until(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Wait for the server's worker to have done something (not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def _reaches_by_keyboard(page: Page, selector: str) -> None:
    """Tab from the top of the page reaches every control `selector` matches."""
    wanted = page.eval_on_selector_all(
        selector, "els => els.map((e, i) => { e.dataset.kbd = String(i); return i; })"
    )
    reached: set[str] = set()
    page.locator("body").focus()
    for _ in range(200):
        page.keyboard.press("Tab")
        found = page.evaluate("document.activeElement && document.activeElement.dataset.kbd")
        if found is not None:
            reached.add(found)
        if len(reached) == len(wanted):
            return
    raise AssertionError(f"not reached by Tab: {sorted(set(map(str, wanted)) - reached)}")


def _nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _fits_360(page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, page.url
    page.set_viewport_size({"width": 1280, "height": 800})


def test_an_operator_registers_a_webhook_follows_its_deliveries_and_reads_the_audit_trail(
    offline: Offline, site: Site, hook_receiver: Receiver
) -> None:
    site.project("Acme v Widget")
    page = sign_in(offline.context, site, "op@example.com")
    _nav(page, "Webhooks")
    expect(page).to_have_title("Webhooks · casefolio")
    accessible(page)
    _reaches_by_keyboard(page, "main form input:not([type=hidden]), main form button")
    page.get_by_label("URL (https://…)").fill(hook_receiver.url)
    page.get_by_label("Description (optional)").fill("Document system bridge")
    page.get_by_label("document.created").check()
    page.get_by_label("document.deleted").check()
    page.get_by_role("button", name="Register webhook").click()

    secret = page.get_by_label("Secret", exact=True).input_value()
    assert secret.startswith("whsec_")
    accessible(page)
    page.reload()  # shown once: gone on a reload, and no second webhook
    expect(page.get_by_label("Secret", exact=True)).to_have_count(0)
    assert secret not in page.content()
    assert len(site.api("GET", "/api/v1/webhooks").json()) == 1

    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_role("status")).to_contain_text("webhook.test event is queued")
    _until(lambda: len(hook_receiver.received) == 1, "the test event")
    got = hook_receiver.received[0]
    assert Verifier(secret).verify(got.body, got.headers)["type"] == "webhook.test"

    def delivered() -> bool:
        page.reload()
        return "delivered" in page.locator("#deliveries").inner_text()

    _until(delivered, "the delivery log to say delivered")
    expect(page.locator("#deliveries tbody tr").first).to_contain_text("200")
    page.get_by_role("button", name="Send webhook.test delivery").first.click()
    expect(page.get_by_role("status")).to_contain_text("queued again")
    _until(lambda: len(hook_receiver.received) == 2, "the redelivery")
    assert len(set(hook_receiver.ids())) == 1  # the same webhook-id: receivers de-duplicate
    _until(delivered, "the redelivery to be logged")
    accessible(page)
    _reaches_by_keyboard(page, "main button")
    page.screenshot(path=site.shots / "webhook.png", full_page=True)
    _fits_360(page)

    _nav(page, "Webhooks")
    row = page.locator("#webhooks tbody tr")
    expect(row).to_contain_text("Document system bridge")
    expect(row).to_contain_text("active")
    page.screenshot(path=site.shots / "webhooks.png", full_page=True)

    _nav(page, "Audit trail")
    accessible(page)
    page.get_by_label("Action").fill("webhook.created")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Operator")
    page.get_by_role("link", name="Clear filters").click()
    page.goto(f"{site.url}/admin/audit?limit=2")  # keyset pages, two entries each
    first = page.locator("#audit tbody tr td:first-child").all_inner_texts()
    page.get_by_role("link", name="Next entries").click()
    page.wait_for_url("**cursor=**")  # the click starts the navigation; read the new page
    expect(page.locator("#audit tbody tr").first).to_be_visible()
    second = page.locator("#audit tbody tr td:first-child").all_inner_texts()
    assert len(first) == 2 and second and int(second[0]) > int(first[-1])
    page.goto(f"{site.url}/admin/audit")
    accessible(page)
    _reaches_by_keyboard(page, "main form input:not([type=hidden]), main form button")
    page.screenshot(path=site.shots / "audit.png", full_page=True)
    _fits_360(page)

    _nav(page, "Webhooks")
    page.locator("#webhooks a").first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
    assert site.api("GET", "/api/v1/webhooks").json() == []
    assert offline.outside == []


def test_a_project_admin_sees_their_projects_audit_and_registers_a_webhook_for_it(
    offline: Offline, site: Site, hook_receiver: Receiver
) -> None:
    site.user("pat@example.com", "Pat Partner")
    project = site.project("Smith v Jones", **{"pat@example.com": "Project Admin"})
    site.project("Other matter")
    page = sign_in(offline.context, site, "pat@example.com")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    page.get_by_role("link", name="Smith v Jones").click()
    page.goto(f"{site.url}/projects/{project}/access")
    page.get_by_role("link", name="Audit trail of this project").click()
    expect(page.get_by_label("Project id")).to_have_value(str(project))
    expect(page.locator("#audit tbody tr").first).to_contain_text("project")
    accessible(page)
    page.goto(f"{site.url}/admin/audit")
    expect(page.get_by_role("alert")).to_contain_text("Only operators")
    accessible(page)

    page.goto(f"{site.url}/admin/webhooks")
    expect(page.get_by_label("Other matter")).to_have_count(0)
    page.get_by_label("URL (https://…)").fill(hook_receiver.url)
    page.get_by_label("document.created").check()
    page.get_by_role("button", name="Register webhook").click()
    expect(page.get_by_role("alert")).to_contain_text("installation-wide")
    accessible(page)
    page.get_by_label("document.created").check()  # kept by the form; checking is harmless
    page.get_by_label("Smith v Jones").check()
    page.get_by_role("button", name="Register webhook").click()
    assert page.get_by_label("Secret", exact=True).input_value().startswith("whsec_")
    hooks = site.api("GET", "/api/v1/webhooks").json()
    assert [h["projectIds"] for h in hooks] == [[str(project)]]
