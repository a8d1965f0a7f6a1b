"""Record a transaction's domain events in that transaction, just before it commits.

Every write session is a RecordingSession (db/engine.py), so every write path (both API
dialects, the CLI, the worker) records what it emitted without doing anything itself: the
audit entries and the outbox rows the change feed and webhooks read.

On SQLite, whose one write lock already serialises writers, an entry is hashed into the
chain and a change numbered (`seq`) as it is written. On PostgreSQL writers do not take
turns: entries are written unsealed (no hash) and changes unnumbered (the database stamps
both with the transaction's id), and sealing.py hashes the entries into the chain once
their transaction is over. A change is numbered by the writer itself at the end of its
transaction when no one else is numbering and its process serves no other write request
(with every other committed change still unnumbered; the numbers become visible with its
commit), else by the next numberer after its commit (sealing.py): writers never wait for
each other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, bindparam, event, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from casefolio.db.models import AuditEntry, Change
from casefolio.db.types import utcnow
from casefolio.domain.events import AUDIT_ONLY_TYPES, PENDING, Actor, DomainEvent, current_actor
from casefolio.fastpath import inflight
from casefolio.fastpath.prepared import PreparedWrite
from casefolio.outbound import leader
from casefolio.outbound.chain import GENESIS, entry_document, next_hash
from casefolio.outbound.signal import CHANNEL, outgoing, signal

log = logging.getLogger(__name__)
_RECORDED = "casefolio.recorded_changes"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
#: SQLite: the chain's end and the feed's newest number, which this writer's follow.
_LAST = text(
    "SELECT (SELECT id FROM audit_entries ORDER BY id DESC LIMIT 1),"
    " (SELECT hash FROM audit_entries ORDER BY id DESC LIMIT 1),"
    " (SELECT max(seq) FROM changes)"
)
#: Up to this many events, PostgreSQL's two inserts are one statement (its parameters stay
#: far below asyncpg's 32,767).
_ONE_STATEMENT_ROWS = 100
_INSERT_ENTRY = insert(AuditEntry)
_INSERT_CHANGE = insert(Change)
#: Changes numbered per statement, by a writer or a numberer (sealing.py).
NUMBER_BATCH = 5000
#: PostgreSQL, last in a writing transaction: tries the numberers' lock, never waits for it
#: (migration 0007_h22t).
_NUMBER_UNLESS_BUSY = text(f"SELECT casefolio_number_changes_unless_busy({NUMBER_BATCH})")


def _insert(table: Table, prefix: str, leave_out: tuple[str, ...]) -> Insert:
    """An insert of one row whose every value is a parameter named `prefix` + column."""
    return insert(table).values(
        {
            c.name: bindparam(f"{prefix}{c.name}", type_=c.type)
            for c in table.c
            if c.name not in leave_out
        }
    )


_ENTRIES: Table = AuditEntry.__table__  # type: ignore[assignment]
_CHANGES: Table = Change.__table__  # type: ignore[assignment]
#: PostgreSQL, one event (most transactions): its two inserts as one statement.
_ENTRY_AND_CHANGE = _insert(_CHANGES, "c_", ("id", "seq", "xid")).add_cte(
    _insert(_ENTRIES, "e_", ("id", "xid", "hash")).cte("audit")
)
#: PostgreSQL, an event the feed leaves out (a download, say): its entry alone.
_ENTRY_UNSEALED = _insert(_ENTRIES, "", ("id", "xid", "hash"))
#: SQLite, one event: the entry with its id and hash, the change with its number (xid is
#: the column's default, 0).
_ENTRY = _insert(_ENTRIES, "", ("xid",))
_CHANGE = _insert(_CHANGES, "", ("id", "xid"))
#: Each writing transaction runs these, so they run compiled once for their engine's
#: dialect, on the DB-API cursor (fastpath/prepared.py).
_PREPARED: dict[tuple[Dialect, ClauseElement], PreparedWrite] = {}
#: Engines come and go (tests, CLI runs): the dialects' statements are made again after this.
_PREPARED_MAX = 64


def _run(conn: Connection, statement: ClauseElement, parameters: Mapping[str, Any]) -> list[Any]:
    key = (conn.dialect, statement)
    prepared = _PREPARED.get(key)
    if prepared is None:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        prepared = _PREPARED[key] = PreparedWrite(statement, conn.dialect)
    return prepared.run(conn, parameters)


class RecordingSession(Session):
    """The sync session behind every writer."""


@event.listens_for(RecordingSession, "before_commit")
def _record_pending(session: Session) -> None:
    events: list[DomainEvent] | None = session.info.pop(PENDING, None)
    if not events:
        return
    session.flush()  # the events may name rows of a pending flush
    conn = session.connection()
    if record(conn, events, current_actor.get()):
        session.info[_RECORDED] = True
        number_own(conn)


def number_own(conn: Connection) -> int:
    """PostgreSQL, at the very end of a writing transaction: if no one else is numbering,
    number every committed change still unnumbered and this transaction's own, holding the
    numberers' lock through the commit (so that an idle server's long-polls and worker find
    the change numbered and need not commit a numbering of their own); return how many."""
    if conn.dialect.name != "postgresql":
        return 0  # record() numbered them
    if inflight.among_other_writers():
        # Writes coming in: the worker's next round or the next reader of the feed numbers
        # them, many at once (both number before they read), a round trip less per write.
        # Alone (long-polls waiting count as reads), the writer numbers its own, as above.
        return 0
    return int(_run(conn, _NUMBER_UNLESS_BUSY, {})[0][0] or 0)


@event.listens_for(RecordingSession, "after_commit")
def _wake_waiters(session: Session) -> None:
    if not session.info.pop(_RECORDED, False):
        return
    signal.changed()
    engine = session.get_bind().engine
    if engine.dialect.name != "postgresql":
        # The worker, if another process runs it (leader.py); other SQLite processes'
        # long-polls re-check the outbox (outbound/feed.py).
        leader.waker.poke()
        return
    # Other processes' long-polls and workers, told after the commit in a transaction of
    # its own: a NOTIFY in the writing transaction would hold PostgreSQL's one notify lock
    # through that commit's flush, so writers would commit one at a time again. A server
    # process's notifier sends it (one for many commits); a process without one, here.
    if outgoing.committed():
        return
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(_NOTIFY)
    except (DBAPIError, OSError) as exc:  # committed all the same; re-checks find it
        log.warning("could not notify listeners of a commit (%s)", exc)


@event.listens_for(RecordingSession, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(_RECORDED, None)


def record(conn: Connection, events: list[DomainEvent], actor: Actor) -> bool:
    """Given a connection in the writing transaction, append the events' audit entries and
    outbox rows; return whether any outbox row was written."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        last_id, last_hash, last_seq = 0, GENESIS, 0
    else:
        last = _run(conn, _LAST, {})[0]
        last_id, last_hash, last_seq = last[0] or 0, last[1] or GENESIS, last[2] or 0
    now = utcnow()
    entries: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for domain_event in events:
        columns: dict[str, Any] = {
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
        if postgres:
            entries.append(columns)  # id from the sequence; sealed later
        else:
            last_id += 1
            columns["id"] = last_id
            # Strict: details casefolio never writes are refused as they are written.
            last_hash = next_hash(last_hash, entry_document(**columns), strict=True)
            entries.append({**columns, "hash": last_hash})
        if domain_event.type not in AUDIT_ONLY_TYPES:
            change: dict[str, Any] = {} if postgres else {"seq": last_seq + len(changes) + 1}
            changes.append(
                change
                | {
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
    if len(entries) == 1 and len(changes) <= 1:
        if not postgres:
            _run(conn, _ENTRY, entries[0])
            if changes:
                _run(conn, _CHANGE, changes[0])
            return bool(changes)
        if changes:
            _run(
                conn,
                _ENTRY_AND_CHANGE,
                {f"e_{k}": v for k, v in entries[0].items()}
                | {f"c_{k}": v for k, v in changes[0].items()},
            )
            return True
        _run(conn, _ENTRY_UNSEALED, entries[0])
        return False
    if postgres and changes and len(entries) <= _ONE_STATEMENT_ROWS:
        # Every round trip before the commit counts: both inserts go as one statement.
        audit = insert(AuditEntry).values(entries).cte("audit")
        conn.execute(insert(Change).values(changes).add_cte(audit))
        return True
    conn.execute(_INSERT_ENTRY, entries)
    if changes:
        conn.execute(_INSERT_CHANGE, changes)
    return bool(changes)
