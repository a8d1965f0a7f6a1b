"""Users: the people (and integrations) that hold tokens and project grants."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import User
from casefolio.domain import access, events, text, websessions
from casefolio.domain.errors import Conflict, Invalid, NotFound, found
from casefolio.domain.pages import Page, PageRequest, fetch_id_page
from casefolio.domain.principal import Principal


@dataclass(frozen=True)
class NewUser:
    email: str
    name: str
    is_operator: bool = False


def normalise_email(email: str) -> str:
    """Given an e-mail address, return it checked and trimmed, or raise Invalid."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise Invalid(
            f"'{email}' is not a valid e-mail address: {exc}",
            [{"field": "email", "message": str(exc)}],
        ) from exc


def email_key(email: str) -> str:
    """Given an e-mail address as someone typed it, return the key its user is stored and
    found under: the address in the normal form a user is created with (so the Unicode,
    NFD or xn-- spelling of one address finds the same user), in lower case."""
    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        email = email.strip()  # no user has it; looked up as typed, to find nothing
    return email.lower()


async def get(session: AsyncSession, *, user_id: int) -> User:
    return found(await session.get(User, user_id), f"User {user_id} not found.")


async def get_by_email(session: AsyncSession, *, email: str) -> User:
    user = await find_by_email(session, email=email)
    if user is None:
        raise NotFound(f"No user has the e-mail address '{email}'.")
    return user


async def find_by_email(session: AsyncSession, *, email: str) -> User | None:
    key = email_key(email)
    if text.unstorable(key) is not None:
        return None  # no stored address holds it (an argument that is not UTF-8, say)
    return (await session.scalars(select(User).where(User.email_key == key))).one_or_none()


async def list_page(session: AsyncSession, *, page: PageRequest) -> Page[User]:
    return await fetch_id_page(session, select(User), id_column=User.id, page=page)


async def create_many(session: AsyncSession, *, new_users: list[NewUser]) -> list[User]:
    """Create users; all or none. A taken e-mail (also within the batch) is a Conflict."""
    if not new_users:
        raise Invalid("Send at least one user.")
    created: list[User] = []
    for new in new_users:
        email = normalise_email(new.email)
        name = text.required_name(new.name, of="user")
        created.append(
            User(email=email, email_key=email.lower(), name=name, is_operator=new.is_operator)
        )
    keys = [u.email_key for u in created]
    taken = set(await session.scalars(select(User.email_key).where(User.email_key.in_(keys))))
    batch: dict[str, str] = {}
    for user in created:
        if user.email_key in taken:
            raise Conflict(f"A user with the e-mail address '{user.email}' already exists.")
        if (first := batch.get(user.email_key)) is not None:
            raise Conflict(
                f"The e-mail address '{user.email}' is in this request twice (also as "
                f"'{first}'): one address is one user."
            )
        batch[user.email_key] = user.email
    # Every check before the first insert, and the inserts in one order: two batches that
    # share addresses wait for each other (the second then finds them taken, a 409) rather
    # than each holding one the other needs (PostgreSQL's deadlock, which ends one of them).
    in_order = sorted(created, key=lambda u: u.email_key)
    session.add_all(in_order)
    await session.flush()
    events.emit(
        session,
        *(events.UserCreated(subject_id=u.id, details={"email": u.email}) for u in created),
    )
    return created


async def set_active(
    session: AsyncSession, *, who: Principal | None, user_id: int, active: bool
) -> User:
    """Deactivate or reactivate a user; `who` None is the local administrator (CLI).

    A deactivated user's tokens answer 401 (domain/tokens.authenticate) and come back with
    reactivation. Users are never deleted: documents and versions keep their author.
    """
    if who is not None:
        access.require_operator(who, "deactivate or reactivate users")
        if who.user_id == user_id and not active:
            # It would lock the caller out with the very token that made the request.
            raise Conflict(
                "You cannot deactivate yourself; another operator can, or "
                "`casefolio users deactivate` on the server."
            )
    user = await get(session, user_id=user_id)
    if user.active != active:
        kind = events.UserReactivated if active else events.UserDeactivated
        events.emit(session, kind(subject_id=user_id, details={"email": user.email}))
    user.active = active
    if not active:
        # Signed out of the web pages at once, in every process (domain/websessions.py).
        await websessions.end_all(session, user_id=user_id)
    await session.flush()
    return user


async def set_operator(
    session: AsyncSession, *, who: Principal | None, user_id: int, is_operator: bool
) -> User:
    """Give or take a user's operator flag (operators only, never their own; `who` None is
    the local administrator: `casefolio init`)."""
    if who is not None:
        access.require_operator(who, "change who is an operator")
        if who.user_id == user_id and not is_operator:
            raise Conflict("You cannot take away your own operator flag; another operator can.")
    user = await get(session, user_id=user_id)
    if user.is_operator != is_operator:
        kind = events.OperatorGranted if is_operator else events.OperatorRevoked
        events.emit(session, kind(subject_id=user_id, details={"email": user.email}))
    user.is_operator = is_operator
    await session.flush()
    return user
