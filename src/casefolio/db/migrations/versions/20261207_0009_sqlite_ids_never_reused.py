"""SQLite hands out no id twice (AUTOINCREMENT), as PostgreSQL's sequences never do

Without AUTOINCREMENT, SQLite gives a new row the largest id in the table plus one: the id of
the newest document purged from the trash, or of the newest folder or webhook deleted, went
to the next one created, so an integration's stored id and the audit trail's `targetId`
could name two things. These are the tables whose rows are deleted and whose ids are shown;
each is rebuilt once (a copy of its rows), and `sqlite_sequence` starts from its largest id.
PostgreSQL needs nothing."""

from alembic import op

revision = "0009_ids"
down_revision = "0008_h22u"

#: Parents before children, so that each rebuild sees its parents' final shape.
TABLES = ("folders", "documents", "document_versions", "webhooks", "webhook_deliveries")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in reversed(TABLES):
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
