"""Which deliveries a worker leases: new ones as the fan-out inserts them, and due ones from
the outbox. A lease (`claimed_until`) keeps other workers off a delivery while it is out; a
worker killed mid-send loses nothing, since the lease runs out and another worker sends it
again. A delivery about something its webhook's owner can no longer see, or whose webhook is
gone or switched off, is dropped rather than sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import Change, Webhook, WebhookDelivery
from casefolio.domain.webhooks import DROPPED
from casefolio.outbound import audience, delivery
from casefolio.outbound.results import Claimed
from casefolio.outbound.sending import Places

_DELIVERIES = cast(Table, WebhookDelivery.__table__)


def new_rows(
    changes: Iterable[Change], hooks: Sequence[Webhook], first_at: datetime
) -> list[dict[str, Any]]:
    """One outbox row per change and webhook that wants it."""
    return [
        {
            "webhook_id": hook.id,
            # Unique beyond this installation: receivers de-duplicate on it.
            "msg_id": f"msg_{uuid.uuid4().hex}",
            "type": change.type,
            "seq": change.seq,
            "payload": delivery.payload(change),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": first_at,
            "created_at": change.at,
        }
        for change in changes
        for hook in hooks
        if audience.matches(hook, change)
    ]


async def insert_fresh(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    hooks: Sequence[Webhook],
    *,
    now: datetime,
    lease: timedelta,
    saturated: Iterable[int],
) -> list[Claimed]:
    """Insert new deliveries; those due at once go in claimed (one write transaction less
    before the first attempt), unless their endpoint has its share out. Return the claimed
    ones."""
    # Core inserts: the ORM's bulk insert costs several times more per row, and these rows
    # are not wanted as objects.
    if not rows:
        return []
    conn = await session.connection()
    if rows[0]["next_attempt_at"] > now:  # the retry schedule's first wait is not zero
        await conn.execute(insert(_DELIVERIES), rows)
        return []
    by_id = {hook.id: hook for hook in hooks}
    owners = await audience.owners(session, hooks)
    busy = set(saturated)
    for row in rows:
        hook = by_id[row["webhook_id"]]
        visible = await audience.visible_to_owner(
            session, owners.get(hook.owner_id), row["type"], row["payload"]
        )
        row["status"] = "pending" if visible else DROPPED
        taken = visible and hook.id not in busy
        row["claimed_until"] = now + lease if taken else None
    made = await conn.execute(
        insert(_DELIVERIES).returning(
            _DELIVERIES.c.id, _DELIVERIES.c.msg_id, sort_by_parameter_order=True
        ),
        rows,
    )
    ids = {found.msg_id: found.id for found in made}
    return [
        _claimed(ids[row["msg_id"]], row, by_id[row["webhook_id"]], now, row["claimed_until"])
        for row in rows
        if row["claimed_until"] is not None
    ]


def due(now: datetime, places: Places) -> Select[Any]:
    """The pending deliveries whose time has come and that nobody holds, oldest first."""
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.webhook_id,
            WebhookDelivery.msg_id,
            WebhookDelivery.type,
            WebhookDelivery.payload,
            WebhookDelivery.attempts,
        )
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(
                WebhookDelivery.claimed_until.is_(None),
                WebhookDelivery.claimed_until < now,
            ),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
    )
    if places.saturated:
        # Claimed now, they would wait for their endpoint's places while their lease ran.
        query = query.where(WebhookDelivery.webhook_id.not_in(places.saturated))
    return query


async def claim_due(
    db: Database, *, now: datetime, places: Places, lease: timedelta
) -> tuple[list[Claimed], bool]:
    """Lease up to `places.left` due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
    several workers never take the same one); return them, and whether the claim was full
    (more may be due)."""
    query = due(now, places)
    async with db.read() as session:
        if (await session.execute(query.limit(1))).first() is None:
            return [], False
    async with db.write() as session:
        query = query.limit(places.left)
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
        rows = (await session.execute(query)).all()
        if not rows:
            return [], False
        hooks = {
            h.id: h
            for h in await session.scalars(
                select(Webhook).where(Webhook.id.in_({r.webhook_id for r in rows}))
            )
        }
        owners = await audience.owners(session, hooks.values())
        leased = now + lease
        claimed: list[Claimed] = []
        dropped: list[int] = []
        for row in rows:
            hook = hooks.get(row.webhook_id)
            # Gone, switched off, or about something its owner cannot see (any more).
            if (
                hook is None
                or not hook.active
                or not await audience.visible_to_owner(
                    session, owners.get(hook.owner_id), row.type, row.payload
                )
            ):
                dropped.append(row.id)
                continue
            claimed.append(_claimed(row.id, row._mapping, hook, now, leased))
        if dropped:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(dropped))
                .values(status=DROPPED)
            )
        if claimed:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([c.delivery_id for c in claimed]))
                .values(claimed_until=leased)
            )
        return claimed, len(rows) == places.left


def _claimed(
    delivery_id: int, row: Any, hook: Webhook, now: datetime, leased_until: datetime
) -> Claimed:
    return Claimed(
        delivery_id,
        row["msg_id"],
        row["payload"],
        hook.url,
        audience.secrets(hook, now),
        attempts=row["attempts"],
        webhook_id=hook.id,
        leased_until=leased_until,
    )
