"""Containerless uploads (`POST /api/v3/attachments`), as curl sends them: owned by the
uploader and hidden from everyone else, claimed by a document PATCH that links them, and
removed by gc when nobody claims them in time."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from casefolio.db.engine import Database
from casefolio.db.models import Document
from casefolio.domain import gc
from tests import traces
from tests.api.v3.conftest import Matter, basic, upload_v1
from tests.factories import Actor

CONTENT = b"%PDF-1.7 amended claim"


async def _upload(
    client: httpx.AsyncClient,
    actor: Actor,
    content: bytes = CONTENT,
    metadata: dict[str, Any] | None = None,
) -> httpx.Response:
    meta = {"fileName": "amended.pdf", "description": {"raw": "Amended"}}
    return await client.post(
        "/api/v3/attachments",
        files={
            "metadata": (None, json.dumps(metadata or meta), "application/json"),
            "file": ("amended.pdf", content, "application/pdf"),
        },
        headers=basic(actor),
    )


async def _claim(
    client: httpx.AsyncClient, doc_id: int, actor: Actor, *attachment_ids: int, **extra: Any
) -> httpx.Response:
    links = [{"href": f"/api/v3/attachments/{i}"} for i in attachment_ids]
    return await client.patch(
        f"/api/v3/documents/{doc_id}",
        json={"_links": {"attachments": links}, **extra},
        headers=basic(actor),
    )


async def _attachment_ids(client: httpx.AsyncClient, doc_id: int, actor: Actor) -> list[int]:
    listed = await client.get(f"/api/v3/documents/{doc_id}/attachments", headers=basic(actor))
    assert listed.status_code == 200, listed.text
    return [a["id"] for a in listed.json()["_embedded"]["elements"]]


async def test_upload_without_container_belongs_to_its_uploader(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    created = await _upload(client, matter.writer)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["fileName"], body["title"], body["status"]) == ("amended.pdf",) * 2 + ("uploaded",)
    assert body["description"]["raw"] == "Amended"
    assert body["digest"] == {"algorithm": "sha256", "hash": hashlib.sha256(CONTENT).hexdigest()}
    links = body["_links"]
    assert links["container"] == {"href": None}
    assert links["author"]["href"] == f"/api/v3/users/{matter.writer.user_id}"
    assert links["delete"] == {"href": f"/api/v3/attachments/{body['id']}", "method": "delete"}

    own = await client.get(f"/api/v3/attachments/{body['id']}", headers=basic(matter.writer))
    assert own.status_code == 200 and own.json()["id"] == body["id"]
    content = await client.get(
        f"/api/v3/attachments/{body['id']}/content", headers=basic(matter.writer)
    )
    assert (content.status_code, content.content) == (200, CONTENT)


async def test_an_unclaimed_upload_is_invisible_to_everyone_else(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    attachment_id = (await _upload(client, matter.writer)).json()["id"]
    for actor in (matter.admin, matter.reader, matter.outsider, operator):
        for path in (f"/api/v3/attachments/{attachment_id}", f"/{attachment_id}/content"):
            url = path if path.startswith("/api") else f"/api/v3/attachments{path}"
            response = await client.get(url, headers=basic(actor))
            assert response.status_code == 404, (actor.email, url)
            assert response.json()["message"] == "The specified attachment does not exist."
        deleted = await client.delete(f"/api/v3/attachments/{attachment_id}", headers=basic(actor))
        assert deleted.status_code == 404
    # v1 does not know it either
    v1 = await client.get(
        f"/api/v1/projects/{matter.id}/documents/1/versions/{attachment_id}",
        headers=operator.headers,
    )
    assert v1.status_code == 404
    still = await client.get(f"/api/v3/attachments/{attachment_id}", headers=basic(matter.writer))
    assert still.status_code == 200


async def test_a_document_patch_claims_the_upload_as_its_newest_version(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    doc_id = int(doc["id"])
    first = (await _upload(client, matter.writer, b"first")).json()["id"]
    second = (await _upload(client, matter.writer, CONTENT)).json()["id"]

    claimed = await _claim(client, doc_id, matter.writer, first, second, title="Amended")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["title"] == "Amended"
    embedded = claimed.json()["_embedded"]["attachments"]["_embedded"]["elements"]
    assert [a["id"] for a in embedded][-2:] == [first, second]
    # the same ids, now visible to the project's readers, with the document as container
    seen = await client.get(f"/api/v3/attachments/{second}", headers=basic(matter.reader))
    assert seen.status_code == 200
    assert seen.json()["_links"]["container"]["href"] == f"/api/v3/documents/{doc_id}"
    assert await _attachment_ids(client, doc_id, matter.reader) == [
        int(doc["currentVersion"]["id"]),
        first,
        second,
    ]
    # the last one claimed is the current version: v1 serves its bytes as the content
    v1 = await client.get(
        f"/api/v1/projects/{matter.id}/documents/{doc_id}", headers=matter.reader.headers
    )
    current_version = v1.json()["currentVersion"]
    assert (int(current_version["id"]), int(current_version["number"])) == (second, 3)
    current = await client.get(
        f"/api/v1/projects/{matter.id}/documents/{doc_id}/content", headers=matter.reader.headers
    )
    assert current.content == CONTENT
    # sending the links again changes nothing
    again = await _claim(client, doc_id, matter.writer, first, second)
    assert again.status_code == 200
    assert await _attachment_ids(client, doc_id, matter.reader) == [
        int(doc["currentVersion"]["id"]),
        first,
        second,
    ]


async def test_claims_follow_the_usual_access_rules_and_change_nothing_when_refused(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    doc_id = int(doc["id"])
    before = await _attachment_ids(client, doc_id, matter.admin)
    readers = (await _upload(client, matter.reader)).json()["id"]
    writers = (await _upload(client, matter.writer)).json()["id"]
    outsiders = (await _upload(client, matter.outsider)).json()["id"]

    # a reader may upload but not claim (403 before the body is looked at)
    assert (await _claim(client, doc_id, matter.reader, readers)).status_code == 403
    # an outsider cannot see the document at all
    assert (await _claim(client, doc_id, matter.outsider, outsiders)).status_code == 404
    # nobody claims another user's upload, nor one that does not exist: 422 naming attachments
    for ids in ((readers,), (writers, outsiders), (999_999,)):
        refused = await _claim(client, doc_id, matter.admin, *ids, title="Must not stick")
        assert refused.status_code == 422, (ids, refused.text)
        assert refused.json()["errorIdentifier"].endswith("PropertyConstraintViolation")
        assert refused.json()["_embedded"]["details"]["attribute"] == "attachments"
    # a version of another document cannot be moved over
    other = await upload_v1(client, matter.id, matter.writer, name="other.pdf")
    moved = await _claim(client, doc_id, matter.writer, int(other["currentVersion"]["id"]))
    assert moved.status_code == 422
    # one of the document's own versions is already claimed: nothing to do
    own = await _claim(client, doc_id, matter.writer, int(doc["currentVersion"]["id"]))
    assert own.status_code == 200

    assert await _attachment_ids(client, doc_id, matter.admin) == before
    unchanged = await client.get(f"/api/v3/documents/{doc_id}", headers=basic(matter.admin))
    assert unchanged.json()["title"] == doc["title"]
    for actor, attachment_id in (
        (matter.reader, readers),
        (matter.writer, writers),
        (matter.outsider, outsiders),
    ):
        own = await client.get(f"/api/v3/attachments/{attachment_id}", headers=basic(actor))
        assert own.json()["_links"]["container"] == {"href": None}


async def test_bad_attachment_links_are_422(client: httpx.AsyncClient, matter: Matter) -> None:
    doc_id = int((await upload_v1(client, matter.id, matter.writer))["id"])
    for links in (
        {"attachments": {"href": "/api/v3/attachments/1"}},
        {"attachments": [{"href": "/api/v3/documents/1"}]},
        {"attachments": ["/api/v3/attachments/1"]},
        {"attachments": [{"href": "/api/v3/attachments/0"}]},
        {"attachments": [{"href": "/api/v3/attachments/99999999999999999999"}]},
        [],
    ):
        response = await client.patch(
            f"/api/v3/documents/{doc_id}", json={"_links": links}, headers=basic(matter.writer)
        )
        assert response.status_code == 422, (links, response.text)


async def test_the_uploader_may_delete_an_unclaimed_upload(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    attachment_id = (await _upload(client, matter.reader)).json()["id"]
    deleted = await client.delete(
        f"/api/v3/attachments/{attachment_id}", headers=basic(matter.reader)
    )
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v3/attachments/{attachment_id}", headers=basic(matter.reader))
    assert gone.status_code == 404


async def test_uploads_without_container_are_refused_like_any_other(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    not_multipart = await client.post(
        "/api/v3/attachments", content=b"x", headers=basic(matter.writer)
    )
    assert not_multipart.status_code == 415
    nameless = await _upload(client, matter.writer, metadata={"fileName": " "})
    # the file part's filename is the fallback, as on a document's attachments
    assert nameless.status_code == 201 and nameless.json()["fileName"] == "amended.pdf"
    anonymous = await client.post("/api/v3/attachments", files={"file": ("a", b"a")})
    assert anonymous.status_code == 401


async def test_gc_removes_uploads_unclaimed_for_too_long(
    client: httpx.AsyncClient, app: FastAPI, matter: Matter
) -> None:
    state = app.state.casefolio
    old = (await _upload(client, matter.writer, b"never claimed")).json()["id"]
    kept = (await _upload(client, matter.writer, b"claimed in time")).json()["id"]
    doc_id = int((await upload_v1(client, matter.id, matter.writer))["id"])
    assert (await _claim(client, doc_id, matter.writer, kept)).status_code == 200
    young = (await _upload(client, matter.writer, b"still waiting")).json()["id"]

    now = datetime.now(UTC)
    waiting = timedelta(hours=24)
    early = await gc.collect(
        state.db, state.blobs, grace=timedelta(0), unclaimed_for=waiting, now=now
    )
    assert early.unclaimed == []  # nothing has waited a day yet
    later = now + waiting + timedelta(minutes=1)
    dry = await gc.collect(
        state.db, state.blobs, grace=timedelta(0), unclaimed_for=waiting, now=later, dry_run=True
    )
    assert sorted(dry.unclaimed) == sorted([old, young])
    assert (await client.get(f"/api/v3/attachments/{old}", headers=basic(matter.writer))).is_success

    report = await gc.collect(
        state.db, state.blobs, grace=timedelta(0), unclaimed_for=waiting, now=later
    )
    assert sorted(report.unclaimed) == sorted([old, young])
    assert hashlib.sha256(b"never claimed").hexdigest() in {b.name for b in report.blobs}
    for gone in (old, young):
        response = await client.get(f"/api/v3/attachments/{gone}", headers=basic(matter.writer))
        assert response.status_code == 404
    claimed = await client.get(f"/api/v3/attachments/{kept}/content", headers=basic(matter.reader))
    assert claimed.content == b"claimed in time"


async def test_a_claim_reports_its_versions_and_no_empty_document_update(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    doc_id = int(doc["id"])
    uploaded = await _upload(client, matter.writer)
    start = await traces.mark(db)

    claimed = await _claim(client, doc_id, matter.writer, uploaded.json()["id"])

    assert claimed.status_code == 200, claimed.text
    found = await traces.since(db, start)
    assert found.actions == found.change_types == ["version.added"]

    # The document's own title again, beside the links it already has: no change at all.
    again = await _claim(client, doc_id, matter.writer, uploaded.json()["id"], title=doc["title"])
    assert again.status_code == 200
    assert again.json()["updatedAt"] == claimed.json()["updatedAt"]
    assert (await traces.since(db, start)).actions == ["version.added"]


async def test_an_unclaimed_upload_embeds_its_uploader_in_full(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Only the uploader sees an upload without a container, so the embedded author is
    them, with the fields a user sees of themself; its container stays null."""
    created = await _upload(client, matter.writer)
    assert created.status_code == 201, created.text
    own = await client.get(
        f"/api/v3/attachments/{created.json()['id']}", headers=basic(matter.writer)
    )
    for body in (created.json(), own.json()):
        author = body["_embedded"]["author"]
        assert (author["id"], author["email"]) == (matter.writer.user_id, matter.writer.email)
        assert "container" not in body["_embedded"]
        assert body["_links"]["container"] == {"href": None}


async def test_an_attachment_link_must_name_the_attachment_itself(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """A link is the attachment's own path, whole: one that only starts with it (its
    content, or more digits) is refused 422, and the upload stays unclaimed."""
    doc_id = int((await upload_v1(client, matter.id, matter.writer))["id"])
    before = await _attachment_ids(client, doc_id, matter.writer)
    attachment_id = (await _upload(client, matter.writer)).json()["id"]
    for href in (
        f"/api/v3/attachments/{attachment_id}/content",
        f"/api/v3/attachments/{attachment_id}x",
        f"/api/v3/attachments/{attachment_id}/",
    ):
        response = await client.patch(
            f"/api/v3/documents/{doc_id}",
            json={"_links": {"attachments": [{"href": href}]}},
            headers=basic(matter.writer),
        )
        assert response.status_code == 422, (href, response.text)
        assert response.json()["_embedded"]["details"]["attribute"] == "attachments"
    assert await _attachment_ids(client, doc_id, matter.writer) == before
    own = await client.get(f"/api/v3/attachments/{attachment_id}", headers=basic(matter.writer))
    assert own.json()["_links"]["container"] == {"href": None}


async def test_a_claims_answer_is_the_document_as_the_claim_left_it(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """The PATCH answers the document after the claim (the new version moved its
    `updatedAt`), not the one read before it: a client keeps what it is sent."""
    doc_id = int((await upload_v1(client, matter.id, matter.writer))["id"])
    async with db.writer() as session:
        await session.execute(
            update(Document)
            .where(Document.id == doc_id)
            .values(updated_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
        await session.commit()
    uploaded = (await _upload(client, matter.writer)).json()["id"]

    claimed = await _claim(client, doc_id, matter.writer, uploaded)

    assert claimed.status_code == 200, claimed.text
    now = (await client.get(f"/api/v3/documents/{doc_id}", headers=basic(matter.writer))).json()
    assert claimed.json()["updatedAt"] == now["updatedAt"] != "2026-01-01T00:00:00Z"
    assert claimed.json()["_embedded"]["attachments"] == now["_embedded"]["attachments"]
