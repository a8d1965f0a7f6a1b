"""Indexes that hold only the rows their queries look for (migration 0008_h22u): the
changes' user index leaves out the changes that name no user, and a lookup by user still
uses it."""

from __future__ import annotations

from sqlalchemy import text

from casefolio.db.engine import Database


async def test_the_changes_user_index_holds_only_changes_that_name_a_user(
    db: Database, is_postgres: bool
) -> None:
    async with db.read() as session:
        if is_postgres:
            definition = (
                await session.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_changes_user_id'")
                )
            ).scalar_one()
            assert definition.endswith("WHERE (user_id IS NOT NULL)"), definition
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                (await session.execute(text("EXPLAIN SELECT id FROM changes WHERE user_id = 5")))
                .scalars()
                .all()
            )
        else:
            listed = (await session.execute(text("PRAGMA index_list(changes)"))).all()
            partial = {row[1]: bool(row[4]) for row in listed}
            assert partial["ix_changes_user_id"] is True
            plan = "\n".join(
                str(row[-1])
                for row in await session.execute(
                    text("EXPLAIN QUERY PLAN SELECT id FROM changes WHERE user_id = 5")
                )
            )
    assert "ix_changes_user_id" in plan, plan
