"""Metadata fields of a project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.v1.schemas import ApiModel, Timestamp, WireId
from casefolio.domain import access, fields
from casefolio.domain.fields import FIELD_TYPES, FieldSpec
from casefolio.domain.roles import Capability

router = APIRouter(tags=["fields"])
ProjectId = Annotated[int, Path(alias="projectId")]


class FieldIn(ApiModel):
    name: str = Field(max_length=200, examples=["Custodian"])
    type: str = Field(description=f"One of: {', '.join(FIELD_TYPES)}.", examples=["text"])
    choices: list[str] = Field(default_factory=list, description="For choice fields.")
    required: bool = False


class FieldOut(ApiModel):
    id: WireId
    name: str
    type: str
    choices: list[str]
    required: bool
    created_at: Timestamp


@router.get("/projects/{projectId}/fields", response_model=list[FieldOut], summary="List fields")
async def list_fields(
    project_id: ProjectId, session: SessionDep, who: PrincipalDep
) -> list[FieldOut]:
    await access.require(session, who, project_id, Capability.DOCUMENTS_READ)
    return [
        FieldOut.model_validate(f) for f in await fields.list_all(session, project_id=project_id)
    ]


@router.post(
    "/projects/{projectId}/fields",
    status_code=201,
    response_model=FieldOut,
    summary="Define a field (Project Admin)",
)
async def create_field(
    project_id: ProjectId, body: FieldIn, session: SessionDep, who: PrincipalDep
) -> FieldOut:
    await access.require(session, who, project_id, Capability.SETTINGS_MANAGE)
    spec = FieldSpec(body.name, body.type, body.choices, body.required)
    return FieldOut.model_validate(await fields.create(session, project_id=project_id, spec=spec))
