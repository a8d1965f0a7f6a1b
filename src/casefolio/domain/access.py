"""Every permission rule in one place: system-level rules here, project rules below them."""

from __future__ import annotations

from casefolio.domain.errors import Forbidden
from casefolio.domain.principal import Principal


def require_operator(who: Principal, action: str) -> None:
    """Raise Forbidden unless the caller is an operator ("Only an operator can <action>.")."""
    if not who.is_operator:
        raise Forbidden(f"Only an operator can {action}.")


def require_self_or_operator(who: Principal, user_id: int, action: str) -> None:
    if who.user_id != user_id and not who.is_operator:
        raise Forbidden(f"Only an operator can {action}.")
