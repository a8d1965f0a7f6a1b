"""Writes only the pages offer, and the pages' doors to shared writes, leave the same
audit entries, feed entries and webhooks as every other door."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from unittest.mock import ANY

import httpx

from casefolio.db.engine import Database
from tests import traces
from tests.api.v1.conftest import make_matter
from tests.factories import Actor
from tests.web.conftest import Browser, Person

MakePerson = Callable[[Actor], Awaitable[Person]]


async def test_renaming_a_folder_on_its_page_is_audited_fed_and_sent(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    writer = await person(matter.writer)
    made = await writer.post(f"/projects/{matter.id}/folders", {"name": "Pleadings"})
    folder_id = int(made.headers["location"].rsplit("=", 1)[1])
    start = await traces.mark(db)

    renamed = await writer.post(
        f"/projects/{matter.id}/folders/{folder_id}/rename", {"name": "Court filings"}
    )

    assert renamed.status_code == 303
    found = await traces.since(db, start)
    assert found.actions == found.change_types == ["folder.renamed"]
    [entry] = found.entries
    assert (entry.actor_kind, entry.actor_user_id) == ("web", matter.writer.user_id)
    assert (entry.target_type, entry.target_id) == ("folder", folder_id)
    assert entry.details == {"name": "Court filings", "from": "Pleadings"}
    assert found.webhook_data("folder.renamed")["folderId"] == str(folder_id)


async def test_account_writes_on_the_pages_are_audited_without_secrets(
    db: Database, operator: Actor, member: Actor, person: MakePerson, browsers: Browser
) -> None:
    admin = await person(operator)
    someone = await person(member)
    start = await traces.mark(db)
    user = f"/admin/users/{member.user_id}"

    for path, data in (
        ("/active", {"active": "false"}),
        ("/active", {"active": "true"}),
        ("/operator", {"operator": "true"}),
        ("/operator", {"operator": "true"}),  # already one: nothing changes, nothing reported
        ("/operator", {"operator": "false"}),
    ):
        assert (await admin.post(user + path, data)).status_code == 303, path
    reset = await admin.post(user + "/reset")
    found = re.search(r"/set-password/([A-Za-z0-9_-]+)", reset.text)
    assert reset.status_code == 200 and found
    secret = found.group(1)
    guest = await browsers()
    new_password = "a brand new password"
    redeemed = await guest.post(
        f"/set-password/{secret}", data={"password": new_password, "again": new_password}
    )
    assert redeemed.status_code == 200
    assert (await someone.sign_in(new_password)).status_code == 303
    own = "my own new password"
    changed = await someone.post(
        "/account/password", {"current": new_password, "new": own, "again": own}
    )
    assert changed.status_code == 303

    found_traces = await traces.since(db, start)
    by_operator = ("web", operator.user_id)
    by_member = ("web", member.user_id)
    assert [
        (e.action, (e.actor_kind, e.actor_user_id), e.target_type, e.target_id, e.details)
        for e in found_traces.entries
    ] == [
        ("user.deactivated", by_operator, "user", member.user_id, {"email": member.email}),
        ("user.reactivated", by_operator, "user", member.user_id, {"email": member.email}),
        ("user.operator_granted", by_operator, "user", member.user_id, {"email": member.email}),
        ("user.operator_revoked", by_operator, "user", member.user_id, {"email": member.email}),
        (
            "user.password_link_issued",
            by_operator,
            "user",
            member.user_id,
            {"email": member.email, "purpose": "reset", "linkId": ANY},
        ),
        (
            "user.password_set",
            by_member,
            "user",
            member.user_id,
            {"email": member.email, "link": "reset"},
        ),
        ("user.password_set", by_member, "user", member.user_id, {"email": member.email}),
    ]
    assert found_traces.change_types == found_traces.actions  # webhooks may subscribe
    recorded = json.dumps([e.details for e in found_traces.entries])
    recorded += json.dumps([c.details for c in found_traces.changes])
    for never in (secret, new_password, own, "argon2"):
        assert never not in recorded


async def test_the_settings_form_sent_unchanged_reports_nothing(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)  # downloadViaApi on
    admin = await person(matter.admin)
    op = await person(operator)
    before = (await client.get(matter.url(), headers=operator.headers)).json()
    start = await traces.mark(db)

    same = await admin.post(f"/projects/{matter.id}/settings", {"downloadViaApi": "on"})

    assert same.status_code == 303
    assert (await traces.since(db, start)).entries == []
    assert (await client.get(matter.url(), headers=operator.headers)).json() == before
    # Switching downloads is an operator's.
    off = await op.post(f"/projects/{matter.id}/settings", {})
    assert off.status_code == 303
    [entry] = (await traces.since(db, start)).entries
    assert (entry.action, entry.details) == ("project.updated", {"changed": ["downloadViaApi"]})
