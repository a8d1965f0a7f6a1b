"""Built-in roles and the capabilities they grant on a project."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Capability(StrEnum):
    DOCUMENTS_READ = "documents.read"
    DOCUMENTS_WRITE = "documents.write"
    DOCUMENTS_DELETE = "documents.delete"
    FIELDS_WRITE = "fields.write"
    FOLDERS_WRITE = "folders.write"
    MEMBERS_MANAGE = "members.manage"
    SETTINGS_MANAGE = "settings.manage"
    HOLDS_MANAGE = "holds.manage"


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    rank: int
    capabilities: frozenset[Capability]


_READ = frozenset({Capability.DOCUMENTS_READ})
_WRITE = _READ | {Capability.DOCUMENTS_WRITE, Capability.FIELDS_WRITE, Capability.FOLDERS_WRITE}
_ADMIN = _WRITE | {
    Capability.DOCUMENTS_DELETE,
    Capability.MEMBERS_MANAGE,
    Capability.SETTINGS_MANAGE,
    Capability.HOLDS_MANAGE,
}

READ_ONLY = Role("read-only", "Read Only", 1, _READ)
READ_WRITE = Role("read-write", "Read Write", 2, _WRITE)
PROJECT_ADMIN = Role("project-admin", "Project Admin", 3, _ADMIN)

ROLES: tuple[Role, ...] = (READ_ONLY, READ_WRITE, PROJECT_ADMIN)
_BY_KEY = {key: role for role in ROLES for key in (role.id, role.name.lower())}
_BY_RANK = {role.rank: role for role in ROLES}
DEFAULT_ROLE = READ_WRITE
ALL_CAPABILITIES = frozenset(Capability)


def role_named(name: str) -> Role | None:
    """Given a role's name ("Read Only") or id ("read-only"), case-insensitive, return it."""
    return _BY_KEY.get(name.strip().lower())


def strongest(names: list[str]) -> Role | None:
    """Given the role names granted to someone, return the strongest, or None for no grant."""
    roles = [role for name in names if (role := role_named(name)) is not None]
    return max(roles, key=lambda role: role.rank, default=None)


def role_ranked(rank: int | None) -> Role | None:
    """Given a role's rank (or None for no grant), return the role."""
    return None if rank is None else _BY_RANK[rank]
