"""The web pages in a real Chromium against a real `casefolio serve`: sign-in, tokens, the
reader's refusals, drag-and-drop uploads with progress, versions, CSRF and deactivation.
axe-core checks every page visited; screenshots of the main pages are taken on the way."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD, Offline, Site, accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_window")]


def test_sign_in_wrong_password_sign_out_and_a_token_made_on_the_page(
    offline: Offline, site: Site
) -> None:
    page = sign_in(offline.context, site, "op@example.com", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail address or password.")
    expect(page).to_have_title("Sign in · casefolio")
    accessible(page)
    page.screenshot(path=site.shots / "sign-in.png")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()

    page.get_by_role("link", name="My API tokens").click()
    page.get_by_label("Name (to recognise it by)").fill("scanner")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert secret.startswith("cf_")
    assert page.url == f"{site.url}/tokens"  # redirected: the secret is not in the address
    expect(page.get_by_label("Try it with curl")).to_have_value(
        f'curl -H "X-API-Token: {secret}" {site.url}/api/v1/projects'
    )
    accessible(page)
    page.screenshot(path=site.shots / "token-created.png")
    used = httpx.get(f"{site.url}/api/v1/users", headers={"X-API-Token": secret}, timeout=30)
    assert used.status_code == 200 and "op@example.com" in used.text

    page.reload()  # no second token, and the secret is never shown again
    expect(page.get_by_role("cell", name="scanner", exact=True)).to_have_count(1)
    expect(page.get_by_role("cell", name=secret[:10] + "…")).to_be_visible()
    expect(page.get_by_label("Token", exact=True)).to_have_count(0)
    assert secret not in page.content()
    listed = site.api("GET", "/api/v1/tokens").json()
    assert [t["name"] for t in listed].count("scanner") == 1

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{site.url}/projects")
    expect(page).to_have_url(f"{site.url}/signin?next=%2Fprojects")
    assert offline.outside == []


def test_a_reader_sees_no_upload_control_and_a_forged_post_is_refused(
    offline: Offline, site: Site
) -> None:
    site.user("rita@example.com", "Rita Reader")
    project = site.project("Smith v Jones", **{"rita@example.com": "Read Only"})
    page = sign_in(offline.context, site, "rita@example.com")
    page.get_by_role("link", name="Smith v Jones").click()
    expect(page.get_by_text("Your role: Read Only")).to_be_visible()
    expect(page.locator('input[type="file"]')).to_have_count(0)
    expect(page.locator("#dropzone")).to_have_count(0)
    accessible(page)

    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = page.request.post(
        f"{site.url}/projects/{project}/upload?csrf={token}",
        multipart={"file": {"name": "x.pdf", "mimeType": "application/pdf", "buffer": b"%PDF"}},
    )
    assert forged.status == 403 and "documents.write" in forged.text()
    no_token = page.request.post(f"{site.url}/projects", form={"name": "Forged"})
    assert no_token.status == 403 and "CSRF" in no_token.text()
    listed = site.api("GET", f"/api/v1/projects/{project}/documents")
    assert listed.json() == []
    assert [p["name"] for p in site.api("GET", "/api/v1/projects").json()] == ["Smith v Jones"]


def _drop(page: Page, files: dict[str, str]) -> None:
    # The page's script shows the drop zone as it starts listening: before that, a drop
    # would land on a zone with no listener (seen once in CI, on a loaded machine).
    expect(page.locator("#dropzone")).to_be_visible()
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, text] of Object.entries(files)) {
                transfer.items.add(new File([text], name, {type: "text/plain"}));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def test_drag_and_drop_three_files_with_progress_then_download_and_a_new_version(
    offline: Offline, site: Site
) -> None:
    site.project("Acme v Widget")
    page = sign_in(offline.context, site, "op@example.com")
    page.get_by_role("link", name="Acme v Widget").click()
    files = {f"exhibit-{n}.txt": f"exhibit {n} " * (20_000 * n) for n in (1, 2, 3)}
    _drop(page, files)
    items = page.locator("#upload-list li")
    expect(items).to_have_count(3)
    for item in items.all():
        expect(item).to_have_attribute("data-state", "done", timeout=30_000)
        expect(item.locator("progress")).to_have_attribute("value", "100")
        assert int(item.get_attribute("data-progress-events") or 0) >= 1
    for name in files:
        expect(page.locator("#documents").get_by_role("link", name=name)).to_be_visible()
    accessible(page)
    page.screenshot(path=site.shots / "project.png", full_page=True)

    # The same file again, refused as a duplicate when asked to, with a per-file report.
    page.get_by_label("Refuse a file this project already has").check()
    _drop(page, {"exhibit-1.txt": files["exhibit-1.txt"], "new.txt": "new"})
    expect(page.locator("#upload-list li[data-state]")).to_have_count(5)
    expect(page.locator("#upload-list li[data-state=failed]")).to_contain_text("exhibit-1.txt")
    expect(page.locator("#upload-list li[data-state=failed]")).to_have_count(1)

    page.locator("#documents").get_by_role("link", name="exhibit-2.txt").click()
    expect(page.get_by_role("heading", name="exhibit-2.txt")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download version 1").click()
    assert Path(download.value.path()).read_text() == files["exhibit-2.txt"]

    page.get_by_label("File").set_input_files(
        files=[{"name": "exhibit-2-amended.txt", "mimeType": "text/plain", "buffer": b"amended"}]
    )
    page.get_by_role("button", name="Upload new version").click()
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("exhibit-2-amended.txt")
    expect(rows.first).to_contain_text("Operator")
    accessible(page)
    page.screenshot(path=site.shots / "document.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download version 2").click()
    assert Path(download.value.path()).read_bytes() == b"amended"

    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(page.url.split("/documents/")[0])
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert offline.outside == []


def test_an_operator_deactivates_a_user_and_their_open_session_ends(
    offline: Offline, site: Site, chromium_path: str
) -> None:
    site.user("dan@example.com", "Dan Departing")
    dan_context = offline.context.browser.new_context()  # type: ignore[union-attr]
    try:
        dan = sign_in(dan_context, site, "dan@example.com")
        expect(dan.get_by_role("heading", name="Projects", level=1)).to_be_visible()

        admin = sign_in(offline.context, site, "op@example.com")
        admin.get_by_role("link", name="Users").click()
        accessible(admin)
        admin.screenshot(path=site.shots / "users.png", full_page=True)
        admin.get_by_role("button", name="Deactivate dan@example.com").click()
        row = admin.locator("#users tr", has_text="dan@example.com")
        expect(row).to_contain_text("no")
        expect(row.get_by_role("button", name="Reactivate dan@example.com")).to_be_visible()

        dan.reload()
        expect(dan.get_by_role("heading", name="Sign in")).to_be_visible()
        for path in ("/admin/teams", "/admin/settings", "/account"):
            admin.goto(site.url + path)
            accessible(admin)
    finally:
        dan_context.close()
