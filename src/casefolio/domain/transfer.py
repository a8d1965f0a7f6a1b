"""What an import and an export share: the user a command acts as, the event each file ends
with, and the report they add up to.

The import itself is domain/importing.py (reading the tree: domain/import_sources.py), the
export domain/export.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import User
from casefolio.domain import events, users
from casefolio.domain.errors import Conflict, DomainError, Forbidden, NotFound
from casefolio.domain.principal import Principal

MANIFEST = "manifest.json"

Outcome = Literal["imported", "versioned", "skipped", "failed", "missing", "exported"]


async def acting_principal(session: AsyncSession, *, email: str | None) -> Principal:
    """Return the user a command acts as: `email`'s, or the first operator's by default. The
    audit entries of the command's writes and reads name that user (actor kind `cli`)."""
    if email:
        user = await users.get_by_email(session, email=email)
    else:
        stmt = select(User).where(User.is_operator.is_(True), User.active.is_(True))
        found = (await session.scalars(stmt.order_by(User.id).limit(1))).first()
        if found is None:
            raise NotFound("There is no operator yet; run `casefolio init` first, or pass --as.")
        user = found
    if not user.active:
        raise Forbidden(f"User {user.email} is deactivated.")
    events.current_actor.set(events.Actor("cli", user_id=user.id))
    return Principal.of(user)


@dataclass(frozen=True)
class FileEvent:
    """One file finished: what happened to it, and why when it failed or was skipped."""

    path: str  # relative to the import root or export target, with '/'
    outcome: Outcome
    size: int = 0
    message: str = ""
    planned: bool = True  # False for problems found while scanning, before the plan


@dataclass
class TransferReport:
    imported: int = 0  # new documents
    versioned: int = 0  # new versions of documents whose file changed
    skipped: int = 0  # unchanged
    failed: list[FileEvent] = field(default_factory=list)
    missing: list[FileEvent] = field(default_factory=list)  # documents whose file is gone
    bytes: int = 0
    seconds: float = 0.0
    files: int = 0  # exported files

    def record(self, event: FileEvent) -> None:
        if event.outcome == "failed":
            self.failed.append(event)
            return
        if event.outcome == "missing":
            self.missing.append(event)
            return
        if event.outcome == "imported":
            self.imported += 1
        elif event.outcome == "versioned":
            self.versioned += 1
        elif event.outcome == "skipped":
            self.skipped += 1
        else:
            self.files += 1
        self.bytes += event.size


Listener = Callable[[FileEvent], None]
Planned = Callable[[int, int], None]


def describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def prepare_destination(dest: Path, directories: Iterable[PurePath]) -> None:
    """Make `dest` (which must be new or an empty directory) and `directories` inside it."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Conflict(f"{dest} exists and is not an empty directory; write into a new one.")
    dest.mkdir(parents=True, exist_ok=True)
    for directory in directories:
        (dest / directory).mkdir(parents=True, exist_ok=True)
