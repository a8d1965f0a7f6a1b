"""Domain events: what a write changed, as small frozen values.

Every write operation of the domain emits its events into the session it writes with
(`emit`); the session records them in the same transaction, just before it commits
(outbound/recorder.py): audit entries, and the change feed / webhook outbox rows. A write
that rolls back leaves none of them behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

#: The key of `Session.info` under which a transaction's events wait to be recorded.
PENDING = "casefolio.events"


@dataclass(frozen=True)
class Actor:
    """Who causes the events of the current request or command."""

    kind: str  # "token" (an API call), "web" (a signed-in page), "cli", "system" (the worker)
    user_id: int | None = None
    token_id: int | None = None
    client: str | None = None


CLI = Actor("cli")
#: Set by authentication for an API request or a page; commands keep the default.
current_actor: ContextVar[Actor] = ContextVar("casefolio_actor", default=CLI)


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """One change. `type` is the dotted name the audit trail, feed and webhooks show."""

    type: ClassVar[str]
    target_type: ClassVar[str]
    project_id: int | None = None
    document_id: int | None = None
    version_id: int | None = None
    folder_id: int | None = None
    #: The id of a target that is none of the above (user, team, token, field, webhook…).
    subject_id: int | None = None
    #: For access changes: the user who gained or lost access.
    user_id: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target_id(self) -> int | None:
        by_target = {
            "document": self.document_id,
            "version": self.version_id,
            "folder": self.folder_id,
            "project": self.project_id,
        }
        return by_target.get(self.target_type, self.subject_id)


def _event(name: str, target: str) -> type[DomainEvent]:
    cls = type(
        "".join(part.capitalize() for part in name.replace("_", ".").split(".")),
        (DomainEvent,),
        {"type": name, "target_type": target, "__module__": __name__},
    )
    return dataclass(frozen=True, kw_only=True)(cls)


DocumentCreated = _event("document.created", "document")
DocumentUpdated = _event("document.updated", "document")
DocumentMoved = _event("document.moved", "document")
DocumentDeleted = _event("document.deleted", "document")
VersionAdded = _event("version.added", "version")
VersionDeleted = _event("version.deleted", "version")
FolderCreated = _event("folder.created", "folder")
FolderRenamed = _event("folder.renamed", "folder")
FolderDeleted = _event("folder.deleted", "folder")
FieldSet = _event("field.set", "document")
FieldCreated = _event("field.created", "field")
ProjectCreated = _event("project.created", "project")
ProjectUpdated = _event("project.updated", "project")
MemberSet = _event("project.member_set", "user")
MemberRemoved = _event("project.member_removed", "user")
TeamGrantSet = _event("project.team_set", "team")
TeamGrantRemoved = _event("project.team_removed", "team")
AccessGranted = _event("project.access_granted", "user")
AccessLost = _event("project.access_lost", "user")
TeamCreated = _event("team.created", "team")
TeamMemberAdded = _event("team.member_added", "team")
TeamMemberRemoved = _event("team.member_removed", "team")
UserCreated = _event("user.created", "user")
UserDeactivated = _event("user.deactivated", "user")
UserReactivated = _event("user.reactivated", "user")
OperatorGranted = _event("user.operator_granted", "user")
OperatorRevoked = _event("user.operator_revoked", "user")
#: Never the password, nor its hash.
PasswordSet = _event("user.password_set", "user")
#: Never the link's secret.
PasswordLinkIssued = _event("user.password_link_issued", "user")
TokenIssued = _event("token.issued", "token")
TokenUpdated = _event("token.updated", "token")
TokenRevoked = _event("token.revoked", "token")
SettingsUpdated = _event("settings.updated", "settings")
TemplateCreated = _event("template.created", "template")
WebhookCreated = _event("webhook.created", "webhook")
WebhookUpdated = _event("webhook.updated", "webhook")
WebhookDeleted = _event("webhook.deleted", "webhook")
WebhookSecretRotated = _event("webhook.secret_rotated", "webhook")
WebhookFailing = _event("webhook.failing", "webhook")
WebhookDisabled = _event("webhook.disabled", "webhook")
HoldCreated = _event("hold.created", "hold")
HoldReleased = _event("hold.released", "hold")
#: A deletion a hold refused: recorded in a transaction of its own (domain/holds.py).
HoldRefused = _event("hold.refused", "project")
DocumentRestored = _event("document.restored", "document")
DocumentPurged = _event("document.purged", "document")
VersionRestored = _event("version.restored", "version")
VersionPurged = _event("version.purged", "version")
ContentDownloaded = _event("content.downloaded", "document")
VersionDownloaded = _event("version.downloaded", "version")
#: `casefolio export`: every current version of a project written to a folder.
ProjectExported = _event("project.exported", "project")

#: What the change feed carries (the rest is for the audit trail and webhooks).
FEED_TYPES = frozenset(
    {
        "document.created",
        "document.updated",
        "document.moved",
        "document.deleted",
        "version.added",
        "version.deleted",
        "folder.created",
        "folder.renamed",
        "folder.deleted",
        "field.set",
        "hold.created",
        "hold.released",
        "document.restored",
        "document.purged",
        "version.restored",
        "version.purged",
        "project.access_lost",
        "project.access_granted",
    }
)
#: Audited only: reads, and notices about webhooks themselves.
AUDIT_ONLY_TYPES = frozenset(
    {
        "content.downloaded",
        "version.downloaded",
        "project.exported",
        "hold.refused",
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
        "webhook.failing",
        "webhook.disabled",
        "webhook.secret_rotated",
    }
)
#: Every type a webhook may subscribe to.
WEBHOOK_TYPES = frozenset(
    cls.type
    for cls in DomainEvent.__subclasses__()
    if cls.type not in AUDIT_ONLY_TYPES and not cls.type.startswith("webhook.")
) | {"webhook.test"}


def emit(session: AsyncSession | Session, *events: DomainEvent) -> None:
    """Given the session a write runs in, queue its events to be recorded before it commits."""
    info = session.info
    pending: list[DomainEvent] | None = info.get(PENDING)
    if pending is None:
        pending = info[PENDING] = []
    pending.extend(events)


def pending(session: AsyncSession | Session) -> list[DomainEvent]:
    """Given a session, return the events it will record at its commit (for tests and
    callers that hand them on)."""
    return list(session.info.get(PENDING, ()))
