"""Retention rules: the daily job moves exactly the documents past their period to the trash
(or lists them for review), never a held one; the report changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from typer.testing import CliRunner

from casefolio.cli import app as cli_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Document
from casefolio.domain import retention
from casefolio.domain.errors import Invalid
from casefolio.outbound.housekeeping import Housekeeper
from tests.api.v1.conftest import Matter, make_matter
from tests.api.v1.test_holds import document, place
from tests.api.v1.test_version_trash import audited
from tests.cli.conftest import cli_env
from tests.clocks import Clock
from tests.factories import Actor

#: The clock the job is given; the report (a command) reads the real one, moments later.
NOW = datetime.now(UTC)


async def backdate(db: Database, document_id: str, when: datetime) -> None:
    async with db.write() as session:
        await session.execute(
            update(Document).where(Document.id == int(document_id)).values(updated_at=when)
        )


async def trashed(db: Database) -> set[str]:
    async with db.read() as session:
        found = await session.scalars(select(Document.id).where(Document.trashed_at.isnot(None)))
        return {str(i) for i in found}


async def set_rule(client: httpx.AsyncClient, matter: Matter, years: int, then: str) -> None:
    response = await client.put(
        matter.url("/retention"),
        json={"keepYears": years, "then": then},
        headers=matter.admin.headers,
    )
    assert response.status_code == 200, response.text


async def test_the_daily_job_trashes_exactly_the_documents_past_their_period(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter, settings: Settings
) -> None:
    old = await document(client, matter, b"old")
    recent = await document(client, matter, b"recent")
    held = await document(client, matter, b"old but held")
    await backdate(db, old, NOW - timedelta(days=366))
    await backdate(db, recent, NOW - timedelta(days=364))
    await backdate(db, held, NOW - timedelta(days=3 * 365))
    await place(client, matter, "document", held)
    await set_rule(client, matter, 1, "trash")

    args = ["retention", "report", "--project", str(matter.id)]
    report = await anyio.to_thread.run_sync(
        lambda: CliRunner().invoke(cli_app, args, env=cli_env(settings))
    )
    assert report.exit_code == 0, report.output
    assert "1 to the trash, 0 due for review, 1 kept by legal holds" in report.output
    assert await trashed(db) == set()  # the report changed nothing
    elsewhere = ["retention", "report", "--project", str(matter.id + 1000)]
    unknown = await anyio.to_thread.run_sync(
        lambda: CliRunner().invoke(cli_app, elsewhere, env=cli_env(settings))
    )
    assert unknown.exit_code == 1 and f"Project {matter.id + 1000} not found" in unknown.output

    state = app.state.casefolio
    keeper = Housekeeper(state.settings, state.db, state.blobs, clock=lambda: NOW)
    assert "retention" in await keeper.run_once()

    assert await trashed(db) == {old}
    # Audited as a DELETE to the trash is (domain/trash.py), marked as retention's doing.
    deleted = await audited(db, "document.deleted")
    assert [(e.target_id, e.details) for e in deleted] == [
        (int(old), {"trash": True, "retention": True})
    ]
    h = matter.admin.headers
    assert (await client.get(matter.url(f"/documents/{old}"), headers=h)).status_code == 404
    listed = await client.get(matter.url("/trash"), headers=h)
    assert [d["id"] for d in listed.json()] == [old]
    # The job runs daily: the next round on the same day does nothing more.
    assert "retention" not in await keeper.run_once()


async def test_a_review_rule_lists_documents_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    old = await document(client, matter, b"old")
    await document(client, matter, b"new")
    await backdate(db, old, datetime(2000, 1, 1, tzinfo=UTC))
    await set_rule(client, matter, 5, "review")
    state = app.state.casefolio
    await Housekeeper(state.settings, state.db, state.blobs, clock=lambda: NOW).run_once()

    assert await trashed(db) == set()
    due = await client.get(matter.url("/retention/due"), headers=matter.admin.headers)
    assert due.status_code == 200, due.text
    assert [(d["documentId"], d["action"]) for d in due.json()] == [(old, "review")]


async def test_retention_rule_input_and_access(client: httpx.AsyncClient, matter: Matter) -> None:
    h = matter.admin.headers
    assert (await client.get(matter.url("/retention"), headers=h)).json() is None
    for bad in ({"keepYears": 0, "then": "trash"}, {"keepYears": 3, "then": "shred"}, {}):
        response = await client.put(matter.url("/retention"), json=bad, headers=h)
        assert response.status_code == 400, (bad, response.text)
    writer = await client.put(
        matter.url("/retention"),
        json={"keepYears": 3, "then": "trash"},
        headers=matter.writer.headers,
    )
    assert writer.status_code == 403 and "settings.manage" in writer.json()["detail"]
    await set_rule(client, matter, 7, "review")
    read = await client.get(matter.url("/retention"), headers=matter.reader.headers)
    assert read.json() == {"keepYears": 7, "then": "review"}
    assert (await client.delete(matter.url("/retention"), headers=h)).status_code == 204
    assert (await client.get(matter.url("/retention"), headers=h)).json() is None
    outsider = await client.get(matter.url("/retention"), headers=matter.outsider.headers)
    assert outsider.status_code == 404


async def test_a_template_gives_new_projects_its_retention_rule(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    h = operator.headers
    made = await client.post(
        "/api/v1/templates",
        json={"name": "Litigation", "retention": {"keepYears": 6, "then": "trash"}},
        headers=h,
    )
    assert made.status_code == 201, made.text
    assert made.json()["retention"] == {"keepYears": 6, "then": "trash"}
    project = await client.post(
        "/api/v1/projects",
        json={"name": "From template", "templateId": made.json()["id"]},
        headers=h,
    )
    assert project.status_code == 201, project.text
    rule = await client.get(f"/api/v1/projects/{project.json()['id']}/retention", headers=h)
    assert rule.json() == {"keepYears": 6, "then": "trash"}


@pytest.mark.parametrize(
    ("now", "years", "cutoff"),
    [
        # Calendar years, not 365 days: four years back from here cross a 29 February.
        (datetime(2025, 6, 15, 12, tzinfo=UTC), 4, datetime(2021, 6, 15, 12, tzinfo=UTC)),
        # From a 29 February, a year back is the 28th.
        (datetime(2024, 2, 29, 12, tzinfo=UTC), 1, datetime(2023, 2, 28, 12, tzinfo=UTC)),
    ],
    ids=["across-a-leap-day", "from-29-february"],
)
async def test_the_period_is_counted_in_calendar_years(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    now: datetime,
    years: int,
    cutoff: datetime,
) -> None:
    past = await document(client, matter, b"an hour past the period")
    within = await document(client, matter, b"an hour within the period")
    await backdate(db, past, cutoff - timedelta(hours=1))
    await backdate(db, within, cutoff + timedelta(hours=1))
    await set_rule(client, matter, years, "trash")
    state = app.state.casefolio

    keeper = Housekeeper(state.settings, state.db, state.blobs, clock=lambda: now)
    assert "retention" in await keeper.run_once()

    assert await trashed(db) == {past}


async def test_each_project_is_judged_by_its_own_rule_and_shows_only_its_own_documents(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    other = await make_matter(client, db, operator)
    here = await document(client, matter, b"old here")
    there = await document(client, other, b"old there")
    already = await document(client, other, b"old and in the trash already")
    for doc in (here, there, already):
        await backdate(db, doc, NOW - timedelta(days=3 * 365))
    deleted = await client.delete(other.url(f"/documents/{already}"), headers=other.admin.headers)
    assert deleted.status_code == 204, deleted.text
    await set_rule(client, matter, 1, "trash")
    await set_rule(client, other, 1, "review")

    # Each project's due list: its own documents, none of them in the trash.
    for project, doc, action in ((matter, here, "trash"), (other, there, "review")):
        due = await client.get(project.url("/retention/due"), headers=project.admin.headers)
        assert due.status_code == 200, due.text
        assert [(d["documentId"], d["action"]) for d in due.json()] == [(doc, action)]

    state = app.state.casefolio
    await Housekeeper(state.settings, state.db, state.blobs, clock=lambda: NOW).run_once()

    # The "trash" rule took this project's document; the other's stays, for review.
    assert await trashed(db) == {here, already}
    kept = await client.get(other.url(f"/documents/{there}"), headers=other.admin.headers)
    assert kept.status_code == 200, kept.text


async def test_a_document_changed_exactly_keep_years_ago_is_not_yet_past_its_period(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    now = datetime(2025, 6, 15, 12, tzinfo=UTC)
    exactly = await document(client, matter, b"changed a year ago to the microsecond")
    before = await document(client, matter, b"a microsecond earlier")
    await backdate(db, exactly, datetime(2024, 6, 15, 12, tzinfo=UTC))
    await backdate(db, before, datetime(2024, 6, 15, 12, tzinfo=UTC) - timedelta(microseconds=1))
    await set_rule(client, matter, 1, "review")
    state = app.state.casefolio

    async with db.read() as session:
        planned = await retention.plan(session, now=now, project_id=matter.id)
    assert [(str(p.document_id), p.action) for p in planned] == [(before, "review")]

    await set_rule(client, matter, 1, "trash")
    await Housekeeper(state.settings, state.db, state.blobs, clock=lambda: now).run_once()
    assert await trashed(db) == {before}


async def test_only_those_who_may_delete_see_what_is_due_and_may_remove_the_rule(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    old = await document(client, matter, b"old")
    await backdate(db, old, NOW - timedelta(days=3 * 365))
    await set_rule(client, matter, 1, "review")

    for actor in (matter.writer, matter.reader):
        due = await client.get(matter.url("/retention/due"), headers=actor.headers)
        assert due.status_code == 403, (actor, due.text)
        removed = await client.delete(matter.url("/retention"), headers=actor.headers)
        assert removed.status_code == 403, (actor, removed.text)
    outsider = await client.get(matter.url("/retention/due"), headers=matter.outsider.headers)
    assert outsider.status_code == 404, outsider.text

    rule = await client.get(matter.url("/retention"), headers=matter.admin.headers)
    assert rule.json() == {"keepYears": 1, "then": "review"}
    due = await client.get(matter.url("/retention/due"), headers=matter.admin.headers)
    assert [(d["documentId"], d["action"]) for d in due.json()] == [(old, "review")]


@pytest.mark.parametrize(
    "raw",
    [
        {"keepYears": 0, "then": "trash"},
        {"keepYears": 101, "then": "trash"},
        {"keepYears": True, "then": "trash"},
        {"keepYears": "7", "then": "review"},
        {"keepYears": 7, "then": "shred"},
        {"keepYears": 7, "then": "trash", "extra": 1},
        [7, "trash"],
    ],
)
def test_a_stored_or_sent_rule_is_checked_whoever_sends_it(raw: object) -> None:
    """`parse` checks rules that reach the domain by other ways than /api/v1's schema (a
    template's blueprint, a stored project): 1 to 100 years, "trash" or "review"."""
    with pytest.raises(Invalid):
        retention.parse(raw)


def test_a_rule_of_one_to_a_hundred_years_is_accepted() -> None:
    assert retention.parse({"keepYears": 1, "then": "trash"}) == retention.Rule(1, "trash")
    assert retention.parse({"keepYears": 100, "then": "review"}) == retention.Rule(100, "review")
    assert retention.parse(None) is None


async def test_the_purge_runs_hourly_and_retention_daily(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    clock = Clock()
    state = app.state.casefolio
    keeper = Housekeeper(state.settings, state.db, state.blobs, clock=clock)
    assert await keeper.run_once() == ["purge", "retention"]

    clock.advance(59 * 60)
    assert await keeper.run_once() == []
    clock.advance(60)
    assert await keeper.run_once() == ["purge"]
    clock.advance(23 * 3600 - 60)
    assert await keeper.run_once() == ["purge"]
    clock.advance(60)  # a day after the first round, a minute after the last purge
    assert await keeper.run_once() == ["retention"]
