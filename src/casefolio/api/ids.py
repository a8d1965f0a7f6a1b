"""Ids a request names (in its path, query or body): positive integers the database can hold.

A larger one would reach the database driver and fail there (a 500); refused here, it is a
400 naming the field, like any other malformed value.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, Field, WithJsonSchema
from starlette.convertors import IntegerConvertor, register_url_convertor

from casefolio.db.models import MAX_ID, is_id
from casefolio.domain.errors import Invalid


class IdConvertor(IntegerConvertor):
    """`{name:id}` in a route's path: Starlette's `int`, except that digits longer than any
    id convert to a number past MAX_ID, which the route's bounds refuse as they refuse any
    too-large id; `int()` of 4,301 digits or more raises (Python's limit on converting long
    digit strings) and was a 500."""

    def convert(self, value: str) -> int:
        return int(value) if len(value) <= 20 else MAX_ID + 1


register_url_convertor("id", IdConvertor())


def _digits_as_int(value: object) -> object:
    # v1 returns ids as strings, so a client may send one back as it read it ("2").
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return value


#: An id in a JSON body: a JSON integer, or the digit string v1 returns ids as; strict
#: otherwise (not 2.0, "2.5", true). The documented string pattern is narrower than what is
#: taken, so that every value the schema allows is accepted.
BodyId = Annotated[
    int,
    BeforeValidator(_digits_as_int),
    Field(ge=1, le=MAX_ID, strict=True),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
            ]
        }
    ),
]
#: An id in a path whose parameter keeps its Python name (/api/v3).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def path_id(alias: str, **extra: Any) -> Any:
    """The Path() of an id in a path, under its wire name (`projectId`)."""
    return Path(alias=alias, ge=1, le=MAX_ID, **extra)


def query_id(alias: str, **extra: Any) -> Any:
    """The Query() of an id in the query string, under its wire name (`userId`)."""
    return Query(alias=alias, ge=1, le=MAX_ID, **extra)


#: The path ids several routers share.
ProjectId = Annotated[int, path_id("projectId")]
DocumentId = Annotated[int, path_id("documentId")]
TeamId = Annotated[int, path_id("teamId")]


def optional_id(raw: str, *, field: str, label: str) -> int | None:
    """Given a form field that holds an id or nothing ("": the root, no template), return
    it; Invalid naming the field when it holds anything else, rather than taking it for
    nothing (a stale or tampered value would move a document to the root)."""
    if not raw:
        return None
    found = digits_id(raw)
    if found is None:
        raise Invalid(
            f"{label} is a number (an id); {raw[:40]!r} is not one.",
            [{"field": field, "message": "not an id"}],
        )
    return found


def digits_id(raw: str) -> int | None:
    """Given an id spelled in digits inside a string, return it; None unless it is one."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 20 and is_id(int(raw)):
        return int(raw)
    return None
