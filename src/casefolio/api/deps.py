"""Dependencies shared by both dialects, named as types so handler signatures read as data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.auth import authenticate
from casefolio.api.ids import ProjectId
from casefolio.api.state import AppState
from casefolio.db.models import Document
from casefolio.domain import access, documents, holds
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Held
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.casefolio
    return state


# async: FastAPI would run a plain function in its thread pool, a thread hop per request.
async def app_state(request: Request) -> AppState:
    return state_of(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session: a writer commits before the response is sent, or rolls
    back; a reader has nothing to commit."""
    db = state_of(request).db
    if request.method in _READ_METHODS:
        async with db.read() as session:
            yield session
        return
    try:
        async with db.writer() as session:
            yield session
            await session.commit()
    except Held as refused:
        # The refused change rolled back; the refusal itself is audited on its own.
        await holds.record_refusal(db, refused)
        raise


# scope="function": the commit runs before the response goes out, so a failed commit is an
# error response, never a 201 for a row that did not land.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
StateDep = Annotated[AppState, Depends(app_state)]


def project_scope(capability: Capability) -> Callable[..., Awaitable[ProjectScope]]:
    """Given a capability, return a dependency that makes the caller's scope on {projectId}
    (access.scope, on the request's session) or answers 404/403."""

    async def dependency(
        project_id: ProjectId, session: SessionDep, who: PrincipalDep
    ) -> ProjectScope:
        return await access.scope(session, who, project_id, capability)

    return dependency


ReadableProject = Annotated[ProjectScope, Depends(project_scope(Capability.DOCUMENTS_READ))]
FolderWritableProject = Annotated[ProjectScope, Depends(project_scope(Capability.FOLDERS_WRITE))]
AdministeredProject = Annotated[ProjectScope, Depends(project_scope(Capability.SETTINGS_MANAGE))]


async def check_may_upload(state: AppState, who: Principal, project_id: int) -> None:
    """Refuse an upload to this project before its body streams in (both the API and the
    web pages' uploads).

    The filing transaction checks again, and that check counts; so a recent yes for this
    user and project is taken from memory (api/grants.py).
    """
    if state.upload_grants.allows(who.user_id, project_id):
        return
    async with state.db.read() as session:
        await access.scope(session, who, project_id, Capability.DOCUMENTS_WRITE)
    state.upload_grants.remember(who.user_id, project_id)


async def upload_project_id(project_id: ProjectId, state: StateDep, who: PrincipalDep) -> int:
    """{projectId}, once the caller may upload there (check_may_upload)."""
    await check_may_upload(state, who, project_id)
    return project_id


UploadProjectId = Annotated[int, Depends(upload_project_id)]


async def check_writable_document(
    state: AppState, who: Principal, document_id: int, project_id: int | None = None
) -> Document:
    """Check write access before an upload body streams in, on a short read session of its
    own, so that SQLite's write lock is not held for the length of the upload."""
    async with state.db.read() as session:
        _, document = await documents.load_scoped(
            session, who, document_id, Capability.DOCUMENTS_WRITE, project_id=project_id
        )
        return document
