"""What the database holds, to show that a refused request stored nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, text

from casefolio.db.engine import Database
from casefolio.db.models import Base

# Touched by requests whether or not they are refused: a token's use, a page's session (at
# most once a minute).
VOLATILE = {("api_tokens", "last_used_at"), ("web_sessions", "last_seen_at")}


def _rows_as_json(table: Table, dialect: str) -> str:
    """A subquery giving the table's rows, in primary-key order, as one JSON array."""
    columns = ", ".join(
        f'"{c.name}"' for c in table.columns if (table.name, c.name) not in VOLATILE
    )
    key = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    if dialect == "postgresql":
        rows = f"json_agg(json_build_array({columns}) ORDER BY {key})::text"
        return f"(SELECT coalesce({rows}, '[]') FROM \"{table.name}\")"
    return (
        f"(SELECT json_group_array(json_array({columns}))"
        f' FROM (SELECT * FROM "{table.name}" ORDER BY {key}))'
    )


async def snapshot(db: Database) -> dict[str, list[Any]]:
    """Every row of every table, without the columns a mere request touches. One statement:
    the walkers take a snapshot after each of thousands of requests."""
    tables = Base.metadata.sorted_tables
    async with db.read() as session:
        dialect = session.get_bind().dialect.name
        sql = "SELECT " + ", ".join(_rows_as_json(t, dialect) for t in tables)
        row = (await session.execute(text(sql))).one()
    return {t.name: json.loads(rows) for t, rows in zip(tables, row, strict=True)}
