"""Attachments: a document's versions, listed, added, read, deleted and downloaded; and
uploads without a container, which a document claims later (domain/unclaimed.py)."""

from __future__ import annotations

from fastapi import Request, Response

from casefolio.api.deps import PrincipalDep, SessionDep, StateDep, check_writable_document
from casefolio.api.downloads import DOWNLOAD_RESPONSES, blob_response
from casefolio.api.routing import dialect_router
from casefolio.api.uploads import ReceivedUpload, multipart_request_body
from casefolio.api.v3 import payloads, render
from casefolio.api.v3.error_responses import COMMON_V3_ERRORS, v3_errors
from casefolio.api.v3.hal import HalResponse
from casefolio.api.v3.paths import ATTACHMENT_NOT_FOUND, AttachmentPathId, DocumentPathId
from casefolio.api.v3.problems import not_found_as
from casefolio.api.v3.uploads import receive_attachment, require_multipart
from casefolio.domain import documents, intake, unclaimed, versions
from casefolio.domain.intake import NewFile
from casefolio.domain.roles import Capability

router = dialect_router(
    "/api/v3",
    "v3 attachments",
    default_response_class=HalResponse,
    responses=COMMON_V3_ERRORS,
)


@router.get("/documents/{document_id:id}/attachments", summary="List a document's attachments")
async def list_attachments(
    document_id: DocumentPathId, session: SessionDep, who: PrincipalDep
) -> HalResponse:
    _, doc = await documents.load_scoped(
        session, who=who, document_id=document_id, capability=Capability.DOCUMENTS_READ
    )
    rows = await versions.list_all(session, who=who, document_id=document_id)
    return HalResponse(await render.attachment_collection(session, who, doc, rows))


ATTACHMENT_BODY = multipart_request_body(
    payloads.ATTACHMENT_METADATA_SCHEMA, metadata_required=True, raw_body=False
)


def _new_file(upload: ReceivedUpload) -> tuple[NewFile, str]:
    meta = payloads.attachment_metadata(upload.metadata, upload.part_file_name)
    content_type = intake.media_type(meta.content_type) or upload.part_content_type
    return NewFile(upload.spooled, meta.file_name or "", content_type), meta.description


@router.post(
    "/attachments",
    status_code=201,
    summary="Upload an attachment without a container, for a document to claim",
    description="Same body as `POST /documents/{id}/attachments`. The attachment is visible "
    "to its uploader only until a `PATCH /documents/{id}` links it in `_links.attachments`; "
    "`casefolio gc` removes it once `CASEFOLIO_UNCLAIMED_ATTACHMENT_HOURS` have passed.",
    openapi_extra=ATTACHMENT_BODY,
    responses=v3_errors(415, 422),
)
async def upload_unclaimed(
    request: Request, session: SessionDep, who: PrincipalDep, state: StateDep
) -> HalResponse:
    require_multipart(request)
    async with receive_attachment(request, state) as upload:
        file, description = _new_file(upload)
        version, _ = await unclaimed.create(
            session, who=who, blobs=state.blobs, received=file, description=description
        )
    return HalResponse(await render.unclaimed_attachment(session, who, version), status_code=201)


@router.post(
    "/documents/{document_id:id}/attachments",
    status_code=201,
    summary="Add an attachment (a new version of the document)",
    description="`multipart/form-data` with a `metadata` part (JSON: `fileName`, optional "
    "`description` {raw}, `contentType`) and a `file` part; the body streams to disk.",
    openapi_extra=ATTACHMENT_BODY,
    responses=v3_errors(409, 415, 422),
)
async def add_attachment(
    document_id: DocumentPathId,
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
) -> HalResponse:
    require_multipart(request)
    doc = await check_writable_document(state, who, document_id)
    async with receive_attachment(request, state) as upload:
        file, description = _new_file(upload)
        filed = await intake.replace(
            session,
            who=who,
            document_id=document_id,
            blobs=state.blobs,
            received=file,
            description=description,
        )
    [out] = await render.attachments(session, who, doc, filed.versions)
    return HalResponse(out, status_code=201)


@router.get("/attachments/{attachment_id:id}", summary="View an attachment")
async def read_attachment(
    attachment_id: AttachmentPathId, session: SessionDep, who: PrincipalDep
) -> HalResponse:
    with not_found_as(ATTACHMENT_NOT_FOUND):
        if own := await unclaimed.find(session, who=who, version_id=attachment_id):
            return HalResponse(await render.unclaimed_attachment(session, who, own))
        doc, version = await versions.get(session, who=who, version_id=attachment_id)
    return HalResponse(await render.attachment(session, who, doc, version))


@router.delete(
    "/attachments/{attachment_id:id}",
    status_code=204,
    response_class=Response,
    summary="Delete an attachment (never a document's last one)",
    responses=v3_errors(409),
)
async def delete_attachment(
    attachment_id: AttachmentPathId, session: SessionDep, who: PrincipalDep
) -> Response:
    with not_found_as(ATTACHMENT_NOT_FOUND):
        own = await unclaimed.find(session, who=who, version_id=attachment_id)
        # One a document claimed meanwhile is deleted as the version it has become.
        if own is None or not await unclaimed.delete(session, version=own):
            await versions.delete(session, who=who, version_id=attachment_id)
    return Response(status_code=204)


@router.get(
    "/attachments/{attachment_id:id}/content",
    response_class=Response,
    summary="Download an attachment (needs the project's downloadViaApi)",
    responses=DOWNLOAD_RESPONSES,
)
async def download_attachment(
    attachment_id: AttachmentPathId,
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
) -> Response:
    with not_found_as(ATTACHMENT_NOT_FOUND):
        # The uploader may fetch their own unclaimed file: no project's setting applies yet.
        version = await unclaimed.find(
            session, who=who, version_id=attachment_id
        ) or await versions.for_download(session, who=who, version_id=attachment_id)
    return await blob_response(request, state.blobs, version, whole_version=True)
