from __future__ import annotations

import httpx

from casefolio.db.engine import Database
from tests import traces
from tests.factories import Actor


async def test_switching_the_api_off_blocks_everyone_but_the_settings_switch(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    off = await client.patch(
        "/api/v1/settings", json={"integrationsApiEnabled": False}, headers=operator.headers
    )
    assert off.status_code == 200 and off.json() == {"integrationsApiEnabled": False}

    blocked = await client.get("/api/v1/users", headers=member.headers)
    assert blocked.status_code == 403
    assert "integrations API is switched off" in blocked.json()["detail"]
    assert (await client.get("/api/v1/users", headers=operator.headers)).status_code == 403
    assert (await client.get("/api/v1/settings", headers=member.headers)).status_code == 403

    # POST is accepted as PATCH.
    on = await client.post(
        "/api/v1/settings", json={"integrationsApiEnabled": True}, headers=operator.headers
    )
    assert on.status_code == 200 and on.json()["integrationsApiEnabled"] is True
    assert (await client.get("/api/v1/users", headers=member.headers)).status_code == 200


async def test_only_operators_change_settings(client: httpx.AsyncClient, member: Actor) -> None:
    refused = await client.patch(
        "/api/v1/settings", json={"integrationsApiEnabled": False}, headers=member.headers
    )
    assert refused.status_code == 403
    still = await client.get("/api/v1/settings", headers=member.headers)
    assert still.json() == {"integrationsApiEnabled": True}


async def test_unknown_setting_is_400(client: httpx.AsyncClient, operator: Actor) -> None:
    bad = await client.patch("/api/v1/settings", json={"colour": "red"}, headers=operator.headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "colour"


async def test_a_setting_sent_as_it_is_records_nothing(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    start = await traces.mark(db)

    same = await client.patch(
        "/api/v1/settings", json={"integrationsApiEnabled": True}, headers=operator.headers
    )

    assert same.status_code == 200 and same.json() == {"integrationsApiEnabled": True}
    assert (await traces.since(db, start)).entries == []
    off = await client.patch(
        "/api/v1/settings", json={"integrationsApiEnabled": False}, headers=operator.headers
    )
    assert off.status_code == 200
    [entry] = (await traces.since(db, start)).entries
    assert entry.action == "settings.updated"
