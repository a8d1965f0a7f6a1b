"""`casefolio init --password-stdin` and `casefolio users set-password`: the web password is
read from standard input, checked, and stored only as an Argon2id hash."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from casefolio.cli import app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import accounts, users, websessions
from casefolio.domain.errors import Unauthenticated
from casefolio.storage import BlobStore
from tests.cli.conftest import cli_env, in_db


def _signs_in(settings: Settings, email: str, password: str) -> bool:
    async def work(db: Database, _: BlobStore) -> bool:
        async with db.read() as session:
            try:
                await accounts.authenticate(session, email=email, password=password)
            except Unauthenticated:
                return False
            return True

    return bool(in_db(settings, work))


def _hash(settings: Settings, email: str) -> str | None:
    async def work(db: Database, _: BlobStore) -> str | None:
        async with db.read() as session:
            return (await users.get_by_email(session, email=email)).password_hash

    found = in_db(settings, work)
    return found if isinstance(found, str) else None


def test_init_reads_the_operators_password_from_stdin(settings: Settings) -> None:
    runner = CliRunner()
    args = ["init", "--email", "op@example.com", "--name", "Op", "--password-stdin"]
    done = runner.invoke(app, args, env=cli_env(settings), input="a long password\n")
    assert done.exit_code == 0, done.output
    assert "a long password" not in done.output
    stored = _hash(settings, "op@example.com")
    assert stored is not None and stored.startswith("$argon2id$")
    assert _signs_in(settings, "op@example.com", "a long password")


def test_init_without_a_terminal_says_how_to_set_a_password_later(settings: Settings) -> None:
    runner = CliRunner()
    args = ["init", "--email", "op@example.com", "--name", "Op"]
    done = runner.invoke(app, args, env=cli_env(settings), input="")
    assert done.exit_code == 0, done.output
    assert "casefolio users set-password op@example.com" in done.output
    assert _hash(settings, "op@example.com") is None


def test_set_password_refuses_a_short_one_and_keeps_the_old(settings: Settings) -> None:
    runner = CliRunner()
    env = cli_env(settings)
    args = ["init", "--email", "op@example.com", "--name", "Op", "--password-stdin"]
    assert runner.invoke(app, args, env=env, input="first password\n").exit_code == 0
    short = runner.invoke(
        app,
        ["users", "set-password", "op@example.com", "--password-stdin"],
        env=env,
        input="short\n",
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    assert _signs_in(settings, "op@example.com", "first password")
    changed = runner.invoke(
        app,
        ["users", "set-password", "op@example.com", "--password-stdin"],
        env=env,
        input="second password\n",
    )
    assert changed.exit_code == 0, changed.output
    assert _signs_in(settings, "op@example.com", "second password")
    assert not _signs_in(settings, "op@example.com", "first password")


def test_users_deactivate_ends_the_users_web_sessions(settings: Settings) -> None:
    runner = CliRunner()
    env = cli_env(settings)
    args = ["init", "--email", "op@example.com", "--name", "Op", "--password-stdin"]
    assert runner.invoke(app, args, env=env, input="a long password\n").exit_code == 0
    lifetimes = websessions.Lifetimes(idle=timedelta(hours=1), absolute=timedelta(hours=8))

    async def open_one(db: Database, _: BlobStore) -> str:
        async with db.write() as session:
            user = await users.get_by_email(session, email="op@example.com")
            return (await websessions.open_session(session, user_id=user.id)).secret

    secret = in_db(settings, open_one)
    assert isinstance(secret, str)

    async def signed_in(db: Database, _: BlobStore) -> bool:
        async with db.read() as session:
            found = await websessions.resolve(session, secret=secret, lifetimes=lifetimes)
            return found is not None

    assert in_db(settings, signed_in) is True
    assert runner.invoke(app, ["users", "deactivate", "op@example.com"], env=env).exit_code == 0
    assert runner.invoke(app, ["users", "reactivate", "op@example.com"], env=env).exit_code == 0
    assert in_db(settings, signed_in) is False
