"""Administration without a running server: init, users, tokens, settings."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.credentials import TTL_SECONDS
from casefolio.cli._common import (
    console,
    fail,
    load_installation,
    load_settings,
    run_in_transaction,
)
from casefolio.cli.probe import next_steps
from casefolio.db.models import MAX_ID
from casefolio.domain import accounts, system, tokens, users
from casefolio.domain.errors import DomainError
from casefolio.domain.pages import MAX_LIMIT, PageRequest

users_app = typer.Typer(help="Create, list, deactivate and reactivate users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command(name="settings")(settings_command)
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")


def read_password(from_stdin: bool, *, prompt: bool) -> str | None:
    """The password to set: the first line of standard input, or asked for on a terminal
    (twice), or None when neither applies (no terminal to ask on: a script that captures
    the output, such as a test or a benchmark, is never left waiting at a prompt)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif prompt and sys.stdin.isatty() and sys.stdout.isatty():
        password = typer.prompt(
            "Password for the web pages", hide_input=True, confirmation_prompt=True
        )
    else:
        return None
    try:
        return accounts.check_password(password)
    except DomainError as exc:
        fail(exc.message)


def init(
    email: Annotated[str, typer.Option(help="E-mail address of the first operator.")],
    name: Annotated[str, typer.Option(help="Name of the first operator.")],
    token_name: Annotated[str, typer.Option(help="Name of the token to create.")] = "init",
    password_stdin: Annotated[
        bool, typer.Option(help="Read the operator's web password from standard input.")
    ] = False,
) -> None:
    """Create the first operator, switch the integrations API on and print a token once.

    The operator's password for the web pages is asked for on a terminal, or read from
    standard input with --password-stdin.
    """
    found = load_installation(create=True)
    settings = found.settings
    password = read_password(password_stdin, prompt=True)

    async def work(session: AsyncSession) -> str:
        # Hashed before the transaction's first statement takes SQLite's write lock.
        new = await accounts.hashed(password) if password is not None else None
        existing = await users.find_by_email(session, email=email)
        if existing is None:
            [user] = await users.create_many(
                session, new_users=[users.NewUser(email, name, is_operator=True)]
            )
        else:
            user = await users.set_operator(
                session, who=None, user_id=existing.id, is_operator=True
            )
        await system.update(session, who=None, integrations_api_enabled=True)
        if new is not None:
            await accounts.set_password(session, user=user, password=new)
        issued = await tokens.issue(session, who=None, user_id=user.id, name=token_name)
        return issued.secret

    secret = run_in_transaction(work, settings=settings)
    console.print(
        f"Operator [bold]{escape(email)}[/bold] is ready and the integrations API is on, "
        f"in the installation in {escape(str(settings.data_dir))}.",
        soft_wrap=True,
    )
    if password is None:
        console.print(
            "No web password was set (no terminal to ask on): set one with "
            f"`casefolio users set-password {escape(email)}`.",
            soft_wrap=True,
        )
    console.print("Your API token (shown only now; keep it safe):")
    console.print(secret, markup=False, highlight=False, soft_wrap=True)
    console.print()
    console.print(next_steps(settings, secret), markup=False, highlight=False, soft_wrap=True)


def settings_command(
    api_on: Annotated[
        bool | None, typer.Option("--api-on/--api-off", help="Switch the integrations API.")
    ] = None,
) -> None:
    """Show system settings, or switch the integrations API on or off."""

    async def work(session: AsyncSession) -> system.SystemSettings:
        return await system.update(session, who=None, integrations_api_enabled=api_on)

    current = run_in_transaction(work)
    state = "on" if current.integrations_api_enabled else "off"
    console.print(f"integrations API: {state}")


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="E-mail address (unique).")],
    name: Annotated[str, typer.Option(help="Display name.")],
    operator: Annotated[bool, typer.Option(help="Make the user an operator.")] = False,
) -> None:
    """Create a user."""

    async def work(session: AsyncSession) -> int:
        [user] = await users.create_many(
            session, new_users=[users.NewUser(email, name, is_operator=operator)]
        )
        return user.id

    console.print(f"Created user {run_in_transaction(work)} <{email}>.")


@users_app.command("set-password")
def set_password(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password for the web pages; their open web sessions end."""
    settings = load_settings()
    password = read_password(password_stdin, prompt=True)
    if password is None:
        fail("No terminal to ask for the password on: use --password-stdin.")

    async def work(session: AsyncSession) -> str:
        # Hashed before the transaction's first statement takes SQLite's write lock.
        new = await accounts.hashed(password)
        user = await users.get_by_email(session, email=email)
        await accounts.set_password(session, user=user, password=new)
        return user.email

    address = run_in_transaction(work, settings=settings)
    console.print(f"The password of {address} is set; their web sessions have ended.")


@users_app.command("list")
def list_users() -> None:
    """List users (the first 1000)."""

    async def work(session: AsyncSession) -> list[tuple[str, ...]]:
        page = await users.list_page(session, page=PageRequest(limit=MAX_LIMIT))
        return [
            (
                str(u.id),
                u.email,
                u.name,
                "yes" if u.is_operator else "",
                "yes" if u.active else "no",
            )
            for u in page.items
        ]

    table = Table("id", "email", "name", "operator", "active")
    for row in run_in_transaction(work):
        table.add_row(*row)
    console.print(table)


@users_app.command("deactivate")
def deactivate_user(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
) -> None:
    """Deactivate a user: their tokens answer 401 until `reactivate`; nothing is deleted."""
    _set_active(email, active=False)


@users_app.command("reactivate")
def reactivate_user(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
) -> None:
    """Reactivate a user: their tokens (those not revoked or expired) work again."""
    _set_active(email, active=True)


def _set_active(email: str, *, active: bool) -> None:
    async def work(session: AsyncSession) -> tuple[str, bool]:
        user = await users.get_by_email(session, email=email)
        was = user.active
        await users.set_active(session, who=None, user_id=user.id, active=active)
        return user.email, was

    address, was = run_in_transaction(work)
    if was == active:
        console.print(f"{address} was already {'active' if active else 'deactivated'}.")
    elif active:
        console.print(f"{address} is active again; their tokens work.")
    else:
        console.print(
            f"{address} is deactivated; their tokens answer 401 (on running servers within "
            f"{TTL_SECONDS:g} seconds)."
        )


@tokens_app.command("create")
def create_token(
    email: Annotated[str, typer.Option(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")],
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests per minute (default: the configured limit).")
    ] = None,
) -> None:
    """Create a token and print its secret (shown only once)."""

    async def work(session: AsyncSession) -> str:
        user = await users.get_by_email(session, email=email)
        issued = await tokens.issue(
            session, who=None, user_id=user.id, name=name, rate_limit=rate_limit
        )
        return issued.secret

    console.print(run_in_transaction(work), markup=False, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def list_tokens(
    email: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
) -> None:
    """List active tokens (never their secrets)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> list[tuple[str, ...]]:
        user_id = (await users.get_by_email(session, email=email)).id if email else None
        page = await tokens.list_page(
            session, who=None, user_id=user_id, page=PageRequest(limit=MAX_LIMIT)
        )
        return [
            (
                str(t.id),
                str(t.user_id),
                t.name,
                t.prefix + "…",
                str(t.rate_limit or settings.rate_limit_per_minute),
                t.last_used_at.isoformat() if t.last_used_at else "never",
            )
            for t in page.items
        ]

    table = Table("id", "user", "name", "prefix", "per minute", "last used")
    for row in run_in_transaction(work, settings=settings):
        table.add_row(*row)
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The token's id.")],
) -> None:
    """Revoke a token; requests with it get 401 from now on."""

    async def work(session: AsyncSession) -> bool:
        return await tokens.revoke(session, who=None, token_id=token_id)

    if run_in_transaction(work):
        console.print(f"Token {token_id} revoked.")
    else:
        console.print(f"Token {token_id} was already revoked.")
