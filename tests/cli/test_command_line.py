"""The real `casefolio` executable, as a person runs it: which installation it finds, and what
it prints when something is wrong (one red line, exit code 1)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from casefolio import __version__
from tests.servers import CASEFOLIO, free_port, init_token, running_server, server_env


def person_env(home: Path, **variables: str) -> dict[str, str]:
    """A shell with no CASEFOLIO_* variables and its per-user data folder under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFOLIO_")}
    env |= {"XDG_DATA_HOME": str(home / "share"), "COLUMNS": "60", "NO_COLOR": "1"}
    return env | variables


def casefolio(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASEFOLIO, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return (done.stdout + done.stderr).splitlines()


def test_version(tmp_path: Path) -> None:
    done = casefolio(person_env(tmp_path), "--version")
    assert (done.returncode, done.stdout) == (0, f"casefolio {__version__}\n")


def test_help_paragraphs_follow_the_terminal_width(tmp_path: Path) -> None:
    # A docstring breaks its lines at 100 columns; on a wider terminal each paragraph is one
    # line (not the docstring's lines, which broke mid-sentence).
    done = casefolio(person_env(tmp_path, COLUMNS="200"), "gc", "--help")
    assert done.returncode == 0
    said = [line.strip() for line in done.stdout.splitlines()]
    assert (
        "Destructive unless --dry-run. Blobs and staging files younger than the grace period "
        "are kept, so uploads that are still running are safe." in said
    )


def test_output_piped_to_a_reader_that_stops_early_is_no_database_error(tmp_path: Path) -> None:
    # `casefolio audit export | head -1`: the reader goes away, and writing raises
    # BrokenPipeError, a ConnectionError; it was reported as "Cannot reach the database".
    env = person_env(tmp_path)
    assert casefolio(env, "init", "--email", "op@example.com", "--name", "Op").returncode == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [CASEFOLIO, "audit", "export"],
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr == ""


REFUSED_PG = "postgresql://postgres@127.0.0.1:{port}/casefolio"
COMMANDS = [
    ("users", "list"),
    ("tokens", "list"),
    ("projects", "list"),
    ("migrate",),
    ("init", "--email", "op@example.com", "--name", "Op"),
    ("settings",),
    ("gc", "--dry-run"),
    ("export", "--project", "1", "out"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_refused_database_is_one_line_and_exit_code_1(tmp_path: Path, args: tuple[str]) -> None:
    env = person_env(tmp_path, CASEFOLIO_DATABASE_URL=REFUSED_PG.format(port=free_port()))
    done = casefolio(env, *args, cwd=tmp_path)
    assert done.returncode == 1, done
    assert lines(done) == [lines(done)[0]], done
    assert "Cannot reach the database" in done.stderr


def test_serve_on_a_refused_database_says_what_it_did_and_fails_in_one_line(
    tmp_path: Path,
) -> None:
    env = person_env(tmp_path, CASEFOLIO_DATABASE_URL=REFUSED_PG.format(port=free_port()))
    done = casefolio(env, "serve", "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 1, done
    assert len(done.stderr.splitlines()) == 1, done
    assert "Cannot reach the database" in done.stderr
    assert "applying pending database migrations" in done.stdout
    assert "Traceback" not in done.stdout


@pytest.mark.parametrize(
    "args", [*COMMANDS, ("serve", "--port", "0"), ("import", ".", "--project", "1")]
)
def test_an_unusable_data_folder_is_one_line_and_exit_code_1(
    tmp_path: Path, args: tuple[str]
) -> None:
    env = person_env(tmp_path, CASEFOLIO_DATA_DIR="/proc/nope")
    done = casefolio(env, *args, cwd=tmp_path)
    assert done.returncode == 1, done
    errors = done.stderr.splitlines()
    assert "/proc/nope" in errors[-1]
    # Commands that may create an installation say so first; nothing else is printed.
    assert errors[:-1] in (
        [],
        ["Creating a new casefolio installation in /proc/nope (CASEFOLIO_DATA_DIR)."],
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_a_failure_while_migrating_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "casefolio.db").write_bytes(b"not a database, " * 100)
    done = casefolio(person_env(tmp_path, CASEFOLIO_DATA_DIR=str(data)), "users", "list")
    assert done.returncode == 1, done
    assert lines(done) == ["Database error: file is not a database"]


def test_a_database_a_newer_casefolio_migrated_is_one_line_for_every_command(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = person_env(tmp_path, CASEFOLIO_DATA_DIR=str(data))
    assert casefolio(env, "migrate").returncode == 0
    with closing(sqlite3.connect(data / "casefolio.db")) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    for args in (("migrate",), ("users", "list"), ("check",)):
        done = casefolio(env, *args)
        assert done.returncode == 1, done
        [said] = lines(done)
        assert "newer casefolio" in said and "'ffffffffffff'" in said, said


def test_a_backup_whose_database_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "casefolio.db").write_bytes(b"not a database, " * 100)
    done = casefolio(
        person_env(tmp_path, CASEFOLIO_DATA_DIR=str(data)), "backup", str(tmp_path / "b")
    )
    assert done.returncode == 1, done
    assert lines(done) == ["Database error: file is not a database"]


def test_an_unfinished_backup_is_not_taken_for_a_place_to_start_an_installation(
    tmp_path: Path,
) -> None:
    unfinished = tmp_path / "backup"
    (unfinished / "blobs").mkdir(parents=True)
    (unfinished / ".casefolio.db.part").write_bytes(b"")
    env = person_env(tmp_path, CASEFOLIO_DATA_DIR=str(unfinished))
    for args in (("migrate",), ("init", "--email", "op@example.com", "--name", "Op")):
        done = casefolio(env, *args)
        assert done.returncode == 1, done
        assert "holds an unfinished backup" in done.stderr
    assert sorted(p.name for p in unfinished.iterdir()) == [".casefolio.db.part", "blobs"]


def test_commands_in_any_folder_find_the_installation_init_created(tmp_path: Path) -> None:
    env = person_env(tmp_path)
    home = tmp_path / "share" / "casefolio"
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)

    refused = casefolio(env, "users", "list", cwd=elsewhere)
    assert refused.returncode == 1
    assert lines(refused) == [
        f"There is no casefolio installation in {home} (found by the per-user default). "
        "Create one with `casefolio init`, or point CASEFOLIO_DATA_DIR at yours."
    ]
    assert not home.exists() and list(elsewhere.iterdir()) == []

    created = casefolio(env, "init", "--email", "op@example.com", "--name", "Op", cwd=tmp_path)
    assert created.returncode == 0, created
    assert created.stderr.startswith(f"Creating a new casefolio installation in {home} ")
    assert (home / "casefolio.db").exists()

    listed = casefolio(env, "users", "list", cwd=elsewhere)
    assert listed.returncode == 0, listed
    assert "op@example.com" in listed.stdout and listed.stderr == ""
    assert list(elsewhere.iterdir()) == []


def test_a_casefolio_toml_makes_its_folder_an_installation(tmp_path: Path) -> None:
    env = person_env(tmp_path)
    matter = tmp_path / "matter"
    (matter / "sub").mkdir(parents=True)
    (matter / "casefolio.toml").write_text("rate_limit_per_minute = 120\n")
    created = casefolio(env, "init", "--email", "op@example.com", "--name", "Op", cwd=matter)
    assert created.returncode == 0, created
    assert (matter / "casefolio-data" / "casefolio.db").exists()
    assert str(matter / "casefolio.toml") in created.stderr
    listed = casefolio(env, "users", "list", cwd=matter / "sub")
    assert "op@example.com" in listed.stdout
    assert not (tmp_path / "share").exists()


def test_no_new_installation_while_an_old_one_sits_in_the_current_folder(tmp_path: Path) -> None:
    env = person_env(tmp_path)
    old = tmp_path / "casefolio-data"
    made = casefolio(env | {"CASEFOLIO_DATA_DIR": str(old)}, "migrate", cwd=tmp_path)
    assert made.returncode == 0, made
    refused = casefolio(env, "init", "--email", "op@example.com", "--name", "Op", cwd=tmp_path)
    assert refused.returncode == 1
    assert lines(refused) == [
        f"{old} holds a casefolio installation, but this command would create a new one in "
        f"{tmp_path / 'share' / 'casefolio'}. Run it with CASEFOLIO_DATA_DIR={old} (or move "
        "that folder there)."
    ]
    assert not (tmp_path / "share").exists()


def test_configuration_errors_name_the_variable_in_one_line(tmp_path: Path) -> None:
    done = casefolio(person_env(tmp_path, CASEFOLIO_PORT="99999"), "users", "list")
    assert done.returncode == 2
    assert lines(done) == [
        "Configuration error: CASEFOLIO_PORT: Input should be less than or equal to 65535 "
        "(got '99999')"
    ]


def test_init_prints_the_whole_token_and_a_curl_that_works_once_a_server_runs(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path / "data", "", PORT=str(free_port())) | {"COLUMNS": "40"}
    done = casefolio(env, "init", "--email", "op@example.com", "--name", "Op")
    assert done.returncode == 0, done
    token = re.findall(r"^cf_\S+$", done.stdout, re.M)
    assert len(token) == 1 and len(token[0]) > 40
    assert "Next: start the server with" in done.stdout
    [curl] = [line.strip() for line in done.stdout.splitlines() if "curl" in line]
    assert f"'X-API-Token: {token[0]}'" in curl

    with running_server(env, port=int(env["CASEFOLIO_PORT"])) as server:
        # The printed curl, run by a shell as pasted, answers with the operator.
        assert server.base_url in curl
        answer = subprocess.run(
            ["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True
        )
        assert "op@example.com" in answer.stdout
        again = casefolio(env, "init", "--email", "op@example.com", "--name", "Op")
        assert f"A server of this installation is running at {server.base_url}" in again.stdout

        other = server_env(tmp_path / "other", "", PORT=env["CASEFOLIO_PORT"])
        stranger = casefolio(other, "init", "--email", "x@example.com", "--name", "X")
        assert "it refused this token (401)" in stranger.stdout


def test_tokens_revoke_twice_says_it_was_already_revoked(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", "")
    init_token(env)
    first = casefolio(env, "tokens", "revoke", "1")
    second = casefolio(env, "tokens", "revoke", "1")
    assert first.stdout == "Token 1 revoked.\n"
    assert (second.returncode, second.stdout) == (0, "Token 1 was already revoked.\n")


def test_projects_create_and_list_then_import_into_it(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", "")
    init_token(env)
    created = casefolio(env, "projects", "create", "Smith v Jones")
    assert created.stdout == "Created project 1.\n"
    missing = casefolio(env, "projects", "create", "X", "--template", "99")
    assert missing.returncode == 1 and len(lines(missing)) == 1
    listed = casefolio(env, "projects", "list")
    assert "Smith v Jones" in listed.stdout
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    imported = casefolio(env, "import", str(tree), "--project", "1")
    assert imported.returncode == 0, imported
