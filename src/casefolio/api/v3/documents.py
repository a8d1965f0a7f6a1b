"""Documents: the collection, one document, and its update."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.routing import dialect_router
from casefolio.api.v3 import hal, paging, payloads, queries, render
from casefolio.api.v3.error_responses import COMMON_V3_ERRORS, v3_errors
from casefolio.api.v3.hal import HalResponse
from casefolio.api.v3.paths import DocumentPathId
from casefolio.api.v3.problems import constraint_on
from casefolio.domain import documents, unclaimed, versions
from casefolio.domain.documents import DocumentView
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability

router = dialect_router(
    "/api/v3",
    "v3 documents",
    default_response_class=HalResponse,
    responses=COMMON_V3_ERRORS,
)
DEFAULT_PAGE_SIZE = 30  # what OpenProject's documents collection shows by default


@router.get("/documents", summary="List the documents the caller may view")
async def list_documents(
    session: SessionDep, who: PrincipalDep, query: paging.CollectionQueryDep
) -> HalResponse:
    params = query.page(default_size=DEFAULT_PAGE_SIZE)
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = queries.document_query(
        who, filters=query.filters, sort_by=query.sort_by, postgres=postgres
    )
    total, rows = await paging.fetch(session, stmt, params)
    elements = await render.documents(session, who, rows)
    return HalResponse(paging.offset_collection(hal.documents(), params, total, elements))


async def _with_attachments(
    session: AsyncSession, who: Principal, view: DocumentView
) -> HalResponse:
    """The document as v3 answers it: with its versions, as attachments."""
    rows = await versions.list_all(session, who=who, document_id=view.document.id)
    return HalResponse(await render.document(session, who, view.document, rows))


@router.get("/documents/{document_id:id}", summary="View a document with its attachments")
async def read_document(
    document_id: DocumentPathId, session: SessionDep, who: PrincipalDep
) -> HalResponse:
    view = await documents.get(session, who=who, document_id=document_id)
    return await _with_attachments(session, who, view)


@router.patch(
    "/documents/{document_id:id}",
    summary="Update a document's title or description, or claim uploads",
    description="`_links.attachments` may link the caller's own uploads without a container "
    "(`POST /api/v3/attachments`); each becomes a new version of the document, the last one "
    "current.",
    responses=v3_errors(415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": payloads.DOCUMENT_PATCH_SCHEMA}},
        }
    },
)
async def update_document(
    document_id: DocumentPathId, request: Request, session: SessionDep, who: PrincipalDep
) -> HalResponse:
    # Visibility (404) and permission (403) are answered before the body is judged (422).
    await documents.load_scoped(
        session, who=who, document_id=document_id, capability=Capability.DOCUMENTS_WRITE
    )
    changes = payloads.document_changes(await payloads.json_object(request))
    view = await documents.update_details(
        session,
        who=who,
        document_id=document_id,
        title=changes.title,
        description=changes.description,
    )
    if changes.attachment_ids:
        with constraint_on("attachments"):
            await unclaimed.claim(
                session, who=who, document_id=document_id, version_ids=changes.attachment_ids
            )
        view = await documents.get(session, who=who, document_id=document_id)
    return await _with_attachments(session, who, view)
