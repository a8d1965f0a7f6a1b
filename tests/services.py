"""The services tests say they need (markers `postgres`, `redis`, `s3`, `browser`, `ocr`), and
how to tell whether one is there. A test whose service is missing skips locally with a one-line
reason, and fails in CI (`CI=true`), where every service must be up (tests/conftest.py)."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import socket
from collections.abc import Callable

from sqlalchemy.engine import make_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = ("127.0.0.1", 6379)


def redis_url(database: int) -> str:
    """Redis database `database` (13-15) for a SQLite run, three below for a PostgreSQL one:
    `make test` runs both suites at once, and both start their token ids at 1, so their
    rate-limit counters must not meet."""
    if os.environ.get("CASEFOLIO_TEST_DATABASE_URL"):
        database -= 3
    return f"redis://{REDIS[0]}:{REDIS[1]}/{database}"


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def postgres_missing(admin_url: str) -> str | None:
    url = make_url(admin_url or DEFAULT_POSTGRES)
    host, port = url.host or "127.0.0.1", url.port or 5432
    if _listening(host, port):
        return None
    return f"needs PostgreSQL at {host}:{port} (set CASEFOLIO_TEST_DATABASE_URL)"


def redis_missing() -> str | None:
    return None if _listening(*REDIS) else "needs Redis at {}:{}".format(*REDIS)


def s3_missing() -> str | None:
    if importlib.util.find_spec("moto") is None:
        return "needs the moto S3 server (uv sync installs it)"
    return None


def browser_missing() -> str | None:
    if shutil.which("chromium") is None:
        return "needs chromium on PATH (apt-get install chromium)"
    return None


def ocr_missing() -> str | None:
    for program, package in (("tesseract", "tesseract-ocr"), ("pdftoppm", "poppler-utils")):
        if shutil.which(program) is None:
            return f"needs {program} on PATH (apt-get install {package})"
    return None


def checks(admin_url: str) -> dict[str, Callable[[], str | None]]:
    """Each marker's check, cached for the run: None when the service is there, else why not."""
    return {
        "postgres": functools.cache(lambda: postgres_missing(admin_url)),
        "redis": functools.cache(redis_missing),
        "s3": functools.cache(s3_missing),
        "browser": functools.cache(browser_missing),
        "ocr": functools.cache(ocr_missing),
    }


# Fixtures that stand for services: a test using one needs them, marked or not.
FIXTURE_SERVICES: dict[str, tuple[str, ...]] = {
    "pg_settings": ("postgres",),
    "pg_url": ("postgres",),  # tests/e2e/test_scale_out.py
    "shared_env": ("postgres", "redis", "s3"),  # tests/e2e/test_scale_out.py
    "redis_apps": ("redis",),  # tests/api/v1/test_http_behaviour.py
    "s3_endpoint": ("s3",),
    "chromium_path": ("browser",),
}
