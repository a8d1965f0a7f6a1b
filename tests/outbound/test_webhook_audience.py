"""Who a webhook delivery goes to: only the projects a webhook is limited to, only changes
made since it was registered, and nothing to a webhook switched off or whose owner was
deactivated or lost the project, not even the retry of a delivery queued before."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from standardwebhooks import Webhook as Verifier

from casefolio.db.engine import Database
from casefolio.db.models import WebhookDelivery
from casefolio.domain import users
from casefolio.outbound.worker import Worker
from tests.clocks import Clock
from tests.factories import Actor, make_actor
from tests.outbound.conftest import Matter, make_matter, register_webhook, upload_file
from tests.outbound.receiver import Receiver


async def _statuses(db: Database) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return [d.status for d in rows]


async def _failed_once_then_due(
    client: httpx.AsyncClient,
    matter: Matter,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    """One upload whose first delivery fails (a retry is queued); the clock is then moved
    past the retry's time, so the next round would send it again."""
    hook_receiver.answers = [(500, {})]
    await upload_file(client, matter, "first.txt")
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    assert await _statuses(worker.db) == ["pending"]
    clock.catch_up()
    clock.advance(60)


async def test_a_webhook_limited_to_a_project_hears_nothing_of_another(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    hook_receiver: Receiver,
) -> None:
    other = await make_matter(client, db, operator)
    hook = await register_webhook(
        client, operator, hook_receiver.url, ["document.created"], projectIds=[str(matter.id)]
    )
    await upload_file(client, other, "elsewhere.txt")
    await worker.run_once()
    assert hook_receiver.received == []
    mine = await upload_file(client, matter, "here.txt")
    await worker.run_once()
    [got] = hook_receiver.received
    payload = Verifier(hook["secret"]).verify(got.body, got.headers)
    assert payload["data"]["documentId"] == mine
    assert payload["data"]["projectId"] == str(matter.id)
    # Its log holds no trace of the other project's upload either.
    log = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=operator.headers)
    assert [d["status"] for d in log.json()] == ["delivered"]


async def test_a_change_made_before_a_webhook_was_registered_is_not_sent_to_it(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    hook_receiver: Receiver,
) -> None:
    # Committed, but not yet fanned out when the webhook is registered.
    await upload_file(client, matter, "before.txt")
    hook = await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    after = await upload_file(client, matter, "after.txt")
    await worker.run_once()
    [got] = hook_receiver.received
    assert Verifier(hook["secret"]).verify(got.body, got.headers)["data"]["documentId"] == after


async def test_a_switched_off_webhook_gets_neither_new_changes_nor_its_retries(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    hook = await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    await _failed_once_then_due(client, matter, worker, clock, hook_receiver)
    off = await client.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=operator.headers
    )
    assert off.status_code == 200, off.text
    await upload_file(client, matter, "while-off.txt")
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    # The retry is dropped, and the new change got no delivery to send.
    assert "pending" not in await _statuses(db)


async def test_a_deactivated_owners_webhook_gets_nothing_not_even_a_retry(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    await register_webhook(
        client, matter.admin, hook_receiver.url, ["document.created"], projectIds=[str(matter.id)]
    )
    await _failed_once_then_due(client, matter, worker, clock, hook_receiver)
    off = await client.patch(
        f"/api/v1/user/id/{matter.admin.user_id}", json={"active": False}, headers=operator.headers
    )
    assert off.status_code == 200, off.text
    await upload_file(client, matter, "after-deactivation.txt")
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    assert await _statuses(db) == ["dropped", "dropped"]


async def test_an_owner_who_lost_the_project_gets_no_retry_of_an_earlier_delivery(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    await register_webhook(
        client, matter.admin, hook_receiver.url, ["document.created"], projectIds=[str(matter.id)]
    )
    await _failed_once_then_due(client, matter, worker, clock, hook_receiver)
    removed = await client.delete(
        matter.url(f"/users/{matter.admin.email}"), headers=operator.headers
    )
    assert removed.status_code == 204, removed.text
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    assert await _statuses(db) == ["dropped"]


async def test_a_former_operators_installation_wide_webhook_hears_only_their_projects(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    hook_receiver: Receiver,
) -> None:
    former = await make_actor(db, operator=True)
    hook = await register_webhook(
        client, former, hook_receiver.url, ["user.created", "team.created", "document.created"]
    )
    async with db.write() as session:
        await users.set_operator(session, who=None, user_id=former.user_id, is_operator=False)
    # Nothing outside a project (a new user, a new team), nor of a project they cannot read.
    made = await client.post(
        "/api/v1/users",
        json={"email": "new-partner@example.com", "name": "New Partner"},
        headers=operator.headers,
    )
    assert made.status_code == 201, made.text
    team = await client.post("/api/v1/teams", json={"name": "Litigation"}, headers=operator.headers)
    assert team.status_code == 201, team.text
    await upload_file(client, matter, "not-theirs.txt")
    await worker.run_once()
    assert hook_receiver.received == []
    # A project of theirs still is.
    granted = await client.put(
        matter.url(f"/users/{former.email}"), json={"role": "Read Only"}, headers=operator.headers
    )
    assert granted.status_code == 200, granted.text
    theirs = await upload_file(client, matter, "theirs.txt")
    await worker.run_once()
    [got] = hook_receiver.received
    assert Verifier(hook["secret"]).verify(got.body, got.headers)["data"]["documentId"] == theirs
