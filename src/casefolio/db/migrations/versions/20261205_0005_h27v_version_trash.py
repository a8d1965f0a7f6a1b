"""the version trash: a deleted version waits in the trash, like a deleted document

Revision ID: 0005_h27v
Revises: 0004_h23
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_h27v"
down_revision: str | None = "0004_h23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trashed_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_document_versions_trashed",
        "document_versions",
        ["trashed_at"],
        sqlite_where=sa.text("trashed_at IS NOT NULL"),
        postgresql_where=sa.text("trashed_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_document_versions_trashed", table_name="document_versions")
    with op.batch_alter_table("document_versions", schema=None) as batch_op:
        batch_op.drop_column("trashed_at")
