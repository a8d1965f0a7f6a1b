"""The change feed walked in large pages: it ends, with every change once, in order."""

from __future__ import annotations

import httpx

from casefolio.db.engine import Database
from casefolio.domain import events
from casefolio.outbound import feed
from tests.factories import Actor
from tests.outbound.conftest import Matter, feed_cursor

COUNT = 3_500
PAGE = 1_000


async def _walk(
    client: httpx.AsyncClient, actor: Actor, **query: object
) -> tuple[list[int], list[bool]]:
    """Every seq of the feed from its start (no cursor) in pages; the hasMore of each page.
    Stops, failing, after more pages than the changes could fill."""
    seqs: list[int] = []
    more: list[bool] = []
    params: dict[str, object] = {**query, "limit": PAGE}
    for _ in range(COUNT // PAGE + 3):
        got = await client.get("/api/v1/changes", params=params, headers=actor.headers)
        assert got.status_code == 200, got.text
        body = got.json()
        seqs += [c["seq"] for c in body["changes"]]
        more.append(body["hasMore"])
        if not body["hasMore"]:
            return seqs, more
        params = {**params, "cursor": body["nextCursor"]}
    raise AssertionError(f"the walk did not end: {len(seqs)} changes, pages {more}")


async def test_a_walk_in_pages_of_a_thousand_ends_with_every_change_once(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    before = await feed.current(db)
    for start in range(0, COUNT, PAGE):
        async with db.write() as session:
            events.emit(
                session,
                *(
                    events.DocumentUpdated(project_id=matter.id, document_id=n)
                    for n in range(start, min(COUNT, start + PAGE))
                ),
            )
    for actor, query in (
        (matter.reader, {"projectId": matter.id}),
        (matter.reader, {}),
        (operator, {"projectId": matter.id}),
    ):
        seqs, more = await _walk(client, actor, **query)
        mine = [s for s in seqs if s > before]
        assert mine == list(range(before + 1, before + COUNT + 1)), (actor, query)
        assert more[-1] is False and all(more[:-1])


async def test_a_page_holds_at_most_its_limit_and_says_more_only_when_there_is_more(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """`limit` bounds what a client must take in at once, and `hasMore` tells it to come
    back: a full last page that claimed more, or a page past its limit, breaks both."""
    start = await feed_cursor(client, matter.reader)
    async with db.write() as session:
        events.emit(
            session,
            *(events.DocumentUpdated(project_id=matter.id, document_id=n) for n in range(5)),
        )
    pages: list[tuple[list[int], bool]] = []
    cursor = start
    for _ in range(4):
        got = await client.get(
            "/api/v1/changes",
            params={"cursor": cursor, "limit": 2},
            headers=matter.reader.headers,
        )
        assert got.status_code == 200, got.text
        body = got.json()
        pages.append(([int(c["documentId"]) for c in body["changes"]], body["hasMore"]))
        cursor = body["nextCursor"]
        if not body["hasMore"]:
            break
    assert pages == [([0, 1], True), ([2, 3], True), ([4], False)]
    # All five in one page of exactly five: nothing more to come.
    whole = await client.get(
        "/api/v1/changes", params={"cursor": start, "limit": 5}, headers=matter.reader.headers
    )
    body = whole.json()
    assert [int(c["documentId"]) for c in body["changes"]] == [0, 1, 2, 3, 4]
    assert body["hasMore"] is False and body["nextCursor"] == cursor
