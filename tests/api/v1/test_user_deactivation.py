"""Deactivating a user: operators only, their tokens answer 401 at once here and within the
credential-cache window in other processes; reactivation restores them; nothing is deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from casefolio.api.credentials import TTL_SECONDS, CredentialCache
from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import events
from tests import traces
from tests.api.v1.conftest import Matter, upload
from tests.factories import Actor

DEACTIVATED = "The provided API token's user is deactivated."


async def _active(client: httpx.AsyncClient, operator: Actor, user_id: int) -> bool:
    read = await client.get(f"/api/v1/user/id/{user_id}", headers=operator.headers)
    assert read.status_code == 200, read.text
    return bool(read.json()["active"])


async def test_deactivated_users_tokens_answer_401_at_once_and_reactivation_restores_them(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    # The member's token is remembered by this process (api/credentials.py) before the change.
    assert (await client.get("/api/v1/users", headers=member.headers)).status_code == 200

    off = await client.patch(
        f"/api/v1/user/id/{member.user_id}", json={"active": False}, headers=operator.headers
    )
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False and off.json()["email"] == member.email

    refused = await client.get("/api/v1/users", headers=member.headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == DEACTIVATED
    v3 = await client.get("/api/v3", headers=member.headers)
    assert v3.status_code == 401
    # Never deleted: the user is still there, marked inactive.
    assert await _active(client, operator, member.user_id) is False

    # POST to a PATCH resource is PATCH (the seed's rule).
    on = await client.post(
        f"/api/v1/user/id/{member.user_id}", json={"active": True}, headers=operator.headers
    )
    assert on.status_code == 200 and on.json()["active"] is True
    assert (await client.get("/api/v1/users", headers=member.headers)).status_code == 200


async def test_a_non_operator_cannot_deactivate_anyone(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    for target in (operator.user_id, member.user_id):
        refused = await client.patch(
            f"/api/v1/user/id/{target}", json={"active": False}, headers=member.headers
        )
        assert refused.status_code == 403
        assert refused.json()["detail"] == "Only an operator can change users."
        assert await _active(client, operator, target) is True
    assert (await client.get("/api/v1/users", headers=member.headers)).status_code == 200


async def test_an_operator_cannot_deactivate_themselves(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    refused = await client.patch(
        f"/api/v1/user/id/{operator.user_id}", json={"active": False}, headers=operator.headers
    )
    assert refused.status_code == 409
    assert "cannot deactivate yourself" in refused.json()["detail"]
    assert await _active(client, operator, operator.user_id) is True


@pytest.mark.parametrize(
    ("body", "field"),
    [({"active": "no"}, "active"), ({"active": False, "email": "x@example.com"}, "email")],
)
async def test_a_malformed_change_is_400_and_changes_nothing(
    client: httpx.AsyncClient, operator: Actor, member: Actor, body: dict[str, object], field: str
) -> None:
    refused = await client.patch(
        f"/api/v1/user/id/{member.user_id}", json=body, headers=operator.headers
    )
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert await _active(client, operator, member.user_id) is True


async def test_deactivating_an_unknown_user_is_404(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    missing = await client.patch(
        "/api/v1/user/id/999999", json={"active": False}, headers=operator.headers
    )
    assert missing.status_code == 404


@pytest.fixture
async def other_process(settings: Settings) -> AsyncIterator[FastAPI]:
    """A second app on the same database: another server process, with a clock we move."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_another_process_refuses_within_the_credential_cache_window(
    client: httpx.AsyncClient, operator: Actor, member: Actor, other_process: FastAPI
) -> None:
    now = [1000.0]
    other_process.state.casefolio.credentials = CredentialCache(clock=lambda: now[0])
    transport = httpx.ASGITransport(app=other_process)
    async with httpx.AsyncClient(transport=transport, base_url="http://other") as other:
        assert (await other.get("/api/v1/users", headers=member.headers)).status_code == 200

        off = await client.patch(
            f"/api/v1/user/id/{member.user_id}", json={"active": False}, headers=operator.headers
        )
        assert off.status_code == 200

        # Within the documented window the other process may still accept the token ...
        now[0] += TTL_SECONDS / 2
        assert (await other.get("/api/v1/users", headers=member.headers)).status_code == 200
        # ... and once it has passed, it refuses.
        now[0] += TTL_SECONDS / 2 + 0.001
        refused = await other.get("/api/v1/users", headers=member.headers)
        assert refused.status_code == 401 and refused.json()["detail"] == DEACTIVATED

        on = await client.patch(
            f"/api/v1/user/id/{member.user_id}", json={"active": True}, headers=operator.headers
        )
        assert on.status_code == 200
        # A refusal is not remembered: the other process accepts the token again at once.
        assert (await other.get("/api/v1/users", headers=member.headers)).status_code == 200


async def test_a_deactivated_users_documents_keep_their_author(
    client: httpx.AsyncClient, operator: Actor, matter: Matter
) -> None:
    filed = await upload(client, matter)
    assert filed.status_code == 201, filed.text
    document = matter.url(f"/documents/{filed.json()['id']}")
    off = await client.patch(
        f"/api/v1/user/id/{matter.writer.user_id}", json={"active": False}, headers=operator.headers
    )
    assert off.status_code == 200
    assert (await client.get(document, headers=matter.writer.headers)).status_code == 401
    read = await client.get(document, headers=matter.reader.headers)
    assert read.status_code == 200
    assert read.json()["createdBy"] == str(matter.writer.user_id)
    assert read.json()["currentVersion"]["createdBy"] == str(matter.writer.user_id)


async def test_deactivation_and_reactivation_are_audited_and_sent_but_not_fed(
    client: httpx.AsyncClient, db: Database, operator: Actor, member: Actor
) -> None:
    start = await traces.mark(db)
    for active in (False, False, True):  # the second changes nothing and reports nothing
        done = await client.patch(
            f"/api/v1/user/id/{member.user_id}", json={"active": active}, headers=operator.headers
        )
        assert done.status_code == 200, done.text
    refused = await client.patch(
        f"/api/v1/user/id/{operator.user_id}", json={"active": False}, headers=operator.headers
    )
    assert refused.status_code == 409

    found = await traces.since(db, start)
    assert found.actions == found.change_types == ["user.deactivated", "user.reactivated"]
    for entry in found.entries:
        assert (entry.actor_kind, entry.actor_user_id, entry.actor_token_id) == (
            "token",
            operator.user_id,
            operator.token_id,
        )
        assert (entry.target_type, entry.target_id, entry.project_id) == (
            "user",
            member.user_id,
            None,
        )
        assert entry.details == {"email": member.email}
    # Installation-level, like user.created: webhooks of operators, not the change feed.
    assert found.webhook_data("user.deactivated")["id"] == str(member.user_id)
    assert {"user.deactivated", "user.reactivated"} <= events.WEBHOOK_TYPES
    assert not {"user.deactivated", "user.reactivated"} & events.FEED_TYPES
