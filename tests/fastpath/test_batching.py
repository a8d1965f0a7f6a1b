"""Concurrent reads of one statement share a round trip (fastpath/batching.py).

The Batcher's order of events is tested on statements the test releases one by one; the
document read's batched statement, and GETs through the API, on a PostgreSQL database of
their own in both suites (batching is PostgreSQL's).
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import event, literal, select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Document
from casefolio.db.reads import BatchedRead, Rows
from casefolio.domain import document_pages, documents
from casefolio.fastpath.batching import MAX_BATCH, Batcher
from casefolio.fastpath.statements import StatementReader
from tests.db.conftest import drop_connections
from tests.factories import Actor, file_with_fields, make_actor

READ = BatchedRead(single=select(literal(1)), many=select(literal(2)), keys=frozenset({"id"}))


def rows_of(key: int) -> list[tuple[int, int]]:
    """What `READ.single` answers for `key`: 0, 1 or 2 rows."""
    return [(key, n) for n in range(key % 3)]


class Statements:
    """A Batcher's `run`: each statement it is given waits until the test answers it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._answers: list[asyncio.Future[None]] = []
        self._arrived = asyncio.Event()

    async def __call__(self, statement: Any, parameters: Mapping[str, Any]) -> Rows:
        kind = "single" if statement is READ.single else "many"
        self.sent.append((kind, dict(parameters)))
        answer = asyncio.get_running_loop().create_future()
        self._answers.append(answer)
        self._arrived.set()
        await answer
        if kind == "single":
            return rows_of(parameters["id"])
        return [(*row, position) for position, key in enumerate(parameters["id"], 1)
                for row in rows_of(key)]  # fmt: skip

    async def next_sent(self, count: int) -> tuple[str, dict[str, Any]]:
        """Wait until `count` statements were sent; return the last."""
        while len(self.sent) < count:
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), 5)
        return self.sent[count - 1]

    def answer(self, number: int, error: Exception | None = None) -> None:
        """Let statement `number` (1-based) return, or raise `error`."""
        if error is None:
            self._answers[number - 1].set_result(None)
        else:
            self._answers[number - 1].set_exception(error)


async def settle() -> None:
    """Let every task that can run, run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


async def within(task: asyncio.Task[Rows]) -> Rows:
    """The task's rows, failing the test (not hanging it) if it gets stuck."""
    return await asyncio.wait_for(task, 5)


def read(batcher: Batcher, key: int) -> asyncio.Task[Rows]:
    return asyncio.ensure_future(batcher.execute(READ, {"id": key}))


async def one_out_and_waiting(
    first_key: int, keys: tuple[int, ...], *, max_batch: int = MAX_BATCH
) -> tuple[Statements, Batcher, asyncio.Task[Rows], list[asyncio.Task[Rows]]]:
    """A Batcher whose first read (of `first_key`) is out as statement 1, with reads of
    `keys` waiting behind it; its statements, the first read and the waiting ones."""
    statements = Statements()
    batcher = Batcher(statements, max_batch=max_batch)
    first = read(batcher, first_key)
    await statements.next_sent(1)
    waiting = [read(batcher, key) for key in keys]
    await settle()
    return statements, batcher, first, waiting


async def next_read_goes_alone(statements: Statements, batcher: Batcher, key: int) -> None:
    """Nothing is left waiting or marked busy: a read of `key` goes at once, alone."""
    after = read(batcher, key)
    number = len(statements.sent) + 1
    assert await statements.next_sent(number) == ("single", {"id": key})
    statements.answer(number)
    assert await within(after) == rows_of(key)


async def test_a_lone_read_goes_at_once_as_the_single_statement() -> None:
    statements = Statements()
    batcher = Batcher(statements)
    first = read(batcher, 5)
    assert await statements.next_sent(1) == ("single", {"id": 5})
    statements.answer(1)
    assert await first == rows_of(5)
    # Nothing was waiting, so the next read goes at once too.
    await next_read_goes_alone(statements, batcher, 7)


async def test_reads_arriving_while_one_is_out_share_the_next_statement() -> None:
    statements, batcher, first, waiting = await one_out_and_waiting(4, (2, 3, 5))
    assert len(statements.sent) == 1  # they wait for the statement out to return

    statements.answer(1)
    assert await statements.next_sent(2) == ("many", {"id": [2, 3, 5]})
    assert await first == rows_of(4)
    # A read arriving now must not be answered by the statement already sent: it would
    # miss what was committed after that statement left.
    later = read(batcher, 8)
    await settle()
    assert len(statements.sent) == 2
    statements.answer(2)
    answered = [await within(task) for task in waiting]
    assert answered == [rows_of(2), rows_of(3), rows_of(5)]
    assert answered[1] == []  # a key with no rows gets none, not its neighbour's
    assert await statements.next_sent(3) == ("single", {"id": 8})
    statements.answer(3)
    assert await within(later) == rows_of(8)


async def test_a_statement_answers_at_most_max_batch_reads() -> None:
    statements, _, first, waiting = await one_out_and_waiting(1, (2, 4, 5), max_batch=2)
    statements.answer(1)
    assert await statements.next_sent(2) == ("many", {"id": [2, 4]})
    statements.answer(2)
    assert await statements.next_sent(3) == ("single", {"id": 5})
    statements.answer(3)
    assert [await first, *[await within(task) for task in waiting]] == [
        rows_of(1),
        rows_of(2),
        rows_of(4),
        rows_of(5),
    ]


async def test_a_read_with_its_own_bound_answers_at_most_that_many_per_statement() -> None:
    bounded = BatchedRead(single=READ.single, many=READ.many, keys=READ.keys, max_batch=2)
    statements = Statements()
    batcher = Batcher(statements)  # the runner's own bound is far larger
    first = asyncio.ensure_future(batcher.execute(bounded, {"id": 1}))
    await statements.next_sent(1)
    waiting = [asyncio.ensure_future(batcher.execute(bounded, {"id": k})) for k in (2, 4, 5)]
    await settle()
    statements.answer(1)
    assert await statements.next_sent(2) == ("many", {"id": [2, 4]})
    statements.answer(2)
    assert await statements.next_sent(3) == ("single", {"id": 5})
    statements.answer(3)
    assert [await first, *[await within(task) for task in waiting]] == [
        rows_of(1),
        rows_of(2),
        rows_of(4),
        rows_of(5),
    ]


async def test_a_failed_statement_fails_each_of_its_reads_and_reading_goes_on() -> None:
    statements, batcher, first, waiting = await one_out_and_waiting(1, (2, 4))
    statements.answer(1)
    await statements.next_sent(2)
    statements.answer(2, ConnectionResetError("connection lost"))
    for task in waiting:
        with pytest.raises(ConnectionResetError, match="connection lost"):
            await within(task)
    assert await first == rows_of(1)
    await next_read_goes_alone(statements, batcher, 5)


async def test_a_cancelled_read_leaves_its_batch() -> None:
    statements, _, first, (stays, leaves, stays_too) = await one_out_and_waiting(1, (2, 4, 5))
    leaves.cancel()
    await settle()
    statements.answer(1)
    assert await statements.next_sent(2) == ("many", {"id": [2, 5]})
    statements.answer(2)
    assert (await first, await within(stays), await within(stays_too)) == (
        rows_of(1),
        rows_of(2),
        rows_of(5),
    )
    assert leaves.cancelled()


@pytest.mark.parametrize("leader_ends", ["fails", "is cancelled"])
async def test_however_the_read_out_ends_those_waiting_go_next(leader_ends: str) -> None:
    statements, _, first, waiting = await one_out_and_waiting(1, (2, 4))
    if leader_ends == "fails":
        statements.answer(1, ConnectionResetError("connection lost"))
        with pytest.raises(ConnectionResetError):
            await first
    else:
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    assert await statements.next_sent(2) == ("many", {"id": [2, 4]})
    statements.answer(2)
    assert [await within(task) for task in waiting] == [rows_of(2), rows_of(4)]


class Interrupted(BaseException):
    """Not an Exception: what an `except Exception` would let through."""


async def test_a_base_exception_still_reaches_every_read_of_its_statement() -> None:
    statements, batcher, first, waiting = await one_out_and_waiting(1, (2, 4))
    statements.answer(1)
    await statements.next_sent(2)
    statements.answer(2, Interrupted())
    for task in waiting:
        with pytest.raises(Interrupted):
            await within(task)
    assert await first == rows_of(1)
    await next_read_goes_alone(statements, batcher, 5)


async def test_a_statement_cancelled_before_it_starts_cancels_its_reads_and_reading_goes_on() -> (
    None
):
    statements, batcher, first, waiting = await one_out_and_waiting(1, (2, 4))
    statements.answer(1)
    await asyncio.sleep(0)  # the first read returns and hands its waiters to a new task
    # The task that will send the waiting reads, cancelled as a shutdown would, before its
    # first step.
    [task] = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Coalescer._answer"]
    task.cancel()
    for waiter in waiting:
        with pytest.raises(asyncio.CancelledError):
            await within(waiter)
    assert await first == rows_of(1)
    assert len(statements.sent) == 1  # the cancelled statement was never sent
    await next_read_goes_alone(statements, batcher, 5)


async def test_a_read_must_give_exactly_its_keys() -> None:
    batcher = Batcher(Statements())
    with pytest.raises(ValueError, match="exactly"):
        await batcher.execute(READ, {"id": 1, "user_id": 2})
    with pytest.raises(ValueError, match="exactly"):
        await batcher.execute(READ, {})


# ---- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def settings(pg_settings: Settings) -> Settings:
    """This module's own PostgreSQL database, in both suites (the `app`, `db`, `client`,
    `operator` and `member` fixtures then run on it)."""
    return pg_settings


async def _scene(
    client: httpx.AsyncClient, db: Database, operator: Actor, member: Actor
) -> tuple[list[Actor], list[int], list[str]]:
    """Callers (the operator, a member granted one project directly and another through a
    team, an outsider), documents (one with two field values, one with none, one that does
    not exist) and the documents' URLs."""
    with_values = await file_with_fields(
        client, operator, {"Custodian": ("text", "J. Smith"), "Privileged": ("boolean", True)}
    )
    without = await file_with_fields(client, operator, {})
    async with db.read() as session:
        projects = [await session.get_one(Document, d) for d in (with_values, without)]
    urls = [f"/api/v1/projects/{p.project_id}/documents/{p.id}" for p in projects]
    urls.append(f"/api/v1/projects/{projects[0].project_id}/documents/{10**9}")
    granted = await client.put(
        f"/api/v1/projects/{projects[0].project_id}/users/{member.email}",
        json={"role": "Read Only"},
        headers=operator.headers,
    )
    assert granted.status_code == 200, granted.text
    team = await client.post("/api/v1/teams", json={"name": "Review"}, headers=operator.headers)
    team_id = team.json()["id"]
    await client.put(f"/api/v1/teams/{team_id}/users/{member.email}", headers=operator.headers)
    via_team = await client.put(
        f"/api/v1/projects/{projects[1].project_id}/teams/{team_id}",
        json={"role": "Read Write"},
        headers=operator.headers,
    )
    assert via_team.status_code == 200, via_team.text
    outsider = await make_actor(db, email="outsider@example.com")
    return [operator, member, outsider], [with_values, without, 10**9], urls


async def test_the_batched_document_read_answers_each_key_as_its_single_read(
    client: httpx.AsyncClient,
    db: Database,
    statements: StatementReader,
    operator: Actor,
    member: Actor,
) -> None:
    callers, document_ids, _ = await _scene(client, db, operator, member)
    keys = [(d, caller.user_id) for caller in callers for d in document_ids]
    keys.append(keys[0])  # the same read twice in one batch
    many = await statements.execute(
        documents.DOCUMENT_READ.many,
        {"document_id": [d for d, _ in keys], "user_id": [u for _, u in keys]},
    )
    batched: list[list[tuple[Any, ...]]] = [[] for _ in keys]
    for row in many:
        batched[row[-1] - 1].append(tuple(row[:-1]))
    for (document_id, user_id), rows in zip(keys, batched, strict=True):
        single = await statements.execute(
            documents.DOCUMENT_READ.single, {"document_id": document_id, "user_id": user_id}
        )
        assert rows == [tuple(row) for row in single], (document_id, user_id)
    # And the answers differ where they should: two field rows, one row, none; a rank for
    # the member (direct grant and team grant), none for the outsider.
    with_values, without, missing = document_ids
    by_key = dict(zip(keys, batched, strict=False))
    assert len(by_key[(with_values, member.user_id)]) == 2
    assert len(by_key[(without, member.user_id)]) == 1
    assert by_key[(missing, member.user_id)] == []
    rank = len(by_key[(with_values, member.user_id)][0]) - 1
    outsider = callers[2].user_id
    assert by_key[(with_values, member.user_id)][0][rank] is not None
    assert by_key[(without, member.user_id)][0][rank] is not None
    assert by_key[(with_values, outsider)][0][rank] is None


async def test_concurrent_gets_share_round_trips_and_each_gets_its_own_answer(
    client: httpx.AsyncClient, db: Database, operator: Actor, member: Actor
) -> None:
    callers, _, urls = await _scene(client, db, operator, member)
    requests = [(caller, url) for caller in callers for url in urls] * 3

    async def get(caller: Actor, url: str) -> tuple[int, Any]:
        answer = await client.get(url, headers=caller.headers)
        return answer.status_code, answer.json()

    alone = {(caller.user_id, url): await get(caller, url) for caller, url in requests}
    statuses = sorted({status for status, _ in alone.values()})
    assert statuses == [200, 404]  # every caller and document was read once, alone

    sent = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal sent
        sent += "FROM documents JOIN document_versions" in statement

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        together = await asyncio.gather(*(get(caller, url) for caller, url in requests))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    for (caller, url), answer in zip(requests, together, strict=True):
        assert answer == alone[(caller.user_id, url)], (caller.email, url)
    # The first read goes alone; the others arrived while it was out, and share one or two.
    assert 2 <= sent <= len(requests) // 4, sent


async def test_a_lost_connection_answers_503_to_a_batch_and_the_next_reads_recover(
    client: httpx.AsyncClient, db: Database, settings: Settings, operator: Actor
) -> None:
    document = await file_with_fields(client, operator, {"Custodian": ("text", "J. Smith")})
    async with db.read() as session:
        project_id = (await session.get_one(Document, document)).project_id
    url = f"/api/v1/projects/{project_id}/documents/{document}"
    first = await client.get(url, headers=operator.headers)
    assert first.status_code == 200
    assert await drop_connections(settings) >= 1

    answers = await asyncio.gather(*(client.get(url, headers=operator.headers) for _ in range(8)))
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 503} and 503 in statuses, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["retry-after"] == "1"
    again = await asyncio.gather(*(client.get(url, headers=operator.headers) for _ in range(8)))
    assert [answer.status_code for answer in again] == [200] * 8
    assert all(answer.json() == first.json() for answer in again)


def test_a_read_left_out_on_an_abandoned_loop_does_not_hold_the_next_loops_reads() -> None:
    """An engine outlives event loops (CLI commands, tests); a loop closed while a read was
    out, without asyncio.run's clean-up that settles it, must not leave the next loop's
    reads waiting for that read's end."""

    async def run(statement: Any, parameters: Mapping[str, Any]) -> Rows:
        if parameters["id"] == 1:
            await asyncio.Event().wait()  # never answered
        return rows_of(parameters["id"])

    batcher = Batcher(run)
    abandoned = asyncio.new_event_loop()
    stuck = abandoned.create_task(batcher.execute(READ, {"id": 1}))
    abandoned.run_until_complete(asyncio.sleep(0.01))  # the read is out, and stays out
    assert not stuck.done()
    abandoned.close()

    async def on_the_next_loop() -> Rows:
        return await asyncio.wait_for(batcher.execute(READ, {"id": 2}), 5)

    assert asyncio.run(on_the_next_loop()) == rows_of(2)
    # Collected here, its "Task was destroyed but it is pending!" goes to this test's log.
    del stuck
    gc.collect()


async def _pages_scene(
    client: httpx.AsyncClient, db: Database, operator: Actor, member: Actor
) -> tuple[list[Actor], list[int], int, list[Document]]:
    """`_scene`, with three more documents in the first project and one in a folder of it;
    return the callers, the projects (and one that does not exist), the folder and the first
    project's documents in page order."""
    callers, document_ids, _ = await _scene(client, db, operator, member)
    async with db.read() as session:
        projects = [(await session.get_one(Document, d)).project_id for d in document_ids[:2]]
    first = projects[0]
    url = f"/api/v1/projects/{first}/documents"
    folder = await client.post(
        f"/api/v1/projects/{first}/folders", json={"name": "Pleadings"}, headers=operator.headers
    )
    assert folder.status_code == 201, folder.text
    folder_id = int(folder.json()["id"])
    for n in range(3):
        filed = await client.post(
            url, params={"fileName": f"{n}.txt"}, content=b"page %d" % n, headers=operator.headers
        )
        assert filed.status_code == 201, filed.text
    metadata = {"title": "In a folder", "folderId": folder_id}
    filed = await client.post(
        url,
        files={"file": ("f.pdf", b"%PDF f"), "metadata": (None, json.dumps(metadata))},
        headers=operator.headers,
    )
    assert filed.status_code == 201, filed.text
    async with db.read() as session:
        listed = (
            await session.execute(
                select(Document)
                .where(Document.project_id == first)
                .order_by(Document.updated_at, Document.id)
            )
        ).scalars()
        in_order = list(listed)
    return callers, [*projects, 10**9], folder_id, in_order


async def test_the_batched_page_read_answers_each_key_as_its_single_read(
    client: httpx.AsyncClient,
    db: Database,
    statements: StatementReader,
    operator: Actor,
    member: Actor,
) -> None:
    callers, projects, folder_id, in_order = await _pages_scene(client, db, operator, member)
    assert len(in_order) == 5
    since, after = in_order[1].updated_at, (in_order[1].updated_at, in_order[1].id)
    shapes: list[tuple[dict[str, bool], list[dict[str, Any]]]] = [
        (
            {"folder": False, "since": False, "after": False},
            [
                {"project_id": p, "user_id": c.user_id, "limit": limit}
                for c in callers
                for p in projects
                for limit in (2, 101)
            ],
        ),
        (
            {"folder": False, "since": True, "after": True},
            [
                {
                    "project_id": projects[0],
                    "user_id": c.user_id,
                    "limit": 101,
                    "changed_since": since,
                    "after_updated_at": after[0],
                    "after_id": after[1],
                }
                for c in callers
            ],
        ),
        (
            {"folder": True, "since": False, "after": False},
            [
                {"project_id": p, "user_id": c.user_id, "limit": 101, "folder_id": folder_id}
                for c in callers
                for p in projects
            ],
        ),
    ]
    for shape, keys in shapes:
        read, names = document_pages._page_read(**shape)
        keys.append(keys[0])  # the same read twice in one batch
        many = await statements.execute(
            read.many, {name: [key[name] for key in keys] for name in read.keys}
        )
        batched: list[list[tuple[Any, ...]]] = [[] for _ in keys]
        for row in many:
            batched[row[-1] - 1].append(tuple(row[:-1]))
        for key, rows in zip(keys, batched, strict=True):
            single = await statements.execute(read.single, key)
            assert rows == [tuple(row) for row in single], (shape, key)
        # And the answers differ where they should.
        by_id = names.index("document_id")
        pages = [[row[by_id] for row in rows] for rows in batched]
        ids = [d.id for d in in_order]
        if shape["since"]:
            assert pages[0] == ids[2:]
        elif shape["folder"]:
            assert pages[0] == ids[-1:] and pages[1] == [] and pages[2] == []
        else:
            # Operator: the first project by 2 and by 101, the second, the missing one.
            assert pages[0] == [ids[0], ids[0], ids[1]]  # two field values: two rows
            assert list(dict.fromkeys(pages[1])) == ids and len(pages[1]) == 6
            assert len(pages[2]) == len(pages[3]) == 1 and pages[2][0] not in ids
            assert pages[4] == pages[5] == []
    outsider = callers[2].user_id
    read, names = document_pages._page_read(folder=False, since=False, after=False)
    rank = names.index("rank")
    for caller, expected_rank in ((member.user_id, True), (outsider, False)):
        rows = await statements.execute(
            read.many, {"project_id": [projects[0]], "user_id": [caller], "limit": [101]}
        )
        assert rows and all((row[rank] is not None) is expected_rank for row in rows)


async def test_concurrent_pages_share_round_trips_and_each_gets_its_own_answer(
    client: httpx.AsyncClient, db: Database, operator: Actor, member: Actor
) -> None:
    callers, projects, folder_id, _ = await _pages_scene(client, db, operator, member)
    base = f"/api/v1/projects/{projects[0]}/documents"
    urls = [
        f"{base}?limit=2",
        f"{base}?limit=100",
        f"{base}/folder/{folder_id}",
        f"/api/v1/projects/{projects[1]}/documents",
        f"/api/v1/projects/{projects[2]}/documents",
    ]
    requests = [(caller, url) for caller in callers for url in urls] * 3

    async def get(caller: Actor, url: str) -> tuple[int, Any, str | None]:
        answer = await client.get(url, headers=caller.headers)
        return answer.status_code, answer.json(), answer.headers.get("link")

    alone = {(caller.user_id, url): await get(caller, url) for caller, url in requests}
    statuses = sorted({status for status, _, _ in alone.values()})
    assert statuses == [200, 404]
    assert alone[(operator.user_id, urls[0])][2] is not None  # a next page: the cursor too

    sent = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal sent
        sent += "JOIN LATERAL" in statement

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        together = await asyncio.gather(*(get(caller, url) for caller, url in requests))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    for (caller, url), answer in zip(requests, together, strict=True):
        assert answer == alone[(caller.user_id, url)], (caller.email, url)
    # Pages of one shape that arrived while one was out went together.
    assert sent >= 1
