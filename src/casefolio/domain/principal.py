"""Who is calling: the token's owner, with the token that authenticated the request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    name: str
    is_operator: bool
    token_id: int | None = None
    rate_limit: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>"
