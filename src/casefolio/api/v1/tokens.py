"""API tokens: the secret is shown once, in the response that creates it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from pydantic import AwareDatetime, BeforeValidator, Field
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from casefolio.api.auth import forget_credentials
from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import BodyId, path_id, query_id
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import patch_route, v1_router
from casefolio.api.v1.schemas import ONE_LINE, ApiInput, ApiModel, Name, Timestamp, WireId
from casefolio.domain import text, tokens
from casefolio.domain.errors import NotFound

router = v1_router("tokens")


# Documented only: the domain's message names the range.
RATE_LIMIT: JsonDict = {"minimum": 1, "maximum": tokens.MAX_RATE_LIMIT}
#: A token's own rate limit, as a token is issued or changed.
RateLimit = Annotated[
    int | None,
    Field(
        description=f"Requests per minute, 1 to {tokens.MAX_RATE_LIMIT} (operators only).",
        json_schema_extra=RATE_LIMIT,
    ),
]


def _date_time_text(value: object) -> object:
    # Lax parsing would read a number as Unix seconds; the schema says an RFC 3339 string.
    if not isinstance(value, str):
        raise PydanticCustomError(
            "date_time_text", "should be an RFC 3339 date-time string, such as 2027-01-31T00:00:00Z"
        )
    return value


class TokenIn(ApiInput):
    user_id: BodyId = Field(description="The user the token acts as (a string or a number).")
    name: Name
    # Not strict: JSON has no datetime type, the value is an RFC 3339 string.
    expires_at: (
        Annotated[AwareDatetime, BeforeValidator(_date_time_text), Field(strict=False)] | None
    ) = None
    rate_limit: RateLimit = None


class TokenUpdate(ApiInput):
    name: str | None = Field(
        None, min_length=1, max_length=text.MAX_NAME, json_schema_extra=ONE_LINE
    )
    rate_limit: RateLimit = None


class TokenOut(ApiModel):
    id: WireId
    user_id: WireId
    name: str
    prefix: str = Field(description="The first characters of the secret, to tell tokens apart.")
    rate_limit: int | None = Field(description="Requests per minute for this token.")
    created_at: Timestamp
    last_used_at: Timestamp | None
    expires_at: Timestamp | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret. It is shown only in this response.")


def _out(request: Request, token: object) -> TokenOut:
    out = TokenOut.model_validate(token)
    if out.rate_limit is None:
        out.rate_limit = request.app.state.casefolio.settings.rate_limit_per_minute
    return out


@router.post("/tokens", status_code=201, response_model=IssuedTokenOut, summary="Create a token")
async def create_token(
    request: Request, body: TokenIn, session: SessionDep, who: PrincipalDep
) -> IssuedTokenOut:
    issued = await tokens.issue(
        session,
        who=who,
        user_id=body.user_id,
        name=body.name,
        expires_at=body.expires_at,
        rate_limit=body.rate_limit,
    )
    base = _out(request, issued.token)
    return IssuedTokenOut(**base.model_dump(), token=issued.secret)


@router.get("/tokens", response_model=list[TokenOut], summary="List tokens (never the secrets)")
async def list_tokens(
    session: SessionDep,
    who: PrincipalDep,
    listing: ListingDep,
    user_id: Annotated[int | None, query_id("userId")] = None,
) -> list[TokenOut]:
    page = await tokens.list_page(session, who=who, user_id=user_id, page=listing.page)
    return [_out(listing.request, t) for t in listing.items(page)]


@patch_route(
    router,
    "/tokens/{tokenId}",
    response_model=TokenOut,
    summary="Rename a token or set its rate limit",
)
async def update_token(
    request: Request,
    token_id: Annotated[int, path_id("tokenId")],
    body: TokenUpdate,
    session: SessionDep,
    who: PrincipalDep,
) -> TokenOut:
    token = await tokens.update(
        session, who=who, token_id=token_id, name=body.name, rate_limit=body.rate_limit
    )
    forget_credentials(request)
    return _out(request, token)


@router.delete("/tokens/{tokenId}", status_code=204, summary="Revoke a token")
async def revoke_token(
    request: Request,
    token_id: Annotated[int, path_id("tokenId")],
    session: SessionDep,
    who: PrincipalDep,
) -> None:
    await tokens.revoke(session, who=who, token_id=token_id)
    forget_credentials(request)


@router.delete("/tokens", status_code=204, summary="Revoke the token that makes this request")
async def revoke_own_token(request: Request, session: SessionDep, who: PrincipalDep) -> None:
    if who.token_id is None:
        raise NotFound("This request was not made with a token.")
    await tokens.revoke(session, who=who, token_id=who.token_id)
    forget_credentials(request)
