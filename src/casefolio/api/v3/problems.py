"""The refusals only the v3 dialect has, worded as OpenProject words them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from casefolio.api.errors import DialectProblem, Problem
from casefolio.domain.errors import Invalid, NotFound


def invalid_query(message: str) -> DialectProblem:
    """400 InvalidQuery with one message, a string: error_response.yml's form, and what
    OpenProject's current code sends (RaiseQueryErrors: one InvalidQuery per message)."""
    return DialectProblem(Problem.bad_request(message, "InvalidQuery"))


def invalid_body(message: str) -> DialectProblem:
    return DialectProblem(Problem.bad_request(message, "InvalidRequestBody"))


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


@contextmanager
def constraint_on(attribute: str) -> Iterator[None]:
    """Re-word the domain's Invalid as 422 PropertyConstraintViolation naming `attribute`."""
    try:
        yield
    except Invalid as exc:
        raise constraint(attribute, exc.message) from None
