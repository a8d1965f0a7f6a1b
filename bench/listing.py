"""4. Listing: the last page of 100 in a 1,000,000-document project vs. the first page.

One document is uploaded over HTTP (so its project, grants and blob are real); the other
N-1 rows are copied from it straight into the server's database with one set-based INSERT
per batch (a recursive CTE on SQLite, generate_series on PostgreSQL), all versions pointing
at the same blob. The cursor of the last page is the keyset position of the 101st row from
the end, encoded by casefolio's own cursor encoder. First and last pages are then requested
alternately over one keep-alive connection.
Target: median latency of the last page <= 2x the first page's.
"""

from __future__ import annotations

import asyncio
import sqlite3
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

NAME = "listing"
TARGET = 2.0
PAGE = 100
BATCH = 200_000

_DOC_COLUMNS = (
    "id, project_id, folder_id, title, description, current_version_id, current_sha256, "
    "last_version_number, created_by, created_at, updated_at"
)
_VERSION_COLUMNS = (
    "id, document_id, number, file_name, content_type, size, sha256, description, "
    "created_by, created_at"
)


# --------------------------------------------------------------------------- seeding


def seed_template(project: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Given an uploaded document, return the row values seeded copies of it share."""
    version = doc["currentVersion"]
    return {
        "project": int(project),
        "user": int(doc["createdBy"]),
        "sha": version["sha256"],
        "size": int(version["size"]),
        "ctype": version["contentType"],
    }


def _seed_sqlite(db: Path, template: dict[str, Any], count: int, base: datetime) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # seeding only; the server keeps its own
        d0 = conn.execute("SELECT max(id) FROM documents").fetchone()[0]
        v0 = conn.execute("SELECT max(id) FROM document_versions").fetchone()[0]
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC).
        base_text = base.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        ts = "strftime('%Y-%m-%d %H:%M:%f', :base, '+' || (i / 1000.0) || ' seconds') || '000'"
        seq = "WITH RECURSIVE seq(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM seq WHERE i < :hi)"
        docs = (
            f"{seq} INSERT INTO documents ({_DOC_COLUMNS}) "
            f"SELECT :d0 + i, :project, NULL, 'doc-' || i || '.bin', '', :v0 + i, :sha, 1, "
            f":user, {ts}, {ts} FROM seq"
        )
        versions = (
            f"{seq} INSERT INTO document_versions ({_VERSION_COLUMNS}) "
            f"SELECT :v0 + i, :d0 + i, 1, 'doc-' || i || '.bin', :ctype, :size, :sha, '', "
            f":user, {ts} FROM seq"
        )
        for lo in range(1, count + 1, BATCH):
            hi = min(count, lo + BATCH - 1)
            params = {**template, "lo": lo, "hi": hi, "d0": d0, "v0": v0, "base": base_text}
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(docs, params)
            conn.execute(versions, params)
            conn.execute("COMMIT")
            log(f"  seeded {hi:,} / {count:,}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _pg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def _seed_postgres(url: str, template: dict[str, Any], count: int, base: datetime) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        d0 = await conn.fetchval("SELECT max(id) FROM documents")
        v0 = await conn.fetchval("SELECT max(id) FROM document_versions")
        naive = base.replace(tzinfo=None)
        ts = "$3::timestamp + i * interval '1 millisecond'"
        for lo in range(1, count + 1, BATCH):
            hi = min(count, lo + BATCH - 1)
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO documents ({_DOC_COLUMNS}) "
                    f"SELECT $4::bigint + i, $5, NULL, 'doc-' || i || '.bin', '', $6::bigint + i, "
                    f"$7, 1, $8, {ts}, {ts} FROM generate_series($1::bigint, $2::bigint) AS i",
                    lo,
                    hi,
                    naive,
                    d0,
                    template["project"],
                    v0,
                    template["sha"],
                    template["user"],
                )
                await conn.execute(
                    f"INSERT INTO document_versions ({_VERSION_COLUMNS}) "
                    f"SELECT $4::bigint + i, $5::bigint + i, 1, 'doc-' || i || '.bin', $6, $7, $8, "
                    f"'', $9, {ts} FROM generate_series($1::bigint, $2::bigint) AS i",
                    lo,
                    hi,
                    naive,
                    v0,
                    d0,
                    template["ctype"],
                    template["size"],
                    template["sha"],
                    template["user"],
                )
            log(f"  seeded {hi:,} / {count:,}")
        for table in ("documents", "document_versions"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        # What autovacuum would have done by the time a project has grown this large.
        await conn.execute("ANALYZE documents")
        await conn.execute("ANALYZE document_versions")
    finally:
        await conn.close()


def _last_page_key(inst: Instance, project: int, total: int) -> tuple[datetime, int]:
    """The (updated_at, id) of the row just before the last PAGE rows of the project."""
    offset = total - PAGE - 1
    sql = (
        "SELECT updated_at, id FROM documents WHERE project_id = {p} "
        "ORDER BY updated_at, id LIMIT 1 OFFSET {o}"
    )
    if not inst.database_url:
        conn = sqlite3.connect(inst.data_dir / "casefolio.db")
        try:
            updated, doc_id = conn.execute(sql.format(p=project, o=offset)).fetchone()
        finally:
            conn.close()
        return datetime.fromisoformat(updated).replace(tzinfo=UTC), int(doc_id)

    async def fetch() -> tuple[datetime, int]:
        import asyncpg

        conn = await asyncpg.connect(_pg_dsn(inst.database_url))
        try:
            row = await conn.fetchrow(sql.format(p=project, o=offset))
        finally:
            await conn.close()
        return row[0].replace(tzinfo=UTC), int(row[1])

    return asyncio.run(fetch())


def _cursor_for(key: tuple[datetime, int]) -> str:
    try:
        from casefolio.domain.pages import encode_cursor
    except ImportError as exc:
        raise Skip(f"cannot build a keyset cursor: {exc}") from exc
    return encode_cursor(key)


# --------------------------------------------------------------------------- measuring


def _timed_get(client: httpx.Client, url: str, params: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    r = client.get(url, params=params)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"GET {url} {params} answered {r.status_code}: {r.text[:300]}")
    return elapsed, r


def run(opts: Options, workdir: Path, result: Result) -> None:
    total = opts.listing_docs
    repeats = opts.listing_repeats
    result.params.update(documents=total, page=PAGE, repeats=repeats)
    with (
        instance(opts, workdir, NAME) as inst,
        casefolio_server(inst, log_level=opts.log_level) as srv,
    ):
        with Api(srv.base, inst.token) as api:
            project = api.create_project("listing")
            doc = api.upload_bytes(project, "template.bin", b"listing benchmark\n" * 200)
        template = seed_template(project, doc)
        # Seeded rows sort after the uploaded one, a millisecond apart.
        base = datetime.now(UTC) + timedelta(seconds=5)
        log(f"seeding {total - 1:,} documents into {opts.database}")
        start = time.perf_counter()
        if inst.database_url:
            asyncio.run(_seed_postgres(inst.database_url, template, total - 1, base))
        else:
            _seed_sqlite(inst.data_dir / "casefolio.db", template, total - 1, base)
        seed_s = time.perf_counter() - start
        result.details["seed_seconds"] = seed_s
        log(f"seeded in {seed_s:.1f}s ({(total - 1) / seed_s:,.0f} rows/s)")

        cursor = _cursor_for(_last_page_key(inst, int(project), total))
        url = f"{srv.base}/api/v1/projects/{project}/documents"
        first_params = {"limit": PAGE}
        last_params = {"limit": PAGE, "cursor": cursor}
        with httpx.Client(headers=inst.headers, timeout=120) as client:
            _, first = _timed_get(client, url, first_params)
            _, last = _timed_get(client, url, last_params)
            first_items, last_items = first.json(), last.json()
            if len(first_items) != PAGE or "link" not in first.headers:
                raise RuntimeError("the first page is not a full page with a Link header")
            if len(last_items) != PAGE or "link" in last.headers:
                raise RuntimeError(
                    f"the last page has {len(last_items)} items, Link={last.headers.get('link')}"
                )
            result.details["last_page_ids"] = [last_items[0]["id"], last_items[-1]["id"]]
            for _ in range(5):  # warm-up: caches, prepared statements
                _timed_get(client, url, first_params)
                _timed_get(client, url, last_params)
            log(f"first and last page x{repeats}, alternating")
            firsts: list[float] = []
            lasts: list[float] = []
            for _ in range(repeats):
                firsts.append(_timed_get(client, url, first_params)[0] * 1000)
                lasts.append(_timed_get(client, url, last_params)[0] * 1000)
        first_med, last_med = median(firsts), median(lasts)
        result.details.update(
            first_ms={"median": first_med, "p95": percentile(firsts, 95), "min": min(firsts)},
            last_ms={"median": last_med, "p95": percentile(lasts, 95), "min": min(lasts)},
        )
        log(f"first page {first_med:.1f} ms, last page {last_med:.1f} ms (medians)")
        result.add(
            f"last page of {total:,} (median)",
            last_med,
            "ms",
            reference=first_med,
            reference_label="first page",
            higher_is_better=False,
            target=TARGET,
        )
        result.add(
            "last page p95",
            percentile(lasts, 95),
            "ms",
            reference=percentile(firsts, 95),
            reference_label="first page p95",
        )
