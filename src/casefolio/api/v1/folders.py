"""Folders of a project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response
from pydantic import Field
from pydantic.config import JsonDict

from casefolio.api.deps import FolderWritableProject, ReadableProject, SessionDep
from casefolio.api.ids import BodyId, path_id, query_id
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import (
    CONFLICT_RESPONSE,
    ApiInput,
    ApiModel,
    Timestamp,
    WireId,
    json_response,
    problem_responses,
)
from casefolio.domain import folders, text
from casefolio.fastpath.routes import direct_route

router = v1_router("folders")
#: Documented only: a folder name is one line (`text.one_line_pattern`), without "/".
FOLDER_NAME: JsonDict = {"pattern": text.one_line_pattern(also_not="/")}


class FolderIn(ApiInput):
    name: str = Field(
        min_length=1,
        max_length=text.MAX_FOLDER_NAME,
        examples=["Pleadings"],
        json_schema_extra=FOLDER_NAME,
    )
    parent_id: BodyId | None = Field(None, description="The parent folder; omit for the root.")


class FolderOut(ApiModel):
    id: WireId
    project_id: WireId
    parent_id: WireId | None
    name: str
    created_at: Timestamp


@router.get("/projects/{projectId}/folders", response_model=list[FolderOut], summary="List folders")
async def list_folders(
    project: ReadableProject, session: SessionDep, listing: ListingDep
) -> list[FolderOut]:
    page = await folders.list_page(session, scope=project, page=listing.page)
    return [FolderOut.model_validate(f) for f in listing.items(page)]


# A DirectRoute (fastpath/routes.py): integrations make folders one after another.
@direct_route(
    router,
    "/projects/{projectId}/folders",
    methods=["POST"],
    status_code=201,
    responses=CONFLICT_RESPONSE,
    response_model=FolderOut,
    summary="Add a folder",
)
async def create_folder(
    project: FolderWritableProject, body: FolderIn, session: SessionDep
) -> Response:
    folder = await folders.create(session, scope=project, name=body.name, parent_id=body.parent_id)
    return json_response(FolderOut.model_validate(folder), 201)


@router.get(
    "/projects/{projectId}/folders/{folderName}",
    response_model=FolderOut,
    summary="Read a folder by its (URL-encoded) name",
    responses=problem_responses({409: "Several folders have that name: add ?parentId=."}),
)
async def read_folder_by_name(
    project: ReadableProject,
    folder_name: Annotated[
        str, Path(alias="folderName", min_length=1, max_length=text.MAX_FOLDER_NAME)
    ],
    session: SessionDep,
    parent_id: Annotated[
        int | None, query_id("parentId", description="Disambiguates equal names.")
    ] = None,
) -> FolderOut:
    folder = await folders.get_by_name(
        session, scope=project, name=folder_name, parent_id=parent_id
    )
    return FolderOut.model_validate(folder)


@router.delete(
    # :int, or DELETE would seem allowed on …/folders/{folderName} (the GET's path).
    "/projects/{projectId}/folders/{folderId:id}",
    status_code=204,
    summary="Delete an empty folder",
    responses=problem_responses(
        {
            405: "The folder is not named by an id: such a path reads a folder by name.",
            409: "The folder still holds folders or documents, or a legal hold covers it (the "
            "detail names the holds).",
        }
    ),
)
async def delete_folder(
    project: FolderWritableProject,
    folder_id: Annotated[int, path_id("folderId")],
    session: SessionDep,
) -> None:
    await folders.delete(session, scope=project, folder_id=folder_id)
