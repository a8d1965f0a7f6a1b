"""containerless attachments: a version may wait for a document to claim it"""

import sqlalchemy as sa
from alembic import op

revision = "0002_h24"
down_revision = "0001"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UNCLAIMED = sa.text("document_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("document_versions", schema=None) as batch_op:
        batch_op.alter_column("document_id", existing_type=_ID, nullable=True)
        batch_op.create_index(
            "ix_document_versions_unclaimed",
            ["created_at"],
            unique=False,
            sqlite_where=_UNCLAIMED,
            postgresql_where=_UNCLAIMED,
        )


def downgrade() -> None:
    # Unclaimed uploads have no document to belong to; they go (gc removes their blobs).
    op.execute("DELETE FROM document_versions WHERE document_id IS NULL")
    with op.batch_alter_table("document_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_document_versions_unclaimed")
        batch_op.alter_column("document_id", existing_type=_ID, nullable=False)
