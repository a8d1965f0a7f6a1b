"""Filing a new document: the document and its first version land together."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from tests.factories import Actor


async def test_an_upload_files_the_document_with_its_first_version(
    client: httpx.AsyncClient, db: Database, operator: Actor, is_postgres: bool
) -> None:
    created = await client.post("/api/v1/projects", json={"name": "Doe"}, headers=operator.headers)
    project = created.json()["id"]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "audit_entries" in statement or "INTO changes" in statement:
            return  # the outbound records of the same transaction (tests/outbound)
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        uploads = [
            await client.post(
                f"/api/v1/projects/{project}/documents?fileName={name}",
                content=name.encode(),
                headers=operator.headers,
            )
            for name in ("claim.pdf", "defence.pdf")
        ]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)

    async with db.read() as session:
        for upload in uploads:
            assert upload.status_code == 201, upload.text
            body = upload.json()
            document = await session.get(Document, int(body["id"]))
            version = await session.get(DocumentVersion, int(body["currentVersion"]["id"]))
            assert document is not None and version is not None
            assert document.current_version_id == version.id
            assert version.document_id == document.id and version.number == 1
            assert version.file_name == document.title == body["title"]
    # PostgreSQL: one statement for both rows (a round trip each); SQLite: three.
    writes = [s for s in statements if s in ("INSERT", "UPDATE", "WITH")]
    assert writes == (["WITH"] * 2 if is_postgres else ["INSERT", "INSERT", "UPDATE"] * 2)
