"""What a write left behind: its audit entries, change-feed rows and webhook bodies, read
from the database after a mark, so a test names exactly what one write recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change
from casefolio.outbound import delivery


@dataclass(frozen=True)
class Mark:
    audit_id: int
    change_id: int


@dataclass(frozen=True)
class Traces:
    entries: list[AuditEntry]
    changes: list[Change]

    @property
    def actions(self) -> list[str]:
        return [e.action for e in self.entries]

    @property
    def change_types(self) -> list[str]:
        return [c.type for c in self.changes]

    def webhook_data(self, type_: str) -> dict[str, Any]:
        """The `data` of the webhook body the one change of this type would be sent as."""
        [change] = [c for c in self.changes if c.type == type_]
        data: dict[str, Any] = delivery.payload(change)["data"]
        return data


async def mark(db: Database) -> Mark:
    async with db.read() as session:
        audit_id = await session.scalar(select(func.max(AuditEntry.id)))
        change_id = await session.scalar(select(func.max(Change.id)))
    return Mark(audit_id or 0, change_id or 0)


async def since(db: Database, start: Mark) -> Traces:
    async with db.read() as session:
        entries = await session.scalars(
            select(AuditEntry).where(AuditEntry.id > start.audit_id).order_by(AuditEntry.id)
        )
        changes = await session.scalars(
            select(Change).where(Change.id > start.change_id).order_by(Change.id)
        )
        return Traces(list(entries), list(changes))
