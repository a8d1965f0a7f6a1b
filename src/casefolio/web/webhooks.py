"""Webhooks: the list with each one's state, registration, the secret shown once, rotation,
a test event, deletion, and the delivery log with redelivery.

The same domain calls as `/api/v1/webhooks`, so the same rules: operators see and manage
every webhook (and register installation-wide ones); a project admin registers webhooks
limited to projects they administer and sees their own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.deps import SessionDep
from casefolio.api.ids import PathId, digits_id
from casefolio.db.models import Project, Webhook
from casefolio.domain import events, projects, shown_once, webhooks
from casefolio.domain.errors import Forbidden, Invalid
from casefolio.domain.pages import PageRequest, request_after
from casefolio.domain.roles import Capability
from casefolio.domain.websessions import SignedIn
from casefolio.web.deps import (
    WebForm,
    WebRoute,
    WebUser,
    WebWriter,
    cookie_secret,
    take_shown_once,
)
from casefolio.web.http import render, see_other, state_of

router = APIRouter(include_in_schema=False, route_class=WebRoute)
SECRET_SHOWN = "webhook-secret:"  # + the webhook's id
DELIVERIES_PER_PAGE = 25
# Projects offered in the form; any project can still be given by its id.
PROJECT_CHOICES = 200


async def _administered(session: AsyncSession, me: SignedIn) -> list[Project]:
    """Projects to offer in the form: those the user may limit a webhook to (the domain
    checks again whatever is sent)."""
    page = await projects.list_page(
        session, who=me.principal, page=PageRequest(limit=PROJECT_CHOICES)
    )
    return [
        project
        for project, role in page.items
        if role is not None and Capability.SETTINGS_MANAGE in role.capabilities
    ]


async def _list_page(
    request: Request,
    me: SignedIn,
    session: AsyncSession,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    cursor: str | None = None,
) -> Response:
    page = await webhooks.list_page(session, who=me.principal, page=request_after(cursor, 100))
    return render(
        request,
        "admin_webhooks.html",
        status,
        hooks=page.items,
        next_cursor=page.next_cursor,
        event_types=sorted(events.WEBHOOK_TYPES),
        choices=await _administered(session, me),
        error=error,
        form=form or {},
    )


@router.get("/admin/webhooks")
async def webhooks_page(
    request: Request, me: WebUser, session: SessionDep, cursor: str | None = None
) -> Response:
    return await _list_page(request, me, session, cursor=cursor)


def _spec(form: dict[str, str]) -> webhooks.WebhookSpec:
    chosen = [k.removeprefix("event:") for k in form if k.startswith("event:")]
    sent = [k.removeprefix("project:") for k in form if k.startswith("project:")]
    sent += form.get("projectIds", "").replace(",", " ").split()
    project_ids = []
    for raw in sent:
        found = digits_id(raw)
        if found is None:
            raise Invalid(f"Project ids are numbers (ids); {raw[:40]!r} is not one.")
        project_ids.append(found)
    return webhooks.WebhookSpec(
        url=form.get("url", "").strip(),
        events=chosen,
        # None of them chosen: installation-wide, which the domain allows operators only.
        project_ids=project_ids or None,
        description=form.get("description", ""),
    )


@router.post("/admin/webhooks")
async def create_webhook(
    request: Request, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    """Register a webhook, then show its page, which shows the secret once."""
    try:
        hook = await webhooks.create(
            session,
            who=me.principal,
            spec=_spec(form),
            allowed=state_of(request).settings.webhook_networks,
        )
    except (Invalid, Forbidden) as exc:
        status = 403 if isinstance(exc, Forbidden) else 400
        return await _list_page(request, me, session, status, exc.message, form)
    await _keep_secret(request, session, hook)
    return see_other(f"/admin/webhooks/{hook.id}")


async def _keep_secret(request: Request, session: AsyncSession, hook: Webhook) -> None:
    await shown_once.keep(
        session,
        cookie_secret=cookie_secret(request),
        kind=SECRET_SHOWN + str(hook.id),
        value={"secret": hook.secret},
    )


@router.get("/admin/webhooks/{webhook_id}")
async def webhook_page(
    request: Request,
    webhook_id: PathId,
    me: WebUser,
    session: SessionDep,
    cursor: str | None = None,
    done: str | None = None,
) -> Response:
    hook = await webhooks.get(session, who=me.principal, webhook_id=webhook_id)
    log = await webhooks.deliveries_page(
        session,
        who=me.principal,
        webhook_id=webhook_id,
        page=request_after(cursor, DELIVERIES_PER_PAGE),
    )
    kept = await take_shown_once(request, SECRET_SHOWN + str(hook.id))
    return render(
        request,
        "admin_webhook.html",
        hook=hook,
        secret=kept["secret"] if kept else None,
        log=log.items,
        next_cursor=log.next_cursor,
        notice=_NOTICES.get(done or ""),
    )


_NOTICES: dict[str, Any] = {
    "test": "A webhook.test event is queued; it appears in the delivery log below.",
    "redelivered": "The delivery is queued again, with the same webhook-id.",
    "enabled": "The webhook is active again.",
    "disabled": "The webhook is switched off: nothing is sent to it.",
    "rotated": None,
}


def _back(webhook_id: int, done: str) -> RedirectResponse:
    return see_other(f"/admin/webhooks/{webhook_id}?done={done}")


@router.post("/admin/webhooks/{webhook_id}/rotate-secret")
async def rotate_secret(
    request: Request, webhook_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    overlap = state_of(request).settings.webhook_secret_overlap
    hook = await webhooks.rotate_secret(
        session, who=me.principal, webhook_id=webhook_id, overlap=overlap
    )
    await _keep_secret(request, session, hook)
    return _back(webhook_id, "rotated")


@router.post("/admin/webhooks/{webhook_id}/test")
async def send_test(webhook_id: PathId, me: WebWriter, session: SessionDep) -> Response:
    await webhooks.send_test(session, who=me.principal, webhook_id=webhook_id)
    return _back(webhook_id, "test")


@router.post("/admin/webhooks/{webhook_id}/active")
async def set_active(
    request: Request, webhook_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    active = form.get("active") == "true"
    await webhooks.update(
        session,
        who=me.principal,
        webhook_id=webhook_id,
        allowed=state_of(request).settings.webhook_networks,
        active=active,
    )
    return _back(webhook_id, "enabled" if active else "disabled")


@router.post("/admin/webhooks/{webhook_id}/delete")
async def delete_webhook(webhook_id: PathId, me: WebWriter, session: SessionDep) -> Response:
    await webhooks.delete(session, who=me.principal, webhook_id=webhook_id)
    return see_other("/admin/webhooks")


@router.post("/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    webhook_id: PathId, delivery_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    await webhooks.redeliver(
        session, who=me.principal, webhook_id=webhook_id, delivery_id=delivery_id
    )
    return _back(webhook_id, "redelivered")
