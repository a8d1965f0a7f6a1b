"""outbound (h22t): a writer numbers its own change when no one else is numbering

On PostgreSQL a change was numbered only after its commit, by the next numberer (a
long-poll, the worker), whose numbering is a transaction of its own that commits
synchronously. The writer now tries the numberers' lock at the end of its transaction
(outbound/recorder.py) and, if it is free, numbers every committed unnumbered change and
its own, holding the lock through its commit as numberers do. If the lock is taken the
writer never waits: its change stays for the next numberer. SQLite is unchanged (its
recorder numbers as it writes)."""

from alembic import op

revision = "0007_h22t"
down_revision = "0006_h22s"

#: pg_advisory_xact_lock key of the numberers (outbound/sealing.py's NUMBER_LOCK).
NUMBER_LOCK = 0x6361_7365_666F_6C6B


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Called by a writer just before its COMMIT. The lock is tried, never waited for; once
    # held, the numbering is 0006's casefolio_number_changes (its own take of the lock is
    # then a second hold of the same one), whose statements each see what committed before
    # they started, so they see the previous holder's numbers. Under a transaction-wide
    # snapshot (REPEATABLE READ or stricter) they would not, so there the writer leaves its
    # change to the numberers.
    op.execute(
        "CREATE FUNCTION casefolio_number_changes_unless_busy(batch integer) RETURNS bigint"
        " LANGUAGE plpgsql AS $$"
        " BEGIN"
        "  IF current_setting('transaction_isolation') <> 'read committed' THEN RETURN 0;"
        "  END IF;"
        f"  IF NOT pg_try_advisory_xact_lock({NUMBER_LOCK}) THEN RETURN 0; END IF;"
        "  RETURN casefolio_number_changes(batch);"
        " END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION casefolio_number_changes_unless_busy(integer)")
