"""init, users, tokens and settings commands, run against the test database without a server."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from casefolio.cli import app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Document, Folder, Project
from casefolio.domain import templates
from casefolio.storage import BlobStore
from tests.cli.conftest import in_db, table_rows

runner = CliRunner()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "CASEFOLIO_DATA_DIR": str(settings.data_dir),
        "CASEFOLIO_DATABASE_URL": settings.effective_database_url,
    }


def _ok(settings: Settings, *args: str) -> str:
    result = runner.invoke(app, list(args), env=_env(settings))
    assert result.exit_code == 0, result.output
    return result.output


def test_init_creates_operator_switches_api_on_and_prints_a_token(settings: Settings) -> None:
    out = _ok(settings, "init", "--email", "op@example.com", "--name", "Op")
    assert re.search(r"^cf_[\w-]{40,}$", out, re.M)
    assert "integrations API is on" in out
    assert "integrations API: on" in _ok(settings, "settings")
    users = _ok(settings, "users", "list")
    assert "op@example.com" in users and "yes" in users


def test_users_and_tokens_lifecycle(settings: Settings) -> None:
    _ok(settings, "users", "create", "--email", "ann@example.com", "--name", "Ann")
    secret = _ok(
        settings,
        "tokens",
        "create",
        "--email",
        "ann@example.com",
        "--name",
        "sync",
        "--rate-limit",
        "7",
    ).strip()
    assert secret.startswith("cf_")
    listed = _ok(settings, "tokens", "list", "--email", "ann@example.com")
    assert secret not in listed
    # The token's row: id, user, name, prefix, per minute, last used.
    cells = next(row for row in table_rows(listed) if "sync" in row)
    assert cells[2] == "sync" and cells[4] == "7", listed
    token_id = re.fullmatch(r"(\d+)", cells[0])
    assert token_id, listed
    assert "revoked" in _ok(settings, "tokens", "revoke", token_id.group(1))
    assert "sync" not in _ok(settings, "tokens", "list", "--email", "ann@example.com")


def test_errors_are_red_lines_with_exit_code_1(settings: Settings) -> None:
    _ok(settings, "users", "create", "--email", "dup@example.com", "--name", "D")
    again = runner.invoke(
        app, ["users", "create", "--email", "dup@example.com", "--name", "D"], env=_env(settings)
    )
    assert again.exit_code == 1 and "already exists" in again.output
    missing = runner.invoke(app, ["tokens", "revoke", "999"], env=_env(settings))
    assert missing.exit_code == 1 and "not found" in missing.output
    off = _ok(settings, "settings", "--api-off")
    assert "integrations API: off" in off


def test_projects_create_copies_a_template_and_import_fills_the_project(
    settings: Settings, tmp_path: Path
) -> None:
    _ok(settings, "init", "--email", "op@example.com", "--name", "Op")

    async def make_template(db: Database, blobs: BlobStore) -> int:
        async with db.write() as session:
            blueprint = templates.Blueprint(folders=[templates.FolderSpec("Pleadings")])
            made = await templates.create(
                session, who=None, name="Litigation", description="", blueprint=blueprint
            )
            return made.id

    template_id = in_db(settings, make_template)
    out = _ok(settings, "projects", "create", "Smith v Jones", "--template", str(template_id))
    project_id = re.fullmatch(r"Created project (\d+)\.\n", out)
    assert project_id, out
    listed = _ok(settings, "projects", "list")
    row = next(row for row in table_rows(listed) if row[0] == project_id.group(1))
    assert row[1:3] == ["Smith v Jones", str(template_id)], listed

    tree = tmp_path / "tree" / "Pleadings"
    tree.mkdir(parents=True)
    (tree / "claim.txt").write_text("claim")
    imported = _ok(settings, "import", str(tree.parent), "--project", project_id.group(1))
    assert "Summary" in imported

    async def folders_and_titles(db: Database, blobs: BlobStore) -> tuple[list[str], list[str]]:
        async with db.read() as session:
            names = await session.scalars(select(Folder.name).order_by(Folder.id))
            titles = await session.scalars(select(Document.title))
            return list(names), list(titles)

    # The template's folder was reused by the import, not made twice.
    assert in_db(settings, folders_and_titles) == (["Pleadings"], ["claim.txt"])


def test_projects_create_refuses_an_unknown_template_and_changes_nothing(
    settings: Settings,
) -> None:
    _ok(settings, "init", "--email", "op@example.com", "--name", "Op")
    result = runner.invoke(app, ["projects", "create", "X", "--template", "99"], env=_env(settings))
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1

    async def project_names(db: Database, blobs: BlobStore) -> list[str]:
        async with db.read() as session:
            return list(await session.scalars(select(Project.name)))

    assert in_db(settings, project_names) == []
