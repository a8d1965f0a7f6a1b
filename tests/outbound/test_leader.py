"""One in-server worker per data folder (outbound/leader.py): elected by a lock file, taken
over when its process goes, and woken on SQLite by the commits of the other processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from casefolio.outbound import leader
from casefolio.outbound.signal import signal


class Runs:
    """A stand-in for the worker: notes which process-side entered it and when it left."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.started = anyio.Event()

    def of(self, name: str) -> AbstractAsyncContextManager[object]:
        @asynccontextmanager
        async def run() -> AsyncIterator[None]:
            self.running.append(name)
            self.started.set()
            try:
                yield
            finally:
                self.running.remove(name)

        return run()


async def test_one_of_two_runs_the_worker_and_the_other_takes_over_when_it_goes(
    tmp_path: Path,
) -> None:
    runs = Runs()

    async def process(name: str, stop: anyio.Event) -> None:
        async with leader.elected(
            tmp_path, lambda: runs.of(name), sqlite=False, takeover_seconds=0.01
        ):
            await stop.wait()

    first_stops, second_stops = anyio.Event(), anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(process, "first", first_stops)
            await runs.started.wait()
            runs.started = anyio.Event()
            tasks.start_soon(process, "second", second_stops)
            for _ in range(20):  # standing by: however long it waits, only the first runs
                await anyio.sleep(0.01)
            assert runs.running == ["first"]
            first_stops.set()  # its process stops: the lock is free
            await runs.started.wait()
            assert runs.running == ["second"]
            second_stops.set()
    assert runs.running == []


_HOLD = """
import os, sys, fcntl, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


async def test_a_process_standing_by_leads_once_the_leaders_process_is_killed(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path / leader.LOCK_FILE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        runs = Runs()
        with anyio.fail_after(10):
            async with leader.elected(
                tmp_path, lambda: runs.of("standby"), sqlite=False, takeover_seconds=0.01
            ):
                for _ in range(20):
                    await anyio.sleep(0.01)
                assert runs.running == []  # the other process leads
                holder.kill()  # as kill -9: the lock goes with the process
                await runs.started.wait()
                assert runs.running == ["standby"]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux's")
async def test_on_sqlite_a_commit_elsewhere_wakes_the_elected_worker(tmp_path: Path) -> None:
    runs = Runs()
    other_process = leader.Waker(leader.wake_address(tmp_path))
    with anyio.fail_after(10):
        async with leader.elected(tmp_path, lambda: runs.of("leader"), sqlite=True):
            await runs.started.wait()
            assert leader.waker.address is None  # it leads: its own commits need no datagram
            seen = signal.generation
            async with anyio.create_task_group() as tasks:

                async def wait() -> None:
                    assert await signal.wait(5), "the datagram did not wake the worker"

                tasks.start_soon(wait)
                await anyio.lowlevel.checkpoint()
                other_process.poke()
            assert signal.generation > seen
    # No one listens any more: a poke is dropped, never an error for the committer.
    other_process.poke()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux's")
async def test_a_wake_up_socket_already_taken_leaves_the_worker_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    address = leader.wake_address(tmp_path)
    taken = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    taken.bind(address)
    try:
        entered = False
        async with leader.listening(address):
            entered = True
        assert entered
        assert "wake-up socket is unavailable" in caplog.text
    finally:
        taken.close()
