"""Metadata fields of a project."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from casefolio.api.deps import AdministeredProject, ReadableProject, SessionDep
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import (
    CONFLICT_RESPONSE,
    ONE_LINE,
    ApiInput,
    ApiModel,
    Name,
    Timestamp,
    WireId,
)
from casefolio.domain import fields, text
from casefolio.domain.fields import FIELD_TYPES, FieldSpec

router = v1_router("fields")
Choice = Annotated[str, Field(min_length=1, max_length=text.MAX_CHOICE, json_schema_extra=ONE_LINE)]


class FieldIn(ApiInput):
    name: Name = Field(examples=["Custodian"])
    type: str = Field(
        description=f"One of: {', '.join(FIELD_TYPES)}.",
        examples=["text"],
        max_length=20,
        json_schema_extra={"enum": list(FIELD_TYPES)},
    )
    choices: list[Choice] = Field(
        default_factory=list, description="For choice fields.", max_length=text.MAX_CHOICES
    )
    required: bool = False

    # Documented only (domain/fields.py answers with its own messages): a choice field needs
    # distinct, non-blank choices, and no other type takes any.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "choice"}}},
            "then": {
                "required": ["choices"],
                "properties": {
                    "choices": {
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {"pattern": text.NOT_SPACE},
                    }
                },
            },
            "else": {"properties": {"choices": {"maxItems": 0}}},
        }
    )


class FieldOut(ApiModel):
    id: WireId
    name: str
    type: str
    choices: list[str]
    required: bool
    created_at: Timestamp


@router.get("/projects/{projectId}/fields", response_model=list[FieldOut], summary="List fields")
async def list_fields(
    project: ReadableProject, session: SessionDep, listing: ListingDep
) -> list[FieldOut]:
    page = await fields.list_page(session, scope=project, page=listing.page)
    return [FieldOut.model_validate(f) for f in listing.items(page)]


@router.post(
    "/projects/{projectId}/fields",
    status_code=201,
    responses=CONFLICT_RESPONSE,
    response_model=FieldOut,
    summary="Define a field (Project Admin)",
)
async def create_field(
    project: AdministeredProject, body: FieldIn, session: SessionDep
) -> FieldOut:
    spec = FieldSpec(body.name, body.type, body.choices, body.required)
    return FieldOut.model_validate(await fields.create(session, scope=project, spec=spec))
