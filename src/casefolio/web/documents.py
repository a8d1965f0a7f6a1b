"""A document: metadata, field values, versions, download, new version, move, delete."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select

from casefolio.api.deps import SessionDep, check_writable_document
from casefolio.api.downloads import blob_response
from casefolio.api.ids import PathId, optional_id
from casefolio.api.uploads import receive
from casefolio.db.models import Field, User
from casefolio.domain import access, browse, documents, fields, intake, trash, versions
from casefolio.domain.errors import Invalid
from casefolio.domain.intake import NewFile
from casefolio.domain.roles import Capability
from casefolio.web.deps import WebForm, WebRoute, WebUser, WebWriter, wants_json
from casefolio.web.http import render, see_other, state_of
from casefolio.web.projects import folder_tree

router = APIRouter(include_in_schema=False, route_class=WebRoute)


def _back(project_id: int, document_id: int) -> RedirectResponse:
    """Back to the document's page, after a form changed it."""
    return see_other(f"/projects/{project_id}/documents/{document_id}")


@router.get("/projects/{project_id}/documents/{document_id}")
async def document_page(
    request: Request, project_id: PathId, document_id: PathId, me: WebUser, session: SessionDep
) -> Response:
    view = await documents.get(
        session, who=me.principal, project_id=project_id, document_id=document_id
    )
    history = await versions.list_all(
        session, who=me.principal, project_id=project_id, document_id=document_id
    )
    scope, project = await access.scoped_project(session, me.principal, project_id)
    role = scope.role
    defined = await fields.list_all(session, scope=scope)
    values = {entry.field.id: entry.value for entry in view.fields}
    authors = {
        u.id: u
        for u in await session.scalars(
            select(User).where(User.id.in_({v.created_by for v in history} - {None}))
        )
    }
    tree = folder_tree(await browse.folder_entries(session, scope=scope))
    return render(
        request,
        "document.html",
        project=project,
        role=role,
        view=view,
        versions=list(reversed(history)),
        authors=authors,
        defined=defined,
        values=values,
        tree=tree,
        trash_days=f"{state_of(request).settings.trash_days:g}",
    )


_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def parse_field_input(row: Field, raw: str | None) -> Any:
    """Given a field and what its form control sent, return the value to validate: the
    domain (fields.coerce) decides whether it is acceptable. Empty clears the value."""
    if row.type == "boolean":
        # What its control (Yes / No) sends, and nothing else: "on" or a missing value is no
        # answer, not a No.
        if raw not in ("true", "false"):
            raise Invalid(f"Field '{row.name}' is answered Yes or No (true or false).")
        return raw == "true"
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if row.type == "number":
        try:
            # A number as JSON writes one, as the API takes it: float() alone also takes
            # "1_000", "nan" and other scripts' digits ("١٢").
            written = _JSON_NUMBER.fullmatch(raw)
            if not written:
                raise ValueError(raw)
            number = float(raw)
        except ValueError:
            raise Invalid(f"Field '{row.name}' needs a number (got '{raw}').") from None
        # An integer when written as one, as JSON reads it: 1e20 is a float, as the API stores.
        integer = written.group(2) is None and written.group(3) is None
        return int(number) if integer and number.is_integer() else number
    return raw


@router.post("/projects/{project_id}/documents/{document_id}/fields/{field_id}")
async def set_field(
    project_id: PathId,
    document_id: PathId,
    field_id: PathId,
    me: WebWriter,
    session: SessionDep,
    form: WebForm,
) -> Response:
    scope = await access.scope(session, me.principal, project_id, Capability.FIELDS_WRITE)
    row = await fields.get(session, scope=scope, field_id=field_id)
    await documents.set_field(
        session,
        who=me.principal,
        project_id=project_id,
        document_id=document_id,
        field_id=field_id,
        value=parse_field_input(row, form.get("value")),
    )
    return _back(project_id, document_id)


@router.post("/projects/{project_id}/documents/{document_id}/details")
async def update_details(
    project_id: PathId, document_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    await documents.update_details(
        session,
        who=me.principal,
        project_id=project_id,
        document_id=document_id,
        title=form.get("title"),
        description=form.get("description"),
    )
    return _back(project_id, document_id)


@router.post("/projects/{project_id}/documents/{document_id}/move")
async def move(
    project_id: PathId, document_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    target = optional_id(form.get("folder", ""), field="folder", label="The folder")
    await documents.move(
        session, who=me.principal, project_id=project_id, document_id=document_id, folder_id=target
    )
    return _back(project_id, document_id)


@router.post("/projects/{project_id}/documents/{document_id}/delete")
async def delete(
    project_id: PathId, document_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    await trash.delete(session, who=me.principal, project_id=project_id, document_id=document_id)
    return see_other(f"/projects/{project_id}")


@router.post("/projects/{project_id}/documents/{document_id}/versions")
async def new_version(
    request: Request, project_id: PathId, document_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    state = state_of(request)
    await check_writable_document(state, me.principal, document_id, project_id)
    if not request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise Invalid("Choose a file to upload.")
    async with receive(request, state) as received:
        filed = await intake.replace(
            session,
            who=me.principal,
            project_id=project_id,
            document_id=document_id,
            blobs=state.blobs,
            received=NewFile(
                received.spooled, received.part_file_name or "", received.part_content_type
            ),
        )
    [version] = filed.versions
    if wants_json(request):
        return JSONResponse({"id": version.id, "number": version.number}, status_code=201)
    return _back(project_id, document_id)


@router.post("/projects/{project_id}/documents/{document_id}/versions/{version_id}/delete")
async def delete_version(
    project_id: PathId,
    document_id: PathId,
    version_id: PathId,
    me: WebWriter,
    session: SessionDep,
) -> Response:
    await versions.delete(
        session,
        who=me.principal,
        project_id=project_id,
        document_id=document_id,
        version_id=version_id,
    )
    return _back(project_id, document_id)


@router.get("/projects/{project_id}/documents/{document_id}/versions/{version_id}/download")
async def download(
    request: Request,
    project_id: PathId,
    document_id: PathId,
    version_id: PathId,
    me: WebUser,
    session: SessionDep,
) -> Response:
    version = await versions.for_download(
        session,
        who=me.principal,
        project_id=project_id,
        document_id=document_id,
        version_id=version_id,
    )
    # As the pages themselves: a browser keeps no copy once its user signs out (a shared PC).
    return await blob_response(request, state_of(request).blobs, version, cache_control="no-store")
