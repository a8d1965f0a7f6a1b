"""The results of delivery attempts, written set-based in one transaction: each
delivery's next state (delivered, failed, or when to try again, with jitter and any
`Retry-After`), its attempt for the delivery log, and its endpoint's health."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Boolean, String, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Webhook, WebhookAttempt, WebhookDelivery
from casefolio.db.types import UTCDateTime
from casefolio.domain import events
from casefolio.outbound import delivery

JITTER = 0.1


@dataclass
class Claimed:
    """A delivery leased by this worker, with what sending it takes."""

    delivery_id: int
    msg_id: str
    payload: dict[str, Any]
    url: str
    secrets: list[str]
    attempts: int
    webhook_id: int
    #: Until when this worker holds it (the row's claimed_until as written).
    leased_until: datetime


async def store(
    db: Database,
    settings: Settings,
    results: Sequence[tuple[Claimed, delivery.Outcome]],
    *,
    now: datetime,
    rng: random.Random,
) -> None:
    """Write the attempts, the deliveries' next states and the endpoints' health.

    A failed attempt decides a delivery's next state only while this worker holds it: one
    that answered after its lease ran out, when another worker may have claimed and be
    sending it, is logged and counted, and leaves the delivery to that worker (its lease
    cleared and a retry scheduled, a third worker sent it again beside the second's).
    A 2xx delivers it whoever holds it, unless nobody does: a redelivery asked for while
    the attempt was out let go of it and started its count again, and is still to be sent
    (the attempt is logged only)."""
    async with db.write() as session:
        found = await session.execute(
            select(
                WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.claimed_until
            ).where(WebhookDelivery.id.in_([item.delivery_id for item, _ in results]))
        )
        leases: dict[int, datetime | None] = {}
        rows: dict[int, int] = {}
        for row in found:
            rows[row.id], leases[row.id] = row.webhook_id, row.claimed_until
        endpoints = select(Webhook).where(Webhook.id.in_(set(rows.values())))
        if db.engine.dialect.name == "postgresql":
            # Their health counts failures in a row: read under lock, as two workers may
            # store one endpoint's answers at once (each counted from what it read, and one
            # increment was lost). Locked in id order, so that two stores never deadlock.
            endpoints = endpoints.order_by(Webhook.id).with_for_update()
        hooks = {h.id: h for h in await session.scalars(endpoints)}
        changed: list[dict[str, Any]] = []
        counted: list[dict[str, Any]] = []  # attempts of deliveries held by another worker
        attempts: list[dict[str, Any]] = []
        for item, outcome in results:
            if item.delivery_id not in rows:
                continue  # deleted with its webhook meanwhile
            next_at: datetime | None = None
            lease = leases[item.delivery_id]
            if (outcome.ok and lease is not None) or lease == item.leased_until:
                status, next_at = _next(settings, item.attempts + 1, outcome, now, rng)
                changed.append(
                    {
                        "key": item.delivery_id,
                        "new_status": status,
                        "next": next_at,
                        "ok": outcome.ok,
                        "leased": item.leased_until,
                    }
                )
            elif lease is not None:
                counted.append({"key": item.delivery_id})
            attempts.append(
                {
                    "delivery_id": item.delivery_id,
                    "at": now,
                    "status_code": outcome.status_code,
                    "duration_ms": outcome.duration_ms,
                    "response_excerpt": _text(outcome.excerpt),
                    "error": None if outcome.error is None else _text(outcome.error)[:_ERROR],
                    "next_attempt_at": next_at,
                }
            )
            hook = hooks.get(rows[item.delivery_id])
            if hook is not None:
                _health(session, settings, hook, outcome)
        if not attempts:
            return
        connection = await session.connection()
        if changed:
            await connection.execute(_RESULT, changed)
        if counted:
            await connection.execute(_COUNTED, counted)
        await connection.execute(insert(WebhookAttempt), attempts)


def _next(
    settings: Settings, tries: int, outcome: delivery.Outcome, now: datetime, rng: random.Random
) -> tuple[str, datetime | None]:
    """A delivery's status after its `tries`th attempt, and when the next is due."""
    schedule = settings.webhook_retry_schedule
    if outcome.ok:
        return "delivered", None
    if outcome.status_code == 410 or tries >= len(schedule):
        return "failed", None
    delay = schedule[tries] * (1 + rng.uniform(0, JITTER))
    if outcome.retry_after is not None and outcome.status_code in (429, 503):
        # Honoured up to the schedule's longest wait: an endpoint's Retry-After of
        # centuries would leave the delivery waiting for ever, and one past year 9999
        # failed this whole store (every answer's), round after round.
        delay = max(delay, min(outcome.retry_after, max(schedule)))
    return "pending", now + timedelta(seconds=delay)


#: The attempt log's error column's length (PostgreSQL refuses longer: a refusal naming a
#: long host twice failed the whole store, every round again).
_ERROR = cast(String, cast(Table, WebhookAttempt.__table__).c.error.type).length


def _text(value: str) -> str:
    """Text as the database stores it: PostgreSQL's holds no NUL, which an answer's body may
    (and then failed the whole store, every round again)."""
    return value.replace("\x00", "\ufffd")


def _health(
    session: AsyncSession, settings: Settings, hook: Webhook, outcome: delivery.Outcome
) -> None:
    if outcome.ok:
        hook.consecutive_failures, hook.failing = 0, False
        return
    hook.consecutive_failures += 1
    if outcome.status_code == 410 and hook.active:
        hook.active, hook.disabled_reason = False, "The endpoint answered 410 Gone."
        events.emit(session, events.WebhookDisabled(subject_id=hook.id, details={"status": 410}))
    if hook.consecutive_failures >= settings.webhook_failing_after and not hook.failing:
        hook.failing = True
        events.emit(
            session,
            events.WebhookFailing(
                subject_id=hook.id, details={"failures": hook.consecutive_failures}
            ),
        )


#: One delivery's result (executed for many at once).
_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_RESULT = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.id == bindparam("key"),
        # Still held by this worker (checked again here: on PostgreSQL another worker may
        # have claimed it since it was read), unless delivered and held by anyone.
        or_(
            and_(bindparam("ok", type_=Boolean), _DELIVERIES.c.claimed_until.is_not(None)),
            _DELIVERIES.c.claimed_until == bindparam("leased", type_=UTCDateTime),
        ),
    )
    .values(
        status=bindparam("new_status"),
        attempts=_DELIVERIES.c.attempts + 1,
        claimed_until=None,
        next_attempt_at=bindparam("next"),
    )
)
#: One attempt at a delivery another worker holds now: counted, nothing else.
_COUNTED = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("key"))
    .values(attempts=_DELIVERIES.c.attempts + 1)
)
