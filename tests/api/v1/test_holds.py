"""Legal holds: nothing a hold covers can be destroyed by any delete path, until every hold
covering it is released. Every refusal checks that nothing changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change, Document, DocumentVersion
from casefolio.db.types import utcnow
from casefolio.domain import access, holds
from casefolio.domain.errors import Forbidden, Invalid
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from tests import traces
from tests.api.v1.conftest import Matter, file_version, make_matter, upload
from tests.factories import Actor


async def place(
    client: httpx.AsyncClient, matter: Matter, scope: str, target: Any = None, name: str = "Hold"
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "reason": "Litigation expected", "scope": scope}
    if target is not None:
        body["targetId"] = target
    response = await client.post(matter.url("/holds"), json=body, headers=matter.admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def release(client: httpx.AsyncClient, matter: Matter, hold: dict[str, Any]) -> None:
    response = await client.request(
        "DELETE",
        matter.url(f"/holds/{hold['id']}"),
        json={"reason": "Settled"},
        headers=matter.admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False


async def folder(client: httpx.AsyncClient, matter: Matter, name: str, parent: Any = None) -> str:
    body: dict[str, Any] = {"name": name}
    if parent is not None:
        body["parentId"] = parent
    response = await client.post(matter.url("/folders"), json=body, headers=matter.admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def document(
    client: httpx.AsyncClient, matter: Matter, content: bytes = b"exhibit", folder_id: Any = None
) -> str:
    response = await upload(client, matter, content)
    assert response.status_code == 201, response.text
    doc = str(response.json()["id"])
    if folder_id is not None:
        moved = await client.put(
            matter.url(f"/documents/{doc}/{folder_id}"), headers=matter.writer.headers
        )
        assert moved.status_code == 200, moved.text
    return doc


async def snapshot(db: Database, document_id: str) -> tuple[Any, ...]:
    async with db.read() as session:
        doc = await session.get(Document, int(document_id))
        versions = await session.scalar(
            select(func.count()).where(DocumentVersion.document_id == int(document_id))
        )
        assert doc is not None
        return doc.trashed_at, doc.folder_id, doc.updated_at, versions


async def delete_document(client: httpx.AsyncClient, matter: Matter, doc: str) -> httpx.Response:
    return await client.delete(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)


async def test_a_held_document_cannot_be_deleted_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter)
    hold = await place(client, matter, "document", doc, name="Smith litigation")
    before = await snapshot(db, doc)

    refused = await delete_document(client, matter, doc)

    assert refused.status_code == 409, refused.text
    assert f"hold {hold['id']} ('Smith litigation')" in refused.json()["detail"]
    assert await snapshot(db, doc) == before
    read = await client.get(matter.url(f"/documents/{doc}"), headers=matter.reader.headers)
    assert read.status_code == 200
    async with db.read() as session:
        refusal = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "hold.refused"))
        ).one()
    assert refusal.details["holds"] == [int(hold["id"])]
    assert refusal.project_id == matter.id
    assert (refusal.actor_kind, refusal.actor_user_id) == ("token", matter.admin.user_id)


async def test_two_holds_one_released_still_held_last_released_deletable(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter)
    first = await place(client, matter, "document", doc, name="First")
    second = await place(client, matter, "project", name="Second")
    await release(client, matter, first)

    refused = await delete_document(client, matter, doc)
    assert refused.status_code == 409
    assert "Second" in refused.json()["detail"] and "First" not in refused.json()["detail"]

    await release(client, matter, second)
    assert (await delete_document(client, matter, doc)).status_code == 204
    gone = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    assert gone.status_code == 404


async def test_a_version_of_a_held_document_cannot_be_deleted(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter)
    await file_version(client, matter, doc, b"second")
    versions = await client.get(
        matter.url(f"/documents/{doc}/versions"), headers=matter.admin.headers
    )
    first_version = versions.json()[0]["id"]
    await place(client, matter, "project")
    before = await snapshot(db, doc)

    refused = await client.delete(
        matter.url(f"/documents/{doc}/versions/{first_version}"), headers=matter.admin.headers
    )

    assert refused.status_code == 409, refused.text
    assert await snapshot(db, doc) == before
    # New versions may still be added while held.
    again = await client.post(
        matter.url(f"/documents/{doc}/replace"),
        params={"fileName": "v3.txt"},
        content=b"third",
        headers=matter.writer.headers,
    )
    assert again.status_code in (200, 201), again.text


async def test_v3_attachment_delete_is_refused_with_an_openproject_error(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter)
    await file_version(client, matter, doc, b"second")
    versions = await client.get(
        matter.url(f"/documents/{doc}/versions"), headers=matter.admin.headers
    )
    first_version = versions.json()[0]["id"]
    await place(client, matter, "document", doc)
    before = await snapshot(db, doc)

    refused = await client.delete(
        f"/api/v3/attachments/{first_version}", headers=matter.admin.headers
    )

    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["_type"] == "Error"
    assert body["errorIdentifier"].startswith("urn:openproject-org:api:v3:errors:")
    assert "legal hold" in body["message"]
    assert await snapshot(db, doc) == before


async def test_a_held_folder_covers_later_documents_and_moved_out_ones(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    held = await folder(client, matter, "Held")
    sub = await folder(client, matter, "Sub", parent=held)
    elsewhere = await folder(client, matter, "Elsewhere")
    early = await document(client, matter, b"early", folder_id=held)
    await place(client, matter, "folder", held)
    later = await document(client, matter, b"later", folder_id=sub)
    outside = await document(client, matter, b"outside", folder_id=elsewhere)

    assert (await delete_document(client, matter, later)).status_code == 409
    # Moving out of the held folder is allowed; the document stays held.
    moved = await client.put(
        matter.url(f"/documents/{early}/{elsewhere}"), headers=matter.writer.headers
    )
    assert moved.status_code == 200, moved.text
    assert (await delete_document(client, matter, early)).status_code == 409
    assert (await delete_document(client, matter, outside)).status_code == 204


async def test_folder_delete_is_refused_while_held(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    empty = await folder(client, matter, "Empty")
    hold = await place(client, matter, "folder", empty)

    refused = await client.delete(matter.url(f"/folders/{empty}"), headers=matter.admin.headers)
    assert refused.status_code == 409, refused.text
    listed = await client.get(matter.url("/folders"), headers=matter.admin.headers)
    assert empty in [f["id"] for f in listed.json()]

    await release(client, matter, hold)
    deleted = await client.delete(matter.url(f"/folders/{empty}"), headers=matter.admin.headers)
    assert deleted.status_code == 204


async def test_holds_events_reach_the_feed_and_the_audit_trail(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    hold = await place(client, matter, "project")
    await release(client, matter, hold)
    async with db.read() as session:
        types = list(await session.scalars(select(Change.type).order_by(Change.id)))
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert types[-2:] == ["hold.created", "hold.released"]
    assert {"hold.created", "hold.released"} <= set(actions)
    feed = await client.get("/api/v1/changes", headers=matter.admin.headers)
    assert feed.status_code == 200, feed.text
    fed = [c["type"] for c in feed.json()["changes"]]
    assert fed[-2:] == ["hold.created", "hold.released"]


async def test_hold_routes_check_input_and_access(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    h = matter.admin.headers
    for bad in (
        {"name": "x", "reason": "y", "scope": "cabinet"},
        {"name": "x", "reason": "y", "scope": "folder"},
        {"name": "x", "reason": "y", "scope": "project", "targetId": 5},
        {"name": " ", "reason": "y", "scope": "project"},
    ):
        response = await client.post(matter.url("/holds"), json=bad, headers=h)
        assert response.status_code == 400, (bad, response.text)
    missing = await client.post(
        matter.url("/holds"),
        json={"name": "x", "reason": "y", "scope": "document", "targetId": 999999},
        headers=h,
    )
    assert missing.status_code == 404
    hold = await place(client, matter, "project")
    no_reason = await client.delete(matter.url(f"/holds/{hold['id']}"), headers=h)
    assert no_reason.status_code == 400
    writer = await client.get(matter.url("/holds"), headers=matter.writer.headers)
    assert writer.status_code == 403 and "holds.manage" in writer.json()["detail"]
    outsider = await client.get(matter.url("/holds"), headers=matter.outsider.headers)
    assert outsider.status_code == 404
    listed = await client.get(matter.url("/holds?active=true"), headers=operator.headers)
    assert [x["id"] for x in listed.json()] == [hold["id"]]
    read = await client.get(matter.url(f"/holds/{hold['id']}"), headers=h)
    assert read.json()["active"] is True


async def test_a_folder_holding_a_held_trashed_document_cannot_be_deleted(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    box = await folder(client, matter, "Box")
    doc = await document(client, matter, b"boxed", folder_id=box)
    assert (await delete_document(client, matter, doc)).status_code == 204
    # A hold placed on a document already in the trash stops its purge and its folder's delete.
    hold = await place(client, matter, "document", doc)
    before = await snapshot(db, doc)

    refused = await client.delete(matter.url(f"/folders/{box}"), headers=matter.admin.headers)

    assert refused.status_code == 409, refused.text
    assert f"hold {hold['id']}" in refused.json()["detail"]
    assert await snapshot(db, doc) == before  # still in the trash, still in its folder


async def test_a_project_hold_covers_documents_filed_later_and_the_folders(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    await place(client, matter, "project")
    empty = await folder(client, matter, "Empty")
    later = await document(client, matter, b"filed after the hold")

    assert (await delete_document(client, matter, later)).status_code == 409
    refused = await client.delete(matter.url(f"/folders/{empty}"), headers=matter.admin.headers)
    assert refused.status_code == 409


async def test_a_release_names_what_the_hold_covered_as_its_creation_did(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    document = (await upload(client, matter)).json()["id"]
    covered = {"document": document, "folder": await folder(client, matter, "Held")}
    for scope, target in covered.items():
        hold = await place(client, matter, scope, target)
        start = await traces.mark(db)
        await release(client, matter, hold)
        found = await traces.since(db, start)
        [entry] = found.entries
        assert entry.details == {
            "name": "Hold",
            "scope": scope,
            "targetId": int(target),
            "reason": "Settled",
        }
        released = found.webhook_data("hold.released")
        assert released[f"{scope}Id"] == str(target), scope
        fed = await client.get("/api/v1/changes", headers=matter.admin.headers)
        created, gone = fed.json()["changes"][-2:]
        assert (created["type"], gone["type"]) == ("hold.created", "hold.released")
        for key in ("documentId", "folderId"):
            assert gone[key] == created[key], (scope, key)


async def test_a_hold_on_a_folder_covers_its_sub_folders(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    held = await folder(client, matter, "Held")
    sub = await folder(client, matter, "Sub", parent=held)
    hold = await place(client, matter, "folder", held)

    refused = await client.delete(matter.url(f"/folders/{sub}"), headers=matter.admin.headers)

    assert refused.status_code == 409, refused.text
    assert f"hold {hold['id']}" in refused.json()["detail"]
    listed = await client.get(matter.url("/folders"), headers=matter.admin.headers)
    assert sub in [f["id"] for f in listed.json()]
    await release(client, matter, hold)
    deleted = await client.delete(matter.url(f"/folders/{sub}"), headers=matter.admin.headers)
    assert deleted.status_code == 204, deleted.text


async def test_a_hold_in_another_project_holds_nothing_here(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    other = await make_matter(client, db, operator)
    await place(client, other, "project", name="Other matter")
    doc = await document(client, matter)
    empty = await folder(client, matter, "Empty")

    assert (await delete_document(client, matter, doc)).status_code == 204
    deleted = await client.delete(matter.url(f"/folders/{empty}"), headers=matter.admin.headers)
    assert deleted.status_code == 204, deleted.text


async def test_releasing_a_released_hold_changes_nothing(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    hold = await place(client, matter, "project")
    await release(client, matter, hold)
    first = await client.get(matter.url(f"/holds/{hold['id']}"), headers=matter.admin.headers)
    start = await traces.mark(db)

    again = await client.request(
        "DELETE",
        matter.url(f"/holds/{hold['id']}"),
        json={"reason": "Released twice by mistake"},
        headers=matter.admin.headers,
    )

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert first.json()["releaseReason"] == "Settled"
    found = await traces.since(db, start)
    assert (found.actions, found.change_types) == ([], [])  # no second release reported


async def test_the_whole_project_is_covered_by_any_active_hold_in_it(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    """`covering(whole_project=True)`, the answer for destroying a whole project: every
    hold of the project in force, whatever it is placed on, and no released one."""
    doc = await document(client, matter)
    box = await folder(client, matter, "Box")
    on_document = await place(client, matter, "document", doc)
    on_folder = await place(client, matter, "folder", box)
    released = await place(client, matter, "document", doc, name="Released")
    await release(client, matter, released)
    other = await make_matter(client, db, operator)
    await place(client, other, "project", name="Elsewhere")

    async with db.read() as session:
        found = await holds.covering(session, project_id=matter.id, whole_project=True)

    assert [h.id for h in found] == [int(on_document["id"]), int(on_folder["id"])]


async def test_a_move_between_folders_no_hold_covers_brings_no_hold_along(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Only the holds that covered a document where it was follow it when it moves: one
    moved between two folders outside every held one stays free to delete."""
    held = await folder(client, matter, "Held")
    here, there = await folder(client, matter, "Here"), await folder(client, matter, "There")
    doc = await document(client, matter, b"never held", folder_id=here)
    await place(client, matter, "folder", held)

    moved = await client.put(matter.url(f"/documents/{doc}/{there}"), headers=matter.writer.headers)
    assert moved.status_code == 200, moved.text

    assert (await delete_document(client, matter, doc)).status_code == 204
    async with db.read() as session:
        refusals = await session.scalars(
            select(AuditEntry.id).where(AuditEntry.action == "hold.refused")
        )
        assert list(refusals) == []


async def test_a_released_hold_keeps_its_record_of_who_released_it_when_and_why(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    kept = await place(client, matter, "project", name="Kept")
    hold = await place(client, matter, "project", name="Released")
    before = utcnow()
    await release(client, matter, hold)

    h = matter.admin.headers
    read = (await client.get(matter.url(f"/holds/{hold['id']}"), headers=h)).json()
    assert read["active"] is False
    assert read["releasedBy"] == read["createdBy"] == str(matter.admin.user_id)
    assert read["releaseReason"] == "Settled"
    assert before <= datetime.fromisoformat(read["releasedAt"]) <= utcnow()
    assert (read["name"], read["reason"]) == ("Released", "Litigation expected")
    for active, listed in (("true", [kept["id"]]), ("false", [hold["id"]])):
        found = await client.get(matter.url("/holds"), params={"active": active}, headers=h)
        assert [x["id"] for x in found.json()] == listed, active
    everything = await client.get(matter.url("/holds"), headers=h)
    assert [x["id"] for x in everything.json()] == [kept["id"], hold["id"]]


async def test_a_folder_is_covered_by_holds_on_its_ancestors_and_descendants_only(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """`covering(folder_id=…)`: destroying a folder destroys what is below it, so a hold
    on a sub-folder, however deep, covers it as a hold on an ancestor does; a hold on a
    sibling does not."""
    outer = await folder(client, matter, "Outer")
    top = await folder(client, matter, "Top", parent=outer)
    middle = await folder(client, matter, "Middle", parent=top)
    below = await folder(client, matter, "Below", parent=middle)
    beside = await folder(client, matter, "Beside", parent=outer)
    on_outer = await place(client, matter, "folder", outer, name="Outer")
    on_below = await place(client, matter, "folder", below, name="Below")
    await place(client, matter, "folder", beside, name="Beside")

    async with db.read() as session:
        found = await holds.covering(session, project_id=matter.id, folder_id=int(top))

    assert [h.id for h in found] == [int(on_outer["id"]), int(on_below["id"])]


async def test_the_domain_refuses_holds_to_a_scope_without_holds_manage(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Holds check `holds.manage` themselves, whoever calls them (not only /api/v1, whose
    routes ask first): a Read Write member neither places, reads nor releases one."""
    placed = await place(client, matter, "project", name="Placed by an admin")
    writer = Principal(matter.writer.user_id, matter.writer.email, "Writer", False)
    new = holds.NewHold("Sneaky", "No reason", "project")

    async with db.write() as session:
        scope = await access.scope(session, writer, matter.id, Capability.DOCUMENTS_WRITE)
        with pytest.raises(Forbidden, match=r"holds\.manage"):
            await holds.create(session, scope=scope, new=new)
        with pytest.raises(Forbidden, match=r"holds\.manage"):
            await holds.get(session, scope=scope, hold_id=int(placed["id"]))
        with pytest.raises(Forbidden, match=r"holds\.manage"):
            await holds.release(session, scope=scope, hold_id=int(placed["id"]), reason="Mine")

    listed = await client.get(matter.url("/holds"), headers=matter.admin.headers)
    assert [(h["id"], h["active"]) for h in listed.json()] == [(placed["id"], True)]


async def test_the_domain_refuses_a_hold_whose_target_does_not_fit_its_scope(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """`holds.create` checks a hold's target itself, not only /api/v1's schema: a project
    hold names no target, a folder or document hold names one, and nothing is placed."""
    doc = await document(client, matter)
    admin = Principal(matter.admin.user_id, matter.admin.email, "Admin", False)
    for new in (
        holds.NewHold("Project", "Reason", "project", int(doc)),
        holds.NewHold("Folder", "Reason", "folder"),
        holds.NewHold("Everything", "Reason", "everything"),
    ):
        async with db.write() as session:
            scope = await access.scope(session, admin, matter.id, Capability.HOLDS_MANAGE)
            with pytest.raises(Invalid):
                await holds.create(session, scope=scope, new=new)

    listed = await client.get(matter.url("/holds"), headers=matter.admin.headers)
    assert listed.json() == []


async def test_a_refusal_by_several_holds_names_and_audits_every_one(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter)
    on_project = await place(client, matter, "project", name="Whole matter")
    on_document = await place(client, matter, "document", doc, name="This exhibit")
    before = await snapshot(db, doc)

    refused = await delete_document(client, matter, doc)

    assert refused.status_code == 409, refused.text
    for hold in (on_project, on_document):
        assert f"hold {hold['id']} ('{hold['name']}')" in refused.json()["detail"]
    assert await snapshot(db, doc) == before
    async with db.read() as session:
        refusal = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "hold.refused"))
        ).one()
    assert refusal.details == {
        "what": f"document {doc}",
        "holds": [int(on_project["id"]), int(on_document["id"])],
        "documentId": int(doc),
    }
