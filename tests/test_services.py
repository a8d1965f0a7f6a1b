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
    env = {"CASEFOLIO_TEST_DATABASE_URL": NOWHERE, "CI": ci, "CASEFOLIO_TEST_SPLIT": ""}
    done = _pytest(tmp_path, env, "-rsfE")
    assert outcome in done.stdout, done.stdout + done.stderr
    assert "needs PostgreSQL at 127.0.0.1:1" in done.stdout, done.stdout


def _pytest(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """pytest with this suite's conftest and settings on the tests in `folder`."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", str(ROOT / "pyproject.toml"),
         "-q", "-p", "no:cacheprovider", *args, str(folder)],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


SPLIT_TESTS = """
import pytest

@pytest.fixture
def pg_settings():
    pass

def test_suite_database(database_url): pass
def test_fresh_suite_database(fresh_database_url): pass
def test_both(database_url, pg_settings): pass
def test_own_postgres(pg_settings): pass
def test_no_database(tmp_path): pass
"""


@pytest.mark.parametrize(
    ("split", "postgres", "runs"),
    [
        ("true", "", {"suite_database", "fresh_suite_database", "both", "no_database"}),
        ("true", NOWHERE, {"suite_database", "fresh_suite_database", "both", "own_postgres"}),
        ("", NOWHERE, {"suite_database", "fresh_suite_database", "both", "own_postgres",
                       "no_database"}),
    ],
)  # fmt: skip
def test_split_suites_together_run_every_test_and_each_database_test_in_both(
    tmp_path: Path, split: str, postgres: str, runs: set[str]
) -> None:
    (tmp_path / "test_split.py").write_text(SPLIT_TESTS)
    env = {"CASEFOLIO_TEST_SPLIT": split, "CASEFOLIO_TEST_DATABASE_URL": postgres}
    done = _pytest(tmp_path, env, "--collect-only")
    collected = {line.rsplit("::test_", 1)[1] for line in done.stdout.splitlines() if "::" in line}
    assert collected == runs, done.stdout + done.stderr
