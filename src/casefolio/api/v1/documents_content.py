"""Document content in and out: upload a new document, upload a new version of one
(replace), download the current version. Routes of the `documents` tag, beside
api/v1/documents.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError

from casefolio.api import jsonbody
from casefolio.api.deps import (
    PrincipalDep,
    SessionDep,
    StateDep,
    UploadProjectId,
    check_writable_document,
)
from casefolio.api.downloads import DOWNLOAD_RESPONSES
from casefolio.api.ids import BodyId, DocumentId, ProjectId
from casefolio.api.uploads import ReceivedUpload, multipart_request_body, receive
from casefolio.api.v1.documents_render import DocumentOut, document_out
from casefolio.api.v1.documents_versions import download
from casefolio.api.v1.routing import F, v1_router
from casefolio.api.v1.schemas import ONE_LINE, ApiInput, json_response, problem_responses
from casefolio.domain import documents, intake, text
from casefolio.domain.intake import NewFile
from casefolio.fastpath.routes import direct_route

router = v1_router("documents")
METADATA = ("metadata",)
FILE_NAME_DOC = (
    "The file name (the last path segment is kept; control and format characters are "
    "dropped; a name over 255 characters is shortened, keeping its extension)."
)
UPLOAD_DOC = (
    "Send `multipart/form-data` with a `file` part and an optional `metadata` part (JSON: "
    "`title`, `folderId`, `description`, `fields`), or the raw bytes as the body with the "
    "file's `Content-Type` and `?fileName=`. Bodies stream to disk while hashed."
)


class UploadMetadata(ApiInput):
    title: str | None = Field(
        None, min_length=1, max_length=text.MAX_TITLE, json_schema_extra=ONE_LINE
    )
    folder_id: BodyId | None = None
    description: str = Field("", max_length=text.MAX_DESCRIPTION)
    fields: dict[str, Any] = Field(default_factory=dict, description="Values by field id or name.")
    file_name: str | None = Field(None, max_length=text.MAX_FILE_NAME_INPUT)


#: Multipart with a `file` part and an optional JSON `metadata` part, or the raw bytes.
UPLOAD_BODY = multipart_request_body(
    UploadMetadata.model_json_schema(), metadata_required=False, raw_body=True
)


def _metadata(upload: ReceivedUpload) -> UploadMetadata:
    if not upload.metadata:
        return UploadMetadata()
    # Parsed and refused as a JSON body is (api/jsonbody.py), its errors named `metadata.…`.
    parsed = jsonbody.loads(upload.metadata, METADATA)
    try:
        return UploadMetadata.model_validate(parsed)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": (*METADATA, *e["loc"])} for e in exc.errors()]
        ) from None


def _new_file(upload: ReceivedUpload, meta: UploadMetadata, file_name: str | None) -> NewFile:
    name = meta.file_name or upload.part_file_name or file_name
    return NewFile(upload.spooled, name or "", upload.part_content_type)


FileNameQuery = Annotated[
    str | None,
    Query(alias="fileName", max_length=text.MAX_FILE_NAME_INPUT, description=FILE_NAME_DOC),
]


async def _file_upload(
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
    project_id: int,
    file_name: str | None,
    document_id: int | None = None,
    reject_duplicate: bool = False,
) -> Response:
    """Upload and replace alike: receive the body, then file it as a new document or, given
    `document_id`, as its new version; answer 201 with the document, serialized once."""
    async with receive(request, state) as upload:
        meta = _metadata(upload)
        received = _new_file(upload, meta, file_name)
        if document_id is None:
            view, _ = await intake.upload(
                session,
                who=who,
                project_id=project_id,
                blobs=state.blobs,
                received=received,
                title=meta.title,
                folder_id=meta.folder_id,
                description=meta.description,
                field_values=meta.fields,
                reject_duplicate=reject_duplicate,
            )
            # Committed before the answer is rendered (get_session's commit then has nothing
            # left to do): on SQLite every step until the commit holds the one write lock.
            await session.commit()
            return json_response(document_out(view), 201)
        await intake.replace(
            session,
            who=who,
            project_id=project_id,
            document_id=document_id,
            blobs=state.blobs,
            received=received,
            description=meta.description,
        )
    view = await documents.get(session, who=who, document_id=document_id)
    return json_response(document_out(view), 201)


#: What every upload may answer besides the common errors (api/v1/schemas.py).
UPLOAD_RESPONSES = problem_responses(
    {
        409: "The file's stored bytes were removed by a clean-up (`casefolio gc`, the trash's "
        "purge) while it was filed: nothing was saved; send the file again.",
        413: "Larger than CASEFOLIO_MAX_UPLOAD_BYTES: nothing kept.",
    }
)


def _upload_route(
    path: str, summary: str, responses: dict[int | str, dict[str, object]] | None = None
) -> Callable[[F], F]:
    """A route that receives a file (multipart or the raw body, UPLOAD_DOC) and answers
    201 with the document it filed."""
    # A DirectRoute (fastpath/routes.py): integrations upload one file after another.
    return direct_route(
        router,
        path,
        methods=["POST"],
        status_code=201,
        response_model=DocumentOut,
        summary=summary,
        description=UPLOAD_DOC,
        openapi_extra=UPLOAD_BODY,
        responses=UPLOAD_RESPONSES | (responses or {}),
    )


@_upload_route(
    "/projects/{projectId}/documents",
    "Upload a new document",
    responses=problem_responses(
        {
            409: "?rejectDuplicate=true: the content is held (the detail names the document); "
            "or a clean-up removed the stored bytes while the file was filed."
        }
    ),
)
async def upload_document(
    request: Request,
    project_id: UploadProjectId,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
    file_name: FileNameQuery = None,
    reject_duplicate: Annotated[bool, Query(alias="rejectDuplicate")] = False,
) -> Response:
    return await _file_upload(
        request, session, who, state, project_id, file_name, reject_duplicate=reject_duplicate
    )


@_upload_route(
    "/projects/{projectId}/documents/{documentId}/replace", "Upload a new version of a document"
)
async def replace_document(
    request: Request,
    project_id: ProjectId,
    document_id: DocumentId,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
    file_name: FileNameQuery = None,
) -> Response:
    await check_writable_document(state, who, document_id, project_id)
    return await _file_upload(
        request, session, who, state, project_id, file_name, document_id=document_id
    )


@router.get(
    "/projects/{projectId}/documents/{documentId}/content",
    summary="Download the current version (needs the project's downloadViaApi)",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
)
async def download_document(
    request: Request,
    project_id: ProjectId,
    document_id: DocumentId,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
) -> Response:
    return await download(request, session, who, state, project_id, document_id)
