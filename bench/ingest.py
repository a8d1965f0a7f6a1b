"""5. Ingest: 10,000 small (4 KiB) documents over HTTP with 2 server workers, and via import.

HTTP: `casefolio serve` with 2 workers; bench.loadgen (its own process, keep-alive
connections) POSTs distinct 4 KiB raw bodies to …/documents?fileName=… concurrently.
Import: the same number of files in a folder tree, loaded with `casefolio import PATH
--project ID` (skipped while that command does not exist).
Targets: >= 500 documents/s over HTTP; >= 1,000 documents/s via import. For scale, the
report also shows what the disk allows: durable 4 KiB file writes/s (write, fsync, rename,
directory fsync) from as many threads as there are client connections.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import (
    BENCH_DIR,
    CASEFOLIO,
    Api,
    Instance,
    Options,
    Process,
    Result,
    Server,
    casefolio_server,
    cli_has_command,
    instance,
    log,
)

NAME = "ingest"
HTTP_TARGET = 500
IMPORT_TARGET = 1000
SIZE = 4096
WORKERS = 2


def count_documents(srv: Server, inst: Instance, project: str) -> int:
    """Count a project's documents by walking its pages (1000 at a time)."""
    total = 0
    url: str | None = f"{srv.base}/api/v1/projects/{project}/documents?limit=1000"
    with httpx.Client(headers=inst.headers, timeout=120) as client:
        while url:
            r = client.get(url)
            r.raise_for_status()
            total += len(r.json())
            link = r.links.get("next", {}).get("url")
            url = str(httpx.URL(srv.base).join(link)) if link else None
    return total


def _durable_write(directory: Path, i: int, data: bytes) -> None:
    # What LocalBlobStore.put needs per new blob: temp file, fsync, rename, directory fsync.
    fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
    try:
        os.write(fd, i.to_bytes(8, "big") + data[8:])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(name, directory / f"blob-{i:07d}")
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def hardware_reference(directory: Path, n: int, threads: int) -> float:
    """Durable 4 KiB file writes per second with `threads` threads, on the data dir's disk."""
    directory.mkdir()
    data = os.urandom(SIZE)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: _durable_write(directory, i, data), range(n)))
    rate = n / (time.perf_counter() - start)
    shutil.rmtree(directory, ignore_errors=True)
    return rate


def _http(opts: Options, srv: Server, inst: Instance, result: Result) -> None:
    with Api(srv.base, inst.token) as api:
        project = api.create_project("ingest over HTTP")
    url = f"{srv.base}/api/v1/projects/{project}/documents"
    n, conc = opts.ingest_docs, opts.ingest_concurrency
    log(f"HTTP: {n:,} x 4 KiB, {conc} connections, {WORKERS} server workers")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "post",
            url,
            "--count",
            str(n),
            "--size",
            str(SIZE),
            "--connections",
            str(conc),
            "--max-seconds",
            str(opts.ingest_max_seconds),
            "-H",
            f"X-API-Token: {inst.token}",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR.parent,
    )
    out = json.loads(done.stdout)
    result.details["http"] = out
    stored = count_documents(srv, inst, project)
    rate = out["ok"] / out["seconds"]
    note = ""
    if out["stopped_early"]:
        note = f"stopped after {opts.ingest_max_seconds:g}s: {out['ok']:,} of {n:,} sent"
    if stored != out["ok"] or out["errors"] or out["non2xx"]:
        note += f" {out['ok']} created, {stored} listed; {out['first_error']}"
    log(f"HTTP: {rate:,.0f} docs/s, p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms")
    ref = hardware_reference(inst.data_dir / "reference-writes", n, conc)
    result.details["reference_durable_writes_per_s"] = ref
    log(f"reference: {ref:,.0f} durable 4 KiB file writes/s ({conc} threads)")
    result.add_absolute(
        f"HTTP, {WORKERS} workers, {conc} clients", rate, "docs/s", minimum=HTTP_TARGET, note=note
    )
    result.add(
        "HTTP docs/s vs durable file writes",
        rate,
        "docs/s",
        reference=ref,
        reference_label=f"fsynced 4K files, {conc} threads",
    )
    result.add("HTTP upload p50 latency", out["p50_ms"], "ms")
    result.add("HTTP upload p99 latency", out["p99_ms"], "ms")


def _make_tree(root: Path, n: int) -> None:
    per_folder = 100
    for i in range(n):
        folder = root / f"folder-{i // per_folder:04d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"doc-{i:07d}.bin").write_bytes(i.to_bytes(8, "big") + os.urandom(SIZE - 8))


def _import(opts: Options, srv: Server, inst: Instance, workdir: Path, result: Result) -> None:
    env = inst.env(CASEFOLIO_URL=srv.base, CASEFOLIO_API_URL=srv.base, CASEFOLIO_TOKEN=inst.token)
    if not cli_has_command("import", env):
        result.skip("casefolio import not available")
        return
    help_text = subprocess.run(
        [str(CASEFOLIO), "import", "--help"], env=env, capture_output=True, text=True
    ).stdout
    with Api(srv.base, inst.token) as api:
        project = api.create_project("ingest via import")
    tree = workdir / "import-tree"
    n = opts.ingest_docs
    log(f"import: writing {n:,} files of 4 KiB")
    _make_tree(tree, n)
    args = [str(CASEFOLIO), "import", str(tree), "--project", project]
    # Whether it talks HTTP or writes the database directly, give it what it asks for.
    if "--url" in help_text:
        args += ["--url", srv.base]
    if "--token" in help_text:
        args += ["--token", inst.token]
    log(f"import: {' '.join(args[1:2] + args[3:5])}")
    limit = 2 * opts.ingest_max_seconds
    log_path = workdir / "import.log"
    proc = Process(args, env=env, log_path=log_path, cwd=workdir)
    start = time.perf_counter()
    timed_out = False
    try:
        proc.proc.wait(limit)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        seconds = time.perf_counter() - start
        proc.stop()
    result.details["import"] = {
        "seconds": seconds,
        "returncode": proc.proc.returncode,
        "timed_out": timed_out,
        "output_tail": proc.log_tail(15),
    }
    if not timed_out and proc.proc.returncode != 0:
        raise RuntimeError(f"casefolio import failed ({proc.proc.returncode}):\n{proc.log_tail()}")
    stored = count_documents(srv, inst, project)
    rate = stored / seconds
    note = "" if stored == n else f"{stored:,} of {n:,} documents listed afterwards"
    if timed_out:
        note = f"stopped after {limit:g}s; " + note
    log(f"import: {rate:,.0f} docs/s ({stored:,} documents in {seconds:.1f}s)")
    result.add_absolute("casefolio import", rate, "docs/s", minimum=IMPORT_TARGET, note=note)


def run(opts: Options, workdir: Path, result: Result) -> None:
    server = opts.servers[0] if opts.servers else "uvicorn"
    result.params.update(
        documents=opts.ingest_docs,
        size=SIZE,
        concurrency=opts.ingest_concurrency,
        workers=WORKERS,
        server=server,
    )
    with (
        instance(opts, workdir, NAME) as inst,
        casefolio_server(inst, server=server, workers=WORKERS, log_level=opts.log_level) as srv,
    ):
        _http(opts, srv, inst, result)
        _import(opts, srv, inst, workdir, result)
