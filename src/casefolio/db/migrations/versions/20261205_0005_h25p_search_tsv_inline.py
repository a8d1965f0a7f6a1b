"""search (h25p): PostgreSQL keeps each text's tsvector in its table row

A search reads the `tsvector` of every row it checks (a phrase is checked against it, a
match is scored from it). Stored the default way, a ~3 KB tsvector went to the TOAST table
(one index probe and two more pages per row) while the row itself kept the compressed text,
which a search never reads. STORAGE MAIN keeps the tsvector in the row (out of line only
when it cannot fit a page), and the text, now the larger part of a row, moves out of line.
Rows already written are rewritten once (their tsvector is computed again). Nothing changes
on SQLite (FTS5 keeps its own index).

Revision ID: 0005_h25p
Revises: 0005_h27v
Create Date: 2026-12-05 18:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_h25p"
down_revision: str | None = "0005_h27v"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE version_texts ALTER COLUMN tsv SET STORAGE MAIN")
    # Storage applies to values written from now on: write the existing rows again.
    op.execute("UPDATE version_texts SET text = text WHERE text IS NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE version_texts ALTER COLUMN tsv SET STORAGE EXTENDED")
