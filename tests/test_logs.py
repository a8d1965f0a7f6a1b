"""Secrets in URLs (credential-like query values, a set-password link's secret) never reach
the access log (the pure part; the real server's log is checked in
tests/e2e/test_server_logs.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from granian.log import LOGGING_CONFIG as granian_defaults
from uvicorn.config import LOGGING_CONFIG as uvicorn_defaults

from casefolio.logs import RedactSecrets, granian_log_config, redact_target, uvicorn_log_config


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/api/v1/projects", "/api/v1/projects"),
        ("/api/v1/projects?limit=5", "/api/v1/projects?limit=5"),
        ("/p?token=cf_abc&limit=5", "/p?token=[redacted]&limit=5"),
        ("/p?X-API-Token=cf_abc", "/p?X-API-Token=[redacted]"),
        (
            "/p?api_key=1&apiKey=2&APIKEY=3",
            "/p?api_key=[redacted]&apiKey=[redacted]&APIKEY=[redacted]",
        ),
        ("/p?client_secret=s&Password=p", "/p?client_secret=[redacted]&Password=[redacted]"),
        ("/p?X-Amz-Signature=abc&x=1", "/p?X-Amz-Signature=[redacted]&x=1"),
        ("/p?to%6Ben=cf_abc", "/p?to%6Ben=[redacted]"),  # a percent-encoded name too
        ("/p?token", "/p?token"),  # no value, nothing to hide
        ("/p?title=token&q=", "/p?title=token&q="),  # a value that says "token" is no secret
        ("/projects/7/upload?csrf=abc", "/projects/7/upload?csrf=[redacted]"),
        ("/set-password/Zx_9-a", "/set-password/[redacted]"),
        ("/set-password/Zx_9-a?next=/", "/set-password/[redacted]?next=/"),
        ("/projects/set-password/7", "/projects/set-password/7"),
        ("//set-password/Zx_9-a", "//set-password/[redacted]"),
        ("/set-password;x/Zx_9-a", "/set-password;x/[redacted]"),
        ("/set%2Dpassword/Zx_9-a", "/set-password/[redacted]"),
        ("/SET-PASSWORD/Zx_9-a", "/SET-PASSWORD/[redacted]"),
    ],
)
def test_redact_target_hides_the_secrets_of_a_url(target: str, logged: str) -> None:
    assert redact_target(target) == logged


def test_access_record_is_redacted_before_formatting() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/p?token=cf_secret", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /p?token=[redacted] HTTP/1.1" 200'


def test_granian_access_record_is_redacted_before_formatting() -> None:
    args = {"method": "GET", "path": "/set-password/s3cret", "query_string": "csrf=t&a=1"}
    record = logging.LogRecord(
        "granian.access", logging.INFO, __file__, 1, "%(path)s?%(query_string)s", (args,), None
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "/set-password/[redacted]?csrf=[redacted]&a=1"


@pytest.mark.parametrize(
    ("log_config", "handler"),
    [(uvicorn_log_config, "default"), (granian_log_config, "console")],
)
def test_each_server_redacts_its_access_log_and_prints_ours(
    log_config: Callable[[str], dict[str, Any]], handler: str
) -> None:
    config = log_config("debug")
    assert config["filters"] == {"redact_secrets": {"()": RedactSecrets}}
    assert config["handlers"]["access"]["filters"] == ["redact_secrets"]
    assert config["loggers"]["casefolio"] == {
        "handlers": [handler],
        "level": "DEBUG",
        "propagate": False,
    }
    # A copy: the servers' own configurations are left as they were.
    for untouched in (uvicorn_defaults, granian_defaults):
        assert "casefolio" not in untouched["loggers"]
