"""A list of documents shows each document exactly as reading it alone does (the list builds
its JSON itself, api/v1/documents_render.py `list_json`, with timestamps cut from the
database's text, and keeps what it wrote by the document's values; the document read goes
through DocumentOut), also right after another process changed it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from casefolio.api.v1 import documents_render
from casefolio.api.v1.documents_render import document_out, list_json, views_json
from casefolio.api.v1.schemas import json_response
from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion, FieldValue
from casefolio.db.types import rfc3339
from casefolio.domain.document_pages import ListedDocument, ListedField
from casefolio.domain.documents import DocumentView, FieldEntry
from casefolio.domain.rows import DocumentRow, FieldRow, VersionRow
from tests.factories import Actor


async def test_each_listed_document_is_what_its_get_answers(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Ünïcode v Roe"}, headers=headers)
    ).json()["id"]
    kinds = {"Court": "text", "Filed on": "date", "Pages": "number", "Sealed": "boolean"}
    for name, kind in kinds.items():
        made = await client.post(
            f"/api/v1/projects/{project}/fields", json={"name": name, "type": kind}, headers=headers
        )
        assert made.status_code == 201, made.text
    folder = (
        await client.post(
            f"/api/v1/projects/{project}/folders", json={"name": "Pleadings"}, headers=headers
        )
    ).json()["id"]
    values = {
        "Court": "Cour d\u2019appel \u2014 2e",
        "Filed on": "2026-01-31",
        "Pages": 12.5,
        "Sealed": True,
    }
    metadata = {"title": "Mémoire «final»", "folderId": folder, "fields": values}
    filed = [
        await client.post(
            f"/api/v1/projects/{project}/documents",
            files={"file": ("m.pdf", b"%PDF m"), "metadata": (None, json.dumps(metadata))},
            headers=headers,
        ),
        await client.post(
            f"/api/v1/projects/{project}/documents",
            params={"fileName": "plain.txt"},
            content=b"no fields, no folder",
            headers=headers,
        ),
    ]
    assert [r.status_code for r in filed] == [201, 201], [r.text for r in filed]
    listed = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    items = listed.json()
    assert [item["id"] for item in items] == [r.json()["id"] for r in filed]
    for item in items:
        alone = await client.get(
            f"/api/v1/projects/{project}/documents/{item['id']}", headers=headers
        )
        assert item == alone.json()
    # Key order too, and the same compact UTF-8 as the document read's.
    alone = await client.get(
        f"/api/v1/projects/{project}/documents/{items[0]['id']}", headers=headers
    )
    assert listed.content.startswith(b"[" + alone.content)
    in_folder = await client.get(
        f"/api/v1/projects/{project}/documents/folder/{folder}", headers=headers
    )
    assert in_folder.json() == items[:1]


async def test_a_document_whose_instants_differ_is_listed_as_its_get_answers(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    """A listed document's three timestamps are each formatted on their own (by the database,
    db/types.py `rfc3339_text`); here each differs, down to the millisecond."""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Instants"}, headers=headers)
    ).json()["id"]
    filed = await client.post(
        f"/api/v1/projects/{project}/documents",
        params={"fileName": "a.txt"},
        content=b"instants",
        headers=headers,
    )
    assert filed.status_code == 201, filed.text
    document = int(filed.json()["id"])
    async with db.write() as session:
        row = await session.get_one(Document, document)
        version = await session.get_one(DocumentVersion, row.current_version_id)
        # In the past: a page shows what was changed before it was asked for.
        row.created_at -= timedelta(seconds=2)
        version.created_at = row.created_at + timedelta(milliseconds=1)
        row.updated_at = row.created_at + timedelta(seconds=1, milliseconds=7)
    alone = await client.get(f"/api/v1/projects/{project}/documents/{document}", headers=headers)
    listed = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert listed.status_code == 200
    assert listed.content == b"[" + alone.content + b"]"
    shown = alone.json()
    instants = {shown["createdAt"], shown["updatedAt"], shown["currentVersion"]["createdAt"]}
    assert len(instants) == 3, shown


async def test_strings_that_need_escaping_are_listed_as_their_get_answers(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    """Strings that JSON must escape (quotes, backslashes, control characters) and those it
    need not (non-ASCII, a line separator) are written by the list as by the GET, byte for
    byte. (A title is one line: control characters and line separators go in field values
    and descriptions.)"""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Escapes"}, headers=headers)
    ).json()["id"]
    made = await client.post(
        f"/api/v1/projects/{project}/fields",
        json={"name": 'Note "q"', "type": "text"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    titles = [
        'Smith "the elder" v. Jones',
        "C:\\cases\\2026",
        "tab and DEL in its field",
        "Ünïcode",
        "emoji \U0001f4c4",
        "plain",
    ]
    description = (
        "first line\nsecond line\r\n\x01 control, \u00a0 no-break space, / slash,"
        " \u2028 line separator"
    )
    for n, title in enumerate(titles):
        value = f"{title}\t\x7f"
        metadata = {"title": title, "description": description, "fields": {'Note "q"': value}}
        filed = await client.post(
            f"/api/v1/projects/{project}/documents",
            files={"file": (f'n"{n}".txt', b"x%d" % n), "metadata": (None, json.dumps(metadata))},
            headers=headers,
        )
        assert filed.status_code == 201, filed.text
    listed = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert listed.status_code == 200
    items = listed.json()
    shown = {item["title"] for item in items}
    assert '"' in "".join(shown) and "\\" in "".join(shown), shown  # escapes were needed
    alone = [
        (
            await client.get(f"/api/v1/projects/{project}/documents/{item['id']}", headers=headers)
        ).content
        for item in items
    ]
    assert listed.content == b"[" + b",".join(alone) + b"]"


_IDS = st.integers(min_value=1, max_value=2**63 - 1)
_INSTANTS = st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC))
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(_IDS, min_size=4, max_size=4),
    optional=st.lists(st.none() | _IDS, min_size=3, max_size=3),
    texts=st.lists(st.text(), min_size=5, max_size=5),
    instants=st.lists(_INSTANTS, min_size=3, max_size=3),
    numbers=st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=2, max_size=2),
    fields=st.lists(st.tuples(_IDS, st.text(), st.text(), _JSON), max_size=3),
)
def test_a_listed_document_is_written_as_the_get_writes_its_document(
    ids: list[int],
    optional: list[int | None],
    texts: list[str],
    instants: list[datetime],
    numbers: list[int],
    fields: list[tuple[int, str, str, Any]],
) -> None:
    """The list's template (documents_render.py `list_json`) against DocumentOut, as the GET
    dumps it, and the search's plain data (`views_json`), for any values: strings JSON must
    escape or need not, ids to 2^63, any instant, any JSON field value."""
    document_id, project_id, version_id, version_document_id = ids
    folder_id, created_by, version_created_by = optional
    title, description, file_name, content_type, sha256 = texts
    created_at, updated_at, filed_at = instants
    number, size = numbers
    document = DocumentRow(
        document_id, project_id, folder_id, title, description, version_id, sha256, number,
        created_by, created_at, updated_at,
    )  # fmt: skip
    version = VersionRow(
        version_id, version_document_id, number, file_name, content_type, size, sha256, "",
        version_created_by, filed_at,
    )  # fmt: skip
    entries = tuple(
        FieldEntry(FieldRow(i, project_id, name, kind, [], False, created_at), value)
        for i, name, kind, value in fields
    )
    view = DocumentView(document, version, entries)
    listed = ListedDocument(
        document_id, project_id, folder_id, title, description, created_by,
        rfc3339(created_at), rfc3339(updated_at), version_id, version_document_id, number,
        file_name, content_type, size, sha256, version_created_by, rfc3339(filed_at),
        # As stored (SQLAlchemy's JSON type writes json.dumps), as the GET reads it back.
        tuple(ListedField(i, name, kind, json.dumps(value)) for i, name, kind, value in fields),
    )  # fmt: skip
    alone = json_response(document_out(view)).body
    assert list_json([listed]) == b"[" + alone + b"]" == views_json([view])
    # Again, as written before: for the same object, and for an equal one (a page read again).
    assert list_json([listed, listed]) == b"[" + alone + b"," + alone + b"]"
    assert list_json([ListedDocument(*listed)]) == b"[" + alone + b"]"
    assert list_json([]) == b"[]" == views_json([])


async def test_a_document_changed_by_another_process_is_listed_as_changed_at_once(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    """The list keeps the JSON it wrote by each document's values (documents_render.py
    `_WRITTEN`), never by its id or updatedAt: changes written by another process, here
    through a connection of its own, and each leaving updatedAt and every id as they were
    (so that a cache keyed by them would show the old document), are listed at once, as the
    document's GET shows them."""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Elsewhere"}, headers=headers)
    ).json()["id"]
    made = await client.post(
        f"/api/v1/projects/{project}/fields",
        json={"name": "Court", "type": "text"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    metadata = {"title": "Before", "fields": {"Court": "First"}}
    filed = await client.post(
        f"/api/v1/projects/{project}/documents",
        files={"file": ("a.pdf", b"%PDF a"), "metadata": (None, json.dumps(metadata))},
        headers=headers,
    )
    assert filed.status_code == 201, filed.text
    document = int(filed.json()["id"])
    version = int(filed.json()["currentVersion"]["id"])
    url = f"/api/v1/projects/{project}/documents"
    changes = [
        update(Document).where(Document.id == document).values(title="After"),
        update(FieldValue).where(FieldValue.document_id == document).values(value="Second"),
        update(DocumentVersion).where(DocumentVersion.id == version).values(file_name="b.pdf"),
        # What deleting the filer's account does (ON DELETE SET NULL).
        update(Document).where(Document.id == document).values(created_by=None),
        update(DocumentVersion).where(DocumentVersion.id == version).values(created_by=None),
        delete(FieldValue).where(FieldValue.document_id == document),
    ]
    shown = [(await client.get(url, headers=headers)).content]
    for change in changes:
        async with db.write() as session:
            await session.execute(change)
        listed = await client.get(url, headers=headers)
        alone = await client.get(f"{url}/{document}", headers=headers)
        assert listed.status_code == alone.status_code == 200
        assert listed.content == b"[" + alone.content + b"]"
        shown.append(listed.content)
    assert len(set(shown)) == len(changes) + 1, "each change shows"
    assert shown[0].count(b'"updatedAt"') == 1
    updated = {json.loads(content)[0]["updatedAt"] for content in shown}
    assert len(updated) == 1  # none of the changes touched it
    final = json.loads(shown[-1])[0]
    assert (final["title"], final["createdBy"], final["fields"]) == ("After", None, [])
    assert final["currentVersion"]["fileName"] == "b.pdf"


def test_what_the_list_keeps_written_is_bounded() -> None:
    """More documents than the list keeps written, and one too long to keep: each is
    written as itself, and what is kept stays within its bounds."""
    documents_render._WRITTEN.clear()
    instant = "2026-12-06T00:00:00.000Z"

    def listed(n: int) -> ListedDocument:
        fields = (ListedField(1, "Court", "text", json.dumps(f"court {n}")),) if n % 2 else ()
        description = "x" * (4000 if n == 7 else 1)
        return ListedDocument(
            n, 1, None, f"doc {n}", description, 1, instant, instant, n, n, 1, "a.pdf",
            "application/pdf", 5, "0" * 64, 1, instant, fields,
        )  # fmt: skip

    documents = [listed(n) for n in range(documents_render.WRITTEN_MAX + 10)]
    list_json(documents[:10])
    kept = documents_render._WRITTEN
    assert documents[6] in kept and documents[7] not in kept  # longer than WRITTEN_LONGEST
    written = json.loads(list_json(documents))
    assert [item["id"] for item in written] == [str(n) for n in range(len(documents))]
    assert [item["description"] for item in written][6:9] == ["x", "x" * 4000, "x"]
    assert written[3]["fields"] == [
        {"id": "1", "name": "Court", "type": "text", "value": "court 3"}
    ]
    assert 0 < len(kept) <= documents_render.WRITTEN_MAX
    assert json.loads(list_json(documents)) == written


async def test_pages_of_instants_finer_than_a_millisecond_follow_one_another(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    """A page's cursor holds the last document's updatedAt as stored (read apart from the
    shown text, which is cut to the millisecond), so that paging through documents a few
    microseconds apart shows each once."""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Microseconds"}, headers=headers)
    ).json()["id"]
    ids = []
    for n in range(4):
        filed = await client.post(
            f"/api/v1/projects/{project}/documents",
            params={"fileName": f"{n}.txt"},
            content=b"micro %d" % n,
            headers=headers,
        )
        assert filed.status_code == 201, filed.text
        ids.append(filed.json()["id"])
    base = datetime(2026, 12, 5, 12, 0, 0, 123000, tzinfo=UTC)
    async with db.write() as session:
        for n, document in enumerate(ids):
            row = await session.get_one(Document, int(document))
            # Two in one millisecond, apart by microseconds; the others in the next.
            row.updated_at = base + timedelta(microseconds=(0, 400, 1000, 1700)[n])
    seen: list[str] = []
    url: str | None = f"/api/v1/projects/{project}/documents?limit=1"
    while url is not None:
        page = await client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()]
        url = page.links.get("next", {}).get("url")
        assert len(seen) <= len(ids), seen
    assert seen == ids
    shown = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert [item["updatedAt"] for item in shown.json()] == [
        "2026-12-05T12:00:00.123Z",
        "2026-12-05T12:00:00.123Z",
        "2026-12-05T12:00:00.124Z",
        "2026-12-05T12:00:00.124Z",
    ]
