"""Text extraction in a child process of its own, under a time and a memory limit.

A file is whatever a client uploaded: one that sends a reader into a long loop, or makes it
allocate without end, costs that child, which is killed at the time limit (or stopped by
its CPU and memory limits), and never the server or worker that asked. A thread could only
be abandoned, still running, and an allocation there could take the whole process down.

One child serves one process's extractions in turn, started when first needed and again
after it was killed; it ends when the pipe to it closes (its parent exited, or was killed).
"""

from __future__ import annotations

import atexit
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, Pipe
from pathlib import Path

from casefolio.search import extract

#: How long the child may run past a job's time limit (its own `Deadline` stops it first,
#: in the usual case) before it is killed.
KILL_GRACE_SECONDS = 1.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class Job:
    """What to read (a local blob's path, read in the child, or the bytes) and its limits."""

    source: Path | bytes
    file_name: str
    content_type: str
    seconds: float
    max_chars: int
    memory_mib: int
    ocr_languages: str | None = None


class ExtractionProcess:
    """The child; `read` is called from worker threads, one job at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._pipe: Connection | None = None

    def read(self, job: Job) -> str:
        """The file's text, or ExtractionFailed saying why not."""
        with self._lock:
            pipe = self.connection()
            try:
                if isinstance(job.source, bytes):
                    # The bytes on their own, as they are: pickled inside the job, a remote
                    # file would be held twice while it is sent.
                    pipe.send(replace(job, source=b""))
                    pipe.send_bytes(job.source)
                else:
                    pipe.send(job)
                if not pipe.poll(job.seconds + KILL_GRACE_SECONDS):
                    self._stop()
                    raise extract.ExtractionFailed(
                        f"Reading the text took longer than {job.seconds:g} s."
                    )
                outcome, value = pipe.recv()
            except (EOFError, OSError):
                raise extract.ExtractionFailed(_ended(self._stop(), job)) from None
            if outcome == "memory":
                self._stop()  # the child ends itself: what a MemoryError leaves is not kept
                raise extract.ExtractionFailed(
                    f"Reading the text needed more than {job.memory_mib:,} MiB of memory."
                )
        if outcome == "text":
            return str(value)
        if outcome == "missing":
            raise FileNotFoundError(job.source)
        raise extract.ExtractionFailed(value)

    @property
    def pid(self) -> int | None:
        """The running child's process id (None when none runs)."""
        return self._child.pid if self._child is not None else None

    def interrupt(self) -> None:
        """Kill the child now, without waiting for a read in progress, which then ends at
        once with ExtractionFailed (its caller was cancelled: a server shutting down)."""
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()

    def close(self) -> None:
        self.interrupt()
        with self._lock:
            self._stop()

    def connection(self) -> Connection:
        """The pipe to the child, which is started if it does not run."""
        if self._child is not None and self._child.poll() is None and self._pipe is not None:
            return self._pipe
        self._stop()
        ours, theirs = Pipe()
        self._child = subprocess.Popen(
            # -P: not the current folder first on the path, where a `casefolio` of the
            # user's could stand in for this one.
            [sys.executable, "-P", "-m", __name__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            # Its own session: a Ctrl-C meant for the server does not print its traceback.
            start_new_session=True,
        )
        theirs.close()
        self._pipe = ours
        return ours

    def _stop(self) -> int | None:
        """Kill the child if it runs; its exit status (a negative signal number) or None."""
        child, pipe = self._child, self._pipe
        self._child = self._pipe = None
        if pipe is not None:
            pipe.close()
        if child is None:
            return None
        if child.poll() is None:
            child.kill()
        return child.wait()


def _ended(status: int | None, job: Job) -> str:
    """Why a child ended without an answer, for a person."""
    if status == -signal.SIGXCPU:  # its CPU limit
        return f"Reading the text took longer than {job.seconds:g} s."
    if status is not None and status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"The reader crashed on this file ({name})."
    return f"The reader stopped on this file (exit status {status})."


#: This process's child, shared by every Indexer in it (a server has one, tests several).
shared = ExtractionProcess()
atexit.register(shared.close)


def _serve(pipe: Connection) -> None:
    """The child's loop: one job at a time until the pipe closes."""
    while True:
        try:
            job: Job = pipe.recv()
            if isinstance(job.source, bytes):
                job = replace(job, source=pipe.recv_bytes())
        except EOFError:
            return
        answer = _answer(job)
        # Lifted before answering: a text near the limit still needs pickling.
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        try:
            pipe.send(answer)
        except BrokenPipeError:
            return  # the worker stopped meanwhile (a shutdown): nobody wants the answer
        if answer[0] == "memory":
            return


def _answer(job: Job) -> tuple[str, str | None]:
    _limit(job)
    try:
        data = job.source.read_bytes() if isinstance(job.source, Path) else job.source
        return "text", extract.extract(
            data,
            file_name=job.file_name,
            content_type=job.content_type,
            deadline=extract.Deadline(job.seconds),
            max_chars=job.max_chars,
            ocr=extract.Ocr(job.ocr_languages) if job.ocr_languages else None,
        )
    except MemoryError:
        return "memory", None
    except FileNotFoundError:
        return "missing", None
    except OSError as exc:  # the blob's file, unreadable
        return "failed", f"The stored file cannot be read: {exc.strerror or exc}"
    except extract.ExtractionFailed as exc:
        return "failed", str(exc)


def _limit(job: Job) -> None:
    """This job's limits, above what the child already holds: address space (so a greedy
    reader meets MemoryError, and OCR's programs, which inherit it, fail) and CPU seconds
    (the kernel ends a reader caught in a loop in C code that no deadline check reaches)."""
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # no /proc (macOS, which does not enforce RLIMIT_AS either)
        mapped = None
    if mapped is not None:
        limit = mapped + job.memory_mib * MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + job.seconds + KILL_GRACE_SECONDS) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, resource.RLIM_INFINITY))


if __name__ == "__main__":
    # The readers warn about every oddity of a damaged file (pypdf: "EOF marker not found");
    # what matters reaches the parent as the file's outcome, so only errors are printed.
    logging.basicConfig(
        level=logging.ERROR, format="casefolio search reader: %(name)s: %(message)s"
    )
    _serve(Connection(int(sys.argv[1])))
    os._exit(0)
