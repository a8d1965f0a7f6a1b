"""The trash's period is CASEFOLIO_TRASH_DAYS, whatever it is set to: what the trash lists
as `purgeAfter`, for documents and versions, and when the purge takes them. Here a week,
not the default 30 days (tests/api/v1/test_trash.py has the default)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from casefolio.outbound.housekeeping import Housekeeper
from tests.api.v1.conftest import Matter
from tests.api.v1.test_holds import delete_document
from tests.api.v1.test_version_trash import delete_version, document, versions_of

WEEK = timedelta(days=7)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"trash_days": 7})


def period(entry: dict[str, str]) -> timedelta:
    return datetime.fromisoformat(entry["purgeAfter"]) - datetime.fromisoformat(entry["trashedAt"])


@pytest.mark.parametrize("early", [True, False])
async def test_the_trash_lists_and_purges_by_the_configured_period(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter, early: bool
) -> None:
    h = matter.admin.headers
    gone = await document(client, matter, b"a document for the trash")
    kept = await document(client, matter, b"first, for the trash", b"second, current")
    first = (await versions_of(client, matter, kept))[0]["id"]
    assert (await delete_document(client, matter, gone)).status_code == 204
    assert (await delete_version(client, matter, kept, first)).status_code == 204

    [trashed] = (await client.get(matter.url("/trash"), headers=h)).json()
    [version] = (await client.get(matter.url("/trash/versions"), headers=h)).json()
    assert period(trashed) == period(version) == WEEK

    due = max(datetime.fromisoformat(e["purgeAfter"]) for e in (trashed, version))
    at = due - timedelta(minutes=1) if early else due + timedelta(minutes=1)
    state = app.state.casefolio
    await Housekeeper(state.settings, state.db, state.blobs, clock=lambda: at).run_once()

    async with db.read() as session:
        documents = set(await session.scalars(select(Document.id)))
        versions = set(await session.scalars(select(DocumentVersion.id)))
    assert (int(gone) in documents, int(first) in versions) == (early, early)
    assert int(kept) in documents
