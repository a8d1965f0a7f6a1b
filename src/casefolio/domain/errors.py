"""Domain errors. The HTTP layer maps each class to one status code (api/errors.py)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class DomainError(Exception):
    """Base class; ``message`` is written for a person reading the API response."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class Forbidden(DomainError):
    """The caller can see the thing but lacks a capability."""


class Conflict(DomainError):
    """The request contradicts the stored state (a duplicate, a taken name, a last version)."""


def found(thing: T | None, message: str) -> T:
    """`thing`, which a lookup found, or NotFound with `message` if it found none."""
    if thing is None:
        raise NotFound(message)
    return thing


class Held(Conflict):
    """A deletion refused because legal holds cover what it would destroy; `refusal` is
    the event to audit (in a transaction of its own: the refused one rolls back)."""

    def __init__(self, message: str, hold_ids: list[int], refusal: object) -> None:
        super().__init__(message)
        self.hold_ids = hold_ids
        self.refusal = refusal


class Gone(DomainError):
    """What the request names is no longer kept (a change-feed cursor past retention)."""


class Invalid(DomainError):
    """The request is malformed; ``errors`` lists field-level problems when known."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class WrongPassword(Invalid):
    """The current password, sent to change it, is not right: a guess, which the pages count
    against the account's sign-in budget."""


class TooLarge(DomainError):
    """An upload exceeds the configured maximum size."""


class Unauthenticated(DomainError):
    """No valid credentials."""


class RateLimited(DomainError):
    """The token has spent its request budget for the current window."""

    def __init__(self, message: str, retry_after: int, budget: object = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.budget = budget  # the HTTP layer's view of the spent budget, for its headers
