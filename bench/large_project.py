"""10^7 documents on PostgreSQL: deep pages, a sync and one GET against a small project.

One project of `--large-docs` documents (10,000,000 by default; `--quick` 20,000) and one of
1,000, each seeded as `listing` does (one upload over HTTP, the rest copied with set-based
INSERTs from generate_series, a millisecond apart). Then, each pair alternating over one
keep-alive connection, medians of `--listing-repeats`:

- the last page of 100 by keyset cursor, against the first page;
- an `afterDate` sync from the document 1,000 before the end (a page of 100), against the
  first page;
- GET of one document of the large project, against GET of one in the 1,000-document project.

Targets: last page <= 2x and sync <= 2x the first page; the GET <= 1.2x. Printed too: the
database's size per million documents (pg_database_size, and the two tables with their
indexes). PostgreSQL only: SQLite's 10^6 case is `listing`'s.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Api,
    Instance,
    Options,
    Result,
    Skip,
    casefolio_server,
    instance,
    log,
    median,
    percentile,
)
from bench.listing import _pg_dsn, _seed_postgres, _timed_get, seed_template

NAME = "large_project"
PAGE = 100
SMALL = 1_000
SYNC_FROM_END = 1_000
PAGE_TARGET = 2.0
GET_TARGET = 1.2


def run(opts: Options, workdir: Path, result: Result) -> None:
    if opts.database != "postgresql":
        raise Skip("PostgreSQL only (run with --database postgresql)")
    total, repeats = opts.large_docs, opts.listing_repeats
    result.params.update(documents=total, small=SMALL, page=PAGE, repeats=repeats)
    with (
        instance(opts, workdir, NAME) as inst,
        casefolio_server(inst, log_level=opts.log_level) as srv,
    ):
        with Api(srv.base, inst.token) as api:
            large = api.create_project("large")
            large_doc = api.upload_bytes(large, "large.bin", b"large project\n" * 100)
            small = api.create_project("small")
            small_doc = api.upload_bytes(small, "small.bin", b"small project\n" * 100)
        base = datetime.now(UTC) + timedelta(seconds=5)
        empty = asyncio.run(_database_size(inst))
        log(f"seeding {total - 1:,} documents (set-based INSERTs)")
        start = time.perf_counter()
        asyncio.run(
            _seed_postgres(inst.database_url, seed_template(large, large_doc), total - 1, base)
        )
        seed_s = time.perf_counter() - start
        log(f"seeded in {seed_s:.0f}s ({(total - 1) / seed_s:,.0f} rows/s)")
        asyncio.run(
            _seed_postgres(inst.database_url, seed_template(small, small_doc), SMALL - 1, base)
        )
        facts = asyncio.run(_facts(inst, int(large), int(small)))
        facts["database_bytes"] -= empty  # what the documents added
        result.details.update(seed_seconds=seed_s, **{k: str(v) for k, v in facts.items()})
        _measure(opts, inst, srv.base, large, small, facts, result, total, repeats)


async def _database_size(inst: Instance) -> int:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(inst.database_url))
    try:
        size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return size


async def _facts(inst: Instance, large: int, small: int) -> dict[str, Any]:
    """Keys of the pages to ask for, a document of each project, and the sizes."""
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(inst.database_url))
    try:
        newest = "SELECT updated_at, id FROM documents WHERE project_id = $1 "
        newest += "ORDER BY updated_at DESC, id DESC OFFSET $2 LIMIT 1"
        before_last = await conn.fetchrow(newest, large, PAGE)
        sync_from = await conn.fetchrow(newest, large, SYNC_FROM_END - 1)
        middle = await conn.fetchval(
            "SELECT id FROM documents WHERE project_id = $1 AND id > "
            "(SELECT min(id) + (max(id) - min(id)) / 2 FROM documents WHERE project_id = $1) "
            "ORDER BY id LIMIT 1",
            large,
        )
        small_doc = await conn.fetchval(
            "SELECT id FROM documents WHERE project_id = $1 ORDER BY id DESC OFFSET 500 LIMIT 1",
            small,
        )
        sizes = {
            "database_bytes": await conn.fetchval("SELECT pg_database_size(current_database())"),
            "documents_bytes": await conn.fetchval("SELECT pg_total_relation_size('documents')"),
            "versions_bytes": await conn.fetchval(
                "SELECT pg_total_relation_size('document_versions')"
            ),
            "all_documents": await conn.fetchval("SELECT count(*) FROM documents"),
        }
    finally:
        await conn.close()
    return {
        "last_key": (before_last[0].replace(tzinfo=UTC), int(before_last[1])),
        "sync_from": sync_from[0].replace(tzinfo=UTC),
        "large_doc": int(middle),
        "small_doc": int(small_doc),
        **sizes,
    }


def _alternate(
    client: httpx.Client, repeats: int, a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, Any]]
) -> tuple[list[float], list[float]]:
    for _ in range(5):  # warm-up
        _timed_get(client, *a)
        _timed_get(client, *b)
    first: list[float] = []
    second: list[float] = []
    for _ in range(repeats):
        first.append(_timed_get(client, *a)[0] * 1000)
        second.append(_timed_get(client, *b)[0] * 1000)
    return first, second


def _measure(
    opts: Options,
    inst: Instance,
    base: str,
    large: str,
    small: str,
    facts: dict[str, Any],
    result: Result,
    total: int,
    repeats: int,
) -> None:
    from casefolio.api.v1.schemas import rfc3339
    from casefolio.domain.pages import encode_cursor

    lists = f"{base}/api/v1/projects/{large}/documents"
    first = (lists, {"limit": PAGE})
    last = (lists, {"limit": PAGE, "cursor": encode_cursor(facts["last_key"])})
    sync = (lists, {"limit": PAGE, "afterDate": rfc3339(facts["sync_from"])})
    get_large = (f"{lists}/{facts['large_doc']}", {})
    get_small = (f"{base}/api/v1/projects/{small}/documents/{facts['small_doc']}", {})
    with httpx.Client(headers=inst.headers, timeout=120) as client:
        _, last_page = _timed_get(client, *last)
        _, synced = _timed_get(client, *sync)
        if len(last_page.json()) != PAGE or "link" in last_page.headers:
            raise RuntimeError("the last page is not a full page without a Link header")
        if len(synced.json()) != PAGE or "link" not in synced.headers:
            raise RuntimeError("the sync page is not a full page with a Link header")
        pairs = {
            "last page": (first, last, PAGE_TARGET, "first page"),
            f"afterDate sync, {SYNC_FROM_END:,} before the end": (
                first,
                sync,
                PAGE_TARGET,
                "first page",
            ),
            "GET one document": (
                get_small,
                get_large,
                GET_TARGET,
                f"GET in a {SMALL:,}-doc project",
            ),
        }
        for label, (reference, measured, target, reference_label) in pairs.items():
            refs, values = _alternate(client, repeats, reference, measured)
            log(
                f"{label}: {median(values):.2f} ms vs {reference_label} {median(refs):.2f} ms "
                f"(p95 {percentile(values, 95):.2f} / {percentile(refs, 95):.2f})"
            )
            result.details[label] = {"ms": median(values), "reference_ms": median(refs)}
            result.add(
                f"{label}, {total:,} documents (median)",
                median(values),
                "ms",
                reference=median(refs),
                reference_label=reference_label,
                higher_is_better=False,
                target=target,
                note=f"p95 {percentile(values, 95):.1f} ms",
            )
    millions = facts["all_documents"] / 1e6
    for what in ("database", "documents", "versions"):
        per_million = facts[f"{what}_bytes"] / millions / 2**20
        label = {
            "database": "database growth",
            "documents": "documents table + indexes",
            "versions": "document_versions + indexes",
        }[what]
        log(f"{label}: {per_million:,.0f} MiB per million documents")
        result.add_absolute(f"{label} per 10^6 documents", per_million, "MiB")
