"""The change feed: what changed in the caller's projects, deletions and access included."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Query, Response

from casefolio.api.deps import PrincipalDep, StateDep
from casefolio.api.ids import query_id
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import ApiModel, Timestamp, WireId
from casefolio.db.reads import Reader
from casefolio.domain.pages import MAX_LIMIT
from casefolio.domain.principal import Principal
from casefolio.outbound import feed

router = v1_router("changes")


class ChangeOut(ApiModel):
    seq: int
    type: str
    project_id: WireId | None
    document_id: WireId | None = None
    version_id: WireId | None = None
    folder_id: WireId | None = None
    at: Timestamp


class ChangesOut(ApiModel):
    changes: list[ChangeOut]
    next_cursor: str
    has_more: bool


class CursorOut(ApiModel):
    cursor: str


@router.get(
    "/changes",
    response_model=ChangesOut,
    summary="Changes since a cursor, in commit order (deletions and access changes included)",
    responses={
        410: {
            "description": "The cursor is older than the history kept, or past the newest "
            "change (the installation was restored from an earlier backup): resync."
        }
    },
)
async def list_changes(
    state: StateDep,
    who: PrincipalDep,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="A nextCursor, or GET /changes/cursor; none: oldest."),
    ] = None,
    project_id: Annotated[int | None, query_id("projectId")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    wait: Annotated[
        float,
        # NaN is refused as no number, not as "less than or equal to 60".
        Query(
            ge=0, le=feed.MAX_WAIT, allow_inf_nan=False, description="Seconds to wait for a change."
        ),
    ] = 0,
) -> Response:
    after = feed.seq_of(cursor) if cursor else None
    # Integrations poll the same cursor again and again: through the read model (fastpath/),
    # as the document list, the answer kept while the database is unchanged
    # (fastpath/answers.py) and serialized once.
    key = (_answer, who, after, project_id, limit)
    read = partial(_answer, who=who, after=after, project_id=project_id, limit=limit)
    body, _ = await feed.wait_for(
        state.db,
        partial(state.reads.remembered, key, read, size=_weight),
        empty=lambda answer: not answer[1],
        wait=wait,
    )
    return Response(body, media_type="application/json")


async def _answer(
    db: Reader, *, who: Principal, after: int | None, project_id: int | None, limit: int
) -> tuple[bytes, int]:
    """A page of the feed as its answer's body, and how many changes it holds."""
    page = await feed.read(db, who=who, after=after, project_id=project_id, limit=limit)
    shown = ChangesOut(
        changes=[ChangeOut.model_validate(c) for c in page.changes],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )
    return shown.model_dump_json(by_alias=True).encode(), len(page.changes)


def _weight(answer: tuple[bytes, int]) -> int:
    return len(answer[0])


@router.get(
    "/changes/cursor", response_model=CursorOut, summary="The cursor of now, to start a feed"
)
async def current_cursor(state: StateDep, _: PrincipalDep) -> CursorOut:
    return CursorOut(cursor=feed.cursor_of(await feed.current(state.db)))
