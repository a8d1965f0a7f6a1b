"""12. Search: query latency at 10,000 and at N documents, throughput, indexing, latency.

Corpus: documents of ~2 KB of generated legal-like text (a fixed vocabulary, word ranks
drawn from a Zipf distribution, seeded; 1% of documents carry the phrase "indemnity cap").
One document is uploaded over HTTP (project, grants and blob are real); the rest are rows
copied from it set-based (bench/listing.py's seeding) with their text inserted straight into
`version_texts` (status done), so the database's own index (FTS5 triggers, or the generated
tsvector and its GIN index) is built as casefolio builds it.

Measured, through `GET /api/v1/search` on a real server: a two-word query and a phrase query,
p95 at 1 client; requests/s with 16 clients; the same at 10,000 documents (the reference) and
at N (`--search-docs`). Indexing: text files imported with `casefolio import`, then
extracted and indexed by the worker's Indexer in this process (docs/s). Upload-to-searchable:
an upload with a new word, then the search polled every 10 ms until it finds it (the server's
own worker, on an idle server; p50). Index size per million documents, from the database.
Targets (issue 25): two-word p95 <= 100 ms, phrase p95 <= 200 ms at 1,000,000 documents,
ratio to 10,000 <= 5x; indexing >= 300 docs/s; upload-to-searchable p50 <= 1 s.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import listing
from bench.common import (
    Api,
    Instance,
    Options,
    Result,
    casefolio_server,
    instance,
    log,
    median,
    percentile,
    run_cli,
)

NAME = "search"
SMALL = 10_000
CLIENTS = 16
TWO_WORDS = "liquidator creditor"
PHRASE = '"indemnity cap"'
BATCH = 20_000
_LEGAL_TEXT = (
    "agreement party parties claim claimant defendant court order notice breach contract "
    "clause term liability damages indemnity cap warranty representation termination "
    "consideration obligation performance payment invoice schedule exhibit witness "
    "statement evidence disclosure privilege counsel solicitor barrister hearing trial "
    "judgment appeal costs settlement offer prejudice without mediation arbitration "
    "tribunal jurisdiction governing law England Wales deed escrow lease landlord tenant "
    "premises rent covenant assignment novation guarantee security charge mortgage default "
    "insolvency administrator liquidator creditor debtor shares director board resolution "
)
#: The most frequent words of English prose, before the legal ones.
_COMMON_TEXT = (
    "the of and to in a is that for on with as by be this which or from at are not shall "
    "any such all its under it was were has have been will may an if other no each "
)
COMMON: list[str] = _COMMON_TEXT.split(" ")[:-1]
#: Legal words, most frequent first.
LEGAL: list[str] = _LEGAL_TEXT.split(" ")[:-1]


def vocabulary(size: int = 20_000) -> tuple[list[str], list[float]]:
    """Words by rank (legal words first, then made-up ones) and their Zipf cumulative weights."""
    words = COMMON + LEGAL + [f"w{n}" for n in range(size - len(COMMON) - len(LEGAL))]
    total, cumulative = 0.0, []
    for rank in range(1, len(words) + 1):
        total += 1 / rank**1.07
        cumulative.append(total)
    return words, cumulative


def texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words, cumulative = vocabulary()
    out = []
    for _ in range(count):
        drawn = rng.choices(words, cum_weights=cumulative, k=400)
        if rng.random() < 0.01:
            drawn[rng.randrange(399) : 0] = ["indemnity", "cap"]
        out.append(" ".join(drawn))
    return out


# --------------------------------------------------------------------------- seeding


def _seed_texts_sqlite(db: Path, first_version: int, count: int, seed: int) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        now = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        for lo in range(0, count, BATCH):
            chunk = texts(min(BATCH, count - lo), seed + lo)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO version_texts (version_id, status, text, attempts, extracted_at) "
                "VALUES (?, 'done', ?, 0, ?)",
                [(first_version + lo + i, t, now) for i, t in enumerate(chunk)],
            )
            conn.execute("COMMIT")
            log(f"  indexed {lo + len(chunk):,} / {count:,}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def _seed_texts_postgres(url: str, first_version: int, count: int, seed: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(listing._pg_dsn(url))
    try:
        now = datetime.now(UTC).replace(tzinfo=None)
        for lo in range(0, count, BATCH):
            chunk = texts(min(BATCH, count - lo), seed + lo)
            await conn.copy_records_to_table(
                "version_texts",
                records=[(first_version + lo + i, "done", t, 0, now) for i, t in enumerate(chunk)],
                columns=["version_id", "status", "text", "attempts", "extracted_at"],
            )
            log(f"  indexed {lo + len(chunk):,} / {count:,}")
        # What autovacuum would do after so many inserts (this machine's server runs without
        # it), before measuring: the rows the GIN index holds in its pending list (fastupdate)
        # merged into the index, which every search otherwise scans in full, and statistics.
        await conn.execute("SELECT gin_clean_pending_list('ix_version_texts_tsv')")
        await conn.execute("ANALYZE version_texts")
    finally:
        await conn.close()


def _max_version(inst: Instance) -> int:
    sql = "SELECT max(id) FROM document_versions"
    if not inst.database_url:
        conn = sqlite3.connect(inst.data_dir / "casefolio.db")
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()

    async def fetch() -> int:
        import asyncpg

        conn = await asyncpg.connect(listing._pg_dsn(inst.database_url))
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def grow(inst: Instance, template: dict[str, Any], count: int, seed: int) -> None:
    """Add `count` documents with their text to the template's project."""
    first = _max_version(inst) + 1
    base = datetime.now(UTC) + timedelta(seconds=5)
    if inst.database_url:
        asyncio.run(listing._seed_postgres(inst.database_url, template, count, base))
        asyncio.run(_seed_texts_postgres(inst.database_url, first, count, seed))
    else:
        listing._seed_sqlite(inst.data_dir / "casefolio.db", template, count, base)
        _seed_texts_sqlite(inst.data_dir / "casefolio.db", first, count, seed)


def index_bytes(inst: Instance) -> tuple[int, int]:
    """(bytes of the full-text index, bytes of the stored text)."""
    if not inst.database_url:
        conn = sqlite3.connect(inst.data_dir / "casefolio.db")
        try:
            index = conn.execute(
                "SELECT (SELECT coalesce(sum(length(block)), 0) FROM version_texts_fts_data)"
                " + (SELECT coalesce(sum(length(sz)), 0) + 8 * count(*)"
                " FROM version_texts_fts_docsize)"
            ).fetchone()[0]
            stored = conn.execute("SELECT sum(length(text)) FROM version_texts").fetchone()[0]
            return int(index), int(stored or 0)
        finally:
            conn.close()

    async def fetch() -> tuple[int, int]:
        import asyncpg

        conn = await asyncpg.connect(listing._pg_dsn(inst.database_url))
        try:
            gin = await conn.fetchval("SELECT pg_relation_size('ix_version_texts_tsv')")
            tsv = await conn.fetchval("SELECT sum(pg_column_size(tsv)) FROM version_texts")
            stored = await conn.fetchval("SELECT sum(pg_column_size(text)) FROM version_texts")
            return int(gin) + int(tsv or 0), int(stored or 0)
        finally:
            await conn.close()

    return asyncio.run(fetch())


# --------------------------------------------------------------------------- measuring


def latencies(base: str, inst: Instance, q: str, repeats: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, headers=inst.headers, timeout=120) as client:
        for _ in range(3):
            client.get("/api/v1/search", params={"q": q}).raise_for_status()
        for _ in range(repeats):
            start = time.perf_counter()
            r = client.get("/api/v1/search", params={"q": q})
            out.append((time.perf_counter() - start) * 1000)
            if r.status_code != 200 or not r.json():
                raise RuntimeError(f"search {q!r} answered {r.status_code}: {r.text[:200]}")
    return out


def throughput(base: str, inst: Instance, seconds: float) -> float:
    """Requests/s of CLIENTS threads alternating the two queries for `seconds`."""
    done = [0] * CLIENTS
    until = time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=base, headers=inst.headers, timeout=120) as http:
            while time.monotonic() < until:
                q = TWO_WORDS if done[n] % 2 else PHRASE
                http.get("/api/v1/search", params={"q": q}).raise_for_status()
                done[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - start)


def measure(base: str, inst: Instance, opts: Options) -> dict[str, float]:
    repeats = 20 if opts.quick else 50
    two = latencies(base, inst, TWO_WORDS, repeats)
    phrase = latencies(base, inst, PHRASE, repeats)
    return {
        "two_p95": percentile(two, 95),
        "two_p50": median(two),
        "phrase_p95": percentile(phrase, 95),
        "phrase_p50": median(phrase),
        "rps16": throughput(base, inst, 3 if opts.quick else 10),
    }


def indexing(inst: Instance, workdir: Path, count: int) -> float:
    """Text files imported with `casefolio import`, then extracted and indexed by the
    worker's Indexer in this process (no server running): docs/s."""
    from casefolio.config import Settings
    from casefolio.db.engine import Database
    from casefolio.search.index import Indexer

    source = workdir / "texts"
    source.mkdir()
    for n, text in enumerate(texts(count, seed=7)):
        (source / f"t{n}.txt").write_text(text)
    env = inst.env()
    out = run_cli(["projects", "create", "indexing"], env)
    project = "".join(ch for ch in out if ch.isdigit())
    run_cli(["import", str(source), "--project", project], env, timeout=1800)

    async def work() -> float:
        settings = Settings(data_dir=inst.data_dir, database_url=inst.database_url)
        db = Database.open(settings)
        indexer = Indexer(settings, db)
        try:
            start = time.perf_counter()
            while await indexer.queue():
                pass
            extracted = 0
            while done := await indexer.extract_due():
                extracted += done
            seconds = time.perf_counter() - start
        finally:
            await indexer.close()
            await db.close()
        if extracted != count:
            raise RuntimeError(f"indexed {extracted} of {count} files")
        return count / seconds

    return asyncio.run(work())


def searchable_latency(base: str, inst: Instance, project: str, samples: int) -> list[float]:
    out = []
    with (
        Api(base, inst.token) as api,
        httpx.Client(base_url=base, headers=inst.headers, timeout=60) as client,
    ):
        for n in range(samples):
            word = f"zzlatency{n}x{random.randrange(10**9)}"
            start = time.perf_counter()
            api.upload_bytes(project, f"l{n}.txt", f"new filing mentions {word}".encode())
            while True:
                found = client.get("/api/v1/search", params={"q": word, "projectId": project})
                if found.status_code == 200 and found.json():
                    break
                if time.perf_counter() - start > 30:
                    raise RuntimeError(f"upload {n} not searchable after 30 s")
                time.sleep(0.01)
            out.append((time.perf_counter() - start) * 1000)
            time.sleep(0.2)  # idle between samples
    return out


def run(opts: Options, workdir: Path, result: Result) -> None:
    total = opts.search_docs
    small = min(SMALL, total)
    files = 200 if opts.quick else 3_000
    result.params.update(documents=total, reference_documents=small, clients=CLIENTS)
    with instance(opts, workdir, NAME) as inst:
        log(f"indexing {files:,} text files (import, then the Indexer)")
        docs_per_s = indexing(inst, workdir, files)
        log(f"indexed {docs_per_s:,.0f} docs/s")
        with casefolio_server(inst, log_level=opts.log_level) as srv:
            with Api(srv.base, inst.token) as api:
                project = api.create_project("search")
                doc = api.upload_bytes(project, "template.txt", b"template")
            template = listing.seed_template(project, doc)
            log(f"seeding {small - 1:,} documents with text into {opts.database}")
            grow(inst, template, small - 1, seed=1)
            at_small = measure(srv.base, inst, opts)
            log(f"at {small:,}: {at_small}")
            at_large = at_small
            if total > small:
                log(f"seeding {total - small:,} more documents")
                start = time.perf_counter()
                grow(inst, template, total - small, seed=2)
                result.details["seed_seconds"] = time.perf_counter() - start
                at_large = measure(srv.base, inst, opts)
                log(f"at {total:,}: {at_large}")
            index, stored = index_bytes(inst)
            samples = 5 if opts.quick else 20
            latency = searchable_latency(srv.base, inst, project, samples)
    result.details.update(small=at_small, large=at_large, latency_ms=latency)
    n = f"{total:,} docs"

    def grown(label: str, key: str, unit: str, **expected: Any) -> None:
        """A figure at the full size, against the same figure at the small size."""
        result.add(
            f"{label}, {n}",
            at_large[key],
            unit,
            reference=at_small[key],
            reference_label=f"{small:,} docs",
            **expected,
        )

    grown("two-word p95", "two_p95", "ms", higher_is_better=False, target=5.0)
    grown("phrase p95", "phrase_p95", "ms", higher_is_better=False, target=5.0)
    result.add_absolute(f"two-word p95, {n}", at_large["two_p95"], "ms", maximum=100)
    result.add_absolute(f"phrase p95, {n}", at_large["phrase_p95"], "ms", maximum=200)
    grown(f"{CLIENTS} clients", "rps16", "req/s")
    result.add_absolute("indexing text files", docs_per_s, "docs/s", minimum=300)
    result.add_absolute("upload to searchable p50", median(latency) / 1000, "s", maximum=1.0)
    result.add_absolute("index size per million docs", index / total * 1e6 / 2**30, "GiB")
    result.add_absolute("text stored per million docs", stored / total * 1e6 / 2**30, "GiB")
