"""Roles and users."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from pydantic import Field

from casefolio.api.auth import forget_credentials
from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import path_id
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import patch_route, v1_router
from casefolio.api.v1.schemas import (
    CONFLICT_RESPONSE,
    ApiInput,
    ApiModel,
    Name,
    Timestamp,
    WireId,
    problem_responses,
)
from casefolio.domain import access, text, users
from casefolio.domain.roles import ROLES

router = v1_router("users")


class RoleOut(ApiModel):
    id: str
    name: str
    capabilities: list[str]


class UserOut(ApiModel):
    id: WireId
    email: str
    name: str
    active: bool
    is_operator: bool
    created_at: Timestamp


class UserIn(ApiInput):
    email: str = Field(
        max_length=text.MAX_EMAIL,
        examples=["ada@example.com"],
        json_schema_extra={"format": "email"},
    )
    name: Name = Field(examples=["Ada Lovelace"])
    is_operator: bool = False


@router.get("/roles", response_model=list[RoleOut], summary="List the roles a grant can give")
async def list_roles(_: PrincipalDep) -> list[RoleOut]:
    return [RoleOut(id=r.id, name=r.name, capabilities=sorted(r.capabilities)) for r in ROLES]


@router.get("/users", response_model=list[UserOut], summary="List users")
async def list_users(session: SessionDep, _: PrincipalDep, listing: ListingDep) -> list[UserOut]:
    page = await users.list_page(session, page=listing.page)
    return [UserOut.model_validate(u) for u in listing.items(page)]


@router.post(
    "/users",
    status_code=201,
    responses=CONFLICT_RESPONSE,
    response_model=UserOut | list[UserOut],
    summary="Create one user, or several at once (all or none)",
)
async def create_users(
    body: UserIn | Annotated[list[UserIn], Field(json_schema_extra={"minItems": 1})],
    session: SessionDep,
    who: PrincipalDep,
) -> UserOut | list[UserOut]:
    access.require_operator(who, "create users")
    batch = body if isinstance(body, list) else [body]
    created = await users.create_many(
        session,
        new_users=[users.NewUser(u.email, u.name, u.is_operator) for u in batch],
    )
    out = [UserOut.model_validate(u) for u in created]
    return out if isinstance(body, list) else out[0]


@router.get("/user/id/{userId}", response_model=UserOut, summary="Read a user by id")
async def read_user(
    user_id: Annotated[int, path_id("userId")], session: SessionDep, _: PrincipalDep
) -> UserOut:
    return UserOut.model_validate(await users.get(session, user_id=user_id))


class UserUpdate(ApiInput):
    # Strict: pydantic would read "no" or 0 as false and deactivate someone by accident.
    active: bool | None = Field(
        default=None,
        strict=True,
        description="false deactivates the user: their tokens answer 401 until reactivated.",
    )


@patch_route(
    router,
    "/user/id/{userId}",
    response_model=UserOut,
    summary="Deactivate or reactivate a user (operators only)",
    responses=problem_responses({409: "Operators cannot deactivate themselves."}),
)
async def update_user(
    request: Request,
    user_id: Annotated[int, path_id("userId")],
    body: UserUpdate,
    session: SessionDep,
    who: PrincipalDep,
) -> UserOut:
    access.require_operator(who, "change users")
    user = await users.get(session, user_id=user_id)
    if body.active is not None:
        user = await users.set_active(session, who=who, user_id=user_id, active=body.active)
    out = UserOut.model_validate(user)
    # Committed before this process forgets its remembered tokens: a request in between
    # must not remember the user as they were.
    await session.commit()
    forget_credentials(request)
    return out


@router.get("/user/byemail", response_model=UserOut, summary="Read a user by e-mail address")
async def read_user_by_email(
    email: Annotated[str, Query(max_length=text.MAX_EMAIL)], session: SessionDep, _: PrincipalDep
) -> UserOut:
    return UserOut.model_validate(await users.get_by_email(session, email=email))
