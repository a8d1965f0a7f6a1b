"""outbound (h22s): audit entries sealed and changes numbered after their commit

Writers no longer take turns on a lock held through COMMIT. On PostgreSQL an audit entry is
written unhashed with its transaction's id (`xid`) and an id from a sequence, and sealed
(hashed into the chain) later in (xid, id) order, below the oldest running transaction. A
change is written without its feed number: the outbox row's own key is now `id`, and `seq`
(the number the feed, its cursors and webhook payloads carry) is stamped by the sealer,
under the sealers' lock, on committed changes only, so it grows in the order changes
become readable. On SQLite, whose writers take turns, the recorder writes both at once."""

import sqlalchemy as sa
from alembic import op

revision = "0006_h22s"
down_revision = "0005_h25p"

#: pg_advisory_xact_lock key of the numberers (outbound/sealing.py's NUMBER_LOCK).
NUMBER_LOCK = 0x6361_7365_666F_6C6B
#: The writing transaction's id: set by PostgreSQL itself on every insert.
_CURRENT_XID = "(pg_current_xact_id()::text)::bigint"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_index("ix_audit_entries_chain", ["xid", "id"], unique=False)
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_project_seq")
        batch_op.alter_column(
            "seq",
            new_column_name="id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            existing_nullable=False,
        )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"))
    # Every change kept so far has committed: it keeps its number.
    op.execute("UPDATE changes SET seq = id")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_seq", ["seq"], unique=True)
        batch_op.create_index("ix_changes_project_seq", ["project_id", "seq"], unique=False)
    if postgres:
        # The sealer finds the changes it has to number by this index alone (it stays
        # small: a change leaves it when numbered).
        op.execute("CREATE INDEX ix_changes_unsealed ON changes (xid, id) WHERE seq IS NULL")
        # Existing entries keep xid 0 (they come first, in their old order).
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
        # The numberer: takes its lock only when there is something to number, and numbers
        # in statements of their own after it (a plpgsql statement sees what committed
        # before it started), so the lock's previous holder's numbers are seen. One round
        # trip; a call that numbered nothing writes nothing (its commit waits for no disk).
        op.execute(
            "CREATE FUNCTION casefolio_number_changes(batch integer) RETURNS bigint"
            " LANGUAGE plpgsql AS $$"
            " DECLARE numbered bigint := 0; done bigint;"
            " BEGIN"
            "  IF NOT EXISTS (SELECT FROM changes WHERE seq IS NULL) THEN RETURN 0; END IF;"
            f"  PERFORM pg_advisory_xact_lock({NUMBER_LOCK});"
            "  LOOP"
            "   WITH last AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM changes),"
            "   todo AS (SELECT id, row_number() OVER (ORDER BY xid, id) AS n FROM changes"
            "    WHERE seq IS NULL ORDER BY xid, id LIMIT batch)"
            "   UPDATE changes SET seq = last.seq + todo.n FROM todo, last"
            "    WHERE changes.id = todo.id;"
            "   GET DIAGNOSTICS done = ROW_COUNT;"
            "   numbered := numbered + done;"
            "   EXIT WHEN done < batch;"
            "  END LOOP;"
            "  RETURN numbered;"
            " END $$"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP FUNCTION casefolio_number_changes(integer)")
        op.execute("ALTER TABLE audit_entries ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_entries_id_seq")
        op.execute("DROP INDEX ix_changes_unsealed")
    # The rows' own keys become their numbers again (the old feed's numbers were its keys).
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_project_seq")
        batch_op.drop_index("ix_changes_seq")
        batch_op.drop_column("xid")
        batch_op.drop_column("seq")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.alter_column(
            "id",
            new_column_name="seq",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            existing_nullable=False,
        )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_project_seq", ["project_id", "seq"], unique=False)
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_chain")
        batch_op.drop_column("xid")
        # Entries not sealed yet cannot go back to a chain that requires a hash.
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
