"""What the database holds, to show that a refused request stored nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from casefolio.db.engine import Database
from casefolio.db.models import Base

# Touched by every authenticated request, whether or not it was refused.
VOLATILE = {("api_tokens", "last_used_at")}


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (sorted), without the columns a mere request touches."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
            rows = (await session.execute(select(*columns))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out
