"""The audit trail: every write and content read, in the same transaction, hash chained."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner, Result

from casefolio.cli import app as cli_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change
from casefolio.domain import events
from casefolio.domain.pages import PageRequest
from casefolio.domain.principal import Principal
from casefolio.outbound import audit, sealing
from tests.cli.conftest import cli_env
from tests.factories import Actor
from tests.outbound.conftest import Matter


async def _entries(db: Database) -> list[AuditEntry]:
    async with db.read() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


async def _upload(client: httpx.AsyncClient, matter: Matter, actor: Actor, body: bytes) -> int:
    done = await client.post(
        matter.url("/documents?fileName=claim.txt"), content=body, headers=actor.headers
    )
    assert done.status_code == 201, done.text
    return int(done.json()["id"])


async def test_a_write_is_audited_with_its_actor_and_a_refused_one_is_not(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    before = len(await _entries(db))
    document = await _upload(client, matter, matter.writer, b"claim")
    entries = await _entries(db)
    assert len(entries) == before + 1
    created = entries[-1]
    assert created.action == "document.created"
    assert (created.target_type, created.target_id, created.project_id) == (
        "document",
        document,
        matter.id,
    )
    assert (created.actor_kind, created.actor_user_id, created.actor_token_id) == (
        "token",
        matter.writer.user_id,
        matter.writer.token_id,
    )
    assert created.client == "127.0.0.1"
    assert created.details == {"title": "claim.txt", "fileName": "claim.txt", "number": 1}
    replaced = await client.post(
        matter.url(f"/documents/{document}/replace?fileName=claim-v2.txt"),
        content=b"claim, amended",
        headers=matter.writer.headers,
    )
    assert replaced.status_code in (200, 201), replaced.text
    added = (await _entries(db))[-1]
    assert added.action == "version.added"
    assert added.details == {"number": 2, "fileName": "claim-v2.txt"}
    before = len(await _entries(db))

    # A refusal (a reader may not delete) writes nothing, so it audits nothing.
    refused = await client.delete(
        matter.url(f"/documents/{document}"), headers=matter.reader.headers
    )
    assert refused.status_code == 403
    assert len(await _entries(db)) == before


@pytest.mark.parametrize("with_change", [False, True])
async def test_every_event_of_a_transaction_is_audited_when_at_most_one_has_a_change(
    db: Database, matter: Matter, with_change: bool
) -> None:
    """A transaction of one event takes a path of its own (one prepared statement): one of
    several events, of which at most one goes to the outbox, must not take it and leave
    the others unaudited."""
    emitted: list[events.DomainEvent] = [
        events.ContentDownloaded(project_id=matter.id, document_id=1, details={"n": 1}),
        events.VersionDownloaded(project_id=matter.id, version_id=2, details={"n": 2}),
    ]
    if with_change:
        emitted.append(events.FolderCreated(project_id=matter.id, folder_id=3))
    before = len(await _entries(db))
    async with db.read() as session:
        changes = await session.scalar(select(func.count()).select_from(Change))
    async with db.write() as session:
        events.emit(session, *emitted)
    added = (await _entries(db))[before:]
    assert [(e.action, e.target_id) for e in added] == [(e.type, e.target_id) for e in emitted]
    async with db.read() as session:
        now = await session.scalar(select(func.count()).select_from(Change))
    assert now == (changes or 0) + with_change
    async with db.write() as session:
        await sealing.seal(session)
    async with db.read() as session:
        assert await audit.verify(session) == audit.Verdict(before + len(emitted))


async def test_downloads_of_content_and_of_a_version_are_audited(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    document = await _upload(client, matter, matter.writer, b"claim")
    got = await client.get(
        matter.url(f"/documents/{document}/content"), headers=matter.reader.headers
    )
    assert got.status_code == 200 and got.content == b"claim"
    version = got.headers["etag"]
    listed = await client.get(
        matter.url(f"/documents/{document}/versions"), headers=matter.reader.headers
    )
    version_id = listed.json()[0]["id"]
    got = await client.get(
        matter.url(f"/documents/{document}/versions/{version_id}/content"),
        headers=matter.reader.headers,
    )
    assert got.status_code == 200 and got.headers["etag"] == version
    reads = [e for e in await _entries(db) if e.action.endswith(".downloaded")]
    assert [(e.action, e.actor_user_id, e.project_id) for e in reads] == [
        ("content.downloaded", matter.reader.user_id, matter.id),
        ("version.downloaded", matter.reader.user_id, matter.id),
    ]
    assert reads[1].target_id == int(version_id)
    # Never file bytes, never a secret: the details are ids, numbers and the digest.
    assert set(reads[0].details) == {"number", "sha256"}


async def test_writes_of_every_kind_are_audited(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    h = operator.headers
    folder = (await client.post(matter.url("/folders"), json={"name": "F"}, headers=h)).json()["id"]
    field = (
        await client.post(matter.url("/fields"), json={"name": "C", "type": "text"}, headers=h)
    ).json()["id"]
    document = await _upload(client, matter, operator, b"one")
    await client.post(
        matter.url(f"/documents/{document}/replace?fileName=b.txt"), content=b"two", headers=h
    )
    assert (
        await client.put(matter.url(f"/documents/{document}/{folder}"), headers=h)
    ).status_code == 200
    assert (
        await client.put(
            matter.url(f"/documents/{document}/fields/{field}"), json={"value": "x"}, headers=h
        )
    ).status_code == 200
    team = (await client.post("/api/v1/teams", json={"name": "T"}, headers=h)).json()["id"]
    assert (
        await client.post(
            "/api/v1/tokens", json={"name": "n", "userId": str(operator.user_id)}, headers=h
        )
    ).status_code == 201
    for enabled in (False, True):  # off and on again (on already: no change, nothing to audit)
        assert (
            await client.patch(
                "/api/v1/settings", json={"integrationsApiEnabled": enabled}, headers=h
            )
        ).status_code == 200
    assert (await client.delete(matter.url(f"/documents/{document}"), headers=h)).status_code == 204
    assert (await client.delete(matter.url(f"/folders/{folder}"), headers=h)).status_code == 204
    actions = [e.action for e in await _entries(db)]
    for expected in (
        "project.created",
        "project.member_set",
        "folder.created",
        "field.created",
        "document.created",
        "version.added",
        "document.moved",
        "field.set",
        "team.created",
        "token.issued",
        "settings.updated",
        "document.deleted",
        "folder.deleted",
    ):
        assert expected in actions, expected
    assert team


async def test_the_audit_list_filters_pages_and_is_limited_to_administered_projects(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    for n in range(3):
        await _upload(client, matter, matter.writer, f"doc {n}".encode())
    url = f"/api/v1/audit?projectId={matter.id}&action=document.created&limit=2"
    first = await client.get(url, headers=operator.headers)
    assert first.status_code == 200, first.text
    assert [e["action"] for e in first.json()] == ["document.created"] * 2
    assert first.json()[0]["actor"]["userId"] == matter.writer.user_id
    link = first.headers["link"].split(";")[0].strip("<>")
    second = await client.get(link, headers=operator.headers)
    assert len(second.json()) == 1 and "link" not in second.headers
    ids = [e["id"] for e in first.json() + second.json()]
    assert ids == sorted(ids) and len(set(ids)) == 3

    mine = await client.get(
        f"/api/v1/audit?userId={matter.writer.user_id}&targetType=document",
        headers=operator.headers,
    )
    assert {e["actor"]["userId"] for e in mine.json()} == {matter.writer.user_id}

    # A project admin reads their project's entries, and must say which project.
    admin = await client.get(f"/api/v1/audit?projectId={matter.id}", headers=matter.admin.headers)
    assert admin.status_code == 200 and {e["target"]["projectId"] for e in admin.json()} == {
        matter.id
    }
    whole = await client.get("/api/v1/audit", headers=matter.admin.headers)
    assert whole.status_code == 403 and "projectId" in whole.json()["detail"]
    writer = await client.get(f"/api/v1/audit?projectId={matter.id}", headers=matter.writer.headers)
    assert writer.status_code == 403
    outsider = await client.get(
        f"/api/v1/audit?projectId={matter.id}", headers=matter.outsider.headers
    )
    assert outsider.status_code == 404
    for bound in ("after=yesterday", "before=0001-01-01T00:00:00%2B00:01"):  # year 0 in UTC
        bad = await client.get(f"/api/v1/audit?{bound}", headers=operator.headers)
        assert bad.status_code == 400, bad.text
        # The parameter sent, not the documents' afterDate (which it named).
        assert [e["field"] for e in bad.json()["errors"]] == [bound.split("=")[0]], bad.text
    # No API changes or deletes entries.
    assert (await client.delete("/api/v1/audit", headers=operator.headers)).status_code == 405


async def test_every_audit_filter_narrows_the_list_to_the_entries_it_names(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    """Each parameter is applied, alone and with the others: one left out would hand an
    auditor entries they did not ask for, in a list that looks complete."""
    document = await _upload(client, matter, matter.writer, b"a")
    admin = matter.admin.headers
    folder = await client.post(matter.url("/folders"), json={"name": "F"}, headers=admin)
    assert folder.status_code == 201, folder.text
    await _upload(client, matter, matter.admin, b"b")
    renamed = await client.patch(
        matter.url(f"/documents/{document}"), json={"title": "t"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    entries = await _entries(db)
    writer, boss = matter.writer.user_id, matter.admin.user_id
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"userId": writer}, lambda e: e.actor_user_id == writer),
        ({"targetType": "folder"}, lambda e: e.target_type == "folder"),
        ({"targetId": document}, lambda e: e.target_id == document),
        ({"action": "document.created"}, lambda e: e.action == "document.created"),
        ({"projectId": matter.id}, lambda e: e.project_id == matter.id),
        (
            {"userId": boss, "targetType": "document", "targetId": document},
            lambda e: (e.actor_user_id, e.target_type, e.target_id) == (boss, "document", document),
        ),
    ]
    for params, keep in cases:
        expected = [e.id for e in entries if keep(e)]
        assert expected and len(expected) < len(entries), params
        got = await client.get(
            "/api/v1/audit", params={**params, "limit": 1000}, headers=operator.headers
        )
        assert got.status_code == 200, got.text
        assert [int(e["id"]) for e in got.json()] == expected, params


async def test_an_audit_page_that_ends_the_list_links_to_no_next_page(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """A full page with nothing after it is the last: a Link to an empty page would send
    every export script around once more, and one to a repeat would double entries."""
    for n in range(2):
        await _upload(client, matter, matter.writer, f"doc {n}".encode())
    got = await client.get(
        "/api/v1/audit",
        params={"projectId": matter.id, "action": "document.created", "limit": 2},
        headers=operator.headers,
    )
    assert got.status_code == 200, got.text
    assert [e["action"] for e in got.json()] == ["document.created"] * 2
    assert "link" not in got.headers


async def test_the_audit_lists_after_bound_is_inclusive_and_its_before_bound_exclusive(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    """The two bounds split the trail at an instant with nothing lost or repeated: an
    entry made exactly then is after it, not before it."""
    for n in range(3):
        await _upload(client, matter, matter.writer, f"doc {n}".encode())
    entries = await _entries(db)
    middle = entries[len(entries) // 2]
    who = Principal(operator.user_id, operator.email, "Olivia Operator", True)
    page = PageRequest(limit=1000)
    async with db.read() as session:
        after = await audit.list_page(
            session, who=who, where=audit.AuditFilter(after=middle.at), page=page
        )
        before = await audit.list_page(
            session, who=who, where=audit.AuditFilter(before=middle.at), page=page
        )
    after_ids, before_ids = [e.id for e in after.items], [e.id for e in before.items]
    assert middle.id in after_ids and before_ids
    assert after_ids == [e.id for e in entries if e.at >= middle.at]
    assert before_ids == [e.id for e in entries if e.at < middle.at]
    assert sorted(before_ids + after_ids) == [e.id for e in entries]


async def test_verify_reports_the_first_entry_edited_in_the_database(
    client: httpx.AsyncClient, db: Database, matter: Matter, settings: Settings
) -> None:
    for n in range(3):
        await _upload(client, matter, matter.writer, f"doc {n}".encode())
    async with db.write() as session:
        await sealing.seal(session)  # the worker's job; PostgreSQL's entries start unsealed
    async with db.read() as session:
        assert (await audit.verify(session)).first_bad_id is None
    runner = CliRunner()
    intact = await _invoke(runner, ["audit", "verify"], cli_env(settings))
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output

    entries = await _entries(db)
    victim = entries[len(entries) // 2]
    async with db.write() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.id == victim.id).values(actor_user_id=999)
        )
    async with db.read() as session:
        verdict = await audit.verify(session)
    assert verdict.first_bad_id == victim.id
    broken = await _invoke(runner, ["audit", "verify"], cli_env(settings))
    assert broken.exit_code == 1
    assert f"Audit entry {victim.id} is not valid" in broken.output


@pytest.mark.parametrize(
    ("column", "value"), [("details", "not json"), ("at", "garbage"), ("details", "[1, 2")]
)
async def test_an_entry_edited_into_what_casefolio_never_writes_is_named_not_a_crash(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    settings: Settings,
    column: str,
    value: str,
) -> None:
    if db.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's json and timestamptz columns refuse such values themselves")
    for n in range(3):
        await _upload(client, matter, matter.writer, f"doc {n}".encode())
    entries = await _entries(db)
    victim = entries[len(entries) // 2]
    async with db.write() as session:
        await session.execute(
            text(f"UPDATE audit_entries SET {column} = :value WHERE id = :id"),
            {"value": value, "id": victim.id},
        )
    async with db.read() as session:
        verdict = await audit.verify(session)
    assert verdict.first_bad_id == victim.id
    assert verdict.checked == len([e for e in entries if e.id < victim.id])
    assert "cannot be read" in verdict.reason
    runner = CliRunner()
    broken = await _invoke(runner, ["audit", "verify"], cli_env(settings))
    assert broken.exit_code == 1 and f"Audit entry {victim.id} is not valid" in broken.output
    exported = await _invoke(runner, ["audit", "export"], cli_env(settings))
    assert exported.exit_code == 1
    assert "cannot be read" in exported.output and "audit verify" in exported.output
    assert "Traceback" not in broken.output + exported.output


async def test_export_writes_json_lines_of_one_project(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor, settings: Settings
) -> None:
    await _upload(client, matter, matter.writer, b"a")
    other = await client.post("/api/v1/projects", json={"name": "Other"}, headers=operator.headers)
    runner = CliRunner()
    done = await _invoke(
        runner, ["audit", "export", "--project", str(matter.id)], cli_env(settings)
    )
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines and {e["target"]["projectId"] for e in lines} == {matter.id}
    assert other.json()["id"] not in {str(e["target"]["projectId"]) for e in lines}
    assert all(len(e["hash"]) == 64 for e in lines)
    later = await _invoke(
        runner, ["audit", "export", "--since", "2999-01-01T00:00:00"], cli_env(settings)
    )
    assert later.exit_code == 0 and not [x for x in later.stdout.splitlines() if x.startswith("{")]


def _documented_hash(previous: str, line: dict[str, Any]) -> str:
    """docs/api.md's recipe, written apart from casefolio's own: sha256 of the previous hash
    and the entry without its hash as JSON (keys sorted, no spaces, UTF-8)."""
    entry = {k: v for k, v in line.items() if k != "hash"}
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(previous.encode() + text.encode()).hexdigest()


async def test_a_whole_export_holds_each_entry_once_in_chain_order_and_verifies_by_itself(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The export reads the trail a chunk at a time: an off-by-one where a chunk ends would
    repeat or drop the entries there. And an auditor checks the file with the recipe the
    documentation gives, not casefolio's code: each line's hash follows from the line
    before by it, from 64 zeros."""
    monkeypatch.setattr(audit, "_VERIFY_CHUNK", 2)  # many chunk ends in a short trail
    for name in ("Grüße.txt", "claim.txt", "naïve.txt"):
        done = await client.post(
            matter.url("/documents"),
            params={"fileName": name},
            content=b"x",
            headers=matter.writer.headers,
        )
        assert done.status_code == 201, done.text
    done = await _invoke(CliRunner(), ["audit", "export"], cli_env(settings))
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    async with db.read() as session:
        chain = list(
            await session.scalars(select(AuditEntry.id).order_by(AuditEntry.xid, AuditEntry.id))
        )
    assert len(chain) > 2 * audit._VERIFY_CHUNK
    assert [line["id"] for line in lines] == chain
    assert lines[-1]["details"]["fileName"] == "naïve.txt"
    previous = "0" * 64
    for line in lines:
        previous = _documented_hash(previous, line)
        assert line["hash"] == previous, line["id"]


async def _invoke(runner: CliRunner, args: list[str], env: dict[str, str]) -> Result:
    # In a thread: the command runs an event loop of its own.
    return await anyio.to_thread.run_sync(lambda: runner.invoke(cli_app, args, env=env))


_WRITER = """
import sys, anyio
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import events

async def main() -> None:
    db = Database.open(Settings(database_url=sys.argv[1], data_dir=sys.argv[2]))
    for n in range(int(sys.argv[3])):
        async with db.write() as session:
            events.emit(session, events.SettingsUpdated(details={"n": n, "by": sys.argv[4]}))
    await db.close()

anyio.run(main)
"""


_SEALER = """
import sys, anyio
from sqlalchemy import func, select
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry
from casefolio.outbound import sealing

async def main() -> None:
    db = Database.open(Settings(database_url=sys.argv[1], data_dir=sys.argv[2]))
    sealed = select(func.count()).where(AuditEntry.hash.is_not(None))
    while True:
        await sealing.number_pending(db)
        await sealing.seal_pending(db, wait=sys.argv[4] == "wait")
        async with db.read() as session:
            if await session.scalar(sealed) >= int(sys.argv[3]):
                break
        await anyio.sleep(0.001)
    await db.close()

anyio.run(main)
"""


def test_concurrent_writer_processes_make_one_valid_chain(
    settings: Settings, database_url: str, is_postgres: bool, tmp_path: Any
) -> None:
    """Three processes write while two others seal (one waiting for the sealers' lock, one
    giving up when it is taken), as the worker does in every server process: one chain,
    and every change numbered once, the numbers one unbroken run."""
    if not is_postgres:
        pytest.skip("SQLite's write lock serialises writers; the test is for PostgreSQL")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, database_url, str(tmp_path), "150", f"w{i}"]
        )
        for i in range(3)
    ]
    sealers = [
        subprocess.Popen([sys.executable, "-c", _SEALER, database_url, str(tmp_path), n, how])
        for n, how in (("450", "wait"), ("450", "skip"))
    ]
    assert [w.wait(timeout=120) for w in writers + sealers] == [0] * 5

    async def check() -> tuple[int, audit.Verdict, list[int | None]]:
        db = Database.open(settings)
        try:
            await sealing.number_pending(db)
            await sealing.seal_pending(db, wait=True)
            async with db.read() as session:
                count = await session.scalar(select(func.count()).select_from(AuditEntry))
                numbers = list(await session.scalars(select(Change.seq).order_by(Change.seq)))
                return int(count or 0), await audit.verify(session), numbers
        finally:
            await db.close()

    count, verdict, numbers = anyio.run(check)
    assert count == 450
    assert verdict.first_bad_id is None and verdict.checked == 450
    assert numbers == list(range(1, 451))
