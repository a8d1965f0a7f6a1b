"""Writes only the pages offer, and the pages' doors to shared writes, leave the same
audit entries, feed entries and webhooks as every other door."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from casefolio.db.engine import Database
from tests import traces
from tests.api.v1.conftest import make_matter
from tests.factories import Actor
from tests.web.conftest import Person

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
