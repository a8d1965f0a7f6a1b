"""Record a transaction's domain events in that transaction, just before it commits.

Every write session is a RecordingSession (db/engine.py), so every write path (both API
dialects, the CLI, the worker) records what it emitted without doing anything itself: the
audit entries, hash chained, and the outbox rows the change feed and webhooks read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, insert, select, text
from sqlalchemy.orm import Session

from casefolio.db.models import AuditEntry, Change
from casefolio.db.types import utcnow
from casefolio.domain.events import AUDIT_ONLY_TYPES, PENDING, Actor, DomainEvent, current_actor
from casefolio.outbound.chain import GENESIS, entry_document, next_hash
from casefolio.outbound.signal import CHANNEL, signal

#: Key of pg_advisory_xact_lock: chain appends (and outbox sequence numbers) take turns, so
#: that the chain stays one line and sequence order is commit order.
CHAIN_LOCK = 0x6361_7365_666F_6C69  # "casefoli"
_RECORDED = "casefolio.recorded_changes"
_LAST_ENTRY = select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
_LOCK = text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
#: The notification and the lock in one round trip (a NOTIFY is delivered at the commit,
#: wherever in the transaction it was sent).
_NOTIFY_AND_LOCK = text(f"SELECT pg_notify('{CHANNEL}', ''), pg_advisory_xact_lock({CHAIN_LOCK})")
#: Up to this many events, PostgreSQL's two inserts are one statement (its parameters stay
#: far below asyncpg's 32,767).
_ONE_STATEMENT_ROWS = 100
_INSERT_ENTRY = insert(AuditEntry)
_INSERT_CHANGE = insert(Change)


class RecordingSession(Session):
    """The sync session behind every writer."""


@event.listens_for(RecordingSession, "before_commit")
def _record_pending(session: Session) -> None:
    events: list[DomainEvent] | None = session.info.pop(PENDING, None)
    if not events:
        return
    session.flush()  # the events may name rows of a pending flush
    if record(session.connection(), events, current_actor.get()):
        session.info[_RECORDED] = True


@event.listens_for(RecordingSession, "after_commit")
def _wake_waiters(session: Session) -> None:
    if session.info.pop(_RECORDED, False):
        signal.changed()


@event.listens_for(RecordingSession, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(_RECORDED, None)


def record(conn: Connection, events: list[DomainEvent], actor: Actor) -> bool:
    """Given a connection in the writing transaction, append the events' audit entries and
    outbox rows; return whether any outbox row was written."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # The lock is held until the commit; SQLite's write lock already is.
        if any(e.type not in AUDIT_ONLY_TYPES for e in events):
            conn.execute(_NOTIFY_AND_LOCK)
        else:
            conn.execute(_LOCK)
    last = conn.execute(_LAST_ENTRY).first()
    last_id, last_hash = (last[0], last[1]) if last else (0, GENESIS)
    now = utcnow()
    entries: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for domain_event in events:
        last_id += 1
        columns: dict[str, Any] = {
            "id": last_id,
            "at": now,
            "actor_kind": actor.kind,
            "actor_user_id": actor.user_id,
            "actor_token_id": actor.token_id,
            "client": actor.client,
            "action": domain_event.type,
            "target_type": domain_event.target_type,
            "target_id": domain_event.target_id,
            "project_id": domain_event.project_id,
            "details": dict(domain_event.details),
        }
        last_hash = next_hash(last_hash, entry_document(**columns))
        entries.append({**columns, "hash": last_hash})
        if domain_event.type not in AUDIT_ONLY_TYPES:
            changes.append(
                {
                    "at": now,
                    "type": domain_event.type,
                    "project_id": domain_event.project_id,
                    "document_id": domain_event.document_id,
                    "version_id": domain_event.version_id,
                    "folder_id": domain_event.folder_id,
                    "subject_id": domain_event.subject_id,
                    "user_id": domain_event.user_id,
                    "details": dict(domain_event.details),
                }
            )
    if postgres and changes and len(entries) <= _ONE_STATEMENT_ROWS:
        # Inside the lock every round trip counts: both inserts go as one statement.
        audit = insert(AuditEntry).values(entries).cte("audit")
        conn.execute(insert(Change).values(changes).add_cte(audit))
        return True
    # One row (most transactions) as a single execution: an executemany of one costs more.
    conn.execute(_INSERT_ENTRY, entries[0] if len(entries) == 1 else entries)
    if changes:
        conn.execute(_INSERT_CHANGE, changes[0] if len(changes) == 1 else changes)
    return bool(changes)
