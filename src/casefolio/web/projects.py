"""Projects, their folders and document lists, and uploads: the same domain calls, with the
same access checks, as the API routes that do the same things."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from markupsafe import Markup

from casefolio.api.deps import SessionDep, check_may_upload
from casefolio.api.ids import PathId, optional_id, query_id
from casefolio.api.uploads import receive
from casefolio.db.reads import Reader
from casefolio.domain import access, browse, folders, intake, projects, templates
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Invalid
from casefolio.domain.intake import NewFile
from casefolio.domain.pages import MAX_LIMIT, PageRequest, request_after
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.web.deps import WebForm, WebRoute, WebUser, WebWriter, wants_json
from casefolio.web.http import fragment, html_page, render, see_other, state_of

router = APIRouter(include_in_schema=False, route_class=WebRoute)
#: The metadata part the plain upload form's checkbox sends (the file is the body).
REJECT_DUPLICATE_PART = b"rejectDuplicate"


@dataclass
class FolderNode:
    folder: browse.FolderEntry
    depth: int
    children: list[FolderNode] = field(default_factory=list)


def folder_tree(rows: list[browse.FolderEntry]) -> list[FolderNode]:
    """Given a project's folders, return them in tree order (parents before children, by
    name), each with its depth."""
    by_parent: dict[int | None, list[browse.FolderEntry]] = {}
    for row in rows:
        by_parent.setdefault(row.parent_id, []).append(row)
    ordered: list[FolderNode] = []
    # Depth first with a stack of its own: folders may nest deeper than Python recurses.
    stack = [(row, 0) for row in _last_name_first(by_parent.get(None, []))]
    while stack:
        row, depth = stack.pop()
        ordered.append(FolderNode(row, depth))
        stack.extend((child, depth + 1) for child in _last_name_first(by_parent.get(row.id, [])))
    return ordered


def _last_name_first(rows: list[browse.FolderEntry]) -> list[browse.FolderEntry]:
    # Pushed in this order, the stack gives them back by name.
    return sorted(rows, key=lambda f: f.name.lower())[::-1]


@router.get("/projects")
async def projects_page(
    request: Request, me: WebUser, session: SessionDep, cursor: str | None = None
) -> Response:
    page = await projects.list_page(session, who=me.principal, page=request_after(cursor, 100))
    blueprints = []
    if me.principal.is_operator:
        blueprints = (await templates.list_page(session, page=PageRequest(limit=MAX_LIMIT))).items
    return render(
        request,
        "projects.html",
        rows=page.items,
        next_cursor=page.next_cursor,
        templates=blueprints,
    )


@router.post("/projects")
async def create_project(me: WebWriter, session: SessionDep, form: WebForm) -> Response:
    template = form.get("template", "")
    project = await projects.create(
        session,
        who=me.principal,
        name=form.get("name", ""),
        description=form.get("description", ""),
        template_id=optional_id(template, field="template", label="The template"),
        download_via_api=form.get("downloadViaApi") == "on",
    )
    return see_other(f"/projects/{project.id}")


@router.get("/projects/{project_id}")
async def project_page(
    request: Request,
    project_id: PathId,
    me: WebUser,
    folder: Annotated[int | None, query_id("folder")] = None,
    sort: Annotated[browse.Sort, Query()] = "updated",
    q: Annotated[str, Query(max_length=browse.MAX_FILTER)] = "",
    cursor: str | None = None,
) -> Response:
    listing = browse.Listing(folder_id=folder, sort=sort, title_contains=q, cursor=cursor)
    list_alone = request.headers.get("hx-target") == "documents"
    # On the read model's reader (fastpath/), as the API's list: every click asks for it.
    # What it read, and the list of documents rendered from it, are kept while the database
    # is unchanged, as the API's page is; the rest of the page (the session's own parts) is
    # rendered each time.
    shown, documents = await state_of(request).reads.remembered(
        (_shown, me.principal, project_id, listing, list_alone),
        partial(
            _shown, who=me.principal, project_id=project_id, listing=listing, list_alone=list_alone
        ),
        size=_weight,
    )
    if list_alone:
        return html_page(documents)
    tree = folder_tree(shown.folders or [])
    current = next((n.folder for n in tree if n.folder.id == folder), None)
    return render(
        request,
        "project.html",
        tree=tree,
        current=current,
        project=shown.project,
        role=shown.scope.role,
        listing=listing,
        documents=documents,
    )


async def _shown(
    db: Reader, *, who: Principal, project_id: int, listing: browse.Listing, list_alone: bool
) -> tuple[browse.ProjectPage, Markup]:
    """The project page's data (without its folders when the list is asked for alone) and
    its list of documents rendered."""
    shown = await browse.project_page(
        db, who=who, project_id=project_id, listing=listing, with_folders=not list_alone
    )
    context = dict(project=shown.project, listing=listing, page=shown.documents)
    return shown, fragment("_documents.html", **context)


def _weight(answer: tuple[browse.ProjectPage, Markup]) -> int:
    """About how many bytes a kept project page holds (fastpath/answers.py bounds the sum)."""
    shown, documents = answer
    listed = sum(200 + len(d.title) + len(d.file_name) for d in shown.documents.items)
    folders = sum(100 + len(f.name) for f in shown.folders or [])
    return 1024 + listed + folders + len(documents)


async def _folder_writer(session: SessionDep, me: WebWriter, project_id: PathId) -> ProjectScope:
    # As the API's FolderWritableProject dependency.
    return await access.scope(session, me.principal, project_id, Capability.FOLDERS_WRITE)


@router.post("/projects/{project_id}/folders")
async def create_folder(
    project_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    scope = await _folder_writer(session, me, project_id)
    parent = form.get("parent", "")
    made = await folders.create(
        session,
        scope=scope,
        name=form.get("name", ""),
        parent_id=optional_id(parent, field="parent", label="The parent folder"),
    )
    return see_other(f"/projects/{project_id}?folder={made.id}")


@router.post("/projects/{project_id}/folders/{folder_id}/rename")
async def rename_folder(
    project_id: PathId, folder_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    scope = await _folder_writer(session, me, project_id)
    await folders.rename(session, scope=scope, folder_id=folder_id, name=form.get("name", ""))
    return see_other(f"/projects/{project_id}?folder={folder_id}")


@router.post("/projects/{project_id}/folders/{folder_id}/delete")
async def delete_folder(
    project_id: PathId, folder_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    scope = await _folder_writer(session, me, project_id)
    await folders.delete(session, scope=scope, folder_id=folder_id)
    return see_other(f"/projects/{project_id}")


@router.post("/projects/{project_id}/upload")
async def upload(
    request: Request,
    project_id: PathId,
    me: WebWriter,
    session: SessionDep,
    folder: Annotated[int | None, query_id("folder")] = None,
    reject_duplicate: Annotated[bool, Query(alias="rejectDuplicate")] = False,
) -> Response:
    """One file per request, streamed to staging as the API's uploads are (api/uploads.py);
    the drag-and-drop script sends one request per file and shows each one's progress."""
    state = state_of(request)
    await check_may_upload(state, me.principal, project_id)
    if not request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise Invalid("Choose a file to upload.")
    async with receive(request, state) as received:
        if received.metadata == REJECT_DUPLICATE_PART:
            reject_duplicate = True
        if not received.part_file_name and received.spooled.size == 0:
            raise Invalid("Choose a file to upload.")
        view, _ = await intake.upload(
            session,
            who=me.principal,
            project_id=project_id,
            blobs=state.blobs,
            received=NewFile(
                received.spooled, received.part_file_name or "", received.part_content_type
            ),
            folder_id=folder,
            reject_duplicate=reject_duplicate,
        )
    url = f"/projects/{project_id}/documents/{view.document.id}"
    if wants_json(request):
        body = {"id": view.document.id, "title": view.document.title, "url": url}
        return JSONResponse(body, status_code=201)
    return see_other(url)
