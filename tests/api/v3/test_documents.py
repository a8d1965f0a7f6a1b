"""The documents collection (pagination, sorting, filters, visibility), one document, and
its update."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from casefolio.db.engine import Database
from casefolio.db.models import Document
from tests.api.v3.conftest import Matter, basic, upload_v1
from tests.factories import Actor

INVALID_QUERY = "urn:openproject-org:api:v3:errors:InvalidQuery"


async def _documents(
    client: httpx.AsyncClient, actor: Actor, status: int = 200, **params: str
) -> dict[str, Any]:
    response = await client.get("/api/v3/documents", params=params, headers=basic(actor))
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def _five(client: httpx.AsyncClient, matter: Matter) -> list[int]:
    return [
        int((await upload_v1(client, matter.id, matter.writer, f"doc {i}".encode()))["id"])
        for i in range(5)
    ]


def _ids(collection: dict[str, Any]) -> list[int]:
    return [element["id"] for element in collection["_embedded"]["elements"]]


async def test_pages_are_numbered_from_one_with_previous_and_next_links(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    ids = await _five(client, matter)
    first = await _documents(client, matter.reader, offset="1", pageSize="2")
    assert (first["total"], first["count"], first["pageSize"], first["offset"]) == (5, 2, 2, 1)
    assert _ids(first) == ids[:2]
    links = first["_links"]
    assert links["self"] == {"href": "/api/v3/documents?offset=1&pageSize=2"}
    assert links["jumpTo"] == {
        "href": "/api/v3/documents?offset=%7Boffset%7D&pageSize=2",
        "templated": True,
    }
    assert links["changeSize"] == {
        "href": "/api/v3/documents?offset=1&pageSize=%7Bsize%7D",
        "templated": True,
    }
    assert links["nextByOffset"] == {"href": "/api/v3/documents?offset=2&pageSize=2"}
    assert "previousByOffset" not in links

    last = await _documents(client, matter.reader, offset="3", pageSize="2")
    assert (last["count"], _ids(last)) == (1, ids[4:])
    assert last["_links"]["previousByOffset"] == {"href": "/api/v3/documents?offset=2&pageSize=2"}
    assert "nextByOffset" not in last["_links"]

    # Past the end: an empty page (clients stop on it), not an error.
    beyond = await _documents(client, matter.reader, offset="9", pageSize="2")
    assert (beyond["total"], beyond["count"], _ids(beyond)) == (5, 0, [])


async def test_page_size_defaults_limits_and_zero(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    await _five(client, matter)
    default = await _documents(client, matter.reader)
    assert (default["pageSize"], default["offset"], default["count"]) == (30, 1, 5)
    assert (await _documents(client, matter.reader, pageSize="-1"))["pageSize"] == 1000
    assert (await _documents(client, matter.reader, pageSize="5000"))["pageSize"] == 1000
    assert (await _documents(client, matter.reader, offset="0"))["offset"] == 1
    zero = await _documents(client, matter.reader, pageSize="0")
    assert (zero["total"], zero["count"], zero["_embedded"]["elements"]) == (5, 0, [])
    assert "nextByOffset" not in zero["_links"]


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "abc"},
        {"pageSize": "ten"},
        {"pageSize": "-2"},
        {"sortBy": "not json"},
        {"sortBy": '[["title", "asc"]]'},
        {"sortBy": '[["id", "sideways"]]'},
        {"sortBy": '{"id": "asc"}'},
        {"filters": "not json"},
        {"filters": '[{"project_id": {"operator": "~", "values": ["1"]}}]'},
        {"filters": '[{"project_id": {"operator": "=", "values": [" "]}}]'},
        {"filters": '{"project_id": {"operator": "=", "values": ["1"]}}'},
        # Two filters in one object: OpenProject's form is one name per object.
        {
            "filters": '[{"project_id": {"operator": "=", "values": ["1"]},'
            ' "title": {"operator": "~", "values": ["a"]}}]'
        },
    ],
)
async def test_invalid_queries_are_400_invalid_query(
    client: httpx.AsyncClient, matter: Matter, params: dict[str, str]
) -> None:
    body = await _documents(client, matter.reader, status=400, **params)
    assert body["errorIdentifier"] == INVALID_QUERY
    assert isinstance(body["message"], str) and body["message"]


async def test_unknown_filter_is_worded_as_openproject_does(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    filters = json.dumps([{"nonsense": {"operator": "=", "values": ["1"]}}])
    body = await _documents(client, matter.reader, status=400, filters=filters)
    assert body["message"] == "Filters Invalid filter does not exist."


async def test_sort_by_id_and_created_at(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    ids = await _five(client, matter)
    down = await _documents(client, matter.reader, sortBy='[["id", "desc"]]')
    assert _ids(down) == ids[::-1]
    # Distinct instants, out of id order, and one shared by two documents.
    base = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = {ids[0]: 30, ids[1]: 10, ids[2]: 10, ids[3]: 40, ids[4]: 0}
    async with db.writer() as session:
        for document_id, offset in seconds.items():
            await session.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(created_at=base + timedelta(seconds=offset))
            )
        await session.commit()
    up = await _documents(client, matter.reader, sortBy='[["created_at", "asc"]]')
    assert _ids(up) == [ids[4], ids[1], ids[2], ids[0], ids[3]]  # equal instants: id order
    newest_first = await _documents(client, matter.reader, sortBy='[["created_at", "desc"]]')
    assert _ids(newest_first) == [ids[3], ids[0], ids[1], ids[2], ids[4]]


async def test_sort_by_updated_at_as_openproject_allows(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    # OpenProject's documents order takes id|created_at|updated_at (pyopenproject's
    # find_all(sort_by=...) sends updated_at); equal instants fall back to id, ascending.
    ids = await _five(client, matter)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = {ids[0]: 20, ids[1]: 50, ids[2]: 5, ids[3]: 20, ids[4]: 35}
    async with db.writer() as session:
        for document_id, offset in seconds.items():
            await session.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(updated_at=base + timedelta(seconds=offset))
            )
        await session.commit()
    for name in ("updated_at", "updatedAt"):
        up = await _documents(client, matter.reader, sortBy=json.dumps([[name, "asc"]]))
        assert _ids(up) == [ids[2], ids[0], ids[3], ids[4], ids[1]]
        down = await _documents(client, matter.reader, sortBy=json.dumps([[name, "desc"]]))
        assert _ids(down) == [ids[1], ids[4], ids[0], ids[3], ids[2]]
    second_page = await _documents(
        client, matter.reader, sortBy='[["updated_at", "desc"]]', offset="2", pageSize="2"
    )
    assert _ids(second_page) == [ids[0], ids[3]]


async def test_filters_by_project_and_title(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    ours = int(
        (await upload_v1(client, matter.id, matter.writer, name="Witness statement.pdf"))["id"]
    )
    theirs = int((await upload_v1(client, matter.other_project_id, matter.outsider))["id"])

    def spec(name: str, op: str, *values: str) -> str:
        return json.dumps([{name: {"operator": op, "values": list(values)}}])

    assert _ids(await _documents(client, operator)) == [ours, theirs]
    by_project = await _documents(client, operator, filters=spec("project_id", "=", str(matter.id)))
    assert _ids(by_project) == [ours]
    assert _ids(
        await _documents(client, operator, filters=spec("project", "!", str(matter.id)))
    ) == [theirs]
    assert _ids(await _documents(client, operator, filters=spec("title", "~", "WITNESS"))) == [ours]
    accented = int(
        (await upload_v1(client, matter.id, matter.writer, name="CAFÉ Müller.pdf"))["id"]
    )
    for op, value in (("~", "café"), ("~", "MÜLLER"), ("=", "café müller.pdf")):
        found = await _documents(client, operator, filters=spec("title", op, value))
        assert _ids(found) == [accented], (op, value)
    assert accented not in _ids(
        await _documents(client, operator, filters=spec("title", "!~", "café"))
    )
    both = json.dumps(
        [
            {"project_id": {"operator": "=", "values": [str(matter.other_project_id)]}},
            {"title": {"operator": "~", "values": ["witness"]}},
        ]
    )
    assert (await _documents(client, operator, filters=both))["total"] == 0
    assert (await _documents(client, operator, filters="[]"))["total"] == 3
    # Letters Python lowers otherwise than PostgreSQL (İ, a final Σ): a title is found by
    # itself on both databases (PostgreSQL found none of these).
    greek = await upload_v1(client, matter.id, matter.writer, name="ΟΔΟΣ İstanbul.pdf")
    for op, value in (
        ("=", "ΟΔΟΣ İstanbul.pdf"),
        ("~", "ΟΔΟΣ"),
        ("~", "İSTANBUL"),
        ("**", "ΟΔΟΣ İstanbul"),
    ):
        name = "search" if op == "**" else "title"
        found = await _documents(client, operator, filters=spec(name, op, value))
        assert _ids(found) == [int(greek["id"])], (op, value)
    assert int(greek["id"]) not in _ids(
        await _documents(client, operator, filters=spec("title", "!~", "ΟΔΟΣ"))
    )


async def test_outsider_never_sees_another_projects_documents(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    hidden = await upload_v1(client, matter.id, matter.writer)
    own = int((await upload_v1(client, matter.other_project_id, matter.outsider))["id"])
    listed = await _documents(client, matter.outsider)
    assert (listed["total"], _ids(listed)) == (1, [own])
    filtered = await _documents(
        client,
        matter.outsider,
        filters=json.dumps([{"project_id": {"operator": "=", "values": [str(matter.id)]}}]),
    )
    assert (filtered["total"], _ids(filtered)) == (0, [])
    for path in (
        f"/api/v3/documents/{hidden['id']}",
        f"/api/v3/documents/{hidden['id']}/attachments",
    ):
        response = await client.get(path, headers=basic(matter.outsider))
        assert response.status_code == 404, path
        assert response.json()["message"] == "The requested resource could not be found."
    project = await client.get(f"/api/v3/projects/{matter.id}", headers=basic(matter.outsider))
    assert project.status_code == 404
    projects = await client.get("/api/v3/projects", headers=basic(matter.outsider))
    assert [p["id"] for p in projects.json()["_embedded"]["elements"]] == [matter.other_project_id]


async def test_missing_document_is_404(client: httpx.AsyncClient, matter: Matter) -> None:
    response = await client.get("/api/v3/documents/999999", headers=basic(matter.admin))
    assert response.status_code == 404
    assert response.json()["errorIdentifier"] == "urn:openproject-org:api:v3:errors:NotFound"


@pytest.mark.parametrize("ref", ["abc", "1.5", "-1", "1e3"])
async def test_a_document_id_that_is_not_a_number_is_404_as_in_openproject(
    client: httpx.AsyncClient, matter: Matter, ref: str
) -> None:
    # OpenProject's `route_param :id, type: Integer` does not match (Grape since
    # opf/openproject#15920), so its catch-all route answers its plain NotFound.
    response = await client.get(f"/api/v3/documents/{ref}", headers=basic(matter.admin))
    assert response.status_code == 404
    assert response.json() == {
        "_type": "Error",
        "errorIdentifier": "urn:openproject-org:api:v3:errors:NotFound",
        "message": "The requested resource could not be found.",
    }


async def test_document_embeds_project_and_attachments(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer, metadata={"title": "Exhibit A"})
    body = (await client.get(f"/api/v3/documents/{doc['id']}", headers=basic(matter.reader))).json()
    assert body["_type"] == "Document" and body["id"] == int(doc["id"])
    assert body["title"] == "Exhibit A"
    assert body["_links"]["self"] == {
        "href": f"/api/v3/documents/{doc['id']}",
        "title": "Exhibit A",
    }
    assert body["_links"]["project"] == {
        "href": f"/api/v3/projects/{matter.id}",
        "title": "Smith v Jones",
    }
    assert body["_embedded"]["project"]["id"] == matter.id
    attachments = body["_embedded"]["attachments"]
    assert (attachments["total"], attachments["count"]) == (1, 1)
    assert attachments["_embedded"]["elements"][0]["fileName"] == "exhibit.pdf"
    # A reader may not manage documents: no update or addAttachment link.
    assert "update" not in body["_links"] and "addAttachment" not in body["_links"]
    listed = await _documents(client, matter.reader)
    assert "_embedded" not in listed["_embedded"]["elements"][0]


async def test_writer_sees_update_and_add_attachment_links(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    body = (await client.get(f"/api/v3/documents/{doc['id']}", headers=basic(matter.writer))).json()
    assert body["_links"]["update"] == {"href": f"/api/v3/documents/{doc['id']}", "method": "patch"}
    assert body["_links"]["addAttachment"] == {
        "href": f"/api/v3/documents/{doc['id']}/attachments",
        "method": "post",
    }


async def _patch(
    client: httpx.AsyncClient, doc_id: Any, actor: Actor, **kwargs: Any
) -> httpx.Response:
    return await client.patch(f"/api/v3/documents/{doc_id}", headers=basic(actor), **kwargs)


async def _title(client: httpx.AsyncClient, doc_id: Any, actor: Actor) -> str:
    body = (await client.get(f"/api/v3/documents/{doc_id}", headers=basic(actor))).json()
    title: str = body["title"]
    return title


async def test_patch_changes_title_and_description(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    response = await _patch(
        client, doc["id"], matter.writer, json={"title": "t" * 60, "description": {"raw": "**b**"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "t" * 60
    assert body["description"] == {
        "format": "markdown",
        "raw": "**b**",
        "html": "<p><strong>b</strong></p>",
    }
    assert "_embedded" in body
    # The upstream quirk: a bare string is accepted too.
    plain = await _patch(client, doc["id"], matter.writer, json={"description": "plain"})
    assert plain.json()["description"]["raw"] == "plain"
    assert plain.json()["title"] == "t" * 60


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"title": "x" * 61}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 7}, "title"),
        ({"description": {"raw": 5}}, "description"),
        ({"_links": {"attachments": [{"href": "/api/v3/documents/1"}]}}, "attachments"),
        # Not a URL at all (an unclosed IPv6 bracket): the same 422, not a 500.
        ({"_links": {"attachments": [{"href": "http://[/api/v3/attachments/1"}]}}, "attachments"),
    ],
)
async def test_patch_refuses_constraint_violations_with_422(
    client: httpx.AsyncClient, matter: Matter, body: dict[str, Any], attribute: str
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    response = await _patch(client, doc["id"], matter.writer, json=body)
    assert response.status_code == 422
    error = response.json()
    assert (
        error["errorIdentifier"] == "urn:openproject-org:api:v3:errors:PropertyConstraintViolation"
    )
    assert error["_embedded"]["details"]["attribute"] == attribute
    assert await _title(client, doc["id"], matter.writer) == "exhibit.pdf"


async def test_patch_needs_manage_documents_and_visibility(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    forbidden = await _patch(client, doc["id"], matter.reader, json={"title": "New"})
    assert forbidden.status_code == 403
    assert (
        forbidden.json()["errorIdentifier"] == "urn:openproject-org:api:v3:errors:MissingPermission"
    )
    hidden = await _patch(client, doc["id"], matter.outsider, json={"title": "x" * 99})
    assert hidden.status_code == 404
    assert await _title(client, doc["id"], matter.writer) == "exhibit.pdf"


async def test_patch_body_must_be_one_json_object(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    broken = await client.patch(
        f"/api/v3/documents/{doc['id']}",
        content=b"{",
        headers={**basic(matter.writer), "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert (
        broken.json()["errorIdentifier"] == "urn:openproject-org:api:v3:errors:InvalidRequestBody"
    )
    listed = await _patch(client, doc["id"], matter.writer, json=["title"])
    assert listed.status_code == 400
    wrong_type = await client.patch(
        f"/api/v3/documents/{doc['id']}",
        content=b"title=x",
        headers={**basic(matter.writer), "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    assert (
        wrong_type.json()["errorIdentifier"] == "urn:openproject-org:api:v3:errors:TypeNotSupported"
    )


async def test_description_html_is_sanitized(client: httpx.AsyncClient, matter: Matter) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    attack = (
        "Hi <script>alert('x')</script> <img src=x onerror=alert(1)> "
        '[click](javascript:alert(2)) <a href="javascript:alert(3)">a</a> '
        "<iframe src=//evil></iframe> <b onclick=alert(4)>bold</b>"
    )
    response = await _patch(client, doc["id"], matter.writer, json={"description": {"raw": attack}})
    html = response.json()["description"]["html"]
    assert response.json()["description"]["raw"] == attack
    for needle in ("<script", "alert('x')", "onerror", "onclick", "<iframe"):
        assert needle not in html.lower(), (needle, html)
    # No tag may carry a javascript: URL (as plain text it is harmless).
    assert not re.search(r"<[^>]*javascript:", html, re.IGNORECASE), html
    assert "<b>bold</b>" in html


def _spec(name: str, operator: str, *values: str) -> str:
    return json.dumps([{name: {"operator": operator, "values": list(values)}}])


async def test_a_later_page_names_itself_and_a_full_last_page_has_no_next(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """`offset` is the page number, not a row offset, in the body and in every link; and a
    last page that is exactly full has no `nextByOffset`, or clients ask for an empty page."""
    ids = [
        int((await upload_v1(client, matter.id, matter.writer, f"doc {i}".encode()))["id"])
        for i in range(4)
    ]
    second = await _documents(client, matter.reader, offset="2", pageSize="2")
    assert (second["total"], second["count"], second["offset"], _ids(second)) == (
        4,
        2,
        2,
        ids[2:],
    )
    links = second["_links"]
    assert links["self"] == {"href": "/api/v3/documents?offset=2&pageSize=2"}
    assert links["changeSize"] == {
        "href": "/api/v3/documents?offset=2&pageSize=%7Bsize%7D",
        "templated": True,
    }
    assert links["previousByOffset"] == {"href": "/api/v3/documents?offset=1&pageSize=2"}
    assert "nextByOffset" not in links


async def test_sort_direction_is_read_whatever_its_case(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """`DESC` is accepted as `desc` is, so it must also sort descending."""
    ids = await _five(client, matter)
    for direction in ("DESC", "Desc"):
        down = await _documents(client, matter.reader, sortBy=json.dumps([["id", direction]]))
        assert _ids(down) == ids[::-1], direction
    up = await _documents(client, matter.reader, sortBy='[["id", "ASC"]]')
    assert _ids(up) == ids


async def test_every_spelling_of_the_project_filter_matches_the_project_not_the_document(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """`project`, `project_id` and `projectId` all filter on the document's project id. The
    other project's documents come first, so no document id equals a project id it is
    compared with by mistake."""
    theirs = [
        int((await upload_v1(client, matter.other_project_id, matter.outsider))["id"])
        for _ in range(3)
    ]
    ours = int((await upload_v1(client, matter.id, matter.writer))["id"])
    assert ours not in (matter.id, matter.other_project_id)
    for name in ("project", "project_id", "projectId"):
        equal = await _documents(client, operator, filters=_spec(name, "=", str(matter.id)))
        assert _ids(equal) == [ours], name
        not_other = await _documents(
            client, operator, filters=_spec(name, "!", str(matter.other_project_id))
        )
        assert _ids(not_other) == [ours], name
        other = await _documents(
            client, operator, filters=_spec(name, "=", str(matter.other_project_id))
        )
        assert _ids(other) == theirs, name


async def test_the_project_filter_takes_a_projects_identifier_as_its_id(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """OpenProject's newest project filter resolves a value that is not a number as a
    project's identifier (`project-3` here, as `GET /api/v3/projects/{id}` shows it); one
    that no project has matches nothing. It was a 400, "Values is not an integer"."""
    ours = int((await upload_v1(client, matter.id, matter.writer))["id"])
    theirs = int((await upload_v1(client, matter.other_project_id, matter.outsider))["id"])
    shown = await client.get(f"/api/v3/projects/{matter.id}", headers=operator.headers)
    identifier = shown.json()["identifier"]
    assert identifier != str(matter.id)
    equal = await _documents(client, operator, filters=_spec("project", "=", identifier))
    assert _ids(equal) == [ours]
    mixed = _spec("project_id", "=", identifier, str(matter.other_project_id))
    assert _ids(await _documents(client, operator, filters=mixed)) == [ours, theirs]
    unknown = await _documents(client, operator, filters=_spec("project", "=", "no-such"))
    assert (unknown["total"], _ids(unknown)) == (0, [])
    not_unknown = await _documents(client, operator, filters=_spec("project", "!", "no-such"))
    assert _ids(not_unknown) == [ours, theirs]
    not_ours = await _documents(client, operator, filters=_spec("project", "!", identifier))
    assert _ids(not_ours) == [theirs]


async def test_project_filter_any_and_none(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """`*` (any project) matches every visible document and `!*` (no project) none, since
    every document has a project."""
    ours = int((await upload_v1(client, matter.id, matter.writer))["id"])
    theirs = int((await upload_v1(client, matter.other_project_id, matter.outsider))["id"])
    for name in ("project", "project_id"):
        anything = await _documents(client, operator, filters=_spec(name, "*"))
        assert (anything["total"], _ids(anything)) == (2, [ours, theirs]), name
        nothing = await _documents(client, operator, filters=_spec(name, "!*"))
        assert (nothing["total"], _ids(nothing)) == (0, []), name
    # Still within what the caller may see.
    own = await _documents(client, matter.outsider, filters=_spec("project", "*"))
    assert _ids(own) == [theirs]


async def test_title_filter_not_equal_all_words_and_literal_wildcards(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """`!` leaves out exact titles only (in any case), `**` matches a part as `~` does, and
    the LIKE wildcards `%` and `_` in a value match only themselves."""
    invoice = int(
        (await upload_v1(client, matter.id, matter.writer, name="Invoice 2024.pdf"))["id"]
    )
    settled = int(
        (await upload_v1(client, matter.id, matter.writer, name="100% settled.pdf"))["id"]
    )
    draft = int((await upload_v1(client, matter.id, matter.writer, name="draft_v2.pdf"))["id"])

    async def titled(operator: str, value: str) -> list[int]:
        found = await _documents(client, matter.reader, filters=_spec("title", operator, value))
        return _ids(found)

    assert await titled("!", "INVOICE 2024.PDF") == [settled, draft]
    assert await titled("!", "invoice") == [invoice, settled, draft]
    assert await titled("**", "VOICE") == [invoice]
    assert await titled("~", "%") == [settled]
    assert await titled("~", "_") == [draft]
    assert await titled("~", "0%") == [settled]
    assert await titled("!~", "%") == [invoice, draft]


async def test_document_links_and_times_are_the_documents_own(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    """Every link of a document names its own id (not its project's, which the first
    document's id happens to equal), and `updatedAt` is its last change, not its creation."""
    await upload_v1(client, matter.id, matter.writer)
    doc_id = int((await upload_v1(client, matter.id, matter.writer, name="second.pdf"))["id"])
    assert doc_id != matter.id
    created = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    async with db.writer() as session:
        await session.execute(
            update(Document)
            .where(Document.id == doc_id)
            .values(created_at=created, updated_at=created + timedelta(days=2, seconds=5))
        )
        await session.commit()
    listed = await _documents(client, matter.writer, filters=_spec("title", "=", "second.pdf"))
    whole = (await client.get(f"/api/v3/documents/{doc_id}", headers=basic(matter.writer))).json()
    for body in (listed["_embedded"]["elements"][0], whole):
        assert body["id"] == doc_id
        assert (body["createdAt"], body["updatedAt"]) == (
            "2026-01-01T09:30:00Z",
            "2026-01-03T09:30:05Z",
        )
        links = body["_links"]
        assert links["self"]["href"] == f"/api/v3/documents/{doc_id}"
        assert links["attachments"] == {"href": f"/api/v3/documents/{doc_id}/attachments"}
        assert links["addAttachment"]["href"] == f"/api/v3/documents/{doc_id}/attachments"
        assert links["update"]["href"] == f"/api/v3/documents/{doc_id}"
        assert links["project"]["href"] == f"/api/v3/projects/{matter.id}"
    assert whole["_embedded"]["attachments"]["_links"]["self"] == {
        "href": f"/api/v3/documents/{doc_id}/attachments"
    }


async def test_patch_trims_the_title_and_takes_hal_json(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """A title is stored trimmed, as v1 stores it; and `application/hal+json`, what
    OpenProject clients send, is as good a body type as `application/json`."""
    doc = await upload_v1(client, matter.id, matter.writer)
    trimmed = await _patch(client, doc["id"], matter.writer, json={"title": "  Amended claim \t"})
    assert trimmed.status_code == 200, trimmed.text
    assert await _title(client, doc["id"], matter.reader) == "Amended claim"
    hal = await client.patch(
        f"/api/v3/documents/{doc['id']}",
        content=json.dumps({"title": "Final claim"}).encode(),
        headers={**basic(matter.writer), "Content-Type": "application/hal+json"},
    )
    assert hal.status_code == 200, hal.text
    assert await _title(client, doc["id"], matter.reader) == "Final claim"


async def test_a_reader_is_refused_403_before_the_body_is_judged(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Permission comes before the body: a reader learns nothing from a 422 on a body they
    may not send at all, and nothing changes."""
    doc = await upload_v1(client, matter.id, matter.writer)
    for body in ({"title": "x" * 99}, {"title": "   "}, {"description": {"raw": 5}}):
        refused = await _patch(client, doc["id"], matter.reader, json=body)
        assert refused.status_code == 403, (body, refused.text)
        assert refused.json()["errorIdentifier"].endswith(":MissingPermission")
    assert await _title(client, doc["id"], matter.writer) == "exhibit.pdf"


async def test_a_null_raw_description_clears_it(client: httpx.AsyncClient, matter: Matter) -> None:
    """`{"raw": null}` is how OpenProject clients empty a Formattable: the description
    becomes empty, not a 422."""
    doc = await upload_v1(client, matter.id, matter.writer)
    set_first = await _patch(client, doc["id"], matter.writer, json={"description": "Draft"})
    assert set_first.json()["description"]["raw"] == "Draft"
    cleared = await _patch(client, doc["id"], matter.writer, json={"description": {"raw": None}})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["description"] == {"format": "markdown", "raw": "", "html": ""}
