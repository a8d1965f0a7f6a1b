"""A 1 GiB upload streams through a real server without the server's memory growing."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

GIB = 1024**3
CHUNK = 1024 * 1024
RSS_BUDGET = 64 * 1024 * 1024


def _body(digest: hashlib._Hash) -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    for i in range(GIB // CHUNK):
        chunk = i.to_bytes(8, "big") + block[8:]  # vary the content a little
        digest.update(chunk)
        yield chunk


def _rss_tree(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def test_one_gib_upload_keeps_server_memory_flat(settings: Settings, tmp_path: Path) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    headers = {"X-API-Token": token}
    with running_server(env) as server:
        project = httpx.post(
            f"{server.base_url}/api/v1/projects",
            json={"name": "Big", "settings": {"downloadViaApi": True}},
            headers=headers,
        ).json()
        # Warm the server up so the baseline includes its steady-state allocations.
        httpx.get(f"{server.base_url}/api/v1/projects", headers=headers)
        baseline = _rss_tree(server.pid)
        peak = baseline
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss_tree(server.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        digest = hashlib.sha256()
        try:
            response = httpx.post(
                f"{server.base_url}/api/v1/projects/{project['id']}/documents",
                params={"fileName": "big.bin"},
                content=_body(digest),
                headers={**headers, "Content-Type": "application/octet-stream"},
                timeout=600,
            )
        finally:
            stop.set()
            sampler.join()
        assert response.status_code == 201, response.text
        version = response.json()["currentVersion"]
        assert version["size"] == GIB
        assert version["sha256"] == digest.hexdigest()
        growth = peak - baseline
        print(f"server RSS baseline {baseline / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB")
        assert growth < RSS_BUDGET, f"server RSS grew by {growth / 2**20:.1f} MiB"
        head = httpx.head(
            f"{server.base_url}/api/v1/projects/{project['id']}/documents/{response.json()['id']}/content",
            headers=headers,
        )
        assert head.headers["content-length"] == str(GIB)
