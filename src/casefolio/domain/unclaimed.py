"""Containerless uploads (OpenProject's `POST /api/v3/attachments`): a version that no
document holds yet. It belongs to its uploader, who alone can see it, until a document
claims it (it then becomes that document's newest version, keeping its id) or `casefolio gc`
removes it for having waited longer than `unclaimed_attachment_hours`.

Its bytes take the path of every upload: spooled and hashed in staging, made durable in the
blob store before the row commits, and counted as a reference by gc while the row exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Document, DocumentVersion
from casefolio.db.types import utcnow
from casefolio.domain import documents
from casefolio.domain.documents import NewFile
from casefolio.domain.errors import Invalid, NotFound
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.storage.base import BlobStore

UNCLAIMED_NUMBER = 0  # real version numbers start at 1


async def create(
    session: AsyncSession,
    *,
    who: Principal,
    blobs: BlobStore,
    file: NewFile,
    description: str = "",
) -> DocumentVersion:
    """Store an upload that belongs to no document yet; return its (unclaimed) version."""
    file_name = documents.clean_file_name(file.file_name)
    await blobs.put(file.spooled)  # durable before the row that points at it commits
    version = DocumentVersion(
        document_id=None,
        number=UNCLAIMED_NUMBER,
        file_name=file_name,
        content_type=documents.content_type_of(file, file_name),
        size=file.spooled.size,
        sha256=file.spooled.sha256,
        description=description,
        created_by=who.user_id,
        created_at=utcnow(),
    )
    session.add(version)
    await session.flush()
    return version


async def find(session: AsyncSession, *, who: Principal, version_id: int) -> DocumentVersion | None:
    """Return the caller's own unclaimed upload with this id, or None: another user's
    unclaimed upload is None too, and then reads as any version the caller cannot see."""
    version = await session.get(DocumentVersion, version_id)
    if version is None or version.document_id is not None or version.created_by != who.user_id:
        return None
    return version


async def delete(session: AsyncSession, *, version: DocumentVersion) -> None:
    """Delete an unclaimed upload `find` returned (its blob is left to gc)."""
    await session.delete(version)
    await session.flush()


async def claim(
    session: AsyncSession, *, who: Principal, document_id: int, version_ids: Sequence[int]
) -> list[DocumentVersion]:
    """Make the caller's unclaimed uploads new versions of a document they may write, in the
    order given; the last becomes current. Ids already among the document's versions are
    left as they are (a client may send back every link it has). Anything else, including
    another user's upload, is Invalid naming `attachments`, and nothing changes."""
    document = await documents.load(
        session, who=who, document_id=document_id, capability=Capability.DOCUMENTS_WRITE
    )
    wanted = list(dict.fromkeys(version_ids))
    if not wanted:
        return []
    rows = {
        v.id: v
        for v in await session.scalars(
            select(DocumentVersion).where(DocumentVersion.id.in_(wanted))
        )
    }
    to_claim: list[DocumentVersion] = []
    for version_id in wanted:
        version = rows.get(version_id)
        if version is not None and version.document_id == document.id:
            continue
        if version is None or version.document_id is not None or version.created_by != who.user_id:
            raise Invalid(
                f"Attachment {version_id} cannot be claimed: it does not exist, "
                "or it is not your own upload without a container.",
                [{"field": "attachments", "message": str(version_id)}],
            )
        to_claim.append(version)
    for version in to_claim:
        # The row lock of this UPDATE serialises concurrent claims and uploads, as in
        # documents.add_version.
        number = await session.scalar(
            update(Document)
            .where(Document.id == document.id)
            .values(last_version_number=Document.last_version_number + 1, updated_at=utcnow())
            .returning(Document.last_version_number)
        )
        if number is None:
            raise NotFound(f"Document {document_id} not found.")
        # Only a row that is still unclaimed is taken, so two claims cannot both win.
        taken = await session.execute(
            update(DocumentVersion)
            .where(DocumentVersion.id == version.id, DocumentVersion.document_id.is_(None))
            .values(document_id=document.id, number=number)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Invalid(
                f"Attachment {version.id} was claimed by another request.",
                [{"field": "attachments", "message": str(version.id)}],
            )
    if to_claim:
        newest = to_claim[-1]
        await session.execute(
            update(Document)
            .where(Document.id == document.id)
            .values(current_version_id=newest.id, current_sha256=newest.sha256)
        )
    claimed = [v.id for v in to_claim]
    return list(
        await session.scalars(
            select(DocumentVersion)
            .where(DocumentVersion.id.in_(claimed))
            .execution_options(populate_existing=True)
        )
    )


async def remove_expired(session: AsyncSession, *, before: datetime, dry_run: bool) -> list[int]:
    """Delete unclaimed uploads created before `before`; return their ids (their blobs, now
    unreferenced, are removed by the same gc run or a later one)."""
    expired = list(
        await session.scalars(
            select(DocumentVersion.id)
            .where(DocumentVersion.document_id.is_(None), DocumentVersion.created_at < before)
            .order_by(DocumentVersion.id)
        )
    )
    if expired and not dry_run:
        await session.execute(
            sql_delete(DocumentVersion).where(
                DocumentVersion.id.in_(expired), DocumentVersion.document_id.is_(None)
            )
        )
    return expired
