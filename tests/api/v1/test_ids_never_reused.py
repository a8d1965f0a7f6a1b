"""An id names one thing for good: a document purged from the trash, a deleted folder or
webhook leaves its id unused, on SQLite as on PostgreSQL (whose sequences never go back).
SQLite without AUTOINCREMENT gave the next row the newest deleted row's id."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry
from tests.api.v1.conftest import Matter, upload
from tests.api.v1.test_holds import delete_document
from tests.api.v1.test_trash import housekeeper
from tests.factories import Actor


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A webhook to this machine (never called): loopback must be an allowed network.
    return settings.model_copy(update={"webhook_allowed_networks": ["127.0.0.0/8"]})


async def test_a_purged_documents_ids_go_to_no_later_document(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    first = (await upload(client, matter, b"purged soon")).json()
    assert (await delete_document(client, matter, first["id"])).status_code == 204
    await housekeeper(app, days_later=31).run_once()

    later = (await upload(client, matter, b"filed after the purge")).json()

    assert int(later["id"]) > int(first["id"])
    assert int(later["currentVersion"]["id"]) > int(first["currentVersion"]["id"])
    h = matter.admin.headers
    assert (await client.get(matter.url(f"/documents/{first['id']}"), headers=h)).status_code == 404
    async with db.read() as session:
        targets = list(
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.target_type == "document", AuditEntry.target_id == int(first["id"])
                )
            )
        )
    assert "document.purged" in targets
    assert "document.created" not in targets[targets.index("document.purged") :]


async def test_a_deleted_folders_id_goes_to_no_later_folder(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    h = matter.admin.headers
    made = await client.post(matter.url("/folders"), json={"name": "Drafts"}, headers=h)
    gone = made.json()["id"]
    assert (await client.delete(matter.url(f"/folders/{gone}"), headers=h)).status_code == 204

    again = await client.post(matter.url("/folders"), json={"name": "Drafts"}, headers=h)

    assert again.status_code == 201, again.text
    assert int(again.json()["id"]) > int(gone)
    left = await client.get(matter.url(f"/folders/{gone}"), headers=h)
    assert left.status_code == 404


async def test_a_deleted_webhooks_id_goes_to_no_later_webhook(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    h = operator.headers
    body = {"url": "http://127.0.0.1:9/hook", "events": ["document.created"]}
    made = await client.post("/api/v1/webhooks", json=body, headers=h)
    assert made.status_code == 201, made.text
    gone = made.json()["id"]
    assert (await client.delete(f"/api/v1/webhooks/{gone}", headers=h)).status_code == 204

    again = await client.post("/api/v1/webhooks", json=body, headers=h)

    assert again.status_code == 201, again.text
    assert int(again.json()["id"]) > int(gone)
    assert (await client.get(f"/api/v1/webhooks/{gone}", headers=h)).status_code == 404
