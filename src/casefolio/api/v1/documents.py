"""Documents: list, read, change, move, delete, field values. How a document is rendered
is documents_render.py; content in and out is documents_content.py, versions
documents_versions.py."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Body, Path, Query, Request, Response
from pydantic import Field
from starlette.convertors import Convertor, register_url_convertor

from casefolio.api.deps import (
    PrincipalDep,
    SessionDep,
    state_of,
)
from casefolio.api.ids import DocumentId, ProjectId, digits_id, path_id
from casefolio.api.pagination import PageDep, PageParams, link_next, page_request
from casefolio.api.v1.documents_render import DocumentOut, document_out, list_json, views_json

# Re-exported: documents_versions.py imports it from here.
from casefolio.api.v1.routing import patch_route, v1_router
from casefolio.api.v1.schemas import (
    ONE_LINE,
    ApiInput,
    json_response,
    problem_responses,
)
from casefolio.db.reads import Reader
from casefolio.domain import document_pages, documents, text, trash
from casefolio.domain.errors import Invalid
from casefolio.domain.pages import Page, PageRequest
from casefolio.domain.principal import Principal
from casefolio.fastpath.routes import direct_get
from casefolio.search import query as search_query
from casefolio.search import service as search_service

router = v1_router("documents")
AFTER_DATE_PATTERN = (
    # Only real dates (29 February aside, which the server takes in leap years).
    r"^([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)-"
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-8]))"
    r"([Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
)
BAD_TIMESTAMP = "Invalid timestamp format. Use format YYYY-MM-DDTHH:MM:SSZ"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


class DocumentUpdate(ApiInput):
    title: str | None = Field(
        None, min_length=1, max_length=text.MAX_TITLE, json_schema_extra=ONE_LINE
    )
    description: str | None = Field(None, max_length=text.MAX_DESCRIPTION)


class FieldValueIn(ApiInput):
    value: Any = Field(description="Checked against the field's type; null clears the value.")


def parse_after_date(raw: str, field: str = "afterDate") -> datetime:
    """Given afterDate (RFC 3339 or YYYY-MM-DD), return an aware UTC datetime or raise Invalid
    naming `field`, the parameter that sent it (the audit trail's `after` and `before`)."""
    raw = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
        if _RFC3339.fullmatch(raw):
            normalised = raw.replace("z", "Z").replace("Z", "+00:00").replace(" ", "T")
            return datetime.fromisoformat(normalised).astimezone(UTC)
    except ValueError:
        pass
    except OverflowError:  # well-formed, but past year 9999 (or before 1) once in UTC
        raise Invalid(
            f"{raw[:40]!r} lies outside the years 1 to 9999 once converted to UTC.",
            [{"field": field, "message": "outside years 1 to 9999 in UTC"}],
        ) from None
    raise Invalid(BAD_TIMESTAMP, [{"field": field, "message": "not RFC 3339"}])


async def _page(
    request: Request,
    who: Principal,
    params: PageParams,
    project_id: int,
    folder_id: int | None,
    after_date: str | None,
    q: str | None = None,
) -> Response:
    # Sync clients poll these: read through the read model (fastpath/, as the document
    # read), and answered with JSON serialized once, not validated again by FastAPI.
    changed_since = parse_after_date(after_date) if after_date is not None else None
    if q is not None:  # best match first, as GET /search orders them (search/)
        return await _searched(request, who, params, project_id, folder_id, changed_since, q)
    wanted = page_request(params, (datetime, int))
    # The answer depends on the database, the caller and these alone: kept while the
    # database is unchanged (fastpath/answers.py), as sync clients poll the same pages.
    key = (_listed_page, who, project_id, folder_id, changed_since, wanted.limit, wanted.after)
    body, next_cursor = await state_of(request).reads.remembered(
        key,
        partial(
            _listed_page,
            who=who,
            project_id=project_id,
            folder_id=folder_id,
            changed_since=changed_since,
            page=wanted,
        ),
        size=_weight,
    )
    response = Response(body, media_type="application/json")
    link_next(request, response, Page([], next_cursor))
    return response


async def _listed_page(
    db: Reader,
    *,
    who: Principal,
    project_id: int,
    folder_id: int | None,
    changed_since: datetime | None,
    page: PageRequest,
) -> tuple[bytes, str | None]:
    """A page of documents as its answer's body, and the cursor of the next."""
    listed = await document_pages.list_page(
        db,
        who=who,
        project_id=project_id,
        folder_id=folder_id,
        changed_since=changed_since,
        page=page,
    )
    return list_json(listed.items), listed.next_cursor


def _weight(answer: tuple[bytes, str | None]) -> int:
    return len(answer[0])


async def _searched(
    request: Request,
    who: Principal,
    params: PageParams,
    project_id: int,
    folder_id: int | None,
    changed_since: datetime | None,
    q: str,
) -> Response:
    wanted = search_service.Search(
        q=q,
        project_id=project_id,
        folder_id=folder_id,
        after_date=changed_since,
        limit=params.limit,
        cursor=params.cursor,
        snippets=False,
    )
    async with state_of(request).db.read() as session:
        page = await search_service.search(session, who, wanted)
    response = Response(views_json([hit.view for hit in page.items]), media_type="application/json")
    link_next(request, response, page)
    return response


SearchText = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=search_query.MAX_QUERY_CHARS,
        description="Only documents whose text matches this search (GET /api/v1/search's "
        "language), best match first instead of in (updatedAt, id) order.",
    ),
]


AfterDate = Annotated[
    str | None,
    Query(
        alias="afterDate",
        max_length=64,
        description="Only documents changed at or after this instant (RFC 3339 or YYYY-MM-DD).",
        # Documented, not enforced here: parse_after_date answers with the seed's message.
        json_schema_extra={"pattern": AFTER_DATE_PATTERN},
    ),
]


@direct_get(
    router,
    "/projects/{projectId}/documents",
    response_model=list[DocumentOut],
    summary="List a project's documents in (updatedAt, id) order",
)
async def list_documents(
    request: Request,
    project_id: ProjectId,
    who: PrincipalDep,
    params: PageDep,
    after_date: AfterDate = None,
    q: SearchText = None,
) -> Response:
    return await _page(request, who, params, project_id, None, after_date, q)


@direct_get(
    router,
    "/projects/{projectId}/documents/folder/{folderId}",
    response_model=list[DocumentOut],
    summary="List the documents in one folder",
)
async def list_folder_documents(
    request: Request,
    project_id: ProjectId,
    folder_id: Annotated[int, path_id("folderId")],
    who: PrincipalDep,
    params: PageDep,
    after_date: AfterDate = None,
    q: SearchText = None,
) -> Response:
    return await _page(request, who, params, project_id, folder_id, after_date, q)


@direct_get(
    router,
    "/projects/{projectId}/documents/{documentId}",
    response_model=DocumentOut,
    summary="Read a document's metadata",
)
async def read_document(
    project_id: ProjectId, document_id: DocumentId, request: Request, who: PrincipalDep
) -> Response:
    # The route integrations call most: served as a DirectRoute, read through the read
    # model (fastpath/) by one statement, and answered with JSON FastAPI need not validate
    # a second time (bench/README.md).
    get = partial(documents.get, who=who, project_id=project_id, document_id=document_id)
    view = await state_of(request).reads.read(get)
    return json_response(document_out(view))


@patch_route(
    router,
    "/projects/{projectId}/documents/{documentId}",
    response_model=DocumentOut,
    summary="Change a document's title or description",
)
async def update_document(
    project_id: ProjectId,
    document_id: DocumentId,
    body: DocumentUpdate,
    session: SessionDep,
    who: PrincipalDep,
) -> DocumentOut:
    view = await documents.update_details(
        session,
        who=who,
        project_id=project_id,
        document_id=document_id,
        title=body.title,
        description=body.description,
    )
    return document_out(view)


@router.delete(
    "/projects/{projectId}/documents/{documentId}",
    status_code=204,
    summary="Delete a document with all its versions (Project Admin)",
    description="The document goes to the project's trash: from now on it answers 404 "
    "everywhere, and a Project Admin can restore it (`POST …/trash/{documentId}/restore`) "
    "for `CASEFOLIO_TRASH_DAYS` days.",
    responses=problem_responses(
        {409: "A legal hold covers the document; the detail names the holds."}
    ),
)
async def delete_document(
    project_id: ProjectId, document_id: DocumentId, session: SessionDep, who: PrincipalDep
) -> None:
    await trash.delete(session, who=who, project_id=project_id, document_id=document_id)


class FolderRef(Convertor[str]):
    """`{folderId}` of the move route: anything but the names of a document's other
    resources, so that `PUT …/content` is the 405 it is, not a move into folder "content"."""

    regex = r"(?!(?:content|replace|versions)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("folderref", FolderRef())
#: What the move route's folderId takes, as documented: `root`, 0, or an id.
FOLDER_REF = "^(root|0|[1-9][0-9]{0,17})$"


@router.put(
    "/projects/{projectId}/documents/{documentId}/{folderId:folderref}",
    response_model=DocumentOut,
    summary="Move a document into a folder (`root` or 0 for the project root; no body needed)",
)
async def move_document(
    project_id: ProjectId,
    document_id: DocumentId,
    folder_id: Annotated[
        str, Path(alias="folderId", max_length=20, json_schema_extra={"pattern": FOLDER_REF})
    ],
    session: SessionDep,
    who: PrincipalDep,
) -> DocumentOut:
    if folder_id in ("root", "0"):
        target = None
    elif (target := digits_id(folder_id)) is None:
        raise Invalid(
            "folderId must be a folder id, or `root` for the project root.",
            [{"field": "folderId", "message": "not an id"}],
        )
    view = await documents.move(
        session, who=who, project_id=project_id, document_id=document_id, folder_id=target
    )
    return document_out(view)


@router.put(
    "/projects/{projectId}/documents/{documentId}/fields/{fieldId}",
    response_model=DocumentOut,
    summary="Set (or with null, clear) a field value on a document",
)
async def set_field_value(
    project_id: ProjectId,
    document_id: DocumentId,
    field_id: Annotated[int, path_id("fieldId")],
    body: Annotated[FieldValueIn, Body()],
    session: SessionDep,
    who: PrincipalDep,
) -> DocumentOut:
    view = await documents.set_field(
        session,
        who=who,
        project_id=project_id,
        document_id=document_id,
        field_id=field_id,
        value=body.value,
    )
    return document_out(view)
