"""outbound (h22p): audit entries sealed after their commit; feed order by transaction

Writers no longer take turns on a lock held through COMMIT. On PostgreSQL an entry is
written unhashed with its transaction's id (`xid`) and an id from a sequence, and sealed
(hashed into the chain) later in (xid, id) order; changes carry `xid` too, and the feed and
the worker read them in (xid, seq) order below the oldest running transaction.

Revision ID: 0005_h22p
Revises: 0004_h23
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_h22p"
down_revision: str | None = "0004_h23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The writing transaction's id: set by PostgreSQL itself on every insert.
_CURRENT_XID = "(pg_current_xact_id()::text)::bigint"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_index("ix_audit_entries_chain", ["xid", "id"], unique=False)
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_index("ix_changes_xid_seq", ["xid", "seq"], unique=False)
    with op.batch_alter_table("outbound_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"))
    if postgres:
        # Existing rows keep xid 0 (they come first, in their old order).
        op.execute("CREATE SEQUENCE audit_entries_id_seq OWNED BY audit_entries.id")
        op.execute(
            "SELECT setval('audit_entries_id_seq', "
            "(SELECT COALESCE(MAX(id), 0) + 1 FROM audit_entries), false)"
        )
        op.execute(
            "ALTER TABLE audit_entries ALTER COLUMN id SET DEFAULT nextval('audit_entries_id_seq')"
        )
        op.execute(f"ALTER TABLE audit_entries ALTER COLUMN xid SET DEFAULT {_CURRENT_XID}")
        op.execute(f"ALTER TABLE changes ALTER COLUMN xid SET DEFAULT {_CURRENT_XID}")
        # Waiting long-polls and workers are told at the commit of any insert into the
        # outbox (one notification a transaction): no statement of the writer's own.
        op.execute(
            "CREATE FUNCTION casefolio_notify_changes() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_notify('casefolio_changes', ''); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER changes_notify AFTER INSERT ON changes "
            "FOR EACH STATEMENT EXECUTE FUNCTION casefolio_notify_changes()"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER changes_notify ON changes")
        op.execute("DROP FUNCTION casefolio_notify_changes()")
        op.execute("ALTER TABLE audit_entries ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_entries_id_seq")
    with op.batch_alter_table("outbound_state", schema=None) as batch_op:
        batch_op.drop_column("xid")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_xid_seq")
        batch_op.drop_column("xid")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_chain")
        batch_op.drop_column("xid")
        # Entries not sealed yet cannot go back to a chain that requires a hash.
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
