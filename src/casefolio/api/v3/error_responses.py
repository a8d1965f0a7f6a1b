"""The error responses of /api/v3 operations, for the OpenAPI document: OpenProject's error
object, sent as application/hal+json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


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


def v3_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of these error statuses, as OpenProject error objects."""
    return {status: {"model": V3Error, "description": _V3_STATUS[status]} for status in statuses}


#: What any /api/v3 operation may answer.
COMMON_V3_ERRORS = v3_errors(400, 401, 403, 404, 429, 503)
