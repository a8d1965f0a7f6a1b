"""legal holds, the document trash, project retention rules"""

import sqlalchemy as sa
from alembic import op

revision = "0004_h27"
# The head of main when this was written; the integrator re-chains migrations at merge.
down_revision = "0002_h22"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trashed_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention", sa.JSON(), nullable=True))
    op.create_table(
        "holds",
        sa.Column("id", _ID, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", _ID, nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_holds_project_id_projects", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_holds_created_by_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["released_by"], ["users.id"], name="fk_holds_released_by_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )
    op.create_index("ix_holds_project", "holds", ["project_id", "id"])
    op.create_table(
        "hold_documents",
        sa.Column("hold_id", _ID, nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["holds.id"], name="fk_hold_documents_hold_id_holds", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("hold_id", "document_id", name="pk_hold_documents"),
    )
    op.create_index("ix_hold_documents_document_id", "hold_documents", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_hold_documents_document_id", table_name="hold_documents")
    op.drop_table("hold_documents")
    op.drop_index("ix_holds_project", table_name="holds")
    op.drop_table("holds")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("retention")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("trashed_at")
