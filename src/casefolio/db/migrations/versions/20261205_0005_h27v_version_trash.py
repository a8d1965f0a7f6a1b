"""the version trash: a deleted version waits in the trash, like a deleted document"""

import sqlalchemy as sa
from alembic import op

revision = "0005_h27v"
down_revision = "0004_h23"


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
