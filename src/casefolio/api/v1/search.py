"""Full-text search of document contents (search/), and how far its extraction has got."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request, Response

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import query_id
from casefolio.api.pagination import CURSOR_PATTERN, link_next
from casefolio.api.v1.documents import AfterDate, parse_after_date
from casefolio.api.v1.documents_render import DocumentOut, VersionOut, document_out, version_out
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import ApiModel, Timestamp, WireId
from casefolio.search import query, service, status
from casefolio.search.hits import Hit

router = v1_router("search")

QUERY_DOC = (
    'What to find (docs/api.md, Search): words (all of them), "a phrase", -excluded, '
    f"`OR` between alternatives, prefix* (at least {query.MIN_PREFIX} characters); at most "
    f"{query.MAX_QUERY_CHARS} characters and {query.MAX_TERMS} words and phrases. Case and "
    "accents do not matter. Invalid syntax is a 400 saying why."
)


class ProjectRef(ApiModel):
    id: WireId
    name: str


class FolderRef(ApiModel):
    id: WireId
    name: str


class SearchHitOut(ApiModel):
    document: DocumentOut
    project: ProjectRef
    folder: FolderRef | None
    #: The version whose text matched: the current one, or any with versions=all.
    version: VersionOut
    score: float
    snippet: str


class FailedVersionOut(ApiModel):
    document_id: WireId
    version_id: WireId
    file_name: str
    reason: str
    extracted_at: Timestamp | None


class SearchStatusOut(ApiModel):
    pending: int
    done: int
    failed: int
    failures: list[FailedVersionOut]


def _hit_out(hit: Hit) -> SearchHitOut:
    document = hit.view.document
    return SearchHitOut(
        document=document_out(hit.view),
        project=ProjectRef(id=document.project_id, name=hit.project_name),
        folder=None
        if document.folder_id is None or hit.folder_name is None
        else FolderRef(id=document.folder_id, name=hit.folder_name),
        version=version_out(hit.version),
        score=hit.score,
        snippet=hit.snippet,
    )


# Below a text field's own limit: the whole URL must fit httptools' limit even when every
# character takes twelve bytes percent-encoded (docs/api.md, Limits on input).
MAX_FIELD_VALUE_CHARS = 4_000

QueryText = Annotated[
    str, Query(min_length=1, max_length=query.MAX_QUERY_CHARS, description=QUERY_DOC)
]


@router.get(
    "/search",
    response_model=list[SearchHitOut],
    summary="Search the text of the documents you can read, best match first",
)
async def search_documents(
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    q: QueryText,
    project_id: Annotated[
        int | None,
        query_id("projectId", description="Only this project (404 if you cannot see it)."),
    ] = None,
    folder_id: Annotated[
        int | None,
        query_id(
            "folderId",
            description="Only this folder, not its subfolders (404 if you cannot see it, or it "
            "is not in projectId).",
        ),
    ] = None,
    field_id: Annotated[
        int | None, query_id("fieldId", description="With fieldValue: documents with it.")
    ] = None,
    field_value: Annotated[
        str | None, Query(alias="fieldValue", max_length=MAX_FIELD_VALUE_CHARS)
    ] = None,
    after_date: AfterDate = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = service.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, pattern=CURSOR_PATTERN)] = None,
    versions: Annotated[
        Literal["current", "all"],
        Query(description="`all`: match every version's text, not just the current one's."),
    ] = "current",
) -> Response:
    request_ = service.Search(
        q=q,
        project_id=project_id,
        folder_id=folder_id,
        field_id=field_id,
        field_value=field_value,
        after_date=parse_after_date(after_date) if after_date is not None else None,
        all_versions=versions == "all",
        limit=limit,
        cursor=cursor,
    )
    page = await service.search(session, who, request_)
    body = "[" + ",".join(_hit_out(h).model_dump_json(by_alias=True) for h in page.items) + "]"
    response = Response(body, media_type="application/json")
    link_next(request, response, page)
    return response


@router.get(
    "/search/status",
    response_model=SearchStatusOut,
    summary="How many versions' text is extracted, waiting, or failed (with the reasons)",
)
async def search_status(
    session: SessionDep,
    who: PrincipalDep,
    project_id: Annotated[int | None, query_id("projectId")] = None,
) -> SearchStatusOut:
    found = await status.summary(session, who, project_id=project_id)
    return SearchStatusOut(
        pending=found.counts.get("pending", 0),
        done=found.counts.get("done", 0),
        failed=found.counts.get("failed", 0),
        failures=[FailedVersionOut.model_validate(f) for f in found.failures],
    )
