"""The plain rows a document read builds: true to their tables, equal to the ORM's entities."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Table, select

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion, Field, FieldValue, Folder
from casefolio.domain import documents
from casefolio.domain.errors import NotFound
from casefolio.domain.principal import Principal
from casefolio.domain.rows import DocumentRow, FieldRow, FolderRow, VersionRow
from casefolio.fastpath.statements import StatementReader
from tests.factories import Actor, file_with_fields


@pytest.mark.parametrize(
    ("row", "model"),
    [
        (DocumentRow, Document),
        (VersionRow, DocumentVersion),
        (FieldRow, Field),
        (FolderRow, Folder),
    ],
)
def test_a_rows_fields_are_its_tables_columns_in_order(row: Any, model: Any) -> None:
    # documents.get slices one result row into these by position.
    table: Table = model.__table__
    assert list(row._fields) == [c.key for c in table.columns]


def _columns(entity: Any, row: Any) -> tuple[Any, ...]:
    return tuple(getattr(entity, name) for name in row._fields)


async def test_a_read_through_the_statement_reader_equals_the_orm_entities(
    client: httpx.AsyncClient,
    db: Database,
    statements: StatementReader,
    operator: Actor,
    member: Actor,
) -> None:
    values = {"Custodian": ("text", "J. Smith"), "Pages": ("number", 12)}
    document_id = await file_with_fields(client, operator, values)
    who = Principal(operator.user_id, operator.email, "Olivia Operator", is_operator=True)

    view = await documents.get(statements, who=who, document_id=document_id)
    async with db.read() as session:
        document = await session.get_one(Document, document_id)
        version = await session.get_one(DocumentVersion, document.current_version_id)
        fields = {f.id: f for f in await session.scalars(select(Field))}

    assert isinstance(view.document, DocumentRow)
    assert _columns(view.document, DocumentRow) == _columns(document, DocumentRow)
    assert _columns(view.current, VersionRow) == _columns(version, VersionRow)
    assert [(_columns(e.field, FieldRow), e.value) for e in view.fields] == [
        (_columns(fields[e.field.id], FieldRow), e.value) for e in view.fields
    ]
    assert [(e.field.name, e.value) for e in view.fields] == [
        ("Custodian", "J. Smith"),
        ("Pages", 12),
    ]

    # The access rule holds on the statement reader too: a user without a grant sees nothing.
    outsider = Principal(member.user_id, member.email, "Milo Member", is_operator=False)
    with pytest.raises(NotFound):
        await documents.get(statements, who=outsider, document_id=document_id)


async def test_a_view_shows_what_its_session_changed_and_has_not_written_yet(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    # views() reads with statements of table columns: the session's autoflush must cover
    # them as it covers ORM statements, or a write path's answer would miss its own change.
    project = (
        await client.post("/api/v1/projects", json={"name": "Unflushed"}, headers=operator.headers)
    ).json()["id"]
    field = await client.post(
        f"/api/v1/projects/{project}/fields",
        json={"name": "Matter", "type": "text"},
        headers=operator.headers,
    )
    uploaded = await client.post(
        f"/api/v1/projects/{project}/documents",
        files={"file": ("memo.pdf", b"%PDF memo")},
        headers=operator.headers,
    )
    document_id = int(uploaded.json()["id"])
    async with db.write() as session:
        document = await session.get_one(Document, document_id)
        session.add(
            FieldValue(document_id=document_id, field_id=int(field.json()["id"]), value="M-1")
        )
        view = await documents.view(session, document)
    assert [(e.field.name, e.value) for e in view.fields] == [("Matter", "M-1")]
