"""SQLAlchemy tables. Wire schemas live in api/; rules live in domain/.

One file on purpose, though past the ~400 lines a module otherwise keeps to: it is a
declaration of the whole schema, each table a short class of columns and constraints with
no logic between them, read as one page when writing a migration (its foreign keys point
across tables), and each new table is one addition here. Split by aggregate, every
migration would be checked against several files and their import order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from casefolio.db.types import UTCDateTime, utcnow

# Stable constraint names: Alembic's SQLite batch mode needs them to alter tables later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids on PostgreSQL; SQLite needs plain INTEGER for its rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")
#: The largest id either database can hold (both store a signed 64-bit integer): a larger
#: one in a statement is an error from the driver, never "not found".
MAX_ID = 2**63 - 1
#: On the tables whose rows are deleted and whose ids are shown: SQLite otherwise gives a
#: new row the largest id plus one, the id of the newest row deleted (migration 0009).
NEVER_REUSED_IDS = {"sqlite_autoincrement": True}


def is_id(value: int) -> bool:
    """Whether `value` can be a row's id: 1 to MAX_ID."""
    return 1 <= value <= MAX_ID


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased copy of the e-mail: uniqueness and look-ups are case-insensitive.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Argon2id (domain/accounts.py); NULL: the user cannot sign in to the web pages.
    password_hash: Mapped[str | None] = mapped_column(String(255))


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # The blueprint (folders tree, fields, grants) as validated JSON; copied, never referenced.
    blueprint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    download_via_api: Mapped[bool] = mapped_column(Boolean, default=False)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # {"keepYears": N, "then": "trash" | "review"} or None (domain/retention.py).
    retention: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ProjectUserGrant(Base):
    __tablename__ = "project_user_grants"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(40))


class ProjectTeamGrant(Base):
    __tablename__ = "project_team_grants"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(40))


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (
        # parent_key is parent_id or 0: NULLs never collide in a unique index, roots must.
        UniqueConstraint("project_id", "parent_key", "name"),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="RESTRICT"))
    parent_key: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # Keyset pages and afterDate syncs walk (project, updated_at, id) in order.
        Index("ix_documents_project_updated", "project_id", "updated_at", "id"),
        Index("ix_documents_folder_updated", "project_id", "folder_id", "updated_at", "id"),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    # Denormalised current version: lists and duplicate checks need it without a subquery.
    current_version_id: Mapped[int | None] = mapped_column(Id)
    current_sha256: Mapped[str | None] = mapped_column(String(64))
    # Version numbers are handed out by bumping this under the row lock (no max()+1 races).
    last_version_number: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set while the document is in the trash (domain/trash.py): every read leaves it out
    # through trash.LIVE; a restore clears it, the purge deletes the row.
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


Index("ix_documents_project_sha", Document.project_id, Document.current_sha256)
# Search finds the documents whose current version's text matched (search/service.py).
Index("ix_documents_current_version", Document.current_version_id)
# The web page's list sorted by title (domain/browse.py).
Index("ix_documents_project_title", Document.project_id, Document.title, Document.id)
Index(
    "ix_documents_folder_title",
    Document.project_id,
    Document.folder_id,
    Document.title,
    Document.id,
)


class DocumentVersion(Base):
    __tablename__ = "document_versions"
    __table_args__ = (
        UniqueConstraint("document_id", "number"),
        # `casefolio gc` looks for old unclaimed uploads; claimed versions stay out of it.
        Index(
            "ix_document_versions_unclaimed",
            "created_at",
            sqlite_where=text("document_id IS NULL"),
            postgresql_where=text("document_id IS NULL"),
        ),
        # The trash's purge looks for versions trashed long enough; live ones stay out of it.
        Index(
            "ix_document_versions_trashed",
            "trashed_at",
            sqlite_where=text("trashed_at IS NOT NULL"),
            postgresql_where=text("trashed_at IS NOT NULL"),
        ),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # NULL while the version is a containerless upload (v3 `POST /attachments`) that no
    # document has claimed yet; its number is 0 until then. Claiming keeps its id.
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set while the version is in the trash (domain/trash.py): every read leaves it out
    # through db.live.LIVE_VERSION; a restore clears it, the purge deletes the row.
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Hold(Base):
    """A legal hold (domain/holds.py): while active (released_at NULL) nothing it covers
    may be destroyed."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_project", "project_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(20))  # project, folder, document
    # The folder's or document's id; NULL for a project hold. No foreign key: a hold
    # outlives nothing it covers (deleting a held target is refused), and its record stays.
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    release_reason: Mapped[str | None] = mapped_column(Text)


class HoldDocument(Base):
    """A document a folder hold covers although it has left the folder: holds follow
    documents, not paths (written when a held document is moved out)."""

    __tablename__ = "hold_documents"

    hold_id: Mapped[int] = mapped_column(
        ForeignKey("holds.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class Field(Base):
    __tablename__ = "fields"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FieldValue(Base):
    __tablename__ = "field_values"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    field_id: Mapped[int] = mapped_column(
        ForeignKey("fields.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    value: Mapped[Any] = mapped_column(JSON)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of a 256-bit random secret: fast to look up, useless to a reader of the database.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters of the secret, so a person can tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SystemSetting(Base):
    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.current_timestamp()
    )


class WebSession(Base):
    """A signed-in browser (domain/websessions.py): checked on every page, so deleting the
    row signs it out in every process at once."""

    __tablename__ = "web_sessions"

    # SHA-256 of the cookie's secret: a reader of the database cannot sign in with it.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A secret waiting to be shown once after a redirect (domain/shown_once.py), sealed with
    # a key only the cookie gives: a reader of the database cannot open it.
    shown_once: Mapped[str | None] = mapped_column(Text, default=None)


class PasswordLink(Base):
    """A one-time, expiring link to set a password: an invitation or an operator's reset."""

    __tablename__ = "password_links"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Outbound (audit trail, change feed, webhooks): outbound/ writes these, nothing else.


class AuditEntry(Base):
    """An append-only, hash-chained record of a write or a content read."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_project", "project_id", "id"),
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_chain", "xid", "id"),
    )

    # A sequence on PostgreSQL; last id + 1 under SQLite's write lock (the recorder).
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_token_id: Mapped[int | None] = mapped_column(BigInteger)
    client: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Chain order is (xid, id). PostgreSQL fills xid with the writing transaction's id (the
    # migration's column default), SQLite leaves 0. hash is None until the entry is sealed
    # (outbound/sealing.py).
    xid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    hash: Mapped[str | None] = mapped_column(String(64))


class Change(Base):
    """The outbox: every domain event but reads. The change feed reads it in `seq` order,
    the worker fans it out to webhook deliveries."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_project_seq", "project_id", "seq"),
        Index("ix_changes_seq", "seq", unique=True),
        # PostgreSQL only (the migration): the changes the sealer has still to number.
        Index("ix_changes_unsealed", "xid", "id", postgresql_where=text("seq IS NULL")),
        # Only access changes name a user: the others stay out of the index.
        Index(
            "ix_changes_user_id",
            "user_id",
            postgresql_where=text("user_id IS NOT NULL"),
            sqlite_where=text("user_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # The feed's number: NULL until the sealer numbers the change after its commit
    # (PostgreSQL, outbound/sealing.py); the recorder's on SQLite, whose writers take turns.
    # Typed int: everything that reads changes reads numbered ones (seq > a position).
    seq: Mapped[int] = mapped_column(BigInteger, nullable=True)
    # The writing transaction's id on PostgreSQL (the migration's column default), 0 on
    # SQLite: changes committed together are numbered in (xid, id) order.
    xid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(60))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    document_id: Mapped[int | None] = mapped_column(BigInteger)
    version_id: Mapped[int | None] = mapped_column(BigInteger)
    folder_id: Mapped[int | None] = mapped_column(BigInteger)
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    # Set on access changes only: the one user whose feed carries the row.
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboundState(Base):
    """Named positions: how far the worker fanned out, up to where the feed was trimmed."""

    __tablename__ = "outbound_state"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = (NEVER_REUSED_IDS,)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # None: installation-wide (operators only); otherwise the projects it is limited to.
    project_ids: Mapped[list[int] | None] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One message to one webhook; its attempts are below. `msg_id` is the stable
    `webhook-id` header."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(60), unique=True)
    type: Mapped[str] = mapped_column(String(60))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending, delivered, failed (out of attempts), dropped (not visible to the owner)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A claimed delivery is invisible to other workers until then (a killed worker's
    # claim expires and the message goes out again: at least once).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VersionText(Base):
    """A version's extracted text for full-text search (search/). On SQLite an FTS5 table
    (`version_texts_fts`) indexes `text`, kept in step by triggers; on PostgreSQL a generated
    `tsv` column with a GIN index does (both made by the migration, not listed here)."""

    __tablename__ = "version_texts"
    __table_args__ = (Index("ix_version_texts_status", "status", "claimed_until"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("document_versions.id", ondelete="CASCADE"), primary_key=True
    )
    # pending (waiting, or claimed until claimed_until), done, failed (reason says why)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extracted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
