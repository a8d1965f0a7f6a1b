"""Folders in the domain: a rename reports itself like the other folder writes."""

from __future__ import annotations

import httpx
import pytest

from casefolio.db.engine import Database
from casefolio.domain import access, folders, users
from casefolio.domain.errors import Conflict
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from tests import traces
from tests.api.v1.conftest import Matter, matter

__all__ = ["matter"]


async def _rename(db: Database, matter: Matter, folder_id: int, name: str) -> None:
    async with db.write() as session:
        who = Principal.of(await users.get(session, user_id=matter.writer.user_id))
        scope = await access.scope(session, who, matter.id, Capability.FOLDERS_WRITE)
        await folders.rename(session, scope=scope, folder_id=folder_id, name=name)


async def test_a_rename_emits_folder_renamed_to_audit_feed_and_webhooks(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    made = await client.post(
        matter.url("/folders"), json={"name": "Pleadings"}, headers=matter.writer.headers
    )
    folder_id = int(made.json()["id"])
    start = await traces.mark(db)

    await _rename(db, matter, folder_id, "Court filings")

    found = await traces.since(db, start)
    assert found.actions == found.change_types == ["folder.renamed"]
    [entry] = found.entries
    assert (entry.target_type, entry.target_id, entry.project_id) == (
        "folder",
        folder_id,
        matter.id,
    )
    assert entry.details == {"name": "Court filings", "from": "Pleadings"}
    assert found.webhook_data("folder.renamed") | {"seq": 0} == {
        "seq": 0,
        "projectId": str(matter.id),
        "folderId": str(folder_id),
        "links": {"project": f"/api/v1/projects/{matter.id}"},
    }


async def test_a_rename_to_its_own_name_or_a_taken_one_reports_nothing(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    ids = [
        int(
            (
                await client.post(
                    matter.url("/folders"), json={"name": name}, headers=matter.writer.headers
                )
            ).json()["id"]
        )
        for name in ("Pleadings", "Evidence")
    ]
    start = await traces.mark(db)

    await _rename(db, matter, ids[0], "Pleadings")
    with pytest.raises(Conflict):
        await _rename(db, matter, ids[0], "Evidence")

    assert (await traces.since(db, start)).entries == []
    listed = await client.get(matter.url("/folders"), headers=matter.writer.headers)
    assert sorted(f["name"] for f in listed.json()) == ["Evidence", "Pleadings"]
