"""The full-text tables as statements see them: PostgreSQL's `tsv` column of version_texts
with its text search configuration, and SQLite's FTS5 table (both made by the migrations,
both filled by index.py). Matching (service.py) and snippets (hits.py) read them alike."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, column, func, literal_column, table
from sqlalchemy.sql.elements import ColumnElement

from casefolio.db.models import VersionText

#: The text search configuration the migration made (PostgreSQL).
TS_CONFIG = "casefolio_search"
CONFIG: ColumnElement[Any] = literal_column(f"'{TS_CONFIG}'")
TEXTS = cast(Table, VersionText.__table__)
TSV: ColumnElement[Any] = literal_column("version_texts.tsv")
FTS = table("version_texts_fts", column("rowid"), column("text"))
FTS_NAME: ColumnElement[Any] = literal_column("version_texts_fts")


def tsquery(query: ColumnElement[Any]) -> ColumnElement[Any]:
    """PostgreSQL: `query` (a query compiled by query.to_tsquery) in the configuration."""
    return func.to_tsquery(CONFIG, query)
