"""Attachments: a document's versions, added through v3 (multipart `metadata` + `file`),
listed, read, deleted and downloaded."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from tests.api.v3.conftest import Matter, add_attachment_v3, basic, make_project, upload_v1
from tests.factories import Actor

ERRORS = "urn:openproject-org:api:v3:errors:"


async def _doc(client: httpx.AsyncClient, matter: Matter) -> int:
    return int((await upload_v1(client, matter.id, matter.writer))["id"])


async def _count(client: httpx.AsyncClient, doc_id: int, actor: Actor) -> int:
    listed = await client.get(f"/api/v3/documents/{doc_id}/attachments", headers=basic(actor))
    assert listed.status_code == 200, listed.text
    total: int = listed.json()["total"]
    return total


async def test_add_attachment_returns_201_with_the_attachment(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc_id = await _doc(client, matter)
    content = b"minutes of the meeting"
    response = await add_attachment_v3(
        client,
        doc_id,
        matter.writer,
        content=content,
        metadata={
            "fileName": "minutes.md",
            "description": {"raw": "Agreed <b>terms</b>"},
            "contentType": "text/markdown",
            "fileSize": len(content),
        },
        file_name="ignored-name.txt",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["_type"] == "Attachment"
    assert (body["fileName"], body["title"], body["fileSize"]) == ("minutes.md", "minutes.md", 22)
    assert body["contentType"] == "text/markdown"
    assert body["digest"] == {"algorithm": "sha256", "hash": hashlib.sha256(content).hexdigest()}
    assert body["description"] == {
        "format": "plain",
        "raw": "Agreed <b>terms</b>",
        "html": "<p>Agreed &lt;b&gt;terms&lt;/b&gt;</p>",
    }
    links = body["_links"]
    assert links["self"] == {"href": f"/api/v3/attachments/{body['id']}", "title": "minutes.md"}
    assert links["container"]["href"] == f"/api/v3/documents/{doc_id}"
    assert links["author"] == {
        "href": f"/api/v3/users/{matter.writer.user_id}",
        "title": "Read Write Person",
    }
    assert links["downloadLocation"] == {"href": f"/api/v3/attachments/{body['id']}/content"}
    assert "delete" not in links  # a Read Write member may not delete
    assert await _count(client, doc_id, matter.reader) == 2


async def test_part_filename_and_type_are_the_fallbacks(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc_id = await _doc(client, matter)
    response = await add_attachment_v3(
        client, doc_id, matter.writer, metadata={}, file_name="scan.png", content_type="image/png"
    )
    assert response.status_code == 201, response.text
    assert (response.json()["fileName"], response.json()["contentType"]) == (
        "scan.png",
        "image/png",
    )


async def test_adding_needs_manage_documents(client: httpx.AsyncClient, matter: Matter) -> None:
    doc_id = await _doc(client, matter)
    forbidden = await add_attachment_v3(client, doc_id, matter.reader)
    assert forbidden.status_code == 403
    assert forbidden.json()["errorIdentifier"] == ERRORS + "MissingPermission"
    hidden = await add_attachment_v3(client, doc_id, matter.outsider)
    assert hidden.status_code == 404
    assert await _count(client, doc_id, matter.reader) == 1


async def _post_raw(
    client: httpx.AsyncClient,
    doc_id: int,
    actor: Actor,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return await client.post(
        f"/api/v3/documents/{doc_id}/attachments",
        headers={**basic(actor), **(headers or {})},
        **kwargs,
    )


@pytest.mark.parametrize(
    ("files", "status", "identifier", "attribute"),
    [
        ({"file": ("a.txt", b"x", "text/plain")}, 400, "InvalidRequestBody", None),
        (
            {"metadata": (None, b"{not json", "application/json"), "file": ("a.txt", b"x")},
            400,
            "InvalidRequestBody",
            None,
        ),
        (
            {"metadata": (None, b"[1]", "application/json"), "file": ("a.txt", b"x")},
            400,
            "InvalidRequestBody",
            None,
        ),
        (
            {"metadata": (None, b'{"fileName": "a.txt"}', "application/json")},
            400,
            "InvalidRequestBody",
            None,
        ),
        (
            {"metadata": (None, b"{}", "application/json"), "file": (None, b"x")},
            422,
            "PropertyConstraintViolation",
            "fileName",
        ),
        # Names that leave nothing once path segments and control characters are removed.
        *(
            (
                {"metadata": (None, json.dumps({"fileName": name}).encode()), "file": (None, b"x")},
                422,
                "PropertyConstraintViolation",
                "fileName",
            )
            for name in ("..", "/", "\x01\x02")
        ),
    ],
)
async def test_malformed_uploads_are_refused(
    client: httpx.AsyncClient,
    matter: Matter,
    files: dict[str, Any],
    status: int,
    identifier: str,
    attribute: str | None,
) -> None:
    doc_id = await _doc(client, matter)
    response = await _post_raw(client, doc_id, matter.writer, files=files)
    assert response.status_code == status, response.text
    assert response.json()["errorIdentifier"] == ERRORS + identifier
    if attribute:
        assert response.json()["_embedded"]["details"]["attribute"] == attribute
    assert await _count(client, doc_id, matter.reader) == 1


async def test_upload_must_be_multipart(client: httpx.AsyncClient, matter: Matter) -> None:
    doc_id = await _doc(client, matter)
    response = await _post_raw(
        client, doc_id, matter.writer, content=b"raw", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["errorIdentifier"] == ERRORS + "TypeNotSupported"
    assert await _count(client, doc_id, matter.reader) == 1


async def test_read_attachment_and_hidden_ones_are_404(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    version_id = int(doc["currentVersion"]["id"])
    ok = await client.get(f"/api/v3/attachments/{version_id}", headers=basic(matter.reader))
    assert ok.status_code == 200
    assert ok.json()["_embedded"]["container"]["id"] == int(doc["id"])
    for actor, path in [
        (matter.outsider, f"/api/v3/attachments/{version_id}"),
        (matter.admin, "/api/v3/attachments/999999"),
        (matter.outsider, f"/api/v3/attachments/{version_id}/content"),
    ]:
        response = await client.get(path, headers=basic(actor))
        assert response.status_code == 404, path
        assert response.json()["message"] == "The specified attachment does not exist."


async def test_delete_link_and_delete_need_documents_delete(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc_id = await _doc(client, matter)
    added = (await add_attachment_v3(client, doc_id, matter.writer)).json()
    as_admin = await client.get(f"/api/v3/attachments/{added['id']}", headers=basic(matter.admin))
    assert as_admin.json()["_links"]["delete"] == {
        "href": f"/api/v3/attachments/{added['id']}",
        "method": "delete",
    }
    refused = await client.delete(
        f"/api/v3/attachments/{added['id']}", headers=basic(matter.writer)
    )
    assert refused.status_code == 403
    assert await _count(client, doc_id, matter.reader) == 2
    # openproject-cli sends DELETE with Content-Type: application/json and no body.
    deleted = await client.delete(
        f"/api/v3/attachments/{added['id']}",
        headers={**basic(matter.admin), "Content-Type": "application/json"},
    )
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert await _count(client, doc_id, matter.reader) == 1
    gone = await client.get(f"/api/v3/attachments/{added['id']}", headers=basic(matter.admin))
    assert gone.status_code == 404


async def test_deleting_the_last_attachment_is_409(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    version_id = doc["currentVersion"]["id"]
    response = await client.delete(f"/api/v3/attachments/{version_id}", headers=basic(matter.admin))
    assert response.status_code == 409
    assert response.json()["errorIdentifier"] == ERRORS + "UpdateConflict"
    assert await _count(client, int(doc["id"]), matter.reader) == 1


async def test_content_download_with_etag_and_range(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer, content=b"0123456789")
    url = f"/api/v3/attachments/{doc['currentVersion']['id']}/content"
    whole = await client.get(url, headers=basic(matter.reader))
    assert (whole.status_code, whole.content) == (200, b"0123456789")
    assert whole.headers["content-disposition"] == 'attachment; filename="exhibit.pdf"'
    etag = whole.headers["etag"]
    assert etag == f'"{hashlib.sha256(b"0123456789").hexdigest()}"'
    part = await client.get(url, headers={**basic(matter.reader), "Range": "bytes=2-4"})
    assert (part.status_code, part.content) == (206, b"234")
    cached = await client.get(url, headers={**basic(matter.reader), "If-None-Match": etag})
    assert cached.status_code == 304
    head = await client.head(url, headers=basic(matter.reader))
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "10", b"")


async def test_content_needs_download_via_api(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    locked = await make_project(client, operator, "Sealed", download=False)
    doc = await upload_v1(client, locked, operator)
    response = await client.get(
        f"/api/v3/attachments/{doc['currentVersion']['id']}/content", headers=basic(operator)
    )
    assert response.status_code == 403
    assert response.json()["errorIdentifier"] == ERRORS + "MissingPermission"
    # The metadata stays readable.
    listed = await client.get(f"/api/v3/documents/{doc['id']}/attachments", headers=basic(operator))
    assert listed.status_code == 200


async def test_attachment_list_is_unpaginated_and_ignores_paging_params(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc_id = await _doc(client, matter)
    for i in range(2):
        meta = {"fileName": f"v{i}.txt"}
        assert (
            await add_attachment_v3(client, doc_id, matter.writer, metadata=meta)
        ).status_code == 201
    listed = await client.get(
        f"/api/v3/documents/{doc_id}/attachments?pageSize=1&offset=2", headers=basic(matter.reader)
    )
    body = listed.json()
    assert (body["total"], body["count"]) == (3, 3)
    assert [e["fileName"] for e in body["_embedded"]["elements"]] == [
        "exhibit.pdf",
        "v0.txt",
        "v1.txt",
    ]
    assert set(body) == {"_type", "total", "count", "_embedded", "_links"}
    assert json.dumps(body["_links"]) == json.dumps(
        {"self": {"href": f"/api/v3/documents/{doc_id}/attachments"}}
    )


async def test_an_attachment_embeds_its_author_showing_private_fields_to_themself_only(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """GET /attachments/{id} embeds the author; login and e-mail are the author's own or an
    operator's to see, never another member's."""
    doc_id = await _doc(client, matter)
    added = (await add_attachment_v3(client, doc_id, matter.writer)).json()
    url = f"/api/v3/attachments/{added['id']}"
    for actor, full in ((matter.writer, True), (operator, True), (matter.reader, False)):
        body = (await client.get(url, headers=basic(actor))).json()
        author = body["_embedded"]["author"]
        assert (author["_type"], author["id"], author["name"]) == (
            "User",
            matter.writer.user_id,
            "Read Write Person",
        ), actor.email
        assert body["_embedded"]["container"]["id"] == doc_id
        if full:
            assert author["email"] == matter.writer.email, actor.email
        else:
            assert not {"email", "login", "firstName", "lastName", "admin"} & set(author)


async def test_a_plain_description_keeps_its_paragraphs_and_line_breaks(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """An attachment's description is plain text: a blank line starts a paragraph and a
    single line break stays one (`<br>`), as OpenProject renders it."""
    doc_id = await _doc(client, matter)
    raw = "Signed copy\nwith annex\r\n\r\nFiled <late> & stamped"
    response = await add_attachment_v3(
        client, doc_id, matter.writer, metadata={"fileName": "signed.pdf", "description": raw}
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == {
        "format": "plain",
        "raw": raw,
        "html": "<p>Signed copy<br>with annex</p><p>Filed &lt;late&gt; &amp; stamped</p>",
    }


async def test_visibility_and_permission_come_before_the_upload_is_judged(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """A malformed upload to a document the caller cannot see is 404, and one they may not
    add to is 403, as a good upload is: the body of a refused caller is never judged (nor
    spooled), and nothing is added."""
    doc_id = await _doc(client, matter)
    bad_uploads: list[dict[str, Any]] = [
        {"file": ("a.txt", b"x", "text/plain")},
        {"metadata": (None, b'{"fileName": ".."}', "application/json"), "file": (None, b"x")},
    ]
    for files in bad_uploads:
        hidden = await _post_raw(client, doc_id, matter.outsider, files=files)
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["errorIdentifier"] == ERRORS + "NotFound"
        forbidden = await _post_raw(client, doc_id, matter.reader, files=files)
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json()["errorIdentifier"] == ERRORS + "MissingPermission"
    assert await _count(client, doc_id, matter.reader) == 1


async def test_the_multipart_media_type_is_matched_whatever_its_case(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Media types are case-insensitive (RFC 9110): `Multipart/Form-Data` is an upload."""
    doc_id = await _doc(client, matter)
    built = httpx.Request(
        "POST",
        "http://testserver/",
        files={
            "metadata": (None, b'{"fileName": "cased.txt"}', "application/json"),
            "file": ("cased.txt", b"cased", "text/plain"),
        },
    )
    boundary = built.headers["content-type"].split("boundary=", 1)[1]
    response = await _post_raw(
        client,
        doc_id,
        matter.writer,
        content=built.read(),
        headers={"Content-Type": f"Multipart/Form-Data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["fileName"] == "cased.txt"
    assert await _count(client, doc_id, matter.reader) == 2
