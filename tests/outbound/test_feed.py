"""The change feed: commit order, deletions, access changes, long-polls, retention."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import event, make_url, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Change
from casefolio.domain import events
from casefolio.domain.pages import decode_cursor, encode_cursor
from casefolio.outbound import feed, runtime, sealing
from casefolio.outbound.signal import CHANNEL, outgoing, signal
from tests.factories import Actor
from tests.outbound.conftest import Matter, changes_since, feed_cursor, upload_file


async def test_changes_come_in_commit_order_with_deletions_and_pages(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    start = await feed_cursor(client, matter.reader)
    h = matter.writer.headers
    folder = (await client.post(matter.url("/folders"), json={"name": "F"}, headers=h)).json()["id"]
    doc = (
        await client.post(matter.url("/documents?fileName=a.txt"), content=b"a", headers=h)
    ).json()["id"]
    await client.post(
        matter.url(f"/documents/{doc}/replace?fileName=b.txt"), content=b"b", headers=h
    )
    await client.put(matter.url(f"/documents/{doc}/{folder}"), headers=h)
    versions = (await client.get(matter.url(f"/documents/{doc}/versions"), headers=h)).json()
    admin = matter.admin.headers
    gone = await client.delete(
        matter.url(f"/documents/{doc}/versions/{versions[0]['id']}"), headers=admin
    )
    assert gone.status_code == 204
    assert (await client.delete(matter.url(f"/documents/{doc}"), headers=admin)).status_code == 204

    filed = await client.post(
        matter.url("/documents"),
        files={
            "file": ("c.txt", b"c", "text/plain"),
            "metadata": (None, json.dumps({"folderId": folder}), "application/json"),
        },
        headers=h,
    )
    assert filed.status_code == 201, filed.text

    changes, end = await changes_since(client, matter.reader, start, limit=2)
    assert [c["type"] for c in changes] == [
        "folder.created",
        "document.created",
        "version.added",
        "document.moved",
        "version.deleted",
        "document.deleted",
        "document.created",
    ]
    # A document filed into a folder says which, as a move does.
    assert (changes[1]["folderId"], changes[6]["folderId"]) == (None, folder)
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {c["projectId"] for c in changes} == {str(matter.id)}
    assert changes[1]["documentId"] == doc and changes[3]["folderId"] == folder
    assert changes[4]["versionId"] == versions[0]["id"]
    # Nothing new: the same cursor comes back, and the page is empty.
    again, same = await changes_since(client, matter.reader, end)
    assert again == [] and same == end
    # The outsider sees none of it.
    theirs, _ = await changes_since(client, matter.outsider, start)
    assert theirs == []


API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _documented_types() -> list[str]:
    """The feed's types, in the order docs/api.md's "Change feed" lists them (each once: the
    list's notes name some of them again)."""
    text = API_DOC.read_text()
    listed = text[text.index("Types: `document.created`") :]
    listed = listed[: listed.index("Without `cursor`")]
    return list(dict.fromkeys(re.findall(r"`([a-z_]+\.[a-z_]+)`", listed)))


async def test_the_feed_serves_each_documented_type_and_no_other(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A type left out of the feed is a change a sync client never applies (a purged
    version it keeps listing); one let in is a change it was never told to expect."""
    documented = _documented_types()
    assert len(documented) == 18 and "version.purged" in documented
    start = await feed_cursor(client, matter.reader)
    by_type = {cls.type: cls for cls in events.DomainEvent.__subclasses__()}
    others = sorted(set(by_type) - set(documented))
    assert "project.member_set" in others and "settings.updated" in others
    emitted = [
        by_type[name](
            project_id=matter.id,
            document_id=1,
            user_id=matter.reader.user_id if name.startswith("project.access") else None,
        )
        for name in [*others, *documented]
    ]
    async with db.write() as session:
        events.emit(session, *emitted)
    changes, _ = await changes_since(client, matter.reader, start)
    assert [c["type"] for c in changes] == documented


async def test_losing_and_regaining_access_is_in_the_feed_of_that_user_only(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    start = await feed_cursor(client, matter.reader)
    h = operator.headers
    removed = await client.delete(matter.url(f"/users/{matter.reader.email}"), headers=h)
    assert removed.status_code in (200, 204), removed.text
    hidden = await client.post(matter.url("/documents?fileName=x.txt"), content=b"x", headers=h)
    assert hidden.status_code == 201
    changes, cursor = await changes_since(client, matter.reader, start)
    assert [(c["type"], c["projectId"]) for c in changes] == [
        ("project.access_lost", str(matter.id))
    ]
    # A team grant gives it back.
    team = (await client.post("/api/v1/teams", json={"name": "Readers"}, headers=h)).json()["id"]
    put = await client.put(f"/api/v1/teams/{team}/users/{matter.reader.email}", headers=h)
    assert put.status_code in (200, 204), put.text
    granted = await client.put(matter.url(f"/teams/{team}"), json={"role": "Read Only"}, headers=h)
    assert granted.status_code in (200, 204), granted.text
    changes, cursor = await changes_since(client, matter.reader, cursor)
    assert [c["type"] for c in changes] == ["project.access_granted"]
    # Removing the team's grant takes it away again; the writer (direct grant) keeps it.
    writer_start = await feed_cursor(client, matter.writer)
    revoked = await client.delete(matter.url(f"/teams/{team}"), headers=h)
    assert revoked.status_code in (200, 204), revoked.text
    changes, _ = await changes_since(client, matter.reader, cursor)
    assert [c["type"] for c in changes] == ["project.access_lost"]
    assert (await changes_since(client, matter.writer, writer_start))[0] == []


async def test_a_long_poll_returns_when_a_change_commits(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    cursor = await feed_cursor(client, matter.reader)
    answer: dict[str, Any] = {}

    async def poll() -> None:
        got = await client.get(
            "/api/v1/changes", params={"cursor": cursor, "wait": 30}, headers=matter.reader.headers
        )
        answer.update(got.json())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(poll)
        await anyio.wait_all_tasks_blocked()
        made = await client.post(
            matter.url("/documents?fileName=a.txt"), content=b"a", headers=matter.writer.headers
        )
        assert made.status_code == 201
    assert [c["type"] for c in answer["changes"]] == ["document.created"]
    assert answer["changes"][0]["documentId"] == made.json()["id"]


async def test_a_commit_of_a_change_wakes_this_process_at_once_and_an_audit_only_one_does_not(
    db: Database, matter: Matter
) -> None:
    """Long-polls of this process wait on its signal: a commit that wrote a change must
    wake them itself (other processes' re-checks come only every RECHECK_SECONDS), and a
    commit that wrote only an audit entry (a download) has nothing to wake them for."""
    for kind in ("one", "several"):
        before = signal.generation
        async with db.write() as session:
            made = [events.FolderCreated(project_id=matter.id, folder_id=n) for n in (1, 2)]
            events.emit(session, *(made[:1] if kind == "one" else made))
        assert signal.generation == before + 1, kind
    before = signal.generation
    async with db.write() as session:
        events.emit(session, events.ContentDownloaded(project_id=matter.id, document_id=1))
    assert signal.generation == before


async def test_a_long_poll_with_nothing_to_say_ends_empty_and_bad_input_is_400(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    cursor = await feed_cursor(client, matter.reader)
    got = await client.get(
        "/api/v1/changes", params={"cursor": cursor, "wait": 0.2}, headers=matter.reader.headers
    )
    assert got.status_code == 200 and got.json()["changes"] == []
    for params in ({"wait": 61}, {"cursor": "nonsense"}, {"limit": 0}):
        bad = await client.get("/api/v1/changes", params=params, headers=matter.reader.headers)
        assert bad.status_code == 400, (params, bad.text)
    # NaN is no number of seconds: it was refused as "less than or equal to 60".
    for nan in ("nan", "NaN", "inf"):
        bad = await client.get(
            "/api/v1/changes", params={"wait": nan}, headers=matter.reader.headers
        )
        assert bad.status_code == 400, bad.text
        assert "finite number" in bad.json()["detail"], bad.text


async def test_a_cursor_older_than_the_history_kept_is_410(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    old = await feed_cursor(client, matter.reader)
    for name in ("a", "b"):
        await upload_file(client, matter, name)
    await sealing.number_pending(db)  # as the worker's round does before it trims
    async with db.write() as session:
        for reader in feed.READERS:
            await feed.set_state(session, reader, 10**9)
        assert await feed.trim(session, retention=timedelta(0)) > 0
    got = await client.get("/api/v1/changes", params={"cursor": old}, headers=matter.reader.headers)
    assert got.status_code == 410
    assert "resync" in got.json()["detail"]
    fresh = await feed_cursor(client, matter.reader)
    assert (await changes_since(client, matter.reader, fresh))[0] == []
    # Without a cursor the feed starts at the oldest change kept, never 410.
    oldest = await client.get("/api/v1/changes", headers=matter.reader.headers)
    assert oldest.status_code == 200, oldest.text


async def _numbers(session: AsyncSession) -> list[int]:
    return list(await session.scalars(select(Change.seq).order_by(Change.seq)))


async def test_a_trim_keeps_what_the_search_indexer_has_not_queued(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    # The trim waited for the webhook fan-out only: an indexer that had fallen behind (one
    # failing for longer than the retention) skipped the versions of the changes trimmed.
    for name in ("a", "b", "c"):
        await upload_file(client, matter, name)
    await sealing.number_pending(db)
    async with db.write() as session:
        seqs = await _numbers(session)  # the matter's set-up, then the three uploads
        await feed.set_state(session, feed.FANNED_OUT, 10**9)
        await feed.set_state(session, feed.SEARCH_QUEUED, seqs[-3])
        assert await feed.trim(session, retention=timedelta(0)) == len(seqs) - 2
        assert await _numbers(session) == seqs[-2:]
        await feed.set_state(session, feed.SEARCH_QUEUED, seqs[-1])
        # Never the newest: the next change's number follows it.
        assert await feed.trim(session, retention=timedelta(0)) == 1
        assert await _numbers(session) == seqs[-1:]


async def test_a_trim_keeps_the_changes_younger_than_the_retention(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Every reader has passed them, but the retention is the history promised to clients
    that resync from a cursor: a trim that ignored it would 410 a cursor of minutes ago."""
    for name in ("a", "b"):
        await upload_file(client, matter, name)
    await sealing.number_pending(db)
    async with db.write() as session:
        seqs = await _numbers(session)
        for reader in feed.READERS:
            await feed.set_state(session, reader, 10**9)
        assert await feed.trim(session, retention=timedelta(days=1)) == 0
        assert await _numbers(session) == seqs
        assert await feed.state(session, feed.TRIMMED_THROUGH) == 0


async def test_a_cursor_at_the_last_change_trimmed_is_served_with_every_change_after_it(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A client that had read up to the trimmed-through number lost nothing: its cursor is
    served (no needless resync), and the changes after it come once."""
    await upload_file(client, matter, "a")
    cursor = await feed_cursor(client, matter.reader)
    for name in ("b", "c"):
        await upload_file(client, matter, name)
    await sealing.number_pending(db)
    (read_up_to,) = decode_cursor(cursor, (int,))
    async with db.write() as session:
        await feed.set_state(session, feed.FANNED_OUT, 10**9)
        await feed.set_state(session, feed.SEARCH_QUEUED, read_up_to)
        assert await feed.trim(session, retention=timedelta(0)) > 0
        assert await feed.state(session, feed.TRIMMED_THROUGH) == read_up_to
    changes, _ = await changes_since(client, matter.reader, cursor)
    assert [c["type"] for c in changes] == ["document.created"] * 2
    assert all(int(c["seq"]) > read_up_to for c in changes)


async def test_a_cursor_past_the_newest_change_is_410(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    # As after a restore from a backup older than the cursor: the restored history's next
    # changes take the numbers the cursor already passed.
    await upload_file(client, matter, "a")
    now = await feed_cursor(client, matter.reader)
    (newest,) = decode_cursor(now, (int,))
    ahead = encode_cursor((newest + 5,))
    got = await client.get(
        "/api/v1/changes", params={"cursor": ahead}, headers=matter.reader.headers
    )
    assert got.status_code == 410
    assert "restored" in got.json()["detail"] and "resync" in got.json()["detail"].lower()
    # The cursor of now is served, and so is the cursor of the newest change once it exists.
    assert (await changes_since(client, matter.reader, now))[0] == []
    await upload_file(client, matter, "b")
    changes, _ = await changes_since(client, matter.reader, now)
    assert [c["type"] for c in changes] == ["document.created"]


async def test_a_cursor_one_past_the_newest_change_is_410(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """The smallest cursor no server handed out is refused as well: served, the restored
    history's next change would take its number and be skipped."""
    now = await feed_cursor(client, matter.reader)
    (newest,) = decode_cursor(now, (int,))
    got = await client.get(
        "/api/v1/changes",
        params={"cursor": encode_cursor((newest + 1,))},
        headers=matter.reader.headers,
    )
    assert got.status_code == 410, got.text
    assert await feed_cursor(client, matter.reader) == now


async def test_a_change_after_a_trim_is_numbered_past_every_number_handed_out(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A trim removes rows, not numbers: the next change's number must follow the newest
    ever given, or a reader whose cursor is past it would never see that change."""
    for name in ("a", "b", "c"):
        await upload_file(client, matter, name)
    cursor = await feed_cursor(client, matter.reader)
    (newest,) = decode_cursor(cursor, (int,))
    async with db.write() as session:
        for reader in feed.READERS:
            await feed.set_state(session, reader, 10**9)
        assert await feed.trim(session, retention=timedelta(0)) > 0
    made = await upload_file(client, matter, "d")
    changes, _ = await changes_since(client, matter.reader, cursor)
    assert [(c["type"], c["documentId"]) for c in changes] == [("document.created", made)]
    assert int(changes[0]["seq"]) == newest + 1


_COMMIT = """
import sys, anyio
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import events
from casefolio.domain.pages import decode_cursor, encode_cursor

async def main() -> None:
    db = Database.open(Settings(database_url=sys.argv[1], data_dir=sys.argv[2]))
    async with db.write() as session:
        events.emit(session, events.FolderCreated(project_id=1, folder_id=1))
    await db.close()

anyio.run(main)
"""


async def test_a_commit_in_another_process_wakes_this_one(
    settings: Settings, database_url: str, is_postgres: bool, tmp_path: Any
) -> None:
    if not is_postgres:
        pytest.skip("across processes on SQLite, long-polls re-check the outbox every second")
    async with runtime.pg_listener(settings):
        assert await _woken_by_a_commit_elsewhere(database_url, tmp_path)


async def _woken_by_a_commit_elsewhere(database_url: str, tmp_path: Any) -> bool:
    """Whether a waiter here is woken by a change another process commits."""
    async with anyio.create_task_group() as tasks:
        woke: list[bool] = []

        async def wait() -> None:
            woke.append(await signal.wait(30))

        tasks.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        done = await anyio.run_process(
            [sys.executable, "-c", _COMMIT, database_url, str(tmp_path)], check=False
        )
        assert done.returncode == 0, done.stderr
    return woke == [True]


async def _listener_pids(admin: Any) -> list[int]:
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        runtime.LISTENER_NAME,
    )
    return [row["pid"] for row in rows]


async def test_the_listener_listens_again_after_its_connection_is_killed(
    settings: Settings,
    database_url: str,
    is_postgres: bool,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listening connection the server drops (a restart, an administrator's
    pg_terminate_backend) is opened again, and commits of other processes wake waiters."""
    if not is_postgres:
        pytest.skip("SQLite has no listening connection")
    monkeypatch.setattr(runtime, "RELISTEN_SECONDS", 0.01)
    url = make_url(settings.effective_database_url).set(drivername="postgresql")
    admin = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        async with runtime.pg_listener(settings):
            first = await _listener_pids(admin)
            assert len(first) == 1
            await admin.execute("SELECT pg_terminate_backend($1)", first[0])
            # Listening again, the listener wakes every waiter to look at what it missed.
            assert await signal.wait(20)
            now = await _listener_pids(admin)
            assert len(now) == 1 and now != first
            assert await _woken_by_a_commit_elsewhere(database_url, tmp_path)
    finally:
        await admin.close()


async def test_a_server_process_announces_its_commits_by_its_notifier_and_not_to_itself(
    db: Database, settings: Settings, is_postgres: bool
) -> None:
    """The app's LISTEN connection also sends this process's NOTIFYs: another process hears
    of a commit here, the committing session sends none itself, and the echo of this
    process's own NOTIFY does not wake it a second time."""
    if not is_postgres:
        pytest.skip("SQLite processes re-check the outbox instead of notifying")
    url = make_url(settings.effective_database_url).set(drivername="postgresql")
    other = await asyncpg.connect(url.render_as_string(hide_password=False))
    heard = anyio.Event()
    senders: list[int] = []
    sent_by_sessions: list[str] = []

    def hear(_conn: Any, pid: int, _channel: str, _payload: str) -> None:
        senders.append(pid)
        heard.set()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if "pg_notify" in sql:
            sent_by_sessions.append(sql)

    event.listen(db.engine.sync_engine, "before_cursor_execute", statement)
    try:
        await other.add_listener(CHANNEL, hear)
        with anyio.fail_after(10):
            while not outgoing.active:  # the app's notifier is up
                await anyio.lowlevel.checkpoint()
            before = signal.generation
            async with db.write() as session:
                events.emit(session, events.FolderCreated(project_id=1, folder_id=1))
            assert signal.generation == before + 1  # this process's waiters, directly
            await heard.wait()
        assert senders[0] != other.get_server_pid()
        assert sent_by_sessions == []
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", statement)
        await other.close()
    # The listener's own backend is the sender of its echo: it is not a change to wake for.
    before = signal.generation
    runtime._wake(41, other, 41, CHANNEL, "")
    assert signal.generation == before
    runtime._wake(41, other, 42, CHANNEL, "")
    assert signal.generation == before + 1


async def test_commits_during_the_notifiers_pause_share_one_notify(
    settings: Settings, is_postgres: bool
) -> None:
    """The notifier announces a commit at once, then pauses (NOTIFY_GAP_SECONDS): the
    commits marked meanwhile go out as one NOTIFY when the pause ends."""
    if not is_postgres:
        pytest.skip("SQLite has no NOTIFY")
    url = make_url(settings.effective_database_url).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    sender, receiver = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    received: list[int] = []
    arrived = anyio.Event()
    paused, resume = anyio.Event(), anyio.Event()

    def heard(*_: Any) -> None:
        received.append(1)
        arrived.set()

    async def pause(seconds: float) -> None:
        assert seconds == runtime.NOTIFY_GAP_SECONDS
        paused.set()
        await resume.wait()

    await receiver.add_listener(CHANNEL, heard)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(runtime._notify, sender, anyio.Event(), pause)
            await anyio.lowlevel.checkpoint()  # the notifier starts and waits for commits
            assert outgoing.active
            outgoing.committed()
            with anyio.fail_after(10):
                await arrived.wait()
                await paused.wait()
            assert len(received) == 1
            for _ in range(3):  # while the notifier pauses
                outgoing.committed()
            # Paused: nothing more is sent. The received count is checked after a round
            # trip on the receiver's connection, which delivers what arrived before it.
            await receiver.execute("SELECT 1")
            assert len(received) == 1
            arrived, paused = anyio.Event(), anyio.Event()
            resume.set()
            with anyio.fail_after(10):
                await arrived.wait()
            await receiver.execute("SELECT 1")
            assert len(received) == 2  # the three commits, one NOTIFY
            tasks.cancel_scope.cancel()
    finally:
        await receiver.close()
        await sender.close()
