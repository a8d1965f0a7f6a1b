"""Property-based fuzzing of the OpenAPI document: schemathesis (every check) against a real
`casefolio serve` on the suite's database, bounded in examples and time.

Every failure schemathesis reports must be listed in ACCEPTED below with the reason it is
not (yet) a defect; anything else fails the test, with schemathesis's own report attached.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

pytestmark = pytest.mark.slow

ST = [sys.executable, "-m", "schemathesis.cli"]  # the `st` command of this environment
MAX_EXAMPLES = 10  # per operation and phase
MAX_SECONDS = 60  # for the whole run: fuzzing and stateful phases repeat until it is spent
SEED = 19

# Operations that take the fuzzer's own access away, after which every other operation
# answers 401/403 and nothing more is tested: revoking the calling token (DELETE /tokens
# revokes the token it is called with), changing or revoking a token by id (the fuzzer's is
# id 1), and PATCH /settings, which can switch the integrations API off. Their behaviour is
# covered by tests/api/v1/test_tokens.py and test_settings.py.
LOCKOUTS = (
    "DELETE /api/v1/tokens",
    "DELETE /api/v1/tokens/{tokenId}",
    "PATCH /api/v1/tokens/{tokenId}",
    "PATCH /api/v1/settings",
)

# Failures accepted, as (schemathesis code, operation pattern, why). Most belong to issue 19
# items that another branch fixes in src/casefolio/api/ (h19a: items 9 and 10); they go from
# this list once that lands. "Stateful tests" is how schemathesis names its multi-step phase,
# whose failures repeat the per-operation ones listed here.
_LISTS = r"GET /api/v1/(projects|teams|templates|tokens|users)(/\{\w+\}/(\w+))?(/\{\w+\}/versions)?"
_V1_CREATES = r"POST /api/v1/(users|teams|templates|projects/\{projectId\}/(folders|fields))"
ACCEPTED: list[tuple[str, str, str]] = [
    # Issue 19 item 9 (h19a): routes that overlap advertise each other's methods in `Allow`.
    ("ST205", r"OPTIONS /api/v1/.*", "Allow lists methods of overlapping routes (item 9)"),
    (
        "ST204",
        r"PUT /api/v1/projects/\{projectId\}/documents/folder/\{folderId\}",
        "PUT reaches the move route documents/{documentId}/{folderId} (item 9)",
    ),
    # Issue 19 item 10 (h19a): the OpenAPI document does not yet say all the server does.
    ("ST103", r".* /api/v3/.*|Stateful tests", "v3 operations list only 200/201 (item 10)"),
    ("ST103", _V1_CREATES, "409 (name or e-mail taken) is not documented (item 10)"),
    (
        "ST103",
        r"DELETE /api/v1/projects/\{projectId\}/documents/\{documentId\}/versions/\{versionId\}",
        "409 (the only version of a document) is not documented (item 10)",
    ),
    ("ST105", r"GET .*/content", "downloads are documented as application/octet-stream only"),
    ("ST202", _LISTS, "the cursor's format is not in the schema (item 10)"),
    ("ST202", r"GET /api/v1/projects/\{projectId\}/documents.*", "afterDate's format (item 10)"),
    ("ST202", r".* /api/v1/.*/versions/\{versionId\}.*", "versionId's format (item 10)"),
    (
        "ST202",
        r"(POST|PATCH) /api/v1/(projects|teams|templates|tokens|users)(/\{projectId\})?"
        r"|POST /api/v1/projects/\{projectId\}/(folders|fields)"
        r"|PATCH /api/v1/projects/\{projectId\}/documents/\{documentId\}",
        "non-empty names and titles, field types, at least one user: not in the schema (item 10)",
    ),
    (
        "ST202",
        r"POST /api/v1/tokens",
        "a token's expiresAt must lie in the future: a rule of time no schema can state",
    ),
    (
        "ST202",
        r"PUT /api/v1/projects/\{projectId\}/(teams|users)/.*",
        "the role names are not an enum in the schema (item 10)",
    ),
    (
        "ST202",
        r"PUT /api/v1/projects/\{projectId\}/documents/\{documentId\}/\{folderId\}",
        "folderId is an id or `root`, not any string (item 10)",
    ),
    (
        "ST202",
        r"POST /api/v1/projects/\{projectId\}/documents.*|POST /api/v3/.*/attachments",
        "the multipart body's required `file` part is not in the schema (item 10)",
    ),
    (
        "ST202",
        r"GET /api/v3/(documents|projects)",
        "offset/pageSize are strings of up to 20 characters in the schema, integers of at"
        " most 18 digits to the server: 20 zeros are refused (item 10)",
    ),
    ("ST202", r"PATCH /api/v3/documents/.*", "a PATCH body is required, not optional (item 10)"),
    ("ST202", r"Stateful tests", "as the per-operation ST202 entries above (item 10)"),
    (
        "ST201",
        r"POST /api/v1/projects|Stateful tests",
        "loose JSON types: 0 taken as false; ids sent as strings (item 10, strict types)",
    ),
    # Decisions of casefolio's own, not defects.
    (
        "ST204",
        r"POST /api/v1/(settings|projects/\{projectId\}(/documents/\{documentId\})?)",
        "POST to a PATCH resource is accepted as PATCH (DESIGN.md, HTTP contract): an alias"
        " kept out of the OpenAPI document, so an empty POST is a 400 for its missing body",
    ),
    (
        "ST201",
        r"GET /api/v1/.*",
        "unknown query parameters are ignored, as HTTP APIs (and OpenProject) do",
    ),
    (
        "ST302",
        r"Stateful tests",
        "a body naming a folder that does not exist or is hidden (`parentId`, `folderId`)"
        " answers 404 naming that folder, which schemathesis reads as the project it just"
        " created being gone",
    ),
]
# Server errors (ST101) are looked at request by request, not by operation: on PostgreSQL a
# NUL character in a stored string is still a 500 (issue 19 item 1, h19a), and nothing else
# may be.
_NUL = re.compile(rb"\\u0000|\x00|%00")


def _accepted(code: str, operation: str) -> bool:
    if operation == "Stateful tests":
        # The multi-step phase names no operation; its failures are the per-operation ones
        # above, met again along a chain of calls (which chains it walks varies from run to
        # run). Server errors are never accepted this way (see _server_errors).
        return code != "ST101" and any(c == code for c, _, _ in ACCEPTED)
    return any(c == code and re.fullmatch(p, operation) for c, p, _ in ACCEPTED)


def _server_errors(ndjson: Path) -> list[tuple[str, str, bytes]]:
    """Every request schemathesis made that the server answered with a 5xx."""
    found: list[tuple[str, str, bytes]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            request, response = node.get("request"), node.get("response")
            if isinstance(request, dict) and isinstance(response, dict):
                if response.get("status_code", 0) >= 500:
                    body = (request.get("body") or {}).get("$base64", "")
                    found.append((request["method"], request["uri"], base64.b64decode(body)))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for line in ndjson.read_text().splitlines():
        walk(json.loads(line))
    return found


def _answered(operation: str, request: tuple[str, str, bytes]) -> bool:
    """Whether `request` (method, URI, body) was a call of `operation` ("METHOD /path/{id}")."""
    method, _, template = operation.partition(" ")
    path = re.sub(r"\{[^}]+\}", "[^/]+", template)
    return method == request[0] and re.fullmatch(path, urlsplit(request[1]).path) is not None


def _seed(base_url: str, token: str) -> None:
    """One of everything, so that generated ids such as 1 reach real rows."""
    with httpx.Client(base_url=base_url, headers={"X-API-Token": token}) as http:
        project = http.post(
            "/api/v1/projects", json={"name": "Fuzz", "settings": {"downloadViaApi": True}}
        ).json()
        base = f"/api/v1/projects/{project['id']}"
        http.post(f"{base}/folders", json={"name": "Pleadings"}).raise_for_status()
        http.post(f"{base}/fields", json={"name": "Custodian", "type": "text"}).raise_for_status()
        doc = http.post(f"{base}/documents", files={"file": ("a.txt", b"first")}).json()
        http.post(
            f"{base}/documents/{doc['id']}/replace",
            content=b"second",
            params={"fileName": "b.txt"},
            headers={"Content-Type": "text/plain"},
        ).raise_for_status()
        http.post("/api/v1/teams", json={"name": "Litigation"}).raise_for_status()
        http.post("/api/v1/templates", json={"name": "Matter"}).raise_for_status()
        http.post(
            "/api/v1/users", json={"email": "ada@example.com", "name": "Ada"}
        ).raise_for_status()


def test_schemathesis_finds_nothing_unexplained(settings: Settings, tmp_path: Path) -> None:
    env = server_env(
        settings.data_dir, settings.effective_database_url, rate_limit_per_minute="1000000"
    )
    token = init_token(env)
    report, events = tmp_path / "report.json", tmp_path / "events.ndjson"
    with running_server(env) as server:
        _seed(server.base_url, token)
        before = httpx.get(f"{server.base_url}/api/v1/users", headers={"X-API-Token": token})
        excluded = [arg for name in LOCKOUTS for arg in ("--exclude-name", name)]
        done = subprocess.run(
            [
                *ST,
                "run",
                f"{server.base_url}/api/v1/openapi.json",
                "--header",
                f"X-API-Token: {token}",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--max-time",
                str(MAX_SECONDS),
                "--seed",
                str(SEED),
                "--workers",
                "2",
                "--request-timeout",
                "30",
                *excluded,
                "--report",
                "json,ndjson",
                "--report-json-path",
                str(report),
                "--report-ndjson-path",
                str(events),
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis keeps a cache in `.schemathesis` of its working folder
            capture_output=True,
            text=True,
            timeout=MAX_SECONDS + 240,
            check=False,
        )
        after = httpx.get(f"{server.base_url}/api/v1/users", headers={"X-API-Token": token})
    assert before.status_code == after.status_code == 200  # its token still works
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.txt").write_text(output)  # kept by pytest for reading
    assert report.exists(), output
    result = json.loads(report.read_text())
    assert result["errors"] == [], output
    assert result["operations"]["tested"] == result["operations"]["selected"] > 50, output
    # The fuzzer kept its access: no operation answered only 401/403, except downloads, which
    # are 403 once the fuzzer has switched a project's downloadViaApi off.
    assert all(op.endswith("/content") for op in result["warnings"]["missing_auth"]), output
    found = {
        (failure["code"], operation)
        for failure in result["failures"]
        for operation in failure["operations"]
    }
    server_errors = _server_errors(events)
    nul_on_postgres = [
        e for e in server_errors if not settings.is_sqlite and _NUL.search(e[1].encode() + e[2])
    ]
    assert [e for e in server_errors if e not in nul_on_postgres] == [], output
    # A NUL's 500 is reported as a server error and as an undocumented status code.
    unexplained = sorted(
        (code, operation)
        for code, operation in found
        if not _accepted(code, operation)
        and not (
            code in ("ST101", "ST103")
            and any(
                operation == "Stateful tests" or _answered(operation, e) for e in nul_on_postgres
            )
        )
    )
    assert unexplained == [], f"{len(unexplained)} unexplained failure(s):\n{output}"
