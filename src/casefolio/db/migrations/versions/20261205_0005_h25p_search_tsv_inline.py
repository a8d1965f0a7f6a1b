"""search (h25p): PostgreSQL keeps each text's tsvector in its table row

A search reads the `tsvector` of every row it checks (a phrase is checked against it, a
match is scored from it). Stored the default way, a ~3 KB tsvector went to the TOAST table
(one index probe and two more pages per row) while the row itself kept the compressed text,
which a search never reads. STORAGE MAIN keeps the tsvector in the row (out of line only
when it cannot fit a page), and the text, now the larger part of a row, moves out of line.
Rows already written are rewritten once (their tsvector is computed again). Nothing changes
on SQLite (FTS5 keeps its own index)."""

from alembic import op

revision = "0005_h25p"
down_revision = "0005_h27v"


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
