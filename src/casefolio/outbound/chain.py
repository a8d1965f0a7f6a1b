"""The audit trail's hash chain: hash = sha256(previous hash ‖ canonical JSON of the entry)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from casefolio.db.types import rfc3339

#: The "previous hash" of the first entry.
GENESIS = "0" * 64


def entry_document(
    *,
    id: int,
    at: datetime,
    actor_kind: str,
    actor_user_id: int | None,
    actor_token_id: int | None,
    client: str | None,
    action: str,
    target_type: str,
    target_id: int | None,
    project_id: int | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """The entry as the API, the export and the hash see it."""
    return {
        "id": id,
        "at": rfc3339(at),
        "actor": {"kind": actor_kind, "userId": actor_user_id, "tokenId": actor_token_id},
        "client": client,
        "action": action,
        "target": {"type": target_type, "id": target_id, "projectId": project_id},
        "details": details,
    }


def canonical(document: dict[str, Any], *, strict: bool = False) -> bytes:
    """The entry's bytes as the hash covers them. Details casefolio never writes (a lone
    surrogate, a number past a float's range: only a restore or an edit in the database
    brings them, and PostgreSQL's json holds both) have bytes too, the surrogate's code
    point as UTF-8 would write it and the number as JSON's Infinity: refused, one such entry
    stopped the sealing of every later one for good. Every other entry's bytes are the same
    either way. `strict` refuses them (ValueError), as a writer does."""
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=not strict
    )
    return text.encode("utf-8", "strict" if strict else "surrogatepass")


def next_hash(previous: str, document: dict[str, Any], *, strict: bool = False) -> str:
    return hashlib.sha256(previous.encode() + canonical(document, strict=strict)).hexdigest()
