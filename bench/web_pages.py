"""7. Web pages: the project page at 10^6 documents vs 100, and the page vs the API list.

Two projects are seeded as `listing` seeds its one (one document uploaded over HTTP, the
rest copied in with set-based INSERTs): a large one (`--listing-docs`, 10^6) and a small one
(100). The bench operator signs in to the pages with a password (`casefolio users
set-password`), then, over one keep-alive connection each:
- the project page (folders, the newest 50 documents, their current versions) of the large
  project and of the small one, requested alternately; target: median time of the large
  <= 2x the small's;
- the same page of the large project and `GET /api/v1/projects/{p}/documents?limit=50` (the
  API's equivalent list), in alternating timed runs of sequential requests; target: the
  page's req/s >= 0.5x the API's.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BENCH_EMAIL,
    CASEFOLIO,
    Api,
    Options,
    Result,
    casefolio_server,
    instance,
    log,
    median,
    percentile,
)
from bench.listing import _seed_postgres, _seed_sqlite

NAME = "web_pages"
PAGE_TARGET = 2.0
RATE_TARGET = 0.5
SMALL = 100
LIST_LIMIT = 50
PASSWORD = "bench web password"


def _seed(inst: Any, api: Api, name: str, count: int, base: datetime) -> str:
    project = api.create_project(name)
    doc = api.upload_bytes(project, f"{name}.bin", b"web page benchmark\n" * 100)
    version = doc["currentVersion"]
    template = {
        "project": int(project),
        "user": int(doc["createdBy"]),
        "sha": version["sha256"],
        "size": int(version["size"]),
        "ctype": version["contentType"],
    }
    log(f"seeding {count - 1:,} documents into {name}")
    if inst.database_url:
        asyncio.run(_seed_postgres(inst.database_url, template, count - 1, base))
    else:
        _seed_sqlite(inst.data_dir / "casefolio.db", template, count - 1, base)
    return project


def _get(client: httpx.Client, url: str, **params: Any) -> float:
    start = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
    return elapsed


def _rate(client: httpx.Client, url: str, seconds: float, **params: Any) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _get(client, url, **params)
        done += 1
    return done / (time.perf_counter() - start)


def run(opts: Options, workdir: Path, result: Result) -> None:
    total, repeats = opts.listing_docs, opts.listing_repeats
    result.params.update(documents=total, small=SMALL, repeats=repeats, list_limit=LIST_LIMIT)
    with (
        instance(opts, workdir, NAME) as inst,
        casefolio_server(inst, log_level=opts.log_level) as srv,
    ):
        subprocess.run(
            [str(CASEFOLIO), "users", "set-password", BENCH_EMAIL, "--password-stdin"],
            env=inst.env(),
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        base = datetime.now(UTC) + timedelta(seconds=5)
        with Api(srv.base, inst.token) as api:
            large = _seed(inst, api, "large", total, base)
            small = _seed(inst, api, "small", SMALL, base + timedelta(days=1))
        with (
            httpx.Client(base_url=srv.base, timeout=120) as page_client,
            httpx.Client(base_url=srv.base, headers=inst.headers, timeout=120) as api_client,
        ):
            signed_in = page_client.post(
                "/signin", data={"email": BENCH_EMAIL, "password": PASSWORD}
            )
            if signed_in.status_code != 303:
                raise RuntimeError(f"sign-in answered {signed_in.status_code}")
            large_url, small_url = f"/projects/{large}", f"/projects/{small}"
            api_url = f"/api/v1/projects/{large}/documents"
            for _ in range(5):  # warm-up: caches, prepared statements
                _get(page_client, large_url)
                _get(page_client, small_url)
                _get(api_client, api_url, limit=LIST_LIMIT)
            log(f"project page, large and small x{repeats}, alternating")
            larges: list[float] = []
            smalls: list[float] = []
            for _ in range(repeats):
                larges.append(_get(page_client, large_url) * 1000)
                smalls.append(_get(page_client, small_url) * 1000)
            log(f"page vs API list, {opts.rounds} rounds of {opts.duration:g}s, alternating")
            page_rates: list[float] = []
            api_rates: list[float] = []
            for _ in range(opts.rounds):
                page_rates.append(_rate(page_client, large_url, opts.duration))
                api_rates.append(_rate(api_client, api_url, opts.duration, limit=LIST_LIMIT))
        large_med, small_med = median(larges), median(smalls)
        result.details.update(
            large_ms={"median": large_med, "p95": percentile(larges, 95)},
            small_ms={"median": small_med, "p95": percentile(smalls, 95)},
            page_rates=page_rates,
            api_rates=api_rates,
        )
        result.add(
            f"project page at {total:,} documents (median)",
            large_med,
            "ms",
            reference=small_med,
            reference_label=f"at {SMALL}",
            higher_is_better=False,
            target=PAGE_TARGET,
        )
        result.add(
            "project page, sequential",
            median(page_rates),
            "req/s",
            reference=median(api_rates),
            reference_label=f"/api/v1 list of {LIST_LIMIT}",
            target=RATE_TARGET,
            note=f"rounds: page {[round(r) for r in page_rates]}, "
            f"api {[round(r) for r in api_rates]}",
        )
