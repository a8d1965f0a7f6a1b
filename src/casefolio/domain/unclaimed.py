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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import DocumentVersion
from casefolio.domain import blob_locks, documents, filing, intake
from casefolio.domain.errors import Invalid
from casefolio.domain.events import DomainEvent
from casefolio.domain.intake import NewFile
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import VersionRow
from casefolio.storage.base import BlobStore


async def create(
    session: AsyncSession,
    *,
    who: Principal,
    blobs: BlobStore,
    received: NewFile,
    description: str = "",
) -> tuple[VersionRow, list[DomainEvent]]:
    """Store an upload that belongs to no document yet; return its (unclaimed) version."""
    content = await intake.stored(blobs, received)  # durable before the row that points at it
    stored = await filing.store_unclaimed(
        session, who=who, content=content, description=description
    )
    await blob_locks.confirm_stored(session, blobs, [content.sha256])
    return stored


async def find(session: AsyncSession, *, who: Principal, version_id: int) -> DocumentVersion | None:
    """Return the caller's own unclaimed upload with this id, or None: another user's
    unclaimed upload is None too, and then reads as any version the caller cannot see."""
    version = await session.get(DocumentVersion, version_id)
    if version is None or version.document_id is not None or version.created_by != who.user_id:
        return None
    return version


async def delete(session: AsyncSession, *, version: DocumentVersion) -> bool:
    """Delete an unclaimed upload `find` returned (its blob is left to gc); False, deleting
    nothing, if a document claimed it meanwhile (PostgreSQL: the claim held its row, and
    the condition is checked again once the claim commits): it is that document's version
    now, and a deletion of it is a version's."""
    gone = await session.execute(
        sql_delete(DocumentVersion).where(
            DocumentVersion.id == version.id, DocumentVersion.document_id.is_(None)
        )
    )
    session.expunge(version)  # read again from the database by whoever asks next
    return bool(gone.rowcount == 1)  # type: ignore[attr-defined]


async def claim(
    session: AsyncSession, *, who: Principal, document_id: int, version_ids: Sequence[int]
) -> list[DomainEvent]:
    """Make the caller's unclaimed uploads new versions of a document they may write, in the
    order given; the last becomes current. Ids already among the document's versions are
    left as they are (a client may send back every link it has). Anything else, including
    another user's upload, is Invalid naming `attachments`, and nothing changes."""
    scope, document = await documents.load_scoped(
        session, who=who, document_id=document_id, capability=Capability.DOCUMENTS_WRITE
    )
    wanted = list(dict.fromkeys(version_ids))
    if not wanted:
        return []
    # Locked in one order (PostgreSQL): two requests claiming the same uploads in opposite
    # orders wait for each other, and the second finds them claimed, instead of each
    # holding one the other needs (a deadlock, which the database ends with an error).
    locked = (
        select(DocumentVersion)
        .where(DocumentVersion.id.in_(wanted))
        .order_by(DocumentVersion.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = {v.id: v for v in await session.scalars(locked)}
    to_claim: list[filing.NewVersion] = []
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
        content = filing.Content(
            version.file_name, version.sha256, version.size, version.content_type
        )
        to_claim.append(
            filing.NewVersion(
                document.id,
                content,
                version.description,
                unclaimed_id=version.id,
                uploaded_at=version.created_at,
            )
        )
    if not to_claim:
        return []
    filed = await filing.file(session, scope, versions=to_claim)
    # The session's entities of the claimed rows and the document are stale now.
    for claimed in to_claim:
        if (stale := rows.get(claimed.unclaimed_id or 0)) is not None:
            session.expire(stale)
    session.expire(document)
    return filed.events


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
