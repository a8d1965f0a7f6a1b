"""Who a webhook delivery goes to: which webhooks match a change, whether the webhook's
owner may see it (checked when it is claimed, so access lost since is respected), and the
secrets that sign it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Change, User, Webhook
from casefolio.domain import access
from casefolio.domain.principal import Principal


def matches(hook: Webhook, change: Change) -> bool:
    if change.type not in hook.events or change.at < hook.created_at:
        return False
    return hook.project_ids is None or change.project_id in hook.project_ids


def secrets(hook: Webhook, now: datetime) -> list[str]:
    keys = [hook.secret]
    if hook.previous_secret and hook.previous_secret_until and hook.previous_secret_until > now:
        keys.append(hook.previous_secret)
    return keys


async def owners(session: AsyncSession, hooks: Any) -> dict[int | None, Principal]:
    ids = {h.owner_id for h in hooks if h.owner_id is not None}
    users = await session.scalars(select(User).where(User.id.in_(ids), User.active.is_(True)))
    return {u.id: Principal(u.id, u.email, u.name, u.is_operator) for u in users}


async def visible_to_owner(
    session: AsyncSession, owner: Principal | None, type_: str, payload: dict[str, Any]
) -> bool:
    if owner is None:
        return False
    if owner.is_operator:
        return True
    project = payload.get("data", {}).get("projectId")
    if project is None:
        return type_ == "webhook.test"
    return await access.project_role(session, owner, int(project)) is not None
