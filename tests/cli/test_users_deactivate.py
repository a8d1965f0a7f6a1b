"""`casefolio users deactivate|reactivate EMAIL`: the user's tokens stop and start working."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from casefolio.cli import app as cli_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import tokens, users
from casefolio.domain.errors import Unauthenticated
from casefolio.storage import BlobStore
from tests import traces
from tests.cli.conftest import Invoke, cli_env, in_db


def _issue(settings: Settings, email: str) -> str:
    async def work(db: Database, _: BlobStore) -> str:
        async with db.write() as session:
            [user] = await users.create_many(session, new_users=[users.NewUser(email, "Ann")])
            return (await tokens.issue(session, who=None, user_id=user.id, name="t")).secret

    secret = in_db(settings, work)
    assert isinstance(secret, str)
    return secret


def _state(settings: Settings, email: str, secret: str) -> tuple[bool, str]:
    """The user's `active` flag, and what authenticating with the secret says."""

    async def work(db: Database, _: BlobStore) -> tuple[bool, str]:
        async with db.read() as session:
            user = await users.get_by_email(session, email=email)
            try:
                await tokens.authenticate(session, secret=secret)
            except Unauthenticated as exc:
                return user.active, exc.message
            return user.active, "ok"

    state = in_db(settings, work)
    assert isinstance(state, tuple)
    return state


def test_deactivate_then_reactivate_by_email(settings: Settings, invoke: Invoke) -> None:
    secret = _issue(settings, "ann@example.com")

    off = invoke("users", "deactivate", "ANN@example.com")
    assert off.exit_code == 0, off.output
    assert "ann@example.com is deactivated" in off.output
    assert _state(settings, "ann@example.com", secret) == (
        False,
        "The provided API token's user is deactivated.",
    )
    again = invoke("users", "deactivate", "ann@example.com")
    assert again.exit_code == 0 and "was already deactivated" in again.output
    listed = invoke("users", "list")
    assert "ann@example.com" in listed.output and "no" in listed.output

    on = invoke("users", "reactivate", "ann@example.com")
    assert on.exit_code == 0 and "is active again" in on.output
    assert _state(settings, "ann@example.com", secret) == (True, "ok")


@pytest.mark.parametrize("command", ["deactivate", "reactivate"])
def test_an_unknown_address_is_an_error_and_changes_nothing(
    settings: Settings, invoke: Invoke, command: str
) -> None:
    secret = _issue(settings, "ann@example.com")
    refused = invoke("users", command, "nobody@example.com")
    assert refused.exit_code == 1
    assert "No user has the e-mail address 'nobody@example.com'" in refused.output
    assert _state(settings, "ann@example.com", secret) == (True, "ok")


def test_the_commands_writes_to_a_user_are_audited_as_the_cli(
    settings: Settings, invoke: Invoke
) -> None:
    _issue(settings, "ann@example.com")
    start = in_db(settings, lambda db, _: traces.mark(db))
    assert isinstance(start, traces.Mark)

    for args in (("deactivate",), ("deactivate",), ("reactivate",)):
        assert invoke("users", *args, "ann@example.com").exit_code == 0, args
    password = "ann's new password\n"
    done = CliRunner().invoke(
        cli_app,
        ["users", "set-password", "ann@example.com", "--password-stdin"],
        input=password,
        env=cli_env(settings),
    )
    assert done.exit_code == 0, done.output

    found = in_db(settings, lambda db, _: traces.since(db, start))
    assert isinstance(found, traces.Traces)
    assert [(e.action, e.actor_kind, e.actor_user_id) for e in found.entries] == [
        ("user.deactivated", "cli", None),
        ("user.reactivated", "cli", None),
        ("user.password_set", "cli", None),
    ]
    assert all(e.details == {"email": "ann@example.com"} for e in found.entries)
