"""The refusals only the v3 dialect has, worded as OpenProject words them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, Field

from casefolio.api.errors import DialectProblem, Problem
from casefolio.domain.errors import NotFound


class V3Error(BaseModel):
    """OpenProject's error object (sent as application/hal+json)."""

    type: Literal["Error"] = Field(alias="_type")
    errorIdentifier: str = Field(examples=["urn:openproject-org:api:v3:errors:InvalidQuery"])
    message: str | list[str]
    embedded: dict[str, Any] | None = Field(
        None, alias="_embedded", description="`details.attribute` names the property (422)."
    )


_V3_STATUS = {
    400: "InvalidQuery (a bad query parameter) or InvalidRequestBody (a bad body).",
    401: "Unauthenticated: missing or wrong credentials.",
    403: "MissingPermission.",
    404: "NotFound: missing, or not visible to the caller.",
    409: "UpdateConflict: a document's last attachment, or a concurrent change.",
    415: "TypeNotSupported: a body of another media type.",
    422: "PropertyConstraintViolation, naming the property in `_embedded.details`.",
    429: "TooManyRequests; see Retry-After.",
    503: "InternalServerError: the database was briefly unavailable; see Retry-After.",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of these error statuses, as OpenProject error objects."""
    return {status: {"model": V3Error, "description": _V3_STATUS[status]} for status in statuses}


#: What any /api/v3 operation may answer.
COMMON_RESPONSES = responses(400, 401, 403, 404, 429, 503)


def invalid_query(*messages: str) -> DialectProblem:
    """400 InvalidQuery; OpenProject sends the query's messages as a list."""
    return DialectProblem(
        Problem(400, "Bad Request", " ".join(messages), "InvalidQuery", v3_message=list(messages))
    )


def invalid_body(message: str) -> DialectProblem:
    return DialectProblem(Problem(400, "Bad Request", message, "InvalidRequestBody"))


def constraint(attribute: str, message: str) -> DialectProblem:
    """422 PropertyConstraintViolation naming the (camelCase) attribute in `_embedded.details`."""
    return DialectProblem(
        Problem(
            422,
            "Unprocessable Content",
            message,
            "PropertyConstraintViolation",
            errors=[{"field": attribute, "message": message}],
        )
    )


def type_not_supported(expected: str, actual: str) -> DialectProblem:
    message = f"Expected CONTENT-TYPE to be '{expected}' but got '{actual}'."
    return DialectProblem(Problem(415, "Unsupported Media Type", message, "TypeNotSupported"))


def not_found(message: str) -> DialectProblem:
    return DialectProblem(Problem(404, "Not Found", message, "NotFound"))


@contextmanager
def not_found_as(message: str) -> Iterator[None]:
    """Re-word the domain's NotFound with the text OpenProject uses for this resource."""
    try:
        yield
    except NotFound:
        raise not_found(message) from None
