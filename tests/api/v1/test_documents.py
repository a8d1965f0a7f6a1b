from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from casefolio.api.downloads import FILE_CHUNK_BYTES
from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from tests import traces
from tests.api.v1.conftest import Matter, upload, upload_with_metadata
from tests.factories import Actor

OLD = datetime(2000, 1, 1, tzinfo=UTC)


async def _set_updated_at(db: Database, instants: dict[int, datetime]) -> None:
    """Move documents' updatedAt to the past, so a write's bump is seen without waiting."""
    async with db.writer() as session:
        for document_id, instant in instants.items():
            await session.execute(
                update(Document).where(Document.id == document_id).values(updated_at=instant)
            )
        await session.commit()


async def test_multipart_upload_with_metadata(client: httpx.AsyncClient, matter: Matter) -> None:
    folder = await client.post(
        matter.url("/folders"), json={"name": "Evidence"}, headers=matter.writer.headers
    )
    field = await client.post(
        matter.url("/fields"),
        json={"name": "Custodian", "type": "text"},
        headers=matter.admin.headers,
    )
    metadata = {
        "title": "Email from Smith",
        "folderId": folder.json()["id"],
        "description": "**Key** exhibit",
        "fields": {"Custodian": "J. Smith"},
    }
    email = ("smith.eml", b"From: smith@example.com\r\n\r\nHello", "message/rfc822")
    created = await upload_with_metadata(client, matter, email, metadata)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["title"] == "Email from Smith"
    assert doc["folderId"] == folder.json()["id"]
    assert doc["currentVersion"]["fileName"] == "smith.eml"
    assert doc["currentVersion"]["contentType"] == "message/rfc822"
    assert doc["currentVersion"]["number"] == 1
    expected = hashlib.sha256(b"From: smith@example.com\r\n\r\nHello").hexdigest()
    assert doc["currentVersion"]["sha256"] == expected
    assert doc["fields"] == [
        {"id": field.json()["id"], "name": "Custodian", "type": "text", "value": "J. Smith"}
    ]
    read = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert read.json() == doc


async def test_upload_answers_exactly_what_a_later_read_returns(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """The upload's answer is built from what it wrote; it must match a fresh read."""
    made = []
    for name, kind in (("Custodian", "text"), ("Pages", "number"), ("Privileged", "boolean")):
        made.append(
            await client.post(
                matter.url("/fields"),
                json={"name": name, "type": kind},
                headers=matter.admin.headers,
            )
        )
    metadata = {"fields": {"Privileged": False, "Custodian": None, "Pages": 12}}
    created = await upload_with_metadata(
        client, matter, ("memo.txt", b"memo", "text/plain"), metadata
    )
    assert created.status_code == 201, created.text
    doc = created.json()
    # Field order is by field id, whatever order the client sent; a null stores nothing.
    assert [(f["name"], f["value"]) for f in doc["fields"]] == [
        ("Pages", 12),
        ("Privileged", False),
    ]
    assert [f["id"] for f in doc["fields"]] == [made[1].json()["id"], made[2].json()["id"]]
    read = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert read.json() == doc


async def test_raw_upload_needs_a_file_name(client: httpx.AsyncClient, matter: Matter) -> None:
    nameless = await client.post(
        matter.url("/documents"),
        content=b"abc",
        headers={**matter.writer.headers, "Content-Type": "text/plain"},
    )
    assert nameless.status_code == 400 and "file name" in nameless.json()["detail"]
    assert (await client.get(matter.url("/documents"), headers=matter.reader.headers)).json() == []


async def test_upload_over_limit_is_413_and_keeps_nothing(
    client: httpx.AsyncClient, matter: Matter, app: object, db: Database
) -> None:
    state = app.state.casefolio  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"max_upload_bytes": 1000})
    declared = await upload(client, matter, b"x" * 1001)
    assert declared.status_code == 413
    assert "1000 bytes" in declared.json()["detail"]

    async def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(5):
            yield b"y" * 400

    streamed = await client.post(
        matter.url("/documents"),
        content=chunks(),
        params={"fileName": "big.bin"},
        headers=matter.writer.headers,
    )
    assert streamed.status_code == 413
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Document)) == 0
    staging = state.blobs.staging_dir
    assert list(staging.iterdir()) == []
    # Nothing but the lock file of this process's claim on the staging folder.
    assert [p for p in state.blobs.root.rglob("*") if p.is_file() and p.suffix != ".lock"] == []


async def test_reject_duplicate_names_the_existing_document(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    first = await upload(client, matter, b"same bytes", "a.pdf")
    dup = await upload(client, matter, b"same bytes", "b.pdf", rejectDuplicate="true")
    assert dup.status_code == 409
    assert f"document {first.json()['id']}" in dup.json()["detail"]
    allowed = await upload(client, matter, b"same bytes", "c.pdf")
    assert allowed.status_code == 201
    listed = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    assert [d["title"] for d in listed.json()] == ["a.pdf", "c.pdf"]


async def test_identical_content_is_stored_once(
    client: httpx.AsyncClient, matter: Matter, app: object
) -> None:
    await upload(client, matter, b"dedupe me", "1.pdf")
    await upload(client, matter, b"dedupe me", "2.pdf")
    root = app.state.casefolio.blobs.root  # type: ignore[attr-defined]
    blobs = [
        p for p in root.rglob("*") if p.is_file() and p.parent.name not in ("tmp", "tmp.owners")
    ]
    assert [p.name for p in blobs] == [hashlib.sha256(b"dedupe me").hexdigest()]


async def test_replace_adds_versions_and_download_follows_current(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    doc = (await upload(client, matter, b"version one")).json()
    await _set_updated_at(db, {int(doc["id"]): OLD})
    replaced = await client.post(
        matter.url(f"/documents/{doc['id']}/replace"),
        content=b"version two",
        params={"fileName": "exhibit-v2.pdf"},
        headers={**matter.writer.headers, "Content-Type": "application/pdf"},
    )
    assert replaced.status_code == 201
    assert replaced.json()["currentVersion"]["number"] == 2
    assert replaced.json()["updatedAt"] > "2001"  # bumped from OLD by the new version
    content = await client.get(
        matter.url(f"/documents/{doc['id']}/content"), headers=matter.reader.headers
    )
    assert content.content == b"version two"
    assert content.headers["content-disposition"] == 'attachment; filename="exhibit-v2.pdf"'
    versions = (
        await client.get(
            matter.url(f"/documents/{doc['id']}/versions"), headers=matter.reader.headers
        )
    ).json()
    assert [v["number"] for v in versions] == [1, 2]
    first_page = await client.get(
        matter.url(f"/documents/{doc['id']}/versions?limit=1"), headers=matter.reader.headers
    )
    assert [v["number"] for v in first_page.json()] == [1]
    second_page = await client.get(first_page.links["next"]["url"], headers=matter.reader.headers)
    assert [v["number"] for v in second_page.json()] == [2]
    assert "next" not in second_page.links
    old = await client.get(
        matter.url(f"/documents/{doc['id']}/versions/{versions[0]['id']}/content"),
        headers=matter.reader.headers,
    )
    assert old.content == b"version one"
    one = await client.get(
        matter.url(f"/documents/{doc['id']}/versions/{versions[0]['id']}"),
        headers=matter.reader.headers,
    )
    assert one.json()["fileName"] == "exhibit.pdf"


async def test_concurrent_duplicates_with_reject_duplicate_file_one_document(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """rejectDuplicate holds under concurrency: the check and the insert are one step."""
    answers = await asyncio.gather(
        *(
            upload(client, matter, b"the same exhibit", f"copy-{i}.pdf", rejectDuplicate="true")
            for i in range(6)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409, 409]
    listed = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    assert len(listed.json()) == 1


async def test_concurrent_replaces_both_land_with_distinct_numbers(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    doc = (await upload(client, matter, b"base")).json()

    async def replace(body: bytes) -> httpx.Response:
        return await client.post(
            matter.url(f"/documents/{doc['id']}/replace"),
            content=body,
            params={"fileName": "r.pdf"},
            headers=matter.writer.headers,
        )

    results = await asyncio.gather(*(replace(f"concurrent {i}".encode()) for i in range(4)))
    assert [r.status_code for r in results] == [201] * 4
    numbers = sorted(r.json()["currentVersion"]["number"] for r in results)
    assert numbers == [2, 3, 4, 5]
    async with db.read() as session:
        stored = list(
            await session.scalars(
                select(DocumentVersion.number).where(DocumentVersion.document_id == int(doc["id"]))
            )
        )
    assert sorted(stored) == [1, 2, 3, 4, 5]


async def test_download_headers_range_etag_and_head(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    body = bytes(range(256)) * 40
    doc = (await upload(client, matter, body, "data.bin")).json()
    url = matter.url(f"/documents/{doc['id']}/content")
    full = await client.get(url, headers=matter.reader.headers)
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    assert full.status_code == 200 and full.content == body
    assert full.headers["etag"] == etag
    assert full.headers["content-length"] == str(len(body))
    part = await client.get(url, headers={**matter.reader.headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == body[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
    suffix = await client.get(url, headers={**matter.reader.headers, "Range": "bytes=-10"})
    assert suffix.content == body[-10:]
    unsatisfiable = await client.get(
        url, headers={**matter.reader.headers, "Range": f"bytes={len(body) + 5}-"}
    )
    assert unsatisfiable.status_code == 416
    cached = await client.get(url, headers={**matter.reader.headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    head = await client.head(url, headers=matter.reader.headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(body)) and head.headers["etag"] == etag


async def test_download_of_several_read_chunks_and_a_range_across_them(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Files are read FILE_CHUNK_BYTES at a time; bytes at the chunk edges must come out right."""
    chunk = FILE_CHUNK_BYTES
    body = os.urandom(3 * chunk + 12345)
    doc = (await upload(client, matter, body, "scan.tiff")).json()
    url = matter.url(f"/documents/{doc['id']}/content")
    full = await client.get(url, headers=matter.reader.headers)
    assert full.status_code == 200 and full.content == body
    span = f"bytes={chunk - 7}-{2 * chunk + 6}"
    part = await client.get(url, headers={**matter.reader.headers, "Range": span})
    assert part.status_code == 206 and part.content == body[chunk - 7 : 2 * chunk + 7]


async def test_download_needs_download_via_api(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    doc = (await upload(client, matter)).json()
    content = matter.url(f"/documents/{doc['id']}/content")
    off = {"settings": {"downloadViaApi": False}}
    # A Project Admin who did not create the project may not switch downloads (DESIGN.md:
    # its creator and operators may); the setting stays as it was.
    not_theirs = await client.patch(matter.url(), json=off, headers=matter.admin.headers)
    assert not_theirs.status_code == 403
    assert "Only an operator or the creator" in not_theirs.json()["detail"]
    assert (await client.get(content, headers=matter.admin.headers)).status_code == 200
    # Sending the value it already has is no change: a client may send back what it read.
    same = {"name": "Renamed", "settings": {"downloadViaApi": True}}
    assert (await client.patch(matter.url(), json=same, headers=matter.admin.headers)).is_success

    switched = await client.patch(matter.url(), json=off, headers=operator.headers)
    assert switched.status_code == 200 and not switched.json()["settings"]["downloadViaApi"]
    refused = await client.get(content, headers=matter.admin.headers)
    assert refused.status_code == 403 and "downloadViaApi" in refused.json()["detail"]
    meta = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert meta.status_code == 200


async def test_move_update_and_delete(client: httpx.AsyncClient, matter: Matter) -> None:
    folder = await client.post(
        matter.url("/folders"), json={"name": "F"}, headers=matter.writer.headers
    )
    doc = (await upload(client, matter)).json()
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{folder.json()['id']}"),
        headers={**matter.writer.headers, "Content-Length": "0"},
    )
    assert moved.status_code == 200 and moved.json()["folderId"] == folder.json()["id"]
    in_folder = await client.get(
        matter.url(f"/documents/folder/{folder.json()['id']}"), headers=matter.reader.headers
    )
    assert [d["id"] for d in in_folder.json()] == [doc["id"]]
    bad_target = await client.put(
        matter.url(f"/documents/{doc['id']}/9999"), headers=matter.writer.headers
    )
    assert bad_target.status_code == 404
    renamed = await client.post(
        matter.url(f"/documents/{doc['id']}"),
        json={"title": "Renamed"},
        headers=matter.writer.headers,
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    refused = await client.delete(
        matter.url(f"/documents/{doc['id']}"), headers=matter.writer.headers
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "You do not have permission to delete this file. "
        f"Your role on project {matter.id} (Read Write) does not include documents.delete."
    )
    deleted = await client.delete(
        matter.url(f"/documents/{doc['id']}"), headers=matter.admin.headers
    )
    assert deleted.status_code == 204
    assert (
        await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.admin.headers)
    ).status_code == 404


async def test_version_delete_rules(client: httpx.AsyncClient, matter: Matter) -> None:
    doc = (await upload(client, matter, b"one")).json()
    only = doc["currentVersion"]["id"]
    last = await client.delete(
        matter.url(f"/documents/{doc['id']}/versions/{only}"), headers=matter.admin.headers
    )
    assert last.status_code == 409
    assert last.json()["detail"] == "You cannot delete the only version of a document"
    await client.post(
        matter.url(f"/documents/{doc['id']}/replace"),
        content=b"two",
        params={"fileName": "two.pdf"},
        headers=matter.writer.headers,
    )
    malformed = await client.delete(
        matter.url(f"/documents/{doc['id']}/versions/abc"), headers=matter.admin.headers
    )
    assert (
        malformed.status_code == 400 and malformed.json()["detail"] == "Invalid version ID format"
    )
    unknown = await client.delete(
        matter.url(f"/documents/{doc['id']}/versions/99999"), headers=matter.admin.headers
    )
    assert unknown.status_code == 404 and unknown.json()["detail"] == "Document version not found"
    forbidden = await client.delete(
        matter.url(f"/documents/{doc['id']}/versions/{only}"), headers=matter.writer.headers
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == (
        "You do not have permission to delete this file. "
        f"Your role on project {matter.id} (Read Write) does not include documents.delete."
    )
    versions = (
        await client.get(
            matter.url(f"/documents/{doc['id']}/versions"), headers=matter.reader.headers
        )
    ).json()
    newest = versions[-1]["id"]
    dropped = await client.delete(
        matter.url(f"/documents/{doc['id']}/versions/{newest}"), headers=matter.admin.headers
    )
    assert dropped.status_code == 204
    now = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert now.json()["currentVersion"]["id"] == only
    content = await client.get(
        matter.url(f"/documents/{doc['id']}/content"), headers=matter.reader.headers
    )
    assert content.content == b"one"


async def test_field_values_are_validated_by_type(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    specs = {
        "Pages": {"type": "number"},
        "Filed": {"type": "date"},
        "Sealed": {"type": "boolean"},
        "Status": {"type": "choice", "choices": ["Draft", "Final"]},
        "Note": {"type": "text"},
    }
    ids = {}
    for name, spec in specs.items():
        made = await client.post(
            matter.url("/fields"), json={"name": name, **spec}, headers=matter.admin.headers
        )
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    doc = (await upload(client, matter)).json()
    good = {"Pages": 12, "Filed": "2026-01-31", "Sealed": True, "Status": "Final", "Note": "ok"}
    for name, value in good.items():
        put = await client.put(
            matter.url(f"/documents/{doc['id']}/fields/{ids[name]}"),
            json={"value": value},
            headers=matter.writer.headers,
        )
        assert put.status_code == 200, put.text
    bad = {"Pages": "twelve", "Filed": "31/01/2026", "Sealed": "yes", "Status": "Lost", "Note": 5}
    for name, value in bad.items():
        put = await client.put(
            matter.url(f"/documents/{doc['id']}/fields/{ids[name]}"),
            json={"value": value},
            headers=matter.writer.headers,
        )
        assert put.status_code == 400, (name, put.text)
        assert name in put.json()["detail"]
    leap = await client.put(
        matter.url(f"/documents/{doc['id']}/fields/{ids['Filed']}"),
        json={"value": "2023-02-29"},
        headers=matter.writer.headers,
    )
    assert leap.status_code == 400
    assert "2023-02-29 is not a day of the calendar" in leap.json()["detail"]
    stored = (
        await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    ).json()
    assert {f["name"]: f["value"] for f in stored["fields"]} == good
    cleared = await client.put(
        matter.url(f"/documents/{doc['id']}/fields/{ids['Note']}"),
        json={"value": None},
        headers=matter.writer.headers,
    )
    assert "Note" not in {f["name"] for f in cleared.json()["fields"]}
    reader = await client.put(
        matter.url(f"/documents/{doc['id']}/fields/{ids['Note']}"),
        json={"value": "x"},
        headers=matter.reader.headers,
    )
    assert reader.status_code == 403


async def test_a_number_no_reader_keeps_is_refused_and_the_value_stays(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """NaN and Infinity (which Python's JSON reader takes), a float past the double range and
    an integer past 2**53 used to answer 200 and leave null in place of the value."""
    made = await client.post(
        matter.url("/fields"),
        json={"name": "Pages", "type": "number"},
        headers=matter.admin.headers,
    )
    doc = (await upload(client, matter)).json()
    url = matter.url(f"/documents/{doc['id']}/fields/{made.json()['id']}")
    writer = {**matter.writer.headers, "Content-Type": "application/json"}
    edge = 2**53 - 1
    assert (await client.put(url, json={"value": edge}, headers=writer)).status_code == 200
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e400", str(2**53).encode(), b"9" * 400):
        put = await client.put(url, content=b'{"value": ' + raw + b"}", headers=writer)
        assert put.status_code == 400, (raw[:20], put.text)
        assert "Pages" in put.json()["detail"]
    shown = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert [f["value"] for f in shown.json()["fields"]] == [edge]
    metadata = json.dumps({"fields": {"Pages": "@"}}).replace('"@"', "NaN")
    refused = await client.post(
        matter.url("/documents"),
        files={"file": ("b.txt", b"b"), "metadata": (None, metadata, "application/json")},
        headers=matter.writer.headers,
    )
    assert refused.status_code == 400, refused.text
    listed = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    assert [d["id"] for d in listed.json()] == [doc["id"]]


async def test_field_definitions(client: httpx.AsyncClient, matter: Matter) -> None:
    writer = await client.post(
        matter.url("/fields"), json={"name": "X", "type": "text"}, headers=matter.writer.headers
    )
    assert writer.status_code == 403
    bad_type = await client.post(
        matter.url("/fields"), json={"name": "X", "type": "colour"}, headers=matter.admin.headers
    )
    assert bad_type.status_code == 400 and "colour" in bad_type.json()["detail"]
    no_choices = await client.post(
        matter.url("/fields"), json={"name": "X", "type": "choice"}, headers=matter.admin.headers
    )
    assert no_choices.status_code == 400
    ok = await client.post(
        matter.url("/fields"),
        json={"name": "X", "type": "text", "required": True},
        headers=matter.admin.headers,
    )
    assert ok.status_code == 201
    dup = await client.post(
        matter.url("/fields"), json={"name": "X", "type": "text"}, headers=matter.admin.headers
    )
    assert dup.status_code == 409
    missing = await upload(client, matter)
    assert missing.status_code == 400 and "Required field" in missing.json()["detail"]


async def test_after_date_sync_and_pagination(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    ids = [
        (await upload(client, matter, f"doc {i}".encode(), f"{i}.pdf")).json()["id"]
        for i in range(5)
    ]
    pages, seen = 0, []
    url: str | None = matter.url("/documents?limit=2")
    while url:
        page = await client.get(url, headers=matter.reader.headers)
        seen += [d["id"] for d in page.json()]
        link = page.headers.get("link")
        url = re.match(r"<([^>]+)>", link).group(1) if link else None  # type: ignore[union-attr]
        pages += 1
    assert seen == ids and pages == 3

    # Each document changed at a distinct instant long ago; the edit below is later.
    await _set_updated_at(db, {int(d): OLD + timedelta(milliseconds=i) for i, d in enumerate(ids)})
    everything = (await client.get(matter.url("/documents"), headers=matter.reader.headers)).json()
    last_seen = everything[-1]["updatedAt"]
    touched = await client.patch(
        matter.url(f"/documents/{ids[1]}"), json={"title": "edited"}, headers=matter.writer.headers
    )
    since = await client.get(
        matter.url("/documents"), params={"afterDate": last_seen}, headers=matter.reader.headers
    )
    returned = [d["id"] for d in since.json()]
    assert ids[1] in returned and touched.json()["updatedAt"] > last_seen
    assert set(returned) <= {ids[4], ids[1]}
    by_day = await client.get(
        matter.url("/documents"), params={"afterDate": "2000-01-01"}, headers=matter.reader.headers
    )
    assert len(by_day.json()) == 5
    future = await client.get(
        matter.url("/documents"),
        params={"afterDate": "2999-01-01T00:00:00Z"},
        headers=matter.reader.headers,
    )
    assert future.json() == []


async def test_bad_after_date_is_400_with_seed_message(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    past_9999 = "9999-12-31T23:59:59-00:01"  # in the year 10000 once in UTC
    for raw in ("yesterday", "2026-13-45", "2026-01-01T00:00:00", "1700000000"):
        bad = await client.get(
            matter.url("/documents"), params={"afterDate": raw}, headers=matter.reader.headers
        )
        assert bad.status_code == 400, raw
        assert bad.json()["detail"] == "Invalid timestamp format. Use format YYYY-MM-DDTHH:MM:SSZ"
    # Well-formed, but out of range once in UTC: said so, not "invalid format".
    for raw in (past_9999, "0001-01-01T00:00:00+01:00"):
        bad = await client.get(
            matter.url("/documents"), params={"afterDate": raw}, headers=matter.reader.headers
        )
        assert bad.status_code == 400, raw
        assert "outside the years 1 to 9999 once converted to UTC" in bad.json()["detail"], raw


async def test_bad_metadata_is_400_and_stores_nothing(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    for metadata in ("{not json", json.dumps({"folderId": "abc"}), json.dumps({"colour": 1})):
        bad = await client.post(
            matter.url("/documents"),
            files={
                "file": ("a.txt", b"abc", "text/plain"),
                "metadata": (None, metadata, "application/json"),
            },
            headers=matter.writer.headers,
        )
        assert bad.status_code == 400, metadata
        assert "metadata" in bad.json()["detail"]
    no_file = await client.post(
        matter.url("/documents"),
        files={"metadata": (None, "{}", "application/json")},
        headers=matter.writer.headers,
    )
    assert no_file.status_code == 400
    assert (await client.get(matter.url("/documents"), headers=matter.reader.headers)).json() == []


async def test_a_file_name_in_latin_1_is_400_and_stores_nothing(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """A part's headers in another encoding than UTF-8 (an old client sending its file name
    in Latin-1) are refused with a reason, not a server error."""
    raw = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="Schriftsatz f\xfcr'
        b' Kl\xe4ger.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--XX--\r\n'
    )
    refused = await client.post(
        matter.url("/documents"),
        content=raw,
        headers={**matter.writer.headers, "Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert refused.status_code == 400, refused.text
    assert "headers are not UTF-8" in refused.json()["detail"]
    assert (await client.get(matter.url("/documents"), headers=matter.reader.headers)).json() == []
    utf8 = raw.replace("f\xfcr Kl\xe4ger".encode("latin-1"), "für Kläger".encode())
    filed = await client.post(
        matter.url("/documents"),
        content=utf8,
        headers={**matter.writer.headers, "Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["title"] == "Schriftsatz für Kläger.pdf"


async def test_a_file_name_escaped_from_bytes_that_are_not_utf_8_is_400_and_stores_nothing(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    def body(extended: str) -> bytes:
        return (
            b'--XX\r\nContent-Disposition: form-data; name="file"; '
            + f"filename*=UTF-8''{extended}".encode()
            + b"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--XX--\r\n"
        )

    multipart = {**matter.writer.headers, "Content-Type": "multipart/form-data; boundary=XX"}
    for escaped in ("%FF%FE.pdf", "Kl%E4ger.pdf", "%ZZ%E2.pdf"):
        refused = await client.post(
            matter.url("/documents"), content=body(escaped), headers=multipart
        )
        assert refused.status_code == 400, refused.text
        assert "filename* is not UTF-8" in refused.json()["detail"]
    assert (await client.get(matter.url("/documents"), headers=matter.reader.headers)).json() == []
    # Another charset, an unknown one, none, or no charset'' at all: the parser decoded
    # what it could and stored U+FFFD for the rest (a 201 with a name never sent).
    for odd in (
        "us-ascii''Kl%E4ger.pdf",
        "x-unknown''Kl%E4ger.pdf",
        "''Kl%E4ger.pdf",
        "Kl%E4ger.pdf",
    ):
        raw = body("").replace(b"UTF-8''", odd.encode())
        refused = await client.post(matter.url("/documents"), content=raw, headers=multipart)
        assert refused.status_code == 400, refused.text
        assert "filename* holds bytes its charset cannot decode" in refused.json()["detail"]
    assert (await client.get(matter.url("/documents"), headers=matter.reader.headers)).json() == []
    filed = await client.post(
        matter.url("/documents"), content=body("Kl%C3%A4ger.pdf"), headers=multipart
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["title"] == "Kläger.pdf"
    # Decodable in its own charset, or a U+FFFD the client sent itself: kept as sent.
    for kept, title in (
        ("ISO-8859-1''Kl%E4ger.pdf", "Kläger.pdf"),
        ("UTF-8''%EF%BF%BD.pdf", "\ufffd.pdf"),
    ):
        raw = body("").replace(b"UTF-8''", kept.encode())
        filed = await client.post(matter.url("/documents"), content=raw, headers=multipart)
        assert filed.status_code == 201, filed.text
        assert filed.json()["title"] == title


@pytest.mark.parametrize(
    ("disposition", "kept"),
    [
        # What a browser (WHATWG HTML's multipart/form-data encoding) and curl send.
        ('filename="Smith %22Final%22 draft.txt"', 'Smith "Final" draft.txt'),
        ('filename="two%0D%0Alines.txt"', "twolines.txt"),
        ('filename="C:\\Users\\me\\%22A%22.txt"', '"A".txt'),
        # A quoted-pair (curl before 7.81): the backslash escapes the quote, no path.
        ('filename="Smith \\"Final\\" draft.txt"', 'Smith "Final" draft.txt'),
        # Only those three escapes: any other % is the name's own.
        ('filename="100%25 %2522 %0d%0a.txt"', "100%25 %2522 %0d%0a.txt"),
        # A filename* is decoded once, by its own rule.
        ("filename*=UTF-8''a%2522b.txt", "a%22b.txt"),
    ],
)
async def test_a_multipart_file_name_decodes_the_escapes_browsers_send(
    client: httpx.AsyncClient, matter: Matter, disposition: str, kept: str
) -> None:
    raw = (
        f'--XX\r\nContent-Disposition: form-data; name="file"; {disposition}\r\n'
        "Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"
    ).encode()
    filed = await client.post(
        matter.url("/documents"),
        content=raw,
        headers={**matter.writer.headers, "Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["title"] == kept
    assert filed.json()["currentVersion"]["fileName"] == kept


async def test_documents_of_another_project_are_invisible(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    doc = (await upload(client, matter)).json()
    refused = await client.post(
        "/api/v1/projects", json={"name": "Other"}, headers=matter.admin.headers
    )
    assert refused.status_code == 403  # only operators create projects
    # A second project where the matter's admin is admin too, holding a document of its own.
    other = await client.post("/api/v1/projects", json={"name": "Other"}, headers=operator.headers)
    other_id = other.json()["id"]
    granted = await client.put(
        f"/api/v1/projects/{other_id}/users/{matter.admin.email}",
        json={"role": "Project Admin"},
        headers=operator.headers,
    )
    assert granted.status_code in (200, 204), granted.text
    theirs = await client.post(
        f"/api/v1/projects/{other_id}/documents?fileName=other.pdf",
        content=b"other",
        headers=matter.admin.headers,
    )
    assert theirs.status_code == 201, theirs.text
    # Each document is visible in its own project only, to a caller who can see both.
    for project_id, document_id in ((other_id, doc["id"]), (matter.id, theirs.json()["id"])):
        cross = await client.get(
            f"/api/v1/projects/{project_id}/documents/{document_id}",
            headers=matter.admin.headers,
        )
        assert cross.status_code == 404, cross.text
    listed = await client.get(
        f"/api/v1/projects/{other_id}/documents", headers=matter.admin.headers
    )
    assert [d["id"] for d in listed.json()] == [theirs.json()["id"]]
    outsider = await client.get(
        matter.url(f"/documents/{doc['id']}"), headers=matter.outsider.headers
    )
    assert outsider.status_code == 404


async def test_deleting_as_read_only_keeps_the_seeds_sentence_and_names_the_capability(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = (await upload(client, matter, b"kept")).json()
    refused = await client.delete(
        matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "You do not have permission to delete this file. "
        f"Your role on project {matter.id} (Read Only) does not include documents.delete."
    )
    kept = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert kept.status_code == 200 and kept.json()["currentVersion"]["size"] == 4


async def test_a_key_that_is_one_fields_id_and_anothers_name_is_refused(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Field values go by id or by name; a field named as another's id made "12" mean
    the named one, silently (the value went to a field the sender never meant)."""
    custodian = await client.post(
        matter.url("/fields"),
        json={"name": "Custodian", "type": "text"},
        headers=matter.admin.headers,
    )
    custodian_id = custodian.json()["id"]
    lookalike = await client.post(
        matter.url("/fields"),
        json={"name": custodian_id, "type": "text"},
        headers=matter.admin.headers,
    )
    assert lookalike.status_code == 201, lookalike.text
    before = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    refused = await upload_with_metadata(
        client,
        matter,
        ("a.txt", b"a", "text/plain"),
        {"fields": {custodian_id: "J. Smith"}},
    )
    assert refused.status_code == 400, refused.text
    assert "Custodian" in refused.json()["detail"] and "send the id" in refused.json()["detail"]
    after = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    assert after.json() == before.json()
    # By name it is unambiguous: "Custodian" is only a name.
    filed = await upload_with_metadata(
        client, matter, ("b.txt", b"b", "text/plain"), {"fields": {"Custodian": "J. Smith"}}
    )
    assert filed.status_code == 201, filed.text
    assert {f["name"]: f["value"] for f in filed.json()["fields"]} == {"Custodian": "J. Smith"}


async def test_a_field_is_found_by_the_name_it_was_made_with(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Field names are stored trimmed and composed (NFC): a value keyed by the decomposed
    name the field was made with was refused, "no field 'Café'", beside field 'Café'."""
    made = await client.post(
        matter.url("/fields"),
        json={"name": "Cafe\u0301", "type": "text"},
        headers=matter.admin.headers,
    )
    assert made.status_code == 201 and made.json()["name"] == "Caf\u00e9", made.text
    filed = await upload_with_metadata(
        client, matter, ("a.txt", b"a", "text/plain"), {"fields": {"Cafe\u0301 ": "kept"}}
    )
    assert filed.status_code == 201, filed.text
    assert {f["name"]: f["value"] for f in filed.json()["fields"]} == {"Caf\u00e9": "kept"}


async def test_a_field_given_twice_is_refused_not_half_stored(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """By its id and its name, or by two spellings of its name: the last value was stored
    and the other dropped, answered 201."""
    made = await client.post(
        matter.url("/fields"),
        json={"name": "Custodian", "type": "text"},
        headers=matter.admin.headers,
    )
    field_id = made.json()["id"]
    before = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    for twice in (
        {field_id: "J. Smith", "Custodian": "A. Jones"},
        {"Custodian": "J. Smith", " Custodian ": "A. Jones"},
    ):
        refused = await upload_with_metadata(
            client, matter, ("a.txt", b"a", "text/plain"), {"fields": twice}
        )
        assert refused.status_code == 400, refused.text
        assert "Field 'Custodian' is given twice" in refused.json()["detail"]
    after = await client.get(matter.url("/documents"), headers=matter.reader.headers)
    assert after.json() == before.json()


async def test_a_patch_that_changes_nothing_reports_nothing_and_keeps_updated_at(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    made = await upload(client, matter)
    url = matter.url(f"/documents/{made.json()['id']}")
    h = matter.writer.headers
    first = await client.patch(url, json={"title": "Claim", "description": "As filed"}, headers=h)
    assert first.status_code == 200, first.text
    start = await traces.mark(db)

    for body in ({}, {"title": "Claim"}, {"title": " Claim ", "description": "As filed"}):
        same = await client.patch(url, json=body, headers=h)
        assert same.status_code == 200, same.text
        assert same.json() == first.json(), body  # updatedAt included
    assert (await traces.since(db, start)).entries == []

    # Only what really changed is listed.
    changed = await client.patch(
        url, json={"title": "Amended claim", "description": "As filed"}, headers=h
    )
    assert changed.status_code == 200
    assert changed.json()["updatedAt"] > first.json()["updatedAt"]
    [entry] = (await traces.since(db, start)).entries
    assert (entry.action, entry.details) == ("document.updated", {"changed": ["title"]})


async def test_a_project_patch_that_changes_nothing_reports_nothing(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    h = operator.headers
    before = (await client.get(matter.url(), headers=h)).json()
    start = await traces.mark(db)

    for body in ({}, {"name": before["name"], "settings": {"downloadViaApi": True}}):
        same = await client.patch(matter.url(), json=body, headers=h)
        assert same.status_code == 200, same.text
        assert same.json() == before, body
    assert (await traces.since(db, start)).entries == []

    changed = await client.patch(
        matter.url(),
        json={"name": "Smith v Jones (appeal)", "settings": {"downloadViaApi": True}},
        headers=h,
    )
    assert changed.status_code == 200
    [entry] = (await traces.since(db, start)).entries
    assert (entry.action, entry.details) == ("project.updated", {"changed": ["name"]})


async def test_setting_a_field_to_the_value_it_has_reports_nothing(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    field = await client.post(
        matter.url("/fields"), json={"name": "Custodian", "type": "text"}, headers=operator.headers
    )
    made = (await upload(client, matter)).json()
    url = matter.url(f"/documents/{made['id']}/fields/{field.json()['id']}")
    h = matter.writer.headers
    first = await client.put(url, json={"value": "J. Smith"}, headers=h)
    assert first.status_code == 200, first.text
    start = await traces.mark(db)

    same = await client.put(url, json={"value": "J. Smith"}, headers=h)

    assert same.status_code == 200, same.text
    assert same.json() == first.json()  # updatedAt included
    assert (await traces.since(db, start)).entries == []
    changed = await client.put(url, json={"value": "A. Jones"}, headers=h)
    assert changed.json()["updatedAt"] > first.json()["updatedAt"]
    [entry] = (await traces.since(db, start)).entries
    assert entry.action == "field.set"
