"""Arguments the database or the clock cannot hold: an id or a duration past its range is
the parser's usage error (exit code 2, the range in the message), text that is not UTF-8
the domain's one red line (exit code 1); never a traceback, and nothing changed."""

from __future__ import annotations

import os
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


def test_an_argument_that_is_not_utf8_is_refused_in_one_line_and_nothing_is_made(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("init", "--email", "op@example.com", "--name", "Op").exit_code == 0
    not_utf8 = os.fsdecode(b"Smith \xff Jones")
    made = invoke("projects", "create", not_utf8)
    assert made.exit_code == 1
    assert "the byte 0xFF of a name that is not UTF-8" in " ".join(made.output.split())
    assert "Smith" not in invoke("projects", "list").output
    acting = invoke("projects", "create", "Fine", "--as", not_utf8)
    assert acting.exit_code == 1 and "No user has the e-mail address" in acting.output
