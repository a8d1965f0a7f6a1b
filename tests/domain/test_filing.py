"""Filing a new document: the document and its first version land together."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from tests.factories import Actor


async def test_an_upload_files_the_document_with_its_first_version(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    created = await client.post("/api/v1/projects", json={"name": "Doe"}, headers=operator.headers)
    project = created.json()["id"]
    uploads = [
        await client.post(
            f"/api/v1/projects/{project}/documents?fileName={name}",
            content=name.encode(),
            headers=operator.headers,
        )
        for name in ("claim.pdf", "defence.pdf")
    ]

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
        # No document of the project is left without its version.
        orphans = await session.scalar(
            select(func.count())
            .select_from(Document)
            .where(Document.project_id == int(project), Document.current_version_id.is_(None))
        )
        assert orphans == 0
