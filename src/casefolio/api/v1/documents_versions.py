"""A document's versions: list, read, delete and download one. Routes of the `documents`
tag, beside api/v1/documents.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.deps import (
    PrincipalDep,
    SessionDep,
    StateDep,
)
from casefolio.api.downloads import DOWNLOAD_RESPONSES, blob_response
from casefolio.api.ids import DocumentId, ProjectId
from casefolio.api.pagination import ListingDep
from casefolio.api.state import AppState
from casefolio.api.v1.documents_render import VersionOut
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import problem_responses
from casefolio.db.models import DocumentVersion
from casefolio.domain import versions
from casefolio.domain.principal import Principal

router = v1_router("documents")
VersionId = Annotated[
    str,
    # The pattern is documented, not enforced here: parse_version_id gives the seed's 400.
    Path(
        alias="versionId",
        description="A version id (digits).",
        json_schema_extra={"pattern": "^[1-9][0-9]{0,17}$", "maxLength": 18},
    ),
]


@router.get(
    "/projects/{projectId}/documents/{documentId}/versions",
    response_model=list[VersionOut],
    summary="List a document's versions, oldest first",
)
async def list_versions(
    project_id: ProjectId,
    document_id: DocumentId,
    session: SessionDep,
    who: PrincipalDep,
    listing: ListingDep,
) -> list[VersionOut]:
    page = await versions.list_page(
        session, who=who, project_id=project_id, document_id=document_id, page=listing.page
    )
    return [VersionOut.model_validate(v) for v in listing.items(page)]


async def _version(
    session: SessionDep, who: PrincipalDep, project_id: int, document_id: int, version_id: str
) -> DocumentVersion:
    _, version = await versions.get(
        session,
        who=who,
        project_id=project_id,
        document_id=document_id,
        version_id=versions.parse_version_id(version_id),
    )
    return version


@router.get(
    "/projects/{projectId}/documents/{documentId}/versions/{versionId}",
    response_model=VersionOut,
    summary="Read one version",
)
async def read_version(
    project_id: ProjectId,
    document_id: DocumentId,
    version_id: VersionId,
    session: SessionDep,
    who: PrincipalDep,
) -> VersionOut:
    version = await _version(session, who, project_id, document_id, version_id)
    return VersionOut.model_validate(version)


@router.delete(
    "/projects/{projectId}/documents/{documentId}/versions/{versionId}",
    status_code=204,
    summary="Delete a version (never the only one)",
    responses=problem_responses(
        {409: "The only version, or a legal hold covers the document (the detail names the holds)."}
    ),
)
async def delete_version(
    project_id: ProjectId,
    document_id: DocumentId,
    version_id: VersionId,
    session: SessionDep,
    who: PrincipalDep,
) -> None:
    await versions.delete(
        session,
        who=who,
        project_id=project_id,
        document_id=document_id,
        version_id=versions.parse_version_id(version_id),
    )


@router.get(
    "/projects/{projectId}/documents/{documentId}/versions/{versionId}/content",
    summary="Download one version (needs the project's downloadViaApi)",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
)
async def download_version(
    request: Request,
    project_id: ProjectId,
    document_id: DocumentId,
    version_id: VersionId,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
) -> Response:
    return await download(request, session, who, state, project_id, document_id, version_id)


async def download(
    request: Request,
    session: AsyncSession,
    who: Principal,
    state: AppState,
    project_id: int,
    document_id: int,
    version_id: str | None = None,
) -> Response:
    """Both download routes: the document's current version (`version_id` None) or one
    version by its id, once the project's downloadViaApi allows it. Which of the two the URL
    names decides how blob_response answers (its ETag rule and its audit entry)."""
    version = await versions.for_download(
        session,
        who=who,
        project_id=project_id,
        document_id=document_id,
        version_id=None if version_id is None else versions.parse_version_id(version_id),
    )
    by_id = version_id is not None
    return await blob_response(
        request, state.blobs, version, whole_version=by_id, current=not by_id
    )
