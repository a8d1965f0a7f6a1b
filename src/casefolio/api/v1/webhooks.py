"""Webhooks (Standard Webhooks 1.0): registration, secrets, tests, the delivery log."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from casefolio.api.deps import PrincipalDep, SessionDep, StateDep
from casefolio.api.ids import BodyId, path_id
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import patch_route, v1_router
from casefolio.api.v1.schemas import ApiInput, ApiModel, Timestamp, WireId
from casefolio.db.models import Webhook
from casefolio.domain import events, text, webhooks

router = v1_router("webhooks")
WebhookId = Annotated[int, path_id("webhookId")]
DeliveryId = Annotated[int, path_id("deliveryId")]
EventType = Annotated[
    str, Field(max_length=60, json_schema_extra={"enum": sorted(events.WEBHOOK_TYPES)})
]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=webhooks.MAX_EVENTS)]
ProjectIds = Annotated[list[BodyId], Field(min_length=1, max_length=webhooks.MAX_PROJECTS)]
# Documented, not enforced here: ssrf.check_url refuses with a message a person reads.
WebhookUrl = Annotated[
    str,
    Field(
        max_length=webhooks.MAX_URL,
        description="An absolute http:// or https:// URL without credentials, with an ASCII "
        "host (an internationalized domain name in its xn-- form), whose path, query and "
        "fragment are visible ASCII (percent-encode anything else).",
        # The host: visible ASCII but for / ? # @ (userinfo is refused); then the path,
        # query and fragment: visible ASCII (what a request line can carry, http1.py).
        json_schema_extra={"pattern": r'^[hH][tT][tT][pP][sS]?://[!-"$-.0->A-~]+([/?#][!-~]*)?$'},
    ),
]


class WebhookIn(ApiInput):
    url: WebhookUrl
    events: EventTypes
    project_ids: ProjectIds | None = None
    description: str = Field("", max_length=text.MAX_WEBHOOK_DESCRIPTION)


class WebhookUpdate(ApiInput):
    url: WebhookUrl | None = None
    events: EventTypes | None = None
    project_ids: ProjectIds | None = Field(
        None, description="Projects to limit it to; null makes it installation-wide (operators)."
    )
    description: str | None = Field(None, max_length=text.MAX_WEBHOOK_DESCRIPTION)
    active: bool | None = Field(None, description="true re-enables a disabled endpoint.")


class WebhookOut(ApiModel):
    id: WireId
    url: str
    events: list[str]
    project_ids: list[WireId] | None
    description: str
    owner_id: WireId | None
    active: bool
    failing: bool = Field(description="Its recent deliveries keep failing.")
    disabled_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecretOut(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_…), shown only in this response.")


class AttemptOut(ApiModel):
    at: Timestamp
    status_code: int | None
    duration_ms: int
    response_excerpt: str = Field(description="The first KiB of the answer.")
    error: str | None
    next_attempt_at: Timestamp | None


class DeliveryOut(ApiModel):
    id: WireId
    msg_id: str = Field(description="The webhook-id header, the same on every attempt.")
    type: str
    status: str = Field(description="pending, delivered, failed or dropped.")
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    attempts: list[AttemptOut]


class QueuedOut(ApiModel):
    delivery_id: WireId


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(hook)


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookWithSecretOut,
    summary="Register a webhook; the answer carries its secret, once",
)
async def create_webhook(
    body: WebhookIn, session: SessionDep, who: PrincipalDep, state: StateDep
) -> WebhookWithSecretOut:
    spec = webhooks.WebhookSpec(body.url, body.events, body.project_ids, body.description)
    hook = await webhooks.create(
        session, who=who, spec=spec, allowed=state.settings.webhook_networks
    )
    return WebhookWithSecretOut.model_validate(hook)


@router.get("/webhooks", response_model=list[WebhookOut], summary="List webhooks")
async def list_webhooks(
    session: SessionDep, who: PrincipalDep, listing: ListingDep
) -> list[WebhookOut]:
    page = await webhooks.list_page(session, who=who, page=listing.page)
    return [_out(h) for h in listing.items(page)]


@router.get("/webhooks/{webhookId}", response_model=WebhookOut, summary="Read a webhook")
async def read_webhook(webhook_id: WebhookId, session: SessionDep, who: PrincipalDep) -> WebhookOut:
    return _out(await webhooks.get(session, who=who, webhook_id=webhook_id))


@patch_route(router, "/webhooks/{webhookId}", response_model=WebhookOut, summary="Change a webhook")
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    session: SessionDep,
    who: PrincipalDep,
    state: StateDep,
) -> WebhookOut:
    hook = await webhooks.update(
        session,
        who=who,
        webhook_id=webhook_id,
        url=body.url,
        event_types=body.events,
        project_ids=body.project_ids,
        clear_projects="project_ids" in body.model_fields_set and body.project_ids is None,
        description=body.description,
        active=body.active,
        allowed=state.settings.webhook_networks,
    )
    return _out(hook)


@router.delete("/webhooks/{webhookId}", status_code=204, summary="Delete a webhook")
async def delete_webhook(webhook_id: WebhookId, session: SessionDep, who: PrincipalDep) -> None:
    await webhooks.delete(session, who=who, webhook_id=webhook_id)


@router.post(
    "/webhooks/{webhookId}/rotate-secret",
    response_model=WebhookWithSecretOut,
    summary="A new secret; the old one keeps signing too for the configured overlap",
)
async def rotate_secret(
    webhook_id: WebhookId, session: SessionDep, who: PrincipalDep, state: StateDep
) -> WebhookWithSecretOut:
    overlap = state.settings.webhook_secret_overlap
    hook = await webhooks.rotate_secret(session, who=who, webhook_id=webhook_id, overlap=overlap)
    return WebhookWithSecretOut.model_validate(hook)


@router.post(
    "/webhooks/{webhookId}/test",
    status_code=202,
    response_model=QueuedOut,
    summary="Send a webhook.test event",
)
async def test_webhook(webhook_id: WebhookId, session: SessionDep, who: PrincipalDep) -> QueuedOut:
    queued = await webhooks.send_test(session, who=who, webhook_id=webhook_id)
    return QueuedOut(delivery_id=queued.id)


@router.get(
    "/webhooks/{webhookId}/deliveries",
    response_model=list[DeliveryOut],
    summary="The delivery log, newest first, with every attempt",
)
async def list_deliveries(
    webhook_id: WebhookId, session: SessionDep, who: PrincipalDep, listing: ListingDep
) -> list[DeliveryOut]:
    page = await webhooks.deliveries_page(
        session, who=who, webhook_id=webhook_id, page=listing.page
    )
    return [
        DeliveryOut(
            id=log.delivery.id,
            msg_id=log.delivery.msg_id,
            type=log.delivery.type,
            status=log.delivery.status,
            next_attempt_at=log.delivery.next_attempt_at,
            created_at=log.delivery.created_at,
            attempts=[AttemptOut.model_validate(a) for a in log.attempts],
        )
        for log in listing.items(page)
    ]


@router.post(
    "/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver",
    status_code=202,
    response_model=QueuedOut,
    summary="Send a delivery again, now (same webhook-id)",
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, session: SessionDep, who: PrincipalDep
) -> QueuedOut:
    queued = await webhooks.redeliver(
        session, who=who, webhook_id=webhook_id, delivery_id=delivery_id
    )
    return QueuedOut(delivery_id=queued.id)
