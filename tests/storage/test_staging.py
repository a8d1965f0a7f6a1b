"""Staging leftovers: the files of a process that is gone are removed at start-up, never
those of a process that is still running, whoever shares the staging folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from casefolio.storage import staging

# A process that stages one file (as an upload in flight would) and waits.
_STAGER = """
import sys
from pathlib import Path
from casefolio.storage import staging
fd, path = staging.temp_file(Path(sys.argv[1]), "upload")
print(path, flush=True)
sys.stdin.read()
"""


@contextmanager
def stager(staging_dir: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _STAGER, str(staging_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        path = Path(process.stdout.readline().strip())
        assert path.parent == staging_dir and path.exists()
        yield process, path
    finally:
        process.kill()
        process.wait()


def test_sweep_removes_only_files_of_processes_that_are_gone(tmp_path: Path) -> None:
    folder = tmp_path / "staging"
    folder.mkdir()
    with stager(folder) as (killed, orphan), stager(folder) as (_running, live):
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        mine_fd, mine = staging.temp_file(folder, "upload")  # this process: running too
        os.close(mine_fd)
        unowned = folder / "upload-legacyname.part"  # no owner in its name: left to gc
        unowned.write_bytes(b"x")

        removed = staging.sweep(folder)

        assert removed == [orphan.name]
        assert not orphan.exists()
        assert live.exists() and mine.exists() and unowned.exists()
        assert staging.is_owned(folder, live.name) and staging.is_owned(folder, mine.name)
        # The dead owner's lock file went with its file; the running owners' stay.
        owner_locks = sorted(p.stem for p in staging.owners_dir(folder).iterdir())
        expected = sorted(staging.owner_of(p.name) for p in (live, mine))
        assert owner_locks == expected
    # Now the second stager has been killed too: a second sweep takes its file.
    assert staging.sweep(folder) == [live.name]
    assert mine.exists() and unowned.exists()


def test_a_process_that_exits_normally_leaves_nothing_owned(tmp_path: Path) -> None:
    folder = tmp_path / "staging"
    folder.mkdir()
    with stager(folder) as (process, path):
        assert process.stdin is not None
        process.stdin.close()  # the stager exits on its own, its file left behind
        process.wait()
        assert not staging.is_owned(folder, path.name)
        assert staging.sweep(folder) == [path.name]
        assert list(staging.owners_dir(folder).iterdir()) == []


def test_release_keeps_the_claim_while_files_remain(tmp_path: Path) -> None:
    folder = tmp_path / "staging"
    folder.mkdir()
    fd, path = staging.temp_file(folder, "upload")
    os.close(fd)
    staging.release(folder)  # a store closing while a file is still staged
    assert staging.is_owned(folder, path.name)
    path.unlink()
    staging.release(folder)
    assert list(staging.owners_dir(folder).iterdir()) == []
