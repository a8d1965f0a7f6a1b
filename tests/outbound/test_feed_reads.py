"""The feed's reads: answers kept while the database is unchanged (fastpath/answers.py) never
outlive a commit, and a page read while the history is trimmed is refused, not short."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Executable, delete

from casefolio.db.engine import Database
from casefolio.db.models import ProjectUserGrant
from casefolio.db.reads import Rows
from casefolio.domain import events
from casefolio.domain.errors import Gone
from casefolio.domain.principal import Principal
from casefolio.outbound import feed, sealing
from tests.outbound.conftest import Matter


async def _page(client: httpx.AsyncClient, matter: Matter, cursor: str) -> httpx.Response:
    got = await client.get(
        "/api/v1/changes", params={"cursor": cursor}, headers=matter.reader.headers
    )
    assert got.status_code == 200, got.text
    return got


async def _folder_created(db: Database, project_id: int, folder_id: int) -> None:
    """A change committed on a connection of its own, as another process would."""
    async with db.write() as session:
        events.emit(session, events.FolderCreated(project_id=project_id, folder_id=folder_id))
    await sealing.number_pending(db)


async def test_a_page_asked_again_shows_what_was_committed_and_hides_what_was_taken_away(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start = (await client.get("/api/v1/changes/cursor", headers=matter.reader.headers)).json()[
        "cursor"
    ]
    first = await _page(client, matter, start)
    assert first.json()["changes"] == []
    assert (await _page(client, matter, start)).content == first.content

    await _folder_created(db, matter.id, 7001)
    changed = (await _page(client, matter, start)).json()
    assert [(c["type"], c["folderId"]) for c in changed["changes"]] == [("folder.created", "7001")]

    # The grant goes by another connection (no change of its own is recorded), then the
    # project changes again: the same cursor no longer shows that project's changes.
    async with db.write() as session:
        await session.execute(
            delete(ProjectUserGrant).where(
                ProjectUserGrant.project_id == matter.id,
                ProjectUserGrant.user_id == matter.reader.user_id,
            )
        )
    await _folder_created(db, matter.id, 7002)
    assert (await _page(client, matter, start)).json()["changes"] == []
    admins = await client.get(
        "/api/v1/changes", params={"cursor": start}, headers=matter.admin.headers
    )
    assert [c["folderId"] for c in admins.json()["changes"]] == ["7001", "7002"]


class _TrimmedWhileReading:
    """A reader that runs each statement in a read of its own, as the fast path's reader
    does, and lets the history be trimmed on another connection just after the page's rows
    were read: the interleaving a busy server can produce."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.trimmed = 0

    async def execute(self, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
        async with self._db.read() as session:
            rows: Rows = (await session.execute(statement, parameters)).all()
        if "limit" in parameters and not self.trimmed:
            async with self._db.write() as other:
                for reader in feed.READERS:
                    await feed.set_state(other, reader, 10**9)
                self.trimmed = await feed.trim(other, retention=timedelta(0))
        return rows

    @property
    def dialect_name(self) -> str:
        return self._db.engine.dialect.name

    async def execute_batched(self, read: Any, parameters: Mapping[str, Any]) -> Rows:
        raise AssertionError("the feed reads no batched reads")


async def test_a_cursor_the_history_is_trimmed_past_while_it_is_read_is_410(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start = (await client.get("/api/v1/changes/cursor", headers=matter.reader.headers)).json()[
        "cursor"
    ]
    for n in (1, 2, 3):
        await _folder_created(db, matter.id, n)
    reader = Principal(matter.reader.user_id, matter.reader.email, "Reader", False)
    after = feed.seq_of(start)
    async with db.read() as session:
        untouched = await feed.read(session, who=reader, after=after, project_id=None, limit=100)
    assert [c.folder_id for c in untouched.changes] == [1, 2, 3]
    runner = _TrimmedWhileReading(db)
    with pytest.raises(Gone):
        # The rows were read before the trim; handing them out with a cursor past the
        # trimmed ones would look complete and not be.
        await feed.read(runner, who=reader, after=after, project_id=None, limit=100)
    assert runner.trimmed > 0
