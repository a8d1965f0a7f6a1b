"""6. Outbound: what the audit trail, change feed and webhooks cost, and how fast they are.

- Ingest (`bench.loadgen`, 4 KiB raw uploads, 2 server workers) with everything on (audit
  entries, outbox rows, one webhook subscribed to document.created, delivered by the
  in-server worker to a local receiver) against the same ingest with the recorder switched
  off (a `sitecustomize` of the benchmark's own makes it a no-op; casefolio has no such
  setting), the two servers running at once and blocks of uploads alternating between
  them. Target: >= 0.85x documents/s.
- Webhook fan-out: 10,000 events committed at once, delivered to `bench/receiver.py`:
  deliveries/s from the first commit to the last receipt (target >= 500/s); and on an idle
  server, commit-to-receipt latency of single changes, from sending the request that makes
  the change to its receipt (median <= 50 ms).
- Change feed: long-poll wake-up, from sending the write to the waiting GET's answer (median
  <= 20 ms); reading 100,000 changes in pages of 1,000 against listing 100,000 documents in
  pages of 1,000 (<= 2x).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import listing
from bench.common import (
    BENCH_DIR,
    Api,
    Instance,
    Options,
    Process,
    Result,
    Server,
    casefolio_server,
    free_port,
    instance,
    log,
    median,
    wait_http,
)

NAME = "outbound"
INGEST_TARGET = 0.85
FANOUT_TARGET = 500
LATENCY_TARGET_MS = 50
WAKE_TARGET_MS = 20
FEED_TARGET = 2.0
SIZE = 4096
WORKERS = 2
#: Blocks of uploads per server in the ingest comparison (an even number: each side goes
#: first equally often).
INGEST_ROUNDS = 4
INGEST_ROUNDS_QUICK = 2
#: Uploads to each server before the timed blocks.
WARM_UP = 200
PAGE = 1000

_NO_SEARCH = """\
# Benchmark only, both runs: no search indexing. The indexer queues new versions from the
# outbox, so with the recorder off it would have nothing to do: on, it would extract and
# index every upload, a cost of search (bench/search.py), not of the outbound half.
import casefolio.search.index as _index


async def _no_indexing(self):
    return 0


_index.Indexer.run_once = _no_indexing
"""
_NO_RECORDER = """
# Benchmark only: the baseline without audit entries and outbox rows.
import casefolio.outbound.recorder as _recorder

_recorder.record = lambda *args, **kwargs: False
"""

_EMIT = """
import sys, anyio
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import events

async def main() -> None:
    db = Database.open(Settings())
    total, per = int(sys.argv[1]), 1000
    for start in range(0, total, per):
        async with db.write() as session:
            events.emit(session, *(
                events.FolderCreated(project_id=int(sys.argv[2]), folder_id=n)
                for n in range(start, min(total, start + per))
            ))
    await db.close()

anyio.run(main)
"""


@contextmanager
def _receiver(workdir: Path) -> Iterator[str]:
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "bench.receiver", "--port", str(port)],
        env={"PATH": "/usr/bin:/bin"},
        log_path=workdir / "receiver.log",
        cwd=BENCH_DIR.parent,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/stats", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def _stats(base: str, *, times: bool = True) -> dict[str, Any]:
    got: dict[str, Any] = httpx.get(
        f"{base}/stats" + ("" if times else "?times=0"), timeout=60
    ).json()
    return got


def _webhook(srv: Server, inst: Instance, url: str, events: list[str]) -> None:
    made = httpx.post(
        f"{srv.base}/api/v1/webhooks",
        json={"url": url, "events": events},
        headers=inst.headers,
        timeout=60,
    )
    if made.status_code != 201:
        raise RuntimeError(f"webhook registration failed: {made.status_code} {made.text}")


def _loadgen(srv: Server, inst: Instance, project: str, n: int, opts: Options) -> tuple[int, float]:
    """Upload `n` documents; return how many succeeded and in how many seconds."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "post",
            f"{srv.base}/api/v1/projects/{project}/documents",
            "--count",
            str(n),
            "--size",
            str(SIZE),
            "--connections",
            str(opts.ingest_concurrency),
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
    return int(out["ok"]), float(out["seconds"])


@contextmanager
def _instance(opts: Options, workdir: Path, name: str, site: str = "") -> Iterator[Instance]:
    """An instance whose servers may deliver to the local receiver (and, given `site`,
    start with it as their sitecustomize)."""
    with instance(opts, workdir, name) as inst:
        allowed = replace(inst, extra_env={"CASEFOLIO_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"})
        yield allowed.with_site(name, site) if site else allowed


def _ingest(opts: Options, workdir: Path, receiver: str) -> tuple[float, float]:
    """Documents/s with the recorder off and with everything on, measured in the same
    minutes: both servers run at once, and blocks of uploads alternate between them (off
    first in even rounds, on first in odd ones), so that the machine's drift from minute to
    minute (these VMs' disks and CPUs) falls on both alike. After an "on" block, the next
    block waits for its deliveries, so that their sending is not counted against the
    other server. Returns (off, on): all documents over all seconds of each."""
    rounds = INGEST_ROUNDS_QUICK if opts.quick else INGEST_ROUNDS
    block = max(1, opts.ingest_docs // rounds)
    with contextlib.ExitStack() as stack:
        servers = {}
        for side, site in (("off", _NO_SEARCH + _NO_RECORDER), ("on", _NO_SEARCH)):
            inst = stack.enter_context(_instance(opts, workdir, f"outbound-{side}", site))
            srv = stack.enter_context(
                casefolio_server(inst, workers=WORKERS, log_level=opts.log_level)
            )
            with Api(srv.base, inst.token) as api:
                project = api.create_project(f"ingest-{side}")
            servers[side] = (inst, srv, project)
        on_inst, on_srv, _ = servers["on"]
        _webhook(on_srv, on_inst, f"{receiver}/ingest", ["document.created"])
        # Untimed, on each: the first uploads of a fresh server are slower (imports, caches).
        for side in ("off", "on"):
            inst, srv, project = servers[side]
            _loadgen(srv, inst, project, WARM_UP, opts)
        _wait_for(receiver, WARM_UP, 120)
        done = {"off": 0.0, "on": 0.0}
        seconds = {"off": 0.0, "on": 0.0}
        for round_ in range(rounds):
            for side in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                inst, srv, project = servers[side]
                ok, took = _loadgen(srv, inst, project, block, opts)
                done[side] += ok
                seconds[side] += took
                log(f"ingest round {round_ + 1}, {side}: {ok / took:,.0f} docs/s")
                if side == "on":
                    _wait_for(receiver, WARM_UP + int(done["on"]), 120)
        off, on = (done[side] / seconds[side] for side in ("off", "on"))
        log(f"ingest: recorder off {off:,.0f} docs/s, everything on {on:,.0f} docs/s")
        return off, on


def _wait_for(base: str, count: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        stats = _stats(base, times=False)
        if stats["distinct"] >= count or time.monotonic() > deadline:
            return _stats(base)
        time.sleep(0.01)


def _fan_out(opts: Options, inst: Instance, srv: Server, receiver: str, result: Result) -> None:
    with Api(srv.base, inst.token) as api:
        project = api.create_project("fan-out")
    client = httpx.Client(base_url=srv.base, headers=inst.headers, timeout=60)
    # Idle latency: one change at a time.
    latencies = []
    for i in range(30):
        have = _stats(receiver, times=False)["distinct"]
        sent = time.time()
        r = client.post(f"/api/v1/projects/{project}/folders", json={"name": f"idle-{i}"})
        r.raise_for_status()
        stats = _wait_for(receiver, have + 1, 30)
        newest = max(stats["times"].values())
        latencies.append((newest - sent) * 1000)
    lat = median(latencies)
    log(f"commit-to-receipt on an idle server: median {lat:.1f} ms")
    # Fan-out: many events committed at once.
    n = 10_000 if not opts.quick else 2_000
    have = _stats(receiver, times=False)["distinct"]
    start = time.time()
    subprocess.run(
        [sys.executable, "-c", _EMIT, str(n), project],
        env=inst.env(),
        check=True,
        capture_output=True,
    )
    stats = _wait_for(receiver, have + n, 600)
    last = max(stats["times"].values())
    rate = (stats["distinct"] - have) / (last - start)
    log(f"fan-out: {stats['distinct'] - have:,} deliveries, {rate:,.0f}/s")
    result.add_absolute(f"webhook deliveries ({n:,} events)", rate, "/s", minimum=FANOUT_TARGET)
    result.add_absolute("commit-to-receipt, idle (median)", lat, "ms", maximum=LATENCY_TARGET_MS)
    client.close()


def _wake(inst: Instance, srv: Server, result: Result) -> None:
    client = httpx.Client(base_url=srv.base, headers=inst.headers, timeout=60)
    with Api(srv.base, inst.token) as api:
        project = api.create_project("long-poll")
    wakes = []
    for i in range(30):
        cursor = client.get("/api/v1/changes/cursor").json()["cursor"]
        answered: list[float] = []

        def poll(cursor: str = cursor, answered: list[float] = answered) -> None:
            with httpx.Client(base_url=srv.base, headers=inst.headers, timeout=60) as c:
                c.get("/api/v1/changes", params={"cursor": cursor, "wait": 30})
                answered.append(time.time())

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(0.2)  # the poll is waiting on the server by now
        sent = time.time()
        client.post(f"/api/v1/projects/{project}/folders", json={"name": f"w{i}"})
        waiter.join()
        wakes.append((answered[0] - sent) * 1000)
    wake = median(wakes)
    log(f"long-poll wake-up: median {wake:.1f} ms (from sending the write)")
    result.add_absolute("long-poll wake-up (median)", wake, "ms", maximum=WAKE_TARGET_MS)
    client.close()


def _seed_changes(inst: Instance, project: int, count: int) -> None:
    base = datetime.now(UTC).replace(tzinfo=None)
    if inst.database_url:
        import asyncpg

        async def seed() -> None:
            conn = await asyncpg.connect(listing._pg_dsn(inst.database_url))
            try:
                await conn.execute(
                    "INSERT INTO changes (seq, at, type, project_id, document_id, details) "
                    "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes) + i,"
                    " $1::timestamp, 'document.updated', $2, i, '{}' "
                    "FROM generate_series(1, $3::bigint) AS i",
                    base,
                    project,
                    count,
                )
                await conn.execute("ANALYZE changes")
            finally:
                await conn.close()

        asyncio.run(seed())
        return
    conn = sqlite3.connect(inst.data_dir / "casefolio.db", isolation_level=None, timeout=60)
    try:
        conn.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            "INSERT INTO changes (seq, at, type, project_id, document_id, details) "
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes) + i,"
            " ?, 'document.updated', ?, i, '{}' FROM seq",
            (count, base.strftime("%Y-%m-%d %H:%M:%S.%f"), project),
        )
    finally:
        conn.close()


def _walk(client: httpx.Client, url: str, params: dict[str, Any], key: str) -> tuple[float, int]:
    """Read every page (the feed by its nextCursor, documents by their Link: rel="next");
    return the seconds taken and the items seen. A page that does not move on is an error."""
    start, seen = time.perf_counter(), 0
    query: dict[str, Any] | None = params
    been: set[str] = set()
    while True:
        # httpx drops a URL's own query string when given params, even {}: a followed link
        # goes without them, or the walk would read the first page again and again.
        r = client.get(url, params=query)
        r.raise_for_status()
        body = r.json()
        if key == "changes":
            seen += len(body["changes"])
            if not body["hasMore"]:
                break
            position = body["nextCursor"]
            query = {**params, "cursor": position}
        else:
            seen += len(body)
            position = r.links.get("next", {}).get("url")
            if not position:
                break
            url, query = position, None
        if position in been:
            raise RuntimeError(f"{url}: the walk came back to {position} after {seen:,} items")
        been.add(position)
    return time.perf_counter() - start, seen


def _feed_read(opts: Options, inst: Instance, srv: Server, result: Result) -> None:
    total = 100_000 if not opts.quick else 20_000
    with Api(srv.base, inst.token) as api:
        project = api.create_project("feed")
        doc = api.upload_bytes(project, "template.bin", b"feed benchmark\n" * 100)
    template = listing.seed_template(project, doc)
    base = datetime.now(UTC) + timedelta(seconds=5)
    log(f"seeding {total:,} documents and {total:,} changes")
    if inst.database_url:
        asyncio.run(listing._seed_postgres(inst.database_url, template, total - 1, base))
    else:
        listing._seed_sqlite(inst.data_dir / "casefolio.db", template, total - 1, base)
    _seed_changes(inst, int(project), total)
    with httpx.Client(base_url=srv.base, headers=inst.headers, timeout=600) as client:
        feed_times, list_times = [], []
        for _ in range(3):
            f_s, f_n = _walk(
                client, "/api/v1/changes", {"projectId": project, "limit": PAGE}, "changes"
            )
            l_s, l_n = _walk(
                client, f"/api/v1/projects/{project}/documents", {"limit": PAGE}, "documents"
            )
            feed_times.append(f_s)
            list_times.append(l_s)
    feed_s, list_s = median(feed_times), median(list_times)
    log(f"feed: {f_n:,} changes in {feed_s:.2f}s; list: {l_n:,} in {list_s:.2f}s")
    result.add(
        f"read {f_n:,} changes, pages of {PAGE}",
        median(feed_times),
        "s",
        reference=median(list_times),
        reference_label=f"list {l_n:,} documents",
        higher_is_better=False,
        target=FEED_TARGET,
    )


def run(opts: Options, workdir: Path, result: Result) -> None:
    result.params.update(documents=opts.ingest_docs, size=SIZE, workers=WORKERS)
    with _receiver(workdir) as receiver:
        off, on = _ingest(opts, workdir, receiver)
        result.add(
            "ingest with audit, feed, 1 webhook",
            on,
            "docs/s",
            reference=off,
            reference_label="recorder off",
            target=INGEST_TARGET,
        )
        with (
            _instance(opts, workdir, "outbound") as inst,
            casefolio_server(inst, log_level=opts.log_level) as srv,
        ):
            _webhook(srv, inst, f"{receiver}/fan-out", ["folder.created"])
            _fan_out(opts, inst, srv, receiver, result)
            _wake(inst, srv, result)
            _feed_read(opts, inst, srv, result)
