"""The trash of a project: deleted documents and versions, restorable until the purge
(Project Admins)."""

from __future__ import annotations

from datetime import datetime

from casefolio.api.deps import PrincipalDep, SessionDep, StateDep
from casefolio.api.ids import DocumentId, ProjectId
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.documents_render import DocumentOut, VersionOut, document_out
from casefolio.api.v1.documents_versions import VersionId
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import ApiModel, Timestamp, WireId
from casefolio.domain import documents, trash, versions

router = v1_router("trash")


class TrashedOut(ApiModel):
    id: WireId
    project_id: WireId
    folder_id: WireId | None
    title: str
    trashed_at: Timestamp
    purge_after: Timestamp


class TrashedVersionOut(VersionOut):
    document_title: str
    trashed_at: Timestamp
    purge_after: Timestamp


@router.get(
    "/projects/{projectId}/trash",
    response_model=list[TrashedOut],
    summary="List the project's deleted documents (restorable until purgeAfter)",
    description="Oldest deletion first. A document a legal hold covers is not purged, even "
    "after purgeAfter.",
)
async def list_trash(
    project_id: ProjectId,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
    listing: ListingDep,
) -> list[TrashedOut]:
    page = await trash.list_page(
        session, who=who, project_id=project_id, page=listing.page_by(datetime, int)
    )
    days = state.settings.trash_days
    return [
        TrashedOut(
            id=d.id,
            project_id=d.project_id,
            folder_id=d.folder_id,
            title=d.title,
            trashed_at=d.trashed_at,
            purge_after=trash.expires_at(d, days),
        )
        for d in listing.items(page)
    ]


@router.post(
    "/projects/{projectId}/trash/{documentId}/restore",
    response_model=DocumentOut,
    summary="Restore a deleted document: the same id, versions and fields",
    description="The document returns to its folder (to the project root if the folder was "
    "deleted meanwhile) and its updatedAt becomes now, so afterDate syncs see it again. 404 "
    "if it is not in the trash (never deleted, restored already, or purged).",
)
async def restore_document(
    project_id: ProjectId, document_id: DocumentId, session: SessionDep, who: PrincipalDep
) -> DocumentOut:
    restored = await trash.restore(session, who=who, project_id=project_id, document_id=document_id)
    return document_out(await documents.view(session, restored))


@router.get(
    "/projects/{projectId}/trash/versions",
    response_model=list[TrashedVersionOut],
    summary="List the project's deleted versions (restorable until purgeAfter)",
    description="Oldest deletion first. Versions of documents that are in the trash "
    "themselves are not listed: they come back with their document. A version whose document "
    "a legal hold covers is not purged, even after purgeAfter.",
)
async def list_trashed_versions(
    project_id: ProjectId,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
    listing: ListingDep,
) -> list[TrashedVersionOut]:
    page = await trash.list_versions_page(
        session, who=who, project_id=project_id, page=listing.page_by(datetime, int)
    )
    days = state.settings.trash_days
    return [
        TrashedVersionOut(
            **dict(VersionOut.model_validate(t.version)),
            document_title=t.document_title,
            trashed_at=t.version.trashed_at,
            purge_after=trash.expires_at(t.version, days),
        )
        for t in listing.items(page)
    ]


@router.post(
    "/projects/{projectId}/trash/versions/{versionId}/restore",
    response_model=VersionOut,
    summary="Restore a deleted version: the same id and content",
    description="The document's current version becomes its newest version again (this one "
    "if it is the newest) and its updatedAt becomes now. 404 if the version is not in the "
    "trash (never deleted, restored already, or purged) or its document is in the trash "
    "(restore the document first).",
)
async def restore_version(
    project_id: ProjectId, version_id: VersionId, session: SessionDep, who: PrincipalDep
) -> VersionOut:
    restored = await trash.restore_version(
        session, who=who, project_id=project_id, version_id=versions.parse_version_id(version_id)
    )
    return VersionOut.model_validate(restored)
