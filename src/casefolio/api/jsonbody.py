"""JSON a request sends in a body, a multipart part or a query parameter, read the way FastAPI
reads a /api/v1 body (`json.loads`), and refused the same way in both dialects.

Every refusal is a RequestValidationError, so api/errors.py words it once and renders it as
problem+json (v1) or an OpenProject error (v3): JSON that does not parse, nests too deeply
(a RecursionError otherwise), or holds text that cannot be stored (domain/text.py).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError

from casefolio.domain import text

#: The location of a request body, as FastAPI names it.
BODY = ("body",)


def invalid_json(where: tuple[str, ...], reason: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "json_invalid", "loc": where, "msg": reason, "input": {}, "ctx": {}}]
    )


def unstorable(where: tuple[str, ...], field: str, problem: str) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": text.UNSTORABLE,
                "loc": where,
                "msg": problem,
                "input": None,
                "ctx": {"field": field, "problem": problem},
            }
        ]
    )


def loads(raw: bytes | str, where: tuple[str, ...] = BODY) -> Any:
    """Given JSON text and where it came from (`("body",)`, `("query", "filters")`,
    `("metadata",)`), return the parsed value; raise RequestValidationError if it does not
    parse, nests more than MAX_JSON_DEPTH levels, or holds text that cannot be stored."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise invalid_json(where, text.TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError of bytes
        raise invalid_json(where, str(exc)) from None
    found = text.check_json(value)
    if found is not None:
        field, problem = found
        if problem == text.TOO_DEEP:
            raise invalid_json(where, f"{field or 'the value'} {problem}")
        raise unstorable(where, field, problem)
    return value
