"""What every benchmark shares: options, results, real server processes, databases, tools.

Nothing here asserts on a timing. Benchmarks measure casefolio and a reference on the same
machine in the same run, and report both plus their ratio.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent
CASEFOLIO = VENV_BIN / "casefolio"
HOST = "127.0.0.1"
BENCH_EMAIL = "bench@example.com"
#: Per-token budget for benchmark tokens: high enough never to answer 429.
HUGE_RATE_LIMIT = 1_000_000_000
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MB = 1_000_000
MiB = 1024 * 1024


class Skip(Exception):
    """A benchmark (or one of its parts) cannot run here; the message says why."""


# --------------------------------------------------------------------------- options/results


@dataclass
class Options:
    quick: bool = False
    database: str = "sqlite"  # sqlite | postgresql
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    duration: float = 10.0  # seconds per load run (api_overhead)
    rounds: int = 3  # alternating load runs per app (api_overhead)
    connections: int = 16
    upload_mib: int = 1024
    listing_docs: int = 1_000_000
    listing_repeats: int = 200
    large_docs: int = 10_000_000  # large_project (PostgreSQL)
    ingest_docs: int = 10_000
    search_docs: int = 1_000_000
    ingest_concurrency: int = 16
    ingest_max_seconds: float = 90.0  # bounds the run time however slow ingest is
    servers: tuple[str, ...] = ("uvicorn", "granian")
    log_level: str = "info"
    keep: bool = False  # keep the temporary work directory (and PostgreSQL database)
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    def apply_quick(self) -> None:
        self.duration = 3.0
        self.rounds = 1
        self.connections = 8
        self.upload_mib = 64
        self.listing_docs = 20_000
        self.listing_repeats = 50
        self.large_docs = 20_000
        self.ingest_docs = 1_000
        self.search_docs = 2_000
        self.ingest_max_seconds = 30.0


@dataclass
class Row:
    """One compared measurement: casefolio vs a reference, and the target for their ratio."""

    metric: str
    value: float | None
    unit: str
    reference: float | None = None
    reference_label: str = ""
    ratio: float | None = None
    target: str = ""  # e.g. ">= 0.5x"; empty: informational
    met: bool | None = None
    note: str = ""


@dataclass
class Result:
    name: str
    database: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def skip(self, what: str) -> None:
        line = f"skipped: {what}"
        self.skipped.append(line)
        print(f"  {line}", flush=True)

    def add(
        self,
        metric: str,
        value: float | None,
        unit: str,
        *,
        reference: float | None = None,
        reference_label: str = "",
        higher_is_better: bool = True,
        target: float | None = None,
        note: str = "",
    ) -> Row:
        """Record a row; the ratio is value/reference, compared with `target` when given."""
        ratio = None
        if value is not None and reference:
            ratio = value / reference
        met = None
        target_text = ""
        if target is not None:
            target_text = f">= {target:g}x" if higher_is_better else f"<= {target:g}x"
            if ratio is not None:
                met = ratio >= target if higher_is_better else ratio <= target
        row = Row(metric, value, unit, reference, reference_label, ratio, target_text, met, note)
        self.rows.append(row)
        return row

    def add_absolute(
        self, metric: str, value: float | None, unit: str, *, minimum=None, maximum=None, note=""
    ) -> Row:
        """Record a row whose target is an absolute bound rather than a ratio."""
        met = None
        target_text = ""
        if minimum is not None:
            target_text = f">= {minimum:g} {unit}"
            met = None if value is None else value >= minimum
        if maximum is not None:
            target_text = f"<= {maximum:g} {unit}"
            met = None if value is None else value <= maximum
        row = Row(metric, value, unit, target=target_text, met=met, note=note)
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "database": self.database,
            "seconds": round(self.seconds, 1),
            "params": self.params,
            "rows": [asdict(r) for r in self.rows],
            "skipped": self.skipped,
            "error": self.error,
            "details": self.details,
            "machine": machine_info(),
        }


def machine_info() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# --------------------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(f"  {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tool(name: str) -> str | None:
    """Path of an executable on PATH (also looking in the sbin folders nginx lives in)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def write_payload(path: Path, size: int, *, block: int = 16 * MiB) -> None:
    """Write `size` random bytes (incompressible; distinct per run) to `path`."""
    with path.open("wb") as f:
        remaining = size
        while remaining:
            n = min(block, remaining)
            f.write(os.urandom(n))
            remaining -= n


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- RSS sampling


def tree_rss(pid: int) -> int:
    """Resident set size of a process plus its descendants (server workers), in bytes."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


class RssSampler:
    """Samples a process tree's RSS in a thread; `growth` is peak minus the starting value."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = tree_rss(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


# --------------------------------------------------------------------------- processes


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    """Run a casefolio command; return stdout, or raise with its output on failure."""
    done = subprocess.run(
        [str(CASEFOLIO), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"casefolio {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def cli_has_command(name: str, env: dict[str, str]) -> bool:
    done = subprocess.run(
        [str(CASEFOLIO), name, "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode == 0


class Process:
    """A subprocess in its own session, so that stopping it also stops its workers."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        """The start and the end of the process's output (where the causes usually are)."""
        try:
            all_lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        if len(all_lines) <= 2 * lines:
            return "\n".join(all_lines)
        return "\n".join([*all_lines[:lines], "[…]", *all_lines[-lines:]])

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # The leader is gone; make sure no worker of its group lingers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def wait_http(url: str, proc: Process, *, timeout: float = 120.0, ok=(200,)) -> None:
    """Poll `url` until it answers with a status in `ok`; fail fast if the process exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.proc.returncode}:\n{proc.log_tail()}")
        try:
            r = httpx.get(url, timeout=2.0)
            if r.status_code in ok:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    tail = proc.log_tail(15)
    hint = ""
    if tail.count("died") > 2:
        hint = (
            "\n(workers keep dying without a traceback: uvicorn's supervisor kills workers that "
            "do not answer its health check within timeout_worker_healthcheck, 5 s by default)"
        )
    raise RuntimeError(f"server not ready after {timeout:.0f}s ({last}):\n{tail}{hint}")


def wait_listening(port: int, sockets: int, proc: Process, *, timeout: float = 120.0) -> None:
    """Wait until `sockets` sockets listen on `port`: under `casefolio serve` each uvicorn
    worker listens on a socket of its own once it is ready, and a load run started while
    one of them is still importing sends every keep-alive connection to the others
    (bench/README.md, the twenty-first session)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.proc.returncode}:\n{proc.log_tail()}")
        listening = sum(
            1
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        )
        if listening >= sockets:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{sockets} workers not listening on port {port} after {timeout:.0f}s")


# --------------------------------------------------------------------------- databases


def _pg_dsn(url: str, database: str | None = None) -> str:
    url = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
    url = re.sub(r"^postgres://", "postgresql://", url)
    if database is not None:
        url = re.sub(r"/[^/?]*(\?|$)", f"/{database}\\1", url.split("://", 1)[1], count=1)
        url = "postgresql://" + url
    return url


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(admin_url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_admin(admin_url: str, sql: str) -> None:
    import asyncio

    asyncio.run(_pg_admin(admin_url, sql))


@contextlib.contextmanager
def database(opts: Options, data_dir: Path) -> Iterator[str]:
    """Yield a CASEFOLIO_DATABASE_URL for a fresh database ('' = SQLite in the data dir)."""
    if opts.database == "sqlite":
        yield ""
        return
    name = f"casefolio_bench_{uuid.uuid4().hex[:12]}"
    try:
        pg_admin(opts.pg_admin_url, f'CREATE DATABASE "{name}"')
    except Exception as exc:
        raise Skip(f"PostgreSQL not reachable at {opts.pg_admin_url} ({exc})") from exc
    try:
        yield _pg_dsn(opts.pg_admin_url, name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        if opts.keep:
            log(f"database kept (--keep): {name}; drop it when done")
        else:
            try:
                pg_admin(opts.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:
                log(f"warning: could not drop database {name}: {exc}")


# --------------------------------------------------------------------------- casefolio setup


@dataclass
class Instance:
    """A prepared casefolio data dir (+ database) with an operator and a bench token."""

    data_dir: Path
    database_url: str
    token: str
    workdir: Path
    #: A folder with a benchmark's own `sitecustomize.py` (`with_site`), searched first.
    site_dir: Path | None = None
    #: More environment for its servers and commands (a setting a benchmark needs).
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFOLIO_")}
        env.update(
            CASEFOLIO_DATA_DIR=str(self.data_dir),
            CASEFOLIO_DATABASE_URL=self.database_url,
            CASEFOLIO_RATE_LIMIT_PER_MINUTE=str(HUGE_RATE_LIMIT),
            CASEFOLIO_HOST=HOST,
        )
        if self.site_dir is not None:
            # In front of, not instead of, the caller's PYTHONPATH: a before/after run
            # points that at the casefolio under test.
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(self.site_dir), os.environ.get("PYTHONPATH", "")) if p
            )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def with_site(self, name: str, code: str) -> Instance:
        """This instance, its servers started with `code` as their `sitecustomize` (a
        benchmark's way to switch a piece of casefolio off, which has no such setting)."""
        site = self.workdir / f"{name}-site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(code)
        return replace(self, site_dir=site)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Token": self.token}


@contextlib.contextmanager
def instance(opts: Options, workdir: Path, name: str) -> Iterator[Instance]:
    """A fresh data dir and database, migrated, with an operator and a high-limit token."""
    data_dir = workdir / f"{name}-data"
    data_dir.mkdir(parents=True)
    with database(opts, data_dir) as url:
        inst = Instance(data_dir, url, "", workdir)
        env = inst.env()
        run_cli(["migrate"], env)
        run_cli(["init", "--email", BENCH_EMAIL, "--name", "Bench"], env)
        out = run_cli(
            [
                "tokens",
                "create",
                "--email",
                BENCH_EMAIL,
                "--name",
                "bench",
                "--rate-limit",
                str(HUGE_RATE_LIMIT),
            ],
            env,
        )
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines:
            raise RuntimeError("`casefolio tokens create` printed no token")
        inst.token = lines[-1]
        try:
            yield inst
        finally:
            if not opts.keep:
                shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Server:
    process: Process
    port: int
    kind: str

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def casefolio_server(
    inst: Instance, *, server: str = "uvicorn", workers: int = 1, log_level: str = "info"
) -> Iterator[Server]:
    """Run `casefolio serve` on a free loopback port until the block ends."""
    port = free_port()
    env = inst.env(
        CASEFOLIO_PORT=str(port),
        CASEFOLIO_SERVER=server,
        CASEFOLIO_WORKERS=str(workers),
        CASEFOLIO_LOG_LEVEL=log_level,
    )
    log_path = inst.workdir / f"serve-{server}-{port}.log"
    proc = Process([str(CASEFOLIO), "serve"], env=env, log_path=log_path, cwd=inst.workdir)
    try:
        wait_http(f"http://{HOST}:{port}/api/v1/openapi.json", proc)
        if server == "uvicorn" and workers > 1:
            wait_listening(port, workers, proc)
        yield Server(proc, port, server)
    finally:
        proc.stop()


@contextlib.contextmanager
def bare_server(
    workdir: Path, json_path: Path, *, server: str = "uvicorn", log_level: str = "info"
) -> Iterator[Server]:
    """Run bench/bare_app.py under the same server settings `casefolio serve` uses."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFOLIO_")}
    env["BENCH_BARE_JSON"] = str(json_path)
    env["PYTHONPATH"] = str(BENCH_DIR.parent)
    args = [
        sys.executable,
        "-m",
        "bench.bare_app",
        "--port",
        str(port),
        "--server",
        server,
        "--log-level",
        log_level,
    ]
    proc = Process(args, env=env, log_path=workdir / f"bare-{server}-{port}.log", cwd=workdir)
    try:
        wait_http(f"http://{HOST}:{port}/api/v1/projects/1/documents/1", proc)
        yield Server(proc, port, server)
    finally:
        proc.stop()


# --------------------------------------------------------------------------- API helpers


class Api:
    """The few /api/v1 calls the benchmarks need, with clear errors when an endpoint is absent."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base + "/api/v1", headers={"X-API-Token": token}, timeout=600.0
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, r: httpx.Response, what: str) -> Any:
        if r.status_code == 404 and "application/problem+json" not in r.headers.get(
            "content-type", ""
        ):
            raise Skip(f"{what}: endpoint not available yet (404)")
        if r.status_code == 405:
            raise Skip(f"{what}: endpoint not available yet (405)")
        if r.status_code >= 400:
            raise RuntimeError(f"{what} failed: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def create_project(self, name: str, *, download: bool = True) -> str:
        project = self._check(self.client.post("/projects", json={"name": name}), "create project")
        pid = str(project["id"])
        if download:
            self._check(
                self.client.patch(f"/projects/{pid}", json={"settings": {"downloadViaApi": True}}),
                "enable downloadViaApi",
            )
        return pid

    def upload_bytes(self, project: str, name: str, data: bytes) -> dict[str, Any]:
        r = self.client.post(
            f"/projects/{project}/documents",
            params={"fileName": name},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return self._check(r, "upload document")  # type: ignore[no-any-return]

    def upload_file(self, project: str, name: str, path: Path) -> dict[str, Any]:
        def chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(MiB):
                    yield chunk

        r = self.client.post(
            f"/projects/{project}/documents",
            params={"fileName": name},
            content=chunks(),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(path.stat().st_size),
            },
        )
        return self._check(r, "upload document")  # type: ignore[no-any-return]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params or None)

    def get_json(self, path: str, what: str, **params: Any) -> Any:
        return self._check(self.get(path, **params), what)


def save_result(result: Result, stamp: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "" if result.database == "sqlite" else f"-{result.database}"
    path = RESULTS_DIR / f"{result.name}{suffix}-{stamp}.json"
    data = result.to_json()
    data["commit"] = git_commit()
    data["timestamp"] = stamp
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
