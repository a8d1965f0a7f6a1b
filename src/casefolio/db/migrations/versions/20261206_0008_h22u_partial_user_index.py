"""outbound (h22u): the changes' user index holds only the rows that name a user

Only access changes (project.access_lost, project.access_granted) carry `user_id`; every
other change wrote an entry for NULL into the index, one more index page per writing
transaction for nothing a query asks (the feed looks rows up by a user's id, never by
NULL)."""

from alembic import op

revision = "0008_h22u"
down_revision = "0007_h22t"


def upgrade() -> None:
    op.drop_index("ix_changes_user_id", table_name="changes")
    op.execute("CREATE INDEX ix_changes_user_id ON changes (user_id) WHERE user_id IS NOT NULL")


def downgrade() -> None:
    op.drop_index("ix_changes_user_id", table_name="changes")
    op.create_index("ix_changes_user_id", "changes", ["user_id"])
