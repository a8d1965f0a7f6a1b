"""Who is calling: the token's owner, with the token that authenticated the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Person(Protocol):
    """What a principal is made from: a user row (db/models.py's User)."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def is_operator(self) -> bool: ...


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    name: str
    is_operator: bool
    token_id: int | None = None
    rate_limit: int | None = None

    @classmethod
    def of(
        cls, user: Person, *, token_id: int | None = None, rate_limit: int | None = None
    ) -> Principal:
        """The principal of `user`, authenticated by the token `token_id` (None: no token)."""
        return cls(user.id, user.email, user.name, user.is_operator, token_id, rate_limit)

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>"
