from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text, update

from casefolio.api.credentials import CredentialCache
from casefolio.db.engine import Database
from casefolio.db.models import ApiToken
from casefolio.db.types import rfc3339
from casefolio.domain.tokens import MAX_RATE_LIMIT
from tests.api.snapshots import snapshot
from tests.clocks import Clock
from tests.factories import Actor, make_actor


async def test_create_token_shows_secret_once_and_it_works(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    created = await client.post(
        "/api/v1/tokens",
        json={"userId": str(member.user_id), "name": "sync"},
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["userId"] == str(member.user_id)
    assert body["token"].startswith("cf_") and len(body["token"]) > 40

    listed = await client.get("/api/v1/tokens", headers=operator.headers)
    assert listed.status_code == 200
    assert all("token" not in item for item in listed.json())
    assert body["id"] in {item["id"] for item in listed.json()}

    me = await client.get("/api/v1/users", headers={"X-API-Token": body["token"]})
    assert me.status_code == 200


async def test_secret_is_nowhere_in_the_database(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    created = await client.post(
        "/api/v1/tokens", json={"userId": operator.user_id, "name": "x"}, headers=operator.headers
    )
    secret = created.json()["token"]
    async with db.read() as session:
        rows = (await session.execute(text("SELECT * FROM api_tokens"))).all()
    dumped = repr(rows)
    assert secret not in dumped
    assert secret[10:30] not in dumped
    assert hashlib.sha256(secret.encode()).hexdigest() in dumped


async def test_user_cannot_create_token_for_someone_else(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    refused = await client.post(
        "/api/v1/tokens", json={"userId": operator.user_id, "name": "steal"}, headers=member.headers
    )
    assert refused.status_code == 403
    assert "operator" in refused.json()["detail"]
    own = await client.post(
        "/api/v1/tokens", json={"userId": member.user_id, "name": "mine"}, headers=member.headers
    )
    assert own.status_code == 201


async def test_user_sees_only_own_tokens(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    listed = await client.get("/api/v1/tokens", headers=member.headers)
    assert {item["userId"] for item in listed.json()} == {str(member.user_id)}
    everyone = await client.get("/api/v1/tokens", headers=operator.headers)
    assert {str(operator.user_id), str(member.user_id)} <= {i["userId"] for i in everyone.json()}


async def test_revoke_by_id_then_token_is_rejected(
    client: httpx.AsyncClient, operator: Actor, db: Database
) -> None:
    other = await make_actor(db)
    gone = await client.delete(f"/api/v1/tokens/{other.token_id}", headers=operator.headers)
    assert gone.status_code == 204
    after = await client.get("/api/v1/users", headers=other.headers)
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


async def test_a_revoked_token_is_not_listed_nor_changed_any_more(
    client: httpx.AsyncClient, operator: Actor, db: Database
) -> None:
    """A revoked token is gone for good: not among the active tokens, and a change to it is
    a 404 that changes nothing."""
    other = await make_actor(db)
    gone = await client.delete(f"/api/v1/tokens/{other.token_id}", headers=operator.headers)
    assert gone.status_code == 204
    listed = await client.get("/api/v1/tokens?limit=1000", headers=operator.headers)
    assert str(other.token_id) not in {t["id"] for t in listed.json()}
    assert str(operator.token_id) in {t["id"] for t in listed.json()}
    stored = await snapshot(db)
    renamed = await client.patch(
        f"/api/v1/tokens/{other.token_id}",
        json={"name": "back again", "rateLimit": 7},
        headers=operator.headers,
    )
    assert renamed.status_code == 404
    assert await snapshot(db) == stored


async def test_revoking_a_revoked_token_again_changes_and_audits_nothing(
    client: httpx.AsyncClient, operator: Actor, db: Database
) -> None:
    """A revocation is recorded once: when it happened and who did it stay those of the
    first one (the audit log has one entry)."""
    other = await make_actor(db)
    url = f"/api/v1/tokens/{other.token_id}"
    assert (await client.delete(url, headers=operator.headers)).status_code == 204
    stored = await snapshot(db)
    assert (await client.delete(url, headers=operator.headers)).status_code == 204
    assert await snapshot(db) == stored


async def test_a_member_cannot_give_a_new_token_a_rate_limit_and_nothing_is_made(
    client: httpx.AsyncClient, member: Actor, db: Database
) -> None:
    """A token's rate limit is the operator's to set: when a token is made, as when changed."""
    stored = await snapshot(db)
    refused = await client.post(
        "/api/v1/tokens",
        json={"userId": member.user_id, "name": "unlimited", "rateLimit": MAX_RATE_LIMIT},
        headers=member.headers,
    )
    assert refused.status_code == 403
    assert "operator" in refused.json()["detail"]
    assert await snapshot(db) == stored


async def test_member_cannot_revoke_someone_elses_token_and_learns_nothing(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    refused = await client.delete(f"/api/v1/tokens/{operator.token_id}", headers=member.headers)
    assert refused.status_code == 404
    still = await client.get("/api/v1/users", headers=operator.headers)
    assert still.status_code == 200


async def test_delete_tokens_revokes_the_calling_token(
    client: httpx.AsyncClient, member: Actor
) -> None:
    assert (await client.delete("/api/v1/tokens", headers=member.headers)).status_code == 204
    assert (await client.get("/api/v1/users", headers=member.headers)).status_code == 401


async def test_expired_token_is_rejected(
    client: httpx.AsyncClient, operator: Actor, db: Database
) -> None:
    created = await client.post(
        "/api/v1/tokens",
        json={"userId": operator.user_id, "name": "short", "expiresAt": "2099-01-01T00:00:00Z"},
        headers=operator.headers,
    )
    assert created.status_code == 201
    assert created.json()["expiresAt"] == "2099-01-01T00:00:00.000Z"
    async with db.write() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == int(created.json()["id"]))
            .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    expired = await client.get("/api/v1/users", headers={"X-API-Token": created.json()["token"]})
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_a_token_that_expires_while_remembered_is_refused_at_once(
    app: FastAPI, client: httpx.AsyncClient, operator: Actor
) -> None:
    # Verified tokens are remembered for a couple of seconds (api/credentials.py); the
    # expiry is remembered with them. The clock is moved by hand: no waiting for it.
    clock = Clock()
    app.state.casefolio.credentials = CredentialCache(now=clock)
    expires = clock.now + timedelta(minutes=1)
    created = await client.post(
        "/api/v1/tokens",
        json={"userId": operator.user_id, "name": "short", "expiresAt": expires.isoformat()},
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    headers = {"X-API-Token": created.json()["token"]}
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 200
    clock.advance(59)
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 200  # remembered
    clock.advance(1)
    expired = await client.get("/api/v1/users", headers=headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_last_used_is_recorded_once_a_minute_at_most(
    app: FastAPI, client: httpx.AsyncClient, operator: Actor
) -> None:
    # Writing lastUsedAt on every request would make every GET a write: it is written when
    # a minute has passed since the last time written (domain/tokens.py).
    clock = Clock()
    state = app.state.casefolio
    state.credentials = CredentialCache(now=clock)
    created = await client.post(
        "/api/v1/tokens",
        json={"userId": operator.user_id, "name": "used"},
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["lastUsedAt"] is None
    token_id, headers = created.json()["id"], {"X-API-Token": created.json()["token"]}

    async def used_after(seconds: float) -> str:
        clock.advance(seconds)
        state.credentials.clear()  # looked up again, not remembered
        assert (await client.get("/api/v1/roles", headers=headers)).status_code == 200
        listed = await client.get("/api/v1/tokens?limit=1000", headers=operator.headers)
        [last] = [t["lastUsedAt"] for t in listed.json() if t["id"] == token_id]
        return str(last)

    first = await used_after(0)
    assert first == rfc3339(clock.now)
    assert await used_after(30) == first
    assert await used_after(31) == rfc3339(clock.now)


async def test_expiry_in_the_past_is_refused(client: httpx.AsyncClient, operator: Actor) -> None:
    refused = await client.post(
        "/api/v1/tokens",
        json={"userId": operator.user_id, "name": "old", "expiresAt": "2001-01-01T00:00:00Z"},
        headers=operator.headers,
    )
    assert refused.status_code == 400
    assert "future" in refused.json()["detail"]


async def test_an_expiry_given_as_a_number_is_refused_and_nothing_made(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    # Read as Unix seconds before: the schema's date-time is a string.
    before = (await client.get("/api/v1/tokens", headers=operator.headers)).json()
    for number in (4102444800, 4102444800.5):
        refused = await client.post(
            "/api/v1/tokens",
            json={"userId": operator.user_id, "name": "unix", "expiresAt": number},
            headers=operator.headers,
        )
        assert refused.status_code == 400, refused.text
        assert "RFC 3339 date-time string" in refused.json()["detail"], refused.text
    assert (await client.get("/api/v1/tokens", headers=operator.headers)).json() == before


async def test_an_expiry_past_year_9999_in_utc_is_refused_and_nothing_made(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    before = (await client.get("/api/v1/tokens", headers=operator.headers)).json()
    refused = await client.post(
        "/api/v1/tokens",
        json={"userId": operator.user_id, "name": "far", "expiresAt": "9999-12-31T23:59:59-23:59"},
        headers=operator.headers,
    )
    assert refused.status_code == 400, refused.text
    assert "before the year 10000" in refused.json()["detail"]
    assert (await client.get("/api/v1/tokens", headers=operator.headers)).json() == before
    last = await client.post(
        "/api/v1/tokens",
        json={"userId": operator.user_id, "name": "far", "expiresAt": "9999-12-31T23:59:59+01:00"},
        headers=operator.headers,
    )
    assert last.status_code == 201, last.text
    assert last.json()["expiresAt"] == "9999-12-31T22:59:59.000Z"


async def test_operator_sets_rate_limit_member_may_not(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    refused = await client.patch(
        f"/api/v1/tokens/{member.token_id}", json={"rateLimit": 500}, headers=member.headers
    )
    assert refused.status_code == 403
    done = await client.patch(
        f"/api/v1/tokens/{member.token_id}", json={"rateLimit": 500}, headers=operator.headers
    )
    assert done.status_code == 200 and done.json()["rateLimit"] == 500
    used = await client.get("/api/v1/roles", headers=member.headers)
    assert used.headers["RateLimit-Limit"] == "500"


async def test_a_rate_limit_beyond_what_a_token_holds_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    url = f"/api/v1/tokens/{member.token_id}"
    for too_many in (MAX_RATE_LIMIT + 1, 2**63, 0):
        patched = await client.patch(url, json={"rateLimit": too_many}, headers=operator.headers)
        assert patched.status_code == 400, patched.text
        assert "rateLimit must be between 1 and" in patched.json()["detail"]
        created = await client.post(
            "/api/v1/tokens",
            json={"userId": member.user_id, "name": "sync", "rateLimit": too_many},
            headers=operator.headers,
        )
        assert created.status_code == 400, created.text
    listed = await client.get("/api/v1/tokens", headers=member.headers)
    assert [t["name"] for t in listed.json()] == ["test"]  # none was made
    most = await client.patch(url, json={"rateLimit": MAX_RATE_LIMIT}, headers=operator.headers)
    assert most.status_code == 200 and most.json()["rateLimit"] == MAX_RATE_LIMIT


async def test_bearer_authorization_is_accepted(client: httpx.AsyncClient, operator: Actor) -> None:
    ok = await client.get("/api/v1/roles", headers={"Authorization": f"Bearer {operator.token}"})
    assert ok.status_code == 200


async def test_unknown_token_is_401_with_problem(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    bad = await client.get("/api/v1/roles", headers={"X-API-Token": "cf_nope"})
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["detail"] == "The provided API token is invalid."
