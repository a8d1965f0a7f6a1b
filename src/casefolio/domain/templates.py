"""Templates: blueprints of folders, fields and grants that new projects copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Project, Team, Template, User
from casefolio.domain import access, events, fields, folders, grants, retention, text, users
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Conflict, Invalid, found
from casefolio.domain.fields import FieldSpec
from casefolio.domain.pages import Page, PageRequest, fetch_id_page
from casefolio.domain.principal import Principal
from casefolio.domain.roles import DEFAULT_ROLE, role_named


@dataclass(frozen=True)
class FolderSpec:
    name: str
    children: list[FolderSpec] = field(default_factory=list)


@dataclass(frozen=True)
class GrantSpec:
    role: str
    team_id: int | None = None
    email: str | None = None


@dataclass(frozen=True)
class Blueprint:
    folders: list[FolderSpec] = field(default_factory=list)
    fields: list[FieldSpec] = field(default_factory=list)
    grants: list[GrantSpec] = field(default_factory=list)
    #: A retention rule the new project starts with (domain/retention.py), as JSON.
    retention: dict[str, Any] | None = None


def _folders_to_json(specs: list[FolderSpec]) -> list[dict[str, Any]]:
    return [{"name": s.name, "children": _folders_to_json(s.children)} for s in specs]


def _folders_from_json(raw: list[dict[str, Any]]) -> list[FolderSpec]:
    return [FolderSpec(r["name"], _folders_from_json(r.get("children", []))) for r in raw]


def blueprint_of(template: Template) -> Blueprint:
    raw = template.blueprint
    return Blueprint(
        folders=_folders_from_json(raw.get("folders", [])),
        fields=[FieldSpec(**f) for f in raw.get("fields", [])],
        grants=[GrantSpec(**g) for g in raw.get("grants", [])],
        retention=raw.get("retention"),
    )


#: Folders in a whole template: a new project copies them one by one in the request that
#: creates it, which holds SQLite's one write lock meanwhile. (How deep they nest is bounded
#: by the JSON body's nesting, api/jsonbody.py.)
MAX_FOLDERS = 5_000


def _count_folders(specs: list[FolderSpec]) -> int:
    return len(specs) + sum(_count_folders(spec.children) for spec in specs)


def _checked_folders(specs: list[FolderSpec], where: str) -> list[FolderSpec]:
    """The folders as a project made from the template will name them (folders.check_name:
    stripped, NFC), or Invalid: a name a folder cannot have, or two siblings that would
    have one name, would make every project made from the template fail."""
    if any(not s.name.strip() for s in specs):
        raise Invalid(f"Folder names in {where} must not be empty.")
    checked = []
    for spec in specs:
        try:
            name = folders.check_name(spec.name)
        except Invalid as exc:
            raise Invalid(f"In {where}: {exc.message}", exc.errors) from None
        checked.append(FolderSpec(name, _checked_folders(spec.children, f"folder '{name}'")))
    names = [s.name for s in checked]
    if len(set(names)) != len(names):
        raise Invalid(f"Folder names in {where} must be unique among siblings.")
    return checked


async def get(session: AsyncSession, *, template_id: int) -> Template:
    return found(await session.get(Template, template_id), f"Template {template_id} not found.")


async def list_page(session: AsyncSession, *, page: PageRequest) -> Page[Template]:
    return await fetch_id_page(session, select(Template), id_column=Template.id, page=page)


async def create(
    session: AsyncSession,
    *,
    who: Principal | None,
    name: str,
    description: str,
    blueprint: Blueprint,
) -> Template:
    """Check the blueprint against what exists now, then store it."""
    if who is not None:
        access.require_operator(who, "create templates")
    name = text.required_name(name, of="template")
    if await session.scalar(select(Template.id).where(Template.name == name)) is not None:
        raise Conflict(f"A template named '{name}' already exists.")
    if _count_folders(blueprint.folders) > MAX_FOLDERS:
        raise Invalid(f"A template may hold {MAX_FOLDERS:,} folders in all at most.")
    checked_folders = _checked_folders(blueprint.folders, "the template root")
    checked_fields = [fields.check_spec(f) for f in blueprint.fields]
    if len({f.name for f in checked_fields}) != len(checked_fields):
        raise Invalid("Field names in a template must be unique.")
    checked_grants = []
    for grant in blueprint.grants:
        role = role_named(grant.role) if grant.role else DEFAULT_ROLE
        if role is None:
            raise Invalid(f"Unknown role '{grant.role}' in the template's grants.")
        if (grant.team_id is None) == (grant.email is None):
            raise Invalid("Each template grant names either a teamId or an email.")
        if grant.team_id is not None and await session.get(Team, grant.team_id) is None:
            raise Invalid(f"Template grant names team {grant.team_id}, which does not exist.")
        if grant.email is not None:
            key = users.email_key(grant.email)
            if await session.scalar(select(User.id).where(User.email_key == key)) is None:
                raise Invalid(f"Template grant names '{grant.email}', who is not a user.")
        checked_grants.append({"role": role.name, "team_id": grant.team_id, "email": grant.email})
    template = Template(
        name=name,
        description=text.bounded_description(description),
        blueprint={
            "folders": _folders_to_json(checked_folders),
            "fields": [vars(f) for f in checked_fields],
            "grants": checked_grants,
            "retention": rule.as_json() if (rule := retention.parse(blueprint.retention)) else None,
        },
    )
    session.add(template)
    await session.flush()
    events.emit(session, events.TemplateCreated(subject_id=template.id, details={"name": name}))
    return template


async def apply(session: AsyncSession, *, template: Template, scope: ProjectScope) -> None:
    """Copy a template's folders, fields and grants into a new project."""
    project_id = scope.project_id
    blueprint = blueprint_of(template)

    async def make(specs: list[FolderSpec], parent_id: int | None) -> None:
        for spec in specs:
            folder = await folders.create(session, scope=scope, name=spec.name, parent_id=parent_id)
            await make(spec.children, folder.id)

    await make(blueprint.folders, None)
    if blueprint.retention is not None:
        project = await session.get_one(Project, project_id)
        project.retention = blueprint.retention
    for spec in blueprint.fields:
        await fields.create(session, scope=scope, spec=spec)
    for grant in blueprint.grants:
        role = role_named(grant.role) or DEFAULT_ROLE
        if grant.team_id is not None and await session.get(Team, grant.team_id) is not None:
            await grants.set_team_grant(
                session, project_id=project_id, team_id=grant.team_id, role=role
            )
        elif grant.email is not None:
            key = users.email_key(grant.email)
            user_id = await session.scalar(select(User.id).where(User.email_key == key))
            # A user deleted since the template was made is skipped rather than failing the copy.
            if user_id is not None:
                await grants.set_user_grant(
                    session, project_id=project_id, user_id=user_id, role=role
                )
