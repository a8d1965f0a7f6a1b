"""A sync client that polls with the newest updatedAt it saw misses nothing, also while
writers overlap (PostgreSQL): a change stamped before one already shown must not become
visible after it (db/stamps.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from casefolio.db.engine import Database
from casefolio.domain import documents
from casefolio.domain.principal import Principal
from tests.api.v1.conftest import Matter, upload


async def poll(client: httpx.AsyncClient, matter: Matter, after: str) -> list[dict[str, str]]:
    listed = await client.get(
        matter.url("/documents"), params={"afterDate": after}, headers=matter.reader.headers
    )
    assert listed.status_code == 200, listed.text
    return listed.json()  # type: ignore[no-any-return]


async def test_a_change_committed_after_a_later_one_is_still_seen_by_the_next_poll(
    client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: a write waits until the open one commits")
    first = (await upload(client, matter, b"first", "first.pdf")).json()
    slow = (await upload(client, matter, b"slow", "slow.pdf")).json()
    writer = Principal(matter.writer.user_id, matter.writer.email, "Writer", is_operator=False)
    async with db.write() as session:
        # A rename whose transaction stays open while another upload commits.
        await documents.update_details(
            session, who=writer, document_id=int(slow["id"]), title="renamed slowly"
        )
        later = await upload(client, matter, b"later", "later.pdf")
        assert later.status_code == 201, later.text
        during = await poll(client, matter, first["updatedAt"])
    after = max([first["updatedAt"], *(d["updatedAt"] for d in during)])
    then = await poll(client, matter, after)
    seen = {d["id"]: d["title"] for d in during + then}
    assert seen.get(slow["id"]) == "renamed slowly", (during, then)
    assert later.json()["id"] in seen
    # Once nothing is being written, the same poll shows both at once.
    everything = await poll(client, matter, first["updatedAt"])
    assert {slow["id"], later.json()["id"]} <= {d["id"] for d in everything}


async def test_overlapping_uploads_polled_meanwhile_are_all_seen(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Uploads running at once while a client polls as a sync does: every document is seen."""
    start = (await upload(client, matter, b"start", "start.pdf")).json()["updatedAt"]
    uploads = [
        asyncio.ensure_future(upload(client, matter, f"doc {i}".encode(), f"doc-{i}.pdf"))
        for i in range(24)
    ]
    seen: set[str] = set()
    after = start
    for done in asyncio.as_completed(uploads):  # a poll each time one is answered
        assert (await done).status_code == 201
        listed = await poll(client, matter, after)
        seen |= {d["id"] for d in listed}
        after = max([after, *(d["updatedAt"] for d in listed)])
    filed = {(await u).json()["id"] for u in uploads}
    seen |= {d["id"] for d in await poll(client, matter, after)}
    assert filed <= seen, sorted(filed - seen)
