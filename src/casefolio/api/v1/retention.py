"""A project's retention rule, and its documents due under it."""

from __future__ import annotations

from typing import Literal

from fastapi import Response
from pydantic import Field

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import ProjectId
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import ApiInput, ApiModel, Timestamp, WireId
from casefolio.domain import retention

router = v1_router("retention")


class RuleIn(ApiInput):
    keep_years: int = Field(ge=1, le=retention.MAX_YEARS, examples=[7])
    then: Literal["trash", "review"]


class RuleOut(ApiModel):
    keep_years: int
    then: str


class DueOut(ApiModel):
    document_id: WireId
    title: str
    updated_at: Timestamp
    action: str = Field(description="trash, review, or held (a legal hold keeps it as it is).")
    holds: list[WireId]


def _rule_out(rule: retention.Rule | None) -> RuleOut | None:
    return None if rule is None else RuleOut(keep_years=rule.keep_years, then=rule.then)


@router.get(
    "/projects/{projectId}/retention",
    response_model=RuleOut | None,
    summary="Read the project's retention rule (null: none)",
)
async def read_rule(
    project_id: ProjectId, session: SessionDep, who: PrincipalDep
) -> RuleOut | None:
    return _rule_out(await retention.get_rule(session, who=who, project_id=project_id))


@router.put(
    "/projects/{projectId}/retention",
    response_model=RuleOut,
    summary="Set the project's retention rule (settings.manage)",
    description="Counted from each document's last change (updatedAt). Once a day the "
    'background job moves documents past `keepYears` to the trash (`"then": "trash"`) or '
    'lists them as due (`"then": "review"`, `GET …/retention/due`); never a held one.',
)
async def set_rule(
    project_id: ProjectId, body: RuleIn, session: SessionDep, who: PrincipalDep
) -> RuleOut | None:
    rule = retention.Rule(body.keep_years, body.then)
    return _rule_out(await retention.set_rule(session, who=who, project_id=project_id, rule=rule))


@router.delete(
    "/projects/{projectId}/retention",
    status_code=204,
    response_class=Response,
    summary="Remove the project's retention rule (settings.manage)",
)
async def remove_rule(project_id: ProjectId, session: SessionDep, who: PrincipalDep) -> Response:
    await retention.set_rule(session, who=who, project_id=project_id, rule=None)
    return Response(status_code=204)


@router.get(
    "/projects/{projectId}/retention/due",
    response_model=list[DueOut],
    summary="Documents past the retention period now (documents.delete)",
)
async def list_due(project_id: ProjectId, session: SessionDep, who: PrincipalDep) -> list[DueOut]:
    found = await retention.due(session, who=who, project_id=project_id)
    return [
        DueOut(
            document_id=p.document_id,
            title=p.title,
            updated_at=p.updated_at,
            action=p.action,
            holds=list(p.holds),
        )
        for p in found
    ]
