"""Webhooks: who may register one, for what, and their delivery log.

Operators manage installation-wide webhooks (no projectIds: every event they can see) and
any other; a project admin manages webhooks limited to projects they administer, and sees
the ones they own. Delivery itself is outbound/worker.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Webhook, WebhookAttempt, WebhookDelivery
from casefolio.db.types import rfc3339, utcnow
from casefolio.domain import access, events, text
from casefolio.domain.errors import Invalid, NotFound
from casefolio.domain.pages import Page, PageRequest, fetch_id_page, fetch_page
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.outbound import ssrf
from casefolio.outbound.delivery import new_secret

TEST_EVENT = "webhook.test"
#: A registration's bounds, for every way in (the API's schema and the pages alike).
MAX_URL = 2000
MAX_EVENTS = 100
MAX_PROJECTS = 1000
#: A delivery's status once the worker found its owner may not read what it is about.
DROPPED = "dropped"


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    events: list[str]
    project_ids: list[int] | None = None
    description: str = ""


async def _check(
    session: AsyncSession, who: Principal, spec: WebhookSpec, allowed: Sequence[ssrf.Network]
) -> None:
    text.bounded_description(spec.description, limit=text.MAX_WEBHOOK_DESCRIPTION)
    if len(spec.url) > MAX_URL:
        raise Invalid(
            f"The webhook URL is longer than {MAX_URL} characters.",
            [{"field": "url", "message": "too long"}],
        )
    if len(spec.events) > MAX_EVENTS:
        raise Invalid(
            f"Name at most {MAX_EVENTS} event types.", [{"field": "events", "message": "too many"}]
        )
    if spec.project_ids is not None and len(spec.project_ids) > MAX_PROJECTS:
        raise Invalid(
            f"projectIds lists at most {MAX_PROJECTS} projects.",
            [{"field": "projectIds", "message": "too many"}],
        )
    unknown = sorted(set(spec.events) - events.WEBHOOK_TYPES)
    if not spec.events or unknown:
        raise Invalid(
            f"Unknown event types: {', '.join(unknown)}. Choose from: "
            f"{', '.join(sorted(events.WEBHOOK_TYPES))}."
            if unknown
            else "Name at least one event type.",
            [{"field": "events", "message": "unknown or empty"}],
        )
    if spec.project_ids is None:
        access.require_operator(who, "register installation-wide webhooks (give projectIds)")
    elif not spec.project_ids:
        raise Invalid(
            "projectIds, when given, lists at least one project.",
            [{"field": "projectIds", "message": "empty"}],
        )
    else:
        for project_id in spec.project_ids:
            await access.scope(session, who, project_id, Capability.SETTINGS_MANAGE)
    _, host, port = ssrf.check_url(spec.url)
    try:
        await ssrf.resolve(host, port, allowed)
    except ssrf.Refused as exc:
        raise Invalid(str(exc), [{"field": "url", "message": "not allowed"}]) from exc


async def create(
    session: AsyncSession, *, who: Principal, spec: WebhookSpec, allowed: Sequence[ssrf.Network]
) -> Webhook:
    """Register a webhook; its secret is on the returned row (shown once by the caller)."""
    await _check(session, who, spec, allowed)
    hook = Webhook(
        url=spec.url,
        events=sorted(set(spec.events)),
        project_ids=sorted(set(spec.project_ids)) if spec.project_ids is not None else None,
        description=spec.description,
        owner_id=who.user_id,
        secret=new_secret(),
    )
    session.add(hook)
    await session.flush()
    events.emit(
        session,
        events.WebhookCreated(subject_id=hook.id, details={"url": hook.url, "events": hook.events}),
    )
    return hook


async def get(session: AsyncSession, *, who: Principal, webhook_id: int) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None or (not who.is_operator and hook.owner_id != who.user_id):
        raise NotFound(f"Webhook {webhook_id} not found.")
    return hook


async def list_page(session: AsyncSession, *, who: Principal, page: PageRequest) -> Page[Webhook]:
    stmt = select(Webhook)
    if not who.is_operator:
        stmt = stmt.where(Webhook.owner_id == who.user_id)
    return await fetch_id_page(session, stmt, id_column=Webhook.id, page=page)


async def update(
    session: AsyncSession,
    *,
    who: Principal,
    webhook_id: int,
    allowed: Sequence[ssrf.Network],
    url: str | None = None,
    event_types: list[str] | None = None,
    project_ids: list[int] | None = None,
    clear_projects: bool = False,
    description: str | None = None,
    active: bool | None = None,
) -> Webhook:
    """Change what is given (None: unchanged; `clear_projects` makes it installation-wide)
    and check the result as a new registration is checked, unless the change only switches
    it off or describes it: a webhook whose address or projects no longer pass can always
    be stopped."""
    hook = await get(session, who=who, webhook_id=webhook_id)
    spec = WebhookSpec(
        url=url if url is not None else hook.url,
        events=event_types if event_types is not None else hook.events,
        project_ids=None if clear_projects else (project_ids or hook.project_ids),
        description=description if description is not None else hook.description,
    )
    retargeted = url is not None or event_types is not None or project_ids is not None
    if retargeted or clear_projects or active:
        await _check(session, who, spec, allowed)
    else:
        text.bounded_description(spec.description, limit=text.MAX_WEBHOOK_DESCRIPTION)
    hook.url, hook.events, hook.description = spec.url, sorted(set(spec.events)), spec.description
    hook.project_ids = sorted(set(spec.project_ids)) if spec.project_ids is not None else None
    if active is not None:
        hook.active = active
        if active:
            hook.disabled_reason, hook.failing, hook.consecutive_failures = None, False, 0
    hook.updated_at = utcnow()
    await session.flush()
    events.emit(session, events.WebhookUpdated(subject_id=hook.id, details={"url": hook.url}))
    return hook


async def delete(session: AsyncSession, *, who: Principal, webhook_id: int) -> None:
    hook = await get(session, who=who, webhook_id=webhook_id)
    # By its id (see folders.delete): a concurrent DELETE that got there first leaves
    # nothing here, and one deletion is reported once.
    gone = await session.execute(sql_delete(Webhook).where(Webhook.id == webhook_id))
    if gone.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"Webhook {webhook_id} not found.")
    session.expunge(hook)
    events.emit(session, events.WebhookDeleted(subject_id=webhook_id))


async def rotate_secret(
    session: AsyncSession, *, who: Principal, webhook_id: int, overlap: timedelta
) -> Webhook:
    """A new secret; the old one keeps signing beside it for `overlap`."""
    hook = await get(session, who=who, webhook_id=webhook_id)
    hook.previous_secret, hook.secret = hook.secret, new_secret()
    hook.previous_secret_until = utcnow() + overlap
    hook.updated_at = utcnow()
    await session.flush()
    events.emit(session, events.WebhookSecretRotated(subject_id=hook.id))
    return hook


async def send_test(session: AsyncSession, *, who: Principal, webhook_id: int) -> WebhookDelivery:
    hook = await get(session, who=who, webhook_id=webhook_id)
    now = utcnow()
    delivery = WebhookDelivery(
        webhook_id=hook.id,
        msg_id=f"msg_test_{uuid.uuid4().hex}",
        type=TEST_EVENT,
        payload={
            "type": TEST_EVENT,
            "timestamp": rfc3339(now),
            "data": {"webhookId": str(hook.id)},
        },
        next_attempt_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery


@dataclass(frozen=True)
class DeliveryLog:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


async def deliveries_page(
    session: AsyncSession, *, who: Principal, webhook_id: int, page: PageRequest
) -> Page[DeliveryLog]:
    """Newest first, each with its attempts. Deliveries dropped because the owner could not
    read what they were about are shown to operators only: to the owner, even their type and
    time would tell what happens in a project they no longer see."""
    await get(session, who=who, webhook_id=webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if not who.is_operator:
        stmt = stmt.where(WebhookDelivery.status != DROPPED)
    deliveries = await fetch_page(
        session,
        stmt,
        key=[WebhookDelivery.id],
        page=page,
        key_of=lambda d: (d.id,),
        descending=True,
    )
    rows = deliveries.items
    attempts: dict[int, list[WebhookAttempt]] = {row.id: [] for row in rows}
    if rows:
        for attempt in await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(attempts))
            .order_by(WebhookAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    logs = [DeliveryLog(row, attempts[row.id]) for row in rows]
    return Page(logs, deliveries.next_cursor)


async def redeliver(
    session: AsyncSession, *, who: Principal, webhook_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again (same webhook-id, so receivers can de-duplicate), now. A dropped
    one is the operators' only, as in the log (`deliveries_page`)."""
    await get(session, who=who, webhook_id=webhook_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    hidden = delivery is not None and delivery.status == DROPPED and not who.is_operator
    if delivery is None or delivery.webhook_id != webhook_id or hidden:
        raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.claimed_until = utcnow(), None
    await session.flush()
    return delivery
