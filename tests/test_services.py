"""A test names the services it needs; without one it skips locally and fails in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parents[1]
NOWHERE = "postgresql://postgres@127.0.0.1:1/postgres"  # port 1: nothing listens


def test_a_missing_postgres_is_named_with_its_address() -> None:
    assert services.postgres_missing(NOWHERE) == (
        "needs PostgreSQL at 127.0.0.1:1 (set CASEFOLIO_TEST_DATABASE_URL)"
    )


@pytest.mark.redis
def test_a_running_redis_is_found() -> None:
    assert services.redis_missing() is None


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_a_marked_test_skips_locally_and_fails_in_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    (tmp_path / "test_needs_pg.py").write_text(
        "import pytest\n\n@pytest.mark.postgres\ndef test_needs_pg():\n    pass\n"
    )
    env = {**os.environ, "CASEFOLIO_TEST_DATABASE_URL": NOWHERE, "CI": ci}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", str(ROOT / "pyproject.toml"),
         "-q", "-rsfE", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert outcome in done.stdout, done.stdout + done.stderr
    assert "needs PostgreSQL at 127.0.0.1:1" in done.stdout, done.stdout
