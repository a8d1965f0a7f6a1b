"""The ids in /api/v3 paths. OpenProject looks a path's id up (`Document.visible.find`), so a
number no row can have (0, or one past the database's integers) is a 404 NotFound there,
not a 400 naming the parameter; these ids answer so before the handler runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

from casefolio.api.errors import V3_NOT_FOUND
from casefolio.api.v3.problems import not_found
from casefolio.db.models import MAX_ID, is_id

ATTACHMENT_NOT_FOUND = "The specified attachment does not exist."


def _missing_unless_id(message: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not is_id(value):
            raise not_found(message)
        return value

    return check


_SCHEMA = {"minimum": 1, "maximum": MAX_ID}
#: A document's id in a path: a number no document can have is NotFound.
DocumentPathId = Annotated[
    int, Path(json_schema_extra=_SCHEMA), AfterValidator(_missing_unless_id(V3_NOT_FOUND))
]
#: An attachment's id in a path, NotFound in the words OpenProject uses for attachments.
AttachmentPathId = Annotated[
    int,
    Path(json_schema_extra=_SCHEMA),
    AfterValidator(_missing_unless_id(ATTACHMENT_NOT_FOUND)),
]
