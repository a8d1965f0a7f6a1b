"""SQLite hands out no id twice (AUTOINCREMENT), as PostgreSQL's sequences never do

Without AUTOINCREMENT, SQLite gives a new row the largest id in the table plus one: the id of
the newest document purged from the trash, or of the newest folder or webhook deleted, went
to the next one created, so an integration's stored id and the audit trail's `targetId`
could name two things. These are the tables whose rows are deleted and whose ids are shown;
each is rebuilt once (a copy of its rows). Its `sqlite_sequence` starts from the largest id
it has held: in the table, or named by the audit trail, which keeps the ids of rows deleted
before this migration. PostgreSQL needs nothing."""

import sqlalchemy as sa
from alembic import op

revision = "0009_ids"
down_revision = "0008_h22u"

#: Parents before children, so that each rebuild sees its parents' final shape.
TABLES = ("folders", "documents", "document_versions", "webhooks", "webhook_deliveries")
#: The audit trail's target type for each table's rows (every row's creation is audited).
AUDITED_AS = {
    "folders": "folder",
    "documents": "document",
    "document_versions": "version",
    "webhooks": "webhook",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    bind = op.get_bind()
    audited = bind.execute(
        sa.text(
            "SELECT target_type, max(target_id) FROM audit_entries"
            " WHERE target_type IN ('folder', 'document', 'version', 'webhook')"
            " GROUP BY target_type"
        )
    )
    highest: dict[str, int] = {str(target): int(top) for target, top in audited.all()}
    for table, target in AUDITED_AS.items():
        seen = highest.get(target)
        if seen is None:
            continue
        # The copy left the table's largest id (if it has rows); the trail may know a larger.
        values = {"name": table, "seq": seen}
        updated = bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = max(seq, :seq) WHERE name = :name"), values
        )
        if not updated.rowcount:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"), values
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in reversed(TABLES):
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
