"""init, users, tokens and settings commands, run against the test database without a server."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from casefolio.cli import app
from casefolio.config import Settings

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
    assert "sync" in listed and "7" in listed and secret not in listed
    token_id = re.search(r"^│\s*(\d+)\s*│", listed, re.M)
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
