"""Legal holds of a project (Project Admins and operators: `holds.manage`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query
from pydantic import Field

from casefolio.api.deps import SessionDep, project_scope
from casefolio.api.ids import BodyId, path_id
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import NOT_BLANK, ApiInput, ApiModel, Name, Timestamp, WireId
from casefolio.db.models import Hold
from casefolio.domain import holds
from casefolio.domain.access import ProjectScope
from casefolio.domain.holds import NewHold
from casefolio.domain.roles import Capability

router = v1_router("holds")
HoldingProject = Annotated[ProjectScope, Depends(project_scope(Capability.HOLDS_MANAGE))]
HoldId = Annotated[int, path_id("holdId")]
#: Why a hold is placed or released: not blank (examples go on the field).
Reason = Annotated[
    str, Field(min_length=1, max_length=holds.MAX_REASON, json_schema_extra=NOT_BLANK)
]


class _HoldIn(ApiInput):
    name: Name = Field(examples=["Smith litigation"])
    reason: Reason = Field(examples=["Claim served 2026-11-30; preserve everything."])


class ProjectHoldIn(_HoldIn):
    """A hold on the whole project: no targetId."""

    scope: Literal["project"]


class TargetHoldIn(_HoldIn):
    """A hold on one folder (and its sub-folders) or one document of the project."""

    scope: Literal["folder", "document"]
    target_id: BodyId = Field(description="The folder's or document's id.")


HoldIn = Annotated[ProjectHoldIn | TargetHoldIn, Field(discriminator="scope")]


class ReleaseIn(ApiInput):
    reason: Reason = Field(examples=["Settled; court order of 2027-01-15."])


class HoldOut(ApiModel):
    id: WireId
    project_id: WireId
    name: str
    reason: str
    scope: str
    target_id: WireId | None
    created_by: WireId | None
    created_at: Timestamp
    active: bool
    released_at: Timestamp | None
    released_by: WireId | None
    release_reason: str | None


def _out(hold: Hold) -> HoldOut:
    return HoldOut(
        id=hold.id,
        project_id=hold.project_id,
        name=hold.name,
        reason=hold.reason,
        scope=hold.scope,
        target_id=hold.target_id,
        created_by=hold.created_by,
        created_at=hold.created_at,
        active=hold.released_at is None,
        released_at=hold.released_at,
        released_by=hold.released_by,
        release_reason=hold.release_reason,
    )


@router.post(
    "/projects/{projectId}/holds",
    status_code=201,
    response_model=HoldOut,
    summary="Place a legal hold on the project, a folder or a document",
    description="While a hold covers a document, deleting it, any of its versions, its "
    "folder or its project is refused with 409 naming the hold(s). A project or folder hold "
    "also covers documents filed there later, and a document moved out of a held folder "
    "stays held.",
)
async def create_hold(project: HoldingProject, body: HoldIn, session: SessionDep) -> HoldOut:
    target = body.target_id if isinstance(body, TargetHoldIn) else None
    new = NewHold(body.name, body.reason, body.scope, target)
    return _out(await holds.create(session, scope=project, new=new))


@router.get("/projects/{projectId}/holds", response_model=list[HoldOut], summary="List the holds")
async def list_holds(
    project: HoldingProject,
    session: SessionDep,
    listing: ListingDep,
    active: Annotated[
        bool | None, Query(description="true: only holds in force; false: only released ones.")
    ] = None,
) -> list[HoldOut]:
    page = await holds.list_page(session, scope=project, page=listing.page, active=active)
    return [_out(h) for h in listing.items(page)]


@router.get("/projects/{projectId}/holds/{holdId}", response_model=HoldOut, summary="Read a hold")
async def read_hold(project: HoldingProject, hold_id: HoldId, session: SessionDep) -> HoldOut:
    return _out(await holds.get(session, scope=project, hold_id=hold_id))


@router.delete(
    "/projects/{projectId}/holds/{holdId}",
    response_model=HoldOut,
    summary="Release a hold (JSON body with the reason; the hold's record stays)",
    description='The body `{"reason": "…"}` is required: a release is audited with its '
    "reason. What the hold covered becomes deletable unless another hold still covers it. "
    "Releasing a released hold changes nothing and answers the hold as it is.",
)
async def release_hold(
    project: HoldingProject, hold_id: HoldId, body: ReleaseIn, session: SessionDep
) -> HoldOut:
    return _out(await holds.release(session, scope=project, hold_id=hold_id, reason=body.reason))
