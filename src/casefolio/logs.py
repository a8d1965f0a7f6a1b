"""What a server process logs, and what it must never log.

The access log names each request's method, path and status, with the query string, except
the values of parameters whose names look like credentials (a token sent by mistake as
`?token=…` must not land in a log file). No request header is ever logged, so neither
`Authorization` nor `X-API-Token` is. casefolio's own messages (`casefolio.*` loggers) go
to the server's error stream with its level.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from urllib.parse import unquote_plus

#: A query parameter whose name contains one of these (any case) has its value redacted.
CREDENTIAL_WORDS = ("token", "key", "secret", "password", "apikey", "signature")

REDACTED = "[redacted]"


def _looks_like_credential(name: str) -> bool:
    lowered = unquote_plus(name).lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


def redact_query(target: str) -> str:
    """Given a request target (`/path?a=1&token=x`), return it with credential values hidden.

    Names and the order of parameters stay, so the line still says what was asked.
    """
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and _looks_like_credential(name) else item)
    return f"{path}?{'&'.join(parts)}"


class RedactQuery(logging.Filter):
    """Hides credential-like query values in uvicorn's access log records.

    uvicorn logs `(client, method, path with query, http version, status)` as the record's
    arguments; the path is rewritten before any formatter sees it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the access log redacted and casefolio's own
    loggers printed like uvicorn's."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_query": {"()": RedactQuery}}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    config["loggers"]["casefolio"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def granian_log_config(level: str) -> dict[str, Any]:
    """granian's logging configuration plus casefolio's own loggers. (granian's access log,
    off unless asked for, logs the path without its query.)"""
    from granian.log import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["casefolio"] = {
        "handlers": ["console"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
