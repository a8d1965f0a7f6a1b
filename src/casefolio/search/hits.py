"""A page of search hits as the caller sees them: given the page's keys (version id,
document id, score), each match's document view, version, project and folder names, and
the snippet of its text around the match."""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from sqlalchemy import BindParameter, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Document, DocumentVersion, Folder, Project
from casefolio.domain import documents
from casefolio.domain.documents import DocumentView
from casefolio.domain.rows import VersionRow, row_of
from casefolio.search import fulltext, words
from casefolio.search.extract import MARK_END, MARK_START
from casefolio.search.fulltext import CONFIG, FTS, FTS_NAME, TEXTS

SNIPPET_WORDS = 24


@dataclass(frozen=True)
class Hit:
    view: DocumentView
    #: The version whose text matched (the current one unless `all_versions`).
    version: VersionRow
    score: float
    #: HTML: the text around the match, escaped, the matched words in <mark>…</mark>.
    snippet: str
    project_name: str
    folder_name: str | None


async def of_rows(
    session: AsyncSession, rows: Sequence[Any], compiled: str | None, postgres: bool
) -> list[Hit]:
    """Given a page's rows (version_id, document_id, score) and the compiled query (None: no
    snippets), return their hits in the rows' order, with a statement per kind of thing."""
    if not rows:
        return []
    version_ids = [int(r.version_id) for r in rows]
    versions = {
        v.id: row_of(VersionRow, v)
        for v in await session.scalars(
            select(DocumentVersion).where(DocumentVersion.id.in_(version_ids))
        )
    }
    docs = {
        d.id: d
        for d in await session.scalars(
            select(Document).where(Document.id.in_({int(r.document_id) for r in rows}))
        )
    }
    views = {v.document.id: v for v in await documents.views(session, list(docs.values()))}
    projects = await _names(session, Project, {d.project_id for d in docs.values()})
    folders = await _names(session, Folder, {d.folder_id for d in docs.values() if d.folder_id})
    # A snippet is the file's own text: only where the project lets content leave
    # (downloadViaApi), as the file itself does. Finding the document reveals no more than
    # its listing does.
    shown = await _downloadable(session, {d.project_id for d in docs.values()})
    quoted = [int(r.version_id) for r in rows if docs[int(r.document_id)].project_id in shown]
    snippets = await _snippets(session, quoted, compiled, postgres) if compiled and quoted else {}
    hits = []
    for r in rows:
        view = views[int(r.document_id)]
        document = view.document
        hits.append(
            Hit(
                view,
                versions[int(r.version_id)],
                float(r.score),
                snippets.get(int(r.version_id), ""),
                projects[document.project_id],
                folders.get(document.folder_id) if document.folder_id is not None else None,
            )
        )
    return hits


async def _names(
    session: AsyncSession, model: type[Project] | type[Folder], ids: set[Any]
) -> dict[int, str]:
    if not ids:
        return {}
    found = await session.execute(select(model.id, model.name).where(model.id.in_(ids)))
    return {int(i): str(name) for i, name in found}


async def _downloadable(session: AsyncSession, ids: set[int]) -> set[int]:
    allowed = select(Project.id).where(Project.id.in_(ids), Project.download_via_api.is_(True))
    return set(await session.scalars(allowed))


async def _snippets(
    session: AsyncSession, version_ids: list[int], compiled: str, postgres: bool
) -> dict[int, str]:
    ids: BindParameter[Any] = bindparam("ids", expanding=True)
    if postgres:
        # ShortWord=2 (bytes; default 3): a fragment grows around its match by words longer
        # than that only, and a Chinese or Japanese word is one character of 3 or 4 bytes.
        options = (
            f'StartSel="{MARK_START}", StopSel="{MARK_END}", MaxWords={SNIPPET_WORDS}, '
            f"MinWords={SNIPPET_WORDS // 2}, ShortWord=2, MaxFragments=2, "
            'FragmentDelimiter=" … "'
        )
        statement = select(
            TEXTS.c.version_id,
            func.ts_headline(
                CONFIG, TEXTS.c.text, fulltext.tsquery(bindparam("q")), bindparam("options")
            ),
        ).where(TEXTS.c.version_id.in_(ids))
        parameters = {"q": compiled, "ids": version_ids, "options": options}
    else:
        statement = select(
            FTS.c.rowid,
            func.snippet(FTS_NAME, 0, bindparam("start"), bindparam("end"), "…", SNIPPET_WORDS),
        ).where(FTS_NAME.op("MATCH")(bindparam("q")), FTS.c.rowid.in_(ids))
        parameters = {"q": compiled, "ids": version_ids, "start": MARK_START, "end": MARK_END}
        rows = await _off_the_event_loop(session, statement, parameters)
        return {int(i): _marked(s or "") for i, s in rows}
    return {int(i): _marked(s or "") for i, s in await session.execute(statement, parameters)}


async def _off_the_event_loop(
    session: AsyncSession, statement: Select[Any], parameters: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """SQLite: run a read on a connection of its own in a worker thread. FTS5's snippet()
    of a long text full of the searched word is seconds of CPU in one call, and the
    session's statements run on the event loop (fastpath/sqlite_inline.py), where it would
    hold every other request of the process that long; sqlite3 lets go of the GIL while a
    statement runs."""
    engine = session.get_bind().engine
    expanded = statement.compile(dialect=engine.dialect).construct_expanded_state(parameters)
    path = engine.url.database or ""

    def read() -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        try:
            return conn.execute(expanded.statement, expanded.positional_parameters or ()).fetchall()
        finally:
            conn.close()

    return await anyio.to_thread.run_sync(read)


def _marked(raw: str) -> str:
    # Without the breaks put into Chinese and Japanese (search/words.py): the matched
    # characters of one word are one mark.
    shown = raw.replace(words.WORD_BREAK, "").replace(MARK_END + MARK_START, "")
    escaped = html.escape(" ".join(shown.split()), quote=False)
    return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
