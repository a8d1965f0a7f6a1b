"""Templates: blueprints that POST /projects with templateId copies."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import BodyId
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.fields import FieldIn
from casefolio.api.v1.folders import FOLDER_NAME
from casefolio.api.v1.retention import RuleIn, RuleOut
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import (
    CONFLICT_RESPONSE,
    ROLE_KEYS,
    ApiInput,
    ApiModel,
    Name,
    Timestamp,
    WireId,
)
from casefolio.db.models import Template
from casefolio.domain import templates, text
from casefolio.domain.fields import FieldSpec

router = v1_router("templates")
#: Folders (per level), fields and grants a template may list.
MAX_ITEMS = 1000


class FolderSpecIn(ApiInput):
    name: str = Field(min_length=1, max_length=text.MAX_FOLDER_NAME, json_schema_extra=FOLDER_NAME)
    children: list[FolderSpecIn] = Field(default_factory=list, max_length=MAX_ITEMS)


# An empty role is the default one, as if left out.
TEMPLATE_ROLE: JsonDict = {"enum": [*ROLE_KEYS, ""]}


class GrantSpecIn(ApiInput):
    role: str = Field("Read Write", max_length=40, json_schema_extra=TEMPLATE_ROLE)
    team_id: BodyId | None = None
    email: str | None = Field(None, max_length=text.MAX_EMAIL)

    # Documented only (domain/templates.py refuses the rest): a team or an e-mail, not both.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["teamId"],
                    "properties": {"teamId": {"not": {"type": "null"}}, "email": {"type": "null"}},
                },
                {
                    "required": ["email"],
                    "properties": {"email": {"type": "string"}, "teamId": {"type": "null"}},
                },
            ]
        }
    )


class TemplateIn(ApiInput):
    name: Name
    description: str = Field("", max_length=text.MAX_DESCRIPTION)
    folders: list[FolderSpecIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    fields: list[FieldIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    grants: list[GrantSpecIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    retention: RuleIn | None = Field(
        None, description="The retention rule projects made from the template start with."
    )


class TemplateOut(ApiModel):
    id: WireId
    name: str
    description: str
    created_at: Timestamp
    folders: list[dict[str, Any]]
    fields: list[dict[str, Any]]
    grants: list[dict[str, Any]]
    retention: RuleOut | None = None


def _folder_specs(specs: list[FolderSpecIn]) -> list[templates.FolderSpec]:
    return [templates.FolderSpec(s.name, _folder_specs(s.children)) for s in specs]


def _out(template: Template) -> TemplateOut:
    blueprint = template.blueprint
    return TemplateOut(
        id=template.id,
        name=template.name,
        description=template.description,
        created_at=template.created_at,
        folders=blueprint.get("folders", []),
        fields=blueprint.get("fields", []),
        grants=[
            {"role": g["role"], "teamId": g["team_id"] and str(g["team_id"]), "email": g["email"]}
            for g in blueprint.get("grants", [])
        ],
        retention=RuleOut(**blueprint["retention"]) if blueprint.get("retention") else None,
    )


@router.get("/templates", response_model=list[TemplateOut], summary="List project templates")
async def list_templates(
    session: SessionDep, _: PrincipalDep, listing: ListingDep
) -> list[TemplateOut]:
    page = await templates.list_page(session, page=listing.page)
    return [_out(t) for t in listing.items(page)]


@router.post(
    "/templates",
    status_code=201,
    responses=CONFLICT_RESPONSE,
    response_model=TemplateOut,
    summary="Create a template (operators)",
)
async def create_template(body: TemplateIn, session: SessionDep, who: PrincipalDep) -> TemplateOut:
    template = await templates.create(
        session,
        who=who,
        name=body.name,
        description=body.description,
        blueprint=templates.Blueprint(
            folders=_folder_specs(body.folders),
            fields=[FieldSpec(f.name, f.type, f.choices, f.required) for f in body.fields],
            grants=[templates.GrantSpec(g.role, g.team_id, g.email) for g in body.grants],
            retention=body.retention.model_dump(by_alias=True) if body.retention else None,
        ),
    )
    return _out(template)
