"""What a server process logs, and what it must never log.

The access log names each request's method, path and status, with the query string, except
secrets a URL may carry: the values of parameters whose names look like credentials (a token
sent by mistake as `?token=…` must not land in a log file, nor the CSRF token the plain
upload form sends as `?csrf=…`), and the secret of a set-password link
(`/set-password/<secret>`). No request header is ever logged, so neither `Authorization`
nor `X-API-Token` is. casefolio's own messages (`casefolio.*` loggers) go to the server's
error stream with its level, and name a request's path the same way.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote, unquote_plus

#: A query parameter whose name contains one of these (any case) has its value redacted.
CREDENTIAL_WORDS = ("token", "key", "secret", "password", "apikey", "signature", "csrf")
#: Paths whose next segment is a secret (a set-password link is the credential itself), also
#: as a mistyped link spells it (`//set-password/…`, `/set-password;x/…`), matched decoded.
_SECRET_SEGMENT = re.compile(r"^(/+set-password(?:;[^/]*)?/+)[^/?#]+", re.IGNORECASE)

REDACTED = "[redacted]"


def _looks_like_credential(name: str) -> bool:
    lowered = unquote_plus(name).lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


def redact_target(target: str) -> str:
    """Given a request target (`/path?a=1&token=x`) or a path, return it with the secrets it
    carries hidden: credential-like query values and a set-password link's secret.

    Names and the order of parameters stay, so the line still says what was asked.
    """
    path, sep, query = target.partition("?")
    if _SECRET_SEGMENT.match(decoded := unquote(path)):
        path = _SECRET_SEGMENT.sub(lambda m: m.group(1) + REDACTED, decoded)
    if not sep:
        return path
    parts = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and _looks_like_credential(name) else item)
    return f"{path}?{'&'.join(parts)}"


class RedactSecrets(logging.Filter):
    """Hides the secrets of request targets in access log records, before any formatter
    sees them.

    uvicorn logs `(client, method, path with query, http version, status)` as the record's
    arguments; granian a mapping with `path` and `query_string`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        elif isinstance(args, dict) and isinstance(args.get("path"), str):
            query = args.get("query_string")
            target = redact_target(args["path"] + (f"?{query}" if query else ""))
            path, _, query = target.partition("?")
            record.args = {**args, "path": path, "query_string": query}
        return True


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the access log redacted and casefolio's own
    loggers printed like uvicorn's."""
    from uvicorn.config import LOGGING_CONFIG

    return _redacted(LOGGING_CONFIG, level, handler="default")


def granian_log_config(level: str) -> dict[str, Any]:
    """granian's logging configuration, with the access log (off unless asked for) redacted,
    plus casefolio's own loggers."""
    from granian.log import LOGGING_CONFIG

    return _redacted(LOGGING_CONFIG, level, handler="console")


def _redacted(server_config: dict[str, Any], level: str, *, handler: str) -> dict[str, Any]:
    """A copy of a server's logging configuration with RedactSecrets on its access handler
    and casefolio's loggers sent to `handler` (the server's own error-stream handler)."""
    config: dict[str, Any] = copy.deepcopy(server_config)
    config["filters"] = {"redact_secrets": {"()": RedactSecrets}}
    config["handlers"]["access"]["filters"] = ["redact_secrets"]
    config["loggers"]["casefolio"] = {
        "handlers": [handler],
        "level": level.upper(),
        "propagate": False,
    }
    return config
