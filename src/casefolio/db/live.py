"""The predicates that keep trashed documents and versions out of every read.

A document in the trash (domain/trash.py) keeps its row, versions and field values, with
`trashed_at` set, so that a restore gives back the same id and everything with it. Every
query that reads documents for a caller (the domain's reads, the fast read path, which runs
the domain's statements, the v3 collection, the web list, duplicate checks, exports, search)
adds `LIVE`, or `live(alias)` for an aliased documents table; grep for it to audit.

A trashed version keeps its row (and so its bytes) the same way, with its own `trashed_at`.
It is never a document's current version (filing.set_current picks the newest live one),
so reads of current versions need nothing; reads of a document's other versions (its
version list, one version, search over all versions) add `LIVE_VERSION` or
`live_version(alias)`.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, FromClause, Table

from casefolio.db.models import Document, DocumentVersion

_DOCUMENTS = cast(Table, Document.__table__)
_VERSIONS = cast(Table, DocumentVersion.__table__)


def live(documents: FromClause = _DOCUMENTS) -> ColumnElement[bool]:
    """Given the documents table (or an alias or subquery of it), the condition that a row
    is not in the trash."""
    column: ColumnElement[Any] = documents.c.trashed_at
    return column.is_(None)


def live_version(versions: FromClause = _VERSIONS) -> ColumnElement[bool]:
    """Given the versions table (or an alias or subquery of it), the condition that a
    version is not in the trash."""
    column: ColumnElement[Any] = versions.c.trashed_at
    return column.is_(None)


#: `live()` of the documents table itself; usable in ORM selects of `Document` too.
LIVE = live()
#: `live_version()` of the versions table itself; usable in ORM selects of `DocumentVersion`.
LIVE_VERSION = live_version()
