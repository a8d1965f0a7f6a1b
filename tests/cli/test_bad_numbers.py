"""Ids and durations past what the database or the clock holds are refused by the command
line's own parser, with the range in the message (exit code 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from casefolio.db.models import MAX_ID
from tests.cli.conftest import Invoke

PAST_BIGINT = str(MAX_ID + 1)


@pytest.mark.parametrize(
    "args",
    [
        ("projects", "create", "Smith v Jones", "--template", PAST_BIGINT),
        ("import", ".", "--project", PAST_BIGINT),
        ("import", ".", "--project", "1", "--folder", PAST_BIGINT),
        ("export", "--project", PAST_BIGINT, "out"),
        ("audit", "export", "--project", PAST_BIGINT),
        ("retention", "report", "--project", PAST_BIGINT),
        ("reindex", "--project", PAST_BIGINT),
        ("tokens", "revoke", PAST_BIGINT),
        ("gc", "--grace-minutes", "9999999999"),
    ],
)
def test_a_number_past_its_range_is_a_usage_error_and_changes_nothing(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("init", "--email", "op@example.com", "--name", "Op").exit_code == 0
    before = invoke("projects", "list").output
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "less than or equal to" in result.output
    assert invoke("projects", "list").output == before
    assert not (tmp_path / "out").exists()
