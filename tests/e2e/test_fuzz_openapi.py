"""Property-based fuzzing of the OpenAPI document: schemathesis (every check) against a real
`casefolio serve` on the suite's database, bounded in examples and time.

Every failure schemathesis reports must match an entry of ACCEPTED below, a documented
decision with its reason; anything else fails the test, with schemathesis's own report
attached. No server error is ever accepted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

pytestmark = pytest.mark.slow

ST = [sys.executable, "-m", "schemathesis.cli"]  # the `st` command of this environment
MAX_EXAMPLES = 10  # per operation and phase
MAX_SECONDS = 60  # for the whole run: fuzzing and stateful phases repeat until it is spent
SEED = int(os.environ.get("CASEFOLIO_FUZZ_SEED", "19"))  # another seed: by hand

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
# The change feed's long-poll (`wait`, up to 60 s) holds a request longer than schemathesis's
# request timeout and this run's whole budget; tests/outbound/test_feed.py covers its input.
LONG_POLLS = ("GET /api/v1/changes",)

# Failures accepted: (schemathesis code, operation pattern, pattern searched in the response
# body, why). Each is a decision of casefolio's, documented where the reason says. A finding
# matches an entry by its code and operation and, for refusals, the server's own words, so
# such an entry cannot hide another refusal of the same operation. A server error (ST101, or
# any 5xx) is never accepted.
_PATCH_ALIASES = (
    r"\w+ /api/v1/(settings|user/id/\{userId\}|webhooks/\{webhookId\}"
    r"|projects/\{projectId\}(/documents/\{documentId\})?)"
)
ACCEPTED: list[tuple[str, str, str, str]] = [
    (
        "ST301",
        r"(GET|DELETE) /api/v1/projects/\{projectId\}/holds/\{holdId\}",
        r'"active":false,"releasedAt":"',
        "DELETE of a legal hold releases it, and the hold stays on record (who placed and"
        " released it, when, why), readable and released again with nothing changed"
        " (docs/api.md, Legal holds): it is not gone after a DELETE, by design",
    ),
    (
        "ST301",
        r"(GET|DELETE) /api/v1/projects/\{projectId\}/retention",
        r"^null$|^\[\]$",
        "a project's retention rule is a setting, not a resource: after DELETE (no rule) GET"
        " answers null, and its documents due `[]`, as for a project that never had one"
        " (docs/api.md, Retention)",
    ),
    (
        "ST204",
        _PATCH_ALIASES,
        r"",
        "POST to a PATCH resource is accepted as PATCH (DESIGN.md, HTTP contract): an alias"
        " kept out of the OpenAPI document, answered as the PATCH is (an empty POST is a 400"
        " for its missing body)",
    ),
    (
        "ST201",
        r"GET /api/v[13]/.*",
        r"",
        "unknown query parameters are ignored, as HTTP APIs (and OpenProject) do, and one"
        " sent twice is read once, its last value (docs/api.md)",
    ),
    (
        "ST202",
        r"GET /api/v1/.*",
        r"The cursor is not valid",
        "a cursor is opaque (docs/api.md): the schema gives its alphabet, but only a cursor"
        " the server issued names a position in a list",
    ),
    (
        "ST202",
        r"POST /api/v1/tokens",
        r"expiresAt must be in the future",
        "a token's expiresAt must lie in the future: a rule of time no schema can state",
    ),
    (
        "ST202",
        r"GET /api/v1/.*",
        r"lies outside the years 1 to 9999 once converted to UTC",
        "times must lie within the years 1 to 9999 once converted to UTC (docs/api.md, Limits"
        " on input): a well-formed 9999-12-31T23:59:59-01:00 is in the year 10000",
    ),
    (
        "ST202",
        r"\w+ /api/v[13]/.*",
        r"contains a NUL character|lone surrogate",
        "text a database cannot store (NUL, lone surrogates) is refused on both databases"
        " (docs/api.md, Limits on input; issue 19 item 1); JSON Schema has no way to say so",
    ),
    (
        "ST202",
        r"(POST|PATCH) /api/v1/projects/\{projectId\}/fields(/\{fieldId\})?",
        r"Choices must be distinct: choice \d+ reads as choice \d+",
        "a choice field's choices are told apart as a value is matched to them (docs/api.md,"
        " Fields): `0` and a soft hyphen before `0` are one choice, as are the composed and"
        " decomposed é; the schema's uniqueItems compares the raw strings",
    ),
    (
        "ST202",
        r"(POST|PUT|PATCH) /api/v1/.*",
        r"Input should be a valid integer",
        "JSON bodies are strictly typed (docs/api.md): an integer is a JSON integer (an id"
        " may also be the digit string v1 returns), never a number with a fraction part such"
        " as 2.0, which JSON Schema counts as an integer",
    ),
    (
        "ST202",
        r"PUT /api/v1/projects/\{projectId\}/documents/\{documentId\}/fields/\{fieldId\}"
        r"|POST /api/v1/projects/\{projectId\}/documents(/\{documentId\}/replace)?",
        r"Invalid value for field|has no field|Required field\(s\) missing|is the id of field"
        r"|is given twice",
        "field values are keyed by the project's own fields and typed by them, and required"
        " fields need values on the first upload (docs/api.md), which one operation's schema"
        " cannot know",
    ),
    (
        "ST202",
        r"GET /api/v3/(documents|projects)",
        r"The query parameter (filters|sortBy) is not valid JSON|\"message\":\"(Filters|Sort by) ",
        "`filters` and `sortBy` are JSON inside a query parameter, as OpenProject defines them"
        " (docs/api-v3.md); the schema gives them as strings of bounded length, so neither their"
        " JSON nor its shape (filter objects, names, operators, sort pairs) is in it",
    ),
    (
        "ST202",
        r"POST /api/v1/projects/\{projectId\}/documents(/\{documentId\}/replace)?",
        r"The upload needs a file name|File name can't be blank",
        "an upload sent as the raw body names its file with ?fileName= (docs/api.md,"
        " Uploads): required for that content type only, which OpenAPI cannot say",
    ),
    (
        "ST202",
        r"(POST|PATCH) /api/v1/webhooks(/\{webhookId\})?",
        r"The host |(host|port) is not valid",  # a long host pushes the rest past the excerpt
        "a webhook URL must resolve, at registration, to an address outside the private,"
        " loopback and link-local ranges unless CASEFOLIO_WEBHOOK_ALLOWED_NETWORKS allows it"
        " (docs/api.md, Webhooks; the SSRF guard): a fact of DNS, which no schema can state;"
        " and a host in square brackets must be an IPv6 address, which the schema's pattern"
        " does not spell out (its ASCII-only host it does)",
    ),
    (
        "ST202",
        r"POST /api/v3/(documents/\{document_id\}/)?attachments",
        r"The upload needs a file name|File name can't be blank",
        "an attachment's name comes from `metadata.fileName` or, when that is blank, the file"
        " part's filename (docs/api-v3.md): one of two parts must carry it, and one that is"
        " not blank once path segments and control characters are removed, which OpenAPI"
        " cannot say",
    ),
    (
        "ST202",
        r"POST /api/(v1/projects/\{projectId\}/documents.*|v3/.*attachments)",
        r"The multipart body has more than \d+ parts",
        "a multipart body has at most 10 parts (docs/api.md, issue 19 item 5); the schema's"
        " maxProperties counts properties, but an array property is sent as one part per item",
    ),
    (
        "ST205",
        r"(DELETE|GET) /api/v1/projects/\{projectId\}/folders/\{(folderId|folderName)\}",
        r"is not allowed on /api/v1/projects/\d+/folders/\d+",
        '…/folders/1 is both the folder with id 1 (DELETE) and the folder named "1" (GET by'
        " name): two documented paths overlap, and Allow lists what that URL takes",
    ),
    *(
        (
            code,
            r"GET /api/v(1|3)/.*/content",
            r"",
            "a download comes with the content type it was stored with (docs/api.md), which"
            " the uploader chose: schemathesis uploads bytes declared as JSON that are not"
            " (reported as ST110, or as ST109 when they do not parse as JSON at all)",
        )
        for code in ("ST109", "ST110")
    ),
    (
        "ST202",
        r"POST /api/v1/templates",
        r"Template grant names .*(which does not exist|who is not a user)|must be unique",
        "a template's grants name teams and users that exist, and its folder and field names"
        " are unique among siblings: the server's state, and uniqueness by one property of"
        " the items, which JSON Schema cannot state",
    ),
    (
        "ST202",
        r"PATCH /api/v3/documents/\{document_id\}",
        r"Attachment \d+ cannot be claimed",
        "`_links.attachments` may link only the caller's own uploads without a container"
        " (docs/api-v3.md): the server's state, which no schema can state",
    ),
    (
        "ST202",
        r"GET /api/v1/(search|projects/\{projectId\}/documents(/folder/\{folderId\})?)",
        r"A phrase is missing its closing quote|OR needs words|needs a word to find|"
        r"A prefix search|at least one word to search|at most \d+ words and phrases|"
        r"fieldId and fieldValue go together|Field \d+ holds",
        "a search query is a small language (docs/api.md, Search: quotes, OR, -exclusion,"
        " prefix*), and fieldValue is read as its field's type; its grammar and the field's"
        " type are not things a string schema can state",
    ),
    (
        "ST204",
        r"GET /api/v1/projects/\{projectId\}/documents/folder/\{folderId\}",
        r"documentId",
        "…/documents/folder/1 under PUT is also the documented move route"
        " …/documents/{documentId}/{folderId} with documentId `folder`: two documented paths"
        " overlap, and that route's 400 names documentId (as ST205 for folders above)",
    ),
    (
        "ST202",
        r"POST /api/v1/users",
        r"is not a valid e-mail address",
        "e-mail addresses are checked by email-validator, stricter than the schema's"
        " `format: email` (no special-use or unresolvable-looking domains)",
    ),
]

# Not casefolio's: schemathesis marks multipart bodies as valid or invalid against their
# schema wrongly: MULTIPART_QUIRKS in every phase, STATEFUL_QUIRKS in its multi-step phase.
_UPLOADS = r"POST /api/v1/projects/\{projectId\}/documents(/\{documentId\}/replace)?"
MULTIPART_QUIRKS: list[tuple[str, str, str, str]] = [
    (
        "ST202",
        _UPLOADS,
        r"The multipart body has no `file` part",
        "an empty multipart body sent as valid, although the schema requires the `file` part"
        " (tests/api/test_openapi_accuracy.py checks that it does)",
    ),
    (
        "ST201",
        r"POST /api/v3/(documents/\{document_id\}/)?attachments",
        r'^\{"_type":"Attachment"',
        "a `metadata` part marked invalid (say, for a description's raw text over its maxLength)"
        " whose serialised JSON is valid (a short bare-string or null description, which the"
        " schema allows), so the server rightly stores it",
    ),
]
# Schema-violating requests rightly accepted, told apart by what schemathesis says it broke
# (its "Invalid component" lines), not by the answer: (code, operation, pattern every broken
# component must match, why).
_REPEATED_QUERY = (
    r"(query: |parameter `fileName` in query - )"
    r"violates `type` at /properties/fileName/anyOf/\d+ \(was \w+, became (array|object)\)"
)
_TOKEN_BESIDE = (
    r"(header: |parameter `Authorization` in header - )"
    r"violates `format` at /properties/Authorization"
)
ACCEPTED_COMPONENTS: list[tuple[str, str, str, str]] = [
    (
        "ST201",
        _UPLOADS,
        rf"{_REPEATED_QUERY}|{_TOKEN_BESIDE}",
        "`fileName` sent twice in the query is read once, its last value, as every query"
        " parameter is (docs/api.md); an object is sent the same way (its values as repeated"
        " `fileName=` pairs: seed 19 sent five, the last `LPT1`); a malformed `Authorization`"
        " beside a valid `X-API-Token` is not read, the token authenticates",
    ),
]
STATEFUL_QUIRKS: list[tuple[str, str, str, str]] = [
    (
        "ST201",
        _UPLOADS,
        r'^\{"id":"\d+","projectId":"\d+"',
        "a body marked invalid but labelled a positive case (an empty `file` part, or an"
        " object sent as the raw bytes of a file), which the server rightly stores",
    ),
]


def _accepted(code: str, operation: str, body: str, phase: str, message: str = "") -> bool:
    entries = ACCEPTED + MULTIPART_QUIRKS + (STATEFUL_QUIRKS if phase == "stateful" else [])
    if any(
        c == code and re.fullmatch(op, operation) and re.search(words, body)
        for c, op, words, _ in entries
    ):
        return True
    broken = _broken_components(message)
    return bool(broken) and any(
        c == code
        and re.fullmatch(op, operation)
        and all(re.fullmatch(pattern, part) for part in broken)
        for c, op, pattern, _ in ACCEPTED_COMPONENTS
    )


def _broken_components(message: str) -> list[str]:
    """What schemathesis says a negative case broke: the bullets under "Invalid component:",
    or the text after it on its line."""
    _, found, rest = message.partition("Invalid component:")
    if not found:
        return []
    lines = rest.splitlines()
    bullets = [line.strip()[2:] for line in lines[1:] if line.strip().startswith("- ")]
    return bullets or [lines[0].strip()]


def _failures(ndjson: Path) -> set[tuple[str, str, int, str, str, str]]:
    """Every failed check schemathesis reported, as (code, operation, status, response body,
    phase, message); the stateful phase names the operation of the call that failed, like
    the others."""
    found: set[tuple[str, str, int, str, str, str]] = set()
    for line in ndjson.read_text().splitlines():
        scenario = json.loads(line).get("ScenarioFinished")
        if not scenario or scenario["status"] != "failure":
            continue
        recorder = scenario["recorder"]
        for case_id, checks in recorder.get("checks", {}).items():
            response = (recorder["interactions"].get(case_id) or {}).get("response") or {}
            content = (response.get("content") or {}).get("$base64", "")
            body = base64.b64decode(content).decode("utf-8", "replace")
            for check in checks:
                if check["status"] == "failure":
                    failure = check["failure_info"]["failure"]
                    status = response.get("status_code", 0)
                    found.add(
                        (
                            failure["code"],
                            failure["operation"],
                            status,
                            # Whole: a refusal naming a long field path (a key of the
                            # fuzzer's) puts its words past any excerpt (seed 113).
                            body,
                            scenario["phase"],
                            failure.get("message") or "",
                        )
                    )
    return found


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
        excluded = [arg for name in LOCKOUTS + LONG_POLLS for arg in ("--exclude-name", name)]
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
                # One worker: on Python 3.11, hypothesis parsing lambdas' source in two threads
                # at once fails now and then ("AST constructor recursion depth mismatch"), a
                # runtime error of the fuzzer's own, not a finding.
                "--workers",
                "1",
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
    assert _server_errors(events) == [], output
    unexplained = sorted(
        f for f in _failures(events) if not _accepted(f[0], f[1], f[3], f[4], f[5])
    )
    assert unexplained == [], "\n".join(
        [
            f"{len(unexplained)} unexplained failure(s):",
            *(repr((*f[:3], f[3][:300], *f[4:])) for f in unexplained),
            output,
        ]
    )


def test_a_component_entry_accepts_only_when_every_broken_part_is_explained() -> None:
    upload = "POST /api/v1/projects/{projectId}/documents"
    both = (
        "Invalid data should have been rejected\nExpected: 400, 422\nInvalid component:\n"
        "  - query: violates `type` at /properties/fileName/anyOf/1 (was null, became array)\n"
        "  - header: violates `format` at /properties/Authorization"
    )
    assert _accepted("ST201", upload, '{"id":"9"}', "fuzzing", both)
    single = (
        "Invalid data should have been rejected\nExpected: 400\nInvalid component: parameter"
        " `fileName` in query - violates `type` at /properties/fileName/anyOf/1 (was null,"
        " became array)"
    )
    assert _accepted("ST201", upload, '{"id":"9"}', "fuzzing", single)
    with_body = both + "\n  - body: violates `maxLength` at /properties/description"
    assert not _accepted("ST201", upload, '{"id":"9"}', "fuzzing", with_body)
    assert not _accepted("ST201", "POST /api/v1/projects", '{"id":"9"}', "fuzzing", both)
    assert not _accepted("ST201", upload, '{"id":"9"}', "fuzzing", "no component named")


def test_a_refusal_is_matched_by_its_whole_body(tmp_path: Path) -> None:
    """Seed 113: a NUL in a key nested under a long key of the fuzzer's is refused with the
    key's path first, which put the words an entry matches past the first 300 characters."""
    path = "_links.attachments.6." + "\u1e70\u033a" * 200 + ".(key)"
    body = json.dumps(
        {"_type": "Error", "message": f"Validation failed. {path}: contains a NUL character"}
    )
    check = {
        "status": "failure",
        "failure_info": {
            "failure": {"code": "ST202", "operation": "PATCH /api/v3/documents/{document_id}"}
        },
    }
    response = {
        "status_code": 400,
        "content": {"$base64": base64.b64encode(body.encode()).decode()},
    }
    scenario = {
        "status": "failure",
        "phase": "stateful",
        "recorder": {"checks": {"c": [check]}, "interactions": {"c": {"response": response}}},
    }
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps({"ScenarioFinished": scenario}) + "\n")
    [found] = _failures(events)
    assert _accepted(found[0], found[1], found[3], found[4], found[5])
