"""Start real `casefolio` processes for end-to-end tests, and always stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CASEFOLIO = str(Path(sys.executable).with_name("casefolio"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def closed_port() -> Iterator[int]:
    """A port nobody listens on while the block runs: bound here and never listened on, so
    connections to it are refused, and no other process (a server of the suite running in
    parallel) can take it meanwhile, as it can a port `free_port` found free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def server_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a casefolio process: this test's data folder and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFOLIO_")}
    env |= {"CASEFOLIO_DATA_DIR": str(data_dir), "CASEFOLIO_DATABASE_URL": database_url}
    return env | {f"CASEFOLIO_{k.upper()}": v for k, v in extra.items()}


def cli(env: dict[str, str], *args: str, input: str | None = None) -> str:
    """Run a casefolio command and return its standard output (raises on failure).

    Standard input is `input`, or empty: a command never waits for a person at a terminal."""
    done = subprocess.run(
        [CASEFOLIO, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        input=input if input is not None else "",
    )
    assert done.returncode == 0, f"casefolio {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def init_token(env: dict[str, str], email: str = "op@example.com", name: str = "Operator") -> str:
    """Create the first operator with `casefolio init` and return the token it printed."""
    out = cli(env, "init", "--email", email, "--name", name)
    return next(line.strip() for line in out.splitlines() if line.strip().startswith("cf_"))


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path  # what the server wrote to stdout and stderr

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def running_server(
    env: dict[str, str], *args: str, timeout: float = 60, port: int | None = None
) -> Iterator[Server]:
    """Start `casefolio serve` on a free port (or `port`), wait until it answers, stop it
    afterwards."""
    port = port or free_port()
    log = Path(env["CASEFOLIO_DATA_DIR"]).parent / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CASEFOLIO, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"casefolio serve exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{base_url}/api/v1/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"casefolio serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(base_url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
