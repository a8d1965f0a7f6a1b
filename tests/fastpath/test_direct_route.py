"""DirectRoute (fastpath/routes.py): the document read and the document lists, resolved by
casefolio instead of FastAPI, answer exactly as FastAPI's own resolution of the same
endpoints would.

The comparison is literal: the same endpoint, also mounted as a plain APIRoute under
another path, is asked the same questions (no token, a bad token, malformed and impossible
ids, another project's document, a document the caller cannot see, HEAD), and both answers
must agree in status, body and headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.routing import APIRoute

from casefolio.api.auth import authenticate
from casefolio.api.deps import PrincipalDep, state_of
from casefolio.api.ids import DocumentId, ProjectId
from casefolio.api.v1 import documents as documents_api
from casefolio.api.v1 import documents_content
from casefolio.api.v1 import folders as folders_api
from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import MAX_ID
from casefolio.fastpath.routes import DirectRoute, direct_get
from tests.factories import Actor, make_actor

TWIN = "/twin"
#: Headers whose values legitimately differ between two requests (budget left, time).
VARYING = {"ratelimit-remaining", "ratelimit-reset", "date"}


DIRECT = (
    documents_api.read_document,
    documents_api.list_documents,
    documents_api.list_folder_documents,
)


def _mount_twins(app: FastAPI, endpoints: Iterable[Any]) -> None:
    """Mount each endpoint's DirectRoute a second time under TWIN, as a plain APIRoute with
    the same declaration, so that FastAPI resolves it."""
    for endpoint in endpoints:
        [direct] = [
            route for route in app.router.routes if getattr(route, "endpoint", None) is endpoint
        ]
        assert isinstance(direct, DirectRoute)
        app.router.routes.append(
            APIRoute(
                TWIN + direct.path,
                endpoint,
                methods=list(direct.methods),
                status_code=direct.status_code,
                response_model=direct.response_model,
                dependencies=direct.dependencies,
                openapi_extra=direct.openapi_extra,
            )
        )


@pytest.fixture
def twin(app: FastAPI) -> None:
    """Mount the direct reads a second time, resolved by FastAPI (plain APIRoutes)."""
    _mount_twins(app, DIRECT)


def comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    # A twin's Link names the twin's path.
    headers = {k: v.replace(TWIN, "") for k, v in response.headers.items() if k not in VARYING}
    body = response.json() if response.content else None
    return response.status_code, body, headers


async def test_the_direct_route_answers_as_fastapi_would(
    twin: None, client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    created = await client.post(
        "/api/v1/projects", json={"name": "Doe v Roe"}, headers=operator.headers
    )
    project = created.json()["id"]
    other = (
        await client.post("/api/v1/projects", json={"name": "Other"}, headers=operator.headers)
    ).json()["id"]
    uploaded = await client.post(
        f"/api/v1/projects/{project}/documents",
        params={"fileName": "memo.pdf"},
        content=b"%PDF memo",
        headers=operator.headers,
    )
    document = uploaded.json()["id"]
    stranger = await make_actor(db)
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("GET", f"/projects/{project}/documents/{document}", operator.headers),
        ("HEAD", f"/projects/{project}/documents/{document}", operator.headers),
        ("GET", f"/projects/{project}/documents/{document}", {}),
        ("GET", f"/projects/{project}/documents/{document}", {"X-API-Token": "not-a-token"}),
        ("GET", f"/projects/{project}/documents/{document}", stranger.headers),
        ("GET", f"/projects/{other}/documents/{document}", operator.headers),
        ("GET", f"/projects/{project}/documents/{int(document) + 1}", operator.headers),
        ("GET", f"/projects/abc/documents/{document}", operator.headers),
        ("GET", "/projects/0/documents/-1", operator.headers),
        ("GET", f"/projects/{project}/documents/{MAX_ID + 1}", operator.headers),
        ("GET", f"/projects/{project}/documents/{2**70}", {}),
        ("GET", f"/projects/{project}/documents/1.5", operator.headers),
    ]
    statuses = []
    for method, path, headers in cases:
        direct = await client.request(method, "/api/v1" + path, headers=headers)
        resolved = await client.request(method, TWIN + "/api/v1" + path, headers=headers)
        assert comparable(direct) == comparable(resolved), (method, path)
        statuses.append(direct.status_code)
    # The cases reach every kind of answer, not only the easy ones.
    assert statuses == [200, 200, 401, 401, 404, 404, 404, 400, 400, 400, 401, 400]


async def test_the_direct_lists_answer_as_fastapi_would(
    twin: None, client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    h = operator.headers
    project = (await client.post("/api/v1/projects", json={"name": "Doe"}, headers=h)).json()["id"]
    base = f"/projects/{project}/documents"
    folder = (
        await client.post(f"/api/v1/projects/{project}/folders", json={"name": "F"}, headers=h)
    ).json()["id"]
    for i in range(3):
        await client.post(
            f"/api/v1{base}", params={"fileName": f"d{i}.pdf"}, content=b"%PDF", headers=h
        )
    first = await client.get(f"/api/v1{base}?limit=2", headers=h)
    cursor = first.headers["link"].split("cursor=")[1].split(">")[0]
    stranger = await make_actor(db)
    cases: list[tuple[str, dict[str, str]]] = [
        (f"{base}", h),
        (f"{base}?limit=2", h),
        (f"{base}?limit=2&cursor={cursor}", h),
        (f"{base}?limit=1&limit=2&afterDate=2020-01-01", h),
        (f"{base}?afterDate=2020-01-01T00:00:00Z&limit=1", h),
        (f"{base}/folder/{folder}", h),
        (f"{base}/folder/{folder}?limit=5&afterDate=2020-01-01", h),
        (f"{base}", {}),
        (f"{base}?limit=0", {}),
        (f"{base}", stranger.headers),
        (f"{base}?limit=0", h),
        (f"{base}?limit=abc&cursor=***&afterDate=x", h),
        (f"{base}?limit=1001", h),
        (f"{base}?cursor=" + "a" * 600, h),
        (f"{base}?afterDate=" + "1" * 70, h),
        (f"{base}?afterDate=yesterday", h),
        (f"{base}?cursor=abc", h),
        ("/projects/abc/documents?limit=0", h),
        (f"{base}/folder/x?limit=-1&afterDate=" + "2" * 70, h),
        (f"{base}/folder/{int(folder) + 1000}", h),
    ]
    statuses = []
    # (Within the caller's rate limit of 50 a minute: one method each.)
    for index, (path, headers) in enumerate(cases):
        method = "HEAD" if index == 1 else "GET"
        direct = await client.request(method, "/api/v1" + path, headers=headers)
        resolved = await client.request(method, TWIN + "/api/v1" + path, headers=headers)
        assert comparable(direct) == comparable(resolved), (method, path)
        statuses.append(direct.status_code)
    assert set(statuses) == {200, 400, 401, 404}, statuses


UPLOADS = (documents_content.upload_document, documents_content.replace_document)
#: What two uploads of the same bytes legitimately answer differently.
FILED_NOW = {"id", "documentId", "number", "createdAt", "updatedAt"}


def _without_filed_now(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_filed_now(v) for k, v in value.items() if k not in FILED_NOW}
    if isinstance(value, list):
        return [_without_filed_now(v) for v in value]
    return value


@pytest.fixture
def upload_twin(app: FastAPI) -> None:
    """Mount the upload routes a second time, resolved by FastAPI (plain APIRoutes)."""
    _mount_twins(app, UPLOADS)


async def test_the_direct_uploads_answer_as_fastapi_would(
    upload_twin: None, client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    h = operator.headers
    project = (await client.post("/api/v1/projects", json={"name": "P"}, headers=h)).json()["id"]
    other = (await client.post("/api/v1/projects", json={"name": "O"}, headers=h)).json()["id"]
    held = await client.post(
        f"/api/v1/projects/{project}/documents?fileName=held.txt", content=b"held", headers=h
    )
    document = held.json()["id"]
    stranger = await make_actor(db)
    new = f"/projects/{project}/documents"
    replace = f"/projects/{project}/documents/{document}/replace"
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        (new + "?fileName=a.txt", b"alpha", h),
        (new + "?fileName=a.txt&rejectDuplicate=true", b"held", h),
        (new + "?fileName=a.txt&rejectDuplicate=perhaps", b"alpha", h),
        (new, b"no name", h),
        (new + "?fileName=a.txt", b"alpha", {}),
        (new + "?fileName=a.txt", b"alpha", {"X-API-Token": "not-a-token"}),
        (new + "?fileName=a.txt", b"alpha", stranger.headers),
        ("/projects/abc/documents?fileName=a.txt&rejectDuplicate=perhaps", b"alpha", h),
        (f"/projects/{MAX_ID + 1}/documents?fileName=a.txt", b"alpha", {}),
        (replace + "?fileName=b.txt", b"beta", h),
        (f"/projects/{other}/documents/{document}/replace?fileName=b.txt", b"beta", h),
        (f"/projects/{project}/documents/x/replace?fileName=b.txt", b"beta", h),
        (replace + "?fileName=b.txt", b"beta", stranger.headers),
    ]
    statuses = []
    for path, body, headers in cases:
        direct = await client.post("/api/v1" + path, content=body, headers=headers)
        resolved = await client.post(TWIN + "/api/v1" + path, content=body, headers=headers)
        status, answer, answered_headers = comparable(direct)
        assert (status, _without_filed_now(answer), answered_headers) == (
            resolved.status_code,
            _without_filed_now(comparable(resolved)[1]),
            comparable(resolved)[2],
        ), path
        statuses.append(status)
    # The cases reach every kind of answer, not only the easy ones.
    assert statuses == [201, 409, 400, 400, 401, 401, 404, 400, 401, 201, 404, 400, 404]


@pytest.fixture
def folder_twin(app: FastAPI) -> None:
    """Mount the folder create a second time, resolved by FastAPI (a plain APIRoute)."""
    _mount_twins(app, [folders_api.create_folder])


async def test_the_direct_folder_create_answers_as_fastapi_would(
    folder_twin: None, client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    h = operator.headers
    project = (await client.post("/api/v1/projects", json={"name": "P"}, headers=h)).json()["id"]
    taken = await client.post(
        f"/api/v1/projects/{project}/folders", json={"name": "Taken"}, headers=h
    )
    assert taken.status_code == 201
    stranger = await make_actor(db)
    json_type = {"Content-Type": "application/json"}
    folders = f"/projects/{project}/folders"
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        (folders, b'{"name": "Pleadings"}', h | json_type),
        (folders, b'{"name": "Taken"}', h | json_type),
        (
            folders,
            b'{"name": "Sub", "parentId": "%s"}' % taken.json()["id"].encode(),
            h | json_type,
        ),
        (folders, b'{"name": "Sub", "parentId": "999999"}', h | json_type),
        (folders, b'{"name": "Sub", "parentId": 1.5}', h | json_type),
        (folders, b'{"name": ""}', h | json_type),
        (folders, b'{"name": "a/b"}', h | json_type),
        (folders, b'{"name": "nul\\u0000"}', h | json_type),
        (folders, b'{"name": 5}', h | json_type),
        (folders, b'{"name": "x", "other": 1}', h | json_type),
        (folders, b'{"name": "x"', h | json_type),
        (folders, b'{"name": "x"', json_type),
        (folders, b"", h | json_type),
        (folders, b'{"name": "NoType"}', h),
        (folders, b'{"name": "Plain"}', h | {"Content-Type": "text/plain"}),
        (folders, b'{"name": "Problem"}', h | {"Content-Type": "application/problem+json"}),
        (folders, b'{"name": "x"}', json_type),
        (folders, b'{"name": "x"}', {"X-API-Token": "not-a-token"} | json_type),
        (folders, b'{"name": "x"}', stranger.headers | json_type),
        ("/projects/abc/folders", b'{"name": 5}', h | json_type),
        (f"/projects/{MAX_ID + 1}/folders", b'{"name": "x"}', json_type),
    ]
    statuses = []
    for path, body, headers in cases:
        direct = await client.post("/api/v1" + path, content=body, headers=headers)
        if direct.status_code == 201:  # the twin makes the next one: another name, same answer
            body = body.replace(b'"name": "', b'"name": "twin ')
        resolved = await client.post(TWIN + "/api/v1" + path, content=body, headers=headers)
        status, answer, answered_headers = comparable(direct)
        twin_status, twin_answer, twin_headers = comparable(resolved)
        if status == 201:  # the names differ by "twin ", and the lengths with them
            assert "twin " + answer["name"] == twin_answer["name"]
            answer, twin_answer = (
                {k: v for k, v in a.items() if k != "name"} for a in (answer, twin_answer)
            )
            answered_headers.pop("content-length")
            twin_headers.pop("content-length")
        assert (status, _without_filed_now(answer), answered_headers) == (
            twin_status,
            _without_filed_now(twin_answer),
            twin_headers,
        ), (path, body)
        statuses.append(status)
    # The cases reach every kind of answer, not only the easy ones.
    assert statuses == [
        201, 409, 201, 404, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 201,
        401, 401, 404, 400, 401,
    ]  # fmt: skip


async def test_a_bad_id_is_named_after_authentication_as_fastapi_orders_them(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    refused = await client.get("/api/v1/projects/0/documents/x", headers=operator.headers)
    assert refused.status_code == 400
    fields = {error["field"] for error in refused.json()["errors"]}
    assert fields == {"projectId", "documentId"}
    assert refused.headers["ratelimit-limit"]  # the caller was charged: authenticated first


def test_the_direct_route_is_documented_as_declared(tmp_path: Any) -> None:
    spec = create_app(Settings(data_dir=tmp_path)).openapi()
    operation = spec["paths"]["/api/v1/projects/{projectId}/documents/{documentId}"]["get"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("projectId", "path"),
        ("documentId", "path"),
    ]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/DocumentOut")
    assert "401" in operation["responses"]


async def _other_dependency(request: Request) -> int:
    return 1


async def _with_header(
    project_id: ProjectId, who: PrincipalDep, h: Annotated[str, Header()] = ""
) -> Response:
    return Response()


async def _with_other_dependency(
    project_id: ProjectId, who: PrincipalDep, n: Annotated[int, Depends(_other_dependency)]
) -> Response:
    return Response()


async def _of_query(q: Annotated[str, Query()] = "") -> str:
    return q


async def _with_query_dependency(
    project_id: ProjectId, who: PrincipalDep, q: Annotated[str, Depends(_of_query)]
) -> Response:
    return Response(q)


async def _fine(
    project_id: ProjectId, document_id: DocumentId, request: Request, who: PrincipalDep
) -> Response:
    state_of(request)
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "refusal"),
    [
        (_with_header, "no header or cookie parameter"),
        (_with_other_dependency, "query parameters alone"),
    ],
)
def test_a_direct_route_refuses_what_it_would_not_resolve(endpoint: Any, refusal: str) -> None:
    router = APIRouter()
    with pytest.raises(TypeError, match=refusal):
        direct_get(router, "/projects/{projectId}")(endpoint)


async def _unnamed_caller(project_id: ProjectId) -> Response:
    return Response(str(project_id))


async def test_a_caller_required_by_the_routes_dependencies_alone_is_still_authenticated(
    app: FastAPI, client: httpx.AsyncClient, operator: Actor
) -> None:
    router = APIRouter()
    direct_get(router, "/probe/{projectId}", dependencies=[Depends(authenticate)])(_unnamed_caller)
    app.router.routes[:0] = router.routes
    assert (await client.get("/probe/7")).status_code == 401
    answered = await client.get("/probe/7", headers=operator.headers)
    assert answered.status_code == 200 and answered.text == "7"
    assert answered.headers["ratelimit-limit"]


def test_a_direct_route_of_the_supported_shape_is_made() -> None:
    router = APIRouter()
    direct_get(router, "/projects/{projectId}/documents/{documentId}")(_fine)
    [route] = router.routes
    assert isinstance(route, DirectRoute)
    direct_get(router, "/projects/{projectId}/q")(_with_query_dependency)
    assert isinstance(router.routes[-1], DirectRoute)
