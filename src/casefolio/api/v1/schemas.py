"""Wire types shared by the v1 routers: camelCase keys, string ids, RFC 3339 UTC timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Response
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from casefolio.db.types import rfc3339
from casefolio.domain import text
from casefolio.domain.roles import ROLES

Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]
# Ids are integers in the database and strings on the v1 wire, as the seed types userId.
WireId = Annotated[int, PlainSerializer(str, return_type=str)]


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        extra="forbid",
    )


class ApiInput(ApiModel):
    """A request body: JSON types as sent, so 0 is not false and "5" not 5 (ids excepted,
    api/ids.py). Responses are ApiModels, which FastAPI may validate from their own dump."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # Every JSON body of /api/v1 (and the multipart metadata part) comes through here:
        # text that PostgreSQL cannot store is refused on SQLite too (domain/text.py).
        found = text.check_json(data)
        if found is not None:
            field, problem = found
            raise PydanticCustomError(
                text.UNSTORABLE, "{field} {problem}", {"field": field, "problem": problem}
            )
        return data


def json_response(model: ApiModel, status_code: int = 200) -> Response:
    """The model as the answer, serialized once: FastAPI would validate a returned model
    against the route's response_model again before serializing it."""
    return Response(
        model.model_dump_json(by_alias=True), status_code, media_type="application/json"
    )


class Problem(ApiModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, object]]:
    """The OpenAPI responses of these statuses, each a Problem with its description."""
    return {
        status: {"model": Problem, "description": description}
        for status, description in descriptions.items()
    }


PROBLEM_RESPONSES = problem_responses(
    {
        400: "Bad input: invalid JSON, wrong types, bad timestamp or id format.",
        401: "Missing, unknown, revoked or expired API token, or its user is deactivated.",
        403: "Not allowed, or the integrations API is switched off.",
        404: "Unknown, or not visible to the token's owner.",
        429: "Rate limit exceeded; see Retry-After.",
        503: "The database was unavailable: on SQLite another process held the write lock"
        " too long; on PostgreSQL the connection was lost, the server refused connections,"
        " or a statement outlasted the statement timeout. Or the blob store (S3) could not be"
        " reached, for a call that reads or stores a file's bytes. The detail says whether"
        " anything was changed. Retry after Retry-After.",
        507: "The disk (or a quota) where the database or the files live is full: nothing was"
        " stored or changed.",
    }
)


#: The schema of text that may run over several lines (a hold's reason): the server trims
#: white space and refuses what is left empty, so the OpenAPI document asks for one character
#: that is not white space. Documented only: the domain's own message answers.
NOT_BLANK: JsonDict = {"pattern": text.NOT_SPACE}
#: The schema of a name or title: not blank, and one line (`text.one_line_pattern`).
#: Documented only, as NOT_BLANK.
ONE_LINE: JsonDict = {"pattern": text.one_line_pattern()}
#: A name (of a user, team, token, project, template or field): one line, at most
#: MAX_NAME characters. Examples go on the field: `name: Name = Field(examples=[…])`.
Name = Annotated[str, Field(min_length=1, max_length=text.MAX_NAME, json_schema_extra=ONE_LINE)]
#: A user's e-mail address as a path segment (…/users/{email} of teams and projects).
EmailInPath = Annotated[str, Path(max_length=text.MAX_EMAIL)]
#: The roles a grant takes, by name or id (the server also takes them in any case); null
#: where the role may be left out (Read Write).
ROLE_KEYS: list[str | None] = [key for r in ROLES for key in (r.name, r.id)]
ROLE_NAMES: JsonDict = {"enum": list(ROLE_KEYS)}
OPTIONAL_ROLE: JsonDict = {"enum": [*ROLE_KEYS, None]}

#: The 409 of a create whose name (or e-mail) is taken.
CONFLICT_RESPONSE = problem_responses({409: "Conflict: the name (or e-mail) is already taken."})
